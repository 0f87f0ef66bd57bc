"""Hand-outs that render anywhere: a standalone HTML page with MathML, LaTeX that compiles with
pdflatex and fits the page, text that fits the terminal, and the network's picture."""

import json
import re
import shutil
import subprocess
from xml.etree import ElementTree

import numpy as np
import pytest

import deltaprop as dp
from browser import chromium_page
from cli_child import child_env, run
from deltaprop.teach.mathml import to_mathml
from deltaprop.teach.pictures import network_svg
from deltaprop.teach.trace import random_batch

PRESETS = ("note000", "note001", "note002", "note003")


def _visible_text(page: str) -> str:
    """The page's text without markup, styles and the MathML annotations (which browsers do not show)."""
    page = re.sub(r"<annotation\b.*?</annotation>", "", page, flags=re.DOTALL)
    page = re.sub(r"<style\b.*?</style>", "", page, flags=re.DOTALL)
    return re.sub(r"<[^>]+>", "", page)


@pytest.mark.parametrize("what", ["trace", "explain"])
def test_html_is_a_standalone_page_with_mathml_and_no_latex_left(what):
    doc = dp.trace("note001", examples=2) if what == "trace" else dp.explain([3, 4, 3, 2], l2=0.1)
    page = doc.render("html")
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/', "")
    assert page.count("<math") >= 20
    text = _visible_text(page)
    assert "$" not in text and "\\frac" not in text and "\\delta" not in text
    assert "<svg" in page  # the network's picture
    # The notebook fragment is the same content with scoped styles.
    frag = doc._repr_html_()
    assert frag.startswith('<div class="deltaprop">') and "<!DOCTYPE" not in frag and "<math" in frag


def test_mathml_is_well_formed_and_knows_the_documents_commands():
    every = set()
    for doc in (dp.trace("note001", examples=2, per_example=True, l2=0.1), dp.explain([3, 4, 3, 2], l2=0.1),
                dp.explain([2, 2, 2, 1], notation="theta", hidden="sigmoid", output="sigmoid", l2=0.1)):
        for b in doc.document().blocks:
            if b[0] == "eq":
                every.add(b[1])
    assert len(every) > 30
    for tex in every:
        ml = to_mathml(tex, display=True)
        ElementTree.fromstring(ml.replace("&nbsp;", " "))  # parses as XML
        shown = re.sub(r"<annotation\b.*?</annotation>", "", ml)
        # An unknown command would come out under its own name; every one the documents use is known.
        assert not re.search(r"<mi>(frac|left|right|text|mathrm|begin|end|quad|sum|odot|top)</mi>", shown), tex


def test_mathml_fraction_scripts_matrix_and_signs():
    ml = to_mathml(r"\delta^{[3]} = \frac{A^{[3]} - Y}{m}")
    assert "<mfrac>" in ml and "<msup><mi>δ</mi>" in ml and "<mo>−</mo>" in ml
    ml = to_mathml(r"X = \begin{bmatrix} 1 & -2 \\ 3 & 4 \end{bmatrix}")
    assert ml.count("<mtr>") == 2 and ml.count("<mtd>") == 4 and "<mn>−2</mn>" in ml
    assert "<munderover><mo>∑</mo>" in to_mathml(r"\sum_{i=1}^{m} x_i")


@pytest.mark.parametrize("preset", PRESETS)
def test_text_fits_the_width_it_is_given(preset):
    t = dp.trace(preset, examples=2, per_example=True, l2=0.1)
    for width in (72, 100):
        lines = t.to_text(width).splitlines()
        assert max(len(ln) for ln in lines) <= width, max(lines, key=len)
    # Nothing is lost in the narrow version: every heading is still there.
    assert [ln for ln in t.to_text(72).splitlines() if ln.startswith("Layer ")] == \
           [ln for ln in t.to_text(100).splitlines() if ln.startswith("Layer ")]


def test_the_command_wraps_text_to_the_terminals_columns():
    out = run("trace", "--preset", "note003", "--examples", "2", check=0, env=child_env(COLUMNS="70")).stdout
    assert max(len(ln) for ln in out.splitlines()) <= 70
    wide = run("explain", "--layers", "3,4,3,2", check=0, env=child_env(COLUMNS="120")).stdout
    assert 100 < max(len(ln) for ln in wide.splitlines()) <= 120


def test_latex_sets_shapes_in_math_mode_and_breaks_code():
    tex = dp.explain([3, 4, 3, 2], l2=0.1).to_latex()
    assert "($m \\times 4$)" in tex
    assert "m$\\times$" not in tex and "\\path{deltaprop.layers:Dense.forward}" in tex


PDFLATEX = shutil.which("pdflatex")


