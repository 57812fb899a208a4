"""The ``dualmap`` command line: whole studies, their stages one by one, reports, and sweeps.

``dualmap run`` is the main job: sample a SWIM network, train the same architecture, map the trained
network (and every checkpoint) back to pairs of data points, compare initialisations, and write a folder
with the numbers, the arrays, the figures and a self-contained ``report.html``. The stage commands
(``sample``, ``train``, ``convert``, ``track``, ``refine``, ``report``) read and write the same folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

__all__ = ["main"]

_EPILOG = """examples:
  dualmap run                                   # the default study on scikit-learn's digits
  dualmap run --dataset wine --out studies/wine --set network.widths=[64,64] --set train.epochs=100
  dualmap run --config study.yaml --json        # numbers for other programs
  dualmap train --out studies/wine --redo       # one stage again
  dualmap report studies/wine                   # re-render figures and report.html, nothing recomputed
  dualmap sweep grid.yaml --workers 2           # a grid of studies on a Dask LocalCluster
  dualmap sweep grid.yaml --scheduler tcp://10.0.0.5:8786

configuration: a YAML file with the sections seed, device, dataset, network, sample, train, convert, track,
refine, attribution, report (docs/reading-the-report.md lists every key); anything left out takes its default, and
'dualmap run --print-config' shows the resolved configuration."""

#: ``--full-comparison``: every initialisation, three seeds (the default study compares fewer, to stay quick)
_FULL_INITS = ("he", "xavier", "swim", "uniform", "random")

_STAGE_HELP = {
    "sample": "sample a SWIM network (readout by ridge regression) and score it",
    "train": "train the same architecture by gradient descent, with checkpoints",
    "convert": "map the trained network to pairs of data points; converted network and null models",
    "track": "map every checkpoint of the training run (the trajectory)",
    "refine": "the inverse map: sampled vs standard initialisations under the same training",
    "attribute": "does importance matter? remove-and-retrain, LDS and mislabel detection of the map's scores "
                 "beside TracIn (needs attribution.enabled: true; off by default, it retrains the network ~130 times)",
}


def _add_study_options(parser: argparse.ArgumentParser, *, out_default: bool) -> None:
    parser.add_argument("--config", type=Path, help="YAML study configuration (defaults for anything left out)")
    parser.add_argument("--dataset", help="data set name (see 'dualmap datasets'); overrides the configuration")
    parser.add_argument("--seed", type=int, help="global seed; overrides the configuration")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one configuration key, e.g. --set network.widths=[64,64] (YAML value)")
    parser.add_argument("--out", type=Path, help="study folder" + (" (default: dualmap-runs/<dataset>-<config hash>)"
                                                                    if out_default else ""))
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars or stage lines (the result is still printed)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON on stdout")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dualmap",
                                     description="dualmap: maps between the parameter space of neural networks and "
                                     "their input space — whole studies, their stages one by one, reports, and sweeps.",
                                     epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a whole study and write its folder and report.html",
                              description="Run every stage (sample, train, convert, track, refine, attribute when "
                                          "attribution.enabled, report) into "
                                          "one folder. Re-running the same configuration into the same folder "
                                          "resumes after the stages already finished.")
    _add_study_options(run, out_default=True)
    run.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    run.add_argument("--redo", action="store_true", help="recompute every stage (also after editing the folder's "
                                                           "config.yaml)")
    run.add_argument("--full-comparison", action="store_true",
                     help="the full inverse comparison: inits " + ", ".join(_FULL_INITS) + " × seeds 0, 1, 2 "
                          "(the default compares he, swim, random and swim:plain with one seed)")

    for stage, text in _STAGE_HELP.items():
        command = commands.add_parser(stage, help=text, description=text.capitalize() + ". Reads and writes the "
                                      "study folder given by --out (created with the configuration if new).")
        _add_study_options(command, out_default=False)
        command.add_argument("--redo", action="store_true", help="recompute the stage even if it finished")

    report = commands.add_parser("report", help="re-render the figures and report.html of a study folder",
                                 description="Draw every figure and write report.html from the files of a study "
                                             "folder; nothing is recomputed.")
    report.add_argument("folder", type=Path, help="a study folder")
    report.add_argument("--quiet", action="store_true")
    report.add_argument("--json", action="store_true", help="print the metrics as JSON on stdout")

    datasets = commands.add_parser("datasets", help="list the data sets that load offline")
    datasets.add_argument("--json", action="store_true", help="print them as JSON")

    sweep = commands.add_parser("sweep", help="run a grid of studies, locally or on a Dask cluster",
                                description="Expand a grid file (base configuration + dotted keys → lists of "
                                            "values) and run every study, skipping finished ones; aggregates "
                                            "sweep.csv, sweep.parquet and summary figures.")
    sweep.add_argument("grid", type=Path, help="grid YAML file")
    sweep.add_argument("--out", type=Path, help="sweep folder (default: the grid file's name without .yaml)")
    sweep.add_argument("--scheduler", help="address of a running Dask scheduler (default: a LocalCluster)")
    sweep.add_argument("--workers", type=int, default=2, help="workers of the LocalCluster (default: 2)")
    sweep.add_argument("--merge", action="store_true", help="add this grid's runs to a sweep folder that holds "
                                                            "another grid (the tables then cover both)")
    sweep.add_argument("--quiet", action="store_true")
    sweep.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    return parser


def _parse_override(text: str) -> tuple[str, object]:
    import yaml

    from .study import ConfigError
    from .study.config import parse_yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. network.widths=[64,64]); got {text!r}")
    try:
        return key.strip(), parse_yaml(value)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: the value is not valid YAML: {exc}") from None


def _config_from_args(args):
    from .study.config import apply_overrides, load_config, validate_config

    folder_config = getattr(args, "out", None) and args.out / "config.yaml"
    if args.config:
        config = load_config(args.config)
    elif folder_config and folder_config.exists():      # changes to an existing study start from its own config
        config = load_config(folder_config)
    else:
        config = validate_config({})
    overrides = dict(_parse_override(item) for item in args.overrides)
    if args.dataset:
        overrides["dataset.name"] = args.dataset
    if args.seed is not None:
        overrides["seed"] = args.seed
    if getattr(args, "full_comparison", False):
        overrides.update({"refine.inits": list(_FULL_INITS), "refine.seeds": [0, 1, 2], "refine.enabled": True})
    return apply_overrides(config, overrides) if overrides else config


def _study_for(args, *, out_default: bool):
    from .study import Study
    from .study.config import config_hash

    redo = getattr(args, "redo", False)
    given = (args.config or args.dataset or args.overrides or args.seed is not None
             or getattr(args, "full_comparison", False))
    if args.out is not None and (args.out / "config.yaml").exists() and not given:
        return Study.open(args.out, progress=not args.quiet, redo=redo)
    config = _config_from_args(args)
    out = args.out
    if out is None:
        if not out_default:
            raise ValueError(f"dualmap {args.command} needs --out DIR (a study folder)")
        out = Path("dualmap-runs") / f"{config.dataset.name}-{config_hash(config)[:8]}"
    return Study.create(config, out, progress=not args.quiet, redo=redo)


def _print_headline(study) -> None:
    headline = study.metrics["headline"]
    metric = headline["metric"]
    rows = [("trained", headline["trained_test_score"]), ("SWIM sampled", headline["sampled_test_score"]),
            ("converted (labels readout)", headline["converted_test_score"])]
    for name, value in rows:
        if value is not None:
            print(f"  test {metric:8s} {name:28s} {value:.4f}")
    for key in ("r2_through", "r2_through_null_swim", "gap_closed_through", "r2_map", "r2_null_swim", "gap_closed",
                "fidelity"):
        if headline.get(key) is not None:
            print(f"  {key:37s} {headline[key]:.4f}")
    print(f"  {'time (s)':37s} {headline['seconds_total']:.1f}")


def _run_command(args) -> int:
    from .study import STAGES

    if args.command == "run" and args.print_config:
        from .study.config import dump_config

        print(dump_config(_config_from_args(args)), end="")
        return 0
    if args.command == "report":
        from .study import Study

        study = Study.open(args.folder, progress=not args.quiet)
        study.run(["report"], redo=True)
        # asked for explicitly: draw the figures even where the study (a sweep run) didn't
        if not study.config.report.figures:
            from .study.report import write_report

            write_report(study)
    else:
        study = _study_for(args, out_default=args.command == "run")
        stages = STAGES if args.command == "run" else [args.command]
        study.run(stages, redo=getattr(args, "redo", False))
    if args.json:
        print(json.dumps(study.metrics, indent=1))
    else:
        print(f"study folder: {study.out}" + (f"  (report: {study.out / 'report.html'})"
                                             if (study.out / "report.html").exists() else ""))
        _print_headline(study)
    return 0


def _sweep_command(args) -> int:
    from .study.sweep import run_sweep

    out = args.out or args.grid.with_suffix("")
    result = run_sweep(args.grid, out, scheduler=args.scheduler, workers=args.workers, progress=not args.quiet,
                       merge=args.merge)
    summary = {"out": str(out), "backend": result.backend, "finished": result.finished, "skipped": result.skipped,
               "failed": result.failed, "csv": str(result.csv),
               "parquet": str(result.parquet) if result.parquet else None}
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"sweep {out}: {result.finished} finished, {result.skipped} already done, {result.failed} failed "
              f"({result.backend}); table: {result.csv}")
    return 1 if result.failed else 0


def _one_line(exc: BaseException) -> str:
    """The message on one line (multi-line configuration errors keep their lines, indented)."""
    return str(exc) if isinstance(exc, (ValueError,)) and "\n  " in str(exc) else " ".join(str(exc).split())


def _datasets_command(args) -> int:
    from .data import dataset_info

    rows = dataset_info()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'name':14s} {'points':>7s} {'dim':>5s}  {'task':28s} notes")
    for row in rows:
        note = row["note"] + ("" if row["available"] else "  [not installed: apt-get install dataset-fashion-mnist]")
        print(f"{row['name']:14s} {row['points']:7d} {row['dim']:5d}  {row['task']:28s} {note}")
    return 0


def _limited_threads():
    """No more BLAS/OpenMP threads than the cores this process may use (see dualmap._threads)."""
    from ._threads import limit_threads

    return limit_threads()


def main(argv=None) -> int:
    """Entry point of the ``dualmap`` command; returns the exit status (0 ok, 1 failed runs, 2 bad input)."""
    args = _build_parser().parse_args(argv)
    if args.command == "datasets":
        return _datasets_command(args)
    # The command writes figures to files and never shows one: matplotlib's Agg backend, chosen through the
    # environment so that nothing imports matplotlib before it is needed (and sweep workers inherit it). A
    # backend the user set explicitly wins; report/_common.py no longer forces one on import.
    os.environ.setdefault("MPLBACKEND", "Agg")
    from ._io import CorruptFileError
    from .study import ConfigError, StudyError
    from .study.folder import FolderError

    try:
        with _limited_threads():
            return _sweep_command(args) if args.command == "sweep" else _run_command(args)
    except (ConfigError, StudyError, FolderError, CorruptFileError, FileNotFoundError, ValueError, TypeError,
            ImportError) as exc:
        print(f"dualmap {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:              # permission denied, a file where a folder should be, a full disk, ...
        where = f": {exc.filename}" if exc.filename else ""
        print(f"dualmap {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dualmap {args.command}: interrupted; finished stages are kept and a re-run resumes after them",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
