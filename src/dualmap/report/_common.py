"""Helpers every figure module shares."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")   # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["median_band", "save_figures"]


def median_band(ax, x, values, **line_options):
    """Plot the median over rows of ``values`` (runs × points) against ``x``, with the range over runs as a band."""
    values = np.asarray(values, dtype=float)
    line, = ax.plot(x, np.median(values, axis=0), **line_options)
    if len(values) > 1:
        ax.fill_between(x, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.2)
    return line


def save_figures(figures: dict, out_dir, dpi: int) -> list[Path]:
    """Write ``{name: figure}`` as ``out_dir/name.png``, close them, and return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures.items():
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        paths.append(path)
    return paths
