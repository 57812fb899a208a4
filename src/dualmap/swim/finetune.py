"""Fine-tuning a sampled start without losing its head start (``dm.train(..., finetune=...)``).

A sampled network is built at the scales of the data, not at the scales an optimiser expects. A SWIM
neuron has ``‖w‖ = s1/‖Δ‖``: with standardised 784-d inputs ``‖Δ‖ ≈ 30–40`` and every coordinate of ``w`` is
≈1e-3, the size of one Adam step; the ridge readout is correspondingly large. Adam moves every coordinate by
about ``lr`` whatever its scale, so the hidden layers change by their own size in a few steps while the
readout, large, does not move at all (docs/findings/inverse.md). The schemes below put the parameters at
the scale the optimiser expects, or the optimiser at the scale of the parameters:

``plain``
    The sampled network as sampled (readout calibrated by a temperature), one learning rate.
``calibrate``
    The readout's temperature fitted on the exact leave-one-out ridge scores of the training points instead
    of the scores themselves: the start's logits are as confident as the readout is on points it has not
    fitted (on training scores a separable readout drives the temperature to its bound and saturates the
    softmax).
``rebalance``
    ReLU only, exact: by positive homogeneity every hidden neuron's incoming weights and bias are multiplied
    by ``c_k = √2/‖w_k‖`` (He's expected row norm) and its outgoing weights divided by ``c_k``, layer by layer
    from the first; the network computes the same function (tested to rounding).
``rebalance_act``
    ReLU only, exact, like ``rebalance`` but to He's *activation* scale: every neuron is rescaled so that its
    pre-activation has RMS √2 over the training points (what an He row gives on standardised data). SWIM's rows
    point along data differences, so a row at He's norm gives pre-activations of ≈ 10 and features whose
    covariance is 20–30 000× He's: harmless for Adam, fatal for SGD's readout step.
``layer_lr``
    One learning rate per layer (weights and bias), ``lr · ρ_l`` for Adam and ``lr · ρ_l²`` for SGD, with
    ``ρ_l = min(1, RMS(W_l) / √(2/fan_in))`` the layer's weight scale relative to He's at the start. Equivalent to
    training in normalised coordinates ``W_l = ρ_l V_l`` with ``V_l`` at He's scale (for SGD the gradient of
    ``V`` is ``ρ`` times that of ``W``, hence ``ρ²``).
``norm_step``
    A norm-aware step (LARS-like trust ratio): before every step each layer's gradient (weights and bias
    together) is rescaled to ``‖θ_l‖·g_l/‖g_l‖``, so that ``lr`` is the relative step of every layer whatever
    its scale and whatever the scale of the layers after it. Changes SGD only (Adam is invariant to a
    per-layer gradient scale).
``ridge``
    The readout re-solved with a stronger penalty (``α = 0.1·mean eigenvalue`` of the feature Gram matrix
    instead of GCV's choice) and calibrated again: smaller readout weights, so changes of the hidden features
    swing the logits less.
``warmup``
    The first 10 % of the steps update the readout only (the same total budget).
``fresh_readout``
    The sampled hidden layers under He's *initial* readout (Kaiming normal weights, zero bias, drawn from the
    run's seed) instead of the solved one: the pairs' features without the head start of their ridge readout.
    On ReLU, with ``rebalance_act`` and ``warmup``, it ends closer to He than any start that keeps the solved
    readout on digits, Fashion-MNIST and breast cancer, and worse on the smallest set measured (wine):
    docs/findings/inverse.md §9.

``kink_median``
    ReLU only, and no longer a strict SWIM neuron: every hidden neuron keeps its direction but its kink moves from
    its pair's first point to the median of its pre-activation over the training points
    and the readout is solved again (GCV; ``ridge`` and ``calibrate`` apply to it). A SWIM
    ReLU neuron is zero at its first point and, in high dimension, active on 90–100 % of the training points: the
    sampled layer is nearly affine on the data, a poor place for gradient training to learn features from
    (docs/findings/inverse.md §12). Moved to the median, every neuron is active on half of them
    (:func:`move_kinks`).
``kink_cap``
    Like ``kink_median``, but each kink moves only as far as needed to leave its neuron active on at most
    :data:`KINK_CAP` (90 %) of the training points; a neuron already active on fewer keeps its pair's kink.
``kink_auto``
    ``kink_median`` for the layers that are nearly affine on the training points — whose median neuron is active
    on at least :data:`AFFINE_ACTIVITY` (99 %) of them — and the pair's kinks elsewhere: the rule the measurement
    suggests (docs/findings/inverse.md §12; digits, Fashion-MNIST and a 100-d synthetic task are all-active,
    breast cancer and wine are not).

Schemes combine with ``+`` (e.g. ``"rebalance+layer_lr"``); ``rebalance`` and the ``kink_*`` schemes are skipped for
tanh, which has no rescaling symmetry and whose SWIM neurons already cross zero between their two points.
``"auto"`` is :data:`DEFAULT_FINETUNE` (Adam) or :data:`DEFAULT_FINETUNE_SGD` (SGD) for sampled starts and
``plain`` otherwise; ``"auto+kink_median"`` adds a scheme to those defaults.

The schemes live next to the sampler, below :mod:`dualmap.train`, which applies them (docs/architecture.md);
:mod:`dualmap.inverse.finetune` re-exports them under their former name.
"""

