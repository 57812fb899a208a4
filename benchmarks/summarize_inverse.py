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


def _reach(row):
    """'frac (k/3)': median steps to He's final test loss over the total steps, and how many seeds got there."""
    if row["steps_to_he_fraction"] is None:
        return f"– ({row['reached_he']})"
    return f"{row['steps_to_he_fraction']:.2f} ({row['reached_he']})"


def _load_compare():
    """The comparison's results, settings in a fixed order (a resumed run appends the settings it redid)."""
    document = json.loads((RESULTS / "inverse_compare.json").read_text())
    order = {"adam": 0, "sgd": 1, "relu": 0, "tanh": 1}
    document["rows"].sort(key=lambda b: (b["dataset"] != "digits", b["depth"], order[b["activation"]],
                                         order[b["optimizer"]]))
    return document


def _medians(block, init, key):
    return [r[key] for r in block["rows"] if r["init"] == init]


def compare_table() -> None:
    path = RESULTS / "inverse_compare.json"
    if not path.exists():
        return
    document = _load_compare()
    env = document["environment"]
    print(f"Command: `{document['command']}` — {env['date']}, {env['cpu']}, {env['cores']} torch thread, no GPU. "
          "Medians over 3 seeds; each init with its own learning rate chosen on a validation split.\n")
    inits = ["swim", "swim:plain", "uniform", "random"]
    print("| data | net | act | opt | He: lr / test acc / test loss | "
          + " | ".join(f"{i}: lr / acc / loss / steps to He (seeds)" for i in inits) + " | targets met (swim) |")
    print("|---|---|---|---|---|" + "---|" * len(inits) + "---|")
    met_count = 0
    for block in document["rows"]:
        table = {row["init"]: row for row in block["table"]}
        he = table["he"]
        cells = []
        for init in inits:
            row = table[init]
            cells.append(f"{row['lr']:.0e} / {row['final_test_metric']:.3f} / {row['final_test_loss']:.3f} / "
                         f"{_reach(row)}")
        # per seed: reached within a third of the steps and ended at or below He's final test loss
        he_final = {r["seed"]: r["final_test_loss"] for r in block["rows"] if r["init"] == "he"}
        seeds_ok = sum(1 for r in block["rows"] if r["init"] == "swim" and r["steps_to_he"] is not None
                       and r["steps_to_he"] <= r["total_steps"] / 3 and r["final_test_loss"] <= he_final[r["seed"]])
        met = seeds_ok == len(he_final)
        met_count += met
        net = "-".join([str(block["width"])] * block["depth"])
        print(f"| {block['dataset']} | {net} | {block['activation']} | {block['optimizer']} | "
              f"{he['lr']:.0e} / {he['final_test_metric']:.3f} / {he['final_test_loss']:.3f} | " + " | ".join(cells)
              + f" | {'yes' if met else 'no'} ({seeds_ok}/{len(he_final)} seeds) |")
    print(f"\nSettings where the default SWIM start meets both targets on every seed: "
          f"{met_count}/{len(document['rows'])}\n")

    print("| data | net | act | opt | start test loss: old → new | displacement per layer, old (swim:plain) | "
          "new (swim) | pairs kept at the end per layer, old | new |")
    print("|---|---|---|---|---|---|---|---|---|")
    for block in document["rows"]:
        table = {row["init"]: row for row in block["table"]}
        old, new = table["swim:plain"], table["swim"]
        start_old = np.median(_medians(block, "swim:plain", "start_test_loss"))
        start_new = np.median(_medians(block, "swim", "start_test_loss"))
        net = "-".join([str(block["width"])] * block["depth"])
        fmt = lambda values: " / ".join(f"{v:.3g}" for v in values)  # noqa: E731
        pers = lambda values: " / ".join(f"{v:.2f}" for v in values) if values else "–"  # noqa: E731
        print(f"| {block['dataset']} | {net} | {block['activation']} | {block['optimizer']} | {start_old:.3f} → "
              f"{start_new:.3f} | {fmt(old['displacement'])} | {fmt(new['displacement'])} | "
              f"{pers(old['final_persistence'])} | {pers(new['final_persistence'])} |")


def reasons_table() -> None:
    """Where the default misses: validation loss per rate, final train loss and first-layer displacement vs He."""
    path = RESULTS / "inverse_compare.json"
    if not path.exists():
        return
    document = _load_compare()
    print("| data | net | act | opt | swim: validation loss per lr (chosen **bold**) | He: same | final train loss "
          "swim / He | first-layer displacement swim / He | swim start test loss / He final test loss |")
    print("|---|---|---|---|---|---|---|---|---|")
    for block in document["rows"]:
        config, table = block["config"], {row["init"]: row for row in block["table"]}

        def losses(init):
            return " / ".join((f"**{v:.3f}**" if float(k) == config["chosen_lr"][init] else f"{v:.3f}")
                              for k, v in config["validation_losses"][init].items())
        start = np.median(_medians(block, "swim", "start_test_loss"))
        net = "-".join([str(block["width"])] * block["depth"])
        print(f"| {block['dataset']} | {net} | {block['activation']} | {block['optimizer']} | {losses('swim')} | "
              f"{losses('he')} | {table['swim']['final_train_loss']:.4f} / {table['he']['final_train_loss']:.4f} | "
              f"{table['swim']['displacement'][0]:.3f} / {table['he']['displacement'][0]:.3f} | "
              f"{start:.3f} / {table['he']['final_test_loss']:.3f} |")


