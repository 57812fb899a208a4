"""The configuration of a study: one validated, fully resolved YAML file.

A study config has one section per stage (``dataset``, ``network``, ``sample``, ``train``, ``convert``,
``track``, ``refine``, ``attribution`` — the stage ``attribute`` —, ``report``) plus the global ``seed`` and
``device``. Every key has a default; a YAML file overrides any subset of them. Validation is strict: an
unknown key, a wrong type or an impossible value raises :class:`ConfigError` naming the key and what is allowed.

The *resolved* configuration (every default filled in) is what a study writes to ``config.yaml`` and what
:func:`config_hash` fingerprints, so two runs with the same resolved configuration are the same run.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = ["ConfigError", "StudyConfig", "load_config", "config_hash", "dump_config", "apply_overrides", "config_diff"]


class ConfigError(ValueError):
    """A study configuration is invalid; the message names the key and what is allowed."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)


# --------------------------------------------------------------------------- the library's choices
# Each choice a key offers is read from the library's own constant (its one home), so a method, sampler or init
# added there is accepted here with no edit. They are read when a value is validated, not when this module is
# imported: the constants live in modules that import torch, and reading a config file must stay light.
def _activations():
    from .._validation import HIDDEN_ACTIVATIONS

    return HIDDEN_ACTIVATIONS


def _samplers():
    from ..swim import SAMPLERS

    return SAMPLERS


def _optimizers():
    from ..train import OPTIMIZERS

    return OPTIMIZERS


def _inits():
    from ..train import INITS

    return INITS


def _sampled_inits():
    from ..swim.start import SAMPLED_INITS

    return SAMPLED_INITS


def _map_methods():
    from ..maps import METHODS

    return METHODS


def _track_methods():
    """The map methods a study tracks over checkpoints: all but the thesis baseline, a one-layer comparison
    (``convert.method`` only)."""
    return tuple(method for method in _map_methods() if method != "thesis")


def _attribution_methods():
    from ..attribution.protocols import DEFAULT_METHODS

    return tuple(DEFAULT_METHODS)


def _attribution_protocols():
    from ..attribution.protocols import PROTOCOLS

    return PROTOCOLS


def _attribution_ranks():
    from ..attribution.protocols import RANKS

    return RANKS


def _one_of(allowed: Callable[[], tuple]):
    """A string that must be one of ``allowed()``; an error names the allowed values as a ``Literal``'s would
    (``Input should be 'adam' or 'sgd'``)."""

    def check(value):
        choices = tuple(allowed())
        if not isinstance(value, str) or value not in choices:
            quoted = [repr(choice) for choice in choices]
            expected = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
        return value

    return Annotated[str, BeforeValidator(check)]


_Activation = _one_of(_activations)
_Sampler = _one_of(_samplers)
_Optimizer = _one_of(_optimizers)
_Init = _one_of(_inits)
_SampledInit = _one_of(_sampled_inits)
_MapMethod = _one_of(_map_methods)
_TrackMethod = _one_of(_track_methods)
_AttributionMethod = _one_of(_attribution_methods)
_AttributionProtocol = _one_of(_attribution_protocols)
_AttributionRank = _one_of(_attribution_ranks)


class DatasetSection(_Section):
    """Which data set (``dualmap datasets`` lists them) and its loader options."""

    name: str = "digits"
    n_train: int | None = Field(default=None, gt=1, description="seeded subsample of the training split")
    test_size: float = Field(default=0.25, gt=0, lt=1)
    options: dict[str, Any] = Field(default_factory=dict, description="extra options of the loader (e.g. dim)")

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from ..data import list_datasets

        if name not in list_datasets():
            raise ValueError(f"unknown data set {name!r}; allowed: {', '.join(list_datasets())}")
        return name

    @field_validator("options")
    @classmethod
    def _options_of_this_set(cls, options: dict, info: ValidationInfo) -> dict:
        from ..data import DATASET_OPTIONS

        name = info.data.get("name")
        if name is None:                       # the name itself was invalid; that error is reported
            return options
        allowed = DATASET_OPTIONS.get(name, ())
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ValueError(f"options {unknown} do not apply to {name!r}; "
                             + (f"allowed: {', '.join(allowed)}" if allowed else "it takes no options"))
        return options


