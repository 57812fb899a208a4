"""dualmap: maps between the parameter space of neural networks and their input space.

Sample networks from pairs of data points (SWIM), and map trained networks back to pairs.
"""

__version__ = "0.1.0"

from ._io import CorruptFileError
from .data import Dataset, list_datasets, load_dataset
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

__all__ = [
    "CorruptFileError",
    "Dataset",
    "DualmapWarning",
    "MLP",
    "SWIMClassifier",
    "SWIMRegressor",
    "SampledNetwork",
    "list_datasets",
    "load_dataset",
    "sample_network",
    "swim_constants",
    "swim_neurons",
]
