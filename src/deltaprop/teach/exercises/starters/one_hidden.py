"""Exercise 'one_hidden': backprop through one hidden layer (note 003's digit classifier).

Write backprop(W1, b1, W2, b2, X, Y) -> (cost, dW1, db1, dW2, db2) for

    Z1 = X W1ᵀ + b1,  A1 = relu(Z1),  Z2 = A1 W2ᵀ + b2,  A2 = softmax(Z2)
    cost J = −(1/m) Σ_i Σ_k Y_ik log A2_ik

- X is (m, n_x), one example per row (note 003 puts them in columns: every product here is the
  transpose of its own); Y is one-hot (m, K).
- W1 (n_1, n_x), b1 (n_1,), W2 (K, n_1), b2 (K,); each gradient has the shape of its parameter.

Check it:   deltaprop check one_hidden.py        (this runs the file: it is your code)
Stuck?      deltaprop exercises hint one_hidden   (then hint one_hidden 2, 3, ...)
"""

import numpy as np

EXERCISE = "one_hidden"


def softmax(Z):
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def backprop(W1, b1, W2, b2, X, Y):
    m = X.shape[0]
    # forward: TODO Z1, A1, Z2, A2 (keep them for the backward pass)
    cost = 0.0  # TODO
    # backward: TODO the output error first, then each layer's gradients
    dW2, db2 = np.zeros_like(W2), np.zeros_like(b2)
    dW1, db1 = np.zeros_like(W1), np.zeros_like(b1)
    return cost, dW1, db1, dW2, db2
