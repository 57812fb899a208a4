"""Sampling a whole network layer by layer (SWIM, uniform pairs, or random features)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._backend import as_tensor, resolve_device, resolve_dtype, to_numpy
from .._threads import single_thread_below, swim_fit_flops
from .._validation import check_activation, check_data, check_int, check_layer_widths, check_targets
from ..network import MLP, activation_function
from .construction import swim_neurons
from .density import SAMPLERS, sample_pairs
from .readout import fit_ridge

__all__ = ["SampledNetwork", "sample_network", "sample_hidden_layers"]


@dataclass
class SampledNetwork:
    """A sampled network and how it was made.

    Attributes
    ----------
    network : MLP
        Hidden layers and the ridge readout.
    pairs : list of ndarray of shape (width_l, 2), int64
        Per hidden layer, row indices ``(i1, i2)`` into the training ``X`` of every neuron's pair
        (``-1`` for the data-agnostic ``"random"`` sampler).
    alpha : float
        The readout penalty used.
    features : torch.Tensor of shape (n_samples, width_last) or None
        The last hidden layer's output on the training points, in the sampling dtype, as the readout saw
        it; only with ``keep_features=True`` (it can be large: n × width).
    """

    network: MLP
    pairs: list
    alpha: float
    features: torch.Tensor | None = None


def _check_sampler(sampler):
    if getattr(sampler, "is_pair_prior", False):          # dualmap.inverse.PairPrior (duck-typed: no import cycle)
        return sampler
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; supported: {list(SAMPLERS)} or a fitted "
                         f"dualmap.inverse.PairPrior")
    return sampler


def sample_hidden_layers(Z: torch.Tensor, targets: torch.Tensor | None, layer_widths, activation: str, *,
                         sampler: str, rng: np.random.Generator, candidates_per_point: int = 1):
    """Sample the hidden layers on ``Z`` (the inputs), layer by layer; return weights, biases, pairs, features.

    Layer ``l`` draws its pairs (:func:`~dualmap.swim.density.sample_pairs`) on the images ``Z_l`` of the
    input points under layers ``0..l-1``, always scored against the original ``targets``, and builds
    its neurons with :func:`~dualmap.swim.construction.swim_neurons` from the rows ``Z_l[i1], Z_l[i2]``.

    Returns
    -------
    weights, biases : lists of tensors, (width_l, d_l) and (width_l,)
    pairs : list of ndarray (width_l, 2)
    features : torch.Tensor (n_points, width_last) — the last hidden layer's output.
    """
    sigma = activation_function(activation)
    weights, biases, pairs = [], [], []
    for layer, width in enumerate(layer_widths):
        if getattr(sampler, "is_pair_prior", False):
            layer_pairs = sampler.sample_pairs(Z, width, rng, targets=targets,
                                               candidates_per_point=candidates_per_point, layer=layer)
            index = torch.as_tensor(layer_pairs, device=Z.device)
            weight, bias = swim_neurons(Z[index[:, 0]], Z[index[:, 1]], activation)
        elif sampler == "random":
            weight = as_tensor(rng.standard_normal((width, Z.shape[1])), device=Z.device, dtype=Z.dtype)
            bias = as_tensor(rng.uniform(-np.pi, np.pi, size=width), device=Z.device, dtype=Z.dtype)
            layer_pairs = np.full((width, 2), -1, dtype=np.int64)
        else:
            layer_pairs = sample_pairs(Z, width, rng, targets=targets if sampler == "swim" else None,
                                       candidates_per_point=candidates_per_point, layer=layer)
            index = torch.as_tensor(layer_pairs, device=Z.device)
            weight, bias = swim_neurons(Z[index[:, 0]], Z[index[:, 1]], activation)
        weights.append(weight)
        biases.append(bias)
        pairs.append(layer_pairs)
        Z = torch.addmm(bias, Z, weight.T)
        Z = sigma(Z) if activation == "relu" else Z.tanh_()
    return weights, biases, pairs, Z


def sample_network(X, targets, layer_widths=(512,), activation="tanh", *, sampler="swim", alpha="auto",
                   random_state=None, device="auto", dtype="float32", candidates_per_point=1,
                   keep_features=False) -> SampledNetwork:
    """Sample a network on ``(X, targets)``: hidden layers by ``sampler``, then a ridge readout.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    targets : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        Real targets of the readout (one-hot codes for classification).
    layer_widths : sequence of int
    activation : {"relu", "tanh"}
    sampler : {"swim", "uniform", "random"} or dualmap.inverse.PairPrior
        SWIM's density, uniform pairs, random features, or a pair prior fitted on forward maps of trained
        networks (:func:`dualmap.inverse.fit_pair_prior`).
    alpha : float or "auto"
        Readout penalty (:func:`~dualmap.swim.readout.fit_ridge`).
    random_state : int, numpy Generator or None
    device : {"auto", "cpu", "cuda"}
    dtype : {"float32", "float64"}
        Precision of the features; the readout is always solved in float64.
    candidates_per_point : int
        Multiplies the number of candidate pairs.
    keep_features : bool, default=False
        Return the last hidden layer's features of ``X`` (``SampledNetwork.features``), so that a caller
        needing outputs on training points does not compute them again.

    Returns
    -------
    SampledNetwork
        Its ``network`` holds float64 parameters.
    """
    X = check_data(X, min_samples=2)
    targets = check_targets(targets, X.shape[0], name="targets")
    widths = check_layer_widths(layer_widths)
    check_activation(activation)
    _check_sampler(sampler)
    check_int(candidates_per_point, "candidates_per_point")
    return _sample_validated(X, targets.reshape(len(targets), -1), widths, activation, sampler=sampler, alpha=alpha,
                             random_state=random_state, device=device, dtype=dtype,
                             candidates_per_point=candidates_per_point, keep_features=keep_features)


def _sample_validated(X, targets2d, widths, activation, *, sampler, alpha, random_state, device, dtype,
                      candidates_per_point, keep_features) -> SampledNetwork:
    """:func:`sample_network` on arguments its caller has validated (``X`` finite, 2-D, at least 2 rows;
    ``targets2d`` finite ``(n, k)``; ``widths`` a tuple of positive ints; the other options checked)."""
    if not np.any(np.ptp(X, axis=0) > 0):
        raise ValueError(f"X has {X.shape[0]} rows but they are all the same point; "
                         f"SWIM needs at least 2 distinct points")
    rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
    torch_device, torch_dtype = resolve_device(device), resolve_dtype(dtype)
    Z = as_tensor(X, device=torch_device, dtype=torch_dtype)
    score_tensor = as_tensor(targets2d, device=torch_device, dtype=torch.float64)
    # small fits on one thread: three pools (torch, numpy's and scipy's OpenBLAS) spin against each other
    with torch.no_grad(), single_thread_below(swim_fit_flops(len(X), X.shape[1], widths)):
        weights, biases, pairs, features = sample_hidden_layers(
            Z, score_tensor, widths, activation, sampler=sampler, rng=rng, candidates_per_point=candidates_per_point,
        )
        solution = fit_ridge(features, as_tensor(targets2d, device=torch_device, dtype=torch_dtype), alpha)
    network = MLP(
        [to_numpy(w).astype(np.float64) for w in weights] + [to_numpy(solution.weight)],
        [to_numpy(b).astype(np.float64) for b in biases] + [to_numpy(solution.bias)],
        [activation] * len(widths) + ["identity"],
    )
    return SampledNetwork(network=network, pairs=pairs, alpha=solution.alpha,
                          features=features if keep_features else None)
