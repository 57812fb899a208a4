import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from torch import nn

import dualmap as dm
from dualmap.maps import planted_recovery
from dualmap.metrics import fidelity, output_r2


@pytest.fixture(scope="module")
def small_digits():
    return dm.load_dataset("digits", n_train=400)


@pytest.fixture(scope="module")
def log2d():
    return dm.load_dataset("log2d", n_samples=800)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("widths", [(48,), (40, 24), (32, 24, 16)])
@pytest.mark.parametrize("data", ["small_digits", "log2d"])
def test_default_method_recovers_planted_networks_exactly(activation, widths, data, request):
    X = request.getfixturevalue(data).X_train
    planted = dm.planted_network(X, widths, activation, seed=3)          # ReLU: rescaled and permuted
    pair_map = dm.to_pairs(planted.network, X, progress=False)
    assert planted_recovery(pair_map.pairs, planted.pairs, X) == [1.0] * len(widths)
    for found, true in zip(pair_map.scales, planted.scales):
        assert_allclose(found, true, rtol=1e-6)
    # the converted network, with the readout refit to the planted outputs, is the planted network
    outputs = planted.network.predict(X)
    converted = pair_map.to_mlp(X, outputs, alpha=1e-10)
    assert fidelity(np.c_[converted.predict(X), -converted.predict(X)], np.c_[outputs, -outputs]) == 1.0
    assert output_r2(converted.predict(X), outputs) > 1 - 1e-8
    kept = pair_map.to_mlp(X, readout="keep")            # trained readout × scales: the same function
    assert_allclose(kept.predict(X), outputs, atol=1e-6)


@pytest.mark.parametrize("method", ["function", "geometric", "assignment"])
def test_other_methods_are_exact_on_planted_networks(method, small_digits):
    X = small_digits.X_train
    planted = dm.planted_network(X, (30, 20), "relu", seed=0)
    pair_map = dm.to_pairs(planted.network, X, method=method, progress=False)
    assert planted_recovery(pair_map.pairs, planted.pairs, X) == [1.0, 1.0]


def test_thesis_baseline_recovers_an_unscaled_planted_relu_layer(log2d):
    X = log2d.X_train
    planted = dm.planted_network(X, (40,), "relu", seed=1, rescale=False)
    pair_map = dm.to_pairs(planted.network, X, method="thesis", ratio=0.0, progress=False)
    assert planted_recovery(pair_map.pairs, planted.pairs, X) == [1.0]


def test_scores_are_perfect_on_planted_networks(small_digits):
    X = small_digits.X_train
    planted = dm.planted_network(X, (20,), "tanh", seed=0)
    scores = dm.to_pairs(planted.network, X, progress=False).scores[0]
    assert_allclose(scores["direction_cosine"], 1.0, atol=1e-9)
    assert_allclose(scores["offset_error"], 0.0, atol=1e-9)
    assert_allclose(scores["norm_ratio"], 1.0, atol=1e-9)
    assert_allclose(scores["activation_correlation"], 1.0, atol=1e-9)


def test_relu_map_is_invariant_to_rescaling(small_digits, rng):
    X = small_digits.X_train
    run = dm.train([24], X, small_digits.y_train, epochs=3, progress=False)
    mlp = run.model
    c = rng.uniform(0.3, 3.0, size=24)
    rescaled = dm.MLP([mlp.weights[0] * c[:, None], mlp.weights[1] / c[None, :]], [mlp.biases[0] * c, mlp.biases[1]],
                      mlp.activations)
    a = dm.to_pairs(mlp, X, progress=False, dtype="float64")
    b = dm.to_pairs(rescaled, X, progress=False, dtype="float64")
    assert_array_equal(a.pairs[0], b.pairs[0])
    assert_allclose(b.scales[0], a.scales[0] * c, rtol=1e-8)


def test_pairs_index_distinct_points(small_digits):
    X = small_digits.X_train
    run = dm.train([32, 16], X, small_digits.y_train, activation="tanh", epochs=3, progress=False)
    pair_map = dm.to_pairs(run.model, X, progress=False)
    for pairs in pair_map.pairs:
        assert np.all(pairs[:, 0] != pairs[:, 1]) and pairs.min() >= 0 and pairs.max() < len(X)


def test_assignment_gives_distinct_pairs(small_digits):
    X = small_digits.X_train
    run = dm.train([64], X, small_digits.y_train, epochs=3, progress=False)
    pairs = dm.to_pairs(run.model, X, method="assignment", progress=False).pairs[0]
    assert len(np.unique(pairs, axis=0)) == 64


