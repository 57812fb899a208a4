"""Figures of one study: the headline comparison, the training run, and the forward map's per-neuron scores."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_headline", "plot_training", "plot_map_scores", "MODEL_BARS", "MAP_BARS", "REFIT_BARS"]


#: the bars of the headline figure, in the order of the report's headline tables: (headline key, label, colour)
MODEL_BARS = (("trained_test_score", "trained", "#1f77b4"), ("sampled_test_score", "SWIM sampled", "#7f7f7f"),
              ("converted_test_score", "converted\n(labels readout)", "#2ca02c"))
MAP_BARS = (("r2_through", "forward map\n(rebuilt)", "#2ca02c"),
            ("r2_through_null_swim", "null: SWIM-\ndensity pairs", "#7f7f7f"),
            ("r2_through_null_uniform", "null: uniform\npairs", "#bbbbbb"))
#: the refit-readout bars of folders written before the rebuilt network existed
REFIT_BARS = (("r2_map", "forward map", "#2ca02c"), ("r2_null_swim", "null: SWIM\npairs", "#7f7f7f"),
              ("r2_null_uniform", "null: uniform\npairs", "#bbbbbb"))


def plot_headline(headline: dict, *, model_bars=MODEL_BARS, map_bars=MAP_BARS):
    """Left: test score of the trained, sampled and converted networks. Right: output R² against the trained
    network of the networks built from pairs — the forward map and the two null models (SWIM and uniform
    pairs). ``model_bars`` / ``map_bars`` are ``(headline key, label, colour)`` in table order; a bar whose
    key the headline lacks is left out."""
    through = headline.get("r2_through") is not None
    if not through and map_bars is MAP_BARS:
        map_bars = REFIT_BARS
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 3.4))
    for ax, bars in ((left, model_bars), (right, map_bars)):
        shown = [bar for bar in bars if bar[0] in headline]
        _bars(ax, [label for _, label, _ in shown], [headline.get(key) for key, _, _ in shown],
              [colour for _, _, colour in shown])
    left.set_ylabel(f"test {headline.get('metric', 'score')}")
    left.set_title("the three networks on the test split", fontsize=10)
    right.set_ylabel("output R² vs the trained net (test)")
    gap = headline.get("gap_closed_through" if through else "gap_closed")
    right.set_title(("through the trained readout" if through else "teacher readout")
                    + ("" if gap is None else f": gap closed {gap:.2f}"), fontsize=10)
    fig.tight_layout()
    return fig


def _bars(ax, names, values, colors):
    shown = [np.nan if v is None else float(v) for v in values]
    bars = ax.bar(range(len(names)), shown, color=colors)
    ax.set_xticks(range(len(names)), names, fontsize=8)
    finite = [v for v in shown if np.isfinite(v)]
    low = min([0.0] + finite)
    ax.set_ylim(low * 1.08 if low < 0 else 0.0, max(1.0, max(finite, default=1.0)) * 1.08)
    if low < 0:
        ax.axhline(0.0, color="0.3", lw=0.8)
    for bar, value in zip(bars, shown):
        if np.isfinite(value):
            ax.annotate(f"{value:.3f}", (bar.get_x() + bar.get_width() / 2, max(value, low)), ha="center",
                        va="bottom", fontsize=8)


def plot_training(run):
    """Train and test loss (log scale) and metric per epoch, with the checkpoint steps marked."""
    history = run.history
    steps = np.asarray(history["step"], dtype=float)
    fig, (loss_ax, metric_ax) = plt.subplots(1, 2, figsize=(9.5, 3.4))
    loss_ax.plot(steps, history["train_loss"], label="train")
    metric_ax.plot(steps, history["train_metric"], label="train")
    if "val_loss" in history:
        loss_ax.plot(steps, history["val_loss"], label="test")
        metric_ax.plot(steps, history["val_metric"], label="test")
    loss_ax.set_yscale("log")
    loss_ax.set_ylabel("loss")
    metric_ax.set_ylabel("accuracy" if run.task == "classification" else "R²")
    for ax in (loss_ax, metric_ax):
        ax.set_xscale("symlog", linthresh=max(1.0, float(steps[0])))
        ax.set_xlim(left=0)
        ax.set_xlabel("training step")
        for step in run.steps:
            ax.axvline(step, color="0.85", lw=0.6, zorder=0)
    loss_ax.legend(fontsize=8)
    config = run.config
    fig.suptitle(f"{config.get('optimizer')} lr={config.get('lr')}, {config.get('epochs')} epochs; "
                 "grey lines: checkpoints", fontsize=9)
    fig.tight_layout()
    return fig


def plot_map_scores(pair_map):
    """Per hidden layer, histograms of the forward map's per-neuron activation correlation and direction cosine."""
    scores = pair_map.scores
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
    for ax, name, label in zip(axes, ("activation_correlation", "direction_cosine"),
                               ("activation correlation on X", "direction cosine")):
        for layer, layer_scores in enumerate(scores):
            ax.hist(layer_scores[name], bins=30, range=(-1, 1), histtype="step", lw=1.5,
                    label=f"layer {layer + 1} (median {np.median(layer_scores[name]):.2f})")
        ax.set_xlabel(label)
        ax.set_ylabel("neurons")
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"forward map ({pair_map.method}): how well each trained neuron is reproduced by its pair",
                 fontsize=9)
    fig.tight_layout()
    return fig
