"""How well a SWIM neuron reproduces a trained neuron: geometric error, activation similarity, scores.

All functions work on every neuron (and every candidate pair of every neuron) at once.
"""

from __future__ import annotations

import numpy as np
import torch

from .._backend import to_numpy
from ..network import activation_function
from ..swim.construction import swim_constants

__all__ = ["point_groups", "geometric_error", "eval_gram", "candidate_activations", "candidate_similarity",
           "neuron_scores", "column_cosine", "pair_distance_squared"]


def point_groups(Z: torch.Tensor) -> torch.Tensor:
    """Group id of every row of ``Z``; equal rows (equal in every coordinate) share an id.

    ``groups[i] == groups[j]`` ⇔ ``z_i == z_j``: the O(1) test of a coincident pair (a pair that defines no
    neuron), instead of an O(d) distance per candidate. Rows are grouped by a random projection ``Z r``
    (O(n) memory), and every group of two or more rows is then checked coordinate by coordinate and split
    if its rows differ, so the grouping is exact.
    """
    rows = to_numpy(Z)
    direction = np.random.default_rng(0).standard_normal(rows.shape[1])
    _, groups = np.unique(rows @ direction, return_inverse=True)
    groups = groups.reshape(-1)
    order = np.argsort(groups, kind="stable")
    boundaries = np.flatnonzero(np.diff(groups[order])) + 1
    next_id = int(groups.max()) + 1 if len(groups) else 0
    for members in np.split(order, boundaries):
        if len(members) < 2:
            continue
        _, exact = np.unique(rows[members] + 0.0, axis=0, return_inverse=True)   # + 0.0: −0.0 equals 0.0
        exact = exact.reshape(-1)
        for sub in range(1, int(exact.max()) + 1):       # sub-group 0 keeps the id, the others get new ones
            groups[members[exact == sub]] = next_id
            next_id += 1
    return torch.as_tensor(groups, dtype=torch.int64, device=Z.device)


def pair_distance_squared(Z: torch.Tensor, first: torch.Tensor, second: torch.Tensor,
                          chunk: int = 1 << 16) -> torch.Tensor:
    """``‖z_second − z_first‖²`` for index tensors of any (equal) shape, in chunks of rows."""
    flat_first, flat_second = first.reshape(-1), second.reshape(-1)
    out = torch.empty(flat_first.shape, dtype=Z.dtype, device=Z.device)
    for start in range(0, len(flat_first), chunk):
        delta = Z[flat_second[start:start + chunk]] - Z[flat_first[start:start + chunk]]
        out[start:start + chunk] = (delta * delta).sum(dim=1)
    return out.reshape(first.shape)


def geometric_error(Z: torch.Tensor, pre_activation: torch.Tensor, weight_norm: torch.Tensor,
                    candidates: torch.Tensor, activation: str) -> torch.Tensor:
    """Dimensionless distance between each trained neuron and the SWIM neurons of its candidate pairs.

    With ``a_i = a(z_i)``, ``a_j = a(z_j)`` the trained pre-activations at the pair's points, ``Δ = z_j − z_i``
    and ``‖w‖`` the trained weight norm:

    * tanh (no scale freedom): how far each point is from where the SWIM construction needs it, in units
      of the trained pre-activation:
      :math:`(a_i + s_2)^2 + \\lVert w\\rVert^2 \\lVert \\Delta - s_1 w/\\lVert w\\rVert^2 \\rVert^2
      = (a_i + s_2)^2 + \\lVert w\\rVert^2\\lVert\\Delta\\rVert^2 - 2 s_1 (a_j - a_i) + s_1^2`;
    * ReLU (modulo scale): :math:`2(1 - \\cos\\theta) + (a_i / (\\lVert w\\rVert\\lVert\\Delta\\rVert))^2` with
      :math:`\\cos\\theta = (a_j - a_i)/(\\lVert w\\rVert\\lVert\\Delta\\rVert)` — the angle between ``Δ``
      and ``w`` and the distance of ``z_i`` from the hyperplane relative to the pair's length.

    Parameters
    ----------
    Z : torch.Tensor of shape (n, d)
    pre_activation : torch.Tensor of shape (n, width)
        ``a(z)`` for every point and trained neuron.
    weight_norm : torch.Tensor of shape (width,)
    candidates : torch.Tensor of shape (width, n_candidates, 2), int64

    Returns
    -------
    torch.Tensor of shape (width, n_candidates); 0 exactly when the pair reproduces the neuron.
    """
    s1, s2 = swim_constants(activation)
    first, second = candidates[..., 0], candidates[..., 1]
    neuron = torch.arange(candidates.shape[0], device=Z.device)[:, None]
    a_i, a_j = pre_activation[first, neuron], pre_activation[second, neuron]
    delta_sq = pair_distance_squared(Z, first, second)
    norm = weight_norm[:, None]
    if activation == "tanh":
        return (a_i + s2) ** 2 + norm**2 * delta_sq - 2.0 * s1 * (a_j - a_i) + s1**2
    length = norm * delta_sq.clamp_min(torch.finfo(Z.dtype).tiny).sqrt()
    return 2.0 * (1.0 - (a_j - a_i) / length) + (a_i / length) ** 2


