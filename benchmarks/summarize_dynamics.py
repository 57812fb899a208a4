"""Markdown tables of the dynamics findings (reads benchmarks/results/dynamics_findings.json).

    python benchmarks/summarize_dynamics.py > /tmp/tables.md
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def _ms(values, digits=2):
    """mean ± standard deviation over seeds (NaN-aware)."""
    values = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    if np.all(np.isnan(values)):
        return "–"
    return f"{np.nanmean(values):.{digits}f} ± {np.nanstd(values):.{digits}f}"


def main() -> None:
    document = json.loads((RESULTS / "dynamics_findings.json").read_text())
    rows = document["rows"]
    print(f"Command: `{document['command']}` — {document['environment']['date']}, "
          f"{document['environment']['cores']} cores, {document['environment']['cpu']}, no GPU.\n")
    print("| data | net | optimizer | val. acc / R² | settled at step (layer 1) | switch rate first → last interval "
          "(layer 1) | switch rate, median over intervals (per layer) | quality first → last (layer 1) | "
          "concentration first → last | SWIM alignment first → last | maps (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    keys = sorted({(r["dataset"], r["depth"], r["width"], r["optimizer"]) for r in rows},
                  key=lambda k: (k[0], k[1], k[3]))
    for name, depth, width, optimizer in keys:
        group = [r for r in rows
                 if (r["dataset"], r["depth"], r["width"], r["optimizer"]) == (name, depth, width, optimizer)]
        switch = [np.asarray(r["switch_rate"]) for r in group]
        settled = [r["settled_step"] for r in group]
        settled_text = ", ".join("never" if s is None else str(s) for s in settled)
        median_switch = " / ".join(_ms([np.median(s[:, layer]) for s in switch]) for layer in range(depth))
        quality = [np.asarray(r["quality"])[:, 0] for r in group]
        print(f"| {name} | {'-'.join([str(width)] * depth)} | {optimizer} | "
              f"{_ms([r['val_metric'] for r in group], 3)} | "
              f"{settled_text} (last step {group[0]['steps'][-1]}) | "
              f"{_ms([s[0, 0] for s in switch])} → {_ms([s[-1, 0] for s in switch])} | {median_switch} | "
              f"{_ms([q[0] for q in quality])} → {_ms([q[-1] for q in quality])} | "
              f"{_ms([r['concentration'][0] for r in group], 0)} → {_ms([r['concentration'][-1] for r in group], 0)} | "
              f"{_ms([r['swim_alignment'][0] for r in group], 3)} → "
              f"{_ms([r['swim_alignment'][-1] for r in group], 3)} | "
              f"{_ms([sum(r['map_seconds']) for r in group], 0)} |")
    print("\n| data | net | Spearman, same optimizer, other seed | Spearman, Adam vs SGD, same seed | "
          "top-50 overlap, same optimizer, other seed | top-50 overlap, Adam vs SGD, same seed |")
    print("|---|---|---|---|---|---|")
    for c in document["comparisons"]:
        same, across = c["same_optimizer_other_seed"], c["adam_vs_sgd_same_seed"]
        print(f"| {c['dataset']} | {c['depth']} layer(s) | {_ms(same['spearman'], 3)} | {_ms(across['spearman'], 3)} | "
              f"{_ms(same['top50'])} | {_ms(across['top50'])} |")
    print("\nClass make-up of the 100 most important points at the last checkpoint "
          "(mean count per class over seeds):\n")
    print("| data | net | optimizer | counts per class |")
    print("|---|---|---|---|")
    for name, depth, width, optimizer in keys:
        group = [r for r in rows
                 if (r["dataset"], r["depth"], r["width"], r["optimizer"]) == (name, depth, width, optimizer)]
        if "top100_class_counts" not in group[0]:
            continue
        counts = np.mean([r["top100_class_counts"] for r in group], axis=0)
        print(f"| {name} | {'-'.join([str(width)] * depth)} | {optimizer} | {' '.join(f'{c:.0f}' for c in counts)} |")


if __name__ == "__main__":
    main()
