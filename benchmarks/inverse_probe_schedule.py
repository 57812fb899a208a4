"""Probe (issue 13, one seed, not the must-show protocol): does a learning-rate ramp, weight decay, label
smoothing, a smaller readout or a fresh readout let a SWIM start end at He's test loss?

Every run trains on the whole training split (no validation split, no rate chosen on one): this probe asks
whether *any* setting of the knob helps, reading the test loss directly, so a "yes" here would still need the
protocol of ``benchmarks/inverse.py``. SWIM starts use ``finetune="auto"`` (the default).

    OMP_NUM_THREADS=1 python benchmarks/inverse_probe_schedule.py digits relu      # ≈ 1.5 min
    OMP_NUM_THREADS=1 python benchmarks/inverse_probe_schedule.py fashion_mnist relu

Appends one JSON line per run to ``benchmarks/results/inverse_probe_schedule.jsonl``.

- ``ramp``: every layer's rate is multiplied by ``start_factor^(1 − t/ramp_steps)`` for the first
  ``ramp_steps`` steps (a geometric ramp from ``start_factor·lr`` to ``lr``), then ``lr``.
- ``weight_decay``: Adam's (coupled L2) weight decay, He and SWIM alike.
- ``smoothing``: cross-entropy with label smoothing as the *training* loss (the test loss reported is the plain
  cross-entropy of the final network), He and SWIM alike.
- ``readout_scale`` (``--readout-scale``): the prepared SWIM start (checkpoint 0 of ``finetune="auto"``: calibrated
  and rebalanced) with its readout weights *and* bias multiplied by ``c`` — the same predictions (argmax), a less
  confident start — trained as an MLP start (``finetune="plain"``: no readout-only warm-up).

    OMP_NUM_THREADS=1 python benchmarks/inverse_probe_schedule.py digits relu --readout-scale

- ``--fresh-readout``: the SWIM start's hidden layers (ReLU rows rescaled to He's activation scale,
  ``rebalance_act``) with He's initial readout (the readout of an He start of the same seed) — SWIM's features
  without the solved readout — trained as an MLP start (``finetune="plain"``); separates what the pairs'
  features are worth as a place to start learning from the solved readout on top of them. The scheme
  ``finetune="fresh_readout"`` of ``dm.train`` does the same inside training (with its own He draw).

    OMP_NUM_THREADS=1 python benchmarks/inverse_probe_schedule.py digits relu --fresh-readout

- ``--perturb``: shrink-and-perturb's "perturb" (Ash & Adams, NeurIPS 2020: warm-started networks generalise worse
  than fresh ones, and adding a fresh initialisation's noise to the warm weights closes the gap): the prepared SWIM
  start (checkpoint 0 of ``finetune="auto"``: leave-one-out calibrated readout, ReLU rows at He's norm) with
  ``σ`` times He's initial hidden weights and biases (same seed) added to its hidden layers, the solved readout
  kept; trained with ``finetune="rebalance+layer_lr+warmup"`` (ReLU; tanh ``layer_lr+warmup``) — the default's
  schemes that apply to an MLP start.

    OMP_NUM_THREADS=1 python benchmarks/inverse_probe_schedule.py digits relu --perturb

- ``--whitened``: a test of benchmarks/inverse_feature_rank.py's finding (data-pair neurons are collinear, their
  directions concentrated on the leading principal components): SWIM's hidden layer sampled on the PCA-whitened
  inputs ``X_w = (X − μ) T``, ``T = V max(Λ, 0.01·mean Λ)^{-1/2} Vᵀ``, mapped back to ``X``'s coordinates
  (``W = W_w T``, ``b = b_w − W μ``), under He's initial readout (ReLU rows at He's activation scale,
  ``rebalance_act``) and trained as an MLP start — the same as ``--fresh-readout`` but with isotropic directions.

    OMP_NUM_THREADS=1 python benchmarks/inverse_probe_schedule.py digits relu --whitened

  Two more starts separate the neuron's *direction* from its *kink* (ReLU): ``--whitened --centred-kinks`` moves
  every whitened SWIM neuron's kink to the data mean (``b = −W μ``); ``--he-data-kinks`` is He's start with every
  neuron's kink moved onto a random training point (``b_k = −w_k·x_{i_k}``), as a SWIM neuron's first point sits.

- ``--half-he``: the same width, half of it a SWIM start (the default's prepared start of width/2: calibrated,
  rebalanced, its solved readout) and half He's initial neurons with readout weights 0 — the SWIM start's function
  and head start exactly, plus diverse neurons for training to recruit (findings §12); trained with the default's
  MLP-start schemes (``rebalance+layer_lr+warmup``; tanh ``layer_lr+warmup``).

    OMP_NUM_THREADS=1 python benchmarks/inverse_probe_schedule.py digits relu --half-he

- ``--median-kinks`` (ReLU): SWIM's sampled hidden layer with every neuron's kink moved to the median of its
  pre-activation over the training points (``b_k = −median_i ⟨w_k, x_i⟩``: active on half the points; a SWIM ReLU
  neuron, zero at its first point, is active on 90–100 % of them, findings §12), the ridge readout solved again
  (GCV) and its temperature fitted on the training scores — a solved start again — trained with the default's
  MLP-start schemes (``rebalance+layer_lr+warmup``). With ``--cap-activity c`` each kink moves only as far as
  needed to leave the neuron active on at most a fraction ``c`` of the training points
  (``b ← min(b, −quantile_{1−c} ⟨w, x_i⟩)``; ``c = 0.5`` is about the median).

- ``--baseline``: only He and the SWIM default at the three rates (the first rows of the default mode), for the
  seeds the other modes are repeated on.

Every data set of ``DATA`` takes every mode; docs/findings/inverse.md §9 reports digits (ReLU, tanh),
fashion_mnist (ReLU), and breast_cancer and wine (ReLU, the default mode and ``--fresh-readout``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

import numpy as np
import torch

import dualmap as dm

RESULTS = Path(__file__).parent / "results" / "inverse_probe_schedule.jsonl"
#: data set → (load options, width, epochs); breast_cancer and wine are sets no issue names
DATA = {"digits": ({}, 256, 30), "fashion_mnist": ({"n_train": 10_000}, 128, 5), "breast_cancer": ({}, 128, 30),
        "wine": ({}, 64, 60)}
_training = importlib.import_module("dualmap.train")
_plain_loss = _training.task_loss
_knobs = {"ramp_steps": 0, "start_factor": 1.0, "smoothing": 0.0}


class _RampedAdam(torch.optim.Adam):
    """Adam whose group rates follow the geometric ramp of ``_knobs`` (the probe's only change to training)."""

    def __init__(self, groups, **options):
        super().__init__(groups, **options)
        self._base, self._step = [group["lr"] for group in self.param_groups], 0

    def step(self, closure=None):
        if _knobs["ramp_steps"]:
            factor = _knobs["start_factor"] ** max(0.0, 1.0 - self._step / _knobs["ramp_steps"])
            for group, base in zip(self.param_groups, self._base):
                group["lr"] = base * factor
        self._step += 1
        return super().step(closure)


def _smoothed_loss(outputs, targets, task, reduction="mean"):
    if task == "classification" and _knobs["smoothing"] > 0:
        return torch.nn.functional.cross_entropy(outputs, targets, reduction=reduction,
                                                 label_smoothing=_knobs["smoothing"])
    return _plain_loss(outputs, targets, task, reduction=reduction)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", choices=sorted(DATA))
    parser.add_argument("activation", choices=["relu", "tanh"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--readout-scale", action="store_true", help="probe the readout scale instead")
    parser.add_argument("--fresh-readout", action="store_true", help="SWIM's hidden layers, He's initial readout")
    parser.add_argument("--perturb", action="store_true", help="SWIM start plus σ times He's hidden weights")
    parser.add_argument("--whitened", action="store_true", help="SWIM hidden layer sampled on whitened inputs")
    parser.add_argument("--centred-kinks", action="store_true", help="with --whitened: kinks through the data mean")
    parser.add_argument("--median-kinks", action="store_true", help="SWIM ReLU kinks at the median, readout solved")
    parser.add_argument("--cap-activity", type=float, default=None, help="with --median-kinks: cap activity at c")
    parser.add_argument("--baseline", action="store_true", help="only He and the SWIM default at the three rates")
    parser.add_argument("--half-he", action="store_true", help="half SWIM start, half He neurons with zero readout")
    parser.add_argument("--he-data-kinks", action="store_true", help="He's start, kinks on random training points")
    args = parser.parse_args()
    torch.optim.Adam = _RampedAdam                    # dualmap.train builds torch.optim.Adam(groups, ...)
    _training.task_loss = _smoothed_loss
    options, width, epochs = DATA[args.data]
    ds = dm.load_dataset(args.data, **options)
    classes = np.unique(ds.y_train)
    y_test = torch.as_tensor(np.searchsorted(classes, ds.y_test))
    total_steps = -(-len(ds.X_train) // 128) * epochs

    def test_scores(network):
        outputs = torch.as_tensor(network.predict(ds.X_test))
        return (float(torch.nn.functional.cross_entropy(outputs, y_test)),
                float((outputs.argmax(1) == y_test).double().mean()))

    def run(init, lr, *, ramp=0.0, start_factor=1.0, weight_decay=0.0, smoothing=0.0, start=None, scale=1.0,
            finetune="plain", perturb=None):
        _knobs.update(ramp_steps=int(ramp * total_steps), start_factor=start_factor, smoothing=smoothing)
        started = time.perf_counter()
        model, options = ([width], dict(init=init)) if start is None else (start, dict(finetune=finetune))
        result = dm.train(model, ds.X_train, ds.y_train, activation=args.activation, lr=lr, epochs=epochs,
                          weight_decay=weight_decay, seed=args.seed, checkpoints=2, progress=False, **options)
        test_loss, test_accuracy = test_scores(result.model)
        row = dict(data=args.data, activation=args.activation, width=width, epochs=epochs, seed=args.seed,
                   init=init, lr=lr, ramp=ramp, start_factor=start_factor, weight_decay=weight_decay,
                   smoothing=smoothing, readout_scale=scale, test_loss=test_loss, test_accuracy=test_accuracy,
                   seconds=time.perf_counter() - started, date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        if start is not None:
            row["start_test_loss"], row["start_test_accuracy"] = test_scores(start)
        if perturb is not None:
            row["perturb"], row["finetune"] = perturb, finetune
        print(json.dumps(row), flush=True)
        with RESULTS.open("a") as handle:
            handle.write(json.dumps(row) + "\n")

    if args.fresh_readout:      # ReLU rows rescaled to He's activation scale (rebalance_act), as He's features are
        prepared = dm.train([width], ds.X_train, ds.y_train, activation=args.activation, epochs=1, init="swim",
                            finetune="calibrate+rebalance_act", seed=args.seed, checkpoints=[0, 1],
                            progress=False).checkpoints[0][1]
        he = dm.train([width], ds.X_train, ds.y_train, activation=args.activation, epochs=1, init="he",
                      seed=args.seed, checkpoints=[0, 1], progress=False).checkpoints[0][1]
        start = dm.MLP([w.copy() for w in prepared.weights[:-1]] + [he.weights[-1].copy()],
                       [b.copy() for b in prepared.biases[:-1]] + [he.biases[-1].copy()], list(prepared.activations))
        for lr in (3e-4, 1e-3, 3e-3):
            run("swim_hidden+he_readout", lr, start=start, scale=0.0)
        return
    if args.whitened:
        from dualmap.swim.finetune import rebalance_relu

        mean = ds.X_train.mean(axis=0)
        eigenvalues, vectors = np.linalg.eigh(np.cov(ds.X_train, rowvar=False))
        floored = np.maximum(eigenvalues, 0.01 * eigenvalues.mean())
        whitening = (vectors / np.sqrt(floored)) @ vectors.T
        codes = np.eye(len(classes))[np.searchsorted(classes, ds.y_train)]
        sampled = dm.sample_network((ds.X_train - mean) @ whitening, codes, [width], args.activation,
                                    random_state=args.seed, dtype="float64").network
        weight = sampled.weights[0] @ whitening
        he = dm.train([width], ds.X_train, ds.y_train, activation=args.activation, epochs=1, init="he",
                      seed=args.seed, checkpoints=[0, 1], progress=False).checkpoints[0][1]
        bias = -weight @ mean if args.centred_kinks else sampled.biases[0] - weight @ mean
        start = dm.MLP([weight, he.weights[-1].copy()], [bias, he.biases[-1].copy()], [args.activation, "identity"])
        if args.activation == "relu":
            start = rebalance_relu(start, ds.X_train)
        name = "swim_whitened_centred_kinks" if args.centred_kinks else "swim_whitened_hidden"
        for lr in (3e-4, 1e-3, 3e-3):
            run(name + "+he_readout", lr, start=start, scale=0.0)
        return
    if args.median_kinks:
        from dualmap.swim.readout import fit_ridge, fit_temperature

        codes = np.eye(len(classes))[np.searchsorted(classes, ds.y_train)]
        sampled = dm.sample_network(ds.X_train, codes, [width], args.activation, random_state=args.seed,
                                    dtype="float64").network
        weight = sampled.weights[0]
        projections = ds.X_train @ weight.T
        bias = -np.median(projections, axis=0) if args.cap_activity is None else \
            np.minimum(sampled.biases[0], -np.quantile(projections, 1.0 - args.cap_activity, axis=0))
        hidden = np.maximum(ds.X_train @ weight.T + bias, 0.0)
        solution = fit_ridge(torch.from_numpy(hidden), torch.from_numpy(codes))
        readout, readout_bias = solution.weight.numpy(), solution.bias.numpy()
        temperature = fit_temperature(hidden @ readout.T + readout_bias, np.searchsorted(classes, ds.y_train),
                                      seed=args.seed)
        start = dm.MLP([weight, readout / temperature], [bias, readout_bias / temperature],
                       [args.activation, "identity"])
        name = "swim_median_kinks" if args.cap_activity is None else f"swim_activity_cap_{args.cap_activity:g}"
        for lr in (3e-4, 1e-3, 3e-3):
            run(name, lr, start=start, finetune="rebalance+layer_lr+warmup")
        return
    if args.half_he:
        half = width // 2
        prepared = dm.train([half], ds.X_train, ds.y_train, activation=args.activation, epochs=1, init="swim",
                            seed=args.seed, checkpoints=[0, 1], progress=False).checkpoints[0][1]
        he = dm.train([width - half], ds.X_train, ds.y_train, activation=args.activation, epochs=1, init="he",
                      seed=args.seed, checkpoints=[0, 1], progress=False).checkpoints[0][1]
        start = dm.MLP([np.vstack([prepared.weights[0], he.weights[0]]),
                        np.hstack([prepared.weights[1], np.zeros_like(he.weights[1])])],
                       [np.concatenate([prepared.biases[0], he.biases[0]]), prepared.biases[1].copy()],
                       [args.activation, "identity"])
        schemes = "rebalance+layer_lr+warmup" if args.activation == "relu" else "layer_lr+warmup"
        for lr in (3e-4, 1e-3, 3e-3):
            run("half_swim+half_he", lr, start=start, finetune=schemes)
        return
    if args.he_data_kinks:
        from dualmap.swim.finetune import rebalance_relu

        he = dm.train([width], ds.X_train, ds.y_train, activation=args.activation, epochs=1, init="he",
                      seed=args.seed, checkpoints=[0, 1], progress=False).checkpoints[0][1]
        points = ds.X_train[np.random.default_rng(args.seed).integers(0, len(ds.X_train), size=width)]
        weight = he.weights[0]
        start = dm.MLP([weight.copy(), he.weights[-1].copy()], [-(weight * points).sum(axis=1), he.biases[-1].copy()],
                       [args.activation, "identity"])
        if args.activation == "relu":
            start = rebalance_relu(start, ds.X_train)
        for lr in (3e-4, 1e-3, 3e-3):
            run("he_data_kinks", lr, start=start, scale=0.0)
        return
    if args.perturb:
        prepared = dm.train([width], ds.X_train, ds.y_train, activation=args.activation, epochs=1, init="swim",
                            seed=args.seed, checkpoints=[0, 1], progress=False).checkpoints[0][1]
        he = dm.train([width], ds.X_train, ds.y_train, activation=args.activation, epochs=1, init="he",
                      seed=args.seed, checkpoints=[0, 1], progress=False).checkpoints[0][1]
        schemes = "rebalance+layer_lr+warmup" if args.activation == "relu" else "layer_lr+warmup"
        for sigma in (0.1, 0.3, 1.0):
            start = dm.MLP([w + sigma * h for w, h in zip(prepared.weights[:-1], he.weights[:-1])]
                           + [prepared.weights[-1].copy()],
                           [b + sigma * h for b, h in zip(prepared.biases[:-1], he.biases[:-1])]
                           + [prepared.biases[-1].copy()], list(prepared.activations))
            for lr in (3e-4, 1e-3, 3e-3):
                run("swim+perturb", lr, start=start, finetune=schemes, perturb=sigma)
        return
    if args.readout_scale:
        prepared = dm.train([width], ds.X_train, ds.y_train, activation=args.activation, epochs=1, init="swim",
                            seed=args.seed, checkpoints=[0, 1], progress=False).checkpoints[0][1]
        for scale in (1.0, 0.3, 0.1, 0.03):
            weights = [w.copy() for w in prepared.weights[:-1]] + [scale * prepared.weights[-1]]
            biases = [b.copy() for b in prepared.biases[:-1]] + [scale * prepared.biases[-1]]
            start = dm.MLP(weights, biases, list(prepared.activations))
            for lr in (3e-4, 1e-3, 3e-3):
                run("swim", lr, start=start, scale=scale)
        return

    for lr in (3e-4, 1e-3, 3e-3):
        run("he", lr)
        run("swim", lr)
    if args.baseline:
        return
    for lr, ramp, start_factor in ((3e-3, 0.3, 0.1), (3e-3, 0.5, 0.1), (1e-3, 0.3, 0.3), (3e-3, 1.0, 0.1),
                                   (1e-2, 0.5, 0.03)):
        run("swim", lr, ramp=ramp, start_factor=start_factor)
    for weight_decay, smoothing in ((1e-4, 0.0), (1e-3, 0.0), (0.0, 0.1)):
        run("he", 3e-3, weight_decay=weight_decay, smoothing=smoothing)
        for lr in (3e-4, 1e-3):
            run("swim", lr, weight_decay=weight_decay, smoothing=smoothing)


if __name__ == "__main__":
    main()
