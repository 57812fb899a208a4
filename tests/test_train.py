import numpy as np
import pytest
from numpy.testing import assert_array_equal

import dualmap as dm
from dualmap.train import checkpoint_steps


def test_checkpoint_steps():
    steps = checkpoint_steps(20, 1000)
    assert steps[0] == 0 and steps[-1] == 1000 and len(steps) == 20
    assert np.all(np.diff(steps) > 0)
    assert checkpoint_steps(5, 3) == [0, 1, 2, 3]
    assert checkpoint_steps([10, 0, 5, 5], 10) == [0, 5, 10]
    with pytest.raises(ValueError, match="must lie in"):
        checkpoint_steps([0, 11], 10)
    with pytest.raises(ValueError, match=">= 2"):
        checkpoint_steps(1, 10)


def test_classification_run_keeps_checkpoints_and_history(digits):
    run = dm.train([32], digits.X_train, digits.y_train, epochs=4, batch_size=64, lr=1e-2, checkpoints=6,
                   X_val=digits.X_test, y_val=digits.y_test, progress=False)
    assert run.task == "classification" and list(run.classes) == list(range(10))
    total = 4 * int(np.ceil(len(digits.X_train) / 64))
    assert run.steps[0] == 0 and run.steps[-1] == total and len(run.steps) == 6
    assert_array_equal(run.checkpoints[-1][1].weights[0], run.model.weights[0])
    assert not np.array_equal(run.checkpoints[0][1].weights[0], run.model.weights[0])
    assert run.history["train_loss"][-1] < run.history["train_loss"][0]
    assert run.history["val_metric"][-1] > 0.85
    assert run.model.hidden_widths == (32,) and run.model.output_dim == 10


def test_same_seed_same_run(digits):
    kwargs = dict(epochs=2, optimizer="sgd", lr=0.05, progress=False)
    a = dm.train([16], digits.X_train, digits.y_train, seed=5, **kwargs)
    b = dm.train([16], digits.X_train, digits.y_train, seed=5, **kwargs)
    c = dm.train([16], digits.X_train, digits.y_train, seed=6, **kwargs)
    for (_, x), (_, y) in zip(a.checkpoints, b.checkpoints):
        assert_array_equal(x.weights[0], y.weights[0])
    assert not np.array_equal(a.model.weights[0], c.model.weights[0])


def test_regression_and_start_from_mlp(rng):
    X = rng.uniform(-1, 1, size=(300, 2))
    y = np.sin(3 * X[:, 0])
    run = dm.train([32], X, y, activation="tanh", epochs=30, lr=1e-2, progress=False)
    assert run.task == "regression" and run.history["train_metric"][-1] > 0.9
    again = dm.train(run.model, X, y, epochs=1, checkpoints=[0], progress=False)
    assert_array_equal(again.checkpoints[0][1].weights[0], run.model.weights[0])


def test_save_load(digits, tmp_path):
    run = dm.train([8], digits.X_train, digits.y_train, epochs=1, checkpoints=3, progress=False)
    back = dm.TrainRun.load(run.save(tmp_path / "run.npz"))
    assert back.steps == run.steps and back.task == run.task and back.config["epochs"] == 1
    assert_array_equal(back.model.weights[1], run.model.weights[1])
    assert_array_equal(back.history["train_loss"], run.history["train_loss"])


@pytest.mark.parametrize("kwargs, message", [
    (dict(optimizer="rmsprop"), "unknown optimizer"),
    (dict(init="orthogonal"), "unknown init"),
    (dict(activation="gelu"), "unknown activation"),
    (dict(epochs=0), "epochs"),
    (dict(lr=-1.0), "lr"),
])
def test_bad_arguments(kwargs, message, digits):
    with pytest.raises(ValueError, match=message):
        dm.train([8], digits.X_train, digits.y_train, progress=False, **kwargs)


def test_single_class_is_an_error(digits):
    with pytest.raises(ValueError, match="1 class"):
        dm.train([8], digits.X_train, np.zeros(len(digits.X_train), dtype=int), progress=False)
