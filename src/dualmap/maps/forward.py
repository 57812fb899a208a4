"""The forward map: a trained network → for every hidden neuron, ``k`` ordered pairs of data points (its
atoms) and the affine combination of their SWIM neurons that reproduces it (docs/maths.md §5).

Layer by layer, as SWIM defines deep networks: layer ``l`` is matched in the representation ``Z_l`` — the
images of the data under the *rebuilt* layers ``0..l-1`` (every atom a SWIM neuron, ``width·k`` columns) —
where the trained layer is expressed exactly by folding the previous layer's coefficients into its weights
(:func:`~dualmap.maps.pairmap.fold_coefficients`). The target of every neuron is its *trained* activation, so
errors of a layer below are not passed on as targets.

Methods (``method=``):

``"downstream"`` (default)
    Each neuron's pool — geometric candidates (below), ``n_random`` uniform pairs, and on a warm start the
    previous atoms — is searched by orthogonal matching pursuit for its ``k`` atoms; then, among each
    neuron's ``n_list`` best candidates, coordinate descent chooses the atoms that best reproduce what the
    next trained layer receives (the readout after the last hidden layer), and ``refine_rounds`` rounds of
    local search move the atoms' points to nearby data points (:mod:`dualmap.maps._atoms`). The only method
    with ``atoms > 1`` and ``steepness="free"``.
``"joint"``
    ``"function"``, then coordinate descent that lets a *refit* linear map best reproduce the next layer's
    input (:mod:`dualmap.maps._joint`): the best choice when the readout will be refit.
``"function"``
    Geometric candidates chosen by the largest cosine between the candidate's and the trained neuron's
    activations on ``n_eval`` data points, then local search.
``"assignment"``
    The function-space scores, with all neurons of a layer assigned jointly to *distinct* pairs.
``"geometric"``
    Anchors: the ``n_anchors`` points nearest the level set on which the pair's first point must lie
    (``a(z) = −s2``; tanh also the second point's). Partners: tanh — the ``n_partners`` nearest points to
    the ideal partner ``z1 + s1·w/‖w‖²``; ReLU — the points in the best direction ``w/‖w‖`` from the anchor.
    Chosen by the smallest geometric error.
``"thesis"``
    The 2023 thesis baseline, one hidden ReLU layer only.

Every method ends the same way: the coefficients are fitted by least squares on ``X``, neuron by neuron
(:func:`~dualmap.maps._atoms.fit_coefficients`), so every map can be rebuilt through the trained readout
(``PairMap.to_mlp(X, readout="trained")``).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from .._backend import as_tensor, to_numpy
from .._progress import progress_bar
from .._validation import check_activation
from ..network import MLP, activation_function
from ..swim.construction import swim_neurons
from ._atoms import (
    EXACT,
    descend_atoms,
    fit_coefficients,
    greedy_atoms,
    neuron_residuals,
    steepness_for,
)
from ._scores import candidate_activations, column_cosine, neuron_scores
from ._single import candidate_pairs, match_single, neighbour_moves
from .context import (
    DEFAULT_METHOD,
    METHODS,
    DataContext,
    SearchOptions,
    WarmStart,
    representation_key,
)
from .pairmap import PairMap, fold_coefficients, network_fingerprint

__all__ = ["to_pairs", "map_network", "null_map", "METHODS", "DEFAULT_METHOD", "NULL_SAMPLERS", "check_network"]

#: Null maps: ``k`` pairs per neuron drawn uniformly, or from SWIM's density, then fitted like a map.
NULL_SAMPLERS = ("uniform", "swim")

#: Neurons per batch when a layer's candidate pools are scored (bounds the (chunk, pool, n_eval) temporaries).
_CHUNK = 32
#: Largest (width, list, n_eval) float64 block of short-list features kept in memory during the descent.
_FEATURE_BYTES = 1 << 30


def check_network(mlp) -> list[str]:
    """The hidden activations of ``mlp``; a clear error for anything a forward map cannot read."""
    if not isinstance(mlp, MLP):
        raise TypeError("to_pairs expects a dualmap MLP (use dm.MLP.from_torch for torch models); "
                        f"got {type(mlp).__name__}")
    if mlp.n_hidden_layers < 1:
        raise ValueError("the network has no hidden layer to map")
    hidden = mlp.activations[:-1]
    for index, activation in enumerate(hidden):   # a SWIM neuron exists only for these
        check_activation(activation, name=f"hidden layer {index} activation")
    return hidden


def to_pairs(mlp: MLP, X, *, method: str = DEFAULT_METHOD, atoms: int = 1, steepness: str = "swim",
             n_anchors: int = 8, n_partners: int = 8, n_random: int = 64, n_eval: int = 2048, n_list: int = 32,
             refine_rounds: int | None = None, n_neighbors: int = 16, sweeps: int = 3, ratio: float = 0.04,
             max_candidates: int = 64, seed: int = 0, device="auto", dtype="float32",
             progress: bool = True) -> PairMap:
    """Map every hidden neuron of ``mlp`` to ``atoms`` ordered pairs of rows of ``X`` and the affine combination of
    their SWIM neurons that reproduces it.

    Parameters
    ----------
    mlp : MLP
        A trained network with ReLU or tanh hidden layers (``dm.MLP.from_torch`` converts torch models).
    X : ndarray of shape (n_samples, n_features)
        The data whose points may form pairs (usually the training inputs).
    method : {"downstream", "joint", "function", "assignment", "geometric", "thesis"}, default="downstream"
        See the module docstring.
    atoms : int, default=1
        ``k``, atoms per neuron (``method="downstream"`` for ``k > 1``); a coefficient may be 0.
    steepness : {"swim", "free"}, default="swim"
        ``"free"``: tanh atoms take the trained neuron's steepness (a relaxation: no longer SWIM neurons).
    n_anchors, n_partners : int, default=8
        Geometric candidates per neuron: ``n_anchors`` first points × ``n_partners`` partners (twice for tanh).
    n_random : int, default=64
        ``"downstream"``: uniform random pairs added to every neuron's pool.
    n_eval : int, default=2048
        Points on which candidates are compared (a seeded subset of ``X``).
    n_list : int, default=32
        ``"joint"``/``"downstream"``: how many of each neuron's best candidates the joint choice may use.
    refine_rounds, n_neighbors : int, default=None, 16
        Rounds of local search that move either point of a pair to one of its ``n_neighbors`` nearest data
        points (0 switches it off; None: 2 for ``"downstream"``, which uses at most 8 neighbours, 4 otherwise).
    sweeps : int, default=3
        ``"downstream"``: coordinate-descent passes per round.
    ratio, max_candidates : float, int
        The thesis baseline's threshold ratio ``r`` and its cap on ``x1`` candidates.
    seed : int
        Seeds the evaluation subset and the random pairs.
    device, dtype : where and in which precision the candidate search runs; choices are made in float64.
    progress : bool
        Progress bar over layers.

    Returns
    -------
    PairMap
        With ``atoms[l]`` (width, k, 2), ``coefficients[l]`` (width, k + 1) and ``pairs[l]`` (width, 2), the
        principal atoms; ``pm.to_mlp(X, readout="trained")`` is the rebuilt network.
    """
    if refine_rounds is None:
        refine_rounds = 2 if method == "downstream" else 4
    options = SearchOptions(method=method, atoms=atoms, steepness=steepness, n_anchors=n_anchors,
                            n_partners=n_partners, n_random=n_random, n_eval=n_eval, n_list=n_list,
                            refine_rounds=refine_rounds, n_neighbors=n_neighbors, sweeps=sweeps, ratio=ratio,
                            max_candidates=max_candidates, seed=seed, dtype=dtype)
    check_network(mlp)
    context = DataContext.build(X, n_features=mlp.input_dim, n_eval=n_eval, seed=seed, device=device, dtype=dtype,
                                n_neighbors=n_neighbors, keep=False)
    return map_network(mlp, context, options, progress=progress)


def map_network(mlp: MLP, context: DataContext, options: SearchOptions, *, warm: WarmStart | None = None,
                progress: bool = False, select=None) -> PairMap:
    """The forward map of ``mlp`` on a prepared :class:`DataContext` (shared across calls by tracking),
    optionally seeded by an earlier map (:class:`WarmStart`). :func:`to_pairs` is the public entry point.

    ``select(problem, context)`` → atoms (width, k, 2) replaces the search (the null maps of :func:`null_map`)."""
    started = time.perf_counter()
    hidden = check_network(mlp)
    if options.method == "thesis" and (mlp.n_hidden_layers != 1 or hidden[0] != "relu"):
        raise ValueError(
            f"the thesis baseline handles one hidden ReLU layer only; this network has {mlp.n_hidden_layers} hidden "
            f"layer(s) with activations {hidden}"
        )
    if warm is not None:
        warm.check(mlp)
    device = context.device
    tensor = _as_float64(device)
    representation, key = context.representation(None), None
    trained_in = representation.Z
    previous_in = representation.Z
    result = _Layers()
    coefficients = None
    with torch.no_grad():
        for layer in progress_bar(range(mlp.n_hidden_layers), desc=f"map ({options.method})",
                                  disable=not progress, unit="layer"):
            activation = hidden[layer]
            sigma = activation_function(activation)
            weight, bias = tensor(mlp.weights[layer]), tensor(mlp.biases[layer])
            trained = sigma(torch.addmm(bias, trained_in, weight.T))                           # (n, width)
            if layer == 0:
                eff_weight, eff_bias = weight, bias
            else:   # the trained layer acting on the rebuilt atoms below: exact, no fit
                eff_weight, eff_bias = fold_coefficients(weight, bias, coefficients)
            problem = _LayerProblem(
                layer=layer, activation=activation, representation=representation, weight=eff_weight,
                bias=eff_bias, trained=trained, downstream=tensor(mlp.weights[layer + 1]),
                next_bias=tensor(mlp.biases[layer + 1]))
            settled, warm_atoms, warm_steepness, warm_residuals = None, None, None, None
            if warm is not None:
                warm_atoms = torch.as_tensor(warm.pair_map.atoms[layer], device=device)
                if warm.pair_map.steepness is not None:
                    warm_steepness = tensor(warm.pair_map.steepness[layer])
                previous = sigma(torch.addmm(tensor(warm.network.biases[layer]), previous_in,
                                             tensor(warm.network.weights[layer]).T))
                settled, warm_residuals = _settled(problem, context, warm, warm_atoms, warm_steepness, previous)
                problem.settled = settled
                previous_in = previous
            if select is not None:
                atoms, steep, match = select(problem, context), None, None
            elif options.method == "downstream" and warm is not None and warm.relocate is not None:
                atoms, steep, match = _downstream_warm(problem, context, options, warm_atoms, warm_steepness,
                                                       settled, warm, warm_residuals)
            elif options.method == "downstream":
                atoms, steep, match = _downstream(problem, context, options, warm_atoms, warm_steepness, settled,
                                                  warm, warm_residuals)
            else:
                atoms, match = _single(problem, context, options, warm_atoms, settled, warm)
                steep = None
            layer_map = _finish(problem, atoms, steep, match, context, options)
            context.release(representation)
            coefficients = layer_map["coefficients_tensor"]
            result.add(layer_map)
            key = representation_key(layer, layer_map["atoms"], layer_map["steepness"], key)
            representation = context.representation(key, make=lambda features=layer_map["features"]: features)
            trained_in = trained
        trained_output = mlp.predict(context.X)
    teacher = (mlp.weights[-1].astype(np.float64), mlp.biases[-1].astype(np.float64), trained_output.mean(axis=0))
    params = options.params()
    if warm is not None:
        params.update(warm_start=True, settle_angle=warm.settle_angle, warm_margin=warm.margin,
                      warm_relocate=warm.relocate, settled=result.settled, relocated=result.relocated)
    return PairMap(pairs=[a[:, 0] for a in result.atoms], scales=result.scales, scores=result.scores,
                   activations=list(hidden), method=options.method, params=params,
                   x_fingerprint=context.fingerprint, teacher_readout=teacher, seconds=time.perf_counter() - started,
                   atoms=result.atoms, coefficients=result.coefficients,
                   steepness=result.steepness if options.steepness == "free" else None,
                   network_fingerprint=network_fingerprint(mlp))


def null_map(mlp: MLP, X, *, atoms: int = 1, sampler: str = "uniform", targets=None, seed: int = 0,
             device="auto") -> PairMap:
    """The null model of a ``k``-atom map: every neuron gets ``atoms`` pairs *drawn* instead of searched —
    uniformly (``"uniform"``) or from SWIM's density of ``targets`` (``"swim"``; default targets: the trained
    network's outputs) — in the rebuilt representation of each layer, with the coefficients fitted exactly as
    for a map. Its ``to_mlp(X, readout="trained")`` is the null of ``r2_through`` (docs/maths.md §5).
    """
    from ..swim.density import sample_pairs

    if sampler not in NULL_SAMPLERS:
        raise ValueError(f"sampler must be one of {list(NULL_SAMPLERS)}; got {sampler!r}")
    options = SearchOptions(method="downstream", atoms=atoms, seed=seed)
    check_network(mlp)
    context = DataContext.build(X, n_features=mlp.input_dim, seed=seed, device=device, n_neighbors=1)
    score_targets = None
    if sampler == "swim":
        score_targets = mlp.predict(context.X) if targets is None else np.asarray(targets, dtype=np.float64)
        score_targets = as_tensor(score_targets.reshape(len(context.X), -1), device=context.device,
                                  dtype=torch.float64)
    rng = np.random.default_rng(seed)

    def draw(problem, context):
        pairs = sample_pairs(problem.Z, problem.width * atoms, rng, targets=score_targets, layer=problem.layer)
        return torch.as_tensor(pairs, device=context.device).reshape(problem.width, atoms, 2)

    pair_map = map_network(mlp, context, options, select=draw)
    pair_map.method = f"null_{sampler}"
    return pair_map


def _as_float64(device):
    def convert(array):
        return as_tensor(array, device=device, dtype=torch.float64)
    return convert


class _Layers:
    """What the layers of one map accumulate."""

    def __init__(self):
        self.atoms, self.coefficients, self.steepness, self.scales, self.scores = [], [], [], [], []
        self.settled, self.relocated = [], []

    def add(self, layer_map: dict) -> None:
        self.atoms.append(layer_map["atoms"])
        self.coefficients.append(layer_map["coefficients"])
        self.steepness.append(layer_map["steepness"])
        self.scales.append(layer_map["scales"])
        self.scores.append(layer_map["scores"])
        self.settled.append(layer_map["settled"])
        self.relocated.append(layer_map["relocated"])


class _LayerProblem:
    """One hidden layer to map: the trained neurons expressed in the rebuilt representation."""

    def __init__(self, *, layer, activation, representation, weight, bias, trained, downstream, next_bias):
        self.layer, self.activation, self.representation = layer, activation, representation
        self.weight, self.bias = weight, bias                 # in the rebuilt representation
        self.trained = trained                                # (n, width): the trained activations (targets)
        self.downstream, self.next_bias = downstream, next_bias
        self.settled = None           # warm starts: neurons that kept their atoms without a search
        self.relocated = None         # warm starts: neurons that needed the full search

    @property
    def Z(self) -> torch.Tensor:
        return self.representation.Z

    @property
    def width(self) -> int:
        return self.weight.shape[0]

    def pre_activation(self) -> torch.Tensor:
        return torch.addmm(self.bias, self.Z, self.weight.T)

    def target(self, eval_rows) -> torch.Tensor:
        """Centred trained activations on the evaluation rows, (width, S)."""
        target = self.trained[eval_rows].T
        return target - target.mean(dim=1, keepdim=True)


def _settled(problem, context, warm, warm_atoms, warm_steepness, previous) -> torch.Tensor:
    """Neurons that keep their warm atoms without a search (:class:`WarmStart`): activations turned by at most
    ``settle_angle`` and the warm atoms' neuron R² lower than before by at most ``margin``; and the residuals
    (width, S) of every neuron reproduced by its warm atoms."""
    rows = context.eval_rows
    turned = column_cosine(problem.trained[rows], previous[rows])
    residual = _atom_residuals(problem.Z, problem.Z[rows], warm_atoms, problem.activation,
                               context.gram(problem.representation, 0), problem.target(rows), warm_steepness)
    r2_now = _neuron_r2(residual, problem.target(rows))
    return (turned >= math.cos(warm.settle_angle)) & (r2_now >= _r2_before(problem, context, warm) - warm.margin), \
        residual


def _neuron_r2(residual: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 − ‖r_j‖²/‖h_j‖²`` per neuron (centred vectors on the evaluation rows)."""
    return 1.0 - (residual * residual).sum(dim=1) / (target * target).sum(dim=1).clamp_min(1e-300)


