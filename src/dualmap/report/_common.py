"""Helpers every figure module shares."""

from __future__ import annotations

from pathlib import Path

# No matplotlib.use() here: importing a figure module must not switch a notebook user's backend. The command
# line sets MPLBACKEND=Agg (src/dualmap/cli.py); without a display matplotlib falls back to Agg by itself.
import matplotlib.pyplot as plt
import numpy as np

__all__ = ["median_band", "save_figures", "save_animation"]


def median_band(ax, x, values, **line_options):
    """Plot the median over rows of ``values`` (runs × points) against ``x``, with the range over runs as a band."""
    values = np.asarray(values, dtype=float)
    line, = ax.plot(x, np.median(values, axis=0), **line_options)
    if len(values) > 1:
        ax.fill_between(x, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.2)
    return line


def save_figures(figures: dict, out_dir, dpi: int) -> list[Path]:
    """Write ``{name: figure}`` as ``out_dir/name.png`` atomically (a complete new image or the old one, never
    half a file), close them, and return the paths."""
    from .._io import atomic_open

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    try:
        for name, fig in figures.items():
            path = out_dir / f"{name}.png"
            with atomic_open(path, "wb") as handle:
                fig.savefig(handle, dpi=dpi, format="png")
            paths.append(path)
    finally:
        for fig in figures.values():
            plt.close(fig)
    return paths


def save_animation(animation, path, writer) -> Path:
    """``animation.save`` to a temporary file next to ``path``, then renamed onto it (atomic)."""
    from .._io import atomic_path

    path = Path(path)
    with atomic_path(path, suffix=path.suffix) as tmp:     # the writer tells the format by the extension
        animation.save(tmp, writer=writer)
    return path
