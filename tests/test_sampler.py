import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import dualmap as dm
from conftest import read_only


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("widths", [(16,), (32, 16), (20, 30, 10)])
def test_deep_shapes_and_every_neuron_is_the_swim_neuron_of_its_pair(activation, widths, rng):
    X = read_only(rng.normal(size=(80, 4)))
    y = read_only(np.sin(X[:, :2]))
    sampled = dm.sample_network(X, y, widths, activation, random_state=0, dtype="float64")
    mlp = sampled.network
    assert mlp.hidden_widths == widths and mlp.output_dim == 2 and mlp.activations[-1] == "identity"
    for layer, (width, pairs) in enumerate(zip(widths, sampled.pairs)):
        assert pairs.shape == (width, 2) and pairs.dtype == np.int64
        assert pairs.min() >= 0 and pairs.max() < len(X)
        Z = X if layer == 0 else mlp.hidden(X, layer - 1)          # images of the inputs under earlier layers
        W, b = dm.swim_neurons(Z[pairs[:, 0]], Z[pairs[:, 1]], activation)
        assert_allclose(mlp.weights[layer], W, rtol=1e-12, atol=1e-12)
        assert_allclose(mlp.biases[layer], b, rtol=1e-12, atol=1e-12)


def test_same_seed_same_network_different_seed_different_network(rng):
    X, y = rng.normal(size=(60, 3)), rng.normal(size=60)
    first = dm.sample_network(X, y, (20, 10), "tanh", random_state=7)
    second = dm.sample_network(X, y, (20, 10), "tanh", random_state=7)
    other = dm.sample_network(X, y, (20, 10), "tanh", random_state=8)
    for a, b in zip(first.network.weights + first.network.biases, second.network.weights + second.network.biases):
        assert_array_equal(a, b)
    for a, b in zip(first.pairs, second.pairs):
        assert_array_equal(a, b)
    assert not np.array_equal(first.pairs[0], other.pairs[0])


def test_width_larger_than_number_of_points(rng):
    X, y = rng.normal(size=(10, 2)), rng.normal(size=10)
    sampled = dm.sample_network(X, y, (50,), "relu", random_state=0, dtype="float64")
    pairs = sampled.pairs[0]
    # 50 neurons from 10 points (45 unordered pairs): pairs repeat, but every one joins two distinct points and
    # every neuron is still the SWIM neuron of its pair
    assert pairs.shape == (50, 2) and pairs.min() >= 0 and pairs.max() < 10
    assert np.all(pairs[:, 0] != pairs[:, 1])
    assert len({tuple(sorted(pair)) for pair in pairs.tolist()}) > 10     # not a handful of pairs repeated
    W, b = dm.swim_neurons(X[pairs[:, 0]], X[pairs[:, 1]], "relu")
    assert_allclose(sampled.network.weights[0], W, rtol=1e-12)
    assert_allclose(sampled.network.biases[0], b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sampler", ["uniform", "random"])
def test_other_samplers(sampler, rng):
    X = rng.normal(size=(40, 3))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1]
    sampled = dm.sample_network(X, y, (25,), "tanh", sampler=sampler, random_state=0, dtype="float64")
    W, b = sampled.network.weights[0], sampled.network.biases[0]
    if sampler == "random":
        # data-agnostic random features: no pairs, Gaussian weights and biases uniform on [-π, π]
        assert np.all(sampled.pairs[0] == -1)
        assert abs(W.mean()) < 0.5 and 0.6 < W.std() < 1.4 and np.all(np.abs(b) <= np.pi)
        assert len(np.unique(b)) == 25
    else:
        pairs = sampled.pairs[0]
        assert np.all(pairs[:, 0] != pairs[:, 1])
        W_pairs, b_pairs = dm.swim_neurons(X[pairs[:, 0]], X[pairs[:, 1]], "tanh")
        assert_allclose(W, W_pairs, rtol=1e-12)
        assert_allclose(b, b_pairs, rtol=1e-12, atol=1e-12)
        # uniform pairs ignore the targets: the same draw for any y
        other = dm.sample_network(X, -3 * y, (25,), "tanh", sampler=sampler, random_state=0, dtype="float64")
        assert_array_equal(other.pairs[0], pairs)
    # the readout is fitted: the sampled network explains part of y on the data it was sampled on
    residual = sampled.network.predict(X).ravel() - y
    assert np.sum(residual**2) < 0.1 * np.sum((y - y.mean()) ** 2)


def test_float32_and_float64_agree(digits):
    kwargs = dict(layer_widths=(256,), random_state=0)
    a = dm.SWIMClassifier(dtype="float32", **kwargs).fit(digits.X_train, digits.y_train)
    b = dm.SWIMClassifier(dtype="float64", **kwargs).fit(digits.X_train, digits.y_train)
    assert_array_equal(a.pairs_[0], b.pairs_[0])
    agreement = np.mean(a.predict(digits.X_test) == b.predict(digits.X_test))
    assert agreement > 0.99


@pytest.mark.parametrize("bad, message", [
    (dict(layer_widths=(0,)), "positive"),
    (dict(layer_widths=()), "at least one"),
    (dict(activation="sigmoid"), "unknown activation"),
    (dict(sampler="gradient"), "unknown sampler"),
])
def test_bad_arguments(bad, message, rng):
    kwargs = dict(layer_widths=(5,), activation="relu", sampler="swim")
    kwargs.update(bad)
    X, y = rng.normal(size=(10, 2)), rng.normal(size=10)
    widths = kwargs.pop("layer_widths")
    activation = kwargs.pop("activation")
    with pytest.raises(ValueError, match=message):
        dm.sample_network(X, y, widths, activation, **kwargs)


def test_all_rows_identical(rng):
    with pytest.raises(ValueError, match="distinct"):
        dm.sample_network(np.ones((10, 3)), rng.normal(size=10), (5,), "relu")
