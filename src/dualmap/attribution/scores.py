"""Scores of training points: which points a trained network rests on, globally and per test point.

Notation (docs/findings/attribution.md): hidden layer ``l``, neuron ``k``, loss ``L(x)`` of one point (cross-entropy on
the logits for classes, squared error for regression), ``δ_lk(x) = ∂L(x)/∂h_lk`` the gradient of the loss
with respect to the neuron's output in the trained network, ``φ_lk(x)`` the neuron *as the map rebuilds it*:
the SWIM neuron of its pair (ReLU: times its scale), or with atoms ``Σ_a c_ka·SWIM_a(x) + c_k0``.

* ``"map"`` — TracIn in the map's coordinates. The map fixes every neuron as the SWIM neuron of its pair
  (its atoms); what is left free are the neurons' gains ``c_lk`` (the ReLU scale; with atoms, the
  coefficients). The gradient of a point's loss with respect to the log-gain of neuron ``k`` is its
  *relevance* ``r_lk(x) = −δ_lk(x)·φ_lk(x)`` up to sign (gradient × the map's activation: the first-order
  share of the loss the neuron removes; invariant to the ReLU rescaling). A training point ``i`` is behind
  the neurons that carry a test point ``j`` when the same neurons carry both, in the same direction:

  ``s(j, i) = Σ_t w_t Σ_l Σ_k r_lk(x_j) r_lk(x_i)``, summed over checkpoints ``t`` with weights ``w_t``
  (by default the last 3 checkpoints; all of them let the large early gradients dominate and fail the
  remove-and-retrain test). ``variant="readout"`` adds the readout's gradient on the map's last layer,
  ``⟨g_j, g_i⟩(⟨φ_L(x_j), φ_L(x_i)⟩ + 1)`` with ``g = ∂L/∂outputs``.

  ``variant="atoms"`` credits only the atoms themselves: ``s(j, i) = Σ_lk r_lk(x_j)·A_lk(i)`` with
  ``A_lk(i)`` = ½ ρ_k per point of the pair (or ``|c_ka|/Σ|c|`` per atom). It fails the counterfactual tests
  (docs/findings/attribution.md) and is kept for the comparison.
* ``"tracin"`` — TracIn-CP (Pruthi et al. 2020): ``Σ_t w_t ⟨∇_θ L(x_j; θ_t), ∇_θ L(x_i; θ_t)⟩`` over all weights
  and biases, by captum's :class:`~captum.influence.TracInCP` (``backend="captum"``) or by the exact
  factorisation of a dense layer's per-sample gradient ``δ ⊗ [z, 1]`` (``backend="factorized"``):
  ``⟨g_i, g_j⟩ = Σ_layers ⟨δ_i, δ_j⟩(⟨z_i, z_j⟩ + 1)``.
* ``"importance"`` — the trajectory's importance (docs/maths.md §7), the reading this module tests.
* ``"random"`` — seeded uniform noise; ``"swim_density"`` — SWIM's own weight on each point.

Global scores (no test points) are self-scores ``s(i, i)`` (TracIn's self-influence), the score to find
mislabelled points with; per-test scores have shape (n_test, n_train), positive = the training point helps
the test point (training on it lowers that test loss).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch

from .._validation import check_choice, check_data, check_int, class_indices, infer_task, one_hot
from ..network import MLP, activation_function

__all__ = ["point_scores", "METHODS", "MAP_VARIANTS", "checkpoint_weights"]

METHODS = ("map", "tracin", "random", "swim_density", "importance")
MAP_VARIANTS = ("neurons", "readout", "atoms")
#: the checkpoints each method sums over by default
DEFAULT_CHECKPOINTS = {"map": 3, "tracin": "all", "importance": "last"}


# --------------------------------------------------------------------------- inputs
def _source(source):
    """``(checkpoints [(step, MLP)], task, classes, lr, pair maps per checkpoint or None, trajectory or None)``."""
    from ..dynamics import Trajectory
    from ..train import TrainRun

    if isinstance(source, TrainRun):
        if not source.checkpoints:
            raise ValueError("the TrainRun has no checkpoints; train with checkpoints >= 2")
        return list(source.checkpoints), source.task, source.classes, float(source.config.get("lr", 1.0)), None
    if isinstance(source, Trajectory):
        return None, source.task, None, float(source.config.get("lr", 1.0)), source
    raise TypeError(f"point_scores expects a dm.TrainRun or a dm.Trajectory; got {type(source).__name__}")


def _targets(y, task, classes, n, name):
    y = np.asarray(y)
    if len(y) != n:
        raise ValueError(f"{name} has {len(y)} rows but its X has {n}; they must match")
    if task == "classification":
        if y.ndim != 1:
            raise ValueError(f"{name} must be 1-D class labels for a classifier; got shape {y.shape}")
        return torch.as_tensor(class_indices(y, classes, name=name, unknown="the network was not trained on"))
    y = np.asarray(y, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{name} contains NaN or infinity")
    return torch.as_tensor(y.reshape(n, -1))


def checkpoint_weights(steps, lr: float, which) -> np.ndarray:
    """Weight ``w_t`` of every checkpoint in a sum over checkpoints (TracIn-CP's learning-rate weights).

    ``which="last"``: 1 on the last checkpoint. ``"all"``: ``lr`` × the number of optimisation steps the
    checkpoint stands for (from the midpoint to the previous checkpoint to the midpoint to the next; the
    log-spaced schedule of ``dm.train`` would otherwise count the first steps many times over). An int
    ``n``: the same over the last ``n`` checkpoints only. A list of indices: those, weighted the same way.
    """
    steps = np.asarray(steps, dtype=np.float64)
    T = len(steps)
    if isinstance(which, str):
        if which == "last":
            weights = np.zeros(T)
            weights[-1] = 1.0
            return weights
        if which != "all":
            raise ValueError(f"checkpoints must be 'last', 'all', a count or a list of indices; got {which!r}")
        chosen = np.arange(T)
    elif isinstance(which, (int, np.integer)) and not isinstance(which, bool):
        chosen = np.arange(max(T - check_int(which, "checkpoints as a count"), 0), T)
    else:
        chosen = np.unique(np.asarray(which, dtype=np.int64) % T)
    edges = np.concatenate([[steps[chosen[0]]], (steps[chosen[1:]] + steps[chosen[:-1]]) / 2, [steps[chosen[-1]]]])
    span = np.diff(edges)
    if len(chosen) == 1 or span.sum() <= 0:
        span = np.ones(len(chosen))
    weights = np.zeros(T)
    weights[chosen] = lr * span
    return weights


# --------------------------------------------------------------------------- per-sample gradients of an MLP
def _backprop(mlp: MLP, X: torch.Tensor, targets: torch.Tensor, task: str):
    """Per sample: the inputs ``z_l`` of every layer, the gradients ``δ_l = ∂L/∂(pre-activation of l)``, the
    hidden outputs ``h_l`` and ``∂L/∂h_l``; losses. One forward and one backward pass (float64)."""
    z = X
    inputs, pre, hidden = [], [], []
    for weight, bias, activation in zip(mlp.weights, mlp.biases, mlp.activations):
        inputs.append(z)
        weight = torch.as_tensor(weight, dtype=X.dtype).requires_grad_(True)   # so the graph is built
        a = torch.addmm(torch.as_tensor(bias, dtype=X.dtype), z, weight.T)
        a.retain_grad()
        pre.append(a)
        z = activation_function(activation)(a)
        if len(pre) < mlp.n_layers:
            z.retain_grad()
            hidden.append(z)
    if task == "classification":
        losses = torch.nn.functional.cross_entropy(z, targets, reduction="none")
    else:
        losses = ((z - targets) ** 2).mean(dim=1)
    losses.sum().backward()
    return ([t.detach() for t in inputs], [a.grad for a in pre], [h.detach() for h in hidden],
            [h.grad for h in hidden], losses.detach())


def _leaf(X):
    return torch.as_tensor(np.asarray(X, dtype=np.float64)).requires_grad_(False)


# --------------------------------------------------------------------------- the map's neurons
def _map_features(pm, X_train: np.ndarray, Xs: list) -> list:
    """The map's neurons ``φ_lk`` on each array of ``Xs``: per array, a list over hidden layers of (n, m_l).

    With atoms (``pm.atoms[l]`` of shape (m, k, 2), ``pm.coefficients[l]`` (m, k+1), last column the
    intercept, optional ``pm.steepness[l]`` (m, k)): ``φ_lk = Σ_a c_ka SWIM_a + c_k0``, the atoms of layer
    ``l + 1`` living in the representation of the atoms of layer ``l`` (as :meth:`PairMap.hidden_layers`).
    Without (a map of one pair per neuron): the SWIM neuron of the pair times the ReLU scale, layer ``l + 1`` in
    the representation of the unit-scale SWIM neurons of layer ``l``.
    """
    from ..swim.construction import swim_neurons

    atoms = getattr(pm, "atoms", None)
    steepness = getattr(pm, "steepness", None)
    Z_train = torch.as_tensor(X_train, dtype=torch.float64)
    Zs = [torch.as_tensor(np.asarray(X, dtype=np.float64)) for X in Xs]
    out = [[] for _ in Xs]
    for layer, activation in enumerate(pm.activations):
        sigma = activation_function(activation)
        if atoms is not None:
            layer_atoms = np.asarray(atoms[layer])                                        # (m, k, 2)
            m, k, _ = layer_atoms.shape
            flat = torch.as_tensor(layer_atoms.reshape(m * k, 2))
            coefficients = torch.as_tensor(np.asarray(pm.coefficients[layer], dtype=np.float64))   # (m, k+1)
        else:
            flat = torch.as_tensor(np.asarray(pm.pairs[layer]))
            m, k = len(flat), 1
            scale = np.asarray(pm.scales[layer], dtype=np.float64)
            coefficients = torch.as_tensor(np.stack([scale, np.zeros(m)], axis=1))
        weight, bias = swim_neurons(Z_train[flat[:, 0]], Z_train[flat[:, 1]], activation)
        if steepness is not None and steepness[layer] is not None:
            gamma = torch.as_tensor(np.asarray(steepness[layer], dtype=np.float64).reshape(-1))
            weight, bias = weight * gamma[:, None], bias * gamma
        # the next layer's atoms live in the representation of this layer's atoms, unscaled
        Zs = [sigma(torch.addmm(bias, Z, weight.T)) for Z in Zs]
        for position, basis in enumerate(Zs):
            basis = basis.reshape(len(basis), m, k)
            out[position].append((basis * coefficients[None, :, :k]).sum(dim=2) + coefficients[None, :, k])
        Z_train = sigma(torch.addmm(bias, Z_train, weight.T))
    return out


def _atom_credit(pm, layer: int, n_train: int, correlation=None) -> torch.Tensor:
    """``A_lk(i)`` (m_l, n_train): how much of neuron ``k`` point ``i`` is: ½ per point of the pair times the
    match quality ``max(ρ_k, 0)``, or with atoms ``|c_ka| / Σ_a |c_ka|`` shared by the atom's two points."""
    atoms = getattr(pm, "atoms", None)
    if atoms is not None:
        layer_atoms = np.asarray(atoms[layer])
        coefficients = np.abs(np.asarray(pm.coefficients[layer], dtype=np.float64)[:, :-1])
        share = coefficients / np.maximum(coefficients.sum(axis=1, keepdims=True), 1e-300) / 2
        rows = np.repeat(np.arange(len(layer_atoms)), layer_atoms.shape[1])
    else:
        layer_atoms = np.asarray(pm.pairs[layer])[:, None, :]
        quality = np.ones(len(layer_atoms)) if correlation is None else np.clip(correlation, 0.0, None)
        share = (quality / 2)[:, None]
        rows = np.arange(len(layer_atoms))
    credit = np.zeros((len(layer_atoms), n_train))
    for end in range(2):
        np.add.at(credit, (rows, layer_atoms[..., end].reshape(-1)), share.reshape(-1))
    return torch.as_tensor(credit)


# --------------------------------------------------------------------------- methods
def _map_one(network: MLP, pm, X, targets, Xq, targets_q, task, variant, self_only):
    """Scores of one checkpoint: (n_q, n) or, for ``self_only``, (n,)."""
    Xt = _leaf(X)
    phi_parts = _map_features(pm, X, [X] if Xq is None else [X, Xq])
    _, deltas, _, dh, _ = _backprop(network, Xt, targets, task)
    relevance = [-g * f for g, f in zip(dh, phi_parts[0])]
    if Xq is None:
        query, deltas_q = relevance, deltas
    else:
        _, deltas_q, _, dh_q, _ = _backprop(network, _leaf(Xq), targets_q, task)
        query = [-g * f for g, f in zip(dh_q, phi_parts[1])]
    readout = 0.0
    if variant == "readout":    # the readout's gradient on the map's last layer: g ⊗ [φ_L, 1]
        phi, g = phi_parts[0][-1], deltas[-1]
        if self_only:
            readout = (g * g).sum(dim=1) * ((phi * phi).sum(dim=1) + 1)
        else:
            readout = (deltas_q[-1] @ g.T) * (phi_parts[1][-1] @ phi.T + 1)
    correlations = [s.get("activation_correlation") for s in pm.scores] if pm.scores else [None] * len(relevance)
    if variant == "atoms":
        credit = [_atom_credit(pm, layer, len(X), correlations[layer] if layer < len(correlations) else None)
                  for layer in range(len(relevance))]
        if self_only:
            return sum((r * c.T).sum(dim=1) for r, c in zip(relevance, credit)).numpy()
        return sum(q @ c for q, c in zip(query, credit)).numpy()
    if self_only:
        return (sum((r * r).sum(dim=1) for r in relevance) + readout).numpy()
    return (sum(q @ r.T for q, r in zip(query, relevance)) + readout).numpy()


def _map_of_trajectory(trajectory, t):
    from ..maps.pairmap import PairMap

    scores = [{"activation_correlation": r} for r in trajectory.correlations[t]]
    return PairMap(pairs=trajectory.pairs[t], scales=trajectory.scales[t], scores=scores,
                   activations=list(trajectory.activations), method=trajectory.method, params={},
                   x_fingerprint=trajectory.x_fingerprint)


def _tracin_factorized(network: MLP, X, targets, Xq, targets_q, task, self_only):
    inputs, deltas, _, _, _ = _backprop(network, _leaf(X), targets, task)
    if self_only:
        return sum((d * d).sum(dim=1) * ((z * z).sum(dim=1) + 1) for z, d in zip(inputs, deltas)).numpy()
    inputs_q, deltas_q, _, _, _ = _backprop(network, _leaf(Xq), targets_q, task)
    return sum((dq @ d.T) * (zq @ z.T + 1) for z, d, zq, dq in zip(inputs, deltas, inputs_q, deltas_q)).numpy()


def _tracin_captum(checkpoints, weights, X, targets, Xq, targets_q, task, self_only, batch_size=512):
    """captum's TracInCP over the checkpoints with non-zero weight (float64, every Linear layer)."""
    from captum.influence import TracInCP
    from torch.utils.data import DataLoader, TensorDataset

    chosen = [t for t in range(len(checkpoints)) if weights[t] != 0]
    model = checkpoints[chosen[-1]][1].to_torch().double()
    states = {str(t): checkpoints[t][1].to_torch().double().state_dict() for t in chosen}

    def load(module, name):
        module.load_state_dict(states[name])
        return float(weights[int(name)])

    y_t = targets if task == "classification" else targets.double()
    train = DataLoader(TensorDataset(torch.as_tensor(X, dtype=torch.float64), y_t), batch_size=batch_size)
    if task == "classification":
        loss = torch.nn.CrossEntropyLoss(reduction="sum")
    else:
        def loss(outputs, target):   # the per-sample loss is the mean over outputs, as in dm.train's MSE
            return ((outputs - target) ** 2).mean(dim=1).sum()
        loss.reduction = "sum"
    tracin = TracInCP(model, train, checkpoints=[str(t) for t in chosen], checkpoints_load_func=load,
                      loss_fn=loss, batch_size=batch_size, sample_wise_grads_per_batch=True)
    with warnings.catch_warnings():     # captum sets requires_grad on the inputs itself, and says so
        warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")
        if self_only:
            return tracin.self_influence(train).detach().numpy()
        queries = DataLoader(TensorDataset(torch.as_tensor(Xq, dtype=torch.float64),
                                           targets_q if task == "classification" else targets_q.double()),
                             batch_size=batch_size)
        return torch.cat([tracin.influence((xb, yb)) for xb, yb in queries]).detach().numpy()


def point_scores(run_or_trajectory, X, y, *, X_test=None, y_test=None, method: str = "map",
                 checkpoints=None, variant: str = "neurons", backend: str = "auto", map_method: str = "function",
                 seed: int = 0, return_seconds: bool = False):
    """Score every training point, globally or for every test point.

    Parameters
    ----------
    run_or_trajectory : TrainRun or Trajectory
        A training run with its checkpoints (the forward map of every checkpoint used is computed here with
        ``map_method``), or a :class:`~dualmap.Trajectory` (its maps are used; the networks it lacks are
        rebuilt from the pairs with a ridge readout refit to ``y``, so ``"tracin"`` needs the TrainRun).
    X : ndarray of shape (n_train, d)
        The training inputs the run was trained on (and the pairs index).
    y : array-like of shape (n_train,) or (n_train, k)
    X_test, y_test : optional
        Points to attribute; without them the scores are global self-scores.
    method : {"map", "tracin", "random", "swim_density", "importance"}
    checkpoints : "last", "all", int or list of int, optional
        Which checkpoints enter the sum and with which weights (:func:`checkpoint_weights`). Default: the
        form each method was validated in (docs/findings/attribution.md): ``"map"`` the last 3 checkpoints,
        ``"tracin"`` all of them (TracIn-CP), ``"importance"`` the last.
    variant : {"neurons", "atoms"}, default="neurons"
        The map score's form (module docstring).
    backend : {"auto", "captum", "factorized"}, default="auto"
        TracIn's implementation: captum's ``TracInCP``, or the exact factorised gradient products
        (the same numbers, ~100× faster for dense nets; ``"auto"`` takes it). See ``tests/test_attribution.py``.
    map_method : str, default="function"
        The forward-map method for a TrainRun (``dm.to_pairs``).
    seed : int
        Seeds the maps and ``"random"``.
    return_seconds : bool
        Also return the wall time in seconds.

    Returns
    -------
    ndarray of shape (n_train,) without ``X_test``, (n_test, n_train) with it; positive = helps.
    """
    started = time.perf_counter()
    check_choice(method, METHODS, "method")
    check_choice(variant, MAP_VARIANTS, "variant")
    if backend not in ("auto", "captum", "factorized"):
        raise ValueError(f"backend must be 'auto', 'captum' or 'factorized'; got {backend!r}")
    if checkpoints is None:
        checkpoints = DEFAULT_CHECKPOINTS.get(method, "last")
    checkpoint_list, task, classes, lr, trajectory = _source(run_or_trajectory)
    n_features = (checkpoint_list[0][1].input_dim if checkpoint_list is not None else trajectory.X.shape[1])
    X = check_data(X, min_samples=2, n_features=n_features)
    if (X_test is None) != (y_test is None):
        raise ValueError("give X_test and y_test together (or neither, for global scores)")
    if X_test is not None:
        X_test = check_data(X_test, name="X_test", n_features=n_features)
    if trajectory is not None:
        from ..maps.pairmap import fingerprint

        if fingerprint(X) != trajectory.x_fingerprint:
            raise ValueError("X is not the data the trajectory was mapped on (fingerprint differs)")
        if task is None:
            task = infer_task(y)
    if task == "classification" and classes is None:
        classes = np.unique(np.asarray(y))
    targets = _targets(y, task, classes, len(X), "y")
    targets_q = None if X_test is None else _targets(y_test, task, classes, len(X_test), "y_test")
    self_only = X_test is None
    shape = (len(X),) if self_only else (len(X_test), len(X))

    if method == "random":
        rng = np.random.default_rng(seed)
        scores = rng.random(shape)
    elif method == "swim_density":
        from ..dynamics.measures import swim_point_density

        dense = one_hot(y, classes) if task == "classification" else targets.numpy()
        density = swim_point_density(X, dense, seed=seed)
        scores = density if self_only else np.broadcast_to(density, shape).copy()
    else:
        scores = _gradient_scores(method, checkpoint_list, trajectory, lr, X, targets, X_test, targets_q, task,
                                  checkpoints, variant, backend, map_method, seed, self_only, y)
    seconds = time.perf_counter() - started
    return (scores, seconds) if return_seconds else scores


def _gradient_scores(method, checkpoint_list, trajectory, lr, X, targets, X_test, targets_q, task, which, variant,
                     backend, map_method, seed, self_only, y):
    if trajectory is not None:
        steps = trajectory.steps
    else:
        steps = [step for step, _ in checkpoint_list]
    weights = checkpoint_weights(steps, lr, which)
    if method == "importance":
        from ..dynamics.measures import neuron_contributions, point_importance

        t = int(np.flatnonzero(weights)[-1])
        if trajectory is not None:
            row = trajectory.importance[t]
        else:
            network = checkpoint_list[t][1]
            pm = _to_pairs(network, X, map_method, seed)
            row = point_importance(pm.pairs, neuron_contributions(network, X),
                                   [s["activation_correlation"] for s in pm.scores], len(X))
        return row if self_only else np.broadcast_to(row, (len(X_test), len(X))).copy()
    if method == "tracin":
        if trajectory is not None:
            raise ValueError("method='tracin' needs the checkpoint networks: pass the TrainRun, not the Trajectory")
        if backend == "captum":
            return _tracin_captum(checkpoint_list, weights, X, targets, X_test, targets_q, task, self_only)
        total = 0.0
        for t in np.flatnonzero(weights):
            total = total + weights[t] * _tracin_factorized(checkpoint_list[t][1], X, targets, X_test, targets_q,
                                                            task, self_only)
        return np.asarray(total)
    total = 0.0
    for t in np.flatnonzero(weights):
        if trajectory is not None:
            pm = _map_of_trajectory(trajectory, t)
            network = _rebuilt_network(pm, X, y, task)
        else:
            network = checkpoint_list[t][1]
            pm = _to_pairs(network, X, map_method, seed)
        total = total + weights[t] * _map_one(network, pm, X, targets, X_test, targets_q, task, variant, self_only)
    return np.asarray(total)


def _to_pairs(network, X, map_method, seed):
    from ..maps import to_pairs

    return to_pairs(network, X, method=map_method, seed=seed, progress=False)


def _rebuilt_network(pm, X, y, task):
    """The network the map rebuilds (its pairs' SWIM neurons, ReLU scales), readout refit to the targets."""
    y = np.asarray(y)
    targets = one_hot(y) if task == "classification" else y
    mlp = pm.to_mlp(X, targets)
    # the rebuilt hidden layers are the unit-scale SWIM neurons; put the scales in so φ = the network's neurons
    weights, biases = [w.copy() for w in mlp.weights], [b.copy() for b in mlp.biases]
    for layer, scale in enumerate(pm.scales):
        if pm.activations[layer] == "relu":
            weights[layer] *= scale[:, None]
            biases[layer] *= scale
            weights[layer + 1] /= scale[None, :]
    return MLP(weights, biases, mlp.activations)
