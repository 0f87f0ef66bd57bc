"""Exercise 'vectorized': note 000's network with the loop over the examples replaced by matrix products.

Write backprop(weights, X, Y, l2) -> (cost, [(dW_1, db_1), ...]) for the network of per_example:
sigmoid units everywhere, K sigmoid outputs, the binary cross-entropy cost with λ/(2m) Σ_l ‖W_l‖².

- weights = [(W_1, b_1), ...], W_l (n_l, n_{l-1}), b_l (n_l,)  (note 000's Θ^(l) = [b_l | W_l]).
- X (m, n_0), one example per row; Y (m, K) of 0s and 1s.
- No loop over the examples: one matrix product per layer and direction.

Check it:   deltaprop check vectorized.py        (this runs the file: it is your code)
Stuck?      deltaprop exercises hint vectorized   (then hint vectorized 2, 3, ...)
"""

import numpy as np

EXERCISE = "vectorized"


def sigmoid(Z):
    return 1.0 / (1.0 + np.exp(-Z))


def backprop(weights, X, Y, l2):
    m = X.shape[0]
    # TODO: forward for the whole batch, the cost, δ of the output, then every layer from the top
    cost = 0.0
    grads = [(np.zeros_like(W), np.zeros_like(b)) for W, b in weights]
    return cost, grads
