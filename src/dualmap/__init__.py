"""dualmap: maps between the parameter space of neural networks and their input space.

Sample networks from pairs of data points (SWIM), train networks by gradient descent, and map trained
networks back to pairs of data points.

The top level holds what the workflow of the README calls, and the types it returns: data sets, the network,
sampling (SWIM, and the pair → neuron formula itself), training, the forward map and its planted test, tracking
over training, the pair network, and the errors and warnings a caller catches. Everything else lives in the
public subpackages, each reachable as an attribute (``dm.maps.DataContext``, ``dm.metrics.evaluate_map``):
``attribution``, ``dynamics``, ``inverse``, ``maps``, ``metrics``, ``report``, ``study`` and ``swim``. Modules
whose name starts with ``_`` are internal (docs/architecture.md, "Public API").

The names below are imported on first use (PEP 562), so ``import dualmap`` — and ``dualmap --help`` — does
not pay for PyTorch, scikit-learn or matplotlib until something needs them.
"""

from __future__ import annotations

import importlib
import sys
import types

from ._version import __version__ as __version__  # re-exported: dualmap.__version__

#: public name → the submodule that defines it (``None``: the name is the submodule itself)
_EXPORTS = {
    "CorruptFileError": "._io",
    "Dataset": ".data", "list_datasets": ".data", "load_dataset": ".data",
    "Trajectory": ".dynamics", "track": ".dynamics",
    "PairNetwork": ".inverse",
    "PairMap": ".maps", "PlantedNetwork": ".maps", "planted_network": ".maps", "planted_recovery": ".maps",
    "to_pairs": ".maps",
    "MLP": ".network",
    "DualmapWarning": ".swim", "SampledNetwork": ".swim", "SWIMClassifier": ".swim", "SWIMRegressor": ".swim",
    "sample_network": ".swim", "swim_constants": ".swim", "swim_neurons": ".swim",
    "TrainRun": ".train", "train": ".train",
    "attribution": None, "dynamics": None, "inverse": None, "maps": None, "metrics": None, "report": None,
    "study": None, "swim": None,
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dualmap' has no attribute {name!r}")
    module = _EXPORTS[name]
    value = (importlib.import_module(f".{name}", __name__) if module is None
             else getattr(importlib.import_module(module, __name__), name))
    globals()[name] = value           # cached: the next access is an ordinary attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


class _Package(types.ModuleType):
    """``dualmap.train`` is the function, as it was with eager imports: importing the submodule of the same
    name (``from dualmap.train import ...``) must not replace it with the module."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and name in _EXPORTS and _EXPORTS[name] is not None:
            return                    # the submodule stays reachable through sys.modules
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
