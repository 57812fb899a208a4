"""Sampled initialisation: a SWIM (or uniform-pair, or random-feature) network with its readout solved,
as the starting point of gradient training."""

from __future__ import annotations

import numpy as np

from ..network import MLP
from ..swim.readout import fit_temperature
from ..swim.sampler import SampledNetwork, sample_network

__all__ = ["SAMPLED_INITS", "sampled_start"]

#: ``dm.train(init=...)`` values that sample the starting network (:mod:`dualmap.swim.density`).
SAMPLED_INITS = ("swim", "uniform", "random")


def sampled_start(X, targets, task: str, widths, activation: str, sampler: str, seed: int) -> tuple[MLP, SampledNetwork]:
    """Sample hidden layers by ``sampler`` and solve the ridge readout; return the network to train from.

    Classification: the readout is fitted to one-hot codes and divided by the temperature that makes its
    softmax the most likely (:func:`~dualmap.swim.readout.fit_temperature`), so that the network starts with
    calibrated logits under the cross-entropy it is then trained on. Regression: the readout as solved.

    Parameters
    ----------
    targets : ndarray
        Class indices ``(n,)`` (classification) or real targets ``(n, k)`` (regression), as :func:`dualmap.train`
        encodes them.
    """
    if task == "classification":
        n_classes = int(targets.max()) + 1
        codes = np.eye(n_classes)[targets]
    else:
        codes = np.asarray(targets, dtype=np.float64)
    sampled = sample_network(X, codes, widths, activation, sampler=sampler, random_state=seed, dtype="float64")
    network = sampled.network
    if task == "classification":
        temperature = fit_temperature(network.forward(X), targets, seed=seed)
        weights = list(network.weights[:-1]) + [network.weights[-1] / temperature]
        biases = list(network.biases[:-1]) + [network.biases[-1] / temperature]
        network = MLP(weights, biases, network.activations)
    return network, sampled
