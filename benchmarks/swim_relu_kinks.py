"""Where a SWIM ReLU neuron's kink sits, and what moving it does to the sampled network (docs/findings/inverse.md §12).

A SWIM ReLU neuron of the pair ``(x1, x2)`` is ``relu(⟨w, x − x1⟩)`` with ``w = (x2 − x1)/‖x2 − x1‖²``: zero at
``x1``, one at ``x2``. This script reports, for ``SWIMClassifier`` (ReLU, seeds 0–2), the fraction of training
points on which each neuron is active (median and 10–90 % quantiles over neurons), and the test accuracy when
every neuron keeps its direction but its kink moves to the median (``b = −median_i ⟨w, x_i⟩``) or the mean of its
pre-activations over the training points, the ridge readout solved again (GCV) — medians over the seeds.

    python benchmarks/swim_relu_kinks.py      # ≈ 1 min
"""

import numpy as np
import torch

import dualmap as dm
from dualmap.swim.readout import fit_ridge

SETTINGS = [("digits", {}, 512), ("fashion_mnist", {"n_train": 10_000}, 512), ("breast_cancer", {}, 256),
            ("wine", {}, 128)]

for name, options, width in SETTINGS:
    ds = dm.load_dataset(name, **options)
    classes = np.unique(ds.y_train)
    codes = np.eye(len(classes))[np.searchsorted(classes, ds.y_train)]
    accuracy = {"SWIM": [], "kinks at the median": [], "kinks at the mean": []}
    active = []
    for seed in range(3):
        model = dm.SWIMClassifier(layer_widths=(width,), activation="relu", random_state=seed).fit(ds.X_train,
                                                                                                   ds.y_train)
        accuracy["SWIM"].append(model.score(ds.X_test, ds.y_test))
        weight, bias = model.network_.weights[0], model.network_.biases[0]
        projections = ds.X_train @ weight.T
        active.append((projections + bias > 0).mean(axis=0))
        for key, moved in (("kinks at the median", -np.median(projections, axis=0)),
                           ("kinks at the mean", -projections.mean(axis=0))):
            hidden = np.maximum(projections + moved, 0.0)
            solution = fit_ridge(torch.from_numpy(hidden), torch.from_numpy(codes))
            scores = np.maximum(ds.X_test @ weight.T + moved, 0.0) @ solution.weight.numpy().T + solution.bias.numpy()
            accuracy[key].append(float(np.mean(classes[scores.argmax(axis=1)] == ds.y_test)))
    fractions = np.concatenate(active)
    print(f"{name}/{width}: active on a median {np.median(fractions):.2f} of the training points "
          f"(10–90 %: {np.quantile(fractions, 0.1):.2f}–{np.quantile(fractions, 0.9):.2f}); test accuracy "
          + ", ".join(f"{key} {np.median(values):.4f}" for key, values in accuracy.items()))