def _compile(tex: str, tmp_path, name: str) -> str:
    (tmp_path / f"{name}.tex").write_text(tex, encoding="ascii")
    r = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120, check=False)
    log = (tmp_path / f"{name}.log").read_text(encoding="latin-1")
    assert r.returncode == 0, log[-3000:]
    assert (tmp_path / f"{name}.pdf").stat().st_size > 1000
    return log


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed (apt-get install texlive-latex-base "
                                             "texlive-latex-recommended); .ci/run installs it")
@pytest.mark.parametrize("preset", PRESETS)
def test_latex_of_each_preset_compiles_and_nothing_runs_off_the_page(preset, tmp_path):
    tex = dp.trace(preset, examples=3, per_example=True, l2=0.1).to_latex()
    log = _compile(tex, tmp_path, preset)
    overfull = re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)
    assert overfull == [], f"{preset}: lines too wide by {overfull} pt"


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed (apt-get install texlive-latex-base "
                                             "texlive-latex-recommended); .ci/run installs it")
@pytest.mark.parametrize("notation", ["bracket", "theta"])
def test_latex_of_explain_compiles_and_fits(notation, tmp_path):
    tex = dp.explain([64, 10, 10], notation=notation, l2=0.1).to_latex()
    log = _compile(tex, tmp_path, notation)
    assert re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log) == []


def test_picture_draws_small_layers_unit_by_unit_and_wide_ones_as_blocks():
    t = dp.trace("note001", examples=2)
    svg = network_svg(t.net, t)
    root = ElementTree.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f".//{ns}circle")) == 3 + 4 + 3 + 2
    assert len(root.findall(f".//{ns}line")) == 3 * 4 + 4 * 3 + 3 * 2
    # Each unit's tooltip carries z, a and δ of each example, as the trace holds them.
    tip = root.find(f".//{ns}g[@data-layer='3'][@data-unit='1']/{ns}title").text
    assert f"δ = {t.layers[-1]['delta'][1, 0]:.4g}".replace("-", "−") in tip
    big = network_svg(dp.Network.from_sizes([64, 10, 10], seed=0))
    root = ElementTree.fromstring(big)
    assert len(root.findall(f".//{ns}circle")) == 20 and root.findall(f".//{ns}polygon")
    assert "10×64" in big


@pytest.mark.slow
def test_the_html_handout_shows_typeset_math_in_chromium(tmp_path):
    path = tmp_path / "note001.html"
    run("trace", "--preset", "note001", "--examples", "2", "--format", "html", "-o", path, check=0)
    with chromium_page() as page:
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        text = page.locator("body").inner_text()
        assert "$$" not in text and "\\frac" not in text and "\\delta" not in text
        # Fractions are laid out as fractions: the numerator sits above the denominator.
        frac = page.locator("mfrac").first
        num, den = frac.locator(":scope > *").nth(0).bounding_box(), frac.locator(":scope > *").nth(1).bounding_box()
        assert num["y"] + num["height"] <= den["y"] + 1
        assert page.locator("math").count() > 20
        page.screenshot(path=str(tmp_path / "handout.png"), full_page=True)
    assert requests == [path.as_uri()]
    import numpy as np
    from PIL import Image

    img = np.asarray(Image.open(tmp_path / "handout.png").convert("L"), dtype=float)
    assert img.std() > 10


# -- the column notation of notes 001 and 003, --preset, --picture --------------------------------------------

SHAPE = re.compile(r"((?:d?[WbZAX]|dZ|Y)(?:\^\[\d+\])?) \(((?:m|\d+)×(?:m|\d+))\)")


def test_columns_notation_prints_the_transposed_shapes_of_the_engines_arrays():
    net = dp.Network.from_sizes([5, 4, 3], hidden="tanh", seed=1, dtype="float64")
    X, y = random_batch(net, 7)
    _, grads = net.backprop(X, y)
    engine = {"X": X.T.shape, "A^[0]": X.T.shape, "Y": net.prepare_targets(y).T.shape}
    for l, (layer, (dW, db)) in enumerate(zip(net.layers, grads), 1):
        engine.update({f"W^[{l}]": layer.W.shape, f"b^[{l}]": db[:, None].shape, f"Z^[{l}]": layer.Z.T.shape,
                       f"A^[{l}]": layer.A.T.shape, f"dZ^[{l}]": layer.delta.T.shape, f"dW^[{l}]": dW.shape,
                       f"db^[{l}]": db[:, None].shape})
    text = dp.explain(net, notation="columns").to_text(120)
    found = SHAPE.findall(text)
    assert len(found) > 20
    for name, shape in found:
        printed = tuple(7 if s == "m" else int(s) for s in shape.split("×"))
        assert engine[name] == printed, (name, printed, engine[name])
    assert "dW^[2] = 1/m dZ^[2] A^[1]ᵀ" in text and "dZ^[1] = W^[2]ᵀ dZ^[2] ⊙ tanh'(Z^[1])" in text


