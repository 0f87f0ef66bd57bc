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
import io
import warnings

import numpy as np
import pytest

import deltaprop as dp
from cli_child import run

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
    header2, rows2, proc = predict_csv(tmp_path / "m.safetensors", tmp_path / "reordered.csv", "--drop", "target")
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
