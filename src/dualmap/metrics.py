"""Every number dualmap reports, in one place (docs/maths.md §6).

* *output R²* of a network ``g`` against a reference ``f`` on points ``X``:
  :math:`R^2 = 1 - \\sum_{i,k} (g_k(x_i) - f_k(x_i))^2 / \\sum_{i,k} (f_k(x_i) - \\bar f_k)^2`
  (pooled over outputs, i.e. variance-weighted);
* *fidelity*: the fraction of points where ``argmax g = argmax f`` (classification);
* *gap closed*: :math:`(R^2_{map} - R^2_{null}) / (1 - R^2_{null})`, with the SWIM null model's :math:`R^2_{null}`;
* *null models*: networks of the same widths and activations sampled by dualmap's own ``"swim"`` and
  ``"uniform"`` samplers on the same ``X``, with the same readout (ridge, refit to the same targets);
* *r2_through*: output R² of the *rebuilt* network (every neuron its atoms' SWIM neurons, the coefficients
  folded into the trained readout, nothing refit to outputs; ``PairMap.to_mlp(X, readout="trained")``)
  against the trained network on held-out points — the headline faithfulness number. Its nulls draw ``k``
  pairs per neuron uniformly or from SWIM's density and fit them the same way
  (:func:`~dualmap.maps.forward.null_map`); *gap closed through* is measured against the SWIM one.
  docs/maths.md §5 has the formulas.
"""

from __future__ import annotations

import numpy as np

from ._validation import class_indices, one_hot
from .network import MLP
from .swim.sampler import sample_network

__all__ = ["output_r2", "fidelity", "gap_closed", "null_models", "accuracy", "evaluate_map", "r2_through",
           "through_nulls", "through_curve"]


def output_r2(outputs, reference) -> float:
    """Pooled R² of ``outputs`` against ``reference`` (both (n, k) or (n,))."""
    outputs = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    reference = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    if outputs.shape != reference.shape:
        raise ValueError(f"outputs {outputs.shape} and reference {reference.shape} must have the same shape")
    total = np.sum((reference - reference.mean(axis=0)) ** 2)
    if total == 0:
        raise ValueError("the reference outputs are constant; R² is undefined")
    return float(1.0 - np.sum((outputs - reference) ** 2) / total)


def fidelity(outputs, reference) -> float:
    """Fraction of rows where the argmax of ``outputs`` equals the argmax of ``reference``."""
    return float(np.mean(np.argmax(outputs, axis=1) == np.argmax(reference, axis=1)))


def accuracy(outputs, labels) -> float:
    """Fraction of rows where the argmax of ``outputs`` equals the integer label."""
    return float(np.mean(np.argmax(outputs, axis=1) == np.asarray(labels)))


def gap_closed(r2_map: float, r2_null: float) -> float:
    """``(R²_map − R²_null) / (1 − R²_null)``: 1 when the map reproduces the trained network, 0 at the null."""
    if r2_null >= 1.0:
        return float("nan")
    return float((r2_map - r2_null) / (1.0 - r2_null))


def null_models(mlp: MLP, X, targets, *, seed=0, alpha="auto", samplers=("swim", "uniform")) -> dict[str, MLP]:
    """Sampled networks with ``mlp``'s hidden widths and activation, readout refit to ``targets`` on ``X``.

    The ``"swim"`` null draws its pairs from the SWIM density of ``targets``; ``"uniform"`` draws uniform pairs.
    """
    activations = set(mlp.activations[:-1])
    if len(activations) != 1:
        raise ValueError(f"null models need one hidden activation; the network has {sorted(activations)}")
    activation = activations.pop()
    return {
        sampler: sample_network(X, targets, mlp.hidden_widths, activation, sampler=sampler, alpha=alpha,
                                random_state=seed, dtype="float64").network
        for sampler in samplers
    }


def r2_through(pair_map, mlp: MLP, X, X_test) -> float:
    """Output R² of the rebuilt network (``pair_map.to_mlp(X, readout="trained", network=mlp)``) against ``mlp``
    on ``X_test``: how much of what the trained network computes its data pairs compute, through the trained
    network's own readout.

    Parameters
    ----------
    pair_map : PairMap
        A map of ``mlp`` on ``X`` (checked: another network or other data is an error).
    mlp : MLP
        The trained network.
    X : ndarray of shape (n_samples, n_features)
        The data the map's pairs index.
    X_test : ndarray of shape (n_test, n_features)
        Held-out points on which the two networks are compared.
    """
    rebuilt = pair_map.to_mlp(X, readout="trained", network=mlp)
    return output_r2(rebuilt.predict(X_test), mlp.predict(X_test))


def through_nulls(mlp: MLP, X, *, atoms: int = 1, seed: int = 0, samplers=("swim", "uniform")) -> dict:
    """The null maps of ``r2_through`` (:func:`~dualmap.maps.forward.null_map`): ``atoms`` pairs per neuron drawn
    from SWIM's density of the trained outputs (``"swim"``) or uniformly (``"uniform"``), fitted like a map.

    Returns
    -------
    dict sampler → PairMap
    """
    from .maps.forward import null_map

    return {sampler: null_map(mlp, X, atoms=atoms, sampler=sampler, seed=seed) for sampler in samplers}


