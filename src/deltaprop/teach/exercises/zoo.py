"""The mistake zoo: the classic slips in backprop, each computed by deltaprop as a variant of the right answer.

A learner's numbers are wrong in a recognisable way when they equal, to rounding, what the right
derivation gives after one known change (or two). Every change below is a flag of
:func:`variant_backprop` (and of :func:`variant_forward`, :func:`variant_output`,
:func:`variant_epoch` for the exercises that stop earlier or go further); with no flag each
function computes the right answer, and the tests prove that it equals the engine's
(:meth:`deltaprop.Network.backprop`) to 1e-12. The checker never guesses a name: it names a mistake
only when the learner's arrays match the variant to a relative 1e-6 on every case it ran.

The right derivation, rows as examples (``deltaprop explain`` prints it for any network):

    Z_l = A_{l−1} W_lᵀ + b_l,  A_l = g_l(Z_l)
    J = (1/m) Σ_i loss_i + λ/(2m) Σ_l ‖W_l‖²
    δ_L = (A_L − Y)/m
    dW_l = δ_lᵀ A_{l−1} + (λ/m) W_l,  db_l = Σ_rows δ_l
    δ_{l−1} = (δ_l W_l) ⊙ g'_{l−1}(Z_{l−1})
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deltaprop.activations import get_activation
from deltaprop.losses import get_loss, loss_for_output

__all__ = [
    "MISTAKES",
    "Mistake",
    "forward_pass",
    "variant_backprop",
    "variant_epoch",
    "variant_forward",
    "variant_output",
]


@dataclass(frozen=True)
class Mistake:
    """One known slip: ``key`` (the flag), ``title`` (what it is called), ``what`` (what the learner did, one
    sentence), ``computed`` (the formula the learner's numbers equal, Unicode, ``{L}``/``{l}``/``{k}`` for the
    layer numbers), ``line`` (which line of the derivation it contradicts: output, recursion, dW, db, cost,
    forward, update), ``group`` (two slips of one group are never combined), ``note`` (which of the four
    notes writes it, if one does)."""

    key: str
    title: str
    what: str
    computed: str
    line: str
    group: str
    note: str = ""


_ONE_M = "note 001 puts the 1/m in some lines and not in others; it belongs exactly once"

_M = [
    # the output error δ_L
    Mistake("sign", "sign flipped", "the output error has the wrong sign: Y − A instead of A − Y",
            "δ^[{L}] = (Y − A^[{L}])/m", "output", "output",
            "notes 001 and 003 write ∂J/∂A = Y − A (note 003's dA^[2]): that is not ∂J/∂A, which is −Y/(mA), "
            "and its sign is wrong; what holds is ∂J/∂Z^[L] = (A^[L] − Y)/m, the formula note 003 then uses"),
    Mistake("zero_minus_y", "δ = 0 − y (note 000's slip)", "the output error leaves out the prediction: 0 − y "
            "instead of a − y", "δ^[{L}] = (0 − Y)/m", "output", "output",
            "note 000 writes δ^(L) = Δ = 0 − y once; its own first section says a^(L) − y"),
    Mistake("softmax_elementwise", "softmax treated element-wise",
            "∂J/∂A = −Y/A was multiplied element by element by the diagonal of the softmax Jacobian, "
            "A(1 − A), instead of going through the whole Jacobian", "δ^[{L}] = (−Y/A^[{L}]) ⊙ A^[{L}](1 − A^[{L}])/m "
            "= −Y ⊙ (1 − A^[{L}])/m", "output", "output",
            "note 002 derives the Jacobian ∂g_i/∂s_j = g_i(1{i=j} − g_j): every output depends on every logit"),
    Mistake("squared_error_delta", "δ of the output for the wrong loss (squared error's)",
            "the output error was multiplied by g'(Z^[L]) once more, which is the output error of squared error; "
            "with cross-entropy that g' cancels", "δ^[{L}] = (A^[{L}] − Y) ⊙ g'(Z^[{L}])/m", "output", "output"),
    Mistake("cross_entropy_delta", "δ of the output for the wrong loss (categorical cross-entropy's)",
            "the output error of a sigmoid output was derived from −Σ y log a alone; binary cross-entropy also has "
            "the (1 − y) log(1 − a) term", "δ^[{L}] = −Y ⊙ (1 − A^[{L}])/m", "output", "output"),
    Mistake("missing_half", "δ of the output for the wrong loss (no ½)",
            "the output error is that of Σ (a − y)², twice the right one: the loss is ½ Σ (a − y)²",
            "δ^[{L}] = 2(A^[{L}] − Y)/m", "output", "output"),
    # 1/m
    Mistake("no_m", "1/m missing", "the gradient of the data term is a sum over the examples, not their mean",
            "δ^[{L}] = A^[{L}] − Y", "output", "scale",
            _ONE_M),
    Mistake("m_twice", "1/m applied twice", "the 1/m of the mean entered twice (in δ and again in dW and db)",
            "δ^[{L}] = (A^[{L}] − Y)/m²", "output", "scale",
            _ONE_M),
    # the recursion δ_{l−1} = (δ_l W_l) ⊙ g'(Z_{l−1})
    Mistake("no_gprime", "g' missing", "the error sent back through W was not multiplied by the derivative of "
            "the activation", "δ^[{k}] = δ^[{l}] W^[{l}]", "recursion", "gprime"),
    Mistake("gprime_wrong_layer", "g' at the wrong layer",
            "the derivative of layer l's activation was applied before going back through W^[l], instead of "
            "the derivative of layer l − 1 after it", "δ^[{k}] = (δ^[{l}] ⊙ g'(Z^[{l}])) W^[{l}]", "recursion", "gprime"),
    Mistake("gprime_of_A", "g' of the activation instead of the pre-activation",
            "the derivative was evaluated at A instead of Z: g'(A) is not g'(Z)",
            "δ^[{k}] = (δ^[{l}] W^[{l}]) ⊙ g'(A^[{k}])", "recursion", "gprime"),
    Mistake("gprime_formula_on_Z", "g' written for A but given Z",
            "the derivative written in terms of the activation (σ' = a(1 − a), tanh' = 1 − a²) was given the "
            "pre-activation Z", "δ^[{k}] = (δ^[{l}] W^[{l}]) ⊙ Z^[{k}](1 − Z^[{k}])  (sigmoid; tanh: 1 − Z²)",
            "recursion", "gprime"),
    # L2
    Mistake("no_l2", "L2 term missing", "the regularization term is left out", "dW^[{l}] = δ^[{l}]ᵀ A^[{k}]",
            "dW", "l2"),
    Mistake("l2_no_m", "L2 without 1/m", "the regularization term is not divided by m (the cost has λ/(2m) Σ‖W‖²)",
            "dW^[{l}] = δ^[{l}]ᵀ A^[{k}] + λ W^[{l}]", "dW", "l2",
            "note 000 writes D = Δ/m + λΘ; with its cost's λ/(2m) Σ Θ² it is (Δ + λΘ)/m"),
    Mistake("l2_no_half", "L2 cost without its ½", "the cost's regularization term is λ/m Σ‖W‖², twice λ/(2m) Σ‖W‖²",
            "J = … + (λ/m) Σ‖W‖²", "cost", "l2"),
    Mistake("bias_reg", "bias regularised", "the biases were regularized too; the L2 term covers the weights only",
            "db^[{l}] = Σ_rows δ^[{l}] + (λ/m) b^[{l}]", "db", "bias",
            "note 000's regularization sum starts at j = 1: the bias column is left out"),
    Mistake("transposed", "dW transposed", "dW has the shape of Wᵀ: it was computed as A^[l−1]ᵀ δ^[l], the "
            "transpose of δ^[l]ᵀ A^[l−1]", "dW^[{l}] = A^[{k}]ᵀ δ^[{l}]", "dW", "transpose"),
    # the cost alone
    Mistake("cost_sum", "1/m missing in the cost", "the cost is the sum of the losses over the examples, not their mean",
            "J = Σ_i loss_i + …", "cost", "cost"),
    Mistake("cost_sign", "cost sign flipped", "the cost is the log-likelihood; the loss is its negative",
            "J = −(1/m) Σ_i loss_i + …", "cost", "cost"),
    Mistake("cost_wrong_loss", "cost of the wrong loss", "the cost is the formula of another loss than the one "
            "the output pairs with", "J = (1/m) Σ_i other_loss_i + …", "cost", "cost"),
    # the forward pass
    Mistake("no_bias", "bias left out", "the bias was not added", "Z^[{l}] = A^[{k}] W^[{l}]ᵀ", "forward", "forward"),
    Mistake("bias_after_activation", "bias added after the activation", "the bias was added to g(Z) instead of to Z",
            "A^[{l}] = g(A^[{k}] W^[{l}]ᵀ) + b^[{l}]", "forward", "forward"),
    Mistake("no_output_activation", "output activation left out", "the output layer returned its logits Z^[L]",
            "A^[{L}] = Z^[{L}]", "forward", "forward"),
    Mistake("hidden_at_output", "hidden activation at the output", "the output layer used the hidden layers' "
            "activation instead of its own", "A^[{L}] = g_hidden(Z^[{L}])", "forward", "forward"),
    Mistake("softmax_columns", "softmax over the wrong axis", "the softmax normalised each column (over the "
            "examples) instead of each row (over the classes)", "A^[{L}]_ik = e^Z_ik / Σ_j e^Z_jk", "forward",
            "forward"),
    # mini-batch updates
    Mistake("uphill", "step uphill", "the step was added instead of subtracted", "W ← W + α dW", "update", "update"),
    Mistake("batch_sum", "1/|B| missing", "each batch's step used the sum of the gradients of its examples, not "
            "their mean", "W ← W − α Σ_(i∈B) dW_i", "update", "update"),
    Mistake("divide_by_m", "divided by m instead of |B|", "each batch's gradient was divided by the number of "
            "examples in the whole set instead of in the batch", "W ← W − (α/m) Σ_(i∈B) dW_i", "update", "update",
            "note 002's update is W −= α/|B| · (ŷ − y)ᵀ X: the batch's own size"),
    Mistake("skip_last", "last short batch skipped", "the examples left over after the last full batch were "
            "never used", "batches of exactly |B| rows only", "update", "update"),
    Mistake("stale", "every batch's gradient at the starting weights", "each batch's gradient was computed with "
            "the weights of the start of the epoch, not the weights the previous batch left",
            "W ← W − α Σ_B dW_B(W_start)", "update", "update"),
    Mistake("one_step", "one full-batch step", "the epoch took a single step with the gradient of all m examples",
            "W ← W − α dW(all rows)", "update", "update"),
    Mistake("no_step", "no step taken (not written yet?)", "the weights came back as they went in: no batch "
            "updated them", "W ← W (unchanged)", "update", "update"),
]
MISTAKES: dict[str, Mistake] = {m.key: m for m in _M}


# -- forward --------------------------------------------------------------------------------------------

def _softmax_columns(Z):
    E = np.exp(Z - Z.max(axis=0, keepdims=True))
    return E / E.sum(axis=0, keepdims=True)


def forward_pass(weights, activations, X, flags=frozenset()):
    """(Zs, As) with As[0] = X: Z_l = A_{l−1} W_lᵀ + b_l, A_l = g_l(Z_l), changed by the forward ``flags``."""
    acts = [get_activation(a) for a in activations]
    L = len(weights)
    Zs, As = [], [np.asarray(X, dtype=np.float64)]
    for i, ((W, b), g) in enumerate(zip(weights, acts)):
        out = i == L - 1
        Z = As[-1] @ W.T
        if "no_bias" not in flags and "bias_after_activation" not in flags:
            Z = Z + b
        if out and "no_output_activation" in flags:
            A = Z.copy()
        elif out and "hidden_at_output" in flags and L > 1:
            A = acts[0].forward(Z.copy())
        elif out and "softmax_columns" in flags and g.name == "softmax":
            A = _softmax_columns(Z)
        else:
            A = g.forward(Z.copy())
        if "bias_after_activation" in flags:
            A = A + b
        Zs.append(Z)
        As.append(A)
    return Zs, As


def variant_forward(weights, activations, X, flags=frozenset()):
    """[A_1, ..., A_L] of the forward pass with the forward ``flags``."""
    return forward_pass(weights, activations, X, flags)[1][1:]


# -- the output: cost and δ_L ---------------------------------------------------------------------------

def _loss_rows(name, A, Y):
    """Σ_i loss_i of loss ``name`` computed from the outputs A (clipped away from 0 and 1 for the logs)."""
    if name == "squared_error":
        return 0.5 * float(np.sum((A - Y) ** 2))
    P = np.clip(A, 1e-300, None)
    if name == "cross_entropy":
        return float(-np.sum(Y * np.log(P)))
    Q = np.clip(1 - A, 1e-300, None)
    return float(-np.sum(Y * np.log(P) + (1 - Y) * np.log(Q)))


def variant_output(Z, A, Y, output, flags=frozenset()):
    """(data cost, δ_L) for outputs A = g(Z) and targets Y (m, K): the right ``(1/m) Σ loss_i`` and
    ``(A − Y)/m``, changed by the output, scale and cost ``flags``. A flag that does not apply to this
    output (softmax_elementwise for a sigmoid output, say) changes nothing."""
    m = A.shape[0]
    loss = loss_for_output(output)
    data = get_loss(loss).value(Z, A, Y)  # Σ_i loss_i, from the logits
    if "cost_wrong_loss" in flags:
        other = {"cross_entropy": "binary_cross_entropy", "binary_cross_entropy": "cross_entropy",
                 "squared_error": None}[loss]
        if other:  # squared error has no other loss of its own kind; its slip is missing_half
            data = _loss_rows(other, A, Y)
    if "missing_half" in flags and output == "identity":
        data = 2 * data
    if "cost_sign" in flags:
        data = -data
    cost = data if "cost_sum" in flags else data / m

    if "sign" in flags:
        D = Y - A
    elif "zero_minus_y" in flags:
        D = -Y
    elif "softmax_elementwise" in flags and output == "softmax":
        D = -Y * (1 - A)
    elif "squared_error_delta" in flags and output in ("softmax", "sigmoid"):
        D = (A - Y) * A * (1 - A)
    elif "cross_entropy_delta" in flags and output == "sigmoid":
        D = -Y * (1 - A)
    elif "missing_half" in flags and output == "identity":
        D = 2 * (A - Y)
    else:
        D = A - Y
    if "no_m" in flags:
        return cost, D
    return cost, D / (m * m if "m_twice" in flags else m)


# -- backprop ---------------------------------------------------------------------------------------------

def _gprime(act, Z, A):
    return act.derivative(Z, A)


def variant_backprop(weights, activations, X, Y, l2: float = 0.0, flags=frozenset()):
    """(J, [(dW_1, db_1), ...]) of the derivation in the module docstring, changed by ``flags`` (keys of
    :data:`MISTAKES`). Arrays are float64; with ``transposed`` each dW is returned as the (n_in, n_out)
    transpose. Flags that do not apply to this network change nothing (g' of A for ReLU, say)."""
    flags = frozenset(flags)
    weights = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in weights]
    acts = [get_activation(a) for a in activations]
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    m = X.shape[0]
    Zs, As = forward_pass(weights, activations, X)
    data, delta = variant_output(Zs[-1], As[-1], Y, acts[-1].name, flags)

    sq = sum(float(np.sum(W * W)) for W, _ in weights)
    if "bias_reg" in flags:
        sq += sum(float(np.sum(b * b)) for _, b in weights)
    if "no_l2" in flags:
        reg = 0.0
    elif "l2_no_m" in flags:
        reg = 0.5 * l2 * sq
    elif "l2_no_half" in flags:
        reg = l2 * sq / m
    else:
        reg = 0.5 * l2 * sq / m
    cost = data + reg

    l2_factor = 0.0 if "no_l2" in flags else (l2 if "l2_no_m" in flags else l2 / m)
    grads = [None] * len(weights)
    for i in range(len(weights) - 1, -1, -1):
        W, b = weights[i]
        A_prev = As[i]
        dW = delta.T @ A_prev + l2_factor * W
        db = delta.sum(axis=0)
        if "bias_reg" in flags:
            db = db + l2_factor * b
        grads[i] = (dW.T.copy() if "transposed" in flags else dW, db)
        if i == 0:
            break
        below = acts[i - 1]
        Z_below, A_below = Zs[i - 1], As[i]
        if "no_gprime" in flags:
            delta = delta @ W
        elif "gprime_wrong_layer" in flags:
            delta = (delta * _gprime(acts[i], Zs[i], As[i + 1])) @ W
        elif "gprime_of_A" in flags:
            delta = (delta @ W) * _gprime(below, A_below, below.forward(A_below.copy()))
        elif "gprime_formula_on_Z" in flags and below.name in ("sigmoid", "tanh"):
            delta = (delta @ W) * _gprime(below, Z_below, Z_below)
        else:
            delta = below.backward(delta @ W, Z_below, A_below)
    return cost, grads


