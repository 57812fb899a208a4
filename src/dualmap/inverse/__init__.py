"""The inverse map: sampled weights as the start of gradient training, and networks trained in pair space."""

from .initialisation import SAMPLED_INITS, sampled_start
from .pair_network import PairNetwork

__all__ = ["SAMPLED_INITS", "PairNetwork", "sampled_start"]