def _mats(doc):
    return {b[1]: np.asarray(b[2]) for b in doc.blocks if b[0] == "mat"}


def test_columns_trace_shows_dz_as_m_delta_transposed_and_its_equations_hold_on_the_numbers():
    t = dp.trace("note001", examples=3, notation="columns", l2=0.1)
    mats = _mats(t.document())
    m, L = t.m, len(t.layers)
    np.testing.assert_allclose(mats[f"dZ^{{[{L}]}}"], (t.layers[-1]["A"] - t.Y).T, rtol=1e-12, atol=1e-15)
    for r in t.layers:
        l = r["l"]
        dZ = mats[f"dZ^{{[{l}]}}"] if l < L else mats[f"dZ^{{[{L}]}}"]
        np.testing.assert_allclose(dZ, m * r["delta"].T, rtol=1e-12, atol=1e-15)
        A_prev = mats["X"] if l == 1 else mats[f"A^{{[{l - 1}]}}"]
        np.testing.assert_allclose(dZ @ A_prev.T / m + 0.1 / m * r["W"], r["dW"], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(dZ.sum(axis=1) / m, r["db"], rtol=1e-10, atol=1e-14)
    assert t.to_dict()["notation"] == "columns"
    assert "Gradient check" in t.to_text()
    with pytest.raises(dp.ConfigError, match="columns"):
        dp.trace("note001", notation="colums")


def test_explain_preset_is_the_notes_network(tmp_path):
    preset = run("explain", "--preset", "note001")
    layers = run("explain", "--layers", "3,4,3,2")
    assert preset.returncode == 0 and preset.stdout == layers.stdout
    assert "2-2-2-1" in run("explain", "--preset", "note000", "--notation", "theta").stdout
    bad = run("explain", "--preset", "note004")
    assert bad.returncode == 2 and "note003" in bad.stderr
    both = run("explain", "--preset", "note001", "--layers", "3,2")
    assert both.returncode == 2 and "one of" in both.stderr


def test_picture_option_writes_the_svg_of_explain_and_trace(tmp_path):
    r = run("explain", "--preset", "note003", "--picture", str(tmp_path / "e.svg"))
    assert r.returncode == 0, r.stderr
    ElementTree.parse(tmp_path / "e.svg")
    r = run("trace", "--preset", "note001", "-m", "2", "--picture", str(tmp_path / "t.svg"), "--format", "json")
    assert r.returncode == 0, r.stderr
    delta = json.loads(r.stdout)["output_error"]["delta"]
    svg = (tmp_path / "t.svg").read_text(encoding="utf-8")
    assert f"δ = {delta[1][0]:.4g}".replace("-", "−") in svg


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed (apt-get install texlive-latex-base "
                                             "texlive-latex-recommended); .ci/run installs it")
def test_latex_of_the_columns_notation_compiles_and_fits(tmp_path):
    log = _compile(dp.explain([64, 10, 10], notation="columns", l2=0.1).to_latex(), tmp_path, "ex")
    assert re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log) == []
    log = _compile(dp.trace("note003", examples=3, notation="columns").to_latex(), tmp_path, "tr")
    assert re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log) == []


def test_the_pictures_error_is_named_as_its_document_names_it():
    # A columns trace (notes 001 and 003) showed dZ = m δᵀ in its matrices and δ in its picture.
    t = dp.trace("note001", examples=2, notation="columns")
    html_page = t.to_html()
    svg = html_page[html_page.index("<svg"):html_page.index("</svg>")]
    assert "δ" not in svg and "dZ" in svg and "A[3]: 2×m" in svg
    ns = "{http://www.w3.org/2000/svg}"
    unit = f".//{ns}g[@data-layer='3'][@data-unit='1']/{ns}title"
    tip = ElementTree.fromstring(network_svg(t.net, t)).find(unit).text
    assert f"dZ = {2 * t.layers[-1]['delta'][1, 0]:.4g}".replace("-", "−") in tip
    rows = dp.trace("note001", examples=2)
    assert "δ" in network_svg(rows.net, rows) and "A[3]: m×2" in network_svg(rows.net, rows)
    assert "A[1]: 4×m" in dp.explain([3, 4, 3, 2], notation="columns").to_html()


def test_the_commands_picture_follows_its_notation(tmp_path):
    run("explain", "--layers", "3,4,2", "--notation", "columns", "--picture", tmp_path / "e.svg", check=0)
    assert "A[1]: 4×m" in (tmp_path / "e.svg").read_text(encoding="utf-8")
    run("trace", "--preset", "note001", "--examples", "2", "--notation", "columns", "--picture",
        tmp_path / "t.svg", check=0)
    svg = (tmp_path / "t.svg").read_text(encoding="utf-8")
    assert "dZ" in svg and "δ" not in svg
