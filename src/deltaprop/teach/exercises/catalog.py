"""The exercises: what each asks for, the cases it runs, how it calls the learner, its slips and its hints.

They follow the notes, from the forward pass to a whole epoch of mini-batch updates:

    forward        Z = A_prev Wᵀ + b, A = g(Z), layer by layer                      notes 001, 002
    output_delta   the cost and δ_L = (A − Y)/m for each of the three losses         notes 000, 002, 003
    one_hidden     backprop through one hidden layer (ReLU, softmax)                 note 003
    any_depth      backprop through any number of layers and activations           note 001
    l2             the same with the L2 term λ/(2m) Σ‖W‖²                            notes 000, 001
    per_example    note 000's loop: Δ += δ āᵀ one example at a time, Θ = [b | W]    note 000
    vectorized     note 000's network, the loop replaced by matrix products         notes 000, 002
    minibatch      one epoch of mini-batch gradient descent, W ← W − α dW_B         notes 001, 002

Each exercise has a starter file (``starters/NAME.py``, which names its exercise with ``EXERCISE = "NAME"``)
and an answer (``solutions/NAME.py``, written only with ``--solutions``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np

from deltaprop.errors import unknown_name
from deltaprop.reference import to_theta

from . import zoo
from .checker import (
    Case,
    as_array,
    as_cost,
    call_learner,
    gradient_items,
    grads_items,
    make_cases,
    network_case,
    output_case,
    unpack,
)

__all__ = ["EXERCISES", "Exercise", "get_exercise"]

OUTPUT = ["sign", "zero_minus_y", "softmax_elementwise", "squared_error_delta", "cross_entropy_delta", "missing_half"]
SCALE = ["no_m", "m_twice"]
GPRIME = ["no_gprime", "gprime_wrong_layer", "gprime_of_A", "gprime_formula_on_Z"]
L2 = ["no_l2", "l2_no_m", "l2_no_half", "bias_reg"]
COST = ["cost_sum", "cost_sign", "cost_wrong_loss"]
# What a whole backward pass can get wrong, without and with L2; the λ of the L2 exercises' cases.
BACKPROP = tuple(OUTPUT + SCALE + GPRIME + COST + ["transposed"])
BACKPROP_L2 = tuple(OUTPUT + SCALE + GPRIME + L2 + COST + ["transposed"])
_L2_VALUES = (0.5, 0.9, 0.3)


@dataclass
class Exercise:
    """One exercise: ``name``, ``title``, ``notes`` (which notes it follows), ``function`` (the name the
    learner defines), ``signature``, ``summary`` (what to write), ``hints`` (revealed one at a time),
    ``flags`` (the slips the checker looks for), ``kind`` (how it calls the function) and ``networks``."""

    name: str
    title: str
    notes: str
    function: str
    signature: str
    summary: str
    hints: tuple
    flags: tuple
    kind: str
    networks: tuple = ()
    l2s: tuple = (0.0,)

    # -- files ---------------------------------------------------------------------------------------
    def source(self, solution: bool = False) -> str:
        """The text of the starter file (or of the answer)."""
        folder = "solutions" if solution else "starters"
        return resources.files(__package__).joinpath(folder, f"{self.name}.py").read_text(encoding="utf-8")

    # -- cases ---------------------------------------------------------------------------------------
    def make_cases(self, seeds=(0, 1, 2)) -> list[Case]:
        """The cases the check runs: each network × each seed; one example for the first seed, 4 and 7 after."""
        if self.kind == "output":
            return [output_case(out, k, seed, m) for out, k in self.networks
                    for seed, m in zip(seeds, (1, 4, 7))]
        if self.kind == "forward":
            return [_forward_case(sizes, hidden, output, seed, m) for sizes, hidden, output in self.networks
                    for seed, m in zip(seeds, (1, 4, 7))]
        if self.kind == "epoch":
            return [_epoch_case(sizes, hidden, output, seed, m, bs) for sizes, hidden, output, m, bs in self.networks
                    for seed in seeds]
        return make_cases(self.networks, seeds, l2s=self.l2s)

    # -- calling the learner's function --------------------------------------------------------------
    def call(self, fn, case: Case) -> dict:
        """fn on the case's inputs; its result as items (LearnerError if it cannot be read)."""
        c = case.inputs
        if self.kind == "forward":
            out = call_learner(fn, case, c["weights"], c["activations"], c["X"])
            As = unpack(out, len(c["weights"]), "the list of activations", case, "[A_1, ..., A_L], one per layer", returned=True)
            return {("A", l): as_array(A, f"A of layer {l}", (case.m, W.shape[0]), case)
                    for l, (A, (W, _)) in enumerate(zip(As, c["weights"]), 1)}
        if self.kind == "output":
            out = call_learner(fn, case, c["A"], c["Y"], c["loss"])
            cost, delta = unpack(out, 2, "the result", case, "(cost, delta)", returned=True)
            return {("cost", c["loss"]): as_cost(cost, f"the cost for {c['loss']}", case),
                    ("delta", c["loss"]): as_array(delta, f"δ for {c['loss']}", c["A"].shape, case)}
        if self.kind == "epoch":
            out = call_learner(fn, case, c["weights"], c["activations"], c["X"], c["Y"], case.extra["lr"],
                               case.extra["batch_size"], case.l2)
            pairs = unpack(out, len(c["weights"]), "the list of weights", case, "[(W, b), ...], one pair per layer", returned=True)
            items = {}
            for l, (pair, (W, b)) in enumerate(zip(pairs, c["weights"]), 1):
                W_new, b_new = unpack(pair, 2, f"entry {l} of the weights", case, "(W, b) for every layer")
                items[("W", l)] = as_array(W_new, f"W of layer {l}", W.shape, case)
                items[("b", l)] = as_array(b_new, f"b of layer {l}", b.shape, case)
            return items
        form = "(cost, [(dW_1, db_1), (dW_2, db_2), ...])"
        if self.kind == "one_hidden":
            (W1, b1), (W2, b2) = c["weights"]
            out = call_learner(fn, case, W1, b1, W2, b2, c["X"], c["Y"])
            cost, dW1, db1, dW2, db2 = unpack(out, 5, "the result", case, "(cost, dW1, db1, dW2, db2)", returned=True)
            return grads_items(cost, [(dW1, db1), (dW2, db2)], case, "(cost, dW1, db1, dW2, db2)")
        if self.kind == "theta":
            Thetas = [to_theta(W, b) for W, b in c["weights"]]
            out = call_learner(fn, case, Thetas, c["X"], c["Y"], case.l2)
            cost, Ds = unpack(out, 2, "the result", case, "(J, [D_1, D_2, ...])", returned=True)
            Ds = unpack(Ds, len(Thetas), "the list of gradients", case, "(J, [D_1, D_2, ...]), one D per Θ")
            grads = []
            for l, (D, T) in enumerate(zip(Ds, Thetas), 1):
                D = as_array(D, f"D of layer {l}", T.shape, case, transposable=True)
                grads.append((D[:, 1:], D[:, 0]) if D.shape == T.shape else (D[1:, :], D[0, :]))
            return grads_items(cost, grads, case, form)
        if self.kind == "sigmoid":
            out = call_learner(fn, case, c["weights"], c["X"], c["Y"], case.l2)
        elif self.kind == "backprop_l2":
            out = call_learner(fn, case, c["weights"], c["activations"], c["X"], c["Y"], case.l2)
        else:
            out = call_learner(fn, case, c["weights"], c["activations"], c["X"], c["Y"])
        cost, grads = unpack(out, 2, "the result", case, form, returned=True)
        return grads_items(cost, grads, case, form)

    # -- the variants of the right answer --------------------------------------------------------------
    def variant(self, case: Case, flags) -> dict:
        """The case's items computed with the slips ``flags`` (see :mod:`.zoo`)."""
        c = case.inputs
        if self.kind == "forward":
            As = zoo.variant_forward(c["weights"], c["activations"], c["X"], flags)
            return {("A", l): A for l, A in enumerate(As, 1)}
        if self.kind == "output":
            cost, delta = zoo.variant_output(c["Z"], c["A"], c["Y"], case.activations[-1], flags)
            return {("cost", c["loss"]): cost, ("delta", c["loss"]): delta}
        if self.kind == "epoch":
            new = zoo.variant_epoch(c["weights"], c["activations"], c["X"], c["Y"], case.extra["lr"],
                                    case.extra["batch_size"], case.l2, flags)
            return _weight_items(new)
        cost, grads = zoo.variant_backprop(c["weights"], c["activations"], c["X"], c["Y"], case.l2, flags)
        return gradient_items(cost, grads)


