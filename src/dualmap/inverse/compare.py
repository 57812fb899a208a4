"""`compare_inits`: the same architecture, optimizer and budget from different starting points.

For every initialisation and seed one run of :func:`dualmap.train`, then per run:

* the learning curves (train and test loss and accuracy/R² after every epoch);
* **steps to He**: the first step at which the run's test loss is at or below the He-initialised run's
  *final* test loss (same seed), or None if it never gets there;
* **displacement** per layer: ``‖W_T − W_0‖_F / ‖W_0‖_F`` (hidden layers and readout);
* **pair persistence**: every checkpoint, step 0 included, is mapped to pairs on its own
  (:func:`dualmap.to_pairs`, method ``map_method``) and persistence at checkpoint ``t`` is the fraction of
  neurons whose pair is still their step-0 pair.
  For a sampled start the step-0 map recovers the sampled pairs exactly (a sampled network is its own
  planted network), so this is the fraction of neurons still on the pair they were sampled from.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._progress import progress_bar
from .._scoring import task_loss, task_metric
from .._validation import class_indices, infer_task
from ..data import Dataset, load_dataset
from ..maps import to_pairs
from ..train import INITS, encode_targets, train

__all__ = ["InitComparison", "compare_inits", "DEFAULT_INITS"]

DEFAULT_INITS = ("he", "xavier", "swim", "uniform", "random")


@dataclass
class InitComparison:
    """The result of :func:`compare_inits`.

    Attributes
    ----------
    rows : list of dict
        One per (init, seed): ``init``, ``seed``, ``final_train_loss``, ``final_test_loss``,
        ``final_train_metric``, ``final_test_metric``, ``start_test_metric``, ``steps_to_he``,
        ``displacement`` (per layer), ``persistence`` (per checkpoint, per layer), ``persistence_steps``,
        ``train_seconds``.
    curves : dict
        ``curves[init][seed]`` → the run's history (``step``, ``train_loss``, ``val_loss``, ``train_metric``,
        ``val_metric``, lists), with the start (step 0) prepended.
    config : dict
        The arguments that produced the comparison.
    """

    rows: list
    curves: dict
    config: dict = field(default_factory=dict)

    def table(self) -> list[dict]:
        """Per init: medians over seeds of the final losses/metrics, the steps to He, and the displacement.

        ``steps_to_he_fraction`` is the median steps to He over the total number of steps (He's own run reaches
        its final loss at the last step at the latest, so 1/3 means three times faster); ``failed`` counts
        runs that diverged, ``stalled`` runs whose weights did not move (relative displacement < 1e-6).
        """
        out = []
        chosen = self.config.get("chosen_lr", {})
        for init in self.config.get("inits", sorted({r["init"] for r in self.rows})):
            group = [r for r in self.rows if r["init"] == init]
            if not group:
                continue
            ok = [r for r in group if not r.get("failed")]
            steps = [r["steps_to_he"] for r in group]
            reached = [s for s in steps if s is not None]
            total = max((r.get("total_steps", 0) for r in ok), default=0)
            median_steps = float(np.median(reached)) if len(reached) == len(steps) else None
            out.append({
                "init": init, "seeds": len(group), "lr": chosen.get(init, self.config.get("lr")),
                **{key: float(np.median([r[key] for r in group])) for key in
                   ("start_test_metric", "final_test_metric", "final_test_loss", "final_train_loss")},
                "steps_to_he_median": median_steps,
                "steps_to_he_fraction": median_steps / total if median_steps is not None and total else None,
                "reached_he": f"{len(reached)}/{len(steps)}",
                "failed": sum(bool(r.get("failed")) for r in group),
                "stalled": sum(bool(r.get("stalled")) for r in ok),
                "displacement": np.median([r["displacement"] for r in ok], axis=0).tolist() if ok else [],
                "final_persistence": (np.median([r["persistence"][-1] for r in ok if r["persistence"]], axis=0).tolist()
                                      if any(r["persistence"] for r in ok) else None),
            })
        return out

    def save(self, path) -> Path:
        """JSON (every number is plain); written atomically."""
        from .._io import write_text_atomic

        text = json.dumps({"rows": self.rows, "curves": self.curves, "config": self.config}, default=float)
        return write_text_atomic(path, text)

    @classmethod
    def load(cls, path) -> "InitComparison":
        try:
            data = json.loads(Path(path).read_text())
            return cls(rows=data["rows"], curves=data["curves"], config=data["config"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            from .._io import CorruptFileError

            raise CorruptFileError(f"{path} is not a valid InitComparison file: {exc}") from exc


def _displacement(start, end) -> list[float]:
    return [float(np.linalg.norm(b - a) / max(np.linalg.norm(a), np.finfo(float).tiny))
            for a, b in zip(start.weights, end.weights)]


def _steps_to(history: dict, threshold: float):
    for step, loss in zip(history["step"], history["val_loss"]):
        if loss <= threshold:
            return int(step)
    return None


def parse_init(spec: str) -> tuple[str, str]:
    """``"swim"`` → ``("swim", "auto")``; ``"swim:plain"`` → ``("swim", "plain")`` (init and finetune scheme)."""
    if not isinstance(spec, str):
        raise TypeError(f"an init must be a string such as 'he', 'swim' or 'swim:plain'; got {spec!r}")
    init, _, finetune = spec.partition(":")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r} in {spec!r}; supported: {list(INITS)}, optionally with "
                         f"':<finetune scheme>' (e.g. 'swim:plain')")
    return init, finetune or "auto"


def validation_split(ds: Dataset, fraction: float, seed: int = 0):
    """``(X_fit, y_fit, X_val, y_val)``: a seeded split of the training set (stratified for classes)."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1); got {fraction!r}")
    stratify = ds.y_train if ds.task == "classification" else None
    try:
        X_fit, X_val, y_fit, y_val = train_test_split(ds.X_train, ds.y_train, test_size=fraction, random_state=seed,
                                                      stratify=stratify)
    except ValueError as exc:
        raise ValueError(f"cannot hold out validation_fraction={fraction} of {len(ds.X_train)} training points: "
                         f"{exc}") from exc
    return X_fit, y_fit, X_val, y_val


