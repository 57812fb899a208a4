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


# ------------------------------------------------------------------------------ atoms and the rebuilt network
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("widths", [(24,), (20, 12), (16, 12, 8)])
@pytest.mark.parametrize("atoms", [1, 3])
def test_planted_networks_are_recovered_and_rebuilt_at_every_k(activation, widths, atoms, small_digits):
    X, X_test = small_digits.X_train, small_digits.X_test
    planted = dm.planted_network(X, widths, activation, seed=5, n_outputs=3)    # ReLU: rescaled and permuted
    pair_map = dm.to_pairs(planted.network, X, atoms=atoms, progress=False)
    assert planted_recovery(pair_map.pairs, planted.pairs, X) == [1.0] * len(widths)
    for layer, width in enumerate(widths):
        assert pair_map.atoms[layer].shape == (width, atoms, 2)
        assert pair_map.coefficients[layer].shape == (width, atoms + 1)
        assert_allclose(pair_map.scores[layer]["neuron_r2"], 1.0, atol=1e-9)
        # an exact neuron is its pair k times; its coefficients split the ReLU scale (1 for tanh) evenly
        assert_array_equal(pair_map.atoms[layer], np.repeat(pair_map.pairs[layer][:, None], atoms, axis=1))
        assert_allclose(pair_map.coefficients[layer][:, :-1].sum(axis=1), planted.scales[layer], rtol=1e-6)
        assert_allclose(pair_map.coefficients[layer][:, -1], 0.0, atol=1e-6)
    rebuilt = pair_map.to_mlp(X, readout="trained", network=planted.network)
    assert rebuilt.hidden_widths == tuple(w * atoms for w in widths)
    assert_allclose(rebuilt.predict(X_test), planted.network.predict(X_test), atol=1e-7)
    assert dm.metrics.r2_through(pair_map, planted.network, X, X_test) == pytest.approx(1.0, abs=1e-10)


def test_fold_coefficients_is_the_affine_combination():
    from dualmap.maps import fold_coefficients

    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(3, 4)), rng.normal(size=3)
    coefficients = rng.normal(size=(4, 3))                      # 4 neurons, k = 2 atoms + intercept
    phi = rng.normal(size=(6, 4, 2))                            # atom activations at 6 points
    neurons = (phi * coefficients[None, :, :2]).sum(-1) + coefficients[:, 2]
    folded_W, folded_b = fold_coefficients(W, b, coefficients)
    assert folded_W.shape == (3, 8)
    assert_allclose(phi.reshape(6, 8) @ folded_W.T + folded_b, neurons @ W.T + b, atol=1e-12)


def test_rebuilt_network_is_the_trained_readout_over_the_atoms(small_digits):
    """readout='trained' computes Σ_i W_i (Σ_m c_im φ_im + c_i0) + b, with φ the strict SWIM atoms — by hand."""
    X = small_digits.X_train
    run = dm.train([12], X, small_digits.y_train, epochs=5, seed=0, checkpoints=2, progress=False)
    pair_map = dm.to_pairs(run.model, X, atoms=2, progress=False)
    atoms, c = pair_map.atoms[0], pair_map.coefficients[0]
    W1, b1 = dm.swim_neurons(X[atoms[..., 0].reshape(-1)], X[atoms[..., 1].reshape(-1)], "relu")
    phi = np.maximum(X @ W1.T + b1, 0.0).reshape(len(X), 12, 2)
    neurons = (phi * c[None, :, :2]).sum(-1) + c[:, 2]
    expected = neurons @ run.model.weights[1].T.astype(np.float64) + run.model.biases[1]
    assert_allclose(pair_map.to_mlp(X, readout="trained").predict(X), expected, atol=1e-8)
    # the neuron R² reported is the one of this combination
    trained = run.model.hidden(X, 0).astype(np.float64)
    r2 = 1 - ((neurons - trained) ** 2).sum(0) / ((trained - trained.mean(0)) ** 2).sum(0)
    assert_allclose(pair_map.scores[0]["neuron_r2"], r2, atol=1e-8)


def test_the_map_beats_its_nulls_through_the_trained_readout(small_digits):
    X, X_test = small_digits.X_train, small_digits.X_test
    run = dm.train([32], X, small_digits.y_train, epochs=30, seed=0, checkpoints=2, progress=False)
    for atoms in (1, 2):
        pair_map = dm.to_pairs(run.model, X, atoms=atoms, progress=False)
        nulls = dm.metrics.through_nulls(run.model, X, atoms=atoms)
        mapped = dm.metrics.r2_through(pair_map, run.model, X, X_test)
        for null in nulls.values():
            assert null.atoms[0].shape == (32, atoms, 2)
            assert mapped > dm.metrics.r2_through(null, run.model, X, X_test) + 0.1


def test_the_map_does_not_depend_on_the_data_scaling(small_digits):
    """X' = a·X + c with the first layer compensated is the same network on other coordinates: same atoms."""
    X = small_digits.X_train
    run = dm.train([16], X, small_digits.y_train, epochs=5, seed=0, checkpoints=2, progress=False)
    a, c = 3.7, 0.25
    weights = [w.astype(np.float64) for w in run.model.weights]
    biases = [b.astype(np.float64) for b in run.model.biases]
    weights[0], biases[0] = weights[0] / a, biases[0] - weights[0] @ np.full(X.shape[1], c) / a
    original = dm.MLP([w.astype(np.float64) for w in run.model.weights],
                      [b.astype(np.float64) for b in run.model.biases], run.model.activations)
    moved = dm.MLP(weights, biases, run.model.activations)
    assert_allclose(moved.predict(a * X + c), original.predict(X), atol=1e-9)
    ours = dm.to_pairs(original, X, atoms=2, dtype="float64", progress=False)
    theirs = dm.to_pairs(moved, a * X + c, atoms=2, dtype="float64", progress=False)
    assert_array_equal(ours.atoms[0], theirs.atoms[0])
    assert_allclose(ours.coefficients[0], theirs.coefficients[0], rtol=1e-6, atol=1e-9)


