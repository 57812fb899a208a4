"""Small SWIM fits: dualmap against swimnetworks 0.0.2, many fits per process (issue 15).

On data sets of a few hundred points a fit takes milliseconds; ``benchmarks/swim_vs_reference.py`` times at
most three fits per fresh process, which measures those milliseconds at the resolution of the process's
noise. Here every package fits each setting ``--fits`` times in a fresh process of its own (after three
warm-up fits; seeds cycling 0, 1, 2), the processes of the two packages alternate ``--rounds`` times, and a
setting's time is the median over rounds of each process's median fit. Separate processes, not fits
alternating in one: a package's BLAS threads keep spinning for a while after its fit, and whatever runs next
in the same process pays for it (measured: digits-tanh-64 took 8.4 ms alone, 13–23 ms when it alternated
with the reference in one process). The reference uses the best ``rcond`` that ``swim_vs_reference.py``
found for each setting.

    python benchmarks/swim_small_fits.py                 # diabetes 64/512/2048, breast cancer 512, digits 64/512
    python benchmarks/swim_small_fits.py --fits 100 --rounds 5
    python benchmarks/swim_small_fits.py --settings diabetes-64 digits-64 --output /tmp/small.json

Prints a markdown table and writes ``benchmarks/results/swim_small_fits.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

#: (data set, width, the reference's best rcond in benchmarks/results/swim_vs_reference*.md)
SETTINGS = [("diabetes", 64, 0.1), ("diabetes", 512, 0.1), ("diabetes", 2048, 0.1),
            ("breast_cancer", 512, 1e-3), ("digits", 64, 1e-3), ("digits", 512, 1e-3)]


def _worker(package: str, name: str, width: int, rcond: float, fits: int) -> float:
    """Median seconds of ``fits`` fits of one package on one setting, in this process."""
    import dualmap as dm

    ds = dm.load_dataset(name, seed=0)
    classify = ds.task == "classification"
    if package == "reference":
        from sklearn.pipeline import Pipeline
        from swimnetworks import Dense, Linear

        def fit(seed):
            return Pipeline([("dense", Dense(layer_width=width, activation="tanh", parameter_sampler="tanh",
                                             random_seed=seed, is_classifier=classify)),
                             ("linear", Linear(regularization_scale=rcond, is_classifier=classify))]
                            ).fit(ds.X_train, ds.y_train)
    else:
        estimator = dm.SWIMClassifier if classify else dm.SWIMRegressor

        def fit(seed):
            return estimator(layer_widths=(width,), activation="tanh", random_state=seed).fit(ds.X_train, ds.y_train)

    for seed in range(3):
        fit(seed)
    times = []
    for index in range(fits):
        started = time.perf_counter()
        fit(index % 3)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fits", type=int, default=50, help="fits per process (default 50)")
    parser.add_argument("--rounds", type=int, default=3, help="processes per package and setting (default 3)")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "swim_small_fits.json")
    parser.add_argument("--settings", nargs="+", metavar="DATA-WIDTH", help="only these settings, e.g. diabetes-64")
    parser.add_argument("--worker", nargs=4, metavar=("PACKAGE", "DATA", "WIDTH", "RCOND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        package, name, width, rcond = args.worker
        print(json.dumps(_worker(package, name, int(width), float(rcond), args.fits)))
        return
    rows = []
    settings = [s for s in SETTINGS if not args.settings or f"{s[0]}-{s[1]}" in args.settings]
    if not settings:
        parser.error(f"--settings matches none of {[f'{name}-{width}' for name, width, _ in SETTINGS]}")
    for name, width, rcond in settings:
        medians = {"reference": [], "dualmap": []}
        for _ in range(args.rounds):
            for package in medians:
                result = subprocess.run([sys.executable, __file__, "--fits", str(args.fits), "--worker", package,
                                         name, str(width), str(rcond)], capture_output=True, text=True, check=True)
                medians[package].append(json.loads(result.stdout.strip().splitlines()[-1]))
        row = dict(dataset=name, width=width, rcond=rcond,
                   reference_ms=1000 * float(np.median(medians["reference"])),
                   dualmap_ms=1000 * float(np.median(medians["dualmap"])),
                   rounds_ms={package: [1000 * m for m in values] for package, values in medians.items()})
        row["ratio"] = row["dualmap_ms"] / row["reference_ms"]
        rows.append(row)
        print(f"{name}-tanh-{width}: reference {row['reference_ms']:.2f} ms, dualmap {row['dualmap_ms']:.2f} ms, "
              f"ratio {row['ratio']:.2f}", file=sys.stderr, flush=True)
    print("| setting | reference ms | dualmap ms | ratio |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['dataset']}-tanh-{row['width']} | {row['reference_ms']:.2f} | {row['dualmap_ms']:.2f} | "
              f"**{row['ratio']:.2f}** |")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(dict(
        date=time.strftime("%Y-%m-%d %H:%M"), machine=platform.processor() or platform.machine(),
        cores=len(os.sched_getaffinity(0)), fits=args.fits, rounds=args.rounds,
        thread_env={k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}, rows=rows),
        indent=1))


if __name__ == "__main__":
    main()
