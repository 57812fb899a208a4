"""What a trajectory of forward maps measures: one function per quantity (docs/maths.md §7).

Notation: checkpoint ``t``, hidden layer ``l`` of width ``m_l``, neuron ``k`` with pair ``(p_k, q_k)``
(rows of ``X``), activation correlation ``ρ_k`` (the map's match quality, cosine of activation vectors on
the data), trained activations ``h_k(x)`` and outgoing weights ``W_{l+1}[:, k]``.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import spearmanr

from .._backend import as_tensor, to_numpy
from ..network import MLP, activation_function
from ..swim.density import score_candidates

__all__ = ["neuron_contributions", "point_importance", "switch_rate", "neuron_drift", "effective_number",
           "swim_point_density", "rank_correlation"]


def neuron_contributions(mlp: MLP, X) -> list[np.ndarray]:
    """How much the next layer receives from each hidden neuron: ``u_k = ‖W_{l+1}[:, k]‖₂ · RMS_X(h_k)``.

    The outgoing weight norm measured in units of the neuron's own activation on ``X``, so that the
    ReLU rescaling ``(w_k, b_k, W_{l+1}[:, k]) → (c w_k, c b_k, W_{l+1}[:, k]/c)``, which leaves the
    function unchanged, leaves ``u_k`` unchanged too.

    Returns
    -------
    list of ndarray of shape (m_l,), one per hidden layer.
    """
    contributions = []
    H = as_tensor(X, device=torch.device("cpu"), dtype=torch.float64)
    for layer in range(mlp.n_hidden_layers):
        H = _layer_output(mlp, H, layer)
        rms = torch.sqrt((H * H).mean(dim=0))
        out_norm = torch.linalg.vector_norm(torch.as_tensor(mlp.weights[layer + 1], dtype=torch.float64), dim=0)
        contributions.append(to_numpy(out_norm * rms))
    return contributions


def _layer_output(mlp: MLP, H: torch.Tensor, layer: int) -> torch.Tensor:
    weight = torch.as_tensor(mlp.weights[layer], dtype=torch.float64)
    bias = torch.as_tensor(mlp.biases[layer], dtype=torch.float64)
    return activation_function(mlp.activations[layer])(torch.addmm(bias, H, weight.T))


def point_importance(pairs: list, contributions: list, correlations: list, n_points: int) -> np.ndarray:
    """How much of the network rests on each data point.

    .. math:: I(i) = \\frac1L \\sum_{l=1}^{L} \\sum_{k=1}^{m_l} \\frac{u_k}{\\sum_j u_j}\\,\\max(\\rho_k, 0)\\,
              \\frac{[p_k = i] + [q_k = i]}{2}

    Each layer hands out at most 1 (exactly 1 when every neuron is matched perfectly), shared by the
    contribution ``u_k`` (:func:`neuron_contributions`) and the match quality ``ρ_k`` of its neurons, half
    to each point of a neuron's pair. So ``ΣI`` is the contribution-weighted mean match quality.

    Parameters
    ----------
    pairs, contributions, correlations : list over layers of arrays of shape (m_l, 2), (m_l,), (m_l,)
    n_points : int

    Returns
    -------
    ndarray of shape (n_points,)
    """
    importance = np.zeros(n_points)
    for layer_pairs, u, rho in zip(pairs, contributions, correlations):
        u = np.asarray(u, dtype=np.float64)
        total = u.sum()
        if total <= 0:
            continue
        weight = u / total * np.clip(np.asarray(rho, dtype=np.float64), 0.0, None) / 2.0
        layer_pairs = np.asarray(layer_pairs)
        importance += np.bincount(layer_pairs[:, 0], weight, minlength=n_points)
        importance += np.bincount(layer_pairs[:, 1], weight, minlength=n_points)
    return importance / len(pairs)


def switch_rate(pairs_before: list, pairs_after: list) -> np.ndarray:
    """Per layer, the fraction of neurons whose ordered pair changed: ``mean_k [(p_k, q_k) ≠ (p'_k, q'_k)]``."""
    return np.array([float(np.mean(np.any(np.asarray(a) != np.asarray(b), axis=1)))
                     for a, b in zip(pairs_before, pairs_after)])


def _neuron_points(weight: np.ndarray, bias: np.ndarray, activation: str) -> np.ndarray:
    """Neurons as points ``(w_k, b_k)``; ReLU neurons normalised to the unit sphere (scale-free)."""
    points = np.concatenate([np.asarray(weight, dtype=np.float64), np.asarray(bias, dtype=np.float64)[:, None]], axis=1)
    if activation == "relu":
        norms = np.linalg.norm(points, axis=1, keepdims=True)
        points = points / np.where(norms > 0, norms, 1.0)
    return points


def neuron_drift(before: MLP, after: MLP) -> np.ndarray:
    """Per hidden layer, the 2-Wasserstein distance between the neurons of two networks.

    Each neuron is a point ``(w_k, b_k)`` (ReLU: divided by its norm, since ``c·(w, b)`` is the same neuron up
    to a scale the next layer absorbs), every neuron has mass ``1/m_l``, the cost is the squared Euclidean
    distance, and the optimal transport is solved exactly (POT's ``emd2``). It ignores which neuron is which,
    unlike the switch rate: it asks whether the *set* of neurons moved.
    """
    import ot

    drift = []
    for layer in range(before.n_hidden_layers):
        activation = before.activations[layer]
        a = _neuron_points(before.weights[layer], before.biases[layer], activation)
        b = _neuron_points(after.weights[layer], after.biases[layer], activation)
        cost = ot.dist(a, b, metric="sqeuclidean")
        mass_a, mass_b = np.full(len(a), 1.0 / len(a)), np.full(len(b), 1.0 / len(b))
        drift.append(float(np.sqrt(max(ot.emd2(mass_a, mass_b, cost, numItermax=1_000_000), 0.0))))
    return np.array(drift)


def effective_number(importance: np.ndarray) -> float:
    """Effective number of points carrying the network: ``exp(−Σ p_i log p_i)``, ``p = I / ΣI``.

    ``n`` when ``n`` points share the importance equally; 0 when no point has any importance.
    """
    importance = np.asarray(importance, dtype=np.float64)
    total = importance.sum()
    if total <= 0:
        return 0.0
    p = importance[importance > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


def swim_point_density(X, targets, *, n_partners: int = 32, seed: int = 0) -> np.ndarray:
    """SWIM's own weight on each data point: the probability that a SWIM-drawn pair contains it.

    SWIM draws the ordered pair ``(i, j)`` with probability ∝ ``g(i, j)`` (:mod:`dualmap.swim.density`), so
    point ``i`` lies in a drawn pair with probability ∝ ``Σ_j g(i, j) + g(j, i) = 2 Σ_j g(i, j)``. The sum is
    estimated from ``n_partners`` uniformly drawn partners per point (seeded, float32 distances) and normalised
    to sum to 1.
    """
    Z = as_tensor(X, device=torch.device("cpu"), dtype=torch.float32)    # an estimate: float32 distances suffice
    targets = torch.as_tensor(np.asarray(targets, dtype=np.float64).reshape(len(Z), -1))
    rng = np.random.default_rng(seed)
    n = len(Z)
    first = np.repeat(np.arange(n), n_partners)
    partners = (first + rng.integers(1, n, size=len(first))) % n
    scores, _ = score_candidates(Z, np.stack([first, partners], axis=1), targets)
    density = to_numpy(scores).reshape(n, n_partners).sum(axis=1)
    total = density.sum()
    return density / total if total > 0 else np.full(n, 1.0 / n)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (ties get average ranks); NaN when either input is constant."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)
