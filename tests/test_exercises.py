"""Exercises: deltaprop checks a learner's own backprop and names the mistake.

Every wrong implementation here is written the way a learner writes one (NumPy, rows as examples), with
one slip switched on by ``mistake=``; the checker must name exactly that slip on three network shapes and
three seeds, never another, and must call anything outside its zoo "not a known mistake".
"""

import dataclasses
import functools
import json
import sys

import numpy as np
import pytest

import cli_child
import deltaprop as dp
from deltaprop.teach import exercises
from deltaprop.teach.exercises import zoo
from deltaprop.teach.exercises.catalog import EXERCISES, get_exercise
from deltaprop.teach.exercises.checker import make_cases, run_check

# -- a learner's backprop, with slips -----------------------------------------------------------------------


def g(name, Z):
    if name == "relu":
        return np.maximum(Z, 0.0)
    if name == "tanh":
        return np.tanh(Z)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-Z))
    if name == "identity":
        return Z.copy()
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def g_prime_from_A(name, A):
    """σ' = a(1 − a), tanh' = 1 − a²: written in terms of the activation, as learners write them."""
    if name == "tanh":
        return 1.0 - A * A
    if name in ("sigmoid", "softmax"):
        return A * (1.0 - A)
    return np.ones_like(A)


def g_prime(name, Z, A):
    if name == "relu":
        return (Z > 0).astype(float)
    return g_prime_from_A(name, A)


def learner_backprop(weights, activations, X, Y, l2=0.0, mistake=None):
    """A learner's vectorized backprop; ``mistake`` switches on one slip."""
    m = X.shape[0]
    As, Zs = [X], []
    for (W, b), name in zip(weights, activations):
        Zs.append(As[-1] @ W.T + b)
        As.append(g(name, Zs[-1]))
    A, out = As[-1], activations[-1]
    if out == "softmax":
        losses = -np.sum(Y * np.log(A)) if mistake != "cost_wrong_loss" else -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A))
    elif out == "sigmoid":
        losses = -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) if mistake != "cost_wrong_loss" else -np.sum(Y * np.log(A))
    else:
        losses = (1.0 if mistake == "missing_half" else 0.5) * np.sum((A - Y) ** 2)
    if mistake == "cost_sign":
        losses = -losses
    cost = losses if mistake == "cost_sum" else losses / m
    squares = sum(np.sum(W * W) for W, _ in weights)
    if mistake == "bias_reg":
        squares += sum(np.sum(b * b) for _, b in weights)
    if mistake == "l2_no_m":
        cost += l2 / 2 * squares
    elif mistake == "l2_no_half":
        cost += l2 / m * squares
    elif mistake != "no_l2":
        cost += l2 / (2 * m) * squares

    if mistake == "sign":
        dZ = Y - A                      # note 003's dA = Y − A, used as the error
    elif mistake == "zero_minus_y":
        dZ = 0 - Y                      # note 000's δ = 0 − y
    elif mistake == "softmax_elementwise":
        dZ = (-Y / A) * (A * (1 - A))   # ∂J/∂A times the diagonal of the Jacobian only
    elif mistake == "squared_error_delta":
        dZ = (A - Y) * g_prime_from_A(out, A)
    elif mistake == "cross_entropy_delta":
        dZ = (-Y / A) * (A * (1 - A))
    elif mistake == "missing_half":
        dZ = 2 * (A - Y)
    else:
        dZ = A - Y
    delta = dZ if mistake == "no_m" else dZ / m
    grads = [None] * len(weights)
    for l in range(len(weights) - 1, -1, -1):
        W, b = weights[l]
        dW = delta.T @ As[l]
        db = delta.sum(axis=0)
        if mistake == "m_twice":
            dW, db = dW / m, db / m      # note 001: the 1/m again in dW and db
        if mistake == "l2_no_m":
            dW = dW + l2 * W
        elif mistake != "no_l2":
            dW = dW + l2 / m * W
        if mistake == "bias_reg":
            db = db + l2 / m * b
        if mistake == "transposed":
            dW = As[l].T @ delta + l2 / m * W.T
        grads[l] = (dW, db)
        if l > 0:
            back = delta @ W
            below = activations[l - 1]
            if mistake == "no_gprime":
                delta = back
            elif mistake == "gprime_wrong_layer":
                delta = (delta * g_prime(activations[l], Zs[l], As[l + 1])) @ W
            elif mistake == "gprime_of_A":
                delta = back * g_prime(below, As[l], g(below, As[l]))
            elif mistake == "gprime_formula_on_Z":
                delta = back * g_prime_from_A(below, Zs[l - 1])
            else:
                delta = back * g_prime(below, Zs[l - 1], As[l])
    return cost, grads


