"""Each trained neuron as a small measure over data pairs: ``k`` SWIM neurons (its *atoms*) and an affine
combination of them (docs/maths.md §5).

Neuron ``j`` of a hidden layer has trained activations ``h_j`` on the data. Its atoms are ordered pairs
``p_{j1} … p_{jk}`` of data points with SWIM neurons ``φ_p`` (in the layer's input representation), and

.. math:: \\hat h_j = \\sum_{m=1}^{k} c_{jm}\\, \\varphi_{p_{jm}} + c_{j0}.

The coefficients are least squares on the data, neuron by neuron (:func:`fit_coefficients`). The atoms are
chosen for two objectives, in this order:

* **the neuron** — :func:`greedy_atoms`: orthogonal matching pursuit over the neuron's candidate pool,
  :math:`\\min \\lVert h_j - \\hat h_j\\rVert^2`;
* **what the next trained layer receives** — :func:`descend_atoms`: with ``W`` the next trained layer's
  weights (the readout after the last hidden layer) and :math:`R = H - \\hat H` the residuals of all
  neurons, :math:`\\min \\lVert W R\\rVert_F^2 = \\min \\lVert \\sum_j w_j r_j^\\top \\rVert_F^2`, by coordinate descent
  over the atom slots of every neuron. Errors of different neurons can cancel in what the next layer sees,
  and a neuron with a large outgoing weight is matched more carefully than one the next layer ignores.

All functions take *centred* activation vectors on the evaluation points (the intercept absorbs the means).
"""

from __future__ import annotations

import torch

from ..swim.construction import swim_constants

__all__ = ["steepness_for", "greedy_atoms", "descend_atoms", "neuron_residuals",
           "fit_coefficients", "EXACT"]

#: A candidate whose centred activations correlate with the trained neuron's to at least this reproduces it.
EXACT = 1.0 - 1e-9


def steepness_for(Z: torch.Tensor, candidates: torch.Tensor, weight_norm: torch.Tensor,
                  activation: str) -> torch.Tensor:
    """The relaxed steepness of each candidate: the ``γ > 0`` that gives its neuron the trained weight norm.

    A strict SWIM neuron has :math:`\\lVert w\\rVert = s_1/\\lVert\\Delta\\rVert`; :math:`\\gamma =
    \\lVert w_j\\rVert\\,\\lVert\\Delta\\rVert / s_1` keeps the pair's direction and its midpoint hyperplane
    (tanh) and takes the steepness from the trained neuron ``j``. Not a SWIM neuron any more.

    Parameters
    ----------
    candidates : torch.Tensor of shape (width, P, 2)
    weight_norm : torch.Tensor of shape (width,)
        Trained weight norms in the same representation.
    """
    s1, _ = swim_constants(activation)
    delta = Z[candidates[..., 1]] - Z[candidates[..., 0]]
    length = torch.linalg.vector_norm(delta, dim=-1)
    return (weight_norm[:, None] * length / s1).clamp_min(torch.finfo(Z.dtype).tiny)


def _centre(features: torch.Tensor) -> torch.Tensor:
    return features - features.mean(dim=-1, keepdim=True)


