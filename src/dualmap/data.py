"""Offline data sets: scikit-learn's bundled sets, Fashion-MNIST from Debian, synthetic functions.

Nothing here downloads. Every split is deterministic given ``seed``.

Preprocessing (``standardize=True``): inputs are z-scored per feature with the *training* mean and
standard deviation (features with zero spread are only centred); for regression the targets are
z-scored too, and the transformation is kept on the :class:`Dataset` (``y_mean``, ``y_scale``) so
predictions can be mapped back with ``y * y_scale + y_mean``. Image sets (Fashion-MNIST) are scaled
with one global mean and standard deviation over all pixels instead, which keeps the geometry of
the images (per-pixel z-scoring would blow up the nearly constant border pixels).
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "load_dataset", "list_datasets", "dataset_info", "FASHION_MNIST_DIR", "DATASET_OPTIONS"]

#: Where Debian's ``dataset-fashion-mnist`` package installs the IDX files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

_FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


@dataclass
class Dataset:
    """A train/test split of one data set.

    Attributes
    ----------
    X_train : ndarray of shape (n_train, n_features), float64
    y_train : ndarray of shape (n_train,) (class labels, int) or (n_train,) / (n_train, n_outputs) float
    X_test, y_test : the same for the test split
    task : {"classification", "regression"}
    name : str
    n_classes : int or None
        Number of classes for classification, None for regression.
    image_shape : tuple of int or None
        Shape of one input as an image (e.g. ``(8, 8)`` for digits), for figures.
    class_names : tuple of str or None
    y_mean, y_scale : ndarray or None
        For standardized regression targets: the original target is ``y * y_scale + y_mean``.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    name: str
    n_classes: int | None = None
    image_shape: tuple[int, ...] | None = None
    class_names: tuple[str, ...] | None = None
    y_mean: np.ndarray | None = field(default=None, repr=False)
    y_scale: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_features(self) -> int:
        """Input dimension."""
        return self.X_train.shape[1]

    @property
    def n_train(self) -> int:
        """Number of training points."""
        return self.X_train.shape[0]

    def __repr__(self) -> str:
        extra = f", n_classes={self.n_classes}" if self.n_classes else ""
        return (
            f"Dataset(name={self.name!r}, task={self.task!r}, n_train={self.n_train}, "
            f"n_test={self.X_test.shape[0]}, n_features={self.n_features}{extra})"
        )


# --------------------------------------------------------------------------- registry
_SKLEARN = {
    "digits": ("load_digits", "classification", (8, 8)),
    "breast_cancer": ("load_breast_cancer", "classification", None),
    "wine": ("load_wine", "classification", None),
    "iris": ("load_iris", "classification", None),
    "diabetes": ("load_diabetes", "regression", None),
}
_SYNTHETIC = ("barron", "log2d", "sincos2d")

#: the loader options each data set accepts (``load_dataset(name, **options)``)
DATASET_OPTIONS = {"barron": ("dim", "n_samples"), "log2d": ("n_samples",), "sincos2d": ("n_samples",)}

#: size (points, before the split), input dimension and task of each set, without loading it
_INFO = {
    "digits": (1797, 64, "classification (10 classes)", "8×8 images, scikit-learn"),
    "breast_cancer": (569, 30, "classification (2 classes)", "scikit-learn"),
    "wine": (178, 13, "classification (3 classes)", "scikit-learn"),
    "iris": (150, 4, "classification (3 classes)", "scikit-learn"),
    "diabetes": (442, 10, "regression", "scikit-learn"),
    "fashion_mnist": (70000, 784, "classification (10 classes)", "28×28 images, Debian dataset-fashion-mnist; "
                      "fixed 60 000 / 10 000 split"),
    "barron": (20000, 5, "regression", "synthetic; options dim (default 5), n_samples"),
    "log2d": (2000, 2, "regression", "synthetic; option n_samples"),
    "sincos2d": (2000, 2, "regression (2 outputs)", "synthetic; option n_samples"),
}


def dataset_info() -> list[dict]:
    """One row per data set: ``name``, ``points``, ``dim``, ``task``, ``note``, ``available`` — nothing is loaded."""
    rows = []
    for name in list_datasets():
        points, dim, task, note = _INFO[name]
        available = name != "fashion_mnist" or any(
            (FASHION_MNIST_DIR / f"train-images-idx3-ubyte{suffix}").exists() for suffix in (".gz", ""))
        rows.append({"name": name, "points": points, "dim": dim, "task": task, "note": note,
                     "available": available})
    return rows


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return sorted([*_SKLEARN, "fashion_mnist", *_SYNTHETIC])


