"""The joint selection's coordinate descent against brute-force ridge objectives."""

import pytest
import torch

from dualmap.maps._joint import joint_select, ridge_rss


def _problem(seed, width=6, n_list=4, n_eval=40, m=3):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(width, n_list, n_eval, generator=generator, dtype=torch.float64)
    target = torch.randn(n_eval, m, generator=generator, dtype=torch.float64)
    return features, target


def _columns(features, choice):
    return features[torch.arange(features.shape[0]), choice].T


def _lambda(features, ridge):
    start = features[:, 0, :] - features[:, 0, :].mean(dim=-1, keepdim=True)
    return ridge * float((start * start).sum() / features.shape[0])


@pytest.mark.parametrize("seed", range(5))
def test_result_is_a_coordinatewise_optimum_of_the_ridge_objective(seed):
    features, target = _problem(seed)
    ridge = 1e-3
    choice = joint_select(features, target, ridge=ridge, sweeps=50, tolerance=0.0)
    lam = _lambda(features, ridge)
    best = ridge_rss(_columns(features, choice), target, lam)
    assert best < ridge_rss(_columns(features, torch.zeros_like(choice)), target, lam)
    for k in range(features.shape[0]):             # no single swap lowers the objective
        for j in range(features.shape[1]):
            trial = choice.clone()
            trial[k] = j
            assert ridge_rss(_columns(features, trial), target, lam) >= best - 1e-9 * best


def test_first_step_takes_the_brute_force_best_swap():
    features, target = _problem(7, width=4)
    ridge = 1e-2
    lam = _lambda(features, ridge)
    locked = torch.tensor([False, True, True, True])          # only neuron 0 may move, in one step
    choice = joint_select(features, target, ridge=ridge, sweeps=1, locked=locked, tolerance=0.0)
    objectives = []
    for j in range(features.shape[1]):
        trial = torch.zeros(4, dtype=torch.int64)
        trial[0] = j
        objectives.append(ridge_rss(_columns(features, trial), target, lam))
    assert int(choice[0]) == min(range(len(objectives)), key=objectives.__getitem__)
    assert choice[1:].tolist() == [0, 0, 0]


def test_locked_neurons_and_exact_fits_keep_their_first_candidate():
    features, target = _problem(3)
    target = _columns(features, torch.zeros(6, dtype=torch.int64)) @ torch.randn(
        6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # candidate 0 everywhere reproduces the target exactly: nothing can lower the objective further
    choice = joint_select(features, target, ridge=1e-12)
    assert choice.tolist() == [0] * 6
