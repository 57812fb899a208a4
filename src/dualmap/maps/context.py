"""The three small objects a forward map runs on: what it searches with (:class:`SearchOptions`), what one
data set costs once (:class:`DataContext`), and what an earlier map offers (:class:`WarmStart`).

A single map (:func:`~dualmap.to_pairs`) builds all three itself. Tracking (:func:`~dualmap.track`) builds
the context once and reuses it at every checkpoint: the validated data, its fingerprint, the evaluation
rows, the coincidence groups, and per layer representation its Gram matrix with the evaluation rows and
its nearest-neighbour lists — a layer whose input representation did not change between checkpoints
costs none of these again.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real

import numpy as np
import torch

from .._backend import as_tensor, resolve_device, resolve_dtype
from .._validation import check_choice, check_data, check_int
from ..network import MLP
from ._scores import eval_gram, point_groups
from .pairmap import PairMap, fingerprint

__all__ = ["SearchOptions", "DataContext", "WarmStart", "METHODS", "DEFAULT_METHOD", "STEEPNESS"]

METHODS = ("downstream", "joint", "function", "assignment", "geometric", "thesis")
DEFAULT_METHOD = "downstream"
#: ``"swim"``: every atom a strict SWIM neuron; ``"free"``: tanh atoms take the trained neuron's steepness
#: (:func:`~dualmap.maps._atoms.steepness_for`) — a relaxation, no longer a SWIM neuron.
STEEPNESS = ("swim", "free")


@dataclass(frozen=True)
class SearchOptions:
    """How a forward map searches (every field is a keyword of :func:`~dualmap.to_pairs`).

    Attributes
    ----------
    method : str
        One of :data:`METHODS` (``docs/maths.md`` §5 says which when).
    atoms : int
        ``k``: atoms (ordered data pairs) per neuron; ``k > 1`` needs ``method="downstream"``.
    steepness : {"swim", "free"}
    n_anchors, n_partners : int
        Geometric candidates per neuron: anchors on the level set × partners (twice for tanh).
    n_random : int
        Uniform random pairs added to every neuron's pool (``"downstream"``): atoms beyond the first often
        point away from the trained neuron.
    n_eval : int
        Evaluation points (a seeded subset of ``X``) on which candidates are compared.
    n_list : int
        Candidates per neuron kept for the joint choice (``"joint"``, ``"downstream"``).
    refine_rounds, n_neighbors : int
        Rounds of local search that move a point of a chosen pair to one of its nearest data points.
    sweeps : int
        Coordinate-descent passes per round (``"downstream"``).
    ratio, max_candidates : float, int
        The thesis baseline's threshold ratio and cap.
    seed : int
        Seeds the evaluation subset and the random pairs.
    dtype : str
        Precision of the geometric candidate search; decisions are made in float64.
    """

    method: str = DEFAULT_METHOD
    atoms: int = 1
    steepness: str = "swim"
    n_anchors: int = 8
    n_partners: int = 8
    n_random: int = 64
    n_eval: int = 2048
    n_list: int = 32
    refine_rounds: int = 2
    n_neighbors: int = 16
    sweeps: int = 3
    ratio: float = 0.04
    max_candidates: int = 64
    seed: int = 0
    dtype: str = "float32"

    def __post_init__(self):
        check_choice(self.method, METHODS, "method")
        if isinstance(self.atoms, bool) or not isinstance(self.atoms, Integral):
            raise TypeError(f"atoms must be an int >= 1 (atoms per neuron); got {self.atoms!r} of type "
                            f"{type(self.atoms).__name__}")
        if self.atoms < 1:
            raise ValueError(f"atoms must be >= 1 (atoms per neuron); got {self.atoms}")
        if self.atoms > 1 and self.method != "downstream":
            raise ValueError(f"atoms={self.atoms} needs method='downstream'; method {self.method!r} maps every "
                             f"neuron to one pair")
        if self.steepness not in STEEPNESS:
            raise ValueError(f"steepness must be one of {list(STEEPNESS)}; got {self.steepness!r}")
        if self.steepness == "free" and self.method != "downstream":
            raise ValueError("steepness='free' needs method='downstream'")
        for name in ("n_anchors", "n_partners", "n_eval", "n_list", "n_neighbors", "max_candidates", "sweeps"):
            check_int(getattr(self, name), name)
        for name in ("n_random", "refine_rounds"):
            check_int(getattr(self, name), name, minimum=0)
        if not isinstance(self.seed, Integral) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an int; got {self.seed!r}")
        if not isinstance(self.ratio, Real):
            raise TypeError(f"ratio must be a number in [0, 1]; got {self.ratio!r}")
        if not 0 <= self.ratio <= 1:
            raise ValueError(f"ratio must be in [0, 1]; got {self.ratio!r}")
        resolve_dtype(self.dtype)

    def params(self) -> dict:
        """The options as the ``params`` a :class:`~dualmap.PairMap` carries."""
        values = asdict(self)
        values.pop("method")
        if self.method == "thesis":
            return {"ratio": self.ratio, "max_candidates": self.max_candidates}
        values.pop("ratio")
        values.pop("max_candidates")
        return values


@dataclass
class Representation:
    """One layer's input representation on the data, and what the search computes on it once."""

    Z: torch.Tensor                                  # (n, d) float64
    groups: torch.Tensor                             # coincidence groups
    neighbors: torch.Tensor                          # (n, n_neighbors), −1 where not yet known
    gram: torch.Tensor | None = None                 # Z @ Z[eval].T, when it pays
    search: torch.Tensor | None = None               # Z in the search dtype


