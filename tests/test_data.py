import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import dualmap as dm
from dualmap.data import FASHION_MNIST_DIR

HAVE_FASHION = (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists()


def test_list_datasets():
    names = dm.list_datasets()
    for name in ["digits", "breast_cancer", "wine", "iris", "diabetes", "fashion_mnist", "barron", "log2d", "sincos2d"]:
        assert name in names


@pytest.mark.parametrize("name, n_features, task, n_classes", [
    ("digits", 64, "classification", 10), ("breast_cancer", 30, "classification", 2),
    ("wine", 13, "classification", 3), ("iris", 4, "classification", 3), ("diabetes", 10, "regression", None),
])
def test_sklearn_sets(name, n_features, task, n_classes):
    ds = dm.load_dataset(name)
    assert ds.task == task and ds.n_features == n_features and ds.n_classes == n_classes
    assert ds.X_test.shape[1] == n_features and len(ds.X_train) == len(ds.y_train)
    assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-10)   # standardized with training statistics
    if task == "classification":   # stratified
        train_fraction = np.bincount(ds.y_train) / len(ds.y_train)
        test_fraction = np.bincount(ds.y_test) / len(ds.y_test)
        assert_allclose(train_fraction, test_fraction, atol=0.03)


def test_splits_are_deterministic_and_seeded():
    a, b, c = dm.load_dataset("wine", seed=1), dm.load_dataset("wine", seed=1), dm.load_dataset("wine", seed=2)
    assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.X_train, c.X_train)


def test_n_train_subsample_is_stratified():
    ds = dm.load_dataset("digits", n_train=200)
    assert ds.n_train == 200
    assert np.all(np.bincount(ds.y_train) >= 18)


def test_unstandardized_keeps_raw_values():
    ds = dm.load_dataset("digits", standardize=False)
    assert ds.X_train.max() == 16.0 and ds.X_train.min() == 0.0


def test_regression_targets_can_be_mapped_back():
    raw = dm.load_dataset("diabetes", standardize=False)
    ds = dm.load_dataset("diabetes")
    assert_allclose(ds.y_train * ds.y_scale + ds.y_mean, raw.y_train)


def test_barron_function_formula():
    ds = dm.load_dataset("barron", dim=3, n_samples=100, standardize=False)
    a = 2 * np.arange(1, 4) / 3 - 1
    X = ds.X_train
    assert_allclose(ds.y_train, np.sqrt(1.5) * (np.linalg.norm(X - a, axis=1) - np.linalg.norm(X + a, axis=1)))
    assert np.all(np.abs(X) <= 1)


def test_log2d_and_sincos2d():
    ds = dm.load_dataset("log2d", standardize=False)
    assert ds.n_features == 2 and np.all(np.abs(ds.X_train) <= 2)
    r2 = np.sum(ds.X_train**2, axis=1) / (2 * 0.25)
    assert_allclose(ds.y_train, -1 / (np.pi * 0.5**4) * (1 - r2) * np.exp(-r2))
    sc = dm.load_dataset("sincos2d", standardize=False)
    assert sc.y_train.shape[1] == 2
    assert_allclose(sc.y_train[:, 0], 2 * np.sin(sc.X_train[:, 0]))


@pytest.mark.skipif(not HAVE_FASHION, reason="Debian package dataset-fashion-mnist not installed (.ci/run installs it)")
def test_fashion_mnist():
    ds = dm.load_dataset("fashion_mnist", n_train=1000)
    assert ds.n_features == 784 and ds.n_train == 1000 and len(ds.X_test) == 10_000
    assert ds.image_shape == (28, 28) and ds.n_classes == 10 and len(ds.class_names) == 10


def test_fashion_mnist_missing_files_names_the_install_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        dm.load_dataset("fashion_mnist", path=tmp_path)


def test_fashion_mnist_corrupt_file(tmp_path):
    for stem in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"]:
        (tmp_path / stem).write_bytes(b"\x00\x00\x08\x03" + b"\x00\x00\x00\x05")
    with pytest.raises(ValueError, match="not a valid IDX file"):
        dm.load_dataset("fashion_mnist", path=tmp_path)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(name="mnist"), ValueError, "unknown data set 'mnist'"),
    (dict(name="digits", n_train=1), ValueError, "n_train"),
    (dict(name="digits", dim=3), TypeError, "unknown options"),
    (dict(name="barron", dim=0), ValueError, "dim"),
])
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        dm.load_dataset(**kwargs)


def test_n_train_larger_than_the_split_or_below_the_classes_is_an_error_naming_n_train():
    full = dm.load_dataset("wine")
    with pytest.raises(ValueError, match=r"n_train=5000 is larger than the training split of 'wine' \(133 points"):
        dm.load_dataset("wine", n_train=5000)
    assert dm.load_dataset("wine", n_train=full.n_train).n_train == full.n_train       # exactly all: allowed
    with pytest.raises(ValueError, match=r"n_train=2 is below the number of classes of 'wine' \(3\)"):
        dm.load_dataset("wine", n_train=2)
    assert dm.load_dataset("wine", n_train=full.n_train - 1).n_train == full.n_train - 1   # fewer left than classes
