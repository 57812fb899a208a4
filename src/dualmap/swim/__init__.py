"""SWIM: sampling hidden neurons from pairs of data points (Bolager et al., NeurIPS 2023)."""

from .construction import TANH_S2, swim_constants, swim_neurons
from .density import SAMPLERS, DualmapWarning, draw_candidates, sample_pairs, score_candidates
from .estimators import SWIMClassifier, SWIMRegressor
from .readout import RidgeSolution, fit_ridge
from .sampler import SampledNetwork, sample_hidden_layers, sample_network

__all__ = [
    "SAMPLERS", "TANH_S2", "DualmapWarning", "RidgeSolution", "SWIMClassifier", "SWIMRegressor", "SampledNetwork",
    "draw_candidates", "fit_ridge", "sample_hidden_layers", "sample_network", "sample_pairs", "score_candidates",
    "swim_constants", "swim_neurons",
]