def learner_per_example(weights, activations, X, Y, l2=0.0):
    """The same gradient, one example at a time (note 000's Δ += δ aᵀ, any activations)."""
    m = X.shape[0]
    Deltas = [(np.zeros_like(W), np.zeros_like(b)) for W, b in weights]
    total = 0.0
    for i in range(m):
        cost_i, grads_i = learner_backprop(weights, activations, X[i:i + 1], Y[i:i + 1], 0.0)
        total += cost_i
        Deltas = [(DW + dW, Db + db) for (DW, Db), (dW, db) in zip(Deltas, grads_i)]
    squares = sum(np.sum(W * W) for W, _ in weights)
    grads = [(DW / m + l2 / m * W, Db / m) for (DW, Db), (W, _) in zip(Deltas, weights)]
    return total / m + l2 / (2 * m) * squares, grads


# -- which networks show which slip ---------------------------------------------------------------------------

GENERIC = [([3, 4, 2], "relu", "softmax"), ([4, 5, 3, 3], "tanh", "sigmoid"), ([2, 6, 4, 5, 1], "sigmoid", "identity")]
SMOOTH = [([3, 4, 2], "tanh", "softmax"), ([4, 5, 3, 3], "sigmoid", "sigmoid"), ([2, 6, 4, 5, 1], "tanh", "identity")]
SOFTMAX = [([3, 4, 2], "relu", "softmax"), ([4, 5, 3, 3], "tanh", "softmax"), ([2, 6, 4, 5, 4], "sigmoid", "softmax")]
SIGMOID = [([3, 4, 2], "relu", "sigmoid"), ([4, 5, 3, 3], "tanh", "sigmoid"), ([2, 6, 4, 5, 1], "sigmoid", "sigmoid")]
IDENTITY = [([3, 4, 2], "relu", "identity"), ([4, 5, 3, 3], "tanh", "identity"), ([2, 6, 4, 5, 1], "sigmoid", "identity")]
SHOWN_ON = {
    "sign": GENERIC, "zero_minus_y": GENERIC, "no_m": GENERIC, "m_twice": GENERIC, "no_gprime": GENERIC,
    "gprime_wrong_layer": GENERIC, "transposed": GENERIC, "cost_sum": GENERIC, "cost_sign": GENERIC,
    "cost_wrong_loss": SOFTMAX[:1] + SIGMOID[1:],
    "gprime_of_A": SMOOTH, "gprime_formula_on_Z": SMOOTH, "softmax_elementwise": SOFTMAX,
    "squared_error_delta": SOFTMAX[:1] + SIGMOID[1:], "cross_entropy_delta": SIGMOID, "missing_half": IDENTITY,
    "no_l2": GENERIC, "l2_no_m": GENERIC, "l2_no_half": GENERIC, "bias_reg": GENERIC,
}
L2_SLIPS = {"no_l2", "l2_no_m", "l2_no_half", "bias_reg"}
SEEDS = (0, 1, 2)


def named(report):
    """The set of slips the report names (each item's tuple of keys)."""
    return {r.mistakes for r in report.items if r.verdict == "named"}


def _check_backprop(fn, networks, l2s=(0.0,), seeds=SEEDS):
    cases = make_cases(networks, seeds, l2s=l2s)
    return run_check(get_exercise("l2"), fn, cases)


@pytest.mark.parametrize("mistake", sorted(SHOWN_ON))
@pytest.mark.parametrize("shape", [0, 1, 2])
def test_every_backprop_slip_is_named_on_three_shapes_and_three_seeds(mistake, shape):
    network = SHOWN_ON[mistake][shape]
    l2s = (0.5, 0.9, 0.3) if mistake in L2_SLIPS else (0.0,)
    fn = functools.partial(learner_backprop, mistake=mistake)
    report = _check_backprop(fn, [network], l2s)
    assert report.status == "wrong", report.to_text()
    assert named(report) == {(mistake,)}, report.to_text()
    assert not report.unknown, report.to_text()
    assert report.exit_code == 1
    # the named slip comes with its evidence and the derivation line it contradicts
    (m,) = report.mistakes
    assert m["variant_error"] <= 1e-6
    assert m["lines"][0]["says"], f"no derivation line found for {mistake}"
    text = report.to_text()
    assert zoo.MISTAKES[mistake].title in text and "the derivation says" in text


