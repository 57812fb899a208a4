"""Forward maps: trained network → pairs of data points (and planted networks to test them)."""

from .forward import DEFAULT_METHOD, METHODS, candidate_pairs, to_pairs
from .pairmap import SCORE_NAMES, PairMap, fingerprint
from .planted import PlantedNetwork, planted_network, planted_recovery

__all__ = ["DEFAULT_METHOD", "METHODS", "SCORE_NAMES", "PairMap", "PlantedNetwork", "candidate_pairs", "fingerprint",
           "planted_network", "planted_recovery", "to_pairs"]
