"""Orchestration: :func:`run_sweep` expands the grid, claims and locks the folder, submits the runs that are
not finished to a back-end (src/dualmap/_parallel.py), and writes the table, the summary and the figures."""

from __future__ import annotations

import contextlib
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..._io import write_text_atomic
from ..._parallel import Backend, start_backend
from ..._validation import check_int
from ..config import ConfigError
from ..folder import FolderError, claim, hold_lock, read_marker, write_marker
from .grid import SweepRun, expand_grid, grid_id
from .state import error_record, run_one, run_state, write_json_atomic
from .tables import aggregate, cell, write_csv, write_parquet

__all__ = ["SweepResult", "run_sweep"]


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
        lists of values); see src/dualmap/study/sweep/__init__.py. Every run is validated before anything runs.
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
    check_int(workers, "workers")
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
        finished, why = run_state(run_dir)
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
        backend = start_backend(scheduler, workers)
        startup_seconds = time.perf_counter() - backend_started
        backend_name, n_workers = backend.name, backend.workers
        _say(f"running on {backend_name}", progress)
        try:
            executed = _execute(backend, runner, todo, runs_dir, progress)
        finally:
            backend.close()

    table, notes = aggregate(every, runs_dir)
    failed = sum(1 for result in executed.values() if result["status"] != "complete")
    finished = len(executed) - failed
    csv_path = write_csv(out / "sweep.csv", table)
    parquet_path = write_parquet(out / "sweep.parquet", table, notes)
    figure_paths = _figures(every, table, out / "figures", notes) if figures else []
    for stale in (out / "figures").glob("*_vs_width.png"):  # a figure of an earlier grid here would mislead
        if stale not in figure_paths:
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
    write_json_atomic(out / "sweep.json", summary)
    _say(f"{finished} finished, {skipped} skipped, {failed} failed in {wall:.1f} s → {csv_path}", progress)
    for note in notes:
        _say(note, progress)
    return SweepResult(table=table, finished=finished, skipped=skipped, failed=failed, csv=csv_path,
                       parquet=parquet_path, backend=backend_name, out=out, figures=figure_paths,
                       wall_seconds=wall, notes=notes)


def _execute(backend: Backend, runner, todo: list[SweepRun], runs_dir: Path, progress: bool) -> dict:
    """Submit every run and collect the results as they complete; ``{hash: result}``."""
    from ..._progress import progress_bar

    submitted = [(backend.submit(run_one, runner, run.config, str(runs_dir / run.config_hash),
                                 key=f"dualmap-run-{run.config_hash}"), run) for run in todo]
    run_of = {id(handle): run for handle, run in submitted}
    executed = {}
    with progress_bar(total=len(todo), desc="sweep", disable=not progress, unit="run") as bar:
        for handle, result, exc in backend.completed([handle for handle, _ in submitted]):
            run = run_of[id(handle)]
            if exc is not None:     # the worker could not report: it died, or the task did not unpickle
                error = error_record(type(exc).__name__, str(exc), "".join(traceback.format_exception(exc)),
                                      run.config_hash, None)
                write_json_atomic(runs_dir / run.config_hash / "error.json", error)
                result = {"config_hash": run.config_hash, "status": "failed", "seconds": None,
                          "error": f"{type(exc).__name__}: {exc}"}
            executed[run.config_hash] = result
            bar.update(1)
            if result["status"] != "complete" and progress:
                bar.write(f"sweep: run {run.config_hash} {run.values} failed: {result['error']}",
                          file=sys.stderr)
    return executed


def _default_runner():
    from ..pipeline import run_study

    return run_study


def _figures(runs: list[SweepRun], table: list[dict], out_dir: Path, notes: list[str]) -> list[Path]:
    """The summary figures (src/dualmap/report/sweep_figures.py) of every run in the folder."""
    from ...report.sweep_figures import sweep_figures

    described = [{"values": {key: cell(key, value) for key, value in run.values.items()},
                  "widths": run.config.network.widths, "method": run.config.convert.method, "seed": run.config.seed}
                 for run in runs]
    return sweep_figures(described, table, out_dir, notes)
