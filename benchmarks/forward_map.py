"""Forward-map benchmark: faithfulness through the trained network (issue 11), quality against refit null
models (issue 3), the thesis setting, and scale.

    python benchmarks/forward_map.py --section through   # r2_through vs k with both nulls; digits, Fashion 10k

    python benchmarks/forward_map.py --section quality   # digits + Fashion-MNIST 10k, 1-2 layers, ReLU/tanh
    python benchmarks/forward_map.py --section thesis    # log2d, the 2023 thesis's own setting
    python benchmarks/forward_map.py --section scale     # time against N and width; 60k 784-512-512-10
    python benchmarks/forward_map.py --section all

Every result goes to ``benchmarks/results/forward_map_<section>.json`` and a markdown table to stdout.
Quality numbers use the teacher readout (refit to the trained network's outputs) on test data.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import dualmap as dm
from dualmap.maps.forward import DEFAULT_METHOD
from dualmap.metrics import evaluate_map

RESULTS = Path(__file__).parent / "results"
METHODS = ("thesis", "geometric", "function", "assignment", "joint")


def environment() -> dict:
    import torch

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu,
            "cores": torch.get_num_threads(), "gpu": "none", "python": platform.python_version(),
            "torch": torch.__version__, "dualmap": dm.__version__, "commit": commit}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- through (issue 11)
#: (data set, n_train, hidden widths, activation, epochs, atoms values, scaling); "unit" = pixels in [0, 1]
THROUGH_SETTINGS = (
    ("digits", None, (256,), "relu", 100, (1, 2, 4, 8), "standard"),
    ("digits", None, (256,), "tanh", 100, (1, 2, 4, 8), "standard"),
    ("digits", None, (256,), "relu", 100, (1, 4), "unit"),
    ("digits", None, (256, 256), "relu", 100, (1, 4), "standard"),
    ("digits", None, (256, 256), "tanh", 100, (1, 4), "standard"),
    ("fashion_mnist", 10_000, (512,), "relu", 30, (1, 4), "standard"),
    ("fashion_mnist", 10_000, (512,), "tanh", 30, (1, 4), "standard"),
    ("fashion_mnist", 10_000, (512,), "relu", 30, (1, 4), "unit"),
    ("fashion_mnist", 10_000, (512, 512), "relu", 30, (4,), "standard"),
    ("fashion_mnist", 10_000, (512, 512), "tanh", 30, (4,), "standard"),
)


def _unit_scaled(ds):
    """The same split with pixels in [0, 1] (digits: /16; Fashion-MNIST: /255), not standardised."""
    raw = dm.load_dataset(ds.name, n_train=ds.n_train if ds.name == "fashion_mnist" else None, standardize=False)
    top = 16.0 if ds.name == "digits" else 255.0
    return raw.X_train / top, raw.X_test / top, raw


def _row_key(row) -> tuple:
    return row["dataset"], tuple(row["widths"]), row["activation"], row["scaling"], row["seed"], row["atoms"]


def through(seeds, quick=False, out=None, atoms=None, done=()) -> list[dict]:
    """r2_through (test split) of the default map for each k, beside its two nulls, per setting and seed.

    ``atoms`` keeps only these values of k; rows in ``done`` (earlier results, ``--resume``) are kept, not redone."""
    from dualmap.metrics import r2_through, through_nulls

    settings = THROUGH_SETTINGS[:2] if quick else THROUGH_SETTINGS
    rows = list(done)
    finished = {_row_key(row) for row in rows}
    for seed, (name, n_train, widths, activation, epochs, atom_values, scaling) in (
            (seed, setting) for seed in seeds for setting in settings):   # every setting once before the next seed
        atom_values = [k for k in atom_values if (atoms is None or k in atoms)
                       and (name, tuple(widths), activation, scaling, seed, k) not in finished]
        if not atom_values:
            continue
        ds = dm.load_dataset(name, n_train=n_train)
        X_train, X_test, y_train = ds.X_train, ds.X_test, ds.y_train
        if scaling == "unit":
            X_train, X_test, raw = _unit_scaled(ds)
            y_train = raw.y_train
        run = dm.train(list(widths), X_train, y_train, activation=activation, optimizer="adam", lr=1e-3,
                       epochs=epochs, batch_size=128, seed=seed, checkpoints=2, progress=False)
        for k in atom_values:
            pair_map = dm.to_pairs(run.model, X_train, atoms=k, seed=seed, progress=False)
            nulls = through_nulls(run.model, X_train, atoms=k, seed=seed)
            row = dict(dataset=name, n_train=len(X_train), widths=list(widths), activation=activation,
                       scaling=scaling, epochs=epochs, seed=seed, atoms=k, map_seconds=pair_map.seconds,
                       r2_through=r2_through(pair_map, run.model, X_train, X_test),
                       r2_through_null_swim=r2_through(nulls["swim"], run.model, X_train, X_test),
                       r2_through_null_uniform=r2_through(nulls["uniform"], run.model, X_train, X_test),
                       neuron_r2=[float(np.median(s["neuron_r2"])) for s in pair_map.scores],
                       trained_test_accuracy=float(np.mean(run.model.predict(X_test).argmax(1) ==
                                                           (raw.y_test if scaling == "unit" else ds.y_test))))
            row["gap_closed_through"] = dm.metrics.gap_closed(row["r2_through"], row["r2_through_null_swim"])
            if activation == "tanh" and len(widths) == 1:
                relaxed = dm.to_pairs(run.model, X_train, atoms=k, steepness="free", seed=seed, progress=False)
                row["r2_through_free_steepness"] = r2_through(relaxed, run.model, X_train, X_test)
            rows.append(row)
            log(f"{name} {'-'.join(map(str, widths))} {activation} {scaling} seed={seed} k={k}: "
                f"through={row['r2_through']:.4f} null swim={row['r2_through_null_swim']:.4f} "
                f"uniform={row['r2_through_null_uniform']:.4f} t={pair_map.seconds:.1f}s"
                + (f" free={row['r2_through_free_steepness']:.4f}" if "r2_through_free_steepness" in row else ""))
            if out is not None:    # partial results survive an interrupted run
                out(rows)
    return rows


def through_table(rows) -> str:
    lines = ["| data | net | act | inputs | k | r2_through (test) | null SWIM | null uniform | gap closed through | "
             "free steepness | neuron R² (median, per layer) | map s | seeds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict = {}
    for row in rows:
        key = (row["dataset"], tuple(row["widths"]), row["activation"], row["scaling"], row["atoms"])
        groups.setdefault(key, []).append(row)
    for (name, widths, activation, scaling, k), group in groups.items():
        def med(key):
            values = [r[key] for r in group if key in r]
            return float(np.median(values)) if values else float("nan")
        layers = " / ".join(f"{np.median([r['neuron_r2'][i] for r in group]):.2f}" for i in range(len(widths)))
        free = med("r2_through_free_steepness")
        lines.append(f"| {name} | {'-'.join(map(str, widths))} | {activation} | {scaling} | {k} | "
                     f"**{med('r2_through'):.4f}** | {med('r2_through_null_swim'):.4f} | "
                     f"{med('r2_through_null_uniform'):.4f} | {med('gap_closed_through'):+.3f} | "
                     f"{'' if np.isnan(free) else f'{free:.4f}'} | {layers} | {med('map_seconds'):.1f} | "
                     f"{len(group)} |")
    return "\n".join(lines)


def through_figure(rows, path) -> None:
    """r2_through against k for the map and both nulls, one panel per setting with >= 3 values of k."""
    from dualmap.report.map_figures import through_curve_figure

    panels = {}
    for row in rows:
        title = f"{row['dataset']} {'-'.join(map(str, row['widths']))} {row['activation']} ({row['scaling']})"
        panels.setdefault(title, []).append(row)
    panels = {title: group for title, group in panels.items() if len({r["atoms"] for r in group}) >= 3}
    if panels:
        through_curve_figure(panels, path)


# --------------------------------------------------------------------------- quality
def quality(seeds, quick=False) -> list[dict]:
    settings = []
    datasets = [("digits", None, 256, 100)] + ([] if quick else [("fashion_mnist", 10_000, 512, 30)])
    for name, n_train, width, epochs in datasets:
        for depth in (1, 2):
            for activation in ("relu", "tanh"):
                settings.append((name, n_train, width, epochs, depth, activation))
    rows = []
    for name, n_train, width, epochs, depth, activation in settings:
        ds = dm.load_dataset(name, n_train=n_train)
        for seed in seeds:
            started = time.perf_counter()
            run = dm.train([width] * depth, ds.X_train, ds.y_train, activation=activation, optimizer="adam", lr=1e-3,
                           epochs=epochs, batch_size=128, seed=seed, checkpoints=2, progress=False)
            train_seconds = time.perf_counter() - started
            methods = [m for m in METHODS if not (m == "thesis" and (depth > 1 or activation != "relu"))]
            for method in methods:
                pair_map = dm.to_pairs(run.model, ds.X_train, method=method, seed=seed, progress=False)
                result = evaluate_map(pair_map, run.model, ds.X_train, ds.X_test, labels=ds.y_train,
                                      labels_test=ds.y_test, seed=seed)
                row = dict(dataset=name, n_train=ds.n_train, widths=[width] * depth, activation=activation, seed=seed,
                           method=method, epochs=epochs, train_seconds=train_seconds, **result)
                rows.append(row)
                log(f"{name} {depth}x{width} {activation} seed={seed} {method:10s} gap={result['gap_closed']:+.3f} "
                    f"r2={result['r2_map']:.4f} null={result['r2_null_swim']:.4f} "
                    f"fid={result['fidelity']:.3f} t={result['map_seconds']:.1f}s")
    return rows


def quality_table(rows) -> str:
    lines = ["| data | net | act | method | fidelity | R² map | R² keep | R² null SWIM | R² null uniform | "
             "gap closed | act. corr (per layer) | dir. cos (per layer) | labels acc map / trained | map s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict = {}
    for row in rows:
        key = (row["dataset"], tuple(row["widths"]), row["activation"], row["method"])
        groups.setdefault(key, []).append(row)
    for (name, widths, activation, method), group in groups.items():
        def med(key):
            return float(np.median([r[key] for r in group]))
        layers = len(widths)
        corr = " / ".join(f"{med(f'layer{i}_median_activation_correlation'):.2f}" for i in range(layers))
        cos = " / ".join(f"{med(f'layer{i}_median_direction_cosine'):.2f}" for i in range(layers))
        lines.append(
            f"| {name} | {'-'.join(map(str, widths))} | {activation} | {method} | {med('fidelity'):.3f} | "
            f"{med('r2_map'):.4f} | {med('r2_keep'):.3f} | {med('r2_null_swim'):.4f} | {med('r2_null_uniform'):.4f} | "
            f"**{med('gap_closed'):+.3f}** | {corr} | {cos} | {med('labels_score_map'):.3f} / "
            f"{med('labels_score_trained'):.3f} | {med('map_seconds'):.1f} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- thesis
def thesis(seeds) -> list[dict]:
    """log2d: train on 500 points, convert with 500 others, test on 200 (the 2023 thesis's protocol for its
    pair search, method ``thesis``: docs/maths.md §5.4)."""
    rows = []
    for seed in seeds:
        ds = dm.load_dataset("log2d", n_samples=1600, standardize=False, seed=seed, test_size=0.125)
        X_fit, y_fit = ds.X_train[:500], ds.y_train[:500]
        X_map = ds.X_train[500:1000]
        X_test = ds.X_test[:200]
        run = dm.train([100], X_fit, y_fit, activation="relu", optimizer="adam", lr=1e-3, epochs=150, batch_size=32,
                       seed=seed, checkpoints=2, progress=False)
        trained_r2 = dm.metrics.output_r2(run.model.predict(X_test), ds.y_test[:200])
        for method in METHODS:
            pair_map = dm.to_pairs(run.model, X_map, method=method, seed=seed, progress=False)
            result = evaluate_map(pair_map, run.model, X_map, X_test, task="regression", seed=seed)
            rows.append(dict(seed=seed, method=method, trained_r2_vs_truth=trained_r2, **result))
            log(f"log2d seed={seed} {method:10s} keep={result['r2_keep']:.4f} refit={result['r2_map']:.5f} "
                f"null={result['r2_null_swim']:.5f}")
    return rows


def thesis_table(rows) -> str:
    lines = ["| method | R² keep (trained outer weights, bias shifted) | R² refit (teacher readout) | R² null SWIM | "
             "gap closed | median act. corr | map s |", "|---|---|---|---|---|---|---|"]
    for method in METHODS:
        group = [r for r in rows if r["method"] == method]
        def med(key):
            return float(np.median([r[key] for r in group]))
        lines.append(f"| {method} | {med('r2_keep'):.4f} | {med('r2_map'):.5f} | {med('r2_null_swim'):.5f} | "
                     f"{med('gap_closed'):+.3f} | {med('layer0_median_activation_correlation'):.3f} | "
                     f"{med('map_seconds'):.2f} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- scale
def _time_map_child(args) -> None:
    """Child process: load, build a net, time one map; print JSON (peak RSS measured in this process)."""
    n, widths, method, seed = args.n, [int(w) for w in args.widths.split(",")], args.method, args.seed
    ds = dm.load_dataset("fashion_mnist", n_train=n if n < 60_000 else None)
    run = dm.train(widths, ds.X_train, ds.y_train, epochs=1, checkpoints=2, seed=seed, progress=False)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    dm.to_pairs(run.model, ds.X_train, method=method, atoms=args.atoms, seed=seed, progress=False)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"n": n, "widths": widths, "method": method, "atoms": args.atoms, "seconds": seconds,
                      "peak_rss_mib": peak, "peak_rss_before_map_mib": before}))


def _time_map(n, widths, method, seed=0, atoms=1) -> dict:
    command = [sys.executable, __file__, "--child", "--n", str(n), "--widths", ",".join(map(str, widths)),
               "--method", method, "--seed", str(seed), "--atoms", str(atoms)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def scale(repeats=3, quick=False) -> list[dict]:
    rows = []
    sizes = (1000, 5000, 10_000) if quick else (1000, 5000, 10_000, 30_000, 60_000)
    for n in sizes:
        for method in METHODS:
            widths = [512] if method == "thesis" else [512, 512]
            if method == "thesis" and n > 10_000:
                continue   # O(width · max_candidates · n · d): minutes
            rows.append(_time_map(n, widths, method))
            log(f"scale n={n} {widths} {method}: {rows[-1]['seconds']:.1f}s")
    for width in (128, 256, 512, 1024):
        for method in METHODS:
            widths = [width] if method == "thesis" else [width, width]
            rows.append(_time_map(10_000, widths, method))
            log(f"scale n=10000 {widths} {method}: {rows[-1]['seconds']:.1f}s")
    rows.extend(scale_headline(repeats))
    return rows


def scale_headline(repeats=3) -> list[dict]:
    """60k × 784, 784-512-512-10: the default map at k = 1 (``repeats`` times) and k = 4 (once)."""
    rows = [_time_map(60_000, [512, 512], DEFAULT_METHOD, seed=s) for s in range(repeats)]
    rows.append(_time_map(60_000, [512, 512], DEFAULT_METHOD, atoms=4))
    for row in rows:
        row["headline"] = True
        log(f"headline 60k 784-512-512-10 default k={row['atoms']}: {row['seconds']:.1f}s, "
            f"{row['peak_rss_mib']:.0f} MiB")
    return rows


def scale_table(rows) -> str:
    lines = ["| N | widths | method | seconds | peak RSS (MiB) |", "|---|---|---|---|---|"]
    for row in rows:
        tag = (f" k={row.get('atoms', 1)}" if row.get("atoms", 1) != 1 else "") + \
            (" (headline)" if row.get("headline") else "")
        lines.append(f"| {row['n']} | {'-'.join(map(str, row['widths']))} | {row['method']}{tag} | "
                     f"{row['seconds']:.1f} | {row['peak_rss_mib']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=["through", "quality", "thesis", "scale", "headline", "all"],
                        default="all", help="headline: only the 60k scale row (k = 1 and 4)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    parser.add_argument("--quick", action="store_true", help="digits only / fewer sizes")
    parser.add_argument("--atoms-only", default=None, help="through: comma-separated k values to run (default all)")
    parser.add_argument("--resume", action="store_true",
                        help="through: keep the rows of benchmarks/results/forward_map_through.json, run the rest")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=10_000, help=argparse.SUPPRESS)
    parser.add_argument("--widths", default="512,512", help=argparse.SUPPRESS)
    parser.add_argument("--method", default=DEFAULT_METHOD, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--atoms", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _time_map_child(args)
        return
    seeds = [int(s) for s in args.seeds.split(",")]
    RESULTS.mkdir(parents=True, exist_ok=True)
    sections = ["through", "quality", "thesis", "scale"] if args.section == "all" else [args.section]
    earlier = {}
    if args.resume and (RESULTS / "forward_map_through.json").exists():
        earlier = json.loads((RESULTS / "forward_map_through.json").read_text())
    for section in sections:
        def save(rows, section=section):
            payload = {"command": " ".join(["python", "benchmarks/forward_map.py", *sys.argv[1:]]),
                       "environment": environment(), "rows": rows}
            if args.resume and earlier.get("command"):     # the runs whose rows were kept
                payload["earlier"] = [*earlier.get("earlier", []), {k: earlier[k] for k in ("command", "environment")}]
            (RESULTS / f"forward_map_{section}.json").write_text(json.dumps(payload, indent=1, default=float))

        if section == "through":
            done = earlier.get("rows", [])
            atoms = None if args.atoms_only is None else {int(k) for k in args.atoms_only.split(",")}
            rows = through(seeds, quick=args.quick, out=save, atoms=atoms, done=done)
            table = through_table(rows)
            through_figure(rows, RESULTS / "forward_map_through.png")
        elif section == "headline":
            rows = scale_headline()
            table = scale_table(rows)
        elif section == "quality":
            rows = quality(seeds, quick=args.quick)
            table = quality_table(rows)
        elif section == "thesis":
            rows = thesis(seeds)
            table = thesis_table(rows)
        else:
            rows = scale(quick=args.quick)
            table = scale_table(rows)
        save(rows)
        print(f"\n### {section}\n\n{table}\n", flush=True)


if __name__ == "__main__":
    main()
