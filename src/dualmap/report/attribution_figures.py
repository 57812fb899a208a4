"""Figures of the counterfactual tests of training-point scores (:func:`dualmap.attribution.validate`).

Everything is drawn from a :class:`~dualmap.attribution.ValidationResult` or its ``to_dict()`` (the JSON it
saves), so a report re-draws them without retraining anything.
"""

from __future__ import annotations

import numpy as np

from ._common import plt, save_figures

__all__ = ["attribution_figures", "removal_figure", "lds_figure", "mislabel_figure"]

_COLOURS = {"map": "C0", "tracin": "C3", "importance": "C2", "swim_density": "C4", "random": "0.5"}


def _as_dict(result) -> dict:
    return result if isinstance(result, dict) else result.to_dict()


_OTHERS = ("C1", "C5", "C6", "C8", "C9", "0.2", "C7")


def _colour(method: str, index: int) -> str:
    """A fixed colour for the named methods, the others from a palette that avoids them."""
    return _COLOURS.get(method, _OTHERS[index % len(_OTHERS)])


def removal_figure(result):
    """Test loss after removing the top (solid) and bottom (dashed) fraction by each method, and a random
    fraction (grey); mean ± standard error over the retraining seeds, 0 % = the whole training set."""
    result = _as_dict(result)
    rows = result["removal"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    if not rows:
        ax.text(0.5, 0.5, "no remove-and-retrain results", ha="center", va="center", transform=ax.transAxes)
        return fig
    fractions = sorted({r["fraction"] for r in rows})
    first = rows[0]
    x = np.array([0.0, *fractions]) * 100
    random_mean = [first["loss_full"]] + [next(r for r in rows if r["fraction"] == f)["loss_random"] for f in fractions]
    random_se = [first["loss_full_se"]] + [next(r for r in rows if r["fraction"] == f)["loss_random_se"]
                                           for f in fractions]
    ax.errorbar(x, random_mean, yerr=random_se, color="0.5", marker="o", ms=3, capsize=2, label="random")
    for index, method in enumerate(sorted({r["method"] for r in rows})):
        entries = [next(r for r in rows if r["method"] == method and r["fraction"] == f) for f in fractions]
        for side, style in (("top", "-"), ("bottom", "--")):
            mean = [first["loss_full"]] + [e[f"loss_{side}"] for e in entries]
            se = [first["loss_full_se"]] + [e[f"loss_{side}_se"] for e in entries]
            ax.errorbar(x, mean, yerr=se, color=_colour(method, index), linestyle=style, marker="o", ms=3, capsize=2,
                        label=f"{method}, {side}")
    ax.set_xlabel("training points removed (%)")
    ax.set_ylabel("test loss after retraining")
    setting = result.get("setting", {})
    ax.set_title(f"remove and retrain — {setting.get('dataset', '')} ({len(setting.get('seeds', []))} seeds)",
                 fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    return fig


def _bars(ax, values: dict, errors: dict, ylabel: str, reference: float):
    methods = list(values)
    positions = np.arange(len(methods))
    ax.bar(positions, [values[m] for m in methods], yerr=[errors.get(m, 0.0) for m in methods], capsize=3,
           color=[_colour(m, i) for i, m in enumerate(methods)])
    ax.axhline(reference, color="k", linewidth=0.8)
    ax.set_xticks(positions, methods, rotation=20, fontsize=8)
    ax.set_ylabel(ylabel)


def lds_figure(result):
    """The linear datamodeling score of every method (mean over test points ± standard error)."""
    result = _as_dict(result)
    fig, ax = plt.subplots(figsize=(4.8, 3.4), layout="constrained")
    values = {m: v["lds"] for m, v in result["lds"].items()}
    _bars(ax, values, {m: v["se"] for m, v in result["lds"].items()}, "LDS (Spearman)", 0.0)
    ax.set_title(f"linear datamodeling score — {result.get('setting', {}).get('n_subsets', '')} half subsets",
                 fontsize=10)
    return fig


def mislabel_figure(result):
    """ROC AUC of every method's self-score for the flipped labels (0.5 = chance)."""
    result = _as_dict(result)
    fig, ax = plt.subplots(figsize=(4.8, 3.4), layout="constrained")
    _bars(ax, {m: v["auc"] for m, v in result["mislabel"].items()}, {}, "AUC", 0.5)
    ax.set_ylim(0, 1)
    flip = result.get("setting", {}).get("flip", 0.1)
    ax.set_title(f"mislabel detection — {100 * flip:.0f} % labels flipped", fontsize=10)
    return fig


def attribution_figures(result, out_dir, *, dpi: int = 120) -> list:
    """Write ``attribution_removal.png``, ``attribution_lds.png`` and ``attribution_mislabel.png`` (those with
    results) to ``out_dir``; return their paths."""
    result = _as_dict(result)
    figures = {}
    if result.get("removal"):
        figures["attribution_removal"] = removal_figure(result)
    if result.get("lds"):
        figures["attribution_lds"] = lds_figure(result)
    if result.get("mislabel"):
        figures["attribution_mislabel"] = mislabel_figure(result)
    return save_figures(figures, out_dir, dpi)
