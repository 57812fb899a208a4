"""Candidate pairs for a layer of trained neurons, all neurons batched.

Notation (docs/maths.md, its opening): a trained neuron has weight ``w`` (d,) and bias ``b`` in the representation
``Z`` (n, d) of the data; its pre-activation at ``z`` is ``a(z) = ⟨w, z⟩ + b``. The SWIM neuron of an
ordered pair ``(z1, z2)`` has pre-activation ``-s2`` at ``z1`` and ``s1 - s2`` at ``z2``.
"""

from __future__ import annotations

import torch

from ..swim.density import coincidence_tolerance

__all__ = ["level_set_anchors", "best_direction_partners", "thesis_candidates"]


def level_set_anchors(pre_activation: torch.Tensor, level: float, n_anchors: int) -> torch.Tensor:
    """Indices of the ``n_anchors`` points whose pre-activation is closest to ``level``, per neuron.

    Parameters
    ----------
    pre_activation : torch.Tensor of shape (n_points, width)
    level : float
        ``-s2`` for the first point of a pair (0 for ReLU, −ln3/2 for tanh), ``s1 - s2`` for the second.

    Returns
    -------
    torch.Tensor of shape (width, n_anchors), int64
    """
    n_anchors = min(n_anchors, pre_activation.shape[0])
    return torch.topk((pre_activation - level).abs(), n_anchors, dim=0, largest=False).indices.T


def best_direction_partners(Z: torch.Tensor, anchors: torch.Tensor, directions: torch.Tensor, k: int, *,
                            chunk_size: int = 2048) -> torch.Tensor:
    """For every anchor ``z_a`` of neuron ``j``, the ``k`` points ``z`` with the largest cosine between
    ``z - z_a`` and the unit normal ``u_j`` (the best SWIM-ReLU partners: direction only, any distance).

    .. math:: \\cos(z) = \\frac{\\langle z - z_a, u_j\\rangle}{\\lVert z - z_a \\rVert}

    computed exactly for all points by matrix products (chunked over points); points that coincide with
    the anchor are excluded.

    Parameters
    ----------
    Z : torch.Tensor of shape (n_points, d)
    anchors : torch.Tensor of shape (width, n_anchors), int64
    directions : torch.Tensor of shape (width, d)
        Unit normals ``u_j``.

    Returns
    -------
    torch.Tensor of shape (width, n_anchors, k), int64
    """
    width, n_anchors = anchors.shape
    k = min(k, Z.shape[0] - 1)
    flat = anchors.reshape(-1)
    neuron = torch.arange(width, device=Z.device).repeat_interleave(n_anchors)
    anchor_points = Z[flat]                                           # (Q, d)
    anchor_along = (anchor_points * directions[neuron]).sum(dim=1)    # ⟨z_a, u⟩
    anchor_squared = (anchor_points * anchor_points).sum(dim=1)
    squared_norms = (Z * Z).sum(dim=1)
    tolerance2 = coincidence_tolerance(Z) ** 2
    best_value = torch.full((len(flat), k), -torch.inf, dtype=Z.dtype, device=Z.device)
    best_index = torch.zeros((len(flat), k), dtype=torch.int64, device=Z.device)
    for start in range(0, Z.shape[0], chunk_size):
        block = Z[start:start + chunk_size]
        # (Q, n_c) blocks updated in place: ‖z − z_a‖², then the cosine; two temporaries per chunk
        squared = anchor_points @ block.T
        squared.mul_(-2.0).add_(squared_norms[start:start + chunk_size][None, :]).add_(anchor_squared[:, None])
        coincide = squared <= tolerance2
        cosine = (directions @ block.T)[neuron]                             # ⟨z, u⟩
        cosine.sub_(anchor_along[:, None]).mul_(squared.clamp_(min=tolerance2).rsqrt_())
        cosine.masked_fill_(coincide, -torch.inf)
        chunk_value, chunk_position = torch.topk(cosine, min(k, len(block)), dim=1)
        values = torch.cat([best_value, chunk_value], dim=1)
        indices = torch.cat([best_index, chunk_position + start], dim=1)
        best_value, position = torch.topk(values, k, dim=1)
        best_index = torch.gather(indices, 1, position)
    return best_index.reshape(width, n_anchors, k)


def thesis_candidates(Z: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, ratio: float,
                      max_candidates: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The 2023 thesis's pair search (docs/maths.md §5.4, method ``thesis``), all neurons batched.

    Stage A: the candidates for ``x1`` are the points with ``|a(x)| ≤ r · max_x |a(x)|`` (plus the point
    of smallest ``|a|``); of these the ``max_candidates`` closest to the hyperplane are kept (a cap the
    thesis did not need in 2-D). Stage B ("weight norm preservation"): for each candidate,
    ``x2 = argmin_{x ≠ x1} ‖(x − x1)/‖x − x1‖² − w‖``; the pair with the smallest error wins.

    Returns
    -------
    pairs : torch.Tensor of shape (width, 2), int64
    errors : torch.Tensor of shape (width,) — ``‖ŵ − w‖`` of the chosen pairs.
    """
    pre = Z @ weight.T + bias                                            # (n, width)
    magnitude = pre.abs()
    n_keep = min(max_candidates, Z.shape[0])
    order = torch.topk(magnitude, n_keep, dim=0, largest=False)        # nearest to the hyperplane first
    threshold = ratio * magnitude.max(dim=0).values
    admitted = order.values <= threshold[None, :]
    admitted[0] = True                                                  # the nearest point is always a candidate
    candidates = order.indices.T                                        # (width, n_keep)
    width = weight.shape[0]
    squared_norms = (Z * Z).sum(dim=1)
    weight_sq = (weight * weight).sum(dim=1)
    tolerance2 = coincidence_tolerance(Z) ** 2
    best_error = torch.full((width,), torch.inf, dtype=Z.dtype, device=Z.device)
    best_pair = torch.zeros((width, 2), dtype=torch.int64, device=Z.device)
    for c in range(n_keep):
        first = candidates[:, c]                                          # (width,)
        delta_sq = squared_norms[:, None] + squared_norms[first][None, :] - 2.0 * Z @ Z[first].T   # (n, width)
        along = pre - pre[first, torch.arange(width)][None, :]             # ⟨x − x1, w⟩
        valid = delta_sq > tolerance2
        delta_sq = delta_sq.clamp_min(tolerance2)
        # ‖ŵ − w‖² = 1/‖Δ‖² − 2⟨Δ, w⟩/‖Δ‖² + ‖w‖²
        error = 1.0 / delta_sq - 2.0 * along / delta_sq + weight_sq[None, :]
        error = torch.where(valid, error, torch.inf)
        value, second = error.min(dim=0)
        better = admitted[c] & (value < best_error)
        best_error = torch.where(better, value, best_error)
        best_pair[better] = torch.stack([first[better], second[better]], dim=1)
    return best_pair, best_error.clamp_min(0).sqrt()
