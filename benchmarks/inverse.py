"""Inverse-map benchmark (issue 5): sampled vs standard initialisation, and training in pair space.

    python benchmarks/inverse.py --section compare     # 5 inits × data × ReLU/tanh × 1-2 layers × seeds
    python benchmarks/inverse.py --section pairspace   # SWIM → pair-space trained → snapped, vs Adam from He
    python benchmarks/inverse.py --section all

Results: ``benchmarks/results/inverse_<section>.json``; figures: ``docs/findings/figures/inverse/``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

import dualmap as dm
from dualmap.inverse import PairNetwork, compare_inits
from dualmap.report import inverse_figures, plot_virtual_points_2d

sys.path.insert(0, str(Path(__file__).parent))
from forward_map import environment, log  # noqa: E402

RESULTS = Path(__file__).parent / "results"
FIGURES = Path(__file__).parent.parent / "docs" / "findings" / "figures" / "inverse"

#: data set → (load options, width, epochs)
DATA = {"digits": ({}, 256, 30), "fashion_mnist": ({"n_train": 10_000}, 128, 5),
        "barron": ({"dim": 5, "n_samples": 2000}, 128, 40)}


def compare(seeds) -> list[dict]:
    out = []
    for name, (options, width, epochs) in DATA.items():
        ds = dm.load_dataset(name, **options)
        for activation, depth in itertools.product(("relu", "tanh"), (1, 2)):
            started = time.perf_counter()
            result = compare_inits(ds, [width] * depth, activation, seeds=seeds, epochs=epochs, optimizer="adam",
                                   lr=1e-3, persistence_checkpoints=5, progress=False)
            tag = f"{name}_{depth}x{width}_{activation}"
            inverse_figures(result, FIGURES / tag)
            out.append(dict(dataset=name, depth=depth, width=width, activation=activation, epochs=epochs,
                            seconds=time.perf_counter() - started, table=result.table(), rows=result.rows,
                            curves=result.curves))
            for row in result.table():
                log(f"{tag} {row['init']:8s} start={row['start_test_metric']:.3f} final={row['final_test_metric']:.3f} "
                    f"loss={row['final_test_loss']:.4f} he@{row['steps_to_he_median']} ({row['reached_he']}) "
                    f"disp={np.round(row['displacement'], 3).tolist()} persist={row['final_persistence']}")
    return out


def _metric(network, X, y, task):
    outputs = network.predict(X)
    if task == "classification":
        return float(np.mean(outputs.argmax(axis=1) == y))
    return dm.metrics.output_r2(outputs, y)


def pairspace(seeds) -> list[dict]:
    """SWIM as sampled → trained in pair space → snapped to data, against a standard Adam-trained net."""
    rows = []
    data = dict(DATA, log2d=({}, 64, 100))
    for name, (options, width, epochs) in data.items():
        ds = dm.load_dataset(name, **options)
        codes = np.eye(ds.n_classes)[ds.y_train] if ds.task == "classification" else ds.y_train
        for activation, depth, seed in itertools.product(("relu", "tanh"), (1, 2), seeds):
            widths = [width] * depth
            started = time.perf_counter()
            # the same calibrated sampled start as dm.train(init="swim")
            start, sampled = dm.inverse.sampled_start(ds.X_train, ds.y_train if ds.task == "classification"
                                                      else ds.y_train.reshape(len(ds.y_train), -1),
                                                      ds.task, widths, activation, "swim", seed)
            pair_network = PairNetwork.from_pairs(start, sampled.pairs, ds.X_train, dtype=torch.float32)
            run = dm.train(pair_network, ds.X_train, ds.y_train, epochs=epochs, lr=1e-3, seed=seed, checkpoints=8,
                           X_val=ds.X_test, y_val=ds.y_test, progress=False)
            snapped, pairs = pair_network.snap(ds.X_train)
            refit = dm.PairMap.of_sampled(pairs, activation, ds.X_train, method="snap").to_mlp(ds.X_train, codes)
            standard = dm.train(widths, ds.X_train, ds.y_train, activation=activation, epochs=epochs, lr=1e-3,
                                seed=seed, checkpoints=2, progress=False)
            stayed = [float(np.mean(np.all(p == q, axis=1))) for p, q in zip(pairs, sampled.pairs)]
            moved = [float(np.median(np.linalg.norm(run.points[-1][0][l] - run.points[0][0][l], axis=1)))
                     for l in range(depth)]
            row = dict(dataset=name, depth=depth, width=width, activation=activation, seed=seed, epochs=epochs,
                       task=ds.task, sampled=_metric(start, ds.X_test, ds.y_test, ds.task),
                       pair_trained=_metric(run.model, ds.X_test, ds.y_test, ds.task),
                       snapped_keep=_metric(snapped, ds.X_test, ds.y_test, ds.task),
                       snapped_refit=_metric(refit, ds.X_test, ds.y_test, ds.task),
                       standard_adam=_metric(standard.model, ds.X_test, ds.y_test, ds.task),
                       fraction_on_initial_pair=stayed, median_point_move=moved,
                       seconds=time.perf_counter() - started)
            rows.append(row)
            log(f"{name} {depth}x{width} {activation} seed={seed}: sampled {row['sampled']:.3f} → pair-trained "
                f"{row['pair_trained']:.3f} → snapped {row['snapped_keep']:.3f} (refit {row['snapped_refit']:.3f}); "
                f"Adam {row['standard_adam']:.3f}; on initial pair {stayed}")
            if name == "log2d" and seed == seeds[0] and depth == 1:
                figure = plot_virtual_points_2d(run, ds.X_train, ds.y_train)
                FIGURES.mkdir(parents=True, exist_ok=True)
                figure.savefig(FIGURES / f"log2d_virtual_points_{activation}.png", dpi=110)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=["compare", "pairspace", "all"], default="all")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    RESULTS.mkdir(parents=True, exist_ok=True)
    for section in (["compare", "pairspace"] if args.section == "all" else [args.section]):
        rows = compare(seeds) if section == "compare" else pairspace(seeds)
        document = {"command": " ".join(["python", "benchmarks/inverse.py", *sys.argv[1:]]),
                    "environment": environment(), "rows": rows}
        (RESULTS / f"inverse_{section}.json").write_text(json.dumps(document, indent=1, default=float))


if __name__ == "__main__":
    main()
