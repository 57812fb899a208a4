"""The fine-tuning schemes of sampled starts, under their former name: they live in :mod:`dualmap.swim.finetune`
(below :mod:`dualmap.train`, which applies them; docs/architecture.md)."""

from ..swim.finetune import (
    DEFAULT_FINETUNE,
    DEFAULT_FINETUNE_SGD,
    FINETUNE_SCHEMES,
    WARMUP_FRACTION,
    layer_lr_factors,
    move_kinks,
    rebalance_relu,
    resolve_finetune,
)

__all__ = ["DEFAULT_FINETUNE", "DEFAULT_FINETUNE_SGD", "FINETUNE_SCHEMES", "WARMUP_FRACTION", "layer_lr_factors",
           "move_kinks", "rebalance_relu", "resolve_finetune"]
