"""The forward map: a trained network → for every hidden neuron, a pair of data points.

Layer by layer (DESIGN.md §2): layer ``l`` is matched in the representation ``Z_l`` — the images of the
input points under the *converted* layers ``0..l-1`` — with the trained layer expressed in that
representation by a least-squares change of basis from converted to trained features.

Methods (``method=``):

``"thesis"``
    The 2023 thesis baseline (research/conversion.md §1.1): ``x1`` among points within a ratio ``r`` of
    the hyperplane, ``x2`` by weight-norm preservation. One hidden ReLU layer only.
``"geometric"``
    Anchors: the ``n_anchors`` points nearest the level set on which the pair's first point must lie
    (``a(z) = −s2``; for tanh also the second point's, ``a(z) = s1 − s2``). Partners: tanh — the
    ``n_partners`` nearest data points (faiss) to the ideal partner ``z1 + s1·w/‖w‖²``; ReLU — the points
    in the best direction ``w/‖w‖`` from the anchor, any distance (the norm goes into the scale).
    Chosen by the smallest :func:`~dualmap.maps._scores.geometric_error`.
``"function"``
    The same candidates, chosen by the largest cosine between the candidate neuron's and the trained
    neuron's activations on ``n_eval`` data points.
``"assignment"``
    The function-space scores, but all neurons of a layer assigned jointly to *distinct* pairs by a
    linear assignment (:func:`scipy.optimize.linear_sum_assignment`), so neurons cannot pile onto one pair.
``"joint"`` (default)
    ``"function"``, then, among each neuron's ``n_list`` best-matching pairs, the combination that lets a
    linear map best reproduce what the next trained layer sees (its pre-activations; the outputs after
    the last hidden layer), by coordinate descent (:mod:`dualmap.maps._joint`). Neurons whose best pair
    reproduces them exactly (activation cosine 1) keep it, so planted networks are recovered exactly.
    The best gap closed of all methods in BENCHMARKS.md, at ~1.2–1.5× the time of ``"function"``.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .._backend import as_tensor, resolve_device, resolve_dtype, to_numpy
from .._progress import progress_bar
from .._validation import check_data
from ..network import MLP, activation_function
from ..swim.construction import swim_constants, swim_neurons
from ..swim.readout import fit_ridge
from ._joint import joint_select
from ._scores import (candidate_activations, candidate_similarity, column_cosine, eval_gram, geometric_error,
                      neuron_scores, point_groups)
from ._search import best_direction_partners, level_set_anchors, nearest_points, thesis_candidates
from .pairmap import PairMap, fingerprint

__all__ = ["to_pairs", "METHODS", "DEFAULT_METHOD"]

METHODS = ("thesis", "geometric", "function", "assignment", "joint")
DEFAULT_METHOD = "joint"

#: "joint" leaves a neuron on its best-matching pair when that pair already reproduces it to this activation
#: cosine: the joint step trades neuron-wise fidelity for the next layer's reconstruction only where the
#: data offer no pair that reproduces the neuron.
JOINT_LOCK = 0.999

#: Sweeps of local search around a warm pair (a neuron moves little between checkpoints).
LOCAL_ROUNDS = 2


def _check_network(mlp) -> list[str]:
    if not isinstance(mlp, MLP):
        raise TypeError(f"to_pairs expects a dualmap MLP (use dm.MLP.from_torch for torch models); got {type(mlp).__name__}")
    if mlp.n_hidden_layers < 1:
        raise ValueError("the network has no hidden layer to map")
    hidden = mlp.activations[:-1]
    for index, activation in enumerate(hidden):
        if activation not in ("relu", "tanh"):
            raise ValueError(
                f"hidden layer {index} has activation {activation!r}; a SWIM neuron exists only for 'relu' and 'tanh'"
            )
    return hidden


def to_pairs(mlp: MLP, X, *, method: str = DEFAULT_METHOD, n_anchors: int = 8, n_partners: int = 8,
             n_eval: int = 2048, ratio: float = 0.04, max_candidates: int = 64, seed: int = 0,
             refine_rounds: int = 4, n_neighbors: int = 16, n_list: int = 32, device="auto", dtype="float32",
             progress: bool = True, warm_pairs=None, warm_margin: float = 1e-3, warm_network: MLP | None = None,
             settle_angle: float = 0.02, local_tolerance: float = 0.02, cache: dict | None = None) -> PairMap:
    """Map every hidden neuron of ``mlp`` to the ordered pair of rows of ``X`` whose SWIM neuron reproduces it.

    Parameters
    ----------
    mlp : MLP
        A trained network with ReLU or tanh hidden layers (``dm.MLP.from_torch`` converts torch models).
    X : ndarray of shape (n_samples, n_features)
        The data whose points may form pairs (usually the training inputs).
    method : {"joint", "function", "geometric", "assignment", "thesis"}, default="joint"
        See the module docstring.
    n_anchors, n_partners : int, default=8
        Candidate pool per neuron: ``n_anchors`` first points × ``n_partners`` partners (twice for tanh).
    n_eval : int, default=2048
        Points on which ``"function"``/``"assignment"`` compare activations (a seeded subset of ``X``).
    ratio, max_candidates : float, int
        The thesis baseline's threshold ratio ``r`` and its cap on ``x1`` candidates.
    n_list : int, default=32
        ``"joint"``: how many of each neuron's best-matching pairs the joint selection may choose from.
    refine_rounds, n_neighbors : int, default=4, 16
        ``"function"`` and ``"joint"``: sweeps of local search that replace either point of a pair by one of its
        ``n_neighbors`` nearest data points when the activation similarity rises (0 switches it off).
    seed : int
        Seeds the evaluation subset.
    device, dtype : where and in which precision the search runs; scores are reported in float64.
    progress : bool
        Progress bar over layers.
    warm_pairs : PairMap or list of ndarray, optional
        A previous map (e.g. of an earlier checkpoint), or its pairs: added to every neuron's candidates.
    warm_network : MLP, optional
        The network ``warm_pairs`` (a PairMap) was computed for. A neuron is then *settled*, and keeps its
        warm pair without any search, when its trained activations on the evaluation points turned by at
        most ``settle_angle`` radians and its warm pair's activation cosine fell by at most ``warm_margin``
        (no candidate's cosine can then have moved by more than the angle turned). The other neurons first
        search locally around their warm pair (``LOCAL_ROUNDS`` = 2 sweeps) and keep the result if its cosine is
        within ``local_tolerance`` of their previous match; only the rest go through the full search.
    cache : dict, optional
        Computations on ``X`` that repeated calls with the same ``X``, ``seed`` and ``n_eval`` can share
        (the first layer's ``Z·Z_evalᵀ`` and nearest neighbours); :func:`dualmap.track` passes one.
    warm_margin : float, default=1e-3
        With ``warm_pairs``: a neuron leaves its warm pair only for a pair whose activation cosine is higher
        by more than ``warm_margin`` (``"joint"``: that also lowers the reconstruction residual by more than
        ``warm_margin`` times an average neuron's share ``‖Y‖²/width``). Without this hysteresis,
        near-ties between equally good pairs would flip at every checkpoint and pose as switches.

    Returns
    -------
    PairMap
    """
    started = time.perf_counter()
    hidden = _check_network(mlp)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; available: {list(METHODS)}")
    X = check_data(X, min_samples=2, n_features=mlp.input_dim)
    if not np.any(np.ptp(X, axis=0) > 0):
        raise ValueError("X holds fewer than 2 distinct points; no pair can be formed")
    if method == "thesis" and (mlp.n_hidden_layers != 1 or hidden[0] != "relu"):
        raise ValueError(
            f"the thesis baseline handles one hidden ReLU layer only; this network has {mlp.n_hidden_layers} hidden "
            f"layer(s) with activations {hidden}"
        )
    for name, value in (("n_anchors", n_anchors), ("n_partners", n_partners), ("n_eval", n_eval),
                        ("max_candidates", max_candidates), ("n_neighbors", n_neighbors), ("n_list", n_list)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int; got {value!r}")
    if not isinstance(refine_rounds, (int, np.integer)) or refine_rounds < 0:
        raise ValueError(f"refine_rounds must be an int >= 0; got {refine_rounds!r}")
    warm_match = None
    if isinstance(warm_pairs, PairMap):
        warm_match = [layer_scores.get("match_score") for layer_scores in warm_pairs.scores]
        warm_pairs = warm_pairs.pairs
    if warm_pairs is not None and [len(p) for p in warm_pairs] != list(mlp.hidden_widths):
        raise ValueError(f"warm_pairs must have one (width, 2) array per hidden layer {mlp.hidden_widths}")
    if warm_network is not None and (warm_match is None or [w.shape for w in warm_network.weights]
                                     != [w.shape for w in mlp.weights]):
        raise ValueError("warm_network needs warm_pairs to be the PairMap of that network, with the same architecture")

    torch_device, search_dtype = resolve_device(device), resolve_dtype(dtype)
    x_fingerprint = fingerprint(X)
    rng = np.random.default_rng(seed)
    eval_rows = torch.as_tensor(np.sort(rng.choice(len(X), size=min(n_eval, len(X)), replace=False)),
                                device=torch_device)
    # Everything that decides between candidates runs in float64; ``dtype`` sets the precision of the
    # candidate search only (the O(n·d·width·n_anchors) products), which float32 halves.
    X_t = as_tensor(X, device=torch_device, dtype=torch.float64)
    trained_in, converted_in, previous_in = X_t, X_t, X_t
    pairs_out, scales_out, scores_out, n_settled, n_local = [], [], [], [], []
    layer_cache = None
    if cache is not None:
        key = (x_fingerprint, seed, n_eval, n_neighbors, str(search_dtype), str(torch_device))
        if cache.get("key") != key:
            cache.clear()
            cache["key"] = key
        layer_cache = cache
    with torch.no_grad():
        for layer in progress_bar(range(mlp.n_hidden_layers), desc=f"map ({method})", disable=not progress,
                                  unit="layer"):
            activation = hidden[layer]
            sigma = activation_function(activation)
            weight = as_tensor(mlp.weights[layer], device=torch_device, dtype=torch.float64)
            bias = as_tensor(mlp.biases[layer], device=torch_device, dtype=torch.float64)
            trained_pre = torch.addmm(bias, trained_in, weight.T)
            trained_activation = sigma(trained_pre)
            Z = converted_in
            if layer == 0:   # the converted representation is X itself
                eff_weight, eff_bias, pre = weight, bias, trained_pre
            else:   # express the trained layer in the converted representation
                basis = fit_ridge(converted_in, trained_in, "auto")
                eff_weight, eff_bias = weight @ basis.weight, bias + weight @ basis.bias
                pre = torch.addmm(eff_bias, Z, eff_weight.T)                               # (n, width)
            joint_target = None
            if method == "joint":   # what the next trained layer sees: its pre-activations (the outputs at the end)
                next_weight = as_tensor(mlp.weights[layer + 1], device=torch_device, dtype=torch.float64)
                next_bias = as_tensor(mlp.biases[layer + 1], device=torch_device, dtype=torch.float64)
                joint_target = torch.addmm(next_bias, trained_activation[eval_rows], next_weight.T)
            warm = None if warm_pairs is None else torch.as_tensor(np.asarray(warm_pairs[layer]), device=torch_device)
            settled = torch.zeros(len(weight), dtype=torch.bool, device=torch_device)
            if warm_network is not None and method != "thesis":
                previous = sigma(torch.addmm(as_tensor(warm_network.biases[layer], device=torch_device,
                                                       dtype=torch.float64), previous_in,
                                             as_tensor(warm_network.weights[layer], device=torch_device,
                                                       dtype=torch.float64).T))
                turned = column_cosine(trained_activation[eval_rows], previous[eval_rows])
                warm_similarity = candidate_similarity(Z, eval_rows, trained_activation[eval_rows], warm[:, None, :],
                                                       activation)[:, 0]
                previous_match = as_tensor(warm_match[layer], device=torch_device, dtype=torch.float64)
                settled = (turned >= math.cos(settle_angle)) & (warm_similarity >= previous_match - warm_margin)
                previous_in = previous
            gram, neighbors, groups = None, None, None
            if layer == 0 and layer_cache is not None:   # X and the evaluation rows are the same on every call
                if "gram" not in layer_cache:
                    layer_cache["gram"] = eval_gram(Z, eval_rows, len(Z))
                    layer_cache["neighbors"] = _empty_neighbors(Z, n_neighbors)
                    layer_cache["groups"] = point_groups(Z)
                gram, neighbors, groups = layer_cache["gram"], layer_cache["neighbors"], layer_cache["groups"]
            if neighbors is None:
                neighbors = _empty_neighbors(Z, n_neighbors)
            if groups is None and method != "thesis":
                groups = point_groups(Z)
            resolved = settled.clone()
            pairs, match = (warm.clone(), warm_similarity.clone()) if warm_network is not None else (None, None)
            local = torch.nonzero(~settled).flatten()
            if warm_network is not None and method in ("function", "joint") and refine_rounds and len(local):
                # unsettled neurons: local search around the warm pair first; the global search only for
                # the neurons whose best nearby pair is clearly worse than what they had
                local_rounds = min(refine_rounds, LOCAL_ROUNDS)
                if gram is None:   # computed once for the layer: the global search below reuses it
                    gram = eval_gram(Z, eval_rows, len(local) * 2 * n_neighbors * local_rounds
                                     + (len(local) // 2) * (n_anchors * n_partners + 2 * n_neighbors * refine_rounds))
                found, found_match = _refine(Z, Z.to(search_dtype), warm[local], warm_similarity[local],
                                             trained_activation[eval_rows][:, local], eval_rows, activation,
                                             local_rounds, n_neighbors, warm_margin, gram, neighbors, groups)
                near_enough = found_match >= previous_match[local] - local_tolerance
                pairs[local], match[local] = found, found_match
                resolved[local[near_enough]] = True
                n_local.append(int(near_enough.sum()))
            free = torch.nonzero(~resolved).flatten()
            if len(free):
                fixed = None
                if method == "joint" and bool(resolved.any()):
                    fixed = candidate_activations(Z, Z[eval_rows], pairs[resolved][:, None, :], activation)[:, 0, :]
                found, found_match = _match_layer(
                    method, Z, Z.to(search_dtype), pre[:, free], eff_weight[free], eff_bias[free], activation,
                    trained_activation[:, free], eval_rows, n_anchors, n_partners, ratio, max_candidates,
                    None if warm is None else warm[free], refine_rounds, n_neighbors, n_list, joint_target,
                    warm_margin, fixed, gram, neighbors, groups)
                if pairs is None:
                    pairs, match = found, found_match
                else:
                    pairs[free], match[free] = found, found_match.to(match.dtype)
            n_settled.append(int(settled.sum()))
            conv_weight, conv_bias = swim_neurons(Z[pairs[:, 0]], Z[pairs[:, 1]], activation)
            converted_out = sigma(torch.addmm(conv_bias, Z, conv_weight.T))
            radius = float(((Z - Z.mean(dim=0)) ** 2).sum(dim=1).mean().sqrt())
            scores = neuron_scores(eff_weight, eff_bias, conv_weight, conv_bias, trained_activation, converted_out,
                                   radius)
            scores["match_score"] = match.double()
            if activation == "relu" and method != "thesis":
                scale = 1.0 / scores["norm_ratio"]
            else:   # tanh has no scale freedom; the thesis matches norms and keeps scale 1
                scale = torch.ones(len(pairs), dtype=torch.float64, device=torch_device)
            pairs_out.append(to_numpy(pairs).astype(np.int64))
            scales_out.append(to_numpy(scale))
            scores_out.append({name: to_numpy(value) for name, value in scores.items()})
            trained_in, converted_in = trained_activation, converted_out
        trained_output = to_numpy(mlp.forward(X_t.cpu()))
    teacher = (mlp.weights[-1].astype(np.float64), mlp.biases[-1].astype(np.float64), trained_output.mean(axis=0))
    params = dict(n_anchors=n_anchors, n_partners=n_partners, n_eval=n_eval, refine_rounds=refine_rounds,
                  n_neighbors=n_neighbors, n_list=n_list, seed=seed, dtype=str(dtype), warm_start=warm_pairs is not None)
    if warm_pairs is not None:
        params["warm_margin"] = warm_margin
    if warm_network is not None:
        params.update(settle_angle=settle_angle, local_tolerance=local_tolerance, settled=n_settled,
                      resolved_locally=n_local)
    if method == "thesis":
        params = dict(ratio=ratio, max_candidates=max_candidates)
    return PairMap(pairs=pairs_out, scales=scales_out, scores=scores_out, activations=list(hidden), method=method,
                   params=params, x_fingerprint=x_fingerprint, teacher_readout=teacher,
                   seconds=time.perf_counter() - started)


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
        for level, sign in ((-s2, 1.0), (s1 - s2, -1.0)):                                  # anchor = first / second point
            anchors = level_set_anchors(pre, level, n_anchors)
            queries = Z[anchors] + sign * step[:, None, :]                                 # (width, m, d)
            partners = nearest_points(Z, queries.reshape(-1, Z.shape[1]), n_partners).to(Z.device)
            partners = partners.reshape(width, anchors.shape[1], -1)
            anchor = anchors[:, :, None].expand_as(partners)
            pair = (anchor, partners) if sign > 0 else (partners, anchor)
            pools.append(torch.stack(pair, dim=-1).reshape(width, -1, 2))
    return torch.cat(pools, dim=1)


def _match_layer(method, Z, Z_search, pre, weight, bias, activation, trained_activation, eval_rows, n_anchors,
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
    nearest data points when that raises the activation similarity by more than ``margin``; ``rounds``
    sweeps, all neurons at once. ``neighbors`` (n, n_neighbors), −1 where unknown, is filled on demand and
    may be shared between calls on the same ``Z``."""
    if neighbors is None:
        neighbors = _empty_neighbors(Z, n_neighbors)
    if groups is None:
        groups = point_groups(Z)
    rows = torch.arange(len(pairs), device=Z.device)
    for _ in range(rounds):
        first, second = pairs[:, 0], pairs[:, 1]
        needed = torch.unique(pairs)
        needed = needed[neighbors[needed, 0] < 0]
        if len(needed):   # nearest neighbours of the pairs' points only (a full kNN graph costs n² d)
            found = nearest_points(Z_search, Z_search[needed], n_neighbors + 1).to(Z.device)
            neighbors[needed] = torch.where(found[:, :1] == needed[:, None], found[:, 1:], found[:, :-1])
        moved_first = torch.stack([neighbors[first], second[:, None].expand(-1, n_neighbors)], dim=-1)
        moved_second = torch.stack([first[:, None].expand(-1, n_neighbors), neighbors[second]], dim=-1)
        candidates = torch.cat([moved_first, moved_second], dim=1)                             # (width, 2k, 2)
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


def _empty_neighbors(Z, n_neighbors):
    return torch.full((len(Z), n_neighbors), -1, dtype=torch.int64, device=Z.device)


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
