"""The fully connected layer: W (n_out, n_in), b (n_out,), rows of A are examples.

Forward:   Z = A_prev Wᵀ + b,   A = g(Z)
Backward:  given δ = ∂J/∂Z (m, n_out)
           dW = δᵀ A_prev + (λ/m) W      (n_out, n_in)
           db = Σ_rows δ                 (n_out,)
           dA_prev = δ W                 (m, n_in), skipped for the first layer

Plain SGD may take its step inside the backward pass (:meth:`Dense.sgd_backward`): with δ = α ∂J/∂Z,
W ← (1 − αλ/m) W − δᵀ A_prev and b ← b − Σ_rows δ, after dA_prev = δ W has used the old W.

A SciPy sparse A_prev (the first layer of a network fed sparse X) takes SciPy's sparse × dense
products instead of ``np.matmul``; the branch is taken only for sparse input.

This is note 001's ``Z^[l] = W^[l] A^[l-1] + b^[l]`` transposed: the notes put examples in columns,
deltaprop puts them in rows (as NumPy, scikit-learn and note 002 do), so every product appears
transposed and the shapes of W and b are the notes' own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from deltaprop import fast
from deltaprop.activations import Activation, get_activation

if TYPE_CHECKING:
    from deltaprop.validation import SparseMatrix

__all__ = ["Dense"]


class Dense:
    """A fully connected layer with its activation.

    After a training forward pass the layer holds its cache: ``A_prev`` (m, n_in), ``Z`` and ``A``
    (m, n_out). The arrays are reused from step to step for each batch size (see ``_buffers``), so
    a caller who wants to keep them copies them.
    """

    def __init__(self, W: np.ndarray, b: np.ndarray, activation: str | Activation = "relu") -> None:
        self.W = W
        self.b = b
        self.activation: Activation = get_activation(activation)
        self.A_prev = self.Z = self.A = None  # the forward cache (forward(..., cache=True))
        self.delta = None  # δ = ∂J/∂Z of the last backward pass (m, n_out)
        self._buffers: dict[int, tuple] = {}

    @property
    def n_in(self) -> int:
        return self.W.shape[1]

    @property
    def n_out(self) -> int:
        return self.W.shape[0]

    def __repr__(self) -> str:
        return f"Dense({self.n_in} → {self.n_out}, {self.activation.name})"

    # -- speed: one set of work arrays per batch size (see deltaprop.fast) ------------------------
    def _buffers_for(self, m: int, dA_prev: bool = True):
        """(Z, A, dA_prev, column_major) work arrays for a batch of m rows, allocated once per m.

        Training sees at most two batch sizes (the batch and the last, shorter one), so reusing
        these saves three allocations of (m, n) arrays a layer a step. Z and A of a narrow layer
        are column-major (:func:`deltaprop.fast.narrow_order`; NumPy only); every value is the same.
        """
        bufs = self._buffers.get(m)
        if bufs is None or bufs[0].dtype != self.W.dtype or (dA_prev and bufs[2] is None):
            order = fast.narrow_order(self.n_out)
            dtype = self.W.dtype
            bufs = (np.empty((m, self.n_out), dtype=dtype, order=order), np.empty((m, self.n_out), dtype=dtype, order=order),
                    np.empty((m, self.n_in), dtype=dtype) if dA_prev else None, order == "F")
            if len(self._buffers) > 4:  # many batch sizes (inference on varied inputs): keep memory bounded
                self._buffers.clear()
            self._buffers[m] = bufs
        return bufs

    def linear(self, A_prev: np.ndarray | SparseMatrix) -> np.ndarray:
        """Z = A_prev Wᵀ + b, a fresh (m, n_out) array."""
        Z = A_prev @ self.W.T
        Z += self.b
        return Z

    def forward(self, A_prev: np.ndarray | SparseMatrix, cache: bool = True) -> np.ndarray:
        """Z = A_prev Wᵀ + b; A = g(Z). A_prev (m, n_in) → A (m, n_out).

        With ``cache=True`` the results land in reused buffers and are kept for backward; with
        ``cache=False`` fresh arrays are returned and nothing is kept.
        """
        if not cache:
            Z = self.linear(A_prev)  # a SciPy sparse A_prev (the first layer) gives a dense Z too
            return self.activation.forward(Z, out=Z)
        sparse_input = not isinstance(A_prev, np.ndarray)
        # A sparse A_prev is the network's input: no dA_prev (m, n_in) buffer, which could be huge.
        Z, A, _, column_major = self._buffers_for(A_prev.shape[0], dA_prev=not sparse_input)
        if sparse_input:
            Z[...] = A_prev @ self.W.T  # SciPy's sparse × dense product, never densified
        elif column_major:
            np.matmul(self.W, A_prev.T, out=Z.T)  # Zᵀ = W A_prevᵀ: BLAS writes a column-major Z directly
        else:
            np.matmul(A_prev, self.W.T, out=Z)
        Z += self.b
        self.activation.forward(Z, out=A)
        self.A_prev, self.Z, self.A = A_prev, Z, A
        return A

    def backward(self, delta: np.ndarray, dW: np.ndarray, db: np.ndarray, l2_over_m: float = 0.0,
                 need_dA_prev: bool = True) -> np.ndarray | None:
        """dW = δᵀ A_prev + (λ/m) W;  db = Σ_rows δ;  dA_prev = δ W.

        ``delta`` is ∂J/∂Z of this layer (m, n_out); ``dW`` and ``db`` are written in place.
        Returns dA_prev (m, n_in) in a reused buffer, or None when ``need_dA_prev`` is False (the
        first layer: the input needs no gradient).
        """
        if not isinstance(self.A_prev, np.ndarray):
            dW[...] = (self.A_prev.T @ delta).T  # sparse A_prev: (A_prevᵀ δ)ᵀ, sparse × dense
        else:
            np.matmul(delta.T, self.A_prev, out=dW)
        if l2_over_m:
            dW += l2_over_m * self.W
        np.add.reduce(delta, axis=0, out=db)
        if not need_dA_prev:
            return None
        dA_prev = self._buffers_for(delta.shape[0])[2]
        np.matmul(delta, self.W, out=dA_prev)
        return dA_prev

    def sgd_backward(self, delta: np.ndarray, db: np.ndarray, beta: float = 1.0, need_dA_prev: bool = True,
                     scratch: np.ndarray | None = None) -> np.ndarray | None:
        """Backward and plain SGD's step on this layer in one: dA_prev = δ W (the W before the step), then
        W ← β W − δᵀ A_prev and b ← b − Σ_rows δ.

        ``delta`` is α ∂J/∂Z (the step size folded in), β = 1 − αλ/m (1 without L2). The product and the
        update of W are one BLAS call where NumPy's BLAS is reachable (:func:`deltaprop.fast.sub_product`);
        ``db`` receives Σ_rows δ, ``scratch`` (the shape of W) is used only by the NumPy fallback. Returns
        dA_prev (m, n_in) in a reused buffer, or None when ``need_dA_prev`` is False.
        """
        dA_prev = None
        if need_dA_prev:
            dA_prev = self._buffers_for(delta.shape[0])[2]
            np.matmul(delta, self.W, out=dA_prev)
        fast.sub_product(self.W, delta, self.A_prev, beta, scratch)
        np.add.reduce(delta, axis=0, out=db)
        self.b -= db
        return dA_prev


