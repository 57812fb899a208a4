"""Figures (matplotlib) and reports, drawn from saved results without recomputing them."""

from .inverse_figures import (
    inverse_figures,
    plot_displacement,
    plot_learning_curves,
    plot_persistence,
    plot_virtual_points_2d,
)
from .trajectory_figures import (
    animate_pairs_2d,
    plot_importance_heatmap,
    plot_pairs_2d,
    plot_top_images,
    plot_trajectory_curves,
    trajectory_figures,
)

__all__ = ["inverse_figures", "plot_displacement", "plot_learning_curves", "plot_persistence",
           "plot_virtual_points_2d", "animate_pairs_2d", "plot_importance_heatmap", "plot_pairs_2d", "plot_top_images",
           "plot_trajectory_curves", "trajectory_figures"]
