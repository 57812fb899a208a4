"""The study's "Does importance matter?" section (issue 12), the refine section's old fine-tuning beside the new
default and its which-start-wins sentence (issue 13), and the pair prior's bad input."""

import json
import math

import numpy as np
import pytest

import dualmap as dm
from dualmap.study import ConfigError, Study, run_study, validate_config
from dualmap.study.report import ATTRIBUTION_OFF, importance_verdict, start_verdict

#: every stage the attribution report needs, in a few seconds (track off; refine with the old scheme beside)
TINY = {"dataset": {"name": "digits", "n_train": 150}, "network": {"widths": [8]},
        "train": {"epochs": 2, "checkpoints": 3, "batch_size": 64}, "track": {"enabled": False},
        "refine": {"inits": ["he", "swim"], "seeds": [0], "epochs": 1, "persistence_checkpoints": 0},
        "attribution": {"enabled": True, "fractions": [0.1], "seeds": [0, 1], "n_subsets": 4, "checkpoints": 3},
        "report": {"dpi": 30}}


# ---------------------------------------------------------------- configuration
def test_attribution_is_off_by_default_with_small_defaults():
    section = validate_config({}).attribution
    assert section.enabled is False
    assert section.methods == ["map", "tracin"] and section.protocols == ["removal", "lds", "mislabel"]
    assert section.fractions == [0.05, 0.1, 0.2] and len(section.seeds) == 5 and section.n_subsets == 50
    assert 0 < section.query_fraction < 1
    assert section.rank == "magnitude"          # the ranking that holds on held-out points (findings)
    assert validate_config({"attribution": {"rank": "signed"}}).attribution.rank == "signed"
    from dualmap.study.pipeline import attribution_runs

    runs, _ = attribution_runs(section)
    assert runs == 1 + 5 * (1 + 3 * (1 + 2 * 2)) + 50 + 1          # the ~130 trainings the report names
    assert "130" in ATTRIBUTION_OFF


