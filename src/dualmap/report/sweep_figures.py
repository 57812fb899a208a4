"""A sweep's summary figures: each headline metric against hidden width (src/dualmap/study/sweep/), drawn from
the sweep's table without recomputing anything."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from ._common import plt, save_figures

__all__ = ["SWEEP_FIGURE_METRICS", "sweep_figures"]

#: The table columns drawn against width, one figure each.
SWEEP_FIGURE_METRICS = ("gap_closed", "r2_map", "trained_test_score", "converted_test_score")
_MAX_PANELS = 12


def sweep_figures(runs: list[dict], table: list[dict], out_dir, notes: list[str], *,
                  metrics=SWEEP_FIGURE_METRICS, dpi: int = 100) -> list[Path]:
    """For each metric: median (over seeds) against hidden width, a line per ``convert.method``, a panel per
    combination of the other grid keys that vary; a min-max band over seeds. Written as
    ``out_dir/<metric>_vs_width.png``.

    Parameters
    ----------
    runs : list of dict
        One per run of the sweep: ``"values"`` (its grid values as table cells, ``{dotted key: cell}``),
        ``"widths"`` (its hidden widths), ``"method"`` (its ``convert.method``) and ``"seed"``.
    table : list of dict
        The sweep's rows, in the same order (src/dualmap/study/sweep/tables.py): ``"status"`` and the metrics.
    out_dir : str or Path
        Where the figures go.
    notes : list of str
        Why figures were skipped or cut short is appended here.
    metrics : sequence of str, default=SWEEP_FIGURE_METRICS
        The table columns drawn, one figure each.
    dpi : int, default=100

    Returns
    -------
    list of Path
        The figures written (none when the width does not vary, or the layers of a run differ in width).
    """
    widths = [run["widths"] for run in runs]
    if any(len(set(layer_widths)) != 1 for layer_widths in widths):
        notes.append("figures skipped: some runs have hidden layers of different widths")
        return []
    if len({layer_widths[0] for layer_widths in widths}) < 2:
        notes.append("figures skipped: the width does not vary in this grid")
        return []
    grid_keys = list(dict.fromkeys(key for run in runs for key in run["values"]))
    panel_keys = [key for key in grid_keys if key not in ("seed", "network.width", "network.widths",
                                                          "convert.method")]
    factors = []
    for run in runs:
        panel = {key: run["values"].get(key) for key in panel_keys}
        if "network.widths" in grid_keys:
            panel["network.depth"] = len(run["widths"])
        factors.append(panel)
    varying = [key for key in (factors[0] if factors else {}) if len({str(f[key]) for f in factors}) > 1]
    panels = []
    for factor in factors:
        label = tuple((key, factor[key]) for key in varying)
        if label not in panels:
            panels.append(label)
    if len(panels) > _MAX_PANELS:
        notes.append(f"figures show the first {_MAX_PANELS} of {len(panels)} panels ({', '.join(varying)})")
        panels = panels[:_MAX_PANELS]
    methods = list(dict.fromkeys(run["method"] for run in runs))
    several_seeds = len({run["seed"] for run in runs}) > 1

    figures = {}
    for metric in metrics:
        points: dict = {}
        for run, factor, row in zip(runs, factors, table):
            value = row.get(metric)
            if row["status"] != "complete" or not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            label = tuple((key, factor[key]) for key in varying)
            key = (label, run["method"], run["widths"][0])
            points.setdefault(key, []).append(float(value))
        if not points:
            continue
        n_cols = min(3, len(panels))
        n_rows = math.ceil(len(panels) / n_cols)
        fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.2 * n_rows), squeeze=False)
        for ax, label in zip(axes.flat, panels):
            for method in methods:
                xs = sorted(width for (lab, meth, width) in points if lab == label and meth == method)
                if not xs:
                    continue
                values = [points[(label, method, x)] for x in xs]
                line, = ax.plot(xs, [float(statistics.median(v)) for v in values], marker="o", label=method)
                if several_seeds:
                    ax.fill_between(xs, [min(v) for v in values], [max(v) for v in values],
                                    color=line.get_color(), alpha=0.2)
            ax.set_xscale("log", base=2)
            xs_all = sorted({run["widths"][0] for run in runs})
            ax.set_xticks(xs_all, [str(x) for x in xs_all])
            ax.set_xlabel("hidden width")
            ax.set_ylabel(metric)
            ax.set_title(", ".join(f"{key}={value}" for key, value in label) or metric, fontsize=9)
            ax.grid(alpha=0.3)
            if ax is axes.flat[0] and ax.get_legend_handles_labels()[0]:
                ax.legend(title="convert.method", fontsize=8, title_fontsize=8)
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        band = " (median over seeds; band: min–max)" if several_seeds else ""
        fig.suptitle(f"{metric} against hidden width{band}", fontsize=10)
        fig.tight_layout()
        figures[f"{metric}_vs_width"] = fig
    return save_figures(figures, out_dir, dpi=dpi)
