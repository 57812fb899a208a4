"""In-process fit time of one SWIM setting for a given dualmap source tree: run it alternately on two checkouts to
compare commits side by side (issue 15's check on a setting no benchmark names).

    git worktree add /tmp/old 21d9990
    for i in 1 2; do python benchmarks/swim_fit_ab.py /tmp/old/src; python benchmarks/swim_fit_ab.py src; done

Fashion-MNIST 20 000 points, one ReLU layer of 1536, default threads; one warm-up fit, then the median of 3.
"""

import sys
import time
from pathlib import Path

import numpy as np

SOURCE = str(Path(sys.argv[1]).resolve())
sys.path.insert(0, SOURCE)
import dualmap as dm  # noqa: E402

assert dm.__file__.startswith(SOURCE), f"imported {dm.__file__}, not the tree under {SOURCE}"
ds = dm.load_dataset("fashion_mnist", n_train=20_000, seed=0)


def fit(seed):
    return dm.SWIMClassifier(layer_widths=(1536,), activation="relu", random_state=seed).fit(ds.X_train, ds.y_train)


model = fit(0)
times = []
for seed in range(3):
    started = time.perf_counter()
    model = fit(seed)
    times.append(time.perf_counter() - started)
print(f"{SOURCE}: median fit {np.median(times):.3f} s, alpha {model.alpha_!r}, "
      f"test accuracy {model.score(ds.X_test, ds.y_test):.4f}")