def column_cosine(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Cosine between matching columns of ``A`` and ``B`` (n, width); 0 where a column is all zero."""
    dot = (A * B).sum(dim=0)
    norms = torch.linalg.vector_norm(A, dim=0) * torch.linalg.vector_norm(B, dim=0)
    return torch.where(norms > 0, dot / norms.clamp_min(torch.finfo(A.dtype).tiny), 0.0)


def eval_gram(Z: torch.Tensor, eval_rows: torch.Tensor, n_candidate_evaluations: int, *,
              max_bytes: int = 1 << 29) -> torch.Tensor | None:
    """``G = Z Z_evalᵀ`` (n, n_eval) when it makes candidate activations cheaper, else None.

    With ``G``, a candidate's activations cost O(n_eval) instead of O(n_eval · d)
    (:func:`candidate_activations`); computing ``G`` costs O(n · n_eval · d). Worth it when the layer
    will evaluate more candidates than there are points, the dimension is not tiny, and ``G`` fits in
    ``max_bytes``.
    """
    n, d = Z.shape
    if d < 16 or n_candidate_evaluations < n or n * len(eval_rows) * Z.element_size() > max_bytes:
        return None
    return Z @ Z[eval_rows].T


def candidate_activations(Z: torch.Tensor, Z_eval: torch.Tensor, candidates: torch.Tensor,
                          activation: str, gram: torch.Tensor | None = None,
                          steepness: torch.Tensor | None = None) -> torch.Tensor:
    """Activations of the SWIM neurons of candidate pairs at evaluation points, optionally steepened.

    For pair ``(i, j)`` the pre-activation at ``z_s`` is :math:`\\gamma\\,(s_1 \\langle \\Delta, z_s - z_i\\rangle /
    \\lVert\\Delta\\rVert^2 - s_2)` with :math:`\\Delta = z_j - z_i` (:func:`~dualmap.swim.swim_neurons`) and
    steepness ``γ`` (1, the strict SWIM neuron, unless ``steepness`` is given).
    With ``gram`` (:func:`eval_gram`), :math:`\\langle \\Delta, z_s\\rangle = G_{js} - G_{is}` is read off it.

    Parameters
    ----------
    Z : torch.Tensor of shape (n, d)
    Z_eval : torch.Tensor of shape (n_eval, d)
    candidates : torch.Tensor of shape (..., 2), int64 rows of ``Z``
    gram : torch.Tensor of shape (n, n_eval), optional
        ``Z @ Z_eval.T``.
    steepness : torch.Tensor of shape candidates.shape[:-1], optional

    Returns
    -------
    torch.Tensor of shape (..., n_eval)
    """
    s1, s2 = swim_constants(activation)
    shape = candidates.shape[:-1]
    first, second = candidates[..., 0].reshape(-1), candidates[..., 1].reshape(-1)
    z1 = Z[first]
    delta = Z[second] - z1
    delta_sq = (delta * delta).sum(dim=-1).clamp_min(torch.finfo(Z.dtype).tiny)
    # pre = scale · ⟨Δ, z_s⟩ + shift, with scale = γ s1/‖Δ‖² and shift = −scale ⟨Δ, z_i⟩ − γ s2: one output
    # buffer, updated in place (the (pairs, n_eval) block is the largest array of a map; every extra
    # temporary of it costs a pass over memory)
    scale = s1 / delta_sq
    shift = -(delta * z1).sum(dim=-1) * scale - s2
    if steepness is not None:
        gamma = steepness.reshape(-1).to(Z.dtype)
        scale, shift = scale * gamma, shift * gamma
    if gram is None:
        pre = delta @ Z_eval.T
    else:
        pre = gram[second].to(Z.dtype)      # a new tensor (indexing copies); a float32 Gram of a float64 Z widens
        pre -= gram[first]
    pre.mul_(scale[:, None]).add_(shift[:, None])
    if activation == "relu":
        pre.relu_()
    elif activation == "tanh":
        pre.tanh_()
    else:
        pre = activation_function(activation)(pre)
    return pre.reshape(*shape, pre.shape[-1])


def candidate_similarity(Z: torch.Tensor, eval_rows: torch.Tensor, trained_activation: torch.Tensor,
                         candidates: torch.Tensor, activation: str, *, gram: torch.Tensor | None = None,
                         chunk_neurons: int = 32) -> torch.Tensor:
    """Cosine between each trained neuron's activations and those of its candidate SWIM neurons
    (:func:`candidate_activations`) on the evaluation points — scale-free for ReLU.

    Parameters
    ----------
    Z : torch.Tensor of shape (n, d)
    eval_rows : torch.Tensor of shape (n_eval,), int64
        Rows of ``Z`` on which activations are compared.
    trained_activation : torch.Tensor of shape (n_eval, width)
    candidates : torch.Tensor of shape (width, n_candidates, 2)
    gram : torch.Tensor of shape (n, n_eval), optional
        :func:`eval_gram` of ``Z`` and ``eval_rows``.

    Returns
    -------
    torch.Tensor of shape (width, n_candidates)
    """
    Z_eval = Z[eval_rows]                                                   # (S, d)
    width, n_candidates, _ = candidates.shape
    out = torch.empty((width, n_candidates), dtype=Z.dtype, device=Z.device)
    tiny = torch.finfo(Z.dtype).tiny
    for start in range(0, width, chunk_neurons):
        act = candidate_activations(Z, Z_eval, candidates[start:start + chunk_neurons], activation, gram)  # (c, P, S)
        target = trained_activation[:, start:start + chunk_neurons].T[:, None, :]                      # (c, 1, S)
        dot = (act * target).sum(dim=-1)
        norms = torch.linalg.vector_norm(act, dim=-1) * torch.linalg.vector_norm(target, dim=-1)
        out[start:start + chunk_neurons] = torch.where(norms > 0, dot / norms.clamp_min(tiny), 0.0)
    return out


def neuron_scores(weight: torch.Tensor, bias: torch.Tensor, converted_weight: torch.Tensor,
                  converted_bias: torch.Tensor, trained_activation: torch.Tensor,
                  converted_activation: torch.Tensor, data_radius: float) -> dict[str, torch.Tensor]:
    """Per-neuron agreement between trained neurons ``(w, b)`` and converted ones ``(ŵ, b̂)``.

    * ``direction_cosine``: :math:`\\langle \\hat w, w\\rangle / (\\lVert\\hat w\\rVert\\lVert w\\rVert)`;
    * ``offset_error``: :math:`|\\hat b/\\lVert\\hat w\\rVert - b/\\lVert w\\rVert| / R`, the distance
      between the two hyperplanes' offsets in units of the data radius ``R`` (RMS distance of the
      representation's points from their mean);
    * ``norm_ratio``: :math:`\\lVert\\hat w\\rVert / \\lVert w\\rVert`;
    * ``activation_correlation``: cosine between the two neurons' activation vectors on the data.

    All are invariant under the ReLU rescaling ``(w, b) → (cw, cb)`` except ``norm_ratio``.
    """
    trained_norm = torch.linalg.vector_norm(weight, dim=1)
    converted_norm = torch.linalg.vector_norm(converted_weight, dim=1)
    tiny = torch.finfo(weight.dtype).tiny
    return {
        "direction_cosine": (weight * converted_weight).sum(dim=1) / (trained_norm * converted_norm).clamp_min(tiny),
        "offset_error": (converted_bias / converted_norm.clamp_min(tiny) - bias / trained_norm.clamp_min(tiny)).abs()
        / max(data_radius, tiny),
        "norm_ratio": converted_norm / trained_norm.clamp_min(tiny),
        "activation_correlation": column_cosine(trained_activation, converted_activation),
    }
