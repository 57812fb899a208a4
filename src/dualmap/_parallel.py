"""Execution back-ends: run picklable functions in worker processes and collect the results as they complete.

One interface, :class:`Backend` (``submit(fn, *args, key=...)`` → handle; ``completed(handles)`` yields
``(handle, result, exception)`` in completion order; ``close()``), and :func:`start_backend` to choose one:

- a ``dask.distributed`` ``LocalCluster`` of single-threaded worker processes (the default), or an existing
  dask scheduler (``scheduler="tcp://host:8786"``; its workers must import ``dualmap``);
- a local ``spawn`` process pool when dask is not installed (or ``scheduler="processes"``);
- this process, one call after another (``scheduler="synchronous"``, for debugging).

Local workers run one BLAS/torch thread each and exit when the process that started them is gone
(:func:`watch_parent`), even one killed with SIGKILL. Used by the sweep (src/dualmap/study/sweep/) and by the
retraining protocols of src/dualmap/attribution/protocols.py; a neutral module below both (docs/architecture.md,
"Layers").
"""

from __future__ import annotations

import os
import sys
import time

__all__ = ["Backend", "DaskBackend", "ProcessBackend", "SynchronousBackend", "start_backend", "watch_parent"]


def _limit_threads(parent_pid: int | None = None) -> None:
    """Initializer of the process-pool workers: one BLAS/torch thread each, as dask's nanny does; and the
    worker exits when the process that started it is gone (:func:`watch_parent`)."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    if parent_pid is not None:
        watch_parent(parent_pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_WATCHED: set = set()


def watch_parent(pid: int, interval: float = 1.0) -> None:
    """Exit this process (status 3) as soon as process ``pid`` — the command that started it — is gone.

    A daemon thread polls every ``interval`` seconds. It covers what no signal handler can: a sweep killed
    with SIGKILL, whose worker processes would otherwise finish their queue and then idle for ever.
    """
    import threading

    if pid in _WATCHED:
        return
    _WATCHED.add(pid)

    def watch():
        while True:
            time.sleep(interval)
            if not _alive(pid) or os.getppid() == 1 and pid != 1:
                os._exit(3)

    threading.Thread(target=watch, name=f"dualmap-watch-{pid}", daemon=True).start()


def _parent_watch_plugins(parent_pid: int):
    """A dask worker plugin and a nanny plugin that start :func:`watch_parent` in every worker and nanny."""
    from distributed.diagnostics.plugin import NannyPlugin, WorkerPlugin

    class _WorkerWatch(WorkerPlugin):
        name = "dualmap-watch-parent"

        def __init__(self, pid):
            self.pid = pid

        def setup(self, worker):
            watch_parent(self.pid)

    class _NannyWatch(NannyPlugin):
        name = "dualmap-watch-parent-nanny"

        def __init__(self, pid):
            self.pid = pid

        def setup(self, nanny):
            watch_parent(self.pid)

    return _WorkerWatch(parent_pid), _NannyWatch(parent_pid)


class Backend:
    """``submit(fn, *args, key) -> handle`` and ``completed(handles)`` yielding ``(handle, result, exception)``.

    ``name`` says where the work runs (e.g. ``"dask LocalCluster (2 workers)"``), ``workers`` how many
    processes; ``close()`` shuts the workers down.
    """

    name = ""
    workers = 0

    def close(self):
        pass


class DaskBackend(Backend):
    def __init__(self, scheduler, workers):
        from distributed import Client, LocalCluster

        if scheduler is None:
            import logging

            import dask

            # a run that kills its worker (out of memory, a crash) is retried once, not dask's default 3 times
            with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
                self.cluster = LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True,
                    dashboard_address=":0",  # any free port: the HTTP server warns when 8787 is taken
                    silence_logs=logging.ERROR,
                    env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
            self.client = Client(self.cluster)
            for plugin in _parent_watch_plugins(os.getpid()):   # the workers die with this process
                self.client.register_plugin(plugin)
            self.workers = workers
            self.name = f"dask LocalCluster ({workers} worker{'s' if workers != 1 else ''})"
        else:
            self.cluster = None
            self.client = Client(scheduler)
            self.workers = len(self.client.scheduler_info().get("workers", {}))
            self.name = f"dask scheduler {scheduler} ({self.workers} workers)"

    def submit(self, fn, *args, key):
        return self.client.submit(fn, *args, key=key, pure=False, retries=0)

    def completed(self, handles):
        from distributed import as_completed

        for future in as_completed(handles):
            try:
                yield future, future.result(), None
            except Exception as exc:  # noqa: BLE001 - the worker died (KilledWorker) or the task could not run
                yield future, None, exc
            finally:
                future.release()

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


class ProcessBackend(Backend):
    def __init__(self, workers, reason):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_limit_threads, initargs=(os.getpid(),))
        self.workers = workers
        self.name = f"local processes ({reason})" if reason else f"local processes ({workers} workers)"

    def submit(self, fn, *args, key):
        return self.pool.submit(fn, *args)

    def completed(self, handles):
        from concurrent.futures import as_completed

        for future in as_completed(handles):
            try:
                yield future, future.result(), None
            except Exception as exc:  # noqa: BLE001 - BrokenProcessPool, an unpicklable runner, ...
                yield future, None, exc

    def close(self):
        self.pool.shutdown(wait=True, cancel_futures=True)


class SynchronousBackend(Backend):
    name = "synchronous (this process)"
    workers = 1

    def submit(self, fn, *args, key):
        return (fn, args)

    def completed(self, handles):
        for handle in handles:
            fn, args = handle
            try:
                yield handle, fn(*args), None
            except Exception as exc:  # noqa: BLE001
                yield handle, None, exc


def start_backend(scheduler: str | None, workers: int) -> Backend:
    """The back-end for ``scheduler``: None, a dask ``LocalCluster`` of ``workers`` processes (a local process
    pool when dask is not installed); an address, that dask scheduler; ``"processes"``, a local process pool;
    ``"synchronous"``, this process."""
    if scheduler == "synchronous":
        return SynchronousBackend()
    if scheduler == "processes":
        return ProcessBackend(workers, f"{workers} worker{'s' if workers != 1 else ''}")
    try:
        import distributed  # noqa: F401
    except ImportError:
        if scheduler is not None:
            raise ImportError(f"scheduler={scheduler!r} needs dask.distributed, which is not installed; "
                              "pip install 'dualmap[distributed]'") from None
        return ProcessBackend(workers, "dask not installed")
    return DaskBackend(scheduler, workers)
