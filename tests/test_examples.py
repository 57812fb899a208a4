"""The scripts in examples/: every one compiles; 01, 02 and 05 run end to end with reduced sizes.

The runs execute the scripts in this process (``runpy``, ``sys.argv`` set to the reduced arguments), so
dualmap and torch are imported once; together they take about 10 s on one thread. 03 and 04 (tracking,
init comparison) are only compiled here: their machinery is tested in test_dynamics.py / test_inverse.py.
"""

import py_compile
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))


def test_examples_exist():
    names = {path.name for path in SCRIPTS}
    assert {"01_sample_swim.py", "02_forward_map.py", "03_track_training.py", "04_inverse_map.py",
            "05_study_api.py"} <= names
    assert (EXAMPLES / "README.md").exists() and (EXAMPLES / "grid.yaml").exists()


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: path.name)
def test_example_compiles_and_is_short(path, tmp_path):
    py_compile.compile(str(path), cfile=str(tmp_path / "compiled.pyc"), doraise=True)
    text = path.read_text()
    assert len(text.splitlines()) < 60, f"{path.name} should stay under 60 lines"
    assert text.lstrip().startswith('"""'), f"{path.name} needs a docstring saying what it shows"


def _run(monkeypatch, name, *args):
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / name), *map(str, args)])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")


def test_01_sample_swim(monkeypatch, capsys):
    _run(monkeypatch, "01_sample_swim.py", "--width", 32, "--activation", "relu")
    out = capsys.readouterr().out
    assert "test accuracy" in out
    assert "median value at x1 +0.000, at x2 +1.000" in out      # ReLU: the kink at x1, 1 at x2


def test_02_forward_map(monkeypatch, capsys):
    _run(monkeypatch, "02_forward_map.py", "--width", 16, "--epochs", 2)
    out = capsys.readouterr().out
    assert "gap closed through, by hand" in out and "atoms=2: r2_through" in out
    assert "fraction of pairs recovered per layer [1.0, 1.0]" in out


@pytest.mark.slow
def test_05_study_api(monkeypatch, capsys, tmp_path):
    _run(monkeypatch, "05_study_api.py", tmp_path / "study", "--no-figures")
    out = capsys.readouterr().out
    assert "status complete" in out
    assert (tmp_path / "study" / "metrics.json").exists()
    assert not (tmp_path / "study" / "report.html").exists()        # figures off: numbers only


def test_grid_expands():
    sweep = pytest.importorskip("dualmap.study.sweep")
    runs, _ = sweep.expand_grid(EXAMPLES / "grid.yaml")
    assert len(runs) == 16
    assert {tuple(run.config.network.widths) for run in runs} == {(16,), (32,)}
    assert all(not run.config.refine.enabled and not run.config.report.figures for run in runs)
