"""The command line: help, JSON output, regression studies, and errors that name the problem."""

import contextlib
import io
import json
from types import SimpleNamespace

import pytest
import yaml

from dualmap.cli import main
from dualmap.metrics import gap_closed
from dualmap.study import validate_config

REGRESSION = ["--dataset", "diabetes", "--set", "network.widths=[16]", "--set", "train.epochs=3",
              "--set", "train.checkpoints=3", "--set", "refine.enabled=false", "--set", "report.figures=false"]


@pytest.fixture(scope="module")
def regression_study(tmp_path_factory):
    """The one study the CLI tests share: ``dualmap run --json`` without ``--out`` (so in its default folder),
    run once; its exit code, what it printed and the folder it wrote."""
    root = tmp_path_factory.mktemp("cli")
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout):
        patch.chdir(root)
        code = main(["run", *REGRESSION, "--quiet", "--json"])
    folders = list((root / "dualmap-runs").iterdir()) if (root / "dualmap-runs").is_dir() else []
    return SimpleNamespace(code=code, stdout=stdout.getvalue(), folders=folders)


@pytest.mark.slow
def test_regression_study_prints_json_metrics(regression_study):
    assert regression_study.code == 0
    metrics = json.loads(regression_study.stdout)
    (folder,) = regression_study.folders
    assert metrics == json.loads((folder / "metrics.json").read_text())      # what it printed is what it saved
    headline = metrics["headline"]
    assert headline["metric"] == "r2" and headline["fidelity"] is None
    assert 0.2 < headline["sampled_test_score"] < 1
    # the map beats the nulls drawn with the same widths, and the gaps closed are computed from those numbers
    assert headline["r2_map"] > headline["r2_null_uniform"]
    assert headline["r2_through"] > headline["r2_through_null_swim"]
    assert headline["gap_closed"] == pytest.approx(gap_closed(headline["r2_map"], headline["r2_null_swim"]))
    assert headline["gap_closed_through"] == pytest.approx(gap_closed(headline["r2_through"],
                                                                      headline["r2_through_null_swim"]))
    assert metrics["status"] == "complete" and "refine" not in metrics["stages"]


@pytest.mark.slow
def test_human_output_names_the_folder_and_the_scores(regression_study, capsys):
    (folder,) = regression_study.folders
    assert main(["run", "--out", str(folder), "--quiet"]) == 0        # the finished study: opened, nothing rerun
    out = capsys.readouterr().out
    headline = json.loads((folder / "metrics.json").read_text())["headline"]
    assert f"study folder: {folder}" in out
    assert "test r2       trained" in out and f"{headline['sampled_test_score']:.4f}" in out
    assert "gap_closed" in out and f"{headline['gap_closed']:.4f}" in out


@pytest.mark.slow
def test_default_out_folder_is_named_by_dataset_and_hash(regression_study):
    from dualmap.study.config import config_hash

    (folder,) = regression_study.folders
    config = validate_config(yaml.safe_load((folder / "config.yaml").read_text()))
    assert folder.name == f"diabetes-{config_hash(config)[:8]}"


def test_print_config_is_the_resolved_configuration(capsys):
    assert main(["run", "--print-config", "--dataset", "wine", "--seed", "4"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == validate_config({"dataset": {"name": "wine"}, "seed": 4}).model_dump(mode="json")


def test_unknown_dataset_is_a_clear_error(tmp_path, capsys):
    assert main(["run", "--dataset", "mnist", "--out", str(tmp_path / "x")]) == 2
    assert "dataset.name: unknown data set 'mnist'" in capsys.readouterr().err


def test_stage_without_out_is_a_clear_error(capsys):
    assert main(["train", "--dataset", "iris"]) == 2
    assert "dualmap train needs --out DIR" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "sample", "train", "convert", "track", "refine", "report", "datasets",
                                     "sweep"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: dualmap " + command in capsys.readouterr().out


def test_datasets(capsys):
    assert main(["datasets"]) == 0
    assert "digits" in capsys.readouterr().out.split()


def test_help_imports_no_heavy_library():
    """`dualmap --help` stays under a second because it imports neither torch nor scikit-learn nor matplotlib."""
    import subprocess
    import sys

    code = ("import sys, contextlib, io\nfrom dualmap.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
            "print(','.join(m for m in ('torch', 'sklearn', 'matplotlib', 'scipy', 'pydantic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_the_default_comparison_is_light_and_the_full_one_a_flag_away(capsys):
    assert main(["run", "--print-config"]) == 0
    light = yaml.safe_load(capsys.readouterr().out)["refine"]
    assert light["inits"] == ["he", "swim", "random"] and light["seeds"] == [0]
    assert main(["run", "--print-config", "--full-comparison"]) == 0
    full = yaml.safe_load(capsys.readouterr().out)["refine"]
    assert full["inits"] == ["he", "xavier", "swim", "uniform", "random"] and full["seeds"] == [0, 1, 2]


@pytest.mark.slow
def test_progress_is_plain_lines_when_stderr_is_not_a_terminal(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "dualmap.cli", "run", *REGRESSION, "--set", "track.enabled=false",
                             "--out", str(tmp_path / "s")], capture_output=True, text=True, check=True)
    assert "\r" not in result.stderr
    lines = result.stderr.splitlines()
    assert any(line.startswith("train (adam): started") for line in lines)
    assert any(line.startswith("train (adam): 3/3 epoch") and line.endswith("— done") for line in lines)
    assert "[2/4] train: " in result.stderr


def test_threads_never_outnumber_the_free_cores(monkeypatch):
    from dualmap._threads import choose_threads, limit_threads

    monkeypatch.delenv("DUALMAP_THREADS", raising=False)
    assert choose_threads(cores=2, load=0.1)[0] == 2
    assert choose_threads(cores=2, load=1.2)[0] == 1           # one core busy elsewhere: one thread
    assert choose_threads(cores=2, load=5.0)[0] == 1           # never fewer than one
    assert choose_threads(cores=16, load=3.0)[0] == 13
    monkeypatch.setenv("DUALMAP_THREADS", "3")
    assert choose_threads(cores=2, load=0.0) == (3, "DUALMAP_THREADS")
    monkeypatch.setenv("DUALMAP_THREADS", "1")
    import numpy as np  # noqa: F401  (loads the BLAS pool threadpoolctl limits)
    import torch
    from threadpoolctl import threadpool_info

    before = torch.get_num_threads()
    with limit_threads() as threads:
        assert threads == 1 and torch.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    assert torch.get_num_threads() == before
