"""Where a SWIM ReLU neuron's kink sits, and what moving it does to the sampled network (docs/findings/inverse.md §12).

A SWIM ReLU neuron of the pair ``(x1, x2)`` is ``relu(⟨w, x − x1⟩)`` with ``w = (x2 − x1)/‖x2 − x1‖²``: zero at
``x1``, one at ``x2``. This script reports, for ``SWIMClassifier`` (ReLU, seeds 0–2), the fraction of training
points on which each neuron is active (median and 10–90 % quantiles over neurons), and the test accuracy when
every neuron keeps its direction but its kink moves to the median (``b = −median_i ⟨w, x_i⟩``) or the mean of its
pre-activations over the training points, or only as far as needed to cap its activity at 90 % / 75 % of the
points (``b ← min(b, −quantile_{1−c} ⟨w, x_i⟩)``: a neuron active on fewer points keeps its pair's kink), the ridge
readout solved again (GCV) — medians over the seeds; and
which of the two layers (pair kinks, median kinks) generalised cross-validation on the training points would pick
(the smaller minimum over the α grid of ``GCV(α) = n·RSS/(n − df)²``), per seed.

    python benchmarks/swim_relu_kinks.py      # ≈ 1 min
"""

import numpy as np
import torch

import dualmap as dm
from dualmap.swim.readout import alpha_grid, fit_ridge

SETTINGS = [("digits", {}, 512), ("fashion_mnist", {"n_train": 10_000}, 512), ("breast_cancer", {}, 256),
            ("wine", {}, 128), ("digits", {}, 64), ("breast_cancer", {}, 64), ("wine", {}, 64), ("iris", {}, 64)]



def gcv_minimum(hidden: np.ndarray, codes: np.ndarray) -> float:
    """min over :func:`alpha_grid` of GCV for the ridge readout of ``codes`` on ``hidden`` (intercept unpenalised)."""
    centred, targets = hidden - hidden.mean(axis=0), codes - codes.mean(axis=0)
    u, singular, _ = np.linalg.svd(centred, full_matrices=False)
    eigenvalues, projected = singular**2, u.T @ targets
    best = np.inf
    for alpha in alpha_grid(eigenvalues.sum() / hidden.shape[1]):
        shrink = eigenvalues / (eigenvalues + alpha)
        rss = (targets**2).sum() - ((projected**2).sum(axis=1) * (2 * shrink - shrink**2)).sum()
        dof = 1.0 + shrink.sum()
        if dof < len(hidden):
            best = min(best, len(hidden) * rss / (len(hidden) - dof) ** 2)
    return best


for name, options, width in SETTINGS:
    ds = dm.load_dataset(name, **options)
    classes = np.unique(ds.y_train)
    codes = np.eye(len(classes))[np.searchsorted(classes, ds.y_train)]
    accuracy = {"SWIM": [], "kinks at the median": [], "kinks at the mean": [], "activity capped at 0.9": [],
                "activity capped at 0.75": []}
    active, picks = [], []
    for seed in range(3):
        model = dm.SWIMClassifier(layer_widths=(width,), activation="relu", random_state=seed).fit(ds.X_train,
                                                                                                   ds.y_train)
        accuracy["SWIM"].append(model.score(ds.X_test, ds.y_test))
        weight, bias = model.network_.weights[0], model.network_.biases[0]
        projections = ds.X_train @ weight.T
        active.append((projections + bias > 0).mean(axis=0))
        gcv = {"pair": gcv_minimum(np.maximum(projections + bias, 0.0), codes)}
        for key, moved in (("kinks at the median", -np.median(projections, axis=0)),
                           ("kinks at the mean", -projections.mean(axis=0)),
                           ("activity capped at 0.9", np.minimum(bias, -np.quantile(projections, 0.1, axis=0))),
                           ("activity capped at 0.75", np.minimum(bias, -np.quantile(projections, 0.25, axis=0)))):
            hidden = np.maximum(projections + moved, 0.0)
            if key == "kinks at the median":
                gcv["median"] = gcv_minimum(hidden, codes)
            solution = fit_ridge(torch.from_numpy(hidden), torch.from_numpy(codes))
            scores = np.maximum(ds.X_test @ weight.T + moved, 0.0) @ solution.weight.numpy().T + solution.bias.numpy()
            accuracy[key].append(float(np.mean(classes[scores.argmax(axis=1)] == ds.y_test)))
        picks.append(min(gcv, key=gcv.get))
    fractions = np.concatenate(active)
    print(f"{name}/{width}: active on a median {np.median(fractions):.2f} of the training points "
          f"(10–90 %: {np.quantile(fractions, 0.1):.2f}–{np.quantile(fractions, 0.9):.2f}); test accuracy "
          + ", ".join(f"{key} {np.median(values):.4f}" for key, values in accuracy.items())
          + f"; GCV picks {picks}")
