"""A small document model shared by explain, trace and diagnose: one source, five renderings.

Content is written once, with mathematics in LaTeX (``$...$`` inline in prose, whole equations in
``eq`` blocks), and rendered as

- plain text for the terminal (LaTeX turned into Unicode: ``W^{[2]\\top}`` → ``W^[2]ᵀ``), wrapped to a
  width (the command passes the terminal's): wide matrices lose middle columns, side-by-side pairs stack,
- Markdown with ``$...$`` / ``$$...$$`` math (GitHub and Jupyter render it),
- a LaTeX document (ASCII only, amsmath) that fits the page: code breaks at punctuation, tables wrap,
  a display too wide for the line is scaled down to it, shapes are set in math mode,
- HTML with the mathematics as MathML generated here (:mod:`deltaprop.teach.mathml`): browsers
  typeset it with nothing to download; ``to_html(standalone=True)`` is a whole page (UTF-8, styles
  inline) that renders offline, and the fragment (with its own scoped styles) is what notebooks show,
- a JSON-able dict of the blocks (the objects' own ``to_dict`` add the data).

Library code never prints: every renderer returns a string.
"""

from __future__ import annotations

import html
import json
import re

import numpy as np

from deltaprop.errors import unknown_name

__all__ = ["Doc", "Renderable", "HTML_STYLE", "html_page", "tex_to_text", "fmt_number", "number_tex", "shape_tex", "shape_text"]

# -- LaTeX (the subset the documents use) to Unicode ---------------------------------------------------

_CMD = {
    "delta": "δ", "Delta": "Δ", "lambda": "λ", "alpha": "α", "Theta": "Θ", "theta": "θ", "sigma": "σ",
    "Sigma": "Σ", "partial": "∂", "odot": "⊙", "times": "×", "cdot": "·", "sum": "Σ", "top": "ᵀ",
    "leftarrow": "←", "to": "→", "rightarrow": "→", "quad": "   ", "qquad": "      ", ",": " ", ";": " ",
    ":": " ", "!": "", " ": " ", "log": "log", "exp": "exp", "max": "max", "min": "min", "left": "",
    "right": "", "|": "‖", "ldots": "…", "dots": "…", "cdots": "⋯", "vdots": "⋮", "ddots": "⋱",
    "approx": "≈", "le": "≤", "ge": "≥", "leq": "≤", "geq": "≥", "neq": "≠", "in": "∈", "{": "{", "}": "}",
    "_": "_", "prime": "′", "nabla": "∇", "mid": "|", "colon": ":", "ell": "ℓ", "infty": "∞",
    "equiv": "≡", "gg": "≫", "ll": "≪", "&": "&", "%": "%", "#": "#", "sqrt": "√", "eta": "η",
    "epsilon": "ε", "varepsilon": "ε", "mu": "μ", "pm": "±", "big": "", "Big": "", "bigl": "", "bigr": "",
    "displaystyle": "", "quad\n": "  ", "\\": "; ", "mathcal": "",
}
_ARG_TEXT = {"text", "mathrm", "operatorname", "mathbf", "mathit", "boldsymbol", "textrm", "textit", "emph",
             "texttt", "mathcal", "mathrel", "mathop"}
