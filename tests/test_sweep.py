"""dualmap.study.sweep: grid expansion, fan-out over dask workers, failures, resuming, aggregation."""

import csv
import json
import os
import sys
from pathlib import Path

import pytest

from dualmap.study.config import ConfigError
from dualmap.study.folder import FolderError
from dualmap.study.sweep import expand_grid, run_sweep

# a real study in a few seconds (the tests of the pipeline use the same one)
IRIS = {"dataset": {"name": "iris"}, "network": {"widths": [16]}, "train": {"epochs": 3, "checkpoints": 3},
        "track": {"enabled": False}, "refine": {"enabled": False}, "report": {"figures": False}}

# ----------------------------------------------------------------------------- runners
# Module-level, so worker processes import them by name (pytest puts tests/ on sys.path, and spawned
# workers inherit it). They log every call to <sweep out>/calls.log: workers cannot append to a list here.


def _log_call(config, out) -> None:
    from dualmap.study.config import config_hash

    with open(Path(out).parents[1] / "calls.log", "a") as handle:
        handle.write(config_hash(config) + "\n")


def _calls(out) -> list[str]:
    path = Path(out) / "calls.log"
    return path.read_text().split() if path.exists() else []


def fake_runner(config, out, *, progress=True):
    """Instant stand-in for run_study: a complete metrics.json whose numbers depend on width and seed."""
    _log_call(config, out)
    width = config.network.widths[0]
    metrics = {"status": "complete", "stages": {},
               "headline": {"metric": "accuracy", "trained_test_score": 0.5 + width / 100,
                            "converted_test_score": 0.4 + width / 100, "r2_map": 0.9, "gap_closed": width / 64,
                            "fidelity": None, "seconds_total": 0.0}}
    (Path(out) / "metrics.json").write_text(json.dumps(metrics))
    return metrics


def interrupting_runner(config, out, *, progress=True):
    """Like fake_runner, but the 4th call leaves a partial study and raises KeyboardInterrupt (Ctrl-C)."""
    if len(_calls(Path(out).parents[1])) == 3:
        _log_call(config, out)
        (Path(out) / "metrics.json").write_text(json.dumps({"status": "partial", "stages": {}, "headline": {}}))
        raise KeyboardInterrupt
    return fake_runner(config, out)


def real_runner_failing(config, out, *, progress=True):
    """dualmap.study.pipeline.run_study, except that seed 1 with width 16 fails at run time."""
    from dualmap.study.pipeline import run_study

    _log_call(config, out)
    if config.seed == 1 and config.network.widths == [16]:
        raise ValueError("injected failure: seed 1, width 16")
    return run_study(config, out, progress=progress)