def _weight_items(weights) -> dict:
    items = {}
    for l, (W, b) in enumerate(weights, 1):
        items[("W", l)] = np.asarray(W, np.float64)
        items[("b", l)] = np.asarray(b, np.float64)
    return items


def _forward_case(sizes, hidden, output, seed, m) -> Case:
    case, net = network_case(sizes, hidden, output, seed, m)
    A = case.inputs["X"]
    truth = {}
    for l, layer in enumerate(net.layers, 1):
        A = layer.forward(A, cache=False)  # the engine's own Z = A_prev Wᵀ + b, A = g(Z)
        truth[("A", l)] = A.copy()
    case.truth = truth
    return case


def _epoch_case(sizes, hidden, output, seed, m, batch_size, lr=0.5) -> Case:
    case, net = network_case(sizes, hidden, output, seed, m)
    case.extra = {"lr": lr, "batch_size": batch_size}
    X, Y = case.inputs["X"], case.inputs["Y"]
    for start in range(0, m, batch_size):  # the engine's gradients, one batch at a time, in row order
        _, grads = net.backprop(X[start:start + batch_size], Y[start:start + batch_size], l2=case.l2)
        for layer, (dW, db) in zip(net.layers, grads):
            layer.W -= lr * dW
            layer.b -= lr * db
    case.truth = _weight_items(net.get_weights())
    return case


