"""The report of a study: figures from its saved files, and ``report.html`` — nothing is recomputed."""

from __future__ import annotations

from pathlib import Path

from .._io import write_text_atomic
from ..report import inverse_figures, trajectory_figures
from ..report._common import save_figures
from ..report.html import render_study_html, table_html
from ..report.study_figures import plot_headline, plot_map_scores, plot_training

__all__ = ["write_report", "CAPTIONS"]

#: one line per figure: what it shows and how to read it
CAPTIONS = {
    "headline": "Left: test accuracy/R² of the SWIM network sampled without gradients, of the gradient-trained "
                "network, and of the converted network (the trained net's pairs, readout refit to the labels). "
                "Right: how well networks built from pairs reproduce the trained net's outputs (teacher readout); "
                "the forward map should beat both null models, and 'gap closed' is its share of the distance "
                "from the SWIM null to a perfect reproduction.",
    "training": "Training of the network that is mapped: loss (log scale) and metric per epoch on the training and "
                "test splits; grey vertical lines are the checkpoints that the trajectory maps.",
    "map_scores": "Per-neuron quality of the forward map: a neuron whose activations correlate near 1 with its "
                  "pair's SWIM neuron is reproduced; mass near 0 means neurons the data pairs cannot express.",
    "trajectory_curves": "Over training (log step axis): fraction of neurons whose pair changed since the previous "
                         "checkpoint, map quality, optimal-transport drift of the neurons, effective number of data "
                         "points carrying the network, and the rank correlation of point importance with SWIM's own "
                         "sampling density.",
    "importance_heatmap": "Importance of the most important training points (rows) at every checkpoint (columns): "
                          "how much of the network rests on each point; a bright row that stays bright is a point "
                          "the network keeps relying on.",
    "top_images": "The most important training images at selected checkpoints, with their class and importance.",
    "pairs_2d": "The pairs of the first hidden layer as segments over the data at selected checkpoints.",
    "pairs_2d.gif": "Animation of the first layer's pairs over all checkpoints.",
    "learning_curves": "Inverse map: the same architecture and optimizer started from standard (he, xavier) and "
                       "sampled (swim, uniform, random features) weights; median over seeds, band = range. A sampled "
                       "start begins high; watch whether it keeps its lead.",
    "displacement": "Relative change of each layer's weights from the start to the end of training (log scale); "
                    "large values for a sampled start mean the optimizer rewrote the sampled layer.",
    "persistence": "Fraction of hidden neurons still mapped to the pair they started on, per checkpoint: does a "
                   "sampled network stay a sampled network of the same points while it is trained?",
}


def _figures(study) -> list[Path]:
    out = study.out / "figures"
    dpi = study.config.report.dpi
    figures = {"headline": plot_headline(study.headline()), "training": plot_training(study._load("train_run")),
               "map_scores": plot_map_scores(study._load("pairmap"))}
    paths = save_figures(figures, out, dpi)
    if study.enabled("track") and study.done("track"):
        paths += trajectory_figures(study._load("trajectory"), out, dpi=dpi,
                                    class_names=getattr(study.dataset, "class_names", None))
    if study.enabled("refine") and study.done("refine"):
        paths += inverse_figures(study._load("inverse_comparison"), out, dpi=dpi)
    return paths


def _sections(study) -> list[tuple[str, str]]:
    metrics, headline = study.metrics["stages"], study.headline()
    convert = metrics["convert"]
    metric = headline["metric"]
    sections = [
        ("Headline: the networks as models",
         table_html(["network", f"test {metric}"],
                    [["gradient-trained (" + study.config.train.optimizer + ")", headline["trained_test_score"]],
                     ["SWIM, sampled without gradients", headline["sampled_test_score"]],
                     ["converted: trained net's pairs, readout refit to labels", headline["converted_test_score"]]])),
        ("Headline: the forward map against null models (teacher readout, test split)",
         table_html(["network built from pairs", "output R² vs trained net", "fidelity (same class)"],
                    [["forward map (" + convert.get("method", "") + ")", convert["r2_map"], convert.get("fidelity")],
                     ["null: SWIM pairs, same widths", convert["r2_null_swim"], convert.get("fidelity_null_swim")],
                     ["null: uniform pairs, same widths", convert["r2_null_uniform"], None],
                     ["forward map, trained readout kept", convert["r2_keep"], None]])
         + f"<p>Gap closed (R², against the SWIM null): <b>{_fmt(convert['gap_closed'])}</b>; against the uniform "
           f"null: {_fmt(convert['gap_closed_uniform'])}.</p>"),
        ("Forward map per layer (medians over neurons)",
         table_html(["layer", "activation correlation", "direction cosine", "offset error", "norm ratio"],
                    [[f"layer {layer + 1}"] + [convert.get(f"layer{layer}_median_{name}") for name in
                                               ("activation_correlation", "direction_cosine", "offset_error",
                                                "norm_ratio")]
                     for layer in range(len(study.config.network.widths))])),
    ]
    if "track" in metrics:
        track = metrics["track"]
        rows = [[f"layer {layer + 1}", track["switch_rate_first"][layer], track["switch_rate_last"][layer],
                 track["quality_first"][layer], track["quality_last"][layer]]
                for layer in range(len(track["widths"]))]
        settled = track["settled_step"]
        sections.append(("Training dynamics", table_html(
            ["layer", "switch rate, first interval", "switch rate, last interval", "map quality, first checkpoint",
             "map quality, last checkpoint"], rows)
            + f"<p>{track['n_checkpoints']} checkpoints (steps {track['steps'][0]}…{track['steps'][-1]}). Pairs "
              f"{'settle (under 5 % switching) from step ' + str(settled) if settled is not None else 'never settle (5 % switching threshold)'}. "
              f"Concentration (effective number of points): {_fmt(track['concentration_first'], 0)} → "
              f"{_fmt(track['concentration_last'], 0)}; SWIM alignment: {_fmt(track['swim_alignment_first'])} → "
              f"{_fmt(track['swim_alignment_last'])}.</p>"))
    if "refine" in metrics:
        rows = [[row["init"], row["start_test_metric"], row["final_test_metric"], row["final_test_loss"],
                 row["reached_he"], " / ".join(f"{d:.3g}" for d in row["displacement"]),
                 " / ".join(f"{p:.2f}" for p in row.get("final_persistence") or []) or None]
                for row in metrics["refine"]["table"]]
        sections.append(("Inverse map: initialisations under the same training", table_html(
            ["init", f"test {metric} at start", f"test {metric} at end", "test loss at end",
             "reached He's final test loss", "displacement per layer", "pairs kept per layer"], rows)))
    times = [[stage, record.get("seconds")] for stage, record in metrics.items()]
    sections.append(("Time per stage (seconds)", table_html(["stage", "seconds"], times, digits=1)))
    return sections


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
                             provenance=study.metrics["provenance"])
    write_text_atomic(study.out / "report.html", page)
    return paths + [study.out / "report.html"]
