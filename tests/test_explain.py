"""explain, trace and diagnose: what they print is what the engine holds."""

import contextlib
import csv
import io
import json
import re

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.cli import main as deltaprop_main
from deltaprop.io.modelfile import save as dp_save
from deltaprop.reference import per_example_backprop, to_theta
from deltaprop.teach.document import fmt_number, tex_to_text
from deltaprop.teach.trace import PRESETS, trace_preset

NETWORKS = [
    dict(sizes=[3, 4, 3, 2], hidden="relu", output="softmax"),        # note 001
    dict(sizes=[2, 2, 2, 1], hidden="sigmoid", output="sigmoid"),     # note 000
    dict(sizes=[5, 7, 1], hidden="tanh", output="identity"),          # regression
    dict(sizes=[4, 3], hidden="relu", output="softmax"),              # no hidden layer
    dict(sizes=[6, 5, 4, 3, 3], hidden="leaky_relu", output="sigmoid"),
]

# "SYMBOL (shape)" as the text output prints it: W^[2] (3×4), δ^[2] (m×3), Θ^(1) (4×4), ā^(2) (5×1)
SHAPE_RE = re.compile(r"((?:d?[WbZAδ])\^\[\d+\]|[XY]|[Θaāzδ]\^\(\d+\)|[ΔD]\^\(\d+\))\s\(((?:m|\d+)(?:×(?:m|\d+))*)\)")


def _net(spec, dtype="float64", seed=0):
    return dp.Network.from_sizes(spec["sizes"], hidden=spec["hidden"], output=spec["output"], dtype=dtype, seed=seed)


def _batch(net, m, seed=0):
    from deltaprop.teach.trace import random_batch

    return random_batch(net, m, seed)


def _printed_shapes(text, m):
    found = []
    for name, shape in SHAPE_RE.findall(text):
        found.append((name, tuple(m if s == "m" else int(s) for s in shape.split("×"))))
    return found


@pytest.mark.parametrize("spec", NETWORKS, ids=lambda s: "-".join(map(str, s["sizes"])))
@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_every_printed_shape_is_the_shape_the_engine_holds_bracket(spec, l2):
    net = _net(spec)
    m = 5
    X, y = _batch(net, m)
    _, grads = net.backprop(X, y, l2=l2)
    engine = {"X": X.shape, "Y": net.prepare_targets(y).shape, "A^[0]": X.shape}
    for l, (layer, (dW, db)) in enumerate(zip(net.layers, grads), 1):
        engine.update({f"W^[{l}]": layer.W.shape, f"b^[{l}]": layer.b.shape, f"Z^[{l}]": layer.Z.shape,
                       f"A^[{l}]": layer.A.shape, f"δ^[{l}]": layer.delta.shape,
                       f"dW^[{l}]": dW.shape, f"db^[{l}]": db.shape})
    e = dp.explain(net, l2=l2)
    found = _printed_shapes(e.to_text(), m)
    assert len(found) >= 6 * len(net.layers)
    for name, shape in found:
        assert name in engine, f"printed a shape for {name}, which the test does not know"
        assert shape == engine[name], f"{name}: printed {shape}, engine holds {engine[name]}"
    # the table of symbols in the data says the same
    for s in e.to_dict()["symbols"]:
        assert tuple(m if v == "m" else v for v in s["shape"]) == engine[s["name"]]
    # every layer's weight shape is printed the way the issue asks: W^[2] (3×4)
    for l, layer in enumerate(net.layers, 1):
        assert f"W^[{l}] ({layer.W.shape[0]}×{layer.W.shape[1]})" in e.to_text()


@pytest.mark.parametrize("spec", NETWORKS[:3], ids=lambda s: "-".join(map(str, s["sizes"])))
def test_every_printed_shape_is_the_shape_the_engine_holds_theta(spec):
    net = _net(spec)
    X, y = _batch(net, 3)
    _, _, steps = per_example_backprop(net, X, y, l2=0.2, record=True)
    s = net.sizes
    engine = {}
    for l in range(1, len(s)):
        theta = to_theta(net.layers[l - 1].W, net.layers[l - 1].b).shape
        assert steps[0][l - 1].shape == theta  # the reference's Δ^(l) is what the page calls Δ^(l)
        engine.update({f"Θ^({l})": theta, f"Δ^({l})": theta, f"D^({l})": theta, f"ā^({l})": (s[l - 1] + 1, 1)})
    for l in range(1, len(s) + 1):
        engine[f"a^({l})"] = (s[l - 1], 1)
        if l > 1:
            engine[f"z^({l})"] = engine[f"δ^({l})"] = (s[l - 1], 1)
            net.forward(X, cache=True, check=False)
            assert net.layers[l - 2].Z[0].reshape(-1, 1).shape == engine[f"z^({l})"]
    text = dp.explain(net, notation="theta", l2=0.2).to_text()
    found = _printed_shapes(text, None)
    assert len(found) >= 4 * (len(s) - 1)
    for name, shape in found:
        assert shape == engine[name], f"{name}: printed {shape}, engine holds {engine[name]}"
    assert "Θ^(1)" in text and "(Θ^(1)ᵀ" not in text  # the first layer sends no error back


