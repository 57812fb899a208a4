"""A study: every stage of dualmap on one data set and one architecture, written to one folder.

Stages, in order (each reads what the earlier ones wrote and records itself in ``metrics.json``):

========= ===================================================================== =============================
stage     what it does                                                          writes
========= ===================================================================== =============================
sample    a SWIM network of the configured widths, readout by ridge regression  ``sampled_network.npz``,
                                                                                ``sampled_pairs.npz``
train     the same architecture trained by gradient descent, with checkpoints   ``train_run.npz``
convert   the forward map of the trained network; converted net and nulls       ``pairmap.npz``
track     the forward map of every checkpoint (the trajectory)                  ``trajectory.npz``
refine    the inverse map: sampled vs standard inits under the same training    ``inverse_comparison.json``
attribute does importance matter? counterfactual tests of the map's scores      ``attribution.json``
          beside TracIn (off by default: ``attribution.enabled``)
report    figures and the self-contained HTML report, from the files above      ``figures/*.png``,
                                                                                ``report.html``
========= ===================================================================== =============================

Every file is written atomically, and ``metrics.json`` is rewritten after every stage, so a run that fails
keeps every stage it finished; running the same configuration into the same folder resumes after them.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .._io import CorruptFileError, json_default, write_text_atomic
from .._version import __version__
from .config import StudyConfig, config_diff, config_hash, dump_config, load_config, resolved
from .folder import FolderError, check_writable, claim, hold_lock, read_marker, write_marker

__all__ = ["STAGES", "Study", "run_study", "provenance"]

STAGES = ("sample", "train", "convert", "track", "refine", "attribute", "report")

#: the files each stage writes (relative to the study folder)
STAGE_FILES = {
    "sample": ("sampled_network.npz", "sampled_pairs.npz"),
    "train": ("train_run.npz",),
    "convert": ("pairmap.npz",),
    "track": ("trajectory.npz",),
    "refine": ("inverse_comparison.json",),
    "attribute": ("attribution.json",),
    "report": (),
}

#: the kind each file must hold (the header of a dualmap archive; the JSON layout of the comparison)
FILE_KINDS = {"sampled_network.npz": "MLP", "sampled_pairs.npz": "PairMap", "train_run.npz": "TrainRun",
              "pairmap.npz": "PairMap", "trajectory.npz": "Trajectory", "inverse_comparison.json": "InitComparison",
              "attribution.json": "ValidationResult", ".png": "png", ".gif": "gif", ".html": "html"}

#: what each stage needs done first
REQUIRES = {"sample": (), "train": (), "convert": ("train",), "track": ("train",), "refine": (), "attribute": (),
            "report": ("sample", "train", "convert")}

#: what a stage uses when it is there (redoing one of these makes the stage out of date too)
USES = {"report": ("track", "refine", "attribute")}

#: the configuration section of a stage, where its name differs
SECTIONS = {"attribute": "attribution"}


class StudyError(RuntimeError):
    """A study folder cannot be used as asked (another configuration, a missing earlier stage)."""


def file_kind(path: Path) -> str:
    """What ``path`` holds, read from the file itself; a CorruptFileError when it cannot be read."""
    path = Path(path)
    if path.suffix == ".npz":
        import zipfile

        import numpy as np

        try:
            with np.load(path, allow_pickle=False) as archive:
                meta = json.loads(str(archive["__meta__"]))
            return str(meta["kind"])
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, TypeError) as exc:
            raise CorruptFileError(f"is not a readable dualmap file (truncated or corrupt): {exc}") from None
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptFileError(f"is not readable JSON (truncated or corrupt): {exc}") from None
        if isinstance(data, dict) and {"rows", "curves", "config"} <= set(data):
            return "InitComparison"
        if isinstance(data, dict) and {"setting", "removal", "lds", "mislabel"} <= set(data):
            return "ValidationResult"
        raise CorruptFileError("is JSON but neither an InitComparison (no rows/curves/config) nor a "
                               "ValidationResult (no setting/removal/lds/mislabel)")
    signatures = {".png": b"\x89PNG\r\n\x1a\n", ".gif": b"GIF8", ".html": b"<!DOCTYPE html>"}
    with open(path, "rb") as handle:
        head = handle.read(16)
    expected = signatures.get(path.suffix)
    if expected is None or not head.startswith(expected):
        raise CorruptFileError(f"is not a {path.suffix[1:]} file")
    return path.suffix[1:]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_record(path: Path) -> dict:
    """``{"kind", "sha256", "bytes"}`` of a file a stage wrote (recorded in metrics.json under ``files``)."""
    return {"kind": file_kind(path), "sha256": file_sha256(path), "bytes": Path(path).stat().st_size}


def _expected_kind(name: str) -> str:
    return FILE_KINDS.get(name) or FILE_KINDS.get(Path(name).suffix, "")


def provenance(config: StudyConfig) -> dict:
    """Versions of dualmap and its main dependencies, the machine, the seed and the resolved device."""
    from importlib import metadata

    from .._backend import resolve_device

    versions = {"dualmap": __version__, "python": platform.python_version()}
    for package in ("numpy", "scipy", "scikit-learn", "torch", "faiss-cpu", "POT", "matplotlib", "pydantic"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    import os

    import torch

    from .._threads import thread_report

    return {"versions": versions, "seed": config.seed, "device": str(resolve_device(config.device)),
            "torch_threads": torch.get_num_threads(), "threads": thread_report(),
            "threads_chosen": os.environ.get("DUALMAP_THREADS_CHOSEN"), "platform": platform.platform(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "command": " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])}


def _log(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


@dataclass
class Study:
    """One study folder: its configuration, its metrics so far, and the stages that produce them.

    Create it with :meth:`create` (a new or resumable folder for a configuration) or :meth:`open` (an
    existing folder, configuration read from its ``config.yaml``).
    """

    out: Path
    config: StudyConfig
    metrics: dict = field(default_factory=dict)
    progress: bool = True
    invalid: dict = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ folders
    @classmethod
    def create(cls, config: StudyConfig, out, *, progress: bool = True, redo: bool = False) -> "Study":
        """Start a study in ``out``, or resume the one there if it has the same resolved configuration.

        ``out`` must be new, empty, or a study folder: a file, a sweep folder or a folder of other files is
        refused (:class:`~dualmap.study.folder.FolderError`), and so is a study of another configuration.
        """
        out = Path(out)
        dataset = _load_dataset(config)          # a data set the configuration cannot load fails before any folder
        claim(out, "study", adopt=_adopt_study)
        if (out / "config.yaml").exists():
            existing = load_config(out / "config.yaml")
            if config_hash(existing) != config_hash(config):
                differ = "; ".join(config_diff(existing, config, "in the folder", "asked for"))
                raise StudyError(f"{out} holds a study with another configuration (hash {config_hash(existing)}, "
                                 f"this one is {config_hash(config)}; {differ}); choose another --out folder, or "
                                 "run without --config/--set to use the folder's own")
            study = cls.open(out, progress=progress, redo=redo)
            study._cache["dataset"] = dataset
            return study
        write_marker(out, "study", config_hash=config_hash(config))
        write_text_atomic(out / "config.yaml", dump_config(config))
        study = cls(out=out, config=config, progress=progress)
        study._cache["dataset"] = dataset
        study.metrics = study._fresh_metrics()
        study._write_metrics()
        return study

    @classmethod
    def open(cls, out, *, progress: bool = True, redo: bool = False) -> "Study":
        """An existing study folder (its ``config.yaml`` and, if present, ``metrics.json``).

        The configuration in ``config.yaml`` must be the one ``metrics.json`` was computed with: an edited
        ``config.yaml`` is refused, naming the keys that differ, unless ``redo`` (every stage is then out of
        date and recomputed with the edited configuration).
        """
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise FolderError(f"{out} is a file, not a study folder")
        marker = read_marker(out) if out.is_dir() else None
        if marker is not None and marker["kind"] != "study":
            raise StudyError(f"{out} is a dualmap {marker['kind']} folder, not a study folder")
        if not (out / "config.yaml").exists():
            raise StudyError(f"{out} is not a study folder (no config.yaml); start one with 'dualmap run' "
                             "or 'dualmap sample --out DIR'")
        check_writable(out, "study folder")
        config = load_config(out / "config.yaml")
        study = cls(out=out, config=config, progress=progress)
        path = out / "metrics.json"
        if path.exists():
            try:
                study.metrics = json.loads(path.read_text())
                if not isinstance(study.metrics.get("stages"), dict):
                    raise ValueError("no 'stages' mapping")
            except (json.JSONDecodeError, ValueError) as exc:
                raise CorruptFileError(f"{path} is corrupt or truncated ({exc}); remove it to recompute the "
                                       "study's stages") from None
            study._check_config(redo)
        else:
            study.metrics = study._fresh_metrics()
        if marker is None or marker.get("config_hash") != config_hash(config):
            write_marker(out, "study", config_hash=config_hash(config))
        return study

    def _fresh_metrics(self) -> dict:
        return {"status": "partial", "config_hash": config_hash(self.config), "config": resolved(self.config),
                "provenance": provenance(self.config), "stages": {}, "files": {}, "headline": {}}

    def _check_config(self, redo: bool) -> None:
        """Refuse (or, with ``redo``, start over from) a config.yaml edited after its stages ran."""
        recorded, current = self.metrics.get("config_hash"), config_hash(self.config)
        if recorded is None or recorded == current:
            self.metrics.setdefault("config", resolved(self.config))
            return
        before = self.metrics.get("config")
        added = _new_keys_at_default(before, self.config) if isinstance(before, dict) else None
        if added:
            # keys a newer dualmap added (e.g. the attribution section), at their defaults: not an edit; a stage
            # that ran before its section had the key is recomputed (with the default), the others are kept
            stale = [stage for stage in dict.fromkeys(added.values()) if stage in self.metrics["stages"]]
            for stage in stale:
                for redo_stage in (stage, *self._downstream(stage)):
                    if self.metrics["stages"].pop(redo_stage, None) is not None:
                        for name in STAGE_FILES[redo_stage]:
                            self.metrics.get("files", {}).pop(name, None)
                    if redo_stage == "track":
                        (self.out / "trajectory.npz").unlink(missing_ok=True)
            if stale:
                plural = len(stale) > 1
                _log(f"this dualmap adds {', '.join(sorted(added))} (at the default): stage{'s' if plural else ''} "
                     f"{', '.join(stale)} and what used {'them' if plural else 'it'} are recomputed", False)
            self.metrics.update(config_hash=current, config=resolved(self.config))
            return
        differ = ("; ".join(config_diff(before, self.config, "in metrics.json", "in config.yaml"))
                  if isinstance(before, dict) else "metrics.json does not record the old values")
        if not redo:
            raise StudyError(f"{self.out / 'config.yaml'} was edited after the study ran (its hash is {current}, "
                             f"metrics.json was computed with {recorded}): {differ}. Restore it, run again with "
                             "--redo to recompute every stage with the edited configuration, or use a new --out")
        _log(f"config.yaml was edited ({differ}): every stage is recomputed", not self.progress)
        self.metrics.update(config_hash=current, config=resolved(self.config), stages={}, files={}, headline={},
                            status="partial")
        (self.out / "trajectory.npz").unlink(missing_ok=True)

    # ------------------------------------------------------------------ verifying what is on disk
    def _stage_files(self, stage: str) -> list[str]:
        if stage == "report":
            return list(self.metrics["stages"].get("report", {}).get("figures", []))
        return list(STAGE_FILES[stage])

    def _check_file(self, name: str) -> str | None:
        """None when ``name`` is the file its stage wrote (kind and content hash), else what is wrong."""
        path = self.out / name
        if not path.is_file():
            return "is missing"
        recorded = self.metrics.setdefault("files", {}).get(name)
        if recorded is None:                   # a folder of an earlier dualmap: check the kind, then record it
            try:
                record = file_record(path)
            except (CorruptFileError, OSError) as exc:
                return str(exc)
            if record["kind"] != _expected_kind(name):
                return f"holds a {record['kind']!r}, not a {_expected_kind(name)!r}"
            self.metrics["files"][name] = record
            return None
        try:
            current = file_record(path)
        except (CorruptFileError, OSError) as exc:
            return str(exc)
        if current["kind"] != recorded.get("kind"):
            return f"holds a {current['kind']!r}, not the {recorded.get('kind')!r} its stage wrote"
        if current["sha256"] != recorded.get("sha256"):
            return (f"changed after its stage wrote it (content hash {current['sha256'][:12]}…, recorded "
                    f"{str(recorded.get('sha256'))[:12]}…)")
        return None

    def verify(self) -> dict[str, str]:
        """Open every finished stage's files and check their kind and content hash against metrics.json.

        A stage with a bad file is marked not done, and so is every stage that used it; returns
        ``{stage: why}`` for the stages whose own files were bad (also kept in ``self.invalid``).
        """
        bad = {}
        for stage in STAGES:
            if stage not in self.metrics["stages"]:
                continue
            for name in self._stage_files(stage):
                problem = self._check_file(name)
                if problem is not None:
                    bad[stage] = f"{name} {problem}"
                    break
        for stage, why in bad.items():
            if stage not in self.metrics["stages"]:
                continue                        # already out of date through an earlier bad stage
            later = [s for s in self._downstream(stage) if s in self.metrics["stages"]]
            for redo in (stage, *later):
                self.metrics["stages"].pop(redo, None)
                for name in self._stage_files(redo) if redo != "report" else []:
                    self.metrics["files"].pop(name, None)
                    self._cache.pop(Path(name).stem, None)
            if "track" in (stage, *later):
                (self.out / "trajectory.npz").unlink(missing_ok=True)     # never resume from a bad trajectory
            _log(f"{why}: stage {stage} is recomputed" + (f", and {', '.join(later)} after it" if later else ""),
                 False)                         # said even with --quiet: files on disk were not what they claimed
        self.invalid.update(bad)
        return bad

    def done(self, stage: str) -> bool:
        """Whether ``stage`` finished (recorded in metrics.json and its files present)."""
        return stage in self.metrics["stages"] and all((self.out / f).exists() for f in STAGE_FILES[stage])

    def enabled(self, stage: str) -> bool:
        """Whether the configuration runs ``stage`` (``track``, ``refine`` and ``attribute`` can be switched
        off; ``attribute`` is off by default)."""
        section = getattr(self.config, SECTIONS.get(stage, stage), None)
        return bool(getattr(section, "enabled", True))

    def _write_metrics(self) -> None:
        write_text_atomic(self.out / "metrics.json", json.dumps(self.metrics, indent=1, default=json_default))

    # ------------------------------------------------------------------ shared inputs
    @property
    def dataset(self):
        if "dataset" not in self._cache:
            self._cache["dataset"] = _load_dataset(self.config)
        return self._cache["dataset"]

    @property
    def raw_inputs(self):
        """The training inputs as the data set stores them (not standardised), in the same order: for figures."""
        if "raw_inputs" not in self._cache:
            self._cache["raw_inputs"] = _load_dataset(self.config, standardize=False).X_train
        return self._cache["raw_inputs"]

    def result(self, name: str):
        """A saved result of a finished stage, read from the folder once and cached.

        ``name``: ``"sampled_network"`` (:class:`~dualmap.MLP`), ``"sampled_pairs"`` and ``"pairmap"``
        (:class:`~dualmap.PairMap`), ``"train_run"`` (:class:`~dualmap.TrainRun`), ``"trajectory"``
        (:class:`~dualmap.Trajectory`), ``"inverse_comparison"`` (:class:`~dualmap.inverse.InitComparison`) or
        ``"attribution"`` (the attribute stage's result).
        """
        if name not in self._cache:
            from ..dynamics import Trajectory
            from ..inverse.compare import InitComparison
            from ..maps import PairMap
            from ..network import MLP
            from ..train import TrainRun

            loaders = {"sampled_network": MLP.load, "sampled_pairs": PairMap.load, "train_run": TrainRun.load,
                       "pairmap": PairMap.load, "trajectory": Trajectory.load,
                       "inverse_comparison": InitComparison.load, "attribution": _load_attribution}
            suffix = ".json" if name in ("inverse_comparison", "attribution") else ".npz"
            self._cache[name] = loaders[name](self.out / f"{name}{suffix}")
        return self._cache[name]

    # ------------------------------------------------------------------ running
    def run(self, stages=STAGES, *, redo: bool = False) -> dict:
        """Run ``stages`` in order (skipping finished ones unless ``redo``); return the metrics.

        Finished stages are verified first (:meth:`verify`): a stage whose files are missing, unreadable, of
        another kind or changed since it wrote them is recomputed, with the stages after it that used them.
        The folder is locked while this runs.
        """
        with hold_lock(self.out, "a dualmap study"):
            return self._run(stages, redo)

    def _run(self, stages, redo: bool) -> dict:
        self.verify()
        todo = [s for s in stages if self.enabled(s)]
        if len(stages) == 1 and not todo:      # a single stage asked for by name, switched off
            section = SECTIONS.get(stages[0], stages[0])
            _log(f"{stages[0]}: off in this study's configuration ({section}.enabled: false); nothing to do",
                 False)
        for number, stage in enumerate(todo, 1):
            if self.done(stage) and not redo:
                _log(f"[{number}/{len(todo)}] {stage}: already done, kept (files verified)", not self.progress)
                continue
            missing = [r for r in REQUIRES[stage] if self.enabled(r) and not self.done(r)]
            if missing:
                why = "".join(f" ({self.invalid[r]})" for r in missing if r in self.invalid)
                raise StudyError(f"stage {stage!r} needs {', '.join(missing)} first{why} "
                                 f"(run 'dualmap {missing[0]} --out {self.out}')")
            estimate = self.estimate(stage)
            _log(f"[{number}/{len(todo)}] {stage} …" + (f" (estimate: {estimate})" if estimate else ""),
                 not self.progress)
            if stage == "track" and redo:    # recompute; an unrecorded trajectory file (a crash) is resumed instead
                (self.out / "trajectory.npz").unlink(missing_ok=True)
            started = time.perf_counter()
            record = getattr(self, f"_stage_{stage}")()
            record["seconds"] = time.perf_counter() - started
            self.metrics["stages"][stage] = record
            files = self.metrics.setdefault("files", {})
            for name in self._stage_files(stage):
                files[name] = file_record(self.out / name)
            for stale in self._downstream(stage):
                if self.metrics["stages"].pop(stale, None) is not None:
                    _log(f"    {stale}: out of date now, recomputed by the next 'dualmap run'", not self.progress)
                if stale == "track":
                    (self.out / "trajectory.npz").unlink(missing_ok=True)
            self.metrics["headline"] = self.headline()
            planned = [s for s in STAGES if self.enabled(s)]
            self.metrics["status"] = "complete" if all(self.done(s) for s in planned) else "partial"
            self._write_metrics()
            for warning in record.get("warnings", []):
                _log(f"    warning: {warning}", False)
            _log(f"[{number}/{len(todo)}] {stage}: {record['seconds']:.1f} s", not self.progress)
        return self.metrics

    def estimate(self, stage: str) -> str | None:
        """A rough wall-time estimate for the long stages, from the train stage's seconds per epoch."""
        train = self.metrics["stages"].get("train")
        if not train or not train.get("seconds") or stage not in ("track", "refine", "attribute"):
            return None
        per_epoch = train["seconds"] / max(self.config.train.epochs, 1)
        convert = self.metrics["stages"].get("convert", {}).get("seconds", train["seconds"])
        checkpoints = int(train.get("checkpoints") or self.config.train.checkpoints)
        if stage == "track":
            seconds = 0.5 * convert * checkpoints
        elif stage == "attribute":
            runs, equivalent = attribution_runs(self.config.attribution)
            seconds = max(equivalent * train["seconds"] / max(self.config.attribution.workers, 1), 1.0)
            return f"about {seconds:.0f} s for {runs} trainings (off by default: attribution.enabled)"
        else:
            section = self.config.refine
            runs = len(section.compared()) * len(section.seeds)
            seconds = runs * per_epoch * section.epochs * 1.2
            if section.persistence_checkpoints:
                seconds += runs * 0.3 * convert * section.persistence_checkpoints
            seconds = max(seconds, 1.0)
            seeds = len(section.seeds)
            return (f"about {seconds:.0f} s for {runs} training{'s' if runs != 1 else ''} of {section.epochs} epochs "
                    f"({len(section.compared())} inits × {seeds} seed{'s' if seeds != 1 else ''})")
        return f"about {max(seconds, 1.0):.0f} s for {checkpoints} checkpoints"

    @staticmethod
    def _downstream(stage: str) -> list[str]:
        """The stages that use ``stage``'s results, directly or through others (they go stale when it reruns)."""
        found, frontier = [], [stage]
        while frontier:
            current = frontier.pop()
            for other in STAGES:
                if current in (*REQUIRES[other], *USES.get(other, ())) and other not in found:
                    found.append(other)
                    frontier.append(other)
        return found

    def headline(self) -> dict:
        """The report's headline numbers (None where a stage has not run)."""
        stages = self.metrics["stages"]
        sample, trained, convert = stages.get("sample", {}), stages.get("train", {}), stages.get("convert", {})
        return {
            "metric": "accuracy" if self.dataset.task == "classification" else "r2",
            "trained_test_score": trained.get("test_score"),
            "sampled_test_score": sample.get("test_score"),
            "converted_test_score": convert.get("labels_score_map"),
            "fidelity": convert.get("fidelity"),
            "atoms": convert.get("atoms"),
            "r2_through": convert.get("r2_through"),
            "r2_through_null_swim": convert.get("r2_through_null_swim"),
            "r2_through_null_uniform": convert.get("r2_through_null_uniform"),
            "gap_closed_through": convert.get("gap_closed_through"),
            "r2_map": convert.get("r2_map"),
            "r2_null_swim": convert.get("r2_null_swim"),
            "r2_null_uniform": convert.get("r2_null_uniform"),
            "gap_closed": convert.get("gap_closed"),
            **self._attribution_headline(),
            "seconds_total": float(sum(s.get("seconds", 0.0) for s in stages.values())),
        }

    def _attribution_headline(self) -> dict:
        """The map's remove-and-retrain effects (top − bottom, top − random, in standard errors) and the LDS and
        mislabel AUC of the map and TracIn; None where the attribute stage did not run (it is off by default)."""
        methods = self.metrics["stages"].get("attribute", {}).get("methods", {})
        mapped, tracin = methods.get("map", {}), methods.get("tracin", {})
        return {"attribution_top_minus_bottom_se": mapped.get("top_minus_bottom_in_se"),
                "attribution_top_minus_random_se": mapped.get("top_minus_random_in_se"),
                "attribution_lds_map": mapped.get("lds"), "attribution_lds_tracin": tracin.get("lds"),
                "attribution_auc_map": mapped.get("mislabel_auc"),
                "attribution_auc_tracin": tracin.get("mislabel_auc")}

    # ------------------------------------------------------------------ stages
    def _stage_sample(self) -> dict:
        from ..maps import PairMap
        from ..swim import SWIMClassifier, SWIMRegressor

        ds, network = self.dataset, self.config.network
        estimator = (SWIMClassifier if ds.task == "classification" else SWIMRegressor)(
            layer_widths=tuple(network.widths), activation=network.activation, sampler=self.config.sample.sampler,
            random_state=self.config.seed, device=self.config.device)
        estimator.fit(ds.X_train, ds.y_train)
        estimator.network_.save(self.out / "sampled_network.npz")
        PairMap.of_sampled(estimator.pairs_, network.activation, ds.X_train,
                           method=f"sampled:{self.config.sample.sampler}").save(self.out / "sampled_pairs.npz")
        self._cache.pop("sampled_network", None)
        return {"sampler": self.config.sample.sampler, "alpha": float(estimator.alpha_),
                "train_score": float(estimator.score(ds.X_train, ds.y_train)),
                "test_score": float(estimator.score(ds.X_test, ds.y_test))}

    def _stage_train(self) -> dict:
        from ..train import train

        ds, section = self.dataset, self.config.train
        run = train(list(self.config.network.widths), ds.X_train, ds.y_train, activation=self.config.network.activation,
                    task=ds.task, optimizer=section.optimizer, lr=section.lr, epochs=section.epochs,
                    batch_size=section.batch_size, weight_decay=section.weight_decay, momentum=section.momentum,
                    init=section.init, seed=self.config.seed, checkpoints=section.checkpoints, X_val=ds.X_test,
                    y_val=ds.y_test, device=self.config.device, progress=self.progress)
        run.save(self.out / "train_run.npz")
        self._cache["train_run"] = run
        history = run.history
        record = {"steps": int(run.steps[-1]), "checkpoints": len(run.checkpoints),
                  "train_loss": float(history["train_loss"][-1]), "test_loss": float(history["val_loss"][-1]),
                  "train_score": float(history["train_metric"][-1]), "test_score": float(history["val_metric"][-1])}
        warnings = training_warnings(history["train_loss"], _constant_loss(ds), lr=section.lr)
        if warnings:
            record["warnings"] = warnings
        return record

    def _stage_convert(self) -> dict:
        from ..maps import to_pairs
        from ..metrics import evaluate_map, through_curve

        ds, run = self.dataset, self.result("train_run")
        section = self.config.convert
        pair_map = to_pairs(run.model, ds.X_train, method=section.method, atoms=section.atoms, seed=self.config.seed,
                            device=self.config.device, progress=self.progress)
        pair_map.save(self.out / "pairmap.npz")
        self._cache["pairmap"] = pair_map
        labels = ds.y_train if ds.task == "classification" else ds.y_train.reshape(len(ds.y_train), -1)
        labels_test = ds.y_test if ds.task == "classification" else ds.y_test.reshape(len(ds.y_test), -1)
        record = evaluate_map(pair_map, run.model, ds.X_train, ds.X_test, labels=labels, labels_test=labels_test,
                              task=ds.task, seed=self.config.seed)
        record["method"] = pair_map.method
        if section.atoms_curve:   # r2_through against k, map and nulls (the report's atoms figure)
            record["atoms_curve"] = through_curve(run.model, ds.X_train, ds.X_test, section.atoms_curve,
                                                  seed=self.config.seed, device=self.config.device)
        return record

    def _stage_track(self) -> dict:
        from ..dynamics import track

        ds = self.dataset
        trajectory = track(self.result("train_run"), ds.X_train, method=self.config.track.method, y=ds.y_train,
                           seed=self.config.seed, path=self.out / "trajectory.npz", progress=self.progress)
        self._cache["trajectory"] = trajectory
        return trajectory.summary()

    def _stage_refine(self) -> dict:
        from ..inverse import compare_inits

        section, train_section = self.config.refine, self.config.train
        comparison = compare_inits(self.dataset, list(self.config.network.widths), self.config.network.activation,
                                   inits=tuple(section.compared()), seeds=tuple(section.seeds),
                                   optimizer=train_section.optimizer, lr=train_section.lr, epochs=section.epochs,
                                   batch_size=train_section.batch_size, momentum=train_section.momentum,
                                   persistence_checkpoints=section.persistence_checkpoints,
                                   progress=self.progress)
        comparison.save(self.out / "inverse_comparison.json")
        self._cache["inverse_comparison"] = comparison
        return {"table": comparison.table()}

    def _stage_attribute(self) -> dict:
        from ..attribution import validate
        from ..attribution.protocols import DEFAULT_METHODS

        ds, section, train_section = self.dataset, self.config.attribution, self.config.train
        protocols = list(section.protocols)
        skipped = {}
        if ds.task != "classification" and "mislabel" in protocols:
            protocols.remove("mislabel")
            skipped["mislabel"] = f"needs a classification data set; {ds.name} is {ds.task}"
        record = {"skipped": skipped} if skipped else {}
        if not protocols:
            raise ValueError(f"attribution.protocols {section.protocols}: none applies to {ds.name} ({ds.task})")
        result = validate(ds, widths=tuple(self.config.network.widths), activation=self.config.network.activation,
                          optimizer=train_section.optimizer, lr=train_section.lr, epochs=train_section.epochs,
                          batch_size=train_section.batch_size, checkpoints=section.checkpoints,
                          methods={name: DEFAULT_METHODS[name] for name in section.methods},
                          fractions=tuple(section.fractions), seeds=tuple(section.seeds), n_subsets=section.n_subsets,
                          flip=section.flip, protocols=tuple(protocols), rank=section.rank,
                          query_fraction=section.query_fraction, seed=self.config.seed,
                          scheduler="synchronous" if section.workers == 1 else "processes", workers=section.workers,
                          progress=self.progress)
        result.setting["skipped"] = skipped
        write_text_atomic(self.out / "attribution.json", json.dumps(result.to_dict(), indent=1, default=json_default))
        self._cache["attribution"] = result
        return {**record, **attribution_summary(result.to_dict()), "score_seconds": dict(result.seconds)}

    def _stage_report(self) -> dict:
        from .report import look_at, write_report

        paths = write_report(self) if self.config.report.figures else []
        return {"figures": [str(p.relative_to(self.out)) for p in paths], "look_at": look_at(self)}


def _new_keys_at_default(before: dict, config: StudyConfig) -> dict | None:
    """``{key: stage}`` when ``config`` differs from the recorded ``before`` only by keys that ``before`` lacks,
    that hold their default values and that belong to one stage's section (keys a newer dualmap added); else
    None."""
    from .config import _flatten

    old, new, default = _flatten(before), _flatten(resolved(config)), _flatten(resolved(StudyConfig()))
    differing = [key for key in set(old) | set(new) if old.get(key, KeyError) != new.get(key, KeyError)]
    sections = {SECTIONS.get(stage, stage): stage for stage in STAGES}
    added = {}
    for key in differing:
        section = key.split(".")[0]
        if key in old or key not in default or new.get(key) != default[key] or section not in sections:
            return None
        added[key] = sections[section]
    return added or None


def attribution_runs(section) -> tuple[int, float]:
    """``(runs, equivalent)``: how many trainings the attribute stage runs, and their cost in full trainings
    (an LDS subset trains on half of the points)."""
    scored = len([m for m in section.methods if m != "random"])
    removal = len(section.seeds) * (1 + len(section.fractions) * (1 + 2 * scored)) if "removal" in section.protocols \
        else 0
    lds = section.n_subsets if "lds" in section.protocols else 0
    mislabel = 1 if "mislabel" in section.protocols else 0
    return 1 + removal + lds + mislabel, 1 + removal + 0.5 * lds + mislabel


def _load_attribution(path):
    from ..attribution import ValidationResult

    try:
        return ValidationResult.load(path)
    except (json.JSONDecodeError, TypeError) as exc:
        raise CorruptFileError(f"{path} is not a valid attribution result: {exc}") from exc


def _closest(rows: list, fraction: float):
    """The fraction among ``rows`` closest to ``fraction`` (None for no rows)."""
    fractions = sorted({r["fraction"] for r in rows})
    return min(fractions, key=lambda f: (abs(f - fraction), f)) if fractions else None


def attribution_summary(result: dict, *, fraction: float = 0.1) -> dict:
    """The attribute stage's numbers for metrics.json: per method the remove-and-retrain effects at the fraction
    closest to ``fraction`` (paired, in standard errors), the LDS and the mislabel AUC."""
    removal = result.get("removal", [])
    chosen = _closest(removal, fraction)
    out = {"fraction": chosen, "query": result.get("setting", {}).get("query"), "methods": {}}
    methods = list(result.get("setting", {}).get("methods", {})) or sorted(
        {r["method"] for r in removal} | set(result.get("lds", {})) | set(result.get("mislabel", {})))
    for method in methods:
        entry = {}
        row = next((r for r in removal if r["method"] == method and r["fraction"] == chosen), None)
        if row is not None:
            for key in ("top_minus_bottom", "top_minus_bottom_in_se", "top_minus_random", "top_minus_random_in_se",
                        "loss_top", "loss_bottom", "loss_random", "loss_full"):
                entry[key] = row[key]
        if method in result.get("lds", {}):
            entry["lds"], entry["lds_se"] = result["lds"][method]["lds"], result["lds"][method]["se"]
        if method in result.get("mislabel", {}):
            entry["mislabel_auc"] = result["mislabel"][method]["auc"]
        out["methods"][method] = entry
    return out


def _constant_loss(ds) -> float:
    """The training loss of the best constant prediction that ignores the inputs: ln(K) for K balanced
    classes (cross-entropy, uniform), the variance of the targets for regression (mean squared error)."""
    import numpy as np

    if ds.task == "classification":
        counts = np.bincount(np.asarray(ds.y_train, dtype=int))
        p = counts[counts > 0] / counts.sum()
        return float(-(p * np.log(p)).sum())
    y = np.asarray(ds.y_train, dtype=float).reshape(len(ds.y_train), -1)
    return float(y.var(axis=0).mean())


def training_warnings(train_loss, constant_loss: float, *, lr: float | None = None, factor: float = 10.0) -> list[str]:
    """What is wrong with a training run's loss curve, in words (empty when nothing is).

    A run *diverged* when its final training loss is not finite, or more than ``factor`` times the loss of a
    constant prediction (the network is worse than ignoring its inputs), or more than ``factor`` times its
    own best loss earlier in training.
    """
    import numpy as np

    losses = np.asarray(train_loss, dtype=float)
    if losses.size == 0:
        return []
    final, hint = losses[-1], f"; lower train.lr (now {lr:g})" if lr is not None else ""
    if not np.isfinite(final):
        return [f"training diverged: the final training loss is {final}{hint}"]
    warnings = []
    if constant_loss > 0 and final > factor * constant_loss:
        warnings.append(f"training diverged: the final training loss {final:.3g} is {final / constant_loss:.3g}× "
                        f"that of a constant prediction ({constant_loss:.3g}){hint}")
    best = float(np.nanmin(losses))
    if best > 0 and final > factor * best and not warnings:
        warnings.append(f"training blew up: the final training loss {final:.3g} is {final / best:.3g}× its best "
                        f"({best:.3g}, epoch {int(np.nanargmin(losses)) + 1}){hint}")
    return warnings


def _load_dataset(config: StudyConfig, standardize: bool = True):
    """The configured data set; a ConfigError naming the ``dataset`` key when the loader refuses it."""
    from ..data import load_dataset
    from .config import ConfigError

    section = config.dataset
    try:
        return load_dataset(section.name, seed=config.seed, n_train=section.n_train, test_size=section.test_size,
                            standardize=standardize, **section.options)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"dataset ({section.name}): {exc}") from None


def _adopt_study(folder: Path) -> dict | None:
    """The identity of a study folder written before folders carried a marker (its config.yaml), else None."""
    try:
        return {"config_hash": config_hash(load_config(folder / "config.yaml"))}
    except (FileNotFoundError, ValueError):
        return None


def run_study(config: StudyConfig, out, *, progress: bool = True, stages=STAGES) -> dict:
    """Run a whole study into the folder ``out`` (resuming the finished stages of the same configuration).

    Returns the metrics (also in ``out/metrics.json``): ``status`` (``"complete"`` once every enabled stage
    finished), ``config_hash``, ``provenance``, ``stages`` (per stage its numbers and ``seconds``) and
    ``headline`` (the report's headline table).
    """
    return Study.create(config, out, progress=progress).run(stages)