def test_all_three_shapes_together_give_one_story():
    for mistake, networks in SHOWN_ON.items():
        l2s = (0.5, 0.9, 0.3) if mistake in L2_SLIPS else (0.0,)
        report = _check_backprop(functools.partial(learner_backprop, mistake=mistake), networks, l2s)
        assert named(report) == {(mistake,)} and not report.unknown, (mistake, report.to_text())


def test_sign_flip_shows_ratio_minus_one_and_note_003():
    report = _check_backprop(functools.partial(learner_backprop, mistake="sign"), GENERIC[:1])
    (m,) = report.mistakes
    assert m["ratio"] == pytest.approx(-1.0)
    assert "note 003" in report.to_text()
    assert "δ^[2] = ∂J/∂Z^[2] = (A^[2] − Y)/m" in report.to_text()


def test_two_slips_at_once_are_named_together():
    # note 000's D = Δ/m + λΘ: the L2 term without 1/m, on the bias column too
    def fn(weights, activations, X, Y, l2):
        cost, grads = learner_backprop(weights, activations, X, Y, l2, mistake="l2_no_m")
        return cost, [(dW, db + l2 * b) for (dW, db), (_, b) in zip(grads, weights)]

    report = _check_backprop(fn, GENERIC, l2s=(0.5, 0.9, 0.3))
    keys = named(report)
    assert ("l2_no_m",) in keys and ("bias_reg", "l2_no_m") in {tuple(sorted(k)) for k in keys}, report.to_text()
    assert not report.unknown


def test_note_000_as_printed_is_named_in_its_own_notation(tmp_path):
    # D = Δ/m + λΘ: the λ term without 1/m, on the bias column too (Θ = [b | W])
    path = exercises.start("per_example", tmp_path, solutions=True)
    text = path.read_text()
    assert "Ds.append((Delta + lam * T_tilde) / m)" in text
    path.write_text(text.replace("Ds.append((Delta + lam * T_tilde) / m)", "Ds.append(Delta / m + lam * T)"))
    report = exercises.check(path)
    assert named(report) == {("l2_no_m",), ("l2_no_m", "bias_reg")}, report.to_text()
    assert all(r.verdict == "right" for r in report.items if r.item == ("cost",))
    assert "db^[2] = Σ_rows δ^[2] + λ b^[2]" in report.to_text()
    assert "note 000 writes D = Δ/m + λΘ" in report.to_text()


@pytest.mark.parametrize("fn", [learner_backprop, learner_per_example], ids=["vectorized", "per-example"])
@pytest.mark.parametrize("networks", [GENERIC, SMOOTH, SOFTMAX, SIGMOID])
def test_right_implementations_pass(fn, networks):
    report = _check_backprop(fn, networks, l2s=(0.5, 0.0, 0.3))
    assert report.ok and report.exit_code == 0, report.to_text()
    assert report.to_text().count("right") >= len(report.items)
    assert "RIGHT" in report.to_text()


