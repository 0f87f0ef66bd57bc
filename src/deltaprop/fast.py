"""Speed tricks, all in one place. None of them changes the mathematics; each says what it saves.

Figures are for the Fashion-MNIST step (784-256-128-10, float32, batch 128) on a 2-core AMD EPYC
with NumPy 2.4 and OpenBLAS; ``bench/profile_step.py`` re-measures where a step spends its time.
The rest of the engine calls these helpers instead of repeating the tricks:

- reused work arrays per batch size (``Dense._buffers_for``) and a ``Network``'s gradient buffers:
  no allocation inside a step;
- plain SGD folds α into the output error, δ_L = α(A − Y)/m, so the update is one subtraction per
  array (``SGD.apply``, ``Trainer.train_step``);
- no dA_prev for the first layer (``Dense.backward(need_dA_prev=False)``): saves the 784-wide
  product, 24 GFLOP an epoch (the epoch's products would be 84 instead of 60 GFLOP);
- activations and their derivatives in place in those buffers (``Activation.backward``);
- the helpers below.

Every helper falls back to the plain NumPy expression where its trick does not apply.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

__all__ = ["NARROW", "SMALL_STEP", "zeros_like", "relu", "narrow_order", "row_max", "row_sum", "take_rows",
           "blas_threads_for", "all_finite"]

#: Layers at most this wide keep Z and A column-major (see :func:`narrow_order`).
NARROW = 32

#: Training steps with at most this many multiply-adds in their forward products (m · Σ n_in·n_out)
#: run their BLAS calls on one thread (see :func:`blas_threads_for`).
SMALL_STEP = 1 << 24

_ZEROS: dict = {}
#: Largest array (elements) :func:`zeros_like` caches; bigger ones (inference on many rows) are not kept.
_ZEROS_MAX = 1 << 20


def zeros_like(Z) -> np.ndarray | None:
    """A cached, read-only zeros array with the shape, dtype and memory layout of ``Z``, or None
    when Z is larger than the cache keeps (``_ZEROS_MAX`` elements) or not contiguous."""
    key = (Z.shape, Z.strides, Z.dtype)
    z = _ZEROS.get(key)
    if z is None:
        if Z.size > _ZEROS_MAX or not (Z.flags.c_contiguous or Z.flags.f_contiguous):
            return None
        if len(_ZEROS) > 16:
            _ZEROS.clear()
        z = _ZEROS[key] = np.zeros_like(Z)
        z.flags.writeable = False
    return z


def relu(Z, out):
    """out = max(Z, 0) element-wise.

    Saves: NumPy's ``maximum`` against the scalar 0 runs a slower broadcasting loop; against a
    zeros array of Z's own shape and layout it runs the plain vectorized loop: 2.4 instead of
    10.5 µs for a (128, 256) float32 array (tiny arrays: the same, ~0.55 µs). Arrays larger than
    the cache keeps go block by block.
    """
    z = zeros_like(Z)
    if z is not None:
        return np.maximum(Z, z, out=out)
    if Z.ndim != 2 or not Z.flags.c_contiguous or not out.flags.c_contiguous:
        return np.maximum(Z, 0, out=out)
    rows = max(1, _ZEROS_MAX // max(1, Z.shape[1]))
    z = zeros_like(Z[:rows])
    for start in range(0, Z.shape[0], rows):
        stop = min(start + rows, Z.shape[0])
        np.maximum(Z[start:stop], z[:stop - start], out=out[start:stop])
    return out

def narrow_order(n_out: int) -> str:
    """Memory order of a layer's Z and A: column-major ("F") for narrow layers (the output, K ≤ 32).

    Saves: row-wise max and sum over the K columns (softmax, the cost, the accuracy count) are
    reductions along a short axis, which NumPy runs 5–8× slower in row-major order than in
    column-major order, where they become element-wise operations over K contiguous columns.
    Softmax, the cost and the accuracy count of a batch together: 15.6 instead of 44.4 µs for
    (128, 10), 43 instead of 96 µs for the digits' (1797, 10).
    """
    return "F" if n_out <= NARROW else "C"


def row_max(Z):
    """max over the columns of each row, (m, K) → (m, 1).

    Saves: a reduction along a short last axis is slow in NumPy (69 µs for a row-major
    (1797, 10) float32 array). Column-major, the same reduction runs over K contiguous columns
    (1.9 µs); row-major and narrow, a loop of element-wise maxima over the K columns (14 µs).
    """
    if Z.shape[1] <= NARROW and not Z.flags.f_contiguous:
        out = Z[:, 0:1].copy()
        for k in range(1, Z.shape[1]):
            np.maximum(out, Z[:, k:k + 1], out=out)
        return out
    return np.maximum.reduce(Z, axis=1, keepdims=True)  # the ufunc method skips np.max's Python wrapper


def row_sum(Z):
    """Σ over the columns of each row, (m, K) → (m, 1)."""
    return np.add.reduce(Z, axis=1, keepdims=True)


def take_rows(src, idx, out):
    """out = src[idx] for a batch of row indices, into a reused buffer.

    Saves: ``np.take(..., mode="clip")`` skips the bounds check of every index (the indices come
    from a permutation of range(n)): 6.3 instead of 17.7 µs for 128 rows of 784 float32 (rows in
    cache), and the reused buffer saves an allocation of 400 KB per step.
    """
    return np.take(src, idx, axis=0, out=out, mode="clip")


_CONTROLLER = []


@contextlib.contextmanager
def blas_threads_for(step_macs: int):
    """Within the block, BLAS runs on one thread when a training step's products are small.

    Saves: OpenBLAS splits every product above ~260,000 multiply-adds across its threads, and for
    the products of a small step the hand-over costs more than the second thread gains. Measured
    on 2 cores, 784-256-128-10, whole steps (1 thread vs 2): batch 16, 220 vs 345 µs; batch 64,
    440 vs 550 µs; batch 128, 740 vs 790 µs (close); from batch 256 two threads win, 1190 vs
    1320 µs. So only steps up to 2^24 multiply-adds (batch ≤ 71 here) drop to one thread. Needs
    threadpoolctl (installed with scikit-learn); without it, or for larger steps, nothing
    changes. It never raises a thread count the user has set lower.
    """
    if step_macs > SMALL_STEP:
        yield
        return
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _CONTROLLER.append(None)
        else:
            _CONTROLLER.append(ThreadpoolController())  # built once: it looks up the loaded libraries
    controller = _CONTROLLER[0]
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


def all_finite(X) -> bool:
    """True when every entry of the float array X is finite (no NaN, no ±inf).

    Σx² by one BLAS dot is finite exactly when no entry is NaN or infinite, barring an overflow of
    large finite values, which the element-wise test then settles. One pass and no temporary, where
    ``np.isfinite(X).all()`` builds an m × n boolean array (47 MB on Fashion-MNIST's training set,
    about 1 ms per 10,000 images at prediction) and costs twice as much on the small parameter arrays
    the trainer checks every epoch (0.4 against 1 µs).
    """
    return math.isfinite(np.vdot(X, X)) or bool(np.isfinite(X).all())
