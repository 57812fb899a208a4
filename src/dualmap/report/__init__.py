"""Figures (matplotlib) and reports, drawn from saved results without recomputing them."""

from .trajectory_figures import (
    animate_pairs_2d,
    plot_importance_heatmap,
    plot_pairs_2d,
    plot_top_images,
    plot_trajectory_curves,
    trajectory_figures,
)

__all__ = ["animate_pairs_2d", "plot_importance_heatmap", "plot_pairs_2d", "plot_top_images",
           "plot_trajectory_curves", "trajectory_figures"]
