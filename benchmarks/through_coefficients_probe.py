"""Probe (issue 11): should a map's coefficients be fitted for what the next layer receives, not per neuron?

The map fits every neuron's affine combination of its atoms to that neuron's trained activations (least squares
on ``X``, docs/maths.md §5). The alternative probed here fits all coefficients of a one-hidden-layer map *jointly*
for what the trained readout receives, with a pull towards each neuron's own activations:

.. math:: \\min_{c, c_0}\\; \\operatorname{tr}\\big(E\\,(W^\\top W + \\mu\\,s\\,I)\\,E^\\top\\big),\\qquad
          E = \\hat H(c, c_0) - H,\\quad s = \\operatorname{tr}(W^\\top W)/\\text{width},

(``W`` the trained readout, ``H`` the trained hidden activations on ``X``, ``Ĥ`` the atoms' combination); large
``μ`` is the per-neuron fit. A linear system in the width·k coefficients (the intercepts are the means). It is
applied alike to the map and to its two null models, and ``r2_through`` is read on the test split.

    OMP_NUM_THREADS=1 python benchmarks/through_coefficients_probe.py digits 256 relu
    OMP_NUM_THREADS=1 python benchmarks/through_coefficients_probe.py fashion_mnist 512 relu

Rows are appended to ``benchmarks/results/through_coefficients_probe.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import dualmap as dm
from dualmap.metrics import output_r2, through_nulls

MUS = (1e3, 1.0, 0.1, 0.01)
RESULTS = Path(__file__).parent / "results" / "through_coefficients_probe.jsonl"


def joint_r2(pair_map, model, X, X_test, activation, mus=MUS) -> dict:
    """``r2_through`` on ``X_test`` with the map's own coefficients and with joint coefficients for each ``μ``."""
    sigma = (lambda z: np.maximum(z, 0.0)) if activation == "relu" else np.tanh
    teacher = model.predict(X_test)
    rebuilt = pair_map.to_mlp(X, readout="trained", network=model)
    result = {"per_neuron": output_r2(rebuilt.predict(X_test), teacher)}
    atoms_weight, atoms_bias = rebuilt.weights[0], rebuilt.biases[0]
    phi, phi_test = sigma(X @ atoms_weight.T + atoms_bias), sigma(X_test @ atoms_weight.T + atoms_bias)
    hidden = sigma(X @ model.weights[0].T + model.biases[0])
    readout, readout_bias = model.weights[1], model.biases[1]
    width, k = hidden.shape[1], pair_map.n_atoms
    owner = np.repeat(np.arange(width), k)                           # atom → its neuron (neuron-major)
    phi_mean, hidden_mean = phi.mean(axis=0), hidden.mean(axis=0)
    gram = (phi - phi_mean).T @ (phi - phi_mean)                      # (width·k, width·k)
    cross = (phi - phi_mean).T @ (hidden - hidden_mean)              # (width·k, width)
    metric = readout.T @ readout
    scale = np.trace(metric) / width
    for mu in mus:
        A = metric + mu * scale * np.eye(width)
        system = A[owner][:, owner] * gram
        rhs = (cross * A[:, owner].T).sum(axis=1)
        system += 1e-12 * np.trace(system) / len(system) * np.eye(len(system))
        c = np.linalg.solve(system, rhs)
        combined = np.zeros((len(X_test), width))
        np.add.at(combined.T, owner, (phi_test * c).T)
        combined += hidden_mean - np.bincount(owner, weights=phi_mean * c, minlength=width)
        result[f"mu={mu:g}"] = output_r2(combined @ readout.T + readout_bias, teacher)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=["digits", "fashion_mnist"])
    parser.add_argument("width", type=int)
    parser.add_argument("activation", choices=["relu", "tanh"])
    parser.add_argument("--atoms", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    fashion = args.dataset == "fashion_mnist"
    ds = dm.load_dataset(args.dataset, n_train=10_000) if fashion else dm.load_dataset(args.dataset)
    run = dm.train([args.width], ds.X_train, ds.y_train, activation=args.activation, optimizer="adam", lr=1e-3,
                   epochs=30 if fashion else 100, batch_size=128, seed=args.seed, checkpoints=2, progress=False)
    started = time.perf_counter()
    pair_map = dm.to_pairs(run.model, ds.X_train, atoms=args.atoms, seed=args.seed, progress=False)
    row = dict(dataset=args.dataset, width=args.width, activation=args.activation, atoms=args.atoms, seed=args.seed,
               map_seconds=time.perf_counter() - started, date=time.strftime("%Y-%m-%d %H:%M"),
               map=joint_r2(pair_map, run.model, ds.X_train, ds.X_test, args.activation))
    for name, null in through_nulls(run.model, ds.X_train, atoms=args.atoms, seed=args.seed).items():
        row[f"null_{name}"] = joint_r2(null, run.model, ds.X_train, ds.X_test, args.activation)
    print(json.dumps(row, indent=1))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as handle:
        handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
