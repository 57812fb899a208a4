"""Probe (issue 11): would a *lighter* search on warm checkpoints make tracking cheap without losing the map?

Tracks a run checkpoint by checkpoint like ``dm.track`` (the first map cold with the defaults, every later map
warm-started from the previous one), but the warm maps search with reduced options (``VARIANTS``); the
``*fresh`` variants also take a new seed per checkpoint, so that the random candidates differ between
checkpoints and the search accumulates over the trajectory. Prints the maps' time over one cold map of the
final checkpoint, and both final maps' ``r2_through`` on the test split.

    OMP_NUM_THREADS=1 python benchmarks/warm_search_probe.py fashion lightfresh  # Fashion 10k, 784-256-256, 20 ckpts
    OMP_NUM_THREADS=1 python benchmarks/warm_search_probe.py digits default      # digits 64-64, 8 ckpts, seed 3

Appends one JSON line to ``benchmarks/results/warm_search_probe.jsonl``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

import dualmap as dm
from dualmap.maps.context import DataContext, SearchOptions, WarmStart
from dualmap.maps.forward import map_network
from dualmap.metrics import output_r2

#: the warm maps' search options (the cold first map always uses the defaults)
VARIANTS = {
    "default": {},
    "light": dict(n_anchors=4, n_partners=4, n_random=16, refine_rounds=1),
    "lightfresh": dict(n_anchors=4, n_partners=4, n_random=16, refine_rounds=1, fresh=True),
    "light2fresh": dict(n_anchors=4, n_partners=8, n_random=16, refine_rounds=1, n_list=16, fresh=True),
}
#: data → (loader arguments, hidden widths, epochs, checkpoints, seed)
RUNS = {"fashion": (dict(name="fashion_mnist", n_train=10_000), [256, 256], 10, 20, 0),
        "digits": (dict(name="digits"), [64, 64], 15, 8, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", choices=sorted(RUNS))
    parser.add_argument("variant", choices=sorted(VARIANTS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    loader, widths, epochs, n_checkpoints, seed = RUNS[args.data]
    ds = dm.load_dataset(**loader)
    run = dm.train(widths, ds.X_train, ds.y_train, activation="relu", epochs=epochs, batch_size=128,
                   checkpoints=n_checkpoints, seed=seed, X_val=ds.X_test, y_val=ds.y_test, progress=False,
                   optimizer="adam", lr=1e-3)
    checkpoints = run.checkpoints
    base = SearchOptions(seed=seed)
    variant = dict(VARIANTS[args.variant])
    fresh = variant.pop("fresh", False)
    context = DataContext.build(ds.X_train, n_features=ds.X_train.shape[1], n_eval=base.n_eval, seed=seed,
                                n_neighbors=base.n_neighbors)
    started, previous, seconds, settled = time.perf_counter(), None, [], []
    for t, (_, network) in enumerate(checkpoints):
        warm, options = None, base
        if previous is not None:
            warm = WarmStart(previous, checkpoints[t - 1][1])
            options = dataclasses.replace(base, **variant, **({"seed": seed * 1000 + t} if fresh else {}))
        map_started = time.perf_counter()
        previous = map_network(network, context, options, warm=warm)
        seconds.append(round(time.perf_counter() - map_started, 1))
        settled.append(previous.params.get("settled"))
    total = time.perf_counter() - started
    final = checkpoints[-1][1]
    map_started = time.perf_counter()
    cold = dm.to_pairs(final, ds.X_train, seed=seed, progress=False)
    one = time.perf_counter() - map_started
    teacher = final.predict(ds.X_test)

    def through(pair_map):
        return output_r2(pair_map.to_mlp(ds.X_train, readout="trained").predict(ds.X_test), teacher)

    out = dict(data=args.data, variant=args.variant, date=time.strftime("%Y-%m-%d %H:%M"), one=one,
               total_maps=total, ratio=total / one, r2_warm=through(previous), r2_cold=through(cold),
               same=[float(np.mean(np.all(a == b, axis=1))) for a, b in zip(previous.pairs, cold.pairs)],
               secs=seconds, settled=settled)
    print(json.dumps(out))
    with open(Path(__file__).parent / "results" / "warm_search_probe.jsonl", "a") as file:
        file.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
