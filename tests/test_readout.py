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


def test_fit_temperature_minimises_the_softmax_likelihood_and_scales_with_the_scores():
    from scipy.special import log_softmax

    from dualmap.swim.readout import fit_temperature

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, size=500)
    scores = rng.normal(size=(500, 4)) + 2.0 * np.eye(4)[labels] + 50.0      # a large common offset: no overflow
    T = fit_temperature(scores, labels)

    def nll(t):
        return -log_softmax(scores / t, axis=1)[np.arange(500), labels].mean()

    grid = np.exp(np.linspace(-7, 3, 4001))
    best = grid[np.argmin([nll(t) for t in grid])]
    assert T == pytest.approx(best, rel=5e-3)
    assert nll(T) <= min(nll(T * 1.01), nll(T / 1.01))
    # softmax(c·s / (c·T)) = softmax(s / T): the temperature scales with the scores
    assert fit_temperature(3.0 * scores, labels) == pytest.approx(3.0 * T, rel=1e-3)