def _rows(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# ----------------------------------------------------------------------------- 1. grid expansion
def test_expand_grid_cross_product_and_width_depth_shorthand():
    grid = {"base": {"report": {"figures": False}, "refine": {"enabled": False}},
            "grid": {"dataset.name": ["digits", "wine"], "network.width": [64, 128], "network.depth": [1, 2],
                     "network.activation": ["relu", "tanh"], "convert.method": ["joint", "function"],
                     "seed": [0, 1, 2]}}
    runs, _ = expand_grid(grid)
    assert len(runs) == 2 * 2 * 2 * 2 * 2 * 3
    assert len({run.config_hash for run in runs}) == len(runs)
    for run in runs:
        assert run.config.network.widths == [run.values["network.width"]] * run.values["network.depth"]
        assert run.config.dataset.name == run.values["dataset.name"]
        assert run.config.refine.enabled is False            # the base applies to every run
    assert runs[0].values == {"dataset.name": "digits", "network.width": 64, "network.depth": 1,
                              "network.activation": "relu", "convert.method": "joint", "seed": 0}
    assert runs[1].values["seed"] == 1                       # the last key varies fastest

    # depth alone takes the width of the base; lists of widths are accepted as given
    runs, _ = expand_grid({"base": {"network": {"widths": [32]}}, "grid": {"network.depth": [1, 3]}})
    assert [run.config.network.widths for run in runs] == [[32], [32, 32, 32]]
    runs, _ = expand_grid({"grid": {"network.widths": [[64, 64], [8]]}})
    assert [run.config.network.widths for run in runs] == [[64, 64], [8]]


@pytest.mark.parametrize("grid, named", [
    ({"grid": {"network.widht": [8]}}, "network.widht"),
    ({"grid": {"network.activation": ["relu", "sigmoid"]}}, "network.activation"),
    ({"grid": {"network.width": [8, 0]}}, "network.width"),
    ({"grid": {"train.epochs": [0]}}, "train.epochs"),
    ({"grid": {"seed": 3}}, "seed"),
    ({"grid": {"seed": []}}, "seed"),
    ({"grid": {"seed": [0, 0]}}, "seed"),
    ({"grid": {"network.widths": [[8]], "network.depth": [2]}}, "network.widths"),
    ({"base": {"network": {"widht": [8]}}, "grid": {"seed": [0]}}, "network.widht"),
    ({"grid": {}}, "grid"),
])
def test_expand_grid_rejects_a_bad_key_or_value_naming_it(grid, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        expand_grid(grid)


def test_expand_grid_names_a_bad_grid_point_and_an_unknown_top_level_key(tmp_path):
    # each value is valid alone; the combination is not (thesis maps one ReLU layer only)
    with pytest.raises(ConfigError, match=r"grid point .*convert\.method.*thesis"):
        expand_grid({"grid": {"network.depth": [1, 2], "convert.method": ["thesis"]}})
    with pytest.raises(ConfigError, match=r"'grids'.*allowed: base, grid"):
        expand_grid({"grids": {"seed": [0]}})
    path = tmp_path / "grid.yaml"
    path.write_text("grid:\n  seed: [0, 1]\nrepeat: 3\n")
    with pytest.raises(ConfigError, match=rf"'repeat'.*{path.name}.*allowed: base, grid"):
        expand_grid(path)


def test_a_bad_grid_fails_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match=r"dataset\.name"):
        run_sweep({"grid": {"seed": [0, 1], "dataset.name": ["iris", "no_such_set"]}}, tmp_path,
                  runner=fake_runner, scheduler="synchronous", progress=False)
    assert _calls(tmp_path) == [] and not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------------- 2. a real sweep on dask
@pytest.mark.slow
def test_real_sweep_on_a_local_cluster_records_failures_and_resumes(tmp_path):
    pytest.importorskip("distributed")
    grid = {"base": IRIS, "grid": {"seed": [0, 1], "network.width": [8, 16]}}
    result = run_sweep(grid, tmp_path, workers=2, runner=real_runner_failing, progress=False)
    assert result.backend == "dask LocalCluster (2 workers)"
    assert (result.finished, result.skipped, result.failed) == (3, 0, 1)

    runs, _ = expand_grid(grid)
    failing = next(run.config_hash for run in runs if run.values == {"seed": 1, "network.width": 16})
    error = json.loads((tmp_path / "runs" / failing / "error.json").read_text())
    assert error["error_type"] == "ValueError" and "injected failure" in error["message"]
    assert error["config_hash"] == failing and "real_runner_failing" in error["traceback"]
    assert error["pid"] != os.getpid()                                   # caught and written in the worker
    assert not (tmp_path / "runs" / failing / "metrics.json").exists() or \
        json.loads((tmp_path / "runs" / failing / "metrics.json").read_text())["status"] != "complete"
    for run in runs:
        if run.config_hash != failing:
            metrics = json.loads((tmp_path / "runs" / run.config_hash / "metrics.json").read_text())
            assert metrics["status"] == "complete" and metrics["config_hash"] == run.config_hash
            assert not (tmp_path / "runs" / run.config_hash / "error.json").exists()

    rows = _rows(result.csv)
    assert [row["config_hash"] for row in rows] == [run.config_hash for run in runs]
    assert {row["config_hash"]: row["status"] for row in rows} == {
        run.config_hash: "failed" if run.config_hash == failing else "complete" for run in runs}
    failed_row = next(row for row in rows if row["status"] == "failed")
    assert "injected failure" in failed_row["error"] and failed_row["network.width"] == "16"
    for row in rows:                      # each complete row carries its run's headline, number for number
        if row["status"] != "complete":
            continue
        headline = json.loads((tmp_path / "runs" / row["config_hash"] / "metrics.json").read_text())["headline"]
        assert row["error"] == "" and row["metric"] == headline["metric"] == "accuracy"
        numbers = {key: value for key, value in headline.items() if isinstance(value, float)}
        assert {"trained_test_score", "converted_test_score", "r2_map"} <= set(numbers)
        assert {key: float(row[key]) for key in numbers} == pytest.approx(numbers, rel=1e-9)
        assert 0.0 <= float(row["converted_test_score"]) <= 1.0
    import pyarrow.parquet as pq

    table = pq.read_table(result.parquet)
    assert table.num_rows == 4 and table.column("status").to_pylist() == [row["status"] for row in rows]
    summary = json.loads((tmp_path / "sweep.json").read_text())
    assert summary["failed"] == 1 and len(summary["run_seconds"]) == 4
    assert (tmp_path / "figures" / "gap_closed_vs_width.png").stat().st_size > 0
    assert sorted(_calls(tmp_path)) == sorted(run.config_hash for run in runs)

    # again, with one finished run's metrics.json truncated: only that run and the failed one run again
    truncated = next(run.config_hash for run in runs if run.config_hash != failing)
    path = tmp_path / "runs" / truncated / "metrics.json"
    path.write_text(path.read_text()[:40])
    kept = {run.config_hash: (tmp_path / "runs" / run.config_hash / "metrics.json").stat().st_mtime_ns
            for run in runs if run.config_hash not in (failing, truncated)}
    again = run_sweep(grid, tmp_path, workers=2, runner=real_runner_failing, progress=False)
    assert (again.finished, again.skipped, again.failed) == (1, 2, 1)
    assert sorted(_calls(tmp_path)[4:]) == sorted([failing, truncated])
    assert {h: (tmp_path / "runs" / h / "metrics.json").stat().st_mtime_ns for h in kept} == kept
    assert json.loads(path.read_text())["status"] == "complete"          # recomputed by run_study
    assert (path.parent / "metrics.json.corrupt").exists()              # the unreadable one, set aside
    summary = json.loads((tmp_path / "sweep.json").read_text())
    assert "unreadable (truncated or corrupt" in summary["not_finished_before"][truncated]
    assert "failed before" in summary["not_finished_before"][failing]
    assert [row["status"] for row in again.table].count("failed") == 1
    assert "injected failure" in json.loads((tmp_path / "runs" / failing / "error.json").read_text())["message"]


# ----------------------------------------------------------------------------- 3. interrupted, then resumed
def test_an_interrupted_sweep_resumes_with_only_the_missing_runs(tmp_path):
    grid = {"grid": {"network.width": [8, 16, 32], "seed": [0, 1]}}
    runs, _ = expand_grid(grid)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(grid, tmp_path, runner=interrupting_runner, scheduler="synchronous", progress=False)
    first = _calls(tmp_path)
    assert first == [run.config_hash for run in runs[:4]]
    assert not (tmp_path / "sweep.csv").exists()

    result = run_sweep(grid, tmp_path, runner=fake_runner, scheduler="synchronous", progress=False)
    assert _calls(tmp_path)[4:] == [run.config_hash for run in runs[3:]]    # the interrupted one and the rest
    assert (result.finished, result.skipped, result.failed) == (3, 3, 0)
    summary = json.loads((tmp_path / "sweep.json").read_text())
    assert summary["not_finished_before"] == {runs[3].config_hash: "metrics.json has status 'partial', "
                                                                   "not 'complete'"}
    assert [row["status"] for row in _rows(result.csv)] == ["complete"] * 6

    # a third time: nothing to run, no backend started
    result = run_sweep(grid, tmp_path, runner=fake_runner, progress=False)
    assert (result.finished, result.skipped, result.failed) == (0, 6, 0)
    assert result.backend.startswith("none") and len(_calls(tmp_path)) == 4 + 3


def test_a_failed_run_that_later_succeeds_loses_its_stale_error(tmp_path):
    grid = {"grid": {"seed": [0]}}
    (run,), _ = expand_grid(grid)
    run_dir = tmp_path / "runs" / run.config_hash
    run_dir.mkdir(parents=True)
    (run_dir / "error.json").write_text(json.dumps({"error_type": "RuntimeError", "message": "old"}))
    result = run_sweep(grid, tmp_path, runner=fake_runner, scheduler="synchronous", progress=False)
    assert result.finished == 1 and not (run_dir / "error.json").exists()
    assert result.table[0]["status"] == "complete" and result.table[0]["error"] is None


# ----------------------------------------------------------------------------- 4. without dask
def test_without_dask_runs_on_local_processes_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)          # makes `import distributed` fail
    grid = {"grid": {"network.width": [8, 16]}}
    result = run_sweep(grid, tmp_path, workers=2, runner=fake_runner, progress=True, figures=False)
    assert result.backend == "local processes (dask not installed)"
    assert "running on local processes (dask not installed)" in capsys.readouterr().err
    assert (result.finished, result.failed) == (2, 0) and len(_calls(tmp_path)) == 2
    assert len({line for line in _calls(tmp_path)}) == 2
    with pytest.raises(ImportError, match="needs dask.distributed"):
        run_sweep(grid, tmp_path / "other", scheduler="tcp://127.0.0.1:8786", runner=fake_runner, progress=False)