def load_dataset(name: str, *, seed: int = 0, standardize: bool = True, n_train: int | None = None,
                 test_size: float = 0.25, path=None, **options) -> Dataset:
    """Load a data set by name, split deterministically, optionally standardized.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`:

        * ``digits`` (1797×64, 10 classes), ``breast_cancer`` (569×30, 2), ``wine`` (178×13, 3),
          ``iris`` (150×4, 3), ``diabetes`` (442×10, regression) — scikit-learn's bundled copies,
          split stratified (classification) with ``test_size``;
        * ``fashion_mnist`` — 60 000 + 10 000 images of 28×28 from the IDX files of Debian's
          ``dataset-fashion-mnist`` package (or ``path=``), the official train/test split;
        * ``barron`` — :math:`f(x) = \\sqrt{3/2}\\,(\\lVert x-a\\rVert - \\lVert x+a\\rVert)`,
          :math:`a_j = 2j/d - 1`, :math:`x \\sim U[-1,1]^d` (the SWIM paper's Barron function);
          options ``dim`` (default 5), ``n_samples`` (default 20 000, split in half);
        * ``log2d`` — the Laplacian of a Gaussian with σ = 1/2 on :math:`[-2,2]^2`,
          :math:`f(x) = -\\frac{1}{\\pi\\sigma^4}\\bigl(1-\\frac{\\lVert x\\rVert^2}{2\\sigma^2}\\bigr)
          e^{-\\lVert x\\rVert^2/2\\sigma^2}` (the 2023 conversion thesis's test function);
          option ``n_samples`` (default 2000);
        * ``sincos2d`` — :math:`f(x) = (2\\sin x_1, 2\\cos x_2)` on :math:`[-\\pi,\\pi]^2`, two outputs;
          option ``n_samples`` (default 2000).
    seed : int, default=0
        Seeds the split, the synthetic samples and the ``n_train`` subsample.
    standardize : bool, default=True
        See the module docstring.
    n_train : int, optional
        Keep a seeded random subset of this many training points (stratified for classification).
    test_size : float, default=0.25
        Test fraction for the scikit-learn and synthetic sets (Fashion-MNIST keeps its own split).
    path : str or Path, optional
        Folder with the Fashion-MNIST IDX files (default :data:`FASHION_MNIST_DIR`).

    Returns
    -------
    Dataset
    """
    if not isinstance(name, str) or name not in list_datasets():
        raise ValueError(f"unknown data set {name!r}; available: {list_datasets()}")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1); got {test_size}")
    allowed_options = {key: set(value) for key, value in DATASET_OPTIONS.items()}
    unknown = set(options) - allowed_options.get(name, set())
    if unknown:
        raise TypeError(f"load_dataset({name!r}) got unknown options {sorted(unknown)}; "
                        f"allowed: {sorted(allowed_options.get(name, set()))}")
    if path is not None and name != "fashion_mnist":
        raise TypeError("path= applies only to 'fashion_mnist'")
    rng = np.random.default_rng(seed)

    image_shape, class_names, global_scale = None, None, False
    if name in _SKLEARN:
        X, y, task, image_shape = _load_sklearn(name)
        X_train, X_test, y_train, y_test = _split(X, y, task, test_size, rng)
    elif name == "fashion_mnist":
        X_train, y_train, X_test, y_test = _load_fashion_mnist(path)
        task, image_shape, class_names, global_scale = "classification", (28, 28), _FASHION_CLASSES, True
    else:
        X, y = _synthetic(name, rng, **options)
        task = "regression"
        X_train, X_test, y_train, y_test = _split(X, y, task, test_size, rng)

    if n_train is not None:
        if isinstance(n_train, bool) or not isinstance(n_train, (int, np.integer)) or not 2 <= n_train:
            raise ValueError(f"n_train must be an int >= 2; got {n_train!r}")
        if n_train > len(X_train):
            raise ValueError(f"n_train={n_train} is larger than the training split of {name!r} ({len(X_train)} "
                             f"points with test_size={test_size}); leave n_train out to use all of them")
        if task == "classification":
            classes = len(np.unique(y_train))
            if n_train < classes:
                raise ValueError(f"n_train={n_train} is below the number of classes of {name!r} ({classes}); a "
                                 f"stratified subsample needs at least one point per class")
        if n_train < len(X_train):
            keep = _subsample(y_train, n_train, task, rng)
            X_train, y_train = X_train[keep], y_train[keep]

    y_mean = y_scale = None
    if standardize:
        X_train, X_test = _standardize_inputs(X_train, X_test, global_scale)
        if task == "regression":
            y_mean, y_scale = y_train.mean(axis=0), y_train.std(axis=0)
            y_scale = np.where(y_scale > 0, y_scale, 1.0)
            y_train, y_test = (y_train - y_mean) / y_scale, (y_test - y_mean) / y_scale
    n_classes = int(len(np.unique(np.concatenate([y_train, y_test])))) if task == "classification" else None
    return Dataset(
        X_train=np.ascontiguousarray(X_train, dtype=np.float64), y_train=y_train,
        X_test=np.ascontiguousarray(X_test, dtype=np.float64), y_test=y_test,
        task=task, name=name, n_classes=n_classes, image_shape=image_shape, class_names=class_names,
        y_mean=y_mean, y_scale=y_scale,
    )