_MATHBB = {"R": "ℝ", "1": "𝟙"}
_ACCENT = {"hat": "\u0302", "tilde": "\u0303", "bar": "\u0304"}
_PRECOMPOSED = {("a", "bar"): "ā", ("y", "hat"): "ŷ", ("a", "hat"): "â"}
_SUP = dict(zip("0123456789+-−", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻"))
_SUB = dict(zip("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def tex_to_text(tex: str) -> str:
    """Unicode for the LaTeX subset used in deltaprop's documents (not a general converter)."""
    out, _ = _seq(tex, 0, None)
    return re.sub(r"(?<=\S) {2,}(?=[^ ])", lambda m: m.group(0) if len(m.group(0)) >= 3 else " ", out).strip()


def _seq(s: str, i: int, stop):
    parts = []
    while i < len(s):
        c = s[i]
        if c == stop:
            return "".join(parts), i + 1
        if c == "{":
            inner, i = _seq(s, i + 1, "}")
            parts.append(inner)
        elif c == "\\":
            text, i = _cmd(s, i)
            parts.append(text)
        elif c in "^_":
            arg, i = _arg(s, i + 1)
            parts.append(_script(c, arg))
        elif c == "-":
            parts.append("−")
            i += 1
        elif c in "&~":
            parts.append(" " if c == "~" else "")
            i += 1
        else:
            parts.append(c)
            i += 1
    return "".join(parts), i


def _arg(s: str, i: int):
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return "", i
    if s[i] == "{":
        return _seq(s, i + 1, "}")
    if s[i] == "\\":
        return _cmd(s, i)
    return ("−" if s[i] == "-" else s[i]), i + 1


def _cmd(s: str, i: int):
    j = i + 1
    if j < len(s) and not s[j].isalpha():
        name, j = s[j], j + 1
    else:
        while j < len(s) and s[j].isalpha():
            j += 1
        name = s[i + 1:j]
    if name == "frac":
        a, j = _arg(s, j)
        b, j = _arg(s, j)
        return _frac(a, b) + " ", j
    if name in ("partial", "nabla"):
        while j < len(s) and s[j] == " ":
            j += 1
        return _CMD[name], j
    if name in ("begin", "end"):
        _, j = _arg(s, j)
        return "", j
    if name == "mathbf":
        a, j = _arg(s, j)
        return ("𝟙" if a == "1" else a), j
    if name in _ARG_TEXT:
        return _arg(s, j)
    if name == "mathbb":
        a, j = _arg(s, j)
        return _MATHBB.get(a, a), j
    if name in _ACCENT:
        a, j = _arg(s, j)
        key = (a, name)
        if key in _PRECOMPOSED:
            return _PRECOMPOSED[key], j
        return (a + _ACCENT[name]) if len(a) == 1 else a, j
    return _CMD.get(name, name), j


def _frac(a: str, b: str) -> str:
    if any(ch in a for ch in " +−"):
        a = f"({a})"
    if any(ch in b for ch in " +−·×/") or (len(b) > 1 and b.isalnum()):
        b = f"({b})"
    return f"{a}/{b}"


def _script(kind: str, arg: str) -> str:
    if kind == "^":
        if arg == "ᵀ":
            return "ᵀ"
        if arg and all(ch in _SUP for ch in arg) and len(arg) <= 3:
            return "".join(_SUP[ch] for ch in arg)
        return "^" + arg if (len(arg) == 1 or arg[0] in "[(") else f"^({arg})"
    if len(arg) == 1 and arg in _SUB:
        return _SUB[arg]
    return f"_({arg})" if any(ch in arg for ch in "=+−") else "_" + arg


# -- numbers and shapes -------------------------------------------------------------------------------

def fmt_number(x: float, digits: int = 4) -> str:
    """x to ``digits`` significant digits (``−`` for minus; plain zero as ``0``)."""
    x = float(x)
    if x == 0:
        return "0"
    s = f"{x:.{digits}g}"
    return s.replace("-", "−")


def number_tex(x: float, digits: int = 4) -> str:
    s = f"{float(x):.{digits}g}" if x != 0 else "0"
    if "e" in s:
        mant, exp = s.split("e")
        return f"{mant}\\times 10^{{{int(exp)}}}"
    return s


def shape_text(shape) -> str:
    """(m, 4) → 'm×4'; (4,) → '4'."""
    return "×".join(str(s) for s in shape)


def shape_tex(shape) -> str:
    return "\\times ".join(str(s) for s in shape)


# -- the document -------------------------------------------------------------------------------------

_LATEX_PROSE = {"—": "---", "–": "--", "’": "'", "“": "``", "”": "''", "…": "\\ldots{}", "&": "\\&", "%": "\\%",
                "#": "\\#", "_": "\\_", "×": "$\\times$", "→": "$\\to$", "≈": "$\\approx$", "−": "-",
                "δ": "$\\delta$", "λ": "$\\lambda$", "Δ": "$\\Delta$", "Θ": "$\\Theta$", "α": "$\\alpha$",
                "⊙": "$\\odot$", "‖": "$\\|$", "≤": "$\\le$", "≥": "$\\ge$", "·": "$\\cdot$", "ᵀ": "$^\\top$",
                "²": "$^2$", "½": "$\\frac{1}{2}$", "√": "$\\surd$", "Σ": "$\\Sigma$", "✓": "ok", "✗": "NO",
                "~": "\\textasciitilde{}", "^": "\\^{}", "{": "\\{", "}": "\\}", "\\": "\\textbackslash{}"}


def _split_math(text: str):
    """[(is_math, piece), ...] for prose with $...$ inline math."""
    parts = re.split(r"(\$[^$]+\$)", text)
    return [(p.startswith("$") and p.endswith("$") and len(p) > 1, p) for p in parts if p]


def prose_to_text(text: str) -> str:
    """Prose for the terminal: math to Unicode, `code` and **bold** marks dropped."""
    return "".join(tex_to_text(p[1:-1]) if m else re.sub(r"\*\*|`", "", p) for m, p in _split_math(text))


_SHAPE = re.compile(r"(?<![\w$^])((?:m|\d+)(?:×(?:m|\d+))+)(?![\w])")


def prose_to_latex(text: str, breakable_code: bool = False) -> str:
    """Prose for LaTeX: $math$ kept, shapes such as m×4 set in math mode, `code` as \\texttt (or, with
    ``breakable_code``, as \\nolinkurl from the url package, which breaks long names at punctuation)."""
    out = []
    for is_math, piece in _split_math(text):
        if is_math:
            # TeX breaks a line inside inline math only outside \left...\right: plain brackets let a long sum wrap.
            out.append(piece.replace("\\left(", "(").replace("\\right)", ")"))
            continue
        for k, part in enumerate(re.split(r"(`[^`]+`)", piece)):
            if k % 2:
                code = part[1:-1]
                if breakable_code and "{" not in code and "}" not in code and "%" not in code and "#" not in code:
                    out.append("\\path{" + code + "}")
                else:
                    out.append("\\texttt{" + _latex_escape(code) + "}")
                continue
            for j, bit in enumerate(_SHAPE.split(part)):
                if j % 2:
                    out.append("$" + bit.replace("×", " \\times ") + "$")
                else:
                    out.append(re.sub(r"\*\*(.+?)\*\*", r"\\textbf{\1}", _latex_escape(bit)))
    return "".join(out)


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_PROSE.get(ch, ch) if ord(ch) < 128 and ch not in "&%#_~^{}\\" else
                   _LATEX_PROSE.get(ch, ch if ord(ch) < 128 else "?") for ch in text)


def prose_to_html(text: str) -> str:
    """Prose for HTML, the inline math as MathML."""
    from deltaprop.teach.mathml import prose_to_html as _html

    return _html(text)


def _matrix_cells(a: np.ndarray, max_rows: int, max_cols: int):
    """Rows of cell strings (numbers or None for an ellipsis), keeping the first and last rows/columns."""
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    r, c = a.shape
    rows = list(range(r)) if r <= max_rows else list(range(max_rows - 1)) + [None] + [r - 1]
    cols = list(range(c)) if c <= max_cols else list(range(max_cols - 1)) + [None] + [c - 1]
    return [[None if (i is None or j is None) else a[i, j] for j in cols] for i in rows], rows, cols


class Doc:
    """An ordered list of blocks: ``("h", level, text)``, ``("p", text)``, ``("eq", tex, note_tex)``,
    ``("mat", name_tex, array, note)``, ``("pair", [(name_tex, array), ...], note)``,
    ``("table", headers, rows)``, ``("list", items)``, ``("picture", svg, caption)`` (an SVG drawing:
    HTML shows it, the text, Markdown and LaTeX renderings leave it out). Text may hold ``$...$``
    inline LaTeX and ``code`` in backquotes."""

    def __init__(self, digits: int = 4, max_rows: int = 8, max_cols: int = 8):
        self.blocks: list[tuple] = []
        self.digits, self.max_rows, self.max_cols = digits, max_rows, max_cols

    # building
    def h(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def p(self, text: str):
        self.blocks.append(("p", text))

    def eq(self, tex: str, note: str = ""):
        self.blocks.append(("eq", tex, note))

    def mat(self, name_tex: str, array, note: str = ""):
        self.blocks.append(("mat", name_tex, np.asarray(array), note))

    def pair(self, items, note: str = ""):
        self.blocks.append(("pair", [(n, np.asarray(a)) for n, a in items], note))

    def table(self, headers, rows):
        self.blocks.append(("table", list(headers), [list(r) for r in rows]))

    def items(self, items):
        self.blocks.append(("list", list(items)))

    def picture(self, svg: str, caption: str = ""):
        self.blocks.append(("picture", svg, caption))

    # text -----------------------------------------------------------------------------------------
    def _mat_lines(self, name: str, a, width: int | None = None) -> list[str]:
        """The matrix as text lines; with ``width``, middle columns give way until the lines fit."""
        max_cols = self.max_cols
        while True:
            lines = self._mat_lines_at(name, a, max_cols)
            if width is None or max(len(ln) for ln in lines) <= width:
                return lines
            if max_cols <= 3:  # still too wide: the name on a line of its own, the matrix below it
                return [f"{name} ({shape_text(np.shape(a))}) ="] + self._mat_lines_at(name, a, max_cols, label=False)
            max_cols -= 1

    def _mat_lines_at(self, name: str, a, max_cols: int, label: bool = True) -> list[str]:
        cells, rows, cols = _matrix_cells(a, self.max_rows, max_cols)
        strs = [["⋯" if (v is None and j is None) else ("⋮" if v is None else fmt_number(v, self.digits))
                 for v, j in zip(row, cols)] for row in cells]
        widths = [max(len(row[k]) for row in strs) for k in range(len(cols))]
        body = ["  ".join(s.rjust(w) for s, w in zip(row, widths)) for row in strs]
        label = f"{name} ({shape_text(np.shape(a))}) = " if label else "  "
        n = len(body)
        lines = []
        for k, row in enumerate(body):
            left, right = ("[", "]") if n == 1 else (("⎡", "⎤") if k == 0 else ("⎣", "⎦") if k == n - 1 else ("⎢", "⎥"))
            prefix = label if k == (n - 1) // 2 else " " * len(label)
            lines.append(f"{prefix}{left} {row} {right}")
        return lines

    def to_text(self, width: int = 100) -> str:
        """Plain text no wider than ``width`` characters (where a single word or number allows)."""
        width = max(int(width), 40)
        inner = width - 4
        out: list[str] = []
        i = 0
        while i < len(self.blocks):
            b = self.blocks[i]
            kind = b[0]
            if kind == "h":
                title = prose_to_text(b[2])
                if out and out[-1] != "":
                    out.append("")
                wrapped = _wrap(title, width)
                out.extend(wrapped)
                out.append(("=" if b[1] == 1 else "-" if b[1] == 2 else "·") * max(len(t) for t in wrapped))
            elif kind == "p":
                out.extend(_wrap(prose_to_text(b[1]), width))
            elif kind == "eq":
                group = []
                while i < len(self.blocks) and self.blocks[i][0] == "eq":
                    group.append(self.blocks[i])
                    i += 1
                texts = [(tex_to_text(g[1]), prose_to_text(g[2]) if g[2] else "") for g in group]
                col = min(max(len(t) for t, _ in texts), 60)
                for t, note in texts:
                    line = "    " + t.ljust(col) + ("    " + note if note else "")
                    if len(line.rstrip()) <= width:
                        out.append(line.rstrip())
                        continue
                    # Too wide: the equation on its own lines, its note (the shapes) below it.
                    out.extend("    " + w for w in _wrap(t, inner, indent="    "))
                    if note:
                        out.extend("      " + w for w in _wrap(note, width - 6))
                out.append("")
                continue
            elif kind == "mat":
                out.extend("    " + ln for ln in self._mat_lines(tex_to_text(b[1]), b[2], inner))
                if b[3]:
                    out.extend("    " + w for w in _wrap(prose_to_text(b[3]), inner))
            elif kind == "pair":
                blocks = [self._mat_lines(tex_to_text(n), a, inner) for n, a in b[1]]
                widths = [max(len(ln) for ln in x) for x in blocks]
                if 4 + sum(widths) + 5 * (len(widths) - 1) <= width:
                    height = max(len(x) for x in blocks)
                    for k in range(height):
                        row = []
                        for x, w in zip(blocks, widths):
                            off = (height - len(x)) // 2
                            row.append((x[k - off] if 0 <= k - off < len(x) else "").ljust(w))
                        out.append(("    " + "     ".join(row)).rstrip())
                else:  # side by side would not fit: one above the other
                    for k, x in enumerate(blocks):
                        if k:
                            out.append("")
                        out.extend("    " + ln for ln in x)
                if b[2]:
                    out.extend("    " + w for w in _wrap(prose_to_text(b[2]), inner))
            elif kind == "table":
                headers = [prose_to_text(h) for h in b[1]]
                rows = [[prose_to_text(str(c)) for c in r] for r in b[2]]
                out.extend(_text_table(headers, rows, width))
            elif kind == "list":
                for item in b[1]:
                    wrapped = _wrap(prose_to_text(item), width - 4)
                    out.append("  - " + wrapped[0])
                    out.extend("    " + w for w in wrapped[1:])
            elif kind == "picture":
                i += 1
                continue
            if kind != "h":
                out.append("")
            i += 1
        while out and out[-1] == "":
            out.pop()
        return "\n".join(out) + "\n"

    # LaTeX-math pieces shared by Markdown, LaTeX and HTML -------------------------------------------
    def _mat_tex(self, name_tex: str, a) -> str:
        cells, rows, cols = _matrix_cells(a, self.max_rows, self.max_cols)
        lines = []
        for row in cells:
            strs = []
            for v, j in zip(row, cols):
                if v is None:
                    strs.append("\\cdots" if j is None else "\\vdots")
                else:
                    strs.append(number_tex(v, self.digits))
            lines.append(" & ".join(strs))
        body = " \\\\ ".join(lines)
        return f"{name_tex} = \\begin{{bmatrix}} {body} \\end{{bmatrix}}"

    def _eq_tex(self, b) -> str:
        kind = b[0]
        if kind == "eq":
            return b[1] + (f" \\qquad {_note_tex(b[2])}" if b[2] else "")
        if kind == "mat":
            return self._mat_tex(b[1], b[2])
        if kind == "pair":
            return " \\qquad ".join(self._mat_tex(n, a) for n, a in b[1])
        raise ValueError(kind)

    def to_markdown(self) -> str:
        out: list[str] = []
        for b in self.blocks:
            kind = b[0]
            if kind == "h":
                out.append("#" * b[1] + " " + b[2])
            elif kind == "p":
                out.append(b[1])
            elif kind in ("eq", "mat", "pair"):
                out.append("$$\n" + (b[1] if kind == "eq" else self._eq_tex(b)) + "\n$$")
                note = b[3] if kind == "mat" else b[2]
                if note:
                    out.append("")
                    out.append(("*Shapes:* " if kind == "eq" else "") + note)
            elif kind == "table":
                out.append("| " + " | ".join(b[1]) + " |")
                out[-1] += "\n|" + "|".join(" --- " for _ in b[1]) + "|"
                for r in b[2]:
                    out[-1] += "\n| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |"
            elif kind == "list":
                out.append("\n".join("- " + item for item in b[1]))
            elif kind == "picture":
                continue
            out.append("")
        return "\n".join(out).rstrip() + "\n"

    def to_latex(self, standalone: bool = True) -> str:
        """LaTeX: a whole document (``standalone=True``) that compiles with pdflatex and fits the page,
        or the body alone to paste into a document that loads amsmath and amssymb."""
        out: list[str] = []
        if standalone:
            # graphicx scales a display down to the line when it is wider; url breaks long code names;
            # tabularx wraps long table cells; \emergencystretch lets a paragraph stretch before it overflows.
            out += ["\\documentclass[11pt]{article}", "\\usepackage{amsmath,amssymb}",
                    "\\usepackage[margin=2cm]{geometry}", "\\usepackage{graphicx,tabularx,array,url}",
                    "\\urlstyle{tt}", "\\setcounter{MaxMatrixCols}{20}", "\\setlength{\\emergencystretch}{3em}",
                    "\\newcommand{\\fitdisplay}[1]{\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}"
                    "{$\\displaystyle #1$}}",
                    "\\begin{document}", ""]

        def display(tex: str) -> str:
            return "\\[\n" + (f"\\fitdisplay{{{tex}}}" if standalone else tex) + "\n\\]"

        def prose(text: str) -> str:
            return prose_to_latex(text, breakable_code=standalone)

        for b in self.blocks:
            kind = b[0]
            if kind == "h":
                cmd = {1: "section*", 2: "subsection*"}.get(b[1], "subsubsection*")
                out.append(f"\\{cmd}{{{prose_to_latex(b[2])}}}")
            elif kind == "p":
                out.append(prose(b[1]))
            elif kind == "eq":
                out.append(display(b[1]))
                if b[2]:
                    out.append("{\\small Shapes: " + prose(b[2]) + "}")
            elif kind == "mat":
                out.append(display(self._mat_tex(b[1], b[2])))
                if b[3]:
                    out.append(prose(b[3]))
            elif kind == "pair":
                cols = sum(min(np.atleast_2d(a).shape[1], self.max_cols) for _, a in b[1])
                if cols <= 8:
                    out.append(display(self._eq_tex(b)))
                else:  # side by side would be set too small: one above the other
                    out.extend(display(self._mat_tex(n, a)) for n, a in b[1])
                if b[2]:
                    out.append(prose(b[2]))
            elif kind == "table":
                cells = [b[1]] + b[2]
                longest = [max(len(str(r[k])) for r in cells) for k in range(len(b[1]))]
                spec = "".join(">{\\raggedright\\arraybackslash}X" if n > 24 else "l" for n in longest)
                env = "tabularx" if "X" in spec else "tabular"
                head = "\\begin{tabularx}{\\linewidth}{" + spec + "}" if env == "tabularx" else "\\begin{tabular}{" + spec + "}"
                rows = [" & ".join(prose(h) for h in b[1]) + " \\\\ \\hline"]
                rows += [" & ".join(prose(str(c)) for c in r) + " \\\\" for r in b[2]]
                out.append("{\\small\n" + head + "\n" + "\n".join(rows) + f"\n\\end{{{env}}}}}")
            elif kind == "list":
                out.append("\\begin{itemize}\n" + "\n".join("\\item " + prose(x) for x in b[1])
                           + "\n\\end{itemize}")
            elif kind == "picture":
                continue
            out.append("")
        if standalone:
            out.append("\\end{document}")
        return "\n".join(out) + "\n"

    def to_html(self, standalone: bool = False, title: str | None = None) -> str:
        """HTML with MathML: a ``<div class="deltaprop">`` with its own scoped styles (what notebooks
        show), or with ``standalone=True`` a whole UTF-8 page that renders offline in any current browser."""
        from deltaprop.teach.mathml import to_mathml

        out = ['<div class="deltaprop">', f"<style>{HTML_STYLE}</style>"]
        for b in self.blocks:
            kind = b[0]
            if kind == "h":
                lvl = min(b[1] + (0 if standalone else 2), 6)
                out.append(f"<h{lvl}>{prose_to_html(b[2])}</h{lvl}>")
            elif kind == "p":
                out.append(f"<p>{prose_to_html(b[1])}</p>")
            elif kind == "pair":
                # Side by side where the page is wide enough, one under the other where it is not (a
                # 5-column dW beside its finite differences is wider than the page): each its own math.
                items = "".join(f'<div class="eq">{to_mathml(self._mat_tex(n, a), display=True)}</div>'
                                for n, a in b[1])
                out.append(f'<div class="pair">{items}</div>')
                if b[2]:
                    out.append(f'<p class="note">{prose_to_html(b[2])}</p>')
            elif kind in ("eq", "mat"):
                tex = b[1] if kind == "eq" else self._eq_tex(b)
                out.append(f'<div class="eq">{to_mathml(tex, display=True)}</div>')
                note = b[3] if kind == "mat" else b[2]
                if note:
                    out.append(f'<p class="note">{"Shapes: " if kind == "eq" else ""}{prose_to_html(note)}</p>')
            elif kind == "table":
                head = "".join(f"<th>{prose_to_html(h)}</th>" for h in b[1])
                body = "".join("<tr>" + "".join(f"<td>{prose_to_html(str(c))}</td>" for c in r) + "</tr>" for r in b[2])
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif kind == "list":
                out.append("<ul>" + "".join(f"<li>{prose_to_html(x)}</li>" for x in b[1]) + "</ul>")
            elif kind == "picture":
                caption = f"<figcaption>{prose_to_html(b[2])}</figcaption>" if b[2] else ""
                out.append(f"<figure>{b[1]}{caption}</figure>")
        out.append("</div>")
        fragment = "\n".join(out)
        if not standalone:
            return fragment
        if title is None:
            first = next((b[2] for b in self.blocks if b[0] == "h"), "deltaprop")
            title = prose_to_text(first)
        return html_page(fragment, title)

    def blocks_as_dicts(self) -> list[dict]:
        """The blocks in JSON-able form (matrices as nested lists)."""
        res = []
        for b in self.blocks:
            kind = b[0]
            if kind == "h":
                res.append({"type": "heading", "level": b[1], "text": b[2]})
            elif kind == "p":
                res.append({"type": "paragraph", "text": b[1]})
            elif kind == "eq":
                res.append({"type": "equation", "tex": b[1], "text": tex_to_text(b[1]), "note": b[2]})
            elif kind == "mat":
                res.append({"type": "matrix", "name": b[1], "shape": list(np.shape(b[2])),
                            "value": np.asarray(b[2], dtype=float).tolist(), "note": b[3]})
            elif kind == "pair":
                res.append({"type": "matrices", "items": [{"name": n, "shape": list(np.shape(a)),
                                                            "value": np.asarray(a, dtype=float).tolist()}
                                                           for n, a in b[1]], "note": b[2]})
            elif kind == "table":
                res.append({"type": "table", "headers": b[1], "rows": b[2]})
            elif kind == "list":
                res.append({"type": "list", "items": b[1]})
            elif kind == "picture":
                res.append({"type": "picture", "svg": b[1], "caption": b[2]})
        return res


HTML_STYLE = (
    ".deltaprop{font-family:'DejaVu Serif',Georgia,'Times New Roman',serif;font-size:16px;line-height:1.5;color:#1d2733}"
    ".deltaprop h1,.deltaprop h2,.deltaprop h3,.deltaprop h4,.deltaprop h5{font-family:'DejaVu Sans',system-ui,"
    "Helvetica,Arial,sans-serif;line-height:1.25;margin:1.3em 0 .4em}"
    ".deltaprop h1{font-size:1.6em}.deltaprop h2{font-size:1.3em;border-bottom:1px solid #dde2e8;padding-bottom:.15em}"
    ".deltaprop h3{font-size:1.1em}"
    ".deltaprop .eq{margin:.5em 0;overflow-x:auto;overflow-y:hidden}"
    ".deltaprop .pair{display:flex;flex-wrap:wrap;justify-content:center;align-items:center;column-gap:2em}"
    ".deltaprop .pair>.eq{max-width:100%}"
    ".deltaprop math[display=block]{font-size:1.12em;margin:.2em 0}"
    ".deltaprop .note{color:#5b6673;font-size:.9em;margin:.1em 0 .8em}"
    ".deltaprop table{border-collapse:collapse;margin:.6em 0;font-size:.92em}"
    ".deltaprop th,.deltaprop td{border-bottom:1px solid #e3e7ec;padding:.25em .7em;text-align:left;vertical-align:top}"
    ".deltaprop th{border-bottom:2px solid #9aa5b1}"
    ".deltaprop code{font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:.85em;background:#f3f5f8;"
    "padding:0 .25em;border-radius:3px}"
    ".deltaprop figure{margin:1em 0;overflow-x:auto}.deltaprop figure svg{max-width:100%;height:auto}"
    ".deltaprop figcaption{color:#5b6673;font-size:.9em}"
)


def _text_table(headers, rows, width: int) -> list[str]:
    """A text table no wider than ``width``: the widest column wraps until it fits."""
    widths = [max(len(x) for x in col) for col in zip(headers, *rows)]
    budget = width - 2 - 2 * (len(widths) - 1)
    while sum(widths) > budget:
        k = max(range(len(widths)), key=lambda c: widths[c])
        if widths[k] <= 6:
            break
        widths[k] -= 1
    out = []

    def emit(cells):
        parts = [[ln[k:k + w] for ln in _wrap(c, w) for k in range(0, len(ln), w)] if len(c) > w else [c]
                 for c, w in zip(cells, widths)]
        for k in range(max(len(p) for p in parts)):
            out.append("  " + "  ".join((p[k] if k < len(p) else "").ljust(w) for p, w in zip(parts, widths)).rstrip())

    emit(headers)
    out.append("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        emit(r)
    return out


def _note_tex(note: str) -> str:
    """A note that may mix prose and $math$, as math-mode LaTeX: prose parts go into \\text{}."""
    out = []
    for is_math, piece in _split_math(note):
        if is_math:
            out.append(piece[1:-1])
            continue
        for k, part in enumerate(prose_to_latex(piece).split("$")):
            if k % 2:
                out.append(part)
            elif part:
                out.append("\\text{" + part + "}")
    return "".join(out)


def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    import textwrap

    lines = []
    for para in text.split("\n"):
        lines.extend(textwrap.wrap(para, width, subsequent_indent=indent, break_on_hyphens=False,
                                   break_long_words=False) or [""])
    return lines


def html_page(fragment: str, title: str) -> str:
    """A whole UTF-8 HTML page around ``fragment`` (which carries its own scoped styles): what
    ``--format html`` writes, rendering offline in any current browser."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>body {{ margin: 2em auto; padding: 0 1.5em; "
            "max-width: 62em; background: #fff; }</style>\n</head>\n<body>\n" + fragment + "\n</body>\n</html>\n")

class Renderable:
    """One document, five renderings. A subclass gives :meth:`document` (a :class:`Doc`) and
    :meth:`to_dict`; it gets text, Markdown, LaTeX, HTML and JSON, ``render(format)``, ``str()`` and the
    notebook hooks ``_repr_markdown_`` / ``_repr_html_``."""

    FORMATS = ("text", "markdown", "latex", "html", "json")

    def document(self) -> Doc:
        raise NotImplementedError

    def to_dict(self) -> dict:
        raise NotImplementedError

    def to_text(self, width: int = 100) -> str:
        """Plain text no wider than ``width`` characters (the command passes the terminal's width)."""
        return self.document().to_text(width)

    def to_markdown(self) -> str:
        return self.document().to_markdown()

    def to_latex(self, standalone: bool = True) -> str:
        return self.document().to_latex(standalone)

    def to_html(self, standalone: bool = False) -> str:
        """HTML with MathML: a fragment with scoped styles, or a whole page with ``standalone=True``."""
        return self.document().to_html(standalone)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def render(self, format: str = "text", width: int = 100) -> str:
        """The document as ``text`` (``width`` characters wide), ``markdown`` (``md``), ``latex`` (``tex``, a
        whole document), ``html`` (a whole page that renders offline) or ``json``."""
        fmt = str(format).lower()
        fmt = {"md": "markdown", "tex": "latex"}.get(fmt, fmt)
        if fmt not in self.FORMATS:
            raise unknown_name("format", format, list(self.FORMATS))
        if fmt == "text":
            return self.to_text(width)
        if fmt == "html":
            return self.to_html(standalone=True)
        return getattr(self, f"to_{fmt}")()

    def __str__(self) -> str:
        return self.to_text()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        return self.to_html()
