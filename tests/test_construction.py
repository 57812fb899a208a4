import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

import dualmap as dm
from dualmap.swim import TANH_S2


def test_constants():
    assert dm.swim_constants("relu") == (1.0, 0.0)
    s1, s2 = dm.swim_constants("tanh")
    assert s2 == pytest.approx(math.atanh(0.5)) == pytest.approx(math.log(3) / 2)
    assert s1 == pytest.approx(math.log(3))
    assert TANH_S2 == s2


def test_tanh_neuron_is_minus_half_at_z1_and_plus_half_at_z2(rng):
    z1, z2 = rng.normal(size=(50, 7)), rng.normal(size=(50, 7))
    W, b = dm.swim_neurons(z1, z2, "tanh")
    assert W.shape == (50, 7) and b.shape == (50,)
    at_z1 = np.tanh(np.einsum("kd,kd->k", W, z1) + b)
    at_z2 = np.tanh(np.einsum("kd,kd->k", W, z2) + b)
    assert_allclose(at_z1, -0.5, atol=1e-12)
    assert_allclose(at_z2, 0.5, atol=1e-12)
    # the hyperplane passes through the midpoint, and ‖w‖ = ln3/‖Δ‖
    assert_allclose(np.einsum("kd,kd->k", W, (z1 + z2) / 2) + b, 0.0, atol=1e-12)
    assert_allclose(np.linalg.norm(W, axis=1), math.log(3) / np.linalg.norm(z2 - z1, axis=1), rtol=1e-12)


def test_relu_neuron_has_kink_at_z1_and_one_at_z2(rng):
    z1, z2 = rng.normal(size=(30, 3)), rng.normal(size=(30, 3))
    W, b = dm.swim_neurons(z1, z2, "relu")
    assert_allclose(np.einsum("kd,kd->k", W, z1) + b, 0.0, atol=1e-12)
    assert_allclose(np.einsum("kd,kd->k", W, z2) + b, 1.0, atol=1e-12)
    # w is parallel to Δ with ‖w‖ = 1/‖Δ‖
    delta = z2 - z1
    assert_allclose(W, delta / np.sum(delta**2, axis=1, keepdims=True), rtol=1e-12)


def test_torch_in_torch_out_and_differentiable(rng):
    z1 = torch.tensor(rng.normal(size=(4, 2)), requires_grad=True)
    z2 = torch.tensor(rng.normal(size=(4, 2)), requires_grad=True)
    W, b = dm.swim_neurons(z1, z2, "tanh")
    assert isinstance(W, torch.Tensor) and W.dtype == torch.float64
    W_numpy, b_numpy = dm.swim_neurons(z1.detach().numpy(), z2.detach().numpy(), "tanh")
    assert_allclose(W.detach().numpy(), W_numpy, rtol=1e-12)
    assert_allclose(b.detach().numpy(), b_numpy, rtol=1e-12)
    # the analytic gradient with respect to both points matches finite differences
    assert torch.autograd.gradcheck(lambda p, q: dm.swim_neurons(p, q, "tanh"), (z1, z2))


def test_coincident_pair_is_rejected():
    z = np.zeros((2, 3))
    z2 = z.copy()
    z2[0, 0] = 1.0
    with pytest.raises(ValueError, match="coincident"):
        dm.swim_neurons(z, z2, "relu")


@pytest.mark.parametrize("activation", ["sigmoid", "identity", "gelu"])
def test_unknown_activation(activation, rng):
    with pytest.raises(ValueError, match="unknown activation"):
        dm.swim_neurons(rng.normal(size=(2, 2)), rng.normal(size=(2, 2)), activation)


def test_shape_mismatch(rng):
    with pytest.raises(ValueError, match="shape"):
        dm.swim_neurons(rng.normal(size=(2, 2)), rng.normal(size=(3, 2)), "relu")
