"""Exercise 'per_example': note 000's algorithm, one example at a time, with Θ = [b | W].

Write backprop(Thetas, X, Y, lam) -> (J, [D_1, ..., D_{L-1}]) as note 000 writes it:

    for each example (x, y):
        a^(1) = x;  ā^(l) = [1; a^(l)];  z^(l+1) = Θ^(l) ā^(l);  a^(l+1) = σ(z^(l+1))
        δ^(L) = a^(L) − y
        δ^(l) = (Θ^(l)ᵀ δ^(l+1))_{1:} ⊙ a^(l)(1 − a^(l))        (drop the bias unit's entry)
        Δ^(l) += δ^(l+1) ā^(l)ᵀ
    D^(l) = (Δ^(l) + λ Θ̃^(l)) / m,   Θ̃ = Θ with its bias column set to 0

- Thetas[l] has shape (s_{l+1}, s_l + 1), the biases in column 0; every unit is a sigmoid.
- X is (m, s_1), one example per row; Y is (m, K) of 0s and 1s (K sigmoid outputs).
- J = −(1/m) Σ_i Σ_k [y log a + (1 − y) log(1 − a)] + λ/(2m) Σ_l Σ Θ̃²   (biases not regularized).

Check it:   deltaprop check per_example.py        (this runs the file: it is your code)
Stuck?      deltaprop exercises hint per_example   (then hint per_example 2, 3, ...)
See also:   deltaprop explain --layers 3,4,2 --activation sigmoid --output sigmoid --notation theta
"""

import numpy as np

EXERCISE = "per_example"


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def backprop(Thetas, X, Y, lam):
    m = X.shape[0]
    Deltas = [np.zeros_like(T) for T in Thetas]
    J = 0.0
    for i in range(m):
        x = X[i].reshape(-1, 1)   # one example, as a column
        y = Y[i].reshape(-1, 1)
        # TODO: forward with the bias unit, δ^(L), the errors of the layers below, Δ^(l) += ...
    Ds = [np.zeros_like(T) for T in Thetas]  # TODO: D^(l) from Δ^(l), λ and Θ̃^(l); and the cost J
    return J, Ds
