"""Costs and the output error they give, each paired with the output activation that makes it simple.

The cost of a batch of m rows is

    J = (1/m) Σ_i loss_i + λ/(2m) Σ_l ‖W_l‖²        (biases are never regularized)

and each loss owns its output link g_L, so that the error at the output's pre-activation is the same
simple expression for all three pairs:

    δ_L = ∂J/∂Z_L = (A_L − Y)/m

- softmax + cross-entropy, loss_i = −Σ_k y_ik log a_ik: the softmax Jacobian g_i(1{i=j} − g_j) times
  ∂loss/∂a = −y/a sums to a − y (note 002);
- sigmoid + binary cross-entropy, loss_i = −Σ_k [y log a + (1 − y) log(1 − a)] (note 000): the
  derivative (a − y)/(a(1 − a)) times σ' = a(1 − a) is a − y;
- identity + squared error, loss_i = ½ Σ_k (a_k − y_k)²: ∂loss/∂a = a − y and g' = 1;
- exp + Poisson deviance (counts and rates, y ≥ 0), loss_i = Σ_k [y log(y/a) − y + a] (half the
  deviance): ∂loss/∂a = 1 − y/a and exp' = a, so the product is a − y.

Other pairs (note 001's ReLU output under cross-entropy, say) are refused: the loss would not be the
negative log-likelihood of the outputs, and the simple δ_L would be wrong.

The cross-entropies are computed from the logits Z, never by taking the log of a rounded probability,
so they stay finite for logits of ±1e4.
"""

from __future__ import annotations

import numpy as np

from deltaprop import fast, ops
from deltaprop.errors import ConfigError, InputError, unknown_name

__all__ = ["Loss", "CrossEntropy", "BinaryCrossEntropy", "SquaredError", "PoissonDeviance", "LOSSES", "get_loss", "l2_cost", "loss_for_output"]


class Loss:
    """A loss with its output link: ``value`` is Σ_i loss_i, ``delta`` is (A − Y)·scale."""

    name = "loss"
    output = "identity"

    def prepare_targets(self, Y, n_out: int, dtype) -> np.ndarray:
        """Targets as a float (m, n_out) matrix in the network's dtype; raises InputError if unusable."""
        raise NotImplementedError

    def value(self, Z, A, Y) -> float:
        """Σ_i loss_i over the rows (not yet divided by m)."""
        raise NotImplementedError

    def rows(self, Z, A, Y):
        """loss_i for every row, shape (m,)."""
        raise NotImplementedError

    def weighted_value(self, Z, A, Y, sample_weight) -> float:
        """Σ_i s_i loss_i for sample weights s (m,) (not yet divided by Σ_i s_i)."""
        return float(np.vdot(self.rows(Z, A, Y), sample_weight))

    def delta(self, A, Y, scale: float, out=None):
        """δ_L = (A − Y)·scale; the trainer passes scale = 1/m (or lr/m to fold the step size in)."""
        if out is None:
            out = A - Y
        else:
            np.subtract(A, Y, out=out)
        out *= scale
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(output={self.output!r})"


def _as_matrix(Y, n_out: int, dtype, what: str) -> np.ndarray:
    Y = np.asarray(Y)
    if Y.ndim == 1 and n_out == 1:
        Y = Y.reshape(-1, 1)
    if Y.ndim != 2 or Y.shape[1] != n_out:
        raise InputError(
            f"{what} targets have shape {Y.shape}, but the network has {n_out} output unit(s)",
            f"pass Y of shape (m, {n_out})" + (" or (m,)" if n_out == 1 else ""),
        )
    if Y.dtype.kind not in "biuf":
        raise InputError(f"{what} targets must be numbers, got dtype {Y.dtype}", "convert the labels to numbers first")
    Y = Y.astype(dtype, copy=False)
    if not np.all(np.isfinite(Y)):
        raise InputError(f"{what} targets contain NaN or infinity", "remove or fill the rows with missing targets")
    return Y