# ----------------------------------------------------------------------------- 5. corrupt files, table
def test_a_corrupt_metrics_file_means_not_finished_and_is_recomputed(tmp_path):
    grid = {"grid": {"seed": [0, 1]}}
    runs, _ = expand_grid(grid)
    run_sweep(grid, tmp_path, runner=fake_runner, scheduler="synchronous", progress=False)
    path = tmp_path / "runs" / runs[1].config_hash / "metrics.json"
    path.write_text('{"status": "compl')
    result = run_sweep(grid, tmp_path, runner=fake_runner, scheduler="synchronous", progress=False)
    assert (result.finished, result.skipped) == (1, 1)
    assert _calls(tmp_path) == [runs[0].config_hash, runs[1].config_hash, runs[1].config_hash]
    assert json.loads(path.read_text())["status"] == "complete"

    # a run folder whose metrics.json is unreadable and that was never retried shows why in the table
    from dualmap.study.sweep.tables import aggregate

    path.write_text("{")
    table, _ = aggregate(runs, tmp_path / "runs")
    assert table[1]["status"] == "failed"
    assert table[1]["error"].startswith("not finished: metrics.json is unreadable (truncated or corrupt")


def test_table_columns_files_and_parquet_fallback(tmp_path, monkeypatch):
    grid = {"grid": {"network.widths": [[8, 8], [16]], "seed": [0, 1]}}
    for module in ("pyarrow", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, module, None)
    result = run_sweep(grid, tmp_path, runner=fake_runner, scheduler="synchronous", progress=False)
    assert result.parquet is None and not (tmp_path / "sweep.parquet").exists()
    assert any("Parquet skipped: pyarrow is not installed" in note for note in result.notes)
    rows = _rows(result.csv)
    assert [row["network.widths"] for row in rows] == ["8-8", "8-8", "16", "16"]
    assert list(rows[0])[:4] == ["network.widths", "seed", "config_hash", "status"]
    assert rows[0]["fidelity"] == "" and float(rows[2]["trained_test_score"]) == pytest.approx(0.66)
    assert "network.widths" in (tmp_path / "grid.yaml").read_text()
    assert sorted(p.name for p in result.figures) == sorted(
        f"{m}_vs_width.png" for m in ("gap_closed", "r2_map", "trained_test_score", "converted_test_score"))
    leftovers = [p for p in tmp_path.rglob("*.tmp")]
    assert leftovers == []
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(result.csv).st_mode & 0o777 == 0o666 & ~umask     # not mkstemp's 0600


