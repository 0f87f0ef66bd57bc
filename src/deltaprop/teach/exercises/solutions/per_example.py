"""Answer to the exercise 'per_example': note 000's algorithm, one example at a time, Θ = [b | W]."""

import numpy as np

EXERCISE = "per_example"


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def backprop(Thetas, X, Y, lam):
    """(J, [D_1, ...]): for each example, Δ^(l) += δ^(l+1) ā^(l)ᵀ; then D^(l) = (Δ^(l) + λ Θ̃^(l))/m."""
    m = X.shape[0]
    Deltas = [np.zeros_like(T) for T in Thetas]
    J = 0.0
    for i in range(m):
        a = X[i].reshape(-1, 1)                       # a^(1) = x, a column
        a_bars, acts = [], [a]
        for T in Thetas:                              # forward with the bias unit a_0 = 1
            a_bar = np.vstack([[1.0], a])
            a = sigmoid(T @ a_bar)
            a_bars.append(a_bar)
            acts.append(a)
        y = Y[i].reshape(-1, 1)
        J += -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a))
        delta = a - y                                 # δ^(L) = a^(L) − y (not 0 − y)
        for l in range(len(Thetas) - 1, -1, -1):
            Deltas[l] += delta @ a_bars[l].T          # Δ^(l) += δ^(l+1) ā^(l)ᵀ
            if l > 0:
                back = (Thetas[l].T @ delta)[1:]      # drop the bias unit's row
                delta = back * acts[l] * (1 - acts[l])
    Ds, reg = [], 0.0
    for T, Delta in zip(Thetas, Deltas):
        T_tilde = T.copy()
        T_tilde[:, 0] = 0.0                           # the bias column is not regularized
        Ds.append((Delta + lam * T_tilde) / m)
        reg += np.sum(T_tilde ** 2)
    return J / m + lam / (2 * m) * reg, Ds