def test_a_wrong_answer_outside_the_zoo_is_not_given_a_name():
    def off_by_a_bit(weights, activations, X, Y, l2):       # a factor no slip explains
        cost, grads = learner_backprop(weights, activations, X, Y, l2)
        return cost, [(dW * 1.01, db) for dW, db in grads]

    def random_numbers(weights, activations, X, Y, l2):
        rng = np.random.default_rng(0)
        cost, grads = learner_backprop(weights, activations, X, Y, l2)
        return cost, [(rng.normal(size=dW.shape), db) for dW, db in grads]

    def relu_forgotten_below(weights, activations, X, Y, l2):  # g' missing at the first hidden layer only
        cost, grads = learner_backprop(weights, activations, X, Y, l2)
        _, grads2 = learner_backprop(weights, activations, X, Y, l2, mistake="no_gprime")
        return cost, grads[:-1] + grads2[-1:] if len(grads) > 2 else grads2

    for fn in (off_by_a_bit, random_numbers):
        report = _check_backprop(fn, GENERIC, l2s=(0.5, 0.9, 0.3))
        assert report.status == "wrong" and report.exit_code == 1
        assert not named(report), report.to_text()
        dW_items = [r for r in report.items if r.item[0] == "dW"]
        assert all(r.verdict == "unknown" for r in dW_items)
        text = report.to_text()
        assert "wrong, not a known mistake" in text and "‖yours‖" in text and "ratio" in text
    report = _check_backprop(relu_forgotten_below, GENERIC)
    assert report.status == "wrong"
    for r in report.items:  # every item is right, honestly named, or unknown: never a name that does not fit
        assert r.verdict in ("right", "unknown") or r.mistakes == ("no_gprime",), report.to_text()


def test_zero_arrays_are_pointed_out_as_not_written():
    def zeros(weights, activations, X, Y, l2):
        return 0.0, [(np.zeros_like(W), np.zeros_like(b)) for W, b in weights]

    report = _check_backprop(zeros, GENERIC[:1])
    assert "all zeros: not written yet?" in report.to_text() and "not a known mistake" not in report.to_text()
    assert report.exit_code == 1


@pytest.mark.parametrize("fn, words", [
    (lambda w, a, X, Y, l2: 1 / 0, ["ZeroDivisionError", "test_exercises.py", "1 / 0"]),
    (lambda w, a, X, Y, l2: None, ["returned None"]),
    (lambda w, a, X, Y, l2: (0.0, [(W.T[:, :1], b) for W, b in w]), ["shape"]),
    (lambda w, a, X, Y, l2: (0.0, [(W, b[:, None]) for W, b in w]), ["db of layer 1 has shape", "must have shape"]),
    (lambda w, a, X, Y, l2: (float("nan"), [(W, b) for W, b in w]), ["nan"]),
    (lambda w, a, X, Y, l2: (0.0, [(W * np.nan, b) for W, b in w]), ["NaN or infinity"]),
    (lambda w, a, X, Y, l2: (0.0, [(W, b) for W, b in w][:1]), ["has 1 entry, 2 expected"]),
    (lambda w, a, X, Y, l2: np.zeros(3), ["ndarray"]),
    (lambda w, a, X, Y, l2: (0.0, [(W, "b") for W, b in w]), ["not an array of numbers"]),
    (lambda w, a, X, Y, l2: X @ w[0][0], ["raised ValueError", "shapes"]),
    (lambda w, a, X, Y, l2: sys.exit(3), ["raised SystemExit"]),
], ids=["raises", "none", "shape", "column-db", "nan-cost", "nan-dW", "too-few", "array", "text", "matmul", "exit"])
def test_a_function_that_cannot_be_checked_gets_a_clear_message(fn, words):
    report = _check_backprop(fn, GENERIC[:1])
    assert report.status == "error" and report.exit_code == 2
    text = report.to_text()
    assert "CANNOT RUN" in text and "Traceback" not in text
    for w in words:
        assert w.lower() in text.lower(), (w, text)
    assert report.to_dict()["error"]["message"]


def test_the_learners_arrays_are_copies():
    def mutates(weights, activations, X, Y, l2):
        cost, grads = learner_backprop(weights, activations, X, Y, l2)
        for W, _ in weights:
            W[...] = 0.0
        X[...] = 0.0
        return cost, grads

    assert _check_backprop(mutates, GENERIC).ok


# -- the zoo against the engine -------------------------------------------------------------------------------

@pytest.mark.parametrize("networks", [GENERIC, SMOOTH, SOFTMAX, SIGMOID])
def test_the_zoo_without_slips_is_the_engine(networks):
    for case in make_cases(networks, (0, 1, 2), l2s=(0.5, 0.0, 0.3)):
        c = case.inputs
        net = dp.Network.from_weights(c["weights"], c["activations"])
        cost, grads = net.backprop(c["X"], c["Y"], l2=case.l2)
        vcost, vgrads = zoo.variant_backprop(c["weights"], c["activations"], c["X"], c["Y"], case.l2)
        assert vcost == pytest.approx(cost, rel=1e-12)
        for (dW, db), (vW, vb) in zip(grads, vgrads):
            np.testing.assert_allclose(vW, dW, rtol=1e-10, atol=1e-14)
            np.testing.assert_allclose(vb, db, rtol=1e-10, atol=1e-14)