def test_figures_are_skipped_when_the_width_does_not_vary(tmp_path):
    result = run_sweep({"grid": {"seed": [0, 1]}}, tmp_path, runner=fake_runner, scheduler="synchronous",
                       progress=False)
    assert result.figures == [] and not (tmp_path / "figures" / "r2_map_vs_width.png").exists()
    assert any("width does not vary" in note for note in result.notes)
    assert [row["seed"] for row in _rows(result.csv)] == ["0", "1"]


def test_another_grid_is_refused_unless_merged_and_then_the_tables_cover_both(tmp_path):
    first = run_sweep({"grid": {"network.width": [8, 16]}}, tmp_path, runner=fake_runner,
                      scheduler="synchronous", progress=False)
    grid_text = (tmp_path / "grid.yaml").read_text()
    table = (tmp_path / "sweep.csv").read_text()
    with pytest.raises(FolderError, match=r"holds a sweep of another grid \(grid\.yaml\); run with --merge"):
        run_sweep({"grid": {"seed": [0, 1]}}, tmp_path, runner=fake_runner, scheduler="synchronous", progress=False)
    assert (tmp_path / "grid.yaml").read_text() == grid_text and (tmp_path / "sweep.csv").read_text() == table
    assert len(_calls(tmp_path)) == 2                      # nothing ran

    merged = run_sweep({"grid": {"seed": [0, 1]}}, tmp_path, runner=fake_runner, scheduler="synchronous",
                       progress=False, merge=True)
    assert (tmp_path / "grid.yaml").read_text() == grid_text          # the first grid is kept
    assert len(list(tmp_path.glob("grid-*.yaml"))) == 1
    hashes = [row["config_hash"] for row in _rows(merged.csv)]
    assert hashes[:2] == [row["config_hash"] for row in merged.table[:2]] and len(hashes) == 4
    assert {row["config_hash"] for row in first.table} <= set(hashes)  # the earlier runs stay in the table
    assert merged.finished == 2 and len(_calls(tmp_path)) == 4
    # the same grid again is a resume, not a new grid
    again = run_sweep({"grid": {"network.width": [8, 16]}}, tmp_path, runner=fake_runner,
                      scheduler="synchronous", progress=False)
    assert (again.finished, again.skipped) == (0, 2) and len(_rows(again.csv)) == 4


