"""Figures of a :class:`~dualmap.Trajectory` — all drawn from the saved arrays, no map is recomputed.

Every function takes a trajectory (and optionally a matplotlib ``Axes``) and returns the figure, so the
caller decides where it goes; :func:`trajectory_figures` writes the whole set to a folder.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.collections import LineCollection

from ._common import save_animation, save_figures

__all__ = ["plot_importance_heatmap", "plot_top_images", "plot_pairs_2d", "animate_pairs_2d",
           "plot_trajectory_curves", "trajectory_figures", "guess_image_shape"]


def _step_axis(ax, steps):
    """Log-scaled step axis that still shows step 0 (linear below 1)."""
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=0, right=max(1, steps[-1]) * 1.05)
    ax.set_xlabel("training step")


def _checkpoint_choice(trajectory, checkpoints):
    T = trajectory.n_checkpoints
    if checkpoints is None:
        checkpoints = sorted({0, T // 3, (2 * T) // 3, T - 1})
    return [c % T for c in checkpoints]


def guess_image_shape(n_features: int):
    """``(s, s)`` when the feature count is a perfect square ≥ 16 (8×8 digits, 28×28 Fashion-MNIST), else None."""
    side = int(round(np.sqrt(n_features)))
    return (side, side) if side * side == n_features and side >= 4 else None


def plot_importance_heatmap(trajectory, *, n_points: int = 30, ax=None):
    """Importance over time of the ``n_points`` points with the highest peak importance (rows, sorted by the
    checkpoint at which they peak, earliest at the top), against the checkpoint (columns)."""
    importance = trajectory.importance
    peak = importance.max(axis=0)
    top = np.argsort(-peak, kind="stable")[:n_points]
    top = top[np.argsort(importance[:, top].argmax(axis=0), kind="stable")]
    fig, ax = _figure(ax, (max(6, 0.35 * trajectory.n_checkpoints + 2), 0.22 * len(top) + 1.8))
    image = ax.imshow(importance[:, top].T, aspect="auto", cmap="viridis", interpolation="nearest", vmin=0)
    ax.set_yticks(range(len(top)), [_point_label(trajectory, i) for i in top], fontsize=7)
    ticks = np.unique(np.linspace(0, trajectory.n_checkpoints - 1, min(8, trajectory.n_checkpoints)).astype(int))
    ax.set_xticks(ticks, [str(trajectory.steps[t]) for t in ticks])
    ax.set_xlabel("checkpoint (training step)")
    ax.set_ylabel("training point: #row (class)" if trajectory.y is not None else "training point: #row")
    ax.set_title(f"importance of the {len(top)} most important of {trajectory.n_points} points\n"
                 "rows sorted by the checkpoint where each point peaks (earliest at the top)", fontsize=9)
    fig.colorbar(image, ax=ax, label="importance")
    return fig


def _point_label(trajectory, index):
    if trajectory.y is not None and np.ndim(trajectory.y) == 1:
        value = trajectory.y[index]
        floating = np.issubdtype(np.asarray(value).dtype, np.floating)
        return f"#{index} ({value:.2f})" if floating else f"#{index} ({value})"
    return f"#{index}"


def plot_top_images(trajectory, *, checkpoints=None, n_images: int = 8, image_shape=None, class_names=None,
                    images=None, value_range=None):
    """The ``n_images`` most important training images at selected checkpoints (rows), with their class.

    ``images`` are the pixels to draw, row for row the trajectory's points (default ``trajectory.X``): pass the
    raw inputs as the data set stores them (the map works on standardised ones, which look like noise).
    Every image uses one grey scale, ``value_range`` (default: the range over all of ``images``), dark = high.
    """
    images = trajectory.X if images is None else np.asarray(images)
    if images.shape[0] != trajectory.X.shape[0]:
        raise ValueError(f"images has {images.shape[0]} rows; the trajectory has {trajectory.X.shape[0]} points")
    image_shape = image_shape or guess_image_shape(images.shape[1])
    if image_shape is None:
        raise ValueError(f"cannot draw {images.shape[1]}-dimensional points as images; pass image_shape")
    low, high = value_range if value_range is not None else (float(np.min(images)), float(np.max(images)))
    rows = _checkpoint_choice(trajectory, checkpoints)
    importance = trajectory.importance
    fig, axes = plt.subplots(len(rows), n_images, figsize=(1.3 * n_images, 1.5 * len(rows)), squeeze=False)
    for r, t in enumerate(rows):
        top = np.argsort(-importance[t], kind="stable")[:n_images]
        for c, index in enumerate(top):
            ax = axes[r, c]
            ax.imshow(images[index].reshape(image_shape), cmap="gray_r", vmin=low, vmax=high,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            label = ""
            if trajectory.y is not None and np.ndim(trajectory.y) == 1:
                value = trajectory.y[index]
                label = str(class_names[int(value)]) if class_names is not None else str(value)
            ax.set_title(f"{label}\n{importance[t, index]:.1e}", fontsize=7)
        axes[r, 0].set_ylabel(f"step {trajectory.steps[t]}", fontsize=8)
    fig.suptitle(f"most important training points (class, importance) at selected checkpoints; one grey scale, "
                 f"{low:g} (white) to {high:g} (black)", fontsize=9)
    fig.tight_layout()
    return fig


def _segments(trajectory, t, layer=0):
    pairs = trajectory.pairs[t][layer]
    return np.stack([trajectory.X[pairs[:, 0], :2], trajectory.X[pairs[:, 1], :2]], axis=1)


def _scatter_data(ax, trajectory):
    colors = trajectory.y if (trajectory.y is not None and np.ndim(trajectory.y) == 1) else "0.6"
    ax.scatter(trajectory.X[:, 0], trajectory.X[:, 1], c=colors, s=4, cmap="coolwarm", alpha=0.5, linewidths=0)
    ax.set_aspect("equal")


def plot_pairs_2d(trajectory, *, checkpoints=None, layer: int = 0):
    """2-D data: every neuron's pair drawn as a segment from its first point (dot) to its second, over
    the data, at selected checkpoints."""
    if trajectory.X.shape[1] != 2:
        raise ValueError("pairs can be drawn over the data only for 2-D inputs; "
                         f"X has {trajectory.X.shape[1]} features")
    columns = _checkpoint_choice(trajectory, checkpoints)
    fig, axes = plt.subplots(1, len(columns), figsize=(3.2 * len(columns), 3.4), squeeze=False)
    for ax, t in zip(axes[0], columns):
        _scatter_data(ax, trajectory)
        segments = _segments(trajectory, t, layer)
        ax.add_collection(LineCollection(segments, colors="k", linewidths=0.6, alpha=0.7))
        ax.plot(segments[:, 0, 0], segments[:, 0, 1], "k.", markersize=2)
        ax.set_title(f"step {trajectory.steps[t]}", fontsize=9)
    fig.suptitle(f"layer {layer + 1}: pairs (first point ●) over the data", fontsize=9)
    fig.tight_layout()
    return fig


def animate_pairs_2d(trajectory, path, *, layer: int = 0, fps: int = 4):
    """Animated GIF of :func:`plot_pairs_2d` over all checkpoints; returns the path written."""
    if trajectory.X.shape[1] != 2:
        raise ValueError("pairs can be drawn over the data only for 2-D inputs; "
                         f"X has {trajectory.X.shape[1]} features")
    fig, ax = plt.subplots(figsize=(4, 4))
    _scatter_data(ax, trajectory)
    lines = LineCollection(_segments(trajectory, 0, layer), colors="k", linewidths=0.6, alpha=0.7)
    ax.add_collection(lines)
    title = ax.set_title("")

    def frame(t):
        lines.set_segments(_segments(trajectory, t, layer))
        title.set_text(f"layer {layer + 1}, step {trajectory.steps[t]}")
        return lines, title

    animation = FuncAnimation(fig, frame, frames=trajectory.n_checkpoints, blit=False)
    try:
        return save_animation(animation, path, PillowWriter(fps=fps))
    finally:
        plt.close(fig)


def _zero_based(ax, values, top=None):
    """Start the y-axis at 0 (so a small change looks small) and end it at ``top`` or just above the data."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    upper = top if top is not None else (float(finite.max()) * 1.1 if finite.size and finite.max() > 0 else 1.0)
    ax.set_ylim(min(0.0, float(finite.min()) if finite.size else 0.0), upper)


