"""The must-show comparison of ``benchmarks/inverse.py`` on one setting no issue names (issue 13's check of a new
scheme on unseen data): ``compare_inits`` with the same rate grid, validation split and 3 seeds.

    OMP_NUM_THREADS=1 python benchmarks/inverse_unnamed.py breast_cancer 64,64 relu swim:auto+kink_median
    OMP_NUM_THREADS=1 python benchmarks/inverse_unnamed.py wine 64,64 relu swim:auto+kink_median --epochs 60
    OMP_NUM_THREADS=1 python benchmarks/inverse_unnamed.py barron 128 relu swim:auto+kink_auto \
        --load dim=50 n_samples=3000

He and the SWIM default (``swim``) always run beside the inits given. Appends the table rows to
``benchmarks/results/inverse_unnamed.jsonl`` and prints them.
"""

import argparse
import json
import time
from pathlib import Path

import dualmap as dm

RESULTS = Path(__file__).parent / "results" / "inverse_unnamed.jsonl"
GRIDS = {"adam": (3e-4, 1e-3, 3e-3), "sgd": (3e-3, 1e-2, 3e-2)}

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("data")
parser.add_argument("widths", help="comma-separated hidden widths, e.g. 64,64")
parser.add_argument("activation", choices=["relu", "tanh"])
parser.add_argument("inits", nargs="+")
parser.add_argument("--optimizer", choices=sorted(GRIDS), default="adam")
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--load", nargs="*", default=[], metavar="KEY=INT", help="dm.load_dataset options, e.g. dim=50")
args = parser.parse_args()
load_options = {key: int(value) for key, value in (option.split("=", 1) for option in args.load)}
widths = [int(w) for w in args.widths.split(",")]
started = time.perf_counter()
result = dm.inverse.compare_inits(args.data, widths, args.activation, inits=("he", "swim", *args.inits),
                                  seeds=(0, 1, 2), optimizer=args.optimizer, lr=GRIDS[args.optimizer],
                                  epochs=args.epochs, persistence_checkpoints=0, progress=False, **load_options)
with RESULTS.open("a") as handle:
    for row in result.table():
        row = dict(row, data=args.data, load=load_options, widths=widths, activation=args.activation,
                   optimizer=args.optimizer, epochs=args.epochs,
                   date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), seconds=time.perf_counter() - started)
        handle.write(json.dumps(row, default=float) + "\n")
        print(f"{row['init']:28s} lr {row['lr']:.0e}  start acc {row['start_test_metric']:.3f}  final acc "
              f"{row['final_test_metric']:.3f}  loss {row['final_test_loss']:.4f}  steps to He "
              f"{row['steps_to_he_fraction']} ({row['reached_he']})")
