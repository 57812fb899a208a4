"""Device and dtype handling: numpy at the public API, torch tensors inside.

Every numerical routine of dualmap converts its inputs once with :func:`as_tensor`
and its outputs once with :func:`to_numpy`, so the same code runs on a CPU or a GPU.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["resolve_device", "resolve_dtype", "as_tensor", "to_numpy"]

_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
}


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Return the torch device named by ``device``.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device, default="auto"
        ``"auto"`` (or None) picks CUDA when it is available, otherwise the CPU.

    Returns
    -------
    torch.device
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"device must be 'auto', 'cpu', 'cuda' or a torch.device; got {device!r}")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]'; got {device!r}") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; use 'cpu' or 'auto'")
    return resolved


def resolve_dtype(dtype: str | torch.dtype | np.dtype | type = "float64") -> torch.dtype:
    """Return the floating torch dtype named by ``dtype`` ("float32" or "float64")."""
    if isinstance(dtype, torch.dtype):
        if dtype not in _DTYPES.values():
            raise ValueError(f"dtype must be float32 or float64; got {dtype}")
        return dtype
    try:
        name = np.dtype(dtype).name
    except TypeError as exc:
        raise TypeError(f"dtype must be 'float32' or 'float64'; got {dtype!r}") from exc
    if name not in _DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")
    return _DTYPES[name]


def as_tensor(array, *, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Convert a numpy array (or tensor) to a tensor on ``device`` without copying when possible."""
    if isinstance(array, torch.Tensor):
        return array.to(device=device, dtype=dtype if dtype is not None else array.dtype)
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:  # torch cannot wrap read-only memory; copy rather than risk writing to it
        array = array.copy()
    tensor = torch.from_numpy(array)
    return tensor.to(device=device, dtype=dtype if dtype is not None else tensor.dtype)


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """Detach a tensor and return it as a numpy array on the CPU."""
    return tensor.detach().cpu().numpy()
