"""Counterfactual tests of training-data scores: remove-and-retrain, LDS and mislabel detection.

* **remove and retrain**: drop the top and the bottom ``f`` of the training points by a score (and a random
  ``f``, drawn per seed), retrain from the same initialisations (``dm.train``'s ``seed`` sets the initial
  network), compare test loss and accuracy. The score used to rank is the per-test score averaged over the
  test points, by default its magnitude ``mean_j |s(j, i)|`` (``rank="magnitude"``: how strongly the point bears
  on the test predictions, either way), or with ``rank="signed"`` the signed average (positive: the point
  helps the test set). Judged on held-out test points (``query_fraction``) the magnitude ranking passes on
  digits and Fashion-MNIST at 5, 10 and 20 %; the signed one does not carry over from the query points
  (digits: top − bottom −0.5 SE at 10 %; docs/findings/attribution.md, "Held-out query points").
* **linear datamodeling score** (Park et al. 2023, TRAK): retrain on ``n_subsets`` random halves; for every
  test point the Spearman correlation, over the subsets, between the summed scores of the points a subset
  keeps and the actual −loss of the model trained on it; averaged over test points. (dattri's ``lds`` computes
  the same; this module does not import it, see docs/findings/attribution.md.)
* **mislabel detection**: flip ``flip`` of the training labels to another class, train, and the ROC AUC of each
  method's global (self-) score for finding the flipped points.

Retraining runs are independent jobs; they go through the sweep's back-ends (:mod:`dualmap._parallel`):
``scheduler=None`` a dask ``LocalCluster`` of ``workers`` single-threaded processes, an address a dask
scheduler, ``"processes"`` a local pool, ``"synchronous"`` this process.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["validate", "remove_and_retrain", "linear_datamodeling_score", "lds", "mislabel_auc",
           "ValidationResult", "DEFAULT_METHODS", "PROTOCOLS", "RANKS", "seed_agreement", "query_split"]

#: name → point_scores options: the map's score, its failed forms, and the baselines.
DEFAULT_METHODS = {
    "map": {"method": "map", "checkpoints": 3},
    "tracin": {"method": "tracin", "checkpoints": "all"},
    "importance": {"method": "importance"},
    "swim_density": {"method": "swim_density"},
    "random": {"method": "random"},
}
#: The counterfactual protocols :func:`validate` runs, and how it ranks points for removal.
PROTOCOLS = ("removal", "lds", "mislabel")
RANKS = ("signed", "magnitude")


# --------------------------------------------------------------------------- retraining jobs
_DATA_CACHE: dict = {}


def _load_data(path):
    if path not in _DATA_CACHE:
        with np.load(path, allow_pickle=False) as archive:
            _DATA_CACHE.clear()
            _DATA_CACHE[path] = {key: archive[key] for key in archive.files}
    return _DATA_CACHE[path]


def retrain_job(job: dict) -> dict:
    """Train on the rows ``job["keep"]`` of the saved training data and evaluate on the test data.

    Returns the per-test-point losses, the mean test loss and the test accuracy (classification) or R².
    One torch thread (the protocols run many of these side by side)."""
    import torch

    from ..train import train

    torch.set_num_threads(1)
    data = _load_data(job["data"])
    keep = np.asarray(job["keep"], dtype=np.int64)
    X, y = data["X"], data["y"]
    if "y_override" in job:
        y = np.asarray(job["y_override"])
    started = time.perf_counter()
    run = train(list(job["widths"]), X[keep], y[keep], activation=job["activation"], optimizer=job["optimizer"],
                lr=job["lr"], epochs=job["epochs"], batch_size=job["batch_size"], seed=job["seed"],
                checkpoints=[0], progress=False, task=job["task"])
    losses, metric = _test_losses(run.model, data["X_test"], data["y_test"], job["task"], run.classes)
    return {"key": job["key"], "losses": losses.astype(np.float32), "loss": float(losses.mean()), "metric": metric,
            "seconds": time.perf_counter() - started}


def _test_losses(model, X_test, y_test, task, classes):
    import torch

    from .._scoring import task_loss, task_metric

    outputs = torch.as_tensor(model.predict(X_test), dtype=torch.float64)
    if task == "classification":
        index = {label: k for k, label in enumerate(np.asarray(classes).tolist())}
        # a class missing from a subset has no logit: its test points get the loss of a uniform guess
        known = np.array([label in index for label in np.asarray(y_test).tolist()])
        target = torch.as_tensor([index.get(label, 0) for label in np.asarray(y_test).tolist()])
        losses = task_loss(outputs, target, task, reduction="none").numpy()
        losses[~known] = np.log(len(classes))
        correct = (outputs.argmax(dim=1) == target).numpy() & known
        return losses, float(correct.mean())
    target = torch.as_tensor(np.asarray(y_test, dtype=np.float64).reshape(len(outputs), -1))
    losses = task_loss(outputs, target, task, reduction="none").mean(dim=1).numpy()
    return losses, task_metric(outputs, target, task)


def _run_jobs(jobs: list, scheduler, workers: int, progress: bool) -> dict:
    """Run ``retrain_job`` over ``jobs`` on a sweep backend; ``{key: result}``."""
    from .._parallel import start_backend

    backend = start_backend(scheduler, workers)
    results = {}
    try:
        handles = [backend.submit(retrain_job, job, key=f"retrain-{job['key']}") for job in jobs]
        for done, (_, result, error) in enumerate(backend.completed(handles), start=1):
            if error is not None:
                raise RuntimeError(f"a retraining run failed: {error!r}") from error
            results[result["key"]] = result
            if progress and (done % 10 == 0 or done == len(jobs)):
                print(f"  retrained {done}/{len(jobs)} ({backend.name})", flush=True)
    finally:
        backend.close()
    return results


class _Data:
    """The arrays the jobs need, in one temporary .npz every worker process loads once."""

    def __init__(self, X, y, X_test, y_test):
        handle, self.path = tempfile.mkstemp(suffix=".npz", prefix="dualmap-attribution-")
        os.close(handle)
        np.savez(self.path, X=X, y=y, X_test=X_test, y_test=y_test)

    def close(self):
        Path(self.path).unlink(missing_ok=True)


# --------------------------------------------------------------------------- statistics
def _mean_se(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return float(values.mean()), float("nan")
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def _ranked(score: np.ndarray, fraction: float, side: str, rng=None) -> np.ndarray:
    """Indices of the top/bottom ``fraction`` of ``score`` (ties broken by index), or a random set."""
    n = len(score)
    count = max(1, int(round(fraction * n)))
    if side == "random":
        return np.sort(rng.choice(n, size=count, replace=False))
    order = np.argsort(-score if side == "top" else score, kind="stable")
    return np.sort(order[:count])


def lds(scores: np.ndarray, subsets: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Per test point, the Spearman correlation over subsets of ``Σ_{i∈S} s(j, i)`` with ``actual[S, j]``.

    ``scores`` (n_test, n_train); ``subsets`` a boolean (n_subsets, n_train) mask; ``actual`` (n_subsets, n_test),
    e.g. the −loss of the model trained on each subset. NaN for a test point whose prediction or actual
    value does not vary."""
    from scipy.stats import rankdata

    predicted = subsets.astype(np.float64) @ np.asarray(scores, dtype=np.float64).T     # (n_subsets, n_test)
    a = rankdata(predicted, axis=0)
    b = rankdata(np.asarray(actual, dtype=np.float64), axis=0)
    a -= a.mean(axis=0)
    b -= b.mean(axis=0)
    denominator = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (a * b).sum(axis=0) / np.where(denominator > 0, denominator, 1), np.nan)


