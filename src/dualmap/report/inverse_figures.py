"""Figures of the inverse map: learning curves per initialisation, weight displacement, pair persistence,
and virtual points moving during pair-space training — drawn from saved results."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection

from ._common import median_band, save_figures

__all__ = ["plot_learning_curves", "plot_displacement", "plot_persistence", "plot_virtual_points_2d",
           "inverse_figures"]

_METRIC_LABELS = {"val_loss": "test loss", "train_loss": "train loss", "val_metric": "test accuracy / R²",
                  "train_metric": "train accuracy / R²"}


def _inits(comparison):
    return comparison.config.get("inits", list(comparison.curves))


def plot_learning_curves(comparison, *, keys=("train_loss", "val_loss", "val_metric")):
    """Per init, the median over seeds (line) and the range over seeds (band) of each curve against the step."""
    fig, axes = plt.subplots(1, len(keys), figsize=(5.2 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for init in _inits(comparison):
            runs = list(comparison.curves[init].values())
            steps = np.asarray(runs[0]["step"], dtype=float)
            median_band(ax, steps, [run[key] for run in runs], label=init, lw=1.5)
        ax.set_xscale("symlog", linthresh=max(1.0, float(steps[1]) if len(steps) > 1 else 1.0))
        ax.set_xlabel("training step")
        ax.set_ylabel(_METRIC_LABELS.get(key, key))
        if "loss" in key:
            ax.set_yscale("log")
    axes[0, 0].legend(fontsize=8)
    config = comparison.config
    fig.suptitle(f"{config.get('dataset')} {'-'.join(map(str, config.get('widths', [])))} {config.get('activation')}, "
                 f"{config.get('optimizer')} lr={config.get('lr')}: median over seeds, band = range", fontsize=9)
    fig.tight_layout()
    return fig


def plot_displacement(comparison):
    """Relative weight change ``‖W_T − W_0‖/‖W_0‖`` per layer and init (median over seeds, bars = range)."""
    inits = _inits(comparison)
    n_layers = len(comparison.rows[0]["displacement"])
    fig, ax = plt.subplots(figsize=(1.4 * len(inits) * n_layers / 2 + 3, 3.4))
    width = 0.8 / n_layers
    for layer in range(n_layers):
        values = [[r["displacement"][layer] for r in comparison.rows if r["init"] == init] for init in inits]
        median = [np.median(v) for v in values]
        low = [np.median(v) - np.min(v) for v in values]
        high = [np.max(v) - np.median(v) for v in values]
        label = "readout" if layer == n_layers - 1 else f"layer {layer + 1}"
        ax.bar(np.arange(len(inits)) + layer * width, median, width, yerr=[low, high], label=label, capsize=2)
    ax.set_xticks(np.arange(len(inits)) + width * (n_layers - 1) / 2, inits)
    ax.set_yscale("log")
    ax.set_ylabel("‖W_T − W_0‖ / ‖W_0‖")
    ax.legend(fontsize=8)
    ax.set_title("how far training moves each layer", fontsize=10)
    fig.tight_layout()
    return fig


def plot_persistence(comparison):
    """Fraction of neurons still on their step-0 pair (mean over layers) against the step, per init."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for init in _inits(comparison):
        rows = [r for r in comparison.rows if r["init"] == init and r["persistence"]]
        if not rows:
            continue
        steps = np.asarray(rows[0]["persistence_steps"], dtype=float)
        median_band(ax, steps, [np.mean(r["persistence"], axis=1) for r in rows], marker="o", ms=3, label=init)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("training step")
    ax.set_ylabel("fraction of neurons on their step-0 pair")
    ax.legend(fontsize=8)
    ax.set_title("pair persistence", fontsize=10)
    fig.tight_layout()
    return fig


def plot_virtual_points_2d(run, X, y=None, *, layer: int = 0, checkpoints=None):
    """2-D data: the virtual pairs of a pair-space run (segment p → q) at selected checkpoints, and the paths
    the points took (grey)."""
    if run.points is None:
        raise ValueError("this run was not trained in pair space (no virtual points recorded)")
    X = np.asarray(X)
    if X.shape[1] != 2:
        raise ValueError(f"virtual points can be drawn over the data only for 2-D inputs; X has {X.shape[1]} features")
    T = len(run.points)
    columns = sorted({0, T // 2, T - 1}) if checkpoints is None else [c % T for c in checkpoints]
    fig, axes = plt.subplots(1, len(columns), figsize=(3.4 * len(columns), 3.5), squeeze=False)
    paths_p = np.stack([run.points[t][0][layer] for t in range(T)], axis=1)     # (m, T, 2)
    paths_q = np.stack([run.points[t][1][layer] for t in range(T)], axis=1)
    for ax, t in zip(axes[0], columns):
        ax.scatter(X[:, 0], X[:, 1], c=y if y is not None else "0.7", s=3, cmap="coolwarm", alpha=0.4, linewidths=0)
        ax.add_collection(LineCollection(np.concatenate([paths_p[:, :t + 1], paths_q[:, :t + 1]]), colors="0.5",
                                         linewidths=0.5))
        p, q = run.points[t][0][layer], run.points[t][1][layer]
        ax.add_collection(LineCollection(np.stack([p, q], axis=1), colors="k", linewidths=0.7))
        ax.plot(p[:, 0], p[:, 1], "k.", ms=2)
        ax.set_aspect("equal")
        ax.set_title(f"step {run.steps[t]}", fontsize=9)
    fig.suptitle(f"layer {layer + 1}: virtual pairs (p ● → q) and their paths during pair-space training", fontsize=9)
    fig.tight_layout()
    return fig


def inverse_figures(comparison, out_dir, *, dpi: int = 110) -> list[Path]:
    """Write the learning curves, displacement and persistence figures of a comparison to ``out_dir``."""
    figures = {"learning_curves": plot_learning_curves(comparison), "displacement": plot_displacement(comparison)}
    if any(r["persistence"] for r in comparison.rows):
        figures["persistence"] = plot_persistence(comparison)
    return save_figures(figures, out_dir, dpi)
