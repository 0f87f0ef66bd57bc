"""Run a learner's function on small random networks and compare every array with deltaprop's own.

For each case (a network shape, a seed, a batch of m rows, a λ) the checker builds a float64
network with :meth:`deltaprop.Network.from_sizes`, computes the right answer with the engine
(:meth:`deltaprop.Network.backprop`), calls the learner's function on copies of the inputs, and compares
each item (the cost, every layer's dW and db, ...) by the relative error ``‖a − t‖ / max(‖a‖ + ‖t‖, 1e-10)``.

An item is **right** when that error is at most 1e-6 on every case. When it is not, the mistake zoo
(:mod:`.zoo`) computes the variants of the right answer, one slip at a time and then two at a time,
and a slip is **named** only if the learner's numbers equal its variant to 1e-6 on every case as well.
Anything else is "wrong, not a known mistake", with the numbers: a wrong name is worse than none.
"""

from __future__ import annotations

import copy
import itertools
import os
import traceback
from dataclasses import dataclass, field

import numpy as np

from deltaprop.activations import get_activation
from deltaprop.losses import get_loss, loss_for_output
from deltaprop.model import Network

from . import zoo

__all__ = ["TOLERANCE", "Case", "LearnerError", "make_cases", "rel_error", "run_check"]

TOLERANCE = 1e-6       # an item is right (or equals a variant) when its relative error is at most this
DISTINCT = 1e-3        # a variant names a mistake only where it differs from the right answer by more than this
_PKG = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class LearnerError(Exception):
    """The learner's function cannot be checked: it raised, or returned something of the wrong kind."""

    def __init__(self, message: str, where: str = "", line: str = ""):
        super().__init__(message)
        self.message, self.where, self.line = message, where, line


def rel_error(a, t) -> float:
    """‖a − t‖ / max(‖a‖ + ‖t‖, 1e-10); ∞ when the shapes differ."""
    a, t = np.asarray(a, np.float64), np.asarray(t, np.float64)
    if a.shape != t.shape:
        return float("inf")
    return float(np.linalg.norm(a - t) / max(np.linalg.norm(a) + np.linalg.norm(t), 1e-10))


def ratio(a, t) -> float:
    """The best scalar c with a ≈ c·t: ⟨a, t⟩ / ⟨t, t⟩ (NaN when the shapes differ or t is 0)."""
    a, t = np.asarray(a, np.float64), np.asarray(t, np.float64)
    if a.shape != t.shape or not np.any(t):
        return float("nan")
    return float(np.vdot(a, t) / np.vdot(t, t))


# -- cases --------------------------------------------------------------------------------------------

@dataclass
class Case:
    """One run of the learner's function: the network (sizes, activations), seed, m, λ, and what the
    exercise needs (``inputs``); ``truth`` maps each item to the engine's answer."""

    sizes: list
    activations: list
    seed: int
    m: int
    l2: float = 0.0
    inputs: dict = field(default_factory=dict)
    truth: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def loss(self) -> str:
        return loss_for_output(self.activations[-1])

    @property
    def network(self) -> str:
        """'3-4-2 relu/softmax' (or 'softmax outputs' for a case without a network)."""
        if len(self.sizes) == 1:
            return f"{self.activations[-1]} outputs"
        hidden = sorted(set(self.activations[:-1]))
        return f"{'-'.join(map(str, self.sizes))} " + (",".join(hidden) + "/" if hidden else "") + self.activations[-1]

    @property
    def label(self) -> str:
        hidden = sorted(set(self.activations[:-1]))
        acts = (",".join(hidden) + "/" if hidden else "") + self.activations[-1]
        text = f"{'-'.join(map(str, self.sizes))} {acts}, seed {self.seed}, m = {self.m}"
        if self.l2:
            text += f", λ = {self.l2:g}"
        if "batch_size" in self.extra:
            text += f", |B| = {self.extra['batch_size']}, α = {self.extra['lr']:g}"
        return text


def _targets(rng, output: str, m: int, k: int):
    if output == "softmax":
        Y = np.zeros((m, k))
        Y[np.arange(m), rng.integers(0, k, size=m)] = 1.0
        return Y
    if output == "sigmoid":
        return rng.integers(0, 2, size=(m, k)).astype(np.float64)
    return rng.normal(size=(m, k))


