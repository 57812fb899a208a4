"""One pair per neuron: the methods that choose every neuron's single pair (``"joint"``, ``"function"``,
``"assignment"``, ``"geometric"``, ``"thesis"``), and the candidate machinery every method shares.

Notation (docs/maths.md §2): a trained neuron has weight ``w`` and bias ``b`` in the representation ``Z``
(n, d); its pre-activation is ``a(z) = ⟨w, z⟩ + b``. The SWIM neuron of ``(z1, z2)`` has pre-activation
``-s2`` at ``z1`` and ``s1 - s2`` at ``z2``.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .._backend import to_numpy
from .._neighbours import nearest_points
from ..swim.construction import swim_constants
from ._joint import joint_select
from ._scores import (
    candidate_activations,
    candidate_similarity,
    eval_gram,
    geometric_error,
    point_groups,
)
from ._search import (
    best_direction_partners,
    level_set_anchors,
    thesis_candidates,
)

__all__ = ["candidate_pairs", "match_single", "neighbour_moves", "JOINT_LOCK"]

#: "joint" leaves a neuron on its best-matching pair when that pair already reproduces it to this activation
#: cosine: the joint step trades neuron-wise fidelity for the next layer's reconstruction only where the
#: data offer no pair that reproduces the neuron.
JOINT_LOCK = 0.999


def neighbour_moves(Z_search: torch.Tensor, neighbors: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Every pair with one of its points moved to one of that point's nearest data points.

    ``neighbors`` (n, n_neighbors), −1 where not yet known, is filled on demand (the points of ``pairs``
    only: a full kNN graph costs n² d) and shared between calls on the same representation.

    Parameters
    ----------
    pairs : torch.Tensor of shape (width, q, 2)

    Returns
    -------
    torch.Tensor of shape (width, q · 2 · n_neighbors, 2)
    """
    n_neighbors = neighbors.shape[1]
    needed = torch.unique(pairs)
    needed = needed[neighbors[needed, 0] < 0]
    if len(needed):
        found = nearest_points(Z_search, Z_search[needed], n_neighbors + 1).to(neighbors.device)
        neighbors[needed] = torch.where(found[:, :1] == needed[:, None], found[:, 1:], found[:, :-1])
    first, second = pairs[..., 0:1], pairs[..., 1:2]                                   # (width, q, 1)
    moved_first = torch.stack([neighbors[pairs[..., 0]], second.expand(-1, -1, n_neighbors)], dim=-1)
    moved_second = torch.stack([first.expand(-1, -1, n_neighbors), neighbors[pairs[..., 1]]], dim=-1)
    return torch.cat([moved_first, moved_second], dim=2).reshape(len(pairs), -1, 2)


def candidate_pairs(Z: torch.Tensor, pre: torch.Tensor, weight: torch.Tensor, activation: str,
                    n_anchors: int, n_partners: int) -> torch.Tensor:
    """The geometric candidate pool of every neuron: shape (width, n_candidates, 2), int64 (see module docstring)."""
    s1, s2 = swim_constants(activation)
    norm_sq = (weight * weight).sum(dim=1)
    width = weight.shape[0]
    pools = []
    if activation == "relu":
        anchors = level_set_anchors(pre, -s2, n_anchors)                                  # (width, m)
        partners = best_direction_partners(Z, anchors, weight / norm_sq.sqrt()[:, None], n_partners)
        first = anchors[:, :, None].expand_as(partners)
        pools.append(torch.stack([first, partners], dim=-1).reshape(width, -1, 2))
    else:
        step = s1 * weight / norm_sq[:, None]                                              # ideal Δ
        for level, sign in ((-s2, 1.0), (s1 - s2, -1.0)):                       # anchor = first / second point
            anchors = level_set_anchors(pre, level, n_anchors)
            queries = Z[anchors] + sign * step[:, None, :]                                 # (width, m, d)
            partners = nearest_points(Z, queries.reshape(-1, Z.shape[1]), n_partners).to(Z.device)
            partners = partners.reshape(width, anchors.shape[1], -1)
            anchor = anchors[:, :, None].expand_as(partners)
            pair = (anchor, partners) if sign > 0 else (partners, anchor)
            pools.append(torch.stack(pair, dim=-1).reshape(width, -1, 2))
    return torch.cat(pools, dim=1)


