"""Wall time of the default study (`dualmap run`, digits) and of each of its stages.

    python benchmarks/study.py --repeats 3

Every repetition runs the real command in a fresh folder (a new process, imports included) and reads the
per-stage seconds from its metrics.json. Writes ``benchmarks/results/study_timing.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from forward_map import environment  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dataset", default="digits")
    args = parser.parse_args()
    runs = []
    for repeat in range(args.repeats):
        folder = Path(tempfile.mkdtemp(prefix="dualmap-study-"))
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dualmap.cli", "run", "--dataset", args.dataset, "--out",
                        str(folder / "study"), "--quiet"], check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        metrics = json.loads((folder / "study" / "metrics.json").read_text())
        stages = {name: record["seconds"] for name, record in metrics["stages"].items()}
        runs.append({"wall_seconds": wall, "stages": stages, "headline": metrics["headline"]})
        print(f"run {repeat}: {wall:.1f} s  " + "  ".join(f"{k} {v:.1f}" for k, v in stages.items()), flush=True)
        shutil.rmtree(folder)
    median = {"wall_seconds": float(np.median([r["wall_seconds"] for r in runs])),
              "stages": {k: float(np.median([r["stages"][k] for r in runs])) for k in runs[0]["stages"]}}
    document = {"command": " ".join(["python", "benchmarks/study.py", *sys.argv[1:]]), "environment": environment(),
                "dataset": args.dataset, "runs": runs, "median": median}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "study_timing.json").write_text(json.dumps(document, indent=1))
    print("median:", json.dumps(median))


if __name__ == "__main__":
    main()
