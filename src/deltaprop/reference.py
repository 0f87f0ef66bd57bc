"""Note 000's algorithm, example by example, in its own notation: a plain second implementation.

With the bias folded into Θ^(l) = [b^(l) | W^(l)] of shape s_{l+1} × (s_l + 1), and a^(l) carrying a
leading 1 (the bias unit a_0 = 1):

    Δ^(l) = 0 for every l
    for each example (x, y):
        a^(1) = x;  z^(l+1) = Θ^(l) [1; a^(l)],  a^(l+1) = g(z^(l+1))        forward
        δ^(L) = a^(L) − y                                                     (the note writes "0 − y": a slip)
        δ^(l) = (Θ^(l)ᵀ δ^(l+1))_{1:} ⊙ g'(z^(l))                             drop the bias row
        Δ^(l) += δ^(l+1) [1; a^(l)]ᵀ
    D^(l) = (Δ^(l) + λ Θ̃^(l)) / m,   Θ̃ = Θ with its bias column set to 0

(the note writes ``D = Δ/m + λΘ``; with the cost's λ/(2m) Σ Θ² the λ term is divided by m too).
It is slow on purpose: one example and one layer at a time, exactly as the note reads. The tests
prove it equals the vectorized :meth:`deltaprop.Network.backprop` to rounding (rtol 1e-10).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from deltaprop.losses import l2_cost

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from deltaprop.model import Network

__all__ = ["to_theta", "from_theta", "per_example_backprop"]


def to_theta(W, b):
    """Θ = [b | W], shape (n_out, n_in + 1): note 000's weights with the bias as column 0."""
    return np.column_stack([b, W])


def from_theta(Theta):
    """(W, b) from Θ = [b | W]."""
    return Theta[:, 1:].copy(), Theta[:, 0].copy()


def per_example_backprop(net: Network, X: ArrayLike, Y: ArrayLike, l2: float = 0.0, record: bool = False
                         ) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]] | tuple[float, list, list]:
    """(J, grads) computed one example at a time with note 000's accumulation Δ += δ aᵀ.

    ``grads[l] = (dW_l, db_l)`` as :meth:`Network.backprop` returns them. With ``record=True`` a
    third value lists, for every example, the Δ^(l) of every layer after adding that example (copies).
    """
    X = np.asarray(X, dtype=net.dtype)
    Y = net.prepare_targets(Y)
    m = X.shape[0]
    Thetas = [to_theta(layer.W, layer.b) for layer in net.layers]
    acts = [layer.activation for layer in net.layers]
    Deltas = [np.zeros_like(T) for T in Thetas]
    steps = []
    data_cost = 0.0
    for i in range(m):
        # forward, keeping z^(l) and a^(l) as column vectors
        a = X[i].reshape(-1, 1)
        a_list, z_list = [a], []
        for Theta, g in zip(Thetas, acts):
            z = Theta @ np.vstack([[1.0], a])
            a = g.forward(z.T).T  # activations act on rows
            z_list.append(z)
            a_list.append(a)
        y = Y[i].reshape(-1, 1)
        data_cost += net.loss.value(z_list[-1].T, a_list[-1].T, y.T)
        # backward
        delta = a_list[-1] - y
        for l in range(len(Thetas) - 1, -1, -1):
            Deltas[l] += delta @ np.vstack([[1.0], a_list[l]]).T
            if l > 0:
                back = (Thetas[l].T @ delta)[1:]
                delta = back * acts[l - 1].derivative(z_list[l - 1].T, a_list[l].T).T
        if record:
            steps.append([D.copy() for D in Deltas])
    grads = []
    for Theta, Delta in zip(Thetas, Deltas):
        Theta_reg = Theta.copy()
        Theta_reg[:, 0] = 0.0
        D = (Delta + l2 * Theta_reg) / m
        dW, db = from_theta(D)
        grads.append((dW, db))
    cost = data_cost / m + l2_cost([layer.W for layer in net.layers], l2, m)
    return (cost, grads, steps) if record else (cost, grads)
