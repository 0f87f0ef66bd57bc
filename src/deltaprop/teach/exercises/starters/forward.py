"""Exercise 'forward': the forward pass (notes 001 and 002).

Write forward(weights, activations, X) -> [A_1, ..., A_L]:

    Z_l = A_{l-1} W_lᵀ + b_l,    A_l = g_l(Z_l),    A_0 = X

- X is (m, n_0): one example per row (notes 001 and 003 put examples in columns; here they are rows).
- weights = [(W_1, b_1), ...], W_l of shape (n_l, n_{l-1}) as in every note, b_l of shape (n_l,).
- activations = ["relu", "softmax"], say: one name per layer (relu, tanh, sigmoid, identity, softmax).
- Return one A per layer, each (m, n_l); X itself is not in the list.

Check it:   deltaprop check forward.py        (this runs the file: it is your code)
Stuck?      deltaprop exercises hint forward   (then hint forward 2, 3, ...)
"""

import numpy as np

EXERCISE = "forward"


def g(name, Z):
    """The activation g(Z): element by element, except softmax, which works row by row."""
    if name == "relu":
        return Z  # TODO: max(0, z)
    if name == "tanh":
        return Z  # TODO
    if name == "sigmoid":
        return Z  # TODO: 1 / (1 + e^(-z))
    if name == "identity":
        return Z
    if name == "softmax":
        return Z  # TODO: e^(z_k) / Σ_j e^(z_j) along each row
    raise ValueError(f"unknown activation {name!r}")


def forward(weights, activations, X):
    As = []
    for (W, b), name in zip(weights, activations):
        # TODO: Z from the previous A, W and b; then A = g(name, Z)
        As.append(np.zeros((X.shape[0], W.shape[0])))
    return As
