"""Answer to the exercise 'output_delta': the cost and δ = ∂J/∂Z of the output, for each loss."""

import numpy as np

EXERCISE = "output_delta"


def output_delta(A, Y, loss):
    """(J, δ) for outputs A (m, K) and targets Y (m, K): J = (1/m) Σ_i loss_i, δ = (A − Y)/m for all three pairs."""
    m = A.shape[0]
    if loss == "cross_entropy":          # softmax outputs: −Σ_k y log a
        cost = -np.sum(Y * np.log(A)) / m
    elif loss == "binary_cross_entropy":  # sigmoid outputs: −Σ_k [y log a + (1 − y) log(1 − a)]
        cost = -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / m
    elif loss == "squared_error":         # identity outputs: ½ Σ_k (a − y)²
        cost = 0.5 * np.sum((A - Y) ** 2) / m
    else:
        raise ValueError(f"unknown loss {loss!r}")
    # softmax: Σ_k (−y_k/a_k) a_k(1{k=j} − a_j) = a_j − y_j; sigmoid: (a − y)/(a(1 − a)) · a(1 − a); identity: a − y
    delta = (A - Y) / m
    return cost, delta
