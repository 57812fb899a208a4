"""The loss and the score of a network's outputs against its targets: one definition for training's history,
the starts of :func:`dualmap.inverse.compare_inits` and the retraining protocols of :mod:`dualmap.attribution`.

Classification: cross-entropy of the logits against class indices, and accuracy (argmax). Regression: mean
squared error, and the pooled R² ``1 − Σ(outputs − targets)² / Σ(targets − mean)²`` (NaN for constant targets).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["task_loss", "task_metric"]


def task_loss(outputs: torch.Tensor, targets: torch.Tensor, task: str, *, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy (``task="classification"``, ``targets`` class indices) or mean squared error."""
    if task == "classification":
        return nn.functional.cross_entropy(outputs, targets, reduction=reduction)
    return nn.functional.mse_loss(outputs, targets, reduction=reduction)


def task_metric(outputs: torch.Tensor, targets: torch.Tensor, task: str) -> float:
    """Accuracy (``task="classification"``, ``targets`` class indices) or pooled R² (NaN for constant targets)."""
    if task == "classification":
        return float((outputs.argmax(dim=1) == targets).double().mean())
    residual = ((outputs - targets) ** 2).sum()
    total = ((targets - targets.mean(dim=0)) ** 2).sum()
    return float(1.0 - residual / total) if total > 0 else float("nan")
