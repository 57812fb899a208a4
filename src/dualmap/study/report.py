"""The report of a study: figures from its saved files, and ``report.html`` — nothing is recomputed."""

from __future__ import annotations

import html
import math
import os
from pathlib import Path

from .._io import write_text_atomic
from ..report import inverse_figures, save_figures, trajectory_figures
from ..report.attribution_figures import attribution_figures
from ..report.html import render_study_html, table_html
from ..report.map_figures import through_curve_figure
from ..report.study_figures import plot_headline, plot_map_scores, plot_training

__all__ = ["write_report", "look_at", "CAPTIONS", "MODEL_ROWS", "MAP_ROWS", "REFIT_ROWS", "HOW_TO_READ",
           "importance_verdict", "start_verdict", "ATTRIBUTION_OFF"]

#: the headline tables, row by row, in the order of the headline figure's bars (MODEL_BARS, MAP_BARS).
#: Models: (headline key, label). Maps: (convert-stage key, label, fidelity key or None). One more row (and its
#: bar in study_figures) is all a new headline number needs.
MODEL_ROWS = (("trained_test_score", "gradient-trained ({optimizer})"),
              ("sampled_test_score", "SWIM, sampled without gradients"),
              ("converted_test_score", "converted: trained net's pairs, readout refit to labels"))
MAP_ROWS = (("r2_through", "rebuilt from the map's pairs ({method}, k = {atoms})", "fidelity_through"),
            ("r2_through_null_swim", "null: k SWIM-density pairs per neuron, fitted the same way", None),
            ("r2_through_null_uniform", "null: k uniform pairs per neuron, fitted the same way", None))
#: the secondary map table: the readout refit to the trained outputs (random features already reach R² ≈ 0.95)
REFIT_ROWS = (("r2_map", "forward map ({method}), readout refit", "fidelity"),
              ("r2_null_swim", "null: SWIM pairs, same widths, readout refit", "fidelity_null_swim"),
              ("r2_null_uniform", "null: uniform pairs, same widths, readout refit", None))

#: the inline explanation at the top of every report (a study folder travels without the docs)
HOW_TO_READ = (
    "How to read this page. A study compares three networks of one architecture on one data set: one "
    "<i>sampled</i> without gradients (SWIM: every hidden neuron built from a pair of training points), one "
    "<i>trained</i> by gradient descent, and the trained one <i>converted</i> — each of its neurons replaced by "
    "the SWIM neuron of the pair of training points that reproduces it best (the forward map). The first table "
    "scores the three as models. The second asks whether the forward map explains the trained network: the "
    "output R² of the converted network against the trained one must beat two <i>null models</i> (networks of "
    "the same widths from SWIM-sampled or uniformly drawn pairs, readout refit the same way); "
    "<i>gap closed</i> is the share of the distance from the SWIM null to a perfect reproduction that the map "
    "covers — 0 means no better than chance pairs, negative means worse. The dynamics section follows the map "
    "over training checkpoints (which points the network rests on), and the inverse-map section trains the same "
    "architecture from sampled and standard starts. The last section, \"Does importance matter?\" (off by default), "
    "retrains the network without the training points the map ranks highest, lowest and at random, beside TracIn. "
    "Every number is also in metrics.json.")

