import json

from dualmap.cli import main


def test_run_prints_accuracy(capsys):
    assert main(["run", "--widths", "128", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out


def test_run_json(capsys):
    assert main(["run", "--dataset", "diabetes", "--widths", "64", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dataset"] == "diabetes" and 0.2 < result["test_r2"] < 1


def test_unknown_dataset_is_a_clear_error(capsys):
    assert main(["run", "--dataset", "mnist"]) == 2
    assert "unknown data set 'mnist'" in capsys.readouterr().err


def test_datasets(capsys):
    assert main(["datasets"]) == 0
    assert "digits" in capsys.readouterr().out.split()
