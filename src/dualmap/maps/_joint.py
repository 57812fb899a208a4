"""Joint selection: choose, among each neuron's best-matching pairs, the ones that together let a linear
map reproduce what the next trained layer sees.

For hidden layer ``l`` with converted features ``F`` (n_eval, width) — column ``k`` from neuron ``k``'s
chosen pair — and target ``Y`` (n_eval, m) — the trained pre-activations of layer ``l+1`` (the outputs
for the last hidden layer) — the objective is the ridge residual

.. math:: \\mathrm{RSS}(F) = \\min_{A, c} \\lVert F A + \\mathbf 1 c^\\top - Y \\rVert_F^2 + \\lambda \\lVert A\\rVert_F^2 .

Coordinate descent: for each neuron ``k`` in turn, remove column ``k`` and put back the candidate ``f`` (of
``k``'s own short list) with the largest decrease of the RSS,

.. math:: \\mathrm{gain}(f) = \\frac{\\lVert R_Y^\\top r_f \\rVert^2}{\\lVert r_f \\rVert^2 + \\lambda},

where ``r_f`` and ``R_Y`` are the residuals of ``f`` and ``Y`` after projection on the other columns.
The inverse Gram matrix is kept up to date by rank-one down- and up-dates, so a sweep over all neurons
costs O(width · (width² + n_eval · width · n_list)).
"""

from __future__ import annotations

import torch

__all__ = ["joint_select"]


def joint_select(features: torch.Tensor, target: torch.Tensor, *, locked: torch.Tensor | None = None,
                 ridge: float = 1e-6, sweeps: int = 2, tolerance: float = 1e-9) -> torch.Tensor:
    """Coordinate descent over short lists of candidate features (module docstring).

    Parameters
    ----------
    features : torch.Tensor of shape (width, n_list, n_eval)
        Candidate activation vectors of every neuron; candidate 0 is the current choice.
    target : torch.Tensor of shape (n_eval, m)
    locked : torch.Tensor of shape (width,), bool, optional
        Neurons that keep candidate 0 (e.g. those it reproduces exactly).
    ridge : float
        λ relative to the mean squared feature norm.
    tolerance : float
        Relative RSS decrease needed to switch (ties keep the current, best-matching candidate).

    Returns
    -------
    torch.Tensor of shape (width,), int64 — the chosen candidate of every neuron.
    """
    features = features - features.mean(dim=-1, keepdim=True)          # the free bias absorbs the means
    target = target - target.mean(dim=0, keepdim=True)
    width = features.shape[0]
    choice = torch.zeros(width, dtype=torch.int64, device=features.device)
    F = features[:, 0, :].T.clone()                                      # (n_eval, width)
    lam = ridge * float((F * F).sum() / width)
    eye = torch.eye(width, dtype=F.dtype, device=F.device)
    inverse = torch.linalg.inv(F.T @ F + lam * eye)
    target_norm = float((target * target).sum())
    all_columns = torch.arange(width, device=F.device)
    for _ in range(sweeps):
        changed = 0
        for k in range(width):
            if locked is not None and bool(locked[k]):
                continue
            others = torch.cat([all_columns[:k], all_columns[k + 1:]])
            # inverse Gram without column k (block downdate)
            m_kk = inverse[k, k]
            m_ok = inverse[others, k]
            inv_o = inverse[others[:, None], others] - torch.outer(m_ok, m_ok) / m_kk
            F_o = F[:, others]
            projection_y = F_o @ (inv_o @ (F_o.T @ target))
            residual_y = target - projection_y                                          # (n_eval, m)
            candidates = features[k].T                                                  # (n_eval, n_list)
            cross = F_o.T @ candidates                                                  # (width-1, n_list)
            residual_c = candidates - F_o @ (inv_o @ cross)
            gain = ((residual_y.T @ residual_c) ** 2).sum(dim=0) / ((residual_c**2).sum(dim=0) + lam)
            best = int(torch.argmax(gain))
            if gain[best] - gain[int(choice[k])] <= tolerance * target_norm:
                best = int(choice[k])
            if best != int(choice[k]):
                changed += 1
            choice[k] = best
            column = candidates[:, best]
            F[:, k] = column
            # inverse Gram with the new column k (bordering)
            b = cross[:, best]
            inv_b = inv_o @ b
            schur = float(column @ column + lam - b @ inv_b)
            inverse[others[:, None], others] = inv_o + torch.outer(inv_b, inv_b) / schur
            inverse[others, k] = -inv_b / schur
            inverse[k, others] = -inv_b / schur
            inverse[k, k] = 1.0 / schur
        if changed == 0:
            break
    return choice