def test_a_sweep_refuses_foreign_folders_and_a_running_sweep(tmp_path):
    from dualmap.study.folder import hold_lock

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "metrics.json").write_text("{}")
    with pytest.raises(FolderError, match="is not empty and was not written by dualmap as a sweep"):
        run_sweep({"grid": {"seed": [0]}}, foreign, runner=fake_runner, scheduler="synchronous", progress=False)
    assert (foreign / "metrics.json").read_text() == "{}" and sorted(p.name for p in foreign.iterdir()) == [
        "metrics.json"]

    busy = tmp_path / "busy"
    run_sweep({"grid": {"seed": [0]}}, busy, runner=fake_runner, scheduler="synchronous", progress=False)
    with hold_lock(busy, "another dualmap sweep"):       # as a second process running in the folder holds it
        with pytest.raises(FolderError, match=r"is in use: another dualmap sweep \(pid \d+"):
            run_sweep({"grid": {"seed": [0]}}, busy, runner=fake_runner, scheduler="synchronous", progress=False)
    run_sweep({"grid": {"seed": [0]}}, busy, runner=fake_runner, scheduler="synchronous", progress=False)  # free


def test_workers_must_be_a_positive_int(tmp_path):
    with pytest.raises(ValueError, match="workers must be an int >= 1; got 0"):
        run_sweep({"grid": {"seed": [0]}}, tmp_path, workers=0, runner=fake_runner)