#: one line per figure: what it shows and how to read it
CAPTIONS = {
    "headline": "Left: test accuracy/R² of the gradient-trained network, of the SWIM network sampled without "
                "gradients, and of the converted network (the trained net's pairs, readout refit to the labels) — the "
                "order of the first headline table. Right: how well networks rebuilt from pairs reproduce the trained "
                "net's outputs through its own readout (nothing refit), in the order of the second table; the "
                "forward map should beat both null models, and 'gap closed' is its share of the distance from the "
                "SWIM null to a perfect reproduction.",
    "training": "Training of the network that is mapped: loss (log scale) and metric per epoch on the training and "
                "test splits; grey vertical lines are the checkpoints that the trajectory maps.",
    "atoms_curve": "Output R² (test) of the network rebuilt from k pairs per neuron through the trained readout, "
                   "against k: the map (green) and k drawn pairs per neuron fitted the same way (grey, blue). The "
                   "distance between the map and the nulls is what choosing the pairs explains.",
    "map_scores": "Per-neuron quality of the forward map: a neuron whose activations correlate near 1 with its "
                  "pair's SWIM neuron is reproduced; mass near 0 means neurons the data pairs cannot express.",
    "trajectory_curves": "Over training (log step axis), two rows: fraction of neurons whose pair changed since the "
                         "previous checkpoint, map quality, optimal-transport drift of the neurons; effective number "
                         "of data points carrying the network, the rank correlation of point importance with SWIM's "
                         "own sampling density, and the output R² of each checkpoint's converted network. Each panel "
                         "title states its y-range; ranges start at zero (or span −1…1), so a small change looks "
                         "small.",
    "importance_heatmap": "Importance of the most important training points (rows, labelled #row (class), sorted by "
                          "the checkpoint where each peaks, earliest at the top) at every checkpoint (columns): how "
                          "much of the network rests on each point; a bright row that stays bright is a point the "
                          "network keeps relying on.",
    "top_images": "The most important training images at selected checkpoints, with their class and importance; raw "
                  "pixels as the data set stores them, all on one grey scale (stated in the title).",
    "pairs_2d": "The pairs of the first hidden layer as segments over the data at selected checkpoints.",
    "pairs_2d.gif": "Animation of the first layer's pairs over all checkpoints.",
    "learning_curves": "Inverse map: the same architecture and optimizer started from standard (he, xavier) and "
                       "sampled (swim, uniform, random features) weights; median over seeds, band = range. A sampled "
                       "start begins high; watch whether it keeps its lead.",
    "displacement": "Relative change of each layer's weights from the start to the end of training (log scale); "
                    "large values for a sampled start mean the optimizer rewrote the sampled layer.",
    "persistence": "Fraction of hidden neurons still mapped to the pair they started on, per checkpoint: does a "
                   "sampled network stay a sampled network of the same points while it is trained?",
    "attribution_removal": "Does importance matter? Test loss (held-out test points) after removing the top (solid) "
                           "and bottom (dashed) fraction of the training points by each score and retraining from "
                           "the same initialisations, and after removing a random fraction (grey); mean ± standard "
                           "error over the seeds, 0 % = the whole training set. A score whose top points matter "
                           "has its solid line above its dashed line and above the grey one.",
    "attribution_lds": "Linear datamodeling score of every score: per held-out test point, the Spearman correlation "
                       "over random half subsets between the summed scores of the kept points and the actual "
                       "−loss of the model retrained on them; mean ± standard error over test points (0 = chance).",
    "attribution_mislabel": "Mislabel detection: ROC AUC of every score's self-score for the training points whose "
                            "labels were flipped (0.5 = chance, 1 = every flipped point ranked first).",
}

#: the report's one line when the attribute stage is off (it is by default)
ATTRIBUTION_OFF = ("Off: this section is off by default because it retrains the network about 130 times (a few "
                   "minutes on digits); turn it on with <code>attribution: {enabled: true}</code> in the "
                   "configuration, or <code>--set attribution.enabled=true</code>.")


def _figures(study) -> list[Path]:
    out = study.out / "figures"
    dpi = study.config.report.dpi
    figures = {"headline": plot_headline(study.headline()), "training": plot_training(study.result("train_run")),
               "map_scores": plot_map_scores(study.result("pairmap"))}
    paths = save_figures(figures, out, dpi)
    curve = study.metrics["stages"].get("convert", {}).get("atoms_curve")
    if curve:
        paths.append(through_curve_figure({"r2_through against k": curve}, out / "atoms_curve.png"))
    if study.enabled("track") and study.done("track"):
        ds = study.dataset
        images = value_range = None
        if getattr(ds, "image_shape", None) is not None:          # raw pixels, one grey scale for all
            images = study.raw_inputs
            value_range = (float(images.min()), float(images.max()))
        paths += trajectory_figures(study.result("trajectory"), out, dpi=dpi,
                                    class_names=getattr(ds, "class_names", None),
                                    image_shape=getattr(ds, "image_shape", None), images=images,
                                    value_range=value_range)
    if study.enabled("refine") and study.done("refine"):
        paths += inverse_figures(study.result("inverse_comparison"), out, dpi=dpi)
    if study.enabled("attribute") and study.done("attribute"):
        paths += attribution_figures(study.result("attribution").to_dict(), out, dpi=dpi)
    return paths


def _layers_label(n_hidden: int, readout: bool) -> str:
    names = [f"layer {layer + 1}" for layer in range(n_hidden)] + (["readout"] if readout else [])
    return " / ".join(names)


