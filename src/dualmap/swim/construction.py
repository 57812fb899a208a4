"""The SWIM construction: an ordered pair of points → one hidden neuron.

This is the only place in dualmap where the formula lives; everything else imports it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._backend import to_numpy
from .._validation import check_activation

__all__ = ["swim_constants", "swim_neurons", "TANH_S2"]

#: :math:`s_2 = \operatorname{artanh}(1/2) = \ln(3)/2` for tanh neurons.
TANH_S2 = 0.5 * math.log(3.0)


def swim_constants(activation: str) -> tuple[float, float]:
    """Return the SWIM constants ``(s1, s2)`` of an activation.

    * ReLU: ``s1 = 1, s2 = 0`` — pre-activation 0 at ``z1`` (the kink) and 1 at ``z2``.
    * tanh: ``s2 = artanh(1/2) = ln(3)/2``, ``s1 = 2·s2 = ln 3`` — tanh is −1/2 at ``z1``, +1/2 at ``z2``.
    """
    check_activation(activation)
    if activation == "relu":
        return 1.0, 0.0
    return 2.0 * TANH_S2, TANH_S2


def swim_neurons(z1, z2, activation: str):
    """Build the SWIM neurons of ordered pairs ``(z1_k, z2_k)``, all at once.

    .. math::

        w_k = s_1 \\frac{\\Delta_k}{\\lVert \\Delta_k \\rVert^2}, \\qquad
        b_k = -\\langle w_k, z_{1,k} \\rangle - s_2,

    where:

    * :math:`\\Delta_k = z_{2,k} - z_{1,k}` (must be non-zero);
    * :math:`(s_1, s_2)` are :func:`swim_constants` of ``activation``.

    The pre-activation of neuron ``k`` at ``z`` is therefore :math:`\\langle w_k, z - z_{1,k}\\rangle - s_2`:
    ``-s2`` at ``z1`` and ``s1 - s2`` at ``z2``.

    Parameters
    ----------
    z1, z2 : ndarray or torch.Tensor of shape (n_neurons, d_in)
        Numpy in → numpy out; tensors in → tensors out (differentiable).
    activation : {"relu", "tanh"}

    Returns
    -------
    W : of shape (n_neurons, d_in)
    b : of shape (n_neurons,)

    Raises
    ------
    ValueError
        If shapes differ or some pair has ``z1 == z2`` (such a pair defines no neuron).
    """
    s1, s2 = swim_constants(activation)
    is_numpy = not isinstance(z1, torch.Tensor)
    if is_numpy:
        z1, z2 = torch.as_tensor(np.asarray(z1)), torch.as_tensor(np.asarray(z2))
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"z1 and z2 must both have shape (n_neurons, d_in); "
                         f"got {tuple(z1.shape)} and {tuple(z2.shape)}")
    delta = z2 - z1
    squared_norm = (delta * delta).sum(dim=1)
    if bool((squared_norm == 0).any()):
        bad = int(torch.nonzero(squared_norm == 0)[0, 0])
        raise ValueError(f"pair {bad} has z1 == z2; two coincident points define no SWIM neuron")
    weight = (s1 / squared_norm)[:, None] * delta
    bias = -(weight * z1).sum(dim=1) - s2
    if is_numpy:
        return to_numpy(weight), to_numpy(bias)
    return weight, bias