def mislabel_auc(score: np.ndarray, flipped: np.ndarray) -> float:
    """ROC AUC of ``score`` (higher = more suspect) for the boolean mask ``flipped`` (ties count one half)."""
    from scipy.stats import rankdata

    score, flipped = np.asarray(score, dtype=np.float64), np.asarray(flipped, dtype=bool)
    positives, negatives = flipped.sum(), (~flipped).sum()
    if positives == 0 or negatives == 0:
        raise ValueError("mislabel_auc needs both flipped and clean points")
    ranks = rankdata(score)
    return float((ranks[flipped].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def seed_agreement(a: np.ndarray, b: np.ndarray, top: int = 50) -> dict:
    """Spearman correlation and overlap of the ``top`` highest points of two score vectors."""
    from scipy.stats import spearmanr

    top_a = set(np.argsort(-np.asarray(a), kind="stable")[:top].tolist())
    top_b = set(np.argsort(-np.asarray(b), kind="stable")[:top].tolist())
    return {"spearman": float(spearmanr(a, b).statistic), f"top{top}_overlap": len(top_a & top_b) / top}


# --------------------------------------------------------------------------- protocols
def remove_and_retrain(data: _Data, n_train: int, removal_scores: dict, *, fractions=(0.05, 0.1, 0.2),
                       seeds=(0, 1, 2, 3, 4), train_options: dict, scheduler="synchronous", workers: int = 1,
                       progress: bool = False) -> list[dict]:
    """Rows ``{method, side, fraction, seed, loss, metric}`` (method "full" for the whole training set)."""
    jobs, meta = [], {}
    for seed in seeds:
        meta[f"full-{seed}"] = ("full", "none", 0.0, seed)
        jobs.append(dict(train_options, key=f"full-{seed}", keep=np.arange(n_train), seed=seed, data=data.path))
        for fraction in fractions:
            rng = np.random.default_rng([seed, int(round(fraction * 1000))])
            drop = _ranked(np.zeros(n_train), fraction, "random", rng)
            key = f"random-random-{fraction}-{seed}"
            meta[key] = ("random", "random", fraction, seed)
            jobs.append(dict(train_options, key=key, keep=np.setdiff1d(np.arange(n_train), drop), seed=seed,
                             data=data.path))
            for name, score in removal_scores.items():
                for side in ("top", "bottom"):
                    key = f"{name}-{side}-{fraction}-{seed}"
                    meta[key] = (name, side, fraction, seed)
                    drop = _ranked(score, fraction, side)
                    jobs.append(dict(train_options, key=key, keep=np.setdiff1d(np.arange(n_train), drop), seed=seed,
                                     data=data.path))
    results = _run_jobs(jobs, scheduler, workers, progress)
    rows = []
    for key, (name, side, fraction, seed) in meta.items():
        result = results[key]
        rows.append({"method": name, "side": side, "fraction": fraction, "seed": seed, "loss": result["loss"],
                     "metric": result["metric"], "seconds": result["seconds"]})
    return rows


def summarize_removal(rows: list[dict]) -> list[dict]:
    """Per method and fraction: mean ± SE over seeds of the test loss after dropping top, bottom and random
    points, and the paired effects ``top − bottom`` and ``top − random`` (per seed, same initialisation) in
    units of their standard error."""
    table = {(r["method"], r["side"], r["fraction"], r["seed"]): r for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    fractions = sorted({r["fraction"] for r in rows if r["fraction"] > 0})
    methods = sorted({r["method"] for r in rows if r["side"] in ("top", "bottom")})
    full = [table[("full", "none", 0.0, s)]["loss"] for s in seeds]
    out = []
    for fraction in fractions:
        random_loss = [table[("random", "random", fraction, s)]["loss"] for s in seeds]
        random_metric = [table[("random", "random", fraction, s)]["metric"] for s in seeds]
        for method in methods:
            top = [table[(method, "top", fraction, s)]["loss"] for s in seeds]
            bottom = [table[(method, "bottom", fraction, s)]["loss"] for s in seeds]
            entry = {"method": method, "fraction": fraction, "n_seeds": len(seeds)}
            for label, values in (("full", full), ("top", top), ("bottom", bottom), ("random", random_loss)):
                entry[f"loss_{label}"], entry[f"loss_{label}_se"] = _mean_se(values)
            for label, side in (("top", "top"), ("bottom", "bottom")):
                entry[f"metric_{label}"], entry[f"metric_{label}_se"] = _mean_se(
                    [table[(method, side, fraction, s)]["metric"] for s in seeds])
            entry["metric_random"], entry["metric_random_se"] = _mean_se(random_metric)
            for label, other in (("bottom", bottom), ("random", random_loss)):
                difference = np.subtract(top, other)
                mean, se = _mean_se(difference)
                entry[f"top_minus_{label}"], entry[f"top_minus_{label}_se"] = mean, se
                entry[f"top_minus_{label}_in_se"] = mean / se if se and se > 0 else float("nan")
            out.append(entry)
    return out


def linear_datamodeling_score(data: _Data, n_train: int, per_test_scores: dict, *, n_subsets: int = 50,
                              fraction: float = 0.5, seed: int = 0, train_options: dict, scheduler="synchronous",
                              workers: int = 1, progress: bool = False) -> dict:
    """LDS of every method over ``n_subsets`` random subsets of ``fraction`` of the training points, each
    retrained once from the initialisation of ``seed``: ``{method: {"lds": mean, "se": SE over test points}}``."""
    rng = np.random.default_rng([seed, 7919])
    masks = np.zeros((n_subsets, n_train), dtype=bool)
    for m in range(n_subsets):
        masks[m, rng.choice(n_train, size=int(round(fraction * n_train)), replace=False)] = True
    jobs = [dict(train_options, key=f"lds-{m}", keep=np.flatnonzero(masks[m]), seed=seed, data=data.path)
            for m in range(n_subsets)]
    results = _run_jobs(jobs, scheduler, workers, progress)
    actual = -np.stack([results[f"lds-{m}"]["losses"] for m in range(n_subsets)]).astype(np.float64)
    out = {}
    for name, scores in per_test_scores.items():
        values = lds(scores, masks, actual)
        finite = values[np.isfinite(values)]
        mean, se = _mean_se(finite)
        out[name] = {"lds": mean, "se": se, "n_test": int(len(finite))}
    return out


def query_split(y_test, query_fraction, *, seed: int = 0, task: str = "classification"):
    """``(query, held_out)`` row indices of the test split: all rows for both when ``query_fraction`` is None,
    else a seeded split (stratified for classes where every class has two points) with ``query_fraction`` of
    the rows in the query set."""
    n = len(y_test)
    every = np.arange(n)
    if query_fraction is None:
        return every, every
    if not 0.0 < float(query_fraction) < 1.0:
        raise ValueError(f"query_fraction must be in (0, 1) or None; got {query_fraction!r}")
    n_query = int(round(float(query_fraction) * n))
    if n_query < 1 or n - n_query < 2:
        raise ValueError(f"query_fraction={query_fraction} of {n} test points leaves {n_query} query and "
                         f"{n - n_query} held-out points; each side needs some (held-out: at least 2)")
    from sklearn.model_selection import train_test_split

    labels = np.asarray(y_test)
    stratify = None
    if task == "classification":
        _, counts = np.unique(labels, return_counts=True)
        if counts.min() >= 2 and n_query >= len(counts) and n - n_query >= len(counts):
            stratify = labels
    query, held_out = train_test_split(every, train_size=n_query, random_state=seed, stratify=stratify)
    return np.sort(query), np.sort(held_out)


# --------------------------------------------------------------------------- everything
@dataclass
class ValidationResult:
    """What :func:`validate` measured (every number JSON-serialisable: :meth:`to_dict`, :meth:`save`)."""

    setting: dict
    removal_rows: list = field(default_factory=list)
    removal: list = field(default_factory=list)
    lds: dict = field(default_factory=dict)
    mislabel: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    agreement: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path) -> Path:
        from .._io import json_default

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, default=json_default))
        return path

    @classmethod
    def load(cls, path) -> "ValidationResult":
        return cls(**json.loads(Path(path).read_text()))

    def table(self) -> str:
        """A plain-text summary: per method, the 10 % removal effects, LDS and AUC."""
        lines = [f"{'method':<14}{'top-bottom (SE)':>18}{'top-random (SE)':>18}{'LDS':>14}{'AUC':>8}"]
        for method in sorted({r["method"] for r in self.removal} | set(self.lds) | set(self.mislabel)):
            row = next((r for r in self.removal if r["method"] == method and abs(r["fraction"] - 0.1) < 1e-9), None)
            effect = (f"{row['top_minus_bottom_in_se']:>18.1f}{row['top_minus_random_in_se']:>18.1f}" if row
                      else f"{'':>18}{'':>18}")
            l_value = self.lds.get(method, {}).get("lds", float("nan"))
            a_value = self.mislabel.get(method, {}).get("auc", float("nan"))
            lines.append(f"{method:<14}{effect}{l_value:>14.3f}{a_value:>8.3f}")
        return "\n".join(lines)


