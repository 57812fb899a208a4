"""A grid of studies, fanned out over worker processes with ``dask.distributed``.

A *grid file* (YAML, or the same mapping as a dict) has two top-level keys::

    base:                         # optional: a partial study config applied to every run
      report: {figures: false}
      refine: {enabled: false}
    grid:                         # dotted keys -> non-empty lists; the sweep is their cross product
      dataset.name: [digits, wine]
      network.width: [64, 128]    # shorthand: network.width x network.depth -> network.widths = [width] * depth
      network.depth: [1, 2]
      convert.method: [joint, function]
      seed: [0, 1, 2]

Every grid point is a fully resolved :class:`~dualmap.study.config.StudyConfig`; its
:func:`~dualmap.study.config.config_hash` names its folder ``out/runs/<hash>/``. A run is *finished* when
``out/runs/<hash>/metrics.json`` exists and says ``"status": "complete"``; finished runs are never
resubmitted, so a sweep that was stopped part-way (or that failed for some runs) is resumed by running the
same command again. A run that raises is caught in its worker and leaves ``error.json`` (type, message,
traceback, config hash) instead; the other runs go on, and the next sweep retries it.

When every run is done, the sweep writes ``out/sweep.csv`` and ``out/sweep.parquet`` (one row per run: the
grid values, the hash, the status, the headline metrics, the error), ``out/grid.yaml`` (the grid as given),
``out/sweep.json`` (counts, backend, timings) and a few summary figures under ``out/figures/``. Every file
is written atomically (a temporary file in the same folder, then a rename).

Backends: a ``dask.distributed`` ``LocalCluster`` of ``workers`` single-threaded worker processes (the
default), an existing dask scheduler (``scheduler="tcp://host:8786"``; its workers must import ``dualmap``
and see ``out`` on a shared file system), a local process pool when dask is not installed (or
``scheduler="processes"``), or this process one run after another (``scheduler="synchronous"``, for
debugging).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from .._io import atomic_open, json_default, write_text_atomic
from .config import ConfigError, StudyConfig, apply_overrides, config_hash, parse_yaml, validate_config
from .folder import FolderError, claim, hold_lock, read_marker, write_marker

__all__ = ["SweepResult", "SweepRun", "expand_grid", "run_sweep"]

GRID_KEYS = ("base", "grid")
SHORTHAND = ("network.width", "network.depth")
HEADLINE = ("metric", "trained_test_score", "sampled_test_score", "converted_test_score", "fidelity",
            "r2_map", "r2_null_swim", "r2_null_uniform", "gap_closed", "seconds_total")
FIGURE_METRICS = ("gap_closed", "r2_map", "trained_test_score", "converted_test_score")
_MAX_PANELS = 12


# --------------------------------------------------------------------------- grid
@dataclass(frozen=True)
class SweepRun:
    """One grid point: the grid values that define it, its resolved config and its hash.

    Attributes
    ----------
    values : dict
        ``{grid key: value}`` in the grid's key order (the shorthand keys as given).
    config : StudyConfig
        The resolved configuration (base, then the grid values).
    config_hash : str
        :func:`~dualmap.study.config.config_hash` of ``config``; the run's folder name.
    """

    values: dict
    config: StudyConfig
    config_hash: str


def _read_grid(grid) -> tuple[dict, str]:
    """The grid mapping and its text as given (YAML), from a path or a dict."""
    if isinstance(grid, (str, os.PathLike)):
        path = Path(grid)
        if not path.exists():
            raise FileNotFoundError(f"no such grid file: {path}")
        if path.is_dir():
            raise ConfigError(f"{path} is a folder, not a grid YAML file")
        text = path.read_text()
        try:
            data = parse_yaml(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from None
        source = f" in {path}"
    elif isinstance(grid, dict):
        data, source = grid, ""
        text = yaml.safe_dump(grid, sort_keys=False)
    else:
        raise TypeError(f"grid must be a path to a YAML file or a dict; got {type(grid).__name__}")
    if not isinstance(data, dict):
        raise ConfigError(f"a grid file{source} must be a mapping with keys {', '.join(GRID_KEYS)}; "
                          f"got {type(data).__name__}")
    unknown = [key for key in data if key not in GRID_KEYS]
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {', '.join(map(repr, unknown))} in the grid{source}; "
                          f"allowed: {', '.join(GRID_KEYS)}")
    return data, text


def _check_axes(axes) -> dict:
    if not isinstance(axes, dict) or not axes:
        raise ConfigError(f"'grid' must be a non-empty mapping of dotted keys to lists of values "
                          f"(e.g. 'seed: [0, 1]'); got {axes!r}")
    for key, values in axes.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"grid keys must be dotted strings like 'network.activation'; got {key!r}")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid key {key!r} must map to a non-empty list of values; got {values!r}")
        seen = []
        for value in values:
            if value in seen:
                raise ConfigError(f"grid key {key!r} lists the value {value!r} twice")
            seen.append(value)
    if "network.widths" in axes and any(key in axes for key in SHORTHAND):
        raise ConfigError("the grid gives both 'network.widths' and the shorthand "
                          "'network.width'/'network.depth'; use one or the other")
    return axes


def _positive_int(key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}: every value must be an int >= 1 (got {value!r})")
    return value


def _overrides(values: dict, base: StudyConfig) -> dict:
    """Dotted overrides for one grid point; the width/depth shorthand becomes ``network.widths``."""
    overrides = {key: value for key, value in values.items() if key not in SHORTHAND}
    if any(key in values for key in SHORTHAND):
        base_widths = base.network.widths
        if "network.width" in values:
            width = _positive_int("network.width", values["network.width"])
        elif len(set(base_widths)) == 1:
            width = base_widths[0]
        else:
            raise ConfigError(f"grid key 'network.depth' needs 'network.width' in the grid when the base "
                              f"widths differ by layer ({base_widths})")
        depth = (_positive_int("network.depth", values["network.depth"]) if "network.depth" in values
                 else len(base_widths))
        overrides["network.widths"] = [width] * depth
    return overrides


def _with_overrides(base: StudyConfig, values: dict, what: str) -> StudyConfig:
    try:
        return apply_overrides(base, _overrides(values, base))
    except ConfigError as exc:
        detail = str(exc).split("\n", 1)[-1].strip()
        raise ConfigError(f"{what}:\n  {detail}") from None


def expand_grid(grid) -> tuple[list[SweepRun], str]:
    """Expand a grid (YAML path or dict) into its runs, validating every one before anything runs.

    Parameters
    ----------
    grid : str, Path or dict
        A grid file (see the module docstring) or the same mapping.

    Returns
    -------
    runs : list of SweepRun
        The cross product of the grid's lists, the last key varying fastest.
    text : str
        The grid as given (the file's text, or the dict dumped as YAML).

    Raises
    ------
    ConfigError
        For an unknown top-level key, a grid key that is not a non-empty list, a value that does not
        validate (the message names the key and the value), or two grid points with the same config.
    """
    data, text = _read_grid(grid)
    base = validate_config(data.get("base") or {}, source=" in the grid's 'base'")
    axes = _check_axes(data.get("grid"))
    # every value on its own first, so a bad one is named by its key rather than by a whole grid point
    for key, values in axes.items():
        for value in values:
            _with_overrides(base, {key: value}, f"grid key {key!r}, value {value!r} is invalid")
    runs, hashes = [], {}
    for combination in itertools.product(*axes.values()):
        values = dict(zip(axes, combination))
        config = _with_overrides(base, values, f"grid point {values} is invalid")
        digest = config_hash(config)
        if digest in hashes:
            raise ConfigError(f"grid points {hashes[digest]} and {values} resolve to the same configuration "
                              f"(hash {digest}); remove the duplicate value")
        hashes[digest] = values
        runs.append(SweepRun(values=values, config=config, config_hash=digest))
    return runs, text


# --------------------------------------------------------------------------- files
def _write_json_atomic(path: Path, data) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, default=json_default) + "\n")


def _read_json(path: Path) -> tuple[dict | None, str | None]:
    """``(data, None)`` for a readable JSON object, else ``(None, why)``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"no {path.name}"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{path.name} is unreadable (truncated or corrupt: {exc})"
    if not isinstance(data, dict):
        return None, f"{path.name} does not hold a JSON object (got {type(data).__name__})"
    return data, None


def _incomplete(run_dir: Path) -> str | None:
    """None when ``run_dir/metrics.json`` is readable and complete and every file it records is still the one
    its stage wrote (same SHA-256), else why not."""
    metrics, problem = _read_json(run_dir / "metrics.json")
    if metrics is None:
        return problem
    if metrics.get("status") != "complete":
        return f"metrics.json has status {metrics.get('status')!r}, not 'complete'"
    files = metrics.get("files")
    if isinstance(files, dict) and files:
        from .pipeline import file_sha256

        for name, record in files.items():
            path = run_dir / name
            if not path.is_file():
                return f"{name} is missing"
            if not isinstance(record, dict) or file_sha256(path) != record.get("sha256"):
                return f"{name} changed or is corrupt (its content hash differs from metrics.json)"
    return None


def _run_state(run_dir: Path) -> tuple[bool, str]:
    """``(finished, why not)`` for one run folder."""
    why = _incomplete(run_dir)
    if why == "no metrics.json" and (run_dir / "error.json").exists():
        why = "failed before (error.json)"
    return why is None, why or ""


# --------------------------------------------------------------------------- one run (in a worker)
def _default_runner():
    from .pipeline import run_study

    return run_study


def _run_one(runner: Callable, config: StudyConfig, run_dir: str) -> dict:
    """Run one study into ``run_dir``; on an exception write ``error.json`` instead of raising.

    Runs in a worker process. Returns ``{"config_hash", "status", "seconds", "error"}``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    digest = config_hash(config)
    if _incomplete(run_dir) is None:    # dask recomputes a result lost with its worker: never run a study twice
        return {"config_hash": digest, "status": "complete", "seconds": 0.0, "error": None}
    _set_aside_unreadable(run_dir / "metrics.json")
    started = time.perf_counter()
    error = None
    try:
        returned = runner(config, run_dir, progress=False)
        if not (run_dir / "metrics.json").exists() and isinstance(returned, dict):
            _write_json_atomic(run_dir / "metrics.json", returned)
        why = _incomplete(run_dir)
        if why is not None:
            raise RuntimeError(f"the runner returned without a complete metrics.json: {why}")
    except Exception as exc:  # noqa: BLE001 - any failure of one run is recorded, the sweep goes on
        error = _error_record(type(exc).__name__, str(exc), traceback.format_exc(), digest,
                              time.perf_counter() - started)
        _write_json_atomic(run_dir / "error.json", error)
    seconds = time.perf_counter() - started
    if error is None:
        try:
            (run_dir / "error.json").unlink()
        except FileNotFoundError:
            pass
    return {"config_hash": digest, "status": "failed" if error else "complete", "seconds": seconds,
            "error": f"{error['error_type']}: {error['message']}" if error else None}


def _set_aside_unreadable(path: Path) -> None:
    """Rename an unreadable ``metrics.json`` to ``metrics.json.corrupt`` so the runner starts afresh."""
    if path.exists() and _read_json(path)[0] is None:
        os.replace(path, path.with_name(path.name + ".corrupt"))


def _error_record(error_type: str, message: str, trace: str, digest: str, seconds: float | None) -> dict:
    return {"status": "failed", "error_type": error_type, "message": message, "traceback": trace,
            "config_hash": digest, "seconds": seconds,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "pid": os.getpid()}


def _limit_threads(parent_pid: int | None = None) -> None:
    """Initializer of the process-pool workers: one BLAS/torch thread each, as dask's nanny does; and the
    worker exits when the sweep that started it is gone (:func:`watch_parent`)."""
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
    """Exit this process (status 3) as soon as process ``pid`` — the sweep that started it — is gone.

    A daemon thread polls every ``interval`` seconds. It covers what no signal handler can: the sweep killed
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


# --------------------------------------------------------------------------- backends
class _Backend:
    """``submit(fn, *args) -> handle`` and ``completed(handles)`` yielding ``(handle, result, exception)``."""

    name = ""
    workers = 0

    def close(self):
        pass


class _DaskBackend(_Backend):
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


class _ProcessBackend(_Backend):
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


class _SynchronousBackend(_Backend):
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


def _start_backend(scheduler, workers) -> _Backend:
    if scheduler == "synchronous":
        return _SynchronousBackend()
    if scheduler == "processes":
        return _ProcessBackend(workers, f"{workers} worker{'s' if workers != 1 else ''}")
    try:
        import distributed  # noqa: F401
    except ImportError:
        if scheduler is not None:
            raise ImportError(f"scheduler={scheduler!r} needs dask.distributed, which is not installed; "
                              "pip install 'dualmap[distributed]'") from None
        return _ProcessBackend(workers, "dask not installed")
    return _DaskBackend(scheduler, workers)


# --------------------------------------------------------------------------- the sweep
@dataclass
class SweepResult:
    """What :func:`run_sweep` did and where it wrote it.

    ``finished + skipped + failed`` is the number of runs in the grid.

    Attributes
    ----------
    table : list of dict
        One row per run, in grid order: the grid values, ``config_hash``, ``status``
        (``"complete"`` or ``"failed"``), the headline metrics and ``error``.
    finished : int
        Runs that ran and completed in this sweep.
    skipped : int
        Runs that were already finished (``metrics.json`` complete) and were not resubmitted.
    failed : int
        Runs that failed in this sweep (each has ``error.json``).
    csv, parquet : Path or None
        ``out/sweep.csv`` and ``out/sweep.parquet`` (None when pyarrow is not installed; see ``notes``).
    backend : str
        Where the runs ran, e.g. ``"dask LocalCluster (2 workers)"``.
    out : Path
        The sweep folder.
    figures : list of Path
        The summary figures written.
    wall_seconds : float
        Wall time of the whole sweep, backend start-up included.
    notes : list of str
        Anything skipped or worth knowing (Parquet skipped, figures skipped, unreadable files).
    """

    table: list
    finished: int
    skipped: int
    failed: int
    csv: Path
    parquet: Path | None
    backend: str
    out: Path
    figures: list = field(default_factory=list)
    wall_seconds: float = 0.0
    notes: list = field(default_factory=list)


def _say(message: str, progress: bool) -> None:
    if progress:
        print(f"sweep: {message}", file=sys.stderr, flush=True)


def run_sweep(grid, out, *, scheduler: str | None = None, workers: int = 2, runner: Callable | None = None,
              progress: bool = True, figures: bool = True, merge: bool = False) -> SweepResult:
    """Run every study of a grid that is not finished yet, over worker processes, and tabulate them all.

    Parameters
    ----------
    grid : str, Path or dict
        A grid file or mapping with ``base`` (optional partial study config) and ``grid`` (dotted keys to
        lists of values); see the module docstring. Every run is validated before anything runs.
    out : str or Path
        The sweep folder; each run goes to ``out/runs/<config_hash>/``. It must be new, empty, or a sweep
        folder of the same grid (resumed); a folder of another grid is refused unless ``merge``. While the
        sweep runs it holds ``out/.lock``: a second sweep into the same folder is refused.
    scheduler : str, optional
        None: a dask ``LocalCluster`` of ``workers`` processes (a local process pool if dask is not
        installed). An address (``"tcp://host:8786"``): that dask scheduler's workers. ``"processes"``: a
        local process pool without dask. ``"synchronous"``: this process, one run after another.
    workers : int, default=2
        Worker processes of the local cluster or pool (one thread each).
    runner : callable, optional
        ``runner(config, run_dir, progress=False)`` runs one study and writes ``run_dir/metrics.json``
        with ``"status": "complete"`` and a ``"headline"`` dict (default:
        :func:`dualmap.study.pipeline.run_study`). It must be importable by the workers (a module-level
        function, not a lambda or a closure).
    progress : bool, default=True
        A progress bar over completed runs and a line on the backend and the plan (stderr).
    figures : bool, default=True
        Write the summary figures (metric against width) under ``out/figures/``.
    merge : bool, default=False
        Add this grid to a sweep folder that holds another one: its grid file is kept next to the others
        (``grid-<id>.yaml``), a run in both is computed once, and ``sweep.csv`` and the figures cover the
        runs of every grid in the folder.

    Returns
    -------
    SweepResult

    Raises
    ------
    ConfigError
        If the grid or any of its runs is invalid (before anything runs).
    FolderError
        If ``out`` is a file, read-only, holds something else (a study, other files, another grid without
        ``merge``), or another sweep is running in it.
    """
    started = time.perf_counter()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1; got {workers!r}")
    if scheduler is not None and not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be None, a dask scheduler address, 'processes' or 'synchronous'; "
                        f"got {type(scheduler).__name__}")
    runs, grid_text = expand_grid(grid)
    runner = _default_runner() if runner is None else runner
    out = Path(out).resolve()
    marker = claim(out, "sweep", adopt=_adopt_sweep)
    with hold_lock(out, "a dualmap sweep"), _terminate_cleanly():
        marker = read_marker(out) or marker    # again, under the lock: a sweep that just finished may have marked it
        return _sweep(runs, grid_text, marker, out, scheduler, workers, runner, progress, figures, merge, started)


