"""The forward map: train a network by gradient descent, map every hidden neuron back to a pair of
training points (or to ``k`` pairs, its atoms), and score the map through the trained network's own readout
against null maps; then check it on a planted network.

Shows: ``dm.train``, ``dm.to_pairs`` (a ``PairMap``, ``atoms=``), ``pm.summary()``, ``pm.to_mlp`` (the rebuilt
network, ``readout="trained"``), ``dm.metrics.evaluate_map`` (r2_through and its nulls; the refit R², fidelity)
and ``dm.planted_network`` / ``dm.planted_recovery`` (pairs known in advance are found again).

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

pm = dm.to_pairs(run.model, ds.X_train, progress=False)          # method="downstream" (the default)
print(f"forward map ({pm.method}) in {pm.seconds:.1f} s; first neuron's pair {pm.pairs[0][0].tolist()}, "
      f"ReLU scale {pm.scales[0][0]:.3g}")
for layer in pm.summary()["layers"]:                               # medians over the layer's neurons
    print(f"layer {layer['layer'] + 1}: {layer['distinct_pairs']} distinct pairs, median activation correlation "
          f"{layer['median_activation_correlation']:.3f}, direction cosine {layer['median_direction_cosine']:.3f}")

rebuilt = pm.to_mlp(ds.X_train, readout="trained")                # SWIM neurons of the pairs, trained readout
agree = (rebuilt.predict(ds.X_test).argmax(1) == run.model.predict(ds.X_test).argmax(1)).mean()
print(f"rebuilt network (nothing refit) agrees with the trained one on {agree:.3f} of the test points")

scores = dm.metrics.evaluate_map(pm, run.model, ds.X_train, ds.X_test, labels=ds.y_train, labels_test=ds.y_test)
print("evaluate_map (test split, against the trained net's outputs):")
for key in ("r2_through", "r2_through_null_swim", "r2_through_null_uniform", "gap_closed_through",
            "fidelity_through", "r2_map", "r2_null_swim", "gap_closed", "labels_score_map", "labels_score_trained"):
    print(f"  {key:24s} {scores[key]: .4f}")
check = (scores["r2_through"] - scores["r2_through_null_swim"]) / (1 - scores["r2_through_null_swim"])
print(f"  gap closed through, by hand: (R²_through − R²_null)/(1 − R²_null) = {check:.4f}")
pm2 = dm.to_pairs(run.model, ds.X_train, atoms=2, progress=False)   # two pairs per neuron
print(f"atoms=2: r2_through {dm.metrics.r2_through(pm2, run.model, ds.X_train, ds.X_test):.4f}")

# A planted network: neurons built from known pairs, rescaled (ReLU) and permuted. The map finds them.
planted = dm.planted_network(ds.X_train, (64, 32), "relu", seed=0)
found = dm.to_pairs(planted.network, ds.X_train, progress=False)
print("planted 64-32 relu: fraction of pairs recovered per layer",
      dm.planted_recovery(found.pairs, planted.pairs, ds.X_train))
