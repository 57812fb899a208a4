"""The linear readout: ridge regression with an unpenalised bias, solved by normal equations.

.. math::

    (W, b) = \\operatorname*{arg\\,min}_{W, b}\\; \\lVert H W^\\top + \\mathbf 1 b^\\top - Y \\rVert_F^2
             + \\alpha \\lVert W \\rVert_F^2,

where ``H`` (n, width) are the last hidden layer's features and ``Y`` (n, k) the targets. With centred
``H_c = H - \\bar h``, ``Y_c = Y - \\bar y``: :math:`W^\\top = (H_c^\\top H_c + \\alpha I)^{-1} H_c^\\top Y_c`
and :math:`b = \\bar y - W \\bar h`.

Precision: whatever the features' dtype, the Gram matrix and the cross products are formed in float64
(the features are converted block by block, bounded memory), and the solve is in float64 (Cholesky; an
eigendecomposition when Cholesky fails or ``alpha="auto"``). The *float32 path* therefore rounds only the
features themselves to float32 (the hidden-layer products). A Gram matrix *accumulated* in float32 was
tried and rejected (uncentred, and on pre-centred blocks): the SWIM features are so ill-conditioned (on
Fashion-MNIST 10k/1024, 60 % of the eigenvalues are below 0.1 for a top eigenvalue of 4e5) that float32
accumulation errors (~1e-3 in norm, even on pre-centred blocks of 512 rows summed in float64) are as large
as the penalties GCV picks; they moved the GCV choice by 10⁻³ and cost 1–2 points of accuracy. Centring
in float64 and *then* rounding to float32, with a float64 Gram of the rounded features, is harmless (a
consistent perturbation of ``H``).

Primal or dual: with ``n > width + 1`` the width × width Gram :math:`G = H_c^\\top H_c` is factorised;
otherwise (``n ≤ width + 1``: the centred features have rank ≤ n − 1 ≤ width) the n × n kernel
:math:`K = H_c H_c^\\top` is (push-through identity
:math:`H_c^\\top (K + \\alpha I)^{-1} = (G + \\alpha I)^{-1} H_c^\\top`). Both have the same non-zero
eigenvalues, and the projections agree: :math:`(v_j^\\top H_c^\\top Y_c)^2 = \\lambda_j\\,(u_j^\\top Y_c)^2`
for :math:`v_j = H_c^\\top u_j/\\sqrt{\\lambda_j}`; the α grid uses the mean over all ``width`` eigenvalues
(:math:`\\operatorname{tr} K/\\text{width}`) and the same noise floor, so both forms choose the same α.

The eigendecomposition is LAPACK's ``dsytrd`` (tridiagonalisation, :math:`A = Q T Q^\\top`) and MRRR
(``dstemr``) on ``T``; the Householder product ``Q`` is applied only to the k columns that need it
(``QᵀC`` and ``Q X``), never formed, which saves ``syevd``'s 2·m³ back-transformation.

``alpha="auto"`` picks α on a log grid by generalised cross-validation,
:math:`\\mathrm{GCV}(\\alpha) = n\\,\\mathrm{RSS}(\\alpha) / (n - \\mathrm{df}(\\alpha))^2`, with
:math:`\\mathrm{df} = 1 + \\sum_j \\lambda_j/(\\lambda_j+\\alpha)` over the eigenvalues of the Gram matrix;
every grid point costs O(min(n, width)·k) once the eigendecomposition is known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import blas, eigh_tridiagonal, lapack

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

    On the CPU the problem is solved in its primal form (width × width Gram) when ``n > width + 1`` and in
    its dual form (n × n kernel) otherwise; both give the same α and the same readout up to rounding.

    Parameters
    ----------
    H : torch.Tensor of shape (n_samples, width)
    Y : torch.Tensor of shape (n_samples, n_outputs)
    alpha : float >= 0 or "auto", default="auto"
        The penalty on ``W`` (absolute, as in :class:`sklearn.linear_model.Ridge`), or GCV selection.
    chunk_size : int, default=8192
        Rows of ``H`` converted to float64 at a time (the primal form's memory bound).

    Returns
    -------
    RidgeSolution
    """
    if not (alpha == "auto" or (isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and alpha >= 0)):
        raise ValueError(f"alpha must be a float >= 0 or 'auto'; got {alpha!r}")
    if H.device.type != "cpu":
        return _fit_ridge_torch(H, Y, alpha, chunk_size)
    features = H.detach().numpy()
    targets = Y.detach().cpu().numpy().astype(np.float64, copy=False)
    if features.dtype not in (np.float32, np.float64):
        features = features.astype(np.float64)
    n, width = features.shape
    y_mean = targets.mean(axis=0)
    centred_targets = targets - y_mean
    y_norm = float((centred_targets * centred_targets).sum())
    solve = _solve_dual if n <= width + 1 else _solve_primal     # centred H has rank ≤ n − 1
    weight_t, h_mean, alpha = solve(features, centred_targets, y_norm, alpha, chunk_size)
    weight_t = np.ascontiguousarray(weight_t)
    bias = y_mean - weight_t.T @ h_mean
    return RidgeSolution(torch.from_numpy(weight_t.T.copy()), torch.from_numpy(bias), float(alpha))


