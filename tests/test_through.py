"""r2_through against k (map and nulls) and the study's convert keys for atoms."""

import numpy as np
import pytest

import dualmap as dm
from dualmap.study.config import validate_config


def test_through_curve_rows_and_the_map_above_its_nulls():
    ds = dm.load_dataset("wine")
    run = dm.train([16], ds.X_train, ds.y_train, epochs=40, seed=0, checkpoints=2, progress=False)
    rows = dm.metrics.through_curve(run.model, ds.X_train, ds.X_test, (1, 3), seed=0)
    assert [row["atoms"] for row in rows] == [1, 3]
    for row in rows:
        assert row["r2_through"] > max(row["r2_through_null_swim"], row["r2_through_null_uniform"])
    # the k = 3 value is the one to_pairs gives at k = 3
    pair_map = dm.to_pairs(run.model, ds.X_train, atoms=3, progress=False)
    assert rows[1]["r2_through"] == pytest.approx(dm.metrics.r2_through(pair_map, run.model, ds.X_train, ds.X_test))


def test_study_convert_keys_for_atoms():
    config = validate_config({"convert": {"atoms": 4, "atoms_curve": [1, 2, 4, 8]}})
    assert config.convert.method == "downstream" and config.convert.atoms == 4
    with pytest.raises(ValueError, match="need convert.method 'downstream'"):
        validate_config({"convert": {"method": "function", "atoms": 2}})
    with pytest.raises(ValueError, match="atoms"):
        validate_config({"convert": {"atoms": 0}})
    with pytest.raises(ValueError, match="atoms_curve values must be >= 1"):
        validate_config({"convert": {"atoms_curve": [1, 0]}})


def test_rebuilt_layers_give_every_readout_of_to_mlp_and_belong_to_their_data():
    ds = dm.load_dataset("wine")
    run = dm.train([12], ds.X_train, ds.y_train, epochs=20, seed=1, checkpoints=2, progress=False)
    pair_map = dm.to_pairs(run.model, ds.X_train, progress=False)
    layers = pair_map.rebuild(ds.X_train)
    teacher = run.model.predict(ds.X_train)
    for readout, targets in (("trained", None), ("keep", None), ("refit", teacher)):
        once = layers.to_mlp(targets, readout=readout)
        direct = pair_map.to_mlp(ds.X_train, targets, readout=readout)
        assert once.predict(ds.X_test) == pytest.approx(direct.predict(ds.X_test), abs=1e-12)
    # the features are the rebuilt layers' own output on X (computed independently here, in numpy) ...
    hidden = np.maximum(ds.X_train @ layers.weights[0].T + layers.biases[0], 0.0)
    assert layers.features == pytest.approx(hidden, abs=1e-10)
    # ... every readout sits on those layers, and each readout keeps its defining property on X:
    trained = layers.to_mlp(readout="trained")
    assert all((a == b).all() for a, b in zip(trained.weights[:-1], layers.weights))
    keep = layers.to_mlp(readout="keep")                      # the trained mean output, by construction
    assert keep.predict(ds.X_train).mean(axis=0) == pytest.approx(pair_map.teacher_readout[2], abs=1e-8)
    refit = layers.to_mlp(teacher, readout="refit")            # a least-squares readout: residuals sum to 0
    assert (refit.predict(ds.X_train) - teacher).mean(axis=0) == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError, match="readout must be one of"):
        layers.to_mlp(readout="nope")
    with pytest.raises(ValueError, match="needs targets"):
        layers.to_mlp(readout="refit")
    with pytest.raises(ValueError, match="fingerprint differs"):
        pair_map.rebuild(ds.X_test)          # another data set than the map's
    known = pair_map.rebuild(ds.X_train, x_fingerprint=pair_map.x_fingerprint)      # a fingerprint the caller holds
    assert (known.features == layers.features).all()
    with pytest.raises(ValueError, match="fingerprint differs"):
        pair_map.rebuild(ds.X_train, x_fingerprint="not this data")
