"""SWIM on PCA-whitened inputs against the standardised ones (docs/findings/inverse.md §12).

Data-pair neurons concentrate on the data's leading principal components (benchmarks/inverse_feature_rank.py).
Whitening ``X_w = (X − μ) V max(Λ, f·mean Λ)^{-1/2} Vᵀ`` spreads them over every direction; this script reads what
that does to the sampled network's test accuracy (``SWIMClassifier``, ReLU, median over seeds 0–2).

    python benchmarks/swim_whitened_inputs.py      # ≈ 1 min
"""

import numpy as np

import dualmap as dm

SETTINGS = [("digits", {}, 512), ("fashion_mnist", {"n_train": 10_000}, 512), ("breast_cancer", {}, 256),
            ("wine", {}, 128)]

for name, options, width in SETTINGS:
    ds = dm.load_dataset(name, **options)
    mean = ds.X_train.mean(axis=0)
    eigenvalues, vectors = np.linalg.eigh(np.cov(ds.X_train, rowvar=False))
    row = {}
    for floor in (None, 0.1, 0.01):
        if floor is None:
            train, test = ds.X_train, ds.X_test
        else:
            whitening = (vectors / np.sqrt(np.maximum(eigenvalues, floor * eigenvalues.mean()))) @ vectors.T
            train, test = (ds.X_train - mean) @ whitening, (ds.X_test - mean) @ whitening
        scores = [dm.SWIMClassifier(layer_widths=(width,), activation="relu", random_state=seed)
                  .fit(train, ds.y_train).score(test, ds.y_test) for seed in range(3)]
        row["standardised" if floor is None else f"whitened, floor {floor}"] = round(float(np.median(scores)), 4)
    print(f"{name}/{width}: {row}")
