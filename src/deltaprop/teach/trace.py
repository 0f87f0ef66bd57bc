"""One small batch through a network, stage by stage, with the engine's own numbers.

    >>> import deltaprop as dp
    >>> t = dp.trace("note001", examples=2)                    # a preset of the notes' networks
    >>> t = dp.trace(net, X[:3], y[:3], l2=0.1, per_example=True)
    >>> print(t.to_text())                                     # or to_markdown(), to_latex(), to_json()

The trace never re-implements the mathematics. It runs :meth:`Network.backprop` once on a float64
copy of the network and then *reads* what the engine left behind: every layer's forward cache
(``layer.A_prev``, ``layer.Z``, ``layer.A``), every layer's error ``layer.delta`` (set by
``Network.backward``) and the gradients ``backprop`` returned. Beside each analytic gradient it puts
centered finite differences of ``Network.cost`` (:func:`deltaprop.gradcheck.numerical_gradient`)
and their relative error. With ``per_example=True`` it adds note 000's loop from
:func:`deltaprop.reference.per_example_backprop` (``Δ += δ āᵀ`` example by example) and shows that
it ends where the vectorized pass did.

The float64 copy keeps your network's caches and dtype untouched and makes finite differences
meaningful (in float32 they would carry rounding noise of about 1e-3).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from deltaprop.errors import ConfigError, unknown_name
from deltaprop.gradcheck import TOLERANCE, H, failure_hint, near_kink, numerical_gradient, pass_rule, passes
from deltaprop.losses import l2_cost
from deltaprop.model import Network
from deltaprop.reference import per_example_backprop, to_theta
from deltaprop.teach.document import Doc, Renderable, fmt_number, number_tex, shape_text
from deltaprop.teach.explain import ACT_TEX
from deltaprop.teach.pictures import add_picture
from deltaprop.validation import check_nonnegative_float, check_number, check_X

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["trace", "trace_preset", "Trace", "PRESETS", "TRACE_NOTATIONS", "MAX_DIGITS", "random_batch"]

# float64 carries 17 significant digits; a trace printed with more shows rounding noise as if it were data.
MAX_DIGITS = 17

TRACE_NOTATIONS = ("bracket", "columns")


def _tex_num(x: float, digits: int = 4) -> str:
    t = number_tex(x, digits)
    return f"({t})" if x < 0 else t


def _val_tex(x: float, digits: int = 4) -> str:
    return number_tex(x, digits)


def _sum_tex(products, digits: int) -> str:
    """'(a)(b) + (c)(d) + ...' for [(a, b), ...], long sums shortened to their first and last terms."""
    terms = [f"{_tex_num(a, digits)} \\cdot {_tex_num(b, digits)}" for a, b in products]
    if len(terms) > 5:
        terms = terms[:3] + ["\\cdots"] + terms[-1:]
    return " + ".join(terms)


def _pick(mask: np.ndarray):
    """The first (row, column) where mask holds, else (0, 0)."""
    idx = np.argwhere(mask)
    return tuple(int(v) for v in idx[0]) if idx.size else (0, 0)


# -- presets: the notes' own networks -------------------------------------------------------------------

def _xor_batch(m, rng):
    table = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    X = table[np.arange(m) % 4] if m <= 4 else np.vstack([table, rng.integers(0, 2, size=(m - 4, 2))]).astype(float)
    y = (X[:, 0] != X[:, 1]).astype(np.int64)
    return X, y


def _normal_batch(n_x, k):
    def make(m, rng):
        X = rng.normal(size=(m, n_x))
        y = rng.integers(0, k, size=m)
        return X, y
    return make


def _digits_like_batch(m, rng):
    # 8×8 images with gray levels 0..16 scaled to [0, 1], as the digits data set: random, so nothing
    # is downloaded and scikit-learn is not needed.
    X = rng.integers(0, 17, size=(m, 64)).astype(np.float64) / 16.0
    y = rng.integers(0, 10, size=m)
    return X, y


PRESETS = {
    "note000": {"sizes": [2, 2, 2, 1], "hidden": "sigmoid", "output": "sigmoid", "init": "uniform",
                "data": _xor_batch,
                "about": "note 000's network: 2 inputs, two hidden layers of 2 sigmoid units, 1 sigmoid output "
                         "with the logistic (binary cross-entropy) cost; the XOR table as data"},
    "note001": {"sizes": [3, 4, 3, 2], "hidden": "relu", "output": "softmax", "init": None,
                "data": _normal_batch(3, 2),
                "about": "note 001's network: 3 inputs, hidden layers of 4 and 3 ReLU units, 2 outputs; "
                         "deltaprop pairs cross-entropy with a softmax output (note 001's ReLU output is not a "
                         "probability model)"},
    "note002": {"sizes": [4, 5, 3], "hidden": "sigmoid", "output": "softmax", "init": None,
                "data": _normal_batch(4, 3),
                "about": "note 002's network: logistic (sigmoid) hidden units and a softmax output with "
                         "cross-entropy; 4 inputs, 5 hidden units, 3 classes"},
    "note003": {"sizes": [64, 10, 10], "hidden": "relu", "output": "softmax", "init": None,
                "data": _digits_like_batch,
                "about": "note 003's two-layer digit classifier on a digits-sized input: 64 pixels, 10 ReLU "
                         "units, 10 softmax outputs (random 8×8 images stand in for the digits)"},
}


def preset_network(name: str, seed: int = 0) -> Network:
    """The float64 network of a preset (``PRESETS``), weights drawn from ``seed``."""
    if name not in PRESETS:
        from deltaprop.errors import unknown_name

        raise unknown_name("preset", name, list(PRESETS))
    p = PRESETS[name]
    return Network.from_sizes(p["sizes"], hidden=p["hidden"], output=p["output"], init=p["init"], seed=seed,
                              dtype="float64")


def random_batch(net: Network, m: int, seed: int = 0):
    """(X, y): m rows of standard normal inputs and random targets that suit the network's loss."""
    rng = np.random.default_rng(seed + 1)
    X = rng.normal(size=(m, net.sizes[0]))
    k = net.sizes[-1]
    if net.loss.name == "cross_entropy":
        y = rng.integers(0, k, size=m)
    elif net.loss.name == "binary_cross_entropy":
        y = rng.integers(0, 2, size=(m, k))
    elif net.loss.name == "poisson":
        y = rng.poisson(1.0, size=(m, k)).astype(float)  # counts
    else:
        y = rng.normal(size=(m, k))
    return X, y


