"""Grid expansion: a grid file (or mapping) → its runs, each a resolved, validated study configuration.

The grid format is in the package docstring (src/dualmap/study/sweep/__init__.py).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..._validation import check_int
from ..config import ConfigError, StudyConfig, apply_overrides, config_hash, parse_yaml, validate_config

__all__ = ["GRID_KEYS", "SHORTHAND", "SweepRun", "expand_grid", "grid_id"]

GRID_KEYS = ("base", "grid")
SHORTHAND = ("network.width", "network.depth")


@dataclass(frozen=True)
class SweepRun:
    """One grid point: the grid values that define it, its resolved config and its hash.

    Attributes
    ----------
    values : dict
        ``{grid key: value}`` in the grid's key order (the shorthand keys as given).
    config : StudyConfig
        The resolved configuration (base, then the grid values).
    config_hash : str
        :func:`~dualmap.study.config.config_hash` of ``config``; the run's folder name.
    """

    values: dict
    config: StudyConfig
    config_hash: str


def _read_grid(grid) -> tuple[dict, str]:
    """The grid mapping and its text as given (YAML), from a path or a dict."""
    if isinstance(grid, (str, os.PathLike)):
        path = Path(grid)
        if not path.exists():
            raise FileNotFoundError(f"no such grid file: {path}")
        if path.is_dir():
            raise ConfigError(f"{path} is a folder, not a grid YAML file")
        text = path.read_text()
        try:
            data = parse_yaml(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from None
        source = f" in {path}"
    elif isinstance(grid, dict):
        data, source = grid, ""
        text = yaml.safe_dump(grid, sort_keys=False)
    else:
        raise TypeError(f"grid must be a path to a YAML file or a dict; got {type(grid).__name__}")
    if not isinstance(data, dict):
        raise ConfigError(f"a grid file{source} must be a mapping with keys {', '.join(GRID_KEYS)}; "
                          f"got {type(data).__name__}")
    unknown = [key for key in data if key not in GRID_KEYS]
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {', '.join(map(repr, unknown))} in the grid{source}; "
                          f"allowed: {', '.join(GRID_KEYS)}")
    return data, text


def _check_axes(axes) -> dict:
    if not isinstance(axes, dict) or not axes:
        raise ConfigError(f"'grid' must be a non-empty mapping of dotted keys to lists of values "
                          f"(e.g. 'seed: [0, 1]'); got {axes!r}")
    for key, values in axes.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"grid keys must be dotted strings like 'network.activation'; got {key!r}")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid key {key!r} must map to a non-empty list of values; got {values!r}")
        seen = []
        for value in values:
            if value in seen:
                raise ConfigError(f"grid key {key!r} lists the value {value!r} twice")
            seen.append(value)
    if "network.widths" in axes and any(key in axes for key in SHORTHAND):
        raise ConfigError("the grid gives both 'network.widths' and the shorthand "
                          "'network.width'/'network.depth'; use one or the other")
    return axes


def _positive_int(key: str, value) -> int:
    try:
        return check_int(value, f"{key}: every value")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _overrides(values: dict, base: StudyConfig) -> dict:
    """Dotted overrides for one grid point; the width/depth shorthand becomes ``network.widths``."""
    overrides = {key: value for key, value in values.items() if key not in SHORTHAND}
    if any(key in values for key in SHORTHAND):
        base_widths = base.network.widths
        if "network.width" in values:
            width = _positive_int("network.width", values["network.width"])
        elif len(set(base_widths)) == 1:
            width = base_widths[0]
        else:
            raise ConfigError(f"grid key 'network.depth' needs 'network.width' in the grid when the base "
                              f"widths differ by layer ({base_widths})")
        depth = (_positive_int("network.depth", values["network.depth"]) if "network.depth" in values
                 else len(base_widths))
        overrides["network.widths"] = [width] * depth
    return overrides


def _with_overrides(base: StudyConfig, values: dict, what: str) -> StudyConfig:
    try:
        return apply_overrides(base, _overrides(values, base))
    except ConfigError as exc:
        detail = str(exc).split("\n", 1)[-1].strip()
        raise ConfigError(f"{what}:\n  {detail}") from None


def expand_grid(grid) -> tuple[list[SweepRun], str]:
    """Expand a grid (YAML path or dict) into its runs, validating every one before anything runs.

    Parameters
    ----------
    grid : str, Path or dict
        A grid file (see src/dualmap/study/sweep/__init__.py) or the same mapping.

    Returns
    -------
    runs : list of SweepRun
        The cross product of the grid's lists, the last key varying fastest.
    text : str
        The grid as given (the file's text, or the dict dumped as YAML).

    Raises
    ------
    ConfigError
        For an unknown top-level key, a grid key that is not a non-empty list, a value that does not
        validate (the message names the key and the value), or two grid points with the same config.
    """
    data, text = _read_grid(grid)
    base = validate_config(data.get("base") or {}, source=" in the grid's 'base'")
    axes = _check_axes(data.get("grid"))
    # every value on its own first, so a bad one is named by its key rather than by a whole grid point
    for key, values in axes.items():
        for value in values:
            _with_overrides(base, {key: value}, f"grid key {key!r}, value {value!r} is invalid")
    runs, hashes = [], {}
    for combination in itertools.product(*axes.values()):
        values = dict(zip(axes, combination))
        config = _with_overrides(base, values, f"grid point {values} is invalid")
        digest = config_hash(config)
        if digest in hashes:
            raise ConfigError(f"grid points {hashes[digest]} and {values} resolve to the same configuration "
                              f"(hash {digest}); remove the duplicate value")
        hashes[digest] = values
        runs.append(SweepRun(values=values, config=config, config_hash=digest))
    return runs, text


def grid_id(runs: list[SweepRun]) -> str:
    """The identity of a grid: 16 hex digits of SHA-256 over its runs' config hashes (order-free), so two
    files that expand to the same runs are the same grid."""
    import hashlib

    return hashlib.sha256(",".join(sorted(run.config_hash for run in runs)).encode()).hexdigest()[:16]
