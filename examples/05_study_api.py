"""A whole study from Python: the same pipeline as ``dualmap run``, on a reduced configuration.

Shows: ``dualmap.study.validate_config`` (a partial mapping → the fully resolved, validated config),
``run_study`` (sample → train → convert → track → refine → report into one folder; calling it again
resumes and recomputes nothing), reading ``metrics.json`` (headline and per-stage numbers) and loading
the saved objects back (``dm.TrainRun.load``, ``dm.PairMap.load``, ``dm.Trajectory.load``).

Run:  OMP_NUM_THREADS=1 python examples/05_study_api.py [OUT_DIR] [--no-figures]
      (≈ 15 s on one thread with figures; writes a study folder, default /tmp/dualmap-example-05)
"""

import argparse
import json
from pathlib import Path

import dualmap as dm
from dualmap.study import config_hash, run_study, validate_config

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("out", nargs="?", default="/tmp/dualmap-example-05", type=Path)
parser.add_argument("--no-figures", action="store_true", help="numbers only (no figures, no report.html)")
args = parser.parse_args()

config = validate_config({                      # anything left out takes its default
    "dataset": {"name": "digits", "n_train": 600},
    "network": {"widths": [64], "activation": "relu"},
    "train": {"epochs": 20, "checkpoints": 8},
    "refine": {"inits": ["he", "swim"], "seeds": [0], "epochs": 10, "persistence_checkpoints": 3},
    "report": {"figures": not args.no_figures},
})
print(f"config hash {config_hash(config)}; convert.method = {config.convert.method}, "
      f"track.method = {config.track.method}, device = {config.device}")

metrics = run_study(config, args.out, progress=False)
print(f"status {metrics['status']}; stages: "
      + ", ".join(f"{name} {record['seconds']:.1f} s" for name, record in metrics["stages"].items()))
headline = metrics["headline"]
print(f"test {headline['metric']}: trained {headline['trained_test_score']:.3f}, SWIM sampled "
      f"{headline['sampled_test_score']:.3f}, converted {headline['converted_test_score']:.3f}")
print(f"R² map {headline['r2_map']:.3f} vs SWIM null {headline['r2_null_swim']:.3f} → gap closed "
      f"{headline['gap_closed']:.3f}; fidelity {headline['fidelity']:.3f}")
for row in metrics["stages"]["refine"]["table"]:
    print(f"refine {row['init']:5s}: start {row['start_test_metric']:.3f} → end {row['final_test_metric']:.3f}, "
          f"reached He's final test loss {row['reached_he']}")

again = run_study(config, args.out, progress=False)          # same config, same folder: resumes, nothing to do
assert again["stages"]["train"]["seconds"] == metrics["stages"]["train"]["seconds"]
assert json.loads((args.out / "metrics.json").read_text())["config_hash"] == config_hash(config)

run = dm.TrainRun.load(args.out / "train_run.npz")
pair_map = dm.PairMap.load(args.out / "pairmap.npz")
trajectory = dm.Trajectory.load(args.out / "trajectory.npz")
print(f"loaded: {len(run.checkpoints)} checkpoints, {len(pair_map.pairs[0])} pairs, {trajectory!r}")
print("folder:", ", ".join(sorted(p.name for p in args.out.iterdir())))
