"""Probe (issue 13): how diverse are the hidden features a start gives Adam to learn from?

docs/findings/inverse.md §9–§11: under a fresh readout, SWIM's (and uniform pairs') ReLU hidden layers end above He's
final test loss while random features match or beat it. A hypothesis for why: a data-pair neuron's direction is a
difference of two data points, so the directions concentrate on the data's leading principal components and the
neurons are collinear — many of them respond alike, get alike gradients and move together. This script measures,
for every start (checkpoint 0 of ``dm.train``: the hidden layers as training receives them) and for He's network
after training:

- ``participation`` — the participation ratio ``(Σλ)² / Σλ²`` of the eigenvalues of the hidden features'
  *correlation* matrix on the training points (scale-free: 1 when all neurons respond alike, ``width`` when they
  are uncorrelated), as a fraction of the width;
- ``mean_abs_corr`` — the mean |correlation| between two different neurons;
- ``top10_energy`` — the share of the first layer's squared weights that lies in the span of the data's 10
  leading principal components (He's isotropic rows: about 10 / d).

    OMP_NUM_THREADS=1 python benchmarks/inverse_feature_rank.py

Appends one JSON line per (data, activation, start) to ``benchmarks/results/inverse_feature_rank.jsonl`` and
prints a markdown table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

import dualmap as dm

RESULTS = Path(__file__).parent / "results" / "inverse_feature_rank.jsonl"
#: the issue's one-hidden-layer settings (as benchmarks/inverse.py), and breast_cancer, which no issue names
SETTINGS = [("digits", {}, 256, 30), ("fashion_mnist", {"n_train": 10_000}, 128, 5), ("breast_cancer", {}, 128, 30)]
STARTS = ("he", "swim", "uniform", "random")


def feature_diversity(network: dm.MLP, X: np.ndarray, components: np.ndarray) -> dict:
    """The three measures of the module docstring for the first hidden layer of ``network`` on ``X``."""
    pre = X @ network.weights[0].T + network.biases[0]
    features = np.maximum(pre, 0.0) if network.activations[0] == "relu" else np.tanh(pre)
    centred = features - features.mean(axis=0)
    scale = np.sqrt((centred**2).sum(axis=0))
    alive = scale > 0
    standardised = centred[:, alive] / scale[alive]
    correlation = standardised.T @ standardised
    eigenvalues = np.linalg.eigvalsh(correlation)
    width = features.shape[1]
    off_diagonal = np.abs(correlation[~np.eye(len(correlation), dtype=bool)])
    weights = network.weights[0]
    top_energy = float(((weights @ components.T) ** 2).sum() / (weights**2).sum())
    return dict(participation=float(eigenvalues.sum() ** 2 / (eigenvalues**2).sum() / width),
                mean_abs_corr=float(off_diagonal.mean()), dead=int((~alive).sum()), top10_energy=top_energy)


def main() -> None:
    rows = []
    for name, options, width, epochs in SETTINGS:
        ds = dm.load_dataset(name, **options)
        X = ds.X_train
        _, _, vt = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)
        components = vt[:10]
        for activation in ("relu", "tanh"):
            for start in STARTS:
                finetune = {} if start == "he" else dict(finetune="auto")
                run = dm.train([width], X, ds.y_train, activation=activation, epochs=1 if start != "he" else epochs,
                               init=start, seed=0, checkpoints=[0, 1] if start != "he" else 2, progress=False,
                               **finetune)
                row = dict(data=name, activation=activation, width=width, start=start,
                           date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           **feature_diversity(run.checkpoints[0][1], X, components))
                rows.append(row)
                if start == "he":     # where Adam takes He's start (the budget)
                    rows.append(dict(row, start="he, trained", **feature_diversity(run.model, X, components)))
    with RESULTS.open("a") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    print("| data | act | start | participation / width | mean abs corr | dead | top-10 PC energy |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['data']} | {row['activation']} | {row['start']} | {row['participation']:.3f} | "
              f"{row['mean_abs_corr']:.3f} | {row['dead']} | {row['top10_energy']:.3f} |")


if __name__ == "__main__":
    main()
