"""`PairMap`: the result of a forward map — per hidden neuron, ``k`` ordered pairs of data points (its atoms)
and the affine combination of their SWIM neurons that reproduces it (docs/maths.md §5)."""

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

__all__ = ["PairMap", "RebuiltLayers", "fingerprint", "network_fingerprint", "SCORE_NAMES", "READOUTS"]

#: Per-neuron scores every PairMap carries (see :func:`dualmap.maps._scores.neuron_scores`).
SCORE_NAMES = ("direction_cosine", "offset_error", "norm_ratio", "activation_correlation", "neuron_r2")

#: ``to_mlp`` readouts: the trained network's own downstream weights with the atoms' coefficients folded in
#: (the rebuilt network), a ridge refit, or the one-pair approximation with the trained readout rescaled.
READOUTS = ("trained", "refit", "keep")


def fingerprint(X: np.ndarray) -> str:
    """SHA-1 of the data's shape and float64 bytes: ties a PairMap to the ``X`` its indices point into."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    return hashlib.sha1(repr(X.shape).encode() + X.tobytes()).hexdigest()


def network_fingerprint(mlp: MLP) -> str:
    """SHA-1 of a network's activations, shapes and float64 weights: ties a PairMap to the network it maps."""
    digest = hashlib.sha1(repr(list(mlp.activations)).encode())
    for weight, bias in zip(mlp.weights, mlp.biases):
        for array in (weight, bias):
            array = np.ascontiguousarray(array, dtype=np.float64)
            digest.update(repr(array.shape).encode() + array.tobytes())
    return digest.hexdigest()


def fold_coefficients(weight, bias, coefficients):
    r"""A next layer ``(W, b)`` acting on neurons, rewritten to act on their atoms: with every neuron ``i``
    reproduced as :math:`\sum_m c_{im}\varphi_{im} + c_{i0}`,

    .. math:: W'_{:, ik+m} = W_{:, i}\, c_{im}, \qquad b' = b + W c_0 .

    Works on numpy arrays and torch tensors alike: ``weight`` (m, width), ``bias`` (m,),
    ``coefficients`` (width, k + 1) → ``W'`` (m, width·k), ``b'`` (m,).
    """
    folded = weight[:, :, None] * coefficients[None, :, :-1]
    return folded.reshape(weight.shape[0], -1), bias + weight @ coefficients[:, -1]


