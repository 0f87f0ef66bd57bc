"""The backprop view: one Step's batch traced by :func:`deltaprop.trace`, cut into stages.

Stages, in the order the engine runs them: forward through each layer (Z, A), the cost, the
output error δ^[L], then for each layer from the last down: dW and db beside their finite
differences, and the error δ of the layer below. Each stage carries its equations as
:func:`deltaprop.explain` writes them for this network (MathML, with the shapes), and its numbers
as the trace read them from the engine's arrays (full float64 values in the JSON).
"""

from __future__ import annotations

import numpy as np

import deltaprop
from deltaprop.teach.mathml import prose_to_html, to_mathml
from deltaprop.teach.pictures import error_name, network_svg

__all__ = ["backprop_view"]


MAX_COLUMNS = 12  # a wider matrix (digits' 64 pixels) shows its first columns and says how many there are


def _matrix(name_tex: str, a, shown: int, role: str = "", layer: int | None = None) -> dict:
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    return {"name": to_mathml(name_tex), "tex": name_tex, "shape": list(a.shape),
            "rows": a[:shown, :MAX_COLUMNS].tolist(), "role": role, "layer": layer}


def _vector(name_tex: str, v, role: str = "", layer: int | None = None) -> dict:
    v = np.asarray(v, dtype=np.float64).reshape(1, -1)
    return {"name": to_mathml(name_tex), "tex": name_tex, "shape": [v.shape[1]], "rows": v[:, :MAX_COLUMNS].tolist(),
            "role": role, "layer": layer}


def _equations(explanation) -> list[tuple[str, str]]:
    return [(b[1], b[2]) for b in explanation.doc.blocks if b[0] == "eq"]


def _pick(eqs, *prefixes, contains: str | None = None) -> list[dict]:
    found = []
    for tex, note in eqs:
        key = tex.replace(" ", "")
        wanted = any(key.startswith(p.replace(" ", "")) for p in prefixes) or (contains and contains in key)
        if wanted and tex not in [f["tex"] for f in found]:
            found.append({"tex": tex, "mathml": to_mathml(tex, display=True),
                          "note": prose_to_html(note) if note else ""})
    return found


