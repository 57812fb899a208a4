"""Forward maps: trained network → pairs of data points (and planted networks to test them).

The candidate search (``_single.candidate_pairs``) and the data fingerprint (``pairmap.fingerprint``) are
internals, imported from their modules.
"""

from .context import (
           DEFAULT_METHOD,
           METHODS,
           STEEPNESS,
           DataContext,
           SearchOptions,
           WarmStart,
)
from .forward import map_network, to_pairs
from .pairmap import (
           READOUTS,
           SCORE_NAMES,
           PairMap,
           RebuiltLayers,
           fold_coefficients,
           network_fingerprint,
)
from .planted import PlantedNetwork, planted_network, planted_recovery

__all__ = ["DEFAULT_METHOD", "METHODS", "READOUTS", "SCORE_NAMES", "STEEPNESS", "DataContext", "PairMap",
           "PlantedNetwork", "RebuiltLayers", "SearchOptions", "WarmStart", "fold_coefficients",
           "map_network", "network_fingerprint", "planted_network", "planted_recovery", "to_pairs"]