class NetworkSection(_Section):
    """The architecture shared by the sampled, trained and converted networks."""

    widths: list[int] = Field(default_factory=lambda: [256], min_length=1)
    activation: _Activation = "relu"

    @field_validator("widths")
    @classmethod
    def _positive(cls, widths: list[int]) -> list[int]:
        if any(w < 1 for w in widths):
            raise ValueError(f"every hidden width must be ≥ 1; got {widths}")
        return widths


class SampleSection(_Section):
    """The SWIM network sampled without gradients (the first null model of the report)."""

    sampler: _Sampler = "swim"


class TrainSection(_Section):
    """Gradient training of the same architecture (:func:`dualmap.train`)."""

    optimizer: _Optimizer = "adam"
    lr: float = Field(default=1e-3, gt=0)
    epochs: int = Field(default=50, ge=1)
    batch_size: int = Field(default=128, ge=1)
    weight_decay: float = Field(default=0.0, ge=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    init: _Init = "he"
    checkpoints: int = Field(default=20, ge=2, description="log-spaced checkpoints, step 0 and the last included")


class ConvertSection(_Section):
    """The forward map of the trained network (:func:`dualmap.to_pairs`)."""

    method: _MapMethod = "downstream"
    atoms: int = Field(default=1, ge=1, description="atoms (data pairs) per neuron; > 1 needs method 'downstream'")
    atoms_curve: list[int] = Field(default_factory=list,
                                   description="also measure r2_through for these k (map and nulls), e.g. [1, 2, 4, 8]")


class TrackSection(_Section):
    """The forward map over every checkpoint (:func:`dualmap.track`)."""

    enabled: bool = True
    # "function" (per-neuron pairs) by default: a downstream trajectory of 20 checkpoints costs ~13 cold maps
    # (BENCHMARKS.md, issue 11), beyond the default study's time budget; "downstream" is a key away
    method: _TrackMethod = "function"


def _check_init_spec(spec: str) -> None:
    """``init`` or ``init:finetune`` (:func:`dualmap.train`'s ``init`` and ``finetune``); a ValueError naming
    what is allowed."""
    from ..swim.finetune import FINETUNE_SCHEMES, resolve_finetune

    init, colon, finetune = spec.partition(":")
    if init not in _inits():
        raise ValueError(f"unknown init {init!r} in {spec!r}; allowed: {', '.join(_inits())}, a sampled one "
                         f"optionally followed by ':<finetune>' (e.g. 'swim:plain')")
    if not colon:
        return
    if init not in _sampled_inits():
        raise ValueError(f"{spec!r}: a fine-tuning scheme applies to the sampled starts "
                         f"({', '.join(_sampled_inits())}) only; write {init!r}")
    try:
        resolve_finetune(finetune, sampled=True, activation="relu")
    except (TypeError, ValueError):
        raise ValueError(f"{spec!r}: unknown fine-tuning {finetune!r}; allowed: 'auto' or a '+'-joined combination "
                         f"of 'auto' and {', '.join(FINETUNE_SCHEMES)}") from None


class RefineSection(_Section):
    """The inverse map: sampled vs standard initialisations under the same training
    (:func:`dualmap.inverse.compare_inits`).

    The default is a light comparison (He against the SWIM start and a random-feature start, one seed), so the
    default study stays within a minute on two cores; ``dualmap run --full-comparison`` runs every init with
    three seeds (``inits: [he, xavier, swim, uniform, random]``, ``seeds: [0, 1, 2]``).
    """

    enabled: bool = True
    inits: list[str] = Field(default_factory=lambda: ["he", "swim", "random"], min_length=1,
                             description="he, xavier, torch, swim, uniform, random; a sampled start may name its "
                                         "fine-tuning after a colon, e.g. swim:plain (the scheme before issue 13; "
                                         "plain 'swim' is the default, finetune 'auto')")
    plain_beside: list[_SampledInit] = Field(
        default_factory=lambda: ["swim"],
        description="sampled starts of inits also trained with the old plain fine-tuning, as '<init>:plain', beside "
                    "the default 'auto' (those not in inits are ignored; [] switches it off)")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    epochs: int = Field(default=30, ge=1)
    persistence_checkpoints: int = Field(default=4, ge=0)

    @field_validator("plain_beside")
    @classmethod
    def _distinct(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError(f"lists an init twice: {values}")
        return values

    def compared(self) -> list[str]:
        """The inits the comparison trains: ``inits``, each ``<init>:plain`` of ``plain_beside`` right after its
        ``<init>`` (when ``inits`` has it and does not list the plain one already)."""
        out = []
        for spec in self.inits:
            out.append(spec)
            plain = f"{spec}:plain"
            if spec in self.plain_beside and plain not in self.inits:
                out.append(plain)
        return out

    @field_validator("inits")
    @classmethod
    def _has_he(cls, inits: list[str]) -> list[str]:
        for spec in inits:
            _check_init_spec(spec)
        if "he" not in inits:
            raise ValueError("must include 'he' (the reference run that 'steps to He' is measured against)")
        if len(set(inits)) != len(inits):
            raise ValueError(f"lists an init twice: {inits}")
        return inits


class AttributionSection(_Section):
    """Does importance matter? Counterfactual tests of the map's training-point scores beside TracIn
    (:func:`dualmap.attribution.validate`; docs/findings/attribution.md).

    Off by default: the defaults retrain the study's network about 130 times (remove-and-retrain: 5 seeds × 3
    fractions × top/bottom per method and a random set; LDS: 50 half subsets; one run with flipped labels),
    which adds a few minutes to the digits study. The network and its training are the study's (``network``,
    ``train``). Per-test scores are judged on a held-out part of the test split: ``query_fraction`` of the
    test points choose what is removed, the others measure the retrained models and the LDS.
    """

    enabled: bool = False
    methods: list[_AttributionMethod] = Field(
        default_factory=lambda: ["map", "tracin"], min_length=1)
    protocols: list[_AttributionProtocol] = Field(
        default_factory=lambda: ["removal", "lds", "mislabel"], min_length=1)
    fractions: list[float] = Field(default_factory=lambda: [0.05, 0.1, 0.2], min_length=1,
                                   description="remove-and-retrain: the fractions of training points dropped")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], min_length=2,
                             description="remove-and-retrain: retraining seeds (one initialisation each)")
    n_subsets: int = Field(default=50, ge=3, description="LDS: random half subsets, each retrained once")
    flip: float = Field(default=0.1, gt=0, lt=1, description="mislabel detection: fraction of labels flipped")
    rank: _AttributionRank = "magnitude"
    query_fraction: float = Field(default=0.5, gt=0, lt=1,
                                  description="share of the test split that ranks points for removal (the query "
                                              "set); the rest judges the retrained models and the LDS")
    checkpoints: int = Field(default=10, ge=2, description="log-spaced checkpoints of the scored run")
    workers: int = Field(default=1, ge=1, description="retraining processes (1: one after another, in the study's "
                                                      "process)")

    @field_validator("methods", "protocols")
    @classmethod
    def _no_duplicates(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError(f"lists a value twice: {values}")
        return values

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, fractions: list[float]) -> list[float]:
        if any(not 0 < f < 0.5 for f in fractions) or len(set(fractions)) != len(fractions):
            raise ValueError(f"fractions must be distinct and in (0, 0.5) (top and bottom must not overlap); "
                             f"got {fractions}")
        return sorted(fractions)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: list[int]) -> list[int]:
        if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct and ≥ 0; got {seeds}")
        return seeds

    @model_validator(mode="after")
    def _something_to_remove(self) -> "AttributionSection":
        if "removal" in self.protocols and not set(self.methods) - {"random"}:
            raise ValueError("protocol 'removal' ranks points by a score other than 'random' (random sets are "
                             "always run beside it); add e.g. 'map' to methods")
        return self


