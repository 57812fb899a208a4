"""Joint selection: choose, among each neuron's best-matching pairs, the ones that together let a linear
map reproduce what the next trained layer sees.

For hidden layer ``l`` with converted features ``F`` (n_eval, width) — column ``k`` from neuron ``k``'s
chosen pair — and target ``Y`` (n_eval, m) — the trained pre-activations of layer ``l+1`` (the outputs
for the last hidden layer) — the objective is the ridge residual (features and target centred, so the
free bias is absorbed)

.. math:: \\mathrm{RSS}(F) = \\min_{A} \\lVert F A - Y \\rVert_F^2 + \\lambda \\lVert A\\rVert_F^2
          = \\operatorname{tr}(Y^\\top Y) - \\operatorname{tr}(T^\\top M T),
   \\qquad T = F^\\top Y,\\; M = (F^\\top F + \\lambda I)^{-1}.

Coordinate descent: for each neuron ``k`` in turn, remove column ``k`` and put back the candidate ``f`` (of
``k``'s own short list) that lowers the RSS most. With :math:`P = I - F_o (F_o^\\top F_o + \\lambda I)^{-1}
F_o^\\top` the ridge residual operator of the other columns, putting back ``f`` lowers the RSS by exactly

.. math:: \\mathrm{gain}(f) = \\frac{\\lVert Y^\\top P f \\rVert^2}{f^\\top P f + \\lambda}
          = \\frac{\\lVert Y^\\top f - T^\\top u \\rVert^2}{\\lVert f\\rVert^2 - a^\\top u + \\lambda},
   \\qquad a = F^\\top f,\\; u = M_{-k}\\, a,

where :math:`M_{-k} = M - M e_k e_k^\\top M / M_{kk}` is the inverse Gram matrix of the other columns
(padded with a zero row and column ``k``). Everything but :math:`a` lives in width-sized Gram
quantities: a step costs O(n_eval · width · n_list) for :math:`a` plus O(width² · n_list), and the inverse
is kept by rank-one down- and up-dates (recomputed from scratch at every sweep to stop rounding drift).
"""

from __future__ import annotations

import torch

__all__ = ["joint_select", "ridge_rss"]


def ridge_rss(features: torch.Tensor, target: torch.Tensor, ridge: float) -> float:
    """The objective above for one choice of columns: ``features`` (n_eval, width), ``target`` (n_eval, m),
    both centred here; ``ridge`` is λ itself."""
    F = features - features.mean(dim=0)
    Y = target - target.mean(dim=0)
    T = F.T @ Y
    M = torch.linalg.inv(F.T @ F + ridge * torch.eye(F.shape[1], dtype=F.dtype, device=F.device))
    return float((Y * Y).sum() - (T * (M @ T)).sum())


def joint_select(features: torch.Tensor, target: torch.Tensor, *, locked: torch.Tensor | None = None,
                 fixed: torch.Tensor | None = None, ridge: float = 1e-6, sweeps: int = 3,
                 tolerance: float = 1e-9, copy: bool = True) -> torch.Tensor:
    """Coordinate descent over short lists of candidate features (module docstring).

    Parameters
    ----------
    features : torch.Tensor of shape (width, n_list, n_eval)
        Candidate activation vectors of every neuron; candidate 0 is the current choice.
    target : torch.Tensor of shape (n_eval, m)
    locked : torch.Tensor of shape (width,), bool, optional
        Neurons that keep candidate 0 (e.g. those it reproduces exactly).
    fixed : torch.Tensor of shape (n_fixed, n_eval), optional
        Further columns of ``F`` that take part in the regression but are not chosen here (neurons of
        the same layer whose pair is settled).
    ridge : float
        λ relative to the mean squared norm of the starting (centred) features.
    sweeps : int
        At most this many passes over the neurons; stops early when a pass changes nothing.
    tolerance : float
        A switch must lower the RSS by more than ``tolerance · ‖Y‖²`` (ties keep the current,
        best-matching candidate).
    copy : bool, default=True
        False centres ``features`` in place (saves a copy of the largest array; the caller's tensor changes).

    Returns
    -------
    torch.Tensor of shape (width,), int64 — the chosen candidate of every neuron.
    """
    mean = features.mean(dim=-1, keepdim=True)
    features = features - mean if copy else features.sub_(mean)
    # (centred: the free bias absorbs the means; in place unless ``copy``)
    target = target - target.mean(dim=0, keepdim=True)
    width = features.shape[0]
    device = features.device
    choice = torch.zeros(width, dtype=torch.int64, device=device)
    columns = features[:, 0, :]
    if fixed is not None and len(fixed):
        columns = torch.cat([columns, fixed - fixed.mean(dim=-1, keepdim=True)])
    F = columns.T.contiguous()                                           # (n_eval, width + n_fixed)
    lam = ridge * float((F * F).sum() / F.shape[1])
    candidate_norm_sq = torch.linalg.vector_norm(features, dim=-1) ** 2  # (width, n_list), no (w, L, S) temporary
    target_cross = features @ target                                     # (width, n_list, m): Yᵀf
    T = F.T @ target                                                     # (width + n_fixed, m): FᵀY
    threshold = tolerance * float((target * target).sum())
    eye = torch.eye(F.shape[1], dtype=F.dtype, device=device)
    free = torch.ones(width, dtype=torch.bool) if locked is None else ~locked.cpu()
    for _ in range(sweeps):
        M = torch.linalg.inv(F.T @ F + lam * eye)
        changed = 0
        for k in torch.nonzero(free).flatten().tolist():
            # inverse Gram of the other columns, M_{-k}, in place
            column_k = M[:, k].clone()
            M -= torch.outer(column_k, column_k / column_k[k])     # (addr_ is ~10× slower on CPU)
            M[k, :] = 0.0
            M[:, k] = 0.0
            a = features[k] @ F                                          # (n_list, width): cross products
            a[:, k] = 0.0
            u = a @ M                                                    # (n_list, width)
            denominator = candidate_norm_sq[k] - (a * u).sum(dim=1) + lam
            gain = ((target_cross[k] - u @ T) ** 2).sum(dim=1) / denominator
            current = int(choice[k])
            best = int(torch.argmax(gain))
            if float(gain[best] - gain[current]) <= threshold:
                best = current
            changed += best != current
            choice[k] = best
            F[:, k] = features[k, best]
            T[k] = target_cross[k, best]
            # inverse Gram with the new column k (bordering)
            schur = float(denominator[best])
            inv_b = u[best]
            M += torch.outer(inv_b, inv_b / schur)
            M[k, :] = -inv_b / schur
            M[:, k] = -inv_b / schur
            M[k, k] = 1.0 / schur
        if changed == 0:
            break
    return choice
