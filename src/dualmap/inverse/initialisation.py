"""Sampled starts for :func:`dualmap.train`, under their former name: they live in :mod:`dualmap.swim.start`,
next to the sampler (docs/architecture.md)."""

from ..swim.start import SAMPLED_INITS, sampled_start

__all__ = ["SAMPLED_INITS", "sampled_start"]
