"""Raw inputs through the facade: a network that stores an input scaling (a scikit-learn Pipeline
imported with from_sklearn, a model trained by the command) predicts from raw rows with
deltaprop.predict / predict_proba exactly as its source does; Network.predict takes scaled rows."""

import numpy as np
import pytest

import deltaprop as dp
from cli_child import run

sklearn = pytest.importorskip("sklearn")


def test_pipeline_with_a_scaler_predicts_the_same_from_raw_rows():
    from sklearn.datasets import load_iris
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), MLPClassifier((8,), max_iter=300, random_state=0)).fit(X, y)
    net = dp.from_sklearn(pipe)
    np.testing.assert_allclose(dp.predict_proba(net, X), pipe.predict_proba(X), atol=1e-6)
    assert np.array_equal(dp.predict(net, X), pipe.predict(X))
    # the network itself takes rows as it sees them: scaled
    np.testing.assert_allclose(net.predict_proba(dp.raw_inputs(net, X)), pipe.predict_proba(X), atol=1e-6)
    with pytest.raises(dp.InputError, match="3 features but the model was trained on 4"):
        dp.predict(net, X[:, :3])


def test_a_model_trained_by_the_command_predicts_from_raw_rows_as_the_command_does(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(50, 10, size=(120, 3))
    y = (X[:, 0] + X[:, 1] > 100).astype(int)
    rows = ["a,b,c,label"] + [f"{a},{b},{c},{'yes' if t else 'no'}" for (a, b, c), t in zip(X, y)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "in.csv").write_text("a,b,c\n" + "\n".join(",".join(map(str, r)) for r in X[:20]) + "\n")
    run("train", "--data", "t.csv", "--target", "label", "--epochs", "5", "--out", "r", "-q", "--no-plots",
        cwd=tmp_path, check=0)
    out = run("predict", "r/model.safetensors", "in.csv", cwd=tmp_path, check=0).stdout.splitlines()
    net = dp.load(tmp_path / "r" / "model.safetensors")
    assert list(dp.predict(net, X[:20])) == [line.split(",")[0] for line in out[1:]]
    P = np.array([[float(v) for v in line.split(",")[1:]] for line in out[1:]])
    np.testing.assert_allclose(dp.predict_proba(net, X[:20]), P, rtol=1e-6)


def test_diagnose_says_a_model_file_is_not_a_history(tmp_path):
    net = dp.Network.from_sizes([3, 4, 2], seed=0)
    dp.save(net, tmp_path / "m.safetensors")
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07\x12\x03abc\xe9")
    for name in ("m.onnx", "m.safetensors"):
        proc = run("diagnose", tmp_path / name)
        assert proc.returncode == 2 and "not a training history" in proc.stderr and "Traceback" not in proc.stderr
