"""The forward map: train a network by gradient descent, map every hidden neuron back to a pair of
training points, and score the map against the null models; then check it on a planted network.

Shows: ``dm.train``, ``dm.to_pairs`` (a ``PairMap``), ``pm.summary()``, ``pm.to_mlp``,
``dm.metrics.evaluate_map`` (R², fidelity, null models, gap closed) and ``dm.planted_network`` /
``dm.planted_recovery`` (pairs known in advance are found again).

Run:  OMP_NUM_THREADS=1 python examples/02_forward_map.py [--width 256] [--epochs 50]   (≈ 10 s on one thread)
"""

import argparse

import dualmap as dm

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--width", type=int, default=256)
parser.add_argument("--epochs", type=int, default=50)
args = parser.parse_args()

ds = dm.load_dataset("digits")
run = dm.train([args.width], ds.X_train, ds.y_train, activation="relu", optimizer="adam", epochs=args.epochs,
               checkpoints=2, X_val=ds.X_test, y_val=ds.y_test, progress=False)
print(f"trained {args.width} relu, {run.steps[-1]} Adam steps: test accuracy {run.history['val_metric'][-1]:.3f}")

pm = dm.to_pairs(run.model, ds.X_train, progress=False)          # method="joint" (the default)
print(f"forward map ({pm.method}) in {pm.seconds:.1f} s; first neuron's pair {pm.pairs[0][0].tolist()}, "
      f"ReLU scale {pm.scales[0][0]:.3g}")
for layer in pm.summary()["layers"]:                               # medians over the layer's neurons
    print(f"layer {layer['layer'] + 1}: {layer['distinct_pairs']} distinct pairs, median activation correlation "
          f"{layer['median_activation_correlation']:.3f}, direction cosine {layer['median_direction_cosine']:.3f}")

converted = pm.to_mlp(ds.X_train, run.model.predict(ds.X_train))  # SWIM net of the pairs, teacher readout
agree = (converted.predict(ds.X_test).argmax(1) == run.model.predict(ds.X_test).argmax(1)).mean()
print(f"converted network agrees with the trained one on {agree:.3f} of the test points")

scores = dm.metrics.evaluate_map(pm, run.model, ds.X_train, ds.X_test, labels=ds.y_train, labels_test=ds.y_test)
print("evaluate_map (test split, against the trained net's outputs):")
for key in ("r2_map", "r2_null_swim", "r2_null_uniform", "gap_closed", "fidelity", "fidelity_null_swim",
            "r2_keep", "labels_score_map", "labels_score_trained"):
    print(f"  {key:22s} {scores[key]: .4f}")
check = (scores["r2_map"] - scores["r2_null_swim"]) / (1 - scores["r2_null_swim"])
print(f"  gap closed by hand: (R²_map − R²_null)/(1 − R²_null) = {check:.4f}")

# A planted network: neurons built from known pairs, rescaled (ReLU) and permuted. The map finds them.
planted = dm.planted_network(ds.X_train, (64, 32), "relu", seed=0)
found = dm.to_pairs(planted.network, ds.X_train, progress=False)
print("planted 64-32 relu: fraction of pairs recovered per layer",
      dm.planted_recovery(found.pairs, planted.pairs, ds.X_train))
