"""Sweep throughput (issue 6): the same grid of small real studies on a dask LocalCluster of 1 and 2 workers.

    python benchmarks/sweep.py                 # 16 runs, 3 repetitions per worker count
    python benchmarks/sweep.py --repeats 1     # quicker

Each repetition runs the whole grid into a fresh folder (nothing to skip), so the wall time includes the
cluster start-up and every worker's first import of dualmap/torch. Runs per minute = runs / wall time × 60;
the median over repetitions is reported, and the same rate without the start-up. Worker counts alternate
(1, 2, 1, 2, ...) so that drift in the machine's load hits both alike. The result goes to
``benchmarks/results/sweep_throughput.json`` and a line per worker count to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dualmap.study.sweep import run_sweep

sys.path.insert(0, str(Path(__file__).parent))
from forward_map import environment as forward_map_environment  # noqa: E402

RESULTS = Path(__file__).parent / "results"

GRID = {
    "base": {"train": {"epochs": 40, "checkpoints": 5}, "track": {"enabled": True},
             "refine": {"enabled": False}, "report": {"figures": False}},
    "grid": {"dataset.name": ["breast_cancer", "digits"], "network.width": [32, 64], "seed": [0, 1, 2, 3]},
}


def environment() -> dict:
    """The forward-map benchmark's record of the machine, with the Dask versions and the machine's core count."""
    import dask
    import distributed

    record = forward_map_environment()
    record.update(cores=os.cpu_count(), dask=dask.__version__, distributed=distributed.__version__)
    return record


def one_sweep(workers: int, root: Path) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"sweep-{workers}w-", dir=root))
    started = time.perf_counter()
    result = run_sweep(GRID, out, workers=workers, progress=False, figures=False)
    wall = time.perf_counter() - started
    summary = json.loads((out / "sweep.json").read_text())
    runs = result.finished + result.skipped + result.failed
    if result.failed or result.skipped:
        raise RuntimeError(f"benchmark sweep had {result.failed} failed and {result.skipped} skipped runs")
    shutil.rmtree(out)
    return {"workers": workers, "runs": runs, "wall_seconds": wall, "startup_seconds": summary["startup_seconds"],
            "runs_per_minute": runs / wall * 60,
            "runs_per_minute_after_startup": runs / (wall - summary["startup_seconds"]) * 60,
            "run_seconds_sum": sum(summary["run_seconds"].values()), "backend": result.backend}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--note", default="", help="conditions worth recording (e.g. other jobs running)")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()

    root = Path(tempfile.mkdtemp(prefix="dualmap-sweep-bench-"))
    repetitions = []
    try:
        for repeat in range(args.repeats):
            for workers in args.workers:
                record = one_sweep(workers, root)
                record["repeat"] = repeat
                repetitions.append(record)
                print(f"repeat {repeat}, {workers} worker(s): {record['runs']} runs in {record['wall_seconds']:.1f} s "
                      f"(start-up {record['startup_seconds']:.1f} s) = {record['runs_per_minute']:.1f} runs/min",
                      file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    summary = {}
    for workers in args.workers:
        mine = [r for r in repetitions if r["workers"] == workers]
        summary[str(workers)] = {
            "median_runs_per_minute": statistics.median(r["runs_per_minute"] for r in mine),
            "median_runs_per_minute_after_startup": statistics.median(r["runs_per_minute_after_startup"]
                                                                      for r in mine),
            "median_wall_seconds": statistics.median(r["wall_seconds"] for r in mine),
            "median_startup_seconds": statistics.median(r["startup_seconds"] for r in mine),
        }
    if "1" in summary and "2" in summary:
        summary["ratio_2_over_1"] = summary["2"]["median_runs_per_minute"] / summary["1"]["median_runs_per_minute"]
        summary["ratio_2_over_1_after_startup"] = (summary["2"]["median_runs_per_minute_after_startup"]
                                                   / summary["1"]["median_runs_per_minute_after_startup"])
    n_runs = repetitions[0]["runs"]
    result = {
        "command": "OMP_NUM_THREADS=1 python " + " ".join(["benchmarks/sweep.py", *(argv or sys.argv[1:])]),
        "environment": environment(),
        "machine": "2 cores, AMD EPYC, no GPU",
        "grid": GRID, "runs_per_sweep": n_runs, "repeats": args.repeats,
        "backend": "dask LocalCluster, threads_per_worker=1, processes=True",
        "load_average_before_after": [list(load_before), list(os.getloadavg())], "note": args.note,
        "summary": summary, "repetitions": repetitions,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "sweep_throughput.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    for workers in args.workers:
        s = summary[str(workers)]
        print(f"{workers} worker(s): median {s['median_runs_per_minute']:.1f} runs/min "
              f"({s['median_runs_per_minute_after_startup']:.1f} after start-up), "
              f"median wall {s['median_wall_seconds']:.1f} s")
    if "ratio_2_over_1" in summary:
        print(f"2 workers / 1 worker: {summary['ratio_2_over_1']:.2f}× "
              f"({summary['ratio_2_over_1_after_startup']:.2f}× after start-up)")
    print(f"→ {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