@dataclass
class DataContext:
    """What one data set ``X`` costs once (module docstring).

    Build it with :meth:`build`; :func:`~dualmap.maps.forward.map_network` reads it.
    """

    X: np.ndarray
    fingerprint: str
    device: torch.device
    search_dtype: torch.dtype
    eval_rows: torch.Tensor
    n_neighbors: int
    keep: bool = True
    representations: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, X, *, n_features: int, n_eval: int = 2048, seed: int = 0, device="auto", dtype="float32",
              n_neighbors: int = 8, keep: bool = True) -> "DataContext":
        """Validate ``X`` (finite, 2-D, ``n_features`` columns, two distinct points) and prepare it; ``keep``:
        hold each representation's Gram matrix and search copy for later maps (tracking) instead of
        releasing them after their layer."""
        X = check_data(X, min_samples=2, n_features=n_features)
        if not np.any(np.ptp(X, axis=0) > 0):
            raise ValueError("X holds fewer than 2 distinct points; no pair can be formed")
        torch_device = resolve_device(device)
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(X), size=min(n_eval, len(X)), replace=False))
        return cls(X=X, fingerprint=fingerprint(X), device=torch_device, search_dtype=resolve_dtype(dtype),
                   eval_rows=torch.as_tensor(rows, device=torch_device), n_neighbors=n_neighbors, keep=keep)

    @property
    def Z(self) -> torch.Tensor:
        """``X`` as a float64 tensor on the device (the first layer's representation)."""
        return self.representation(None).Z

    def representation(self, key, make=None) -> Representation:
        """The cached representation under ``key`` (None: ``X`` itself), built by ``make()`` (→ float64 Z)
        the first time. Keys are content hashes (:func:`representation_key`), so an unchanged layer below
        means a cache hit; at most the input and four more representations are kept."""
        if key not in self.representations:
            Z = as_tensor(self.X, device=self.device, dtype=torch.float64) if key is None else make()
            if len(self.representations) > 4:
                oldest = next(k for k in self.representations if k is not None)
                del self.representations[oldest]
            self.representations[key] = Representation(
                Z=Z, groups=point_groups(Z),
                neighbors=torch.full((len(Z), self.n_neighbors), -1, dtype=torch.int64, device=self.device))
        return self.representations[key]

    def gram(self, representation: Representation, n_evaluations: int) -> torch.Tensor | None:
        """``Z Z_evalᵀ`` of a representation when it makes the candidate evaluations cheaper (cached).

        When the float64 matrix exceeds :func:`~dualmap.maps._scores.eval_gram`'s memory bound (60k points ×
        2048 evaluation rows), it is kept in float32: half the memory, and candidates' activations then carry
        a relative rounding of ~1e-7 — far below the differences between candidates of a trained network,
        though too coarse to certify an *exact* match (planted networks of that size would need float64)."""
        if representation.gram is None:
            gram = eval_gram(representation.Z, self.eval_rows, n_evaluations)
            if gram is None and representation.Z.dtype == torch.float64:
                gram = eval_gram(self.search_view(representation), self.eval_rows, n_evaluations)
            representation.gram = gram
        return representation.gram

    def release(self, representation: Representation) -> None:
        """Drop what a representation's search cached (Gram matrix, search copy) unless the context is kept
        across maps (tracking)."""
        if not self.keep:
            representation.gram = representation.search = None

    def search_view(self, representation: Representation) -> torch.Tensor:
        if representation.search is None:
            representation.search = representation.Z.to(self.search_dtype)
        return representation.search


def representation_key(layer: int, atoms: np.ndarray, steepness: np.ndarray | None, below) -> str:
    """A content hash of a rebuilt layer: its atoms, steepness and the representation it was built on."""
    digest = hashlib.sha1(repr((layer, below)).encode())
    digest.update(np.ascontiguousarray(atoms, dtype=np.int64).tobytes())
    if steepness is not None:
        digest.update(np.ascontiguousarray(steepness, dtype=np.float64).tobytes())
    return digest.hexdigest()


@dataclass
class WarmStart:
    """An earlier map that seeds the next one (tracking over checkpoints).

    Attributes
    ----------
    pair_map : PairMap
        The previous checkpoint's map: every neuron that is not settled gets the full search with its previous
        atoms added to its candidates (and, with ``relocate``, searches near them first).
    network : MLP
        The network ``pair_map`` mapped.
    settle_angle : float
        A neuron whose trained activations on the evaluation points turned by at most this angle (radians)
        and whose previous atoms still reproduce it as well as before (``neuron_r2`` lower by at most
        ``margin``) keeps them without a search.
    margin : float
        Hysteresis: a neuron leaves its previous atoms only for atoms better by more than ``margin`` (in
        neuron R² for the start of the descent; in the descent, as a fraction of what the next layer receives).
    relocate : float or None
        ``"downstream"`` only, opt-in (None: off). Every neuron that is not settled first searches near its
        previous atoms (they and their neighbour moves are its pool); only a neuron whose nearby atoms leave
        more of it unexplained (``1 − R²``) than its previous atoms did when they were chosen, by a factor above
        ``1 + relocate``, gets the full search. Cheaper, but it can fall behind a cold map (BENCHMARKS.md,
        issue 11): off by default.
    """

    pair_map: PairMap
    network: MLP
    settle_angle: float = 0.02
    margin: float = 1e-3
    relocate: float | None = None

    def check(self, mlp: MLP) -> None:
        if not isinstance(self.pair_map, PairMap):
            raise TypeError(f"WarmStart.pair_map must be a PairMap; got {type(self.pair_map).__name__}")
        if [w.shape for w in self.network.weights] != [w.shape for w in mlp.weights]:
            raise ValueError("the warm start's network has another architecture than the network to map")
        if self.pair_map.widths != tuple(mlp.hidden_widths):
            raise ValueError(f"the warm start's map has widths {self.pair_map.widths}, the network "
                             f"{tuple(mlp.hidden_widths)}")
