"""The inverse map: sampled weights as the start of gradient training, and training in pair space.

Shows: ``dm.inverse.compare_inits`` (He vs SWIM-sampled vs random-feature starts under the same Adam
budget: final test metric, steps to reach He's final test loss, displacement, pair persistence),
``dm.sample_network``, ``dm.PairNetwork.from_pairs`` (every neuron = two learnable points),
``dm.train`` on it, and ``net.snap`` (every point moved onto its nearest data point: an exact SWIM
network again).

Run:  OMP_NUM_THREADS=1 python examples/04_inverse_map.py [--width 64] [--epochs 10]    (≈ 15 s on one thread)
"""

import argparse

import numpy as np

import dualmap as dm

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--width", type=int, default=64)
parser.add_argument("--epochs", type=int, default=10)
args = parser.parse_args()

ds = dm.load_dataset("digits")
cmp = dm.inverse.compare_inits(ds, [args.width], "relu", inits=("he", "swim", "random"), seeds=(0, 1),
                               epochs=args.epochs, persistence_checkpoints=4, progress=False)
print(f"{'init':8s} {'start acc':>9s} {'final acc':>9s} {'test loss':>9s} {'reached He':>10s}  displacement"
      "  pairs kept")
for row in cmp.table():                           # medians over the seeds
    print(f"{row['init']:8s} {row['start_test_metric']:9.3f} {row['final_test_metric']:9.3f} "
          f"{row['final_test_loss']:9.3f} {row['reached_he']:>10s}  "
          f"{' / '.join(f'{d:.3g}' for d in row['displacement']):14s} {row['final_persistence']}")

# Pair space: the same SWIM start, but gradient descent moves the points, not the weights.
onehot = np.eye(10)[ds.y_train]
sampled = dm.sample_network(ds.X_train, onehot, (args.width,), "relu", random_state=0)
net = dm.PairNetwork.from_pairs(sampled.network, sampled.pairs, ds.X_train)
before = (sampled.network.predict(ds.X_test).argmax(1) == ds.y_test).mean()
run = dm.train(net, ds.X_train, ds.y_train, epochs=args.epochs, X_val=ds.X_test, y_val=ds.y_test, progress=False)
mlp, pairs = net.snap(ds.X_train)
snapped = (mlp.predict(ds.X_test).argmax(1) == ds.y_test).mean()
kept = np.mean(np.all(pairs[0] == np.asarray(sampled.pairs[0]), axis=1))
print(f"pair space: sampled {before:.3f} → trained {run.history['val_metric'][-1]:.3f} → snapped {snapped:.3f} "
      f"test accuracy (snap keeps the trained readout); {kept:.2f} of the neurons snapped back to their sampled pair")
W, b = dm.swim_neurons(ds.X_train[pairs[0][:, 0]], ds.X_train[pairs[0][:, 1]], "relu")
print(f"snapped layer is the SWIM layer of its pairs: max |W - swim_neurons| = {np.abs(W - mlp.weights[0]).max():.1e}")
