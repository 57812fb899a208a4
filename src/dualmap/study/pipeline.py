"""A study: every stage of dualmap on one data set and one architecture, written to one folder.

Stages, in order (each reads what the earlier ones wrote and records itself in ``metrics.json``):

======== ===================================================================== =============================
stage    what it does                                                          writes
======== ===================================================================== =============================
sample   a SWIM network of the configured widths, readout by ridge regression  ``sampled_network.npz``,
                                                                               ``sampled_pairs.npz``
train    the same architecture trained by gradient descent, with checkpoints   ``train_run.npz``
convert  the forward map of the trained network; converted net and nulls       ``pairmap.npz``
track    the forward map of every checkpoint (the trajectory)                  ``trajectory.npz``
refine   the inverse map: sampled vs standard inits under the same training    ``inverse_comparison.json``
report   figures and the self-contained HTML report, from the files above      ``figures/*.png``,
                                                                               ``report.html``
======== ===================================================================== =============================

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
from .config import StudyConfig, config_hash, dump_config, load_config

__all__ = ["STAGES", "Study", "run_study", "provenance"]

STAGES = ("sample", "train", "convert", "track", "refine", "report")

#: the files each stage writes (relative to the study folder)
STAGE_FILES = {
    "sample": ("sampled_network.npz", "sampled_pairs.npz"),
    "train": ("train_run.npz",),
    "convert": ("pairmap.npz",),
    "track": ("trajectory.npz",),
    "refine": ("inverse_comparison.json",),
    "report": (),
}

#: what each stage needs done first
REQUIRES = {"sample": (), "train": (), "convert": ("train",), "track": ("train",), "refine": (),
            "report": ("sample", "train", "convert")}


class StudyError(RuntimeError):
    """A study folder cannot be used as asked (another configuration, a missing earlier stage)."""


def provenance(config: StudyConfig) -> dict:
    """Versions of dualmap and its main dependencies, the machine, the seed and the resolved device."""
    from importlib import metadata

    from .. import __version__
    from .._backend import resolve_device

    versions = {"dualmap": __version__, "python": platform.python_version()}
    for package in ("numpy", "scipy", "scikit-learn", "torch", "faiss-cpu", "POT", "matplotlib", "pydantic"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    import torch

    return {"versions": versions, "seed": config.seed, "device": str(resolve_device(config.device)),
            "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
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
    _cache: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ folders
    @classmethod
    def create(cls, config: StudyConfig, out, *, progress: bool = True) -> "Study":
        """Start a study in ``out``, or resume the one there if it has the same resolved configuration."""
        out = Path(out)
        if (out / "config.yaml").exists():
            existing = load_config(out / "config.yaml")
            if config_hash(existing) != config_hash(config):
                raise StudyError(f"{out} holds a study with another configuration (hash {config_hash(existing)}, "
                                 f"this one is {config_hash(config)}); choose another --out folder or remove it")
            study = cls.open(out, progress=progress)
            return study
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "config.yaml", dump_config(config))
        study = cls(out=out, config=config, progress=progress)
        study.metrics = {"status": "partial", "config_hash": config_hash(config), "provenance": provenance(config),
                         "stages": {}, "headline": {}}
        study._write_metrics()
        return study

    @classmethod
    def open(cls, out, *, progress: bool = True) -> "Study":
        """An existing study folder (its ``config.yaml`` and, if present, ``metrics.json``)."""
        out = Path(out)
        if not (out / "config.yaml").exists():
            raise StudyError(f"{out} is not a study folder (no config.yaml); start one with 'dualmap run' "
                             "or 'dualmap sample --out DIR'")
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
        else:
            study.metrics = {"status": "partial", "config_hash": config_hash(config),
                             "provenance": provenance(config), "stages": {}, "headline": {}}
        return study

    def done(self, stage: str) -> bool:
        """Whether ``stage`` finished (recorded in metrics.json and its files present)."""
        return stage in self.metrics["stages"] and all((self.out / f).exists() for f in STAGE_FILES[stage])

    def enabled(self, stage: str) -> bool:
        """Whether the configuration runs ``stage`` (``track`` and ``refine`` can be switched off)."""
        section = getattr(self.config, stage, None)
        return bool(getattr(section, "enabled", True))

    def _write_metrics(self) -> None:
        write_text_atomic(self.out / "metrics.json", json.dumps(self.metrics, indent=1, default=json_default))

    # ------------------------------------------------------------------ shared inputs
    @property
    def dataset(self):
        if "dataset" not in self._cache:
            from ..data import load_dataset

            section = self.config.dataset
            self._cache["dataset"] = load_dataset(section.name, seed=self.config.seed, n_train=section.n_train,
                                                  test_size=section.test_size, **section.options)
        return self._cache["dataset"]

    def _load(self, name: str):
        if name not in self._cache:
            from ..dynamics import Trajectory
            from ..inverse.compare import InitComparison
            from ..maps import PairMap
            from ..network import MLP
            from ..train import TrainRun

            loaders = {"sampled_network": MLP.load, "sampled_pairs": PairMap.load, "train_run": TrainRun.load,
                       "pairmap": PairMap.load, "trajectory": Trajectory.load,
                       "inverse_comparison": InitComparison.load}
            suffix = ".json" if name == "inverse_comparison" else ".npz"
            self._cache[name] = loaders[name](self.out / f"{name}{suffix}")
        return self._cache[name]

    # ------------------------------------------------------------------ running
    def run(self, stages=STAGES, *, redo: bool = False) -> dict:
        """Run ``stages`` in order (skipping finished ones unless ``redo``); return the metrics."""
        todo = [s for s in stages if self.enabled(s)]
        for number, stage in enumerate(todo, 1):
            if self.done(stage) and not redo:
                _log(f"[{number}/{len(todo)}] {stage}: already done, kept", not self.progress)
                continue
            missing = [r for r in REQUIRES[stage] if self.enabled(r) and not self.done(r)]
            if missing:
                raise StudyError(f"stage {stage!r} needs {', '.join(missing)} first "
                                 f"(run 'dualmap {missing[0]} --out {self.out}')")
            _log(f"[{number}/{len(todo)}] {stage} …", not self.progress)
            if stage == "track" and redo:    # recompute; an unrecorded trajectory file (a crash) is resumed instead
                (self.out / "trajectory.npz").unlink(missing_ok=True)
            started = time.perf_counter()
            record = getattr(self, f"_stage_{stage}")()
            record["seconds"] = time.perf_counter() - started
            self.metrics["stages"][stage] = record
            for stale in self._downstream(stage):
                if self.metrics["stages"].pop(stale, None) is not None:
                    _log(f"    {stale}: out of date now, recomputed by the next 'dualmap run'", not self.progress)
                if stale == "track":
                    (self.out / "trajectory.npz").unlink(missing_ok=True)
            self.metrics["headline"] = self.headline()
            planned = [s for s in STAGES if self.enabled(s)]
            self.metrics["status"] = "complete" if all(self.done(s) for s in planned) else "partial"
            self._write_metrics()
            _log(f"[{number}/{len(todo)}] {stage}: {record['seconds']:.1f} s", not self.progress)
        return self.metrics

    @staticmethod
    def _downstream(stage: str) -> list[str]:
        """The stages that use ``stage``'s results, directly or through others (they go stale when it reruns)."""
        found, frontier = [], [stage]
        while frontier:
            current = frontier.pop()
            for other in STAGES:
                if current in REQUIRES[other] and other not in found:
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
            "r2_map": convert.get("r2_map"),
            "r2_null_swim": convert.get("r2_null_swim"),
            "r2_null_uniform": convert.get("r2_null_uniform"),
            "gap_closed": convert.get("gap_closed"),
            "seconds_total": float(sum(s.get("seconds", 0.0) for s in stages.values())),
        }

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
        return {"steps": int(run.steps[-1]), "checkpoints": len(run.checkpoints),
                "train_loss": float(history["train_loss"][-1]), "test_loss": float(history["val_loss"][-1]),
                "train_score": float(history["train_metric"][-1]), "test_score": float(history["val_metric"][-1])}

    def _stage_convert(self) -> dict:
        from ..maps import to_pairs
        from ..metrics import evaluate_map

        ds, run = self.dataset, self._load("train_run")
        pair_map = to_pairs(run.model, ds.X_train, method=self.config.convert.method, seed=self.config.seed,
                            device=self.config.device, progress=self.progress)
        pair_map.save(self.out / "pairmap.npz")
        self._cache["pairmap"] = pair_map
        labels = ds.y_train if ds.task == "classification" else ds.y_train.reshape(len(ds.y_train), -1)
        labels_test = ds.y_test if ds.task == "classification" else ds.y_test.reshape(len(ds.y_test), -1)
        record = evaluate_map(pair_map, run.model, ds.X_train, ds.X_test, labels=labels, labels_test=labels_test,
                              task=ds.task, seed=self.config.seed)
        record["method"] = pair_map.method
        return record

    def _stage_track(self) -> dict:
        from ..dynamics import track

        ds = self.dataset
        trajectory = track(self._load("train_run"), ds.X_train, method=self.config.track.method, y=ds.y_train,
                           seed=self.config.seed, path=self.out / "trajectory.npz", progress=self.progress)
        self._cache["trajectory"] = trajectory
        return trajectory.summary()

    def _stage_refine(self) -> dict:
        from ..inverse import compare_inits

        section, train_section = self.config.refine, self.config.train
        comparison = compare_inits(self.dataset, list(self.config.network.widths), self.config.network.activation,
                                   inits=tuple(section.inits), seeds=tuple(section.seeds),
                                   optimizer=train_section.optimizer, lr=train_section.lr, epochs=section.epochs,
                                   batch_size=train_section.batch_size, momentum=train_section.momentum,
                                   persistence_checkpoints=section.persistence_checkpoints,
                                   progress=self.progress)
        comparison.save(self.out / "inverse_comparison.json")
        self._cache["inverse_comparison"] = comparison
        return {"table": comparison.table()}

    def _stage_report(self) -> dict:
        from .report import write_report

        paths = write_report(self) if self.config.report.figures else []
        return {"figures": [str(p.relative_to(self.out)) for p in paths]}


def run_study(config: StudyConfig, out, *, progress: bool = True, stages=STAGES) -> dict:
    """Run a whole study into the folder ``out`` (resuming the finished stages of the same configuration).

    Returns the metrics (also in ``out/metrics.json``): ``status`` (``"complete"`` once every enabled stage
    finished), ``config_hash``, ``provenance``, ``stages`` (per stage its numbers and ``seconds``) and
    ``headline`` (the report's headline table).
    """
    return Study.create(config, out, progress=progress).run(stages)