def _flip_labels(y, fraction, seed):
    y = np.asarray(y)
    classes = np.unique(y)
    rng = np.random.default_rng([seed, 104729])
    flipped = np.zeros(len(y), dtype=bool)
    flipped[rng.choice(len(y), size=int(round(fraction * len(y))), replace=False)] = True
    noisy = y.copy()
    for i in np.flatnonzero(flipped):
        others = classes[classes != y[i]]
        noisy[i] = others[rng.integers(len(others))]
    return noisy, flipped


def validate(dataset, *, widths=(256,), activation="relu", optimizer="adam", lr=1e-3, epochs=50, batch_size=128,
             checkpoints=10, methods: dict | None = None, fractions=(0.05, 0.1, 0.2), seeds=(0, 1, 2, 3, 4),
             n_subsets=50, flip=0.1, protocols=PROTOCOLS, removal_methods=None, rank="magnitude",
             agreement_seeds=(), query_fraction=None,
             seed=0, scheduler="synchronous", workers=1, progress=False) -> ValidationResult:
    """Train once, score the training points by every method, and run the three counterfactual protocols.

    Parameters
    ----------
    dataset : dm.Dataset
        Its training split is attributed. Without ``query_fraction`` its test split is both the query set
        (per-test scores, averaged over the test points to rank points for removal) and where the retrained
        models and the LDS are evaluated (the set-up of the attribution literature).
    widths, activation, optimizer, lr, epochs, batch_size : the network and its training (``dm.train``).
    checkpoints : int
        Checkpoints of the scored run (log-spaced, ``dm.train``).
    methods : dict name → :func:`~dualmap.attribution.point_scores` options, default :data:`DEFAULT_METHODS`
    fractions, seeds : remove-and-retrain's fractions and retraining seeds (same initialisation per seed).
    n_subsets : LDS subsets (half of the training points each).
    flip : fraction of labels flipped for mislabel detection.
    protocols : which of "removal", "lds", "mislabel" to run.
    removal_methods : names of ``methods`` to remove and retrain by (default: all but "random", which is always
        run as its own random sets); LDS and mislabel detection take every method, as they cost no extra runs
        per method.
    rank : {"magnitude", "signed"}, default="magnitude"
        How remove-and-retrain ranks the points: the magnitude of the per-test score averaged over the query
        points, ``mean_j |s(j, i)|`` (top = the points that bear most on the test predictions, either way;
        bottom = the least), or the signed score averaged (top = the points that help the query points most,
        bottom = those that most raise their loss). Magnitude is the default because it is the ranking that
        holds on held-out test points: the signed average mostly cancels, differs between two halves of the
        test points, and its bottom holds strongly scored points whose removal hurts the held-out points
        (docs/findings/attribution.md, "Held-out query points").
    agreement_seeds : seeds of further runs of the same optimiser whose scores are compared with ``seed``'s
        (Spearman, top-50 overlap of the test-averaged and of the self-scores).
    query_fraction : float in (0, 1), optional
        Split the test split (seeded by ``seed``, stratified for classes) into a *query* set of this share,
        whose averaged scores choose the points removed, and a held-out *evaluation* set, on which the
        retrained models' losses and the LDS are measured: nothing is judged on the points that chose it.
        ``setting["query_indices"]`` and ``setting["eval_indices"]`` record the split (rows of the test split).
    scheduler, workers : the retraining backend (module docstring).

    Returns
    -------
    ValidationResult
    """
    from ..train import train
    from .scores import point_scores

    methods = dict(DEFAULT_METHODS if methods is None else methods)
    if rank not in RANKS:
        raise ValueError(f"rank must be {' or '.join(map(repr, RANKS))}; got {rank!r}")
    unknown = set(protocols) - set(PROTOCOLS)
    if unknown:
        raise ValueError(f"unknown protocols {sorted(unknown)}; available: {', '.join(PROTOCOLS)}")
    if dataset.task != "classification" and "mislabel" in protocols:
        raise ValueError("mislabel detection needs a classification data set")
    X, y, X_test, y_test = dataset.X_train, dataset.y_train, dataset.X_test, dataset.y_test
    query, held_out = query_split(y_test, query_fraction, seed=seed, task=dataset.task)
    train_options = dict(widths=list(widths), activation=activation, optimizer=optimizer, lr=lr, epochs=epochs,
                         batch_size=batch_size, task=dataset.task)
    setting = dict(train_options, dataset=dataset.name, n_train=len(X), n_test=len(X_test), checkpoints=checkpoints,
                   methods=methods, fractions=list(fractions), seeds=list(seeds), n_subsets=n_subsets, flip=flip,
                   seed=seed, protocols=list(protocols), removal_methods=removal_methods, rank=rank,
                   query="test split" if query_fraction is None else "held-out split of the test split",
                   query_fraction=query_fraction, n_query=len(query), n_eval=len(held_out))
    if query_fraction is not None:
        setting.update(query_indices=query.tolist(), eval_indices=held_out.tolist())
    result = ValidationResult(setting=setting)

    def fit(labels, run_seed):
        return train(list(widths), X, labels, activation=activation, optimizer=optimizer, lr=lr, epochs=epochs,
                     batch_size=batch_size, seed=run_seed, checkpoints=checkpoints, progress=False, task=dataset.task)

    run = fit(y, seed)
    per_test = {}
    for name, options in methods.items():
        per_test[name], result.seconds[name] = point_scores(run, X, y, X_test=X_test, y_test=y_test,
                                                            return_seconds=True, seed=seed, **options)
    data = _Data(X, y, X_test[held_out], np.asarray(y_test)[held_out])
    try:
        if "removal" in protocols:
            chosen = [n for n in per_test if n != "random"] if removal_methods is None else list(removal_methods)
            unknown = set(chosen) - set(per_test)
            if unknown:
                raise ValueError(f"removal_methods {sorted(unknown)} are not among the methods {list(per_test)}")
            removal_scores = {name: (np.abs(per_test[name][query]) if rank == "magnitude"
                                     else per_test[name][query]).mean(axis=0)
                              for name in chosen if name != "random"}
            result.removal_rows = remove_and_retrain(data, len(X), removal_scores, fractions=fractions, seeds=seeds,
                                                     train_options=train_options, scheduler=scheduler, workers=workers,
                                                     progress=progress)
            result.removal = summarize_removal(result.removal_rows)
        if "lds" in protocols:
            result.lds = linear_datamodeling_score(data, len(X), {name: scores[held_out] for name, scores in
                                                                  per_test.items()}, n_subsets=n_subsets, seed=seed,
                                                   train_options=train_options, scheduler=scheduler,
                                                   workers=workers, progress=progress)
    finally:
        data.close()
    if "mislabel" in protocols:
        noisy, flipped = _flip_labels(y, flip, seed)
        noisy_run = fit(noisy, seed)
        for name, options in methods.items():
            self_score = point_scores(noisy_run, X, noisy, seed=seed, **options)
            result.mislabel[name] = {"auc": mislabel_auc(self_score, flipped), "n_flipped": int(flipped.sum())}
    if agreement_seeds:
        runs = {seed: run, **{s: fit(y, s) for s in agreement_seeds if s != seed}}
        for name, options in methods.items():
            if name == "random":
                continue
            vectors = {}
            for run_seed, other in runs.items():
                vectors[run_seed] = (point_scores(other, X, y, X_test=X_test, y_test=y_test, seed=seed,
                                                  **options).mean(axis=0),
                                     point_scores(other, X, y, seed=seed, **options))
            pairs = [(a, b) for k, a in enumerate(vectors) for b in list(vectors)[k + 1:]]
            result.agreement[name] = {
                kind: [seed_agreement(vectors[a][index], vectors[b][index]) for a, b in pairs]
                for index, kind in enumerate(("test_averaged", "self"))}
    return result