def compare_inits(data, widths, activation="relu", *, inits=DEFAULT_INITS, seeds=(0, 1, 2), optimizer="adam",
                  lr=1e-3, epochs=30, batch_size=128, momentum=0.9, persistence_checkpoints: int = 8,
                  persistence_inits=None, map_method: str = "function", validation_fraction: float = 0.2,
                  selection_seeds=None, progress: bool = True, **dataset_options) -> InitComparison:
    """Train the same architecture from every initialisation in ``inits`` with the same budget.

    Parameters
    ----------
    data : str, Dataset or tuple (X_train, y_train, X_test, y_test)
        A data set name (:func:`dualmap.load_dataset`, with ``dataset_options``), a Dataset, or arrays.
    widths : sequence of int
    activation : {"relu", "tanh"}
    inits : sequence of str
        From ``"he", "xavier", "torch", "swim", "uniform", "random"``, each optionally followed by
        ``":<finetune>"`` (:func:`dualmap.train`'s ``finetune``; e.g. ``"swim:plain"`` is the sampled start
        trained as sampled, the pre-issue-13 default); ``"he"`` is needed for the steps to He.
    seeds : sequence of int
        Every init is trained once per seed (the seed sets both the init and the mini-batch order).
    optimizer, epochs, batch_size, momentum : as :func:`dualmap.train`, the same for every init.
    lr : float or sequence of float
        One learning rate for every init (trained on the whole training set), or a grid: then
        ``validation_fraction`` of the training set is held out (seeded, stratified), every init is trained on
        the rest with every rate, and each init keeps the rate with the lowest median final *validation*
        loss over the seeds (never the test loss). Its runs are the ones reported. A rate that diverges
        counts as infinitely bad.
    persistence_checkpoints : int
        Log-spaced checkpoints mapped to pairs for the pair persistence (0 switches it off).
    persistence_inits : sequence of str, optional
        The inits whose persistence is measured (default: all).
    map_method : str
        Forward-map method for the persistence.
    selection_seeds : sequence of int, optional
        The seeds whose runs choose the learning rate (default: all); the other seeds are trained with the
        chosen rate only (cheaper; the choice is still made on the validation split).

    Returns
    -------
    InitComparison
        With a lr grid, ``config["chosen_lr"][init]`` and ``config["validation_losses"][init][lr]``.
    """
    ds = _as_dataset(data, **dataset_options)
    inits = list(inits)
    if not inits:
        raise ValueError("inits must not be empty")
    specs = {spec: parse_init(spec) for spec in inits}
    if len(set(inits)) != len(inits):
        raise ValueError(f"inits holds duplicates: {inits}")
    if not len(seeds):
        raise ValueError("seeds must not be empty")
    grid = [float(lr)] if np.ndim(lr) == 0 else [float(v) for v in lr]
    if not grid or not all(np.isfinite(v) and v > 0 for v in grid):
        raise ValueError(f"lr must be a positive float or a non-empty sequence of them; got {lr!r}")
    select = len(grid) > 1
    if select:
        X_fit, y_fit, X_val, y_val = validation_split(ds, validation_fraction)
    else:
        X_fit, y_fit, X_val, y_val = ds.X_train, ds.y_train, None, None
    measured = set(inits if persistence_inits is None else persistence_inits)
    if measured - set(inits):
        raise ValueError(f"persistence_inits {sorted(measured - set(inits))} are not in inits {inits}")

    selecting = list(seeds) if selection_seeds is None or not select else list(selection_seeds)
    if not selecting or set(selecting) - set(seeds):
        raise ValueError(f"selection_seeds must be a non-empty subset of seeds {list(seeds)}; got {selection_seeds!r}")
    runs, failures = {}, []

    def run_one(spec, rate, seed):
        init, finetune = specs[spec]
        started = time.perf_counter()
        try:
            run = train(list(widths), X_fit, y_fit, activation=activation, optimizer=optimizer, lr=rate,
                        epochs=epochs, batch_size=batch_size, momentum=momentum, init=init, finetune=finetune,
                        seed=seed, checkpoints=max(2, persistence_checkpoints), X_val=X_val, y_val=y_val,
                        monitor={"test": (ds.X_test, ds.y_test)}, progress=False)
        except FloatingPointError as exc:
            failures.append(dict(init=spec, lr=rate, seed=seed, error=str(exc)))
            runs[spec, rate, seed] = None
            return
        runs[spec, rate, seed] = (run, time.perf_counter() - started)

    jobs = [(spec, rate, seed) for spec in inits for rate in grid for seed in selecting]
    for spec, rate, seed in progress_bar(jobs, desc="compare inits", disable=not progress, unit="run"):
        run_one(spec, rate, seed)

    def validation_loss(spec, rate):
        values = [np.inf if runs[spec, rate, s] is None else
                  runs[spec, rate, s][0].history["val_loss"][-1] if select else
                  runs[spec, rate, s][0].history["train_loss"][-1] for s in selecting]
        values = [v if np.isfinite(v) else np.inf for v in values]
        return float(np.median(values))

    validation_losses = {spec: {repr(rate): validation_loss(spec, rate) for rate in grid} for spec in inits}
    chosen = {spec: min(grid, key=lambda rate: validation_loss(spec, rate)) for spec in inits}
    rest = [(spec, chosen[spec], seed) for spec in inits for seed in seeds if seed not in selecting]
    for spec, rate, seed in progress_bar(rest, desc="compare inits (chosen lr)", disable=not progress, unit="run"):
        run_one(spec, rate, seed)
    for key in [key for key in runs if key[1] != chosen[key[0]]]:
        del runs[key]                                      # free the networks of the rates not chosen

    rows, curves = [], {spec: {} for spec in inits}
    for spec in inits:
        init, finetune = specs[spec]
        for seed in seeds:
            rate = chosen[spec]
            if runs[spec, rate, seed] is None:
                rows.append(dict(init=spec, seed=seed, lr=rate, failed=True, final_train_loss=float("nan"),
                                 final_test_loss=float("inf"), final_train_metric=float("nan"),
                                 final_test_metric=float("nan"), start_test_metric=float("nan"), steps_to_he=None,
                                 displacement=[], persistence=[], persistence_steps=[], train_seconds=0.0,
                                 finetune=finetune))
                continue
            run, seconds = runs[spec, rate, seed]
            start = run.checkpoints[0][1]
            start_history = _evaluate_start(start, ds, run.task, X_fit, y_fit)
            # curves keep their issue-5 keys: "val_*" is the test split (the report labels it so)
            history = {key: [start_history[key]] + np.asarray(run.history[source]).tolist() for key, source in
                       (("train_loss", "train_loss"), ("train_metric", "train_metric"),
                        ("val_loss", "test_loss"), ("val_metric", "test_metric"))}
            history["step"] = [0] + np.asarray(run.history["step"]).tolist()
            curves[spec][str(seed)] = history
            persistence, persistence_steps = [], []
            if persistence_checkpoints and spec in measured:
                maps = [to_pairs(network, X_fit, method=map_method, seed=seed, progress=False).pairs
                        for _, network in run.checkpoints]
                persistence = [[float(np.mean(np.all(p == q, axis=1))) for p, q in zip(pairs, maps[0])]
                               for pairs in maps]
                persistence_steps = [int(step) for step, _ in run.checkpoints]
            rows.append(dict(init=spec, seed=seed, lr=rate, failed=False, finetune=run.config.get("finetune"),
                             final_train_loss=history["train_loss"][-1], final_test_loss=history["val_loss"][-1],
                             final_train_metric=history["train_metric"][-1],
                             final_test_metric=history["val_metric"][-1], start_test_metric=history["val_metric"][0],
                             start_test_loss=history["val_loss"][0],
                             displacement=_displacement(start, run.model), persistence=persistence,
                             persistence_steps=persistence_steps, train_seconds=seconds, steps_to_he=None,
                             total_steps=int(history["step"][-1]),
                             stalled=bool(max(_displacement(start, run.model), default=0.0) < 1e-6)))
    he = next((spec for spec in inits if specs[spec][0] == "he"), None)
    if he is not None:
        for row in rows:
            he_curve = curves[he].get(str(row["seed"]))
            if he_curve is not None and str(row["seed"]) in curves[row["init"]]:
                row["steps_to_he"] = _steps_to(curves[row["init"]][str(row["seed"])], he_curve["val_loss"][-1])
    config = dict(dataset=ds.name, n_train=len(ds.X_train), n_fit=len(X_fit), widths=list(widths),
                  activation=activation, inits=list(inits), seeds=list(seeds), optimizer=optimizer,
                  lr=grid[0] if not select else grid, lr_grid=grid, chosen_lr=chosen,
                  validation_fraction=validation_fraction if select else None, selection_seeds=selecting,
                  validation_losses=validation_losses, failures=failures, epochs=epochs, batch_size=batch_size,
                  momentum=momentum, persistence_checkpoints=persistence_checkpoints, map_method=map_method,
                  task=ds.task)
    return InitComparison(rows=rows, curves=curves, config=config)