def plot_trajectory_curves(trajectory):
    """Switch rate, map quality, drift (per layer), concentration and SWIM alignment against the step, in two
    rows; every y-axis starts at a meaningful zero (or spans the quantity's whole range) and says so."""
    steps = trajectory.steps
    between = (steps[:-1] + steps[1:]) / 2                     # interval quantities at the interval's middle
    with plt.rc_context({"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 10}):
        fig, axes = plt.subplots(2, 3, figsize=(15, 8.2))
        axes = axes.ravel()
        for layer in range(len(trajectory.widths)):
            label = f"layer {layer + 1}"
            axes[0].plot(between, trajectory.switch_rate[:, layer], "o-", ms=4, label=label)
            axes[1].plot(steps, trajectory.quality[:, layer], "o-", ms=4, label=label)
            axes[2].plot(between, trajectory.drift[:, layer], "o-", ms=4, label=label)
        axes[0].set_ylim(0, 1.02)
        axes[0].set_ylabel("fraction of neurons whose pair changed")
        quality = np.asarray(trajectory.quality, dtype=float)
        axes[1].set_ylim(min(0.0, float(np.nanmin(quality)) - 0.05) if quality.size else 0.0, 1.02)
        axes[1].set_ylabel("median activation correlation")
        _zero_based(axes[2], trajectory.drift)
        axes[2].set_ylabel("neuron drift (W₂, OT)")
        axes[3].plot(steps, trajectory.concentration, "o-", ms=4, color="k")
        _zero_based(axes[3], trajectory.concentration)
        axes[3].set_ylabel(f"effective number of points (of {trajectory.n_points})")
        axes[4].plot(steps, trajectory.swim_alignment, "o-", ms=4, color="k")
        axes[4].axhline(0.0, color="0.7", lw=0.8)
        axes[4].set_ylim(-1.02, 1.02)
        axes[4].set_ylabel("Spearman(importance, SWIM density)")
        output_r2 = np.asarray(getattr(trajectory, "output_r2", []), dtype=float)
        if output_r2.size == len(steps):
            axes[5].plot(steps, output_r2, "o-", ms=4, color="k")
            axes[5].set_ylim(min(0.0, float(np.nanmin(output_r2)) - 0.05) if np.isfinite(output_r2).any() else 0.0,
                             1.02)
            axes[5].set_ylabel("output R², converted vs checkpoint")
        else:
            axes[5].set_visible(False)
        titles = ["switch rate (axis 0–1)", "map quality (axis from 0 to 1)", "drift (axis from 0)",
                  "concentration (axis from 0)", "SWIM alignment (axis −1 to 1)",
                  "converted net vs checkpoint (axis to 1)"]
        for ax, title in zip(axes, titles):
            _step_axis(ax, steps)
            ax.set_title(title)
            ax.grid(alpha=0.3)
        if len(trajectory.widths) > 1:
            axes[0].legend()
        fig.tight_layout()
    return fig


def trajectory_figures(trajectory, out_dir, *, image_shape=None, class_names=None, dpi: int = 110, images=None,
                       value_range=None) -> list[Path]:
    """Write every figure that applies to this trajectory's data to ``out_dir``; return the paths.

    ``images`` / ``value_range``: what :func:`plot_top_images` draws (the raw inputs, one grey scale)."""
    figures = {"trajectory_curves": plot_trajectory_curves(trajectory),
               "importance_heatmap": plot_importance_heatmap(trajectory)}
    n_features = trajectory.X.shape[1] if images is None else np.shape(images)[1]
    if trajectory.X.shape[1] == 2:
        figures["pairs_2d"] = plot_pairs_2d(trajectory)
    elif (image_shape or guess_image_shape(n_features)) is not None:
        figures["top_images"] = plot_top_images(trajectory, image_shape=image_shape, class_names=class_names,
                                                images=images, value_range=value_range)
    paths = save_figures(figures, out_dir, dpi)
    if trajectory.X.shape[1] == 2:
        paths.append(animate_pairs_2d(trajectory, Path(out_dir) / "pairs_2d.gif"))
    return paths


def _figure(ax, size):
    if ax is None:
        fig, ax = plt.subplots(figsize=size)
        return fig, ax
    return ax.figure, ax
