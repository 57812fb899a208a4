"""dualmap: maps between the parameter space of neural networks and their input space.

Sample networks from pairs of data points (SWIM), train networks by gradient descent, and map trained
networks back to pairs of data points.
"""

__version__ = "0.1.0"

from . import dynamics, inverse, metrics
from ._io import CorruptFileError
from .data import Dataset, list_datasets, load_dataset
from .dynamics import Trajectory, track
from .inverse import PairNetwork
from .maps import PairMap, PlantedNetwork, planted_network, planted_recovery, to_pairs
from .network import MLP
from .swim import (
    DualmapWarning,
    SampledNetwork,
    SWIMClassifier,
    SWIMRegressor,
    sample_network,
    swim_constants,
    swim_neurons,
)
from .train import TrainRun, train

__all__ = [
    "CorruptFileError",
    "Dataset",
    "DualmapWarning",
    "MLP",
    "PairMap",
    "PairNetwork",
    "PlantedNetwork",
    "SWIMClassifier",
    "SWIMRegressor",
    "SampledNetwork",
    "TrainRun",
    "Trajectory",
    "list_datasets",
    "dynamics",
    "inverse",
    "load_dataset",
    "metrics",
    "planted_network",
    "planted_recovery",
    "sample_network",
    "swim_constants",
    "swim_neurons",
    "to_pairs",
    "track",
    "train",
]
