"""The readout's dual form (n < width) against its primal form, and the pieces of the CPU solver."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.datasets import load_digits
from sklearn.linear_model import Ridge

from dualmap.swim.readout import _eigh_projected, _fit_ridge_torch, _solve_dual, _solve_primal, fit_ridge
from dualmap.swim.sampler import sample_hidden_layers


def _solve(form, H, Y, alpha, chunk_size=8192):
    """Run one form on ``H`` (numpy) and return (alpha, predictions on H) — the intercept handled as fit_ridge does."""
    y_mean = Y.mean(axis=0)
    Yc = Y - y_mean
    weight_t, h_mean, chosen = form(H, Yc, float((Yc**2).sum()), alpha, chunk_size)
    bias = y_mean - weight_t.T @ h_mean
    return chosen, H.astype(np.float64) @ weight_t + bias


def _swim_features(n, width, activation, dtype, seed=0):
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(X), size=n, replace=False)
    X = (X[rows] - X[rows].mean(0)) / (X[rows].std(0) + 1e-8)
    Z = torch.as_tensor(X, dtype=dtype)
    targets = torch.as_tensor(np.eye(10)[y[rows]], dtype=torch.float64)
    *_, H = sample_hidden_layers(Z, targets, (width,), activation, sampler="swim", rng=rng)
    return H.numpy(), np.eye(10)[y[rows]]


def _explicit_gcv_alpha(H, Y):
    """GCV's α on the grid from explicit residuals and the smoother's trace, by direct n × n solves."""
    from dualmap.swim.readout import alpha_grid

    n, width = H.shape
    Hc, Yc = H - H.mean(0), Y - Y.mean(0)
    K = Hc @ Hc.T
    floor = np.linalg.eigvalsh(K)[-1] * width * np.finfo(float).eps
    grid = alpha_grid(np.trace(K) / width)
    grid = grid[grid >= 10 * floor]
    scores = []
    for alpha in grid:
        smoother = K @ np.linalg.inv(K + alpha * np.eye(n))
        rss = ((Yc - smoother @ Yc) ** 2).sum()
        scores.append(n * rss / (n - 1.0 - np.trace(smoother)) ** 2)
    return grid[int(np.argmin(scores))]


def _relative(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("shape", [(60, 150), (150, 60), (90, 120)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dual_and_primal_choose_the_same_alpha_and_predict_the_same(shape, dtype, rng):
    n, width = shape
    H = (np.tanh(rng.normal(size=(n, 5)) @ rng.normal(size=(5, width)) + rng.normal(size=width))
         + 0.05 * rng.normal(size=(n, width)) + 2.0).astype(dtype)    # low rank + noise, far from centred
    Y = H[:, :3].astype(np.float64) @ rng.normal(size=(3, 2)) + 0.1 * rng.normal(size=(n, 2))
    alpha_d, pred_d = _solve(_solve_dual, H, Y, "auto")
    if n > width + 1:
        alpha_p, pred_p = _solve(_solve_primal, H, Y, "auto", chunk_size=17)
        assert alpha_p == pytest.approx(alpha_d, rel=1e-10)     # the same grid point
        assert _relative(pred_d, pred_p) < 1e-8
    else:
        # n ≤ width + 1 can interpolate: the primal RSS ‖Y_c‖² − Σ q²(λ+2α)/(λ+α)² cancels to rounding noise at
        # small α, so the dual's choice is checked against explicit residuals, and its readout against the primal
        # solve at that α
        assert alpha_d == pytest.approx(float(_explicit_gcv_alpha(H.astype(np.float64), Y)), rel=1e-10)
        _, pred_p = _solve(_solve_primal, H, Y, alpha_d)
        assert _relative(pred_d, pred_p) < 1e-8
    for alpha in (1e-3, 1.0):
        _, pred_p = _solve(_solve_primal, H, Y, alpha)
        _, pred_d = _solve(_solve_dual, H, Y, alpha)
        assert _relative(pred_d, pred_p) < 1e-8
        reference = Ridge(alpha=alpha, solver="svd").fit(H.astype(np.float64), Y).predict(H.astype(np.float64))
        assert _relative(pred_d, reference) < 1e-8


@pytest.mark.parametrize("shape", [(300, 500), (500, 300)])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("tridiagonal_from", [2, 10**9])
def test_dual_and_primal_agree_on_ill_conditioned_swim_features(shape, activation, tridiagonal_from, monkeypatch):
    """SWIM features (duplicate neurons, eigenvalues down to the rounding level) in float32, as the estimators fit;
    with the tridiagonal eigensolver and with ``syevd``."""
    import dualmap.swim.readout as readout

    monkeypatch.setattr(readout, "_TRIDIAGONAL_FROM", tridiagonal_from)
    H, Y = _swim_features(*shape, activation, torch.float32)
    alpha_d, pred_d = _solve(_solve_dual, H, Y, "auto")
    alpha_p, pred_p = _solve(_solve_primal, H, Y, alpha_d if shape[0] <= shape[1] + 1 else "auto", chunk_size=128)
    assert alpha_p == pytest.approx(alpha_d, rel=1e-10)     # the same grid point
    assert _relative(pred_d, pred_p) < 1e-8
    # the torch implementation (float64 normal equations, syevd) picks the same α
    old = _fit_ridge_torch(torch.from_numpy(H), torch.from_numpy(Y), "auto", 8192)
    assert old.alpha == pytest.approx(alpha_p, rel=1e-10)
    pred_old = H.astype(np.float64) @ old.weight.numpy().T + old.bias.numpy()
    assert _relative(pred_old, pred_p) < 1e-6


def test_fit_ridge_uses_the_dual_when_there_are_fewer_points_than_features(rng, monkeypatch):
    import dualmap.swim.readout as readout

    used = []
    for name in ("_solve_primal", "_solve_dual"):
        original = getattr(readout, name)
        monkeypatch.setattr(readout, name, lambda *a, _f=original, _n=name: used.append(_n) or _f(*a))
    fit_ridge(torch.tensor(rng.normal(size=(10, 20))), torch.tensor(rng.normal(size=(10, 1))), 0.1)
    fit_ridge(torch.tensor(rng.normal(size=(11, 10))), torch.tensor(rng.normal(size=(11, 1))), 0.1)
    fit_ridge(torch.tensor(rng.normal(size=(12, 10))), torch.tensor(rng.normal(size=(12, 1))), 0.1)
    assert used == ["_solve_dual", "_solve_dual", "_solve_primal"]


@pytest.mark.parametrize("n", [40, 41, 60])
def test_dual_gcv_equals_gcv_from_explicit_residuals_near_interpolation(n, rng):
    """n ≤ width + 1: the model can interpolate; the dual's GCV (no cancellation) matches a direct computation."""
    H = rng.normal(size=(n, 40)) + 1.0
    Y = rng.normal(size=(n, 2))
    chosen, _ = _solve(_solve_dual, H, Y, "auto")
    assert chosen == pytest.approx(float(_explicit_gcv_alpha(H, Y)), rel=1e-10)


