"""Training-data attribution from the forward map, its baselines, and the counterfactual tests.

* :func:`point_scores` — scores of training points, global (n_train,) or per test point (n_test, n_train):
  ``"map"`` (through the map's neurons), ``"tracin"`` (captum's TracInCP or its exact factorisation),
  ``"importance"`` (the trajectory's importance), ``"random"``, ``"swim_density"``.
* :func:`validate` — remove-and-retrain, the linear datamodeling score and mislabel detection.
"""

from .protocols import (
    ValidationResult,
    lds,
    linear_datamodeling_score,
    mislabel_auc,
    remove_and_retrain,
    validate,
)
from .scores import MAP_VARIANTS, METHODS, checkpoint_weights, point_scores

__all__ = ["MAP_VARIANTS", "METHODS", "ValidationResult", "checkpoint_weights", "lds", "linear_datamodeling_score",
           "mislabel_auc", "point_scores", "remove_and_retrain", "validate"]
