"""Pair prior (issue 13, part B): sample where training goes, leave one data set out.

    OMP_NUM_THREADS=1 python benchmarks/inverse_prior.py          # ≈ 5 min on 1 thread

For every classification data set (digits, breast_cancer, wine, iris, Fashion-MNIST with 2000 training points)
and seed 0, 1, 2: train a 1×64 ReLU network with Adam (lr 1e-3, 60 epochs; Fashion 20), map it to pairs
(``dm.to_pairs``, method ``function``). Then per held-out data set: a prior fitted on the maps of the *other*
data sets (``loo``), and one fitted on its own maps (``same``, an upper reference fitted on the same training
points it samples for); ``SWIMClassifier`` (1×64 ReLU, ridge readout) with ``sampler`` = SWIM, uniform,
``loo``, ``same``, 3 seeds; test accuracy, and the trained network's. Writes
``benchmarks/results/inverse_prior.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

import dualmap as dm
from dualmap.inverse import fit_pair_prior

sys.path.insert(0, str(Path(__file__).parent))
from forward_map import environment, log  # noqa: E402

DATA = {"digits": ({}, 60), "breast_cancer": ({}, 60), "wine": ({}, 60), "iris": ({}, 60),
        "fashion_mnist": ({"n_train": 2000}, 20)}
WIDTH, SEEDS = 64, (0, 1, 2)


def main() -> None:
    torch.set_num_threads(1)
    sets, maps, trained = {}, {}, {}
    for name, (options, epochs) in DATA.items():
        ds = dm.load_dataset(name, **options)
        sets[name] = ds
        for seed in SEEDS:
            run = dm.train([WIDTH], ds.X_train, ds.y_train, epochs=epochs, seed=seed, progress=False)
            maps[name, seed] = dm.to_pairs(run.model, ds.X_train, method="function", seed=seed, progress=False)
            trained[name, seed] = float(np.mean(run.model.predict(ds.X_test).argmax(1) == ds.y_test))
        log(f"{name}: trained {np.mean([trained[name, s] for s in SEEDS]):.3f}")
    rows = []
    for held_out, ds in sets.items():
        others = [(maps[n, s], sets[n].X_train, sets[n].y_train) for n in sets if n != held_out for s in SEEDS]
        priors = {"loo": fit_pair_prior(others, name=f"all but {held_out}"),
                  "same": fit_pair_prior([maps[held_out, s] for s in SEEDS], ds.X_train, ds.y_train, name=held_out)}
        for sampler in ("swim", "uniform", "loo", "same"):
            for seed in SEEDS:
                clf = dm.SWIMClassifier(layer_widths=(WIDTH,), activation="relu",
                                        sampler=priors.get(sampler, sampler), random_state=seed)
                accuracy = float(clf.fit(ds.X_train, ds.y_train).score(ds.X_test, ds.y_test))
                rows.append(dict(dataset=held_out, sampler=sampler, seed=seed, accuracy=accuracy,
                                 trained=trained[held_out, seed]))
        medians = {s: np.median([r["accuracy"] for r in rows if r["dataset"] == held_out and r["sampler"] == s])
                   for s in ("swim", "uniform", "loo", "same")}
        log(f"{held_out}: " + "  ".join(f"{k} {v:.3f}" for k, v in medians.items())
            + f"  trained {np.median([trained[held_out, s] for s in SEEDS]):.3f}  loo coef "
            + str(np.round(priors["loo"].coef, 2).tolist()))
    path = Path(__file__).parent / "results" / "inverse_prior.json"
    path.write_text(json.dumps({"command": "python benchmarks/inverse_prior.py", "environment": environment(),
                                "width": WIDTH, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