def _as_dataset(data, **options) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if isinstance(data, str):
        return load_dataset(data, **options)
    try:
        X_train, y_train, X_test, y_test = data
    except (TypeError, ValueError) as exc:
        raise TypeError("data must be a data set name, a Dataset, or (X_train, y_train, X_test, y_test)") from exc
    y_train = np.asarray(y_train)
    task = infer_task(y_train)
    return Dataset(np.asarray(X_train, dtype=np.float64), y_train, np.asarray(X_test, dtype=np.float64),
                   np.asarray(y_test), task, "arrays")


def _evaluate_start(network, ds: Dataset, task: str, X_fit, y_fit) -> dict:
    """Loss and accuracy/R² of the starting network on the training (fit) and test data ("val", by history)."""
    import torch

    out = {}
    for split, X, y in (("train", X_fit, y_fit), ("val", ds.X_test, ds.y_test)):
        outputs = torch.from_numpy(network.predict(X))
        if task == "classification":
            targets = torch.as_tensor(class_indices(y, np.unique(ds.y_train), name=f"y ({split})",
                                                    unknown="not in the training labels"))
        else:
            targets = torch.from_numpy(encode_targets(y, task)[0])
        out[f"{split}_loss"] = float(task_loss(outputs, targets, task))
        out[f"{split}_metric"] = task_metric(outputs, targets, task)
    return out