def test_explanation_says_why_the_output_error_is_simple_for_each_pairing():
    texts = {spec["output"]: dp.explain(_net(spec)).to_text() for spec in NETWORKS[:3]}
    assert "softmax with cross-entropy" in texts["softmax"] and "a_j − y_j" in texts["softmax"]
    assert "sigmoid with binary cross-entropy" in texts["sigmoid"] and "a(1 − a)" in texts["sigmoid"]
    assert "identity with squared error" in texts["identity"]
    for t in texts.values():
        assert "\\" not in t and "$" not in t, "LaTeX left in the terminal rendering"
    l2_text = dp.explain([3, 4, 3, 2], l2=0.1).to_text()
    assert "dW^[2] = δ^[2]ᵀ A^[1] + λ/m W^[2]" in l2_text and "λ = 0.1" in l2_text
    assert "+ λ/m W" not in dp.explain([3, 4, 3, 2]).to_text()
    # the rows-are-examples convention, and the notes' column form beside it
    assert "Z^[2] = A^[1] W^[2]ᵀ + b^[2]" in l2_text and "Z^[l] = W^[l] A^[l−1] + b^[l]" in l2_text


def test_explain_accepts_specs_and_refuses_bad_ones():
    a = dp.explain({"layers": "3,4,3,2", "activation": "relu", "output": "softmax"}).to_text()
    b = dp.explain([3, 4, 3, 2]).to_text()
    assert a == b
    with pytest.raises(dp.ConfigError, match="cannot be trained with"):
        dp.explain([3, 4, 3, 2], output="relu", loss="cross_entropy")  # note 001's ReLU output
    with pytest.raises(dp.ConfigError, match="notation"):
        dp.explain([3, 2], notation="polish")


def _numbers_in_rows(text):
    return [ln.replace("⎡", " ").replace("⎤", " ").replace("⎢", " ").replace("⎥", " ").replace("⎣", " ")
            .replace("⎦", " ").replace("[", " ").replace("]", " ").split() for ln in text.splitlines()]


def _contains_row(lines, row):
    k = len(row)
    return any(tokens[i:i + k] == row for tokens in lines for i in range(len(tokens) - k + 1))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_numbers_printed_by_trace_equal_backprop(dtype):
    net = dp.Network.from_sizes([3, 4, 3, 2], hidden="relu", output="softmax", dtype=dtype, seed=4)
    X, y = _batch(net, 3, seed=2)
    W_before = [layer.W.copy() for layer in net.layers]
    t = dp.trace(net, X, y, l2=0.1)
    assert net.dtype == np.dtype(dtype) and all(np.array_equal(a, l.W) for a, l in zip(W_before, net.layers))
    cost, grads = net.backprop(X, y, l2=0.1)  # the user's own network, in its own dtype
    rtol = 1e-12 if dtype == "float64" else 1e-5
    assert t.cost == pytest.approx(cost, rel=rtol)
    text_lines = _numbers_in_rows(t.to_text())
    md = t.to_markdown()
    for l, (layer, (dW, db)) in enumerate(zip(net.layers, grads), 1):
        rec = t.layers[l - 1]
        np.testing.assert_allclose(rec["dW"], dW, rtol=rtol, atol=1e-7 if dtype == "float32" else 0)
        np.testing.assert_allclose(rec["Z"], layer.Z, rtol=rtol, atol=1e-6 if dtype == "float32" else 0)
        np.testing.assert_allclose(rec["delta"], layer.delta, rtol=rtol, atol=1e-7 if dtype == "float32" else 0)
        # the terminal shows every row of dW, db, Z, A, δ as backprop's values to 4 significant digits
        if dtype == "float64":
            for arr in (dW, db.reshape(1, -1), layer.Z, layer.A, layer.delta):
                for row in arr:
                    assert _contains_row(text_lines, [fmt_number(v) for v in row]), (l, row)
        # the Markdown shows dW^[l] as a matrix whose entries round to backprop's
        m = re.search(rf"dW\^{{\[{l}\]}} = \\begin{{bmatrix}}(.*?)\\end{{bmatrix}}", md)
        printed = np.array([[float(c.replace("\\times 10^{", "e").replace("}", "")) for c in r.split("&")]
                            for r in m.group(1).split("\\\\")])
        assert printed.shape == dW.shape
        np.testing.assert_allclose(printed, dW, rtol=5.01e-4, atol=1e-12)
    # finite differences beside each analytic gradient agree
    assert t.max_error < 1e-6
    assert "finite differences (2×3)" in t.to_text()


