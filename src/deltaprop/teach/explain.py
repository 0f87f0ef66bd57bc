"""The backpropagation derivation of *this* network, with its shapes filled in.

    >>> import deltaprop as dp
    >>> e = dp.explain([3, 4, 3, 2], hidden="relu", output="softmax", l2=0.1)
    >>> print(e.to_text())          # or e.to_markdown(), e.to_latex(), e.to_json(); notebooks render e

Three notations:

- ``"bracket"`` (default): note 001's ``W^[l]``, ``Z^[l]``, ``A^[l]``, ``δ^[l]``, but with deltaprop's
  convention that rows are examples, so ``Z^[l] = A^[l−1] W^[l]ᵀ + b^[l]`` (the notes' column form
  ``Z = W A + b`` transposed; ``W`` and ``b`` keep the notes' shapes);
- ``"columns"``: notes 001 and 003 as they write it, examples in columns: ``Z^[l] = W^[l] A^[l−1] + b^[l]``,
  ``dZ^[L] = A^[L] − Y``, ``dW^[l] = (1/m) dZ^[l] A^[l−1]ᵀ``, ``dZ^[l−1] = W^[l]ᵀ dZ^[l] ⊙ g'(Z^[l−1])``
  (``dZ = m δᵀ``: the same gradients);
- ``"theta"``: note 000's per-example form with the bias folded into ``Θ^(l)`` of shape
  ``s_{l+1} × (s_l + 1)``, the accumulation ``Δ += δ āᵀ`` and ``D = (Δ + λΘ̃)/m``.

Nothing here computes: the shapes come from the network's own arrays (``layer.W.shape``), and the
equations are the ones :mod:`deltaprop.model`, :mod:`deltaprop.layers` and :mod:`deltaprop.losses`
implement (each one names its function). The command-line ``deltaprop explain`` and
``deltaprop trace`` live in :mod:`deltaprop.cli.teach`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from deltaprop.errors import ConfigError
from deltaprop.model import Network
from deltaprop.teach.document import Doc, Renderable, shape_text
from deltaprop.teach.pictures import add_picture

__all__ = ["explain", "Explanation", "NOTATIONS", "ACT_TEX", "as_network", "parse_sizes"]

NOTATIONS = ("bracket", "columns", "theta")

# g'(z) of each hidden activation, in LaTeX, with a word on it.
_DERIVATIVE = {
    "relu": (r"\mathbf{1}\{Z > 0\}", "1 where the unit was active, 0 elsewhere (deltaprop takes 0 at the kink $z = 0$)"),
    "leaky_relu": (r"1 \text{ where } Z > 0, \text{ else } 0.01", "the small slope keeps inactive units learning"),
    "sigmoid": (r"A \odot (1 - A)", "$\\sigma'(z) = \\sigma(z)(1 - \\sigma(z))$, read off the cached $A$; at most 1/4"),
    "tanh": (r"1 - A \odot A", "$\\tanh'(z) = 1 - \\tanh^2 z$, read off the cached $A$"),
    "identity": (r"1", "a linear unit passes the error through unchanged"),
    "exp": (r"A", "$\\exp'(z) = e^z$, the cached $A$ itself"),
}
_ACT_FUNCTION = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "sigmoid": "Sigmoid", "tanh": "Tanh",
                 "identity": "Identity", "softmax": "Softmax", "exp": "Exp"}
ACT_TEX = {"relu": r"\mathrm{relu}", "leaky_relu": r"\mathrm{leaky\_relu}", "sigmoid": r"\sigma",
           "tanh": r"\tanh", "identity": r"\mathrm{id}", "softmax": r"\mathrm{softmax}", "exp": r"\exp"}
_LOSS_CLASS = {"cross_entropy": "CrossEntropy", "binary_cross_entropy": "BinaryCrossEntropy",
               "squared_error": "SquaredError", "poisson": "PoissonDeviance"}
_LOSS_WORDS = {"cross_entropy": "categorical cross-entropy", "binary_cross_entropy": "binary cross-entropy",
               "squared_error": "squared error", "poisson": "Poisson deviance"}
_LOSS_I = {
    "cross_entropy": r"\text{loss}_i = -\sum_k Y_{ik} \log A^{[L]}_{ik}",
    "binary_cross_entropy": r"\text{loss}_i = -\sum_k \left[ Y_{ik} \log A^{[L]}_{ik} + (1 - Y_{ik}) \log (1 - A^{[L]}_{ik}) \right]",
    "squared_error": r"\text{loss}_i = \frac{1}{2} \sum_k (A^{[L]}_{ik} - Y_{ik})^2",
    "poisson": r"\text{loss}_i = \sum_k \left[ Y_{ik} \log (Y_{ik} / A^{[L]}_{ik}) - Y_{ik} + A^{[L]}_{ik} \right]",
}


def _reason(loss: str, L: int) -> list[str]:
    """Why δ^[L] = (A^[L] − Y)/m for the pairing: one derivation per loss, in prose with math."""
    a = f"A^{{[{L}]}}"
    if loss == "cross_entropy":
        return [
            f"**Why the output error is so simple (softmax with cross-entropy).** For one example the loss is "
            f"$-\\sum_k y_k \\log a_k$ with $a = \\mathrm{{softmax}}(z)$, so $\\partial\\,\\text{{loss}}/\\partial a_k = -y_k/a_k$ "
            f"(not $Y - A$, as notes 001 and 003 write). The softmax couples the outputs: "
            f"$\\partial a_k/\\partial z_j = a_k(\\mathbf{{1}}\\{{k=j\\}} - a_j)$ (note 002). The chain rule sums over every output $k$: "
            f"$\\sum_k (-y_k/a_k)\\, a_k (\\mathbf{{1}}\\{{k=j\\}} - a_j) = -y_j + a_j \\sum_k y_k = a_j - y_j$, "
            f"because a one-hot $y$ sums to 1. The $1/m$ is the mean over the batch. So $\\delta^{{[{L}]}} = ({a} - Y)/m$, and "
            f"deltaprop never builds $\\partial J/\\partial {a}$ or the softmax Jacobian.",
        ]
    if loss == "binary_cross_entropy":
        return [
            f"**Why the output error is so simple (sigmoid with binary cross-entropy).** Each output unit is an "
            f"independent yes/no (note 000's $K$ sigmoid outputs). Per unit the loss is $-[y \\log a + (1 - y)\\log(1 - a)]$, so "
            f"$\\partial\\,\\text{{loss}}/\\partial a = (a - y)/(a(1 - a))$, and $\\sigma'(z) = a(1 - a)$: the product is $a - y$. "
            f"With the mean over the batch, $\\delta^{{[{L}]}} = ({a} - Y)/m$.",
        ]
    if loss == "poisson":
        return [
            f"**Why the output error is so simple (exp with Poisson deviance).** The output $a = e^z$ is a positive rate "
            f"and $y \\ge 0$ a count; per unit the loss is half the Poisson deviance, $y \\log(y/a) - y + a$ "
            f"($y \\log y = 0$ at $y = 0$), the negative log-likelihood of a Poisson count up to terms without $a$. "
            f"So $\\partial\\,\\text{{loss}}/\\partial a = 1 - y/a$, and $\\exp'(z) = e^z = a$: the product is $a - y$. "
            f"With the mean over the batch, $\\delta^{{[{L}]}} = ({a} - Y)/m$.",
        ]
    return [
        f"**Why the output error is so simple (identity with squared error).** Per example the loss is "
        f"$\\frac{{1}}{{2}}\\sum_k (a_k - y_k)^2$, so $\\partial\\,\\text{{loss}}/\\partial a = a - y$, and the identity's $g'(z) = 1$. "
        f"With the mean over the batch, $\\delta^{{[{L}]}} = ({a} - Y)/m$.",
    ]


class Explanation(Renderable):
    """The derivation for one network: a document (``to_text``, ``to_markdown``, ``to_latex``,
    ``to_html``) plus data (``to_dict``/``to_json``): sizes, activations, loss, λ and every symbol
    with its shape (``m`` stands for the number of examples in a batch)."""

    def __init__(self, net: Network, notation: str, l2: float, doc: Doc, symbols: list[dict]) -> None:
        self.net, self.notation, self.l2, self.doc, self.symbols = net, notation, l2, doc, symbols

    def document(self) -> Doc:
        return self.doc

    def to_dict(self) -> dict:
        net = self.net
        return {
            "kind": "explanation",
            "notation": self.notation,
            "network": {"sizes": net.sizes, "activations": net.activations, "loss": net.loss.name, "l2": self.l2},
            "symbols": [dict(s, shape=list(s["shape"])) for s in self.symbols],
            "blocks": self.doc.blocks_as_dicts(),
        }

    def __repr__(self) -> str:
        return f"Explanation({'-'.join(map(str, self.net.sizes))}, notation={self.notation!r}, l2={self.l2:g})"



def as_network(net_or_spec, hidden="relu", output="softmax", loss=None, seed: int = 0) -> Network:
    """A Network from a Network, a model file path, a list of sizes, or a dict
    ``{"layers": [3, 4, 3, 2], "activation": "relu", "output": "softmax", "loss": ...}``."""
    if isinstance(net_or_spec, Network):
        return net_or_spec
    if isinstance(net_or_spec, (str, os.PathLike)):
        text = os.fspath(net_or_spec)
        if os.path.exists(text) or text.lower().endswith((".onnx", ".safetensors")):
            import deltaprop

            return deltaprop.load(text)
        sizes = parse_sizes(text)
        return Network.from_sizes(sizes, hidden=hidden, output=output, loss=loss, seed=seed)
    if isinstance(net_or_spec, dict):
        spec = dict(net_or_spec)
        sizes = spec.get("layers", spec.get("sizes"))
        if isinstance(sizes, str):
            sizes = parse_sizes(sizes)
        return Network.from_sizes(sizes, hidden=spec.get("activation", spec.get("hidden", hidden)),
                                  output=spec.get("output", output), loss=spec.get("loss", loss), seed=seed)
    return Network.from_sizes(list(net_or_spec), hidden=hidden, output=output, loss=loss, seed=seed)


def parse_sizes(text: str) -> list[int]:
    """'3,4,3,2', '3-4-3-2' or '3x4x3x2' -> [3, 4, 3, 2]; a negative or zero size is refused, never read
    as its absolute value."""
    if re.search(r"(^|[,x(\[])\s*-|--", text.strip()) or re.search(r"(^|\D)0+(\D|$)", text):
        raise ConfigError(f"layer sizes must be whole numbers ≥ 1, got {text!r}",
                          "write them as 3,4,3,2 (input first, output last)")
    parts = text.replace("-", ",").replace("x", ",").split(",")
    if len(parts) > 1 and not all(p.strip() for p in parts):
        raise ConfigError(f"a layer size is missing in {text!r}: two separators in a row, or one at an end",
                          "write one whole number between each pair of commas: 3,4,3,2 (input first, output last)")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"cannot read layer sizes from {text!r}", "write them as 3,4,3,2 (input first, output last), "
                          "or give the path of a model file") from None
    return sizes


def explain(net_or_spec: Network | str | os.PathLike[str] | Sequence[int] | dict, notation: str = "bracket",
            l2: float = 0.0, *, hidden: str | Sequence[str] = "relu", output: str = "softmax",
            loss: str | None = None) -> Explanation:
    """The backprop derivation of a network with its shapes: forward pass, cost, output error (and why
    it is ``A − Y`` for this pairing), the δ recursion, dW and db with the L2 term, the update rule.

    ``net_or_spec``: a :class:`Network`, a model file path, a list of sizes ``[n_x, ..., n_y]`` (with
    ``hidden``, ``output``, ``loss``) or a dict with ``layers``, ``activation``, ``output``, ``loss``.
    ``notation``: ``"bracket"`` (rows as examples, deltaprop's arrays with note 001's names), ``"columns"``
    (notes 001 and 003: examples in columns, dZ) or ``"theta"`` (note 000, Θ with the bias folded in). ``l2``: λ of the cost's λ/(2m) Σ‖W‖².
    """
    from deltaprop.validation import check_nonnegative_float

    net = as_network(net_or_spec, hidden=hidden, output=output, loss=loss)
    l2 = check_nonnegative_float(l2, "l2")
    key = str(notation).lower()
    if key not in NOTATIONS:
        from deltaprop.errors import unknown_name

        raise unknown_name("notation", notation, list(NOTATIONS))
    build = {"bracket": _bracket, "columns": _columns, "theta": _theta}[key]
    doc, symbols = build(net, l2)
    add_picture(doc, net, notation=key)
    return Explanation(net, key, l2, doc, symbols)



# -- what the notations share ---------------------------------------------------------------------------

def _sym(symbols, text, tex, shape, what, engine):
    symbols.append({"name": text, "tex": tex, "shape": tuple(shape), "what": what, "engine": engine})
    return f"${tex}$ ({shape_text(shape)})"


def _annot(*pairs, result=None) -> str:
    """'$A^{[1]}$ (m×4), $W^{[2]}$ (3×4) → $Z^{[2]}$ (m×3)' for the equation notes."""
    left = ", ".join(f"${t}$ ({shape_text(s)})" for t, s in pairs)
    if result is not None:
        left += f" → ${result[0]}$ ({shape_text(result[1])})"
    return left


def _tex_what(what: str) -> str:
    """'∂J/∂W^[2]' in a table cell as inline math."""
    import re

    return re.sub(r"∂J/∂([A-Za-z]+)\^\[(\d+)\]", r"$\\partial J/\\partial \1^{[\2]}$", what)


def _network_line(net: Network, l2: float) -> str:
    sizes = net.sizes
    acts = net.activations
    hidden = sorted(set(acts[:-1]))
    parts = [f"{len(net.layers)} layer{'s' if len(net.layers) > 1 else ''} of weights",
             f"sizes {'-'.join(map(str, sizes))}"]
    if hidden:
        parts.append(f"hidden activation {', '.join(hidden)}")
    parts.append(f"output {acts[-1]} with {_LOSS_WORDS[net.loss.name]}")
    parts.append(f"λ = {l2:g}")
    return ", ".join(parts)


def _opening(net: Network, l2: float, notation: str = ""):
    """(a new document with the title and the network's line, an empty symbol list) for the bracket and
    columns notations; ``notation`` ends the title."""
    L, n = len(net.layers), net.sizes
    doc = Doc()
    doc.h(1, f"Backpropagation for the {'-'.join(map(str, n))} network{notation}")
    doc.p(f"This network: {_network_line(net, l2)}; {net.n_params:,} parameters. Layer 0 is the input "
          f"($n^{{[0]}} = {n[0]}$ features); layers 1 to $L = {L}$ have weights. $m$ is the number of examples in a batch.")
    return doc, []


def _symbol_row(symbols: list, rows: list, text, tex, shape, what, engine) -> None:
    """One symbol in the document's data (``symbols``) and as a row of its table (``rows``)."""
    _sym(symbols, text, tex, shape, what, engine)
    rows.append([f"${tex}$", shape_text(shape), _tex_what(what), f"`{engine}`"])


def _layer_symbols(doc: Doc, sy: list, net: Network, rows: list, columns: bool) -> None:
    """Every layer's symbols after ``rows`` (the inputs and targets), then the table of them all: rows as
    examples (deltaprop's arrays) or, with ``columns``, examples in columns (their transposes, and
    dZ = m δᵀ for δ)."""
    for l in range(1, len(net.layers) + 1):
        W = net.layers[l - 1].W.shape
        pre = f"net.layers[{l - 1}]"
        batch, bias = ((W[0], "m"), (W[0], 1)) if columns else (("m", W[0]), (W[0],))
        T, column = (".T", "[:, None]") if columns else ("", "")
        error = ((f"dZ^[{l}]", f"dZ^{{[{l}]}}", batch, f"m ∂J/∂Z^[{l}]", f"m * {pre}.delta.T") if columns else
                 (f"δ^[{l}]", f"\\delta^{{[{l}]}}", batch, f"error of layer {l}, ∂J/∂Z^[{l}]", f"{pre}.delta"))
        for entry in (
                (f"W^[{l}]", f"W^{{[{l}]}}", W, f"weights of layer {l}", f"{pre}.W"),
                (f"b^[{l}]", f"b^{{[{l}]}}", bias, f"biases of layer {l}" + (", a column" if columns else ""),
                 f"{pre}.b{column}"),
                (f"Z^[{l}]", f"Z^{{[{l}]}}", batch, f"pre-activations of layer {l}", f"{pre}.Z{T}"),
                (f"A^[{l}]", f"A^{{[{l}]}}", batch, f"activations of layer {l} ({net.activations[l - 1]})", f"{pre}.A{T}"),
                error,
                (f"dW^[{l}]", f"dW^{{[{l}]}}", W, f"∂J/∂W^[{l}]", f"grads[{l - 1}][0]"),
                (f"db^[{l}]", f"db^{{[{l}]}}", bias, f"∂J/∂b^[{l}]", f"grads[{l - 1}][1]{column}")):
            _symbol_row(sy, rows, *entry)
    _symbol_table(doc, rows)


def _symbol_table(doc: Doc, rows: list) -> None:
    doc.h(3, "Every symbol and its shape")
    doc.table(["symbol", "shape", "what it holds", "the array in deltaprop"], rows)


def _cost_tex(L: int, l2: float) -> str:
    """J as the mean of the examples' losses, with the L2 term over layers 1..L when λ > 0."""
    return ("J = \\frac{1}{m} \\sum_{i=1}^{m} \\text{loss}_i"
            + (f" + \\frac{{\\lambda}}{{2m}} \\sum_{{l=1}}^{{{L}}} \\|W^{{[l]}}\\|_F^2" if l2 else ""))


def _l2_tex(l: int, l2: float) -> str:
    """The L2 part of dW^[l], '' when λ = 0."""
    return f" + \\frac{{\\lambda}}{{m}} W^{{[{l}]}}" if l2 else ""


def _gprime_tex(act: str, k: int) -> str:
    """g'(Z^[k]) of activation ``act`` written out in Z^[k] and A^[k]."""
    gp = _DERIVATIVE[act][0]
    return f"{ACT_TEX[act]}'(Z^{{[{k}]}}) = {gp.replace('Z', f'Z^{{[{k}]}}').replace('A', f'A^{{[{k}]}}')}"


def _update_steps(doc: Doc, L: int) -> None:
    """Plain gradient descent on every layer's W and b."""
    for l in range(1, L + 1):
        doc.eq(f"W^{{[{l}]}} \\leftarrow W^{{[{l}]}} - \\alpha\\, dW^{{[{l}]}}, \\quad "
               f"b^{{[{l}]}} \\leftarrow b^{{[{l}]}} - \\alpha\\, db^{{[{l}]}}")


# -- bracket notation (note 001, rows as examples) -------------------------------------------------------

def _bracket(net: Network, l2: float):
    """The derivation with rows as examples, deltaprop's own layout (note 002's; the transpose of notes 001 and 003)."""
    doc, sy = _opening(net, l2)
    _bracket_notation(doc, sy, net)
    for step in (_bracket_forward, _bracket_cost, _bracket_backward, _bracket_update, _bracket_code):
        step(doc, net, l2)
    return doc, sy


def _bracket_notation(doc: Doc, sy: list, net: Network) -> None:
    """Rows are examples: the convention beside the notes', and every symbol with its shape."""
    n, loss = net.sizes, net.loss.name
    doc.h(2, "Notation: rows are examples")
    doc.p("deltaprop stores one example per row, as NumPy and scikit-learn do (and note 002): a batch is "
          f"$X$ of shape $m \\times {n[0]}$, and every activation $A^{{[l]}}$ is $m \\times n^{{[l]}}$. Notes 001 and 003 "
          "put examples in columns and write $Z^{[l]} = W^{[l]} A^{[l-1]} + b^{[l]}$; every equation below is the transpose "
          "of theirs. The weights are the same in both conventions: $W^{[l]}$ is $n^{[l]} \\times n^{[l-1]}$ "
          "(units in this layer by units in the previous one) and $b^{[l]}$ has $n^{[l]}$ entries.")
    doc.p("$\\delta^{[l]} = \\partial J/\\partial Z^{[l]}$ is the error of layer $l$. Note 001 also writes "
          "$\\delta^{[l]}$ for the error of layer $l$ (transposed: examples in columns); note 003 calls $m\\,\\delta^{[l]}$ (transposed) "
          "$dZ^{[l]}$ and divides by $m$ in $dW$ and $db$ instead; the gradients come out the same.")
    rows = []
    rows.append(["$X = A^{[0]}$", f"{shape_text(('m', n[0]))}", "the inputs, one example per row", "`X`"])
    _sym(sy, "X", "X", ("m", n[0]), "inputs", "X")
    _sym(sy, "A^[0]", "A^{[0]}", ("m", n[0]), "inputs", "X")
    rows.append(["$Y$", shape_text(("m", n[-1])), "the targets" + (" (one-hot rows)" if loss == "cross_entropy" else ""),
                 "`net.prepare_targets(y)`"])
    _sym(sy, "Y", "Y", ("m", n[-1]), "targets", "net.prepare_targets(y)")
    _layer_symbols(doc, sy, net, rows, columns=False)


def _bracket_forward(doc: Doc, net: Network, l2: float) -> None:
    """Z = A_prev Wᵀ + b and A = g(Z), layer by layer, with the shapes."""
    L, n, acts = len(net.layers), net.sizes, net.activations
    doc.h(2, "Forward propagation")
    doc.p("Each layer multiplies, adds its bias to every row, and applies its activation $g^{[l]}$ "
          "(`deltaprop.layers:Dense.forward`, which keeps $A^{[l-1]}$, $Z^{[l]}$ and $A^{[l]}$ for the backward pass):")
    doc.eq("A^{[0]} = X", _annot(("X", ("m", n[0]))))
    for l in range(1, L + 1):
        W = net.layers[l - 1].W.shape
        doc.eq(f"Z^{{[{l}]}} = A^{{[{l - 1}]}} W^{{[{l}]\\top}} + b^{{[{l}]}}",
               _annot((f"A^{{[{l - 1}]}}", ("m", W[1])), (f"W^{{[{l}]}}", W), (f"b^{{[{l}]}}", (W[0],)),
                      result=(f"Z^{{[{l}]}}", ("m", W[0]))))
        doc.eq(f"A^{{[{l}]}} = {ACT_TEX[acts[l - 1]]}(Z^{{[{l}]}})", f"$A^{{[{l}]}}$ ({shape_text(('m', W[0]))})")
    doc.p("The bias $b^{[l]}$ is added to every row (broadcasting). In the notes' column form the same step reads "
          "$Z^{[l]\\top} = W^{[l]} A^{[l-1]\\top} + b^{[l]}$: note 001's $Z^{[l]} = W^{[l]} A^{[l-1]} + b^{[l]}$ with "
          "examples in columns.")
    if acts[-1] == "softmax":
        doc.p(f"The softmax works row by row: $A^{{[{L}]}}_{{ik}} = e^{{Z_{{ik}}}} / \\sum_j e^{{Z_{{ij}}}}$, so each row of "
              f"$A^{{[{L}]}}$ is a probability distribution over the {n[-1]} classes.")


def _bracket_cost(doc: Doc, net: Network, l2: float) -> None:
    """J, the loss of one example, the L2 term and how deltaprop keeps the loss finite."""
    L, loss = len(net.layers), net.loss.name
    doc.h(2, "The cost")
    doc.eq(_cost_tex(L, l2))
    doc.eq(_LOSS_I[loss].replace("[L]", f"[{L}]"))
    reg = (f"With $\\lambda = {l2:g}$ the L2 term $\\frac{{\\lambda}}{{2m}} \\sum_l \\|W^{{[l]}}\\|_F^2$ (the sum of every "
           "squared weight) pulls the weights toward 0; biases are not regularized. ") if l2 else (
        "With $\\lambda = 0$ there is no L2 term; with $\\lambda > 0$ the cost gains "
        "$\\frac{\\lambda}{2m} \\sum_l \\|W^{[l]}\\|_F^2$ (biases excluded). ")
    stable = (f"deltaprop computes the loss from the logits $Z^{{[{L}]}}$, never as the log of a rounded "
              "probability, so it stays finite" if loss in ("cross_entropy", "binary_cross_entropy") else
              f"The output is the identity, so the loss is computed from $Z^{{[{L}]}} = A^{{[{L}]}}$ directly"
              if loss == "squared_error" else
              f"deltaprop takes $\\log A^{{[{L}]}}$ as $Z^{{[{L}]}}$ itself, never as the log of a rounded rate")
    doc.p(reg + stable + f" (`deltaprop.losses:{_LOSS_CLASS[loss]}.value`, `deltaprop.losses:l2_cost`).")


def _bracket_backward(doc: Doc, net: Network, l2: float) -> None:
    """δ_L, then each layer's dW, db and the error of the layer below; the recursion for any depth."""
    L, acts, loss = len(net.layers), net.activations, net.loss.name
    doc.h(2, "Backward pass")
    doc.p("Backpropagation is the chain rule applied layer by layer, from the output back to the input. "
          "It reads the values the forward pass cached and never recomputes them (`deltaprop.model:Network.backward`).")
    doc.h(3, "1. The output error")
    WL = net.layers[-1].W.shape
    doc.eq(f"\\delta^{{[{L}]}} = \\frac{{\\partial J}}{{\\partial Z^{{[{L}]}}}} = \\frac{{A^{{[{L}]}} - Y}}{{m}}",
           _annot((f"A^{{[{L}]}}", ("m", WL[0])), ("Y", ("m", WL[0])), result=(f"\\delta^{{[{L}]}}", ("m", WL[0]))))
    for para in _reason(loss, L):
        doc.p(para)
    doc.p("This is the one place $1/m$ enters; every later step inherits it through $\\delta$ (`deltaprop.losses:Loss.delta`). "
          "Note 001 has the $1/m$ in some lines and not in others (its $\\partial J/\\partial W^{[3]}$ has it; its "
          "$\\partial J/\\partial W^{[2]}$ and $\\partial J/\\partial W^{[1]}$, built from a $\\delta^{[3]}$ without it, do not); "
          "it belongs exactly once: here, or in $dW$ and $db$ as note 003 puts it, never both.")

    for l in range(L, 0, -1):
        W = net.layers[l - 1].W.shape
        doc.h(3, f"{L - l + 2}. Layer {l}: gradients" + (f", then the error of layer {l - 1}" if l > 1 else ""))
        term = _l2_tex(l, l2)
        doc.eq(f"dW^{{[{l}]}} = \\delta^{{[{l}]\\top}} A^{{[{l - 1}]}}{term}",
               _annot((f"\\delta^{{[{l}]}}", ("m", W[0])), (f"A^{{[{l - 1}]}}", ("m", W[1])),
                      result=(f"dW^{{[{l}]}}", W)))
        doc.eq(f"db^{{[{l}]}} = \\sum_{{\\text{{rows}}}} \\delta^{{[{l}]}}",
               _annot((f"\\delta^{{[{l}]}}", ("m", W[0])), result=(f"db^{{[{l}]}}", (W[0],))))
        if l == L:
            doc.p(f"$\\delta^{{[{l}]\\top}} A^{{[{l - 1}]}}$ sums, over the examples, the outer product of each example's "
                  "error with the activations that fed it: each weight's gradient is (error of the unit it feeds) × "
                  "(activation it multiplies), note 000's $a_j \\delta_i$. The bias sees an input of 1, so its gradient "
                  "is the error summed over the rows." + (
                      f" The L2 term adds $\\frac{{\\lambda}}{{m}} W^{{[l]}}$ (here $\\lambda = {l2:g}$) to $dW$ and "
                      "nothing to $db$." if l2 else ""))
        if l > 1:
            below = acts[l - 2]
            Wb = net.layers[l - 2].W.shape
            gp, words = _DERIVATIVE[below]
            doc.eq(f"\\delta^{{[{l - 1}]}} = \\left(\\delta^{{[{l}]}} W^{{[{l}]}}\\right) \\odot "
                   f"{ACT_TEX[below]}'(Z^{{[{l - 1}]}})",
                   _annot((f"\\delta^{{[{l}]}}", ("m", W[0])), (f"W^{{[{l}]}}", W), (f"Z^{{[{l - 1}]}}", ("m", Wb[0])),
                          result=(f"\\delta^{{[{l - 1}]}}", ("m", Wb[0]))))
            doc.eq(_gprime_tex(below, l - 1))
            if l == L:
                doc.p(f"$\\delta^{{[{l}]}} W^{{[{l}]}}$ sends each unit's error back along the weights it used: unit $j$ of "
                      f"layer {l - 1} receives $\\sum_k \\delta_k W_{{kj}}$, the weighted sum of the errors of every unit "
                      "it feeds (the answer to note 002's question: yes, sum over them). It is a matrix product, "
                      "not the element-wise $W^\\top \\odot \\delta$ of note 001. Then $\\odot\\, g'$ "
                      "(element-wise) carries the error back through the activation: " + words + ".")
            else:
                doc.p(f"Here $g' = {gp}$: {words}.")
    doc.p("The first layer needs no error of its own input: $\\delta^{[0]}$ is never computed "
          "(`deltaprop.layers:Dense.backward` skips $dA^{[0]}$).")

    doc.h(3, "The recursion for any depth")
    reg_t = " + \\frac{\\lambda}{m} W^{[l]}" if l2 else ""
    doc.eq("\\delta^{[L]} = \\frac{A^{[L]} - Y}{m}")
    doc.eq("\\delta^{[l-1]} = \\left(\\delta^{[l]} W^{[l]}\\right) \\odot g^{[l-1]\\prime}(Z^{[l-1]}), \\quad l = L, \\ldots, 2")
    doc.eq(f"dW^{{[l]}} = \\delta^{{[l]\\top}} A^{{[l-1]}}{reg_t}, \\quad db^{{[l]}} = \\sum_{{\\text{{rows}}}} \\delta^{{[l]}}")
    doc.p("In the notes' column form these read $dZ^{[L]} = A^{[L]} - Y$, "
          "$dZ^{[l-1]} = W^{[l]\\top} dZ^{[l]} \\odot g'(Z^{[l-1]})$, $dW^{[l]} = \\frac{1}{m} dZ^{[l]} A^{[l-1]\\top}$, "
          "$db^{[l]} = \\frac{1}{m} \\sum dZ^{[l]}$ (note 003), with $dZ^{[l]} = m\\,\\delta^{[l]\\top}$.")


def _bracket_update(doc: Doc, net: Network, l2: float) -> None:
    """The gradient-descent step and deltaprop's optimizers."""
    L = len(net.layers)
    doc.h(2, "The update rule")
    doc.p("Gradient descent with learning rate $\\alpha$ (`lr` in deltaprop) moves every parameter against its gradient:")
    _update_steps(doc, L)
    doc.p("This is `optimizer=\"sgd\"` (`deltaprop.optim:SGD.step`); momentum, Nesterov and Adam "
          "(`deltaprop.optim`) use the same $dW$ and $db$ and change only how the step is taken. "
          "One step on a mini-batch is `deltaprop.train:Trainer.train_step`.")


def _bracket_code(doc: Doc, net: Network, l2: float) -> None:
    """Which function of deltaprop computes each equation."""
    L, acts = len(net.layers), net.activations
    doc.h(2, "Where the code is")
    doc.table(["equation", "implemented by"], [
        ["$Z^{[l]} = A^{[l-1]} W^{[l]\\top} + b^{[l]}$, $A^{[l]} = g(Z^{[l]})$", "`deltaprop.layers:Dense.forward`"],
        ["$J$", "`deltaprop.model:Network.cached_cost`"],
        [f"$\\delta^{{[{L}]}} = (A^{{[{L}]}} - Y)/m$", "`deltaprop.losses:Loss.delta`"],
        ["$dW^{[l]}$, $db^{[l]}$, $\\delta^{[l]} W^{[l]}$", "`deltaprop.layers:Dense.backward`"],
        ["$\\odot\\, g'(Z^{[l-1]})$", "`deltaprop.activations:" + ", ".join(
            sorted({_ACT_FUNCTION[a] for a in acts[:-1]})) + ".backward`" if L > 1 else "(no hidden layer)"],
        ["the whole backward pass", "`deltaprop.model:Network.backward` (with the forward pass: `Network.backprop`)"],
        ["$W \\leftarrow W - \\alpha\\, dW$", "`deltaprop.optim:SGD.step`"],
        ["check against finite differences", "`deltaprop.gradcheck:gradcheck`"],
    ])


# -- columns notation (notes 001 and 003: examples in columns, dZ) ----------------------------------------

def _columns(net: Network, l2: float):
    """The derivation in notes 001 and 003's notation: examples in columns, dZ = m δᵀ."""
    doc, sy = _opening(net, l2, ", in notes 001 and 003's notation")
    _columns_notation(doc, sy, net)
    for step in (_columns_forward, _columns_cost, _columns_backward, _columns_update):
        step(doc, net, l2)
    return doc, sy


def _columns_notation(doc: Doc, sy: list, net: Network) -> None:
    """Examples in columns: the convention beside deltaprop's, and every symbol with its shape."""
    n, loss = net.sizes, net.loss.name
    doc.h(2, "Notation: examples in columns")
    doc.p("Notes 001 and 003 put one example in each column: a batch is $X$ of shape "
          f"$n^{{[0]}} \\times m$ = ${n[0]} \\times m$, and every $Z^{{[l]}}$, $A^{{[l]}}$ and $dZ^{{[l]}}$ is "
          "$n^{[l]} \\times m$. deltaprop stores one example per row (as NumPy and scikit-learn do), so each of these "
          "matrices is the transpose of deltaprop's array; $W^{[l]}$ ($n^{[l]} \\times n^{[l-1]}$) and the gradients "
          "$dW^{[l]}$, $db^{[l]}$ are the same numbers in both conventions.")
    doc.p("$dZ^{[l]}$ is $m$ times the gradient of $J$ with respect to $Z^{[l]}$: note 003 divides by $m$ in $dW$ and "
          "$db$ instead of in the output error (note 001 has the $1/m$ in some lines and not in others; it belongs "
          "exactly once). deltaprop's $\\delta^{[l]} = \\partial J/\\partial Z^{[l]}$ carries the "
          "$1/m$, so $dZ^{[l]} = m\\,\\delta^{[l]\\top}$.")
    rows = [["$X = A^{[0]}$", shape_text((n[0], "m")), "the inputs, one example per column", "`X.T`"],
            ["$Y$", shape_text((n[-1], "m")), "the targets" + (" (one-hot columns)" if loss == "cross_entropy" else ""),
             "`net.prepare_targets(y).T`"]]
    _sym(sy, "X", "X", (n[0], "m"), "inputs", "X.T")
    _sym(sy, "Y", "Y", (n[-1], "m"), "targets", "net.prepare_targets(y).T")
    _layer_symbols(doc, sy, net, rows, columns=True)


def _columns_forward(doc: Doc, net: Network, l2: float) -> None:
    """Z = W A_prev + b and A = g(Z), layer by layer, with the shapes."""
    L, n, acts = len(net.layers), net.sizes, net.activations
    doc.h(2, "Forward propagation")
    doc.eq("A^{[0]} = X", _annot(("X", (n[0], "m"))))
    for l in range(1, L + 1):
        W = net.layers[l - 1].W.shape
        doc.eq(f"Z^{{[{l}]}} = W^{{[{l}]}} A^{{[{l - 1}]}} + b^{{[{l}]}}",
               _annot((f"W^{{[{l}]}}", W), (f"A^{{[{l - 1}]}}", (W[1], "m")), (f"b^{{[{l}]}}", (W[0], 1)),
                      result=(f"Z^{{[{l}]}}", (W[0], "m"))))
        doc.eq(f"A^{{[{l}]}} = {ACT_TEX[acts[l - 1]]}(Z^{{[{l}]}})", f"$A^{{[{l}]}}$ ({shape_text((W[0], 'm'))})")
    doc.p("The column $b^{[l]}$ is added to every column (broadcasting). Row $j$ of $W^{[l]}$ meets column $i$ of "
          "$A^{[l-1]}$: unit $j$'s weighted sum for example $i$."
          + (" The softmax works column by column: each column of $A^{[L]}$ sums to 1." if acts[-1] == "softmax" else ""))


def _columns_cost(doc: Doc, net: Network, l2: float) -> None:
    """J and the L2 term."""
    L = len(net.layers)
    doc.h(2, "The cost")
    doc.eq(_cost_tex(L, l2))
    doc.p(("With $\\lambda = " + f"{l2:g}" + "$ the L2 term sums every squared weight; biases are not regularized.")
          if l2 else "With $\\lambda = 0$ there is no L2 term.")


def _columns_backward(doc: Doc, net: Network, l2: float) -> None:
    """dZ_L = A_L − Y, each layer's dW, db and dZ of the layer below, and the same pass in rows."""
    L, acts, loss = len(net.layers), net.activations, net.loss.name
    doc.h(2, "Backward pass")
    WL = net.layers[-1].W.shape
    doc.eq(f"dZ^{{[{L}]}} = A^{{[{L}]}} - Y",
           _annot((f"A^{{[{L}]}}", (WL[0], "m")), ("Y", (WL[0], "m")), result=(f"dZ^{{[{L}]}}", (WL[0], "m"))))
    doc.p({"cross_entropy": "For softmax with cross-entropy",
           "binary_cross_entropy": "For sigmoid outputs with binary cross-entropy",
           "squared_error": "For an identity output with squared error"}[loss]
          + " the derivatives of the loss and of the output activation cancel to prediction minus target "
            "(`explain --notation bracket` derives it). Note 001's $\\partial J/\\partial A = Y - A$ and note 003's "
            "$dA^{[2]} = Y - A^{[2]}$ are not the derivative of the cost (that is $-Y/(mA)$, "
            "element by element); what holds is this fused result, which note 003 then uses.")
    for l in range(L, 0, -1):
        W = net.layers[l - 1].W.shape
        term = _l2_tex(l, l2)
        doc.eq(f"dW^{{[{l}]}} = \\frac{{1}}{{m}} dZ^{{[{l}]}} A^{{[{l - 1}]\\top}}{term}",
               _annot((f"dZ^{{[{l}]}}", (W[0], "m")), (f"A^{{[{l - 1}]}}", (W[1], "m")), result=(f"dW^{{[{l}]}}", W)))
        doc.eq(f"db^{{[{l}]}} = \\frac{{1}}{{m}} \\sum_{{\\text{{columns}}}} dZ^{{[{l}]}}",
               _annot((f"dZ^{{[{l}]}}", (W[0], "m")), result=(f"db^{{[{l}]}}", (W[0], 1))))
        if l > 1:
            below = acts[l - 2]
            Wb = net.layers[l - 2].W.shape
            gp, words = _DERIVATIVE[below]
            doc.eq(f"dZ^{{[{l - 1}]}} = W^{{[{l}]\\top}} dZ^{{[{l}]}} \\odot {ACT_TEX[below]}'(Z^{{[{l - 1}]}})",
                   _annot((f"W^{{[{l}]}}", W), (f"dZ^{{[{l}]}}", (W[0], "m")), (f"Z^{{[{l - 1}]}}", (Wb[0], "m")),
                          result=(f"dZ^{{[{l - 1}]}}", (Wb[0], "m"))))
            doc.eq(_gprime_tex(below, l - 1))
    doc.p("$W^{[l]\\top} dZ^{[l]}$ is a matrix product (note 001 writes $W^\\top \\odot \\delta$; the element-wise "
          "product would not even have the right shape). The sums are over columns, that is over examples: in NumPy "
          "`np.sum(dZ, axis=1, keepdims=True)`.")

    doc.h(3, "The same pass in deltaprop's rows")
    doc.p("Transpose every equation above and write $\\delta^{[l]} = dZ^{[l]\\top}/m$: "
          "$Z^{[l]\\top} = A^{[l-1]\\top} W^{[l]\\top} + b^{[l]\\top}$ becomes deltaprop's "
          "$Z = A_{\\text{prev}} W^\\top + b$, and $dW^{[l]} = \\frac{1}{m} dZ^{[l]} A^{[l-1]\\top} = "
          "\\delta^\\top A_{\\text{prev}}$, the array `deltaprop.layers:Dense.backward` computes "
          "(`explain --notation bracket` shows that form).")


def _columns_update(doc: Doc, net: Network, l2: float) -> None:
    """The gradient-descent step."""
    L = len(net.layers)
    doc.h(2, "The update rule")
    _update_steps(doc, L)


# -- theta notation (note 000, one example at a time, bias folded in) -------------------------------------

def _theta(net: Network, l2: float):
    L = len(net.layers) + 1  # note 000 counts the input as layer 1
    s = net.sizes  # s[l-1] is s_l
    acts = net.activations
    loss = net.loss.name
    doc, sy = Doc(), []
    doc.h(1, f"Backpropagation for the {'-'.join(map(str, s))} network, in note 000's notation")
    doc.p(f"This network: {_network_line(net, l2)}. Note 000 counts the input as layer 1, so $L = {L}$ and "
          + ", ".join(f"$s_{{{l}}} = {s[l - 1]}$" for l in range(1, L + 1)) + " units (bias units not counted).")
    doc.h(2, "Notation: one example at a time, the bias folded into $\\Theta$")
    doc.p("Each example is a column vector. Every layer but the last gets a bias unit $a_0 = 1$ on top: "
          "$\\bar{a}^{(l)} = [1;\\, a^{(l)}]$, and $\\Theta^{(l)}$, of shape $s_{l+1} \\times (s_l + 1)$, maps layer $l$ to "
          "layer $l+1$ with the biases in its column 0. In deltaprop's terms $\\Theta^{(l)} = [\\,b^{[l]} \\mid W^{[l]}\\,]$ "
          "(`deltaprop.reference:to_theta`).")
    rows = []
    for l in range(1, L):
        th = (s[l], s[l - 1] + 1)
        rows.append([f"$\\Theta^{{({l})}}$", shape_text(th), f"layer {l} → layer {l + 1}, column 0 = biases",
                     f"`to_theta(net.layers[{l - 1}].W, net.layers[{l - 1}].b)`"])
        _sym(sy, f"Θ^({l})", f"\\Theta^{{({l})}}", th, "weights with bias column", f"to_theta(net.layers[{l - 1}])")
        _sym(sy, f"Δ^({l})", f"\\Delta^{{({l})}}", th, "accumulated gradient", f"reference Δ for layer {l}")
        _sym(sy, f"D^({l})", f"D^{{({l})}}", th, "gradient", f"to_theta(dW, db) of layer {l}")
    for l in range(1, L + 1):
        _sym(sy, f"a^({l})", f"a^{{({l})}}", (s[l - 1], 1), f"activations of layer {l}", f"row of A^[{l - 1}]")
        rows.append([f"$a^{{({l})}}$", shape_text((s[l - 1], 1)), "the input $x$" if l == 1 else f"activations of layer {l}",
                     "a row of `X`" if l == 1 else f"a row of `net.layers[{l - 2}].A`"])
        if l < L:
            _sym(sy, f"ā^({l})", f"\\bar{{a}}^{{({l})}}", (s[l - 1] + 1, 1), "with bias unit", "")
            rows.append([f"$\\bar{{a}}^{{({l})}}$", shape_text((s[l - 1] + 1, 1)), f"$a^{{({l})}}$ with $a_0 = 1$ on top", ""])
        if l > 1:
            _sym(sy, f"z^({l})", f"z^{{({l})}}", (s[l - 1], 1), f"pre-activations of layer {l}", f"row of Z^[{l - 1}]")
            _sym(sy, f"δ^({l})", f"\\delta^{{({l})}}", (s[l - 1], 1), f"error of layer {l}", f"m × row of δ^[{l - 1}]")
            rows.append([f"$z^{{({l})}}$, $\\delta^{{({l})}}$", shape_text((s[l - 1], 1)), f"pre-activation and error of layer {l}",
                         f"a row of `net.layers[{l - 2}].Z`; $m$ × a row of `.delta`"])
    _symbol_table(doc, rows)

    doc.h(2, "Forward propagation (one example $x$)")
    doc.eq("a^{(1)} = x", _annot(("a^{(1)}", (s[0], 1))))
    for l in range(1, L):
        th = (s[l], s[l - 1] + 1)
        doc.eq(f"z^{{({l + 1})}} = \\Theta^{{({l})}} \\bar{{a}}^{{({l})}}",
               _annot((f"\\Theta^{{({l})}}", th), (f"\\bar{{a}}^{{({l})}}", (s[l - 1] + 1, 1)),
                      result=(f"z^{{({l + 1})}}", (s[l], 1))))
        doc.eq(f"a^{{({l + 1})}} = {ACT_TEX[acts[l - 1]]}(z^{{({l + 1})}})", f"$a^{{({l + 1})}}$ ({shape_text((s[l], 1))})")
    doc.p(f"$h_\\Theta(x) = a^{{({L})}}$ is the network's output.")

    doc.h(2, "The cost")
    data = {
        "binary_cross_entropy": "-\\frac{1}{m} \\sum_{i=1}^{m} \\sum_{k=1}^{K} \\left[ y_k^{(i)} \\log h_\\Theta(x^{(i)})_k + "
                                "(1 - y_k^{(i)}) \\log (1 - h_\\Theta(x^{(i)})_k) \\right]",
        "cross_entropy": "-\\frac{1}{m} \\sum_{i=1}^{m} \\sum_{k=1}^{K} y_k^{(i)} \\log h_\\Theta(x^{(i)})_k",
        "squared_error": "\\frac{1}{m} \\sum_{i=1}^{m} \\frac{1}{2} \\sum_{k=1}^{K} (h_\\Theta(x^{(i)})_k - y_k^{(i)})^2",
        "poisson": "\\frac{1}{m} \\sum_{i=1}^{m} \\sum_{k=1}^{K} \\left[ y_k^{(i)} \\log (y_k^{(i)} / h_\\Theta(x^{(i)})_k) "
                   "- y_k^{(i)} + h_\\Theta(x^{(i)})_k \\right]",
    }[loss]
    doc.eq(f"J(\\Theta) = {data}" + (" + \\frac{\\lambda}{2m} \\sum_{l=1}^{L-1} \\sum_{i=1}^{s_{l+1}} \\sum_{j=1}^{s_l} "
                                     "(\\Theta_{ij}^{(l)})^2" if l2 else ""))
    doc.p(f"$K = {s[-1]}$ outputs. " + (f"With $\\lambda = {l2:g}$ the" if l2 else "With $\\lambda > 0$ a") +
          " regularization term sums the squared weights but skips column $j = 0$: biases are not regularized.")

    doc.h(2, "Backward pass, example by example")
    doc.eq("\\Delta^{(l)} = 0 \\quad \\text{for every } l", "")
    doc.p("Then for each example $(x^{(i)}, y^{(i)})$: forward as above, and")
    doc.eq(f"\\delta^{{({L})}} = a^{{({L})}} - y^{{(i)}}", _annot((f"a^{{({L})}}", (s[-1], 1)), result=(f"\\delta^{{({L})}}", (s[-1], 1))))
    doc.p("Note 000 writes this step as $\\delta^{(L)} = 0 - y$ once; it is $a^{(L)} - y$, as its own first section says. "
          "It holds for " + {"cross_entropy": "softmax with cross-entropy", "binary_cross_entropy": "sigmoid with binary "
                                                                                                 "cross-entropy",
                                "squared_error": "identity with squared error",
                                "poisson": "exp with Poisson deviance"}[loss] + ":")
    for para in _reason(loss, L):
        doc.p(para.replace(f"\\delta^{{[{L}]}} = (A^{{[{L}]}} - Y)/m", f"\\delta^{{({L})}} = a^{{({L})}} - y")
              .replace("With the mean over the batch, ", "Per example, ").replace("The $1/m$ is the mean over the batch. ", ""))
    for l in range(L - 1, 1, -1):
        th = (s[l], s[l - 1] + 1)
        gp, words = _DERIVATIVE[acts[l - 2]]
        gp = gp.replace("Z", f"z^{{({l})}}").replace("A", f"a^{{({l})}}")
        doc.eq(f"\\delta^{{({l})}} = \\left(\\Theta^{{({l})\\top}} \\delta^{{({l + 1})}}\\right)_{{1:}} \\odot "
               f"g'(z^{{({l})}})", _annot((f"\\Theta^{{({l})}}", th), (f"\\delta^{{({l + 1})}}", (s[l], 1)),
                                          result=(f"\\delta^{{({l})}}", (s[l - 1], 1))))
        doc.eq(f"g'(z^{{({l})}}) = {gp}")
    if L > 2:
        doc.p("$\\Theta^\\top \\delta$ has one entry too many, for the bias unit; $(\\cdot)_{1:}$ drops it (the bias unit has "
              "no input, so it passes no error back). There is no $\\delta^{(1)}$: the input has no error to correct.")
    doc.p("and the errors are accumulated into the gradients:")
    for l in range(1, L):
        th = (s[l], s[l - 1] + 1)
        doc.eq(f"\\Delta^{{({l})}} \\leftarrow \\Delta^{{({l})}} + \\delta^{{({l + 1})}} \\bar{{a}}^{{({l})\\top}}",
               _annot((f"\\delta^{{({l + 1})}}", (s[l], 1)), (f"\\bar{{a}}^{{({l})}}", (s[l - 1] + 1, 1)),
                      result=(f"\\Delta^{{({l})}}", th)))
    doc.p("Entry by entry, $\\Delta_{ij}^{(l)} \\mathrel{+}= a_j^{(l)} \\delta_i^{(l+1)}$ (note 000 prints $\\delta_i^{(l+i)}$; "
          "it means $l+1$).")
    doc.h(2, "The gradient")
    for l in range(1, L):
        th = (s[l], s[l - 1] + 1)
        doc.eq(f"D^{{({l})}} = \\frac{{1}}{{m}}\\left(\\Delta^{{({l})}} + \\lambda \\tilde{{\\Theta}}^{{({l})}}\\right) = "
               f"\\frac{{\\partial J}}{{\\partial \\Theta^{{({l})}}}}", f"$D^{{({l})}}$ ({shape_text(th)})")
    doc.p("$\\tilde{\\Theta}$ is $\\Theta$ with its bias column set to 0. Note 000 writes "
          "$D = \\frac{1}{m}\\Delta + \\lambda\\Theta$; with the cost's $\\frac{\\lambda}{2m}\\sum\\Theta^2$ the "
          "$\\lambda$ term is divided by $m$ too." + ("" if l2 else " Here $\\lambda = 0$, so $D = \\Delta/m$."))
    doc.h(2, "The update rule")
    for l in range(1, L):
        doc.eq(f"\\Theta^{{({l})}} \\leftarrow \\Theta^{{({l})}} - \\alpha\\, D^{{({l})}}")
    doc.h(2, "The same thing, vectorized")
    doc.p("Stack the $m$ examples as rows and the loop disappears: $\\delta^{(l)}$ of every example is $m$ times a row of "
          "deltaprop's $\\delta^{[l-1]}$ (deltaprop's $\\delta$ carries the $1/m$), and $\\sum_i \\delta^{(l+1)} "
          "\\bar{a}^{(l)\\top}$ is one matrix product, so $D^{(l)} = [\\, db^{[l]} \\mid dW^{[l]} \\,]$ with "
          "$dW^{[l]} = \\delta^{[l]\\top} A^{[l-1]} + \\frac{\\lambda}{m} W^{[l]}$ and $db^{[l]} = \\sum_{\\text{rows}} \\delta^{[l]}$. "
          "`deltaprop.reference:per_example_backprop` runs this page's loop as written; the tests prove it equals "
          "`deltaprop.model:Network.backprop` to 1e-10 (`deltaprop trace --per-example` shows it on numbers).")
    return doc, sy