def test_every_slip_changes_something_and_slips_of_one_group_are_never_combined():
    from deltaprop.teach.exercises.checker import hypotheses

    for h in hypotheses(list(zoo.MISTAKES)):
        if len(h) == 2:
            a, b = sorted(h)
            assert zoo.MISTAKES[a].group != zoo.MISTAKES[b].group
    # each backprop slip moves the answer on the networks that show it
    for mistake, networks in SHOWN_ON.items():
        case = make_cases(networks[:1], (1,), ms=(4,), l2s=(0.5,))[0]
        c = case.inputs
        right = zoo.variant_backprop(c["weights"], c["activations"], c["X"], c["Y"], case.l2)
        wrong = zoo.variant_backprop(c["weights"], c["activations"], c["X"], c["Y"], case.l2, {mistake})
        moved = abs(right[0] - wrong[0]) > 1e-9 or any(
            np.asarray(a).shape != np.asarray(b).shape or not np.allclose(a, b)
            for pr, pw in zip(right[1], wrong[1]) for a, b in zip(pr, pw))
        assert moved, mistake


# -- the other exercises' slips ---------------------------------------------------------------------------------

def learner_forward(weights, activations, X, mistake=None):
    As, A = [], X
    L = len(weights)
    for i, ((W, b), name) in enumerate(zip(weights, activations)):
        Z = A @ W.T + (0 if mistake in ("no_bias", "bias_after_activation") else b)
        out = i == L - 1
        if out and mistake == "no_output_activation":
            A = Z
        elif out and mistake == "hidden_at_output":
            A = g(activations[0], Z)
        elif out and mistake == "softmax_columns" and name == "softmax":
            E = np.exp(Z - Z.max(axis=0))
            A = E / E.sum(axis=0)
        else:
            A = g(name, Z)
        if mistake == "bias_after_activation":
            A = A + b
        As.append(A)
    return As


@pytest.mark.parametrize("mistake", ["no_bias", "bias_after_activation", "no_output_activation", "hidden_at_output",
                                     "softmax_columns"])
def test_forward_slips_are_named(mistake):
    ex = EXERCISES["forward"]
    if mistake == "softmax_columns":
        ex = dataclasses.replace(ex, networks=tuple(SOFTMAX))
    report = run_check(ex, functools.partial(learner_forward, mistake=mistake), ex.make_cases())
    assert named(report) == {(mistake,)} and not report.unknown, report.to_text()
    assert "Z^[" in report.to_text() or "A^[" in report.to_text()


def learner_output_delta(A, Y, loss, mistake=None):
    m = A.shape[0]
    if loss == "cross_entropy":
        losses = -np.sum(Y * np.log(A)) if mistake != "cost_wrong_loss" else -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A))
        d = {"softmax_elementwise": -Y / A * A * (1 - A), "squared_error_delta": (A - Y) * A * (1 - A)}
    elif loss == "binary_cross_entropy":
        losses = -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) if mistake != "cost_wrong_loss" else -np.sum(Y * np.log(A))
        d = {"squared_error_delta": (A - Y) * A * (1 - A), "cross_entropy_delta": -Y * (1 - A)}
    else:
        losses = np.sum((A - Y) ** 2) * (1.0 if mistake == "missing_half" else 0.5)
        d = {"missing_half": 2 * (A - Y)}
    d.update({"sign": Y - A, "zero_minus_y": -Y})
    losses = -losses if mistake == "cost_sign" else losses
    D = d.get(mistake, A - Y)
    return (losses if mistake == "cost_sum" else losses / m), (D if mistake == "no_m" else D / m / (m if mistake == "m_twice" else 1))


@pytest.mark.parametrize("mistake", zoo.MISTAKES and ["sign", "zero_minus_y", "softmax_elementwise", "squared_error_delta",
                                                      "cross_entropy_delta", "missing_half", "no_m", "m_twice",
                                                      "cost_sum", "cost_sign", "cost_wrong_loss"])