def _noise_floor(top_eigenvalue: float, width: int) -> float:
    """Eigenvalues at or below this are the rounding level of a float64 Gram matrix: null directions."""
    return max(top_eigenvalue, 0.0) * width * np.finfo(np.float64).eps


def _primal_moments(H: np.ndarray, Yc: np.ndarray, chunk_size: int):
    """Return float64 ``(G_c upper triangle, C_c, h̄)`` of features ``H`` and centred targets ``Yc``, in one pass.

    Each block of rows is shifted by the float64 mean ``m`` of the first block while it is converted to
    float64 (one buffer, reused), then ``G += blockᵀ block`` (BLAS ``dsyrk``, in place, upper triangle) and
    ``[C | s] += blockᵀ [Y_c | 1]`` (``dgemm``, in place). With ``δ = s/n = h̄ − m``: ``G_c = G − n δ δᵀ``
    (``dsyr`` on the upper triangle; a small correction, since ``m ≈ h̄``) and ``C_c = C`` exactly, since
    ``Σ Y_c = 0``. Every product goes through scipy's BLAS: numpy's ``@`` runs on a second OpenBLAS whose threads,
    still spinning after the small product, slowed the next ``dsyrk`` by a third (Fashion 10k/1024, 2 threads:
    the pass took 0.24 s against 0.17 s; BENCHMARKS.md, issue 15).
    """
    n, width = H.shape
    rows = min(n, max(1, int(chunk_size)))
    shift = H[:rows].mean(axis=0, dtype=np.float64)
    gram = np.zeros((width, width), order="F")
    targets_and_ones = np.asfortranarray(np.concatenate([Yc, np.ones((n, 1))], axis=1))
    cross = np.zeros((width, targets_and_ones.shape[1]), order="F")
    buffer = np.empty((rows, width))
    for start in range(0, n, rows):
        block = np.subtract(H[start:start + rows], shift, out=buffer[:min(rows, n - start)])
        gram = blas.dsyrk(1.0, block.T, beta=1.0, c=gram, trans=0, lower=0, overwrite_c=1)
        cross = blas.dgemm(1.0, block.T, targets_and_ones[start:start + rows], beta=1.0, c=cross, overwrite_c=1)
    delta = cross[:, -1] / n
    gram = blas.dsyr(-float(n), delta, a=gram, lower=0, overwrite_a=1)
    return gram, np.ascontiguousarray(cross[:, :-1]), shift + delta


