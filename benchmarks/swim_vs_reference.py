"""Side-by-side benchmark: dualmap's SWIM sampler vs the reference package ``swimnetworks`` 0.0.2 (issue 2).

For every setting (data set, activation, width) and every seed, both packages fit a one-hidden-layer
SWIM network on the *same* train/test split (``dm.load_dataset(name, seed=0)``) and are scored on the
same test set (accuracy; R² for ``diabetes``).

* dualmap runs with its defaults (``alpha="auto"`` GCV ridge, float32 features, float64 readout).
* The reference runs as ``Pipeline([Dense(...), Linear(regularization_scale=rcond)])``. Its readout is
  ``np.linalg.lstsq`` with the SVD cutoff ``rcond``, and its accuracy depends strongly on that cutoff, so it
  is run for every ``rcond`` of a grid and its *best mean test score* over the grid is reported (selected
  on the test set: generous to the reference). Time and memory are those of the runs at that best rcond.

Measurement: every single fit runs in a fresh Python process (this script re-invoked with ``--worker``).
The worker loads the data (pre-split arrays saved as ``.npy`` by the parent, so the reference's worker
never imports torch) and does a tiny warm-up fit of the same package (20 points, width 4: loads lazily
imported code, starts the BLAS threads). Then it resets the process's peak-RSS counter
(``echo 5 > /proc/self/clear_refs``), records the current RSS (``VmRSS``), times only ``fit`` with
``time.perf_counter``, reads the high-water mark ``VmHWM`` and ``getrusage(RUSAGE_SELF).ru_maxrss`` right
after ``fit``, and only then scores the test set. Then it repeats the fit (same seed, timing only) up
to ``--repeats`` fits in all (default 3) while the fits so far took less than ``--repeat-budget`` seconds
(default 60; so the 30-s Fashion-MNIST-60k fits run twice); the run's time is its fastest fit, which damps
the noise of a shared machine. A setting's time is the median over seeds of these per-run times. Reported
memory: ``peak − RSS before fit`` (what the fit adds) and the absolute peak during fit (libraries + data +
fit). The peak is ``VmHWM``, not ``ru_maxrss``: in a child process ``ru_maxrss`` never drops below the
parent's RSS at ``fork`` (see ``_worker``).
The packages are interleaved (reference seed 0 at each rcond, dualmap seed 0, reference seed 1, …) so that
both see the same machine load. Because a second user on a 2-core machine wrecks BLAS timings (two BLAS
threads on one free core slow a fit down 10–70×), the parent waits before each run until other processes
use < ``--quiet-threshold`` cores (from ``/proc/stat``), measures the CPU others used during the run, and
reruns a disturbed run (``--retries``); each record keeps ``foreign_cores_during_run``.

Usage::

    python benchmarks/swim_vs_reference.py                      # everything (long: Fashion-MNIST 60k)
    python benchmarks/swim_vs_reference.py --quick              # digits settings, seed 0 only
    python benchmarks/swim_vs_reference.py --settings 'digits-*' diabetes-tanh-64
    python benchmarks/swim_vs_reference.py --report benchmarks/results/swim_vs_reference.json

Raw results go to ``benchmarks/results/swim_vs_reference[_quick].json`` (``--output`` to change), the
markdown table to the same path with ``.md``; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import fnmatch
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"

RCOND_GRID = (1e-10, 1e-6, 1e-3)
RCOND_GRID_DIABETES = (1e-10, 1e-6, 1e-3, 1e-1)
RCOND_FASHION = (1e-6,)  # the research notes found 1e-6 best there; a grid would cost minutes per fit

# name -> (dataset, n_train, activation, width, reference rcond grid)
SETTINGS = {
    "digits-tanh-512": ("digits", None, "tanh", 512, RCOND_GRID),
    "digits-tanh-2048": ("digits", None, "tanh", 2048, RCOND_GRID),
    "digits-relu-512": ("digits", None, "relu", 512, RCOND_GRID),
    "digits-relu-2048": ("digits", None, "relu", 2048, RCOND_GRID),
    "breast_cancer-tanh-512": ("breast_cancer", None, "tanh", 512, RCOND_GRID),
    "diabetes-tanh-64": ("diabetes", None, "tanh", 64, RCOND_GRID_DIABETES),
    "diabetes-tanh-512": ("diabetes", None, "tanh", 512, RCOND_GRID_DIABETES),
    "fashion10k-tanh-1024": ("fashion_mnist", 10_000, "tanh", 1024, RCOND_FASHION),
    "fashion60k-tanh-2048": ("fashion_mnist", None, "tanh", 2048, RCOND_FASHION),
}
DATA_SEED = 0
SEEDS = (0, 1, 2)
WORKER_TIMEOUT_S = 3600


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- worker (one fit per process)
def _status_kib(field: str) -> int:
    """``VmRSS`` (current) or ``VmHWM`` (peak since start or the last reset) of this process, in KiB."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _worker(spec: dict) -> dict:
    import gc
    import resource

    import numpy as np

    data = Path(spec["data_dir"])
    X_train, y_train = np.load(data / "X_train.npy"), np.load(data / "y_train.npy")
    X_test, y_test = np.load(data / "X_test.npy"), np.load(data / "y_test.npy")
    classify = spec["task"] == "classification"
    width, activation, seed = spec["width"], spec["activation"], spec["seed"]

    if spec["package"] == "dualmap":
        import dualmap as dm

        dualmap_file = dm.__file__
        estimator = dm.SWIMClassifier if classify else dm.SWIMRegressor

        def make(w):
            return estimator(layer_widths=(w,), activation=activation, random_state=seed)

        def score(model):
            return float(model.score(X_test, y_test))
    else:
        from sklearn.metrics import r2_score
        from sklearn.pipeline import Pipeline
        from swimnetworks import Dense, Linear

        def make(w):
            return Pipeline([
                ("dense", Dense(layer_width=w, activation=activation, parameter_sampler=activation,
                                random_seed=seed, is_classifier=classify)),
                ("linear", Linear(regularization_scale=spec["rcond"], is_classifier=classify)),
            ])

        def score(model):
            prediction = model.transform(X_test)
            if classify:  # Linear(is_classifier=True) returns the labels, shape (N, 1)
                return float(np.mean(prediction.ravel() == y_test))
            return float(r2_score(y_test, prediction.reshape(y_test.shape)))

    # tiny warm-up fit of the same package: imports lazily loaded code, starts the BLAS threads
    warm = np.linspace(0, len(X_train) - 1, 20).astype(int)
    make(4).fit(X_train[warm], y_train[warm])

    gc.collect()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss of a child is max(signal->maxrss, mm high-water mark), and the kernel sets signal->maxrss
    # at exec to the RSS of the pre-exec image, i.e. the forked parent (~300 MiB once it imported torch):
    # a child's ru_maxrss can never go below that. So the peak is read from the mm high-water mark VmHWM,
    # reset to the current RSS right before fit by writing "5" to /proc/self/clear_refs (Linux >= 4.0).
    # Both are recorded; ru_maxrss is the fallback if the reset is not possible.
    peak_reset = _reset_peak()
    rss_before = _status_kib("VmRSS")
    model = make(width)
    start = time.perf_counter()
    model.fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    hwm_after = _status_kib("VmHWM")
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_after = hwm_after if peak_reset else maxrss_after
    test_score = score(model)
    alpha = float(model.alpha_) if spec["package"] == "dualmap" else None
    # extra timing-only fits (same seed, same result), to damp the noise of a shared 2-core machine: the
    # time reported for this run is the fastest fit (as timeit); memory is from the first fit only
    del model
    gc.collect()
    fit_times = [fit_s]
    while len(fit_times) < spec.get("repeats", 1) and sum(fit_times) < spec.get("repeat_budget_s", 0):
        model = make(width)
        start = time.perf_counter()
        model.fit(X_train, y_train)
        fit_times.append(time.perf_counter() - start)
        del model
        gc.collect()
    result = {
        "fit_s": min(fit_times),
        "first_fit_s": fit_s,
        "fit_times_s": fit_times,
        "rss_before_fit_mib": rss_before / 1024,
        "peak_mib": peak_after / 1024,
        "fit_peak_delta_mib": (peak_after - rss_before) / 1024,
        "vmhwm_after_fit_mib": hwm_after / 1024,
        "ru_maxrss_before_fit_mib": maxrss_before / 1024,
        "ru_maxrss_after_fit_mib": maxrss_after / 1024,
        "peak_reset_before_fit": peak_reset,
        # without the reset, a fit whose peak stays below an earlier peak is hidden
        "peak_set_during_fit": peak_reset or maxrss_after > maxrss_before,
        "test_score": test_score,
    }
    if spec["package"] == "dualmap":
        result["alpha"] = alpha
        result["dualmap_file"] = dualmap_file
        expected = spec.get("dualmap_path")
        if expected and not dualmap_file.startswith(expected):
            raise RuntimeError(f"imported dualmap from {dualmap_file}, expected the snapshot in {expected}")
        result.update(_floor(X_train, width, len(fit_times)))
    return result