def test_output_delta_slips_are_named(mistake):
    report = exercises.check(functools.partial(learner_output_delta, mistake=mistake), exercise="output_delta")
    assert report.status == "wrong"
    assert named(report) == {(mistake,)} and not report.unknown, report.to_text()


def learner_epoch(weights, activations, X, Y, lr, batch_size, l2, mistake=None):
    m = X.shape[0]
    start_weights = [(W.copy(), b.copy()) for W, b in weights]
    if mistake == "one_step":
        grads = learner_backprop(weights, activations, X, Y, l2)[1]
        return [(W - lr * dW, b - lr * db) for (W, b), (dW, db) in zip(weights, grads)]
    for start in range(0, m, batch_size):
        Xb, Yb = X[start:start + batch_size], Y[start:start + batch_size]
        if mistake == "skip_last" and len(Xb) < batch_size:
            break
        at = start_weights if mistake == "stale" else weights
        grads = learner_backprop(at, activations, Xb, Yb, l2)[1]
        f = {"batch_sum": len(Xb), "divide_by_m": len(Xb) / m}.get(mistake, 1.0)
        s = -1.0 if mistake == "uphill" else 1.0
        weights = [(W - s * lr * f * dW, b - s * lr * f * db) for (W, b), (dW, db) in zip(weights, grads)]
    return weights


@pytest.mark.parametrize("mistake", ["uphill", "batch_sum", "divide_by_m", "skip_last", "stale", "one_step"])
def test_minibatch_slips_are_named(mistake):
    report = exercises.check(functools.partial(learner_epoch, mistake=mistake), exercise="minibatch")
    assert named(report) == {(mistake,)} and not report.unknown, report.to_text()
    assert "W^[1] ← W^[1] − α dW^[1]" in report.to_text()


def test_right_forward_output_and_epoch_pass():
    assert exercises.check(learner_forward, exercise="forward").ok
    assert exercises.check(learner_output_delta, exercise="output_delta").ok
    assert exercises.check(learner_epoch, exercise="minibatch").ok


# -- every exercise: the starter fails, the answer passes ---------------------------------------------------------

@pytest.mark.parametrize("name", list(EXERCISES))
def test_every_starter_fails_and_every_solution_passes(name, tmp_path):
    starter = exercises.start(name, tmp_path / "learner")
    answer = exercises.start(name, tmp_path / "teacher", solutions=True)
    assert starter.name == answer.name == f"{name}.py"
    text = starter.read_text()
    assert f'EXERCISE = "{name}"' in text
    assert text != answer.read_text()
    report = exercises.check(starter)
    assert not report.ok and report.exit_code in (1, 2), report.to_text()
    report = exercises.check(answer)
    assert report.ok, report.to_text()
    # the answer is not in the starter: no statement of the answer's function appears in it
    import ast

    tree = ast.parse(answer.read_text())
    (func,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == EXERCISES[name].function]
    starter_code = {ast.unparse(n) for n in ast.walk(ast.parse(text)) if isinstance(n, ast.stmt)}
    computing = [ast.unparse(n) for n in ast.walk(func) if isinstance(n, (ast.Assign, ast.AugAssign))
                 and any(w in ast.unparse(n) for w in ("@", "delta", "grad", "cost", "lr *", "np.exp", "np.log"))]
    leaked = [c for c in computing if c in starter_code]
    assert not leaked, leaked


def test_hints_reveal_step_by_step():
    ex = EXERCISES["any_depth"]
    one = exercises.hint("any_depth")
    two = exercises.hint("any-depth", 2)
    assert ex.hints[0] in one and ex.hints[1] not in one and "hint 2 of" in one
    assert ex.hints[0] in two and ex.hints[1] in two
    last = exercises.hint("any_depth", len(ex.hints))
    assert "last hint" in last
    with pytest.raises(dp.ConfigError):
        exercises.hint("any_depth", 0)
    with pytest.raises(dp.ConfigError, match="did you mean"):
        exercises.hint("any_dept")