def look_at(study) -> list[str]:
    """What is out of the ordinary in a study, in words (plain text; empty when nothing is): a forward map no
    better than its null, a start that never moved, a stage that did not run or failed, a trained network below
    the sampled one, a training run that diverged."""
    stages, headline, notes = study.metrics["stages"], study.headline(), []
    metric = headline["metric"]
    planned = [s for s in ("sample", "train", "convert", "track", "refine", "attribute") if study.enabled(s)]
    missing = [s for s in planned if s not in stages]
    if missing:
        notes.append(f"Stage{'s' if len(missing) > 1 else ''} {', '.join(missing)} did not run or failed: "
                     f"{'their' if len(missing) > 1 else 'its'} tables and figures are missing. "
                     f"'dualmap run --out {study.out}' finishes the study.")
    for stage, why in study.invalid.items():
        notes.append(f"Stage {stage} was recomputed because {why}.")
    for warning in stages.get("train", {}).get("warnings", []):
        notes.append(f"The trained network: {warning}.")
    convert = stages.get("convert", {})
    through = "r2_through" in convert                 # folders written before the rebuilt network: the refit test
    key, null_key, gap_key = (("r2_through", "r2_through_null_swim", "gap_closed_through") if through
                              else ("r2_map", "r2_null_swim", "gap_closed"))
    gap, r2_map = convert.get(gap_key), convert.get(key)
    how = "through the trained readout" if through else "with the readout refit"
    uniform = convert.get(null_key.replace("swim", "uniform"))
    if gap is not None and math.isfinite(gap) and gap <= 0:
        notes.append(f"The forward map is no better than its null model (gap closed {gap:.2f}) {how}: networks of "
                     f"SWIM-sampled pairs reproduce the trained network "
                     f"{'better' if gap < 0 else 'as well'} (output R² {convert.get(null_key):.3f} vs "
                     f"{r2_map:.3f}). Here the map explains nothing; read its pairs as chance.")
    elif r2_map is not None and uniform is not None and r2_map < uniform:
        notes.append(f"The forward map (R² {r2_map:.3f}, {how}) is worse than uniformly drawn pairs ({uniform:.3f}).")
    trained, sampled = headline.get("trained_test_score"), headline.get("sampled_test_score")
    if trained is not None and sampled is not None and trained < sampled:
        notes.append(f"The gradient-trained network (test {metric} {trained:.3f}) is below the SWIM network sampled "
                     f"without gradients ({sampled:.3f}): training may be too short or its learning rate off; the "
                     "map then describes an under-trained network.")
    for row in stages.get("refine", {}).get("table", []):
        displacement = [d for d in row.get("displacement", []) if d is not None]
        if displacement and max(displacement) < 1e-6:
            shown = " / ".join(f"{d:.2g}" for d in displacement)
            final_loss = row.get("final_test_loss", float("nan"))
            notes.append(f"The '{row['init']}' start never moved (displacement {shown}): it did not train, so its "
                         f"row shows the untrained start (final test loss {final_loss:.3g}).")
    return notes


def _docs_link(study) -> str:
    """A relative link to docs/reading-the-report.md when the study folder sits in a dualmap checkout, else
    the file's name (the inline paragraph carries the essentials either way)."""
    root = Path(__file__).resolve().parents[3]
    docs = root / "docs" / "reading-the-report.md"
    name = "docs/reading-the-report.md"
    folder = Path(study.out).resolve()
    if docs.exists() and folder.is_relative_to(root):      # e.g. dualmap-runs/<study> in the checkout
        return f'<a href="{html.escape(os.path.relpath(docs, folder))}">{name}</a>'
    return f"<code>{name}</code> in the dualmap repository"


def _top(study) -> str:
    notes = look_at(study)
    if notes:
        items = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
        box = f'<div class="look"><h2>What to look at</h2><ul>{items}</ul></div>'
    else:
        box = ('<div class="look ok"><h2>What to look at</h2><p>Nothing out of the ordinary: every stage ran, '
               "the forward map beats its null models, and training improved on the sampled network.</p></div>")
    how = (f'<div class="how"><p>{HOW_TO_READ}</p><p>Every table, figure and key is explained in '
           f"{_docs_link(study)}.</p></div>")
    return box + how