def test_per_example_accumulation_equals_vectorized():
    for name in ("note000", "note001", "note002"):
        t = trace_preset(name, examples=4, l2=0.5, per_example=True)
        pe = t.per_example
        assert len(pe["Delta"]) == 4
        for Dl, Dv in zip(pe["D_loop"], pe["D_vec"]):
            np.testing.assert_allclose(Dl, Dv, rtol=1e-10, atol=1e-14)
        assert pe["max_abs_difference"] < 1e-12
        assert pe["cost_loop"] == pytest.approx(t.cost, rel=1e-12)
        # the last Δ is the sum of every example's δ āᵀ: with λ = 0 parts removed it gives D·m
        m = t.m
        for _l, (Delta, rec) in enumerate(zip(pe["Delta"][-1], t.layers), 1):
            theta = to_theta(rec["W"], rec["b"])
            theta[:, 0] = 0
            np.testing.assert_allclose((Delta + 0.5 * theta) / m, to_theta(rec["dW"], rec["db"]), rtol=1e-10)
        text = t.to_text()
        assert "After example 4" in text and "The loop ends where the vectorized pass did" in text


def _check_latex(tex):
    assert tex.isascii(), sorted({c for c in tex if ord(c) > 127})
    stack = []
    for kind, env in re.findall(r"\\(begin|end)\{([^}]*)\}", tex):
        if kind == "begin":
            stack.append(env)
        else:
            assert stack and stack.pop() == env, f"\\end{{{env}}} does not close the last \\begin"
    assert not stack, f"unclosed environments {stack}"
    depth = 0
    stripped = re.sub(r"\\[{}]", "", tex)
    for ch in stripped:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, "a closing brace without an opening one"
    assert depth == 0, "unbalanced braces"
    assert tex.count("\\[") == tex.count("\\]")
    outside = re.sub(r"\\\[.*?\\\]", "", tex, flags=re.S)
    assert outside.replace("\\$", "").count("$") % 2 == 0


def test_latex_is_balanced():
    docs = []
    for spec in NETWORKS:
        for notation in ("bracket", "theta"):
            for l2 in (0.0, 0.1):
                docs.append(dp.explain(_net(spec), notation=notation, l2=l2).to_latex())
    docs.append(trace_preset("note001", examples=2, l2=0.1, per_example=True).to_latex())
    docs.append(trace_preset("note003", examples=2).to_latex())  # truncated matrices: \cdots, \vdots
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    net = dp.Network.from_sizes([4, 8, 2], seed=0)
    docs.append(dp.diagnose(dp.fit(net, X, (X[:, 0] > 0).astype(int), epochs=20, optimizer="sgd", batch_size=None, lr=10.0)).to_latex())
    for tex in docs:
        assert tex.startswith("\\documentclass") and tex.rstrip().endswith("\\end{document}")
        _check_latex(tex)


def test_json_parses_and_contains_every_stage():
    t = trace_preset("note001", examples=3, l2=0.1, per_example=True)
    d = json.loads(t.to_json())
    for stage in ("input", "forward", "cost", "output_error", "backward", "gradient_check", "per_example"):
        assert stage in d, stage
    assert [f["layer"] for f in d["forward"]] == [1, 2, 3]
    assert [b["layer"] for b in d["backward"]] == [3, 2, 1]
    for b in d["backward"]:
        for key in ("delta", "dW", "db", "dW_numeric", "db_numeric", "dW_relative_error", "db_relative_error"):
            assert key in b
    np.testing.assert_allclose(d["output_error"]["delta"], t.layers[-1]["delta"])
    assert np.array(d["backward"][0]["dW"]).shape == (2, 3)
    assert len(d["per_example"]["Delta_after_example"]) == 3
    e = json.loads(dp.explain([3, 4, 3, 2], l2=0.1).to_json())
    assert e["network"] == {"sizes": [3, 4, 3, 2], "activations": ["relu", "relu", "softmax"],
                            "loss": "cross_entropy", "l2": 0.1}
    titles = [b["text"] for b in e["blocks"] if b["type"] == "heading"]
    for want in ("Forward propagation", "The cost", "Backward pass", "1. The output error", "The update rule"):
        assert want in titles
    assert all("\\" not in b["text"] for b in e["blocks"] if b["type"] == "equation")


