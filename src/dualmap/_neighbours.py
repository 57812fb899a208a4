"""Nearest rows of a point set: exact Euclidean search, shared by the forward maps (candidate partners,
neighbour moves in ``maps/``) and by :meth:`dualmap.inverse.PairNetwork.snap` (snapping virtual points onto data).

A core utility (layer 1 of docs/architecture.md), so that both can import it.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["nearest_points"]


def nearest_points(Z: torch.Tensor, queries: torch.Tensor, k: int, *, chunk_size: int = 4096) -> torch.Tensor:
    """Indices of the ``k`` rows of ``Z`` nearest (Euclidean) to each query, nearest first.

    On the CPU this is a faiss ``IndexFlatL2`` (exact search); on a GPU a chunked torch brute force.

    Returns
    -------
    torch.Tensor of shape (n_queries, k), int64
    """
    k = min(k, Z.shape[0])
    if Z.device.type == "cpu":
        import faiss

        index = faiss.IndexFlatL2(Z.shape[1])
        index.add(np.ascontiguousarray(Z.float().numpy()))
        _, found = index.search(np.ascontiguousarray(queries.float().numpy()), k)
        return torch.from_numpy(found.astype(np.int64))
    squared = (Z * Z).sum(dim=1)
    found = []
    for start in range(0, len(queries), chunk_size):
        q = queries[start:start + chunk_size]
        distance = squared[None, :] - 2.0 * q @ Z.T
        found.append(torch.topk(distance, k, dim=1, largest=False).indices)
    return torch.cat(found)