def _sections(study) -> list[tuple[str, str]]:
    metrics, headline = study.metrics["stages"], study.headline()
    convert = metrics["convert"]
    metric = headline["metric"]
    labels = {"optimizer": study.config.train.optimizer, "method": convert.get("method", ""),
              "atoms": convert.get("atoms", 1)}

    def gap_text(gap):
        return _fmt(gap) if gap is None or gap > 0 else f"{_fmt(gap)} (no better than the null: see above)"

    def map_table(rows):
        return table_html(["network built from pairs", "output R² vs trained net", "fidelity (same class)"],
                          [[label.format(**labels), convert.get(key), convert.get(fidelity) if fidelity else None]
                           for key, label, fidelity in rows])

    sections = [
        ("Headline: the networks as models",
         table_html(["network", f"test {metric}"],
                    [[label.format(**labels), headline.get(key)] for key, label in MODEL_ROWS])),
    ]
    if "r2_through" in convert:
        sections.append(("Headline: the forward map through the trained network's own readout (test split)",
                         map_table(MAP_ROWS)
                         + f"<p>Gap closed through (R², against the SWIM-density null): "
                           f"<b>{gap_text(convert.get('gap_closed_through'))}</b>; against the uniform null: "
                           f"{_fmt(convert.get('gap_closed_through_uniform'))}. Nothing is refit: every hidden "
                           f"neuron is rebuilt from its pairs' SWIM neurons and the trained readout is kept.</p>"))
    sections += [
        ("The forward map with the readout refit to the trained outputs (secondary, test split)",
         map_table(REFIT_ROWS)
         + f"<p>Gap closed (R², against the SWIM null): <b>{gap_text(convert.get('gap_closed'))}</b>; against the "
           f"uniform null: {_fmt(convert.get('gap_closed_uniform'))}.</p>"),
        ("Forward map per layer (medians over neurons)",
         table_html(["layer", "neuron R² (all atoms)", "activation correlation", "direction cosine", "offset error",
                     "norm ratio"],
                    [[f"layer {layer + 1}"] + [convert.get(f"layer{layer}_median_{name}") for name in
                                               ("neuron_r2", "activation_correlation", "direction_cosine",
                                                "offset_error", "norm_ratio")]
                     for layer in range(len(study.config.network.widths))])
         + "<p>Per-neuron scores of each neuron's principal pair; neuron R²: its whole affine combination.</p>"),
    ]
    if convert.get("atoms_curve"):
        rows = [[row["atoms"], row["r2_through"], row["r2_through_null_swim"], row["r2_through_null_uniform"]]
                for row in convert["atoms_curve"]]
        sections.append(("The forward map against the number of pairs per neuron", table_html(
            ["pairs per neuron k", "r2_through (map)", "null: k SWIM-density pairs", "null: k uniform pairs"], rows)))
    if "track" in metrics:
        track = metrics["track"]
        rows = [[f"layer {layer + 1}", track["switch_rate_first"][layer], track["switch_rate_last"][layer],
                 track["quality_first"][layer], track["quality_last"][layer]]
                for layer in range(len(track["widths"]))]
        settled = track["settled_step"]
        settling = (f"settle (under 5 % switching) from step {settled}" if settled is not None
                    else "never settle (5 % switching threshold)")
        sections.append(("Training dynamics", table_html(
            ["layer", "switch rate, first interval", "switch rate, last interval", "map quality, first checkpoint",
             "map quality, last checkpoint"], rows)
            + f"<p>{track['n_checkpoints']} checkpoints (steps {track['steps'][0]}…{track['steps'][-1]}). Pairs "
              f"{settling}. "
              f"Concentration (effective number of points): {_fmt(track['concentration_first'], 0)} → "
              f"{_fmt(track['concentration_last'], 0)}; SWIM alignment: {_fmt(track['swim_alignment_first'])} → "
              f"{_fmt(track['swim_alignment_last'])}.</p>"))
    if "refine" in metrics:
        table = metrics["refine"]["table"]
        n_hidden = len(study.config.network.widths)
        rows = [[row["init"], row["start_test_metric"], row["final_test_metric"], row["final_test_loss"],
                 row["reached_he"], " / ".join(f"{d:.3g}" for d in row["displacement"]),
                 " / ".join(f"{p:.2f}" for p in row.get("final_persistence") or []) or None]
                for row in table]
        schemes = _finetune_schemes(study)
        for row, line in zip(table, rows):
            line.insert(1, schemes.get(row["init"], "–"))
        n_weights = len(table[0]["displacement"]) if table else n_hidden + 1
        sections.append(("Inverse map: initialisations under the same training", table_html(
            ["init", "fine-tuning", f"test {metric} at start", f"test {metric} at end", "test loss at end",
             "reached He's final test loss", f"displacement ({_layers_label(n_weights - 1, True)})",
             f"pairs kept ({_layers_label(n_hidden, False)})"], rows)
            + f"<p><b>Which start wins:</b> {html.escape(start_verdict(table))}</p>"
            + "<p>Displacement: ‖W_end − W_start‖ / ‖W_start‖ of each weight matrix (median over seeds). A sampled "
              "start is fine-tuned with <code>finetune='auto'</code> (the default of <code>dm.train</code>) unless "
              "its name says otherwise: <code>swim:plain</code> is the sampled network trained as sampled, the "
              "scheme before issue 13.</p>"))
    sections.append(("Does importance matter? Counterfactual tests of the map's training-point scores",
                     _attribution_section(study)))
    times = [[stage, record.get("seconds")] for stage, record in metrics.items()]
    sections.append(("Time per stage (seconds)", table_html(["stage", "seconds"], times, digits=1)))
    return sections


