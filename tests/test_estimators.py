import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import dualmap as dm


@parametrize_with_checks(
    [dm.SWIMClassifier(layer_widths=(32,), random_state=0), dm.SWIMRegressor(layer_widths=(32,), random_state=0),
     dm.SWIMClassifier(layer_widths=(16, 16), activation="relu", random_state=0)],
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_default_parameters_fit(digits):
    clf = dm.SWIMClassifier(random_state=0).fit(digits.X_train, digits.y_train)
    assert clf.network_.hidden_widths == (512,)
    assert clf.score(digits.X_test, digits.y_test) > 0.97


def test_clone_then_set_params_changes_the_width(digits):
    # the reference package keeps a bound method of the original object across clone, so a clone given new
    # parameters still fitted the original's width
    original = dm.SWIMClassifier(layer_widths=(10,), random_state=0).fit(digits.X_train, digits.y_train)
    cloned = clone(original).set_params(layer_widths=(40,)).fit(digits.X_train, digits.y_train)
    assert cloned.network_.weights[0].shape == (40, 64)
    assert original.network_.weights[0].shape == (10, 64)
    assert not hasattr(clone(original), "network_")


def test_pipeline_gridsearch_and_cross_val_score(digits):
    pipeline = make_pipeline(StandardScaler(), dm.SWIMClassifier(layer_widths=(64,), random_state=0))
    search = GridSearchCV(pipeline, {"swimclassifier__layer_widths": [(16,), (128,)],
                                     "swimclassifier__activation": ["relu", "tanh"]}, cv=3)
    search.fit(digits.X_train[:600], digits.y_train[:600])
    assert search.best_params_["swimclassifier__layer_widths"] == (128,)
    scores = cross_val_score(dm.SWIMRegressor(layer_widths=(64,), random_state=0), *_diabetes(), cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.2)


def _diabetes():
    ds = dm.load_dataset("diabetes")
    return ds.X_train, ds.y_train


@pytest.mark.parametrize("labels", [np.array(["cat", "dog", "eel"]), np.array([3, 7, 11]), np.array([-1.0, 0.0, 2.0])])
def test_any_label_type_round_trips(labels, rng):
    X = rng.normal(size=(150, 4))
    index = np.argmax(X[:, :3], axis=1)
    y = labels[index]
    clf = dm.SWIMClassifier(layer_widths=(64,), random_state=0).fit(X, y)
    assert_array_equal(clf.classes_, np.sort(labels))
    predictions = clf.predict(X)
    assert predictions.dtype == y.dtype
    assert set(predictions) <= set(labels)
    assert np.mean(predictions == y) > 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert_array_equal(clf.classes_[np.argmax(proba, axis=1)], predictions)


def test_multi_output_regression(rng):
    X = rng.uniform(-1, 1, size=(300, 2))
    Y = np.stack([np.sin(2 * X[:, 0]), X[:, 0] * X[:, 1]], axis=1)
    reg = dm.SWIMRegressor(layer_widths=(128,), random_state=0).fit(X, Y)
    assert reg.predict(X).shape == (300, 2)
    assert reg.score(X, Y) > 0.98


def test_same_seed_same_predictions(digits):
    a = dm.SWIMClassifier(layer_widths=(64,), random_state=3).fit(digits.X_train, digits.y_train)
    b = dm.SWIMClassifier(layer_widths=(64,), random_state=3).fit(digits.X_train, digits.y_train)
    assert_array_equal(a.decision_function(digits.X_test), b.decision_function(digits.X_test))


@pytest.mark.parametrize("X, y, error, message", [
    (np.array([[0.0, np.nan], [1.0, 2.0], [3, 4]]), np.array([0, 1, 0]), ValueError, "NaN"),
    (np.array([[0.0, np.inf], [1.0, 2.0], [3, 4]]), np.array([0, 1, 0]), ValueError, "infinity"),
    (np.ones((5, 2)), np.array([0, 1, 0]), ValueError, "inconsistent numbers of samples"),
    (np.empty((0, 3)), np.empty(0), ValueError, "0 sample"),
    (np.random.default_rng(0).normal(size=(5, 2)), np.zeros(5), ValueError, "1 class"),
])
def test_bad_input_to_fit(X, y, error, message):
    with pytest.raises(error, match=message):
        dm.SWIMClassifier(layer_widths=(4,)).fit(X, y)


@pytest.mark.parametrize("params, message", [
    (dict(activation="sigmoid"), "'activation' parameter"),
    (dict(sampler="gradient"), "'sampler' parameter"),
    (dict(alpha=-1.0), "'alpha' parameter"),
    (dict(layer_widths=(0,)), "positive"),
])
def test_bad_hyper_parameters(params, message, digits):
    with pytest.raises(ValueError, match=message):
        dm.SWIMClassifier(**params).fit(digits.X_train, digits.y_train)


def test_wrong_feature_count_at_predict(digits):
    clf = dm.SWIMClassifier(layer_widths=(8,), random_state=0).fit(digits.X_train, digits.y_train)
    with pytest.raises(ValueError, match="X has 10 features, but SWIMClassifier is expecting 64"):
        clf.predict(np.ones((2, 10)))


def test_temperature_is_the_likelihood_optimum_of_the_training_scores_fitted_on_first_use(digits):
    import pickle

    from scipy.special import softmax

    from dualmap.swim.readout import fit_temperature

    X, y = digits.X_train, digits.y_train
    clf = dm.SWIMClassifier(layer_widths=(48,), random_state=2).fit(X, y)
    copy = pickle.loads(pickle.dumps(clf))             # pickled before the temperature was fitted
    state = dict(clf.__dict__)
    T = clf.temperature_
    assert clf.__dict__ == state                        # reading it is not a change of the estimator
    labels = np.searchsorted(clf.classes_, y)
    rows = slice(None) if len(X) <= 2000 else np.random.default_rng(0).choice(len(X), 2000, replace=False)
    assert T == pytest.approx(fit_temperature(clf.decision_function(X)[rows], labels[rows]), rel=1e-6)
    assert clf.predict_proba(X[:5]) == pytest.approx(softmax(clf.decision_function(X[:5]) / T, axis=1))
    assert copy.temperature_ == T
    refit = clf.fit(X[::-1], y[::-1])                   # a new fit forgets the old temperature
    assert refit.temperature_ != T


def test_fit_seed_is_scikit_learns_draw_from_random_state():
    from sklearn.utils import check_random_state

    from dualmap.swim.estimators import _fit_seed

    top = np.iinfo(np.int32).max
    for seed in (0, 7, np.int64(7), 2**31 - 2):
        assert _fit_seed(seed) == check_random_state(seed).randint(top)
    assert _fit_seed(np.random.RandomState(3)) == np.random.RandomState(3).randint(top)
    with pytest.raises(ValueError):
        _fit_seed("seven")


def test_a_classifier_pickled_with_an_eager_temperature_still_predicts_probabilities(digits):
    import pickle

    clf = dm.SWIMClassifier(layer_widths=(16,), random_state=0).fit(digits.X_train, digits.y_train)
    state = clf.__getstate__()
    del state["_temperature"]
    state["temperature_"] = 0.5                         # how it was stored before it was fitted lazily
    old = pickle.loads(pickle.dumps(clf))
    old.__setstate__(state)
    assert old.temperature_ == 0.5
    assert old.predict_proba(digits.X_test[:3]).sum(axis=1) == pytest.approx(1.0)


@pytest.mark.parametrize("estimator, make_y", [
    (dm.SWIMClassifier, lambda rng, n: rng.integers(0, 3, n)),
    (dm.SWIMRegressor, lambda rng, n: rng.standard_normal((n, 2))),
    (dm.SWIMRegressor, lambda rng, n: rng.standard_normal(n).astype(np.float32)),
])
def test_fit_on_plain_arrays_equals_fit_through_scikit_learns_validation(estimator, make_y, rng):
    # ndarrays take fit's fast path, lists go through validate_data: the same fit and the same recorded attributes
    X = rng.standard_normal((60, 5))
    y = make_y(rng, 60)
    fast = estimator(layer_widths=(16,), random_state=0)
    fast.feature_names_in_ = np.array(["a", "b", "c", "d", "e"], dtype=object)   # left by an earlier DataFrame fit
    fast.fit(X, y)
    slow = estimator(layer_widths=(16,), random_state=0).fit(X.tolist(), y.tolist())
    assert fast.n_features_in_ == slow.n_features_in_ == 5
    assert not hasattr(fast, "feature_names_in_") and not hasattr(slow, "feature_names_in_")
    assert_array_equal(fast.pairs_[0], slow.pairs_[0])
    for a, b in zip(fast.network_.weights + fast.network_.biases, slow.network_.weights + slow.network_.biases):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)
    np.testing.assert_allclose(fast.predict(X), slow.predict(X), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("where", ["X", "y"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_value_in_ndarrays_is_still_refused_by_name(where, bad, rng):
    X, y = rng.standard_normal((30, 4)), rng.standard_normal(30)
    (X if where == "X" else y)[3] = bad
    with pytest.raises(ValueError, match=f"Input {where} contains (NaN|infinity)"):
        dm.SWIMRegressor(layer_widths=(8,), random_state=0).fit(X, y)


def test_finite_values_whose_sum_overflows_take_the_full_check_and_pass_it(rng):
    # the fast path tests finiteness by a sum; an overflow sends the arrays through validate_data, which accepts them
    from dualmap.swim.estimators import _plain_fit_arrays, _validate_fit_data

    X, y = rng.standard_normal((40, 3)), rng.standard_normal(40)
    assert _plain_fit_arrays(X, y, classifier=False)
    X[:, 0] = 1e308
    assert not _plain_fit_arrays(X, y, classifier=False)
    reg = dm.SWIMRegressor()
    X_checked, y_checked = _validate_fit_data(reg, X, y, classifier=False)
    assert_array_equal(X_checked, X)
    assert_array_equal(y_checked, y)
    assert reg.n_features_in_ == 3
