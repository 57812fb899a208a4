"""Training-dynamics benchmark (issue 4): tracking speed, and the findings of docs/findings/dynamics.md.

    python benchmarks/dynamics.py --section speed      # 20 checkpoints, 784-256-256-10 Fashion-MNIST, 10k points
    python benchmarks/dynamics.py --section findings   # digits / Fashion 10k / log2d × 1-2 layers × SGD/Adam × seeds
    python benchmarks/dynamics.py --section all

Results go to ``benchmarks/results/dynamics_<section>.json``; the findings also write their figures to
``docs/findings/figures/`` and the trajectories to ``--out`` (default ``benchmarks/out/``, not versioned).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

import dualmap as dm
from dualmap.dynamics import rank_correlation
from dualmap.report import trajectory_figures

sys.path.insert(0, str(Path(__file__).parent))
from forward_map import environment, log  # noqa: E402

RESULTS = Path(__file__).parent / "results"
FIGURES = Path(__file__).parent.parent / "docs" / "findings" / "figures"

#: data set → (n_train, width, epochs); the optimizers' settings
SETTINGS = {"digits": (None, 256, 50), "fashion_mnist": (10_000, 256, 10), "log2d": (None, 64, 100)}
OPTIMIZERS = {"adam": dict(optimizer="adam", lr=1e-3), "sgd": dict(optimizer="sgd", lr=0.05, momentum=0.9)}


def _train(ds, depth, width, epochs, optimizer, seed, checkpoints=20):
    return dm.train([width] * depth, ds.X_train, ds.y_train, activation="relu", epochs=epochs, batch_size=128,
                    checkpoints=checkpoints, seed=seed, X_val=ds.X_test, y_val=ds.y_test, progress=False,
                    **OPTIMIZERS[optimizer])


# --------------------------------------------------------------------------- speed
def speed(repeats=3) -> list[dict]:
    """Track 20 checkpoints of a 784-256-256-10 Adam net on 10k Fashion-MNIST points; time one cold map alone
    (side by side, same process); compare the warm map of the final checkpoint with its cold map."""
    from dualmap.metrics import output_r2

    ds = dm.load_dataset("fashion_mnist", n_train=10_000)
    rows = []
    for seed in range(repeats):
        run = _train(ds, 2, 256, 10, "adam", seed)
        started = time.perf_counter()
        single = dm.to_pairs(run.model, ds.X_train, method=dm.dynamics.TRACK_METHOD, seed=seed, progress=False)
        one = time.perf_counter() - started
        started = time.perf_counter()
        trajectory = dm.track(run, ds.X_train, y=ds.y_train, seed=seed, progress=False)
        total = time.perf_counter() - started
        teacher = run.model.predict(ds.X_test)
        cold_r2 = output_r2(single.to_mlp(ds.X_train, readout="trained").predict(ds.X_test), teacher)
        warm_map = trajectory.previous_map()
        warm_map.teacher_readout = single.teacher_readout      # the same (final) network's readout
        warm_r2 = output_r2(warm_map.to_mlp(ds.X_train, readout="trained").predict(ds.X_test), teacher)
        identical = [float(np.mean(np.all(a == b, axis=1))) for a, b in zip(trajectory.pairs[-1], single.pairs)]
        rows.append(dict(seed=seed, steps=run.steps, one_map_seconds=one, track_seconds=total, ratio=total / one,
                         map_seconds=trajectory.map_seconds.tolist(),
                         final_identical_pairs=identical, final_r2_through_warm=warm_r2,
                         final_r2_through_cold=cold_r2,
                         final_quality_tracked=trajectory.quality[-1].tolist(),
                         single_map_quality=[float(np.median(s["activation_correlation"])) for s in single.scores]))
        log(f"speed seed={seed}: one map {one:.1f}s, track {total:.1f}s, ratio {total / one:.2f}; final pairs "
            f"identical {identical}, r2_through warm {warm_r2:.4f} cold {cold_r2:.4f}")
    return rows


# --------------------------------------------------------------------------- findings
def _settled_step(trajectory, layer=0, threshold=0.05):
    switch = trajectory.switch_rate[:, layer]
    for t in range(len(switch)):
        if np.all(switch[t:] < threshold):
            return int(trajectory.steps[t + 1])
    return None


def _top_overlap(a, b, k=50):
    top_a, top_b = set(np.argsort(-a)[:k]), set(np.argsort(-b)[:k])
    return len(top_a & top_b) / k


def findings(seeds, out: Path) -> dict:
    rows, finals = [], {}
    for name, (n_train, width, epochs) in SETTINGS.items():
        ds = dm.load_dataset(name, n_train=n_train)
        for depth, optimizer, seed in itertools.product((1, 2), OPTIMIZERS, seeds):
            started = time.perf_counter()
            run = _train(ds, depth, width, epochs, optimizer, seed)
            train_seconds = time.perf_counter() - started
            path = out / f"{name}_{depth}x{width}_{optimizer}_seed{seed}.npz"
            trajectory = dm.track(run, ds.X_train, y=ds.y_train, seed=seed, path=path, progress=False)
            importance = trajectory.importance
            summary = trajectory.summary()
            top = trajectory.top_points(10)
            row = dict(dataset=name, depth=depth, width=width, optimizer=optimizer, seed=seed, epochs=epochs,
                       steps=trajectory.steps.tolist(), train_seconds=train_seconds,
                       val_metric=float(run.history["val_metric"][-1]),
                       switch_rate=trajectory.switch_rate.tolist(), quality=trajectory.quality.tolist(),
                       drift=trajectory.drift.tolist(), concentration=trajectory.concentration.tolist(),
                       swim_alignment=trajectory.swim_alignment.tolist(), output_r2=trajectory.output_r2.tolist(),
                       map_seconds=trajectory.map_seconds.tolist(), settled_step=_settled_step(trajectory),
                       top_points=top.tolist(),
                       top_labels=[float(ds.y_train[i]) for i in top], summary=summary)
            if ds.task == "classification":
                final = importance[-1]
                row["top100_class_counts"] = np.bincount(ds.y_train[np.argsort(-final)[:100]].astype(int),
                                                         minlength=int(ds.y_train.max()) + 1).tolist()
            rows.append(row)
            finals[(name, depth, optimizer, seed)] = importance[-1]
            log(f"{name} {depth}x{width} {optimizer} seed={seed}: val={row['val_metric']:.3f} "
                f"settled@{row['settled_step']} conc {row['concentration'][0]:.0f}->{row['concentration'][-1]:.0f} "
                f"align {row['swim_alignment'][0]:+.3f}->{row['swim_alignment'][-1]:+.3f} "
                f"maps {sum(row['map_seconds']):.0f}s")
            if seed == seeds[0]:
                trajectory_figures(trajectory, FIGURES / f"{name}_{depth}x{width}_{optimizer}",
                                   class_names=ds.class_names)
    # how much do the points a network rests on depend on the optimizer, against seed-to-seed noise?
    comparisons = []
    for name, depth in itertools.product(SETTINGS, (1, 2)):
        same, across = [], []
        for a, b in itertools.combinations(seeds, 2):
            for optimizer in OPTIMIZERS:
                x, y = finals[(name, depth, optimizer, a)], finals[(name, depth, optimizer, b)]
                same.append((rank_correlation(x, y), _top_overlap(x, y)))
        for seed in seeds:
            x, y = finals[(name, depth, "adam", seed)], finals[(name, depth, "sgd", seed)]
            across.append((rank_correlation(x, y), _top_overlap(x, y)))
        comparisons.append(dict(dataset=name, depth=depth,
                                same_optimizer_other_seed=dict(spearman=[s for s, _ in same],
                                                               top50=[o for _, o in same]),
                                adam_vs_sgd_same_seed=dict(spearman=[s for s, _ in across],
                                                           top50=[o for _, o in across])))
    return {"rows": rows, "comparisons": comparisons}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=["speed", "findings", "all"], default="all")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--repeats", type=int, default=3, help="speed: runs (seeds 0..repeats-1)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"))
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    command = " ".join(["python", "benchmarks/dynamics.py", *sys.argv[1:]])
    for section in (["speed", "findings"] if args.section == "all" else [args.section]):
        payload = speed(args.repeats) if section == "speed" else findings(seeds, out)
        document = {"command": command, "environment": environment(),
                    **({"rows": payload} if section == "speed" else payload)}
        (RESULTS / f"dynamics_{section}.json").write_text(json.dumps(document, indent=1, default=float))


if __name__ == "__main__":
    main()
