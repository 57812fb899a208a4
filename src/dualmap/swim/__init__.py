"""SWIM: sampling hidden neurons from pairs of data points (Bolager et al., NeurIPS 2023).

The building blocks the sampler uses (``density.sample_pairs``, ``density.draw_candidates``,
``density.score_candidates``, ``readout.fit_ridge``, ``sampler.sample_hidden_layers``) are imported from their
modules; they are not part of this package's interface.
"""

from .construction import TANH_S2, swim_constants, swim_neurons
from .density import SAMPLERS, DualmapWarning
from .estimators import SWIMClassifier, SWIMRegressor
from .sampler import SampledNetwork, sample_network

__all__ = [
    "SAMPLERS", "TANH_S2", "DualmapWarning", "SWIMClassifier", "SWIMRegressor", "SampledNetwork", "sample_network",
    "swim_constants", "swim_neurons",
]
