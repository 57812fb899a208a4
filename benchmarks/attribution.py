"""Counterfactual validation of the map's training-point scores, side by side with TracIn (issue 12).

    python benchmarks/attribution.py --section explore    # digits, 10 %: the forms of the map score compared
    python benchmarks/attribution.py --section protocols  # digits, Fashion-MNIST 5k, breast_cancer: all protocols
    python benchmarks/attribution.py --section cost       # 10k training × 1k test points: seconds per method
    python benchmarks/attribution.py --section agreement  # seeds of one optimiser: Spearman, top-50 overlap
    python benchmarks/attribution.py --section figures    # figures from the saved JSON

Every run uses one torch thread; the retraining runs go one after another (``--workers 1``, the machine is
shared) or on a dask LocalCluster (``--workers N``). Results: benchmarks/results/attribution_<section>.json.
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
import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
import dualmap as dm  # noqa: E402
from dualmap._io import json_default  # noqa: E402
from dualmap.attribution import point_scores, validate  # noqa: E402

RESULTS = Path(__file__).parent / "results"

#: every form of the map's score and of TracIn: LDS and mislabel AUC for all (no extra runs), remove-and-retrain
#: for REMOVAL (each costs 2 × fractions × seeds retraining runs)
METHODS = {
    "map": {"method": "map", "checkpoints": 3},                   # the score: neurons, last 3 checkpoints
    "map_last": {"method": "map", "checkpoints": "last"},
    "map_all": {"method": "map", "checkpoints": "all"},
    "map_readout": {"method": "map", "variant": "readout", "checkpoints": 3},
    "map_atoms": {"method": "map", "variant": "atoms", "checkpoints": "last"},
    "tracin": {"method": "tracin", "checkpoints": "all"},         # TracIn-CP over every checkpoint
    "tracin_last": {"method": "tracin", "checkpoints": "last"},
    "tracin_late": {"method": "tracin", "checkpoints": 3},        # the map's checkpoints
    "importance": {"method": "importance"},
    "swim_density": {"method": "swim_density"},
    "random": {"method": "random"},
}
REMOVAL = {"digits": ["map", "tracin", "tracin_last", "importance"],
           "fashion_mnist": ["map", "tracin", "tracin_last"],
           "breast_cancer": ["map", "tracin"]}
#: removal fractions per data set (the machine is shared: Fashion-MNIST and breast_cancer at 10 % only)
FRACTIONS = {"digits": (0.05, 0.1, 0.2), "fashion_mnist": (0.1,), "breast_cancer": (0.1,)}

#: data set → (loader arguments, training settings)
SETTINGS = {
    "digits": ({"name": "digits"}, dict(widths=(256,), epochs=50)),
    "fashion_mnist": ({"name": "fashion_mnist", "n_train": 5000}, dict(widths=(256,), epochs=10)),
    "breast_cancer": ({"name": "breast_cancer"}, dict(widths=(64,), epochs=50, batch_size=32)),
}


def machine() -> dict:
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(),
            "cpu": platform.processor() or platform.machine(), "gpu": False, "load": os.getloadavg(),
            "torch_threads": torch.get_num_threads(), "python": sys.version.split()[0], "torch": torch.__version__}


def load(name, n_test=None):
    options, _ = SETTINGS[name]
    ds = dm.load_dataset(**options)
    if n_test is not None and len(ds.X_test) > n_test:       # a stratified-enough seeded subset of the test split
        keep = np.sort(np.random.default_rng(0).choice(len(ds.X_test), size=n_test, replace=False))
        ds.X_test, ds.y_test = ds.X_test[keep], ds.y_test[keep]
    return ds


def save(section, payload):
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"attribution_{section}.json"
    path.write_text(json.dumps(payload, indent=1, default=json_default))
    print("wrote", path)


def run_validation(name, methods, *, fractions, seeds, n_subsets, protocols, workers, agreement_seeds=(),
                   activation="relu", optimizer="adam", n_test=1000, widths=None, removal_methods=None):
    _, training = SETTINGS[name]
    training = dict(training)
    if widths is not None:
        training["widths"] = widths
    ds = load(name, n_test)
    started = time.perf_counter()
    result = validate(ds, methods=methods, fractions=fractions, seeds=seeds, n_subsets=n_subsets,
                      protocols=protocols, activation=activation, optimizer=optimizer,
                      scheduler="synchronous" if workers == 1 else None, workers=workers, progress=True,
                      agreement_seeds=agreement_seeds, removal_methods=removal_methods, **training)
    print(f"== {name} {activation} {optimizer} {training['widths']} ({time.perf_counter() - started:.0f} s)")
    print(result.table())
    return dict(result.to_dict(), wall_seconds=time.perf_counter() - started)


def _read(name):
    path = RESULTS / f"attribution_{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _saved_run(name, setting):
    """The data, train options and scored run of a saved protocols setting, trained again (same seed)."""
    from dualmap.train import train

    ds = load(name, 1000)
    options = {k: setting[k] for k in ("activation", "optimizer", "lr", "epochs", "batch_size", "task")}
    options["widths"] = list(setting["widths"])
    run = train(options["widths"], ds.X_train, ds.y_train, seed=setting["seed"], checkpoints=setting["checkpoints"],
                progress=False, **{k: v for k, v in options.items() if k != "widths"})
    return ds, options, run


def extend(datasets, *, first_seed, count):
    """More remove-and-retrain seeds for a saved protocols run: the scores are recomputed (same run, same
    seed) and checked by re-running seed 0 of every removal, which must give the saved loss exactly."""
    from dualmap.attribution.protocols import _Data, remove_and_retrain, summarize_removal

    payload = _read("protocols")
    for name in datasets:
        result = payload["runs"][name]
        setting = result["setting"]
        ds, options, run = _saved_run(name, setting)
        methods = sorted({r["method"] for r in result["removal"]})
        scores = {m: point_scores(run, ds.X_train, ds.y_train, X_test=ds.X_test, y_test=ds.y_test, seed=setting["seed"],
                                  **setting["methods"][m]).mean(axis=0) for m in methods}
        data = _Data(ds.X_train, ds.y_train, ds.X_test, ds.y_test)
        try:
            check = remove_and_retrain(data, len(ds.X_train), scores, fractions=setting["fractions"][:1], seeds=(0,),
                                       train_options=options)
            saved = {(r["method"], r["side"], r["fraction"], r["seed"]): r["loss"] for r in result["removal_rows"]}
            for row in check:
                key = (row["method"], row["side"], row["fraction"], row["seed"])
                if abs(saved[key] - row["loss"]) > 1e-9:
                    raise RuntimeError(f"{name} {key}: saved loss {saved[key]} but {row['loss']} now; the scores "
                                       "or the training changed since the saved run (forward map edited?)")
            print(f"{name}: seed 0 reproduced exactly ({len(check)} runs)", flush=True)
            rows = remove_and_retrain(data, len(ds.X_train), scores, fractions=setting["fractions"],
                                      seeds=tuple(range(first_seed, first_seed + count)), train_options=options,
                                      progress=True)
        finally:
            data.close()
        result["removal_rows"] += rows
        result["removal"] = summarize_removal(result["removal_rows"])
        setting["seeds"] = sorted({r["seed"] for r in result["removal_rows"]})
        result.setdefault("extended", []).append(machine())
        save("protocols", payload)


def magnitude(datasets, *, count):
    """Remove-and-retrain ranked by the magnitude of the per-test scores, mean_j |s(j, i)| (how strongly a
    point bears on the test predictions, either way), for the methods of the saved protocols run; the full
    and random conditions are those saved (same seeds, same runs). Saved as attribution_magnitude.json."""
    from dualmap.attribution.protocols import _Data, remove_and_retrain, summarize_removal

    payload, out = _read("protocols"), {"machine": machine(), "runs": {}}
    for name in datasets:
        result = payload["runs"][name]
        setting = result["setting"]
        ds, options, run = _saved_run(name, setting)
        scores = {m: np.abs(point_scores(run, ds.X_train, ds.y_train, X_test=ds.X_test, y_test=ds.y_test,
                                         seed=setting["seed"], **setting["methods"][m])).mean(axis=0)
                  for m in ("map", "tracin")}
        data = _Data(ds.X_train, ds.y_train, ds.X_test, ds.y_test)
        try:
            rows = remove_and_retrain(data, len(ds.X_train), scores, fractions=(0.1,), seeds=tuple(range(count)),
                                      train_options=options, progress=True)
        finally:
            data.close()
        kept = [r for r in rows if r["method"] not in ("full", "random")]
        saved = [r for r in result["removal_rows"] if r["method"] in ("full", "random") and r["seed"] < count]
        for row in rows:                  # the same runs as the saved ones: a check that nothing changed
            if row["method"] in ("full", "random"):
                match = [r for r in saved if (r["method"], r["fraction"], r["seed"]) ==
                         (row["method"], row["fraction"], row["seed"])]
                assert match and abs(match[0]["loss"] - row["loss"]) < 1e-9, (row, match)
        out["runs"][name] = {"removal_rows": rows, "removal": summarize_removal(kept + saved)}
        for r in out["runs"][name]["removal"]:
            print(name, r["method"], f"top-bottom {r['top_minus_bottom']:+.4f} ({r['top_minus_bottom_in_se']:+.1f} SE)",
                  f"top-random {r['top_minus_random']:+.4f} ({r['top_minus_random_in_se']:+.1f} SE)", flush=True)
        save("magnitude", out)


def tables():
    """The markdown tables of docs/findings/attribution.md and BENCHMARKS.md, from the saved results."""
    runs = {}
    for name in ("protocols", "protocols-tabular"):
        payload = _read(name)
        if payload:
            runs.update(payload["runs"])
    for name, result in runs.items():
        print(f"\n### {name} (n_train {result['setting']['n_train']}, n_test {result['setting']['n_test']}, "
              f"{result['setting']['widths']} {result['setting']['activation']} {result['setting']['optimizer']}, "
              f"{result['setting']['epochs']} epochs; {len(result['setting']['seeds'])} seeds; "
              f"{result['wall_seconds']:.0f} s)\n")
        print("| method | fraction | test loss: top removed | bottom removed | random removed | all points | "
              "top − bottom (SE) | top − random (SE) | accuracy top / bottom / random |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in sorted(result["removal"], key=lambda r: (r["method"], r["fraction"])):
            print(f"| {r['method']} | {100 * r['fraction']:.0f} % | {r['loss_top']:.4f} ± {r['loss_top_se']:.4f} | "
                  f"{r['loss_bottom']:.4f} ± {r['loss_bottom_se']:.4f} | {r['loss_random']:.4f} ± "
                  f"{r['loss_random_se']:.4f} | {r['loss_full']:.4f} ± {r['loss_full_se']:.4f} | "
                  f"{r['top_minus_bottom']:+.4f} ({r['top_minus_bottom_in_se']:+.1f}) | "
                  f"{r['top_minus_random']:+.4f} ({r['top_minus_random_in_se']:+.1f}) | "
                  f"{r['metric_top']:.3f} / {r['metric_bottom']:.3f} / {r['metric_random']:.3f} |")
        print("\n| method | LDS (± SE over test points) | mislabel AUC | seconds to score |")
        print("|---|---|---|---|")
        for method in result["lds"] or result["mislabel"]:
            l_value = result["lds"].get(method)
            lds_text = f"{l_value['lds']:.3f} ± {l_value['se']:.3f}" if l_value else "–"
            auc = result["mislabel"].get(method, {}).get("auc")
            print(f"| {method} | {lds_text} | {auc:.4f} | {result['seconds'].get(method, float('nan')):.1f} |")
    agreement = _read("agreement")
    if agreement:
        print("\n| data | method | Spearman, test-averaged score | top-50 overlap | Spearman, self-score | "
              "top-50 overlap |")
        print("|---|---|---|---|---|---|")
        for name, result in agreement["runs"].items():
            for method, kinds in result["agreement"].items():
                cells = []
                for kind in ("test_averaged", "self"):
                    rho = [p["spearman"] for p in kinds[kind]]
                    top = [p["top50_overlap"] for p in kinds[kind]]
                    cells += [f"{np.mean(rho):.2f} ± {np.std(rho):.2f}", f"{np.mean(top):.2f} ± {np.std(top):.2f}"]
                print(f"| {name} | {method} | " + " | ".join(cells) + " |")
    cost = _read("cost")
    if cost:
        print(f"\ncost ({cost['machine']['date']}, load {cost['machine']['load']}):")
        for label, seconds in cost["timings"].items():
            print(f"| {label} | {seconds:.1f} |")
    settings = _read("settings")
    if settings:
        print("\n| setting | method | top − bottom (SE) | top − random (SE) | AUC |")
        print("|---|---|---|---|---|")
        for label, result in settings["runs"].items():
            for r in result["removal"]:
                print(f"| {label} | {r['method']} | "
                      f"{r['top_minus_bottom']:+.4f} ({r['top_minus_bottom_in_se']:+.1f}) | "
                      f"{r['top_minus_random']:+.4f} ({r['top_minus_random_in_se']:+.1f}) | "
                      f"{result['mislabel'][r['method']]['auc']:.4f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--section", required=True,
                        choices=["explore", "protocols", "extend", "magnitude", "cost", "agreement", "settings",
                                 "figures", "tables"])
    parser.add_argument("--datasets", nargs="+", default=list(SETTINGS))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--subsets", type=int, default=50)
    parser.add_argument("--methods", nargs="+", default=None, help="a subset of the methods (default: all)")
    parser.add_argument("--fractions", nargs="+", type=float, default=None,
                        help="removal fractions (default: FRACTIONS of the data set)")
    parser.add_argument("--first-seed", type=int, default=5, help="extend: the first new retraining seed")
    parser.add_argument("--tag", default="", help="suffix of the results file (protocols-<tag>)")
    args = parser.parse_args(argv)
    seeds = tuple(range(args.seeds))

    if args.section == "explore":
        out = {"machine": machine(), "runs": {}}
        for name in args.datasets:
            out["runs"][name] = run_validation(name, METHODS, fractions=(0.1,), seeds=seeds, n_subsets=0,
                                               protocols=("removal", "mislabel"), workers=args.workers)
            save("explore", out)
    elif args.section == "protocols":
        out = {"machine": machine(), "runs": {}}
        methods = {k: v for k, v in METHODS.items() if args.methods is None or k in args.methods}
        for name in args.datasets:
            fractions = FRACTIONS[name] if args.fractions is None else tuple(args.fractions)
            out["runs"][name] = run_validation(name, methods, fractions=fractions, seeds=seeds,
                                               n_subsets=args.subsets, protocols=("removal", "lds", "mislabel"),
                                               workers=args.workers,
                                               removal_methods=[m for m in REMOVAL[name] if m in methods])
            out["machine_end"] = machine()
            save("protocols" + (f"-{args.tag}" if args.tag else ""), out)
    elif args.section == "settings":
        # 2 layers, tanh, SGD on digits: the 10 % removal and mislabel AUC only (cost)
        out = {"machine": machine(), "runs": {}}
        for label, options in {"digits_2x256_relu_adam": dict(widths=(256, 256)),
                               "digits_1x256_tanh_adam": dict(activation="tanh"),
                               "digits_1x256_relu_sgd": dict(optimizer="sgd")}.items():
            methods = {k: METHODS[k] for k in ("map", "tracin", "tracin_last", "random")}
            out["runs"][label] = run_validation("digits", methods, fractions=(0.1,), seeds=seeds, n_subsets=0,
                                                protocols=("removal", "mislabel"), workers=args.workers,
                                                removal_methods=["map", "tracin"], **options)
            save("settings", out)
    elif args.section == "agreement":
        out = {"machine": machine(), "runs": {}}
        for name in args.datasets:
            methods = {k: METHODS[k] for k in ("map", "map_last", "tracin", "tracin_last", "importance")}
            out["runs"][name] = run_validation(name, methods,
                                               fractions=(), seeds=(), n_subsets=0, protocols=(),
                                               workers=1, agreement_seeds=(1, 2))
            save("agreement", out)
    elif args.section == "cost":
        out = {"machine": machine(), "timings": {}}
        ds = dm.load_dataset("fashion_mnist", n_train=10000)
        X, y = ds.X_train, ds.y_train
        Xq, yq = ds.X_test[:1000], ds.y_test[:1000]
        started = time.perf_counter()
        run = dm.train([256], X, y, epochs=3, seed=0, checkpoints=10, progress=False)
        out["train_seconds"] = time.perf_counter() - started
        for label, options in {"map (last 3 checkpoints: the score)": dict(method="map", checkpoints=3),
                               "map (last checkpoint)": dict(method="map"),
                               "tracin factorized (all 10 checkpoints)": dict(method="tracin", checkpoints="all"),
                               "importance": dict(method="importance")}.items():
            _, seconds = point_scores(run, X, y, X_test=Xq, y_test=yq, return_seconds=True, **options)
            out["timings"][label] = seconds
            print(f"{label}: {seconds:.1f} s", flush=True)
            save("cost", dict(out, machine_end=machine()))
        # captum's TracInCP on the full 10k x 1k did not finish in 450 s on the shared machine: time it on subsets,
        # beside the factorized implementation (the same numbers)
        captum = {}
        for n, q in ((1000, 100), (2000, 100)):
            row = {}
            for backend in ("captum", "factorized"):
                _, row[f"{backend}_s"] = point_scores(run, X[:n], y[:n], X_test=Xq[:q], y_test=yq[:q], method="tracin",
                                                      checkpoints="last", backend=backend, return_seconds=True)
            captum[f"{n}x{q}"] = row
            print(n, q, row, flush=True)
        out["captum_tracincp"] = captum
        save("cost", dict(out, machine_end=machine()))
    elif args.section == "magnitude":
        magnitude(args.datasets, count=args.seeds)
    elif args.section == "extend":
        extend(args.datasets, first_seed=args.first_seed, count=args.seeds)
    elif args.section == "tables":
        tables()
    elif args.section == "figures":
        from dualmap.report.attribution_figures import attribution_figures

        runs = {}
        for name in ("protocols", "protocols-tabular"):
            runs.update((_read(name) or {"runs": {}})["runs"])
        for name, result in runs.items():
            paths = attribution_figures(result, Path("docs/findings/figures/attribution") / name)
            print(*paths, sep="\n")


if __name__ == "__main__":
    main()
