"""MathML for the LaTeX subset deltaprop's documents use, generated here so a page needs no script.

    >>> to_mathml(r"\\delta^{[2]} = \\frac{A^{[2]} - Y}{m}", display=True)
    '<math display="block">...<mfrac>...</mfrac>...</math>'

Browsers render MathML Core natively (Chromium since version 109, Firefox, Safari), so a hand-out
written with it shows typeset equations offline, with nothing to download. This is not a general
LaTeX converter: it knows the commands the documents write (fractions, scripts, ``bmatrix``,
``\\text``, accents, Greek letters, operators and spacing); an unknown command is shown by name
rather than dropped.
"""

from __future__ import annotations

import html

__all__ = ["prose_to_html", "to_mathml"]

# Commands that stand for one symbol: (MathML element, text).
_SYMBOLS = {
    "delta": ("mi", "δ"), "Delta": ("mi", "Δ"), "lambda": ("mi", "λ"), "alpha": ("mi", "α"), "beta": ("mi", "β"),
    "Theta": ("mi", "Θ"), "theta": ("mi", "θ"), "sigma": ("mi", "σ"), "Sigma": ("mi", "Σ"), "eta": ("mi", "η"),
    "epsilon": ("mi", "ϵ"), "varepsilon": ("mi", "ε"), "mu": ("mi", "μ"), "ell": ("mi", "ℓ"), "gamma": ("mi", "γ"),
    "partial": ("mo", "∂"), "nabla": ("mo", "∇"), "infty": ("mi", "∞"),
    "odot": ("mo", "⊙"), "times": ("mo", "×"), "cdot": ("mo", "·"), "top": ("mi", "⊤"), "prime": ("mo", "′"),
    "leftarrow": ("mo", "←"), "rightarrow": ("mo", "→"), "to": ("mo", "→"), "approx": ("mo", "≈"),
    "le": ("mo", "≤"), "leq": ("mo", "≤"), "ge": ("mo", "≥"), "geq": ("mo", "≥"), "neq": ("mo", "≠"),
    "in": ("mo", "∈"), "equiv": ("mo", "≡"), "gg": ("mo", "≫"), "ll": ("mo", "≪"), "pm": ("mo", "±"),
    "mid": ("mo", "∣"), "colon": ("mo", ":"), "ldots": ("mo", "…"), "dots": ("mo", "…"), "cdots": ("mo", "⋯"),
    "vdots": ("mo", "⋮"), "ddots": ("mo", "⋱"), "|": ("mo", "‖"), "{": ("mo", "{"), "}": ("mo", "}"),
    "_": ("mi", "_"), "&": ("mo", "&"), "%": ("mo", "%"), "#": ("mo", "#"),
    "log": ("mi", "log"), "exp": ("mi", "exp"), "max": ("mi", "max"), "min": ("mi", "min"), "ln": ("mi", "ln"),
    "tanh": ("mi", "tanh"), "sum": ("mo", "∑"),
}
_SPACES = {"quad": "1em", "qquad": "2em", ",": "0.1667em", ";": "0.2778em", ":": "0.2222em", " ": "0.25em",
           "!": None, "displaystyle": None, "big": None, "Big": None, "bigl": None, "bigr": None}
_TEXT = {"text", "textrm", "textit", "emph", "texttt"}
_UPRIGHT = {"mathrm", "operatorname", "mathop"}
_ACCENTS = {"hat": "^", "tilde": "~", "bar": "¯"}
_BB = {"R": "ℝ", "N": "ℕ", "Z": "ℤ", "1": "𝟙"}
_BOLD_DIGITS = dict(zip("0123456789", "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗"))
_OPERATORS = set("+-=(),[]/|<>!:;")
_BIG_OPERATORS = {"∑"}


def _e(text: str) -> str:
    return html.escape(text, quote=False)


