"""Tracking forward maps over checkpoints: exact switch rates and importance on planted trajectories."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

import dualmap as dm
from dualmap.dynamics import (
    effective_number,
    neuron_contributions,
    neuron_drift,
    point_importance,
    rank_correlation,
    swim_point_density,
)
from dualmap.network import activation_function


def network_from_pairs(X, pairs, activation, scales, readout):
    """A sampled network with known pairs: neuron k of layer l = scales[l][k] × SWIM neuron of its pair."""
    Z = torch.from_numpy(np.asarray(X, dtype=np.float64))
    weights, biases = [], []
    for layer_pairs in pairs:             # SWIM layers on the (unscaled) images of the points
        weight, bias = dm.swim_neurons(Z[layer_pairs[:, 0]], Z[layer_pairs[:, 1]], activation)
        Z = activation_function(activation)(torch.addmm(bias, Z, weight.T))
        weights.append(weight.numpy())
        biases.append(bias.numpy())
    weights.append(readout[0])
    for layer, scale in enumerate(scales):   # ReLU: (w, b, next columns) → (c w, c b, next columns / c)
        weights[layer], biases[layer] = weights[layer] * scale[:, None], biases[layer] * scale
        weights[layer + 1] = weights[layer + 1] / scale[None, :]
    return dm.MLP(weights, biases + [readout[1]], [activation] * len(pairs) + ["identity"])


@pytest.fixture(scope="module")
def points():
    return dm.load_dataset("log2d", n_samples=300).X_train          # distinct continuous points


def planted_trajectory(X, widths, activation, changes, seed=0):
    """Checkpoints at steps 0, 10, 20, …: ``changes[t]`` maps layer → neurons that get a new pair at checkpoint t."""
    rng = np.random.default_rng(seed)
    n = len(X)
    pairs = [np.stack([rng.choice(n, size=2, replace=False) for _ in range(w)]) for w in widths]
    scales = [np.exp(rng.uniform(-1, 1, size=w)) if activation == "relu" else np.ones(w) for w in widths]
    readout = (rng.normal(size=(3, widths[-1])), rng.normal(size=3))
    checkpoints, truth = [], []
    for t, change in enumerate(changes):
        pairs = [p.copy() for p in pairs]
        for layer, neurons in change.items():
            for k in neurons:
                pairs[layer][k] = rng.choice(n, size=2, replace=False)
        checkpoints.append((10 * t, network_from_pairs(X, pairs, activation, scales, readout)))
        truth.append(pairs)
    return checkpoints, truth


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("warm_start", [True, False])
def test_planted_trajectory_gives_exact_switch_rates_and_importance(points, activation, warm_start):
    widths = (20, 10)
    changes = [{}, {0: [0, 1, 2, 3]}, {}, {0: [5], 1: [0, 1, 2, 3, 4]}]
    checkpoints, truth = planted_trajectory(points, widths, activation, changes)
    # the defaults (hysteresis, settling): one changed neuron gets a new pair whose neuron has cosine 0.9996
    # with its old one, and in 2-D a neighbouring pair often reproduces a neuron to 0.98 — a warm map must
    # still find the exact pair, as a cold one does
    trajectory = dm.track(checkpoints, points, warm_start=warm_start, progress=False)
    for found, true in zip(trajectory.pairs, truth):
        for layer in range(2):
            assert_array_equal(found[layer], true[layer])
    assert_allclose(trajectory.r2_through, 1.0, atol=1e-9)
    assert_allclose(trajectory.switch_rate, [[4 / 20, 0.0], [0.0, 0.0], [1 / 20, 5 / 10]], atol=0)
    assert_allclose(trajectory.quality, 1.0, atol=1e-9)
    # the importance formula, evaluated by hand from the known pairs
    for t, (step, network) in enumerate(checkpoints):
        expected = np.zeros(len(points))
        for layer, u in enumerate(neuron_contributions(network, points)):
            for k, (p, q) in enumerate(truth[t][layer]):
                expected[p] += u[k] / u.sum() / 2 / len(widths)
                expected[q] += u[k] / u.sum() / 2 / len(widths)
        assert_allclose(trajectory.importance[t], expected, atol=1e-9)
        assert trajectory.importance[t].sum() == pytest.approx(1.0, abs=1e-9)
    assert_array_equal(trajectory.steps, [0, 10, 20, 30])
    assert_allclose(trajectory.drift[1], 0.0, atol=1e-7)        # nothing changed between steps 10 and 20
    assert np.all(trajectory.drift[[0, 2]].max(axis=1) > 0)


def test_point_importance_by_hand():
    pairs = [np.array([[0, 1], [1, 2]])]
    importance = point_importance(pairs, [np.array([3.0, 1.0])], [np.array([1.0, 0.5])], n_points=4)
    # neuron 0: weight 3/4·1 → ½ each to points 0, 1; neuron 1: 1/4·0.5 → ½ each to points 1, 2
    assert_allclose(importance, [0.375, 0.375 + 0.0625, 0.0625, 0.0])
    negative = point_importance(pairs, [np.array([1.0, 1.0])], [np.array([-0.3, 1.0])], n_points=4)
    assert_allclose(negative, [0.0, 0.25, 0.25, 0.0])          # a negative correlation gives no importance


def test_effective_number_and_rank_correlation():
    assert effective_number(np.ones(7)) == pytest.approx(7.0)
    assert effective_number(np.array([0.0, 5.0, 0.0])) == pytest.approx(1.0)
    assert effective_number(np.zeros(3)) == 0.0
    assert rank_correlation([1, 2, 3], [10, 20, 40]) == pytest.approx(1.0)
    assert np.isnan(rank_correlation([1, 1, 1], [1, 2, 3]))


def test_drift_ignores_permutation_and_relu_rescaling(points):
    planted = dm.planted_network(points, (16,), "relu", seed=0)
    network = planted.network
    order = np.random.default_rng(1).permutation(16)
    scale = np.exp(np.random.default_rng(2).uniform(-2, 2, size=16))
    moved = dm.MLP([network.weights[0][order] * scale[order, None], network.weights[1][:, order] / scale[order]],
                   [network.biases[0][order] * scale[order], network.biases[1]], network.activations)
    assert_allclose(moved.predict(points), network.predict(points), atol=1e-9)
    assert neuron_drift(network, moved)[0] == pytest.approx(0.0, abs=1e-7)
    assert_allclose(neuron_contributions(moved, points)[0], neuron_contributions(network, points)[0][order], rtol=1e-9)


def test_swim_point_density_follows_the_label_boundary():
    X = np.linspace(0, 1, 40)[:, None]
    y = (X[:, 0] > 0.5).astype(int)
    targets = np.eye(2)[y]
    density = swim_point_density(X, targets, n_partners=39, seed=0)
    assert density.sum() == pytest.approx(1.0)
    # points next to the class boundary pair with close points of the other class: the largest SWIM weight
    assert set(np.argsort(-density)[:2]) == {19, 20}
    assert_allclose(swim_point_density(X, np.ones((40, 1))), 1 / 40)   # no label change: uniform


def test_trajectory_saves_loads_and_resumes(points, tmp_path, monkeypatch):
    changes = [{}, {0: [0, 1]}, {0: [2]}, {}, {0: [3]}]
    checkpoints, _ = planted_trajectory(points, (12,), "relu", changes, seed=4)
    reference = dm.track(checkpoints, points, progress=False)
    path = tmp_path / "trajectory.npz"

    import dualmap.dynamics.trajectory as module
    calls, crash_at = [], [3]
    real_map = module.map_network

    def failing_map(*args, **kwargs):
        calls.append(1)
        if len(calls) == crash_at[0]:
            raise RuntimeError("simulated crash")
        return real_map(*args, **kwargs)

    monkeypatch.setattr(module, "map_network", failing_map)
    with pytest.raises(RuntimeError, match="simulated crash"):
        dm.track(checkpoints, points, path=path, progress=False)
    assert dm.Trajectory.load(path).n_checkpoints == 2                 # what was mapped is kept
    calls.clear()
    crash_at[0] = None
    resumed = dm.track(checkpoints, points, path=path, progress=False)
    assert len(calls) == 3                                              # only the 3 missing checkpoints
    loaded = dm.Trajectory.load(path)
    for result in (resumed, loaded):
        assert_array_equal(result.steps, reference.steps)
        for a, b in zip(result.pairs, reference.pairs):
            assert_array_equal(a[0], b[0])
        assert_allclose(result.importance, reference.importance)
        assert_allclose(result.switch_rate, reference.switch_rate)
        assert_allclose(result.drift, reference.drift)
        assert_allclose(result.swim_alignment, reference.swim_alignment, equal_nan=True)
    with pytest.raises(ValueError, match="another trajectory"):
        dm.track(checkpoints, points + 1.0, path=path, progress=False)
    # same widths, same steps, other weights: another run's file is refused, not returned
    other, _ = planted_trajectory(points, (12,), "relu", changes, seed=5)
    with pytest.raises(ValueError, match="checkpoint networks"):
        dm.track(other, points, path=path, progress=False)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_planted_trajectory_with_atoms_is_recovered_and_rebuilt_exactly(points, activation):
    """k = 2 atoms per neuron: every neuron exact, its pair twice."""
    changes = [{}, {0: [0, 1, 2]}, {1: [3]}]
    checkpoints, truth = planted_trajectory(points, (12, 6), activation, changes, seed=2)
    trajectory = dm.track(checkpoints, points, atoms=2, progress=False)
    for found, true, atoms in zip(trajectory.pairs, truth, trajectory.atoms):
        for layer in range(2):
            assert_array_equal(found[layer], true[layer])
            assert atoms[layer].shape == (len(true[layer]), 2, 2)
            assert_array_equal(atoms[layer][:, 1], true[layer])      # an exact neuron is its pair, twice
    assert_allclose(trajectory.r2_through, 1.0, atol=1e-9)


def test_one_pair_methods_track_planted_trajectories_exactly(points):
    changes = [{}, {0: [0, 1, 2]}, {0: [4], 1: [1, 2]}]
    checkpoints, truth = planted_trajectory(points, (12, 6), "relu", changes, seed=3)
    trajectory = dm.track(checkpoints, points, method="function", progress=False)
    for found, true in zip(trajectory.pairs, truth):
        for layer in range(2):
            assert_array_equal(found[layer], true[layer])


def test_warm_map_of_a_trained_run_is_no_worse_than_a_cold_one():
    ds = dm.load_dataset("digits", n_train=400)
    run = dm.train([24], ds.X_train, ds.y_train, epochs=6, checkpoints=4, seed=1, progress=False)
    warm = dm.track(run, ds.X_train, progress=False)
    cold = dm.to_pairs(run.model, ds.X_train, progress=False)
    cold_r2 = dm.metrics.output_r2(cold.to_mlp(ds.X_train, readout="trained").predict(ds.X_train),
                                   run.model.predict(ds.X_train))
    assert warm.r2_through[-1] >= cold_r2 - 0.01

def test_track_accepts_a_train_run_and_is_deterministic():
    ds = dm.load_dataset("digits", n_train=300)
    run = dm.train([16], ds.X_train, ds.y_train, epochs=3, checkpoints=4, seed=0, progress=False)
    a = dm.track(run, ds.X_train, y=ds.y_train, progress=False)
    b = dm.track(run, ds.X_train, y=ds.y_train, progress=False)
    assert a.n_checkpoints == 4 and a.importance.shape == (4, 300) and a.switch_rate.shape == (3, 1)
    assert_allclose(a.importance, b.importance)
    assert a.task == "classification" and np.isfinite(a.swim_alignment).all()
    assert 1.0 <= a.concentration.min() and a.concentration.max() <= 300


def test_track_rejects_bad_input(points, tmp_path):
    checkpoints, _ = planted_trajectory(points, (8,), "relu", [{}, {}])
    with pytest.raises(ValueError, match="increase strictly"):
        dm.track(list(reversed(checkpoints)), points, progress=False)
    with pytest.raises(ValueError, match="features"):
        dm.track(checkpoints, points[:, :1], progress=False)
    other, _ = planted_trajectory(points, (9,), "relu", [{}])
    with pytest.raises(ValueError, match="architecture"):
        dm.track([checkpoints[0], (50, other[0][1])], points, progress=False)
    with pytest.raises(TypeError, match="TrainRun or a sequence"):
        dm.track(42, points, progress=False)
    with pytest.raises(ValueError, match="no checkpoints"):
        dm.track([], points, progress=False)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(dm.CorruptFileError):
        dm.Trajectory.load(bad)


@pytest.mark.slow
def test_saved_trajectory_renders_every_figure_without_mapping(points, tmp_path, monkeypatch):
    from PIL import Image

    import dualmap.dynamics.trajectory as module
    from dualmap.report import trajectory_figures

    checkpoints, _ = planted_trajectory(points, (12,), "relu", [{}, {0: [0]}, {0: [1, 2]}])
    dm.track(checkpoints, points, y=(points[:, 0] > 0).astype(int), path=tmp_path / "t.npz", progress=False)

    def no_maps(*args, **kwargs):
        raise AssertionError("a figure must not recompute a map")

    monkeypatch.setattr(module, "map_network", no_maps)
    paths = trajectory_figures(dm.Trajectory.load(tmp_path / "t.npz"), tmp_path / "figures")
    names = sorted(p.name for p in paths)
    assert names == ["importance_heatmap.png", "pairs_2d.gif", "pairs_2d.png", "trajectory_curves.png"]
    for path in paths:
        with Image.open(path) as image:
            assert image.size[0] > 100 and image.size[1] > 100
    with Image.open(tmp_path / "figures" / "pairs_2d.gif") as gif:
        assert gif.n_frames == 3


@pytest.mark.slow
def test_image_data_gets_a_grid_of_top_images(tmp_path):
    from dualmap.report import trajectory_figures

    ds = dm.load_dataset("digits", n_train=200)
    run = dm.train([8], ds.X_train, ds.y_train, epochs=1, checkpoints=3, seed=0, progress=False)
    trajectory = dm.track(run, ds.X_train, y=ds.y_train, progress=False)
    paths = trajectory_figures(trajectory, tmp_path)
    assert sorted(p.name for p in paths) == ["importance_heatmap.png", "top_images.png", "trajectory_curves.png"]


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_warm_map_follows_a_neighbouring_pair_locally_and_relocates_a_jump(points, activation):
    """Local-first warm maps (opt-in ``relocate``): a pair whose first point moves to one of its nearest
    neighbours is found by the local search alone; a pair that jumps across the data needs (and gets) the full
    search; both are recovered exactly."""
    from dualmap.maps import DataContext, SearchOptions, WarmStart, map_network

    rng = np.random.default_rng(4)
    n, width = len(points), 10
    before = np.stack([rng.choice(n, size=2, replace=False) for _ in range(width)])
    scales = [np.exp(rng.uniform(-1, 1, size=width)) if activation == "relu" else np.ones(width)]
    readout = (rng.normal(size=(3, width)), rng.normal(size=3))
    options = SearchOptions(method="downstream", atoms=1, seed=0)
    context = DataContext.build(points, n_features=2, n_eval=options.n_eval, seed=0, device="cpu",
                                dtype=options.dtype, n_neighbors=options.n_neighbors)
    first = network_from_pairs(points, [before], activation, scales, readout)
    first_map = map_network(first, context, options)
    assert_array_equal(first_map.pairs[0], before)

    neighbours = context.representation(None).neighbors                  # filled for the points already used
    after = before.copy()
    after[0, 0] = int(neighbours[before[0, 0], 0])                       # a step to the nearest neighbour
    assert after[0, 0] >= 0 and after[0, 0] != after[0, 1]
    local_net = network_from_pairs(points, [after], activation, scales, readout)
    local_map = map_network(local_net, context, options, warm=WarmStart(first_map, first, relocate=0.02))
    assert_array_equal(local_map.pairs[0], after)
    assert local_map.params["relocated"] == [0]                         # the neighbourhood held it

    jumped = after.copy()
    far = np.argsort(np.linalg.norm(points - points[after[3, 0]], axis=1))[-1]
    jumped[3] = [far, after[3, 1] if far != after[3, 1] else after[3, 0]]
    jump_net = network_from_pairs(points, [jumped], activation, scales, readout)
    jump_map = map_network(jump_net, context, options, warm=WarmStart(local_map, local_net, relocate=0.02))
    assert_array_equal(jump_map.pairs[0], jumped)
    assert jump_map.params["relocated"][0] >= 1                         # found by the full search


def test_swim_density_reads_integer_labels_as_classes_without_a_train_run():
    """Checkpoints given as a list (no task known): integer labels are classes (one-hot), as with a TrainRun —
    not real targets whose differences 1 vs 9 would outweigh 1 vs 2."""
    ds = dm.load_dataset("digits", n_train=200)
    run = dm.train([8], ds.X_train, ds.y_train, epochs=2, checkpoints=2, seed=0, progress=False)
    from_run = dm.track(run, ds.X_train, y=ds.y_train, method="function", progress=False)
    from_list = dm.track(run.checkpoints, ds.X_train, y=ds.y_train.astype(np.int64), method="function",
                         progress=False)
    assert_allclose(from_list.swim_density, from_run.swim_density)
    as_reals = dm.track(run.checkpoints, ds.X_train, y=ds.y_train.astype(np.float64), method="function",
                        progress=False)
    assert not np.allclose(as_reals.swim_density, from_run.swim_density)   # real targets are read as such