# --------------------------------------------------------------------------- loaders
def _load_sklearn(name):
    import sklearn.datasets

    loader, task, image_shape = _SKLEARN[name]
    X, y = getattr(sklearn.datasets, loader)(return_X_y=True)
    y = y.astype(np.int64) if task == "classification" else y.astype(np.float64)
    return X.astype(np.float64), y, task, image_shape


def _read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file of unsigned bytes into an array of its stated shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
        if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
            raise ValueError("bad magic number (expected unsigned-byte IDX)")
        n_dims = data[3]
        dims = struct.unpack(">" + "I" * n_dims, data[4:4 + 4 * n_dims])
        array = np.frombuffer(data, np.uint8, offset=4 + 4 * n_dims)
        if array.size != int(np.prod(dims)):
            raise ValueError(f"holds {array.size} values, header says {dims}")
        return array.reshape(dims)
    except (OSError, EOFError, struct.error, ValueError) as exc:
        raise ValueError(f"{path} is not a valid IDX file: {exc}") from exc


def _load_fashion_mnist(path):
    folder = Path(path) if path is not None else FASHION_MNIST_DIR
    files = {}
    for split, stem in (("X_train", "train-images-idx3-ubyte"), ("y_train", "train-labels-idx1-ubyte"),
                        ("X_test", "t10k-images-idx3-ubyte"), ("y_test", "t10k-labels-idx1-ubyte")):
        candidates = [folder / f"{stem}.gz", folder / stem]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            raise FileNotFoundError(
                f"Fashion-MNIST file {stem}(.gz) not found in {folder}. Install the data with "
                f"'apt-get install -y dataset-fashion-mnist' (Debian/Ubuntu), or pass path= to a folder "
                f"holding the four IDX files."
            )
        files[split] = _read_idx(found)
    X_train = files["X_train"].reshape(len(files["X_train"]), -1).astype(np.float64) / 255.0
    X_test = files["X_test"].reshape(len(files["X_test"]), -1).astype(np.float64) / 255.0
    return X_train, files["y_train"].astype(np.int64), X_test, files["y_test"].astype(np.int64)


def _synthetic(name, rng, *, dim=5, n_samples=None):
    if name == "barron":
        if not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"dim must be a positive int; got {dim!r}")
        n_samples = 20_000 if n_samples is None else n_samples
        X = rng.uniform(-1.0, 1.0, size=(n_samples, dim))
        a = 2.0 * np.arange(1, dim + 1) / dim - 1.0
        y = np.sqrt(1.5) * (np.linalg.norm(X - a, axis=1) - np.linalg.norm(X + a, axis=1))
    elif name == "log2d":
        n_samples = 2000 if n_samples is None else n_samples
        X = rng.uniform(-2.0, 2.0, size=(n_samples, 2))
        sigma = 0.5
        r2 = np.sum(X**2, axis=1) / (2 * sigma**2)
        y = -1.0 / (np.pi * sigma**4) * (1.0 - r2) * np.exp(-r2)
    else:  # sincos2d
        n_samples = 2000 if n_samples is None else n_samples
        X = rng.uniform(-np.pi, np.pi, size=(n_samples, 2))
        y = 2.0 * np.stack([np.sin(X[:, 0]), np.cos(X[:, 1])], axis=1)
    if n_samples < 4:
        raise ValueError(f"n_samples must be at least 4; got {n_samples}")
    return X, y


# --------------------------------------------------------------------------- helpers
def _split(X, y, task, test_size, rng):
    from sklearn.model_selection import train_test_split

    stratify = y if task == "classification" else None
    return train_test_split(X, y, test_size=test_size, stratify=stratify,
                            random_state=int(rng.integers(2**31 - 1)))


def _subsample(y, n_train, task, rng):
    """Indices of a seeded subset of ``n_train`` rows (stratified for classification, unless fewer points than
    classes are left out), in sorted order."""
    if task == "classification" and len(y) - n_train >= len(np.unique(y)):
        from sklearn.model_selection import train_test_split

        keep, _ = train_test_split(np.arange(len(y)), train_size=n_train, stratify=y,
                                   random_state=int(rng.integers(2**31 - 1)))
        return np.sort(keep)
    return np.sort(rng.choice(len(y), size=n_train, replace=False))


def _standardize_inputs(X_train, X_test, global_scale):
    if global_scale:
        mean, std = X_train.mean(), X_train.std()
    else:
        mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (X_train - mean) / std, (X_test - mean) / std
