"""A grid of studies, fanned out over worker processes with ``dask.distributed``.

A *grid file* (YAML, or the same mapping as a dict) has two top-level keys::

    base:                         # optional: a partial study config applied to every run
      report: {figures: false}
      refine: {enabled: false}
    grid:                         # dotted keys -> non-empty lists; the sweep is their cross product
      dataset.name: [digits, wine]
      network.width: [64, 128]    # shorthand: network.width x network.depth -> network.widths = [width] * depth
      network.depth: [1, 2]
      convert.method: [joint, function]
      seed: [0, 1, 2]

Every grid point is a fully resolved :class:`~dualmap.study.config.StudyConfig`; its
:func:`~dualmap.study.config.config_hash` names its folder ``out/runs/<hash>/``. A run is *finished* when
``out/runs/<hash>/metrics.json`` exists and says ``"status": "complete"``; finished runs are never
resubmitted, so a sweep that was stopped part-way (or that failed for some runs) is resumed by running the
same command again. A run that raises is caught in its worker and leaves ``error.json`` (type, message,
traceback, config hash) instead; the other runs go on, and the next sweep retries it.

When every run is done, the sweep writes ``out/sweep.csv`` and ``out/sweep.parquet`` (one row per run: the
grid values, the hash, the status, the headline metrics, the error), ``out/grid.yaml`` (the grid as given),
``out/sweep.json`` (counts, backend, timings) and a few summary figures under ``out/figures/``. Every file
is written atomically (a temporary file in the same folder, then a rename).

Backends: a ``dask.distributed`` ``LocalCluster`` of ``workers`` single-threaded worker processes (the
default), an existing dask scheduler (``scheduler="tcp://host:8786"``; its workers must import ``dualmap``
and see ``out`` on a shared file system), a local process pool when dask is not installed (or
``scheduler="processes"``), or this process one run after another (``scheduler="synchronous"``, for
debugging).

The package, one module per job:

- ``grid.py``: the grid file → its runs (:func:`expand_grid`, :class:`SweepRun`, :func:`grid_id`);
- ``state.py``: a run folder's state (finished, failed, unreadable) and one run in a worker;
- ``orchestrate.py``: :func:`run_sweep` — the folder, the back-end, the plan, the summary;
- ``tables.py``: ``sweep.csv`` / ``sweep.parquet``, the headline columns read from the pipeline;

the back-ends are src/dualmap/_parallel.py (the attribution protocols use them too) and the figures
src/dualmap/report/sweep_figures.py.
"""

# grid_id, watch_parent and start_backend are not in __all__ but importable from here as before the split
from ..._parallel import start_backend as start_backend
from ..._parallel import watch_parent as watch_parent
from .grid import SweepRun, expand_grid
from .grid import grid_id as grid_id
from .orchestrate import SweepResult, run_sweep

#: The old private name of :func:`dualmap._parallel.start_backend`, kept importable from here.
_start_backend = start_backend

__all__ = ["SweepResult", "SweepRun", "expand_grid", "run_sweep"]
