"""The ``deltaprop`` command, run for real in a subprocess: train, evaluate, predict, info, gradcheck.

The trained run is shared by the tests of this module (one short training on digits), so the whole
file stays fast; every other command reads the files it wrote.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from cli_child import assert_clean_error, run
from deltaprop import load
from deltaprop.io.datasets import resolve, write_idx
from deltaprop.io.preprocessing import Scaler

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    proc = run("train", "--epochs", "12", "--layers", "32", "--out", out, "--seed", "3", check=0)
    return out, proc


def in_memory(net, spec="digits", seed=3, split="test"):
    """Inputs and labels of the model's data split, scaled as the model says, and its predictions."""
    data = resolve(spec, seed=seed)
    X = data.X_test if split == "test" else data.X_train
    y = data.y_test if split == "test" else data.y_train
    Xs = Scaler.from_dict(net.meta["scaler"]).transform(X, dtype=net.dtype)
    return X, y, net.forward(Xs)


def is_png(path: Path):
    raw = path.read_bytes()
    assert raw[:8] == PNG_MAGIC, path
    import matplotlib.image

    img = matplotlib.image.imread(path)
    assert img.shape[0] >= 200 and img.shape[1] >= 200, img.shape
    gray = img[..., :3].mean(axis=2)  # not blank: ink on the page and more than a couple of shades
    assert gray.std() > 0.02 and (gray < 0.5).mean() > 0.002 and len(np.unique(gray)) > 8, path


