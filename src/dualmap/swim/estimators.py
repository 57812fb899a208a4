"""scikit-learn estimators around the SWIM sampler: :class:`SWIMClassifier`, :class:`SWIMRegressor`."""

from __future__ import annotations

import abc
import functools
from numbers import Integral, Real

import numpy as np
import torch
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._sklearn_compat import Interval, StrOptions, _fit_context
from .._threads import single_thread_below
from .._validation import HIDDEN_ACTIVATIONS, check_layer_widths, one_hot
from .density import SAMPLERS
from .readout import fit_temperature
from .sampler import _sample_validated

__all__ = ["SWIMClassifier", "SWIMRegressor"]

class PairPriorLike(abc.ABC):
    """Any object that says it is a pair prior (:class:`dualmap.inverse.PairPrior`; duck-typed, no import cycle)."""

    @classmethod
    def __subclasshook__(cls, candidate):
        return True if getattr(candidate, "is_pair_prior", False) else NotImplemented


_COMMON_PARAMETERS = """
    layer_widths : tuple of int, default=(512,)
        Width of every hidden layer, e.g. ``(256, 256)`` for two hidden layers.
    activation : {"tanh", "relu"}, default="tanh"
        Hidden activation; it also fixes the SWIM constants ``(s1, s2)``.
    sampler : {"swim", "uniform", "random"}, default="swim"
        ``"swim"`` draws pairs from the gradient-weighted SWIM density, ``"uniform"`` draws pairs of
        distinct points uniformly, ``"random"`` draws data-agnostic random features
        (``W ~ N(0, 1)``, ``b ~ U(-π, π)``, as the reference package's random sampler). A fitted
        :class:`dualmap.inverse.PairPrior` draws pairs from where trained networks put their neurons
        (:func:`dualmap.inverse.fit_pair_prior`).
    alpha : float >= 0 or "auto", default="auto"
        Ridge penalty of the readout; ``"auto"`` chooses it by generalised cross-validation.
    candidates_per_point : int, default=1
        Multiplies the number of candidate pairs ``N·max(1, ⌈width/N⌉)``.
    random_state : int, RandomState instance or None, default=None
        Seeds the pair draws. The same seed gives the same network.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where the sampling runs (CUDA when available for "auto").
    dtype : {"float32", "float64"}, default="float32"
        Precision of the hidden features during ``fit``; the readout is solved in float64 and the
        fitted ``network_`` holds float64 parameters.
"""

_COMMON_ATTRIBUTES = """
    network_ : MLP
        The sampled network: hidden layers and the readout (float64).
    pairs_ : list of ndarray of shape (width_l, 2), int64
        Per hidden layer, the row indices ``(i1, i2)`` into the training ``X`` of each neuron's pair
        (``-1`` for ``sampler="random"``).
    alpha_ : float
        The readout penalty used.
    n_features_in_ : int
        Number of features seen during ``fit``.
"""