def _finetune_schemes(study) -> dict:
    """init → the fine-tuning its runs used, from the comparison's rows (``auto (calibrate+…)`` for the default)."""
    try:
        rows = study.result("inverse_comparison").rows
    except (OSError, ValueError):
        return {}
    out = {}
    for row in rows:
        init, _, named = row["init"].partition(":")
        used = row.get("finetune")
        if init not in ("swim", "uniform", "random") or not used:
            continue
        out[row["init"]] = f"auto ({used})" if not named or named == "auto" else used
    return out


_START_LABELS = {"he": "He", "xavier": "Xavier", "torch": "torch's default", "swim": "the SWIM start",
                 "uniform": "the uniform-pairs start", "random": "the random-feature start"}


def _start_label(spec: str) -> str:
    init, _, finetune = spec.partition(":")
    label = _START_LABELS.get(init, init)
    if init in ("swim", "uniform", "random"):
        label += f" ({finetune or 'auto'} fine-tuning)"
    return label


def _times(ratio: float) -> str:
    return f"{ratio:.2f}×" if ratio < 10 else f"{ratio:.0f}×"


def start_verdict(table: list[dict]) -> str:
    """One plain sentence, from the numbers, on which start ends with the lowest test loss and by how much each
    start wins or loses against He (``table``: :meth:`~dualmap.inverse.InitComparison.table`'s rows)."""
    losses = {row["init"]: row.get("final_test_loss") for row in table}
    finite = {init: loss for init, loss in losses.items() if loss is not None and math.isfinite(loss)}
    seeds = max((row.get("seeds", 1) for row in table), default=1)
    median = f"median over {seeds} seeds" if seeds > 1 else "one seed"
    if not finite:
        return "No start finished with a finite test loss: every run diverged."
    best = min(finite, key=lambda init: (finite[init], init))
    others = sorted(loss for init, loss in finite.items() if init != best)
    lead = (f", {_times(others[0] / finite[best])} below the next one" if others and finite[best] > 0
            else "" if others else " (the only start that finished)")
    parts = [f"{_start_label(best)} ends with the lowest test loss ({finite[best]:.3g}, {median}){lead}"]
    he = finite.get("he")
    if he is None:
        parts.append("He's run diverged, so no start is compared with it")
    else:
        for row in table:
            init = row["init"]
            if init == "he":
                continue
            loss = losses.get(init)
            if loss is None or not math.isfinite(loss):
                parts.append(f"{_start_label(init)} diverged")
            elif loss < he:
                parts.append(f"{_start_label(init)} ends at {loss:.3g} vs He's {he:.3g}: it wins by "
                             f"{_times(he / loss) if loss > 0 else 'an infinite factor'}")
            elif loss > he:
                parts.append(f"{_start_label(init)} ends at {loss:.3g} vs He's {he:.3g}: He wins by "
                             f"{_times(loss / he) if he > 0 else 'an infinite factor'}")
            else:
                parts.append(f"{_start_label(init)} ties with He at {loss:.3g}")
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:]