def network_case(sizes, hidden, output, seed: int, m: int, l2: float = 0.0) -> tuple[Case, Network]:
    """A float64 network from :meth:`Network.from_sizes` (biases drawn too, so that a slip with b shows),
    a batch X (m, n_0) of standard normal rows and targets Y (m, n_L) that suit its output."""
    net = Network.from_sizes(list(sizes), hidden=hidden, output=output, seed=seed, dtype="float64")
    rng = np.random.default_rng(1000 + seed)
    net.set_weights([(W, rng.normal(0.0, 0.5, size=b.shape)) for W, b in net.get_weights()])
    X = rng.normal(size=(m, sizes[0]))
    Y = _targets(rng, output, m, sizes[-1])
    case = Case(list(sizes), net.activations, seed, m, l2)
    case.inputs = {"weights": net.get_weights(), "activations": list(net.activations), "X": X, "Y": Y, "l2": l2}
    return case, net


def make_cases(networks, seeds=(0, 1, 2), ms=(1, 4, 7), l2s=(0.0,)) -> list[Case]:
    """Cases for the backprop exercises: every network ``(sizes, hidden, output)`` with every seed; the
    i-th seed gets batch size ``ms[i]`` and λ ``l2s[i % len(l2s)]`` (one example and many)."""
    cases = []
    for sizes, hidden, output in networks:
        for i, seed in enumerate(seeds):
            case, net = network_case(sizes, hidden, output, seed, ms[i % len(ms)], l2s[i % len(l2s)])
            cost, grads = net.backprop(case.inputs["X"], case.inputs["Y"], l2=case.l2)
            case.truth = gradient_items(cost, grads)
            cases.append(case)
    return cases


def gradient_items(cost, grads) -> dict:
    items = {("cost",): float(cost)}
    for l, (dW, db) in enumerate(grads, 1):
        items[("dW", l)] = np.asarray(dW, np.float64)
        items[("db", l)] = np.asarray(db, np.float64)
    return items


def item_label(item) -> str:
    kind = item[0]
    if kind == "cost":
        return "cost" if len(item) == 1 else f"cost ({item[1]})"
    if kind == "delta":
        return f"δ ({item[1]})"
    if kind in ("dW", "db", "W", "b", "A"):
        return f"{kind}^[{item[1]}]"
    return " ".join(map(str, item))


# -- calling the learner --------------------------------------------------------------------------------

def _frame_in_learner(tb) -> tuple[str, str]:
    """(where, source line) of the last traceback frame outside deltaprop and NumPy."""
    frames = traceback.extract_tb(tb)
    chosen = None
    for fr in frames:
        path = os.path.abspath(fr.filename) if not fr.filename.startswith("<") else fr.filename
        if path.startswith(_PKG) or f"{os.sep}numpy{os.sep}" in path:
            continue
        chosen = fr
    if chosen is None:
        return "", ""
    name = chosen.filename if chosen.filename.startswith("<") else os.path.basename(chosen.filename)
    return f"{name}, line {chosen.lineno}, in {chosen.name}", (chosen.line or "").strip()


def call_learner(fn, case: Case, *args):
    """fn(*args) with the exception, if any, turned into a LearnerError that says where (no traceback)."""
    try:
        with np.errstate(all="ignore"):
            return fn(*copy.deepcopy(args))
    except (Exception, SystemExit) as err:  # noqa: BLE001 - the learner's code may raise anything: report it, never crash
        where, line = _frame_in_learner(err.__traceback__)
        text = f"{type(err).__name__}: {err}".rstrip(": ")
        hint = ""
        if isinstance(err, NotImplementedError):
            hint = " (a part of the starter is not written yet)"
        elif isinstance(err, ValueError) and ("matmul" in str(err) or "broadcast" in str(err)
                                              or "shapes" in str(err) or "aligned" in str(err)):
            hint = (" (two arrays whose shapes do not fit: write the shape of each symbol beside it; "
                    "`deltaprop explain` prints them for this network)")
        raise LearnerError(f"your function raised {text}{hint}, on the case {case.label}", where, line) from None


def _float64(value, what: str, case: Case, expected: str) -> np.ndarray:
    """value as a float64 array; LearnerError when it is None (a missing return) or not ``expected``."""
    if value is None:
        raise LearnerError(f"{what} is None, on the case {case.label}: is a `return` missing, or a TODO left?")
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise LearnerError(f"{what} is a {type(value).__name__}, not {expected}, on the case {case.label}") from None


def as_array(value, what: str, shape, case: Case, transposable: bool = False) -> np.ndarray:
    """value as a finite float64 array of ``shape`` (or its transpose, if ``transposable``); else LearnerError."""
    a = _float64(value, what, case, "an array of numbers")
    shape = tuple(shape)
    if a.shape != shape and not (transposable and a.shape == shape[::-1]):
        raise LearnerError(f"{what} has shape {a.shape}; it must have shape {shape}, on the case {case.label}")
    if not np.all(np.isfinite(a)):
        raise LearnerError(f"{what} contains NaN or infinity, on the case {case.label}: look for a log of 0, "
                           "a division by 0 or an exp that overflows")
    return a


