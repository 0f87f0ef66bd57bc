"""Model files and exchange as a practitioner uses them: scikit-learn's bundled data sets written as CSVs
with pandas' defaults (index column, text class names), networks trained here or in scikit-learn, taken
out through ONNX Runtime, PyTorch and NumPy and back, and predicted on with the command.

Tolerances: the same network in another library sums its products in another order, so outputs agree to
a few units in the last place of the dtype, not to the bit: 1e-5 for float32 outputs (probabilities
≤ 1, values scaled back to the targets' units compared relative to them) and 1e-12 for float64; each
failure these tests were written for was orders of magnitude larger (a slope rounded to float32: 2e-10;
standardised values for values in the hundreds: 1e2).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import warnings

import numpy as np
import pytest

import deltaprop as dp
from cli_child import assert_clean_error, run

pd = pytest.importorskip("pandas", reason="pandas writes the CSVs as people have them")
sklearn_datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn holds the bundled data sets")


def csv_of(bunch_loader, path, text_classes=True):
    """The data set as ``DataFrame.to_csv(path)`` writes it (index column included); class names as text."""
    b = bunch_loader(as_frame=True)
    df = b.frame.copy()
    if text_classes and hasattr(b, "target_names") and len(b.target_names):
        df["target"] = np.asarray(b.target_names)[b.target]
    df.to_csv(path)
    return df


def predict_csv(model, inputs, *extra):
    proc = run("predict", model, inputs, *extra, check=0)
    assert "Traceback" not in proc.stderr
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    return rows[0], rows[1:], proc


# -- scikit-learn Pipelines keep their column names ---------------------------------------------------------
def test_a_pipeline_keeps_its_column_names_so_a_reordered_csv_is_matched_by_name(tmp_path):
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    df = csv_of(sklearn_datasets.load_iris, tmp_path / "iris.csv")
    X, y = df.drop(columns="target"), df["target"]
    pipe = make_pipeline(StandardScaler(), MLPClassifier((12,), max_iter=300, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(X, y)
    net = dp.from_sklearn(pipe)
    assert net.meta["feature_names"] == list(X.columns)
    dp.save(net, tmp_path / "m.safetensors")
    df[list(df.columns[::-1])].to_csv(tmp_path / "reordered.csv")
    header, rows, _ = predict_csv(tmp_path / "m.safetensors", tmp_path / "iris.csv", "--drop", "target")
    header2, rows2, proc = predict_csv(tmp_path / "m.safetensors", tmp_path / "reordered.csv",
                                       "--drop", "target")
    assert "matched to the model's by name" in proc.stderr
    assert (header2, rows2) == (header, rows)
    P = np.array([[float(v) for v in r[1:]] for r in rows])
    np.testing.assert_allclose(P, pipe.predict_proba(X), rtol=0, atol=1e-12)  # float64 on both sides
    assert [r[0] for r in rows] == list(pipe.predict(X))


# -- a float64 leaky ReLU through ONNX Runtime --------------------------------------------------------------
def test_a_float64_leaky_relu_network_exports_to_onnx_with_its_exact_slope(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed")
    X, y = sklearn_datasets.load_digits(return_X_y=True)
    net = dp.Network.from_sizes([64, 32, 10], hidden="leaky_relu", dtype="float64", seed=0)
    dp.fit(net, X / 16, y, epochs=2, seed=0)
    dp.save(net, tmp_path / "m.safetensors")
    dp.to_onnx(net, tmp_path / "m.onnx")
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"X": X / 16})[0]
    # LeakyRelu's float32 alpha (0.009999999776) put every negative unit 2e-10 off; the graph's own slope is
    # exact, leaving the order of Gemm's sums (1e-16).
    np.testing.assert_allclose(got, net.predict_proba(X / 16), rtol=0, atol=1e-12)
    back = dp.from_onnx(tmp_path / "m.onnx")
    assert back.activations == ["leaky_relu", "softmax"]
    assert all(np.array_equal(a, b) for a, b in zip(back.params(), net.params()))
    # The command's own check after the export (64 rows, tolerance 1e-10 for float64) passes.
    proc = run("export", tmp_path / "m.safetensors", "-o", tmp_path / "c.onnx", check=0)
    assert " ok" in proc.stdout


# -- Poisson counts are not standardised -----------------------------------------------------------------
def test_a_poisson_network_learns_the_counts_and_can_predict_below_their_mean():
    X, y = sklearn_datasets.load_diabetes(return_X_y=True)
    counts = np.round(y / 10)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    net = dp.Network.from_sizes([10, 16, 1], output="exp", seed=0)
    dp.fit(net, X, counts, epochs=100, seed=0)
    # Standardised counts go below 0, and A·std + mean with A = e^z > 0 never falls below the mean.
    assert "target_scaling" not in net.meta
    p = dp.predict(net, X)
    assert p.min() < counts.mean() - counts.std()
    assert np.corrcoef(p, counts)[0, 1] > 0.5
    # A squared-error network still learns standardised targets.
    reg = dp.Network.from_sizes([10, 16, 1], output="identity", seed=0)
    dp.fit(reg, X, y, epochs=2, seed=0)
    assert reg.meta["target_scaling"]["mean"] == pytest.approx([y.mean()])


# -- a regression trained on standardised targets goes out in the targets' units ---------------------------
@pytest.fixture(scope="module", params=["float32", "float64"])
def diabetes_run(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"diabetes_{request.param}")
    csv_of(sklearn_datasets.load_diabetes, d / "diabetes.csv")
    run("train", "--data", d / "diabetes.csv", "--target", "target", "--task", "regression", "--layers", "16",
        "--epochs", "5", "--dtype", request.param, "--out", d / "run", "--no-plots", "-q", check=0)
    return d, request.param


def test_exports_of_a_regression_give_values_in_the_targets_units(diabetes_run, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed")
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    d, dtype = diabetes_run
    model = d / "run" / "model.safetensors"
    net = dp.load(model)
    assert net.meta["target_scaling"]["std"][0] > 10  # the targets are in the hundreds
    header, rows, _ = predict_csv(model, d / "diabetes.csv")
    assert header == ["target"]
    want = np.array([[float(r[0])] for r in rows])
    X = pd.read_csv(d / "diabetes.csv", index_col=0).drop(columns="target").to_numpy(dtype)
    # float32: the network's outputs (about 1) carry 1e-7, the values std·1e-7 (std ≈ 77); float64: 1e-16.
    tol = 1e-5 if dtype == "float32" else 1e-12
    size = np.maximum(np.abs(want), net.meta["target_scaling"]["std"][0])
    outputs = {"onnx": tmp_path / "m.onnx", "torch": tmp_path / "torch", "npz": tmp_path / "m.npz"}
    for to, out in outputs.items():
        proc = run("export", model, "--to", to, "-o", out, "--check-data", d / "diabetes.csv", check=0)
        assert " ok" in proc.stdout and "targets   learnt standardised" in proc.stdout
        assert "the index pandas' to_csv writes" in proc.stderr  # read as predict reads it
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"X": X})[0]
    assert np.max(np.abs(got - want) / size) < tol
    spec = importlib.util.spec_from_file_location("exported", tmp_path / "torch" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with torch.no_grad():
        got = module.load()(torch.from_numpy(X)).numpy()
    assert np.max(np.abs(got - want) / size) < tol
    with np.load(tmp_path / "m.npz") as f:
        A = (X - f["shift"]) / f["scale"]
        for l, name in enumerate(f["activations"], 1):
            A = dp.get_activation(str(name)).forward(A @ f[f"W{l}"].T + f[f"b{l}"])
        got = A * f["target_std"] + f["target_mean"]
    assert np.max(np.abs(got - want) / size) < tol
    # Back in: the graph's Mul and Add are the target scaling again, the stored float64 numbers kept.
    for back in (dp.from_onnx(tmp_path / "m.onnx"), dp.from_torch(dp.to_torch(net))):
        assert all(np.array_equal(a, b) for a, b in zip(back.params(), net.params()))
        np.testing.assert_array_equal(dp.predict(back, X), dp.predict(net, X))
    assert dp.from_onnx(tmp_path / "m.onnx").meta["target_scaling"] == net.meta["target_scaling"]
    proc = run("evaluate", tmp_path / "m.onnx", "--data", d / "diabetes.csv", "--json", check=0)
    mine = run("evaluate", model, "--data", d / "diabetes.csv", "--json", check=0)
    assert json.loads(proc.stdout)["rmse"] == pytest.approx(json.loads(mine.stdout)["rmse"], rel=1e-6)


def test_an_onnx_graph_without_the_target_scaling_is_read_as_the_graph_computes(diabetes_run, tmp_path):
    """The graph is what runs: a meta that says 'target_scaling' over a graph that does not scale (what
    deltaprop wrote before it exported the scaling) gives the graph's numbers, not the meta's."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed")
    d, _ = diabetes_run
    net = dp.load(d / "run" / "model.safetensors")
    model = dp.to_onnx(net)
    nodes = [n for n in model.graph.node if n.name not in ("target_scale", "target_shift")]
    nodes[-1].output[0] = "values"
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, tmp_path / "old.onnx")
    back = dp.from_onnx(tmp_path / "old.onnx")
    assert "target_scaling" not in back.meta
    X = pd.read_csv(d / "diabetes.csv", index_col=0).drop(columns="target").to_numpy()
    np.testing.assert_array_equal(dp.predict(back, X), net.forward(dp.raw_inputs(net, X))[:, 0])


