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
    sampled = dm.sample_network(X, y, (50,), "relu", random_state=0)
    assert sampled.pairs[0].shape == (50, 2)


@pytest.mark.parametrize("sampler", ["uniform", "random"])
def test_other_samplers(sampler, rng):
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    sampled = dm.sample_network(X, y, (25,), "tanh", sampler=sampler, random_state=0)
    if sampler == "random":
        assert np.all(sampled.pairs[0] == -1)
    else:
        assert np.all(sampled.pairs[0][:, 0] != sampled.pairs[0][:, 1])


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
