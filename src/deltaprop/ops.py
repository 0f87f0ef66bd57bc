"""Numerically stable elementary functions: sigmoid, log σ, softmax, log softmax, logsumexp.

NumPy only. (An array-library layer for GPUs, when one comes, brings its own tested namespace.)
"""

from __future__ import annotations

import numpy as np

from deltaprop import fast

__all__ = ["sigmoid", "log_sigmoid", "softmax", "log_softmax", "logsumexp", "row_max", "row_sum"]


def sigmoid(Z, out=None):
    """σ(z) = 1/(1 + e^{−z}), computed as ½(1 + tanh(z/2)).

    The tanh form never overflows (σ(±1e4) is exactly 1 and 0 with no warning) and needs one
    transcendental per element, like the naive form.
    """
    if out is None:
        out = np.multiply(Z, 0.5)
    else:
        np.multiply(Z, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def log_sigmoid(Z):
    """log σ(z) = −log(1 + e^{−z}) = −logaddexp(0, −z): finite for every finite z."""
    return -np.logaddexp(0.0, -Z)


def row_max(Z):
    """max over the columns of each row, (m, K) -> (m, 1) (NumPy: :func:`deltaprop.fast.row_max`)."""
    return fast.row_max(Z)


def row_sum(Z):
    """Σ over the columns of each row, (m, K) -> (m, 1) (NumPy: :func:`deltaprop.fast.row_sum`)."""
    return fast.row_sum(Z)


def logsumexp(Z):
    """log Σ_k e^{z_k} per row, (m, K) -> (m, 1), shifted by the row maximum so nothing overflows."""
    c = row_max(Z)
    return c + np.log(row_sum(np.exp(Z - c)))


def softmax(Z, out=None):
    """softmax(z)_k = e^{z_k − c} / Σ_j e^{z_j − c} with c = max_j z_j, row by row.

    Subtracting the row maximum leaves the result unchanged and keeps every exponent ≤ 0, so nothing
    overflows (logits of ±1e4 are fine).
    """
    c = row_max(Z)
    if out is None:
        out = Z - c
    else:
        np.subtract(Z, c, out=out)
    np.exp(out, out=out)
    out /= row_sum(out)
    return out


def log_softmax(Z):
    """log softmax(z)_k = z_k − logsumexp(z), row by row; finite for all finite logits."""
    return Z - logsumexp(Z)
