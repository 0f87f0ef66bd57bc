"""Exercise 'output_delta': the cost and the output error δ for each loss (notes 000, 002, 003).

Write output_delta(A, Y, loss) -> (cost, delta):

    cost  = (1/m) Σ_i loss_i            (a number)
    delta = ∂cost/∂Z of the output      (m, K): the error of the output's pre-activation Z, not ∂cost/∂A

- A (m, K) are the outputs, one example per row: softmax rows for loss = "cross_entropy" (Y one-hot),
  sigmoid units for "binary_cross_entropy" (Y of 0s and 1s), identity for "squared_error" (Y any numbers).
- loss_i:  cross_entropy −Σ_k y log a;  binary_cross_entropy −Σ_k [y log a + (1 − y) log(1 − a)];
  squared_error ½ Σ_k (a − y)².

Check it:   deltaprop check output_delta.py        (this runs the file: it is your code)
Stuck?      deltaprop exercises hint output_delta   (then hint output_delta 2, 3, ...)
"""

import numpy as np

EXERCISE = "output_delta"


def output_delta(A, Y, loss):
    m = A.shape[0]
    if loss == "cross_entropy":
        cost = 0.0  # TODO
    elif loss == "binary_cross_entropy":
        cost = 0.0  # TODO
    elif loss == "squared_error":
        cost = 0.0  # TODO
    else:
        raise ValueError(f"unknown loss {loss!r}")
    delta = np.zeros_like(A)  # TODO: derive ∂cost/∂Z for each pair (the chain rule through g)
    return cost, delta
