"""The forward map over the iterations of training: which data points a network rests on, and how that changes."""

from .measures import (
    effective_number,
    neuron_contributions,
    neuron_drift,
    point_importance,
    rank_correlation,
    swim_point_density,
    switch_rate,
)
from .trajectory import TRACK_METHOD, Trajectory, track

__all__ = ["TRACK_METHOD", "Trajectory", "effective_number", "neuron_contributions", "neuron_drift", "point_importance",
           "rank_correlation", "swim_point_density", "switch_rate", "track"]
