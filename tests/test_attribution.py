"""dualmap.attribution: exact properties of the scores and of the protocols' statistics."""

import numpy as np
import pytest
import torch

import dualmap as dm
from dualmap.attribution import checkpoint_weights, lds, mislabel_auc, point_scores, validate
from dualmap.attribution.protocols import _flip_labels, _ranked, seed_agreement, summarize_removal
from dualmap.attribution.scores import _atom_credit, _map_features


def _blobs(n=60, d=3, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    X = rng.normal(size=(n, d)) + 2.0 * np.eye(classes, d)[y]
    return X, y


def _run_of(networks, steps, task="classification", classes=None, lr=0.1):
    return dm.TrainRun(model=networks[-1], checkpoints=list(zip(steps, networks)), history={}, task=task,
                       classes=classes, config={"lr": lr})


@pytest.fixture(scope="module")
def small_run():
    X, y = _blobs(80, 4)
    run = dm.train([16], X, y, epochs=5, batch_size=16, seed=0, checkpoints=4, progress=False)
    Xq, yq = _blobs(12, 4, seed=1)
    return run, X, y, Xq, yq


# --------------------------------------------------------------------------- the map's score
def test_planted_readout_unused_neurons_give_zero_to_their_points():
    X, _ = _blobs(40, 3)
    planted = dm.planted_network(X, (12,), "relu", seed=0, n_outputs=3)
    net = planted.network
    used = np.arange(12) < 6
    net.weights[1][:, ~used] = 0.0                              # the readout ignores neurons 6..11
    run = _run_of([net], [0], classes=np.arange(3))
    y = np.argmax(net.predict(X), axis=1)
    pm = dm.to_pairs(net, X, method="function", progress=False)
    assert dm.planted_recovery(pm.pairs, planted.pairs, X) == [1.0]
    only_unused = np.setdiff1d(np.unique(planted.pairs[0][~used]), planted.pairs[0][used])
    never = np.setdiff1d(np.arange(len(X)), planted.pairs[0])
    assert len(only_unused) > 0
    Xq = X[:7] + 0.1
    yq = y[:7]
    for kwargs in ({}, {"X_test": Xq, "y_test": yq}):
        scores = point_scores(run, X, y, method="map", variant="atoms", **kwargs)
        assert np.all(scores[..., only_unused] == 0.0)
        assert np.all(scores[..., never] == 0.0)
        assert np.any(scores[..., np.unique(planted.pairs[0][used])] != 0.0)
    # the neuron form: the unused neurons add nothing, whatever they are
    other = net.copy()
    other.weights[0][~used] = np.random.default_rng(1).normal(size=(6, 3))
    base = point_scores(run, X, y, X_test=Xq, y_test=yq, method="map")
    moved = point_scores(_run_of([other], [0], classes=np.arange(3)), X, y, X_test=Xq, y_test=yq, method="map")
    np.testing.assert_allclose(moved, base, rtol=1e-9, atol=1e-12)


def test_map_score_is_tracin_in_the_log_gains_of_an_exact_map():
    X, _ = _blobs(30, 3)
    planted = dm.planted_network(X, (10,), "relu", seed=2, n_outputs=3)
    net = planted.network
    y = np.arange(30) % 3
    run = _run_of([net], [0], classes=np.arange(3))
    Xq, yq = X[:4] + 0.05, y[:4]
    got = point_scores(run, X, y, X_test=Xq, y_test=yq, method="map", checkpoints="last")

    def gain_gradients(A, labels):        # ∂L/∂θ_k with the neuron k scaled by exp(θ_k), at θ = 0
        W1, b1, W2, b2 = (torch.as_tensor(a) for a in (net.weights[0], net.biases[0], net.weights[1], net.biases[1]))
        rows = []
        for x, label in zip(torch.as_tensor(A), labels):
            theta = torch.zeros(10, dtype=torch.float64, requires_grad=True)
            out = W2 @ (torch.exp(theta) * torch.relu(W1 @ x + b1)) + b2
            torch.nn.functional.cross_entropy(out[None], torch.as_tensor([int(label)])).backward()
            rows.append(theta.grad.numpy())
        return np.array(rows)

    expected = gain_gradients(Xq, yq) @ gain_gradients(X, y).T
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("method", ["map", "tracin", "swim_density"])
def test_permuting_training_points_permutes_scores(small_run, method):
    run, X, y, Xq, yq = small_run
    order = np.random.default_rng(3).permutation(len(X))
    for kwargs in ({}, {"X_test": Xq, "y_test": yq}):
        base = point_scores(run, X, y, method=method, checkpoints="last", **kwargs)
        permuted = point_scores(run, X[order], y[order], method=method, checkpoints="last", **kwargs)
        if method == "swim_density":     # an estimate from seeded random partners: the same in distribution only
            assert permuted.shape == base.shape
            continue
        np.testing.assert_allclose(permuted, base[..., order], rtol=1e-8, atol=1e-12)


def test_deep_tanh_map_scores_permute_with_the_points():
    X, y = _blobs(50, 4, seed=5)
    run = dm.train([8, 6], X, y, activation="tanh", optimizer="sgd", lr=0.05, epochs=3, batch_size=10, seed=1,
                   checkpoints=3, progress=False)
    Xq, yq = _blobs(6, 4, seed=6)
    order = np.random.default_rng(0).permutation(len(X))
    base = point_scores(run, X, y, X_test=Xq, y_test=yq, method="map", checkpoints="last")
    assert base.shape == (6, 50) and np.all(np.isfinite(base)) and np.any(base != 0)
    permuted = point_scores(run, X[order], y[order], X_test=Xq, y_test=yq, method="map", checkpoints="last")
    np.testing.assert_allclose(permuted, base[:, order], rtol=1e-8, atol=1e-12)


def test_atoms_with_one_atom_equal_the_pairs(small_run):
    run, X, y, Xq, _ = small_run
    pm = dm.to_pairs(run.model, X, method="function", progress=False)
    pairs = [np.asarray(a)[:, 0] for a in pm.atoms] if getattr(pm, "atoms", None) is not None else pm.pairs

    class PairsOnly:                                            # a map of one pair per neuron and its ReLU scale
        activations = pm.activations
        scales = [np.exp(np.random.default_rng(0).normal(size=len(p))) for p in pairs]
        scores = []

    PairsOnly.pairs = pairs

    class AtomMap(PairsOnly):                                   # the same as k = 1 atoms, coefficient = scale
        atoms = [p[:, None, :] for p in pairs]
        coefficients = [np.stack([s, np.zeros_like(s)], axis=1) for s in PairsOnly.scales]

    for a, b in zip(_map_features(PairsOnly, X, [Xq])[0], _map_features(AtomMap, X, [Xq])[0]):
        torch.testing.assert_close(a, b)
    np.testing.assert_allclose(_atom_credit(PairsOnly, 0, len(X)).numpy(), _atom_credit(AtomMap, 0, len(X)).numpy())


@pytest.fixture(scope="module")
def small_trajectory(small_run):
    run, X, y, _, _ = small_run
    return dm.track(run, X, y=y, progress=False)


def test_map_score_of_a_trajectory(small_run, small_trajectory):
    run, X, y, Xq, yq = small_run
    trajectory = small_trajectory
    scores = point_scores(trajectory, X, y, X_test=Xq, y_test=yq, method="map", checkpoints="all")
    assert scores.shape == (len(Xq), len(X)) and np.all(np.isfinite(scores))
    importance = point_scores(trajectory, X, y, method="importance")
    np.testing.assert_array_equal(importance, trajectory.importance[-1])


# --------------------------------------------------------------------------- TracIn
@pytest.mark.parametrize("backend", ["factorized", "captum"])
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_tracin_of_a_linear_model_matches_its_closed_form(backend, task):
    pytest.importorskip("captum") if backend == "captum" else None
    rng = np.random.default_rng(0)
    X, Xq = rng.normal(size=(15, 4)), rng.normal(size=(5, 4))
    networks = [dm.MLP([rng.normal(size=(3, 4))], [rng.normal(size=3)], ["identity"]) for _ in range(2)]
    if task == "classification":
        y, yq = np.arange(15) % 3, np.arange(5) % 3
    else:
        y, yq = rng.normal(size=(15, 3)), rng.normal(size=(5, 3))
    run = _run_of(networks, [0, 10], task=task, classes=np.arange(3) if task == "classification" else None, lr=0.1)

    def residual(net, A, labels):
        out = A @ net.weights[0].T + net.biases[0]
        if task == "classification":
            p = np.exp(out - out.max(axis=1, keepdims=True))
            return p / p.sum(axis=1, keepdims=True) - np.eye(3)[labels]
        return 2 * (out - labels) / 3                       # d/d out of mean_k (out_k - y_k)²

    expected = sum(0.5 * (residual(n, Xq, yq) @ residual(n, X, y).T) * (Xq @ X.T + 1) for n in networks)
    self_expected = sum(0.5 * (residual(n, X, y) ** 2).sum(axis=1) * ((X * X).sum(axis=1) + 1) for n in networks)
    assert np.allclose(checkpoint_weights([0, 10], 0.1, "all"), [0.5, 0.5])
    got = point_scores(run, X, y, X_test=Xq, y_test=yq, method="tracin", checkpoints="all", backend=backend)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(point_scores(run, X, y, method="tracin", checkpoints="all", backend=backend),
                               self_expected, rtol=1e-9, atol=1e-12)


def test_checkpoint_weights():
    steps = [0, 1, 3, 9]
    np.testing.assert_allclose(checkpoint_weights(steps, 1.0, "last"), [0, 0, 0, 1])
    np.testing.assert_allclose(checkpoint_weights(steps, 2.0, "all"), 2 * np.array([0.5, 1.5, 4.0, 3.0]))
    np.testing.assert_allclose(checkpoint_weights(steps, 1.0, 2), [0, 0, 3.0, 3.0])
    assert checkpoint_weights(steps, 1.0, "all").sum() == pytest.approx(9.0)      # every step counted once
    with pytest.raises(ValueError, match="checkpoints"):
        checkpoint_weights(steps, 1.0, "first")


# --------------------------------------------------------------------------- inputs
def test_errors_on_bad_input(small_run, small_trajectory):
    run, X, y, Xq, yq = small_run
    with pytest.raises(ValueError, match="unknown method"):
        point_scores(run, X, y, method="influence")
    with pytest.raises(ValueError, match="unknown variant"):
        point_scores(run, X, y, variant="pairs")
    with pytest.raises(ValueError, match="together"):
        point_scores(run, X, y, X_test=Xq)
    with pytest.raises(ValueError, match="features"):
        point_scores(run, X[:, :2], y)
    with pytest.raises(ValueError, match="rows"):
        point_scores(run, X, y[:-1])
    with pytest.raises(ValueError, match="not trained on"):
        point_scores(run, X, y, X_test=Xq, y_test=yq + 7)
    with pytest.raises(TypeError, match="TrainRun or a dm.Trajectory"):
        point_scores(run.model, X, y)
    with pytest.raises(ValueError, match="backend"):
        point_scores(run, X, y, method="tracin", backend="jax")
    trajectory = small_trajectory
    with pytest.raises(ValueError, match="TrainRun"):
        point_scores(trajectory, X, y, method="tracin")
    with pytest.raises(ValueError, match="fingerprint"):
        point_scores(trajectory, X + 1, y)


def test_same_seed_same_scores(small_run):
    run, X, y, Xq, yq = small_run
    for method in ("map", "random"):
        a = point_scores(run, X, y, X_test=Xq, y_test=yq, method=method, seed=4, checkpoints="last")
        b = point_scores(run, X, y, X_test=Xq, y_test=yq, method=method, seed=4, checkpoints="last")
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- protocols
def test_lds_and_auc_exact():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(4, 30))
    masks = rng.random((20, 30)) < 0.5
    actual = masks @ scores.T
    np.testing.assert_allclose(lds(scores, masks, actual), 1.0)
    np.testing.assert_allclose(lds(-scores, masks, actual), -1.0)
    flipped = np.zeros(10, dtype=bool)
    flipped[[2, 5]] = True
    assert mislabel_auc(np.arange(10.0) * (~flipped) + 100 * flipped, flipped) == 1.0
    assert mislabel_auc(np.ones(10), flipped) == 0.5
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    score = rng.normal(size=10)
    assert mislabel_auc(score, flipped) == pytest.approx(sklearn_metrics.roc_auc_score(flipped, score))
    with pytest.raises(ValueError, match="both"):
        mislabel_auc(score, np.zeros(10, dtype=bool))


