"""The multilayer perceptron every part of dualmap reads and writes.

A dense layer computes ``σ(z @ W.T + b)`` with ``W`` of shape ``(width, d_in)`` and ``b`` of shape
``(width,)`` (the convention of :class:`torch.nn.Linear`). An :class:`MLP` is a list of such layers;
all but the last are *hidden* layers (ReLU or tanh), the last is the *readout* (usually identity).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._backend import as_tensor, to_numpy
from ._io import CorruptFileError, load_archive, save_archive
from ._validation import ACTIVATIONS, check_activation, check_data

__all__ = ["MLP", "activation_function"]

_TORCH_ACTIVATIONS = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Identity: "identity"}
_ACTIVATION_MODULES = {"relu": nn.ReLU, "tanh": nn.Tanh, "identity": nn.Identity}


def activation_function(name: str):
    """Return the elementwise torch function of the activation ``name`` (relu, tanh, identity)."""
    check_activation(name, allowed=ACTIVATIONS)
    if name == "relu":
        return torch.relu
    if name == "tanh":
        return torch.tanh
    return lambda t: t


class MLP:
    """A fully connected feed-forward network with ReLU, tanh or identity layers.

    Layer ``l`` maps its input ``z`` (shape ``(n, d_in)``) to ``σ_l(z @ W_l.T + b_l)``.

    Parameters
    ----------
    weights : list of ndarray, each of shape (width_l, d_in_l)
        ``d_in_{l+1}`` must equal ``width_l``.
    biases : list of ndarray, each of shape (width_l,)
    activations : list of {"relu", "tanh", "identity"}
        One per layer. The last layer is the readout; hidden layers are the ones before it.

    Attributes
    ----------
    weights, biases, activations : lists, as given (arrays are copied, float32 or float64)

    Examples
    --------
    >>> import numpy as np, dualmap as dm
    >>> mlp = dm.MLP([np.eye(2), np.ones((1, 2))], [np.zeros(2), np.zeros(1)], ["relu", "identity"])
    >>> mlp.predict(np.array([[1.0, -1.0]]))
    array([[1.]])
    """

    def __init__(self, weights, biases, activations):
        if not (len(weights) == len(biases) == len(activations)):
            raise ValueError(
                f"weights, biases and activations need one entry per layer; "
                f"got {len(weights)}, {len(biases)} and {len(activations)}"
            )
        if len(weights) == 0:
            raise ValueError("an MLP needs at least one layer")
        self.weights, self.biases, self.activations = [], [], []
        for index, (weight, bias, activation) in enumerate(zip(weights, biases, activations)):
            weight = np.array(weight, copy=True)
            bias = np.array(bias, copy=True)
            if weight.dtype not in (np.float32, np.float64):
                weight = weight.astype(np.float64)
            bias = bias.astype(weight.dtype)
            if weight.ndim != 2:
                raise ValueError(f"layer {index}: weight must be 2-D (width, d_in); got shape {weight.shape}")
            if bias.shape != (weight.shape[0],):
                raise ValueError(
                    f"layer {index}: bias must have shape ({weight.shape[0]},) to match weight {weight.shape}; "
                    f"got {bias.shape}"
                )
            if index > 0 and weight.shape[1] != self.weights[-1].shape[0]:
                raise ValueError(
                    f"layer {index}: weight expects inputs of dimension {weight.shape[1]} but layer {index - 1} "
                    f"has width {self.weights[-1].shape[0]}"
                )
            if not (np.all(np.isfinite(weight)) and np.all(np.isfinite(bias))):
                raise ValueError(f"layer {index}: weights or biases contain NaN or inf")
            self.weights.append(weight)
            self.biases.append(bias)
            self.activations.append(check_activation(activation, allowed=ACTIVATIONS,
                                                     name=f"activation of layer {index}"))

    # ------------------------------------------------------------------ shape
    @property
    def n_layers(self) -> int:
        """Number of layers including the readout."""
        return len(self.weights)

    @property
    def n_hidden_layers(self) -> int:
        """Number of hidden layers (all layers but the readout)."""
        return len(self.weights) - 1

    @property
    def input_dim(self) -> int:
        """Dimension of the input ``x``."""
        return self.weights[0].shape[1]

    @property
    def output_dim(self) -> int:
        """Dimension of the output."""
        return self.weights[-1].shape[0]

    @property
    def hidden_widths(self) -> tuple[int, ...]:
        """Widths of the hidden layers."""
        return tuple(w.shape[0] for w in self.weights[:-1])

    @property
    def dtype(self) -> np.dtype:
        """The floating dtype of the parameters."""
        return self.weights[0].dtype

    def __repr__(self) -> str:
        layers = " → ".join(f"{w.shape[0]}({a})" for w, a in zip(self.weights, self.activations))
        return f"MLP({self.input_dim} → {layers})"

    # ---------------------------------------------------------------- forward
    def forward(self, X, *, upto: int | None = None, pre_activation: bool = False):
        """Evaluate the network, or its first ``upto`` layers.

        Parameters
        ----------
        X : ndarray or torch.Tensor of shape (n_samples, input_dim)
            Numpy in → numpy out; a tensor in → a tensor out (on its device, gradients kept).
        upto : int, optional
            Number of layers to apply (default: all). ``upto=l`` returns the output of layer ``l-1``,
            e.g. ``upto=1`` gives the first hidden layer's activations.
        pre_activation : bool, default=False
            Return the last applied layer's pre-activation ``z @ W.T + b`` instead of its output.

        Returns
        -------
        ndarray or torch.Tensor of shape (n_samples, width)
        """
        upto = self.n_layers if upto is None else upto
        if not 1 <= upto <= self.n_layers:
            raise ValueError(f"upto must be in [1, {self.n_layers}]; got {upto}")
        is_tensor = isinstance(X, torch.Tensor)
        if is_tensor:
            z = X
            device, dtype = X.device, X.dtype if X.is_floating_point() else torch.float64
        else:
            z = check_data(X, n_features=self.input_dim)
            device, dtype = torch.device("cpu"), torch.from_numpy(self.weights[0][:0]).dtype
            z = as_tensor(z, device=device, dtype=dtype)
        if z.ndim != 2 or z.shape[1] != self.input_dim:
            raise ValueError(f"X must have shape (n_samples, {self.input_dim}); got {tuple(z.shape)}")
        for index in range(upto):
            weight = as_tensor(self.weights[index], device=device, dtype=dtype)
            bias = as_tensor(self.biases[index], device=device, dtype=dtype)
            z = torch.addmm(bias, z, weight.T)
            if not (pre_activation and index == upto - 1):
                z = activation_function(self.activations[index])(z)
        return z if is_tensor else to_numpy(z)

    __call__ = forward

    def predict(self, X):
        """The network's output ``f(X)``, shape (n_samples, output_dim)."""
        return self.forward(X)

    def hidden(self, X, layer: int):
        """Activations of hidden layer ``layer`` (0-based), shape (n_samples, width_layer)."""
        if not 0 <= layer < self.n_hidden_layers:
            raise ValueError(f"layer must be in [0, {self.n_hidden_layers - 1}]; got {layer}")
        return self.forward(X, upto=layer + 1)

    # ------------------------------------------------------------ conversion
    @classmethod
    def from_torch(cls, module: nn.Module) -> "MLP":
        """Build an MLP from a torch ``nn.Sequential`` of ``Linear`` and ``ReLU``/``Tanh`` layers.

        Nested ``nn.Sequential`` containers are flattened and ``nn.Identity`` is ignored. A ``Linear`` not
        followed by an activation gets the identity. Any other module (Conv2d, BatchNorm, GELU, Dropout, …)
        raises a ``TypeError`` naming it. Parameters are copied bit for bit, in their own dtype.
        """
        if not isinstance(module, nn.Module):
            raise TypeError(f"from_torch expects a torch.nn.Module; got {type(module).__name__}")
        leaves = list(_flatten_sequential(module, prefix=""))
        weights, biases, activations = [], [], []
        for name, layer in leaves:
            if isinstance(layer, nn.Linear):
                weight = to_numpy(layer.weight)
                bias = to_numpy(layer.bias) if layer.bias is not None else np.zeros(weight.shape[0], weight.dtype)
                weights.append(weight)
                biases.append(bias)
                activations.append("identity")
            elif type(layer) in _TORCH_ACTIVATIONS:
                activation = _TORCH_ACTIVATIONS[type(layer)]
                if activation == "identity":
                    continue
                if not weights or activations[-1] != "identity":
                    raise TypeError(f"layer {name!r} ({type(layer).__name__}) must directly follow a Linear layer")
                activations[-1] = activation
            else:
                raise TypeError(
                    f"unsupported layer {name!r} of type {type(layer).__name__}; dualmap converts only "
                    f"nn.Sequential of Linear, ReLU and Tanh"
                )
        if not weights:
            raise TypeError("the torch module contains no Linear layer")
        return cls(weights, biases, activations)

    def to_torch(self, *, device="cpu") -> nn.Sequential:
        """Return an ``nn.Sequential`` of ``Linear`` and ``ReLU``/``Tanh`` with these exact parameters."""
        modules = []
        for weight, bias, activation in zip(self.weights, self.biases, self.activations):
            linear = nn.Linear(weight.shape[1], weight.shape[0], dtype=torch.from_numpy(weight[:0]).dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(weight))
                linear.bias.copy_(torch.from_numpy(bias))
            modules.append(linear)
            if activation != "identity":
                modules.append(_ACTIVATION_MODULES[activation]())
        return nn.Sequential(*modules).to(device)

    def copy(self) -> "MLP":
        """A deep copy."""
        return MLP(self.weights, self.biases, self.activations)

    # -------------------------------------------------------------- save/load
    def save(self, path) -> Path:
        """Save to a dualmap archive (``.npz``; see ``docs/file-format.md``).

        Arrays: ``weight_{l}`` (width_l, d_in_l), ``bias_{l}`` (width_l,), ``activations`` (n_layers,) str.
        """
        return save_archive(path, "MLP", self.to_arrays(), {"n_layers": self.n_layers})

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The parameters as named arrays: ``{prefix}weight_{l}``, ``{prefix}bias_{l}``, ``{prefix}activations``."""
        arrays = {f"{prefix}activations": np.array(self.activations)}
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            arrays[f"{prefix}weight_{index}"] = weight
            arrays[f"{prefix}bias_{index}"] = bias
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict, prefix: str = "") -> "MLP":
        """Inverse of :meth:`to_arrays`."""
        activations = [str(a) for a in arrays[f"{prefix}activations"]]
        return cls([arrays[f"{prefix}weight_{i}"] for i in range(len(activations))],
                   [arrays[f"{prefix}bias_{i}"] for i in range(len(activations))], activations)

    @classmethod
    def load(cls, path) -> "MLP":
        """Load an MLP written by :meth:`save`; a truncated or foreign file raises ``CorruptFileError``."""
        _, arrays = load_archive(path, "MLP")
        try:
            return cls.from_arrays(arrays)
        except (KeyError, ValueError, TypeError) as exc:
            raise CorruptFileError(f"{path} is not a valid MLP file: {exc}") from exc


def _flatten_sequential(module: nn.Module, prefix: str):
    """Yield ``(qualified_name, leaf_module)`` of nested ``nn.Sequential`` containers in order."""
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            yield from _flatten_sequential(child, f"{prefix}{name}" if not prefix else f"{prefix}.{name}")
    else:
        yield (prefix or type(module).__name__), module
