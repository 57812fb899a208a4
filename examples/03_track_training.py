"""Follow the forward map over training: which training points a network rests on, and how that changes.

Shows: ``dm.train`` with log-spaced checkpoints, ``dm.track`` (warm-started maps of every checkpoint,
saved to and resumable from ``trajectory.npz``), the trajectory's measures (switch rate, quality,
concentration, SWIM alignment, importance) and ``dualmap.report.trajectory_figures`` (heat map of
importance, most important images, curves), drawn from the saved file.

Run:  OMP_NUM_THREADS=1 python examples/03_track_training.py [OUT_DIR] [--epochs 30]
      (≈ 10 s on one thread; writes OUT_DIR/trajectory.npz and OUT_DIR/figures/*.png, default /tmp/dualmap-example-03)
"""

import argparse
from pathlib import Path

import numpy as np

import dualmap as dm
from dualmap.report import trajectory_figures

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("out", nargs="?", default="/tmp/dualmap-example-03", type=Path)
parser.add_argument("--width", type=int, default=128)
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--checkpoints", type=int, default=12)
args = parser.parse_args()
args.out.mkdir(parents=True, exist_ok=True)

ds = dm.load_dataset("digits")
run = dm.train([args.width], ds.X_train, ds.y_train, activation="relu", epochs=args.epochs,
               checkpoints=args.checkpoints, X_val=ds.X_test, y_val=ds.y_test, progress=False)
print(f"trained: checkpoints at steps {run.steps}, test accuracy {run.history['val_metric'][-1]:.3f}")

# Maps every checkpoint (method "function"); re-running resumes from the file instead of recomputing.
tr = dm.track(run, ds.X_train, y=ds.y_train, path=args.out / "trajectory.npz", progress=False)
s = tr.summary()
print(f"switch rate (layer 1), first → last interval: {s['switch_rate_first'][0]:.3f} → "
      f"{s['switch_rate_last'][0]:.3f}; "
      f"settled at step {s['settled_step']}")
print(f"map quality (median activation correlation): {s['quality_first'][0]:.3f} → {s['quality_last'][0]:.3f}")
print(f"concentration (effective number of points): {s['concentration_first']:.0f} → {s['concentration_last']:.0f} "
      f"of {len(ds.X_train)} points; SWIM alignment {s['swim_alignment_first']:+.3f} → {s['swim_alignment_last']:+.3f}")

importance = tr.importance                       # (checkpoints, points)
top = np.argsort(-importance[-1])[:5]
print("five most important points at the end:",
      ", ".join(f"#{i} (digit {ds.y_train[i]}, {importance[-1, i]:.1e})" for i in top))
print(f"sum of importance at the end = contribution-weighted mean match quality: {importance[-1].sum():.3f}")

paths = trajectory_figures(dm.Trajectory.load(args.out / "trajectory.npz"), args.out / "figures")
print("figures:", ", ".join(str(p) for p in paths))