def _se_clause(difference: float, in_se: float, other: str, threshold: float) -> str:
    if in_se is None or not math.isfinite(in_se):
        return (f"cannot be compared with {other} ones (difference {difference:+.3g}; no spread over the seeds to "
                "give it a standard error)")
    if in_se >= threshold:
        return f"matter more than {other} ones, by {in_se:.1f} standard errors"
    if in_se <= -threshold:
        return f"matter less than {other} ones, by {-in_se:.1f} standard errors"
    return (f"do not clearly matter more than {other} ones ({in_se:+.1f} standard errors, under the {threshold:g} "
            "asked for)")


def importance_verdict(removal: list[dict], *, method: str = "map", fraction: float = 0.1,
                       threshold: float = 3.0) -> str:
    """One plain sentence, from the numbers, on whether ``method``'s top points matter more than its bottom and
    random ones: the remove-and-retrain effects at the fraction closest to ``fraction`` (``removal``: the rows of
    :func:`dualmap.attribution.protocols.summarize_removal`), in standard errors of the paired differences."""
    rows = [r for r in removal if r["method"] == method]
    if not rows:
        return f"The {method} score was not tested by remove-and-retrain."
    chosen = min(sorted({r["fraction"] for r in rows}), key=lambda f: abs(f - fraction))
    row = next(r for r in rows if r["fraction"] == chosen)
    percent = f"{100 * chosen:g} %"
    name = "the map's" if method == "map" else f"the {method} score's"
    bottom = _se_clause(row["top_minus_bottom"], row["top_minus_bottom_in_se"], "its bottom", threshold)
    random = _se_clause(row["top_minus_random"], row["top_minus_random_in_se"], "random", threshold)
    text = (f"{name} top points {bottom}, and {random}: removing its top {percent} of the training points "
            f"and retraining ({row.get('n_seeds', '?')} seeds) changed the held-out test loss by "
            f"{row['top_minus_bottom']:+.3g} against removing its bottom {percent} and by "
            f"{row['top_minus_random']:+.3g} against a random {percent}.")
    return text[0].upper() + text[1:]


def _effect(difference: float, in_se: float) -> str:
    return f"{difference:+.3f} ({in_se:+.1f} SE)" if math.isfinite(in_se) else f"{difference:+.3f} (no SE)"


def _mean_se(mean, se, digits: int = 3) -> str:
    if mean is None:
        return "–"
    return f"{mean:.{digits}f} ± {se:.{digits}f}" if se is not None and math.isfinite(se) else f"{mean:.{digits}f}"