def _solve_primal(H, Yc, y_norm, alpha, chunk_size):
    """Primal form: ``W^T = (G_c + αI)^{-1} C_c`` on the width × width Gram matrix."""
    n, width = H.shape
    gram, cross, h_mean = _primal_moments(H, Yc, chunk_size)
    if alpha != "auto":
        solution = _cholesky_solve(gram, float(alpha), cross)
        if solution is not None:
            return solution, h_mean, alpha
    eigenvalues, projected, apply_vectors = _eigh_projected(gram, cross)
    floor = _noise_floor(eigenvalues[-1], width)
    null = eigenvalues <= floor
    eigenvalues = np.where(null, 0.0, eigenvalues)
    projected[null] = 0.0
    if alpha == "auto":
        alpha = _gcv_alpha(eigenvalues, (projected**2).sum(axis=1), y_norm, n, lower=10.0 * floor,
                           mean_eigenvalue=float(eigenvalues.mean()))
    inverse = np.where(eigenvalues + alpha > 0, 1.0 / np.where(eigenvalues + alpha > 0, eigenvalues + alpha, 1.0), 0.0)
    return apply_vectors(inverse[:, None] * projected), h_mean, alpha


def _solve_dual(H, Yc, y_norm, alpha, chunk_size):
    """Dual form (``n ≤ width + 1``): ``W^T = H_c^T (K + αI)^{-1} Y_c`` with the n × n kernel ``K = H_c H_c^T``.

    GCV sees the same spectrum as the primal form: the kernel's eigenvalues ``λ_j`` (the primal's other
    ``width − n`` are 0 and add nothing to RSS or df), primal projections ``q_j² = λ_j ‖u_jᵀ Y_c‖²``, the
    grid's mean eigenvalue ``tr K / width`` and the primal noise floor ``λ_max · width · eps``.
    """
    n, width = H.shape
    h_mean = H.mean(axis=0, dtype=np.float64)
    centred = np.subtract(H, h_mean, dtype=np.float64)
    kernel = blas.dsyrk(1.0, centred.T, trans=1, lower=0)            # H_c H_cᵀ, upper triangle
    mean_eigenvalue = float(np.trace(kernel)) / width
    if alpha != "auto":
        dual = _cholesky_solve(kernel, float(alpha), Yc)
        if dual is not None:
            return centred.T @ dual, h_mean, alpha
    eigenvalues, projected, apply_vectors = _eigh_projected(kernel, Yc)
    floor = _noise_floor(eigenvalues[-1], width)
    null = eigenvalues <= floor
    eigenvalues = np.where(null, 0.0, eigenvalues)
    if alpha == "auto":
        r2 = (projected**2).sum(axis=1)
        alpha = _gcv_alpha(eigenvalues, eigenvalues * r2, y_norm, n, lower=10.0 * floor,
                           mean_eigenvalue=mean_eigenvalue, residual=(float(r2[null].sum()), r2))
    projected[null] = 0.0
    inverse = np.where(eigenvalues + alpha > 0, 1.0 / np.where(eigenvalues + alpha > 0, eigenvalues + alpha, 1.0), 0.0)
    return centred.T @ apply_vectors(inverse[:, None] * projected), h_mean, alpha


def _cholesky_solve(upper: np.ndarray, alpha: float, rhs: np.ndarray):
    """``(A + αI)^{-1} rhs`` for symmetric ``A`` given by its upper triangle, or None if Cholesky fails."""
    shifted = upper + alpha * np.eye(upper.shape[0])
    factor, info = lapack.dpotrf(shifted, lower=0, overwrite_a=1)
    if info != 0:
        return None
    solution, info = lapack.dpotrs(factor, rhs, lower=0)
    return solution if info == 0 else None


