"""Wall time of the default study (`dualmap run`, digits) and of each of its stages, quiet and under load.

    python benchmarks/study.py --repeats 3                 # quiet: the default run as a user starts it
    python benchmarks/study.py --repeats 3 --load 2        # and again while 2 busy processes share the cores

Every repetition runs the real command in a fresh folder (a new process, imports included) and reads the
per-stage seconds from its metrics.json. ``--load N`` starts N CPU-bound processes (each a numpy matmul loop
with one BLAS thread, the way another user's job competes for the cores) before the repetitions and stops
them after; the quiet and loaded repetitions alternate, so a drift of the machine's own load hits both. The
1-minute load average and the thread count the command chose are recorded per repetition (other users'
jobs are not under this script's control: check the load before reading a "quiet" number), and so is the
CPU time (user + system) the command used, which other users' load changes much less than the wall time:
on one thread it approximates the wall time on a quiet core. Writes
``benchmarks/results/study_timing.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from forward_map import environment  # noqa: E402

RESULTS = Path(__file__).parent / "results"

_BUSY = ("import os; os.environ['OPENBLAS_NUM_THREADS'] = '1'; import numpy as np\n"
         "a = np.random.default_rng(0).standard_normal((300, 300))\n"
         "while True:\n    a = np.tanh(a @ a.T / 300)\n")


def _run_once(dataset: str, extra: list[str]) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="dualmap-study-"))
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dualmap.cli", "run", "--dataset", dataset, "--out", str(folder / "study"),
                    "--quiet", *extra], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    metrics = json.loads((folder / "study" / "metrics.json").read_text())
    shutil.rmtree(folder)
    stages = {name: record["seconds"] for name, record in metrics["stages"].items()}
    return {"wall_seconds": wall, "cpu_seconds": cpu, "stages": stages, "headline": metrics["headline"],
            "load_before": load_before, "threads": metrics["provenance"].get("threads_chosen")}


def _median(runs: list[dict]) -> dict:
    return {"wall_seconds": float(np.median([r["wall_seconds"] for r in runs])),
            "cpu_seconds": float(np.median([r["cpu_seconds"] for r in runs])),
            "stages": {k: float(np.median([r["stages"][k] for r in runs])) for k in runs[0]["stages"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--load", type=int, default=0, help="also time the run beside N busy processes")
    parser.add_argument("--full-comparison", action="store_true", help="time 'dualmap run --full-comparison'")
    args = parser.parse_args()
    extra = ["--full-comparison"] if args.full_comparison else []
    modes = ["quiet"] + (["load"] if args.load else [])
    runs: dict = {mode: [] for mode in modes}
    for repeat in range(args.repeats):
        for mode in modes:
            busy = []
            if mode == "load":
                busy = [subprocess.Popen([sys.executable, "-c", _BUSY]) for _ in range(args.load)]
                time.sleep(2.0)                       # let them reach full speed
            try:
                run = _run_once(args.dataset, extra)
            finally:
                for process in busy:
                    process.send_signal(signal.SIGTERM)
                    process.wait()
            runs[mode].append(run)
            print(f"run {repeat} {mode}: {run['wall_seconds']:.1f} s wall, {run['cpu_seconds']:.1f} s CPU "
                  f"(load before {run['load_before']:.1f}, "
                  f"threads {run['threads']})  "
                  + "  ".join(f"{k} {v:.1f}" for k, v in run["stages"].items()), flush=True)
            if mode == "load":
                time.sleep(20.0)                      # let the load average fall before the next quiet run
    median = {mode: _median(mode_runs) for mode, mode_runs in runs.items()}
    document = {"command": " ".join(["python", "benchmarks/study.py", *sys.argv[1:]]), "environment": environment(),
                "dataset": args.dataset, "load_processes": args.load, "full_comparison": args.full_comparison,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": runs, "median": median}
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "study_timing_full.json" if args.full_comparison else "study_timing.json"
    (RESULTS / name).write_text(json.dumps(document, indent=1))
    print("median:", json.dumps(median))


if __name__ == "__main__":
    main()