def grid_id(runs: list[SweepRun]) -> str:
    """The identity of a grid: 16 hex digits of SHA-256 over its runs' config hashes (order-free), so two
    files that expand to the same runs are the same grid."""
    import hashlib

    return hashlib.sha256(",".join(sorted(run.config_hash for run in runs)).encode()).hexdigest()[:16]


def _adopt_sweep(folder: Path) -> dict | None:
    """A sweep folder written before folders carried a marker: its ``grid.yaml`` names its grid (a folder with
    only ``runs/<config hash>/`` folders and no grid file is a sweep interrupted before it wrote one)."""
    import re

    if not (folder / "grid.yaml").exists():
        names = {p.name for p in folder.iterdir()}
        runs_dir = folder / "runs"
        if names <= {"runs", "sweep.json", "sweep.csv", "sweep.parquet", "figures"} and runs_dir.is_dir() and all(
                re.fullmatch(r"[0-9a-f]{16}", p.name) for p in runs_dir.iterdir()):
            return {"grids": {}}
        return None
    try:
        runs, _ = expand_grid(folder / "grid.yaml")
    except (FileNotFoundError, ConfigError, TypeError, OSError):
        return None
    return {"grids": {grid_id(runs): "grid.yaml"}}


@contextlib.contextmanager
def _terminate_cleanly():
    """SIGTERM ends the sweep like Ctrl-C does (the backend and its workers are shut down), not abruptly."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _grids_of(out: Path, marker: dict | None, runs: list[SweepRun], grid_text: str, merge: bool,
              progress: bool) -> list[SweepRun]:
    """Record this grid in the folder's marker (refusing another grid unless ``merge``); return the runs of
    every grid in the folder, this grid's first, each run once."""
    this = grid_id(runs)
    grids = dict((marker or {}).get("grids", {}))
    if grids and this not in grids:
        if not merge:
            shown = ", ".join(grids.values())
            raise FolderError(f"{out} holds a sweep of another grid ({shown}); run with --merge (merge=True) to "
                              f"add this grid's {len(runs)} runs to it — the tables then cover every grid — or "
                              "choose another --out folder")
        grids[this] = f"grid-{this[:8]}.yaml"
        _say(f"merging this grid into the sweep of {', '.join(v for k, v in grids.items() if k != this)}", progress)
    elif not grids:
        grids[this] = "grid.yaml"
    write_text_atomic(out / grids[this], grid_text)
    write_marker(out, "sweep", grids=grids)
    every, seen = list(runs), {run.config_hash for run in runs}
    for other, name in grids.items():
        if other == this:
            continue
        try:
            other_runs, _ = expand_grid(out / name)
        except (ConfigError, FileNotFoundError) as exc:
            raise FolderError(f"{out / name} (a grid of this sweep folder) cannot be read: {exc}") from None
        for run in other_runs:
            if run.config_hash not in seen:
                seen.add(run.config_hash)
                every.append(run)
    return every