def _householder_product(packed: np.ndarray, tau: np.ndarray, block: int = 64):
    """``x ↦ Q x`` and ``x ↦ Qᵀ x`` for the ``Q = H_{m-2} ⋯ H_0`` of ``dsytrd(lower=0)``, in compact WY blocks.

    ``H_i = I − τ_i v_i v_iᵀ`` with ``v_i = (packed[:i, i+1], 1, 0, …)``. A block of reflectors ``a ≤ i < b``
    multiplies out to ``H_a ⋯ H_{b-1} = I − V T Vᵀ`` (``V`` the block's ``v_i`` as columns, ``T`` upper
    triangular: ``T_{:j, j} = −τ_j T_{:j,:j} V_{:, :j}ᵀ v_j``), applied with three small GEMMs.
    """
    m = packed.shape[0]
    reflectors = np.triu(packed, 1)                      # column i+1 holds v_i (rows 0..i)
    reflectors[np.arange(m - 1), np.arange(1, m)] = 1.0
    blocks = []
    for start in range(0, m - 1, block):
        stop = min(start + block, m - 1)
        V = np.ascontiguousarray(reflectors[:stop, start + 1:stop + 1])
        inner = V.T @ V
        T = np.zeros((stop - start, stop - start))
        for j in range(stop - start):
            T[j, j] = tau[start + j]
            T[:j, j] = -tau[start + j] * (T[:j, :j] @ inner[:j, j])
        blocks.append((stop, V, T))

    def apply(x, transpose):
        x = np.array(x, dtype=np.float64, order="C")
        # Qᵀ = P_1 P_2 ⋯ (P_k = I − V_k T_k V_kᵀ): the last block first; Q = ⋯ P_2ᵀ P_1ᵀ: the first first
        for stop, V, T in (reversed(blocks) if transpose else blocks):
            x[:stop] -= V @ ((T if transpose else T.T) @ (V.T @ x[:stop]))
        return x

    return apply


#: From this size on, :func:`_eigh_projected` skips the back-transformation (measured crossover ≈ 300 on 1 core,
#: 2026-12-03: 450 → 24 ms against 30 ms for ``syevd``, 600 → 44 against 54 ms).
_TRIDIAGONAL_FROM = 300


def _eigh_projected(upper: np.ndarray, rhs: np.ndarray, tridiagonal_from: int | None = None):
    """Eigendecomposition ``A = V Λ Vᵀ`` of a symmetric ``A`` (its upper triangle; overwritten) without forming ``V``.

    Returns ascending ``λ``, ``P = Vᵀ rhs`` and a function ``X ↦ V X``. ``A = Q T Qᵀ`` by ``dsytrd`` and
    ``T = Z Λ Zᵀ`` by MRRR (``dstemr``), so ``V = Q Z``; ``Q = H_{m-1} ⋯ H_1`` is applied as its Householder
    reflectors to the few columns of ``rhs`` and ``X`` (a Python loop over ``m`` reflectors, so matrices
    smaller than ``tridiagonal_from``, default :data:`_TRIDIAGONAL_FROM`, use ``syevd``). A failed MRRR falls
    back to the implicit QL/QR algorithm on ``T`` (``dstev``).
    """
    m = upper.shape[0]
    if m >= (_TRIDIAGONAL_FROM if tridiagonal_from is None else tridiagonal_from):
        lwork = int(lapack.dsytrd_lwork(m, lower=0)[0])
        packed, diagonal, off_diagonal, tau, info = lapack.dsytrd(
            np.asfortranarray(upper), lower=0, lwork=max(lwork, 1), overwrite_a=1)
        if info == 0:
            try:
                eigenvalues, z = eigh_tridiagonal(diagonal, off_diagonal, lapack_driver="stemr", check_finite=False)
            except np.linalg.LinAlgError:
                eigenvalues, z = eigh_tridiagonal(diagonal, off_diagonal, lapack_driver="stev", check_finite=False)

            apply_q = _householder_product(packed, tau)
            projected = z.T @ apply_q(rhs, transpose=True)
            return eigenvalues, projected, lambda x: apply_q(z @ x, transpose=False)
    symmetric = np.triu(upper) + np.triu(upper, 1).T
    eigenvalues, vectors = np.linalg.eigh(symmetric)
    return eigenvalues, vectors.T @ rhs, lambda x: vectors @ x