class CrossEntropy(Loss):
    """Softmax cross-entropy: loss_i = −Σ_k y_ik log softmax(z_i)_k = logsumexp(z_i)·Σ_k y_ik − Σ_k y_ik z_ik."""

    name = "cross_entropy"
    output = "softmax"

    def prepare_targets(self, Y, n_out, dtype):
        Y = np.asarray(Y)
        if Y.ndim == 1 or (Y.ndim == 2 and Y.shape[1] == 1 and n_out > 1):
            labels = Y.reshape(-1)
            if labels.dtype.kind == "f":
                if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
                    raise InputError("class labels must be whole numbers", "pass integer labels 0..K−1 or a one-hot matrix")
                labels = labels.astype(np.int64)
            if labels.dtype.kind not in "iub":
                raise InputError(f"class labels must be integers, got dtype {labels.dtype}", "encode labels as 0..K−1")
            if labels.size and (labels.min() < 0 or labels.max() >= n_out):
                bad = labels[(labels < 0) | (labels >= n_out)][0]
                raise InputError(
                    f"label {int(bad)} is out of range for a network with {n_out} output classes (0..{n_out - 1})",
                    "give the network as many output units as there are classes",
                )
            onehot = np.zeros((labels.shape[0], n_out), dtype=dtype)
            onehot[np.arange(labels.shape[0]), labels] = 1
            return onehot
        return _as_matrix(Y, n_out, dtype, "cross-entropy")

    def value(self, Z, A, Y):
        """Σ_i [logsumexp(z_i)·Σ_k y_ik − Σ_k y_ik z_ik].

        logsumexp(z) is read off the softmax already computed: a_k = e^{z_k − lse}, so
        lse = max_k z_k − log max_k a_k, where max_k a_k ≥ 1/K never underflows. This saves a
        second pass of exponentials per batch and stays exact for logits of ±1e4.
        """
        lse = ops.row_max(Z) - np.log(ops.row_max(A))
        return float(np.vdot(lse, ops.row_sum(Y)) - fast.vdot(Y, Z))

    def rows(self, Z, A, Y):
        lse = ops.row_max(Z) - np.log(ops.row_max(A))
        return (lse * ops.row_sum(Y) - ops.row_sum(Y * Z)).reshape(-1)


class BinaryCrossEntropy(Loss):
    """Sigmoid binary cross-entropy over K independent outputs (note 000, multi-label):
    loss_i = −Σ_k [y log σ(z) + (1 − y) log(1 − σ(z))] = Σ_k [log(1 + e^{z}) − y z]."""

    name = "binary_cross_entropy"
    output = "sigmoid"

    def prepare_targets(self, Y, n_out, dtype):
        Y = _as_matrix(Y, n_out, dtype, "binary cross-entropy")
        if Y.size and (Y.min() < 0 or Y.max() > 1):
            raise InputError(
                "binary cross-entropy targets must lie in [0, 1]",
                "use 0/1 indicators, one column per output unit",
            )
        return Y

    def value(self, Z, A, Y):
        return float(np.sum(np.logaddexp(0.0, Z)) - np.sum(Y * Z))

    def rows(self, Z, A, Y):
        return ops.row_sum(np.logaddexp(0.0, Z) - Y * Z).reshape(-1)


class SquaredError(Loss):
    """Squared error for regression with an identity output: loss_i = ½ Σ_k (a_ik − y_ik)².

    ``output_mean=True`` reports loss_i = ½ (1/K) Σ_k (a_ik − y_ik)² instead, the figure
    scikit-learn's MLPRegressor reports for K outputs. The gradient (``delta``) stays that of the
    sum over outputs, because that is the step scikit-learn takes: its reported loss and its update
    differ by the factor K. The two agree for a single output.
    """

    name = "squared_error"
    output = "identity"

    def __init__(self, output_mean: bool = False):
        self.output_mean = bool(output_mean)

    def prepare_targets(self, Y, n_out, dtype):
        return _as_matrix(Y, n_out, dtype, "squared-error")

    def value(self, Z, A, Y):
        R = A - Y
        total = 0.5 * float(np.sum(R * R))
        return total / A.shape[1] if self.output_mean else total

    def rows(self, Z, A, Y):
        R = A - Y
        per_row = 0.5 * ops.row_sum(R * R).reshape(-1)
        return per_row / A.shape[1] if self.output_mean else per_row


