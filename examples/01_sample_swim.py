"""Sample a SWIM network on digits (no gradients), read its pairs, and rebuild its neurons by hand.

Shows: ``dm.SWIMClassifier`` (a scikit-learn estimator), ``clf.pairs_`` (the ordered pair of training
points behind every hidden neuron) and ``dm.swim_neurons`` (w = s1·Δ/‖Δ‖², b = −⟨w, x1⟩ − s2), which
rebuilds the first hidden layer exactly from those pairs.

Run:  OMP_NUM_THREADS=1 python examples/01_sample_swim.py [--width 512]     (≈ 2 s on one thread)
"""

import argparse

import numpy as np

import dualmap as dm

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--width", type=int, default=512, help="hidden neurons (default 512)")
parser.add_argument("--activation", choices=["tanh", "relu"], default="tanh")
args = parser.parse_args()

ds = dm.load_dataset("digits")              # standardized, stratified, seeded split
print(f"digits: {ds.X_train.shape[0]} training points, {ds.X_test.shape[0]} test points, "
      f"{ds.X_train.shape[1]} features")

clf = dm.SWIMClassifier(layer_widths=(args.width,), activation=args.activation, random_state=0)
clf.fit(ds.X_train, ds.y_train)
print(f"SWIM {args.width} {args.activation}: test accuracy {clf.score(ds.X_test, ds.y_test):.3f} "
      f"(ridge alpha {clf.alpha_:.3g})")

pairs = clf.pairs_[0]                      # (width, 2): row indices (i1, i2) into X_train
print("first three neurons' pairs (i1, i2) and their labels:")
for i1, i2 in pairs[:3]:
    print(f"  ({i1:4d}, {i2:4d})  labels {ds.y_train[i1]} -> {ds.y_train[i2]}")
different = np.mean(ds.y_train[pairs[:, 0]] != ds.y_train[pairs[:, 1]])
print(f"fraction of pairs whose two points have different labels: {different:.2f} "
      "(for classes SWIM never draws a same-label pair: its score is 0)")

# Rebuild the first hidden layer from the pairs alone and compare with the fitted network.
s1, s2 = dm.swim_constants(args.activation)
W, b = dm.swim_neurons(ds.X_train[pairs[:, 0]], ds.X_train[pairs[:, 1]], args.activation)
net = clf.network_
print(f"constants: s1 = {s1:.4f}, s2 = {s2:.4f}")
print(f"max |W - W_fitted| = {np.max(np.abs(W - net.weights[0])):.2e}, "
      f"max |b - b_fitted| = {np.max(np.abs(b - net.biases[0])):.2e}")

# At z1 a tanh neuron is -1/2 and at z2 it is +1/2 (ReLU: pre-activation 0 and 1).
H1 = net.hidden(ds.X_train[pairs[:, 0]], 0)
H2 = net.hidden(ds.X_train[pairs[:, 1]], 0)
k = np.arange(len(pairs))
print(f"neuron k at its own pair: median value at x1 {np.median(H1[k, k]):+.3f}, at x2 {np.median(H2[k, k]):+.3f}")
