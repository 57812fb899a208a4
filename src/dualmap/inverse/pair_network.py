"""`PairNetwork`: a network whose hidden neurons are pairs of learnable points in input space.

Hidden neuron ``k`` of layer ``l`` is parametrised by two *virtual points* ``p_k, q_k ∈ R^d`` (input
space). Its weight and bias are the SWIM construction (:func:`~dualmap.swim_neurons`) of the points'
images under the layers before it,

.. math:: (w_k, b_k) = \\mathrm{SWIM}\\big(\\phi_{l-1}(p_k),\\, \\phi_{l-1}(q_k)\\big),
   \\qquad \\phi_0 = \\mathrm{id},\\; \\phi_l = \\sigma(W_l\\, \\phi_{l-1} + b_l),

exactly as SWIM defines a deep sampled network; the readout ``(A, c)`` is free. Trained by gradient
descent on the points and the readout, the network stays a sampled network — of virtual points.
:meth:`PairNetwork.snap` moves every virtual point onto a data point and returns the exact sampled
:class:`~dualmap.MLP` with its pairs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .._backend import to_numpy
from .._neighbours import nearest_points
from .._validation import check_activation, check_data
from ..network import MLP, activation_function
from ..swim.construction import swim_neurons

__all__ = ["PairNetwork"]


class PairNetwork(nn.Module):
    """Hidden layers parametrised by pairs of points in input space (module docstring).

    :func:`dualmap.train` trains it in place through its :class:`~dualmap.train.TrainableModule` interface
    (``parameters``, ``forward``, :meth:`to_mlp`, :meth:`checkpoint_state`).

    Parameters
    ----------
    first_points, second_points : list of array-like of shape (m_l, d)
        Per hidden layer, the virtual points ``p_k`` and ``q_k`` (input space).
    readout_weight : array-like of shape (n_outputs, m_L)
    readout_bias : array-like of shape (n_outputs,)
    activation : {"relu", "tanh"}
    dtype : torch dtype of the parameters, default float64
    """

    def __init__(self, first_points, second_points, readout_weight, readout_bias, activation: str, *,
                 dtype=torch.float64):
        super().__init__()
        check_activation(activation)
        if len(first_points) != len(second_points) or not len(first_points):
            raise ValueError("need one (p, q) pair of point arrays per hidden layer, at least one layer")
        self.activation = activation
        self.first = nn.ParameterList([nn.Parameter(torch.as_tensor(np.asarray(p), dtype=dtype).clone())
                                       for p in first_points])
        self.second = nn.ParameterList([nn.Parameter(torch.as_tensor(np.asarray(q), dtype=dtype).clone())
                                        for q in second_points])
        for layer, (p, q) in enumerate(zip(self.first, self.second)):
            if p.shape != q.shape or p.ndim != 2 or p.shape[1] != self.first[0].shape[1]:
                raise ValueError(f"layer {layer}: p and q must both have shape (width, {self.first[0].shape[1]}); "
                                 f"got {tuple(p.shape)} and {tuple(q.shape)}")
        self.readout = nn.Linear(self.first[-1].shape[0], len(np.asarray(readout_bias)), dtype=dtype)
        with torch.no_grad():
            self.readout.weight.copy_(torch.as_tensor(np.asarray(readout_weight), dtype=dtype))
            self.readout.bias.copy_(torch.as_tensor(np.asarray(readout_bias), dtype=dtype))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pairs(cls, network: MLP, pairs, X, *, dtype=torch.float64) -> "PairNetwork":
        """The pair network of a sampled ``network`` whose layer ``l`` is the SWIM construction of the rows
        ``pairs[l]`` of ``X`` (e.g. ``SampledNetwork.network`` and ``.pairs``); it computes that network."""
        X = check_data(X)
        activations = set(network.activations[:-1])
        if len(activations) != 1:
            raise ValueError(f"a PairNetwork has one hidden activation; the network has {sorted(activations)}")
        if [len(p) for p in pairs] != list(network.hidden_widths):
            raise ValueError(f"pairs must have one (width, 2) array per hidden layer {network.hidden_widths}")
        first = [X[np.asarray(p)[:, 0]] for p in pairs]
        second = [X[np.asarray(p)[:, 1]] for p in pairs]
        return cls(first, second, network.weights[-1], network.biases[-1], activations.pop(), dtype=dtype)

    # ------------------------------------------------------------------ computation
    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(p.shape[0] for p in self.first)

    def hidden_parameters(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The hidden layers' weights and biases, built from the virtual points (differentiable)."""
        sigma = activation_function(self.activation)
        weights, biases = [], []
        for layer in range(len(self.first)):
            p, q = self.first[layer], self.second[layer]
            for weight, bias in zip(weights, biases):          # push this layer's points through the earlier ones
                p = sigma(torch.addmm(bias, p, weight.T))
                q = sigma(torch.addmm(bias, q, weight.T))
            weight, bias = swim_neurons(p, q, self.activation)
            weights.append(weight)
            biases.append(bias)
        return weights, biases

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        sigma = activation_function(self.activation)
        Z = X
        for weight, bias in zip(*self.hidden_parameters()):
            Z = sigma(torch.addmm(bias, Z, weight.T))
        return self.readout(Z)

    def to_mlp(self) -> MLP:
        """The network the virtual points define now, as an :class:`~dualmap.MLP`."""
        with torch.no_grad():
            weights, biases = self.hidden_parameters()
            return MLP([to_numpy(w) for w in weights] + [to_numpy(self.readout.weight)],
                       [to_numpy(b) for b in biases] + [to_numpy(self.readout.bias)],
                       [self.activation] * len(weights) + ["identity"])

    def checkpoint_state(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The virtual points now, ``(first, second)``: per hidden layer float64 copies of shape (m_l, d) —
        what :func:`dualmap.train` keeps at every checkpoint (``TrainRun.points``)."""
        return ([p.detach().cpu().double().numpy().copy() for p in self.first],
                [q.detach().cpu().double().numpy().copy() for q in self.second])

    # ------------------------------------------------------------------ snapping
    def snap(self, X) -> tuple[MLP, list[np.ndarray]]:
        """Move every virtual point onto its nearest row of ``X``; return the exact sampled MLP and its pairs.

        A pair whose two points snap onto the same data point (or onto two equal rows) takes the nearest
        row that differs from the first point for its second point. The readout is kept.

        Returns
        -------
        network : MLP
            Layer ``l`` is the SWIM construction of the rows ``pairs[l]`` of ``X`` (pushed through the
            snapped layers before it); the readout is this network's.
        pairs : list of ndarray of shape (m_l, 2), int64
        """
        X = check_data(X, min_samples=2, n_features=self.first[0].shape[1])
        X_t = torch.as_tensor(X, dtype=torch.float64)
        pairs = []
        with torch.no_grad():
            for p, q in zip(self.first, self.second):
                nearest_p = nearest_points(X_t, p.detach().double(), 1)[:, 0]
                candidates_q = nearest_points(X_t, q.detach().double(), min(8, len(X)))
                same = (X_t[candidates_q] == X_t[nearest_p][:, None, :]).all(dim=-1)      # (m, 8)
                if bool(same.all(dim=1).any()):
                    raise ValueError("could not find a data point distinct from a pair's first point among the "
                                     "8 nearest to its second point; X has too many duplicates")
                choice = (~same).to(torch.int64).argmax(dim=1)
                nearest_q = candidates_q[torch.arange(len(q)), choice]
                pairs.append(torch.stack([nearest_p, nearest_q], dim=1).cpu().numpy().astype(np.int64))
        snapped = PairNetwork([X[pq[:, 0]] for pq in pairs], [X[pq[:, 1]] for pq in pairs],
                              to_numpy(self.readout.weight), to_numpy(self.readout.bias), self.activation)
        return snapped.to_mlp(), pairs
