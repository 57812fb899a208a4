"""`compare_inits`: the same architecture, optimizer and budget from different starting points.

For every initialisation and seed one run of :func:`dualmap.train`, then per run:

* the learning curves (train and test loss and accuracy/R² after every epoch);
* **steps to He**: the first step at which the run's test loss is at or below the He-initialised run's
  *final* test loss (same seed), or None if it never gets there;
* **displacement** per layer: ``‖W_T − W_0‖_F / ‖W_0‖_F`` (hidden layers and readout);
* **pair persistence**: the checkpoints are mapped to pairs (:func:`dualmap.track`, which maps step 0 too)
  and persistence at checkpoint ``t`` is the fraction of neurons whose pair is still their step-0 pair.
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
from ..data import Dataset, load_dataset

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
        """Per init: medians over seeds of the final losses/metrics, the steps to He, and the displacement."""
        out = []
        for init in self.config.get("inits", sorted({r["init"] for r in self.rows})):
            group = [r for r in self.rows if r["init"] == init]
            if not group:
                continue
            steps = [r["steps_to_he"] for r in group]
            reached = [s for s in steps if s is not None]
            out.append({
                "init": init, "seeds": len(group),
                **{key: float(np.median([r[key] for r in group])) for key in
                   ("start_test_metric", "final_test_metric", "final_test_loss", "final_train_loss")},
                "steps_to_he_median": float(np.median(reached)) if len(reached) == len(steps) else None,
                "reached_he": f"{len(reached)}/{len(steps)}",
                "displacement": np.median([r["displacement"] for r in group], axis=0).tolist(),
                "final_persistence": (np.median([r["persistence"][-1] for r in group], axis=0).tolist()
                                      if group[0]["persistence"] else None),
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


def compare_inits(data, widths, activation="relu", *, inits=DEFAULT_INITS, seeds=(0, 1, 2), optimizer="adam",
                  lr=1e-3, epochs=30, batch_size=128, momentum=0.9, persistence_checkpoints: int = 8,
                  map_method: str = "function", progress: bool = True, **dataset_options) -> InitComparison:
    """Train the same architecture from every initialisation in ``inits`` with the same budget.

    Parameters
    ----------
    data : str, Dataset or tuple (X_train, y_train, X_test, y_test)
        A data set name (:func:`dualmap.load_dataset`, with ``dataset_options``), a Dataset, or arrays.
    widths : sequence of int
    activation : {"relu", "tanh"}
    inits : sequence of str
        From ``"he", "xavier", "torch", "swim", "uniform", "random"``; ``"he"`` is needed for the steps to He.
    seeds : sequence of int
        Every init is trained once per seed (the seed sets both the init and the mini-batch order).
    optimizer, lr, epochs, batch_size, momentum : as :func:`dualmap.train`, the same for every init.
    persistence_checkpoints : int
        Log-spaced checkpoints mapped to pairs for the pair persistence (0 switches it off).
    map_method : str
        Forward-map method for the persistence.

    Returns
    -------
    InitComparison
    """
    from ..dynamics import track        # here, not at the top: dynamics and train import this package
    from ..train import INITS, train

    ds = _as_dataset(data, **dataset_options)
    unknown = [i for i in inits if i not in INITS]
    if unknown:
        raise ValueError(f"unknown init(s) {unknown}; supported: {list(INITS)}")
    if not len(seeds):
        raise ValueError("seeds must not be empty")
    rows, curves = [], {init: {} for init in inits}
    runs = [(init, seed) for seed in seeds for init in inits]
    bar = progress_bar(runs, desc="compare inits", disable=not progress, unit="run")
    for init, seed in bar:
        started = time.perf_counter()
        run = train(list(widths), ds.X_train, ds.y_train, activation=activation, optimizer=optimizer, lr=lr,
                    epochs=epochs, batch_size=batch_size, momentum=momentum, init=init, seed=seed,
                    checkpoints=max(2, persistence_checkpoints), X_val=ds.X_test, y_val=ds.y_test, progress=False)
        seconds = time.perf_counter() - started
        start = run.checkpoints[0][1]
        start_history = _evaluate_start(start, ds, run.task)
        history = {key: [start_history[key]] + np.asarray(run.history[key]).tolist()
                   for key in ("train_loss", "val_loss", "train_metric", "val_metric")}
        history["step"] = [0] + np.asarray(run.history["step"]).tolist()
        curves[init][str(seed)] = history
        persistence, persistence_steps = [], []
        if persistence_checkpoints:
            trajectory = track(run, ds.X_train, method=map_method, seed=seed, progress=False)
            initial = trajectory.pairs[0]
            persistence = [[float(np.mean(np.all(p == q, axis=1))) for p, q in zip(pairs, initial)]
                           for pairs in trajectory.pairs]
            persistence_steps = trajectory.steps.tolist()
        rows.append(dict(init=init, seed=seed, final_train_loss=history["train_loss"][-1],
                         final_test_loss=history["val_loss"][-1], final_train_metric=history["train_metric"][-1],
                         final_test_metric=history["val_metric"][-1], start_test_metric=history["val_metric"][0],
                         displacement=_displacement(start, run.model), persistence=persistence,
                         persistence_steps=persistence_steps, train_seconds=seconds, steps_to_he=None))
    if "he" in inits:
        for row in rows:
            he_final = curves["he"][str(row["seed"])]["val_loss"][-1]
            row["steps_to_he"] = _steps_to(curves[row["init"]][str(row["seed"])], he_final)
    config = dict(dataset=ds.name, n_train=len(ds.X_train), widths=list(widths), activation=activation,
                  inits=list(inits), seeds=list(seeds), optimizer=optimizer, lr=lr, epochs=epochs,
                  batch_size=batch_size, momentum=momentum, persistence_checkpoints=persistence_checkpoints,
                  map_method=map_method, task=ds.task)
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
    task = "regression" if y_train.dtype.kind == "f" else "classification"
    return Dataset(np.asarray(X_train, dtype=np.float64), y_train, np.asarray(X_test, dtype=np.float64),
                   np.asarray(y_test), task, "arrays")


def _evaluate_start(network, ds: Dataset, task: str) -> dict:
    """Loss and accuracy/R² of the starting network (the training loop reports them after each epoch only)."""
    import torch
    from torch import nn

    from ..train import encode_targets

    out = {}
    for split, X, y in (("train", ds.X_train, ds.y_train), ("val", ds.X_test, ds.y_test)):
        outputs = torch.from_numpy(network.predict(X))
        if task == "classification":
            classes = np.unique(ds.y_train)
            index = {label: i for i, label in enumerate(classes.tolist())}
            targets = torch.as_tensor([index[v] for v in np.asarray(y).tolist()])
            out[f"{split}_loss"] = float(nn.functional.cross_entropy(outputs, targets))
            out[f"{split}_metric"] = float((outputs.argmax(dim=1) == targets).double().mean())
        else:
            targets = torch.from_numpy(encode_targets(y, task)[0])
            out[f"{split}_loss"] = float(nn.functional.mse_loss(outputs, targets))
            total = float(((targets - targets.mean(dim=0)) ** 2).sum())
            out[f"{split}_metric"] = 1.0 - float(((outputs - targets) ** 2).sum()) / total if total > 0 else float("nan")
    return out
