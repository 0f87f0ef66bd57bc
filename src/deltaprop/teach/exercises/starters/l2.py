"""Exercise 'l2': backprop with L2 regularization (notes 000 and 001).

Write backprop(weights, activations, X, Y, l2) -> (cost, [(dW_1, db_1), ..., (dW_L, db_L)]):

- weights = [(W_1, b_1), ...], W_l (n_l, n_{l-1}), b_l (n_l,); X (m, n_0), one example per row.
- activations: one name per layer; hidden layers relu, tanh or sigmoid; the output is the one that pairs
  with the loss: softmax with cross-entropy (Y one-hot), sigmoid with binary cross-entropy (Y of 0s and
  1s), identity with squared error ½ Σ_k (a − y)² (Y any numbers).
- cost J = (1/m) Σ_i loss_i + λ/(2m) Σ_l ‖W_l‖² with λ = l2 (the biases are not regularized);
  each dW_l, db_l has the shape of W_l, b_l.

Check it:   deltaprop check l2.py        (this runs the file: it is your code)
Stuck?      deltaprop exercises hint l2   (then hint l2 2, 3, ...)
See also:   deltaprop explain --layers 3,4,2 --l2 0.5    (the derivation, with a network's shapes)
"""

import numpy as np

EXERCISE = "l2"


def g(name, Z):
    """The activation g(Z) (given: this exercise is the backward pass)."""
    if name == "relu":
        return np.maximum(Z, 0.0)
    if name == "tanh":
        return np.tanh(Z)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-Z))
    if name == "identity":
        return Z.copy()
    if name == "softmax":
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)
    raise ValueError(f"unknown activation {name!r}")


def g_prime(name, Z, A):
    """g'(Z) of a hidden layer, element by element (A = g(Z) is there if you want it)."""
    return np.zeros_like(Z)  # TODO: relu, tanh, sigmoid, identity


def backprop(weights, activations, X, Y, l2):
    m = X.shape[0]
    # TODO: the forward pass, keeping every Z and A
    cost = 0.0  # TODO: the mean loss for the output's pair
    grads = []
    for W, b in weights:
        grads.append((np.zeros_like(W), np.zeros_like(b)))  # TODO: from the output layer down
    return cost, grads