# -- train ------------------------------------------------------------------------------------------
def test_train_writes_a_complete_run_directory(digits_run):
    out, proc = digits_run
    for name in ("model.safetensors", "history.csv", "metrics.json", "curves.png", "confusion.png", "weights.png",
                 "gradient_flow.png"):
        assert (out / name).is_file(), name
    for name in ("curves.png", "confusion.png", "weights.png", "gradient_flow.png"):
        is_png(out / name)
    with open(out / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 13))
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "delta_norm_1", "dW_norm_2"} <= set(rows[0])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 12 and metrics["status"] == "completed"
    assert metrics["network"]["sizes"] == [64, 32, 10]
    assert 0.85 < metrics["test"]["accuracy"] <= 1.0
    cm = np.array(metrics["test"]["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == metrics["data"]["test_rows"]
    assert metrics["command"].startswith("deltaprop train")
    assert metrics["config"]["layers"] == [32]
    assert metrics["environment"]["compiled"].startswith("NumPy passes")  # a short run: no compiled step
    # The summary a person reads.
    assert "test accuracy" in proc.stdout and "saved:" in proc.stdout
    assert "epoch" in proc.stderr  # progress (plain lines when not on a terminal)


def test_saved_model_reproduces_the_reported_accuracy(digits_run):
    out, _ = digits_run
    net = load(out / "model.safetensors")
    assert net.meta["classes"] == [str(i) for i in range(10)]
    _, y, A = in_memory(net)
    accuracy = float(np.mean(np.argmax(A, axis=1) == y))
    metrics = json.loads((out / "metrics.json").read_text())
    assert accuracy == metrics["test"]["accuracy"]


def test_evaluate_matches_in_memory_predictions(digits_run):
    out, _ = digits_run
    proc = run("evaluate", out / "model.safetensors", "--json", check=0)
    result = json.loads(proc.stdout)
    net = load(out / "model.safetensors")
    _, y, A = in_memory(net)
    assert result["accuracy"] == float(np.mean(np.argmax(A, axis=1) == y))
    assert result["rows"] == y.shape[0]
    assert np.array_equal(np.array(result["confusion_matrix"]).sum(axis=1), np.bincount(y, minlength=10))
    text = run("evaluate", out / "model.safetensors", check=0).stdout
    assert "accuracy" in text and "precision" in text.lower()


def predictions_from_csv(text: str):
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    labels = [r[0] for r in body]
    P = np.array([[float(v) for v in r[1:]] for r in body])
    return header, labels, P


def test_predict_npy_csv_and_idx_reproduce_in_memory_predictions(digits_run, tmp_path):
    out, _ = digits_run
    model = out / "model.safetensors"
    net = load(model)
    X, y, _ = in_memory(net)
    # The same 50 rows in one batch as the command sees them (BLAS rounding may depend on the batch).
    X = X[:50]
    A = net.forward(Scaler.from_dict(net.meta["scaler"]).transform(X, dtype=net.dtype))
    expected = [str(k) for k in np.argmax(A, axis=1)]

    np.save(tmp_path / "x.npy", X)
    proc = run("predict", model, tmp_path / "x.npy", check=0)
    header, labels, P = predictions_from_csv(proc.stdout)
    assert header == ["label"] + [f"p_{i}" for i in range(10)]
    assert labels == expected
    assert np.array_equal(P, A.astype(np.float64))  # repr of each float: exact

    with open(tmp_path / "x.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"px{j}" for j in range(64)] + ["digit"])
        for row, label in zip(X, y[:50]):
            w.writerow([repr(float(v)) for v in row] + [int(label)])
    proc = run("predict", model, tmp_path / "x.csv", "--drop", "digit", "-o", tmp_path / "pred.csv", check=0)
    _, labels, P = predictions_from_csv((tmp_path / "pred.csv").read_text())
    assert labels == expected and np.array_equal(P, A.astype(np.float64))

    write_idx(tmp_path / "images-idx3-ubyte.gz", X.reshape(50, 8, 8).astype(np.uint8))
    proc = run("predict", model, tmp_path / "images-idx3-ubyte.gz", "--no-proba", check=0)
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert rows[0] == ["label"] and [r[0] for r in rows[1:]] == expected


def test_info_describes_the_model(digits_run):
    out, _ = digits_run
    text = run("info", out / "model.safetensors", check=0).stdout
    assert "64-32-10" in text and "2,410 params" in text and "classes" in text
    info = json.loads(run("info", out / "model.safetensors", "--json", check=0).stdout)
    assert info["parameters"] == 64 * 32 + 32 + 32 * 10 + 10
    assert info["training"]["epochs"] == 12


# -- other data sources -----------------------------------------------------------------------------
def write_mnist_like(directory: Path, seed=0, n_train=300, n_test=100):
    """A tiny MNIST-layout directory: 3 classes of 8×8 images, each class a bright band in its own rows."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for part, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, 3, size=n).astype(np.uint8)
        images = rng.integers(0, 60, size=(n, 8, 8)).astype(np.uint8)
        for i, c in enumerate(y):
            images[i, 2 * c:2 * c + 3, :] += 180
        write_idx(directory / f"{part}-images-idx3-ubyte.gz", images)
        write_idx(directory / f"{part}-labels-idx1-ubyte", y)


def test_train_on_mnist_layout_idx_files(tmp_path):
    write_mnist_like(tmp_path / "idx")
    out = tmp_path / "run"
    proc = run("train", "--data", f"mnist:{tmp_path / 'idx'}", "--epochs", "5", "--layers", "16", "--out", out,
               "--quiet", check=0)
    assert proc.stdout.strip().endswith("model.safetensors")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.9
    assert metrics["data"]["train_rows"] == 300 and metrics["data"]["test_rows"] == 100
    is_png(out / "weights.png")


def test_train_regression_from_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = X @ np.array([1.5, -2.0, 0.5]) + 0.1 * rng.normal(size=300) + 0.25
    with open(tmp_path / "t.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "c", "target"])
        w.writerows(np.column_stack([X, y]).tolist())
    out = tmp_path / "run"
    run("train", "--data", tmp_path / "t.csv", "--target", "target", "--layers", "16", "--epochs", "100", "--lr", "0.01",
        "--out", out, "--no-plots", check=0)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["network"]["loss"] == "squared_error"
    assert metrics["test"]["r2"] > 0.9
    proc = run("predict", out / "model.safetensors", tmp_path / "t.csv", "--drop", "target", check=0)
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert rows[0] == ["target"] and len(rows) == 301  # named after the target column


def test_binary_sigmoid_output_and_full_batch(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 2))
    y = np.where(X[:, 0] * X[:, 1] > 0, "same", "diff")
    np.savez(tmp_path / "xor.npz", X=X, y=y)
    out = tmp_path / "run"
    run("train", "--data", tmp_path / "xor.npz", "--output", "sigmoid", "--layers", "8,8", "--activation", "tanh",
        "--optimizer", "sgd", "--lr", "0.5", "--full-batch", "--epochs", "1500", "--out", out, "--no-plots",
        "--quiet", check=0)
    net = load(out / "model.safetensors")
    assert net.sizes == [2, 8, 8, 1] and net.loss.name == "binary_cross_entropy"
    assert net.meta["training"]["optimizer"] == "SGD(lr=0.5)"  # plain SGD: no momentum unless asked
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.85
    assert set(metrics["test"]["per_class"]) == {"diff", "same"}


# -- gradcheck --------------------------------------------------------------------------------------
@pytest.mark.parametrize("activation,loss", [("tanh", "cross_entropy"), ("sigmoid", "binary_cross_entropy"),
                                             ("relu", "squared_error")])
def test_gradcheck_command_passes(activation, loss):
    proc = run("gradcheck", "--layers", "4,5,3", "--activation", activation, "--loss", loss, "--l2", "0.1", check=0)
    assert "PASSED" in proc.stdout
    rep = json.loads(run("gradcheck", "--layers", "4,5,3", "--activation", activation, "--loss", loss,
                         "--json", check=0).stdout)
    assert rep["ok"] and len(rep["rows"]) == 4 and rep["max_error"] < 1e-7


def test_gradcheck_command_fails_with_exit_1_when_the_tolerance_cannot_be_met():
    # A step h = 0.5 makes centered differences visibly wrong for tanh: the check must say so.
    proc = run("gradcheck", "--layers", "3,4,2", "--activation", "tanh", "--h", "0.5")
    assert proc.returncode == 1 and "FAILED" in proc.stdout


# -- errors -----------------------------------------------------------------------------------------
def test_truncated_and_garbled_model_files_give_a_clear_error(digits_run, tmp_path):
    out, _ = digits_run
    raw = (out / "model.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(raw[: len(raw) // 2])
    assert_clean_error(run("evaluate", tmp_path / "cut.safetensors"), 3, "cut.safetensors")
    garbled = bytearray(raw)
    garbled[8:40] = b"#" * 32
    (tmp_path / "bad.safetensors").write_bytes(bytes(garbled))
    assert_clean_error(run("predict", tmp_path / "bad.safetensors", tmp_path / "x.npy"), 3)
    (tmp_path / "pickle.pt").write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    assert_clean_error(run("info", tmp_path / "pickle.pt"), 3, "pickle")
    assert_clean_error(run("info", tmp_path / "missing.safetensors"), 3)


def test_usage_errors_exit_2_without_traceback():
    proc = run("fly")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("train", "--no-such-option")
    assert proc.returncode == 2 and "unrecognized arguments" in proc.stderr
    proc = run("train", "--layers", "10,-3")
    assert proc.returncode == 2 and "--layers" in proc.stderr
    proc = run("train", "--lr", "nan")
    assert proc.returncode == 2 and "--lr" in proc.stderr
    proc = run()
    assert proc.returncode == 2


def test_bad_data_and_settings_give_hints(tmp_path, digits_run):
    assert_clean_error(run("train", "--data", f"fashion-mnist:{tmp_path / 'nowhere'}"), 2, "apt-get install")
    assert_clean_error(run("train", "--data", "cifar"), 2, "unknown data spec", "digits")
    assert_clean_error(run("train", "--optimizer", "adma", "--epochs", "1", "--out", tmp_path / "r"), 2, "adam")
    assert_clean_error(run("train", "--activation", "rleu", "--epochs", "1", "--out", tmp_path / "r"), 2, "relu")
    assert_clean_error(run("train", "--output", "identity", "--epochs", "1", "--out", tmp_path / "r"), 2,
                       "regression")
    out, _ = digits_run
    np.save(tmp_path / "wrong.npy", np.zeros((3, 10)))
    assert_clean_error(run("predict", out / "model.safetensors", tmp_path / "wrong.npy"), 2, "10", "64")
    (tmp_path / "junk.idx").write_bytes(b"\x01\x02\x03\x04\x05")
    assert_clean_error(run("predict", out / "model.safetensors", tmp_path / "junk.idx"), 2, "magic")


def test_version_and_help():
    assert run("--version", check=0).stdout.startswith("deltaprop ")
    text = run("--help", check=0).stdout
    for cmd in ("train", "evaluate", "predict", "info", "gradcheck", "explain", "trace"):
        assert cmd in text
    assert "examples:" in run("train", "--help", check=0).stdout