def as_cost(value, what: str, case: Case) -> float:
    """value as one finite float (a cost); else LearnerError."""
    a = _float64(value, what, case, "a number")
    if a.size != 1:
        raise LearnerError(f"{what} has shape {a.shape}; it must be one number, on the case {case.label}")
    c = float(a.reshape(-1)[0])
    if not np.isfinite(c):
        raise LearnerError(f"{what} is {c}, on the case {case.label}: look for a log of 0 or a division by 0")
    return c


def unpack(value, n: int, what: str, case: Case, form: str, returned: bool = False) -> list:
    """value as a sequence of n entries; else LearnerError naming the expected form. ``returned``: value is
    what the learner's function returned (not a part of it), so None means the function returned nothing."""
    if value is None:
        if returned:
            raise LearnerError(f"your function returned None, on the case {case.label}: return {form}")
        raise LearnerError(f"{what} is None, on the case {case.label}: return {form}")
    if isinstance(value, np.ndarray) or not isinstance(value, (tuple, list)):
        raise LearnerError(f"{what} is a {type(value).__name__}; return {form}, on the case {case.label}")
    if len(value) != n:
        entries = "entry" if len(value) == 1 else "entries"
        raise LearnerError(f"{what} has {len(value)} {entries}, {n} expected: return {form}, on the case {case.label}")
    return list(value)


def grads_items(cost, grads, case: Case, form: str) -> dict:
    """Items from a learner's (cost, [(dW, db), ...]) checked against the case's shapes."""
    L = len(case.inputs["weights"])
    items = {("cost",): as_cost(cost, "the cost", case)}
    grads = unpack(grads, L, "the list of gradients", case, form)
    for l, (pair, (W, b)) in enumerate(zip(grads, case.inputs["weights"]), 1):
        dW, db = unpack(pair, 2, f"entry {l} of the gradients", case, "(dW, db) for every layer")
        items[("dW", l)] = as_array(dW, f"dW of layer {l}", W.shape, case, transposable=True)
        items[("db", l)] = as_array(db, f"db of layer {l}", b.shape, case)
    return items


# -- matching ---------------------------------------------------------------------------------------------

@dataclass
class ItemResult:
    """One item over every case: right, named (``mistakes``: the keys of the slips, one or two, that
    reproduce it; ``alternatives``: other sets that reproduce it as well), or unknown."""

    item: tuple
    verdict: str                        # "right", "named", "unknown"
    error: float                        # worst relative error against deltaprop's answer
    ratio: float                        # best scalar ratio on the worst case
    case: int                           # index of the worst case
    yours_norm: float = 0.0
    true_norm: float = 0.0
    mistakes: tuple = ()
    alternatives: list = field(default_factory=list)
    variant_error: float = float("nan")  # worst relative error against the matching variant
    zeros: bool = False
    group: str = ""                      # the network the item belongs to, when the exercise runs several

    @property
    def label(self) -> str:
        return item_label(self.item)

    @property
    def full_label(self) -> str:
        return f"{self.label} of {self.group}" if self.group else self.label


def _compare(learner: list[dict], truth: list[dict], item) -> ItemResult:
    errs = [rel_error(L[item], T[item]) for L, T in zip(learner, truth)]
    worst = int(np.argmax(errs))
    a, t = learner[worst][item], truth[worst][item]
    zeros = all(not np.any(L[item]) for L in learner) and any(np.any(T[item]) for T in truth)
    verdict = "right" if max(errs) <= TOLERANCE else "unknown"
    return ItemResult(item, verdict, max(errs), ratio(a, t), worst, float(np.linalg.norm(np.asarray(a, float))),
                      float(np.linalg.norm(np.asarray(t, float))), zeros=zeros)


def _matches(learner, variants, truth, item) -> tuple[bool, float]:
    """(learner equals the variant on every case and the variant differs from the truth somewhere, worst error)."""
    errs = [rel_error(L[item], V[item]) for L, V in zip(learner, variants)]
    if max(errs) > TOLERANCE:
        return False, max(errs)
    differs = max(rel_error(V[item], T[item]) for V, T in zip(variants, truth))
    return differs > DISTINCT, max(errs)


def hypotheses(flags) -> list[frozenset]:
    """Every single flag, then every pair of flags from different groups."""
    singles = [frozenset([f]) for f in flags]
    pairs = [frozenset(p) for p in itertools.combinations(flags, 2)
             if zoo.MISTAKES[p[0]].group != zoo.MISTAKES[p[1]].group]
    return singles + pairs