def backprop_view(net, X, Y, l2: float, rows, step: int, shown: int = 8, about: str = "",
                  preset: str | None = None, notation: str = "bracket") -> dict:
    """A JSON-able dict of stages for the batch (X, Y) (rows: their indices in the training set).

    ``notation`` 'bracket' shows deltaprop's own arrays (rows are examples, δ = ∂J/∂Z); 'columns'
    shows them as notes 001 and 003 write them: examples in columns (each Z, A the transpose of
    deltaprop's array), b a column, and dZ^[l] = m δ^[l]ᵀ, with those notes' equations."""
    if notation not in ("bracket", "columns"):
        raise ValueError(f"unknown notation {notation!r}: bracket or columns")
    cols = notation == "columns"
    tr = deltaprop.trace(net, X, Y, l2=l2)
    d = tr.to_dict()
    ex = deltaprop.explain(net, l2=l2, notation=notation)
    eqs = _equations(ex)
    L = len(tr.layers)
    m = tr.m
    check_ok = bool(d["gradient_check"]["ok"])
    stages = []

    def batch(name, a, role, layer=None):  # a (m, n) array of the batch, as this notation shows it
        return _matrix(name, a.T, 16, role, layer) if cols else _matrix(name, a, shown, role, layer)

    def bias(name, b, role, layer):
        return _matrix(name, np.asarray(b).reshape(-1, 1), 16, role, layer) if cols else _vector(name, b, role, layer)

    def error(l, delta):  # the backward error of layer l: δ (rows) or dZ = m δᵀ (columns)
        return (_matrix(f"dZ^{{[{l}]}}", m * np.asarray(delta).T, 16, "delta", l) if cols
                else _matrix(f"\\delta^{{[{l}]}}", delta, shown, "delta", l))

    err = (lambda l: f"dZ^{{[{l}]}}") if cols else (lambda l: f"\\delta^{{[{l}]}}")
    stages.append({"id": "batch", "title": "The batch", "short": "Batch", "kind": "input", "layer": 0,
                   "text": prose_to_html(f"The next Step trains on {m} example{'s' if m > 1 else ''} "
                                         f"(rows {', '.join(str(int(r) + 1) for r in rows[:shown])}"
                                         f"{', …' if m > shown else ''} of the training set). "
                                         + ("Examples are columns, as in notes 001 and 003; $Y$ is one-hot."
                                            if cols else "Rows are examples; $Y$ is one-hot.")),
                   "equations": _pick(eqs, "A^{[0]} ="),
                   "matrices": [batch("X = A^{[0]}", tr.X, "input", 0), batch("Y", tr.Y, "target")]})
    for r in tr.layers:
        l = r["l"]
        how = (f"Each row of $W^{{[{l}]}}$ meets each column of $A^{{[{l - 1}]}}$; the column $b^{{[{l}]}}$ is added "
               f"to every column" if cols else
               f"Each row of $A^{{[{l - 1}]}}$ meets each row of $W^{{[{l}]}}$; the bias is added to every row")
        stages.append({
            "id": f"forward-{l}", "title": f"Forward: layer {l}", "short": f"Forward {l}", "kind": "forward", "layer": l,
            "text": prose_to_html(f"{how}; then {r['activation']} acts on each entry."),
            "equations": _pick(eqs, f"Z^{{[{l}]}} =", f"A^{{[{l}]}} ="),
            "matrices": [_matrix(f"W^{{[{l}]}}", r["W"], 16, "weight", l), bias(f"b^{{[{l}]}}", r["b"], "bias", l),
                         batch(f"Z^{{[{l}]}}", r["Z"], "z", l), batch(f"A^{{[{l}]}}", r["A"], "a", l)],
        })
    stages.append({
        "id": "cost", "title": "The cost", "short": "Cost", "kind": "cost", "layer": L,
        "text": prose_to_html(f"$J = {tr.cost:.6g}$: the mean loss over the batch"
                              + (f" ({tr.data_cost:.6g}) plus the L2 term ({tr.reg_cost:.6g})" if l2 else "")
                              + ". The loss of each example: "
                              + ", ".join(f"{v:.4g}" for v in tr.loss_i[:shown]) + ("…" if m > shown else "") + "."),
        "equations": _pick(eqs, "J =", "\\text{loss}_i"),
        "value": tr.cost, "matrices": [],
    })
    last = tr.layers[-1]
    stages.append({
        "id": "output-error", "title": f"Output error {'dZ' if cols else 'δ'}[{L}]",
        "short": "Output error", "kind": "output", "layer": L,
        "text": prose_to_html("Prediction minus target, not divided by $m$: notes 001 and 003 divide by "
                              f"$m = {m}$ in $dW$ and $db$ instead (so $dZ = m\\,\\delta^\\top$ of deltaprop's "
                              "arrays)." if cols else
                              f"Prediction minus target, divided by $m = {m}$: the one place $1/m$ enters."),
        "equations": _pick(eqs, f"{err(L)} ="),
        "matrices": [batch(f"A^{{[{L}]}}", last["A"], "a", L), batch("Y", tr.Y, "target"), error(L, last["delta"])],
    })
    for r in reversed(tr.layers):
        l = r["l"]
        mats = [_matrix(f"dW^{{[{l}]}}", r["dW"], 16, "dW", l),
                _matrix("\\text{finite differences}", r["dW_numeric"], 16, "numeric", l),
                bias(f"db^{{[{l}]}}", r["db"], "db", l),
                bias("\\text{finite differences}", r["db_numeric"], "numeric", l)]
        prefixes = [f"dW^{{[{l}]}} =", f"db^{{[{l}]}} ="]
        contains = None
        if l > 1:
            below = tr.layers[l - 2]
            prefixes.append(f"{err(l - 1)} =")
            contains = f"'(Z^{{[{l - 1}]}})="
            mats += [batch(f"g'(Z^{{[{l - 1}]}})", below["g_prime"], "gprime", l - 1), error(l - 1, below["delta"])]
        stages.append({
            "id": f"backward-{l}", "title": f"Backward: layer {l}", "short": f"Backward {l}", "kind": "backward",
            "layer": l,
            "text": prose_to_html(f"Gradients of layer {l} from its error ${err(l)}$ and its input "
                                  f"$A^{{[{l - 1}]}}$" + (f"; then the error sent back to layer {l - 1}." if l > 1 else ".")),
            "equations": _pick(eqs, *prefixes, contains=contains),
            "check": {"dW": r["dW_error"], "db": r["db_error"],
                      "dW_ok": bool(r.get("dW_ok", r["dW_error"] <= 1e-6)),
                      "db_ok": bool(r.get("db_ok", r["db_error"] <= 1e-6))},
            "matrices": mats,
        })
    stages.append({
        "id": "update", "title": "Update", "short": "Update", "kind": "update", "layer": L,
        "text": prose_to_html("Plain gradient descent is shown; the session's optimizer uses the same $dW$ and $db$ "
                              "and changes only how the step is taken. Press Step to take it."),
        "equations": _pick(eqs, *(f"W^{{[{l}]}} \\leftarrow" for l in range(1, L + 1))),
        "matrices": [],
    })
    return {
        "step": step, "m": m, "l2": l2, "preset": preset, "about": about, "notation": notation,
        "max_error": tr.max_error, "check_ok": check_ok, "h": tr.h,
        "stages": stages,
        # The picture names the error as the panels beside it do: δ in rows, dZ = m δᵀ in the notes' columns.
        "picture": network_svg(tr.net, tr, max_units=12, notation=notation,
                               title=f"this batch: z, a and {error_name(notation)} per unit (example 1)"),
    }
