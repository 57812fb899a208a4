"""Probe for docs/findings/inverse.md §1: does a smaller Adam step, or SGD, keep the sampled head start?

    python benchmarks/inverse_lr_probe.py      # ≈ 2 min on 1 thread

One hidden layer, inits he/swim/random, Adam lr 1e-4 and SGD lr 1e-2 (momentum 0.9), 3 seeds, on digits
(256 wide, 30 epochs) and Fashion-MNIST (10k points, 128 wide, 5 epochs). Writes
``benchmarks/results/inverse_lr_probe.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import dualmap as dm
from dualmap.inverse import compare_inits

SETTINGS = [("digits", {}, 256, 30), ("fashion_mnist", {"n_train": 10_000}, 128, 5)]
OPTIMIZERS = [("adam", 1e-4), ("sgd", 1e-2)]


def main() -> None:
    rows = []
    for name, options, width, epochs in SETTINGS:
        ds = dm.load_dataset(name, **options)
        for activation in ("relu", "tanh"):
            for optimizer, lr in OPTIMIZERS:
                result = compare_inits(ds, [width], activation, inits=("he", "swim", "random"), seeds=(0, 1, 2),
                                       optimizer=optimizer, lr=lr, epochs=epochs, persistence_checkpoints=0,
                                       progress=False)
                for row in result.table():
                    row.update(dataset=name, activation=activation, optimizer=optimizer, lr=lr)
                    rows.append(row)
                    print(name, activation, optimizer, lr, row["init"], round(row["start_test_metric"], 3),
                          round(row["final_test_metric"], 3), round(row["final_test_loss"], 4), row["reached_he"],
                          np.round(row["displacement"], 4).tolist(), flush=True)
    path = Path(__file__).parent / "results" / "inverse_lr_probe.json"
    path.write_text(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