class ReportSection(_Section):
    """Figures and the HTML report (``figures: false`` writes the numbers only, as sweeps do)."""

    figures: bool = True
    dpi: int = Field(default=100, ge=30, le=600)


class StudyConfig(_Section):
    """A whole study: every stage's settings, the seed and the device."""

    seed: int = Field(default=0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dataset: DatasetSection = Field(default_factory=DatasetSection)
    network: NetworkSection = Field(default_factory=NetworkSection)
    sample: SampleSection = Field(default_factory=SampleSection)
    train: TrainSection = Field(default_factory=TrainSection)
    convert: ConvertSection = Field(default_factory=ConvertSection)
    track: TrackSection = Field(default_factory=TrackSection)
    refine: RefineSection = Field(default_factory=RefineSection)
    attribution: AttributionSection = Field(default_factory=AttributionSection)
    report: ReportSection = Field(default_factory=ReportSection)

    @model_validator(mode="after")
    def _thesis_is_shallow(self) -> "StudyConfig":
        if (self.convert.atoms > 1 or self.convert.atoms_curve) and self.convert.method != "downstream":
            raise ValueError("convert.atoms > 1 and convert.atoms_curve need convert.method 'downstream'")
        if any(k < 1 for k in self.convert.atoms_curve):
            raise ValueError(f"convert.atoms_curve values must be >= 1; got {self.convert.atoms_curve}")
        if self.convert.method == "thesis" and (len(self.network.widths) != 1 or self.network.activation != "relu"):
            raise ValueError("convert.method 'thesis' maps one hidden ReLU layer only; "
                             f"network is {self.network.widths} {self.network.activation}")
        return self


def _key_path(location) -> str:
    return ".".join(str(part) for part in location) or "<top level>"


def _allowed_keys(model: type[BaseModel], location) -> list[str]:
    """The keys allowed in the section that ``location`` (a path ending in the offending key) points into."""
    for part in location[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _format_errors(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors():
        key = _key_path(item["loc"])
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(StudyConfig, item["loc"])
            lines.append(f"{key}: unknown key; allowed keys here: {', '.join(allowed)}")
        else:
            message = item["msg"].removeprefix("Value error, ")
            got = "" if not item["loc"] else f" (got {item.get('input')!r})"
            lines.append(f"{key}: {message}{got}")
    return f"invalid study configuration{source}:\n  " + "\n  ".join(lines)


def validate_config(data: dict | None, *, source: str = "") -> StudyConfig:
    """Validate a (partial) configuration mapping; defaults fill every key it leaves out."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"a study configuration{source} must be a mapping of sections; got {type(data).__name__}")
    try:
        return StudyConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None


class _Loader(yaml.SafeLoader):
    """YAML 1.1's safe loader, but ``1e-3`` and ``3E+4`` read as floats (YAML 1.1 needs a dot: ``1.0e-3``), and
    a key given twice in one mapping is an error (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue                     # the base class reports unhashable keys
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found the key {key!r} twice (first on line {seen[key] + 1}); the second would silently "
                        "replace the first", key_node.start_mark)
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789."))


def parse_yaml(text: str):
    """Parse YAML as study files are read (exponent floats without a dot included)."""
    return yaml.load(text, Loader=_Loader)


def load_config(path) -> StudyConfig:
    """Read and validate a YAML study configuration (a missing section or key takes its default)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such configuration file: {path}")
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, not a YAML configuration file (to use a study folder's "
                          f"configuration, pass {path / 'config.yaml'} or --out {path})")
    try:
        data = parse_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    return validate_config(data, source=f" in {path}")


def apply_overrides(config: StudyConfig, overrides: dict[str, Any]) -> StudyConfig:
    """A copy of ``config`` with dotted keys replaced, e.g. ``{"network.widths": [64], "seed": 1}``; validated."""
    data = config.model_dump(mode="json")
    for dotted, value in overrides.items():
        target = data
        *sections, key = dotted.split(".")
        for section in sections:
            if not isinstance(target.get(section), dict):
                allowed = [key for key, value in target.items() if isinstance(value, dict)]
                raise ConfigError(f"--set {dotted}: {section!r} is not a configuration section; "
                                  f"allowed sections here: {', '.join(allowed)}")
            target = target[section]
        target[key] = value
    return validate_config(data, source=" (after overrides)")


def resolved(config: StudyConfig) -> dict:
    """Every key with its value, as plain JSON types."""
    return config.model_dump(mode="json")


def dump_config(config: StudyConfig) -> str:
    """The resolved configuration as YAML (keys in declaration order)."""
    return yaml.safe_dump(resolved(config), sort_keys=False)


def config_hash(config: StudyConfig) -> str:
    """A short, stable fingerprint of the resolved configuration (16 hex digits of SHA-256)."""
    canonical = json.dumps(resolved(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _flatten(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict) and value and key != "options":
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_diff(before, after, before_label: str = "before", after_label: str = "after") -> list[str]:
    """The dotted keys whose values differ, as ``"train.epochs: 100 before, 7 after"`` lines."""
    a = _flatten(before if isinstance(before, dict) else resolved(before))
    b = _flatten(after if isinstance(after, dict) else resolved(after))
    return [f"{key}: {json.dumps(a.get(key))} {before_label}, {json.dumps(b.get(key))} {after_label}"
            for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]
