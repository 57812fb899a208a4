"""Figures (matplotlib) and reports, drawn from saved results without recomputing them.

:func:`save_figures` writes figures atomically (``{name: figure}`` → ``name.png``), for every caller that draws its
own (the study's report, the sweep).
"""

from ._common import save_figures
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

__all__ = ["animate_pairs_2d", "inverse_figures", "plot_displacement", "plot_importance_heatmap",
           "plot_learning_curves", "plot_pairs_2d", "plot_persistence", "plot_top_images", "plot_trajectory_curves",
           "plot_virtual_points_2d", "save_figures", "trajectory_figures"]
