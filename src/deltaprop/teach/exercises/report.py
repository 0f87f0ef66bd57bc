"""What a check found, as an object: text in a terminal, HTML in a notebook, a dict for JSON.

    >>> report = deltaprop.check(backprop)      # in a notebook the report renders as an HTML table
    >>> report.ok, report.exit_code              # True/False; 0 right, 1 wrong, 2 cannot run
    >>> print(report)                            # the same as text

For every item (the cost, each layer's dW and db, ...) the report gives the verdict, the worst relative
error against deltaprop's own answer over the cases, the best scalar ratio (yours ≈ ratio × deltaprop's),
and for a named mistake the relative error against the variant that reproduces it. Each named mistake
comes with the line of the derivation (from :func:`deltaprop.explain`) that it contradicts.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field

import numpy as np

from deltaprop.model import Network
from deltaprop.teach.document import tex_to_text

from . import zoo

__all__ = ["CheckReport"]

_STATUS = {"right": "RIGHT", "wrong": "WRONG", "error": "CANNOT RUN"}
_EXIT = {"right": 0, "wrong": 1, "error": 2}


def _fmt(x: float) -> str:
    if np.isnan(x):
        return "–"
    if x == float("inf"):
        return "shape differs"
    if x == 0:
        return "0"
    return f"{x:.1e}" if abs(x) < 1e-3 or abs(x) >= 1e4 else f"{x:.4g}"


@dataclass
class CheckReport:
    """The result of :func:`deltaprop.check`: ``status`` ('right', 'wrong' or 'error'), ``ok``,
    ``exit_code`` (0, 1, 2), ``items`` (per-item results), ``mistakes`` (the named slips with their
    evidence), ``error`` (why the function could not be checked), ``cases`` (what ran)."""

    exercise: object
    cases: list
    status: str = "right"
    items: list = field(default_factory=list)
    stories: list = field(default_factory=list)
    error: object = None
    source: str = ""
    from_command: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "right"

    @property
    def exit_code(self) -> int:
        return _EXIT[self.status]

    @property
    def mistakes(self) -> list[dict]:
        """The named slips: for each set of one or two, the items it reproduces, the worst relative error
        against its variant, the ratio, and the derivation lines it contradicts."""
        groups: dict = {}
        for r in self.items:
            if r.verdict == "named":
                groups.setdefault(r.mistakes, []).append(r)
        out = []
        for keys, rs in groups.items():
            out.append({
                "keys": list(keys),
                "titles": [zoo.MISTAKES[k].title for k in keys],
                "items": _items_text(rs),
                "variant_error": max(r.variant_error for r in rs),
                "ratio": rs[0].ratio if all(abs(r.ratio - rs[0].ratio) <= 1e-6 * abs(rs[0].ratio) for r in rs)
                else float("nan"),
                "ratio_is": _ratio_meaning(rs[0].ratio, self.cases[rs[0].case].m),
                "also": sorted({" + ".join(zoo.MISTAKES[k].title for k in alt) for r in rs for alt in r.alternatives}),
                "lines": [self._derivation(zoo.MISTAKES[k], rs, keys) for k in keys],
            })
        return out

    @property
    def unknown(self) -> list:
        return [r for r in self.items if r.verdict == "unknown"]

    # -- derivation lines, from explain ---------------------------------------------------------------
    def _network(self, case):
        out = case.activations[-1]
        sizes = case.sizes if len(case.sizes) > 1 else [2] + case.sizes
        hidden = case.activations[:-1] or "relu"
        return Network.from_sizes(sizes, hidden=hidden, output=out, dtype="float64")

    def _derivation(self, mistake: zoo.Mistake, results, keys=()) -> dict:
        """The explain line (Unicode) the slip contradicts, the formula the learner's numbers equal, and how to
        see the whole derivation for that network."""
        from deltaprop.teach.explain import explain

        first = max(results, key=lambda r: self.cases[r.case].l2)
        case = self.cases[first.case]
        net = self._network(case)
        L = len(net.layers)
        layers = [r.item[1] for r in results if len(r.item) > 1 and isinstance(r.item[1], int) and r.group == first.group]
        top = max(layers) if layers else L
        l = {"output": L, "recursion": L, "forward": top, "dW": top, "db": top, "update": 1}.get(mistake.line, L)
        if mistake.line == "recursion" and L < 2:
            l = L
        k = l - 1
        expl = explain(net, l2=case.l2)
        eqs = [b[1] for b in expl.document().blocks if b[0] == "eq"]
        patterns = {
            "output": [rf"^\\delta\^\{{\[{L}\]\}} = \\frac\{{\\partial J"],
            "recursion": [rf"^\\delta\^\{{\[{k}\]\}} = \\left\(", rf"^\\[a-z_\\{{}}]+'\(Z\^\{{\[{k}\]\}}\) ="],
            "dW": [rf"^dW\^\{{\[{l}\]\}} = "],
            "db": [rf"^db\^\{{\[{l}\]\}} = "],
            "cost": [r"^J = "],
            "forward": [rf"^Z\^\{{\[{l}\]\}} = ", rf"^A\^\{{\[{l}\]\}} = "],
            "update": [rf"^W\^\{{\[{l}\]\}} \\leftarrow"],
        }[mistake.line]
        lines = []
        for pat in patterns:
            hit = next((e for e in eqs if re.search(pat, e)), None)
            if hit:
                lines.append(tex_to_text(hit))
        hidden = sorted(set(net.activations[:-1]))
        sizes = ",".join(map(str, net.sizes))
        # note 000's loop (Θ = [b | W], Δ, D) reads best in note 000's own notation
        theta = self.exercise.kind == "theta"
        if self.from_command:
            cmd = f"deltaprop explain --layers {sizes}" + (f" --activation {hidden[0]}" if len(hidden) == 1 else "") \
                  + f" --output {net.activations[-1]}" + (f" --l2 {case.l2:g}" if case.l2 else "") \
                  + (" --notation theta" if theta else "")
        else:
            cmd = f"deltaprop.explain({net.sizes}" + (f", hidden={hidden[0]!r}" if len(hidden) == 1 else "") \
                  + f", output={net.activations[-1]!r}" + (f", l2={case.l2:g}" if case.l2 else "") \
                  + (", notation='theta'" if theta else "") + ")"
        computed = mistake.computed.format(L=L, l=l, k=k)
        if mistake.key == "bias_reg" and "l2_no_m" in keys:  # note 000's D = Δ/m + λΘ: λ b, without 1/m
            computed = computed.replace("(λ/m) b", "λ b")
        return {"says": lines, "computed": computed, "explain": cmd, "note": mistake.note, "what": mistake.what}

    # -- renderings -----------------------------------------------------------------------------------
    def _cases_line(self) -> str:
        if not self.cases:
            return "no case ran: the function was never called"
        nets = []
        for c in self.cases:
            hidden = sorted(set(c.activations[:-1]))
            acts = (",".join(hidden) + "/" if hidden else "") + c.activations[-1]
            label = f"{'-'.join(map(str, c.sizes))} {acts}" if len(c.sizes) > 1 else f"{c.activations[-1]} outputs"
            if label not in nets:
                nets.append(label)
        seeds = sorted({c.seed for c in self.cases})
        ms = sorted({c.m for c in self.cases})
        l2s = sorted({c.l2 for c in self.cases})
        text = (f"{len(self.cases)} cases: {', '.join(nets)}; seeds {', '.join(map(str, seeds))}; "
                f"m = {', '.join(map(str, ms))}")
        if any(l2s):
            text += f"; λ = {', '.join(f'{v:g}' for v in l2s)}"
        return text

    def _verdict(self, r) -> str:
        if r.verdict == "right":
            return "right"
        if r.verdict == "named":
            return " + ".join(zoo.MISTAKES[k].title for k in r.mistakes)
        return "all zeros: not written yet?" if r.zeros else "wrong, not a known mistake"

    def _hint_advice(self) -> str:
        name = self.exercise.name
        return (f"deltaprop exercises hint {name}" if self.from_command
                else f"deltaprop.teach.exercises.hint({name!r})")

    def _summary(self) -> str:
        if self.status == "error":
            return "CANNOT RUN: the function could not be checked (nothing was compared)."
        if self.status == "right":
            what = ", ".join(dict.fromkeys(r.label.split("^")[0] for r in self.items))
            if any(isinstance(r.item[-1], int) for r in self.items):
                what += " of every layer"
            return (f"RIGHT: every item ({what}) is within a relative 1e-6 of deltaprop's, "
                    f"on all {len(self.cases)} cases.")
        named, unknown = self.mistakes, [r for r in self.unknown if not r.zeros]
        zeros = [r for r in self.unknown if r.zeros]
        parts = []
        if named:
            parts.append(f"{len(named)} mistake{'s' if len(named) > 1 else ''} named")
        if zeros:
            parts.append(f"{len(zeros)} item{'s' if len(zeros) > 1 else ''} all zeros (not written yet?)")
        if unknown:
            parts.append(f"{len(unknown)} item{'s' if len(unknown) > 1 else ''} wrong in a way deltaprop does not "
                         "know")
        right = sum(r.verdict == "right" for r in self.items)
        return f"WRONG: {' and '.join(parts)}; {right} of {len(self.items)} items right."

    def to_text(self) -> str:
        ex = self.exercise
        out = [f"deltaprop check: {ex.name} ({ex.title}), {ex.signature}" + (f", from {self.source}" if self.source else ""),
               self._cases_line(), ""]
        if self.status == "error":
            err = self.error
            out.append(f"CANNOT RUN: {err.message}")
            if err.where:
                out.append(f"  at {err.where}" + (f":  {err.line}" if err.line else ""))
            out.append(f"  hint: fix that, then check again; {self._hint_advice()} shows the first hint")
            return "\n".join(out)
        rows = [("item", "verdict", "vs deltaprop", "ratio", "vs the mistake")]
        group = None
        for r in self.items:
            if r.group != group and r.group:
                rows.append((f"{r.group}:", "", "", "", ""))
            group = r.group
            rows.append((r.label, self._verdict(r), _fmt(r.error),
                         "" if r.verdict == "right" else _fmt(r.ratio),
                         _fmt(r.variant_error) if r.verdict == "named" else ""))
        widths = [max(len(row[i]) for row in rows if not row[0].endswith(":")) for i in range(5)]
        for row in rows:
            out.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        out.append("  (vs deltaprop: the worst relative error over the cases; ratio: yours ≈ ratio × deltaprop's "
                   "on that case)")
        out.append("")
        out.append(self._summary())
        for m in self.mistakes:
            out.append("")
            title = " + ".join(m["titles"])
            ratio = "" if np.isnan(m["ratio"]) else f"; ratio {_fmt(m['ratio'])}{m['ratio_is']}"
            out.append(f"{title}: your numbers equal this variant to {_fmt(m['variant_error'])} on every case{ratio}")
            out.append(f"  in {m['items']}")
            for line in m["lines"]:
                out.append(f"  {line['what']}.")
                for says in line["says"]:
                    out.append(f"    the derivation says:  {says}")
                out.append(f"    your numbers fit:     {line['computed']}")
                if line["note"]:
                    out.append(f"    ({line['note']})")
            if m["also"]:
                out.append(f"  (the same numbers also come from: {'; '.join(m['also'])})")
            out.append(f"  the whole derivation: {m['lines'][0]['explain']}")
        for r in self.unknown:
            if r.zeros:
                continue
            c = self.cases[r.case]
            out.append("")
            out.append(f"{r.full_label}: wrong, not a known mistake. Worst case {c.label}: relative error {_fmt(r.error)}, "
                       f"‖yours‖ = {_fmt(r.yours_norm)}, ‖deltaprop's‖ = {_fmt(r.true_norm)}, ratio {_fmt(r.ratio)}.")
        if self.status == "wrong":
            out.append("")
            out.append(f"hint: {self._hint_advice()} (then 2, 3, ...) reveals the hints one at a time")
        return "\n".join(out)

    def to_html(self, standalone: bool = False) -> str:
        """The report as HTML: a ``<div>`` with its own scoped styles (what a notebook shows), or with
        ``standalone=True`` a whole page (what ``deltaprop check --format html`` writes)."""
        from deltaprop.teach.document import HTML_STYLE, html_page

        fragment = self._html_fragment(HTML_STYLE)
        return html_page(fragment, f"deltaprop check: {self.exercise.name}") if standalone else fragment

    def _html_fragment(self, style: str) -> str:
        ex = self.exercise

        def e(text) -> str:  # escaped, with W^[1] as W<sup>[1]</sup>
            return re.sub(r"\^(\[\d+\]|\(\d+\))", r"<sup>\1</sup>", html.escape(str(text)))

        color = {"right": "#1a7f37", "wrong": "#b35900", "error": "#c62828"}[self.status]
        out = ['<div class="deltaprop deltaprop-check">', f"<style>{style}</style>",
               f"<p><b>deltaprop check</b>: <code>{e(ex.name)}</code> ({e(ex.title)}), <code>{e(ex.signature)}</code>"
               + (f", from <code>{e(self.source)}</code>" if self.source else "") + "</p>",
               f"<p><small>{e(self._cases_line())}</small></p>"]
        if self.status == "error":
            err = self.error
            out.append(f'<p style="color:{color}"><b>CANNOT RUN</b>: {e(err.message)}</p>')
            if err.where:
                out.append(f"<pre>at {e(err.where)}" + (f":  {e(err.line)}" if err.line else "") + "</pre>")
            out.append("</div>")
            return "\n".join(out)
        out.append("<table><thead><tr><th>item</th><th>verdict</th><th>vs deltaprop</th><th>ratio</th>"
                   "<th>vs the mistake</th></tr></thead><tbody>")
        group = None
        for r in self.items:
            if r.group != group and r.group:
                out.append(f'<tr><td colspan="5"><i>{e(r.group)}</i></td></tr>')
            group = r.group
            c = {"right": "#1a7f37", "named": "#b35900", "unknown": "#c62828"}[r.verdict]
            out.append(f"<tr><td>{e(r.label)}</td><td style=\"color:{c}\">{e(self._verdict(r))}</td>"
                       f"<td>{e(_fmt(r.error))}</td><td>{'' if r.verdict == 'right' else e(_fmt(r.ratio))}</td>"
                       f"<td>{e(_fmt(r.variant_error)) if r.verdict == 'named' else ''}</td></tr>")
        out.append("</tbody></table>")
        out.append(f'<p style="color:{color}"><b>{e(self._summary())}</b></p>')
        for m in self.mistakes:
            out.append(f"<p><b>{e(' + '.join(m['titles']))}</b>: your numbers equal this variant to "
                       f"{e(_fmt(m['variant_error']))} on every case, in {e(m['items'])}</p><ul>")
            for line in m["lines"]:
                says = "<br>".join(f"<code>{e(s)}</code>" for s in line["says"])
                out.append(f"<li>{e(line['what'])}.<br>the derivation says: {says}<br>your numbers fit: "
                           f"<code>{e(line['computed'])}</code>" + (f"<br><i>{e(line['note'])}</i>" if line["note"] else "")
                           + "</li>")
            out.append(f"</ul><p><small>the whole derivation: <code>{e(m['lines'][0]['explain'])}</code></small></p>")
        for r in self.unknown:
            if r.zeros:
                continue
            c = self.cases[r.case]
            out.append(f"<p><b>{e(r.full_label)}</b>: wrong, not a known mistake. Worst case {e(c.label)}: relative error "
                       f"{e(_fmt(r.error))}, ‖yours‖ = {e(_fmt(r.yours_norm))}, ‖deltaprop's‖ = {e(_fmt(r.true_norm))}, "
                       f"ratio {e(_fmt(r.ratio))}.</p>")
        out.append("</div>")
        return "\n".join(out)

    def to_dict(self) -> dict:
        d = {"exercise": self.exercise.name, "status": self.status, "ok": self.ok, "exit_code": self.exit_code,
             "source": self.source, "cases": [c.label for c in self.cases]}
        if self.status == "error":
            d["error"] = {"message": self.error.message, "where": self.error.where, "line": self.error.line}
            return d
        d["items"] = [{"item": r.label, "network": r.group, "verdict": r.verdict, "mistakes": list(r.mistakes),
                       "relative_error": _num(r.error), "ratio": _num(r.ratio), "variant_error": _num(r.variant_error),
                       "worst_case": self.cases[r.case].label} for r in self.items]
        d["mistakes"] = [{k: v for k, v in m.items()} for m in self.mistakes]
        for m in d["mistakes"]:
            m["variant_error"], m["ratio"] = _num(m["variant_error"]), _num(m["ratio"])
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        named = ", ".join(" + ".join(m["titles"]) for m in self.mistakes) if self.status == "wrong" else ""
        return f"CheckReport({self.exercise.name!r}, {self.status}" + (f": {named}" if named else "") + ")"

    def _repr_html_(self) -> str:
        return self.to_html()


def _ratio_meaning(r: float, m: int) -> str:
    """' = 1/m (m = 7)' when the ratio is a known factor of the case's m."""
    if not np.isfinite(r) or m < 2:
        return ""
    for value, text in ((1.0 / m, "1/m"), (float(m), "m"), (-1.0, "−1")):
        if abs(r - value) <= 1e-6 * abs(value):
            return f" = {text}" + (f" (m = {m})" if "m" in text else "")
    return ""


def _items_text(results) -> str:
    """'dW^[1], db^[1] (3-4-2 relu/softmax); dW^[1], ... (4-5-3-3 tanh/sigmoid)'."""
    groups: dict = {}
    for r in results:
        groups.setdefault(r.group, []).append(r.label)
    return "; ".join(", ".join(labels) + (f" ({g})" if g else "") for g, labels in groups.items())


def _num(x):
    x = float(x)
    return None if not np.isfinite(x) else x