def through_curve(mlp: MLP, X, X_test, atoms_values=(1, 2, 4, 8), *, seed: int = 0, device="auto",
                  **map_options) -> list[dict]:
    """``r2_through`` against the number of atoms ``k``, for the default map and both nulls.

    Returns
    -------
    list of dict, one per ``k``: ``atoms``, ``r2_through``, ``r2_through_null_swim``, ``r2_through_null_uniform``,
    ``map_seconds``.
    """
    from .maps.forward import to_pairs

    rows = []
    for k in atoms_values:
        pair_map = to_pairs(mlp, X, atoms=int(k), seed=seed, device=device, progress=False, **map_options)
        nulls = through_nulls(mlp, X, atoms=int(k), seed=seed)
        rows.append({"atoms": int(k), "r2_through": r2_through(pair_map, mlp, X, X_test),
                     "r2_through_null_swim": r2_through(nulls["swim"], mlp, X, X_test),
                     "r2_through_null_uniform": r2_through(nulls["uniform"], mlp, X, X_test),
                     "map_seconds": pair_map.seconds})
    return rows


def evaluate_map(pair_map, mlp: MLP, X, X_test, *, labels=None, labels_test=None, task="classification",
                 seed=0, alpha="auto") -> dict:
    """The standard evaluation of a forward map (used by the benchmarks, the CLI and the report).

    Headline: ``r2_through`` — the rebuilt network through the trained readout — with its two nulls (``k``
    uniform / SWIM-density pairs per neuron, fitted the same way) and ``gap_closed_through``. Secondary: the
    *teacher* readout refit to the trained network's outputs on ``X`` (``r2_map``, refit nulls, ``gap_closed``).
    Everything is measured on ``X_test`` against the trained network's outputs there. With ``labels``, the
    *labels* readout (refit to the true targets, one-hot for classes) gives the converted network's own score.

    Parameters
    ----------
    pair_map : PairMap
        The map of ``mlp`` on ``X``.
    mlp : MLP
        The trained network.
    X, X_test : ndarray
        The data the map was computed on, and held-out points.
    labels, labels_test : array-like, optional
        True targets of ``X`` and ``X_test`` (for the labels readout).
    task : {"classification", "regression"}
    seed : int
        Seeds the null models.
    alpha : float or "auto"
        Ridge penalty of the refit readouts.

    Returns
    -------
    dict with ``atoms``, ``r2_through``, ``r2_through_null_swim``, ``r2_through_null_uniform``,
    ``gap_closed_through``, ``gap_closed_through_uniform``, ``r2_map``, ``r2_null_swim``, ``r2_null_uniform``,
    ``gap_closed``, ``gap_closed_uniform``, ``r2_keep`` (one-pair maps only), ``fidelity`` and
    ``fidelity_through`` (classification), per-layer medians of the neuron scores, and with labels
    ``labels_score_map`` / ``labels_score_trained``.
    """
    teacher_train, teacher_test = mlp.predict(X), mlp.predict(X_test)
    layers = pair_map.rebuild(X)                     # X checked and the hidden layers built once, every readout
    converted = layers.to_mlp(teacher_train, readout="refit", alpha=alpha)
    rebuilt = layers.to_mlp(readout="trained", network=mlp)
    nulls = null_models(mlp, X, teacher_train, seed=seed, alpha=alpha)
    nulls_through = through_nulls(mlp, X, atoms=pair_map.n_atoms, seed=seed)
    result = {
        "atoms": pair_map.n_atoms,
        "r2_through": output_r2(rebuilt.predict(X_test), teacher_test),
        "r2_through_null_swim": r2_through(nulls_through["swim"], mlp, X, X_test),
        "r2_through_null_uniform": r2_through(nulls_through["uniform"], mlp, X, X_test),
        "r2_map": output_r2(converted.predict(X_test), teacher_test),
        "r2_null_swim": output_r2(nulls["swim"].predict(X_test), teacher_test),
        "r2_null_uniform": output_r2(nulls["uniform"].predict(X_test), teacher_test),
        "map_seconds": pair_map.seconds,
    }
    result["gap_closed_through"] = gap_closed(result["r2_through"], result["r2_through_null_swim"])
    result["gap_closed_through_uniform"] = gap_closed(result["r2_through"], result["r2_through_null_uniform"])
    if pair_map.n_atoms == 1 and pair_map.teacher_readout:
        result["r2_keep"] = output_r2(layers.to_mlp(readout="keep").predict(X_test), teacher_test)
    result["gap_closed"] = gap_closed(result["r2_map"], result["r2_null_swim"])
    result["gap_closed_uniform"] = gap_closed(result["r2_map"], result["r2_null_uniform"])
    if task == "classification":
        result["fidelity"] = fidelity(converted.predict(X_test), teacher_test)
        result["fidelity_through"] = fidelity(rebuilt.predict(X_test), teacher_test)
        result["fidelity_null_swim"] = fidelity(nulls["swim"].predict(X_test), teacher_test)
    for layer, scores in enumerate(pair_map.scores):
        for name in ("activation_correlation", "direction_cosine", "offset_error", "norm_ratio", "neuron_r2"):
            if name in scores:
                result[f"layer{layer}_median_{name}"] = float(np.median(scores[name]))
    if labels is not None:
        if task == "classification":
            classes = np.unique(labels)
            own = layers.to_mlp(one_hot(labels, classes), readout="refit", alpha=alpha)
            test_index = class_indices(labels_test, classes, name="labels_test", unknown="not in labels")
            result["labels_score_map"] = accuracy(own.predict(X_test), test_index)
            result["labels_score_trained"] = accuracy(teacher_test, test_index)
        else:
            own = layers.to_mlp(labels, readout="refit", alpha=alpha)
            result["labels_score_map"] = output_r2(own.predict(X_test), labels_test)
            result["labels_score_trained"] = output_r2(teacher_test, labels_test)
    return result
