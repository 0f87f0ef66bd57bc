"""Answer to the exercise 'one_hidden': note 003's two-layer classifier (ReLU, softmax), rows as examples."""

import numpy as np

EXERCISE = "one_hidden"


def backprop(W1, b1, W2, b2, X, Y):
    """(J, dW1, db1, dW2, db2) for J = −(1/m) Σ Y log A2."""
    m = X.shape[0]
    # forward
    Z1 = X @ W1.T + b1                    # (m, n1)
    A1 = np.maximum(Z1, 0.0)
    Z2 = A1 @ W2.T + b2                   # (m, K)
    E = np.exp(Z2 - Z2.max(axis=1, keepdims=True))
    A2 = E / E.sum(axis=1, keepdims=True)
    cost = -np.sum(Y * np.log(A2)) / m
    # backward
    delta2 = (A2 - Y) / m                 # the one place 1/m enters
    dW2 = delta2.T @ A1                   # (K, n1), the shape of W2
    db2 = delta2.sum(axis=0)
    delta1 = (delta2 @ W2) * (Z1 > 0)     # back through W2, then relu'(Z1)
    dW1 = delta1.T @ X
    db1 = delta1.sum(axis=0)
    return cost, dW1, db1, dW2, db2
