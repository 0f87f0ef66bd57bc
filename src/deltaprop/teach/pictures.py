"""Pictures of a network as SVG: units as nodes, weights as edges coloured by sign and magnitude.

    >>> svg = network_svg(net)                 # the architecture with its shapes
    >>> svg = network_svg(net, trace=t)        # and, per unit, z, a and δ of a traced batch
    >>> svg = network_svg(net, t, notation="columns")  # as notes 001 and 003: dZ = m δᵀ, A^[l] n × m

Small layers are drawn unit by unit; a layer wider than ``max_units`` becomes one block labelled
with its size, and the weights into or out of it one band labelled with the shape of ``W``. Blue
edges are positive weights, orange ones negative; the thicker and darker, the larger ``|w|``
relative to the largest weight of the picture. With a trace, each unit's z, a and δ of the first
example are written beside it (when the layers are small enough to leave room) and every unit
carries a tooltip (``<title>``) with its values for each example of the batch.

The error is named as the document beside the picture names it: ``notation="bracket"`` (rows are
examples) writes deltaprop's ``δ = ∂J/∂Z`` and ``A[l]: m×n``; ``"columns"`` (notes 001 and 003)
writes their ``dZ = m δᵀ`` (the same error times the batch size m: ``dZ^[L] = A^[L] − Y``) and
``A[l]: n×m``. By default the notation is the trace's own.

The same SVG goes into ``explain --picture``, ``trace --picture``, the HTML hand-outs and the
playground, which styles the hooks it leaves (``class="unit"``, ``data-layer``, ``data-unit``).
"""

from __future__ import annotations

import html

import numpy as np

__all__ = ["NEGATIVE", "POSITIVE", "add_picture", "error_name", "network_svg"]

POSITIVE = "#1f6fb4"   # blue: positive weights and values
NEGATIVE = "#e0731c"   # orange: negative ones


def _num(x: float, digits: int = 3) -> str:
    x = float(x)
    if x == 0:
        return "0"
    return f"{x:.{digits}g}".replace("-", "−")


def _esc(text: str) -> str:
    return html.escape(str(text), quote=True)


def _layer_values(trace):
    """[(Z, A, delta) or None per layer 0..L] from a Trace (or anything with ``layers`` of dicts)."""
    if trace is None:
        return None
    recs = trace.layers if hasattr(trace, "layers") else trace
    X = getattr(trace, "X", None)
    out = [(None, None if X is None else np.asarray(X), None)]
    for r in recs:
        out.append((np.asarray(r["Z"]), np.asarray(r["A"]), np.asarray(r["delta"])))
    return out


def error_name(notation: str) -> str:
    """The name of a unit's backward error in ``notation``: δ (rows, deltaprop's) or dZ (columns, notes 001
    and 003)."""
    return "dZ" if notation == "columns" else "δ"


