"""A pair prior: where trained networks put their neurons, as a density a sampler can draw from.

The forward map (:func:`dualmap.to_pairs`) tells which ordered pairs of training points the neurons of a
trained network sit on. :func:`fit_pair_prior` turns such maps into a density over ordered pairs that needs
no training to evaluate: a log-linear model

.. math:: p(i_1, i_2) \\propto \\exp\\big(\\beta^\\top \\phi(i_1, i_2)\\big) \\quad\\text{over uniform candidate pairs},

fitted by logistic regression of *mapped* pairs against uniformly drawn pairs of the same data (so
``exp(β·φ)`` estimates the density ratio to the uniform pair density). The features ``φ`` are dimensionless,
so a prior fitted on some data sets can sample for another:

0. ``log_distance``: ``log(‖z2 − z1‖ / m)``, ``m`` the median distance between uniform pairs;
1. ``target_gap``: classification — 1 when the labels differ; regression — ``max_k |y2 − y1| / sd(y)``;
2. ``log_swim``: ``log`` of SWIM's own score ``target_gap / (‖z2 − z1‖/m)`` (``−20`` where it is 0);
3. ``log_density_1``, 4. ``log_density_2``: ``log`` of the distance from each point to its ``k``-th nearest
   neighbour over its median (local sparseness, ``k = 5``);
5. ``log_boundary_1``, 6. ``log_boundary_2``: classification — ``log`` of the distance from each point to the
   nearest point of another class over ``m``; regression — 0.

Pairs are scored in the layer's own representation ``Z`` (the inputs for the first layer); a prior is fitted on
the first hidden layer's pairs and is applied to every layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .._io import CorruptFileError, load_archive, save_archive
from .._validation import infer_task, one_hot

__all__ = ["PairPrior", "fit_pair_prior", "pair_features", "FEATURE_NAMES"]

FEATURE_NAMES = ("log_distance", "target_gap", "log_swim", "log_density_1", "log_density_2", "log_boundary_1",
                 "log_boundary_2")
_K = 5
_FLOOR = 1e-12


def _context(Z: np.ndarray, targets: np.ndarray, task: str, rng: np.random.Generator) -> dict:
    """Per-point quantities the features need: the distance scale, k-NN distances, distances to other classes."""
    n = len(Z)
    sample = rng.choice(n, size=min(n, 2000), replace=False)
    Zs = torch.from_numpy(Z[sample])
    distances = torch.cdist(torch.from_numpy(Z), Zs)                       # (n, s)
    first, offset = rng.integers(0, n, 4096), rng.integers(1, n, 4096)
    pair_distances = np.linalg.norm(Z[(first + offset) % n] - Z[first], axis=1)
    scale = float(np.median(pair_distances[pair_distances > 0])) if np.any(pair_distances > 0) else 1.0
    k = min(_K + 1, distances.shape[1])
    knn = distances.topk(k, dim=1, largest=False).values[:, -1].numpy()
    knn = knn / max(float(np.median(knn)), _FLOOR)
    boundary = np.ones(n)
    if task == "classification":
        labels = targets.argmax(axis=1) if targets.ndim == 2 and targets.shape[1] > 1 else targets.ravel()
        other = torch.from_numpy(labels[:, None] != labels[sample][None, :])
        masked = torch.where(other, distances, torch.full_like(distances, np.inf))
        nearest = masked.min(dim=1).values.numpy()
        boundary = np.where(np.isfinite(nearest), nearest / scale, 1.0)
    return {"scale": scale, "knn": knn, "boundary": boundary}


def pair_features(Z, pairs, targets, task: str, *, context: dict | None = None, seed: int = 0) -> np.ndarray:
    """The features ``φ`` (module docstring) of ordered pairs ``(i1, i2)`` of rows of ``Z``; shape (M, 7)."""
    Z = np.asarray(Z, dtype=np.float64)
    pairs = np.asarray(pairs, dtype=np.int64)
    targets = _targets_2d(targets, task)
    if context is None:
        context = _context(Z, targets, task, np.random.default_rng(seed))
    i1, i2 = pairs[:, 0], pairs[:, 1]
    distance = np.linalg.norm(Z[i2] - Z[i1], axis=1) / context["scale"]
    if task == "classification":
        gap = (np.abs(targets[i2] - targets[i1]).max(axis=1) > 0).astype(np.float64)
    else:
        sd = targets.std(axis=0)
        gap = (np.abs(targets[i2] - targets[i1]) / np.where(sd > 0, sd, 1.0)).max(axis=1)
    swim = np.where(gap > 0, np.log(np.maximum(gap, _FLOOR)) - np.log(np.maximum(distance, _FLOOR)), -20.0)
    return np.stack([np.log(np.maximum(distance, _FLOOR)), gap, swim,
                     np.log(np.maximum(context["knn"][i1], _FLOOR)), np.log(np.maximum(context["knn"][i2], _FLOOR)),
                     np.log(np.maximum(context["boundary"][i1], _FLOOR)),
                     np.log(np.maximum(context["boundary"][i2], _FLOOR))], axis=1)


def _targets_2d(targets, task: str) -> np.ndarray:
    targets = np.asarray(targets)
    if task == "classification":
        if targets.ndim == 1:
            return one_hot(targets)
        return targets.astype(np.float64)
    return targets.reshape(len(targets), -1).astype(np.float64)


@dataclass
class PairPrior:
    """A fitted pair prior (module docstring); pass it as ``sampler=`` to :func:`dualmap.sample_network`.

    Attributes
    ----------
    coef : ndarray of shape (7,)
        ``β`` over :data:`FEATURE_NAMES`.
    intercept : float
    task : {"classification", "regression"}
        The task of the data it was fitted on; it samples only for the same task.
    feature_names : tuple of str
    sources : list of str
        Names of the data sets it was fitted on.
    """

    coef: np.ndarray
    intercept: float
    task: str
    feature_names: tuple = FEATURE_NAMES
    sources: list = field(default_factory=list)
    is_pair_prior = True

    def log_weight(self, features: np.ndarray) -> np.ndarray:
        """``β·φ`` per pair (the log density ratio to uniform pairs, up to a constant)."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != len(self.coef):
            raise ValueError(f"this prior was fitted on {len(self.coef)} pair features {list(self.feature_names)}; "
                             f"got features of shape {features.shape}")
        return features @ self.coef

    def sample_pairs(self, Z, width: int, rng: np.random.Generator, *, targets=None, candidates_per_point: int = 1,
                     layer: int = 0, task: str | None = None) -> np.ndarray:
        """Draw ``width`` ordered pairs of rows of ``Z`` with probability ``∝ exp(β·φ)`` among uniform candidates."""
        from ..swim.density import coincidence_tolerance, draw_candidates

        if targets is None:
            raise ValueError("a pair prior needs the targets of the points it samples for (its features use them)")
        if tuple(self.feature_names) != FEATURE_NAMES or len(self.coef) != len(FEATURE_NAMES):
            raise ValueError(f"this pair prior was fitted on the pair features {list(self.feature_names)} "
                             f"({len(self.coef)} coefficients); the sampler computes {list(FEATURE_NAMES)}: refit it "
                             "with fit_pair_prior")
        Z_np = Z.detach().cpu().double().numpy() if isinstance(Z, torch.Tensor) else np.asarray(Z, dtype=np.float64)
        if isinstance(targets, torch.Tensor):
            targets_np = targets.detach().cpu().double().numpy()
        else:
            targets_np = np.asarray(targets)
        if len(targets_np) != len(Z_np):
            raise ValueError(f"layer {layer}: the targets have {len(targets_np)} rows but the points sampled from "
                             f"have {len(Z_np)}; they must be the same points")
        task = task or _guess_task(targets_np)
        if task != self.task:
            raise ValueError(f"this pair prior was fitted on {self.task} data; it cannot sample for {task} targets")
        n = len(Z_np)
        n_candidates = max(4 * width, n * max(1, -(-width // n)) * candidates_per_point)
        candidates = draw_candidates(n, n_candidates, rng)
        distance = np.linalg.norm(Z_np[candidates[:, 1]] - Z_np[candidates[:, 0]], axis=1)
        valid = distance > coincidence_tolerance(torch.from_numpy(Z_np))
        if not valid.any():
            raise ValueError(f"layer {layer}: all {n_candidates} candidate pairs join coincident points")
        features = pair_features(Z_np, candidates, targets_np, task, seed=int(rng.integers(2**31)))
        logits = np.where(valid, self.log_weight(features), -np.inf)
        weights = np.exp(logits - logits[valid].max())
        chosen = rng.choice(n_candidates, size=width, replace=True, p=weights / weights.sum())
        return candidates[chosen]

    def save(self, path):
        """Write the prior to a dualmap archive (``.npz``)."""
        return save_archive(path, "PairPrior", {"coef": self.coef},
                            {"intercept": float(self.intercept), "task": self.task,
                             "feature_names": list(self.feature_names), "sources": list(self.sources)})

    @classmethod
    def load(cls, path) -> "PairPrior":
        meta, arrays = load_archive(path, "PairPrior")
        try:
            prior = cls(coef=np.asarray(arrays["coef"], dtype=np.float64), intercept=float(meta["intercept"]),
                        task=meta["task"], feature_names=tuple(meta["feature_names"]), sources=list(meta["sources"]))
        except KeyError as exc:
            raise CorruptFileError(f"{path} is not a valid PairPrior file: missing {exc}") from exc
        if prior.feature_names != FEATURE_NAMES:
            raise ValueError(f"{path} holds a prior over features {list(prior.feature_names)}; this version of "
                             f"dualmap computes {list(FEATURE_NAMES)}")
        return prior


def _guess_task(targets: np.ndarray) -> str:
    """One-hot rows (0/1, one 1 per row) are classification codes; anything else is regression."""
    if targets.ndim == 2 and targets.shape[1] > 1 and np.all((targets == 0) | (targets == 1)) \
            and np.all(targets.sum(axis=1) == 1):
        return "classification"
    if targets.ndim == 1 and infer_task(targets) == "classification":
        return "classification"
    return "regression"


def fit_pair_prior(pairmaps_or_trajectories, X=None, y=None, *, negatives_per_positive: int = 4, C: float = 1.0,
                   seed: int = 0, name: str | None = None) -> PairPrior:
    """Fit a :class:`PairPrior` from forward maps of trained networks.

    Parameters
    ----------
    pairmaps_or_trajectories : list
        :class:`~dualmap.PairMap` or :class:`~dualmap.Trajectory` objects (a trajectory contributes its last
        checkpoint's map) of networks trained on ``(X, y)``; or ``(map, X, y)`` triples, to pool several data sets.
    X : ndarray of shape (n, d), optional
        The training inputs the maps index into (not needed with triples).
    y : ndarray of shape (n,) or (n, k), optional
        Class labels (integers or strings) or real targets.
    negatives_per_positive : int
        Uniform pairs drawn per mapped pair as the contrast.
    C : float
        Inverse L2 strength of the logistic regression.

    Returns
    -------
    PairPrior
    """
    from sklearn.linear_model import LogisticRegression

    from ..maps.pairmap import fingerprint  # here, not at the top: maps imports this package

    items = list(pairmaps_or_trajectories) if pairmaps_or_trajectories is not None else []
    if not items:
        raise ValueError("fit_pair_prior needs at least one forward map (PairMap or Trajectory); got an empty list")
    triples = []
    for item in items:
        if isinstance(item, tuple):
            if len(item) != 3:
                raise ValueError("a tuple item must be (map, X, y)")
            triples.append(item)
        else:
            if X is None or y is None:
                raise ValueError("X and y are needed unless every item is a (map, X, y) triple")
            triples.append((item, X, y))
    rng = np.random.default_rng(seed)
    tasks, features, labels, sources = set(), [], [], []
    for number, (pair_map, X_i, y_i) in enumerate(triples):
        pairs = _first_layer_pairs(pair_map)
        X_i = np.asarray(X_i, dtype=np.float64)
        mapped_on = getattr(pair_map, "x_fingerprint", "")
        if mapped_on and X_i.ndim == 2 and fingerprint(X_i) != mapped_on:
            raise ValueError(f"map {number} ({type(pair_map).__name__}) was computed on other data than the X given "
                             f"for it (shape {X_i.shape}; the data fingerprints differ): its pairs index the rows of "
                             "the data it was mapped on. Pass that X, or one (map, X, y) triple per data set")
        if X_i.ndim != 2 or pairs.max() >= len(X_i) or pairs.min() < 0:
            raise ValueError(f"the map's pairs index rows 0..{pairs.max()} but X has shape {X_i.shape}")
        y_arr = np.asarray(y_i)
        if len(y_arr) != len(X_i):
            raise ValueError(f"y has {len(y_arr)} rows but X has {len(X_i)}")
        task = infer_task(y_arr)
        tasks.add(task)
        targets = _targets_2d(y_arr, task)
        context = _context(X_i, targets, task, rng)
        valid = np.any(X_i[pairs[:, 0]] != X_i[pairs[:, 1]], axis=1)
        positives = pairs[valid]
        from ..swim.density import draw_candidates

        negatives = draw_candidates(len(X_i), negatives_per_positive * len(positives), rng)
        negatives = negatives[np.any(X_i[negatives[:, 0]] != X_i[negatives[:, 1]], axis=1)]
        for chosen, label in ((positives, 1.0), (negatives, 0.0)):
            features.append(pair_features(X_i, chosen, targets, task, context=context))
            labels.append(np.full(len(chosen), label))
        sources.append(getattr(pair_map, "name", None) or f"{X_i.shape[0]}x{X_i.shape[1]}")
    if len(tasks) > 1:
        raise ValueError("the maps mix classification and regression data; fit one prior per task")
    features, labels = np.concatenate(features), np.concatenate(labels)
    if labels.min() == labels.max():
        raise ValueError("no usable mapped pairs (every mapped pair joins two equal points)")
    model = LogisticRegression(C=C, max_iter=2000).fit(features, labels)
    return PairPrior(coef=model.coef_[0].astype(np.float64), intercept=float(model.intercept_[0]),
                     task=tasks.pop(), sources=[name] if name else sources)


def _first_layer_pairs(item) -> np.ndarray:
    pairs = getattr(item, "pairs", None)
    if pairs is None:
        raise TypeError(f"expected a PairMap or a Trajectory; got {type(item).__name__}")
    if isinstance(pairs, list) and pairs and isinstance(pairs[0], list):      # Trajectory: per checkpoint, per layer
        pairs = pairs[-1]
    first = np.asarray(pairs[0], dtype=np.int64)
    if first.ndim != 2 or first.shape[1] != 2:
        raise ValueError(f"expected per-layer pair arrays of shape (m, 2); got {first.shape}")
    return first