def _floor(X_train, width: int, repeats: int) -> dict:
    """Time the two GEMMs no SWIM fit can avoid, on this fit's shapes, in the worker's conditions (issue 15).

    * features: ``X·Wᵀ + b`` in float32 (torch ``addmm``, as dualmap computes them);
    * Gram: ``H_cᵀ H_c`` (n ≥ width) or ``H_c H_cᵀ`` (n < width) of float64 features (BLAS ``dsyrk``, as
      dualmap's readout; a float32 Gram breaks the GCV choice, see ``dualmap.swim.readout``). The float32
      ``syrk`` is timed too, for reference.

    Each is the fastest of ``repeats`` runs.
    """
    import numpy as np
    import torch
    from scipy.linalg import blas

    X = torch.as_tensor(X_train, dtype=torch.float32)
    weight = torch.as_tensor(np.random.default_rng(0).normal(size=(width, X.shape[1])) / np.sqrt(X.shape[1]),
                             dtype=torch.float32)
    bias = torch.zeros(width)

    def fastest(function):
        times = []
        for _ in range(max(1, repeats)):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
        return min(times)

    features_s = fastest(lambda: torch.addmm(bias, X, weight.T))
    H = torch.addmm(bias, X, weight.T).tanh_().numpy()
    H = H - H.mean(axis=0)
    H64 = H.astype(np.float64)
    dual = H.shape[0] < width
    # H.T is Fortran-contiguous: no copy; trans=0 gives H_cᵀH_c, trans=1 gives H_c H_cᵀ
    gram_s = fastest(lambda: blas.dsyrk(1.0, H64.T, trans=1 if dual else 0))
    gram32_s = fastest(lambda: blas.ssyrk(1.0, H.T, trans=1 if dual else 0))
    return {"floor_features_s": features_s, "floor_gram64_s": gram_s, "floor_gram32_s": gram32_s,
            "floor_s": features_s + gram_s, "gram_form": "dual" if dual else "primal"}


