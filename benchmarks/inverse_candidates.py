"""Candidate fine-tuning schemes for a SWIM start (issue 13), one seed, before the full comparison.

    OMP_NUM_THREADS=1 python benchmarks/inverse_candidates.py         # ≈ 15 min on 1 thread

One hidden layer (digits 256 wide, 30 epochs; Fashion-MNIST 10k, 128 wide, 5 epochs), seed 0; He and
the SWIM start under each scheme of ``dm.train(finetune=...)``; every init with its own learning rate
from the grid (Adam 3e-4, 1e-3, 3e-3; SGD 3e-3, 1e-2, 3e-2) chosen on a 20 % validation split.
Writes ``benchmarks/results/inverse_candidates.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

import dualmap as dm
from dualmap.inverse import compare_inits

sys.path.insert(0, str(Path(__file__).parent))
from forward_map import environment, log  # noqa: E402

GRIDS = {"adam": (3e-4, 1e-3, 3e-3), "sgd": (3e-3, 1e-2, 3e-2)}
#: (data, activation, optimizer) → the schemes tried there (``rebalance`` is a no-op for tanh)
SCHEMES = ["plain", "calibrate", "rebalance", "layer_lr", "ridge", "rebalance+ridge", "ridge+layer_lr",
           "rebalance+warmup", "warmup+layer_lr", "rebalance+layer_lr", "calibrate+rebalance+layer_lr",
           "calibrate+warmup+rebalance+layer_lr", "calibrate+ridge+rebalance+layer_lr",
           "calibrate+warmup+norm_step", "calibrate+warmup+layer_lr+norm_step"]
SETTINGS = [("digits", "relu", "adam"), ("digits", "tanh", "adam"), ("digits", "relu", "sgd"),
            ("digits", "tanh", "sgd"), ("fashion_mnist", "relu", "adam"), ("fashion_mnist", "tanh", "adam")]
#: the rebalancing to He's activation scale, where the default fails under SGD (two hidden layers)
EXTRA = [("digits", "relu", "sgd", 2, ["calibrate+warmup+rebalance_act+layer_lr", "calibrate+warmup+rebalance_act",
                                       "calibrate+rebalance_act"])]


def main() -> None:
    torch.set_num_threads(1)
    out = []
    for name, activation, optimizer in SETTINGS:
        options, width, epochs = ({"n_train": 10_000}, 128, 5) if name == "fashion_mnist" else ({}, 256, 30)
        ds = dm.load_dataset(name, **options)
        schemes = [s for s in SCHEMES if not (activation == "tanh" and "rebalance" in s and "layer_lr" not in s)
                   and not (optimizer == "adam" and "norm_step" in s)]
        result = compare_inits(ds, [width], activation, inits=["he"] + [f"swim:{s}" for s in schemes], seeds=(0,),
                               optimizer=optimizer, lr=GRIDS[optimizer], epochs=epochs, persistence_checkpoints=0,
                               progress=False)
        for row in result.table():
            log(f"{name} {activation} {optimizer} {row['init']:40s} lr={row['lr']:.0e} "
                f"acc={row['final_test_metric']:.3f} loss={row['final_test_loss']:.4f} "
                f"he@{row['steps_to_he_fraction']}")
        out.append(dict(dataset=name, activation=activation, optimizer=optimizer, width=width, epochs=epochs,
                        table=result.table(), config=result.config))
    for name, activation, optimizer, depth, schemes in EXTRA:
        result = compare_inits(dm.load_dataset(name), [256] * depth, activation,
                               inits=["he", "swim"] + [f"swim:{s}" for s in schemes], seeds=(0,), optimizer=optimizer,
                               lr=GRIDS[optimizer], epochs=30, persistence_checkpoints=0, progress=False)
        out.append(dict(dataset=name, activation=activation, optimizer=optimizer, depth=depth, width=256, epochs=30,
                        table=result.table(), config=result.config))
    path = Path(__file__).parent / "results" / "inverse_candidates.json"
    path.write_text(json.dumps({"command": "python benchmarks/inverse_candidates.py", "environment": environment(),
                                "rows": out}, indent=1, default=float))


if __name__ == "__main__":
    main()
