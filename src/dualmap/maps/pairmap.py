"""`PairMap`: the result of a forward map — one ordered pair of data points per hidden neuron."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import torch

from .._backend import as_tensor, to_numpy
from .._io import CorruptFileError, load_archive, save_archive
from .._validation import check_data, check_targets
from ..network import MLP, activation_function
from ..swim.construction import swim_neurons
from ..swim.readout import fit_ridge

__all__ = ["PairMap", "fingerprint", "SCORE_NAMES"]

#: Per-neuron scores every PairMap carries (see :func:`dualmap.maps._scores.neuron_scores`).
SCORE_NAMES = ("direction_cosine", "offset_error", "norm_ratio", "activation_correlation")


def fingerprint(X: np.ndarray) -> str:
    """SHA-1 of the data's shape and float64 bytes: ties a PairMap to the ``X`` its indices point into."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    return hashlib.sha1(repr(X.shape).encode() + X.tobytes()).hexdigest()


@dataclass
class PairMap:
    """The pairs of data points that reproduce the hidden neurons of a trained network.

    Attributes
    ----------
    pairs : list of ndarray of shape (width_l, 2), int64
        Per hidden layer, rows ``(i1, i2)`` of ``X``: neuron ``k`` of layer ``l`` is the SWIM neuron of
        ``(z_l(x_i1), z_l(x_i2))``, with ``z_l`` the images of the inputs under the converted layers before ``l``.
    scales : list of ndarray of shape (width_l,)
        ReLU: ``c > 0`` with trained neuron ≈ ``c`` × SWIM neuron (in the converted representation);
        tanh: 1.
    scores : list of dict of str → ndarray of shape (width_l,)
        Per layer: ``direction_cosine``, ``offset_error``, ``norm_ratio``, ``activation_correlation``
        (and the method's own ``match_score``).
    activations : list of str
        Hidden activations.
    method : str
    params : dict
        The map's parameters.
    x_fingerprint : str
        :func:`fingerprint` of the ``X`` the pairs index.
    teacher_readout : tuple of ndarray
        The trained network's readout ``(W, b)`` and the mean trained output on ``X``, for ``readout="keep"``.
    seconds : float
        Wall time of the map.
    """

    pairs: list
    scales: list
    scores: list
    activations: list
    method: str
    params: dict
    x_fingerprint: str
    teacher_readout: tuple = field(repr=False, default=())
    seconds: float = 0.0

    @property
    def widths(self) -> tuple[int, ...]:
        """Hidden widths."""
        return tuple(len(p) for p in self.pairs)

    # ------------------------------------------------------------------ rebuild
    def hidden_layers(self, X, *, dtype=torch.float64):
        """The converted hidden layers rebuilt from the pairs on ``X``: lists of weights and biases (numpy).

        Layer ``l`` is :func:`~dualmap.swim.swim_neurons` of the pairs' images under layers ``0..l-1``.
        """
        X = self._check_X(X)
        Z = as_tensor(X, device=torch.device("cpu"), dtype=dtype)
        weights, biases = [], []
        for pairs, activation in zip(self.pairs, self.activations):
            index = torch.as_tensor(pairs)
            weight, bias = swim_neurons(Z[index[:, 0]], Z[index[:, 1]], activation)
            weights.append(to_numpy(weight))
            biases.append(to_numpy(bias))
            Z = activation_function(activation)(torch.addmm(bias, Z, weight.T))
        return weights, biases, to_numpy(Z)

    @classmethod
    def of_sampled(cls, pairs, activation: str, X, *, method: str) -> "PairMap":
        """The map of a network that *is* sampled from ``pairs`` of rows of ``X`` (unit scales, no scores):
        e.g. a SWIM network, or a snapped :class:`~dualmap.PairNetwork`."""
        pairs = [np.asarray(p, dtype=np.int64) for p in pairs]
        return cls(pairs=pairs, scales=[np.ones(len(p)) for p in pairs], scores=[{} for _ in pairs],
                   activations=[activation] * len(pairs), method=method, params={}, x_fingerprint=fingerprint(X))

    def to_mlp(self, X, targets=None, *, readout="refit", alpha="auto") -> MLP:
        """The converted sampled network: hidden layers from the pairs, and a readout.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The data the map was computed on (checked by fingerprint).
        targets : ndarray of shape (n_samples,) or (n_samples, n_outputs), optional
            For ``readout="refit"``: the trained network's outputs on ``X`` (measures the map) or the true
            targets (one-hot for classes: the converted network as a model in its own right).
        readout : {"refit", "keep"}, default="refit"
            ``"refit"``: ridge regression of ``targets`` on the last converted layer.
            ``"keep"``: the trained readout weights, multiplied by the last layer's ReLU ``scales``, with the
            bias shifted so that the mean output on ``X`` equals the trained network's.
        alpha : float or "auto"
            Ridge penalty for ``"refit"``.
        """
        weights, biases, features = self.hidden_layers(X)
        if readout == "refit":
            if targets is None:
                raise ValueError("readout='refit' needs targets (the trained outputs, or the true targets)")
            targets = check_targets(targets, len(features), name="targets")
            targets = targets.reshape(len(features), -1)
            solution = fit_ridge(torch.from_numpy(features), torch.from_numpy(np.asarray(targets, dtype=np.float64)),
                                 alpha)
            out_weight, out_bias = to_numpy(solution.weight), to_numpy(solution.bias)
        elif readout == "keep":
            teacher_weight, _, teacher_mean = self.teacher_readout
            out_weight = teacher_weight * self.scales[-1][None, :]
            out_bias = teacher_mean - features.mean(axis=0) @ out_weight.T
        else:
            raise ValueError(f"readout must be 'refit' or 'keep'; got {readout!r}")
        return MLP(weights + [out_weight], biases + [out_bias], list(self.activations) + ["identity"])

    def _check_X(self, X) -> np.ndarray:
        X = check_data(X)
        if fingerprint(X) != self.x_fingerprint:
            raise ValueError(
                "X is not the data this PairMap was computed on (fingerprint differs); its pairs index rows of "
                "that exact array"
            )
        return X

    # ------------------------------------------------------------------ report
    def summary(self) -> dict:
        """Median of every per-neuron score, per layer, plus the method, widths and time."""
        layers = []
        for index, layer_scores in enumerate(self.scores):
            entry = {"layer": index, "width": self.widths[index], "activation": self.activations[index],
                     "distinct_pairs": int(len(np.unique(self.pairs[index], axis=0)))}
            for name, values in layer_scores.items():
                entry[f"median_{name}"] = float(np.median(values))
            layers.append(entry)
        return {"method": self.method, "params": self.params, "seconds": self.seconds, "layers": layers}

    def __repr__(self) -> str:
        return f"PairMap(method={self.method!r}, widths={self.widths}, activations={self.activations})"

    # ------------------------------------------------------------------ save/load
    def save(self, path):
        """Save to a dualmap archive (``docs/file-format.md``)."""
        arrays = {}
        for index, (pairs, scales, layer_scores) in enumerate(zip(self.pairs, self.scales, self.scores)):
            arrays[f"pairs_{index}"] = pairs
            arrays[f"scales_{index}"] = scales
            for name, values in layer_scores.items():
                arrays[f"score_{index}_{name}"] = values
        if self.teacher_readout:
            arrays["teacher_weight"], arrays["teacher_bias"], arrays["teacher_mean"] = self.teacher_readout
        meta = {"method": self.method, "params": self.params, "activations": list(self.activations),
                "x_fingerprint": self.x_fingerprint, "seconds": self.seconds, "n_layers": len(self.pairs),
                "score_names": [list(s) for s in self.scores]}
        return save_archive(path, "PairMap", arrays, json.loads(json.dumps(meta, default=str)))

    @classmethod
    def load(cls, path) -> "PairMap":
        """Load a PairMap written by :meth:`save`."""
        meta, arrays = load_archive(path, "PairMap")
        try:
            n = int(meta["n_layers"])
            scores = [{name: arrays[f"score_{i}_{name}"] for name in meta["score_names"][i]} for i in range(n)]
            teacher = ((arrays["teacher_weight"], arrays["teacher_bias"], arrays["teacher_mean"])
                       if "teacher_weight" in arrays else ())
            return cls(pairs=[arrays[f"pairs_{i}"] for i in range(n)], scales=[arrays[f"scales_{i}"] for i in range(n)],
                       scores=scores, activations=meta["activations"], method=meta["method"], params=meta["params"],
                       x_fingerprint=meta["x_fingerprint"], teacher_readout=teacher, seconds=meta.get("seconds", 0.0))
        except (KeyError, ValueError, IndexError) as exc:
            raise CorruptFileError(f"{path} is not a valid PairMap file: {exc}") from exc