def _sweep(runs, grid_text, marker, out, scheduler, workers, runner, progress, figures, merge, started):
    runs_dir = out / "runs"
    every = _grids_of(out, marker, runs, grid_text, merge, progress)
    runs_dir.mkdir(parents=True, exist_ok=True)

    todo, not_finished = [], {}
    for run in runs:
        run_dir = runs_dir / run.config_hash
        finished, why = _run_state(run_dir)
        if not finished:
            todo.append(run)
            if run_dir.exists():
                not_finished[run.config_hash] = why
    skipped = len(runs) - len(todo)
    plan = f"{len(runs)} runs: {skipped} already finished, {len(todo)} to run"
    reasons = {}
    for why in not_finished.values():
        reasons[why] = reasons.get(why, 0) + 1
    if reasons:
        plan += " (" + "; ".join(f"{count} × {why}" for why, count in reasons.items()) + ")"
    _say(plan, progress)

    backend_name, n_workers, startup_seconds, executed = "none (every run already finished)", 0, 0.0, {}
    if todo:
        backend_started = time.perf_counter()
        backend = _start_backend(scheduler, workers)
        startup_seconds = time.perf_counter() - backend_started
        backend_name, n_workers = backend.name, backend.workers
        _say(f"running on {backend_name}", progress)
        try:
            executed = _execute(backend, runner, todo, runs_dir, progress)
        finally:
            backend.close()

    table, notes = _aggregate(every, runs_dir)
    failed = sum(1 for result in executed.values() if result["status"] != "complete")
    finished = len(executed) - failed
    csv_path = _write_csv(out / "sweep.csv", table)
    parquet_path = _write_parquet(out / "sweep.parquet", table, notes)
    figure_paths = _summary_figures(every, table, out / "figures", notes) if figures else []
    for metric in FIGURE_METRICS:          # a figure of an earlier grid in the same folder would mislead
        stale = out / "figures" / f"{metric}_vs_width.png"
        if stale not in figure_paths and stale.exists():
            stale.unlink()
    wall = time.perf_counter() - started
    summary = {
        "runs": len(runs), "runs_in_folder": len(every), "finished": finished, "skipped": skipped, "failed": failed,
        "complete": sum(1 for row in table if row["status"] == "complete"),
        "backend": backend_name, "workers": n_workers,
        "wall_seconds": wall, "startup_seconds": startup_seconds,
        "run_seconds": {digest: result["seconds"] for digest, result in executed.items()},
        "not_finished_before": not_finished, "notes": notes,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _write_json_atomic(out / "sweep.json", summary)
    _say(f"{finished} finished, {skipped} skipped, {failed} failed in {wall:.1f} s → {csv_path}", progress)
    for note in notes:
        _say(note, progress)
    return SweepResult(table=table, finished=finished, skipped=skipped, failed=failed, csv=csv_path,
                       parquet=parquet_path, backend=backend_name, out=out, figures=figure_paths,
                       wall_seconds=wall, notes=notes)


def _execute(backend: _Backend, runner, todo: list[SweepRun], runs_dir: Path, progress: bool) -> dict:
    """Submit every run and collect the results as they complete; ``{hash: result}``."""
    from .._progress import progress_bar

    submitted = [(backend.submit(_run_one, runner, run.config, str(runs_dir / run.config_hash),
                                 key=f"dualmap-run-{run.config_hash}"), run) for run in todo]
    run_of = {id(handle): run for handle, run in submitted}
    executed = {}
    with progress_bar(total=len(todo), desc="sweep", disable=not progress, unit="run") as bar:
        for handle, result, exc in backend.completed([handle for handle, _ in submitted]):
            run = run_of[id(handle)]
            if exc is not None:     # the worker could not report: it died, or the task did not unpickle
                error = _error_record(type(exc).__name__, str(exc), "".join(traceback.format_exception(exc)),
                                      run.config_hash, None)
                _write_json_atomic(runs_dir / run.config_hash / "error.json", error)
                result = {"config_hash": run.config_hash, "status": "failed", "seconds": None,
                          "error": f"{type(exc).__name__}: {exc}"}
            executed[run.config_hash] = result
            bar.update(1)
            if result["status"] != "complete" and progress:
                bar.write(f"sweep: run {run.config_hash} {run.values} failed: {result['error']}",
                          file=sys.stderr)
    return executed


# --------------------------------------------------------------------------- the table
def _cell(key: str, value):
    """A grid value as a table cell: ``network.widths`` as ``"64-64"``, other lists/dicts as JSON."""
    if key == "network.widths" and isinstance(value, list):
        return "-".join(str(width) for width in value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return value


def _scalar(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):
        return value.item()
    return json.dumps(value, default=json_default)


def _aggregate(runs: list[SweepRun], runs_dir: Path) -> tuple[list[dict], list[str]]:
    """One row per run of this grid, from its ``metrics.json`` or ``error.json``; and notes."""
    rows, notes = [], []
    for run in runs:
        run_dir = runs_dir / run.config_hash
        row = {key: _cell(key, value) for key, value in run.values.items()}
        row["config_hash"] = run.config_hash
        metrics, problem = _read_json(run_dir / "metrics.json")
        headline, error = {}, None
        if metrics is not None and metrics.get("status") == "complete":
            headline = metrics.get("headline")
            if not isinstance(headline, dict):
                notes.append(f"run {run.config_hash}: metrics.json has no 'headline' mapping")
                headline = {}
        else:
            record, _ = _read_json(run_dir / "error.json")
            if record is not None:
                error = f"{record.get('error_type', 'Error')}: {record.get('message', '')}"
            elif metrics is not None:
                error = f"metrics.json has status {metrics.get('status')!r}, not 'complete'"
            else:
                error = f"not finished: {problem}"
        row["status"] = "failed" if error else "complete"
        rows.append((row, headline, error))
    extra = []                               # headline keys beyond the known ones, in order of appearance
    for _, headline, _ in rows:
        extra.extend(key for key in headline if key not in HEADLINE and key not in extra)
    table = []
    for row, headline, error in rows:
        row.update({key: _scalar(headline.get(key)) for key in (*HEADLINE, *extra)})
        row["error"] = error
        table.append(row)
    return table, notes


def _columns(table: list[dict]) -> list[str]:
    columns = []
    for row in table:
        columns.extend(key for key in row if key not in columns)
    return columns


def _write_csv(path: Path, table: list[dict]) -> Path:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_columns(table), lineterminator="\n")
    writer.writeheader()
    for row in table:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return write_text_atomic(path, buffer.getvalue())


def _write_parquet(path: Path, table: list[dict], notes: list[str]) -> Path | None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        notes.append("Parquet skipped: pyarrow is not installed (pip install 'dualmap[distributed]'); "
                     "the CSV holds the same table")
        return None
    arrays = {}
    for column in _columns(table):
        values = [row.get(column) for row in table]
        try:
            arrays[column] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):     # mixed types in one column: keep them as text
            arrays[column] = pa.array([None if value is None else str(value) for value in values])
    with atomic_open(path, "wb") as handle:
        pq.write_table(pa.table(arrays), handle)
    return path