@dataclass
class PairMap:
    """The pairs of data points that reproduce the hidden neurons of a trained network.

    Attributes
    ----------
    pairs : list of ndarray of shape (width_l, 2), int64
        Per hidden layer, each neuron's principal atom ``atoms[l][:, 0]``: rows ``(i1, i2)`` of ``X`` whose SWIM
        neuron in ``(z_l(x_i1), z_l(x_i2))`` reproduces the neuron best, with ``z_l`` the images of the inputs
        under the rebuilt layers before ``l``.
    atoms : list of ndarray of shape (width_l, k, 2), int64
        Every neuron's ``k`` atoms, the largest contribution first (k = 1: ``pairs[l][:, None]``).
    coefficients : list of ndarray of shape (width_l, k + 1)
        The affine combination ``ĥ_j = Σ_m c_jm φ_jm + c_j0`` (last column the intercept), least squares on ``X``.
    steepness : list of ndarray of shape (width_l, k) or None
        The atoms' steepness ``γ`` (``steepness="free"``); None for strict SWIM neurons (γ = 1).
    scales : list of ndarray of shape (width_l,)
        ReLU: ``c > 0`` with trained neuron ≈ ``c`` × SWIM neuron (in the converted representation);
        tanh: 1.
    scores : list of dict of str → ndarray of shape (width_l,)
        Per layer: ``direction_cosine``, ``offset_error``, ``norm_ratio``, ``activation_correlation`` (of the
        principal atom), ``neuron_r2`` (R² of the affine combination of all atoms against the trained neuron
        on ``X``) and the method's own ``match_score``.
    activations : list of str
        Hidden activations.
    method : str
    params : dict
        The map's parameters.
    x_fingerprint : str
        :func:`fingerprint` of the ``X`` the pairs index.
    teacher_readout : tuple of ndarray
        The trained network's readout ``(W, b)`` and the mean trained output on ``X``.
    network_fingerprint : str
        :func:`network_fingerprint` of the network that was mapped ("" when unknown).
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
    atoms: list | None = None
    coefficients: list | None = None
    steepness: list | None = None
    network_fingerprint: str = ""

    def __post_init__(self):
        self.pairs = [np.asarray(p, dtype=np.int64) for p in self.pairs]
        if self.atoms is None:
            self.atoms = [p[:, None, :] for p in self.pairs]
        if self.coefficients is None:   # one pair per neuron, no fitted combination: the ReLU scale, no intercept
            self.coefficients = [np.stack([np.asarray(s, dtype=np.float64), np.zeros(len(s))], axis=1)
                                 for s in self.scales]

    @property
    def n_atoms(self) -> int:
        """``k``: atoms per neuron."""
        return int(self.atoms[0].shape[1]) if self.atoms else 1

    @property
    def widths(self) -> tuple[int, ...]:
        """Hidden widths."""
        return tuple(len(p) for p in self.pairs)

    # ------------------------------------------------------------------ rebuild
    def hidden_layers(self, X, *, dtype=torch.float64):
        """The rebuilt hidden layers on ``X``: lists of weights and biases (numpy) and the last layer's output.

        Layer ``l`` has ``width_l · k`` neurons, neuron-major (neuron ``i``'s atoms are rows ``i·k … i·k+k−1``),
        each :func:`~dualmap.swim.swim_neurons` of its atom's images under the rebuilt layers ``0..l-1``
        (times its steepness ``γ`` when relaxed). These are the strict atoms, unscaled: the coefficients act
        in the next layer (:meth:`to_mlp`).
        """
        layers = self.rebuild(X, dtype=dtype)
        return layers.weights, layers.biases, layers.features

    def rebuild(self, X, *, dtype=torch.float64, x_fingerprint: str | None = None) -> "RebuiltLayers":
        """The rebuilt hidden layers on ``X`` (:meth:`hidden_layers`), checked against the map once and kept,
        so that several readouts (:meth:`RebuiltLayers.to_mlp`) share one validation and one forward pass.

        ``x_fingerprint``: the fingerprint of ``X`` when the caller already holds it (a
        :class:`~dualmap.maps.DataContext`'s, for every checkpoint of a track): it is compared instead of hashing
        ``X`` again (0.17 s for 10 000 × 784 floats). The caller vouches that it belongs to ``X``."""
        X = self._check_X(X, x_fingerprint)
        Z = as_tensor(X, device=torch.device("cpu"), dtype=dtype)
        weights, biases = [], []
        for layer, (atoms, activation) in enumerate(zip(self.atoms, self.activations)):
            index = torch.as_tensor(atoms.reshape(-1, 2))
            weight, bias = swim_neurons(Z[index[:, 0]], Z[index[:, 1]], activation)
            if self.steepness is not None and self.steepness[layer] is not None:
                gamma = torch.as_tensor(self.steepness[layer].reshape(-1), dtype=dtype)
                weight, bias = weight * gamma[:, None], bias * gamma
            weights.append(to_numpy(weight))
            biases.append(to_numpy(bias))
            Z = activation_function(activation)(torch.addmm(bias, Z, weight.T))
        return RebuiltLayers(self, weights, biases, to_numpy(Z))

    @classmethod
    def of_sampled(cls, pairs, activation: str, X, *, method: str) -> "PairMap":
        """The map of a network that *is* sampled from ``pairs`` of rows of ``X`` (unit scales, no scores):
        e.g. a SWIM network, or a snapped :class:`~dualmap.PairNetwork`."""
        pairs = [np.asarray(p, dtype=np.int64) for p in pairs]
        return cls(pairs=pairs, scales=[np.ones(len(p)) for p in pairs], scores=[{} for _ in pairs],
                   activations=[activation] * len(pairs), method=method, params={}, x_fingerprint=fingerprint(X))

    def to_mlp(self, X, targets=None, *, readout="refit", alpha="auto", network: MLP | None = None) -> MLP:
        """The converted sampled network: hidden layers rebuilt from the atoms (:meth:`hidden_layers`), and a readout.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The data the map was computed on (checked by fingerprint).
        targets : ndarray of shape (n_samples,) or (n_samples, n_outputs), optional
            For ``readout="refit"``: the trained network's outputs on ``X`` (measures the map) or the true
            targets (one-hot for classes: the converted network as a model in its own right).
        readout : {"trained", "refit", "keep"}, default="refit"
            ``"trained"``: the *rebuilt network* — the trained network's own readout with every neuron's
            coefficients folded in, :math:`W'_{:, ik+m} = W_{:, i} c_{im}`, :math:`b' = b + W c_0`; nothing is
            fitted to outputs (docs/maths.md §5).
            ``"refit"``: ridge regression of ``targets`` on the last rebuilt layer.
            ``"keep"``: one pair per neuron only: the trained readout weights times the last layer's ReLU
            ``scales``, the bias shifted so that the mean output on ``X`` equals the trained network's.
        alpha : float or "auto"
            Ridge penalty for ``"refit"``.
        network : MLP, optional
            With ``readout="trained"``: the trained network; it must be the one this map was computed for.

        Several readouts of the same ``X``: ``layers = pm.rebuild(X)``, then ``layers.to_mlp(...)`` for each.
        """
        _check_readout(readout)
        return self.rebuild(X).to_mlp(targets, readout=readout, alpha=alpha, network=network)

    def _teacher(self):
        if not self.teacher_readout:
            raise ValueError("this PairMap carries no trained readout (a map of a sampled network, or an old file); "
                             "readout='trained' and 'keep' need the map of a trained network")
        return self.teacher_readout

    def _check_network(self, network: MLP | None) -> None:
        """``network`` (optional) is the network this map was computed for."""
        if network is None:
            return
        if not isinstance(network, MLP):
            raise TypeError(f"network must be a dualmap MLP; got {type(network).__name__}")
        if self.network_fingerprint and network_fingerprint(network) != self.network_fingerprint:
            raise ValueError("network is not the network this PairMap was computed for (its weights differ); "
                             "map it with dm.to_pairs first")
        if tuple(network.hidden_widths) != self.widths:
            raise ValueError(f"network has hidden widths {tuple(network.hidden_widths)}, this PairMap "
                             f"{self.widths}")

    def _check_X(self, X, x_fingerprint: str | None = None) -> np.ndarray:
        X = check_data(X)
        if (fingerprint(X) if x_fingerprint is None else x_fingerprint) != self.x_fingerprint:
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
        return {"method": self.method, "atoms": self.n_atoms, "relaxed": self.steepness is not None,
                "params": self.params, "seconds": self.seconds, "layers": layers}

    def __repr__(self) -> str:
        return (f"PairMap(method={self.method!r}, atoms={self.n_atoms}, widths={self.widths}, "
                f"activations={self.activations})")

    # ------------------------------------------------------------------ save/load
    def save(self, path):
        """Save to a dualmap archive (``docs/file-format.md``)."""
        arrays = {}
        for index, (pairs, scales, layer_scores) in enumerate(zip(self.pairs, self.scales, self.scores)):
            arrays[f"pairs_{index}"] = pairs
            arrays[f"scales_{index}"] = scales
            arrays[f"atoms_{index}"] = self.atoms[index]
            arrays[f"coefficients_{index}"] = self.coefficients[index]
            if self.steepness is not None:
                arrays[f"steepness_{index}"] = self.steepness[index]
            for name, values in layer_scores.items():
                arrays[f"score_{index}_{name}"] = values
        if self.teacher_readout:
            arrays["teacher_weight"], arrays["teacher_bias"], arrays["teacher_mean"] = self.teacher_readout
        meta = {"method": self.method, "params": self.params, "activations": list(self.activations),
                "x_fingerprint": self.x_fingerprint, "seconds": self.seconds, "n_layers": len(self.pairs),
                "network_fingerprint": self.network_fingerprint, "relaxed": self.steepness is not None,
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
            has_atoms = "atoms_0" in arrays            # files written before atoms existed: one pair per neuron
            return cls(pairs=[arrays[f"pairs_{i}"] for i in range(n)], scales=[arrays[f"scales_{i}"] for i in range(n)],
                       scores=scores, activations=meta["activations"], method=meta["method"], params=meta["params"],
                       x_fingerprint=meta["x_fingerprint"], teacher_readout=teacher, seconds=meta.get("seconds", 0.0),
                       atoms=[arrays[f"atoms_{i}"] for i in range(n)] if has_atoms else None,
                       coefficients=[arrays[f"coefficients_{i}"] for i in range(n)] if has_atoms else None,
                       steepness=[arrays[f"steepness_{i}"] for i in range(n)] if meta.get("relaxed") else None,
                       network_fingerprint=meta.get("network_fingerprint", ""))
        except (KeyError, ValueError, IndexError) as exc:
            raise CorruptFileError(f"{path} is not a valid PairMap file: {exc}") from exc


def _check_readout(readout) -> None:
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {list(READOUTS)}; got {readout!r}")


@dataclass
class RebuiltLayers:
    """A :class:`PairMap`'s hidden layers rebuilt on its data ``X`` (:meth:`PairMap.rebuild`): the weights and
    biases of every layer (numpy, ``width_l · k`` neurons, neuron-major) and the last layer's features on ``X``
    (n, width·k). Every readout of :meth:`to_mlp` is built from them without touching ``X`` again."""

    pair_map: PairMap
    weights: list
    biases: list
    features: np.ndarray = field(repr=False)

    def to_mlp(self, targets=None, *, readout="refit", alpha="auto", network: MLP | None = None) -> MLP:
        """The network with these hidden layers and the readout ``readout`` (see :meth:`PairMap.to_mlp`)."""
        _check_readout(readout)
        pair_map, features = self.pair_map, self.features
        if readout == "trained":     # the rebuilt network: the trained readout, the coefficients folded in
            pair_map._check_network(network)
            readout_weight, readout_bias, _ = pair_map._teacher()
            out_weight, out_bias = fold_coefficients(readout_weight, readout_bias, pair_map.coefficients[-1])
        elif readout == "keep":
            if pair_map.n_atoms > 1:
                raise ValueError(f"readout='keep' rescales one pair per neuron; this map has {pair_map.n_atoms} "
                                 f"atoms per neuron — use readout='trained' (the rebuilt network)")
            teacher_weight, _, teacher_mean = pair_map._teacher()
            out_weight = teacher_weight * pair_map.scales[-1][None, :]
            out_bias = teacher_mean - features.mean(axis=0) @ out_weight.T
        else:
            if targets is None:
                raise ValueError("readout='refit' needs targets (the trained outputs, or the true targets)")
            targets = check_targets(targets, len(features), name="targets").reshape(len(features), -1)
            solution = fit_ridge(torch.from_numpy(features), torch.from_numpy(np.asarray(targets, dtype=np.float64)),
                                 alpha)
            out_weight, out_bias = to_numpy(solution.weight), to_numpy(solution.bias)
        return MLP(self.weights + [out_weight], self.biases + [out_bias], list(pair_map.activations) + ["identity"])
