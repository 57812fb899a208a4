import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.linear_model import Ridge

from dualmap.swim.readout import fit_ridge


@pytest.mark.parametrize("alpha", [1e-3, 1.0, 50.0])
def test_matches_sklearn_ridge_with_unpenalised_intercept(alpha, rng):
    H = rng.normal(size=(200, 30)) + 3.0
    Y = rng.normal(size=(200, 2))
    solution = fit_ridge(torch.tensor(H), torch.tensor(Y), alpha, chunk_size=64)
    reference = Ridge(alpha=alpha).fit(H, Y)
    assert_allclose(solution.weight.numpy(), reference.coef_, rtol=1e-8, atol=1e-10)
    assert_allclose(solution.bias.numpy(), reference.intercept_, rtol=1e-8, atol=1e-10)


def test_alpha_zero_on_rank_deficient_features_is_the_minimum_norm_solution(rng):
    H = rng.normal(size=(20, 50))          # more features than points
    Y = rng.normal(size=(20, 1))
    solution = fit_ridge(torch.tensor(H), torch.tensor(Y), 0.0)
    fitted = H @ solution.weight.numpy().T + solution.bias.numpy()
    assert_allclose(fitted, Y, atol=1e-8)  # interpolates


def test_gcv_picks_a_small_penalty_for_clean_data_and_a_large_one_for_noise(rng):
    H = rng.normal(size=(500, 20))
    w = rng.normal(size=(20, 1))
    clean = fit_ridge(torch.tensor(H), torch.tensor(H @ w), "auto")
    noise = fit_ridge(torch.tensor(H), torch.tensor(rng.normal(size=(500, 1))), "auto")
    assert clean.alpha < 1e-3 * noise.alpha


def test_float32_features_give_the_float64_solution(rng):
    H = rng.normal(size=(300, 40)).astype(np.float32)
    Y = rng.normal(size=(300, 3))
    a = fit_ridge(torch.tensor(H), torch.tensor(Y), 0.1)
    b = fit_ridge(torch.tensor(H.astype(np.float64)), torch.tensor(Y), 0.1)
    assert a.weight.dtype == torch.float64
    assert_allclose(a.weight.numpy(), b.weight.numpy(), rtol=1e-10)


def test_bad_alpha(rng):
    with pytest.raises(ValueError, match="alpha"):
        fit_ridge(torch.zeros(4, 2), torch.zeros(4, 1), -1.0)
