"""Whole studies: the `dualmap run` folder, configuration errors, stage commands, resuming, corrupt files."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from dualmap.cli import main
from dualmap.study import ConfigError, Study, StudyError, load_config, run_study, validate_config
from dualmap.study.config import apply_overrides, config_hash, dump_config

#: a study that runs every stage in a few seconds, on image data (so every figure kind is drawn)
SMALL = {"dataset": {"name": "digits", "n_train": 200}, "network": {"widths": [16]},
         "train": {"epochs": 3, "checkpoints": 3, "batch_size": 64},
         "refine": {"inits": ["he", "swim"], "seeds": [0], "epochs": 2, "persistence_checkpoints": 2},
         "report": {"dpi": 40}}

HEADLINE_KEYS = {"metric", "trained_test_score", "sampled_test_score", "converted_test_score", "fidelity", "r2_map",
                 "r2_null_swim", "r2_null_uniform", "gap_closed", "seconds_total"}
#: the faithful-map numbers (through the trained network), present in the headline; None where not computed
THROUGH_KEYS = {"atoms", "r2_through", "r2_through_null_swim", "r2_through_null_uniform", "gap_closed_through"}
#: the attribute stage's numbers (None while it is off, as by default)
ATTRIBUTION_KEYS = {"attribution_top_minus_bottom_se", "attribution_top_minus_random_se", "attribution_lds_map",
                    "attribution_lds_tracin", "attribution_auc_map", "attribution_auc_tracin"}


def _write(path, data) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.fixture(scope="module")
def study_folder(tmp_path_factory):
    """`dualmap run` end to end on the small configuration (run once for the module)."""
    root = tmp_path_factory.mktemp("run")
    config = _write(root / "study.yaml", SMALL)
    assert main(["run", "--config", config, "--out", str(root / "study"), "--quiet"]) == 0
    return root / "study"


@pytest.mark.slow
def test_run_writes_every_file(study_folder):
    expected = {"config.yaml", "metrics.json", "report.html", "sampled_network.npz", "sampled_pairs.npz",
                "train_run.npz", "pairmap.npz", "trajectory.npz", "inverse_comparison.json"}
    assert expected <= {p.name for p in study_folder.iterdir()}
    figures = {p.name for p in (study_folder / "figures").iterdir()}
    assert figures == {"headline.png", "training.png", "map_scores.png", "trajectory_curves.png",
                       "importance_heatmap.png", "top_images.png", "learning_curves.png", "displacement.png",
                       "persistence.png"}
    for name in figures:
        with Image.open(study_folder / "figures" / name) as image:
            image.load()                                   # decodes: a truncated PNG raises here
            assert image.size[0] > 100 and image.size[1] > 100
            assert np.asarray(image.convert("L")).std() > 1   # not a blank canvas


@pytest.mark.slow
def test_metrics_json_holds_every_number(study_folder):
    metrics = json.loads((study_folder / "metrics.json").read_text())
    assert metrics["status"] == "complete"
    assert set(metrics["stages"]) == {"sample", "train", "convert", "track", "refine", "report"}
    assert set(metrics["headline"]) == HEADLINE_KEYS | THROUGH_KEYS | ATTRIBUTION_KEYS
    assert all(metrics["headline"][k] is not None for k in HEADLINE_KEYS)
    assert all(metrics["headline"][k] is None for k in ATTRIBUTION_KEYS)      # attribution is off by default
    assert all(record["seconds"] > 0 for record in metrics["stages"].values())
    convert = metrics["stages"]["convert"]
    assert {"r2_map", "r2_null_swim", "gap_closed", "fidelity", "labels_score_map",
            "layer0_median_activation_correlation"} <= set(convert)
    assert convert["gap_closed"] == pytest.approx((convert["r2_map"] - convert["r2_null_swim"])
                                                  / (1 - convert["r2_null_swim"]))
    assert metrics["stages"]["track"]["n_checkpoints"] == 3
    # refine.plain_beside (default [swim]): the old plain fine-tuning beside the new default
    assert [row["init"] for row in metrics["stages"]["refine"]["table"]] == ["he", "swim", "swim:plain"]
    provenance = metrics["provenance"]
    assert {"dualmap", "numpy", "torch", "scikit-learn", "POT", "faiss-cpu"} <= set(provenance["versions"])
    assert provenance["seed"] == 0 and provenance["device"] == "cpu"
    assert metrics["config_hash"] == config_hash(load_config(study_folder / "config.yaml"))


@pytest.mark.slow
def test_config_yaml_is_the_full_resolved_configuration(study_folder):
    written = yaml.safe_load((study_folder / "config.yaml").read_text())
    assert written == yaml.safe_load(dump_config(validate_config(SMALL)))
    assert written["train"]["optimizer"] == "adam"                                               # defaults filled
    assert written["convert"]["method"] == validate_config({}).convert.method
    assert "method" not in SMALL.get("convert", {})


@pytest.mark.slow
def test_report_html_inlines_every_figure(study_folder):
    page = (study_folder / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(list((study_folder / "figures").glob("*.png")))
    assert "http://" not in page and "https://" not in page and "<script" not in page
    metrics = json.loads((study_folder / "metrics.json").read_text())
    assert f"{metrics['headline']['gap_closed']:.3f}" in page
    assert "Gap closed" in page and "Provenance" in page
    # the refine section: which start wins, in a sentence from the numbers; the fine-tuning of every start
    assert "Which start wins:" in page and "ends at" in page and "auto (calibrate+" in page
    # attribution is off by default: one line that says how to turn it on
    assert "Does importance matter?" in page and "off by default" in page
    assert "--set attribution.enabled=true" in page and "Verdict:" not in page


@pytest.mark.slow
def test_report_command_rerenders_without_recomputing(study_folder, capsys):
    arrays = {p: p.stat().st_mtime_ns for p in study_folder.glob("*.npz")}
    before = json.loads((study_folder / "metrics.json").read_text())
    (study_folder / "report.html").unlink()
    assert main(["report", str(study_folder), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (study_folder / "report.html").exists()
    assert {p: p.stat().st_mtime_ns for p in study_folder.glob("*.npz")} == arrays
    assert printed["stages"]["convert"] == before["stages"]["convert"]


# ---------------------------------------------------------------------------------------------- configuration
def test_unknown_key_names_the_key_and_the_allowed_ones(tmp_path):
    path = _write(tmp_path / "bad.yaml", {"train": {"learning_rate": 0.1}})
    with pytest.raises(ConfigError, match=r"train\.learning_rate: unknown key; allowed keys here: optimizer, lr"):
        load_config(path)


@pytest.mark.parametrize("section, key, value, message", [
    ("train", "epochs", "ten", r"train\.epochs: Input should be a valid integer"),
    ("train", "lr", -1.0, r"train\.lr: Input should be greater than 0"),
    ("train", "optimizer", "adamw", r"train\.optimizer: Input should be 'adam' or 'sgd'"),
    ("network", "activation", "gelu", r"network\.activation: Input should be 'relu' or 'tanh'"),
    ("network", "widths", [64, 0], r"network\.widths: every hidden width must be ≥ 1"),
    ("dataset", "name", "mnist", r"dataset\.name: unknown data set 'mnist'; allowed: barron, .*digits"),
    ("track", "enabled", "yes", r"track\.enabled: Input should be a valid boolean"),
])
def test_wrong_type_or_impossible_value_names_the_key(tmp_path, section, key, value, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path / "bad.yaml", {section: {key: value}}))


def test_config_errors_reach_the_command_line_as_exit_status_2(tmp_path, capsys):
    path = _write(tmp_path / "bad.yaml", {"network": {"widths": "wide"}})
    assert main(["run", "--config", path, "--out", str(tmp_path / "never")]) == 2
    assert "network.widths: Input should be a valid list" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
    assert main(["run", "--set", "train.epochs", "--out", str(tmp_path / "never")]) == 2
    assert "--set expects KEY=VALUE" in capsys.readouterr().err


def test_invalid_yaml_and_thesis_on_deep_networks_are_refused(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: {epochs: 3\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    with pytest.raises(ConfigError, match="'thesis' maps one hidden ReLU layer only"):
        validate_config({"convert": {"method": "thesis"}, "network": {"widths": [8, 8]}})


def test_overrides_and_hash():
    base = validate_config(SMALL)
    other = apply_overrides(base, {"network.widths": [32], "seed": 3})
    assert other.network.widths == [32] and other.seed == 3 and base.network.widths == [16]
    assert config_hash(base) == config_hash(validate_config(SMALL)) != config_hash(other)
    with pytest.raises(ConfigError, match="seed: Input should be greater than or equal to 0"):
        apply_overrides(base, {"seed": -1})


# ---------------------------------------------------------------------------------------------- stages, resume
FAST = {"dataset": {"name": "iris"}, "network": {"widths": [8]}, "train": {"epochs": 2, "checkpoints": 2},
        "track": {"enabled": False}, "refine": {"enabled": False}, "report": {"figures": False}}


@pytest.mark.slow
def test_stage_commands_read_and_write_one_folder(tmp_path, capsys):
    out = str(tmp_path / "s")
    config = _write(tmp_path / "fast.yaml", FAST)
    assert main(["convert", "--config", config, "--out", out]) == 2
    assert "stage 'convert' needs train first (run 'dualmap train" in capsys.readouterr().err
    for stage in ("sample", "train", "convert"):
        assert main([stage, "--out", out, "--quiet"]) == 0          # the folder's config.yaml is reused
    metrics = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert set(metrics["stages"]) == {"sample", "train", "convert"} and metrics["status"] == "partial"
    assert main(["report", out, "--quiet"]) == 0
    metrics = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert metrics["status"] == "complete"
    assert (tmp_path / "s" / "report.html").exists()     # asked for explicitly: drawn although figures are off


def test_failed_stage_keeps_the_finished_ones_and_a_rerun_resumes(tmp_path, monkeypatch):
    config = validate_config(dict(FAST, report={"figures": False}, track={"enabled": True}))
    out = tmp_path / "s"

    def crash(self):
        raise RuntimeError("simulated crash in track")

    monkeypatch.setattr(Study, "_stage_track", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_study(config, out, progress=False)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["stages"]) == {"sample", "train", "convert"} and metrics["status"] == "partial"
    trained = (out / "train_run.npz").stat().st_mtime_ns
    monkeypatch.undo()
    metrics = run_study(config, out, progress=False)
    assert metrics["status"] == "complete" and "track" in metrics["stages"]
    assert (out / "train_run.npz").stat().st_mtime_ns == trained     # not recomputed


def test_a_folder_of_another_configuration_is_refused(tmp_path):
    out = tmp_path / "s"
    run_study(validate_config(FAST), out, progress=False, stages=["sample"])
    with pytest.raises(StudyError, match="holds a study with another configuration"):
        run_study(validate_config(dict(FAST, seed=1)), out, progress=False)


def test_same_seed_same_study(tmp_path):
    config = validate_config(dict(FAST, track={"enabled": True}))
    first = run_study(config, tmp_path / "a", progress=False)
    second = run_study(config, tmp_path / "b", progress=False)
    drop = ("seconds", "map_seconds", "map_seconds_total")
    for stage in ("sample", "train", "convert", "track"):
        a = {k: v for k, v in first["stages"][stage].items() if k not in drop}
        b = {k: v for k, v in second["stages"][stage].items() if k not in drop}
        assert a == b, stage
    pairs_a = np.load(tmp_path / "a" / "pairmap.npz")
    pairs_b = np.load(tmp_path / "b" / "pairmap.npz")
    assert all(np.array_equal(pairs_a[k], pairs_b[k]) for k in pairs_a.files if k.startswith("pairs"))


# ---------------------------------------------------------------------------------------------- corrupt files
def test_truncated_array_file_is_a_clear_error_and_nothing_else_is_overwritten(tmp_path, capsys):
    out = tmp_path / "s"
    run_study(validate_config(FAST), out, progress=False)
    path = out / "train_run.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    others = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != "train_run.npz"}
    assert main(["convert", "--out", str(out), "--redo", "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "train_run.npz is not a readable dualmap file (truncated or corrupt)" in error
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != "train_run.npz"} == others


def test_corrupt_metrics_json_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "s"
    run_study(validate_config(FAST), out, progress=False, stages=["sample"])
    (out / "metrics.json").write_text('{"status": "partial", "stages": {"sam')
    assert main(["report", str(out)]) == 2
    assert "metrics.json is corrupt or truncated" in capsys.readouterr().err
    assert (out / "metrics.json").read_text() == '{"status": "partial", "stages": {"sam'


@pytest.mark.slow
def test_atomic_files_get_ordinary_permissions(study_folder):
    umask = os.umask(0)
    os.umask(umask)
    for name in ("metrics.json", "config.yaml", "train_run.npz"):
        assert (study_folder / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_datasets_command_lists_names_with_size_dimension_and_task(capsys):
    assert main(["datasets", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert (rows["digits"]["points"], rows["digits"]["dim"], rows["digits"]["task"]) == (
        1797, 64, "classification (10 classes)")
    assert rows["diabetes"]["task"] == "regression" and rows["wine"]["dim"] == 13
    import dualmap as dm

    for name in ("wine", "diabetes", "iris"):                  # the table matches what actually loads
        ds = dm.load_dataset(name)
        assert rows[name]["points"] == ds.n_train + len(ds.X_test) and rows[name]["dim"] == ds.n_features
    assert main(["datasets"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("digits"))
    assert line.split()[:3] == ["digits", "1797", "64"] and "classification" in line


@pytest.mark.slow
def test_two_dimensional_data_gets_pair_segments_and_an_inline_animation(tmp_path):
    config = validate_config({"dataset": {"name": "log2d"}, "network": {"widths": [8]},
                              "train": {"epochs": 2, "checkpoints": 3}, "refine": {"enabled": False},
                              "report": {"dpi": 40}})
    run_study(config, tmp_path / "s", progress=False)
    figures = {p.name for p in (tmp_path / "s" / "figures").iterdir()}
    assert {"pairs_2d.png", "pairs_2d.gif"} <= figures and "top_images.png" not in figures
    with Image.open(tmp_path / "s" / "figures" / "pairs_2d.gif") as gif:
        assert gif.n_frames == 3
    page = (tmp_path / "s" / "report.html").read_text()
    assert page.count('src="data:image/gif;base64,') == 1


def test_exponent_floats_without_a_dot_are_numbers(tmp_path):
    path = tmp_path / "lr.yaml"
    path.write_text("train: {lr: 3e-4, weight_decay: 1E-5}\n")
    config = load_config(path)
    assert config.train.lr == 3e-4 and config.train.weight_decay == 1e-5


def test_set_on_an_existing_folder_starts_from_its_configuration(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["sample", "--config", _write(tmp_path / "fast.yaml", FAST), "--out", str(out), "--quiet"]) == 0
    # the folder's study differs from the defaults; a --set that changes the study is refused by hash,
    # while re-stating a value it already has is not
    assert main(["sample", "--out", str(out), "--set", "network.widths=[8]", "--quiet"]) == 0
    assert main(["sample", "--out", str(out), "--set", "train.lr=1e-2", "--quiet"]) == 2
    assert "holds a study with another configuration" in capsys.readouterr().err


def test_redoing_a_stage_marks_the_stages_that_used_it_out_of_date(tmp_path):
    config = validate_config(dict(FAST, track={"enabled": True}))
    out = tmp_path / "s"
    run_study(config, out, progress=False)
    study = Study.open(out, progress=False)
    study.run(["train"], redo=True)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["stages"]) == {"sample", "train"} and metrics["status"] == "partial"
    assert not (out / "trajectory.npz").exists()          # a stale trajectory is not resumed
    metrics = run_study(config, out, progress=False)       # the next run recomputes exactly those
    assert metrics["status"] == "complete" and {"convert", "track", "report"} <= set(metrics["stages"])


# ---------------------------------------------------------------------------------------------- trust what is on disk
TRACKED = dict(FAST, track={"enabled": True})


def test_an_edited_config_yaml_is_refused_naming_the_keys_and_redo_recomputes(tmp_path, capsys):
    out = tmp_path / "s"
    run_study(validate_config(TRACKED), out, progress=False)
    text = (out / "config.yaml").read_text()
    assert "epochs: 2" in text
    (out / "config.yaml").write_text(text.replace("epochs: 2", "epochs: 7", 1))
    for argv in (["run", "--out", str(out), "--quiet"], ["report", str(out), "--quiet"]):
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert "config.yaml was edited after the study ran" in error
        assert "train.epochs: 2 in metrics.json, 7 in config.yaml" in error and "--redo" in error
    assert main(["run", "--out", str(out), "--quiet", "--redo"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "complete" and metrics["config"]["train"]["epochs"] == 7
    assert metrics["config_hash"] == config_hash(load_config(out / "config.yaml"))
    assert len(np.load(out / "train_run.npz")["history_epoch"]) == 7


@pytest.mark.parametrize("damage, name, rerun", [
    ("truncate", "pairmap.npz", ["convert", "report"]),
    ("random", "train_run.npz", ["train", "convert", "track", "report"]),
    ("delete", "trajectory.npz", ["track", "report"]),
    ("swap", "pairmap.npz", ["convert", "report"]),            # a valid PairMap, but not the one convert wrote
    ("kind", "sampled_network.npz", ["sample", "report"]),     # another kind of archive under the name
])
def test_resume_verifies_every_finished_stage_and_reruns_a_bad_one_and_what_used_it(tmp_path, capsys, damage, name,
                                                                                     rerun):
    out = tmp_path / "s"
    run_study(validate_config(TRACKED), out, progress=False)
    path = out / name
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "random":
        path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))
    elif damage == "delete":
        path.unlink()
    elif damage == "swap":
        path.write_bytes((out / "sampled_pairs.npz").read_bytes())
    else:
        path.write_bytes((out / "train_run.npz").read_bytes())
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.npz") if p.name != name}
    assert main(["run", "--out", str(out)]) == 0
    error = capsys.readouterr().err
    if damage == "truncate":                                # said even with --quiet
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        assert main(["run", "--out", str(out), "--quiet"]) == 0
        assert f"{name} is not a readable dualmap file" in capsys.readouterr().err
    assert f"{name} " in error and f"stage {rerun[0]} is recomputed" in error
    for stage in rerun:
        assert f"{stage}: already done" not in error and f"] {stage} …" in error
    for stage in {"sample", "train", "convert", "track"} - set(rerun):
        assert f"{stage}: already done, kept (files verified)" in error
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "complete"
    study = Study.open(out, progress=False)
    assert study.verify() == {}                          # what is on disk now is what metrics.json records
    untouched = {"sample": ["sampled_network.npz", "sampled_pairs.npz"], "train": ["train_run.npz"],
                 "convert": ["pairmap.npz"], "track": ["trajectory.npz"]}
    for stage, files in untouched.items():
        for file in files:
            if stage not in rerun and file in before:
                assert (out / file).stat().st_mtime_ns == before[file], file


@pytest.mark.slow
def test_a_deleted_trajectory_is_recomputed_and_drawn_again(tmp_path, capsys):
    out = tmp_path / "s"
    run_study(validate_config(dict(SMALL, refine={"enabled": False})), out, progress=False)
    (out / "trajectory.npz").unlink()
    (out / "figures" / "trajectory_curves.png").unlink()
    metrics = run_study(validate_config(dict(SMALL, refine={"enabled": False})), out, progress=False)
    assert metrics["status"] == "complete" and "track" in metrics["stages"]
    assert (out / "figures" / "trajectory_curves.png").exists()
    assert "figures/trajectory_curves.png" in metrics["stages"]["report"]["figures"]


def test_out_refuses_foreign_content_a_file_and_a_sweep_folder(tmp_path, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "metrics.json").write_text('{"mine": 1}')
    assert main(["run", "--config", _write(tmp_path / "f.yaml", FAST), "--out", str(foreign), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "is not empty and was not written by dualmap as a study (it holds metrics.json)" in error
    assert (foreign / "metrics.json").read_text() == '{"mine": 1}' and len(list(foreign.iterdir())) == 1

    from dualmap.study.sweep import run_sweep

    sweep = tmp_path / "sweep"
    run_sweep({"base": FAST, "grid": {"seed": [0]}}, sweep, scheduler="synchronous", progress=False)
    assert main(["run", "--config", _write(tmp_path / "f.yaml", FAST), "--out", str(sweep), "--quiet"]) == 2
    assert "holds a dualmap sweep (1 grid(s)), not a study" in capsys.readouterr().err
    study = tmp_path / "study"
    run_study(validate_config(FAST), study, progress=False, stages=["sample"])
    assert main(["sweep", _write(tmp_path / "g.yaml", {"grid": {"seed": [0]}}), "--out", str(study)]) == 2
    assert "holds a dualmap study" in capsys.readouterr().err
    marker = json.loads((study / ".dualmap.json").read_text())
    assert marker["kind"] == "study" and marker["config_hash"] == config_hash(validate_config(FAST))


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


def test_file_system_problems_are_one_line_errors(tmp_path, capsys, monkeypatch):
    config = _write(tmp_path / "fast.yaml", FAST)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert main(["run", "--config", config, "--out", str(a_file), "--quiet"]) == 2
    assert "is a file, not a folder" in _one_error_line(capsys)
    assert main(["run", "--config", str(tmp_path), "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "is a folder, not a YAML configuration file" in _one_error_line(capsys)

    study = tmp_path / "study"
    run_study(validate_config(FAST), study, progress=False)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path).startswith(str(tmp_path)) and
                        mode & os.W_OK else real_access(path, mode))       # read-only, also for root
    assert main(["report", str(study), "--quiet"]) == 2
    assert "is read-only (permission denied)" in _one_error_line(capsys)
    assert main(["run", "--config", config, "--out", str(tmp_path / "new"), "--quiet"]) == 2
    assert "is read-only (permission denied)" in _one_error_line(capsys)
    monkeypatch.undo()

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(study / "metrics.json"))

    monkeypatch.setattr(Study, "run", denied)                              # any OSError deeper down
    assert main(["report", str(study), "--quiet"]) == 2
    assert _one_error_line(capsys) == f"dualmap report: error: Permission denied: {study / 'metrics.json'}"
    monkeypatch.undo()

    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)
    grid = _write(tmp_path / "grid.yaml", {"base": FAST, "grid": {"seed": [0]}})
    assert main(["sweep", grid, "--out", str(tmp_path / "sw"), "--scheduler", "tcp://127.0.0.1:1", "--quiet"]) == 2
    assert "needs dask.distributed, which is not installed" in _one_error_line(capsys)


# ---------------------------------------------------------------------------------------------- input never ignored
def test_dataset_problems_fail_before_any_folder_is_created(tmp_path, capsys):
    cases = [(["--dataset", "digits", "--set", "dataset.options.dim=3"],
              "dataset.options: Value error, options ['dim'] do not apply to 'digits'; it takes no options"),
             (["--dataset", "wine", "--set", "dataset.n_train=5000"],
              "n_train=5000 is larger than the training split of 'wine' (133 points"),
             (["--dataset", "digits", "--set", "dataset.n_train=5"],
              "n_train=5 is below the number of classes of 'digits' (10)")]
    for argv, message in cases:
        assert main(["run", *argv, "--out", str(tmp_path / "never"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert message.replace("Value error, ", "") in err, err
        assert "train_size" not in err and not (tmp_path / "never").exists()
    assert main(["run", "--dataset", "barron", "--set", "dataset.options.dimension=3", "--print-config"]) == 2
    assert "allowed: dim, n_samples" in capsys.readouterr().err


def test_duplicate_yaml_keys_are_an_error(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("train:\n  epochs: 3\n  lr: 0.01\n  epochs: 100\n")
    with pytest.raises(ConfigError, match=r"found the key 'epochs' twice \(first on line 2\)"):
        load_config(path)
    from dualmap.study.sweep import expand_grid

    grid = tmp_path / "grid.yaml"
    grid.write_text("grid:\n  seed: [0, 1]\n  seed: [2]\n")
    with pytest.raises(ConfigError, match="found the key 'seed' twice"):
        expand_grid(grid)


def test_a_bad_section_lists_the_allowed_ones(capsys):
    assert main(["run", "--set", "trian.epochs=3", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert "'trian' is not a configuration section; allowed sections here: dataset, network, sample, train" in err


def test_a_diverging_training_run_is_a_warning():
    from dualmap.study.pipeline import training_warnings

    assert training_warnings([2.0, 1.0, 0.5], np.log(10)) == []
    (warning,) = training_warnings([2.0, 1e6, 1e12], np.log(10), lr=0.5)
    assert warning.startswith("training diverged: the final training loss 1e+12 is") and "train.lr (now 0.5)" in warning
    (warning,) = training_warnings([0.01, 0.001, 0.05], 1.0)
    assert warning.startswith("training blew up") and "epoch 2" in warning
    assert training_warnings([1.0, float("nan")], 1.0)[0] == "training diverged: the final training loss is nan"


def test_a_diverging_study_says_so_in_metrics_and_on_stderr(tmp_path, capsys):
    config = validate_config(dict(FAST, train={"epochs": 3, "checkpoints": 2, "lr": 100.0, "optimizer": "adam"}))
    metrics = run_study(config, tmp_path / "s", progress=False, stages=["train"])
    record = metrics["stages"]["train"]
    assert np.isfinite(record["train_loss"]) and record["train_loss"] > 100      # finite, and far off
    (warning,) = record["warnings"]
    assert warning.startswith("training diverged: the final training loss") and "lower train.lr (now 100)" in warning
    assert "warning: training diverged" in capsys.readouterr().err                 # even with progress off


def test_figures_are_written_atomically(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from dualmap.report._common import plt, save_figures

    fig = plt.figure()
    fig.gca().plot([0, 1], [0, 1])
    (path,) = save_figures({"line": fig}, tmp_path, dpi=30)
    good = path.read_bytes()

    def broken_savefig(self, handle, **kwargs):
        handle.write(b"\x89PNG half an image")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    fig = plt.figure()
    with pytest.raises(RuntimeError, match="disk full"):
        save_figures({"line": fig}, tmp_path, dpi=30)
    assert path.read_bytes() == good and sorted(p.name for p in tmp_path.iterdir()) == ["line.png"]


# ---------------------------------------------------------------------------------------------- the report reads itself
@pytest.mark.slow
def test_report_has_the_look_box_an_inline_explanation_and_a_working_relative_docs_link(study_folder):
    import re

    page = (study_folder / "report.html").read_text()
    assert page.index("What to look at") < page.index("Headline: the networks as models")
    assert "How to read this page" in page and "gap closed" in page
    assert "explained in <code>docs/reading-the-report.md</code>" in page     # outside a checkout: named, no link
    from types import SimpleNamespace

    from dualmap.study.report import _docs_link

    root = Path(__file__).resolve().parents[1]
    inside = root / "dualmap-runs" / "digits-0123abcd"                       # the default --out, in the checkout
    (href,) = re.findall(r'<a href="([^"]+)">docs/reading-the-report.md</a>', _docs_link(SimpleNamespace(out=inside)))
    assert href == "../../docs/reading-the-report.md"
    assert (inside / href).resolve() == root / "docs" / "reading-the-report.md"
    assert "trained readout kept" not in page
    assert "displacement (layer 1 / readout)" in page and "pairs kept (layer 1)" in page


@pytest.mark.slow
def test_look_at_flags_what_is_out_of_the_ordinary(study_folder):
    from dualmap.study.report import look_at

    study = Study.open(study_folder, progress=False)
    stages = study.metrics["stages"]
    stages["convert"].update(gap_closed_through=-0.49, r2_through=0.80, r2_through_null_swim=0.87)
    stages["train"]["test_score"], stages["sample"]["test_score"] = 0.5, 0.9
    stages["train"]["warnings"] = ["training diverged: the final training loss 1e+12 is 4e+11× that of a constant"]
    stages["refine"]["table"].append({"init": "random", "displacement": [0.0, 2e-11, 0.0], "final_test_loss": 5.4})
    del stages["track"]
    notes = look_at(study)
    text = "\n".join(notes)
    assert "The forward map is no better than its null model (gap closed -0.49) through the trained readout" in text
    assert "The gradient-trained network (test accuracy 0.500) is below the SWIM network" in text
    assert "The 'random' start never moved (displacement 0 / 2e-11 / 0)" in text
    assert "Stage track did not run or failed" in text and "training diverged" in text
    assert len(notes) == 5
    untouched = "\n".join(look_at(Study.open(study_folder, progress=False)))
    assert "did not run" not in untouched and "never moved" not in untouched and "diverged" not in untouched
    assert "no better than its null" not in untouched
    # a folder written before the rebuilt network existed: the refit numbers are judged instead
    for key in [k for k in stages["convert"] if k.startswith(("r2_through", "gap_closed_through"))]:
        del stages["convert"][key]
    stages["convert"].update(gap_closed=-0.2, r2_map=0.80, r2_null_swim=0.83)
    assert "(gap closed -0.20) with the readout refit" in "\n".join(look_at(study))


def test_headline_table_and_figure_share_one_order():
    from dualmap.report.study_figures import MAP_BARS, MODEL_BARS
    from dualmap.study.report import MAP_ROWS, MODEL_ROWS

    assert [key for key, _ in MODEL_ROWS] == [key for key, _, _ in MODEL_BARS]
    assert [key for key, _, _ in MAP_ROWS] == [key for key, _, _ in MAP_BARS]
    assert "r2_keep" not in {key for key, _, _ in MAP_ROWS}


@pytest.mark.slow
def test_top_images_draw_raw_pixels_on_one_grey_scale_and_curves_read_well(study_folder):
    import dualmap as dm
    from dualmap.report import plot_top_images, plot_trajectory_curves

    trajectory = dm.Trajectory.load(study_folder / "trajectory.npz")
    raw = dm.load_dataset("digits", n_train=200, standardize=False).X_train
    fig = plot_top_images(trajectory, images=raw, value_range=(0, 16), n_images=4)
    shown = [ax.images[0] for ax in fig.axes if ax.images]
    assert {image.get_clim() for image in shown} == {(0, 16)}          # one grey scale for every image
    top = np.argsort(-trajectory.importance[0], kind="stable")[:4]
    assert np.array_equal(shown[0].get_array(), raw[top[0]].reshape(8, 8))   # the raw pixels, not z-scores
    curves = plot_trajectory_curves(trajectory)
    visible = [ax for ax in curves.axes if ax.get_visible()]
    assert len({round(ax.get_position().y0, 2) for ax in visible}) == 2      # two rows
    assert visible[0].get_ylim() == (0, 1.02) and visible[3].get_ylim()[0] == 0.0
    assert min(ax.title.get_fontsize() for ax in visible) >= 11


def test_a_folder_that_cannot_be_locked_is_used_with_a_note(tmp_path, monkeypatch, capsys):
    import errno
    import fcntl

    from dualmap.study.folder import hold_lock

    def no_locks(handle, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with hold_lock(tmp_path, "test") as path:
        assert path == tmp_path / ".lock"
    assert "cannot be locked (No locks available)" in capsys.readouterr().err


def test_an_estimate_is_printed_before_the_long_stages(tmp_path, capsys):
    config = validate_config(dict(FAST, track={"enabled": True}, refine={"inits": ["he", "swim"], "seeds": [0],
                                                                         "epochs": 2, "persistence_checkpoints": 0}))
    run_study(config, tmp_path / "s", progress=True)
    err = capsys.readouterr().err
    import re

    assert re.search(r"\] track … \(estimate: about \d+ s for \d+ checkpoints\)", err), err
    assert re.search(r"\] refine … \(estimate: about \d+ s for 3 trainings of 2 epochs \(3 inits × 1 seed\)\)",
                     err), err
    assert "train … (estimate" not in err           # short stages get none