def greedy_atoms(features: torch.Tensor, target: torch.Tensor, k: int, *,
                 valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthogonal matching pursuit, every neuron at once: ``k`` candidates per neuron, each the one whose
    part orthogonal to the atoms already chosen best explains what they leave of the target.

    Parameters
    ----------
    features : torch.Tensor of shape (width, P, S)
        Centred activations of every neuron's candidates (scratch: orthogonalised in place when k > 1).
    target : torch.Tensor of shape (width, S)
        Centred trained activations.
    valid : torch.Tensor of shape (width, P), bool, optional
        Candidates that may be chosen (e.g. not coincident pairs).

    Returns
    -------
    chosen : torch.Tensor of shape (width, k), int64 — indices into P, in the order chosen
    correlation : torch.Tensor of shape (width, P) — |Pearson correlation| of each candidate with the target
    """
    width = features.shape[0]
    rows = torch.arange(width, device=features.device)
    tiny = torch.finfo(features.dtype).tiny
    norm_sq = (features * features).sum(dim=-1)
    usable = norm_sq > 1e-24 * norm_sq.amax(dim=1, keepdim=True).clamp_min(tiny)
    if valid is not None:
        usable &= valid
    target_norm = torch.linalg.vector_norm(target, dim=-1, keepdim=True)
    along = (features @ target[:, :, None])[..., 0]                  # ⟨f, residual⟩, first with the target
    correlation = along.abs() / (norm_sq.sqrt() * target_norm).clamp_min(tiny)
    correlation = torch.where(usable, correlation, -1.0)
    residual, current = target.clone(), norm_sq                      # current: ‖f‖² off the chosen atoms
    chosen = []
    for step in range(k):
        alive = usable & (current > 1e-12 * norm_sq)         # not (nearly) in the span of the chosen atoms
        score = torch.where(alive, along**2 / current.clamp_min(tiny), -1.0)
        # the best-correlated usable candidate when nothing is left to explain (an exact earlier atom)
        score = torch.where(score.amax(dim=1, keepdim=True) > 0, score, correlation)
        best = score.argmax(dim=1)
        chosen.append(best)
        if step == k - 1:    # the last atom: nothing more to orthogonalise against it
            break
        direction = features[rows, best]
        direction = direction / torch.linalg.vector_norm(direction, dim=-1, keepdim=True).clamp_min(tiny)
        residual -= (residual * direction).sum(dim=-1, keepdim=True) * direction
        features -= (features @ direction[:, :, None]) * direction[:, None, :]
        usable[rows, best] = False
        current = (features * features).sum(dim=-1)
        along = (features @ residual[:, :, None])[..., 0]
    return torch.stack(chosen, dim=1), correlation


def neuron_residuals(features: torch.Tensor, target: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
    """``h_j − ĥ_j`` of every neuron for its chosen candidates (least squares on the centred vectors).

    features (width, L, S), target (width, S), choice (width, k) → (width, S).
    """
    rows = torch.arange(len(choice), device=choice.device)[:, None]
    A = features[rows, choice].transpose(1, 2)                                   # (width, S, k)
    gram = A.transpose(1, 2) @ A
    ridge = 1e-12 * gram.diagonal(dim1=1, dim2=2).sum(dim=1).clamp_min(torch.finfo(A.dtype).tiny)
    gram = gram + ridge[:, None, None] * torch.eye(A.shape[2], dtype=A.dtype, device=A.device)
    coefficients = torch.linalg.solve(gram, A.transpose(1, 2) @ target[:, :, None])
    return target - (A @ coefficients)[..., 0]


def descend_atoms(features_of, target: torch.Tensor, downstream: torch.Tensor, choice: torch.Tensor, *,
                  free: torch.Tensor | None = None, sweeps: int = 3, tolerance: float = 1e-9,
                  offset: torch.Tensor | None = None) -> torch.Tensor:
    """Coordinate descent on what the next trained layer receives (module docstring).

    For neuron ``j`` and slot ``m``, with :math:`E_{-j} = \\sum_{i \\ne j} w_i r_i^\\top` and ``r(f)`` the
    neuron's residual when slot ``m`` holds candidate ``f`` (the other atoms kept, coefficients refit), the
    objective is :math:`\\lVert E_{-j} + w_j r(f)^\\top\\rVert^2 = \\lVert E_{-j}\\rVert^2 + 2\\,(E_{-j}^\\top
    w_j)^\\top r(f) + \\lVert w_j\\rVert^2 \\lVert r(f)\\rVert^2`; ``r(f)`` comes from projecting the target and
    ``f`` off the other atoms (one QR of ``k − 1`` columns per slot), and every candidate's objective from one
    product of the short list with ``[base, E_{-j}ᵀw_j, Q]`` — no residual vector is formed per candidate.

    Parameters
    ----------
    features_of : callable
        ``features_of(j)`` → torch.Tensor of shape (L, S): centred activations of neuron ``j``'s short list of
        candidates (computed when needed, so memory stays O(L·S) whatever the width).
    target : torch.Tensor of shape (width, S)
        Centred trained activations.
    downstream : torch.Tensor of shape (m, width)
        The next trained layer's weights (columns: what each neuron sends on).
    choice : torch.Tensor of shape (width, k), int64
        Starting candidates (distinct per neuron); not modified.
    free : torch.Tensor of shape (width,), bool, optional
        Neurons that may change (the others keep their atoms but count in the objective).
    sweeps : int
        Passes over the free neurons; stops early when a pass changes nothing.
    tolerance : float
        A switch must lower the objective by more than ``tolerance · ‖W H‖²`` (ties keep the current atoms).
    offset : torch.Tensor of shape (m, S), optional
        What neurons outside this problem (kept fixed) add to the next layer's error.

    Returns
    -------
    torch.Tensor of shape (width, k), int64
    """
    choice = choice.clone()
    width, k = choice.shape
    residuals = torch.empty_like(target)
    for j in range(width):
        residuals[j] = neuron_residuals(features_of(j)[None], target[j:j + 1], choice[j:j + 1])[0]
    error = downstream @ residuals                                               # (m, S)
    if offset is not None:
        error = error + offset
    weight_sq = (downstream * downstream).sum(dim=0)
    # every step needs Eᵀ w_j, and every switch changes E by w_j Δr_jᵀ. With at least as many next-layer
    # neurons as neurons here (m ≥ width) it is cheaper to carry P = Wᵀ E (width, S) instead: Eᵀ w_j is its row
    # j, read for free, and a switch adds (WᵀW)_{:j} Δr_jᵀ (the same size as E's update)
    projected = downstream.shape[0] >= width
    if projected:
        coupling = downstream.T @ downstream                                     # (width, width)
        error = downstream.T @ error                                             # P (width, S)
    threshold = tolerance * float(((downstream @ target) ** 2).sum())
    tiny = torch.finfo(target.dtype).tiny
    movable = torch.ones(width, dtype=torch.bool) if free is None else free.cpu()
    neurons = torch.nonzero(movable).flatten().tolist()
    norms = {}                                       # ‖f‖² of every candidate of a neuron, once per call
    for _ in range(sweeps):
        changed = 0
        for j in neurons:
            features = features_of(j)                                            # (L, S)
            if j not in norms:
                norms[j] = torch.linalg.vector_norm(features, dim=-1) ** 2
            norm_sq = norms[j]
            previous = residuals[j].clone()
            # E_{-j}ᵀ w_j = Eᵀ w_j − ‖w_j‖² r_j: one product with E, no (m, S) temporaries
            pull = (error[j] if projected else downstream[:, j] @ error) - weight_sq[j] * previous   # (S,)
            for slot in range(k):
                others = torch.cat([choice[j, :slot], choice[j, slot + 1:]])
                base = target[j]
                basis = None
                if k > 1:
                    basis, _ = torch.linalg.qr(features[others].T)                 # (S, k-1)
                    base = base - basis @ (basis.T @ base)
                # with f̃ = f − Q Qᵀ f (the candidate off the other atoms): f̃·base = f·base, and
                # r(f) = base − c f̃, c = f̃·base/‖f̃‖², so the objective needs only F·[base, pull, Q]
                length_sq = norm_sq
                if basis is None:     # two GEMVs: faster than one GEMM of two columns
                    along_base, along_pull = features @ base, features @ pull
                else:
                    products = features @ torch.cat([base[:, None], pull[:, None], basis], dim=1)   # (L, k + 1)
                    along_base, along_pull, along_basis = products[:, 0], products[:, 1], products[:, 2:]
                    length_sq = norm_sq - (along_basis * along_basis).sum(dim=1)
                    along_pull = along_pull - along_basis @ (basis.T @ pull)
                usable = length_sq > 1e-12 * norm_sq.clamp_min(tiny)
                usable[others] = False
                step = along_base / length_sq.clamp_min(tiny)
                objective = 2.0 * (base @ pull - step * along_pull) \
                    + weight_sq[j] * ((base @ base) - step * along_base)
                objective = torch.where(usable, objective, torch.inf)
                current = int(choice[j, slot])
                best = int(torch.argmin(objective))
                if best != current and (not bool(usable[current])
                                        or float(objective[best]) < float(objective[current]) - threshold):
                    changed += 1
                    choice[j, slot] = best
                    current = best
                if bool(usable[current]):
                    chosen = features[current]
                    if basis is not None:
                        chosen = chosen - basis @ (basis.T @ chosen)
                    residuals[j] = base - step[current] * chosen
            if not torch.equal(residuals[j], previous):                           # E += w_j (r_new − r_old)ᵀ
                error.addr_(coupling[:, j] if projected else downstream[:, j], residuals[j] - previous)
        if changed == 0:
            break
    return choice


def fit_coefficients(activations: torch.Tensor, target: torch.Tensor, *, chunk_size: int = 8192) -> torch.Tensor:
    """Least-squares affine combination of every neuron's atoms: ``(width, k + 1)``, last column the intercept.

    :math:`(c_j, c_{j0}) = \\arg\\min \\lVert \\Phi_j c + c_{j0}\\mathbf 1 - h_j\\rVert^2 + \\lambda \\lVert c\\rVert^2`
    with a vanishing ridge ``λ = 1e-10 · tr(Φ_jᵀΦ_j)/k`` on the centred atoms (it splits a coefficient evenly
    between duplicate atoms instead of failing). Moments accumulated in float64 over row chunks.

    Parameters
    ----------
    activations : torch.Tensor of shape (n, width, k)
        The atoms' activations on the data.
    target : torch.Tensor of shape (n, width)
        The trained neurons' activations.
    """
    n, width, k = activations.shape
    dtype, device = torch.float64, activations.device
    gram = torch.zeros(width, k, k, dtype=dtype, device=device)
    cross = torch.zeros(width, k, dtype=dtype, device=device)
    phi_sum = torch.zeros(width, k, dtype=dtype, device=device)
    h_sum = torch.zeros(width, dtype=dtype, device=device)
    for start in range(0, n, chunk_size):
        phi = activations[start:start + chunk_size].to(dtype)
        h = target[start:start + chunk_size].to(dtype)
        gram += torch.einsum("nwa,nwb->wab", phi, phi)
        cross += torch.einsum("nwa,nw->wa", phi, h)
        phi_sum += phi.sum(dim=0)
        h_sum += h.sum(dim=0)
    phi_mean, h_mean = phi_sum / n, h_sum / n
    gram -= n * phi_mean[:, :, None] * phi_mean[:, None, :]
    cross -= n * phi_mean * h_mean[:, None]
    trace = gram.diagonal(dim1=1, dim2=2).sum(dim=1)
    ridge = 1e-10 * trace / k + torch.finfo(dtype).tiny
    eye = torch.eye(k, dtype=dtype, device=device)
    coefficients = torch.linalg.solve(gram + ridge[:, None, None] * eye, cross[:, :, None])[..., 0]
    intercept = h_mean - (phi_mean * coefficients).sum(dim=1)
    return torch.cat([coefficients, intercept[:, None]], dim=1)