def _r2_before(problem, context, warm) -> torch.Tensor:
    """The neuron R² of the warm map's atoms when they were chosen (the previous checkpoint)."""
    return torch.as_tensor(warm.pair_map.scores[problem.layer].get("neuron_r2", np.zeros(problem.width)),
                           device=context.device, dtype=torch.float64)


def _downstream_warm(problem, context, options, warm_atoms, warm_steepness, settled, warm, warm_residuals):
    """A warm map of one layer: search near the previous atoms first, everywhere only where that fails.

    1. Every neuron that is not settled searches *locally*: its pool is its previous atoms and their neighbour
       moves (either point moved to one of its nearest data points), and the descent on what the next layer
       receives runs over all of them at once (settled neurons count through their fixed residuals).
    2. A neuron whose best local atoms leave more of it unexplained than its previous atoms did when they were
       chosen, by a factor above ``1 + warm.relocate`` (``1 − R²`` of the neuron), has left its neighbourhood: it
       gets the full search of a cold map, with every other neuron held at its step-1 atoms. A neuron its
       previous atoms reproduced exactly is searched fully unless a nearby pair reproduces it exactly again.

    Training moves most neurons a little between checkpoints, so step 1 follows them at a fraction of a cold
    map's cost; a pair that jumps (a planted change, a neuron that turned) is found again by step 2."""
    rows = context.eval_rows
    atoms, steep, _ = _downstream(problem, context, options, warm_atoms, warm_steepness, settled, warm,
                                  warm_residuals, local=True)
    target = problem.target(rows)
    residuals = _atom_residuals(problem.Z, problem.Z[rows], atoms, problem.activation,
                                context.gram(problem.representation, 0), target, steep)
    unexplained_before = 1.0 - _r2_before(problem, context, warm)
    lost = ~settled & (1.0 - _neuron_r2(residuals, target) > (1.0 + warm.relocate) * unexplained_before)
    problem.relocated = lost
    if bool(lost.any()):
        atoms, steep, _ = _downstream(problem, context, options, atoms, steep, ~lost, warm, residuals)
    return atoms, steep, None