# -- a CSV whose columns the model cannot match ---------------------------------------------------------
@pytest.fixture(scope="module")
def wine_pipeline(tmp_path_factory):
    """scikit-learn's MLP on wine in a Pipeline, fitted on the DataFrame, saved as a deltaprop model."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    d = tmp_path_factory.mktemp("wine")
    df = csv_of(sklearn_datasets.load_wine, d / "wine.csv")
    pipe = make_pipeline(MinMaxScaler(), MLPClassifier((8,), max_iter=50, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(df.drop(columns="target"), df["target"])
    dp.save(dp.from_sklearn(pipe), d / "m.safetensors")
    return d, df


def test_a_text_column_the_model_does_not_know_is_named_with_the_drop_that_leaves_it_out(wine_pipeline):
    d, df = wine_pipeline
    # The training CSV itself: the model (imported) does not know which column was the target.
    proc = run("predict", d / "m.safetensors", d / "wine.csv")
    assert_clean_error(proc, 2, "has the column 'target' the model does not know", "--drop target")
    extra = df.copy()
    extra.insert(0, "vineyard", [f"v{i % 7}" for i in range(len(df))])
    extra.to_csv(d / "extra.csv")
    proc = run("predict", d / "m.safetensors", d / "extra.csv", "--drop", "target")
    assert_clean_error(proc, 2, "'vineyard' the model does not know", "--drop vineyard")
    run("predict", d / "m.safetensors", d / "extra.csv", "--drop", "target,vineyard", check=0)
    # evaluate on that file names it the same way (it said "'v0' is not a number")
    proc = run("evaluate", d / "m.safetensors", "--data", d / "extra.csv", "--target", "target")
    assert_clean_error(proc, 2, "'vineyard' the model does not know", "--drop vineyard")
    run("evaluate", d / "m.safetensors", "--data", d / "extra.csv", "--target", "target", "--drop", "vineyard",
        check=0)
    # A missing column, a numeric extra one: named as before.
    df.drop(columns="ash").to_csv(d / "missing.csv")
    assert_clean_error(run("predict", d / "m.safetensors", d / "missing.csv", "--drop", "target"), 2,
                       "lacks the column(s) 'ash'")


def test_a_model_without_column_names_says_the_file_order_is_taken(wine_pipeline, tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    d, df = wine_pipeline
    net = dp.load(d / "m.safetensors")
    module = dp.to_torch(net)
    back = dp.from_torch(module, classes=net.meta["classes"])
    assert "feature_names" not in back.meta  # a module holds none
    dp.save(back, tmp_path / "m.safetensors")
    header, rows, proc = predict_csv(tmp_path / "m.safetensors", d / "wine.csv", "--drop", "target")
    assert "the model stores no column names" in proc.stderr and "'alcohol', 'malic_acid'" in proc.stderr
    assert (header, rows) == predict_csv(d / "m.safetensors", d / "wine.csv", "--drop", "target")[:2]
    X = torch.from_numpy(df.drop(columns="target").to_numpy().copy())
    with torch.no_grad():
        P = module(X).numpy()
    np.testing.assert_allclose(np.array([[float(v) for v in r[1:]] for r in rows]), P, rtol=0, atol=1e-12)
    proc = run("evaluate", tmp_path / "m.safetensors", "--data", d / "wine.csv", "--target", "target",
               check=0)
    assert "the model stores no column names" in proc.stderr


def test_a_csv_or_an_onnx_file_given_as_the_model_is_named(wine_pipeline, tmp_path):
    d, _ = wine_pipeline
    proc = run("predict", d / "wine.csv", d / "m.safetensors")  # the two arguments swapped
    assert_clean_error(proc, 3, "looks like a text file", "the model file is the first argument")
    dp.to_onnx(dp.load(d / "m.safetensors"), tmp_path / "m.onnx")
    (tmp_path / "m.bin").write_bytes((tmp_path / "m.onnx").read_bytes())
    proc = run("predict", tmp_path / "m.bin", d / "wine.csv", "--drop", "target")
    assert_clean_error(proc, 3, "looks like an ONNX model", "ends in .onnx")