@pytest.mark.parametrize("key, value, message", [
    ("bogus", 1, "attribution.bogus: unknown key; allowed keys here: enabled, methods"),
    ("methods", ["gradient"], "attribution.methods.0"),
    ("methods", ["map", "map"], "attribution.methods: lists a value twice"),
    ("protocols", ["loo"], "attribution.protocols.0"),
    ("fractions", [0.6], "attribution.fractions: fractions must be distinct and in (0, 0.5)"),
    ("seeds", [0], "attribution.seeds"),
    ("seeds", [1, 1], "attribution.seeds: seeds must be distinct"),
    ("n_subsets", 2, "attribution.n_subsets"),
    ("query_fraction", 1.0, "attribution.query_fraction"),
    ("rank", "absolute", "attribution.rank"),
    ("enabled", "yes", "attribution.enabled"),
    ("workers", 0, "attribution.workers"),
])
def test_attribution_section_is_strict(key, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        validate_config({"attribution": {key: value}})


def test_removal_needs_a_score_other_than_random():
    with pytest.raises(ConfigError, match="attribution.*'removal' ranks points by a score other than 'random'"):
        validate_config({"attribution": {"methods": ["random"]}})
    validate_config({"attribution": {"methods": ["random"], "protocols": ["lds"]}})      # fine without removal


def test_refine_inits_take_a_finetune_scheme_and_the_old_one_runs_beside_the_new():
    refine = validate_config({}).refine
    assert refine.plain_beside == ["swim"] and refine.compared() == ["he", "swim", "swim:plain", "random"]
    refine = validate_config({"refine": {"inits": ["he", "swim:plain", "swim", "uniform:rebalance+warmup"],
                                         "plain_beside": ["swim", "uniform"]}}).refine
    assert refine.compared() == ["he", "swim:plain", "swim", "uniform:rebalance+warmup"]   # listed already: once
    assert validate_config({"refine": {"plain_beside": []}}).refine.compared() == ["he", "swim", "random"]
    for inits, message in ((["he", "swim:bogus"], "unknown fine-tuning 'bogus'"),
                           (["he", "he:plain"], "applies to the sampled starts"),
                           (["he", "gauss"], "unknown init 'gauss'"),
                           (["swim:plain"], "must include 'he'")):
        with pytest.raises(ConfigError, match=f"refine.inits: .*{message}"):
            validate_config({"refine": {"inits": inits}})
    with pytest.raises(ConfigError, match="refine.plain_beside"):
        validate_config({"refine": {"plain_beside": ["he"]}})


# ---------------------------------------------------------------- the stage and the report
@pytest.fixture(scope="module")
def attribution_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("attribution") / "study"
    metrics = run_study(validate_config(TINY), out, progress=False)
    return out, metrics


@pytest.mark.slow
def test_a_study_with_attribution_writes_attribution_json_and_the_report_section(attribution_study):
    out, metrics = attribution_study
    assert metrics["status"] == "complete" and "attribute" in metrics["stages"]
    assert metrics["files"]["attribution.json"]["kind"] == "ValidationResult"
    result = json.loads((out / "attribution.json").read_text())
    setting = result["setting"]
    # the query points choose what is removed; the others, which chose nothing, judge
    query, held_out = set(setting["query_indices"]), set(setting["eval_indices"])
    assert query and held_out and not query & held_out and len(query | held_out) == setting["n_test"]
    assert all(entry["n_test"] <= len(held_out) for entry in result["lds"].values())
    assert {r["method"] for r in result["removal"]} == {"map", "tracin"}
    record = metrics["stages"]["attribute"]
    assert record["fraction"] == 0.1 and set(record["methods"]) == {"map", "tracin"}
    headline = metrics["headline"]
    for key in ("attribution_top_minus_bottom_se", "attribution_lds_map", "attribution_lds_tracin",
                "attribution_auc_map", "attribution_auc_tracin"):
        assert headline[key] is not None, key
    assert headline["attribution_lds_map"] == pytest.approx(result["lds"]["map"]["lds"])
    page = (out / "report.html").read_text()
    assert "Does importance matter?" in page and "Verdict:" in page and "Against TracIn" in page
    assert "standard errors" in page and ATTRIBUTION_OFF not in page
    for name in ("attribution_removal.png", "attribution_lds.png", "attribution_mislabel.png"):
        assert (out / "figures" / name).stat().st_size > 1000
    # refine ran the old scheme beside the new one; the report names both and says which start wins
    assert [row["init"] for row in metrics["stages"]["refine"]["table"]] == ["he", "swim", "swim:plain"]
    assert "Which start wins:" in page and "(plain fine-tuning)" in page and "(auto fine-tuning)" in page


@pytest.mark.slow
def test_the_attribute_stage_is_verified_on_resume_and_redone_when_its_file_is_bad(attribution_study, capsys):
    out, _ = attribution_study
    study = Study.open(out, progress=False)
    assert study.verify() == {} and study.done("attribute")
    (out / "attribution.json").write_text('{"setting": {}, "removal": [], "lds": {}, "mislabel": {}, "x": 1}')
    study = Study.open(out, progress=False)
    bad = study.verify()
    assert "attribute" in bad and "changed after its stage wrote it" in bad["attribute"]
    assert not study.done("attribute") and "report" not in study.metrics["stages"]   # the report used it


def test_a_disabled_attribute_stage_says_so(tmp_path, capsys):
    config = validate_config(dict(TINY, attribution={"enabled": False}))
    study = Study.create(config, tmp_path / "s", progress=False)
    study.run(["attribute"])
    assert "attribute: off in this study's configuration (attribution.enabled: false)" in capsys.readouterr().err
    assert "attribute" not in study.metrics["stages"]


def test_a_folder_from_before_the_new_keys_resumes(tmp_path, capsys):
    """A metrics.json written before the attribution section and refine.plain_beside existed is not an edit: the
    keys take their defaults, and a stage that ran without its new key (refine) is recomputed."""
    import yaml

    from dualmap.study import StudyError

    out = tmp_path / "s"
    Study.create(validate_config(dict(TINY, attribution={"enabled": False})), out, progress=False)

    def write_old(plain_beside=None):
        metrics = json.loads((out / "metrics.json").read_text())
        metrics["config"].pop("attribution", None)
        metrics["config"]["refine"].pop("plain_beside", None)
        metrics["config_hash"] = "0123456789abcdef"
        metrics["stages"] = {"refine": {"table": [], "seconds": 1.0}, "sample": {"seconds": 1.0}}
        (out / "metrics.json").write_text(json.dumps(metrics))
        written = yaml.safe_load((out / "config.yaml").read_text())
        written.pop("attribution", None)
        written["refine"].pop("plain_beside", None)
        if plain_beside is not None:
            written["refine"]["plain_beside"] = plain_beside
        (out / "config.yaml").write_text(yaml.safe_dump(written))

    write_old()
    reopened = Study.open(out, progress=False)
    assert reopened.metrics["config_hash"] != "0123456789abcdef"
    assert reopened.metrics["config"]["attribution"]["enabled"] is False
    assert "refine" not in reopened.metrics["stages"] and "sample" in reopened.metrics["stages"]
    assert "refine.plain_beside" in capsys.readouterr().err
    write_old(plain_beside=[])                     # a new key, but not at its default: an edit
    with pytest.raises(StudyError, match="edited"):
        Study.open(out, progress=False)


# ---------------------------------------------------------------- the sentences, from hand-made numbers
def _removal_row(method, fraction, bottom, bottom_se, random, random_se, seeds=5):
    return {"method": method, "fraction": fraction, "n_seeds": seeds, "top_minus_bottom": bottom,
            "top_minus_bottom_in_se": bottom / bottom_se if bottom_se else float("nan"),
            "top_minus_random": random, "top_minus_random_in_se": random / random_se if random_se else float("nan")}


def test_importance_verdict_counts_standard_errors():
    rows = [_removal_row("map", 0.05, 0.01, 0.01, 0.01, 0.01), _removal_row("map", 0.1, 0.094, 0.094 / 18.2, 0.109,
                                                                             0.109 / 40.5),
            _removal_row("tracin", 0.1, 0.02, 0.01, -0.05, 0.01)]
    text = importance_verdict(rows)                                    # the fraction closest to 10 %
    assert text.startswith("The map's top points matter more than its bottom ones, by 18.2 standard errors, and "
                           "matter more than random ones, by 40.5 standard errors")
    assert "top 10 %" in text and "(5 seeds)" in text and "+0.094" in text and "+0.109" in text
    text = importance_verdict(rows, method="tracin")
    assert "do not clearly matter more than its bottom ones (+2.0 standard errors, under the 3 asked for)" in text
    assert "matter less than random ones, by 5.0 standard errors" in text
    assert "top 5 %" in importance_verdict(rows, fraction=0.05)
    assert "no spread over the seeds" in importance_verdict([_removal_row("map", 0.1, 0.01, 0, 0.01, 0)])
    assert "not tested" in importance_verdict(rows, method="importance")


def test_start_verdict_says_which_start_wins_and_by_how_much():
    table = [{"init": "he", "final_test_loss": 0.077, "seeds": 3},
             {"init": "swim", "final_test_loss": 0.098, "seeds": 3},
             {"init": "swim:plain", "final_test_loss": 0.225, "seeds": 3},
             {"init": "random", "final_test_loss": 0.068, "seeds": 3}]
    text = start_verdict(table)
    assert text.startswith("The random-feature start (auto fine-tuning) ends with the lowest test loss (0.068, "
                           "median over 3 seeds), 1.13× below the next one")
    assert "the SWIM start (auto fine-tuning) ends at 0.098 vs He's 0.077: He wins by 1.27×" in text
    assert "the SWIM start (plain fine-tuning) ends at 0.225 vs He's 0.077: He wins by 2.92×" in text
    assert "the random-feature start (auto fine-tuning) ends at 0.068 vs He's 0.077: it wins by 1.13×" in text
    # other numbers, another verdict: nothing is hard-coded
    table[1]["final_test_loss"], table[0]["final_test_loss"] = 0.01, 0.5
    text = start_verdict(table)
    assert text.startswith("The SWIM start (auto fine-tuning) ends with the lowest test loss (0.01")
    assert "ends at 0.01 vs He's 0.5: it wins by 50×" in text
    table[2]["final_test_loss"] = math.inf
    assert "the SWIM start (plain fine-tuning) diverged" in start_verdict(table)
    assert "ties with He" in start_verdict([{"init": "he", "final_test_loss": 0.1},
                                            {"init": "swim", "final_test_loss": 0.1}])
    assert "every run diverged" in start_verdict([{"init": "he", "final_test_loss": math.nan}])


# ---------------------------------------------------------------- the query split of validate
def test_query_split_is_disjoint_stratified_and_seeded():
    from dualmap.attribution.protocols import query_split

    y = np.repeat(np.arange(4), 10)
    query, held = query_split(y, 0.5, seed=3)
    assert len(query) == 20 and not set(query) & set(held) and len(set(query) | set(held)) == 40
    assert np.all(np.bincount(y[query]) == 5)                            # stratified
    again, _ = query_split(y, 0.5, seed=3)
    assert np.array_equal(query, again)
    every, same = query_split(y, None)
    assert np.array_equal(every, np.arange(40)) and np.array_equal(same, every)
    with pytest.raises(ValueError, match="query_fraction"):
        query_split(y, 1.5)
    with pytest.raises(ValueError, match="held-out"):
        query_split(y[:3], 0.5)


# ---------------------------------------------------------------- the pair prior's bad input
def test_pair_prior_with_other_features_or_other_data_is_a_clear_error(digits):
    from dualmap.inverse import PairPrior, fit_pair_prior

    X, y = digits.X_train[:200], digits.y_train[:200]
    run = dm.train([8], X, y, epochs=1, seed=0, checkpoints=2, progress=False)
    pair_map = dm.to_pairs(run.model, X, method="function", progress=False)
    with pytest.raises(ValueError, match="empty list"):
        fit_pair_prior([], X, y)
    other = X + 0.5                                                     # same shape, other data
    with pytest.raises(ValueError, match="computed on other data than the X given"):
        fit_pair_prior([pair_map], other, y)
    prior = fit_pair_prior([pair_map], X, y)
    renamed = PairPrior(coef=prior.coef, intercept=prior.intercept, task=prior.task,
                        feature_names=("a", "b", "c", "d", "e", "f", "g"))
    one_hot = np.eye(10)[y]
    with pytest.raises(ValueError, match="fitted on the pair features .*'a'.* the sampler computes"):
        dm.sample_network(X, one_hot, (8,), "relu", sampler=renamed, random_state=0)
    shorter = PairPrior(coef=prior.coef[:5], intercept=prior.intercept, task=prior.task,
                        feature_names=prior.feature_names[:5])
    with pytest.raises(ValueError, match="5 coefficients"):
        dm.sample_network(X, one_hot, (8,), "relu", sampler=shorter, random_state=0)