from __future__ import annotations

import numpy as np

from ..network import MLP

__all__ = ["FINETUNE_SCHEMES", "DEFAULT_FINETUNE", "DEFAULT_FINETUNE_SGD", "resolve_finetune", "rebalance_relu",
           "move_kinks", "layer_lr_factors", "WARMUP_FRACTION", "KINK_CAP", "AFFINE_ACTIVITY", "KINK_SCHEMES"]

FINETUNE_SCHEMES = ("plain", "calibrate", "rebalance", "rebalance_act", "layer_lr", "norm_step", "ridge", "warmup",
                    "fresh_readout", "kink_median", "kink_cap", "kink_auto")
#: what ``finetune="auto"`` means for a sampled start trained with Adam (chosen in docs/findings/inverse.md)
DEFAULT_FINETUNE = ("calibrate", "rebalance", "layer_lr", "warmup")
#: ... and with SGD, whose readout step scales with the feature covariance (rebalanced to He's activation scale)
DEFAULT_FINETUNE_SGD = ("calibrate", "rebalance_act", "layer_lr", "warmup")
WARMUP_FRACTION = 0.1
#: ``kink_cap``: the largest fraction of the training points a moved ReLU neuron is active on
KINK_CAP = 0.9
#: ``kink_auto``: a ReLU layer whose median neuron is active on at least this fraction of the training points is
#: nearly affine on them, and its kinks move to the median (docs/findings/inverse.md §12)
AFFINE_ACTIVITY = 0.99
#: the schemes that move ReLU kinks → :func:`~dualmap.swim.start.sampled_start`'s ``kinks``
KINK_SCHEMES = {"kink_median": "median", "kink_cap": "cap", "kink_auto": "auto"}


def resolve_finetune(finetune, *, sampled: bool, activation: str | None, optimizer: str = "adam") -> tuple[str, ...]:
    """The tuple of schemes that ``finetune`` names (``()`` for ``plain``); errors name the allowed values."""
    if finetune is None:
        finetune = "plain"
    defaults = (DEFAULT_FINETUNE_SGD if optimizer == "sgd" else DEFAULT_FINETUNE) if sampled else ()
    if isinstance(finetune, str):
        if finetune == "auto":
            return tuple(p for p in defaults if not (p.startswith("rebalance") and activation != "relu"))
        parts = tuple(p.strip() for p in finetune.split("+"))
        if "auto" in parts:      # "auto+kink_median": the defaults and more
            parts = tuple(p for p in parts if p != "auto") + defaults
            if not parts:
                parts = ("plain",)
    elif isinstance(finetune, (tuple, list)) and all(isinstance(p, str) for p in finetune):
        parts = tuple(finetune)
    else:
        raise TypeError(f"finetune must be a string such as 'auto', 'plain' or 'rebalance+layer_lr'; got {finetune!r}")
    unknown = [p for p in parts if p not in FINETUNE_SCHEMES]
    if unknown or not parts:
        raise ValueError(f"unknown finetune scheme(s) {unknown or [finetune]}; supported: 'auto' or a '+'-joined "
                         f"combination of 'auto' and {list(FINETUNE_SCHEMES)}")
    if "plain" in parts and len(parts) > 1:
        raise ValueError(f"finetune 'plain' cannot be combined with other schemes; got {finetune!r}")
    for scheme in ("ridge", "calibrate", "fresh_readout", *KINK_SCHEMES):
        if scheme in parts and not sampled:
            raise ValueError(f"finetune {scheme!r} changes a sampled readout; it needs init='swim', 'uniform' or "
                             f"'random'")
    if "fresh_readout" in parts and ("ridge" in parts or "calibrate" in parts):
        raise ValueError(f"finetune 'fresh_readout' replaces the sampled readout, which 'ridge' and 'calibrate' "
                         f"prepare; combine it with neither (got {finetune!r})")
    if "rebalance" in parts and "rebalance_act" in parts:
        raise ValueError("finetune 'rebalance' and 'rebalance_act' are two targets for the same rescaling; pick one")
    if sum(p in parts for p in KINK_SCHEMES) > 1:
        raise ValueError("finetune 'kink_median', 'kink_cap' and 'kink_auto' are ways of moving the same kinks; "
                         "pick one")
    if activation != "relu":
        # tanh (and mixed) networks have no positive homogeneity (nothing to rebalance, exactly), and a tanh SWIM
        # neuron already crosses zero between its two points (no kink to move)
        parts = tuple(p for p in parts if p not in ("rebalance", "rebalance_act", *KINK_SCHEMES))
    return tuple(sorted(set(parts) - {"plain"}, key=FINETUNE_SCHEMES.index))