class _SWIMBase(BaseEstimator):
    _parameter_constraints: dict = {
        "layer_widths": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(HIDDEN_ACTIVATIONS))],
        "sampler": [StrOptions(set(SAMPLERS)), PairPriorLike],
        "alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "candidates_per_point": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "device": [str],
        "dtype": [StrOptions({"float32", "float64"})],
    }

    def __init__(self, *, layer_widths=(512,), activation="tanh", sampler="swim", alpha="auto",
                 candidates_per_point=1, random_state=None, device="auto", dtype="float32"):
        self.layer_widths = layer_widths
        self.activation = activation
        self.sampler = sampler
        self.alpha = alpha
        self.candidates_per_point = candidates_per_point
        self.random_state = random_state
        self.device = device
        self.dtype = dtype

    def _sample(self, X, targets):
        widths = check_layer_widths(self.layer_widths)
        seed = _fit_seed(self.random_state)
        # fit validated X and y (validate_data) and the parameters (_parameter_constraints): trust them here
        sampled = _sample_validated(
            X, targets, widths, self.activation, sampler=self.sampler, alpha=self.alpha,
            random_state=np.random.default_rng(seed), device=self.device, dtype=self.dtype,
            candidates_per_point=self.candidates_per_point, keep_features=isinstance(self, ClassifierMixin),
        )
        self.network_ = sampled.network
        self.pairs_ = sampled.pairs
        self.alpha_ = sampled.alpha
        return sampled.features

    def _scores(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.network_.forward(X)


class SWIMClassifier(ClassifierMixin, _SWIMBase):
    __doc__ = f"""A classifier whose hidden layers are sampled by SWIM and whose readout is ridge regression.

    Hidden neuron ``k`` of layer ``l`` is built from an ordered pair of training points ``(x_i1, x_i2)``
    (their images ``(z_i1, z_i2)`` under the earlier layers) by
    :func:`~dualmap.swim.construction.swim_neurons`; SWIM draws the pairs with probability proportional to
    ``1[y_i1 ≠ y_i2] / ‖z_i2 − z_i1‖``. The readout regresses one-hot labels; the class is the argmax.

    Parameters
    ----------{_COMMON_PARAMETERS}
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (any type: ints, strings).{_COMMON_ATTRIBUTES}
    temperature_ : float
        Temperature ``T`` of ``predict_proba = softmax(scores / T)``, fitted by maximum likelihood on the
        readout scores of (at most 2000) training points, kept at ``fit``. It is fitted the first time it is
        read (``predict_proba`` reads it), so a fit whose probabilities are never used does not pay for it.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> import dualmap as dm
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = dm.SWIMClassifier(layer_widths=(64,), random_state=0).fit(X, y)
    >>> clf.pairs_[0].shape
    (64, 2)
    >>> bool(clf.score(X, y) > 0.9)
    True
    """

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Sample the network on ``(X, y)``; return ``self``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs: finite, numeric, at least 2 rows (and at least 2 distinct points).
        y : array-like of shape (n_samples,)
            Class labels of any type (ints, strings); at least 2 classes. The readout is fitted to their
            one-hot codes, in the order of ``classes_``.

        Returns
        -------
        self : SWIMClassifier
        """
        X, y = _validate_fit_data(self, X, y, classifier=True)
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"SWIMClassifier needs at least 2 classes; y has 1 class ({self.classes_[0]!r})"
            )
        features = self._sample(X, one_hot(encoded, np.arange(len(self.classes_))))
        self._temperature = _Temperature(*self._calibration_scores(features, encoded))
        return self

    def _calibration_scores(self, features, encoded):
        """The readout scores and labels of (at most 2000) seeded training points, from the last hidden layer's
        features that the readout was fitted on (no second forward pass): what ``temperature_`` is fitted on."""
        rows = np.random.default_rng(0).choice(len(features), size=min(len(features), 2000), replace=False)
        hidden = np.asarray(features[torch.as_tensor(rows, device=features.device)].cpu(), dtype=np.float64)
        with single_thread_below(hidden.size * len(self.classes_)):     # small products
            return hidden @ self.network_.weights[-1].T + self.network_.biases[-1], encoded[rows]

    @property
    def temperature_(self) -> float:
        """Temperature ``T`` of ``predict_proba`` (see the class docstring), fitted the first time it is read."""
        check_is_fitted(self)
        if "_temperature" not in self.__dict__ and "temperature_" in self.__dict__:
            return self.__dict__["temperature_"]     # pickled before the temperature was fitted lazily
        return self._temperature.value()

    def decision_function(self, X):
        """Readout scores: shape (n_samples, n_classes); for 2 classes, shape (n_samples,) holding
        ``score(classes_[1]) − score(classes_[0])`` (positive → ``classes_[1]``), as in scikit-learn."""
        scores = self._scores(X)
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores

    def predict(self, X):
        """Class with the largest readout score."""
        scores = self._scores(X)
        return self.classes_[np.argmax(scores, axis=1)]

    def predict_proba(self, X):
        """``softmax(scores / temperature_)``, shape (n_samples, n_classes)."""
        return softmax(self._scores(X) / self.temperature_, axis=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags


def _validate_fit_data(estimator, X, y, *, classifier: bool):
    """``validate_data(estimator, X, y, ...)`` as ``fit`` needs it (float32/64 X, at least 2 rows; the regressor's
    ``y`` numeric, 1-D or 2-D), with a fast path for the common case that needs no conversion.

    scikit-learn's validation costs 0.11–0.14 ms per call, a tenth of a whole fit of width 64 on a few hundred
    points (BENCHMARKS.md, issue 15). When ``X`` is a 2-D float32/float64 ndarray with at least 2 rows and 1 column and
    ``y`` a matching ndarray (the classifier: 1-D integers; the regressor: 1-D or 2-D floats), both with a finite
    sum, ``validate_data`` would return them unchanged: then only what it records on the estimator is set
    (``n_features_in_``; ``feature_names_in_`` removed, as for any input without column names). Anything else —
    other types, dtypes or shapes, a NaN or an infinity, a sum that overflows — goes through ``validate_data``,
    which converts or raises scikit-learn's own errors.
    """
    if _plain_fit_arrays(X, y, classifier):
        estimator.n_features_in_ = X.shape[1]
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        return X, y
    if classifier:
        return validate_data(estimator, X, y, dtype=(np.float64, np.float32), ensure_min_samples=2)
    return validate_data(estimator, X, y, dtype=(np.float64, np.float32), y_numeric=True, multi_output=True,
                         ensure_min_samples=2)


def _plain_fit_arrays(X, y, classifier: bool) -> bool:
    """True when ``validate_data`` would pass ``X`` and ``y`` through as they are (see :func:`_validate_fit_data`)."""
    if type(X) is not np.ndarray or type(y) is not np.ndarray:
        return False
    if X.ndim != 2 or X.dtype not in (np.float64, np.float32) or X.shape[0] < 2 or X.shape[1] < 1:
        return False
    if len(y) != X.shape[0]:
        return False
    if classifier:
        if y.ndim != 1 or y.dtype.kind not in "iu":
            return False
    elif y.ndim not in (1, 2) or y.dtype.kind != "f" or (y.ndim == 2 and y.shape[1] < 1):
        return False
    with np.errstate(over="ignore", invalid="ignore"):   # a NaN or an infinity makes a sum non-finite; so does an
        return bool(np.isfinite(X.sum()) and (classifier or np.isfinite(y.sum())))   # overflow (the slow path)


def _fit_seed(random_state) -> int:
    """The seed of a fit's generator, drawn from ``random_state`` as scikit-learn does (``None``, an int or a
    ``RandomState``): ``check_random_state(random_state).randint(2³¹ − 1)``."""
    if isinstance(random_state, Integral):
        return _seed_of_int(int(random_state))
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


@functools.lru_cache(maxsize=1024)
def _seed_of_int(random_state: int) -> int:
    """``_fit_seed`` of an int, kept: seeding a Mersenne Twister costs ≈ 0.15 ms, a tenth of a small fit."""
    return int(np.random.RandomState(random_state).randint(np.iinfo(np.int32).max))


class _Temperature:
    """A classifier's softmax temperature, fitted on its calibration scores the first time it is asked for.

    The value is kept inside this object, so reading it leaves the estimator's ``__dict__`` as it was
    (scikit-learn's contract for ``predict_proba``); it is a pure function of the scores and labels."""

    def __init__(self, scores: np.ndarray, labels: np.ndarray):
        self.scores, self.labels, self._value = scores, labels, None

    def value(self) -> float:
        if self._value is None:
            self._value = fit_temperature(self.scores, self.labels)       # element-wise numpy: no BLAS pools
        return self._value


class SWIMRegressor(RegressorMixin, _SWIMBase):
    __doc__ = f"""A regressor whose hidden layers are sampled by SWIM and whose readout is ridge regression.

    SWIM draws the pair ``(x_i1, x_i2)`` of each neuron with probability proportional to
    ``max_k |y_k(x_i2) − y_k(x_i1)| / ‖z_i2 − z_i1‖``. Multi-output targets are supported.

    Parameters
    ----------{_COMMON_PARAMETERS}
    Attributes
    ----------{_COMMON_ATTRIBUTES}
    Examples
    --------
    >>> import numpy as np, dualmap as dm
    >>> X = np.linspace(-1, 1, 200)[:, None]
    >>> reg = dm.SWIMRegressor(layer_widths=(50,), random_state=0).fit(X, np.sin(3 * X[:, 0]))
    >>> bool(reg.score(X, np.sin(3 * X[:, 0])) > 0.99)
    True
    """

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Sample the network on ``(X, y)``; return ``self``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs: finite, numeric, at least 2 rows (and at least 2 distinct points).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Real targets; ``predict`` returns the same shape.

        Returns
        -------
        self : SWIMRegressor
        """
        X, y = _validate_fit_data(self, X, y, classifier=False)
        self._y_ndim = np.ndim(y)
        self._sample(X, np.asarray(y, dtype=np.float64).reshape(len(X), -1))
        return self

    def predict(self, X):
        """Network output, shape (n_samples,) for 1-D ``y`` and (n_samples, n_outputs) otherwise."""
        scores = self._scores(X)
        return scores[:, 0] if self._y_ndim == 1 else scores

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