def _atom_residuals(Z, Z_eval, atoms, activation, gram, target, steepness=None) -> torch.Tensor:
    """Residuals (width, S) of every neuron reproduced by its atoms (width, k, 2): least squares on the
    centred activations at the evaluation rows, in chunks of neurons."""
    residuals = torch.empty_like(target)
    index = torch.arange(atoms.shape[1], device=Z.device)
    for start in range(0, len(atoms), _CHUNK):
        part = slice(start, start + _CHUNK)
        features = _centred(candidate_activations(Z, Z_eval, atoms[part], activation, gram,
                                                  None if steepness is None else steepness[part]))
        residuals[part] = neuron_residuals(features, target[part], index.expand(len(features), -1))
    return residuals


def _centred(features: torch.Tensor) -> torch.Tensor:
    """``features`` minus their mean over the last axis, in place (every caller passes a fresh tensor)."""
    return features.sub_(features.mean(dim=-1, keepdim=True))


# ----------------------------------------------------------------------------------------- "downstream"
def _downstream(problem, context, options, warm_atoms, warm_steepness, settled, warm, warm_residuals=None, *,
                local=False):
    """k atoms per neuron: greedy on the neuron, coordinate descent on what the next layer receives, local search.

    Settled neurons (warm starts) keep their atoms; they take part in the descent's objective only through
    their fixed residuals ``warm_residuals``, and nothing is searched for them. ``local``: every neuron's pool
    is its warm atoms and their neighbour moves (no geometric or random candidates, no further rounds)."""
    Z, rows, activation = problem.Z, context.eval_rows, problem.activation
    k, device = options.atoms, context.device
    representation = problem.representation
    Z_search = context.search_view(representation)
    Z_eval = Z[rows]
    groups = representation.groups
    relaxed = options.steepness == "free" and activation == "tanh"
    everyone = torch.arange(problem.width, device=device)
    active = everyone if settled is None else torch.nonzero(~settled).flatten()
    if len(active) == 0:
        return warm_atoms, warm_steepness, None
    width = len(active)
    target = problem.target(rows)[active]
    weight = problem.weight[active]
    weight_norm = torch.linalg.vector_norm(weight, dim=1)
    downstream = problem.downstream[:, active]
    offset = None
    if settled is not None and bool(settled.any()):
        offset = problem.downstream[:, settled] @ warm_residuals[settled]
    warm_active = None if warm_atoms is None else warm_atoms[active]

    n_local = min(options.n_neighbors, 8)
    if local:
        pools = [_nearby(Z_search, representation, warm_active, n_local)]
    else:
        pre = torch.addmm(problem.bias[active], Z, weight.T)
        pools = [candidate_pairs(Z_search, pre.to(Z_search.dtype), weight.to(Z_search.dtype), activation,
                                 options.n_anchors, options.n_partners)]
    if options.n_random and not local:
        rng = np.random.default_rng([options.seed, problem.layer])
        first = rng.integers(0, len(Z), size=(problem.width, options.n_random))
        second = (first + rng.integers(1, len(Z), size=first.shape)) % len(Z)
        pools.append(torch.as_tensor(np.stack([first, second], axis=-1), device=device)[active])
    if warm_active is not None:
        pools.append(warm_active)
    pool = torch.cat(pools, dim=1)                                                         # (width, P, 2)
    valid = groups[pool[..., 0]] != groups[pool[..., 1]]

    def steepness_of(pairs, neurons):
        return steepness_for(Z, pairs, weight_norm[neurons], activation) if relaxed else None

    n_keep = min(options.n_list, pool.shape[1])
    gram = context.gram(representation, width * (pool.shape[1] + n_keep * (1 + options.refine_rounds)))
    greedy = torch.empty((width, k), dtype=torch.int64, device=device)
    top = torch.empty((width, n_keep), dtype=torch.int64, device=device)
    # the pools are ranked in the search precision (the largest arrays of the map); what is chosen from them is
    # decided again in float64 (the descent below, and the exactness of a neuron's best pair)
    search_gram = None if gram is None else gram.to(context.search_dtype)
    for start in range(0, width, _CHUNK):
        part = slice(start, start + _CHUNK)
        neurons = torch.arange(width, device=device)[part]
        steep = steepness_of(pool[part], neurons)
        features = _centred(candidate_activations(Z_search, Z_search[rows], pool[part], activation, search_gram,
                                                  None if steep is None else steep.to(context.search_dtype)))
        chosen, correlation = greedy_atoms(features, target[part].to(features.dtype), k, valid=valid[part])
        greedy[part] = chosen
        top[part] = torch.topk(correlation, n_keep, dim=1).indices
    lists = torch.cat([_gather(pool, greedy), _gather(pool, top)], dim=1)                    # (width, k + n_keep, 2)
    # each neuron's best pair among its short list, in float64: near-ties of the search precision (e.g. two
    # almost collinear ReLU pairs) are told apart here, and a pair that reproduces the neuron exactly is found
    correlation = torch.empty(lists.shape[:2], dtype=torch.float64, device=device)
    for start in range(0, width, _CHUNK):
        part = slice(start, start + _CHUNK)
        neurons = torch.arange(width, device=device)[part]
        features = _centred(candidate_activations(Z, Z_eval, lists[part], activation, gram,
                                                  steepness_of(lists[part], neurons)))
        dots = (features @ target[part][:, :, None])[..., 0]
        norms = torch.linalg.vector_norm(features, dim=-1) * torch.linalg.vector_norm(target[part], dim=-1)[:, None]
        correlation[part] = torch.where(norms > 0, dots.abs() / norms.clamp_min(1e-300), -1.0)
    correlation = torch.where(groups[lists[..., 0]] != groups[lists[..., 1]], correlation, -1.0)
    best, best_index = correlation.max(dim=1)
    best_pair = lists[torch.arange(width, device=device), best_index][:, None, :]
    exact = best >= EXACT
    choice = torch.arange(k, device=device).expand(width, -1).clone()
    if warm_active is not None:
        # the warm atoms start the descent where they reproduce the neuron about as well as the greedy ones
        lists = torch.cat([lists, warm_active], dim=1)
        warm_choice = torch.arange(lists.shape[1] - k, lists.shape[1], device=device).expand(width, -1)
        start_atoms = _gather(lists, choice)
        greedy_residual = _atom_residuals(Z, Z_eval, start_atoms, activation, gram, target,
                                          steepness_of(start_atoms, torch.arange(width, device=device)))
        scale = (target * target).sum(dim=1).clamp_min(1e-300)
        warm_loss = (warm_residuals[active] ** 2).sum(dim=1) / scale
        keep_warm = warm_loss <= (greedy_residual * greedy_residual).sum(dim=1) / scale + warm.margin
        choice = torch.where(keep_warm[:, None], warm_choice, choice)
    tolerance = 1e-9 if warm is None else warm.margin / problem.width
    rounds = 0 if local else options.refine_rounds       # a local pool already holds the neighbour moves
    for round_ in range(rounds + 1):
        if round_ > 0:   # local moves of the current atoms, next to the current atoms and the best of the list
            current = _gather(lists, choice)
            moves = _nearby(Z_search, representation, current, n_local)
            lists = torch.cat([current, lists[:, k:k + n_keep // 2], moves], dim=1)
            choice = torch.arange(k, device=device).expand(width, -1).clone()
        list_valid = groups[lists[..., 0]] != groups[lists[..., 1]]
        list_steepness = None if not relaxed else steepness_for(Z, lists, weight_norm, activation)

        def features_of(j, lists=lists, list_valid=list_valid, list_steepness=list_steepness):
            features = _centred(candidate_activations(Z, Z_eval, lists[j], activation, gram,
                                                      None if list_steepness is None else list_steepness[j]))
            return torch.where(list_valid[j][..., None], features, 0.0)

        if lists.numel() // 2 * len(rows) * 8 <= _FEATURE_BYTES:   # all lists' features at once, else on demand
            cached = torch.empty((*lists.shape[:2], len(rows)), dtype=torch.float64, device=device)
            for start in range(0, width, _CHUNK):
                cached[start:start + _CHUNK] = features_of(slice(start, start + _CHUNK))
            features_of = cached.__getitem__

        before = _gather(lists, choice)
        choice = descend_atoms(features_of, target, downstream, choice, free=~exact, sweeps=options.sweeps,
                               tolerance=tolerance, offset=offset)
        if round_ > 0 and torch.equal(before, _gather(lists, choice)):
            break
    found = _gather(lists, choice)
    # a neuron one pair reproduces exactly is that pair, k times (the duplicates split its coefficient evenly,
    # and the next layer's SWIM neurons are the same functions as with one copy: docs/maths.md §5)
    found = torch.where(exact[:, None, None], best_pair.expand(-1, k, -1), found)
    atoms = torch.empty((problem.width, k, 2), dtype=torch.int64, device=device) if warm_atoms is None \
        else warm_atoms.clone()
    atoms[active] = found
    steep = None
    if relaxed:
        steep = steepness_for(Z, atoms, torch.linalg.vector_norm(problem.weight, dim=1), activation)
        if settled is not None and warm_steepness is not None:
            steep = torch.where(settled[:, None], warm_steepness, steep)
    return atoms, steep, None


def _nearby(Z_search, representation, atoms: torch.Tensor, n_local: int) -> torch.Tensor:
    """Every atom (width, k, 2) with one of its points moved to one of that point's ``n_local`` nearest data
    points: (width, k · 2 · n_local, 2) (:func:`~dualmap.maps._single.neighbour_moves`, nearest first)."""
    width, k = atoms.shape[:2]
    moves = neighbour_moves(Z_search, representation.neighbors, atoms)
    return moves.reshape(width, k, 2, -1, 2)[:, :, :, :n_local].reshape(width, -1, 2)


def _gather(pairs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``pairs[j, index[j]]`` for every neuron: (width, L, 2), (width, q) → (width, q, 2)."""
    return torch.gather(pairs, 1, index[:, :, None].expand(-1, -1, 2))


# ----------------------------------------------------------------------------------------- one pair
def _single(problem, context, options, warm_atoms, settled, warm):
    """The one-pair methods (:mod:`dualmap.maps._single`); settled neurons keep their warm pair."""
    representation, rows = problem.representation, context.eval_rows
    Z, Z_search = problem.Z, context.search_view(representation)
    width, device = problem.width, context.device
    method = options.method
    warm_pairs = None if warm_atoms is None else warm_atoms[:, 0]
    pairs = None if warm_pairs is None else warm_pairs.clone()
    match = torch.zeros(width, dtype=torch.float64, device=device)
    free = torch.arange(width, device=device) if settled is None else torch.nonzero(~settled).flatten()
    if len(free):
        joint_target = None
        if method == "joint":   # what the next trained layer sees: its pre-activations (the outputs at the end)
            joint_target = torch.addmm(problem.next_bias, problem.trained[rows], problem.downstream.T)
        fixed = None
        if method == "joint" and settled is not None and bool(settled.any()):
            fixed = candidate_activations(Z, Z[rows], warm_pairs[settled][:, None, :], problem.activation)[:, 0, :]
        expected = 2 * options.n_anchors * options.n_partners + 2 * options.n_neighbors * options.refine_rounds
        gram = None if method in ("thesis", "geometric") else context.gram(representation, len(free) * expected)
        found, found_match = match_single(
            method, Z, Z_search, problem.pre_activation()[:, free], problem.weight[free], problem.bias[free],
            problem.activation, problem.trained[:, free], rows, options.n_anchors, options.n_partners, options.ratio,
            options.max_candidates, None if warm_pairs is None else warm_pairs[free], options.refine_rounds,
            options.n_neighbors, options.n_list, joint_target, 0.0 if warm is None else warm.margin, fixed, gram,
            representation.neighbors, representation.groups)
        if pairs is None:
            pairs = found
        else:
            pairs[free] = found
        match[free] = found_match.to(torch.float64)
    return pairs[:, None, :], match


# ----------------------------------------------------------------------------------------- every method
def _finish(problem, atoms, steep, match, context, options) -> dict:
    """Fit the coefficients on all of ``X``, order every neuron's atoms by contribution, score the layer and
    build the next representation (the atoms' activations, ``width·k`` columns, neuron-major)."""
    Z, activation, width, k = problem.Z, problem.activation, problem.width, atoms.shape[1]
    sigma = activation_function(activation)
    flat = atoms.reshape(-1, 2)
    atom_weight, atom_bias = swim_neurons(Z[flat[:, 0]], Z[flat[:, 1]], activation)
    if steep is not None:
        atom_weight, atom_bias = atom_weight * steep.reshape(-1)[:, None], atom_bias * steep.reshape(-1)
    features = sigma(torch.addmm(atom_bias, Z, atom_weight.T))                           # (n, width·k)
    coefficients = fit_coefficients(features.view(len(Z), width, k), problem.trained)    # (width, k + 1)
    if k > 1:   # the largest contribution first: |c_m| · std(φ_m)
        contribution = coefficients[:, :-1].abs() * features.view(len(Z), width, k).std(dim=0)
        order = torch.argsort(-contribution, dim=1, stable=True)
        atoms = _gather(atoms, order)
        coefficients = torch.cat([coefficients[:, :-1].gather(1, order), coefficients[:, -1:]], dim=1)
        columns = (torch.arange(width, device=Z.device)[:, None] * k + order).reshape(-1)
        features = features[:, columns]
        atom_weight, atom_bias = atom_weight[columns], atom_bias[columns]
        if steep is not None:
            steep = steep.gather(1, order)
    rebuilt = (features.view(len(Z), width, k) * coefficients[None, :, :-1]).sum(dim=-1) + coefficients[:, -1]
    principal = features.view(len(Z), width, k)[..., 0]
    principal_weight = atom_weight.view(width, k, -1)[:, 0]
    principal_bias = atom_bias.view(width, k)[:, 0]
    radius = float(((Z - Z.mean(dim=0)) ** 2).sum(dim=1).mean().sqrt())
    scores = neuron_scores(problem.weight, problem.bias, principal_weight, principal_bias, problem.trained, principal,
                           radius)
    centred = problem.trained - problem.trained.mean(dim=0)
    error = ((rebuilt - problem.trained) ** 2).sum(dim=0)
    scores["neuron_r2"] = torch.where((centred * centred).sum(dim=0) > 0,
                                      1.0 - error / (centred * centred).sum(dim=0).clamp_min(1e-300), 0.0)
    scores["match_score"] = scores["neuron_r2"] if match is None else match
    if activation == "relu" and options.method != "thesis":
        scale = 1.0 / scores["norm_ratio"]
    else:   # tanh has no scale freedom; the thesis matches norms and keeps scale 1
        scale = torch.ones(width, dtype=torch.float64, device=Z.device)
    return {"atoms": to_numpy(atoms).astype(np.int64), "coefficients": to_numpy(coefficients),
            "coefficients_tensor": coefficients, "steepness": None if steep is None else to_numpy(steep),
            "scales": to_numpy(scale), "scores": {name: to_numpy(value) for name, value in scores.items()},
            "features": features, "settled": 0 if problem.settled is None else int(problem.settled.sum()),
            "relocated": int(problem.relocated.sum()) if problem.relocated is not None else 0}