def test_presets_are_the_notes_networks():
    shapes = {"note000": [2, 2, 2, 1], "note001": [3, 4, 3, 2], "note002": [4, 5, 3], "note003": [64, 10, 10]}
    for name, sizes in shapes.items():
        t = trace_preset(name, examples=2)
        assert t.net.sizes == sizes and t.max_error < 1e-6, name
    assert trace_preset("note000").net.loss.name == "binary_cross_entropy"
    assert trace_preset("note002").net.activations == ["sigmoid", "softmax"]
    big = trace_preset("note003").to_text()
    assert "W^[1] (10×64)" in big and "⋯" in big  # large matrices are shown with their corners
    assert dp.trace("note001", examples=2).to_text() == trace_preset("note001", examples=2).to_text()
    assert set(PRESETS) == set(shapes)


def test_notebook_displays():
    e = dp.explain([3, 4, 3, 2])
    t = dp.trace("note001")
    for obj in (e, t):
        assert obj._repr_markdown_().startswith("# ")
        assert obj._repr_html_().startswith('<div class="deltaprop">')
        assert "$$" in obj._repr_markdown_()
    assert repr(e) == "Explanation(3-4-3-2, notation='bracket', l2=0)"


def test_tex_to_text():
    assert tex_to_text(r"Z^{[2]} = A^{[1]} W^{[2]\top} + b^{[2]}") == "Z^[2] = A^[1] W^[2]ᵀ + b^[2]"
    assert tex_to_text(r"\delta^{[3]} = \frac{A^{[3]} - Y}{m}") == "δ^[3] = (A^[3] − Y)/m"
    assert tex_to_text(r"\frac{\partial J}{\partial Z^{[3]}}") == "∂J/∂Z^[3]"
    assert tex_to_text(r"\|W\|_F^2") == "‖W‖_F²"


# -- diagnose -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 8))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def test_diagnose_vanishing_gradients_in_a_deep_sigmoid_network(data):
    X, y = data
    deep = dp.Network.from_sizes([8] + [16] * 9 + [2], hidden="sigmoid", seed=0)  # 10 layers of weights
    d = dp.diagnose(dp.fit(deep, X, y, epochs=5, optimizer="sgd", batch_size=None, lr=0.1))
    assert "vanishing_gradients" in d
    relu = dp.Network.from_sizes([8] + [16] * 9 + [2], hidden="relu", seed=0)
    assert "vanishing_gradients" not in dp.diagnose(dp.fit(relu, X, y, epochs=5, optimizer="sgd", batch_size=None, lr=0.1))


def test_diagnose_learning_rate_of_10(data):
    X, y = data
    net = dp.Network.from_sizes([8, 16, 2], seed=0)
    d = dp.diagnose(dp.fit(net, X, y, epochs=30, optimizer="sgd", batch_size=None, lr=10.0))
    assert "lr_too_high" in d
    assert "Try:" in d.to_text()
    healthy = dp.diagnose(dp.fit(dp.Network.from_sizes([8, 16, 2], seed=0), X, y, epochs=30, optimizer="sgd", batch_size=None, lr=0.5))
    assert healthy.ok, healthy.codes


def test_diagnose_divergence_from_the_error_history(data):
    X, _ = data
    net = dp.Network.from_sizes([8, 16, 1], output="identity", seed=0)
    with pytest.raises(dp.DivergenceError) as info:
        dp.fit(net, X * 10, X[:, 0] * 100, epochs=30, optimizer="sgd", batch_size=None, lr=10.0)
    d = dp.diagnose(info.value.history)
    assert "diverged" in d and "lr_too_high" in d
    assert dp.diagnose(info.value).codes == d.codes


