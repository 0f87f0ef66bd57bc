"""Answer to the exercise 'minibatch': one epoch of mini-batch gradient descent, batches in row order."""

from deltaprop import Network

EXERCISE = "minibatch"


def gradients(weights, activations, Xb, Yb, l2):
    """[(dW, db), ...] of the batch's own cost (its mean over the |B| rows), from deltaprop's engine."""
    return Network.from_weights(weights, activations).backprop(Xb, Yb, l2=l2)[1]


def sgd_epoch(weights, activations, X, Y, lr, batch_size, l2):
    """After each batch B: W ← W − α dW_B, b ← b − α db_B, the next batch starting from the new weights."""
    weights = [(W.copy(), b.copy()) for W, b in weights]
    for start in range(0, X.shape[0], batch_size):
        Xb, Yb = X[start:start + batch_size], Y[start:start + batch_size]   # the last batch may be shorter
        grads = gradients(weights, activations, Xb, Yb, l2)
        weights = [(W - lr * dW, b - lr * db) for (W, b), (dW, db) in zip(weights, grads)]
    return weights
