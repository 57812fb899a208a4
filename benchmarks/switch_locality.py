"""How far do switching pairs move? For the saved findings trajectories (benchmarks/out/), the fraction of
pair switches in which each point that changed moved to one of its 16 nearest data points.

    python benchmarks/switch_locality.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

import dualmap as dm
from dualmap._neighbours import nearest_points

OUT = Path(__file__).parent / "out"


def locality(trajectory, k=16, layer=0) -> dict:
    X = torch.from_numpy(np.asarray(trajectory.X, dtype=np.float32))
    neighbors = nearest_points(X, X, k + 1).numpy()                       # row i: i itself and its k neighbours
    local, total = 0, 0
    for before, after in zip(trajectory.pairs[:-1], trajectory.pairs[1:]):
        old, new = before[layer], after[layer]
        changed = np.any(old != new, axis=1)
        for (p0, q0), (p1, q1) in zip(old[changed], new[changed]):
            near = (p1 == p0 or p1 in neighbors[p0]) and (q1 == q0 or q1 in neighbors[q0])
            local += bool(near)
            total += 1
    return {"switches": total, "local_fraction": local / total if total else float("nan")}


def main() -> None:
    rows = {}
    for path in sorted(OUT.glob("*_seed0.npz")):
        rows[path.stem] = locality(dm.Trajectory.load(path))
        print(path.stem, rows[path.stem], file=sys.stderr)
    (Path(__file__).parent / "results" / "dynamics_switch_locality.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
