"""Figures of the forward map's faithfulness: ``r2_through`` against the number of atoms per neuron."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["through_curve_figure"]

_LINES = (("r2_through", "map", "o-", "#2ca02c"),
          ("r2_through_null_swim", "k SWIM-density pairs, fitted", "s--", "#7f7f7f"),
          ("r2_through_null_uniform", "k uniform pairs, fitted", "^:", "#1f77b4"))


def through_curve_figure(panels: dict, path) -> Path:
    """One panel per setting: median ``r2_through`` (test) against ``k`` for the map and both nulls.

    Parameters
    ----------
    panels : dict title → list of dict
        Rows with ``atoms`` and the three ``r2_through*`` keys (:func:`dualmap.metrics.through_curve`); several
        rows with the same ``atoms`` (seeds) are summarised by their median.
    path : str or Path
        The PNG to write (atomically).
    """
    import matplotlib.pyplot as plt

    from ._common import save_figures

    figure, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.6), squeeze=False)
    for axis, (title, rows) in zip(axes[0], panels.items()):
        ks = sorted({int(r["atoms"]) for r in rows})
        for key, label, style, colour in _LINES:
            values = [np.median([r[key] for r in rows if int(r["atoms"]) == k]) for k in ks]
            axis.plot(ks, values, style, color=colour, label=label)
        axis.set_xscale("log", base=2)
        axis.set_xticks(ks, [str(k) for k in ks])
        axis.set_ylim(min(0.0, axis.get_ylim()[0]), 1.0)
        axis.set_xlabel("atoms per neuron k")
        axis.set_ylabel("r2_through (held-out points)")
        axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    path = Path(path)
    return save_figures({path.stem: figure}, path.parent, dpi=110)[0]