def match_single(method, Z, Z_search, pre, weight, bias, activation, trained_activation, eval_rows, n_anchors,
                 n_partners, ratio, max_candidates, warm, refine_rounds=0, n_neighbors=16, n_list=16,
                 joint_target=None, warm_margin=0.0, fixed=None, gram=None, neighbors=None, groups=None):
    """Choose one pair per neuron; return ``(pairs (width, 2), match score (width,))``.

    ``Z_search`` (possibly float32) is used to find candidates, ``Z`` (float64) to choose among them.
    """
    if method == "thesis":
        pairs, error = thesis_candidates(Z, weight, bias, ratio, max_candidates)
        return pairs, -error
    if groups is None:
        groups = point_groups(Z)
    candidates = candidate_pairs(Z_search, pre.to(Z_search.dtype), weight.to(Z_search.dtype), activation,
                                 n_anchors, n_partners)
    if warm is not None:
        candidates = torch.cat([candidates, warm[:, None, :]], dim=1)
    # a pair of coincident points defines no neuron: give it the worst score
    coincident = groups[candidates[..., 0]] == groups[candidates[..., 1]]
    if method == "geometric":
        error = geometric_error(Z, pre, torch.linalg.vector_norm(weight, dim=1), candidates, activation)
        error = torch.where(coincident, torch.inf, error)
        best = error.argmin(dim=1)
        rows = torch.arange(len(candidates), device=Z.device)
        return candidates[rows, best], -error[rows, best]
    expected = candidates.shape[1] + 2 * n_neighbors * refine_rounds + (n_list + 2 if method == "joint" else 0)
    if gram is None:
        gram = eval_gram(Z, eval_rows, len(candidates) * expected)
    similarity = candidate_similarity(Z, eval_rows, trained_activation[eval_rows], candidates, activation, gram=gram)
    similarity = torch.where(coincident, -torch.inf, similarity)
    rows = torch.arange(len(candidates), device=Z.device)
    if method == "assignment":
        return _assign(candidates, similarity)
    best = similarity.argmax(dim=1)
    pairs, match = candidates[rows, best], similarity[rows, best]
    margin = 0.0
    if warm is not None:   # hysteresis: keep the warm pair unless another is clearly better
        margin = warm_margin
        exact = 1.0 - 1e-9
        keep = (similarity[:, -1] >= match - margin) & ((match < exact) | (similarity[:, -1] >= exact))
        pairs = torch.where(keep[:, None], warm, pairs)
        match = torch.where(keep, similarity[:, -1], match)
    if refine_rounds:
        pairs, match = _refine(Z, Z_search, pairs, match, trained_activation[eval_rows], eval_rows, activation,
                               refine_rounds, n_neighbors, margin, gram, neighbors, groups)
    if method == "function":
        return pairs, match
    # joint: the refined pair and the n_list next best-matching candidates of every neuron
    top_similarity, top = torch.topk(similarity, min(n_list, similarity.shape[1]), dim=1)
    short = torch.cat([pairs[:, None, :], candidates[rows[:, None], top]], dim=1)          # (width, 1 + n_list, 2)
    short_similarity = torch.cat([match[:, None], top_similarity], dim=1)
    if warm is not None:   # the previous choice stays available (the descent starts from the kept/refined pair)
        short = torch.cat([short[:, :1], warm[:, None, :], short[:, 1:]], dim=1)
        short_similarity = torch.cat([short_similarity[:, :1], similarity[:, -1:], short_similarity[:, 1:]], dim=1)
    Z_eval = Z[eval_rows]
    features = torch.empty((*short.shape[:2], len(eval_rows)), dtype=Z.dtype, device=Z.device)   # (width, L, S)
    for start in range(0, len(short), 64):   # chunks of neurons bound the temporaries
        features[start:start + 64] = candidate_activations(Z, Z_eval, short[start:start + 64], activation, gram)
    features = torch.where(torch.isfinite(short_similarity)[..., None], features, 0.0)
    tolerance = 1e-9 if warm is None else margin / (len(pairs) + (0 if fixed is None else len(fixed)))
    exact = short_similarity[:, 0] >= JOINT_LOCK                                           # (near-)exact matches stay
    choice = joint_select(features, joint_target, locked=exact, fixed=fixed, tolerance=tolerance, copy=False)
    return short[rows, choice], short_similarity[rows, choice]


def _refine(Z, Z_search, pairs, match, trained_eval, eval_rows, activation, rounds, n_neighbors, margin=0.0,
            gram=None, neighbors=None, groups=None):
    """Local search in pair space: replace either point of each neuron's pair by one of its ``n_neighbors``
    nearest data points (:func:`neighbour_moves`) when that raises the activation similarity by more than
    ``margin``; ``rounds`` sweeps, all neurons at once."""
    if neighbors is None:
        neighbors = torch.full((len(Z), n_neighbors), -1, dtype=torch.int64, device=Z.device)
    if groups is None:
        groups = point_groups(Z)
    rows = torch.arange(len(pairs), device=Z.device)
    for _ in range(rounds):
        candidates = neighbour_moves(Z_search, neighbors, pairs[:, None, :])              # (width, 2k, 2)
        coincident = groups[candidates[..., 0]] == groups[candidates[..., 1]]
        similarity = candidate_similarity(Z, eval_rows, trained_eval, candidates, activation, gram=gram)
        similarity = torch.where(coincident, -torch.inf, similarity)
        best = similarity.argmax(dim=1)
        improved = similarity[rows, best] > match + margin
        if not bool(improved.any()):
            break
        pairs = torch.where(improved[:, None], candidates[rows, best], pairs)
        match = torch.where(improved, similarity[rows, best], match)
    return pairs, match


def _assign(candidates: torch.Tensor, similarity: torch.Tensor):
    """Distinct pairs for all neurons maximising the summed similarity (linear assignment)."""
    width, n_candidates, _ = candidates.shape
    flat = to_numpy(candidates.reshape(-1, 2))
    unique, inverse = np.unique(flat, axis=0, return_inverse=True)
    inverse = inverse.reshape(width, n_candidates)
    scores = to_numpy(similarity).astype(np.float64)
    if len(unique) < width:   # not enough distinct pairs: fall back to each neuron's best
        best = scores.argmax(axis=1)
        rows = np.arange(width)
        return candidates[rows, best], similarity[rows, best]
    cost = np.full((width, len(unique)), 4.0)          # cosine ≥ −1, so 1 − cosine ≤ 2 < 4 for real candidates
    rows = np.repeat(np.arange(width), n_candidates)
    finite = np.isfinite(scores.reshape(-1))
    np.minimum.at(cost, (rows[finite], inverse.reshape(-1)[finite]), 1.0 - scores.reshape(-1)[finite])
    assigned_rows, assigned = linear_sum_assignment(cost)
    order = np.argsort(assigned_rows)
    chosen = unique[assigned[order]]
    match = 1.0 - cost[assigned_rows[order], assigned[order]]
    device = candidates.device
    return torch.as_tensor(chosen, device=device), torch.as_tensor(match, device=device, dtype=similarity.dtype)
