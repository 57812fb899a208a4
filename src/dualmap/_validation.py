"""Input validation shared by every public entry point.

Each check raises :class:`ValueError` or :class:`TypeError` with a message that names the
argument, what was expected and what was received, before any numerics run.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.utils import check_array

__all__ = [
    "ACTIVATIONS",
    "HIDDEN_ACTIVATIONS",
    "check_activation",
    "check_data",
    "check_int",
    "check_layer_widths",
    "check_targets",
    "class_indices",
    "infer_task",
    "one_hot",
]

#: Activations a dense layer of an :class:`~dualmap.MLP` may have.
ACTIVATIONS = ("relu", "tanh", "identity")
#: Activations for which a SWIM construction exists (hidden layers).
HIDDEN_ACTIVATIONS = ("relu", "tanh")


def check_choice(value, choices, name: str) -> str:
    """Return ``value`` if it is one of the strings ``choices``; else a ValueError naming ``name``, the value and
    the choices (``unknown <name> <value>; supported: [...]``)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; supported: {list(choices)}")
    return value


def check_activation(activation, *, allowed=HIDDEN_ACTIVATIONS, name="activation") -> str:
    """Return ``activation`` if it is one of ``allowed``, else raise naming the valid choices (a TypeError for
    a value that is not a string)."""
    if not isinstance(activation, str):
        raise TypeError(f"{name} must be one of {list(allowed)}; got {activation!r} "
                        f"of type {type(activation).__name__}")
    return check_choice(activation, allowed, name)


def check_data(X, *, name="X", min_samples=1, n_features=None, dtype=(np.float64, np.float32)) -> np.ndarray:
    """Validate a data matrix: 2-D, numeric, finite, non-empty.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    name : str
        The argument's name, used in error messages.
    min_samples : int
        Fewest rows accepted.
    n_features : int, optional
        Required number of columns.

    Returns
    -------
    ndarray of shape (n_samples, n_features), float32 or float64
    """
    if X is None:
        raise ValueError(f"{name} is None; expected an array of shape (n_samples, n_features)")
    array = check_array(X, dtype=dtype, ensure_all_finite=True, input_name=name, ensure_min_samples=min_samples)
    if n_features is not None and array.shape[1] != n_features:
        raise ValueError(f"{name} has {array.shape[1]} features, but {n_features} were expected")
    return array


def check_targets(y, n_samples: int, *, name="y") -> np.ndarray:
    """Validate real-valued targets: 1-D or 2-D, finite, one row per sample."""
    if y is None:
        raise ValueError(f"{name} is None; targets are required here")
    array = check_array(y, dtype=(np.float64, np.float32), ensure_2d=False, ensure_all_finite=True, input_name=name)
    if array.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D; got shape {array.shape}")
    if array.shape[0] != n_samples:
        raise ValueError(f"{name} has {array.shape[0]} rows but X has {n_samples}; they must match")
    return array


def check_layer_widths(layer_widths, *, name="layer_widths") -> tuple[int, ...]:
    """Return ``layer_widths`` as a tuple of positive ints (one per hidden layer)."""
    if isinstance(layer_widths, Integral):
        layer_widths = (layer_widths,)
    try:
        widths = tuple(layer_widths)
    except TypeError as exc:
        raise TypeError(f"{name} must be a sequence of positive ints; got {layer_widths!r}") from exc
    if len(widths) == 0:
        raise ValueError(f"{name} must name at least one hidden layer; got {layer_widths!r}")
    for width in widths:
        if not isinstance(width, Integral) or isinstance(width, bool) or width < 1:
            raise ValueError(f"{name} must be positive ints; got {layer_widths!r}")
    return tuple(int(w) for w in widths)


def check_int(value, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer (not a bool) ``>= minimum``, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def infer_task(y) -> str:
    """``"classification"`` for labels (ints, bools, strings, objects), ``"regression"`` for real targets."""
    return "classification" if np.asarray(y).dtype.kind in "iubUSO" else "regression"


def class_indices(labels, classes, *, name="y", unknown="not among the classes") -> np.ndarray:
    """The position of every label in ``classes`` (int64); a label not in ``classes`` raises
    ``"{name} holds labels {unknown}: ..."``."""
    index = {label: k for k, label in enumerate(np.asarray(classes).tolist())}
    values = np.asarray(labels).tolist()
    missing = set(values) - set(index)
    if missing:
        raise ValueError(f"{name} holds labels {unknown}: {sorted(missing)[:5]}")
    return np.array([index[v] for v in values], dtype=np.int64)


def one_hot(labels, classes=None) -> np.ndarray:
    """Float64 one-hot codes ``(n, n_classes)`` of 1-D ``labels``; ``classes`` default to the sorted distinct
    labels (a label not in ``classes`` gets a row of zeros)."""
    labels = np.asarray(labels)
    classes = np.unique(labels) if classes is None else np.asarray(classes)
    return (labels[:, None] == classes[None, :]).astype(np.float64)