@pytest.mark.parametrize("m", [10, 64, 200])
@pytest.mark.parametrize("tridiagonal", [True, False])
def test_eigh_projected_matches_numpy(m, tridiagonal, rng):
    A = rng.normal(size=(m, m + 5))
    A = A @ A.T
    rhs = rng.normal(size=(m, 3))
    eigenvalues, projected, apply_vectors = _eigh_projected(np.triu(A).copy(order="F"), rhs,
                                                            tridiagonal_from=2 if tridiagonal else 10**9)
    reference_values, vectors = np.linalg.eigh(A)
    assert_allclose(eigenvalues, reference_values, rtol=1e-10, atol=1e-10 * reference_values[-1])
    assert_allclose(np.abs(projected), np.abs(vectors.T @ rhs), rtol=1e-7, atol=1e-9)   # up to eigenvector signs
    x = rng.normal(size=(m, 2))
    assert_allclose(apply_vectors(projected / eigenvalues[:, None]), np.linalg.solve(A, rhs), rtol=1e-7, atol=1e-9)
    assert_allclose(np.linalg.norm(apply_vectors(x), axis=0), np.linalg.norm(x, axis=0), rtol=1e-12)


def test_primal_moments_do_not_depend_on_the_chunk_size(rng):
    H = (rng.normal(size=(103, 7)) + 5.0).astype(np.float32)
    Y = rng.normal(size=(103, 2))
    whole = fit_ridge(torch.from_numpy(H), torch.from_numpy(Y), 1e-2, chunk_size=1000)
    chunked = fit_ridge(torch.from_numpy(H), torch.from_numpy(Y), 1e-2, chunk_size=10)
    assert_allclose(chunked.weight.numpy(), whole.weight.numpy(), rtol=1e-10)
    assert_allclose(chunked.bias.numpy(), whole.bias.numpy(), rtol=1e-10)