def benchmark_table() -> None:
    """The compact table of BENCHMARKS.md: median final test loss per init and the default's reach."""
    path = RESULTS / "inverse_compare.json"
    if not path.exists():
        return
    document = _load_compare()
    print("| data | net | act | opt | He | SWIM, new default (reach) | SWIM, old (`plain`) | uniform | random "
          "| seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for block in document["rows"]:
        table = {row["init"]: row for row in block["table"]}
        net = "-".join([str(block["width"])] * block["depth"])
        print(f"| {block['dataset']} | {net} | {block['activation']} | {block['optimizer']} | "
              f"{table['he']['final_test_loss']:.3f} | "
              f"{table['swim']['final_test_loss']:.3f}; {_reach(table['swim'])} | "
              f"{table['swim:plain']['final_test_loss']:.3f} | {table['uniform']['final_test_loss']:.3f} | "
              f"{table['random']['final_test_loss']:.3f} | {block['seconds']:.0f} |")


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


def cause_tables() -> None:
    path = RESULTS / "inverse_cause.json"
    if not path.exists():
        return
    rows = json.loads(path.read_text())["rows"]
    seen = {}
    for row in rows:
        seen.setdefault((row["dataset"], row["activation"]), row)
    print("| data | act | hidden RMS (×He) | readout RMS (×He) | GCV α / mean eigenvalue | temperature | "
          "`‖∇W‖/‖W‖` hidden / readout, SWIM | same, He | logit RMS SWIM / He |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (name, activation), r in seen.items():
        width = 256 if name == "digits" else 128
        he_readout = np.sqrt(2.0 / width)
        he_hidden = r["hidden_rms"] / r["rho"][0]
        print(f"| {name} | {activation} | {r['hidden_rms']:.4f} ({r['rho'][0]:.3f}) | {r['readout_rms']:.1f} "
              f"({r['readout_rms'] / he_readout:.0f}) | {r['alpha_over_mean_eigenvalue']:.1e} | "
              f"{r['temperature']:.3f} | "
              f"{r['swim_relative_gradient'][0]:.3g} / {r['swim_relative_gradient'][1]:.2g} | "
              f"{r['he_relative_gradient'][0]:.2g} / {r['he_relative_gradient'][1]:.2g} | "
              f"{r['swim_logit_rms']:.2f} / {r['he_logit_rms']:.2f} |")
        del he_hidden
    print()
    schemes = ["plain", "calibrate", "rebalance", "layer_lr", "ridge", "warmup", "norm_step", "auto"]
    print("| data | act | opt | " + " | ".join(schemes) + " |")
    print("|---|---|---|" + "---|" * len(schemes))
    keys = list(dict.fromkeys((r["dataset"], r["activation"], r["optimizer"]) for r in rows))
    for key in keys:
        cells = []
        for scheme in schemes:
            match = [r for r in rows
                     if (r["dataset"], r["activation"], r["optimizer"]) == key and r["scheme"] == scheme]
            cells.append(" → ".join(f"{v:.3g}" for v in match[0]["test_loss"]) if match else "–")
        print(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) + " |")


def candidates_table() -> None:
    path = RESULTS / "inverse_candidates.json"
    if not path.exists():
        return
    document = json.loads(path.read_text())
    groups = {}
    for run in document["runs"]:
        groups.setdefault((run["dataset"], run["activation"], run["optimizer"]), []).append(run)
    print("| scheme | " + " | ".join(f"{d} {a} {o}" for d, a, o in groups) + " |")
    print("|---|" + "---|" * len(groups))
    header, table = {}, {}
    for key, runs in groups.items():
        for run in runs:
            for row in run["rows"]:
                if row["init"] == "he":
                    header[key] = row
                    continue
                scheme = row["init"].split(":", 1)[1]
                reach = "–" if row["steps_to_he"] is None else str(row["steps_to_he"])
                table.setdefault(scheme, {})[key] = f"{row['final_test_loss']:.3f} ({reach}, lr {row['lr']:.0e})"
    print("| He: final test loss (lr) | " + " | ".join(f"{header[k]['final_test_loss']:.3f} ({header[k]['lr']:.0e})"
                                                    for k in groups) + " |")
    for scheme, cells in table.items():
        print(f"| {scheme} | " + " | ".join(cells.get(k, "") for k in groups) + " |")


if __name__ == "__main__":
    import sys

    sections = {"compare": compare_table, "reasons": reasons_table, "benchmark": benchmark_table, "cause": cause_tables,
                "candidates": candidates_table, "pairspace": pairspace_table}
    for name in sys.argv[1:] or ["cause", "candidates", "compare", "reasons", "pairspace"]:
        sections[name]()
        print()
