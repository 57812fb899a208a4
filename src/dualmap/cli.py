"""The ``dualmap`` command line.

``dualmap run`` is the main job (for now: sample a SWIM classifier on a data set and report its test
accuracy); ``dualmap datasets`` lists the data sets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dualmap", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="sample a SWIM network on a data set and print its test score")
    run.add_argument("--dataset", default="digits", help="data set name (see 'dualmap datasets'; default: digits)")
    run.add_argument("--widths", default="512", help="comma-separated hidden widths (default: 512)")
    run.add_argument("--activation", default="tanh", choices=["tanh", "relu"])
    run.add_argument("--sampler", default="swim", choices=["swim", "uniform", "random"])
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--json", action="store_true", help="print the metrics as JSON")
    run.add_argument("--quiet", action="store_true", help="print nothing but the result")

    commands.add_parser("datasets", help="list the data sets that load offline")
    return parser


def _run(args) -> dict:
    import dualmap as dm

    try:
        widths = tuple(int(w) for w in args.widths.split(","))
    except ValueError:
        raise SystemExit(f"dualmap run: --widths must be comma-separated ints; got {args.widths!r}")
    started = time.perf_counter()
    dataset = dm.load_dataset(args.dataset, seed=args.seed)
    estimator_class = dm.SWIMClassifier if dataset.task == "classification" else dm.SWIMRegressor
    model = estimator_class(layer_widths=widths, activation=args.activation, sampler=args.sampler,
                            random_state=args.seed)
    fit_started = time.perf_counter()
    model.fit(dataset.X_train, dataset.y_train)
    fit_seconds = time.perf_counter() - fit_started
    metric = "accuracy" if dataset.task == "classification" else "r2"
    return {
        "dataset": dataset.name, "n_train": dataset.n_train, "n_test": int(len(dataset.X_test)),
        "layer_widths": list(widths), "activation": args.activation, "sampler": args.sampler, "seed": args.seed,
        f"train_{metric}": float(model.score(dataset.X_train, dataset.y_train)),
        f"test_{metric}": float(model.score(dataset.X_test, dataset.y_test)),
        "alpha": model.alpha_, "fit_seconds": fit_seconds, "total_seconds": time.perf_counter() - started,
    }


def main(argv=None) -> int:
    """Entry point of the ``dualmap`` command."""
    args = _build_parser().parse_args(argv)
    if args.command == "datasets":
        import dualmap as dm

        print("\n".join(dm.list_datasets()))
        return 0
    try:
        result = _run(args)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"dualmap run: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        metric = "accuracy" if "test_accuracy" in result else "r2"
        widths = "-".join(str(w) for w in result["layer_widths"])
        if not args.quiet:
            print(f"SWIM {result['activation']} network ({widths}) on {result['dataset']} "
                  f"({result['n_train']} training points), sampler={result['sampler']}, seed={result['seed']}")
        print(f"test {metric}: {result[f'test_{metric}']:.4f}   train {metric}: {result[f'train_{metric}']:.4f}   "
              f"fit: {result['fit_seconds']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