def _attribution_section(study) -> str:
    """The "Does importance matter?" section: one line when the stage is off, its tables and verdict when it ran."""
    if not study.enabled("attribute"):
        return f"<p>{ATTRIBUTION_OFF}</p>"
    if not study.done("attribute"):
        return ("<p>The attribute stage is on but has not finished: 'dualmap attribute --out FOLDER' (or "
                "'dualmap run') runs it.</p>")
    result = study.result("attribution").to_dict()
    setting = result.get("setting", {})
    parts = []
    query = setting.get("query", "test split")
    if setting.get("query_fraction") is not None:
        parts.append(f"<p>Scores of one training run ({setting.get('checkpoints')} checkpoints) of the study's "
                     f"network, compared by counterfactual retraining. The points to remove are chosen by the scores "
                     f"averaged over {setting.get('n_query')} <i>query</i> test points; every loss below and the LDS "
                     f"are measured on the other {setting.get('n_eval')} test points, which chose nothing.</p>")
    else:
        parts.append(f"<p>Query set: the {html.escape(str(query))} (also where the losses are measured).</p>")
    removal = result.get("removal", [])
    if removal:
        full = removal[0]
        rows = [[row["method"], f"{100 * row['fraction']:g} %", _mean_se(row["loss_top"], row["loss_top_se"]),
                 _mean_se(row["loss_bottom"], row["loss_bottom_se"]),
                 _mean_se(row["loss_random"], row["loss_random_se"]),
                 _effect(row["top_minus_bottom"], row["top_minus_bottom_in_se"]),
                 _effect(row["top_minus_random"], row["top_minus_random_in_se"])]
                for row in sorted(removal, key=lambda r: (r["method"] != "map", r["method"], r["fraction"]))]
        parts.append(table_html(["score", "removed", "test loss, top removed", "bottom removed", "random removed",
                                 "top − bottom (paired)", "top − random (paired)"], rows)
                     + f"<p>Remove and retrain, ranked by the {html.escape(setting.get('rank', 'signed'))} score: "
                       f"mean ± standard error over {full.get('n_seeds')} seeds (each seed one initialisation, the "
                       f"same in every condition); the whole training set gives "
                       f"{_mean_se(full['loss_full'], full['loss_full_se'])}. Differences are paired over the "
                       "seeds, in units of their standard error.</p>")
        scored = sorted({r["method"] for r in removal}, key=lambda m: (m != "map", m))
        verdicts = " ".join(html.escape(importance_verdict(removal, method=m)) for m in scored)
        parts.append(f"<p><b>Verdict:</b> {verdicts}</p>")
    lds, mislabel = result.get("lds", {}), result.get("mislabel", {})
    if lds or mislabel:
        methods = list(dict.fromkeys([*lds, *mislabel]))
        parts.append(table_html(["score", "LDS (Spearman)", "mislabel AUC"],
                                [[m, _mean_se(lds[m]["lds"], lds[m]["se"]) if m in lds else None,
                                  mislabel.get(m, {}).get("auc")] for m in methods])
                     + f"<p>LDS over {setting.get('n_subsets')} random half subsets (mean ± SE over test points); "
                       f"mislabel AUC with {100 * setting.get('flip', 0.1):g} % of the labels flipped (0.5 = chance)."
                       + (f" Skipped: {html.escape('; '.join(f'{k}: {v}' for k, v in setting['skipped'].items()))}."
                          if setting.get("skipped") else "") + "</p>")
        against = _against_tracin(lds, mislabel)
        if against:
            parts.append(f"<p>{html.escape(against)}</p>")
    return "".join(parts)


def _against_tracin(lds: dict, mislabel: dict) -> str:
    """The map beside TracIn on LDS and mislabel AUC, in words (empty when either was not scored)."""
    clauses = []
    if "map" in lds and "tracin" in lds:
        a, b = lds["map"], lds["tracin"]
        se = math.hypot(a["se"], b["se"]) if math.isfinite(a["se"]) and math.isfinite(b["se"]) else float("nan")
        gap = (a["lds"] - b["lds"]) / se if se and math.isfinite(se) else float("nan")
        which = ("higher than" if gap >= 2 else "lower than" if gap <= -2 else "level with")
        clauses.append(f"the map's LDS {a['lds']:.3f} is {which} TracIn's {b['lds']:.3f}"
                       + (f" ({gap:+.1f} combined standard errors)" if math.isfinite(gap) else ""))
    if "map" in mislabel and "tracin" in mislabel:
        a, b = mislabel["map"]["auc"], mislabel["tracin"]["auc"]
        clauses.append(f"its mislabel AUC {a:.3f} {'≥' if a >= b else '<'} TracIn's {b:.3f}")
    if not clauses:
        return ""
    text = "Against TracIn: " + "; ".join(clauses) + "."
    return text


def _fmt(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def write_report(study) -> list[Path]:
    """Draw every figure the study's finished stages allow into ``figures/`` and write ``report.html``."""
    paths = _figures(study)
    ds, network = study.dataset, study.config.network
    title = f"dualmap study: {ds.name}, {'-'.join(map(str, network.widths))} {network.activation}"
    summary = (f"{ds.name}: {ds.n_train} training and {len(ds.X_test)} test points, {ds.X_train.shape[1]} features, "
               f"{ds.task}. Architecture {ds.X_train.shape[1]}-{'-'.join(map(str, network.widths))}, "
               f"{network.activation}. A SWIM network was sampled, the same architecture trained with "
               f"{study.config.train.optimizer} (lr {study.config.train.lr}, {study.config.train.epochs} epochs), and "
               f"every hidden neuron of the trained net mapped to a pair of training points.")
    figures = [(path, CAPTIONS.get(path.name if path.suffix == ".gif" else path.stem, "")) for path in paths]
    page = render_study_html(title=title, summary=summary, sections=_sections(study), figures=figures,
                             config_yaml=(study.out / "config.yaml").read_text(),
                             provenance=study.metrics["provenance"], top=_top(study))
    write_text_atomic(study.out / "report.html", page)
    return paths + [study.out / "report.html"]
