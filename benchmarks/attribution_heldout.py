"""Remove-and-retrain judged on held-out test points (issue 12, the study's query split).

    python benchmarks/attribution_heldout.py                 # digits, 1×256 ReLU, Adam, 50 epochs, 5 seeds
    python benchmarks/attribution_heldout.py --paired --dataset fashion_mnist --seeds 10
    python benchmarks/attribution_heldout.py --paired --dataset digits --seeds 10

``--paired``: one scored run, both rankings (signed, magnitude) of map and TracIn-CP from the query half,
every retrained model evaluated on the *whole* test split, so the same runs are judged on the held-out half
and on the query half (the circular set-up) side by side; plus LDS on each half, mislabel AUC, and the
measurements behind "why signed fails" (split-half agreement of the rankings, who the signed bottom is).
Saved after every seed: benchmarks/results/attribution_heldout_<dataset>.json. ``--paired --diagnostics-only``
recomputes the scored run's diagnostics alone (``..._<dataset>_diagnostics.json``); ``--tables`` prints the
findings' tables from the saved files.

`docs/findings/attribution.md` ranks and judges on the same (whole) test split. The study's attribute stage
splits it (``attribution.query_fraction`` = 0.5): the query half ranks, the other half judges. The study's own
run (signed ranking, held-out judging) is ``dualmap run --set attribution.enabled=true``; this script adds the
two conditions that say where the difference comes from:

* ``magnitude_heldout``: rank by the score's magnitude, judge on the held-out half;
* ``signed_query_on_itself``: rank by the query half's signed score and judge on that same half (the
  literature's set-up, with half the query points).

Removal only (map and TracIn-CP), one torch thread, retraining one run after another.
Writes benchmarks/results/attribution_heldout.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

torch.set_num_threads(1)
import dualmap as dm  # noqa: E402
from dualmap._io import json_default  # noqa: E402
from dualmap.attribution import validate  # noqa: E402
from dualmap.attribution.protocols import DEFAULT_METHODS, query_split  # noqa: E402

RESULTS = Path(__file__).parent / "results"
METHODS = {name: DEFAULT_METHODS[name] for name in ("map", "tracin")}
TRAINING = dict(widths=(256,), activation="relu", optimizer="adam", lr=1e-3, epochs=50, batch_size=128,
                checkpoints=10)
REMOVAL = dict(fractions=(0.05, 0.1, 0.2), seeds=(0, 1, 2, 3, 4), protocols=("removal",), seed=0)


def main() -> None:
    ds = dm.load_dataset("digits", seed=0)
    query, _ = query_split(ds.y_test, 0.5, seed=0, task=ds.task)
    on_itself = dm.Dataset(X_train=ds.X_train, y_train=ds.y_train, X_test=ds.X_test[query], y_test=ds.y_test[query],
                           task=ds.task, name="digits (query half)", n_classes=ds.n_classes)
    conditions = {"magnitude_heldout": (ds, dict(rank="magnitude", query_fraction=0.5)),
                  "signed_query_on_itself": (on_itself, dict(rank="signed", query_fraction=None))}
    payload = {"machine": {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(),
                           "cpu": platform.processor() or platform.machine(), "load": os.getloadavg(),
                           "python": sys.version.split()[0], "torch": torch.__version__},
               "conditions": {}}
    for name, (data, options) in conditions.items():
        started = time.perf_counter()
        result = validate(data, methods=METHODS, **TRAINING, **REMOVAL, **options)
        print(f"== {name} ({time.perf_counter() - started:.0f} s)\n{result.table()}", flush=True)
        payload["conditions"][name] = dict(result.to_dict(), wall_seconds=time.perf_counter() - started)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "attribution_heldout.json"
    path.write_text(json.dumps(payload, indent=1, default=json_default))
    print("wrote", path)
    for name, result in payload["conditions"].items():
        for row in result["removal"]:
            print(f"{name:24s} {row['method']:7s} {row['fraction']:.2f}  top−bottom {row['top_minus_bottom']:+.3f} "
                  f"({row['top_minus_bottom_in_se']:+.1f} SE)  top−random {row['top_minus_random']:+.3f} "
                  f"({row['top_minus_random_in_se']:+.1f} SE)")


# --------------------------------------------------------------------------- paired: both rankings, both halves
#: data set → (loader arguments, training settings), as benchmarks/attribution.py
SETTINGS = {
    "digits": ({"name": "digits"}, dict(epochs=50)),
    "fashion_mnist": ({"name": "fashion_mnist", "n_train": 5000}, dict(epochs=10)),
}


def _load(name, n_test=1000):
    import numpy as np

    ds = dm.load_dataset(**SETTINGS[name][0])
    if len(ds.X_test) > n_test:                  # benchmarks/attribution.py's seeded 1000 of the test split
        keep = np.sort(np.random.default_rng(0).choice(len(ds.X_test), size=n_test, replace=False))
        ds.X_test, ds.y_test = ds.X_test[keep], ds.y_test[keep]
    return ds


def _summaries(rows, half):
    """summarize_removal of the rows with the loss on ``half`` (an index array of the test split)."""
    import numpy as np

    from dualmap.attribution.protocols import summarize_removal

    return summarize_removal([dict(r, loss=float(np.asarray(r["losses"])[half].mean())) for r in rows])


def _diagnostics(per_test, run, ds, query, held, fraction=0.1):
    """Why a signed ranking may not carry over to held-out points: the split-half agreement of each ranking,
    and who the signed bottom is (which query points make it negative, of which classes)."""
    import numpy as np
    from scipy.stats import spearmanr

    from dualmap.attribution.protocols import _ranked, _test_losses

    losses, _ = _test_losses(run.model, ds.X_test, ds.y_test, ds.task, run.classes)
    predicted = np.asarray(run.classes)[np.asarray(run.model.predict(ds.X_test)).argmax(axis=1)]
    wrong = predicted != np.asarray(ds.y_test)
    out = {"test_loss_query": float(losses[query].mean()), "test_loss_held": float(losses[held].mean()),
           "errors_query": int(wrong[query].sum()), "errors_held": int(wrong[held].sum()), "methods": {}}
    y_train = np.asarray(ds.y_train)
    for name, S in per_test.items():
        entry = {}
        for rank in ("signed", "magnitude"):
            a = (np.abs(S[query]) if rank == "magnitude" else S[query]).mean(axis=0)
            b = (np.abs(S[held]) if rank == "magnitude" else S[held]).mean(axis=0)
            sides = {}
            for side in ("top", "bottom"):
                ta, tb = set(_ranked(a, fraction, side).tolist()), set(_ranked(b, fraction, side).tolist())
                sides[side] = len(ta & tb) / len(ta)
            entry[rank] = {"spearman_query_vs_held": float(spearmanr(a, b).statistic),
                           "overlap_query_vs_held": sides}
        # the signed bottom by the query half: how concentrated is its negative mass on a few query points?
        a = S[query].mean(axis=0)
        bottom = _ranked(a, fraction, "bottom")
        block = S[query][:, bottom]                                   # (n_query, n_bottom)
        negative = np.clip(-block, 0, None).sum(axis=1)               # per query point, its negative mass
        order = np.argsort(-negative)
        share = np.cumsum(negative[order]) / negative.sum()
        n_q = len(query)
        worst = query[block.argmin(axis=0)]                           # the query point that pulls each one down most
        entry["signed_bottom"] = {
            "n": int(len(bottom)),
            "negative_mass_share_of_top_5pct_query_points": float(share[max(1, int(round(0.05 * n_q))) - 1]),
            "negative_mass_share_of_misclassified_query_points": float(negative[wrong[query]].sum() / negative.sum()),
            "misclassified_share_of_query": float(wrong[query].mean()),
            "most_negative_query_point_misclassified": float(wrong[worst].mean()),
            "label_equals_that_points_predicted_class": float((y_train[bottom] == predicted[worst]).mean()),
            "mean_score_on_held_half": float(S[held][:, bottom].mean()),
            "mean_score_on_query_half": float(block.mean()),
            "held_half_rank_percentile": float(np.mean([(np.argsort(np.argsort(S[held].mean(axis=0)))[i])
                                                        / (S.shape[1] - 1) for i in bottom])),
        }
        entry["signed_top"] = {"mean_score_on_held_half": float(S[held][:, _ranked(a, fraction, "top")].mean()),
                               "mean_score_on_query_half": float(S[query][:, _ranked(a, fraction, "top")].mean())}
        # are the signed ends the strongly scored points? (percentile of the query half's magnitude ranking,
        # share inside its top 20 %, and how much of |s| cancels in the signed mean: |mean s| / mean |s|)
        magnitude = np.abs(S[query]).mean(axis=0)
        percentile = np.argsort(np.argsort(magnitude)) / (len(magnitude) - 1)
        strong = set(_ranked(magnitude, 0.2, "top").tolist())
        cancel = np.abs(a) / np.where(magnitude > 0, magnitude, 1)
        for side in ("top", "bottom"):
            chosen = _ranked(a, fraction, side)
            entry[f"signed_{side}"].update(
                magnitude_percentile=float(percentile[chosen].mean()),
                share_in_magnitude_top20pct=float(np.mean([i in strong for i in chosen])),
                signed_over_magnitude=float(np.median(cancel[chosen])))
        entry["signed_over_magnitude_all_points"] = float(np.median(cancel))
        out["methods"][name] = entry
    return out


def paired(name, seeds, fractions, n_subsets, path, diagnostics_only=False):
    import numpy as np

    from dualmap.attribution import point_scores
    from dualmap.attribution.protocols import _Data, _flip_labels, _mean_se, _ranked, _run_jobs, lds, mislabel_auc
    from dualmap.train import train

    ds = _load(name)
    options = dict(TRAINING, **SETTINGS[name][1])
    train_options = dict(widths=list(options["widths"]), activation=options["activation"],
                         optimizer=options["optimizer"], lr=options["lr"], epochs=options["epochs"],
                         batch_size=options["batch_size"], task=ds.task)
    query, held = query_split(ds.y_test, 0.5, seed=0, task=ds.task)
    payload = {"machine": {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(),
                           "cpu": platform.processor() or platform.machine(), "gpu": False,
                           "load_start": os.getloadavg(), "python": sys.version.split()[0],
                           "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
               "setting": dict(train_options, dataset=name, n_train=len(ds.X_train), n_test=len(ds.X_test),
                               checkpoints=options["checkpoints"], methods=METHODS, fractions=list(fractions),
                               n_subsets=n_subsets, query_fraction=0.5, n_query=len(query), n_eval=len(held),
                               query_indices=query.tolist(), eval_indices=held.tolist()),
               "seconds": {}}

    def save():
        payload["machine"]["load_end"] = os.getloadavg()
        # compact: every removal row holds the per-test losses of the whole test split
        path.write_text(json.dumps(payload, separators=(",", ":"), default=json_default))

    started = time.perf_counter()
    run = train(train_options["widths"], ds.X_train, ds.y_train, activation=options["activation"],
                optimizer=options["optimizer"], lr=options["lr"], epochs=options["epochs"],
                batch_size=options["batch_size"], seed=0, checkpoints=options["checkpoints"], progress=False,
                task=ds.task)
    per_test = {}
    for method, opts in METHODS.items():
        per_test[method], payload["seconds"][method] = point_scores(run, ds.X_train, ds.y_train, X_test=ds.X_test,
                                                                    y_test=ds.y_test, return_seconds=True, seed=0,
                                                                    **opts)
    payload["diagnostics"] = _diagnostics(per_test, run, ds, query, held)
    print(json.dumps(payload["diagnostics"], indent=1), flush=True)
    if diagnostics_only:
        path.write_text(json.dumps({"machine": payload["machine"], "seconds": payload["seconds"],
                                    "diagnostics": payload["diagnostics"]}, indent=1, default=json_default))
        print("wrote", path)
        return
    ranking = {f"{m}:{rank}": (np.abs(S[query]) if rank == "magnitude" else S[query]).mean(axis=0)
               for m, S in per_test.items() for rank in ("signed", "magnitude")}
    data = _Data(ds.X_train, ds.y_train, ds.X_test, ds.y_test)     # every run is evaluated on the whole test split
    n = len(ds.X_train)
    try:
        # LDS: validate's subsets (seed 0), the losses of both halves from the same runs
        rng = np.random.default_rng([0, 7919])
        masks = np.zeros((n_subsets, n), dtype=bool)
        for m in range(n_subsets):
            masks[m, rng.choice(n, size=int(round(0.5 * n)), replace=False)] = True
        jobs = [dict(train_options, key=f"lds-{m}", keep=np.flatnonzero(masks[m]), seed=0, data=data.path)
                for m in range(n_subsets)]
        results = _run_jobs(jobs, "synchronous", 1, True)
        actual = -np.stack([results[f"lds-{m}"]["losses"] for m in range(n_subsets)]).astype(np.float64)
        payload["lds"] = {}
        for method, S in per_test.items():
            for half_name, half in (("held", held), ("query", query)):
                values = lds(S[half], masks, actual[:, half])
                mean, se = _mean_se(values[np.isfinite(values)])
                payload["lds"][f"{method}:{half_name}"] = {"lds": mean, "se": se}
        print("LDS", json.dumps(payload["lds"]), flush=True)
        # mislabel detection (self-scores; the split does not enter)
        noisy, flipped = _flip_labels(ds.y_train, 0.1, 0)
        noisy_run = train(train_options["widths"], ds.X_train, noisy, activation=options["activation"],
                          optimizer=options["optimizer"], lr=options["lr"], epochs=options["epochs"],
                          batch_size=options["batch_size"], seed=0, checkpoints=options["checkpoints"],
                          progress=False, task=ds.task)
        payload["mislabel"] = {method: mislabel_auc(point_scores(noisy_run, ds.X_train, noisy, seed=0, **opts),
                                                    flipped) for method, opts in METHODS.items()}
        print("AUC", payload["mislabel"], flush=True)
        save()
        # remove and retrain, seed by seed (saved after each)
        payload["removal_rows"] = []
        for seed in seeds:
            jobs, meta = [], {}
            meta[f"full-{seed}"] = ("full", "none", 0.0)
            jobs.append(dict(train_options, key=f"full-{seed}", keep=np.arange(n), seed=seed, data=data.path))
            for fraction in fractions:
                rng = np.random.default_rng([seed, int(round(fraction * 1000))])
                drop = _ranked(np.zeros(n), fraction, "random", rng)
                meta[f"random-{fraction}-{seed}"] = ("random", "random", fraction)
                jobs.append(dict(train_options, key=f"random-{fraction}-{seed}", keep=np.setdiff1d(np.arange(n), drop),
                                 seed=seed, data=data.path))
                for label, score in ranking.items():
                    for side in ("top", "bottom"):
                        key = f"{label}-{side}-{fraction}-{seed}"
                        meta[key] = (label, side, fraction)
                        jobs.append(dict(train_options, key=key, seed=seed, data=data.path,
                                         keep=np.setdiff1d(np.arange(n), _ranked(score, fraction, side))))
            results = _run_jobs(jobs, "synchronous", 1, False)
            for key, (label, side, fraction) in meta.items():
                payload["removal_rows"].append({"method": label, "side": side, "fraction": fraction, "seed": seed,
                                                "losses": [float(f"{v:.7g}") for v in results[key]["losses"]],
                                                "metric": results[key]["metric"],
                                                "seconds": results[key]["seconds"]})
            rows = payload["removal_rows"]
            payload["removal"] = {"held": _summaries(rows, held), "query": _summaries(rows, query)}
            payload["seeds_done"] = sorted({r["seed"] for r in rows})
            payload["wall_seconds"] = time.perf_counter() - started
            save()
            print(f"seed {seed} done ({time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.1f})",
                  flush=True)
            for judged in ("held", "query"):
                for row in payload["removal"][judged]:
                    if abs(row["fraction"] - 0.1) < 1e-9:
                        print(f"  judged on {judged:5s} {row['method']:18s} t-b {row['top_minus_bottom']:+.3f} "
                              f"({row['top_minus_bottom_in_se']:+.1f} SE)  t-r {row['top_minus_random']:+.3f} "
                              f"({row['top_minus_random_in_se']:+.1f} SE)", flush=True)
    finally:
        data.close()
    print("wrote", path)


def tables(names=("digits", "fashion_mnist")):
    """Print the markdown tables of docs/findings/attribution.md from the --paired results."""
    import numpy as np

    for name in names:
        path = RESULTS / f"attribution_heldout_{name}.json"
        if not path.exists():
            continue
        d = json.loads(path.read_text())
        load = d["machine"]
        print(f"\n#### {name}: seeds {d['seeds_done']}, {d['wall_seconds']:.0f} s, load {load['load_start'][0]:.1f}"
              f"–{load['load_end'][0]:.1f}")
        print("| judged on | ranking | score | 5 % t−b / t−r (SE) | 10 % top / bottom / random / all | "
              "10 % t−b | 10 % t−r | 20 % t−b / t−r (SE) |\n|---|---|---|---|---|---|---|---|")
        for judged in ("held", "query"):
            rows = {(r["method"], r["fraction"]): r for r in d["removal"][judged]}
            for rank in ("magnitude", "signed"):
                for method in ("map", "tracin"):
                    r5, r10, r20 = (rows[(f"{method}:{rank}", f)] for f in (0.05, 0.1, 0.2))
                    print(f"| {judged} | {rank} | {method} | {r5['top_minus_bottom_in_se']:+.1f} / "
                          f"{r5['top_minus_random_in_se']:+.1f} | {r10['loss_top']:.3f} / {r10['loss_bottom']:.3f} / "
                          f"{r10['loss_random']:.3f} / {r10['loss_full']:.3f} | {r10['top_minus_bottom']:+.3f} "
                          f"({r10['top_minus_bottom_in_se']:+.1f} SE) | {r10['top_minus_random']:+.3f} "
                          f"({r10['top_minus_random_in_se']:+.1f} SE) | {r20['top_minus_bottom_in_se']:+.1f} / "
                          f"{r20['top_minus_random_in_se']:+.1f} |")
        # the map's top removal against TracIn's, paired by seed, judged on the held-out half
        held = np.asarray(d["setting"]["eval_indices"])
        loss = {(r["method"], r["side"], r["fraction"], r["seed"]): float(np.mean(np.asarray(r["losses"])[held]))
                for r in d["removal_rows"]}
        seeds = d["seeds_done"]
        print("\nmap top removed − TracIn top removed, held-out loss, paired by seed (mean, SE units):")
        for rank in ("magnitude", "signed"):
            cells = []
            for f in (0.05, 0.1, 0.2):
                diff = np.array([loss[(f"map:{rank}", "top", f, s)] - loss[(f"tracin:{rank}", "top", f, s)]
                                 for s in seeds])
                se = diff.std(ddof=1) / np.sqrt(len(diff))
                cells.append(f"{f:.0%}: {diff.mean():+.3f} ({diff.mean() / se:+.1f} SE)")
            print(f"  {rank}: " + "; ".join(cells))
        print("LDS:", {k: f"{v['lds']:.3f} ± {v['se']:.3f}" for k, v in d["lds"].items()})
        print("AUC:", {k: round(v, 4) for k, v in d["mislabel"].items()}, "score seconds:",
              {k: round(v, 1) for k, v in d["seconds"].items()})
        for source in (path, RESULTS / f"attribution_heldout_{name}_diagnostics.json"):
            if source.exists():
                diag = json.loads(source.read_text())["diagnostics"]
                print(f"diagnostics ({source.name}):")
                for method, entry in diag["methods"].items():
                    print(f"  {method}: " + json.dumps({k: v for k, v in entry.items()},
                                                       default=lambda x: round(x, 3)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paired", action="store_true")
    parser.add_argument("--dataset", default="digits", choices=sorted(SETTINGS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    parser.add_argument("--subsets", type=int, default=50)
    parser.add_argument("--diagnostics-only", action="store_true",
                        help="with --paired: the scored run and the ranking diagnostics only (no retraining)")
    parser.add_argument("--tables", action="store_true", help="print the findings' tables from the saved JSON")
    args = parser.parse_args()
    if args.tables:
        tables()
    elif args.paired:
        RESULTS.mkdir(exist_ok=True)
        suffix = "_diagnostics" if args.diagnostics_only else ""
        paired(args.dataset, range(args.seeds), args.fractions, args.subsets,
               RESULTS / f"attribution_heldout_{args.dataset}{suffix}.json", diagnostics_only=args.diagnostics_only)
    else:
        main()