def trace_preset(name: str, examples: int = 1, l2: float = 0.0, per_example: bool = False, seed: int = 0,
                 digits: int = 4, notation: str = "bracket") -> Trace:
    """The trace of a preset network on ``examples`` rows of its data."""
    net = preset_network(name, seed)
    X, y = PRESETS[name]["data"](int(examples), np.random.default_rng(seed + 1))
    t = trace(net, X, y, l2=l2, per_example=per_example, digits=digits, notation=notation)
    t.preset = name
    return t


# -- the trace -------------------------------------------------------------------------------------------

def trace(net: Network | str, X: ArrayLike | None = None, Y: ArrayLike | None = None, l2: float = 0.0,
          per_example: bool = False, h: float = H, digits: int = 4, examples: int = 1, seed: int = 0,
          notation: str = "bracket") -> Trace:
    """Run one batch (X, Y) through ``net`` and record every stage (see the module docstring).

    ``net`` may also be a preset name (``"note000"``, ``"note001"``, ``"note002"``, ``"note003"``);
    then X and Y come from the preset with ``examples`` rows. ``h`` is the finite-difference step,
    ``digits`` the significant digits the renderings print, ``notation`` how they lay the matrices out:
    ``"bracket"`` (rows are examples, as deltaprop stores them) or ``"columns"`` (notes 001 and 003).
    """
    if isinstance(net, str):
        return trace_preset(net, examples=examples, l2=l2, per_example=per_example, seed=seed, digits=digits,
                            notation=notation)
    if X is None or Y is None:
        raise ConfigError("trace needs a batch X, Y (or a preset name instead of a network)",
                          "for example deltaprop.trace(net, X[:2], y[:2]) or deltaprop.trace('note001')")
    l2 = check_nonnegative_float(l2, "l2")
    digits = check_number(digits, "digits", 1, MAX_DIGITS, integer=True,
                          hint=f"float64 holds {MAX_DIGITS} significant digits; more would print rounding noise")
    net64 = net.astype("float64")
    X64 = check_X(X, net64.sizes[0], np.float64)
    Y64 = net64.prepare_targets(Y)
    m = X64.shape[0]
    cost, grads = net64.backprop(X64, Y64, l2=l2)
    # Read what the engine cached: copies, because the buffers are reused by the next pass.
    layers = []
    for i, layer in enumerate(net64.layers):
        rec = {"l": i + 1, "activation": layer.activation.name, "W": layer.W.copy(), "b": layer.b.copy(),
               "A_prev": layer.A_prev.copy(), "Z": layer.Z.copy(), "A": layer.A.copy(),
               "delta": layer.delta.copy(), "dW": grads[i][0], "db": grads[i][1]}
        if i < len(net64.layers) - 1:
            rec["g_prime"] = np.array(layer.activation.derivative(layer.Z, layer.A), dtype=np.float64)
        layers.append(rec)
    reg = l2_cost([layer.W for layer in net64.layers], l2, m)
    out = net64.layers[-1]
    loss_i = [net64.loss.value(out.Z[i:i + 1], out.A[i:i + 1], Y64[i:i + 1]) for i in range(m)]
    # Finite differences of J on a second copy, so the traced caches stay as backprop left them.
    probe = net64.copy()

    def J():
        return probe.cost(X64, Y64, l2=l2)

    for rec, player in zip(layers, probe.layers):
        for p, theta in (("W", player.W), ("b", player.b)):
            rec[f"d{p}_numeric"] = numerical_gradient(J, theta, h)
            # gradcheck's pass rule: relative error, or a difference below the rounding noise.
            ok, err, diff, by_floor = passes(rec[f"d{p}"], rec[f"d{p}_numeric"], cost, h)
            rec[f"d{p}_error"], rec[f"d{p}_ok"], rec[f"d{p}_abs_error"], rec[f"d{p}_by_floor"] = err, ok, diff, by_floor
    kinks = near_kink(net64, h)
    pe = None
    if per_example:
        c_loop, g_loop, steps = per_example_backprop(net64, X64, Y64, l2=l2, record=True)
        D_loop = [to_theta(dW, db) for dW, db in g_loop]
        D_vec = [to_theta(dW, db) for dW, db in grads]
        pe = {"Delta": steps, "D_loop": D_loop, "D_vec": D_vec, "cost_loop": c_loop,
              "max_abs_difference": max(float(np.max(np.abs(a - b))) for a, b in zip(D_loop, D_vec)),
              "Theta": [to_theta(layer.W, layer.b) for layer in net64.layers]}
    return Trace(net64, X64, Y64, l2=l2, cost=float(cost), data_cost=float(cost) - reg, reg_cost=reg, loss_i=loss_i,
                 layers=layers, per_example=pe, h=h, digits=digits, original_dtype=str(net.dtype),
                 notation=_check_notation(notation), hint=failure_hint(net64, kinks, h=h))


