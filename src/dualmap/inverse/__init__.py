"""The inverse map: sampled weights as the start of gradient training, and networks trained in pair space."""

from ..swim.finetune import DEFAULT_FINETUNE, FINETUNE_SCHEMES, move_kinks, rebalance_relu
from ..swim.start import SAMPLED_INITS, sampled_start
from .compare import DEFAULT_INITS, InitComparison, compare_inits
from .pair_network import PairNetwork
from .prior import PairPrior, fit_pair_prior

__all__ = ["DEFAULT_FINETUNE", "DEFAULT_INITS", "FINETUNE_SCHEMES", "SAMPLED_INITS", "InitComparison", "PairNetwork",
           "PairPrior", "compare_inits", "fit_pair_prior", "move_kinks", "rebalance_relu",
           "sampled_start"]