def sleeping_runner(config, out, *, progress=True):
    """Writes this worker's pid next to the sweep folder, then works for a minute (a long study)."""
    import time

    (Path(out).parents[1] / f"worker-{os.getpid()}.pid").write_text(str(os.getpid()))
    time.sleep(60)
    return fake_runner(config, out)


_SWEEP_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_sweep import sleeping_runner
from dualmap.study.sweep import run_sweep
run_sweep({{"grid": {{"seed": [0, 1, 2]}}}}, {out!r}, workers=1, runner=sleeping_runner, progress=False,
          scheduler={scheduler!r})
"""


@pytest.mark.slow
@pytest.mark.parametrize("scheduler, signal_name", [(None, "SIGKILL"), (None, "SIGTERM"), ("processes", "SIGKILL")])
def test_workers_die_with_the_sweep(tmp_path, scheduler, signal_name):
    """A sweep killed with SIGKILL or SIGTERM takes its worker processes (and dask's nannies) with it."""
    import signal
    import subprocess
    import time

    import psutil

    script = _SWEEP_SCRIPT.format(tests=str(Path(__file__).parent), out=str(tmp_path / "sweep"), scheduler=scheduler)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children = []
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("sweep/worker-*.pid")) and time.monotonic() < deadline:
            assert parent.poll() is None, "the sweep exited before its worker started"
            time.sleep(0.2)
        (pid_file,) = tmp_path.glob("sweep/worker-*.pid")
        worker = int(pid_file.read_text())
        children = [child.pid for child in psutil.Process(parent.pid).children(recursive=True)]
        assert worker in children
        parent.send_signal(getattr(signal, signal_name))
        parent.wait(timeout=30)
        deadline = time.monotonic() + 20
        alive = children
        while alive and time.monotonic() < deadline:
            alive = [pid for pid in alive if psutil.pid_exists(pid)
                     and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
            time.sleep(0.3)
        assert alive == [], f"still running after the sweep was killed with {signal_name}: {alive}"
    finally:                       # never leave this test's own processes behind, whatever failed
        if parent.poll() is None:
            parent.kill()
        for pid in children:
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass


@pytest.mark.slow
def test_a_finished_run_with_a_damaged_file_is_run_again_and_repaired(tmp_path):
    grid = {"base": IRIS, "grid": {"seed": [0, 1]}}
    runs, _ = expand_grid(grid)
    run_sweep(grid, tmp_path, scheduler="synchronous", progress=False)
    damaged = tmp_path / "runs" / runs[1].config_hash / "train_run.npz"
    damaged.write_bytes(damaged.read_bytes()[:100])
    kept = (tmp_path / "runs" / runs[0].config_hash / "train_run.npz").stat().st_mtime_ns
    result = run_sweep(grid, tmp_path, scheduler="synchronous", progress=False)
    assert (result.finished, result.skipped, result.failed) == (1, 1, 0)
    summary = json.loads((tmp_path / "sweep.json").read_text())
    assert "train_run.npz changed or is corrupt" in summary["not_finished_before"][runs[1].config_hash]
    from dualmap.study import Study

    assert Study.open(damaged.parent, progress=False).verify() == {}          # repaired
    assert (tmp_path / "runs" / runs[0].config_hash / "train_run.npz").stat().st_mtime_ns == kept