class PoissonDeviance(Loss):
    """Half the Poisson deviance, for counts or rates y ≥ 0 with an exp output a = e^z (log link):
    loss_i = Σ_k [y log(y/a) − y + a] = Σ_k [y log y − y z − y + e^z]  (y log y = 0 at y = 0).

    It is 0 where a = y and grows as a strays; e^z > 0 whatever z, so predictions are positive.
    With the exp output, δ_L = (A − Y)/m like the other pairs: ∂loss/∂a = 1 − y/a and exp'(z) = a.
    scikit-learn's ``MLPRegressor(loss="poisson")`` minimizes the same loss.
    """

    name = "poisson"
    output = "exp"

    def prepare_targets(self, Y, n_out, dtype):
        Y = _as_matrix(Y, n_out, dtype, "Poisson")
        if Y.size and Y.min() < 0:
            raise InputError("Poisson targets must be ≥ 0 (counts or rates)",
                             "use squared_error for targets that can be negative")
        return Y

    def rows(self, Z, A, Y):
        positive = Y > 0
        ylogy = np.where(positive, Y * np.log(np.where(positive, Y, 1)), 0)
        return ops.row_sum(ylogy - Y * Z - Y + A).reshape(-1)

    def value(self, Z, A, Y):
        return float(np.sum(self.rows(Z, A, Y)))


LOSSES = {"cross_entropy": CrossEntropy, "binary_cross_entropy": BinaryCrossEntropy, "squared_error": SquaredError,
          "poisson": PoissonDeviance}
ALIASES = {
    "ce": "cross_entropy",
    "categorical_cross_entropy": "cross_entropy",
    "log_loss": "cross_entropy",
    "bce": "binary_cross_entropy",
    "mse": "squared_error",
    "squared_loss": "squared_error",
    "poisson_deviance": "poisson",
}
_BY_OUTPUT = {cls.output: name for name, cls in LOSSES.items()}


def get_loss(name: str | Loss) -> Loss:
    """A loss object from its name (or the object itself); unknown names list the valid ones."""
    if isinstance(name, Loss):
        return name
    key = str(name).strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in LOSSES:
        raise unknown_name("loss", name, list(LOSSES))
    return LOSSES[key]()


def loss_for_output(output: str) -> str:
    """The loss that pairs with an output activation (softmax → cross_entropy, ...)."""
    if output not in _BY_OUTPUT:
        raise ConfigError(
            f"no loss pairs with a {output!r} output layer",
            "use output='softmax' (cross_entropy), 'sigmoid' (binary_cross_entropy), 'identity' (squared_error) "
            "or 'exp' (poisson)",
        )
    return _BY_OUTPUT[output]


def check_pairing(output: str, loss: Loss) -> None:
    """Refuse an output activation that is not the link of the loss, explaining the pairing."""
    if output != loss.output:
        raise ConfigError(
            f"a {output!r} output layer cannot be trained with {loss.name}",
            f"{loss.name} pairs with a {loss.output!r} output: only then is the loss the negative log-likelihood "
            "(or squared error) of the outputs and the output error simply δ_L = (A − Y)/m. "
            "Pairs: softmax + cross_entropy, sigmoid + binary_cross_entropy, identity + squared_error, exp + poisson",
        )


def l2_cost(weights, l2: float, m: int) -> float:
    """λ/(2m) Σ_l ‖W_l‖², biases excluded."""
    if not l2:
        return 0.0
    total = 0.0
    for W in weights:
        flat = W.reshape(-1)
        total += float(flat @ flat)
    return 0.5 * l2 * total / m