def rebalance_relu(network: MLP, X=None) -> MLP:
    """Rescale every ReLU neuron to He's row norm √2, the next layer compensating: the same function.

    Layer by layer from the first: neuron ``k`` of hidden layer ``l`` gets ``(c_k w_k, c_k b_k)`` with
    ``c_k = √2/‖w_k‖`` (``c_k = 1`` for a zero row), and column ``k`` of layer ``l+1`` is divided by ``c_k``
    before that layer is itself rescaled. Exact because ``relu(c·z) = c·relu(z)`` for ``c > 0``.
    With ``X`` (scheme ``rebalance_act``) ``c_k = √2/RMS_X(z_k)`` instead, ``z_k`` the neuron's pre-activation on
    the rows of ``X`` pushed through the rebalanced layers before it.
    """
    if any(a != "relu" for a in network.activations[:-1]):
        raise ValueError(f"rebalancing needs ReLU hidden layers; got {list(network.activations[:-1])}")
    weights = [np.array(w, dtype=np.float64, copy=True) for w in network.weights]
    biases = [np.array(b, dtype=np.float64, copy=True) for b in network.biases]
    Z = None if X is None else np.asarray(X, dtype=np.float64)
    for layer in range(len(weights) - 1):
        if Z is None:
            norms = np.linalg.norm(weights[layer], axis=1)
        else:
            norms = np.sqrt(np.mean((Z @ weights[layer].T + biases[layer]) ** 2, axis=0))
        scale = np.where(norms > 0, np.sqrt(2.0) / np.where(norms > 0, norms, 1.0), 1.0)
        weights[layer] *= scale[:, None]
        biases[layer] *= scale
        weights[layer + 1] /= scale[None, :]
        if Z is not None:
            Z = np.maximum(Z @ weights[layer].T + biases[layer], 0.0)
    return MLP(weights, biases, list(network.activations))


def move_kinks(network: MLP, X, *, max_active: float | None = None, affine_only: bool = False) -> MLP:
    """Move ReLU neurons' kinks along their directions; the readout is left as it is (the caller solves it again).

    Layer by layer from the first, with ``z_ik = ⟨w_k, x_i⟩`` on the rows of ``X`` pushed through the moved layers
    before: ``max_active=None`` sets every bias to ``b_k = −median_i z_ik`` (scheme ``kink_median``: active on half
    the rows); a fraction ``c`` moves a kink only as far as needed to leave the neuron active on at most ``c`` of
    them, ``b_k ← min(b_k, −quantile_{1−c}(z_k))`` (scheme ``kink_cap``, ``c =`` :data:`KINK_CAP`), so a neuron
    active on fewer keeps its pair's kink. ``affine_only`` (scheme ``kink_auto``) moves only the layers that are
    nearly affine on ``X``: those whose median neuron is active on at least :data:`AFFINE_ACTIVITY` of the rows.
    The directions ``w_k`` never change; the function does.
    """
    if any(a != "relu" for a in network.activations[:-1]):
        raise ValueError(f"moving kinks needs ReLU hidden layers; got {list(network.activations[:-1])}")
    if max_active is not None and not 0.0 < max_active < 1.0:
        raise ValueError(f"max_active must be a fraction in (0, 1) or None (the median); got {max_active!r}")
    weights = [np.array(w, dtype=np.float64, copy=True) for w in network.weights]
    biases = [np.array(b, dtype=np.float64, copy=True) for b in network.biases]
    Z = np.asarray(X, dtype=np.float64)
    for layer in range(len(weights) - 1):
        projections = Z @ weights[layer].T
        nearly_affine = np.median(np.mean(projections + biases[layer] > 0, axis=0)) >= AFFINE_ACTIVITY
        if nearly_affine or not affine_only:     # affine_only: a layer that is not nearly affine keeps its kinks
            biases[layer] = (-np.median(projections, axis=0) if max_active is None else
                             np.minimum(biases[layer], -np.quantile(projections, 1.0 - max_active, axis=0)))
        Z = np.maximum(projections + biases[layer], 0.0)
    return MLP(weights, biases, list(network.activations))


def layer_lr_factors(weights, optimizer: str) -> list[float]:
    """Per layer ``ρ_l = min(1, RMS(W_l)/√(2/fan_in))`` (``ρ_l²`` for SGD): the layer's scale relative to He's.

    Capped at 1: a layer larger than He's (a ridge readout is 100–300× larger) keeps the base rate; raising it
    to ``lr·ρ`` made the first Adam step alone raise the test loss from 0.19 to 11.6 (digits, 1×256 ReLU).
    """
    factors = []
    for weight in weights:
        weight = np.asarray(weight, dtype=np.float64)
        rms = float(np.sqrt(np.mean(weight**2))) if weight.size else 0.0
        rho = min(rms / np.sqrt(2.0 / weight.shape[1]), 1.0) if rms > 0 else 1.0
        factors.append(rho**2 if optimizer == "sgd" else rho)
    return factors