def test_the_report_renders_as_html_and_json():
    report = exercises.check(functools.partial(learner_backprop, mistake="sign"), exercise="any_depth")
    html = report._repr_html_()
    assert html.startswith('<div class="deltaprop deltaprop-check">') and "<table>" in html and "sign flipped" in html
    assert "<style>.deltaprop{" in html  # its own scoped styles: a notebook and a page look the same
    assert "<script" not in html
    page = report.to_html(standalone=True)  # what `deltaprop check --format html` writes
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page and html in page
    d = json.loads(report.to_json())
    assert d["status"] == "wrong" and d["exit_code"] == 1 and d["mistakes"][0]["keys"] == ["sign"]
    assert repr(report) == "CheckReport('any_depth', wrong: sign flipped)"
    assert "deltaprop.explain(" in report.to_text()  # advice in Python's terms from Python


def test_check_finds_the_exercise_from_the_module(tmp_path):
    path = exercises.start("one_hidden", tmp_path, solutions=True)
    ex, fn = exercises.load_learner(path)
    assert ex.name == "one_hidden" and exercises.check(fn).ok
    with pytest.raises(dp.ConfigError, match="which exercise"):
        exercises.check(lambda *a: None)


def test_start_keeps_existing_work(tmp_path):
    exercises.start("forward", tmp_path)
    with pytest.raises(dp.ConfigError, match="already exists"):
        exercises.start("forward", tmp_path)
    exercises.start("forward", tmp_path, solutions=True, force=True)
    assert exercises.check(tmp_path / "forward.py").ok


# -- the command ---------------------------------------------------------------------------------------------------

def run(*args, cwd=None):
    return cli_child.run(*args, cwd=cwd, timeout=120)


def test_command_exit_codes(tmp_path):
    listing = run("exercises", "list")
    assert listing.returncode == 0
    for name in EXERCISES:
        assert name in listing.stdout
    proc = run("exercises", "start", "any_depth", tmp_path)
    assert proc.returncode == 0 and (tmp_path / "any_depth.py").exists() and "deltaprop check" in proc.stdout
    proc = run("check", tmp_path / "any_depth.py")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "WRONG" in proc.stdout and "deltaprop exercises hint any_depth" in proc.stdout
    proc = run("exercises", "start", "any_depth", tmp_path, "--solutions")
    assert proc.returncode == 2 and "already exists" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("exercises", "start", "any_depth", tmp_path / "answers", "--solutions")
    assert proc.returncode == 0
    proc = run("check", tmp_path / "answers" / "any_depth.py")
    assert proc.returncode == 0 and "RIGHT" in proc.stdout, proc.stdout + proc.stderr
    # a mistake from the zoo, named from the command
    wrong = (tmp_path / "answers" / "any_depth.py").read_text().replace("delta = (As[-1] - Y) / m",
                                                                        "delta = (Y - As[-1]) / m")
    (tmp_path / "sign.py").write_text(wrong)
    proc = run("check", tmp_path / "sign.py")
    assert proc.returncode == 1 and "sign flipped" in proc.stdout and "deltaprop explain --layers" in proc.stdout
    # cannot run: raises, NaN, syntax error, no EXERCISE, no file
    (tmp_path / "raises.py").write_text('EXERCISE = "any_depth"\n\ndef backprop(w, a, X, Y):\n    return w[5]\n')
    proc = run("check", tmp_path / "raises.py")
    assert proc.returncode == 2 and "IndexError" in proc.stdout and "raises.py, line 4" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    (tmp_path / "nan.py").write_text('import numpy as np\nEXERCISE = "any_depth"\n\ndef backprop(w, a, X, Y):\n'
                                     '    return np.nan, [(W, b) for W, b in w]\n')
    proc = run("check", tmp_path / "nan.py")
    assert proc.returncode == 2 and "nan" in proc.stdout.lower()
    (tmp_path / "syntax.py").write_text('EXERCISE = "any_depth"\ndef backprop(:\n')
    proc = run("check", tmp_path / "syntax.py")
    assert proc.returncode == 2 and "not valid Python" in proc.stdout and "Traceback" not in proc.stderr
    (tmp_path / "exits.py").write_text('import sys\nEXERCISE = "any_depth"\nsys.exit(0)\n')
    proc = run("check", tmp_path / "exits.py")
    assert proc.returncode == 2 and "SystemExit" in proc.stdout and "exits.py, line 3" in proc.stdout
    (tmp_path / "plain.py").write_text("def backprop(w, a, X, Y):\n    return 0\n")
    proc = run("check", tmp_path / "plain.py")
    assert proc.returncode == 2 and "which exercise" in proc.stderr and "--exercise" in proc.stderr
    proc = run("check", tmp_path / "plain.py", "--exercise", "any_depth")
    assert proc.returncode == 2 and "int" in proc.stdout
    proc = run("check", tmp_path / "missing.py")
    assert proc.returncode == 2 and "no Python file" in proc.stderr
    # hints, JSON, help says the file is run
    proc = run("exercises", "hint", "any_depth", "2")
    assert proc.returncode == 0 and "hint 2 of" in proc.stdout
    proc = run("check", tmp_path / "sign.py", "--format", "json")
    assert proc.returncode == 1 and json.loads(proc.stdout)["mistakes"][0]["keys"] == ["sign"]
    proc = run("check", "--help")
    assert "runs" in proc.stdout.lower() and "your code" in proc.stdout.lower()