def test_ranked_flip_and_agreement():
    score = np.array([0.3, -1.0, 2.0, 0.0, 5.0])
    np.testing.assert_array_equal(_ranked(score, 0.4, "top"), [2, 4])
    np.testing.assert_array_equal(_ranked(score, 0.4, "bottom"), [1, 3])
    noisy, flipped = _flip_labels(np.arange(100) % 4, 0.1, seed=0)
    assert flipped.sum() == 10 and np.all(noisy[flipped] != (np.arange(100) % 4)[flipped])
    assert np.all(noisy[~flipped] == (np.arange(100) % 4)[~flipped])
    agreement = seed_agreement(np.arange(100.0), np.arange(100.0), top=50)
    assert agreement["spearman"] == pytest.approx(1.0) and agreement["top50_overlap"] == 1.0


def test_summarize_removal_pairs_by_seed():
    rows = []
    for seed in range(3):
        rows.append({"method": "full", "side": "none", "fraction": 0.0, "seed": seed, "loss": 1.0 + seed, "metric": 1})
        rows.append({"method": "random", "side": "random", "fraction": 0.1, "seed": seed, "loss": 1.1 + seed,
                     "metric": 1})
        rows.append({"method": "m", "side": "top", "fraction": 0.1, "seed": seed, "loss": 1.5 + 1.01 * seed,
                     "metric": 1})
        rows.append({"method": "m", "side": "bottom", "fraction": 0.1, "seed": seed, "loss": 1.0 + seed, "metric": 1})
    (entry,) = summarize_removal(rows)
    assert entry["top_minus_bottom"] == pytest.approx(0.51)
    assert entry["top_minus_bottom_se"] == pytest.approx(0.01 / np.sqrt(3))
    assert entry["top_minus_random"] == pytest.approx(0.41)


