"""`track`: the forward map over the checkpoints of a training run, and the `Trajectory` it returns."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .._backend import as_tensor, to_numpy
from .._io import CorruptFileError, load_archive, save_archive
from .._progress import progress_bar
from .._validation import check_targets, infer_task, one_hot
from ..maps.context import DEFAULT_METHOD, DataContext, SearchOptions, WarmStart
from ..maps.forward import check_network, map_network
from ..maps.pairmap import PairMap, network_fingerprint
from ..metrics import output_r2
from ..network import MLP
from ..train import TrainRun
from .measures import (
    effective_number,
    neuron_contributions,
    neuron_drift,
    point_importance,
    rank_correlation,
    swim_point_density,
    switch_rate,
)

__all__ = ["Trajectory", "track", "TRACK_METHOD"]


@dataclass
class Trajectory:
    """Forward maps of the checkpoints of one training run, and what they say about the data.

    Stored per checkpoint ``t`` (lists over checkpoints of lists over hidden layers):

    Attributes
    ----------
    steps : ndarray of shape (T,), int64
    pairs, scales : list of list of ndarray
        The map of every checkpoint (:class:`~dualmap.PairMap` ``pairs``/``scales``).
    correlations : list of list of ndarray of shape (m_l,)
        Activation correlation ``ρ_k`` of every neuron with its pair's SWIM neuron.
    match_scores : list of list of ndarray of shape (m_l,)
        The map method's own score of every chosen pair.
    atoms, coefficients, neuron_r2 : list of list of ndarray
        Per checkpoint and layer: the atoms (m_l, k, 2), their coefficients (m_l, k + 1) and every neuron's R²
        (:class:`~dualmap.PairMap`); the next checkpoint's warm start.
    contributions : list of list of ndarray of shape (m_l,)
        ``u_k`` (:func:`~dualmap.dynamics.measures.neuron_contributions`).
    drift : ndarray of shape (T-1, L)
        :func:`~dualmap.dynamics.measures.neuron_drift` between consecutive checkpoints.
    output_r2 : ndarray of shape (T,)
        R² of the converted network (readout refit to the trained outputs) against the trained outputs, on ``X``.
    r2_through : ndarray of shape (T,)
        R² of the rebuilt network (through the checkpoint's own readout) against its outputs, on ``X``.
    network_fingerprints : list of str
        :func:`~dualmap.maps.pairmap.network_fingerprint` of every mapped checkpoint (a resume must see the
        same networks).
    map_seconds : ndarray of shape (T,)
    swim_density : ndarray of shape (N,)
        :func:`~dualmap.dynamics.measures.swim_point_density` on ``X`` and the targets.
    X, y : the data (``X`` kept in float32, for figures) and its labels/targets, or None.
    method, params, activations, x_fingerprint, task, config
        How the maps were made; ``config`` holds the training run's configuration when known.

    The derived arrays (:attr:`importance`, :attr:`switch_rate`, :attr:`quality`, :attr:`concentration`,
    :attr:`swim_alignment`) are computed from these and saved alongside them.
    """

    steps: np.ndarray
    pairs: list
    scales: list
    correlations: list
    match_scores: list
    contributions: list
    drift: np.ndarray
    output_r2: np.ndarray
    map_seconds: np.ndarray
    swim_density: np.ndarray
    X: np.ndarray = field(repr=False)
    y: np.ndarray | None = field(repr=False, default=None)
    atoms: list = field(default_factory=list, repr=False)
    coefficients: list = field(default_factory=list, repr=False)
    neuron_r2: list = field(default_factory=list, repr=False)
    r2_through: np.ndarray = field(default_factory=lambda: np.zeros(0))
    network_fingerprints: list = field(default_factory=list)
    method: str = DEFAULT_METHOD
    params: dict = field(default_factory=dict)
    activations: list = field(default_factory=list)
    x_fingerprint: str = ""
    task: str | None = None
    config: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ shape
    @property
    def n_checkpoints(self) -> int:
        return len(self.pairs)

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(len(p) for p in self.pairs[0]) if self.pairs else ()

    @property
    def n_points(self) -> int:
        return len(self.X)

    # ------------------------------------------------------------------ derived
    @property
    def importance(self) -> np.ndarray:
        """(T, N): :func:`~dualmap.dynamics.measures.point_importance` at every checkpoint."""
        return np.stack([point_importance(p, u, r, self.n_points)
                         for p, u, r in zip(self.pairs, self.contributions, self.correlations)])

    @property
    def switch_rate(self) -> np.ndarray:
        """(T-1, L): fraction of neurons per layer whose pair changed between consecutive checkpoints."""
        if self.n_checkpoints < 2:
            return np.zeros((0, len(self.widths)))
        return np.stack([switch_rate(a, b) for a, b in zip(self.pairs[:-1], self.pairs[1:])])

    @property
    def quality(self) -> np.ndarray:
        """(T, L): median activation correlation of the map per layer."""
        return np.array([[float(np.median(r)) for r in layers] for layers in self.correlations])

    @property
    def concentration(self) -> np.ndarray:
        """(T,): effective number of data points carrying the network (exp of the entropy of importance)."""
        return np.array([effective_number(row) for row in self.importance])

    @property
    def swim_alignment(self) -> np.ndarray:
        """(T,): Spearman correlation between the importance and SWIM's density of pairs on each point."""
        return np.array([rank_correlation(row, self.swim_density) for row in self.importance])

    def previous_map(self) -> PairMap:
        """The last checkpoint's map as a :class:`~dualmap.PairMap` (atoms, coefficients, scores): a warm start."""
        return PairMap(pairs=self.pairs[-1], scales=self.scales[-1],
                       scores=[{"match_score": m, "neuron_r2": r} for m, r in zip(self.match_scores[-1],
                                                                                 self.neuron_r2[-1])],
                       activations=self.activations, method=self.method, params={}, x_fingerprint=self.x_fingerprint,
                       atoms=self.atoms[-1], coefficients=self.coefficients[-1])

    def top_points(self, n: int = 10, *, checkpoint: int = -1) -> np.ndarray:
        """Indices of the ``n`` most important points at a checkpoint, most important first."""
        row = self.importance[checkpoint]
        return np.argsort(-row, kind="stable")[:n]

    def summary(self) -> dict:
        """The headline numbers: switch rate, quality, concentration and alignment at the first and last
        checkpoints, and the step after which fewer than 5 % of the neurons switch."""
        switch = self.switch_rate
        settled = next((int(self.steps[t + 1]) for t in range(len(switch)) if np.all(switch[t:] < 0.05)), None)
        concentration, alignment = self.concentration, self.swim_alignment
        return {
            "method": self.method, "n_checkpoints": self.n_checkpoints, "steps": self.steps.tolist(),
            "widths": list(self.widths),
            "switch_rate_first": switch[0].tolist() if len(switch) else [],
            "switch_rate_last": switch[-1].tolist() if len(switch) else [],
            "settled_step": settled,
            "quality_first": self.quality[0].tolist(), "quality_last": self.quality[-1].tolist(),
            "output_r2_last": float(self.output_r2[-1]),
            "r2_through_last": float(self.r2_through[-1]) if len(self.r2_through) else None,
            "concentration_first": float(concentration[0]), "concentration_last": float(concentration[-1]),
            "swim_alignment_first": float(alignment[0]), "swim_alignment_last": float(alignment[-1]),
            "map_seconds_total": float(self.map_seconds.sum()),
        }

    def __repr__(self) -> str:
        return (f"Trajectory(method={self.method!r}, checkpoints={self.n_checkpoints}, widths={self.widths}, "
                f"points={self.n_points})")

    # ------------------------------------------------------------------ save/load
    def save(self, path):
        """Save to a dualmap archive: the per-checkpoint maps and every derived array, with the steps."""
        arrays = {"steps": np.asarray(self.steps, dtype=np.int64), "drift": self.drift,
                  "output_r2": self.output_r2, "map_seconds": self.map_seconds, "r2_through": self.r2_through,
                  "swim_density": self.swim_density, "X": self.X}
        if self.y is not None:
            arrays["y"] = self.y
        for t in range(self.n_checkpoints):
            for layer in range(len(self.widths)):
                arrays[f"pairs_{t}_{layer}"] = self.pairs[t][layer]
                arrays[f"scales_{t}_{layer}"] = self.scales[t][layer]
                arrays[f"correlations_{t}_{layer}"] = self.correlations[t][layer]
                arrays[f"match_scores_{t}_{layer}"] = self.match_scores[t][layer]
                arrays[f"contributions_{t}_{layer}"] = self.contributions[t][layer]
                arrays[f"atoms_{t}_{layer}"] = self.atoms[t][layer]
                arrays[f"coefficients_{t}_{layer}"] = self.coefficients[t][layer]
                arrays[f"neuron_r2_{t}_{layer}"] = self.neuron_r2[t][layer]
        if self.n_checkpoints:
            arrays.update(importance=self.importance, switch_rate=self.switch_rate, quality=self.quality,
                          concentration=self.concentration, swim_alignment=self.swim_alignment)
        meta = {"method": self.method, "params": self.params, "activations": list(self.activations),
                "x_fingerprint": self.x_fingerprint, "task": self.task, "config": self.config,
                "n_checkpoints": self.n_checkpoints, "n_layers": len(self.activations),
                "network_fingerprints": list(self.network_fingerprints)}
        return save_archive(path, "Trajectory", arrays, meta)

    @classmethod
    def load(cls, path) -> "Trajectory":
        """Load a trajectory written by :meth:`save` (no map is recomputed)."""
        meta, arrays = load_archive(path, "Trajectory")
        try:
            T, L = int(meta["n_checkpoints"]), int(meta["n_layers"])

            def per_checkpoint(name):
                return [[arrays[f"{name}_{t}_{layer}"] for layer in range(L)] for t in range(T)]

            pairs = per_checkpoint("pairs")
            if T and "atoms_0_0" not in arrays:      # written before atoms existed: one pair per neuron
                atoms = [[p[:, None, :] for p in layers] for layers in pairs]
                coefficients = [[np.stack([s, np.zeros(len(s))], axis=1) for s in layers]
                                for layers in per_checkpoint("scales")]
                neuron_r2 = [[r ** 2 for r in layers] for layers in per_checkpoint("correlations")]
            else:
                atoms, coefficients = per_checkpoint("atoms"), per_checkpoint("coefficients")
                neuron_r2 = per_checkpoint("neuron_r2")

            return cls(steps=arrays["steps"], pairs=pairs, scales=per_checkpoint("scales"),
                       correlations=per_checkpoint("correlations"), match_scores=per_checkpoint("match_scores"),
                       contributions=per_checkpoint("contributions"),
                       drift=arrays["drift"].reshape(-1, L), output_r2=arrays["output_r2"],
                       map_seconds=arrays["map_seconds"], swim_density=arrays["swim_density"], X=arrays["X"],
                       y=arrays.get("y"), method=meta["method"], params=meta["params"],
                       activations=meta["activations"], x_fingerprint=meta["x_fingerprint"], task=meta["task"],
                       config=meta.get("config", {}), atoms=atoms, coefficients=coefficients, neuron_r2=neuron_r2,
                       r2_through=arrays.get("r2_through", np.full(T, np.nan)),
                       network_fingerprints=list(meta.get("network_fingerprints", [])))
        except (KeyError, ValueError, TypeError) as exc:
            raise CorruptFileError(f"{path} is not a valid Trajectory file: {exc}") from exc


def _checkpoints_of(run_or_checkpoints):
    if isinstance(run_or_checkpoints, TrainRun):
        run = run_or_checkpoints
        return list(run.checkpoints), run.task, run.classes, dict(run.config)
    try:
        checkpoints = [(int(step), network) for step, network in run_or_checkpoints]
    except (TypeError, ValueError) as exc:
        raise TypeError("track expects a TrainRun or a sequence of (step, MLP) pairs") from exc
    for step, network in checkpoints:
        if not isinstance(network, MLP):
            raise TypeError(f"checkpoint at step {step} is a {type(network).__name__}, not a dualmap MLP")
    return checkpoints, None, None, {}


def _density_targets(y, task, classes, final: MLP, X):
    """SWIM's targets: one-hot classes (classification), the targets (regression), or the final outputs."""
    if y is None:
        return final.predict(X)
    labels = np.asarray(y)
    # decide from the labels as given: check_targets would turn integer (and reject string) labels into floats
    if task == "classification" or (task is None and labels.ndim == 1 and infer_task(labels) == "classification"):
        if labels.ndim != 1 or len(labels) != len(X):
            raise ValueError(f"y must hold one label per row of X ({len(X)}); got shape {labels.shape}")
        return one_hot(labels, classes)
    return np.asarray(check_targets(y, len(X), name="y"), dtype=np.float64)


#: Tracking's forward map: the single map's engine (:func:`~dualmap.to_pairs`), warm-started.
TRACK_METHOD = DEFAULT_METHOD


def track(run_or_checkpoints, X, *, method: str = TRACK_METHOD, atoms: int = 1, y=None, seed: int = 0, path=None,
          warm_start: bool = True, settle_angle: float = 0.02, warm_margin: float = 1e-3,
          warm_relocate: float | None = None, device="auto",
          progress: bool = True, **map_options) -> Trajectory:
    """Map every checkpoint of a training run to pairs of data points (:func:`~dualmap.to_pairs`).

    The data are prepared once (:class:`~dualmap.maps.DataContext`: validation, fingerprint, evaluation rows,
    Gram matrices and neighbour lists per layer representation) and shared by every checkpoint's map. With
    ``warm_start``, each map is seeded by the previous one (:class:`~dualmap.maps.WarmStart`): a neuron whose
    activations turned by at most ``settle_angle`` and whose previous atoms still reproduce it as well
    (within ``warm_margin`` in neuron R²) keeps them without a search; every other neuron gets the full search
    with its previous atoms added to its candidates. ``warm_relocate`` (opt-in) searches near the previous atoms
    first and gives the full search only to neurons that left their neighbourhood.

    Parameters
    ----------
    run_or_checkpoints : TrainRun or sequence of (step, MLP)
        Checkpoints in increasing step order, all with the same architecture.
    X : ndarray of shape (N, d)
        The data the pairs index (usually the training inputs).
    method : str, default="downstream"
        Forward-map method.
    atoms : int, default=1
        Atoms per neuron.
    y : array-like of shape (N,) or (N, k), optional
        Labels or targets of ``X``, for SWIM's own density (swim alignment) and for the figures. Without
        them, SWIM's density uses the final network's outputs.
    seed : int
        Seeds every map and the density estimate.
    path : str or Path, optional
        Save the trajectory here after every checkpoint (atomically). If the file exists and holds the same
        run (same steps so far, the same checkpoint networks, data, method and parameters), the checkpoints
        already mapped are kept and tracking resumes after them.
    warm_start : bool, default=True
        Seed every checkpoint's map with the previous checkpoint's.
    settle_angle, warm_margin, warm_relocate : float
        See :class:`~dualmap.maps.WarmStart` (``settle_angle``, ``margin``, ``relocate``).
    device : {"auto", "cpu", "cuda"}
    progress : bool
        Progress bar over the checkpoints.
    **map_options
        Further :func:`~dualmap.to_pairs` search options (e.g. ``n_eval``, ``n_list``).

    Returns
    -------
    Trajectory
    """
    checkpoints, task, classes, config = _checkpoints_of(run_or_checkpoints)
    if not checkpoints:
        raise ValueError("no checkpoints to track")
    steps = np.array([step for step, _ in checkpoints], dtype=np.int64)
    if np.any(np.diff(steps) <= 0):
        raise ValueError(f"checkpoint steps must increase strictly; got {steps.tolist()}")
    first = checkpoints[0][1]
    check_network(first)
    for step, network in checkpoints:
        shapes = [w.shape for w in network.weights]
        if shapes != [w.shape for w in first.weights] or list(network.activations) != list(first.activations):
            raise ValueError(f"checkpoint at step {step} has another architecture than the first checkpoint")
    unknown = set(map_options) - set(SearchOptions.__dataclass_fields__)
    if unknown:
        raise TypeError(f"track got unknown map options {sorted(unknown)}; allowed: "
                        f"{sorted(set(SearchOptions.__dataclass_fields__) - {'method', 'atoms', 'seed'})}")
    options = SearchOptions(method=method, atoms=atoms, seed=seed, **map_options)
    context = DataContext.build(X, n_features=first.input_dim, n_eval=options.n_eval, seed=seed, device=device,
                                dtype=options.dtype, n_neighbors=options.n_neighbors)
    X = context.X
    y_kept = None if y is None else np.asarray(y)
    params = dict(map_options, atoms=atoms, seed=seed, warm_start=warm_start)
    if warm_start:
        params.update(settle_angle=settle_angle, warm_margin=warm_margin, warm_relocate=warm_relocate)
    density = swim_point_density(X, _density_targets(y, task, classes, checkpoints[-1][1], X), seed=seed)

    trajectory = Trajectory(steps=steps[:0], pairs=[], scales=[], correlations=[], match_scores=[], contributions=[],
                            drift=np.zeros((0, first.n_hidden_layers)), output_r2=np.zeros(0),
                            map_seconds=np.zeros(0), swim_density=density, X=X.astype(np.float32), y=y_kept,
                            method=method, params=params, activations=list(first.activations[:-1]),
                            x_fingerprint=context.fingerprint, task=task, config=config)
    if path is not None and Path(path).exists():
        trajectory = _resume(path, trajectory, steps, [network for _, network in checkpoints])

    done = trajectory.n_checkpoints
    bar = progress_bar(total=len(checkpoints), initial=done, desc=f"track ({method})", disable=not progress,
                       unit="checkpoint")
    with bar:
        for t in range(done, len(checkpoints)):
            step, network = checkpoints[t]
            warm = None
            if warm_start and trajectory.pairs:
                warm = WarmStart(trajectory.previous_map(), checkpoints[t - 1][1], settle_angle=settle_angle,
                                 margin=warm_margin, relocate=warm_relocate)
            started = time.perf_counter()
            pair_map = map_network(network, context, options, warm=warm)
            seconds = time.perf_counter() - started
            teacher = _outputs(network, X)
            layers = pair_map.rebuild(X, x_fingerprint=context.fingerprint)     # X checked and hashed once
            converted = layers.to_mlp(teacher)
            rebuilt = layers.to_mlp(readout="trained")
            drift = neuron_drift(checkpoints[t - 1][1], network) if t > 0 else None
            trajectory.steps = np.append(trajectory.steps, step)
            trajectory.pairs.append(pair_map.pairs)
            trajectory.scales.append(pair_map.scales)
            trajectory.atoms.append(pair_map.atoms)
            trajectory.coefficients.append(pair_map.coefficients)
            trajectory.neuron_r2.append([s["neuron_r2"] for s in pair_map.scores])
            trajectory.correlations.append([s["activation_correlation"] for s in pair_map.scores])
            trajectory.match_scores.append([s["match_score"] for s in pair_map.scores])
            trajectory.contributions.append(neuron_contributions(network, X))
            trajectory.network_fingerprints.append(pair_map.network_fingerprint)
            if drift is not None:
                trajectory.drift = np.vstack([trajectory.drift, drift[None, :]])
            trajectory.output_r2 = np.append(trajectory.output_r2,
                                              _safe_r2(_readout_outputs(converted, layers.features), teacher))
            trajectory.r2_through = np.append(trajectory.r2_through,
                                              _safe_r2(_readout_outputs(rebuilt, layers.features), teacher))
            trajectory.map_seconds = np.append(trajectory.map_seconds, seconds)
            if path is not None:
                trajectory.save(path)
            bar.update(1)
    return trajectory


def _outputs(network: MLP, X: np.ndarray) -> np.ndarray:
    """``network.predict(X)`` for the ``X`` that :func:`track` validated once (no check per call): the same
    float computation, on the CPU in the precision of the network's parameters."""
    dtype = torch.from_numpy(network.weights[0][:0]).dtype
    return to_numpy(network.forward(as_tensor(X, device=torch.device("cpu"), dtype=dtype)))


def _readout_outputs(network: MLP, features: np.ndarray) -> np.ndarray:
    """The outputs of ``network`` on the points whose last hidden features are ``features`` (its readout
    only): the rebuilt layers' features on ``X`` are already computed, so no second pass through them."""
    return features @ network.weights[-1].T + network.biases[-1]


def _safe_r2(outputs, reference) -> float:
    try:
        return output_r2(outputs, reference)
    except ValueError:      # constant trained outputs (e.g. a dead network at initialisation)
        return float("nan")


def _resume(path, fresh: Trajectory, steps: np.ndarray, networks) -> Trajectory:
    """The saved trajectory at ``path`` if it is a prefix of this run; otherwise a clear error."""
    saved = Trajectory.load(path)
    mismatches = []
    mapped = [network_fingerprint(network) for network in networks[:saved.n_checkpoints]]
    if saved.network_fingerprints != mapped:
        mismatches.append("the checkpoint networks (their weights)")
    if saved.x_fingerprint != fresh.x_fingerprint:
        mismatches.append("the data X")
    if saved.method != fresh.method or saved.params != fresh.params:
        mismatches.append(f"the method/parameters ({saved.method} {saved.params})")
    if saved.n_checkpoints > len(steps) or not np.array_equal(saved.steps, steps[:saved.n_checkpoints]):
        mismatches.append(f"the checkpoint steps ({saved.steps.tolist()})")
    if list(saved.activations) != list(fresh.activations):
        mismatches.append(f"the architecture (activations {saved.activations})")
    if mismatches:
        raise ValueError(f"{path} holds another trajectory (it differs in {', '.join(mismatches)}); "
                         f"remove it or choose another path")
    saved.swim_density, saved.y, saved.task, saved.config = fresh.swim_density, fresh.y, fresh.task, fresh.config
    return saved
