"""How many BLAS / OpenMP / torch threads a command uses: never more than the cores it may run on.

OpenMP and OpenBLAS start one thread per CPU the *machine* reports, even in a container or a ``taskset`` that
grants fewer, and even when other jobs already keep the cores busy. Threads that outnumber the free cores
spin against each other: two BLAS threads on one free core slowed a fit down ~70× (BENCHMARKS.md). So a
``dualmap`` command counts the cores it may use (``os.sched_getaffinity``), subtracts the ones other processes
keep busy (the 1-minute load average, rounded), and caps every thread pool it can see (``threadpoolctl``)
and torch at that — at least one thread. ``DUALMAP_THREADS=n`` sets the number explicitly.

Small problems run best on *one* thread whatever the cores (:func:`single_thread_below`): a SWIM fit calls
three thread pools in turn (torch's OpenMP, numpy's and scipy's OpenBLAS), and each pool's threads keep
spinning on the cores after their call while the next pool wants them. On 2 idle cores this made a
digits/512 fit 3× and a diabetes/64 fit 10× slower than on one thread (BENCHMARKS.md, issue 15).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

from threadpoolctl import ThreadpoolController, threadpool_info

__all__ = ["available_cores", "choose_threads", "limit_threads", "thread_report", "single_thread_below",
           "swim_fit_flops", "SMALL_FIT_FLOPS"]

#: Floating-point operations below which a SWIM fit runs on one thread. Measured on 2 idle cores
#: (BENCHMARKS.md, issue 15): digits/512 (5e8) and smaller fits are 1.3–10× faster on one thread; digits/2048
#: (6e9) and Fashion-MNIST 10k/1024 (2e10) are 10–25 % faster on two.
SMALL_FIT_FLOPS = 3e9

_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def choose_threads(cores: int | None = None, load: float | None = None) -> tuple[int, str]:
    """``(threads, why)``: ``DUALMAP_THREADS`` if set, else the cores not kept busy by other processes."""
    explicit = os.environ.get("DUALMAP_THREADS")
    if explicit:
        try:
            threads = int(explicit)
        except ValueError:
            raise ValueError(f"DUALMAP_THREADS must be a positive int; got {explicit!r}") from None
        if threads < 1:
            raise ValueError(f"DUALMAP_THREADS must be a positive int; got {explicit!r}")
        return threads, "DUALMAP_THREADS"
    cores = available_cores() if cores is None else cores
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    busy = int(load + 0.5)
    threads = max(1, min(cores, cores - busy))
    why = f"{cores} core{'s' if cores != 1 else ''}" + (f", load {load:.1f}" if busy else "")
    return threads, why


def thread_report() -> dict:
    """The thread pools loaded now and their sizes (threadpoolctl), torch's threads, and the cores."""
    report = {"cores": available_cores(),
              "pools": [{"api": info.get("user_api"), "library": info.get("internal_api"),
                         "threads": info.get("num_threads")} for info in threadpool_info()]}
    if "torch" in sys.modules:
        report["torch_threads"] = sys.modules["torch"].get_num_threads()
    return report


@contextlib.contextmanager
def limit_threads(threads: int | None = None):
    """Cap BLAS, OpenMP and torch threads at ``threads`` (default :func:`choose_threads`) while the block runs.

    The environment variables are set too (for libraries loaded later, and for worker processes), unless the
    user set them; they are restored afterwards.
    """
    why = "given"
    if threads is None:
        threads, why = choose_threads()
    saved = {name: os.environ.get(name) for name in _ENV}
    for name in _ENV:
        if saved[name] is None:
            os.environ[name] = str(threads)
    os.environ["DUALMAP_THREADS_CHOSEN"] = f"{threads} ({why})"
    capped = _cap(threads, ThreadpoolController())     # the pools loaded now (a CLI run loads more later: env)
    try:
        yield threads
    finally:
        _restore(*capped)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
        os.environ.pop("DUALMAP_THREADS_CHOSEN", None)


def _cap(threads: int, controller: ThreadpoolController):
    """Cap every pool ``controller`` sees, and torch, at ``threads``; return what :func:`_restore` needs.

    torch's count is read first: capping the OpenMP pool changes what ``torch.get_num_threads()`` reports, and a
    count read afterwards would be "restored" as the cap."""
    torch = sys.modules.get("torch")
    torch_before = None if torch is None else torch.get_num_threads()
    limiter = controller.limit(limits=threads)
    if torch_before is None or torch_before <= threads:
        return None, limiter
    torch.set_num_threads(threads)
    return torch_before, limiter


def _restore(torch_before: int | None, limiter) -> None:
    limiter.restore_original_limits()
    if torch_before is not None:
        sys.modules["torch"].set_num_threads(torch_before)


def swim_fit_flops(n_samples: int, n_features: int, widths) -> float:
    """Rough floating-point operations of a SWIM fit: per layer the features ``n·d_l·w_l``; for the readout
    the Gram matrix ``n·w·min(n, w)`` (primal or dual form) and its eigendecomposition ``min(n, w)³``."""
    flops, inputs = 0.0, n_features
    for width in widths:
        flops += float(n_samples) * inputs * width
        inputs = width
    smaller = min(n_samples, inputs)
    return flops + float(n_samples) * inputs * smaller + float(smaller) ** 3


_CONTROLLER = None
_DEPTH = 0      # nested single_thread_below blocks in the main thread: the outermost caps and restores


@contextlib.contextmanager
def single_thread_below(flops: float, threshold: float = SMALL_FIT_FLOPS):
    """Run the block on one thread (every BLAS/OpenMP pool threadpoolctl sees, and torch) when ``flops`` is
    below ``threshold``; otherwise leave the threads as they are (module docstring).

    Only in the main thread: thread counts are process-wide, and a block in one thread that restored them
    while a block in another still ran (or restored a cap as its "before") would leave them wrong for good —
    work in other threads (thread pools, Dask's threaded workers) runs with the threads as they are. Nested
    blocks are fine: the outermost one caps and restores."""
    global _CONTROLLER, _DEPTH
    if flops >= threshold or threading.current_thread() is not threading.main_thread():
        yield
        return
    if _DEPTH == 0 and _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()      # the pools loaded by the time of the first fit (once: ~1 ms)
    saved = _cap(1, _CONTROLLER) if _DEPTH == 0 else None
    _DEPTH += 1
    try:
        yield
    finally:
        _DEPTH -= 1
        if saved is not None:
            _restore(*saved)
