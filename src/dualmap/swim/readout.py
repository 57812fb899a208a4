"""The linear readout: ridge regression with an unpenalised bias, solved by normal equations.

.. math::

    (W, b) = \\operatorname*{arg\\,min}_{W, b}\\; \\lVert H W^\\top + \\mathbf 1 b^\\top - Y \\rVert_F^2
             + \\alpha \\lVert W \\rVert_F^2,

where ``H`` (n, width) are the last hidden layer's features and ``Y`` (n, k) the targets. With centred
``H_c = H - \\bar h``, ``Y_c = Y - \\bar y``: :math:`W^\\top = (H_c^\\top H_c + \\alpha I)^{-1} H_c^\\top Y_c`
and :math:`b = \\bar y - W \\bar h`.

Precision: whatever the features' dtype, the Gram matrix :math:`H_c^\\top H_c` and :math:`H_c^\\top Y_c`
are accumulated in float64 over row chunks (bounded memory), and the solve is in float64 (Cholesky;
an eigendecomposition when Cholesky fails or ``alpha="auto"``). The *float32 path* therefore rounds
only the features themselves to float32 (the hidden-layer products, the expensive part); a float32
Gram matrix was tried and rejected: its rounding noise (~1e-6 of the top eigenvalue) is larger than
the penalties that GCV picks, and it cost a point of accuracy on digits.

``alpha="auto"`` picks α on a log grid by generalised cross-validation,
:math:`\\mathrm{GCV}(\\alpha) = n\\,\\mathrm{RSS}(\\alpha) / (n - \\mathrm{df}(\\alpha))^2`, with
:math:`\\mathrm{df} = 1 + \\sum_j \\lambda_j/(\\lambda_j+\\alpha)` over the eigenvalues of the Gram matrix;
every grid point costs O(width·k) once the eigendecomposition is known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["RidgeSolution", "fit_ridge", "alpha_grid", "fit_temperature"]


@dataclass
class RidgeSolution:
    """A fitted readout: ``weight`` (k, width), ``bias`` (k,), float64 tensors, and the α used."""

    weight: torch.Tensor
    bias: torch.Tensor
    alpha: float


def alpha_grid(mean_eigenvalue: float) -> np.ndarray:
    """The ``alpha="auto"`` grid: ``mean_eigenvalue · 10^k`` for k in -10, -9.5, …, 1."""
    return max(mean_eigenvalue, 1e-300) * 10.0 ** np.arange(-10.0, 1.01, 0.5)


def _gram_update(gram: torch.Tensor, h: torch.Tensor) -> None:
    """``gram += hᵀh`` in float64; on the CPU through numpy, whose ``a.T @ a`` calls BLAS ``syrk`` (half the flops)."""
    h64 = h.double()
    if h64.device.type == "cpu":
        block = h64.numpy()
        gram += torch.from_numpy(block.T @ block)
    else:
        gram += h64.T @ h64


def _normal_equations(H: torch.Tensor, Y: torch.Tensor, chunk_size: int):
    """Return float64 ``(G_c, C_c, ||Y_c||², h̄, ȳ, n)``, accumulated over row chunks of ``H``.

    The raw moments ``Σ h hᵀ``, ``Σ h yᵀ``, ``Σ h``, ``Σ y``, ``Σ y²`` are summed in float64 and centred at
    the end (``G_c = Σ h hᵀ − n h̄ h̄ᵀ``); features are bounded (tanh) or O(1) (ReLU on standardized data),
    so the cancellation costs nothing measurable in float64 and one pass over ``H`` suffices.
    """
    n = H.shape[0]
    width, k = H.shape[1], Y.shape[1]
    gram = torch.zeros(width, width, dtype=torch.float64, device=H.device)
    cross = torch.zeros(width, k, dtype=torch.float64, device=H.device)
    h_sum = torch.zeros(width, dtype=torch.float64, device=H.device)
    y_sum = torch.zeros(k, dtype=torch.float64, device=H.device)
    y_squares = torch.zeros((), dtype=torch.float64, device=H.device)
    for start in range(0, n, chunk_size):
        h = H[start:start + chunk_size].double()
        y = Y[start:start + chunk_size].double()
        _gram_update(gram, h)
        cross += h.T @ y
        h_sum += h.sum(dim=0)
        y_sum += y.sum(dim=0)
        y_squares += (y * y).sum()
    h_mean, y_mean = h_sum / n, y_sum / n
    gram -= n * torch.outer(h_mean, h_mean)
    cross -= n * torch.outer(h_mean, y_mean)
    y_norm = y_squares - n * (y_mean * y_mean).sum()
    return gram, cross, y_norm, h_mean, y_mean, n


def fit_ridge(H: torch.Tensor, Y: torch.Tensor, alpha: float | str = "auto", *,
              chunk_size: int = 8192) -> RidgeSolution:
    """Solve the ridge readout (module docstring) for features ``H`` and targets ``Y``.

    Parameters
    ----------
    H : torch.Tensor of shape (n_samples, width)
    Y : torch.Tensor of shape (n_samples, n_outputs)
    alpha : float >= 0 or "auto", default="auto"
        The penalty on ``W`` (absolute, as in :class:`sklearn.linear_model.Ridge`), or GCV selection.

    Returns
    -------
    RidgeSolution
    """
    if not (alpha == "auto" or (isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and alpha >= 0)):
        raise ValueError(f"alpha must be a float >= 0 or 'auto'; got {alpha!r}")
    gram, cross, y_norm, h_mean, y_mean, n = _normal_equations(H, Y, chunk_size)
    width = gram.shape[0]
    if alpha != "auto":
        factor, info = torch.linalg.cholesky_ex(gram + float(alpha) * torch.eye(width, dtype=gram.dtype, device=gram.device))
        if int(info) == 0:
            weight_t = torch.cholesky_solve(cross, factor)
            return RidgeSolution(weight_t.T, y_mean - weight_t.T @ h_mean, float(alpha))
    eigenvalues, eigenvectors = torch.linalg.eigh(gram)
    # Directions with eigenvalues at the rounding level of the Gram matrix are null directions:
    # drop them (their projections are rounding noise) instead of letting α → 0 amplify them.
    noise_floor = float(eigenvalues[-1]) * width * torch.finfo(torch.float64).eps
    null = eigenvalues <= noise_floor
    eigenvalues = torch.where(null, 0.0, eigenvalues)
    projected = torch.where(null[:, None], 0.0, eigenvectors.T @ cross)  # (width, k)
    if alpha == "auto":
        alpha = _gcv_alpha(eigenvalues, projected, y_norm, n, lower=10.0 * noise_floor)
    inverse = torch.where(eigenvalues + alpha > 0, 1.0 / (eigenvalues + alpha), 0.0)  # pseudo-inverse at α = 0
    weight_t = eigenvectors @ (inverse[:, None] * projected)
    return RidgeSolution(weight_t.T, y_mean - weight_t.T @ h_mean, float(alpha))


def _gcv_alpha(eigenvalues: torch.Tensor, projected: torch.Tensor, y_norm: torch.Tensor, n: int,
               lower: float) -> float:
    """α on :func:`alpha_grid` (≥ ``lower``) minimising GCV; RSS(α) = ‖Y_c‖² − Σ_j q_j² (λ_j + 2α)/(λ_j + α)²."""
    q2 = (projected**2).sum(dim=1)
    grid = alpha_grid(float(eigenvalues.mean()))
    grid = torch.as_tensor(grid[grid >= lower] if (grid >= lower).any() else grid[-1:], dtype=torch.float64,
                           device=eigenvalues.device)
    lam = eigenvalues[None, :]
    a = grid[:, None]
    rss = (y_norm - (q2[None, :] * (lam + 2 * a) / (lam + a) ** 2).sum(dim=1)).clamp_min(0.0)
    dof = 1.0 + (lam / (lam + a)).sum(dim=1)
    gcv = n * rss / (n - dof).clamp_min(1e-12) ** 2
    gcv = torch.where(dof < n, gcv, torch.inf)
    return float(grid[int(torch.argmin(gcv))])


def fit_temperature(scores: np.ndarray, labels: np.ndarray, *, max_points: int = 2000, seed: int = 0) -> float:
    """The temperature ``T`` that makes ``softmax(scores / T)`` the most likely for ``labels``.

    ``T = argmin_T −mean_i log softmax(s_i / T)[y_i]`` over ``log T ∈ [−7, 3]`` (bounded 1-D search), on at
    most ``max_points`` seeded rows. It turns ridge scores of one-hot codes into calibrated logits.
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    rows = np.random.default_rng(seed).choice(len(scores), size=min(len(scores), max_points), replace=False)
    scores, labels = scores[rows], labels[rows]

    def negative_log_likelihood(log_t):
        return -log_softmax(scores / np.exp(log_t), axis=1)[np.arange(len(rows)), labels].mean()

    return float(np.exp(minimize_scalar(negative_log_likelihood, bounds=(-7.0, 3.0), method="bounded").x))