def network_svg(net, trace=None, *, max_units: int = 12, width: int | None = None, height: int | None = None,
                title: str | None = None, labels: bool = True, notation: str | None = None) -> str:
    """An SVG picture of ``net`` (a Network); with ``trace`` (a Trace of that network), z, a and the
    error per unit: δ (``notation="bracket"``) or dZ = m δᵀ (``"columns"``; default: the trace's notation).

    ``max_units``: layers wider than this are drawn as one block. ``width``/``height`` default to a
    size that fits the layers; the drawing scales with the ``viewBox``.
    """
    notation = notation or getattr(trace, "notation", None) or "bracket"
    in_columns = notation == "columns"
    err = error_name(notation)
    sizes = list(net.sizes)
    acts = ["input"] + list(net.activations)
    L = len(sizes) - 1
    values = _layer_values(trace)
    if values is not None and in_columns:
        # Notes 001 and 003 leave 1/m out of dZ (they divide in dW and db): dZ = m δᵀ, one example a column.
        values = [(Z, A, None if D is None else D * D.shape[0]) for Z, A, D in values]
    full = [n <= max_units for n in sizes]
    tallest = max(n if f else 1 for n, f in zip(sizes, full))
    show_values = values is not None and max(n for n, f in zip(sizes, full) if f) <= 8
    unit_gap = 58 if show_values else 42
    col_gap = 210 if show_values else 150
    top, bottom = 46, 70 if labels else 20
    w = width or int(90 + col_gap * L + (120 if show_values else 60))
    h = height or int(top + bottom + max(tallest * unit_gap, 120))
    x0 = 60
    cols = [x0 + (w - x0 - (110 if show_values else 60)) * l / max(L, 1) for l in range(L + 1)]
    mid = top + (h - top - bottom) / 2

    def ys(n):
        span = (n - 1) * unit_gap
        return [mid - span / 2 + k * unit_gap for k in range(n)]

    weights = [np.asarray(layer.W, dtype=float) for layer in net.layers]
    wmax = max((float(np.max(np.abs(W))) for W in weights if W.size), default=1.0) or 1.0
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
             f'role="img" aria-label="{_esc(title or "network " + "-".join(map(str, sizes)))}" '
             'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12" class="deltaprop-network">')]
    parts.append(f"<title>{_esc(title or 'The ' + '-'.join(map(str, sizes)) + ' network')}</title>")
    parts.append('<rect x="0" y="0" width="100%" height="100%" fill="#ffffff"/>')

    # Edges first, so the units sit on top of them.
    for l in range(1, L + 1):
        W = weights[l - 1]
        xa, xb = cols[l - 1], cols[l]
        parts.append(f'<g class="edges" data-layer="{l}">')
        if full[l - 1] and full[l]:
            ya, yb = ys(sizes[l - 1]), ys(sizes[l])
            for j in range(sizes[l]):
                for k in range(sizes[l - 1]):
                    v = W[j, k]
                    r = min(abs(v) / wmax, 1.0)
                    color = POSITIVE if v >= 0 else NEGATIVE
                    parts.append(
                        f'<line x1="{xa:.1f}" y1="{ya[k]:.1f}" x2="{xb:.1f}" y2="{yb[j]:.1f}" stroke="{color}" '
                        f'stroke-width="{0.6 + 4.4 * r:.2f}" stroke-opacity="{0.25 + 0.7 * r:.2f}">'
                        f"<title>W^[{l}]_{j + 1},{k + 1} = {_num(v, 4)}</title></line>")
        else:
            # A band: its colour is the sign of the mean weight, its opacity the mean |w|.
            mean = float(W.mean()) if W.size else 0.0
            r = min(float(np.abs(W).mean()) / wmax, 1.0) if W.size else 0.0
            color = POSITIVE if mean >= 0 else NEGATIVE
            ha = (sizes[l - 1] - 1) * unit_gap if full[l - 1] else 60
            hb = (sizes[l] - 1) * unit_gap if full[l] else 60
            pts = (f"{xa:.1f},{mid - ha / 2 - 8:.1f} {xb:.1f},{mid - hb / 2 - 8:.1f} "
                   f"{xb:.1f},{mid + hb / 2 + 8:.1f} {xa:.1f},{mid + ha / 2 + 8:.1f}")
            parts.append(f'<polygon points="{pts}" fill="{color}" fill-opacity="{0.12 + 0.35 * r:.2f}" stroke="none">'
                         f"<title>W^[{l}] ({W.shape[0]}×{W.shape[1]}): mean {_num(mean, 3)}, "
                         f"mean |w| {_num(np.abs(W).mean(), 3)}</title></polygon>")
        parts.append("</g>")
        if labels:
            xm = (xa + xb) / 2
            parts.append(f'<text x="{xm:.1f}" y="{top - 22}" text-anchor="middle" fill="#444">'
                         f'W<tspan dy="-5" font-size="9">[{l}]</tspan><tspan dy="5"> {W.shape[0]}×{W.shape[1]}</tspan></text>')

    # Units (or blocks), with their values.
    for l in range(L + 1):
        x = cols[l]
        n = sizes[l]
        Z, A, D = values[l] if values is not None else (None, None, None)
        parts.append(f'<g class="layer" data-layer="{l}">')
        if full[l]:
            for k, y in enumerate(ys(n)):
                tip = [f"layer {l}, unit {k + 1}" + (" (input)" if l == 0 else f" ({acts[l]})")]
                fill = "#f4f4f4"
                if values is not None:
                    if A is not None:
                        for i in range(A.shape[0]):
                            row = []
                            if Z is not None:
                                row.append(f"z = {_num(Z[i, k], 4)}")
                            row.append(("x = " if l == 0 else "a = ") + _num(A[i, k], 4))
                            if D is not None:
                                row.append(f"{err} = {_num(D[i, k], 4)}")
                            tip.append(f"example {i + 1}: " + ", ".join(row))
                        a = float(A[0, k])
                        s = min(abs(a), 1.0)
                        base = (31, 111, 180) if a >= 0 else (224, 115, 28)
                        fill = "#" + "".join(f"{int(255 - (255 - c) * (0.15 + 0.6 * s)):02x}" for c in base)
                else:
                    b = net.layers[l - 1].b[k] if l else None
                    if b is not None:
                        tip.append(f"b = {_num(b, 4)}")
                parts.append(f'<g class="unit" data-layer="{l}" data-unit="{k + 1}">'
                             f'<circle cx="{x:.1f}" cy="{y:.1f}" r="14" fill="{fill}" stroke="#333" stroke-width="1.3"/>'
                             f"<title>{_esc(chr(10).join(tip))}</title></g>")
                if show_values and A is not None:
                    lines = []
                    if Z is not None:
                        lines.append(f"z {_num(Z[0, k])}")
                    lines.append(("x " if l == 0 else "a ") + _num(A[0, k]))
                    if D is not None:
                        lines.append(f"{err} {_num(D[0, k])}")
                    # A white card under the values: the weight lines (up to 5 px wide) run under the labels
                    # and struck through digits ('a 0.574' read as 'a 0:574'). DejaVu Sans' digits are 0.64 em.
                    card_w = 4 + 0.66 * 10.5 * max(len(text) for text in lines)
                    parts.append(f'<rect class="values" x="{x + 17:.1f}" y="{y - 18:.1f}" width="{card_w:.1f}" '
                                 f'height="{12 * len(lines) + 3}" rx="2" fill="#fff" fill-opacity="0.9"/>')
                    for t, text in enumerate(lines):
                        color = "#b0400a" if text.startswith(err) else "#222"
                        parts.append(f'<text x="{x + 19:.1f}" y="{y - 8 + 12 * t:.1f}" font-size="10.5" '
                                     f'fill="{color}" stroke="#fff" stroke-width="3" paint-order="stroke">{_esc(text)}</text>')
        else:
            parts.append(f'<rect x="{x - 22:.1f}" y="{mid - 38:.1f}" width="44" height="76" rx="8" fill="#f4f4f4" '
                         f'stroke="#333" stroke-width="1.3"><title>layer {l}: {n} units</title></rect>')
            parts.append(f'<text x="{x:.1f}" y="{mid + 4:.1f}" text-anchor="middle" font-size="13" '
                         f'font-weight="bold">{n}</text>')
            if values is not None and A is not None:
                extra = [("‖x‖ " if l == 0 else "‖a‖ ") + _num(np.linalg.norm(A[0]))]
                if D is not None:
                    extra.append(f"‖{err}‖ {_num(np.linalg.norm(D[0]))}")
                for t, text in enumerate(extra):
                    parts.append(f'<text x="{x:.1f}" y="{mid + 54 + 12 * t:.1f}" text-anchor="middle" '
                                 f'font-size="10.5">{_esc(text)}</text>')
        parts.append("</g>")
        if labels:
            name = "input" if l == 0 else ("output" if l == L else f"layer {l}")
            act = "" if l == 0 else acts[l]
            shape = f"A[{l}]: {n}×m" if in_columns else f"A[{l}]: m×{n}"
            for t, text in enumerate((name, act, shape)):
                if text:
                    parts.append(f'<text x="{x:.1f}" y="{h - bottom + 30 + 14 * t:.1f}" text-anchor="middle" '
                                 f'fill="{"#111" if t == 0 else "#555"}" font-weight="{"bold" if t == 0 else "normal"}">'
                                 f"{_esc(text)}</text>")
    parts.append("</svg>")
    return "\n".join(parts)


def add_picture(doc, net, trace=None, notation: str | None = None) -> None:
    """Put the network's picture into a teaching document (a ``Doc``) after its opening paragraphs, in the
    document's ``notation`` (default: the trace's): HTML shows it; the text, Markdown and LaTeX renderings
    leave it out."""
    notation = notation or getattr(trace, "notation", None) or "bracket"
    err = "dZ" if notation == "columns" else "\\delta"
    at = next((k for k, b in enumerate(doc.blocks) if k > 0 and b[0] == "h"), len(doc.blocks))
    caption = ("The network: units as circles, weights as lines (blue positive, orange negative, thicker is larger)"
               + (f", with $z$, $a$ and ${err}$ of example 1 beside each unit; hover a unit for each example."
                  if trace is not None else "; hover a line for its weight."))
    doc.blocks.insert(at, ("picture", network_svg(net, trace, notation=notation), caption))