def test_diagnose_dead_relu_units_and_overfitting(data):
    X, y = data
    net = dp.Network.from_sizes([8, 16, 2], seed=0)
    net.layers[0].b[:] = -20.0  # every hidden unit starts (and stays) inactive
    h = dp.fit(net, X, y, epochs=3, optimizer="sgd", batch_size=None, lr=0.1, callbacks=[dp.DeadUnitMonitor()])
    assert h.epochs[-1]["dead_fraction"] == [1.0, None]
    assert "dead_relu" in dp.diagnose(h)
    assert "dead_relu" in dp.diagnose(h.to_rows()[:0] or [{"loss": 1.0}], net=net, X=X)
    rng = np.random.default_rng(1)
    small = dp.Network.from_sizes([8, 64, 64, 2], seed=0)
    h = dp.fit(small, rng.normal(size=(30, 8)), rng.integers(0, 2, 30), epochs=150, optimizer="sgd", batch_size=None, lr=0.3,
               validation_data=(rng.normal(size=(100, 8)), rng.integers(0, 2, 100)))
    assert "overfitting" in dp.diagnose(h)


def test_diagnose_reads_a_run_directory_and_the_cli(tmp_path, data):
    X, y = data
    deep = dp.Network.from_sizes([8] + [16] * 9 + [2], hidden="sigmoid", seed=0)
    rows = dp.fit(deep, X, y, epochs=4, optimizer="sgd", batch_size=None, lr=0.1).to_rows()
    with open(tmp_path / "history.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert "vanishing_gradients" in dp.diagnose(tmp_path)
    out = io.StringIO()
    assert cli_main(["explain", "--diagnose", str(tmp_path), "--format", "json"], stdout=out) == 0
    assert "vanishing_gradients" in [f["code"] for f in json.loads(out.getvalue())["findings"]]
    out = io.StringIO()
    assert cli_main(["diagnose", str(tmp_path), "--format", "json"], stdout=out) == 0
    assert "vanishing_gradients" in [f["code"] for f in json.loads(out.getvalue())["findings"]]
    (tmp_path / "empty").mkdir()
    with pytest.raises(dp.DataError, match="no history.csv"):
        dp.diagnose(tmp_path / "empty")
    with pytest.raises(dp.DataError, match="no such file"):
        dp.diagnose(tmp_path / "missing")


# -- command line ---------------------------------------------------------------------------------------

def cli_main(argv, stdout):
    """The ``deltaprop`` command in this process, its standard output into ``stdout``."""
    with contextlib.redirect_stdout(stdout):
        return deltaprop_main(argv)


def _run(argv):
    out = io.StringIO()
    code = cli_main(argv, stdout=out)
    return code, out.getvalue()


def test_cli_explain_and_trace(tmp_path, capsys):
    code, text = _run(["explain", "--layers", "3,4,3,2", "--activation", "relu", "--output", "softmax",
                       "--loss", "cross_entropy", "--l2", "0.1"])
    assert code == 0 and "W^[2] (3×4)" in text and "δ^[2] (m×3)" in text
    code, md = _run(["explain", "--layers", "3,4,3,2", "--notation", "theta", "--format", "markdown"])
    assert code == 0 and "\\Theta^{(1)}" in md
    code, js = _run(["explain", "--layers", "2,2,2,1", "--activation", "sigmoid", "--loss", "binary_cross_entropy",
                     "--format", "json"])
    assert json.loads(js)["network"]["activations"] == ["sigmoid", "sigmoid", "sigmoid"]
    code, tex = _run(["trace", "--preset", "note001", "--per-example", "--examples", "3", "--format", "latex"])
    assert code == 0
    _check_latex(tex)
    code, js = _run(["trace", "--layers", "4,5,3", "--activation", "tanh", "--examples", "2", "--format", "json"])
    assert code == 0 and json.loads(js)["m"] == 2
    net = dp.Network.from_sizes([3, 4, 2], seed=0)
    dp_save(net, tmp_path / "model.safetensors")
    code, text = _run(["explain", str(tmp_path / "model.safetensors")])
    assert code == 0 and "W^[1] (4×3)" in text
    code, _ = _run(["explain", "--layers", "3,4,2", "--output", "relu", "--loss", "cross_entropy"])
    assert code == 2 and "cannot be trained with" in capsys.readouterr().err
    code, _ = _run(["trace", "--preset", "note999"])
    assert code == 2 and "valid names: note000, note001" in capsys.readouterr().err
    out = tmp_path / "page.md"
    assert _run(["trace", "--preset", "note000", "--format", "markdown", "-o", str(out)])[0] == 0
    assert out.read_text().startswith("# One step of backpropagation")