_SHAPES_ANY = (([3, 4, 2], "relu", "softmax"), ([4, 5, 3, 3], "tanh", "sigmoid"), ([2, 6, 4, 5, 1], "sigmoid", "identity"))
_SHAPES_000 = (([3, 4, 2], "sigmoid", "sigmoid"), ([2, 5, 3, 4], "sigmoid", "sigmoid"), ([4, 3, 3, 2, 1], "sigmoid", "sigmoid"))

_LIST = [
    Exercise(
        "forward", "the forward pass", "notes 001 and 002", "forward",
        "forward(weights, activations, X) -> [A_1, ..., A_L]",
        "Compute every layer's activations: Z = A_prev Wᵀ + b, then A = g(Z), from A_0 = X to the output. "
        "weights = [(W, b), ...] with W of shape (n_out, n_in) and b of shape (n_out,); X is (m, n_0), one example "
        "per row; activations names each layer's g (relu, tanh, sigmoid, identity, softmax).",
        ("Start from A = X and loop over the layers: each one turns A (m, n_in) into a new A (m, n_out).",
         ("W is (n_out, n_in) and A is (m, n_in): the product that gives (m, n_out) is A @ W.T. Add b to every row "
         "(NumPy broadcasts a (n_out,) vector over the rows)."),
         ("softmax works row by row: subtract each row's maximum before np.exp (the result is the same and nothing "
         "overflows), then divide each row by its sum (axis=1, keepdims=True)."),
         "Append every layer's A to the list you return, the output's last; X itself is not in the list."),
        ("no_bias", "bias_after_activation", "no_output_activation", "hidden_at_output", "softmax_columns"),
        "forward", _SHAPES_ANY),
    Exercise(
        "output_delta", "the cost and the output error δ for each loss", "notes 000, 002 and 003", "output_delta",
        "output_delta(A, Y, loss) -> (cost, delta)",
        "For outputs A (m, K) and targets Y (m, K), return the cost J = (1/m) Σ_i loss_i and the output error "
        "δ = ∂J/∂Z (m, K), for loss = 'cross_entropy' (softmax outputs, one-hot Y), 'binary_cross_entropy' "
        "(sigmoid outputs, 0/1 Y) and 'squared_error' (identity outputs, loss_i = ½ Σ_k (a − y)²).",
        ("The cost is a mean over the m rows: sum every example's loss, then divide by m = A.shape[0].",
         ("Cross-entropy: loss_i = −Σ_k y_k log a_k. Binary cross-entropy: −Σ_k [y log a + (1 − y) log(1 − a)]. "
         "Squared error: ½ Σ_k (a_k − y_k)²."),
         ("Derive δ = ∂J/∂Z, not ∂J/∂A: for softmax every a_k depends on every z_j, so use the whole Jacobian "
         "∂a_k/∂z_j = a_k(1{k=j} − a_j) (note 002); for sigmoid, σ'(z) = a(1 − a)."),
         ("All three pairs give the same answer, δ = (A − Y)/m, the sign of prediction minus target (note 003's "
         "dA = Y − A has it backwards; note 000's 0 − y forgets the prediction).")),
        tuple(OUTPUT + SCALE + COST), "output", (("softmax", 3), ("sigmoid", 2), ("identity", 2))),
    Exercise(
        "one_hidden", "backprop through one hidden layer", "note 003", "backprop",
        "backprop(W1, b1, W2, b2, X, Y) -> (cost, dW1, db1, dW2, db2)",
        "A two-layer classifier as in note 003: Z1 = X W1ᵀ + b1, A1 = relu(Z1), Z2 = A1 W2ᵀ + b2, A2 = softmax(Z2), "
        "cost J = −(1/m) Σ Y log A2. Return J and the gradient of J with respect to each of W1, b1, W2, b2 (each of "
        "the shape of its parameter). Rows are examples: X is (m, n_x), Y one-hot (m, K).",
        ("Forward first, and keep Z1, A1 and A2: the backward pass reads them.",
         ("The output error is δ2 = (A2 − Y)/m (m, K). Then dW2 = δ2ᵀ A1 has the shape of W2, and db2 sums δ2 "
         "over the rows."),
         ("Send the error back through W2 (δ2 W2, shape (m, n_1)) and through the ReLU: multiply element-wise by "
         "relu'(Z1) = 1 where Z1 > 0, else 0."),
         "dW1 = δ1ᵀ X and db1 = δ1 summed over the rows. The 1/m entered once, in δ2: do not divide again."),
        BACKPROP, "one_hidden",
        (([4, 5, 3], "relu", "softmax"), ([6, 3, 4], "relu", "softmax"), ([2, 7, 3], "relu", "softmax"))),
    Exercise(
        "any_depth", "backprop through any number of layers", "note 001", "backprop",
        "backprop(weights, activations, X, Y) -> (cost, [(dW_1, db_1), ...])",
        "Any depth, any hidden activation (relu, tanh, sigmoid), and the output that pairs with the loss: softmax "
        "with cross-entropy, sigmoid with binary cross-entropy, identity with squared error (½ Σ (a − y)²). Return "
        "the cost J = (1/m) Σ_i loss_i and the gradients of every layer.",
        ("Forward pass as in the 'forward' exercise, keeping every Z and A.",
         "All three output pairs give δ_L = (A_L − Y)/m: start the backward pass there.",
         ("Going down one layer: δ_{l−1} = (δ_l W_l) ⊙ g'(Z_{l−1}), with g' of the layer below, evaluated at its "
         "pre-activation Z (σ' = A(1 − A) and tanh' = 1 − A² read it off the cached A)."),
         "At every layer: dW_l = δ_lᵀ A_{l−1} (the shape of W_l) and db_l = δ_l summed over the rows.",
         "Loop l from L down to 1 and stop sending the error back at the first layer."),
        BACKPROP, "backprop", _SHAPES_ANY),
    Exercise(
        "l2", "backprop with L2 regularization", "notes 000 and 001", "backprop",
        "backprop(weights, activations, X, Y, l2) -> (cost, [(dW_1, db_1), ...])",
        "As any_depth, with the cost J = (1/m) Σ_i loss_i + λ/(2m) Σ_l ‖W_l‖² (λ = l2; the biases are not "
        "regularized).",
        ("Add λ/(2m) times the sum of every squared weight to the cost; leave the biases out of it.",
         "Differentiate that term: it adds (λ/m) W_l to dW_l and nothing to db_l.",
         "The data part of the gradient does not change: δ_L = (A_L − Y)/m and the recursion are those of any_depth.",
         ("Note 000 writes D = Δ/m + λΘ; with its own cost λ/(2m) Σ Θ² the λ term is divided by m too, and the "
         "bias column is left out.")),
        BACKPROP_L2, "backprop_l2", _SHAPES_ANY, _L2_VALUES),
    Exercise(
        "per_example", "note 000's loop, one example at a time", "note 000", "backprop",
        "backprop(Thetas, X, Y, lam) -> (J, [D_1, D_2, ...])",
        "Note 000's algorithm as it is written: sigmoid units everywhere, K sigmoid outputs with the binary "
        "cross-entropy cost and the L2 term λ/(2m) Σ Θ² (bias column excluded). Θ^(l) = [b | W] has shape "
        "s_{l+1} × (s_l + 1) with the biases in column 0. Loop over the examples: forward with the bias unit "
        "a_0 = 1, δ^(L) = a^(L) − y, δ^(l) = (Θ^(l)ᵀ δ^(l+1))_{1:} ⊙ a^(l)(1 − a^(l)), Δ^(l) += δ^(l+1) āᵀ; then "
        "D^(l) = (Δ^(l) + λ Θ̃^(l))/m with Θ̃ the Θ whose bias column is 0.",
        ("Set every Δ^(l) to zeros of Θ^(l)'s shape before the loop over the examples.",
         "For one example x (a column): ā = [1; a]; z = Θ ā; a = σ(z). Keep every ā and a.",
         ("δ^(L) = a^(L) − y (the note once writes 0 − y: a slip). Going down: Θᵀ δ has one entry too many, for "
         "the bias unit: drop it ([1:]) before multiplying by a(1 − a)."),
         "Δ^(l) += δ^(l+1) ā^(l)ᵀ: a column times a row, the shape of Θ^(l).",
         ("After the loop: D = (Δ + λΘ̃)/m, where Θ̃ is a copy of Θ with column 0 set to 0. The cost: the mean of "
         "the examples' losses plus λ/(2m) Σ of the squared entries of Θ̃.")),
        BACKPROP_L2, "theta", _SHAPES_000, _L2_VALUES),
    Exercise(
        "vectorized", "note 000's network, vectorized", "notes 000 and 002", "backprop",
        "backprop(weights, X, Y, l2) -> (cost, [(dW_1, db_1), ...])",
        "The network of per_example (sigmoid everywhere, binary cross-entropy, λ/(2m) Σ‖W‖²) with the loop over "
        "the examples replaced by matrix products over the rows of X: weights = [(W, b), ...], W (n_out, n_in).",
        ("Stack the examples as rows: each Z = A_prev Wᵀ + b is one product for the whole batch.",
         "δ_L = (A_L − Y)/m carries the 1/m: the sum over the examples of the loop becomes δᵀ A_prev.",
         ("δ_{l−1} = (δ_l W_l) ⊙ A_{l−1}(1 − A_{l−1}); the matrix product sums each unit's error over every unit "
         "it feeds (note 002's question: yes, sum over j)."),
         "dW_l = δ_lᵀ A_{l−1} + (λ/m) W_l, db_l = Σ_rows δ_l; compare with per_example on the same numbers."),
        BACKPROP_L2, "sigmoid", _SHAPES_000, _L2_VALUES),
    Exercise(
        "minibatch", "one epoch of mini-batch gradient descent", "notes 001 and 002", "sgd_epoch",
        "sgd_epoch(weights, activations, X, Y, lr, batch_size, l2) -> [(W_1, b_1), ...]",
        "Walk through X in order in batches of batch_size rows (the last batch may be shorter), and after each "
        "batch B take one step W ← W − α dW_B, b ← b − α db_B, where dW_B is the gradient of that batch's own cost "
        "(the mean over its |B| rows). Return the new weights. The starter gives you gradients(...).",
        ("Batches are X[start:start + batch_size] for start = 0, batch_size, 2·batch_size, ... up to m.",
         "The gradient of the batch's cost already carries 1/|B| (the batch's own size): take it as it comes.",
         ("One batch at a time: its gradient, then the update, then the next batch, whose gradient is taken at the "
          "weights that update left (not at the weights the epoch started from)."),
         "Do not modify the arrays you were given in place unless you copy them first; return a new list."),
        ("uphill", "batch_sum", "divide_by_m", "skip_last", "stale", "one_step", "no_step"), "epoch",
        (([3, 4, 2], "relu", "softmax", 10, 4), ([4, 5, 3], "tanh", "sigmoid", 11, 3),
         ([2, 3, 1], "sigmoid", "identity", 7, 2))),
]

EXERCISES: dict[str, Exercise] = {e.name: e for e in _LIST}


def get_exercise(name) -> Exercise:
    """An exercise by name (``one-hidden`` and ``one_hidden`` both work); unknown names list the valid ones."""
    if isinstance(name, Exercise):
        return name
    key = str(name).strip().lower().replace("-", "_")
    key = key.removesuffix(".py")
    if key not in EXERCISES:
        raise unknown_name("exercise", name, list(EXERCISES))
    return EXERCISES[key]
