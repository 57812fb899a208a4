"""Gradient training (SGD, Adam) of an :class:`~dualmap.MLP`, with checkpoints.

Loss: cross-entropy on the network's outputs (logits) for classification, mean squared error for
regression. Checkpoints are copies of the network at chosen optimisation steps (step 0 is the
initial network, step ``k`` the network after ``k`` mini-batch updates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from ._backend import as_tensor, resolve_device, resolve_dtype
from ._io import CorruptFileError, load_archive, save_archive
from ._progress import progress_bar
from ._scoring import task_loss, task_metric
from ._validation import (
    check_activation,
    check_choice,
    check_data,
    check_int,
    check_layer_widths,
    class_indices,
    infer_task,
)
from .network import MLP
from .swim.finetune import KINK_SCHEMES, WARMUP_FRACTION, layer_lr_factors, rebalance_relu, resolve_finetune
from .swim.start import SAMPLED_INITS, sampled_start

__all__ = ["TrainRun", "TrainableModule", "checkpoint_steps", "encode_targets", "train"]

OPTIMIZERS = ("adam", "sgd")
INITS = ("he", "xavier", "torch", "swim", "uniform", "random")


@runtime_checkable
class TrainableModule(Protocol):
    """What :func:`train` needs of a model it trains in place other than an :class:`MLP` — e.g.
    :class:`~dualmap.inverse.PairNetwork`, a network trained in pair space.

    A ``torch.nn.Module``: its ``parameters()`` are what the optimiser updates, its ``forward`` gives the outputs
    (logits for classification) on a batch of inputs. Two more methods:

    * ``to_mlp()``: the network it computes now, as a new :class:`MLP`. Read once before training (input and
      output widths, hidden widths and activation, for the checks and ``TrainRun.config``) and at every
      checkpoint (``TrainRun.checkpoints``, ``TrainRun.model``);
    * ``checkpoint_state()``: what else to keep at every checkpoint, as ``(first, second)`` — per hidden layer
      an array of shape (m_l, d) each, copies (``TrainRun.points``, saved with the run).

    Fine-tuning schemes (``finetune``) apply to :class:`MLP` starts only; ``init`` is ignored.
    """

    def parameters(self, recurse: bool = True): ...

    def forward(self, X: torch.Tensor) -> torch.Tensor: ...

    def to_mlp(self) -> MLP: ...

    def checkpoint_state(self) -> tuple[list[np.ndarray], list[np.ndarray]]: ...


@dataclass
class TrainRun:
    """The result of :func:`train`.

    Attributes
    ----------
    model : MLP
        The network after the last step.
    checkpoints : list of (int, MLP)
        ``(step, network)`` at every checkpoint step, in increasing order.
    history : dict of str → ndarray
        Per epoch: ``epoch``, ``step`` (steps done at the end of the epoch), ``train_loss``,
        ``train_metric`` (accuracy or R²) and, with validation data, ``val_loss``, ``val_metric``.
    task : {"classification", "regression"}
    classes : ndarray or None
        Class labels; output ``k`` of the network is the logit of ``classes[k]``.
    config : dict
        The arguments of :func:`train` that produced the run.
    points : list or None
        For a :class:`TrainableModule` (e.g. a :class:`~dualmap.inverse.PairNetwork`): at every checkpoint its
        ``checkpoint_state()``, ``(first, second)`` — per hidden layer the virtual points ``p_k`` and ``q_k``
        (arrays of shape (m_l, d)).
    """

    model: MLP
    checkpoints: list
    history: dict
    task: str
    classes: np.ndarray | None = None
    config: dict = field(default_factory=dict)
    points: list | None = None

    @property
    def steps(self) -> list[int]:
        """The checkpoint steps."""
        return [step for step, _ in self.checkpoints]

    def save(self, path):
        """Save the run (every checkpoint network, the history, the config) to a dualmap archive."""
        arrays = {f"history_{key}": np.asarray(value) for key, value in self.history.items()}
        arrays["steps"] = np.array(self.steps, dtype=np.int64)
        if self.classes is not None:
            arrays["classes"] = np.asarray(self.classes)
        for index, (_, network) in enumerate(self.checkpoints):
            arrays.update(network.to_arrays(f"checkpoint_{index}_"))
        arrays.update(self.model.to_arrays("model_"))
        for index, (first, second) in enumerate(self.points or []):
            for layer, (p, q) in enumerate(zip(first, second)):
                arrays[f"points_{index}_{layer}_first"], arrays[f"points_{index}_{layer}_second"] = p, q
        return save_archive(path, "TrainRun", arrays, {"task": self.task, "config": self.config,
                                                       "has_points": self.points is not None})

    @classmethod
    def load(cls, path) -> "TrainRun":
        """Load a run written by :meth:`save`."""
        meta, arrays = load_archive(path, "TrainRun")
        try:
            steps = [int(s) for s in arrays["steps"]]
            checkpoints = [(step, MLP.from_arrays(arrays, f"checkpoint_{i}_")) for i, step in enumerate(steps)]
            history = {key[len("history_"):]: value for key, value in arrays.items() if key.startswith("history_")}
            points = None
            if meta.get("has_points"):
                n_layers = len(checkpoints[0][1].hidden_widths)
                points = [([arrays[f"points_{i}_{layer}_first"] for layer in range(n_layers)],
                           [arrays[f"points_{i}_{layer}_second"] for layer in range(n_layers)])
                          for i in range(len(steps))]
            return cls(model=MLP.from_arrays(arrays, "model_"), checkpoints=checkpoints, history=history,
                       task=meta["task"], classes=arrays.get("classes"), config=meta.get("config", {}),
                       points=points)
        except (KeyError, ValueError) as exc:
            raise CorruptFileError(f"{path} is not a valid TrainRun file: {exc}") from exc


def checkpoint_steps(checkpoints, total_steps: int) -> list[int]:
    """Resolve a checkpoint specification into sorted unique steps in ``[0, total_steps]``.

    ``checkpoints`` is a count ``n >= 2`` (steps 0 and ``total_steps`` plus log-spaced steps between them;
    fewer if ``total_steps`` is too small to hold ``n`` distinct steps) or an explicit list of steps.
    """
    if isinstance(checkpoints, (int, np.integer)) and not isinstance(checkpoints, bool):
        if checkpoints < 2:
            raise ValueError(f"checkpoints as a count must be >= 2 (step 0 and the last step); got {checkpoints}")
        count = min(int(checkpoints), total_steps + 1)
        steps = {0, total_steps} | {int(round(v)) for v in np.geomspace(1, max(total_steps, 1), num=count - 1)}
        for value in range(total_steps + 1):   # log spacing collides at small steps: fill in the first ones
            if len(steps) >= count:
                break
            steps.add(value)
        return sorted(steps)
    try:
        steps = sorted({int(s) for s in checkpoints})
    except TypeError as exc:
        raise TypeError(f"checkpoints must be an int count or a list of steps; got {checkpoints!r}") from exc
    if steps and (steps[0] < 0 or steps[-1] > total_steps):
        raise ValueError(f"checkpoint steps must lie in [0, {total_steps}]; got {steps[0]}..{steps[-1]}")
    return steps


def encode_targets(y, task: str):
    """Return ``(targets, classes)``: class indices and labels for classification, float targets otherwise."""
    y = np.asarray(y)
    if task == "classification":
        if y.ndim != 1:
            raise ValueError(f"classification labels must be 1-D; got shape {y.shape}")
        classes, encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"classification needs at least 2 classes; y has 1 class ({classes[0]!r})")
        return encoded.astype(np.int64), classes
    y = np.asarray(y, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinity")
    return (y[:, None] if y.ndim == 1 else y), None


def _initialise(module: nn.Sequential, init: str, generator: torch.Generator):
    for layer in module:
        if isinstance(layer, nn.Linear):
            if init == "he":
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=generator)
                nn.init.zeros_(layer.bias)
            elif init == "xavier":
                nn.init.xavier_normal_(layer.weight, generator=generator)
                nn.init.zeros_(layer.bias)
            else:  # torch's default nn.Linear initialisation, drawn from our generator
                bound = 1.0 / np.sqrt(layer.weight.shape[1])
                nn.init.uniform_(layer.weight, -bound, bound, generator=generator)
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


def _trust_ratio(linears) -> None:
    """Rescale every layer's gradient to its parameters' norm (finetune ``norm_step``): ``g ← ‖θ‖ g/‖g‖``."""
    with torch.no_grad():
        for layer in linears:
            grads = [p.grad for p in layer.parameters() if p.grad is not None]
            if not grads:
                continue
            grad_norm = torch.sqrt(sum((g * g).sum() for g in grads))
            weight_norm = torch.sqrt(sum((p * p).sum() for p in layer.parameters()))
            if grad_norm > 0 and weight_norm > 0:
                for g in grads:
                    g.mul_(weight_norm / grad_norm)


def _in_place(model) -> bool:
    """Whether ``model`` is trained in place through the :class:`TrainableModule` interface."""
    return isinstance(model, nn.Module) and isinstance(model, TrainableModule)


def _snapshot(module) -> MLP:
    """The network a module computes now, as an MLP (a copy of its parameters)."""
    return module.to_mlp() if _in_place(module) else MLP.from_torch(module)


def train(model, X, y, *, activation="relu", task="auto", optimizer="adam", lr=1e-3, epochs=100, batch_size=128,
          weight_decay=0.0, momentum=0.9, init="he", finetune="auto", seed=0, checkpoints=20, X_val=None,
          y_val=None, monitor=None, device="auto", dtype="float32", progress=True) -> TrainRun:
    """Train an MLP by mini-batch gradient descent and keep checkpoints.

    Parameters
    ----------
    model : sequence of int, MLP or TrainableModule
        Hidden widths of a new network (initialised by ``init``, readout width from the targets), an
        existing :class:`MLP` to start from (its parameters are copied, ``init`` is ignored), or a torch
        module with the :class:`TrainableModule` interface, trained in place — e.g. a
        :class:`~dualmap.inverse.PairNetwork`, trained in pair space (its points and readout are the
        parameters; checkpoints hold the networks its points define).
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        Class labels (any type) or real targets.
    activation : {"relu", "tanh"}, default="relu"
        Hidden activation of a new network.
    task : {"auto", "classification", "regression"}, default="auto"
        ``"auto"``: classification for integer, bool or string labels, regression for floats.
    optimizer : {"adam", "sgd"}, default="adam"
    lr, weight_decay : float
    momentum : float, default=0.9
        SGD momentum (ignored by Adam).
    epochs, batch_size : int
    init : {"he", "xavier", "torch", "swim", "uniform", "random"}, default="he"
        He (Kaiming normal, fan-in) or Xavier (Glorot normal) weights with zero biases, torch's
        default uniform ``U(-1/√d_in, 1/√d_in)`` for weights and biases, or a sampled network with its
        readout already solved (:func:`~dualmap.inverse.sampled_start`: SWIM pairs, uniform pairs, or
        data-agnostic random features), seeded by ``seed``.
    finetune : str, default="auto"
        How a sampled start is prepared and trained so that gradient steps keep its head start
        (:mod:`dualmap.swim.finetune`): ``"plain"`` (as sampled, one learning rate: the pre-issue-13
        behaviour), or a ``+``-joined combination of ``"calibrate"`` (temperature from leave-one-out scores),
        ``"rebalance"`` (ReLU: every hidden row to He's norm, the next layer compensating — the same
        function; ``"rebalance_act"`` to He's activation scale instead), ``"layer_lr"`` (learning rate
        per layer scaled to the layer's size relative to He's),
        ``"ridge"`` (a stronger readout penalty), ``"warmup"`` (the first 10 % of the steps train the readout
        only), ``"fresh_readout"`` (the sampled hidden layers under He's initial readout instead of the solved
        one), ``"kink_median"`` (ReLU: every neuron's kink moved to the median of its pre-activation over
        ``X``, the readout solved again — no longer strict SWIM neurons; ``"kink_cap"`` moves each only as far as
        needed to leave the neuron active on at most 90 % of the points; ``"kink_auto"`` moves them to the median
        only in layers whose median neuron is active on ≥ 99 % of the points). ``"auto"``:
        :data:`dualmap.inverse.DEFAULT_FINETUNE` (Adam; ``rebalance_act`` in place of ``rebalance`` for SGD,
        :data:`~dualmap.swim.finetune.DEFAULT_FINETUNE_SGD`) for ``swim``, ``uniform`` and ``random``,
        ``"plain"`` otherwise; ``"auto+kink_median"`` adds a scheme to those. ``rebalance`` and ``layer_lr`` also
        apply to an :class:`MLP` start.
    seed : int, default=0
        Seeds the initialisation and the mini-batch order: the same seed gives the same run on the CPU.
    checkpoints : int or sequence of int, default=20
        A count of log-spaced steps (including 0 and the last step), or explicit steps
        (:func:`checkpoint_steps`).
    X_val, y_val : optional validation data, evaluated once per epoch.
    monitor : dict of str → (X, y), optional
        More data sets evaluated once per epoch (e.g. ``{"test": (X_test, y_test)}``): history keys
        ``<name>_loss`` and ``<name>_metric``. They never influence training.
    device : {"auto", "cpu", "cuda"}
    dtype : {"float32", "float64"}, default="float32"
    progress : bool, default=True
        Show a progress bar over epochs.

    Returns
    -------
    TrainRun
    """
    check_choice(optimizer, OPTIMIZERS, "optimizer")
    check_choice(init, INITS, "init")
    if task not in ("auto", "classification", "regression"):
        raise ValueError(f"task must be 'auto', 'classification' or 'regression'; got {task!r}")
    check_int(epochs, "epochs")
    check_int(batch_size, "batch_size")
    if not lr > 0:
        raise ValueError(f"lr must be positive; got {lr!r}")
    X = check_data(X, min_samples=2)
    if len(y) != len(X):
        raise ValueError(f"y has {len(y)} rows but X has {len(X)}; they must match")
    task = infer_task(y) if task == "auto" else task
    targets, classes = encode_targets(y, task)
    n_outputs = len(classes) if task == "classification" else targets.shape[1]

    sampled = isinstance(model, (list, tuple, np.ndarray, range)) and init in SAMPLED_INITS
    in_place = _in_place(model)
    current = model.to_mlp() if in_place else model     # the network the model computes now
    if in_place or isinstance(model, MLP):
        model_activation = "relu" if all(a == "relu" for a in current.activations[:-1]) else "other"
    else:
        model_activation = activation
    if in_place:
        schemes = resolve_finetune(finetune, sampled=False, activation=model_activation)
        if schemes:
            raise ValueError(f"finetune schemes apply to MLP starts, not to a {type(model).__name__}; "
                             f"got {finetune!r}")
    else:
        schemes = resolve_finetune(finetune, sampled=sampled, activation=model_activation, optimizer=optimizer)
    torch_device, torch_dtype = resolve_device(device), resolve_dtype(dtype)
    generator = torch.Generator().manual_seed(int(seed))
    if in_place:
        name = type(model).__name__
        if current.input_dim != X.shape[1]:
            raise ValueError(f"the {name} expects {current.input_dim} features but X has {X.shape[1]}")
        if current.output_dim != n_outputs:
            raise ValueError(f"the {name} has {current.output_dim} outputs but the targets need {n_outputs}")
        module = model.to(dtype=torch_dtype)
        hidden = sorted(set(current.activations[:-1]))
        start_config = {"model": f"{name}{current.hidden_widths}",
                        "activation": hidden[0] if len(hidden) == 1 else list(current.activations[:-1])}
    elif isinstance(model, MLP):
        if model.input_dim != X.shape[1]:
            raise ValueError(f"the MLP expects {model.input_dim} features but X has {X.shape[1]}")
        if model.output_dim != n_outputs:
            raise ValueError(f"the MLP has {model.output_dim} outputs but the targets need {n_outputs}")
        module = model.to_torch().to(dtype=torch_dtype)
        start_config = {"model": repr(model)}
    else:
        widths = check_layer_widths(model, name="model")
        check_activation(activation)
        sizes = [X.shape[1], *widths, n_outputs]
        layers = []
        for index in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[index], sizes[index + 1], dtype=torch_dtype))
            if index < len(sizes) - 2:
                layers.append(nn.ReLU() if activation == "relu" else nn.Tanh())
        module = nn.Sequential(*layers)
        if init in SAMPLED_INITS:
            start, _ = sampled_start(X, targets, task, widths, activation, init, int(seed),
                                     readout="strong" if "ridge" in schemes else "gcv",
                                     calibration=None if "fresh_readout" in schemes else
                                     "loo" if "calibrate" in schemes else "train",
                                     kinks=next((KINK_SCHEMES[s] for s in schemes if s in KINK_SCHEMES), "pair"))
            if "rebalance" in schemes or "rebalance_act" in schemes:
                start = rebalance_relu(start, X if "rebalance_act" in schemes else None)
            module = start.to_torch().to(dtype=torch_dtype)
            if "fresh_readout" in schemes:     # the sampled features under He's initial readout
                _initialise(module[-1:], "he", generator)
        else:
            _initialise(module, init, generator)
        start_config = {"model": list(widths), "activation": activation, "init": init}
    if isinstance(model, MLP) and ("rebalance" in schemes or "rebalance_act" in schemes):
        module = rebalance_relu(model, X if "rebalance_act" in schemes else None).to_torch().to(dtype=torch_dtype)
    start_config["finetune"] = "+".join(schemes) or "plain"
    module = module.to(torch_device)

    X_t = as_tensor(X, device=torch_device, dtype=torch_dtype)
    y_t = torch.as_tensor(targets, device=torch_device)
    y_t = y_t if task == "classification" else y_t.to(torch_dtype)

    def evaluation_set(name, X_eval, y_eval):
        X_eval = check_data(X_eval, name=f"X_{name}", n_features=X.shape[1])
        if y_eval is None or len(y_eval) != len(X_eval):
            raise ValueError(f"y_{name} must have one row per row of X_{name} ({len(X_eval)})")
        if task == "classification":
            eval_targets = torch.as_tensor(class_indices(y_eval, classes, name=f"y_{name}", unknown="not seen in y"),
                                           device=torch_device)
        else:
            eval_targets = as_tensor(encode_targets(y_eval, task)[0], device=torch_device, dtype=torch_dtype)
        return as_tensor(X_eval, device=torch_device, dtype=torch_dtype), eval_targets

    evaluations = {}
    if X_val is not None:
        evaluations["val"] = evaluation_set("val", X_val, y_val)
    for name, pair in (monitor or {}).items():
        if name in ("train", "val") or not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"monitor names must be identifiers other than 'train' and 'val'; got {name!r}")
        try:
            X_eval, y_eval = pair
        except (TypeError, ValueError) as exc:
            raise TypeError(f"monitor[{name!r}] must be a pair (X, y)") from exc
        evaluations[name] = evaluation_set(name, X_eval, y_eval)


    def loss_function(outputs, targets):
        return task_loss(outputs, targets, task)

    linears = [layer for layer in module if isinstance(layer, nn.Linear)] if isinstance(module, nn.Sequential) else []
    if "layer_lr" in schemes:
        factors = layer_lr_factors([layer.weight.detach().cpu().double().numpy() for layer in linears], optimizer)
        groups = [{"params": list(layer.parameters()), "lr": lr * factor} for layer, factor in zip(linears, factors)]
    else:
        groups = [{"params": list(module.parameters()), "lr": lr}]
    if optimizer == "adam":
        optim = torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    else:
        optim = torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    hidden_parameters = [p for layer in linears[:-1] for p in layer.parameters()]

    n = len(X)
    steps_per_epoch = -(-n // batch_size)
    total_steps = steps_per_epoch * epochs
    warmup_steps = int(round(WARMUP_FRACTION * total_steps)) if "warmup" in schemes else 0
    wanted = checkpoint_steps(checkpoints, total_steps)
    saved, step, points = [], 0, []

    def keep(at_step):
        if len(saved) < len(wanted) and wanted[len(saved)] == at_step:
            saved.append((at_step, _snapshot(module)))
            if in_place:
                points.append(module.checkpoint_state())

    history = {key: [] for key in ("epoch", "step", "train_loss", "train_metric")}
    for name in evaluations:
        history.update({f"{name}_loss": [], f"{name}_metric": []})
    keep(0)
    bar = progress_bar(range(epochs), desc=f"train ({optimizer})", disable=not progress, unit="epoch")
    for epoch in bar:
        module.train()
        order = torch.randperm(n, generator=generator).to(torch_device)
        for start in range(0, n, batch_size):
            batch = order[start:start + batch_size]
            optim.zero_grad(set_to_none=True)
            loss = loss_function(module(X_t[batch]), y_t[batch])
            loss.backward()
            if step < warmup_steps:           # readout-only warm-up: the hidden layers keep their weights
                for parameter in hidden_parameters:
                    parameter.grad = None
            if "norm_step" in schemes:
                _trust_ratio(linears)
            optim.step()
            step += 1
            keep(step)
        module.eval()
        with torch.no_grad():
            outputs = module(X_t)
            history["epoch"].append(epoch + 1)
            history["step"].append(step)
            history["train_loss"].append(float(loss_function(outputs, y_t)))
            history["train_metric"].append(task_metric(outputs, y_t, task))
            for name, (X_eval, y_eval) in evaluations.items():
                eval_outputs = module(X_eval)
                history[f"{name}_loss"].append(float(loss_function(eval_outputs, y_eval)))
                history[f"{name}_metric"].append(task_metric(eval_outputs, y_eval, task))
        if progress:
            bar.set_postfix(loss=f"{history['train_loss'][-1]:.4f}")
        if not np.isfinite(history["train_loss"][-1]):
            raise FloatingPointError(
                f"training diverged at epoch {epoch + 1} (loss {history['train_loss'][-1]}); lower lr (now {lr})"
            )
    config = dict(start_config, optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size,
                  weight_decay=weight_decay, momentum=momentum, seed=seed, task=task, dtype=str(dtype),
                  checkpoint_steps=wanted)
    final = _snapshot(module)
    return TrainRun(model=final, checkpoints=saved, history={k: np.asarray(v) for k, v in history.items()},
                    task=task, classes=classes, config=config,
                    points=points if in_place else None)