def _check_notation(notation: str) -> str:
    key = str(notation).lower()
    if key not in TRACE_NOTATIONS:
        raise unknown_name("notation", notation, list(TRACE_NOTATIONS))
    return key


class Trace(Renderable):
    """Everything one batch did inside the network. ``layers[l-1]`` holds, for layer l: ``W``, ``b``,
    ``A_prev``, ``Z``, ``A``, ``delta``, ``dW``, ``db``, ``g_prime`` (hidden layers), and the finite
    differences ``dW_numeric``, ``db_numeric`` with relative errors ``dW_error``, ``db_error``."""

    def __init__(self, net: Network, X: np.ndarray, Y: np.ndarray, *, l2: float, cost: float,
                 data_cost: float, reg_cost: float, loss_i: list, layers: list, per_example: dict | None,
                 h: float, digits: int, original_dtype: str = "float64", notation: str = "bracket",
                 hint: str = "", preset: str | None = None) -> None:
        """The float64 network and batch (X, Y) that ran, and by name: ``l2``; ``cost`` J with its
        ``data_cost`` and ``reg_cost`` parts and each example's loss ``loss_i``; the layer records
        ``layers``; note 000's loop ``per_example`` (or None); the finite-difference step ``h``; the
        ``digits`` printed; the caller's dtype, the notation, the hint of a failed check and the preset."""
        self.net, self.X, self.Y, self.l2 = net, X, Y, l2
        self.cost, self.data_cost, self.reg_cost, self.loss_i = cost, data_cost, reg_cost, loss_i
        self.layers, self.per_example, self.h, self.digits = layers, per_example, h, digits
        self.original_dtype = original_dtype
        self.preset = preset
        self.notation = notation
        self.hint = hint
        self.tolerance = TOLERANCE

    @property
    def ok(self) -> bool:
        """Every dW and db passes gradcheck's rule (:func:`deltaprop.gradcheck.passes`)."""
        return all(r["dW_ok"] and r["db_ok"] for r in self.layers)

    @property
    def m(self) -> int:
        return self.X.shape[0]

    @property
    def max_error(self) -> float:
        """The largest relative error between an analytic gradient and its finite differences."""
        return max(max(r["dW_error"], r["db_error"]) for r in self.layers)

    # -- data ---------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        def a(x):
            return np.asarray(x, dtype=float).tolist()

        net = self.net
        L = len(self.layers)
        d = {
            "kind": "trace",
            "preset": self.preset,
            "notation": self.notation,
            "network": {"sizes": net.sizes, "activations": net.activations, "loss": net.loss.name},
            "m": self.m, "l2": self.l2, "h": self.h,
            "input": {"X": a(self.X), "Y": a(self.Y),
                      "weights": [{"layer": r["l"], "W": a(r["W"]), "b": a(r["b"])} for r in self.layers]},
            "forward": [{"layer": r["l"], "activation": r["activation"], "Z": a(r["Z"]), "A": a(r["A"])}
                        for r in self.layers],
            "cost": {"J": self.cost, "data": self.data_cost, "l2": self.reg_cost, "loss_per_example": list(self.loss_i)},
            "output_error": {"layer": L, "delta": a(self.layers[-1]["delta"])},
            "backward": [{"layer": r["l"], "delta": a(r["delta"]), "dW": a(r["dW"]), "db": a(r["db"]),
                          "g_prime": a(r["g_prime"]) if "g_prime" in r else None,
                          "dW_numeric": a(r["dW_numeric"]), "db_numeric": a(r["db_numeric"]),
                          "dW_relative_error": r["dW_error"], "db_relative_error": r["db_error"]}
                         for r in reversed(self.layers)],
            "gradient_check": {"max_relative_error": self.max_error, "ok": self.ok, "tolerance": self.tolerance,
                               "rule": pass_rule(self.tolerance, self.h), "hint": "" if self.ok else self.hint,
                               "rows": self._check_rows()},
        }
        if self.per_example is not None:
            pe = self.per_example
            d["per_example"] = {
                "Delta_after_example": [[a(D) for D in step] for step in pe["Delta"]],
                "D_loop": [a(D) for D in pe["D_loop"]], "D_vectorized": [a(D) for D in pe["D_vec"]],
                "max_abs_difference": pe["max_abs_difference"], "cost_loop": pe["cost_loop"],
            }
        return d

    def _check_rows(self):
        rows = []
        for r in self.layers:
            for p in ("W", "b"):
                rows.append({"layer": r["l"], "param": p, "shape": list(r["d" + p].shape),
                             "analytic_norm": float(np.linalg.norm(r["d" + p])),
                             "numeric_norm": float(np.linalg.norm(r[f"d{p}_numeric"])),
                             "relative_error": r[f"d{p}_error"], "abs_error": r[f"d{p}_abs_error"],
                             "ok": r[f"d{p}_ok"], "passed_by_noise_floor": r[f"d{p}_by_floor"]})
        return rows

    # -- the document ------------------------------------------------------------------------------------
    def document(self) -> Doc:
        """The trace as a document, in ``self.notation``: ``bracket`` (rows are examples, deltaprop's own
        arrays) or ``columns`` (notes 001 and 003: every matrix transposed, ``dZ = m δᵀ``). The gradient
        check and note 000's loop do not depend on how the matrices are laid out."""
        steps = ((self._columns_opening, self._columns_batch, self._columns_forward, self._columns_cost,
                  self._columns_output_error, partial(self._backward_pass, layer=self._columns_layer))
                 if self.notation == "columns" else
                 (self._rows_opening, self._rows_batch, self._rows_forward, self._rows_cost,
                  self._rows_output_error, partial(self._backward_pass, layer=self._rows_layer)))
        doc = Doc(digits=self.digits)
        for step in steps + (self._gradient_check, self._per_example_loop):
            step(doc)
        return doc

    def _title(self, doc: Doc, layout: str = "") -> None:
        """The heading (the preset's note or 'a', the sizes, ``layout``) and the preset's description."""
        name = f"note {self.preset[4:]}'s" if self.preset else "a"
        doc.h(1, f"One step of backpropagation, traced: {name} {'-'.join(map(str, self.net.sizes))} network{layout}")
        if self.preset:
            about = PRESETS[self.preset]["about"]
            doc.p(about[0].upper() + about[1:] + ".")

    def _beside_numeric(self, doc: Doc, r: dict, p: str, tex: str, column: bool = False) -> None:
        """Layer record ``r``'s gradient of ``p`` ("W" or "b") beside its finite differences (as columns
        with ``column``), with the relative error between the two."""
        analytic, numeric = r[f"d{p}"], r[f"d{p}_numeric"]
        if column:
            analytic, numeric = analytic[:, None], numeric[:, None]
        doc.pair([(tex, analytic), ("\\text{finite differences}", numeric)],
                 f"relative error between the two: {r[f'd{p}_error']:.1e}")

    def _backward_pass(self, doc: Doc, layer) -> None:
        """The backward pass from the last layer down: a heading per layer, then ``layer(doc, record)``."""
        doc.h(2, "The backward pass")
        for r in reversed(self.layers):
            doc.h(3, f"Layer {r['l']}")
            layer(doc, r)

    def _l2_term(self, l: int) -> str:
        """The L2 part of dW^[l] in LaTeX, or '' without L2."""
        return f" + \\frac{{\\lambda}}{{m}} W^{{[{l}]}}" if self.l2 else ""

    def _cost_equation(self) -> str:
        """J = (1/m) Σ_i loss_i (+ the L2 term) in LaTeX, without its value."""
        return ("J = \\frac{1}{m} \\sum_i \\text{loss}_i"
                + (" + \\frac{\\lambda}{2m} \\sum_l \\|W^{[l]}\\|_F^2" if self.l2 else ""))

    # -- columns: notes 001 and 003 --------------------------------------------------------------------------
    def _columns_opening(self, doc: Doc) -> None:
        m, dg = self.m, self.digits
        self._title(doc, ", examples in columns")
        doc.p(f"A batch of $m = {m}$ example{'s' if m > 1 else ''}, $\\lambda = {self.l2:g}$, in notes 001 and 003's "
              "notation: one example per column, so every $X$, $Y$, $Z$, $A$ and $dZ$ below is the transpose of the "
              "array deltaprop holds (it keeps one example per row), and $dZ^{[l]} = m\\,\\delta^{[l]\\top}$ "
              "(the notes divide by $m$ in $dW$ and $db$). $W$, $dW$ and $db$ are the same numbers in both notations. "
              f"Every number is read from deltaprop's arrays after one call of `Network.backprop` (float64), printed "
              f"to {dg} significant digits.")
        add_picture(doc, self.net, self)

    def _columns_batch(self, doc: Doc) -> None:
        doc.h(2, "The batch and the weights")
        doc.mat("X", self.X.T, "one example per column")
        doc.mat("Y", self.Y.T, "one-hot columns" if self.net.loss.name == "cross_entropy" else "")
        for r in self.layers:
            doc.pair([(f"W^{{[{r['l']}]}}", r["W"]), (f"b^{{[{r['l']}]}}", r["b"][:, None])])

    def _columns_forward(self, doc: Doc) -> None:
        doc.h(2, "Forward propagation")
        for r in self.layers:
            l = r["l"]
            doc.eq(f"Z^{{[{l}]}} = W^{{[{l}]}} A^{{[{l - 1}]}} + b^{{[{l}]}}")
            doc.mat(f"Z^{{[{l}]}}", r["Z"].T)
            doc.eq(f"A^{{[{l}]}} = {ACT_TEX[r['activation']]}(Z^{{[{l}]}})")
            doc.mat(f"A^{{[{l}]}}", r["A"].T,
                    "each column sums to 1: the predicted probability of each class" if r["activation"] == "softmax"
                    else "")

    def _columns_cost(self, doc: Doc) -> None:
        doc.h(2, "The cost")
        doc.eq(self._cost_equation() + f" = {fmt_number(self.cost, self.digits).replace('−', '-')}")

    def _columns_output_error(self, doc: Doc) -> None:
        L, m = len(self.layers), self.m
        doc.h(2, "The output error")
        doc.eq(f"dZ^{{[{L}]}} = A^{{[{L}]}} - Y")
        doc.mat(f"dZ^{{[{L}]}}", m * self.layers[-1]["delta"].T,
                "prediction minus target, column by column; no $1/m$ here")

    def _columns_layer(self, doc: Doc, r: dict) -> None:
        """Layer record ``r``'s dW and db (the notes' 1/m here), then dZ of the layer below."""
        l = r["l"]
        doc.eq(f"dW^{{[{l}]}} = \\frac{{1}}{{m}} dZ^{{[{l}]}} A^{{[{l - 1}]\\top}}{self._l2_term(l)}")
        self._beside_numeric(doc, r, "W", f"dW^{{[{l}]}}")
        doc.eq(f"db^{{[{l}]}} = \\frac{{1}}{{m}} \\sum_{{\\text{{columns}}}} dZ^{{[{l}]}}")
        self._beside_numeric(doc, r, "b", f"db^{{[{l}]}}", column=True)
        if l > 1:
            below = self.layers[l - 2]
            act = below["activation"]
            doc.eq(f"dZ^{{[{l - 1}]}} = W^{{[{l}]\\top}} dZ^{{[{l}]}} \\odot {ACT_TEX[act]}'(Z^{{[{l - 1}]}})")
            doc.mat(f"{ACT_TEX[act]}'(Z^{{[{l - 1}]}})", below["g_prime"].T)
            doc.mat(f"dZ^{{[{l - 1}]}}", self.m * below["delta"].T)

    # -- rows: deltaprop's own arrays -------------------------------------------------------------------------
    def _rows_opening(self, doc: Doc) -> None:
        net, m, dg = self.net, self.m, self.digits
        self._title(doc)
        hidden = sorted(set(net.activations[:-1]))
        doc.p(f"Hidden activation {', '.join(hidden) or 'none'}, output {net.activations[-1]} with "
              f"{net.loss.name.replace('_', ' ').replace('cross entropy', 'cross-entropy')}; a batch of $m = {m}$ example{'s' if m > 1 else ''}, $\\lambda = {self.l2:g}$. "
              f"Rows are examples. Every number below is read from deltaprop's own arrays after one call of "
              f"`Network.backprop` (in float64{'; your network is ' + self.original_dtype if self.original_dtype != 'float64' else ''}), "
              f"printed to {dg} significant digits.")
        add_picture(doc, net, self)

    def _rows_batch(self, doc: Doc) -> None:
        net, m, n = self.net, self.m, self.net.sizes
        doc.h(2, "The batch and the weights")
        zero_b = all(not np.any(r["b"]) for r in self.layers)
        doc.p(f"{m} example{'s' if m > 1 else ''} of {n[0]} feature{'s' if n[0] > 1 else ''} (one per row of $X$), their "
              "targets $Y$, and the network's current weights" + (" (biases start at 0)." if zero_b else "."))
        doc.mat("X", self.X, "")
        if net.loss.name == "cross_entropy":
            labels = ", ".join(str(int(k)) for k in np.argmax(self.Y, axis=1))
            doc.mat("Y", self.Y, f"one-hot rows: example $i$ has a 1 in the column of its class (classes {labels}, "
                                 "counting from 0)")
        else:
            doc.mat("Y", self.Y, "")
        for r in self.layers:
            doc.pair([(f"W^{{[{r['l']}]}}", r["W"]), (f"b^{{[{r['l']}]}}", r["b"])])

    def _rows_forward(self, doc: Doc) -> None:
        dg = self.digits
        doc.h(2, "Forward propagation")
        for r in self.layers:
            l = r["l"]
            doc.eq(f"Z^{{[{l}]}} = A^{{[{l - 1}]}} W^{{[{l}]\\top}} + b^{{[{l}]}}")
            doc.mat(f"Z^{{[{l}]}}", r["Z"])
            if l == 1:
                j = 0
                terms = _sum_tex([(r["A_prev"][0, k], r["W"][j, k]) for k in range(r["W"].shape[1])], dg)
                doc.p(f"By hand, example 1, unit 1: $Z^{{[1]}}_{{11}} = \\sum_k X_{{1k}} W^{{[1]}}_{{1k}} + b^{{[1]}}_1 = "
                      f"{terms} + {_tex_num(r['b'][j], dg)} = {_val_tex(r['Z'][0, j], dg)}$. "
                      "Row $i$ of $X$ meets row $j$ of $W^{[1]}$: that is why $W$ appears transposed.")
            doc.eq(f"A^{{[{l}]}} = {ACT_TEX[r['activation']]}(Z^{{[{l}]}})")
            note = ""
            if r["activation"] == "softmax":
                note = "each row sums to 1: the predicted probability of each class"
            elif r["activation"] == "relu":
                note = "negative entries of $Z$ became 0"
            doc.mat(f"A^{{[{l}]}}", r["A"], note)

    def _rows_cost(self, doc: Doc) -> None:
        net, dg = self.net, self.digits
        doc.h(2, "The cost")
        per = ", ".join(fmt_number(v, dg) for v in self.loss_i)
        doc.eq(self._cost_equation()
               + f" = {fmt_number(self.data_cost, dg).replace('−', '-')}"
               + (f" + {fmt_number(self.reg_cost, dg)} = {fmt_number(self.cost, dg)}" if self.l2 else ""))
        doc.p(("The first term is the mean loss over the batch, the second the L2 term. " if self.l2 else "")
              + f"The loss of each example: {per}." + (
            f" A network that knows nothing predicts $1/K$ for every class, with loss $\\ln K = {np.log(net.sizes[-1]):.4f}$."
            if net.loss.name == "cross_entropy" else ""))

    def _rows_output_error(self, doc: Doc) -> None:
        L, m, dg = len(self.layers), self.m, self.digits
        doc.h(2, "The output error")
        last = self.layers[-1]
        doc.eq(f"\\delta^{{[{L}]}} = \\frac{{A^{{[{L}]}} - Y}}{{m}}")
        doc.mat(f"\\delta^{{[{L}]}}", last["delta"],
                f"compare with $A^{{[{L}]}}$ and $Y$ above: each entry is (prediction − target)/{m}")
        if self.net.loss.name in ("cross_entropy", "binary_cross_entropy"):
            # probabilities against 0/1 targets: |A − Y| ≤ 1
            size = ("A correct, confident prediction gives an error near 0; a wrong one, an error near $\\pm 1/m$ "
                    f"(here $\\pm {_val_tex(1 / m, dg)}$).")
        else:  # values (squared error) or rates (Poisson) against any target: no bound
            size = ("Each entry is the residual, prediction minus target, over $m$: near 0 where the prediction "
                    "is close, growing with the miss where it is far (values, unlike probabilities, have no bound).")
        doc.p(f"By hand: $\\delta^{{[{L}]}}_{{11}} = (A^{{[{L}]}}_{{11}} - Y_{{11}})/m = "
              f"({_val_tex(last['A'][0, 0], dg)} - {_tex_num(self.Y[0, 0], dg)})/{m} = {_val_tex(last['delta'][0, 0], dg)}$. "
              + size)

    def _rows_layer(self, doc: Doc, r: dict) -> None:
        """Layer record ``r``'s dW (worked out by hand for the last layer) and db, then δ of the layer below."""
        l = r["l"]
        doc.eq(f"dW^{{[{l}]}} = \\delta^{{[{l}]\\top}} A^{{[{l - 1}]}}{self._l2_term(l)}")
        self._beside_numeric(doc, r, "W", f"dW^{{[{l}]}}")
        if l == len(self.layers):
            self._dW_by_hand(doc, r)
        doc.eq(f"db^{{[{l}]}} = \\sum_{{\\text{{rows}}}} \\delta^{{[{l}]}}")
        self._beside_numeric(doc, r, "b", f"db^{{[{l}]}}")
        if l > 1:
            self._rows_recursion(doc, r)

    def _dW_by_hand(self, doc: Doc, r: dict) -> None:
        """One entry of the last layer's dW worked out: the errors times the activations below, summed."""
        l, m, dg = r["l"], self.m, self.digits
        a, c = _pick((np.abs(r["delta"]).sum(axis=0)[:, None] > 0) & (np.abs(r["A_prev"]).sum(axis=0)[None, :] > 0))
        terms = _sum_tex([(r["delta"][i, a], r["A_prev"][i, c]) for i in range(m)], dg)
        reg_part = (f" + \\frac{{{self.l2:g}}}{{{m}}} \\cdot {_tex_num(r['W'][a, c], dg)}" if self.l2 else "")
        doc.p(f"By hand, one entry: $dW^{{[{l}]}}_{{{a + 1}{c + 1}}} = \\sum_i \\delta^{{[{l}]}}_{{i{a + 1}}} "
              f"A^{{[{l - 1}]}}_{{i{c + 1}}}" + (f" + \\frac{{\\lambda}}{{m}} W^{{[{l}]}}_{{{a + 1}{c + 1}}}" if self.l2 else "")
              + f" = {terms}{reg_part} = {_val_tex(r['dW'][a, c], dg)}$: the error of unit {a + 1} times the "
              f"activation of unit {c + 1} below it, summed over the examples.")

    def _rows_recursion(self, doc: Doc, r: dict) -> None:
        """δ of the layer below layer record ``r``: the equation, g', the result, and for the last layer one
        entry worked out."""
        l, L, dg = r["l"], len(self.layers), self.digits
        below = self.layers[l - 2]
        act = below["activation"]
        doc.eq(f"\\delta^{{[{l - 1}]}} = \\left(\\delta^{{[{l}]}} W^{{[{l}]}}\\right) \\odot "
               f"{ACT_TEX[act]}'(Z^{{[{l - 1}]}})")
        doc.mat(f"{ACT_TEX[act]}'(Z^{{[{l - 1}]}})", below["g_prime"],
                {"relu": "1 where the unit was active, 0 where it was not: inactive units pass no error back",
                 "sigmoid": "$A(1 - A)$, never above 0.25: each sigmoid layer shrinks the error",
                 "tanh": "$1 - A^2$"}.get(act, ""))
        doc.mat(f"\\delta^{{[{l - 1}]}}", below["delta"])
        if l == L:
            i, j = _pick((below["g_prime"] != 0) & (below["delta"] != 0))
            terms = _sum_tex([(r["delta"][i, k], r["W"][k, j]) for k in range(r["W"].shape[0])], dg)
            doc.p(f"By hand, one entry: $\\delta^{{[{l - 1}]}}_{{{i + 1}{j + 1}}} = \\left(\\sum_k "
                  f"\\delta^{{[{l}]}}_{{{i + 1}k}} W^{{[{l}]}}_{{k{j + 1}}}\\right) g'(Z^{{[{l - 1}]}}_{{{i + 1}{j + 1}}}) = "
                  f"\\left({terms}\\right) \\cdot {_tex_num(below['g_prime'][i, j], dg)} = "
                  f"{_val_tex(below['delta'][i, j], dg)}$: unit {j + 1} of layer {l - 1} collects the errors of "
                  f"every unit it feeds, weighted by the weights that connect them.")

    # -- both layouts ---------------------------------------------------------------------------------------------
    def _gradient_check(self, doc: Doc) -> None:
        """Every analytic gradient against its finite differences, by gradcheck's rule."""
        dg = self.digits
        doc.h(2, "Gradient check")
        doc.p(f"Centered differences $(J(\\theta + h) - J(\\theta - h))/2h$ with $h = {_tex_num(self.h)}$, one parameter at a time "
              "(`deltaprop.gradcheck:numerical_gradient`), against backprop; relative error "
              "$\\|a - n\\| / (\\|a\\| + \\|n\\|)$, with the rule `deltaprop gradcheck` applies: "
              + pass_rule(self.tolerance, self.h) + ". Correct backprop gives 1e-10 to 1e-8 on gradients of "
              "ordinary size; tiny gradients (deep sigmoid layers) carry relatively more rounding noise.")
        doc.table(["layer", "parameter", "shape", "‖analytic‖", "‖numeric‖", "relative error", "passes"],
                  [[str(r["layer"]), ("$dW$" if r["param"] == "W" else "$db$"), shape_text(r["shape"]),
                    fmt_number(r["analytic_norm"], dg), fmt_number(r["numeric_norm"], dg), f"{r['relative_error']:.1e}",
                    ("yes (below the noise)" if r["passed_by_noise_floor"] else "yes") if r["ok"] else "NO"]
                   for r in self._check_rows()])
        ok = self.ok
        floor = sum(r["passed_by_noise_floor"] for r in self._check_rows())
        doc.p(("**Passed**" if ok else "**Check failed**") + f": the largest relative error is {self.max_error:.1e}."
              + (f" {floor} of the arrays pass because their difference lies below the rounding noise: their "
                 f"gradients are too small to measure to a relative {self.tolerance:g}." if floor else "")
              + ("" if ok else " " + self.hint))

    def _per_example_loop(self, doc: Doc) -> None:
        """Note 000's loop beside the vectorized pass, when the trace ran it (``per_example=True``)."""
        if self.per_example is None:
            return
        dg = self.digits
        pe = self.per_example
        doc.h(2, "Note 000's loop, one example at a time")
        doc.p("The same gradients computed as note 000 does, with the bias folded in: "
              "$\\Theta^{(l)} = [\\, b^{[l]} \\mid W^{[l]} \\,]$, $\\bar{a}^{(l)} = [1;\\, a^{(l)}]$, and for each example "
              "$\\Delta^{(l)} \\leftarrow \\Delta^{(l)} + \\delta^{(l+1)} \\bar{a}^{(l)\\top}$ "
              "(`deltaprop.reference:per_example_backprop`). Note 000 numbers the input as layer 1, so "
              "$\\Theta^{(l)}$ here is deltaprop's layer $l$.")
        for i, step in enumerate(pe["Delta"]):
            doc.h(3, f"After example {i + 1}")
            for l, D in enumerate(step, 1):
                doc.mat(f"\\Delta^{{({l})}}", D)
        doc.h(3, "The gradient")
        doc.eq("D^{(l)} = \\frac{1}{m}\\left(\\Delta^{(l)} + \\lambda \\tilde{\\Theta}^{(l)}\\right)")
        for l, (Dl, Dv) in enumerate(zip(pe["D_loop"], pe["D_vec"]), 1):
            doc.pair([(f"D^{{({l})}}", Dl), (f"[\\, db^{{[{l}]}} \\mid dW^{{[{l}]}} \\,]", Dv)])
        doc.p(f"The loop ends where the vectorized pass did: the largest difference is "
              f"{pe['max_abs_difference']:.1e} (rounding), and its cost {fmt_number(pe['cost_loop'], dg)} equals "
              f"$J$ = {fmt_number(self.cost, dg)}.")

    def __repr__(self) -> str:
        return (f"Trace({'-'.join(map(str, self.net.sizes))}, m={self.m}, J={self.cost:.4g}, "
                f"max relative error {self.max_error:.1e})")

