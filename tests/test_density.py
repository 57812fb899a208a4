import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

import dualmap as dm
from dualmap.swim import DualmapWarning
from dualmap.swim.density import draw_candidates, sample_pairs, score_candidates


def test_candidates_are_ordered_distinct_and_uniform(rng):
    candidates = draw_candidates(5, 200_000, rng)
    assert candidates.shape == (200_000, 2)
    assert np.all(candidates[:, 0] != candidates[:, 1])
    counts = np.zeros((5, 5))
    np.add.at(counts, (candidates[:, 0], candidates[:, 1]), 1)
    off_diagonal = counts[~np.eye(5, dtype=bool)] / len(candidates)
    assert_allclose(off_diagonal, 1 / 20, atol=0.004)   # all 20 ordered pairs equally likely


def test_scores_follow_the_swim_formula(rng):
    Z = torch.tensor(rng.normal(size=(6, 3)))
    y = torch.tensor(rng.normal(size=(6, 2)))
    candidates = np.array([[0, 1], [2, 5], [4, 3]])
    scores, distances = score_candidates(Z, candidates, y)
    for (i1, i2), score, distance in zip(candidates, scores.numpy(), distances.numpy()):
        expected_distance = np.linalg.norm(Z[i2].numpy() - Z[i1].numpy())
        assert distance == pytest.approx(expected_distance)
        assert score == pytest.approx(np.max(np.abs(y[i2].numpy() - y[i1].numpy())) / expected_distance)


def test_scores_do_not_depend_on_the_chunking(rng):
    # the gathered rows live in buffers reused across chunks: a last, shorter chunk must not see stale rows
    Z = torch.tensor(rng.normal(size=(40, 5)), dtype=torch.float32)
    y = torch.tensor(rng.normal(size=(40, 3)))
    candidates = draw_candidates(40, 103, rng)
    expected = torch.linalg.vector_norm(Z[candidates[:, 1]] - Z[candidates[:, 0]], dim=1).double()
    for chunk_size in (1, 7, 50, 103, 4096):
        scores, distances = score_candidates(Z, candidates, y, chunk_size=chunk_size)
        assert torch.equal(distances, expected)
        numerator = (y[candidates[:, 1]] - y[candidates[:, 0]]).abs().amax(dim=1)
        assert torch.equal(scores, numerator / expected)


def test_uniform_scores_weigh_every_distinct_pair_the_same_whatever_its_length(rng):
    """targets=None: score 1 for every non-coincident pair (not 1/distance), 0 for coincident ones; the draw is
    then uniform over distinct ordered pairs even when their lengths differ by orders of magnitude."""
    Z = torch.tensor([[0.0], [1e-3], [1.0], [1.0], [100.0]], dtype=torch.float64)
    candidates = np.array([[0, 1], [1, 2], [2, 3], [0, 4], [4, 2]])
    scores, _ = score_candidates(Z, candidates, None)
    assert_allclose(scores.numpy(), [1.0, 1.0, 0.0, 1.0, 1.0])
    pairs = sample_pairs(Z, 40_000, rng, targets=None)
    near = np.mean(np.isin(pairs, [0, 1]).all(axis=1))          # (0, 1) and (1, 0): 2 of the 18 distinct pairs
    assert near == pytest.approx(2 / 18, abs=0.01)


def test_classification_pairs_always_have_different_labels(digits):
    clf = dm.SWIMClassifier(layer_widths=(300, 200), random_state=0).fit(digits.X_train, digits.y_train)
    for layer_pairs in clf.pairs_:
        labels = digits.y_train[layer_pairs]
        assert np.all(labels[:, 0] != labels[:, 1])


def test_duplicates_with_conflicting_labels_do_not_collapse_the_layer(rng):
    # docs/maths.md §2: the reference clips zero distances and then puts every neuron on such a pair.
    X = rng.normal(size=(200, 5))
    y = (X[:, 0] > 0).astype(int)
    duplicates = X[:60]
    X_all = np.vstack([X, duplicates])
    y_all = np.concatenate([y, 1 - y[:60]])            # same inputs, opposite labels
    for seed in range(10):
        clf = dm.SWIMClassifier(layer_widths=(100,), random_state=seed, dtype="float64").fit(X_all, y_all)
        pairs = clf.pairs_[0]
        assert np.all(np.linalg.norm(X_all[pairs[:, 0]] - X_all[pairs[:, 1]], axis=1) > 0)
        weight_norms = np.linalg.norm(clf.network_.weights[0], axis=1)
        assert np.all(weight_norms > 0)
        assert len(np.unique(pairs, axis=0)) > 50            # not one pair repeated
        assert clf.score(X, y) > 0.9


def test_constant_target_falls_back_to_uniform_with_a_warning(rng):
    Z = torch.tensor(rng.normal(size=(20, 2)))
    n_draws = 400_000
    with pytest.warns(DualmapWarning, match="uniform"):
        pairs = sample_pairs(Z, n_draws, rng, targets=torch.ones(20, 1, dtype=torch.float64))
    # uniform over the 380 ordered pairs of distinct points (not e.g. one pair repeated, nor weighted by distance)
    assert np.all(pairs[:, 0] != pairs[:, 1])
    counts = np.zeros((20, 20))
    np.add.at(counts, (pairs[:, 0], pairs[:, 1]), 1)
    frequencies = counts[~np.eye(20, dtype=bool)] / n_draws
    assert_allclose(frequencies, 1 / 380, atol=0.3 / 380)       # ± 30 %: about 7 standard deviations


def test_all_points_identical_is_an_error(rng):
    Z = torch.ones(10, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="distinct"):
        sample_pairs(Z, 5, rng, targets=None)


def test_coincidence_tolerance_is_100_eps_times_the_largest_magnitude():
    import torch

    from dualmap.swim.density import coincidence_tolerance

    eps32, eps64 = torch.finfo(torch.float32).eps, torch.finfo(torch.float64).eps
    negative = torch.tensor([[0.5, -7.0], [3.0, 2.0]], dtype=torch.float64)      # the largest |z| is negative
    assert coincidence_tolerance(negative) == pytest.approx(100 * eps64 * 7.0, rel=1e-15)
    assert coincidence_tolerance(torch.tensor([[0.1, -0.2]])) == pytest.approx(100 * eps32, rel=1e-7)   # max(1, ·)
    assert coincidence_tolerance(torch.empty((0, 3))) == pytest.approx(100 * eps32)
