"""The inverse map: sampled initialisation and pair-space networks."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

import dualmap as dm
from dualmap.inverse import PairNetwork
from dualmap.network import activation_function


@pytest.fixture(scope="module")
def digits():
    return dm.load_dataset("digits", n_train=300)


def _sampled(ds, widths, activation, seed=0):
    one_hot = np.eye(10)[ds.y_train]
    return dm.sample_network(ds.X_train, one_hot, widths, activation, random_state=seed, dtype="float64")


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("widths", [(20,), (16, 12)])
def test_pair_network_from_a_sampled_network_computes_it(digits, activation, widths):
    sampled = _sampled(digits, widths, activation)
    pair_network = PairNetwork.from_pairs(sampled.network, sampled.pairs, digits.X_train)
    X = torch.from_numpy(digits.X_test)
    with torch.no_grad():
        assert_allclose(pair_network(X).numpy(), sampled.network.predict(digits.X_test), rtol=1e-10, atol=1e-10)
    for a, b in zip(pair_network.to_mlp().weights, sampled.network.weights):
        assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_gradients_reach_the_points_of_every_layer(digits, activation):
    sampled = _sampled(digits, (10, 8), activation)
    pair_network = PairNetwork.from_pairs(sampled.network, sampled.pairs, digits.X_train)
    loss = pair_network(torch.from_numpy(digits.X_train)).square().mean()
    loss.backward()
    for parameter in [*pair_network.first, *pair_network.second]:
        assert parameter.grad is not None and float(parameter.grad.abs().sum()) > 0


def test_snap_gives_the_exact_sampled_network_of_data_points(digits):
    X = digits.X_train
    sampled = _sampled(digits, (12, 10), "relu")
    pair_network = PairNetwork.from_pairs(sampled.network, sampled.pairs, X)
    with torch.no_grad():                                  # move the points off the data
        for p in [*pair_network.first, *pair_network.second]:
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(0), dtype=p.dtype))
    network, pairs = pair_network.snap(X)
    # every neuron is the SWIM construction of its two data points, pushed through the snapped layers
    Z = torch.from_numpy(X)
    for layer, layer_pairs in enumerate(pairs):
        assert np.all(np.any(X[layer_pairs[:, 0]] != X[layer_pairs[:, 1]], axis=1))
        weight, bias = dm.swim_neurons(Z[layer_pairs[:, 0]], Z[layer_pairs[:, 1]], "relu")
        assert_allclose(network.weights[layer], weight.numpy(), rtol=1e-10, atol=1e-12)
        assert_allclose(network.biases[layer], bias.numpy(), rtol=1e-10, atol=1e-12)
        Z = activation_function("relu")(torch.addmm(bias, Z, weight.T))
    # small moves snap back onto the original data points
    for found, true in zip(pairs, sampled.pairs):
        assert_array_equal(X[found], X[true])
    assert_allclose(network.weights[-1], sampled.network.weights[-1])


def test_train_from_a_swim_init_starts_from_the_sampled_network(digits):
    run = dm.train([32], digits.X_train, digits.y_train, init="swim", epochs=2, seed=3, checkpoints=2,
                   X_val=digits.X_test, y_val=digits.y_test, progress=False)
    start = run.checkpoints[0][1]
    sampled = _sampled(digits, (32,), "relu", seed=3)
    # the default rebalances the ReLU rows (same neurons up to a positive scale per row) ...
    rows, sampled_rows = start.weights[0], sampled.network.weights[0]
    assert_allclose(rows / np.linalg.norm(rows, axis=1, keepdims=True),
                    sampled_rows / np.linalg.norm(sampled_rows, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
    # ... and 'plain' keeps the sampled weights as they are
    plain = dm.train([32], digits.X_train, digits.y_train, init="swim", finetune="plain", epochs=1, seed=3,
                     checkpoints=2, progress=False)
    assert_allclose(plain.checkpoints[0][1].weights[0], sampled_rows, rtol=1e-6, atol=1e-6)   # float32 copy
    # the readout is solved (scaled to calibrated logits): the start already classifies
    accuracy = float(np.mean(start.predict(digits.X_test).argmax(axis=1) == digits.y_test))
    assert accuracy > 0.8
    for init in ("uniform", "random"):
        other = dm.train([32], digits.X_train, digits.y_train, init=init, epochs=1, seed=3, checkpoints=2,
                         progress=False)
        assert not np.allclose(other.checkpoints[0][1].weights[0], start.weights[0])


def test_training_in_pair_space_moves_the_points_and_stays_sampled(digits, tmp_path):
    sampled = _sampled(digits, (16,), "relu")
    pair_network = PairNetwork.from_pairs(sampled.network, sampled.pairs, digits.X_train, dtype=torch.float32)
    before = pair_network.first[0].detach().clone()
    run = dm.train(pair_network, digits.X_train, digits.y_train, epochs=3, seed=0, checkpoints=3, progress=False)
    assert float((pair_network.first[0].detach() - before).abs().max()) > 0
    # every checkpoint is the network of the virtual points at that step: rebuilt from the saved points and the
    # checkpoint's readout, the hidden layer is the checkpoint's (and the points did move between checkpoints)
    assert len(run.points) == len(run.checkpoints) == 3
    for (_, checkpoint), (first, second) in zip(run.checkpoints, run.points):
        rebuilt = PairNetwork(first, second, checkpoint.weights[-1], checkpoint.biases[-1], "relu").to_mlp()
        assert_allclose(rebuilt.weights[0], checkpoint.weights[0], rtol=1e-4, atol=1e-6)
        assert_allclose(rebuilt.biases[0], checkpoint.biases[0], rtol=1e-4, atol=1e-6)
    assert not np.allclose(run.checkpoints[0][1].weights[0], run.checkpoints[-1][1].weights[0])
    assert_allclose(run.model.weights[0], run.checkpoints[-1][1].weights[0])
    # snapping: each first point moves onto its nearest data row, the second onto another row, and the hidden
    # layer is the SWIM construction of those rows; the readout is kept
    network, pairs = pair_network.snap(digits.X_train)
    p = pair_network.first[0].detach().double().numpy()
    distances = ((p[:, None, :] - digits.X_train[None, :, :]) ** 2).sum(axis=-1)
    assert_allclose(distances[np.arange(16), pairs[0][:, 0]], distances.min(axis=1))
    assert np.all(pairs[0][:, 0] != pairs[0][:, 1])
    W, b = dm.swim_neurons(digits.X_train[pairs[0][:, 0]].astype(float), digits.X_train[pairs[0][:, 1]].astype(float),
                           "relu")
    assert_allclose(network.weights[0], W, rtol=1e-6, atol=1e-9)
    assert_allclose(network.biases[0], b, rtol=1e-6, atol=1e-9)
    assert_allclose(network.weights[-1], pair_network.readout.weight.detach().numpy(), rtol=1e-6)
    # the virtual points are kept at every checkpoint, and saved with the run
    assert_allclose(run.points[0][0][0], before.numpy())
    assert_allclose(run.points[-1][1][0], pair_network.second[0].detach().numpy())
    loaded = dm.TrainRun.load(run.save(tmp_path / "run.npz"))
    assert_allclose(loaded.points[-1][0][0], run.points[-1][0][0])


def test_pair_network_rejects_bad_input(digits):
    with pytest.raises(ValueError, match="shape"):
        PairNetwork([np.zeros((3, 4))], [np.zeros((3, 5))], np.zeros((2, 3)), np.zeros(2), "relu")
    with pytest.raises(ValueError, match="activation"):
        PairNetwork([np.zeros((3, 4))], [np.ones((3, 4))], np.zeros((2, 3)), np.zeros(2), "sigmoid")
    sampled = _sampled(digits, (8,), "relu")
    pair_network = PairNetwork.from_pairs(sampled.network, sampled.pairs, digits.X_train)
    with pytest.raises(ValueError, match="features"):
        dm.train(pair_network, digits.X_train[:, :10], digits.y_train, epochs=1, progress=False)
    with pytest.raises(ValueError, match="features"):
        pair_network.snap(digits.X_train[:, :10])


def test_compare_inits_records_curves_displacement_and_persistence(digits, tmp_path):
    from dualmap.inverse import InitComparison, compare_inits
    from dualmap.inverse.compare import _steps_to

    result = compare_inits(digits, [16], "relu", inits=("he", "swim"), seeds=(0,), epochs=2,
                           persistence_checkpoints=3, progress=False)
    rows = {row["init"]: row for row in result.rows}
    he, swim = rows["he"], rows["swim"]
    assert he["steps_to_he"] is not None and he["steps_to_he"] <= result.curves["he"]["0"]["step"][-1]
    # the sampled start is mapped back onto its own pairs: persistence 1 at step 0
    assert swim["persistence"][0] == [1.0]
    assert swim["start_test_metric"] > 0.8 > he["start_test_metric"]
    assert len(swim["displacement"]) == 2 and all(d > 0 for d in swim["displacement"])
    curve = result.curves["swim"]["0"]
    assert curve["step"][0] == 0 and len(curve["val_loss"]) == 3                   # start + 2 epochs
    assert [t["init"] for t in result.table()] == ["he", "swim"]
    loaded = InitComparison.load(result.save(tmp_path / "comparison.json"))
    assert loaded.rows == result.rows
    assert _steps_to({"step": [0, 5, 9], "val_loss": [3.0, 1.0, 0.5]}, 1.0) == 5
    assert _steps_to({"step": [0, 5], "val_loss": [3.0, 2.0]}, 1.0) is None
    with pytest.raises(ValueError, match="unknown init"):
        compare_inits(digits, [4], inits=("he", "orthogonal"), progress=False)


def test_inverse_figures_render_from_a_saved_comparison(digits, tmp_path):
    import matplotlib.pyplot as plt
    from PIL import Image

    from dualmap.inverse import InitComparison, compare_inits
    from dualmap.report import inverse_figures, plot_learning_curves, plot_virtual_points_2d

    result = compare_inits(digits, [8], "relu", inits=("he", "swim"), seeds=(0, 1), epochs=1,
                           persistence_checkpoints=2, progress=False)
    paths = inverse_figures(InitComparison.load(result.save(tmp_path / "c.json")), tmp_path / "figures")
    assert sorted(p.name for p in paths) == ["displacement.png", "learning_curves.png", "persistence.png"]
    for path in paths:
        with Image.open(path) as image:
            assert np.asarray(image.convert("L")).std() > 5          # something is drawn, not a blank canvas
    # the learning curves are the medians over seeds of each init's saved curves, one line per init and panel
    loaded = InitComparison.load(tmp_path / "c.json")
    figure = plot_learning_curves(loaded)
    for ax, key in zip(figure.axes, ("train_loss", "val_loss", "val_metric")):
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert sorted(lines) == ["he", "swim"]
        for init, line in lines.items():
            runs = list(loaded.curves[init].values())
            assert_allclose(line.get_xdata(), runs[0]["step"])
            assert_allclose(line.get_ydata(), np.median([run[key] for run in runs], axis=0))
    plt.close(figure)
    ds = dm.load_dataset("log2d", n_samples=200)
    sampled = dm.sample_network(ds.X_train, ds.y_train, (6,), "relu", random_state=0, dtype="float64")
    pair_network = PairNetwork.from_pairs(sampled.network, sampled.pairs, ds.X_train, dtype=torch.float32)
    run = dm.train(pair_network, ds.X_train, ds.y_train, epochs=2, checkpoints=3, progress=False)
    assert len(plot_virtual_points_2d(run, ds.X_train, ds.y_train).axes) == 3
    with pytest.raises(ValueError, match="pair space"):
        plot_virtual_points_2d(dm.train([4], ds.X_train, ds.y_train, epochs=1, progress=False), ds.X_train)


def test_train_continues_from_a_fitted_estimators_network(digits):
    clf = dm.SWIMClassifier(layer_widths=(24,), activation="relu", random_state=0).fit(digits.X_train, digits.y_train)
    run = dm.train(clf.network_, digits.X_train, digits.y_train, epochs=1, checkpoints=2, progress=False)
    assert_allclose(run.checkpoints[0][1].weights[0], clf.network_.weights[0], rtol=1e-6, atol=1e-6)
    assert run.model.hidden_widths == (24,)


# ---------------------------------------------------------------- fine-tuning a sampled start (issue 13)

@pytest.mark.parametrize("widths", [(20,), (16, 12)])
def test_rebalancing_keeps_the_function_and_gives_he_row_norms(digits, widths):
    from dualmap.inverse.finetune import rebalance_relu

    network = _sampled(digits, widths, "relu").network
    balanced = rebalance_relu(network)
    assert_allclose(balanced.predict(digits.X_test), network.predict(digits.X_test), rtol=1e-9, atol=1e-9)
    for weight in balanced.weights[:-1]:
        assert_allclose(np.linalg.norm(weight, axis=1), np.sqrt(2.0), rtol=1e-12)
    with pytest.raises(ValueError, match="ReLU"):
        rebalance_relu(_sampled(digits, widths, "tanh").network)
    # to He's activation scale: the same function, every pre-activation with RMS √2 on the data
    by_data = rebalance_relu(network, digits.X_train)
    assert_allclose(by_data.predict(digits.X_test), network.predict(digits.X_test), rtol=1e-9, atol=1e-9)
    Z = digits.X_train
    for weight, bias in zip(by_data.weights[:-1], by_data.biases[:-1]):
        pre = Z @ weight.T + bias
        assert_allclose(np.sqrt(np.mean(pre**2, axis=0)), np.sqrt(2.0), rtol=1e-10)
        Z = np.maximum(pre, 0.0)


def test_default_swim_start_survives_its_first_adam_step(digits):
    """The old start ('plain') loses its lead in one Adam step; the default keeps the test loss near the start."""
    def loss_after(finetune, steps):
        run = dm.train([64], digits.X_train, digits.y_train, init="swim", finetune=finetune, epochs=1, seed=0,
                       checkpoints=[0, steps], progress=False)
        logits = [torch.from_numpy(net.predict(digits.X_test)) for _, net in run.checkpoints]
        target = torch.from_numpy(digits.y_test)
        return [float(torch.nn.functional.cross_entropy(z, target)) for z in logits]

    start, after = loss_after("auto", 1)
    plain_start, plain_after = loss_after("plain", 1)
    assert after < 1.1 * start                          # 0.317 → 0.330
    assert plain_after > 2 * plain_start                # 0.317 → 0.688: the failure the default fixes, measured


def test_calibrated_start_trains_where_the_training_scores_saturate():
    """Issue 14 item 8: wine, 2×64 random features — the train-calibrated start has exactly zero gradient."""
    ds = dm.load_dataset("wine")
    kwargs = dict(init="random", epochs=3, seed=0, progress=False)
    plain = dm.train([64, 64], ds.X_train, ds.y_train, finetune="plain", **kwargs)
    assert plain.history["train_loss"][0] == 0.0
    assert all(np.array_equal(a, b) for a, b in zip(plain.checkpoints[0][1].weights, plain.model.weights))
    fixed = dm.train([64, 64], ds.X_train, ds.y_train, finetune="calibrate", **kwargs)
    assert fixed.history["train_loss"][0] > 0
    assert all(not np.array_equal(a, b) for a, b in zip(fixed.checkpoints[0][1].weights, fixed.model.weights))


def test_layer_lr_and_warmup(digits):
    from dualmap.inverse.finetune import layer_lr_factors

    network = _sampled(digits, (32,), "tanh").network
    adam, sgd = layer_lr_factors(network.weights, "adam"), layer_lr_factors(network.weights, "sgd")
    rho = np.sqrt(np.mean(network.weights[0] ** 2)) / np.sqrt(2.0 / network.weights[0].shape[1])
    assert_allclose(adam[0], rho) and rho < 1
    assert_allclose(sgd[0], rho**2)
    assert adam[1] == 1.0                               # a readout larger than He's keeps the base rate
    run = dm.train([32], digits.X_train, digits.y_train, activation="tanh", init="swim", finetune="warmup",
                   epochs=10, seed=0, checkpoints=[0, 2, 30], progress=False)
    (_, start), (_, early), (_, end) = run.checkpoints
    assert_array_equal(early.weights[0], start.weights[0])          # warm-up: readout only
    assert not np.array_equal(early.weights[1], start.weights[1])
    assert not np.array_equal(end.weights[0], start.weights[0])


@pytest.mark.parametrize("finetune, error, message", [
    ("fancy", ValueError, "unknown finetune"),
    ("plain+rebalance", ValueError, "cannot be combined"),
    ("rebalance+rebalance_act", ValueError, "pick one"),
    ("calibrate+fresh_readout", ValueError, "replaces the sampled readout"),
    (3, TypeError, "finetune must be"),
])
def test_bad_finetune_is_an_error(digits, finetune, error, message):
    with pytest.raises(error, match=message):
        dm.train([8], digits.X_train, digits.y_train, init="swim", finetune=finetune, progress=False)


def test_fresh_readout_keeps_the_sampled_features_under_hes_initial_readout(digits):
    def start(finetune):
        return dm.train([24], digits.X_train, digits.y_train, epochs=1, init="swim", finetune=finetune, seed=3,
                        checkpoints=[0, 1], progress=False).checkpoints[0][1]

    fresh, solved = start("rebalance_act+fresh_readout"), start("rebalance_act")
    assert_array_equal(fresh.weights[0], solved.weights[0])             # the same (rebalanced) SWIM features
    assert_array_equal(fresh.biases[0], solved.biases[0])
    assert np.all(fresh.biases[1] == 0)                                  # He: zero bias, N(0, 2/fan_in) weights
    assert fresh.weights[1].std() == pytest.approx(np.sqrt(2 / 24), rel=0.15)
    assert not np.allclose(fresh.weights[1], solved.weights[1])
    assert_array_equal(start("rebalance_act+fresh_readout").weights[1], fresh.weights[1])     # seeded
    with pytest.raises(ValueError, match="sampled"):
        dm.train([8], digits.X_train, digits.y_train, init="he", finetune="fresh_readout", progress=False)


def test_moved_kinks_keep_the_directions_and_make_every_relu_neuron_active_on_half_the_points(digits, rng):
    from dualmap.swim.finetune import move_kinks

    sampled = _sampled(digits, (16, 12), "relu")
    X = digits.X_train[:301]                                             # odd: the median is a row's own value
    moved = move_kinks(sampled.network, X)
    for layer in range(2):
        assert_array_equal(moved.weights[layer], sampled.network.weights[layer])
    assert_array_equal(moved.weights[2], sampled.network.weights[2])     # the readout is the caller's job
    Z = X
    for layer in range(2):                                               # each layer on the moved layers below
        pre = Z @ moved.weights[layer].T + moved.biases[layer]
        assert np.all(np.sum(pre > 1e-9, axis=0) == 150) and np.all(np.sum(pre < -1e-9, axis=0) == 150)
        Z = np.maximum(pre, 0.0)
    original = digits.X_train @ sampled.network.weights[0].T + sampled.network.biases[0]
    assert np.median((original > 0).mean(axis=0)) > 0.9                 # SWIM's kinks: active almost everywhere
    with pytest.raises(ValueError, match="ReLU"):
        move_kinks(_sampled(digits, (8,), "tanh").network, X)
    with pytest.raises(ValueError, match="fraction"):
        move_kinks(sampled.network, X, max_active=1.5)


def test_capped_kinks_move_only_the_neurons_active_on_more_than_the_cap(digits):
    from dualmap.swim.finetune import move_kinks

    sampled = _sampled(digits, (40,), "relu").network
    X = digits.X_train[:401]
    half = move_kinks(sampled, X)                                        # half the neurons active on half the points
    biases = np.where(np.arange(40) < 20, half.biases[0], sampled.biases[0])
    network = dm.MLP(sampled.weights, [biases, sampled.biases[1]], sampled.activations)
    before = (X @ network.weights[0].T + network.biases[0] > 0).mean(axis=0)
    capped = move_kinks(network, X, max_active=0.9)
    after = (X @ capped.weights[0].T + capped.biases[0] > 0).mean(axis=0)
    assert np.all(after <= 0.9 + 1 / len(X)) and np.any(before > 0.95)
    kept = before <= 0.9 - 1 / len(X)                                    # already below the cap: the pair's kink
    assert kept[:20].all()
    assert_array_equal(capped.biases[0][kept], network.biases[0][kept])
    assert np.all(capped.biases[0] <= network.biases[0])                 # kinks only move to fewer active points


def test_kink_auto_moves_only_the_layers_that_are_nearly_affine_on_the_data(digits):
    from dualmap.swim.finetune import AFFINE_ACTIVITY, move_kinks

    sampled = _sampled(digits, (30,), "relu").network
    X = digits.X_train
    activity = (X @ sampled.weights[0].T + sampled.biases[0] > 0).mean(axis=0)
    assert np.median(activity) >= AFFINE_ACTIVITY                       # SWIM ReLU on 64-d digits: all-active
    assert_array_equal(move_kinks(sampled, X, affine_only=True).biases[0], move_kinks(sampled, X).biases[0])
    half = move_kinks(sampled, X)                                       # a layer active on half the points
    assert_array_equal(move_kinks(half, X, affine_only=True).biases[0], half.biases[0])
    two = dm.MLP([half.weights[0], np.eye(30), sampled.weights[1]],
                 [half.biases[0], np.full(30, 0.5), sampled.biases[1]], ["relu", "relu", "identity"])
    moved = move_kinks(two, X, affine_only=True)                        # layer 1 kept, layer 2 (all-active) moved
    assert_array_equal(moved.biases[0], half.biases[0])
    second = np.maximum(X @ half.weights[0].T + half.biases[0], 0) @ np.eye(30)
    assert_allclose(moved.biases[1], -np.median(second, axis=0))


def test_kink_auto_leaves_a_start_that_is_not_nearly_affine_exactly_as_the_default():
    ds = dm.load_dataset("breast_cancer")           # SWIM ReLU neurons active on ~90 % of the points: not moved

    def start(finetune):
        return dm.train([32], ds.X_train, ds.y_train, activation="relu", epochs=1, init="swim", finetune=finetune,
                        seed=0, checkpoints=[0, 1], progress=False).checkpoints[0][1]

    auto, default = start("auto+kink_auto"), start("auto")
    for a, b in zip(auto.weights + auto.biases, default.weights + default.biases):
        assert_array_equal(a, b)


def test_kink_median_scheme_solves_the_readout_again_on_the_moved_layer(digits):
    def start(finetune):
        return dm.train([24], digits.X_train, digits.y_train, epochs=1, init="swim", finetune=finetune, seed=3,
                        checkpoints=[0, 1], progress=False)

    moved_run, default_run = start("auto+kink_median"), start("auto")
    assert moved_run.config["finetune"] == "calibrate+rebalance+layer_lr+warmup+kink_median"
    moved, default = moved_run.checkpoints[0][1], default_run.checkpoints[0][1]
    pre = digits.X_train @ moved.weights[0].T + moved.biases[0]
    assert np.all(np.abs((pre > 0).mean(axis=0) - 0.5) <= 1 / len(pre))   # rebalancing keeps the kinks
    cosine = np.sum(moved.weights[0] * default.weights[0], axis=1) / (
        np.linalg.norm(moved.weights[0], axis=1) * np.linalg.norm(default.weights[0], axis=1))
    assert_allclose(cosine, 1.0, atol=1e-6)                                # the same pairs' directions (float32)
    def accuracy(network):
        return np.mean(network.predict(digits.X_train).argmax(axis=1) == digits.y_train)

    stale = dm.MLP([moved.weights[0], default.weights[1]], [moved.biases[0], default.biases[1]], moved.activations)
    assert accuracy(moved) > 0.8 and accuracy(moved) > accuracy(stale) + 0.3    # solved again, not the old readout
    tanh = dm.train([8], digits.X_train, digits.y_train, activation="tanh", epochs=1, init="swim",
                    finetune="auto+kink_median", progress=False)
    assert "kink_median" not in tanh.config["finetune"]                    # tanh: nothing to move
    with pytest.raises(ValueError, match="sampled"):
        dm.train([8], digits.X_train, digits.y_train, init="he", finetune="kink_median", progress=False)


def test_sampled_only_schemes_need_a_sampled_init(digits):
    with pytest.raises(ValueError, match="sampled"):
        dm.train([8], digits.X_train, digits.y_train, init="he", finetune="ridge", progress=False)
    sampled = _sampled(digits, (8,), "relu")
    pair_network = PairNetwork.from_pairs(sampled.network, sampled.pairs, digits.X_train)
    with pytest.raises(ValueError, match="PairNetwork"):
        dm.train(pair_network, digits.X_train, digits.y_train, finetune="layer_lr", progress=False)


def test_compare_inits_chooses_the_rate_on_a_validation_split(digits):
    from dualmap.inverse import compare_inits

    result = compare_inits(digits, [16], "relu", inits=("he", "swim", "swim:plain"), seeds=(0,), epochs=2,
                           lr=(1e-3, 1e-2), persistence_checkpoints=0, progress=False)
    config = result.config
    assert config["n_fit"] == len(digits.X_train) - round(0.2 * len(digits.X_train))
    for init in ("he", "swim", "swim:plain"):
        losses = config["validation_losses"][init]
        assert config["chosen_lr"][init] == float(min(losses, key=losses.get))
    rows = {row["init"]: row for row in result.rows}
    assert rows["swim:plain"]["finetune"] == "plain" and rows["swim"]["finetune"] != "plain"
    assert {row["init"] for row in result.table()} == {"he", "swim", "swim:plain"}
    with pytest.raises(ValueError, match="unknown init"):
        compare_inits(digits, [16], inits=("he", "orthogonal"), progress=False)
    with pytest.raises(ValueError, match="lr must be"):
        compare_inits(digits, [16], inits=("he",), lr=(), progress=False)
    with pytest.raises(ValueError, match="persistence_inits"):
        compare_inits(digits, [16], inits=("he",), persistence_inits=("swim",), progress=False)


# ---------------------------------------------------------------- pair prior (issue 13, part B)

@pytest.fixture(scope="module")
def digits_prior(digits):
    from dualmap.inverse import fit_pair_prior

    run = dm.train([24], digits.X_train, digits.y_train, epochs=5, seed=0, progress=False)
    pair_map = dm.to_pairs(run.model, digits.X_train, method="function", progress=False)
    return fit_pair_prior([pair_map], digits.X_train, digits.y_train), pair_map


def test_pair_prior_samples_networks_and_round_trips(digits, digits_prior, tmp_path):
    from dualmap.inverse import PairPrior

    prior, _ = digits_prior
    assert prior.task == "classification" and prior.coef.shape == (7,) and np.all(np.isfinite(prior.coef))
    one_hot = np.eye(10)[digits.y_train]
    a = dm.sample_network(digits.X_train, one_hot, (16, 8), "relu", sampler=prior, random_state=1)
    b = dm.sample_network(digits.X_train, one_hot, (16, 8), "relu", sampler=prior, random_state=1)
    for pa, pb in zip(a.pairs, b.pairs):                                 # same seed, same network
        assert_array_equal(pa, pb)
        assert pa.min() >= 0 and pa.max() < len(digits.X_train)
    loaded = PairPrior.load(prior.save(tmp_path / "prior.npz"))
    assert_allclose(loaded.coef, prior.coef) and loaded.task == prior.task
    c = dm.sample_network(digits.X_train, one_hot, (16, 8), "relu", sampler=loaded, random_state=1)
    assert_array_equal(c.pairs[0], a.pairs[0])
    clf = dm.SWIMClassifier(layer_widths=(32,), activation="relu", sampler=loaded, random_state=0)
    assert clf.fit(digits.X_train, digits.y_train).score(digits.X_test, digits.y_test) > 0.7


def test_pair_prior_weights_follow_its_coefficients(digits, digits_prior):
    from dualmap.inverse.prior import pair_features

    prior, pair_map = digits_prior
    features = pair_features(digits.X_train, pair_map.pairs[0], digits.y_train, "classification")
    assert features.shape == (len(pair_map.pairs[0]), 7)
    assert_allclose(prior.log_weight(features), features @ prior.coef)
    # the mapped pairs are more likely under the prior than uniform pairs are, on average
    uniform = np.random.default_rng(0).integers(0, len(digits.X_train), size=(500, 2))
    uniform = uniform[uniform[:, 0] != uniform[:, 1]]
    other = pair_features(digits.X_train, uniform, digits.y_train, "classification")
    assert prior.log_weight(features).mean() > prior.log_weight(other).mean()


def test_pair_prior_bad_input(digits, digits_prior):
    from dualmap.inverse import fit_pair_prior

    prior, pair_map = digits_prior
    with pytest.raises(ValueError, match="empty list"):
        fit_pair_prior([], digits.X_train, digits.y_train)
    with pytest.raises(ValueError, match="X and y"):
        fit_pair_prior([pair_map])
    with pytest.raises(ValueError, match="rows"):
        fit_pair_prior([pair_map], digits.X_train[:10], digits.y_train[:10])
    ds = dm.load_dataset("barron", n_samples=300)
    with pytest.raises(ValueError, match="fitted on classification"):
        dm.sample_network(ds.X_train, ds.y_train, (8,), "relu", sampler=prior, random_state=0)
    with pytest.raises(ValueError, match="pair features"):
        prior.log_weight(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="unknown sampler"):
        dm.sample_network(digits.X_train, np.eye(10)[digits.y_train], (8,), "relu", sampler="gaussian")


def test_default_finetune_same_seed_same_run(digits):
    kwargs = dict(init="swim", epochs=2, seed=4, checkpoints=2, progress=False)
    for optimizer in ("adam", "sgd"):
        a = dm.train([16, 8], digits.X_train, digits.y_train, optimizer=optimizer, lr=1e-2, **kwargs)
        b = dm.train([16, 8], digits.X_train, digits.y_train, optimizer=optimizer, lr=1e-2, **kwargs)
        for x, y in zip(a.model.weights, b.model.weights):
            assert_array_equal(x, y)
        expected = ("calibrate+rebalance+layer_lr+warmup" if optimizer == "adam"
                    else "calibrate+rebalance_act+layer_lr+warmup")
        assert a.config["finetune"] == expected
