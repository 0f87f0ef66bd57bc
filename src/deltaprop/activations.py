"""Activation functions g and their derivatives g', looked up by name.

Each activation offers

- ``forward(Z, out=None)``: ``A = g(Z)`` element-wise (softmax row-wise);
- ``derivative(Z, A)``: ``g'(Z)``, using ``A`` where that is cheaper (σ' = A(1 − A), tanh' = 1 − A²);
- ``backward(dA, Z, A)``: ``δ = dA ⊙ g'(Z)``, written into ``dA`` (the caller owns that buffer).

The notes write the backward step as ``δ^[l] = (W^[l+1]ᵀ δ^[l+1]) ⊙ g'(Z^[l])`` with columns as
examples; with rows as examples (deltaprop) it reads ``δ_l = (δ_{l+1} W_{l+1}) ⊙ g'(Z_l)``.
"""

from __future__ import annotations

import numpy as np

from deltaprop import fast, ops
from deltaprop.errors import unknown_name

__all__ = ["Activation", "ACTIVATIONS", "get_activation"]


class Activation:
    """Base class: subclasses set ``name`` and implement forward and derivative."""

    name = "activation"
    #: True for activations whose value at one unit depends on the other units of the row (softmax).
    coupled = False

    def forward(self, Z, out=None):
        raise NotImplementedError

    def derivative(self, Z, A):
        raise NotImplementedError

    def backward(self, dA, Z, A):
        """δ = dA ⊙ g'(Z), in place in ``dA``."""
        dA *= self.derivative(Z, A)
        return dA

    def __call__(self, Z):
        return self.forward(Z)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Identity(Activation):
    """g(z) = z; g'(z) = 1. The output of regression networks."""

    name = "identity"

    def forward(self, Z, out=None):
        if out is None:
            return Z.copy()
        out[...] = Z
        return out

    def derivative(self, Z, A):
        return np.ones_like(Z)

    def backward(self, dA, Z, A):
        return dA


class Sigmoid(Activation):
    """g(z) = σ(z) = 1/(1 + e^{−z}); g'(z) = σ(z)(1 − σ(z)) = A(1 − A). Note 000's g."""

    name = "sigmoid"

    def forward(self, Z, out=None):
        return ops.sigmoid(Z, out=out)

    def derivative(self, Z, A):
        return A * (1.0 - A)

    def backward(self, dA, Z, A):
        dA *= A
        dA -= dA * A  # dA·A − dA·A² = dA·A(1 − A), without a temporary for (1 − A)
        return dA


class Tanh(Activation):
    """g(z) = tanh z; g'(z) = 1 − tanh² z = 1 − A²."""

    name = "tanh"

    def forward(self, Z, out=None):
        return np.tanh(Z, out=out) if out is not None else np.tanh(Z)

    def derivative(self, Z, A):
        return 1.0 - A * A

    def backward(self, dA, Z, A):
        dA -= dA * A * A
        return dA


class ReLU(Activation):
    """g(z) = max(0, z); g'(z) = 1 if z > 0 else 0 (the value 0 is taken at the kink z = 0)."""

    name = "relu"

    def forward(self, Z, out=None):
        return fast.relu(Z, out=out if out is not None else np.empty_like(Z))

    def derivative(self, Z, A):
        return (Z > 0).astype(Z.dtype)

    def backward(self, dA, Z, A):
        # Multiplying by the 0/1 mask in place is cheaper than building g'(Z) as a float array.
        dA *= Z > 0
        return dA


class LeakyReLU(Activation):
    """g(z) = z if z > 0 else a·z; g'(z) = 1 if z > 0 else a (a = 0.01 by default)."""

    name = "leaky_relu"

    def __init__(self, slope: float = 0.01):
        self.slope = float(slope)

    def forward(self, Z, out=None):
        if out is None:
            return np.where(Z > 0, Z, Z * self.slope)
        out[...] = np.where(Z > 0, Z, Z * self.slope)
        return out

    def derivative(self, Z, A):
        return np.where(Z > 0, 1.0, self.slope).astype(Z.dtype)

    def __repr__(self) -> str:
        return f"LeakyReLU(slope={self.slope})"


class Exp(Activation):
    """g(z) = e^z; g'(z) = e^z = A. The output of Poisson regression (a positive rate, log link);
    overflow to ∞ past z ≈ 709 (float64) is caught by the trainer as a divergence."""

    name = "exp"

    def forward(self, Z, out=None):
        return np.exp(Z, out=out) if out is not None else np.exp(Z)

    def derivative(self, Z, A):
        return A.copy()

    def backward(self, dA, Z, A):
        dA *= A
        return dA


class Softmax(Activation):
    """g(z)_k = e^{z_k} / Σ_j e^{z_j}, row by row; its Jacobian is ∂g_i/∂z_j = g_i(1{i=j} − g_j) (note 002).

    Training never builds the Jacobian: paired with cross-entropy the output error collapses to
    ``A − Y`` (see :mod:`deltaprop.losses`). ``jacobian`` and ``backward`` are here for teaching and
    for checking that collapse.
    """

    name = "softmax"
    coupled = True

    def forward(self, Z, out=None):
        return ops.softmax(Z, out=out)

    def jacobian(self, A):
        """J[i] = diag(a_i) − a_i a_iᵀ for each row a_i of A: shape (m, K, K)."""
        eye = np.eye(A.shape[1], dtype=A.dtype)
        return A[:, :, None] * eye[None, :, :] - A[:, :, None] * A[:, None, :]

    def derivative(self, Z, A):
        """The diagonal of the Jacobian, g_k(1 − g_k); the full Jacobian is :meth:`jacobian`."""
        return A * (1.0 - A)

    def backward(self, dA, Z, A):
        """δ = J dA row by row = A ⊙ (dA − Σ_k dA_k A_k), the Jacobian-vector product without the Jacobian."""
        dA -= ops.row_sum(dA * A)
        dA *= A
        return dA


ACTIVATIONS = {
    "identity": Identity,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "softmax": Softmax,
    "exp": Exp,
}

# Names other libraries and the notes use for the same functions.
ALIASES = {"logistic": "sigmoid", "linear": "identity", "none": "identity", "leakyrelu": "leaky_relu"}


def canonical_name(name: str) -> str:
    """The registry name for ``name`` (aliases resolved); raises ConfigError listing valid names."""
    key = str(name).strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in ACTIVATIONS:
        raise unknown_name("activation", name, list(ACTIVATIONS) + list(ALIASES))
    return key


def get_activation(name: str | Activation) -> Activation:
    """An activation object from its name (or the object itself)."""
    if isinstance(name, Activation):
        return name
    return ACTIVATIONS[canonical_name(name)]()

