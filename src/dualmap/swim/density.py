"""Where SWIM puts its neurons: candidate pairs, their scores, and the draw.

A *candidate* is an ordered pair of distinct row indices ``(i1, i2)``, drawn uniformly. The SWIM score
of a candidate in the representation ``Z`` (the inputs for layer 1, their images under the earlier
layers for deeper layers) is

.. math::

    g(i_1, i_2) = \\frac{\\max_k |y_k(x_{i_2}) - y_k(x_{i_1})|}{\\lVert z_{i_2} - z_{i_1} \\rVert},

with ``y`` the original targets (one-hot labels for classification, so the numerator is 1 when the
labels differ and 0 otherwise). Pairs whose two points coincide in ``Z`` are never drawn: their score
is 0 (unlike the reference package, which clips the distance and so lets them dominate).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .._backend import to_numpy

__all__ = ["SAMPLERS", "coincidence_tolerance", "draw_candidates", "score_candidates", "sample_pairs",
           "DualmapWarning"]

#: Pair samplers: SWIM's gradient-weighted density, uniform pairs, data-agnostic random features.
SAMPLERS = ("swim", "uniform", "random")


class DualmapWarning(UserWarning):
    """A dualmap routine had to deviate from what was asked (the message says how)."""


def draw_candidates(n_points: int, n_candidates: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ordered pairs of distinct indices uniformly, with replacement.

    ``i1 ~ U{0..N-1}``, ``δ ~ U{1..N-1}``, ``i2 = (i1 + δ) mod N``: every ordered pair of distinct
    indices has probability ``1/(N(N-1))``.

    Returns
    -------
    ndarray of shape (n_candidates, 2), int64
    """
    if n_points < 2:
        raise ValueError(f"need at least 2 points to form a pair; got {n_points}")
    first = rng.integers(0, n_points, size=n_candidates)
    offset = rng.integers(1, n_points, size=n_candidates)
    return np.stack([first, (first + offset) % n_points], axis=1)


def coincidence_tolerance(Z: torch.Tensor) -> float:
    """Distance below which two rows of ``Z`` count as the same point: ``100·eps·max(1, max|Z|)``."""
    if not Z.numel():
        return 100.0 * torch.finfo(Z.dtype).eps
    # max |Z| = max(−min Z, max Z): one pass, no copy (the ∞-norm reduction took 10 ms on 10k × 784, this 0.5 ms)
    low, high = torch.aminmax(Z)
    scale = max(1.0, -float(low), float(high))
    return 100.0 * torch.finfo(Z.dtype).eps * scale


def score_candidates(Z: torch.Tensor, candidates: np.ndarray, targets: torch.Tensor | None,
                     *, chunk_size: int = 1024, tolerance: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Score candidate pairs with the SWIM density (module docstring); all candidates batched.

    Parameters
    ----------
    Z : torch.Tensor of shape (n_points, d)
        The representation in which distances are measured.
    candidates : ndarray of shape (n_candidates, 2)
    targets : torch.Tensor of shape (n_points, n_outputs) or None
        None scores every non-coincident pair 1 (uniform pairs).
    chunk_size : int, default=1024
        Candidates per block: the block's two gathered rows sit in two ``chunk_size × d`` buffers reused by
        every block (1024 rows of 784 floats stay in cache; measured fastest among 512–8192).
    tolerance : float, optional
        Coincidence distance; default :func:`coincidence_tolerance` of ``Z``.

    Returns
    -------
    scores : torch.Tensor of shape (n_candidates,), float64, 0 for coincident pairs
    distances : torch.Tensor of shape (n_candidates,), float64
    """
    index = torch.as_tensor(candidates, device=Z.device)
    tolerance = coincidence_tolerance(Z) if tolerance is None else tolerance
    scores, distances = [], []
    rows = min(chunk_size, len(candidates))
    # the two gathered blocks live in two buffers reused by every chunk, the difference formed in place:
    # ‖z_{i1} − z_{i2}‖ = ‖z_{i2} − z_{i1}‖ exactly, in a third of the time of fresh tensors per chunk
    first_rows, second_rows = (torch.empty((rows, Z.shape[1]), dtype=Z.dtype, device=Z.device) for _ in range(2))
    for start in range(0, len(candidates), chunk_size):
        i1, i2 = index[start:start + chunk_size, 0], index[start:start + chunk_size, 1]
        difference = torch.index_select(Z, 0, i1, out=first_rows[:len(i1)])
        difference.sub_(torch.index_select(Z, 0, i2, out=second_rows[:len(i2)]))
        distance = torch.linalg.vector_norm(difference, dim=1).double()
        valid = distance > tolerance
        if targets is None:             # uniform pairs: every non-coincident pair the same weight
            scores.append(valid.double())
        else:
            numerator = (targets[i2] - targets[i1]).abs().amax(dim=1).double()
            scores.append(torch.where(valid, numerator / torch.where(valid, distance, 1.0), 0.0))
        distances.append(distance)
    return torch.cat(scores), torch.cat(distances)


def sample_pairs(Z: torch.Tensor, width: int, rng: np.random.Generator, *, targets: torch.Tensor | None,
                 candidates_per_point: int = 1, layer: int = 0) -> np.ndarray:
    """Draw ``width`` ordered pairs with probability proportional to their score.

    ``M = N · max(1, ⌈width/N⌉) · candidates_per_point`` candidates are drawn uniformly
    (:func:`draw_candidates`), scored (:func:`score_candidates`, ``targets=None`` for uniform pairs),
    and ``width`` of them are drawn with replacement proportionally to the score. If every candidate
    scores 0 although some are non-coincident (e.g. a constant target), the draw falls back to uniform
    non-coincident pairs with a :class:`DualmapWarning`.

    Returns
    -------
    ndarray of shape (width, 2), int64 — row indices ``(i1, i2)`` into ``Z``.

    Raises
    ------
    ValueError
        If no candidate pair has two distinct points (fewer than 2 distinct rows in ``Z``).
    """
    n_points = Z.shape[0]
    n_candidates = n_points * max(1, -(-width // n_points)) * candidates_per_point
    candidates = draw_candidates(n_points, n_candidates, rng)
    tolerance = coincidence_tolerance(Z)
    scores, distances = score_candidates(Z, candidates, targets, tolerance=tolerance)
    scores = to_numpy(scores)
    valid = to_numpy(distances) > tolerance
    if not valid.any():
        raise ValueError(
            f"layer {layer}: all {n_candidates} candidate pairs join coincident points; the layer input has "
            f"fewer than 2 distinct points (or almost all points are duplicates)"
        )
    total = scores.sum()
    if not np.isfinite(total) or total <= 0:
        if targets is not None:
            warnings.warn(
                f"layer {layer}: every candidate pair has the same target (score 0); drawing uniform pairs instead",
                DualmapWarning, stacklevel=3,
            )
        probabilities = valid / valid.sum()
    else:
        probabilities = scores / total
    chosen = rng.choice(n_candidates, size=width, replace=True, p=probabilities)
    return candidates[chosen]
