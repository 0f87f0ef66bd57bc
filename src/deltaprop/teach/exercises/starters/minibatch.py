"""Exercise 'minibatch': one epoch of mini-batch gradient descent (notes 001 and 002).

Write sgd_epoch(weights, activations, X, Y, lr, batch_size, l2) -> [(W_1, b_1), ...]:

- walk through the rows of X in order, in batches of batch_size rows (the last batch may be shorter);
- after each batch B: W ← W − α dW_B and b ← b − α db_B (α = lr), where (dW_B, db_B) is the gradient
  of that batch's own cost, the mean over its |B| rows: gradients(...) below gives it;
- return the weights after the last batch (a new list; leave the arrays you were given as they are).

Check it:   deltaprop check minibatch.py        (this runs the file: it is your code)
Stuck?      deltaprop exercises hint minibatch   (then hint minibatch 2, 3, ...)
"""

from deltaprop import Network

EXERCISE = "minibatch"


def gradients(weights, activations, Xb, Yb, l2):
    """[(dW, db), ...] of the cost of the batch (Xb, Yb), from deltaprop's engine (given)."""
    return Network.from_weights(weights, activations).backprop(Xb, Yb, l2=l2)[1]


def sgd_epoch(weights, activations, X, Y, lr, batch_size, l2):
    weights = [(W.copy(), b.copy()) for W, b in weights]
    # TODO: the batches, and one step after each
    return weights