def test_free_steepness_is_reported_and_rebuilt(small_digits):
    X = small_digits.X_train
    run = dm.train([10], X, small_digits.y_train, activation="tanh", epochs=20, seed=0, checkpoints=2,
                   progress=False)
    strict = dm.to_pairs(run.model, X, progress=False)
    relaxed = dm.to_pairs(run.model, X, steepness="free", progress=False)
    assert strict.steepness is None and relaxed.steepness[0].shape == (10, 1)
    weight = relaxed.to_mlp(X, readout="trained").weights[0]
    # each rebuilt neuron is γ × the SWIM neuron of its pair: the trained weight norm
    pairs = relaxed.pairs[0]
    W_swim, _ = dm.swim_neurons(X[pairs[:, 0]], X[pairs[:, 1]], "tanh")
    assert_allclose(np.linalg.norm(weight, axis=1), relaxed.steepness[0][:, 0] * np.linalg.norm(W_swim, axis=1))
    assert_allclose(np.linalg.norm(weight, axis=1), np.linalg.norm(run.model.weights[0], axis=1), rtol=1e-5)


def test_atoms_save_load_and_old_files(small_digits, tmp_path):
    X = small_digits.X_train
    run = dm.train([8, 6], X, small_digits.y_train, epochs=3, seed=0, checkpoints=2, progress=False)
    pair_map = dm.to_pairs(run.model, X, atoms=2, progress=False)
    back = dm.PairMap.load(pair_map.save(tmp_path / "map.npz"))
    for name in ("atoms", "coefficients", "pairs"):
        for a, b in zip(getattr(pair_map, name), getattr(back, name)):
            assert_array_equal(a, b)
    assert back.network_fingerprint == pair_map.network_fingerprint and back.n_atoms == 2
    assert_array_equal(back.to_mlp(X, readout="trained").predict(X), pair_map.to_mlp(X, readout="trained").predict(X))
    # a file written before atoms existed loads as one pair per neuron
    from dualmap._io import load_archive, save_archive
    meta, arrays = load_archive(tmp_path / "map.npz", "PairMap")
    old = {k: v for k, v in arrays.items() if not k.startswith(("atoms_", "coefficients_"))}
    meta.pop("network_fingerprint")
    save_archive(tmp_path / "old.npz", "PairMap", old, meta)
    legacy = dm.PairMap.load(tmp_path / "old.npz")
    assert legacy.n_atoms == 1
    assert_array_equal(legacy.atoms[0][:, 0], pair_map.pairs[0])


def test_atoms_and_readout_bad_input(small_digits):
    X = small_digits.X_train
    run = dm.train([6], X, small_digits.y_train, epochs=2, seed=0, checkpoints=2, progress=False)
    for bad in (0, -2):
        with pytest.raises(ValueError, match="atoms must be >= 1"):
            dm.to_pairs(run.model, X, atoms=bad)
    for bad in (2.0, "4", True):
        with pytest.raises(TypeError, match="atoms must be an int"):
            dm.to_pairs(run.model, X, atoms=bad)
    with pytest.raises(ValueError, match="needs method='downstream'"):
        dm.to_pairs(run.model, X, atoms=2, method="function")
    with pytest.raises(ValueError, match="steepness must be one of"):
        dm.to_pairs(run.model, X, steepness="steep")
    pair_map = dm.to_pairs(run.model, X, atoms=2, progress=False)
    other = dm.train([6], X, small_digits.y_train, epochs=2, seed=1, checkpoints=2, progress=False).model
    with pytest.raises(ValueError, match="not the network this PairMap was computed for"):
        pair_map.to_mlp(X, readout="trained", network=other)
    with pytest.raises(ValueError, match="not the network this PairMap"):
        dm.metrics.r2_through(pair_map, other, X, small_digits.X_test)
    with pytest.raises(ValueError, match="fingerprint"):
        pair_map.to_mlp(X[::-1], readout="trained")
    with pytest.raises(ValueError, match="readout must be one of"):
        pair_map.to_mlp(X, readout="mine")
    with pytest.raises(ValueError, match="use readout='trained'"):
        pair_map.to_mlp(X, readout="keep")
    with pytest.raises(ValueError, match="sampler must be one of"):
        dm.maps.forward.null_map(run.model, X, sampler="gauss")


def test_planted_recovery_rejects_mismatched_input(small_digits):
    X = small_digits.X_train
    pairs = [np.array([[0, 1], [2, 3]])]
    assert planted_recovery(pairs, [np.array([[0, 1], [3, 2]])], X) == [0.5]
    with pytest.raises(ValueError, match="shape"):
        planted_recovery(pairs, [np.array([[0, 1], [2, 3], [4, 5]])], X)
    with pytest.raises(ValueError, match="layers"):
        planted_recovery(pairs, pairs * 2, X)
    with pytest.raises(ValueError, match="rows of X"):
        planted_recovery([np.array([[0, len(X)], [2, 3]])], pairs, X)
