"""Sampled initialisation: a SWIM (or uniform-pair, or random-feature) network with its readout solved,
as the starting point of gradient training (``dm.train(..., init="swim" | "uniform" | "random")``).

It lives next to the sampler, below :mod:`dualmap.train` in the layer order (docs/architecture.md), and is
re-exported as :func:`dualmap.inverse.sampled_start`."""

from __future__ import annotations

import numpy as np
import torch

from .._validation import one_hot
from ..network import MLP
from .finetune import KINK_CAP, move_kinks
from .readout import fit_ridge, fit_temperature
from .sampler import SampledNetwork, sample_network

__all__ = ["SAMPLED_INITS", "sampled_start"]

#: ``dm.train(init=...)`` values that sample the starting network (:mod:`dualmap.swim.density`).
SAMPLED_INITS = ("swim", "uniform", "random")


def sampled_start(X, targets, task: str, widths, activation: str, sampler: str, seed: int, *,
                  readout: str = "gcv", calibration: str = "train",
                  kinks: str = "pair") -> tuple[MLP, SampledNetwork]:
    """Sample hidden layers by ``sampler`` and solve the ridge readout; return the network to train from.

    Classification: the readout is fitted to one-hot codes and divided by the temperature that makes its
    softmax the most likely (:func:`~dualmap.swim.readout.fit_temperature`), so that the network starts with
    calibrated logits under the cross-entropy it is then trained on. Regression: the readout as solved.

    Parameters
    ----------
    targets : ndarray
        Class indices ``(n,)`` (classification) or real targets ``(n, k)`` (regression), as :func:`dualmap.train`
        encodes them.
    readout : {"gcv", "strong"}
        The readout penalty: chosen by generalised cross-validation (the sampler's default), or
        ``α = 0.1 · mean eigenvalue`` of the centred feature Gram matrix (finetune scheme ``ridge``).
    calibration : {"train", "loo"} or None
        Classification: fit the temperature on the readout's scores of the training points (``"train"``, the
        pre-issue-13 start), or on their exact leave-one-out ridge scores (``"loo"``, finetune scheme
        ``calibrate``); None leaves the readout uncalibrated (finetune scheme ``fresh_readout`` replaces it).
        On a training set the ridge readout separates (wine, 133 points, 2×64 random
        features) the training scores call for ``T → 0``: the logits saturate float32's softmax, the
        cross-entropy and its gradient are exactly 0 and training never moves (issue 14, item 8).
    kinks : {"pair", "median", "cap", "auto"}
        ReLU: leave every neuron's kink at its pair's first point (SWIM), move it to the median of its
        pre-activation over ``X`` (finetune scheme ``kink_median``), or only as far as needed to cap the neuron's
        activity at :data:`~dualmap.swim.finetune.KINK_CAP` of the points (``kink_cap``;
        :func:`~dualmap.swim.finetune.move_kinks`), or to the median in the layers that are nearly affine on ``X``
        (``kink_auto``); the readout is then solved again on the moved layers (GCV, or ``readout="strong"``).
    """
    if calibration not in ("train", "loo", None):
        raise ValueError(f"calibration must be 'train', 'loo' or None; got {calibration!r}")
    if readout not in ("gcv", "strong"):
        raise ValueError(f"readout must be 'gcv' or 'strong'; got {readout!r}")
    if kinks not in ("pair", "median", "cap", "auto"):
        raise ValueError(f"kinks must be 'pair', 'median', 'cap' or 'auto'; got {kinks!r}")
    if task == "classification":
        codes = one_hot(targets, np.arange(int(targets.max()) + 1))
    else:
        codes = np.asarray(targets, dtype=np.float64)
    sampled = sample_network(X, codes, widths, activation, sampler=sampler, random_state=seed, dtype="float64")
    network = sampled.network
    alpha = sampled.alpha
    moved = False
    if kinks != "pair":
        shifted = move_kinks(network, X, max_active=KINK_CAP if kinks == "cap" else None, affine_only=kinks == "auto")
        moved = any(not np.array_equal(a, b) for a, b in zip(shifted.biases, network.biases))  # kink_auto may not
        network = shifted
    if moved or readout == "strong" or calibration == "loo":
        features = _last_hidden(network, X)
        centred = features - features.mean(axis=0)
    if moved or readout == "strong":     # the readout solved again: on moved layers (GCV), or with a stronger α
        if readout == "strong":
            alpha = 0.1 * float((centred**2).sum()) / features.shape[1]
        solution = fit_ridge(torch.from_numpy(features), torch.from_numpy(codes),
                             alpha=alpha if readout == "strong" else "auto")
        alpha = solution.alpha
        network = _with_readout(network, solution.weight.numpy(), solution.bias.numpy())
    if task == "classification" and calibration is not None:
        scores = network.forward(X)
        if calibration == "loo":
            scores = _leave_one_out_scores(centred, codes, scores, alpha)
        temperature = fit_temperature(scores, targets, seed=seed)
        network = _with_readout(network, network.weights[-1] / temperature, network.biases[-1] / temperature)
    return network, sampled


def _with_readout(network: MLP, weight: np.ndarray, bias: np.ndarray) -> MLP:
    """``network`` with its hidden layers and the readout ``(weight, bias)``."""
    return MLP(list(network.weights[:-1]) + [weight], list(network.biases[:-1]) + [bias], network.activations)


def _last_hidden(network: MLP, X) -> np.ndarray:
    """The last hidden layer's output on ``X`` (float64)."""
    Z = np.asarray(X, dtype=np.float64)
    for weight, bias, activation in zip(network.weights[:-1], network.biases[:-1], network.activations[:-1]):
        Z = Z @ weight.T + bias
        Z = np.maximum(Z, 0.0) if activation == "relu" else np.tanh(Z)
    return Z


def _leave_one_out_scores(centred: np.ndarray, codes: np.ndarray, scores: np.ndarray, alpha: float) -> np.ndarray:
    """Exact leave-one-out predictions of the ridge readout with an unpenalised bias.

    With the hat matrix ``P = 11ᵀ/n + H_c (H_cᵀH_c + αI)⁻¹ H_cᵀ``: ``ŷ₋ᵢ = (ŷᵢ − Pᵢᵢ yᵢ)/(1 − Pᵢᵢ)``.
    ``1 − Pᵢᵢ`` is clipped at 1e-6 (a point the readout interpolates exactly).
    """
    n, width = centred.shape
    gram = centred.T @ centred + max(alpha, 0.0) * np.eye(width)
    solved = np.linalg.lstsq(gram, centred.T, rcond=None)[0]          # (width, n)
    leverage = 1.0 / n + np.einsum("ij,ji->i", centred, solved)
    return (scores - leverage[:, None] * codes) / np.clip(1.0 - leverage, 1e-6, None)[:, None]