class _Parser:
    def __init__(self, tex: str):
        self.s, self.i = tex, 0

    # -- scanning -----------------------------------------------------------------------------------
    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def skip_spaces(self):
        while self.i < len(self.s) and self.s[self.i] in " \n\t":
            self.i += 1

    def command_name(self) -> str:
        """The name after a backslash (letters, or one other character); moves past it."""
        j = self.i + 1
        if j < len(self.s) and not self.s[j].isalpha():
            self.i = j + 1
            return self.s[j]
        while j < len(self.s) and self.s[j].isalpha():
            j += 1
        name = self.s[self.i + 1:j]
        self.i = j
        return name

    def group_text(self) -> str:
        """The raw text of a {...} argument (or one character), braces balanced."""
        self.skip_spaces()
        if self.peek() != "{":
            c = self.peek()
            self.i += 1
            return c
        depth, j = 0, self.i
        while j < len(self.s):
            if self.s[j] == "\\":
                j += 2
                continue
            if self.s[j] == "{":
                depth += 1
            elif self.s[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        text = self.s[self.i + 1:j]
        self.i = j + 1
        return text

    # -- parsing ------------------------------------------------------------------------------------
    def sequence(self, stops=("",)) -> list[str]:
        """Nodes until one of ``stops`` (a character, '&', '\\\\' or the end); the stop is not consumed."""
        nodes: list[str] = []
        while True:
            self.skip_spaces()
            c = self.peek()
            if c in stops or c == "" or (c == "}" and "}" in stops):
                return nodes
            if c == "\\" and self.s.startswith("\\\\", self.i) and "\\\\" in stops:
                return nodes
            if c == "\\" and self.s.startswith("\\end", self.i) and "end" in stops:
                return nodes
            if c in "^_":
                self.i += 1
                base = nodes.pop() if nodes else "<mrow></mrow>"
                nodes.append(self.scripts(base, c))
                continue
            if c == "-" and self.s[self.i + 1:self.i + 2].isdigit() and _opens(nodes):
                # A sign, not a subtraction: one number, without the spaces of a binary minus.
                self.i += 1
                nodes.append(self.atom().replace("<mn>", "<mn>−", 1))
                continue
            node = self.atom()
            if node is not None:
                nodes.append(node)

    def scripts(self, base: str, first: str) -> str:
        sub = sup = None
        kind = first
        while True:
            arg = self.argument()
            if kind == "_":
                sub = arg
            else:
                sup = arg
            self.skip_spaces()
            nxt = self.peek()
            if nxt in "^_" and nxt and ((nxt == "_" and sub is None) or (nxt == "^" and sup is None)):
                kind = nxt
                self.i += 1
                continue
            break
        big = any(base == f"<mo>{op}</mo>" for op in _BIG_OPERATORS)
        if sub is not None and sup is not None:
            tag = "munderover" if big else "msubsup"
            return f"<{tag}>{base}{sub}{sup}</{tag}>"
        if sub is not None:
            tag = "munder" if big else "msub"
            return f"<{tag}>{base}{sub}</{tag}>"
        tag = "mover" if big else "msup"
        return f"<{tag}>{base}{sup}</{tag}>"

    def group(self) -> str:
        """A braced group {...}, the parser at its "{", as one <mrow>."""
        self.i += 1
        nodes = self.sequence(stops=("}",))
        self.i += 1
        return _row(nodes)

    def argument(self) -> str:
        """One argument ({...} or a single token) as one MathML node."""
        self.skip_spaces()
        c = self.peek()
        if c == "{":
            return self.group()
        if c == "\\":
            node = self.atom()
            return node if node is not None else "<mrow></mrow>"
        if c == "":
            return "<mrow></mrow>"
        self.i += 1
        return _char(c)

    def atom(self) -> str | None:
        c = self.peek()
        if c == "{":
            return self.group()
        if c == "\\":
            return self.command()
        if c.isdigit() or (c == "." and self.s[self.i + 1:self.i + 2].isdigit()):
            j = self.i
            while j < len(self.s) and (self.s[j].isdigit() or (self.s[j] == "." and self.s[j + 1:j + 2].isdigit())):
                j += 1
            num = self.s[self.i:j]
            self.i = j
            return f"<mn>{num}</mn>"
        if c == "~":
            self.i += 1
            return '<mspace width="0.25em"></mspace>'
        if c == "'":
            self.i += 1
            return "<mo>′</mo>"
        if c in "}&":
            self.i += 1
            return None
        self.i += 1
        return _char(c)

    def command(self) -> str | None:
        name = self.command_name()
        if name == "frac":
            num, den = self.argument(), self.argument()
            return f"<mfrac>{num}{den}</mfrac>"
        if name == "sqrt":
            return f"<msqrt>{self.argument()}</msqrt>"
        if name in _SPACES:
            width = _SPACES[name]
            return None if width is None else f'<mspace width="{width}"></mspace>'
        if name in ("left", "right"):
            self.skip_spaces()
            if self.peek() == ".":
                self.i += 1
                return None
            if self.peek() == "\\":
                inner = self.command()
                return inner.replace("<mo>", '<mo stretchy="true">', 1) if inner else None
            c = self.peek()
            self.i += 1
            return f'<mo stretchy="true">{_e(c)}</mo>'
        if name in _TEXT:
            # MathML trims the spaces at the edges of a token (\text{for every } l read 'for everyl'):
            # keep them as no-break spaces, as TeX keeps them.
            text = self.group_text()
            core = text.strip(" ")
            lead, trail = len(text) - len(text.lstrip(" ")), len(text) - len(text.rstrip(" "))
            return f"<mtext>{chr(0xA0) * lead}{_e(core)}{chr(0xA0) * trail if core else ''}</mtext>"
        if name in _UPRIGHT:
            text = self.group_text()
            plain = text.replace("\\_", "_").replace("\\,", " ")
            return f'<mi mathvariant="normal">{_e(plain)}</mi>' if len(plain) == 1 else f"<mi>{_e(plain)}</mi>"
        if name in ("mathbf", "boldsymbol"):
            text = self.group_text()
            if text.isdigit():
                return "<mn>" + "".join(_BOLD_DIGITS[d] for d in text) + "</mn>"
            return f'<mi mathvariant="bold">{_e(text)}</mi>'
        if name == "mathbb":
            text = self.group_text()
            return f"<mi>{_e(_BB.get(text, text))}</mi>"
        if name in ("mathit", "mathcal"):
            return self.argument()
        if name in ("mathrel", "mathbin"):
            inner = self.group_text()
            return f"<mo>{_e(inner)}</mo>"
        if name in _ACCENTS:
            return f'<mover accent="true">{self.argument()}<mo>{_ACCENTS[name]}</mo></mover>'
        if name == "begin":
            env = self.group_text()
            return self.environment(env)
        if name == "end":
            self.group_text()
            return None
        if name in _SYMBOLS:
            tag, text = _SYMBOLS[name]
            if tag == "mi" and text in {"Δ", "Θ", "Σ"}:  # TeX sets capital Greek upright (a lone <mi> is italic)
                return f'<mi mathvariant="normal">{text}</mi>'
            if tag == "mi" and len(text) > 1:
                # An operator name (log, ln, exp, ...) is followed by TeX's thin space, so that \ln K reads
                # 'ln K' and not 'lnK'.
                return f'<mi>{_e(text)}</mi><mspace width="0.1667em"></mspace>'
            return f"<{tag}>{_e(text)}</{tag}>"
        if name == "\\":
            return None
        # Unknown: visible by name, so a missing case shows instead of vanishing.
        return f"<mi>{_e(name)}</mi>"

    def environment(self, env: str) -> str:
        rows: list[list[str]] = [[]]
        while True:
            self.skip_spaces()
            cell = self.sequence(stops=("&", "\\\\", "end"))
            rows[-1].append(_row(cell))
            if self.s.startswith("\\\\", self.i):
                self.i += 2
                rows.append([])
            elif self.peek() == "&":
                self.i += 1
            else:
                if self.s.startswith("\\end", self.i):
                    self.i += 4
                    self.group_text()
                break
        if rows and rows[-1] == ["<mrow></mrow>"]:
            rows.pop()
        body = "".join("<mtr>" + "".join(f"<mtd>{c}</mtd>" for c in row) + "</mtr>" for row in rows)
        table = f"<mtable>{body}</mtable>"
        fences = {"bmatrix": ("[", "]"), "pmatrix": ("(", ")"), "vmatrix": ("|", "|")}.get(env)
        if fences:
            return f'<mrow><mo stretchy="true">{fences[0]}</mo>{table}<mo stretchy="true">{fences[1]}</mo></mrow>'
        return table


def _opens(nodes: list[str]) -> bool:
    """Whether a minus here is a sign: at the start, or after an operator or an opening bracket."""
    if not nodes:
        return True
    last = nodes[-1]
    return last.startswith("<mo") and not any(last.endswith(f">{c}</mo>") for c in ")]}|‖")


def _char(c: str) -> str:
    if c.isalpha():
        return f"<mi>{_e(c)}</mi>"
    if c == "-":
        return "<mo>−</mo>"
    if c in "()[]":
        return f'<mo stretchy="false">{_e(c)}</mo>'
    if c in _OPERATORS or not c.isalnum():
        return f"<mo>{_e(c)}</mo>"
    return f"<mn>{_e(c)}</mn>"


def _row(nodes: list[str]) -> str:
    return nodes[0] if len(nodes) == 1 else "<mrow>" + "".join(nodes) + "</mrow>"


def to_mathml(tex: str, display: bool = False) -> str:
    """``<math>`` markup for ``tex`` (``display=True``: a block equation)."""
    p = _Parser(tex)
    nodes = []
    while p.i < len(p.s):
        nodes.extend(p.sequence(stops=("",)))
        if p.i < len(p.s):  # a stray closing brace or '&' at top level
            p.i += 1
    attrs = ' display="block"' if display else ""
    annotation = f'<annotation encoding="application/x-tex">{_e(tex)}</annotation>'
    return f"<math{attrs}><semantics>{_row(nodes)}{annotation}</semantics></math>"


def prose_to_html(text: str) -> str:
    """Prose with ``$...$`` inline math, ``code`` and ``**bold**`` as HTML with MathML."""
    import re

    out = []
    for piece in re.split(r"(\$[^$]+\$)", text):
        if not piece:
            continue
        if len(piece) > 1 and piece.startswith("$") and piece.endswith("$"):
            out.append(to_mathml(piece[1:-1]))
        else:
            piece = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(piece, quote=False))
            out.append(re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", piece))
    return "".join(out)