# --------------------------------------------------------------------------- figures
def _summary_figures(runs: list[SweepRun], table: list[dict], out_dir: Path, notes: list[str]) -> list[Path]:
    """For each headline metric: median (over seeds) against width, a line per convert.method, a panel per
    combination of the other grid keys that vary; a min-max band over seeds."""
    widths = [run.config.network.widths for run in runs]
    if any(len(set(layer_widths)) != 1 for layer_widths in widths):
        notes.append("figures skipped: some runs have hidden layers of different widths")
        return []
    if len({layer_widths[0] for layer_widths in widths}) < 2:
        notes.append("figures skipped: the width does not vary in this grid")
        return []
    grid_keys = list(dict.fromkeys(key for run in runs for key in run.values))
    panel_keys = [key for key in grid_keys if key not in ("seed", "network.width", "network.widths",
                                                          "convert.method")]
    factors = []
    for run in runs:
        panel = {key: _cell(key, run.values.get(key)) for key in panel_keys}
        if "network.widths" in grid_keys:
            panel["network.depth"] = len(run.config.network.widths)
        factors.append(panel)
    varying = [key for key in (factors[0] if factors else {}) if len({str(f[key]) for f in factors}) > 1]
    panels = []
    for factor in factors:
        label = tuple((key, factor[key]) for key in varying)
        if label not in panels:
            panels.append(label)
    if len(panels) > _MAX_PANELS:
        notes.append(f"figures show the first {_MAX_PANELS} of {len(panels)} panels ({', '.join(varying)})")
        panels = panels[:_MAX_PANELS]
    methods = list(dict.fromkeys(run.config.convert.method for run in runs))
    several_seeds = len({run.config.seed for run in runs}) > 1

    from ..report._common import plt, save_figures

    figures = {}
    for metric in FIGURE_METRICS:
        points: dict = {}
        for run, factor, row in zip(runs, factors, table):
            value = row.get(metric)
            if row["status"] != "complete" or not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            label = tuple((key, factor[key]) for key in varying)
            key = (label, run.config.convert.method, run.config.network.widths[0])
            points.setdefault(key, []).append(float(value))
        if not points:
            continue
        n_cols = min(3, len(panels))
        n_rows = math.ceil(len(panels) / n_cols)
        fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.2 * n_rows), squeeze=False)
        for ax, label in zip(axes.flat, panels):
            for method in methods:
                xs = sorted(width for (lab, meth, width) in points if lab == label and meth == method)
                if not xs:
                    continue
                values = [points[(label, method, x)] for x in xs]
                line, = ax.plot(xs, [float(statistics.median(v)) for v in values], marker="o", label=method)
                if several_seeds:
                    ax.fill_between(xs, [min(v) for v in values], [max(v) for v in values],
                                    color=line.get_color(), alpha=0.2)
            ax.set_xscale("log", base=2)
            xs_all = sorted({run.config.network.widths[0] for run in runs})
            ax.set_xticks(xs_all, [str(x) for x in xs_all])
            ax.set_xlabel("hidden width")
            ax.set_ylabel(metric)
            ax.set_title(", ".join(f"{key}={value}" for key, value in label) or metric, fontsize=9)
            ax.grid(alpha=0.3)
            if ax is axes.flat[0] and ax.get_legend_handles_labels()[0]:
                ax.legend(title="convert.method", fontsize=8, title_fontsize=8)
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        band = " (median over seeds; band: min–max)" if several_seeds else ""
        fig.suptitle(f"{metric} against hidden width{band}", fontsize=10)
        fig.tight_layout()
        figures[f"{metric}_vs_width"] = fig
    return save_figures(figures, out_dir, dpi=100)