def match(learner: list[dict], truth: list[dict], flags, variant) -> tuple[list[ItemResult], list[frozenset]]:
    """Per-item results, and the hypotheses that explain every item at once (the preferred story).

    ``variant(case_index, hypothesis)`` returns the items of that case computed with those slips."""
    items = list(truth[0])
    results = [_compare(learner, truth, it) for it in items]
    wrong = [r for r in results if r.verdict != "right"]
    if not wrong:
        return results, []
    cache: dict = {}

    def variants(h):
        if h not in cache:
            cache[h] = [variant(i, h) for i in range(len(truth))]
        return cache[h]

    hyps = hypotheses(list(flags))
    # 1. one story for every item: the smallest set of slips that reproduces all of them
    for size in (1, 2):
        stories = []
        for h in (h for h in hyps if len(h) == size):
            V = variants(h)
            if all(rel_error(L[it], W[it]) <= TOLERANCE for L, W in zip(learner, V) for it in items) and \
                    any(_matches(learner, V, truth, r.item)[0] for r in wrong):
                stories.append(h)
        if stories:
            for r in wrong:
                found = [h for h in stories if _matches(learner, variants(h), truth, r.item)[0]]
                _name(r, found, learner, variants)
            return results, stories
    # 2. item by item
    for r in wrong:
        for size in (1, 2):
            found = []
            for h in (h for h in hyps if len(h) == size):
                if _matches(learner, variants(h), truth, r.item)[0]:
                    found.append(h)
            if found:
                _name(r, found, learner, variants)
                break
    return results, []


def _name(result: ItemResult, found: list, learner, variants) -> None:
    if not found:
        return
    result.verdict = "named"
    result.mistakes = tuple(sorted(found[0], key=list(zoo.MISTAKES).index))
    result.alternatives = [tuple(sorted(h, key=list(zoo.MISTAKES).index)) for h in found[1:]]
    result.variant_error = max(rel_error(L[result.item], V[result.item]) for L, V in zip(learner, variants(found[0])))


# -- running a whole check ----------------------------------------------------------------------------------

def run_check(exercise, fn, cases=None):
    """Check ``fn`` against ``exercise`` (an :class:`~.catalog.Exercise`) on its cases (or ``cases``);
    returns a :class:`~.report.CheckReport`."""
    from .report import CheckReport

    cases = exercise.make_cases() if cases is None else cases
    report = CheckReport(exercise=exercise, cases=cases)
    learner = []
    try:
        for case in cases:
            learner.append(exercise.call(fn, case))
    except LearnerError as err:
        report.status = "error"
        report.error = err
        return report
    report.items, report.stories = [], []
    # cases with the same items are matched together (the output-delta exercise has one group per loss)
    groups: dict = {}
    for i, case in enumerate(cases):
        groups.setdefault(tuple(case.truth), []).append(i)
    for idx in groups.values():
        sub = [cases[i] for i in idx]
        flags = [f for f in exercise.flags if any(_applies(f, c) for c in sub)]
        results, stories = match([learner[i] for i in idx], [c.truth for c in sub], flags,
                                 lambda i, h, sub=sub: exercise.variant(sub[i], h))
        for r in results:
            r.case = idx[r.case]
            r.group = sub[0].network if len(groups) > 1 and len(sub[0].sizes) > 1 else ""
        report.items.extend(results)
        report.stories.extend(s for s in stories if s not in report.stories)
    report.status = "right" if all(r.verdict == "right" for r in report.items) else "wrong"
    return report


def _applies(flag: str, case: Case) -> bool:
    """Whether a slip can show at all on this case (L2 slips need λ > 0, say)."""
    if flag in ("no_l2", "l2_no_m", "l2_no_half", "bias_reg"):
        return case.l2 > 0
    return True


def truth_of_output(Z, A, Y, output: str) -> dict:
    """The engine's (1/m) Σ loss_i and δ_L = (A − Y)/m for one output layer."""
    loss = get_loss(loss_for_output(output))
    m = A.shape[0]
    return float(loss.value(Z, A, Y) / m), loss.delta(A, Y, 1.0 / m)


def output_case(output: str, k: int, seed: int, m: int) -> Case:
    """Logits Z (m, k) with a spread that keeps the outputs away from 0 and 1, A = g(Z), targets Y."""
    rng = np.random.default_rng(2000 + seed)
    Z = rng.normal(0.0, 1.5, size=(m, k))
    A = get_activation(output).forward(Z.copy())
    Y = _targets(rng, output, m, k)
    loss = loss_for_output(output)
    case = Case([k], [output], seed, m)
    case.inputs = {"Z": Z, "A": A, "Y": Y, "loss": loss}
    cost, delta = truth_of_output(Z, A, Y, output)
    case.truth = {("cost", loss): cost, ("delta", loss): delta}
    return case