def test_check_stops_a_learner_that_never_returns(tmp_path):
    # An infinite loop in the learner's function (or in the module while it loads) must not hang the
    # command: --timeout stops it, exit 2, with a message that says what happened and what to do.
    (tmp_path / "loops.py").write_text('EXERCISE = "any_depth"\n\ndef backprop(w, a, X, Y):\n'
                                       '    while True:\n        pass\n')
    proc = run("check", tmp_path / "loops.py", "--timeout", "2")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "did not finish in 2 s" in proc.stderr and "--timeout" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    (tmp_path / "loads.py").write_text('EXERCISE = "any_depth"\nwhile True:\n    pass\n')
    proc = run("check", tmp_path / "loads.py", "--timeout", "1")
    assert proc.returncode == 2 and "did not finish in 1 s" in proc.stderr
    # a learner's bare except does not swallow the stop
    (tmp_path / "catches.py").write_text('EXERCISE = "any_depth"\n\ndef backprop(w, a, X, Y):\n'
                                         '    while True:\n        try:\n            while True:\n'
                                         '                pass\n        except BaseException:\n            pass\n')
    proc = run("check", tmp_path / "catches.py", "--timeout", "1")
    assert proc.returncode == 2 and "did not finish" in proc.stderr
    # a right answer is unaffected, and the limit must be a positive number of seconds
    exercises.start("any_depth", tmp_path / "answers", solutions=True)
    proc = run("check", tmp_path / "answers" / "any_depth.py", "--timeout", "60")
    assert proc.returncode == 0 and "RIGHT" in proc.stdout
    proc = run("check", tmp_path / "answers" / "any_depth.py", "--timeout", "0")
    assert proc.returncode == 2 and "--timeout" in proc.stderr


def test_check_from_python_stops_a_function_that_never_returns(tmp_path):
    # In a notebook, exercises.check(fn) must not hang on a loop that never ends: the time limit
    # (60 s by default, timeout= to change) stops the learner's code and the report says so.
    import signal
    import time

    namespace = {"EXERCISE": "any_depth"}
    exec("def backprop(w, a, X, Y):\n    while True:\n        pass\n", namespace)
    started = time.monotonic()
    report = exercises.check(namespace["backprop"], timeout=1)
    assert time.monotonic() - started < 10
    assert report.exit_code == 2 and not report.ok
    assert "did not finish in 1 s" in report.to_text() and "timeout=" in report.to_text()
    assert signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None)  # the timer is put back
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    (tmp_path / "loads.py").write_text('EXERCISE = "any_depth"\nwhile True:\n    pass\n')
    report = exercises.check(tmp_path / "loads.py", timeout=1)
    assert report.exit_code == 2 and "did not finish in 1 s" in report.to_text()
    with pytest.raises(dp.ConfigError, match="timeout"):
        exercises.check(namespace["backprop"], timeout=0)
    exercises.start("any_depth", tmp_path / "answers", solutions=True)
    assert exercises.check(tmp_path / "answers" / "any_depth.py", timeout=60).ok


def test_check_reports_a_learner_that_ends_the_process(tmp_path):
    (tmp_path / "quits.py").write_text('import os\nEXERCISE = "any_depth"\n\ndef backprop(w, a, X, Y):\n'
                                       '    os._exit(0)\n')
    proc = run("check", tmp_path / "quits.py")
    assert proc.returncode == 2 and "ended the process" in proc.stderr, proc.stdout + proc.stderr
