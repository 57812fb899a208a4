"""The kink rule of docs/findings/inverse.md "What we would do next", on data none of the §12 settings is.

A scikit-learn ``make_classification`` task (offline, seeded; 3000 points, 100 features of which 20 informative,
10 classes, 2 clusters per class, standardised). Reports the SWIM ReLU layer's activity (the measure of
``benchmarks/swim_relu_kinks.py``), ``SWIMClassifier`` accuracy with pair kinks and with kinks at the median
(readout solved again), and the must-show comparison (``compare_inits``, 3 seeds, the Adam rate grid on a
validation split) of He, the SWIM default, ``swim:auto+kink_median`` and ``swim:auto+kink_auto`` for one and two
hidden layers of 128.

    OMP_NUM_THREADS=1 python benchmarks/kinks_unseen.py      # ≈ 3 min
"""

import numpy as np
import torch
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import dualmap as dm
from dualmap.swim.readout import fit_ridge

X, y = make_classification(n_samples=3000, n_features=100, n_informative=20, n_redundant=10, n_classes=10,
                           n_clusters_per_class=2, class_sep=1.5, random_state=7)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
codes = np.eye(10)[y_train]

for width in (128, 512):
    accuracy = {"pair kinks": [], "kinks at the median": []}
    activity = []
    for seed in range(3):
        model = dm.SWIMClassifier(layer_widths=(width,), activation="relu", random_state=seed).fit(X_train, y_train)
        accuracy["pair kinks"].append(model.score(X_test, y_test))
        weight = model.network_.weights[0]
        projections = X_train @ weight.T
        activity.append((projections + model.network_.biases[0] > 0).mean(axis=0))
        moved = -np.median(projections, axis=0)
        solution = fit_ridge(torch.from_numpy(np.maximum(projections + moved, 0.0)), torch.from_numpy(codes))
        scores = np.maximum(X_test @ weight.T + moved, 0.0) @ solution.weight.numpy().T + solution.bias.numpy()
        accuracy["kinks at the median"].append(float(np.mean(scores.argmax(axis=1) == y_test)))
    fractions = np.concatenate(activity)
    print(f"SWIMClassifier ReLU/{width}: median activity {np.median(fractions):.3f} (10 %: "
          f"{np.quantile(fractions, 0.1):.2f}); test accuracy "
          + ", ".join(f"{key} {np.median(values):.4f}" for key, values in accuracy.items()), flush=True)

for widths in ([128], [128, 128]):
    result = dm.inverse.compare_inits((X_train, y_train, X_test, y_test), widths, "relu",
                                      inits=("he", "swim", "swim:auto+kink_median", "swim:auto+kink_auto"),
                                      seeds=(0, 1, 2),
                                      lr=(3e-4, 1e-3, 3e-3), epochs=30, persistence_checkpoints=0, progress=False)
    for row in result.table():
        print(f"{'x'.join(map(str, widths))} {row['init']:24s} lr {row['lr']:.0e}  start acc "
              f"{row['start_test_metric']:.3f}  final acc {row['final_test_metric']:.3f}  loss "
              f"{row['final_test_loss']:.4f}  steps to He {row['steps_to_he_fraction']} ({row['reached_he']})",
              flush=True)
