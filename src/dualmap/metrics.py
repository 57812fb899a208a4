"""Every number dualmap reports, in one place (DESIGN.md §3).

* *output R²* of a network ``g`` against a reference ``f`` on points ``X``:
  :math:`R^2 = 1 - \\sum_{i,k} (g_k(x_i) - f_k(x_i))^2 / \\sum_{i,k} (f_k(x_i) - \\bar f_k)^2`
  (pooled over outputs, i.e. variance-weighted);
* *fidelity*: the fraction of points where ``argmax g = argmax f`` (classification);
* *gap closed*: :math:`(R^2_{map} - R^2_{null}) / (1 - R^2_{null})`, with the SWIM null model's :math:`R^2_{null}`;
* *null models*: networks of the same widths and activations sampled by dualmap's own ``"swim"`` and
  ``"uniform"`` samplers on the same ``X``, with the same readout (ridge, refit to the same targets).
"""

from __future__ import annotations

import numpy as np

from .network import MLP
from .swim.sampler import sample_network

__all__ = ["output_r2", "fidelity", "gap_closed", "null_models", "accuracy", "evaluate_map"]


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


def evaluate_map(pair_map, mlp: MLP, X, X_test, *, labels=None, labels_test=None, task="classification",
                 seed=0, alpha="auto") -> dict:
    """The standard evaluation of a forward map (used by the benchmarks, the CLI and the report).

    The *teacher* readout is refit to the trained network's outputs on ``X``; everything is measured on
    ``X_test`` against the trained network's outputs there. With ``labels``, the *labels* readout (refit
    to the true targets, one-hot for classes) gives the converted network's own test score.

    Returns
    -------
    dict with ``r2_map``, ``r2_keep`` (trained readout kept, bias shifted), ``r2_null_swim``,
    ``r2_null_uniform``, ``gap_closed``, ``gap_closed_uniform``, ``fidelity`` (classification), per-layer
    medians of the neuron scores, and with labels ``labels_score_map`` / ``labels_score_trained``.
    """
    teacher_train, teacher_test = mlp.predict(X), mlp.predict(X_test)
    converted = pair_map.to_mlp(X, teacher_train, readout="refit", alpha=alpha)
    kept = pair_map.to_mlp(X, readout="keep")
    nulls = null_models(mlp, X, teacher_train, seed=seed, alpha=alpha)
    result = {
        "r2_map": output_r2(converted.predict(X_test), teacher_test),
        "r2_keep": output_r2(kept.predict(X_test), teacher_test),
        "r2_null_swim": output_r2(nulls["swim"].predict(X_test), teacher_test),
        "r2_null_uniform": output_r2(nulls["uniform"].predict(X_test), teacher_test),
        "map_seconds": pair_map.seconds,
    }
    result["gap_closed"] = gap_closed(result["r2_map"], result["r2_null_swim"])
    result["gap_closed_uniform"] = gap_closed(result["r2_map"], result["r2_null_uniform"])
    if task == "classification":
        result["fidelity"] = fidelity(converted.predict(X_test), teacher_test)
        result["fidelity_null_swim"] = fidelity(nulls["swim"].predict(X_test), teacher_test)
    for layer, scores in enumerate(pair_map.scores):
        for name in ("activation_correlation", "direction_cosine", "offset_error", "norm_ratio"):
            result[f"layer{layer}_median_{name}"] = float(np.median(scores[name]))
    if labels is not None:
        if task == "classification":
            classes = np.unique(labels)
            one_hot = (np.asarray(labels)[:, None] == classes[None, :]).astype(np.float64)
            own = pair_map.to_mlp(X, one_hot, readout="refit", alpha=alpha)
            encode = {c: i for i, c in enumerate(classes.tolist())}
            test_index = np.array([encode[v] for v in np.asarray(labels_test).tolist()])
            result["labels_score_map"] = accuracy(own.predict(X_test), test_index)
            result["labels_score_trained"] = accuracy(teacher_test, test_index)
        else:
            own = pair_map.to_mlp(X, labels, readout="refit", alpha=alpha)
            result["labels_score_map"] = output_r2(own.predict(X_test), labels_test)
            result["labels_score_trained"] = output_r2(teacher_test, labels_test)
    return result