def test_pairmap_save_load_round_trip(small_digits, tmp_path):
    X = small_digits.X_train
    planted = dm.planted_network(X, (10, 5), "relu", seed=0)
    pair_map = dm.to_pairs(planted.network, X, progress=False)
    back = dm.PairMap.load(pair_map.save(tmp_path / "map.npz"))
    for a, b in zip(pair_map.pairs, back.pairs):
        assert_array_equal(a, b)
    assert back.method == pair_map.method and back.params == pair_map.params
    assert_array_equal(back.scores[1]["activation_correlation"], pair_map.scores[1]["activation_correlation"])
    assert_array_equal(back.to_mlp(X, readout="keep").predict(X), pair_map.to_mlp(X, readout="keep").predict(X))
    assert back.summary()["layers"][0]["width"] == 10


def test_to_mlp_rejects_other_data(small_digits):
    X = small_digits.X_train
    pair_map = dm.to_pairs(dm.planted_network(X, (5,), "relu").network, X, progress=False)
    with pytest.raises(ValueError, match="fingerprint"):
        pair_map.to_mlp(X[::-1], np.zeros(len(X)))


def test_bad_input(small_digits):
    X = small_digits.X_train
    mlp = dm.planted_network(X, (5,), "relu").network
    with pytest.raises(ValueError, match="features"):
        dm.to_pairs(mlp, X[:, :10])
    bad = X.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        dm.to_pairs(mlp, bad)
    with pytest.raises(ValueError, match="fewer than 2 distinct points"):
        dm.to_pairs(mlp, np.ones((10, X.shape[1])))
    with pytest.raises(ValueError, match="unknown method"):
        dm.to_pairs(mlp, X, method="magic")
    with pytest.raises(ValueError, match="thesis baseline handles one hidden ReLU layer"):
        dm.to_pairs(dm.planted_network(X, (5, 5), "relu").network, X, method="thesis")
    identity_net = dm.MLP([np.ones((3, 64)), np.ones((1, 3))], [np.zeros(3), np.zeros(1)], ["identity", "identity"])
    with pytest.raises(ValueError, match="activation 'identity'"):
        dm.to_pairs(identity_net, X)
    with pytest.raises(TypeError, match="dualmap MLP"):
        dm.to_pairs(nn.Sequential(nn.Linear(64, 3)), X)


def test_candidate_activations_from_the_gram_matrix_equal_the_direct_ones(small_digits):
    from dualmap.maps._scores import candidate_activations, eval_gram

    Z = torch.from_numpy(small_digits.X_train)
    rows = torch.arange(0, len(Z), 3)
    candidates = torch.randint(0, len(Z), (7, 5, 2), generator=torch.Generator().manual_seed(0))
    gram = eval_gram(Z, rows, n_candidate_evaluations=len(Z))
    assert gram is not None
    for activation in ("relu", "tanh"):
        direct = candidate_activations(Z, Z[rows], candidates, activation)
        assert_allclose(candidate_activations(Z, Z[rows], candidates, activation, gram), direct, atol=1e-10)
    assert eval_gram(Z, rows, n_candidate_evaluations=len(Z) - 1) is None     # too few candidates to pay off
    assert eval_gram(Z[:, :8], rows, n_candidate_evaluations=10**6) is None  # low dimension: direct is cheaper


def test_point_groups_are_exact_equality_classes():
    from dualmap.maps._scores import point_groups

    rng = np.random.default_rng(0)
    Z = rng.normal(size=(50, 6))
    Z[10] = Z[3]
    Z[20] = Z[3]
    Z[30] = -0.0 * Z[30]            # -0.0 rows equal the zero row
    Z[31] = 0.0 * Z[31]
    Z[40, :5] = Z[41, :5]            # differ in one coordinate only
    groups = point_groups(torch.from_numpy(Z)).numpy()
    same = groups[:, None] == groups[None, :]
    equal = np.all(Z[:, None, :] == Z[None, :, :], axis=-1)
    assert_array_equal(same, equal)
    # rows that differ but have the same random projection are still split
    direction = np.random.default_rng(0).standard_normal(3)     # the projection point_groups uses
    orthogonal = np.cross(direction, [1.0, 0.0, 0.0])
    W = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    W[2] = W[0] + orthogonal
    assert W[2] @ direction == pytest.approx(W[0] @ direction)
    groups = point_groups(torch.from_numpy(W)).numpy()
    assert groups[0] == groups[1] != groups[2]
