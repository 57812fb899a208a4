"""Markdown tables of the inverse-map results (reads benchmarks/results/inverse_{compare,pairspace}.json).

    python benchmarks/summarize_inverse.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def _ms(values, digits=3):
    values = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    if np.all(np.isnan(values)):
        return "–"
    return f"{np.nanmean(values):.{digits}f} ± {np.nanstd(values):.{digits}f}"


def compare_table() -> None:
    path = RESULTS / "inverse_compare.json"
    if not path.exists():
        return
    document = json.loads(path.read_text())
    print(f"Command: `{document['command']}` — {document['environment']['date']}, "
          f"{document['environment']['cores']} torch thread(s), no GPU. Mean ± sd over seeds.\n")
    print("| data | net | act | init | test metric at start | test metric at end | test loss at end | "
          "reached He's final test loss (seeds) / median step | displacement per layer (last = readout) | "
          "pairs kept at the end (per layer) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for block in document["rows"]:
        net = "-".join([str(block["width"])] * block["depth"])
        for init in dict.fromkeys(r["init"] for r in block["rows"]):
            rows = [r for r in block["rows"] if r["init"] == init]
            steps = [r["steps_to_he"] for r in rows]
            reached = [s for s in steps if s is not None]
            displacement = np.median([r["displacement"] for r in rows], axis=0)
            persistence = np.median([r["persistence"][-1] for r in rows], axis=0) if rows[0]["persistence"] else []
            print(f"| {block['dataset']} | {net} | {block['activation']} | {init} | "
                  f"{_ms([r['start_test_metric'] for r in rows])} | {_ms([r['final_test_metric'] for r in rows])} | "
                  f"{_ms([r['final_test_loss'] for r in rows], 4)} | {len(reached)}/{len(steps)}"
                  f"{'' if not reached else f' / {int(np.median(reached))}'} | "
                  f"{' / '.join(f'{d:.3g}' for d in displacement)} | {' / '.join(f'{p:.2f}' for p in persistence)} |")


def pairspace_table() -> None:
    path = RESULTS / "inverse_pairspace.json"
    if not path.exists():
        return
    document = json.loads(path.read_text())
    print(f"\nCommand: `{document['command']}` — {document['environment']['date']}. Mean ± sd over seeds; "
          "accuracy (classification) or R² (regression) on the test split.\n")
    print("| data | net | act | SWIM as sampled | trained in pair space | snapped (readout kept) | "
          "snapped (readout refit) | Adam from He, same widths and epochs | pairs unchanged by snapping |")
    print("|---|---|---|---|---|---|---|---|---|")
    keys = list(dict.fromkeys((r["dataset"], r["depth"], r["width"], r["activation"]) for r in document["rows"]))
    for name, depth, width, activation in keys:
        rows = [r for r in document["rows"] if (r["dataset"], r["depth"], r["width"], r["activation"])
                == (name, depth, width, activation)]
        kept = np.mean([np.mean(r["fraction_on_initial_pair"]) for r in rows])
        print(f"| {name} | {'-'.join([str(width)] * depth)} | {activation} | {_ms([r['sampled'] for r in rows])} | "
              f"{_ms([r['pair_trained'] for r in rows])} | {_ms([r['snapped_keep'] for r in rows])} | "
              f"{_ms([r['snapped_refit'] for r in rows])} | {_ms([r['standard_adam'] for r in rows])} | {kept:.2f} |")


if __name__ == "__main__":
    compare_table()
    pairspace_table()
