"""Planted networks: SWIM networks with known pairs, hidden by the symmetries a map must see through."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._backend import to_numpy
from .._validation import check_activation, check_data, check_layer_widths
from ..network import MLP, activation_function
from ..swim.construction import swim_neurons
from ..swim.density import coincidence_tolerance

__all__ = ["PlantedNetwork", "planted_network", "planted_recovery"]


@dataclass
class PlantedNetwork:
    """A network built from known pairs.

    Attributes
    ----------
    network : MLP
        The hidden network (permuted, and for ReLU rescaled) plus a random readout.
    pairs : list of ndarray of shape (width_l, 2)
        The true pair of every neuron, in the network's neuron order.
    scales : list of ndarray of shape (width_l,)
        ReLU: the factor ``c`` with network neuron = ``c`` × SWIM neuron (1 for tanh).
    """

    network: MLP
    pairs: list
    scales: list


def _distinct_pairs(Z: np.ndarray, candidates: np.ndarray, width: int, rng: np.random.Generator) -> np.ndarray:
    """``width`` distinct ordered pairs of rows of ``candidates`` whose points differ in ``Z``."""
    n = len(candidates)
    if n * (n - 1) < width:
        raise ValueError(f"{n} distinct points give only {n * (n - 1)} ordered pairs; width {width} is too large")
    tolerance = coincidence_tolerance(torch.from_numpy(Z))
    chosen: list[np.ndarray] = []
    seen: set[tuple[int, int]] = set()
    while len(chosen) < width:
        code = rng.choice(n * (n - 1), size=2 * (width - len(chosen)), replace=False)
        first = code // (n - 1)
        second = code % (n - 1)
        second = second + (second >= first)
        for i, j in zip(candidates[first], candidates[second]):
            if (i, j) not in seen and np.linalg.norm(Z[j] - Z[i]) > tolerance:
                seen.add((int(i), int(j)))
                chosen.append(np.array([i, j]))
                if len(chosen) == width:
                    break
    return np.stack(chosen).astype(np.int64)


def planted_network(X, widths, activation, *, seed=0, rescale=True, permute=True, n_outputs=1) -> PlantedNetwork:
    """Build a SWIM network from known random pairs of distinct points, then hide the pairs.

    Every hidden layer ``l`` is :func:`~dualmap.swim.swim_neurons` of random distinct pairs of the images
    of the distinct rows of ``X`` under layers ``0..l-1``. The hiding: a random permutation of every
    layer's neurons (``permute``) and, for ReLU, a random positive factor ``c ~ logU(0.2, 5)`` per neuron
    (``(w, b, a) → (c·w, c·b, a/c)``, ``rescale``); the network computes the same function throughout.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The data the pairs are drawn from (at least 2 rows); its distinct rows are the candidates.
    widths : int or sequence of int
        Hidden layer widths; each must not exceed the number of ordered pairs of distinct points.
    activation : {"relu", "tanh"}
        Activation of every hidden layer.
    seed : int, default=0
        Seed of the pairs, the permutation, the ReLU factors and the readout.
    rescale : bool, default=True
        ReLU only: multiply every neuron by a random factor ``c ~ logU(0.2, 5)`` and its outgoing weights by
        ``1/c``.
    permute : bool, default=True
        Shuffle every layer's neurons (and the next layer's inputs with them).
    n_outputs : int, default=1
        Width of the random readout ``N(0, 1/width)`` (bias ``N(0, 1)``).

    Returns
    -------
    PlantedNetwork
    """
    X = check_data(X, min_samples=2)
    widths = check_layer_widths(widths, name="widths")
    check_activation(activation)
    rng = np.random.default_rng(seed)
    _, distinct_rows = np.unique(X, axis=0, return_index=True)
    Z = torch.from_numpy(np.asarray(X, dtype=np.float64))
    sigma = activation_function(activation)
    weights, biases, pairs, scales = [], [], [], []
    for width in widths:
        layer_pairs = _distinct_pairs(Z.numpy(), np.sort(distinct_rows), width, rng)
        weight, bias = swim_neurons(Z[layer_pairs[:, 0]], Z[layer_pairs[:, 1]], activation)
        weights.append(to_numpy(weight))
        biases.append(to_numpy(bias))
        pairs.append(layer_pairs)
        Z = sigma(torch.addmm(bias, Z, weight.T))
    readout = rng.normal(size=(n_outputs, widths[-1])) / np.sqrt(widths[-1])
    weights.append(readout)
    biases.append(rng.normal(size=n_outputs))
    for layer, width in enumerate(widths):
        scale = np.exp(rng.uniform(np.log(0.2), np.log(5.0), size=width)) if (rescale and activation == "relu") \
            else np.ones(width)
        order = rng.permutation(width) if permute else np.arange(width)
        weights[layer] = (weights[layer] * scale[:, None])[order]
        biases[layer] = (biases[layer] * scale)[order]
        weights[layer + 1] = (weights[layer + 1] / scale[None, :])[:, order]
        pairs[layer] = pairs[layer][order]
        scales.append(scale[order])
    network = MLP(weights, biases, [activation] * len(widths) + ["identity"])
    return PlantedNetwork(network=network, pairs=pairs, scales=scales)


def planted_recovery(recovered_pairs, true_pairs, X) -> list[float]:
    """Fraction of neurons per layer whose recovered pair is the true pair (as points of ``X``: a duplicate
    row of a true point counts as that point).

    Parameters
    ----------
    recovered_pairs, true_pairs : list of ndarray of shape (width_l, 2)
        Per hidden layer, row indices into ``X`` (e.g. ``PairMap.pairs`` and ``PlantedNetwork.pairs``).
    X : ndarray of shape (n_samples, n_features)

    Returns
    -------
    list of float, one per layer
    """
    X = check_data(X)
    recovered_pairs, true_pairs = list(recovered_pairs), list(true_pairs)
    if len(recovered_pairs) != len(true_pairs):
        raise ValueError(f"recovered_pairs has {len(recovered_pairs)} layers, true_pairs {len(true_pairs)}")
    fractions = []
    for layer, (found, truth) in enumerate(zip(recovered_pairs, true_pairs)):
        found, truth = np.asarray(found), np.asarray(truth)
        if found.ndim != 2 or found.shape[1] != 2 or found.shape != truth.shape:
            raise ValueError(f"layer {layer}: recovered pairs have shape {found.shape} and true pairs {truth.shape}; "
                             "both must be (width, 2) arrays of the same width")
        if found.size and (found.min() < 0 or max(found.max(), truth.max()) >= len(X) or truth.min() < 0):
            raise ValueError(f"layer {layer}: pair indices must be rows of X (0 … {len(X) - 1})")
        same = np.all(X[found[:, 0]] == X[truth[:, 0]], axis=1) & np.all(X[found[:, 1]] == X[truth[:, 1]], axis=1)
        fractions.append(float(np.mean(same)))
    return fractions