def _gcv_alpha(eigenvalues: np.ndarray, q2: np.ndarray, y_norm: float, n: int, lower: float,
               mean_eigenvalue: float, residual: tuple | None = None) -> float:
    """α on :func:`alpha_grid` (≥ ``lower``) minimising GCV; RSS(α) = ‖Y_c‖² − Σ_j q_j² (λ_j + 2α)/(λ_j + α)².

    ``q2`` holds ``q_j² = ‖v_jᵀ H_cᵀ Y_c‖²``; ``mean_eigenvalue`` is the mean over all ``width`` eigenvalues.
    The dual form passes ``residual = (‖P_null Y_c‖², r2)`` with ``r2_j = ‖u_jᵀ Y_c‖²`` and the same RSS
    without cancellation, ``‖P_null Y_c‖² + Σ_j r2_j α²/(λ_j + α)²`` (near interpolation, n ≈ rank + 1,
    the difference in the primal formula is rounding noise that decides the choice).
    """
    grid = alpha_grid(mean_eigenvalue)
    grid = grid[grid >= lower] if (grid >= lower).any() else grid[-1:]
    lam = eigenvalues[None, :]
    a = grid[:, None]
    if residual is None:
        rss = np.maximum(y_norm - (q2[None, :] * (lam + 2 * a) / (lam + a) ** 2).sum(axis=1), 0.0)
    else:
        null_part, r2 = residual
        r2 = np.where(eigenvalues > 0, r2, 0.0)[None, :]
        rss = null_part + (r2 * (a / (lam + a)) ** 2).sum(axis=1)
    dof = 1.0 + (lam / (lam + a)).sum(axis=1)
    gcv = n * rss / np.maximum(n - dof, 1e-12) ** 2
    gcv = np.where(dof < n, gcv, np.inf)
    return float(grid[int(np.argmin(gcv))])


def _fit_ridge_torch(H: torch.Tensor, Y: torch.Tensor, alpha, chunk_size: int) -> RidgeSolution:
    """The primal form in torch, for features on an accelerator (the CPU path is :func:`fit_ridge`)."""
    gram, cross, y_norm, h_mean, y_mean, n = _normal_equations(H, Y, chunk_size)
    width = gram.shape[0]
    if alpha != "auto":
        identity = torch.eye(width, dtype=gram.dtype, device=gram.device)
        factor, info = torch.linalg.cholesky_ex(gram + float(alpha) * identity)
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
        alpha = _gcv_alpha(eigenvalues.cpu().numpy(), (projected**2).sum(dim=1).cpu().numpy(), float(y_norm), n,
                           lower=10.0 * noise_floor, mean_eigenvalue=float(eigenvalues.mean()))
    inverse = torch.where(eigenvalues + alpha > 0, 1.0 / (eigenvalues + alpha), 0.0)  # pseudo-inverse at α = 0
    weight_t = eigenvectors @ (inverse[:, None] * projected)
    return RidgeSolution(weight_t.T, y_mean - weight_t.T @ h_mean, float(alpha))


def fit_temperature(scores: np.ndarray, labels: np.ndarray, *, max_points: int = 2000, seed: int = 0) -> float:
    """The temperature ``T`` that makes ``softmax(scores / T)`` the most likely for ``labels``.

    ``T = argmin_T −mean_i log softmax(s_i / T)[y_i]`` over ``log T ∈ [−7, 3]`` (bounded 1-D search), on at
    most ``max_points`` seeded rows. It turns ridge scores of one-hot codes into calibrated logits.
    """
    from scipy.optimize import minimize_scalar

    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    rows = np.random.default_rng(seed).choice(len(scores), size=min(len(scores), max_points), replace=False)
    scores, labels = scores[rows], labels[rows]
    # with m_i = max_c s_ic (the same for every T > 0): −log softmax(s_i/T)[y_i] = log Σ_c e^{(s_ic − m_i)/T}
    # − (s_iy − m_i)/T, and the shifted scores are ≤ 0, so no exponential overflows; formed once, not per T
    shifted = scores - scores.max(axis=1, keepdims=True)
    label_margin = shifted[np.arange(len(rows)), labels].mean()

    def negative_log_likelihood(log_t):
        inverse_t = np.exp(-log_t)
        return float(np.log(np.exp(shifted * inverse_t).sum(axis=1)).mean() - label_margin * inverse_t)

    return float(np.exp(minimize_scalar(negative_log_likelihood, bounds=(-7.0, 3.0), method="bounded").x))
