"""The starts of docs/findings/inverse.md §12 over seeds: best final test loss over the three rates per seed, then
the median (and range) over the seeds present, from ``benchmarks/results/inverse_probe_schedule.jsonl``.

    python benchmarks/summarize_inverse_probe.py
"""

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

ROWS = Path(__file__).parent / "results" / "inverse_probe_schedule.jsonl"
#: init name in the rows → column of the table (He and the SWIM default: rows of the default mode / --baseline)
STARTS = {"he": "He", "he_data_kinks": "He, kinks on data points", "swim": "SWIM default (solved readout)",
          "half_swim+half_he": "half SWIM + half He (solved readout)",
          "swim_median_kinks": "SWIM, kinks at the median (readout solved again)",
          "swim_activity_cap_0.9": "SWIM, activity capped at 90 % (readout solved again)",
          "swim_hidden+he_readout": "SWIM, fresh readout",
          "swim_whitened_hidden+he_readout": "SWIM whitened, fresh readout",
          "swim_whitened_centred_kinks+he_readout": "SWIM whitened, kinks through the mean, fresh readout"}


def plain(row) -> bool:
    """A row at a constant rate without the knobs of §9 (ramp, weight decay, smoothing, readout scale, noise)."""
    if row.get("ramp") or row.get("weight_decay") or row.get("smoothing") or row.get("perturb") is not None:
        return False
    return not (row["init"] == "swim" and "start_test_loss" in row)     # --readout-scale rows: a prepared start


def main() -> None:
    best = defaultdict(dict)            # (data, activation, init) → seed → best test loss over the rates
    for line in ROWS.read_text().splitlines():
        row = json.loads(line)
        if row["init"] not in STARTS or not plain(row):
            continue
        key, seed = (row["data"], row["activation"], row["init"]), row["seed"]
        best[key][seed] = min(best[key].get(seed, np.inf), row["test_loss"])
    settings = sorted({key[:2] for key in best})
    print("| start | " + " | ".join(f"{data} {activation}" for data, activation in settings) + " |")
    print("|---|" + "---|" * len(settings))
    for init, label in STARTS.items():
        cells = []
        for data, activation in settings:
            losses = best.get((data, activation, init), {})
            values = np.array([losses[seed] for seed in sorted(losses)])
            cells.append("" if not len(values) else
                         f"{np.median(values):.3f} ({values.min():.3f}–{values.max():.3f}; seeds {sorted(losses)})")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