# -- one epoch of mini-batch gradient descent ------------------------------------------------------------

def _batch_grads(weights, activations, Xb, Yb, l2):
    return variant_backprop(weights, activations, Xb, Yb, l2)[1]


def variant_epoch(weights, activations, X, Y, lr: float, batch_size: int, l2: float = 0.0, flags=frozenset()):
    """The weights after one epoch of mini-batch gradient descent, batches in row order (the last one
    shorter), W ← W − α dW_B with dW_B the gradient of the batch's own cost J_B (its mean, with λ/(2|B|)):
    changed by the update ``flags``."""
    W0 = [(np.array(W, np.float64), np.array(b, np.float64)) for W, b in weights]
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    m = X.shape[0]
    if "no_step" in flags:
        return W0
    if "one_step" in flags:
        g = _batch_grads(W0, activations, X, Y, l2)
        return [(W - lr * dW, b - lr * db) for (W, b), (dW, db) in zip(W0, g)]
    current = [(W.copy(), b.copy()) for W, b in W0]
    sign = -1.0 if "uphill" in flags else 1.0
    for start in range(0, m, batch_size):
        stop = min(start + batch_size, m)
        if "skip_last" in flags and stop - start < batch_size:
            break
        at = W0 if "stale" in flags else current
        g = _batch_grads(at, activations, X[start:stop], Y[start:stop], l2)
        factor = {"batch_sum": stop - start, "divide_by_m": (stop - start) / m}
        f = next((v for k, v in factor.items() if k in flags), 1.0)
        current = [(W - sign * lr * f * dW, b - sign * lr * f * db) for (W, b), (dW, db) in zip(current, g)]
    return current
