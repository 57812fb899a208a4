import numpy as np
import pytest
from numpy.testing import assert_allclose

import dualmap as dm
from dualmap.metrics import evaluate_map, fidelity, gap_closed, null_models, output_r2


def test_output_r2_is_pooled_over_outputs(rng):
    reference = rng.normal(size=(50, 3)) * np.array([1.0, 10.0, 0.1])
    outputs = reference + rng.normal(size=(50, 3)) * 0.5
    expected = 1 - np.sum((outputs - reference) ** 2) / np.sum((reference - reference.mean(axis=0)) ** 2)
    assert output_r2(outputs, reference) == pytest.approx(expected)
    assert output_r2(reference, reference) == 1.0
    with pytest.raises(ValueError, match="constant"):
        output_r2(outputs, np.ones((50, 3)))
    with pytest.raises(ValueError, match="same shape"):
        output_r2(outputs[:, :2], reference)


def test_fidelity_and_gap_closed():
    assert fidelity(np.array([[1, 0], [0, 1], [1, 0]]), np.array([[2, 1], [0, 3], [0, 1]])) == pytest.approx(2 / 3)
    assert gap_closed(0.95, 0.9) == pytest.approx(0.5)
    assert gap_closed(0.9, 0.9) == 0.0
    assert gap_closed(1.0, 0.5) == 1.0


def test_null_models_have_the_networks_widths(digits):
    mlp = dm.planted_network(digits.X_train, (20, 10), "tanh", n_outputs=3).network
    targets = mlp.predict(digits.X_train)
    nulls = null_models(mlp, digits.X_train, targets, seed=4)
    assert set(nulls) == {"swim", "uniform"}
    for sampler, network in nulls.items():
        assert network.hidden_widths == (20, 10) and network.output_dim == 3 and network.activations[0] == "tanh"
        # the network sampled on (X, targets) with that sampler and seed, its readout fitted to the targets
        expected = dm.sample_network(digits.X_train, targets, (20, 10), "tanh", sampler=sampler, random_state=4,
                                     dtype="float64").network
        for a, b in zip(network.weights + network.biases, expected.weights + expected.biases):
            assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        assert output_r2(network.predict(digits.X_train), targets) > 0.7
    assert not np.allclose(nulls["swim"].weights[0], nulls["uniform"].weights[0])


def test_evaluate_map_on_a_planted_network_closes_the_whole_gap(digits):
    X, X_test = digits.X_train[:500], digits.X_test
    planted = dm.planted_network(X, (40,), "relu", n_outputs=4, seed=1)
    pair_map = dm.to_pairs(planted.network, X, progress=False)
    result = evaluate_map(pair_map, planted.network, X, X_test, alpha=1e-10)
    assert result["r2_map"] > 1 - 1e-8 and result["fidelity"] == 1.0
    assert result["gap_closed"] == pytest.approx(1.0, abs=1e-6)
    assert_allclose(result["r2_keep"], 1.0, atol=1e-8)
    assert result["r2_null_swim"] < 0.999