@pytest.mark.slow
def test_validate_end_to_end_small(tmp_path):
    X, y = _blobs(60, 3)
    Xq, yq = _blobs(20, 3, seed=2)
    ds = dm.Dataset(X_train=X, y_train=y, X_test=Xq, y_test=yq, task="classification", name="blobs", n_classes=3)
    methods = {"map": {"method": "map", "checkpoints": "last"}, "tracin": {"method": "tracin", "checkpoints": "all"},
               "random": {"method": "random"}}
    result = validate(ds, widths=(8,), epochs=2, batch_size=20, checkpoints=3, methods=methods, fractions=(0.1,),
                      seeds=(0, 1), n_subsets=4, agreement_seeds=(1,))
    assert {r["method"] for r in result.removal} == {"map", "tracin"}
    assert len(result.removal_rows) == 2 * (1 + 1 + 2 * 2)
    assert set(result.lds) == set(methods) and set(result.mislabel) == set(methods)
    assert result.mislabel["map"]["n_flipped"] == 6
    assert set(result.agreement) == {"map", "tracin"}
    again = validate(ds, widths=(8,), epochs=2, batch_size=20, checkpoints=3, methods=methods, fractions=(0.1,),
                     seeds=(0, 1), n_subsets=4, protocols=("removal",))
    assert again.removal == result.removal                    # same seed, same result
    with pytest.raises(ValueError, match="protocols"):
        validate(ds, protocols=("loo",))
    with pytest.raises(ValueError, match="rank"):
        validate(ds, rank="absolute")
    from dualmap.attribution import ValidationResult
    from dualmap.report.attribution_figures import attribution_figures

    loaded = ValidationResult.load(result.save(tmp_path / "validation.json"))
    assert loaded.lds == result.lds and loaded.removal == result.removal
    paths = attribution_figures(loaded, tmp_path / "figures")
    assert sorted(p.name for p in paths) == ["attribution_lds.png", "attribution_mislabel.png",
                                             "attribution_removal.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)


def test_validate_ranks_by_magnitude_by_default_and_by_the_signed_score_on_request(monkeypatch):
    """The removal ranking is ``mean_j |s(j, i)|`` over the query points unless ``rank="signed"`` (the mean of
    ``s(j, i)``); the held-out points never enter it. Magnitude is the default (docs/findings/attribution.md,
    "Held-out query points": the signed ranking does not carry over to held-out points)."""
    import inspect

    from dualmap.attribution import protocols, scores

    assert inspect.signature(validate).parameters["rank"].default == "magnitude"
    X, y = _blobs(40, 3)
    Xq, yq = _blobs(20, 3, seed=2)
    ds = dm.Dataset(X_train=X, y_train=y, X_test=Xq, y_test=yq, task="classification", name="blobs", n_classes=3)
    S = np.random.default_rng(3).normal(size=(20, 40))

    def fake_scores(run, X, y, *, X_test=None, y_test=None, return_seconds=False, **options):
        return (S, 0.0) if return_seconds else S

    captured = {}
    monkeypatch.setattr(scores, "point_scores", fake_scores)
    monkeypatch.setattr(protocols, "remove_and_retrain", lambda data, n, ranked, **kw: captured.update(ranked) or [])
    monkeypatch.setattr(protocols, "summarize_removal", lambda rows: [])
    for rank in (None, "signed"):
        options = {} if rank is None else {"rank": rank}
        result = validate(ds, widths=(4,), epochs=1, batch_size=20, checkpoints=2, methods={"map": {"method": "map"}},
                          protocols=("removal",), query_fraction=0.5, **options)
        query = np.asarray(result.setting["query_indices"])
        expected = S[query].mean(axis=0) if rank == "signed" else np.abs(S[query]).mean(axis=0)
        assert result.setting["rank"] == (rank or "magnitude")
        np.testing.assert_allclose(captured["map"], expected)
