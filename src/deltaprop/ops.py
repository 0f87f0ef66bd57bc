"""Numerically stable elementary functions, written once for every array library.

Every function takes the array namespace from its argument (``namespace(x)``), so the same code
serves NumPy today and an array library with the standard array API (CuPy, for instance) later.
"""

from __future__ import annotations

import numpy as np

from deltaprop import fast

__all__ = ["namespace", "sigmoid", "log_sigmoid", "softmax", "log_softmax", "logsumexp", "row_max", "row_sum"]


def namespace(*arrays):
    """The array namespace of the arrays: ``x.__array_namespace__()`` where offered, else NumPy."""
    if type(arrays[0]) is np.ndarray:  # the common case, answered without attribute look-ups
        return np
    for a in arrays:
        get = getattr(a, "__array_namespace__", None)
        if get is not None and not isinstance(a, np.ndarray):
            return get()
    return np


def sigmoid(Z, out=None):
    """σ(z) = 1/(1 + e^{−z}), computed as ½(1 + tanh(z/2)).

    The tanh form never overflows (σ(±1e4) is exactly 1 and 0 with no warning) and needs one
    transcendental per element, like the naive form.
    """
    xp = namespace(Z)
    if out is None:
        out = xp.multiply(Z, 0.5)
    else:
        xp.multiply(Z, 0.5, out=out)
    xp.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def log_sigmoid(Z):
    """log σ(z) = −log(1 + e^{−z}) = −logaddexp(0, −z): finite for every finite z."""
    xp = namespace(Z)
    return -xp.logaddexp(0.0, -Z)


def row_max(Z):
    """max over the columns of each row, (m, K) -> (m, 1) (NumPy: :func:`deltaprop.fast.row_max`)."""
    xp = namespace(Z)
    if xp is np:
        return fast.row_max(Z)
    return xp.max(Z, axis=1, keepdims=True)


def row_sum(Z):
    """Σ over the columns of each row, (m, K) -> (m, 1) (NumPy: :func:`deltaprop.fast.row_sum`)."""
    xp = namespace(Z)
    if xp is np:
        return fast.row_sum(Z)
    return xp.sum(Z, axis=1, keepdims=True)


def logsumexp(Z):
    """log Σ_k e^{z_k} per row, (m, K) -> (m, 1), shifted by the row maximum so nothing overflows."""
    xp = namespace(Z)
    c = row_max(Z)
    return c + xp.log(row_sum(xp.exp(Z - c)))


def softmax(Z, out=None):
    """softmax(z)_k = e^{z_k − c} / Σ_j e^{z_j − c} with c = max_j z_j, row by row.

    Subtracting the row maximum leaves the result unchanged and keeps every exponent ≤ 0, so nothing
    overflows (logits of ±1e4 are fine).
    """
    xp = namespace(Z)
    c = row_max(Z)
    if out is None:
        out = Z - c
    else:
        xp.subtract(Z, c, out=out)
    xp.exp(out, out=out)
    out /= row_sum(out)
    return out


def log_softmax(Z):
    """log softmax(z)_k = z_k − logsumexp(z), row by row; finite for all finite logits."""
    return Z - logsumexp(Z)
