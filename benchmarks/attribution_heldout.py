"""Remove-and-retrain judged on held-out test points (issue 12, the study's query split).

    python benchmarks/attribution_heldout.py                 # digits, 1×256 ReLU, Adam, 50 epochs, 5 seeds

`docs/findings/attribution.md` ranks and judges on the same (whole) test split. The study's attribute stage
splits it (``attribution.query_fraction`` = 0.5): the query half ranks, the other half judges. The study's own
run (signed ranking, held-out judging) is ``dualmap run --set attribution.enabled=true``; this script adds the
two conditions that say where the difference comes from:

* ``magnitude_heldout``: rank by the score's magnitude, judge on the held-out half;
* ``signed_query_on_itself``: rank by the query half's signed score and judge on that same half (the
  literature's set-up, with half the query points).

Removal only (map and TracIn-CP), one torch thread, retraining one run after another.
Writes benchmarks/results/attribution_heldout.json.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

torch.set_num_threads(1)
import dualmap as dm  # noqa: E402
from dualmap._io import json_default  # noqa: E402
from dualmap.attribution import validate  # noqa: E402
from dualmap.attribution.protocols import DEFAULT_METHODS, query_split  # noqa: E402

RESULTS = Path(__file__).parent / "results"
METHODS = {name: DEFAULT_METHODS[name] for name in ("map", "tracin")}
TRAINING = dict(widths=(256,), activation="relu", optimizer="adam", lr=1e-3, epochs=50, batch_size=128,
                checkpoints=10)
REMOVAL = dict(fractions=(0.05, 0.1, 0.2), seeds=(0, 1, 2, 3, 4), protocols=("removal",), seed=0)


def main() -> None:
    ds = dm.load_dataset("digits", seed=0)
    query, _ = query_split(ds.y_test, 0.5, seed=0, task=ds.task)
    on_itself = dm.Dataset(X_train=ds.X_train, y_train=ds.y_train, X_test=ds.X_test[query], y_test=ds.y_test[query],
                           task=ds.task, name="digits (query half)", n_classes=ds.n_classes)
    conditions = {"magnitude_heldout": (ds, dict(rank="magnitude", query_fraction=0.5)),
                  "signed_query_on_itself": (on_itself, dict(rank="signed", query_fraction=None))}
    payload = {"machine": {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(),
                           "cpu": platform.processor() or platform.machine(), "load": os.getloadavg(),
                           "python": sys.version.split()[0], "torch": torch.__version__},
               "conditions": {}}
    for name, (data, options) in conditions.items():
        started = time.perf_counter()
        result = validate(data, methods=METHODS, **TRAINING, **REMOVAL, **options)
        print(f"== {name} ({time.perf_counter() - started:.0f} s)\n{result.table()}", flush=True)
        payload["conditions"][name] = dict(result.to_dict(), wall_seconds=time.perf_counter() - started)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "attribution_heldout.json"
    path.write_text(json.dumps(payload, indent=1, default=json_default))
    print("wrote", path)
    for name, result in payload["conditions"].items():
        for row in result["removal"]:
            print(f"{name:24s} {row['method']:7s} {row['fraction']:.2f}  top−bottom {row['top_minus_bottom']:+.3f} "
                  f"({row['top_minus_bottom_in_se']:+.1f} SE)  top−random {row['top_minus_random']:+.3f} "
                  f"({row['top_minus_random_in_se']:+.1f} SE)")


if __name__ == "__main__":
    main()