# --------------------------------------------------------------------------- parent
def _prepare_data(dataset: str, n_train, folder: Path) -> dict:
    import numpy as np

    import dualmap as dm

    ds = dm.load_dataset(dataset, seed=DATA_SEED, n_train=n_train)
    folder.mkdir(parents=True, exist_ok=True)
    for key in ("X_train", "y_train", "X_test", "y_test"):
        np.save(folder / f"{key}.npy", np.ascontiguousarray(getattr(ds, key)))
    return {"task": ds.task, "n_train": int(ds.X_train.shape[0]), "n_test": int(ds.X_test.shape[0]),
            "n_features": int(ds.X_train.shape[1])}


def _cpu_busy_s() -> float:
    """CPU seconds spent busy (all cores, all processes) since boot, from /proc/stat."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _foreign_cores(seconds: float = 1.0) -> float:
    """Average number of cores kept busy by *other* processes over ``seconds`` (this process sleeps)."""
    before, start = _cpu_busy_s(), time.perf_counter()
    time.sleep(seconds)
    return (_cpu_busy_s() - before) / (time.perf_counter() - start)


def _wait_until_quiet(threshold: float, max_wait_s: float) -> float:
    """Wait (up to ``max_wait_s``) until other processes use less than ``threshold`` cores; return the wait."""
    start = time.perf_counter()
    busy = _foreign_cores()
    announced = False
    while busy > threshold and time.perf_counter() - start < max_wait_s:
        if not announced:
            log(f"   machine busy ({busy:.2f} cores used by other processes); waiting for it to calm down …")
            announced = True
        time.sleep(5.0)
        busy = _foreign_cores()
    return time.perf_counter() - start


def _snapshot_dualmap(source: str, folder: Path) -> dict:
    """Make the dualmap to benchmark importable from a fixed copy; return how it was made.

    ``source="head"`` (default) extracts ``src/dualmap`` of the git commit HEAD into ``folder`` and puts it
    first on ``sys.path`` here and on ``PYTHONPATH`` for the workers, so that the whole run measures one
    consistent version even while someone edits ``src/`` (a half-edited tree broke an earlier run).
    ``source="worktree"`` uses the installed (editable) working tree as it is.
    """
    if source == "worktree":
        return {"source": "worktree", "path": str(REPO / "src")}
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO,
                            check=True).stdout.strip()
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", "--format=tar", commit, "src/dualmap"], capture_output=True,
                             cwd=REPO, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    path = str(folder / "src")
    sys.path.insert(0, path)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [path, os.environ.get("PYTHONPATH")]))
    changed = subprocess.run(["git", "status", "--porcelain", "--", "src/dualmap"], capture_output=True,
                             text=True, cwd=REPO).stdout.split("\n")
    return {"source": "head", "commit": commit, "path": path,
            "worktree_src_differs_from_head": [line[3:] for line in changed if line]}


def _run_worker(spec: dict, quiet: dict) -> dict:
    """Run one fit in a fresh process; if other processes took CPU during it, wait and run it again."""
    for attempt in range(quiet["retries"] + 1):
        waited = _wait_until_quiet(quiet["threshold"], quiet["max_wait_s"])
        load = os.getloadavg()[0]
        busy0, children0 = _cpu_busy_s(), resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
                              capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, cwd=REPO)
        wall = time.perf_counter() - start
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
        if proc.returncode != 0:
            raise RuntimeError(f"worker failed ({spec}):\n{proc.stderr[-4000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        # CPU time that other processes (not the worker, not this parent's idle wait) used while it ran
        foreign = max(0.0, (_cpu_busy_s() - busy0) - own) / wall
        result.update(loadavg_1min_at_start=load, waited_for_quiet_s=waited, foreign_cores_during_run=foreign,
                      attempt=attempt)
        if foreign <= quiet["threshold"]:
            break
        log(f"   other processes used {foreign:.2f} cores during this run; "
            f"{'running it again' if attempt < quiet['retries'] else 'keeping it (no retries left)'}")
    return result


def _environment() -> dict:
    from importlib.metadata import version

    import numpy
    import scipy
    import sklearn
    import swimnetworks  # noqa: F401
    import torch

    cpu = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break

    def git(*args):
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO).stdout.rstrip()
        except OSError:
            return ""

    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "gpu": "cuda" if torch.cuda.is_available() else "no GPU",
        "torch_threads": torch.get_num_threads(),
        "thread_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
        "loadavg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "versions": {"dualmap": version("dualmap"), "swimnetworks": version("swimnetworks"),
                     "torch": torch.__version__, "numpy": numpy.__version__, "scipy": scipy.__version__,
                     "scikit-learn": sklearn.__version__},
        "git_commit": git("rev-parse", "--short", "HEAD").strip(),
        "git_dirty_files": [line[3:] for line in git("status", "--porcelain").splitlines() if line],
    }


def _select(patterns, quick: bool) -> list[str]:
    names = list(SETTINGS)
    if quick:
        names = [n for n in names if SETTINGS[n][0] == "digits"]
    if patterns:
        chosen = [n for n in names if any(fnmatch.fnmatch(n, p) or p in n for p in patterns)]
        if not chosen:
            raise SystemExit(f"--settings {patterns} matches none of {names}")
        names = chosen
    return names


def run(names, seeds, output: Path, command: str, repeats: int = 3, repeat_budget_s: float = 60.0,
        quiet: dict | None = None, dualmap_source: str = "head") -> dict:
    quiet = quiet or {"threshold": 0.25, "max_wait_s": 900.0, "retries": 2}
    tmp = Path(tempfile.mkdtemp(prefix="swimbench-"))
    try:
        return _run(names, seeds, output, command, repeats, repeat_budget_s, quiet, dualmap_source, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(names, seeds, output, command, repeats, repeat_budget_s, quiet, dualmap_source, tmp) -> dict:
    snapshot = _snapshot_dualmap(dualmap_source, tmp / "dualmap-snapshot")
    log(f"dualmap from {snapshot}")
    env = _environment()
    env["dualmap_snapshot"] = snapshot
    log(f"environment: {env['cpu']}, nproc={env['nproc']}, {env['gpu']}, versions={env['versions']}")
    results = {"command": command, "environment": env, "data_seed": DATA_SEED, "seeds": list(seeds),
               "repeats": repeats, "repeat_budget_s": repeat_budget_s, "quiet": quiet, "settings": {}}
    prepared = {}
    for name in names:
        dataset, n_train, activation, width, rconds = SETTINGS[name]
        key = (dataset, n_train)
        if key not in prepared:
            folder = tmp / f"{dataset}-{n_train}"
            log(f"loading {dataset} (n_train={n_train}) …")
            prepared[key] = (folder, _prepare_data(dataset, n_train, folder))
        folder, meta = prepared[key]
        entry = {"dataset": dataset, "activation": activation, "width": width, "rconds": list(rconds),
                 **meta, "runs": []}
        results["settings"][name] = entry
        log(f"== {name}: {meta}")
        base = {"data_dir": str(folder), "task": meta["task"], "width": width, "activation": activation,
                "dualmap_path": snapshot["path"],
                "repeats": repeats, "repeat_budget_s": repeat_budget_s}
        for seed in seeds:
            jobs = [dict(base, package="reference", seed=seed, rcond=r) for r in rconds]
            jobs.append(dict(base, package="dualmap", seed=seed, rcond=None))
            for spec in jobs:
                outcome = _run_worker(spec, quiet)
                record = {k: spec[k] for k in ("package", "seed", "rcond")} | outcome
                entry["runs"].append(record)
                log(f"   {name} {spec['package']:9s} seed={seed} rcond={spec['rcond']}: "
                    f"score={outcome['test_score']:.4f} fit={outcome['fit_s']:.2f}s "
                    f"(all: {', '.join(f'{t:.2f}' for t in outcome['fit_times_s'])}) "
                    f"Δpeak={outcome['fit_peak_delta_mib']:.0f}MiB peak={outcome['peak_mib']:.0f}MiB "
                    f"load={outcome['loadavg_1min_at_start']:.2f} "
                    f"others={outcome['foreign_cores_during_run']:.2f} cores")
            output.write_text(json.dumps(results, indent=1))  # keep partial results
    results["environment"]["finished"] = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    results["environment"]["loadavg_at_end"] = os.getloadavg()
    output.write_text(json.dumps(results, indent=1))
    return results


# --------------------------------------------------------------------------- summary
def summarise(results: dict) -> list[dict]:
    rows = []
    for name, entry in results["settings"].items():
        runs = entry["runs"]
        dm_runs = [r for r in runs if r["package"] == "dualmap"]
        by_rcond = {}
        for r in runs:
            if r["package"] == "reference":
                by_rcond.setdefault(r["rcond"], []).append(r)
        if not dm_runs or not by_rcond:
            continue
        ref_means = {rc: statistics.fmean(r["test_score"] for r in rs) for rc, rs in by_rcond.items()}
        best = max(ref_means, key=ref_means.get)
        ref_runs = by_rcond[best]

        def agg(rs):
            return {"score": statistics.fmean(r["test_score"] for r in rs),
                    "score_min": min(r["test_score"] for r in rs),
                    "score_max": max(r["test_score"] for r in rs),
                    "fit_s": statistics.median(r["fit_s"] for r in rs),
                    "first_fit_s": statistics.median(r.get("first_fit_s", r["fit_s"]) for r in rs),
                    "foreign_cores_max": max(r.get("foreign_cores_during_run", float("nan")) for r in rs),
                    "delta_mib": max(r["fit_peak_delta_mib"] for r in rs),
                    "peak_mib": max(r["peak_mib"] for r in rs),
                    "peak_hidden": any(not r["peak_set_during_fit"] for r in rs),
                    "n": len(rs)}

        def floor(rs):
            keys = ("floor_s", "floor_features_s", "floor_gram64_s", "floor_gram32_s")
            if not all(k in r for r in rs for k in keys):
                return None
            return {k: statistics.median(r[k] for r in rs) for k in keys} | {"gram_form": rs[0]["gram_form"]}

        rows.append({"setting": name, "dataset": entry["dataset"], "task": entry["task"],
                     "n_train": entry["n_train"], "best_rcond": best, "ref_scores_by_rcond": ref_means,
                     "dualmap": agg(dm_runs), "reference": agg(ref_runs),
                     "dualmap_alpha": statistics.median(r["alpha"] for r in dm_runs), "floor": floor(dm_runs)})
    return rows


def markdown(results: dict) -> str:
    rows = summarise(results)
    lines = [
        "| setting | n_train | metric | dualmap | reference (best rcond) | Δ (points) | fit s dualmap / ref | "
        "time ratio | first-fit ratio | Δpeak MiB dualmap / ref | Δpeak ratio | abs peak MiB dualmap / ref | "
        "abs ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        d, r = row["dualmap"], row["reference"]
        metric = "R²" if row["task"] == "regression" else "acc"
        diff = 100 * (d["score"] - r["score"])
        lines.append(
            f"| {row['setting']} | {row['n_train']} | {metric} | {d['score']:.4f} | {r['score']:.4f} "
            f"({row['best_rcond']:g}) | {diff:+.2f} | {d['fit_s']:.3f} / {r['fit_s']:.3f} | "
            f"**{d['fit_s'] / r['fit_s']:.2f}** | {d['first_fit_s'] / r['first_fit_s']:.2f} | "
            f"{d['delta_mib']:.0f} / {r['delta_mib']:.0f} | "
            f"**{d['delta_mib'] / max(r['delta_mib'], 1e-9):.2f}** | {d['peak_mib']:.0f} / {r['peak_mib']:.0f} | "
            f"{d['peak_mib'] / r['peak_mib']:.2f} |"
        )
    lines += ["", "Columns: scores are means over seeds; *fit s* is the median over seeds of each run's fastest fit "
                  "(best of up to 3), *first-fit ratio* the same ratio for the first fit of each fresh process; "
                  "Δpeak = peak RSS during fit − RSS before fit, *abs peak* = peak RSS during fit (max over seeds); "
                  "ratios are dualmap / reference; Δ (points) = 100 × (dualmap − reference).",
              "", "Reference test score per rcond (mean over seeds):", ""]
    for row in rows:
        grid = ", ".join(f"{rc:g}: {s:.4f}" for rc, s in sorted(row["ref_scores_by_rcond"].items()))
        lines.append(f"- {row['setting']}: {grid}; dualmap GCV α (median) = {row['dualmap_alpha']:.3g}")
    floors = [row for row in rows if row["floor"]]
    if floors:
        lines += ["", "Floor (issue 15): the two GEMMs a fit cannot avoid, timed in dualmap's worker after its fits "
                      "(fastest of as many runs as fits; median over seeds): features `X·Wᵀ` (float32) and the "
                      "float64 Gram (`dsyrk`; dual `H_c H_cᵀ` when n < width); float32 `ssyrk` for reference.", "",
                  "| setting | Gram form | features s | Gram f64 s | floor s | dualmap fit s | fit / floor | "
                  "Gram f32 s |", "|---|---|---|---|---|---|---|---|"]
        for row in floors:
            f, fit = row["floor"], row["dualmap"]["fit_s"]
            lines.append(f"| {row['setting']} | {f['gram_form']} | {f['floor_features_s']:.3f} | "
                         f"{f['floor_gram64_s']:.3f} | {f['floor_s']:.3f} | {fit:.3f} | **{fit / f['floor_s']:.2f}** | "
                         f"{f['floor_gram32_s']:.3f} |")
    hidden = [row["setting"] for row in rows if row["dualmap"]["peak_hidden"] or row["reference"]["peak_hidden"]]
    if hidden:
        lines += ["", f"Note: in {hidden} the peak RSS did not rise during some fit (the fit's peak is below the "
                      f"warm-up/load peak), so Δpeak there is an upper bound."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the digits settings, seed 0")
    parser.add_argument("--settings", nargs="+", metavar="PATTERN",
                        help=f"run only settings matching these glob patterns/substrings; known: {list(SETTINGS)}")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds (default 0 1 2; 0 with --quick)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="fits per run (the fastest is reported; memory from the first); default 3")
    parser.add_argument("--repeat-budget", type=float, default=60.0, metavar="SECONDS",
                        help="no further repeat once the fits of a run took this long; default 60")
    parser.add_argument("--quiet-threshold", type=float, default=0.25, metavar="CORES",
                        help="wait before each run until other processes use fewer cores than this, and rerun "
                             "a run during which they used more; default 0.25")
    parser.add_argument("--max-wait", type=float, default=900.0, metavar="SECONDS",
                        help="longest wait for a quiet machine before each run; default 900")
    parser.add_argument("--retries", type=int, default=2, help="reruns of a disturbed run; default 2")
    parser.add_argument("--dualmap-source", choices=("head", "worktree"), default="head",
                        help="benchmark dualmap's src/ as committed at git HEAD (a snapshot taken at the start; "
                             "default) or the working tree as it is")
    parser.add_argument("--output", type=Path,
                        help="JSON file (default benchmarks/results/swim_vs_reference[_quick].json)")
    parser.add_argument("--report", type=Path, metavar="JSON", help="only print the table of an existing JSON file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:
        print(json.dumps(_worker(json.loads(args.worker))))
        return
    if args.report is not None:
        print(markdown(json.loads(args.report.read_text())))
        return

    names = _select(args.settings, args.quick)
    seeds = tuple(args.seeds) if args.seeds else ((0,) if args.quick else SEEDS)
    output = args.output or RESULTS / f"swim_vs_reference{'_quick' if args.quick else ''}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python", os.path.relpath(__file__, REPO), *(argv if argv is not None else sys.argv[1:])])
    log(f"settings {names}, seeds {list(seeds)} -> {output}")
    started = time.perf_counter()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the temporary data folder is removed
    quiet = {"threshold": args.quiet_threshold, "max_wait_s": args.max_wait, "retries": args.retries}
    results = run(names, seeds, output, command, repeats=args.repeats, repeat_budget_s=args.repeat_budget,
                  quiet=quiet, dualmap_source=args.dualmap_source)
    table = markdown(results)
    output.with_suffix(".md").write_text(table)
    log(f"done in {time.perf_counter() - started:.0f} s; results in {output}")
    print(table)


if __name__ == "__main__":
    main()
