import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from torch import nn

import dualmap as dm


def small_mlp(rng, dtype=np.float64):
    weights = [rng.normal(size=(5, 3)), rng.normal(size=(4, 5)), rng.normal(size=(2, 4))]
    biases = [rng.normal(size=5), rng.normal(size=4), rng.normal(size=2)]
    return dm.MLP([w.astype(dtype) for w in weights], [b.astype(dtype) for b in biases], ["relu", "tanh", "identity"])


def test_forward_is_the_layer_formula(rng):
    mlp = small_mlp(rng)
    X = rng.normal(size=(7, 3))
    h1 = np.maximum(X @ mlp.weights[0].T + mlp.biases[0], 0)
    h2 = np.tanh(h1 @ mlp.weights[1].T + mlp.biases[1])
    out = h2 @ mlp.weights[2].T + mlp.biases[2]
    assert_allclose(mlp.predict(X), out, rtol=1e-12)
    assert_allclose(mlp.hidden(X, 0), h1, rtol=1e-12)
    assert_allclose(mlp.hidden(X, 1), h2, rtol=1e-12)
    assert_allclose(mlp.forward(X, upto=2, pre_activation=True), h1 @ mlp.weights[1].T + mlp.biases[1], rtol=1e-12)
    # a tensor in gives a tensor out
    out_t = mlp(torch.tensor(X))
    assert isinstance(out_t, torch.Tensor)
    assert_allclose(out_t.numpy(), out, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_round_trip_is_bit_exact(rng, dtype):
    mlp = small_mlp(rng, dtype)
    module = mlp.to_torch()
    assert [type(m) for m in module] == [nn.Linear, nn.ReLU, nn.Linear, nn.Tanh, nn.Linear]
    back = dm.MLP.from_torch(module)
    assert back.activations == mlp.activations
    for a, b in zip(mlp.weights + mlp.biases, back.weights + back.biases):
        assert a.dtype == b.dtype
        assert_array_equal(a, b)
    X = rng.normal(size=(6, 3)).astype(dtype)
    with torch.no_grad():
        assert_array_equal(module(torch.from_numpy(X)).numpy(), mlp.predict(X))


def test_from_torch_nested_sequential_and_no_final_activation():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Sequential(nn.Linear(3, 4), nn.Tanh()), nn.Linear(4, 2))
    mlp = dm.MLP.from_torch(module)
    assert mlp.activations == ["tanh", "identity"]
    X = torch.randn(5, 3)
    with torch.no_grad():
        assert_allclose(mlp.predict(X.numpy()), module(X).numpy(), rtol=1e-6)


@pytest.mark.parametrize("layer", [nn.Conv2d(1, 1, 3), nn.BatchNorm1d(4), nn.GELU(), nn.Dropout(0.1), nn.Sigmoid()])
def test_from_torch_rejects_other_layers_by_name(layer):
    module = nn.Sequential(nn.Linear(3, 4), layer, nn.Linear(4, 1))
    with pytest.raises(TypeError, match=type(layer).__name__):
        dm.MLP.from_torch(module)


def test_from_torch_rejects_activation_without_linear():
    with pytest.raises(TypeError, match="must directly follow a Linear"):
        dm.MLP.from_torch(nn.Sequential(nn.ReLU(), nn.Linear(3, 1)))


def test_save_load_round_trip_is_bit_exact(rng, tmp_path):
    mlp = small_mlp(rng)
    path = mlp.save(tmp_path / "net.npz")
    back = dm.MLP.load(path)
    assert back.activations == mlp.activations
    for a, b in zip(mlp.weights + mlp.biases, back.weights + back.biases):
        assert_array_equal(a, b)


def test_load_truncated_or_foreign_file(rng, tmp_path):
    path = small_mlp(rng).save(tmp_path / "net.npz")
    data = path.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(dm.CorruptFileError, match="truncated or corrupt"):
        dm.MLP.load(truncated)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.zeros(3))
    with pytest.raises(dm.CorruptFileError, match="no dualmap header"):
        dm.MLP.load(foreign)
    with pytest.raises(FileNotFoundError):
        dm.MLP.load(tmp_path / "missing.npz")


@pytest.mark.parametrize("weights, biases, activations, message", [
    ([np.ones((2, 3))], [np.ones(3)], ["relu"], "bias must have shape"),
    ([np.ones((2, 3)), np.ones((1, 3))], [np.ones(2), np.ones(1)], ["relu", "identity"], "expects inputs of dimension"),
    ([np.ones((2, 3))], [np.ones(2)], ["gelu"], "unknown activation"),
    ([np.full((2, 3), np.nan)], [np.ones(2)], ["relu"], "NaN"),
])
def test_invalid_networks(weights, biases, activations, message):
    with pytest.raises(ValueError, match=message):
        dm.MLP(weights, biases, activations)


def test_forward_rejects_wrong_feature_count_and_nan(rng):
    mlp = small_mlp(rng)
    with pytest.raises(ValueError, match="3 were expected"):
        mlp.predict(np.ones((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        mlp.predict(np.full((2, 3), np.nan))


def test_atomic_path_publishes_on_success_and_leaves_the_old_file_on_failure(tmp_path):
    import os

    from dualmap._io import atomic_path

    target = tmp_path / "sub" / "movie.gif"
    with atomic_path(target, suffix=".gif") as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".gif" and tmp != target
        tmp.write_bytes(b"first")
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_bytes() == b"first" and target.stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(RuntimeError, match="writer broke"):
        with atomic_path(target, suffix=".gif") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer broke")
    assert target.read_bytes() == b"first"                      # the old file, untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["movie.gif"]     # no temporary left behind


def test_check_choice_names_the_parameter_the_value_and_the_choices():
    from dualmap._validation import check_choice

    assert check_choice("adam", ("adam", "sgd"), "optimizer") == "adam"
    with pytest.raises(ValueError, match=r"unknown optimizer 'rmsprop'; supported: \['adam', 'sgd'\]"):
        check_choice("rmsprop", ("adam", "sgd"), "optimizer")
    with pytest.raises(ValueError, match="unknown optimizer 3"):
        check_choice(3, ("adam", "sgd"), "optimizer")
    with pytest.raises(ValueError, match="unknown init 'xavierr'"):
        dm.train([4], np.random.default_rng(0).normal(size=(10, 2)), np.arange(10) % 2, init="xavierr",
                 progress=False)
