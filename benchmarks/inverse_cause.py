"""Why a sampled start loses its head start (docs/findings/inverse.md §1): the first steps, measured.

    OMP_NUM_THREADS=1 python benchmarks/inverse_cause.py              # ≈ 3 min on 1 thread
    OMP_NUM_THREADS=1 python benchmarks/inverse_cause.py --features   # only the feature scales (≈ 1 min)

For one seed per setting: the sampled start's scales (GCV penalty, temperature, weight RMS per layer
relative to He's, readout norm), then the test loss and the relative displacement of every layer after
1, 2, 5, 10, 20, 50 steps, for the finetune schemes ``plain`` (the old default), ``rebalance``, ``layer_lr``
and their combination. Writes ``benchmarks/results/inverse_cause.json``.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

import dualmap as dm
from dualmap.inverse.finetune import layer_lr_factors
from dualmap.inverse.initialisation import sampled_start

sys.path.insert(0, str(Path(__file__).parent))
from forward_map import environment  # noqa: E402

STEPS = [0, 1, 2, 5, 10, 20, 50]
SETTINGS = [("digits", {}, 256, "relu"), ("digits", {}, 256, "tanh"),
            ("fashion_mnist", {"n_train": 10_000}, 128, "relu"), ("fashion_mnist", {"n_train": 10_000}, 128, "tanh")]
SCHEMES = ["plain", "calibrate", "rebalance", "layer_lr", "ridge", "warmup", "norm_step", "auto"]


def _gradient_scales(network, X, y):
    """Full-batch ‖∇W_l‖/‖W_l‖ per layer and the RMS of the logits, at ``network``."""
    module = network.to_torch().double()
    logits = module(torch.from_numpy(X))
    nn.functional.cross_entropy(logits, torch.from_numpy(y)).backward()
    linears = [layer for layer in module if isinstance(layer, nn.Linear)]
    return ([float(layer.weight.grad.norm() / layer.weight.norm()) for layer in linears],
            float(logits.detach().pow(2).mean().sqrt()))


def _loss(network, X, y):
    return float(nn.functional.cross_entropy(torch.from_numpy(network.predict(X)), torch.from_numpy(y)))


def feature_scales() -> list[dict]:
    """Top eigenvalue of the last hidden layer's feature covariance (3000 training points) at the start:
    He, the default SWIM start and the old one. SGD's stable readout step scales with its inverse."""
    out = []
    for name, options, width, _ in SETTINGS[::2]:
        ds = dm.load_dataset(name, **options)
        X, y = ds.X_train[:3000], ds.y_train[:3000]
        for widths, activation in itertools.product(([width], [width, width]), ("relu", "tanh")):
            row = dict(dataset=name, widths=widths, activation=activation)
            for init, finetune in (("he", "plain"), ("swim", "auto"), ("swim", "plain"), ("swim", "rebalance_act")):
                if finetune == "rebalance_act" and activation != "relu":
                    continue
                run = dm.train(widths, X, y, activation=activation, init=init, finetune=finetune, optimizer="sgd",
                               lr=1e-3, epochs=1, seed=0, checkpoints=2, progress=False)
                H = run.checkpoints[0][1].hidden(X, len(widths) - 1)
                centred = H - H.mean(axis=0)
                row[f"{init}:{finetune}"] = float(np.linalg.eigvalsh(centred.T @ centred / len(H))[-1])
            print(row, flush=True)
            out.append(row)
    return out


def main() -> None:
    torch.set_num_threads(1)
    path = Path(__file__).parent / "results" / "inverse_cause.json"
    if "--features" in sys.argv:        # only the feature scales, merged into the existing results
        document = json.loads(path.read_text())
        document["feature_scales"] = feature_scales()
        path.write_text(json.dumps(document, indent=1))
        return
    rows = []
    for name, options, width, activation in SETTINGS:
        ds = dm.load_dataset(name, **options)
        start, sampled = sampled_start(ds.X_train, ds.y_train, "classification", [width], activation, "swim", 0)
        H = start.hidden(ds.X_train, 0)
        gram_mean = float(((H - H.mean(0)) ** 2).sum() / H.shape[1])
        scales = dict(alpha_over_mean_eigenvalue=sampled.alpha / gram_mean,
                      temperature=float(np.linalg.norm(sampled.network.weights[-1])
                                        / np.linalg.norm(start.weights[-1])),
                      rho=layer_lr_factors(start.weights, "adam"),
                      readout_rms=float(np.sqrt(np.mean(start.weights[-1] ** 2))),
                      hidden_rms=float(np.sqrt(np.mean(start.weights[0] ** 2))),
                      start_test_loss=_loss(start, ds.X_test, ds.y_test))
        he = dm.train([width], ds.X_train, ds.y_train, activation=activation, init="he", epochs=1, seed=0,
                      checkpoints=2, progress=False).checkpoints[0][1]
        scales["he_relative_gradient"], scales["he_logit_rms"] = _gradient_scales(he, ds.X_train, ds.y_train)
        scales["swim_relative_gradient"], scales["swim_logit_rms"] = _gradient_scales(start, ds.X_train, ds.y_train)
        print(name, activation, {k: np.round(v, 4).tolist() for k, v in scales.items()}, flush=True)
        for optimizer, lr in (("adam", 1e-3), ("sgd", 1e-2)):
            for scheme in SCHEMES:
                if "rebalance" in scheme and activation == "tanh":
                    continue
                if scheme == "norm_step" and optimizer == "adam":
                    continue
                run = dm.train([width], ds.X_train, ds.y_train, activation=activation, init="swim", finetune=scheme,
                               optimizer=optimizer, lr=lr, epochs=-(-50 * 128 // len(ds.X_train)), seed=0,
                               checkpoints=STEPS, progress=False)
                first = run.checkpoints[0][1]
                curve = [_loss(net, ds.X_test, ds.y_test) for _, net in run.checkpoints]
                displacement = [[float(np.linalg.norm(b - a) / np.linalg.norm(a))
                                 for a, b in zip(first.weights, net.weights)]
                                for _, net in run.checkpoints]
                rows.append(dict(dataset=name, activation=activation, optimizer=optimizer, lr=lr, scheme=scheme,
                                 steps=run.steps, test_loss=curve, displacement=displacement, **scales))
                print(f"  {optimizer} {scheme:20s} loss {np.round(curve, 3).tolist()}  disp@10 "
                      f"{np.round(displacement[4], 4).tolist()} disp@50 {np.round(displacement[-1], 4).tolist()}",
                      flush=True)
    path.write_text(json.dumps({"command": "python benchmarks/inverse_cause.py", "environment": environment(),
                                "rows": rows, "feature_scales": feature_scales()}, indent=1))


if __name__ == "__main__":
    main()
