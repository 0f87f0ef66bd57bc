"""Networks in and out: scikit-learn, PyTorch and ONNX into deltaprop, deltaprop out to ONNX, PyTorch and
NumPy, from Python and from the command. Every comparison runs the real other library (scikit-learn's
MLP, torch.nn, ONNX Runtime, skl2onnx) on scikit-learn's bundled data sets.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import deltaprop
from cli_child import assert_clean_error, run
from deltaprop.errors import ConfigError, InputTypeError, ModelFileError
from deltaprop.io.preprocessing import Scaler

sklearn_datasets = pytest.importorskip(
    "sklearn.datasets", reason="scikit-learn is needed for the bundled data sets"
)
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402


def fit_quietly(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a few iterations are enough here
        return est.fit(X, y)


@pytest.fixture(scope="module")
def iris():
    return sklearn_datasets.load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def diabetes():
    return sklearn_datasets.load_diabetes(return_X_y=True)


# -- import deltaprop stays NumPy-only ------------------------------------------------------------------
def test_import_deltaprop_and_its_exchange_names_need_numpy_alone():
    code = (
        "import sys, deltaprop as dp\n"
        "fns = [dp.to_onnx, dp.from_onnx, dp.to_torch, dp.from_torch, dp.from_sklearn, dp.to_npz]\n"
        "heavy = {'onnx', 'onnxruntime', 'torch', 'sklearn', 'scipy', 'skl2onnx', 'pandas', 'matplotlib'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_missing_extra_names_the_pip_command(tmp_path):
    net = deltaprop.Network.from_sizes([3, 2], seed=0)
    deltaprop.save(net, tmp_path / "m.safetensors")
    # Make `import onnx` and `import torch` fail in a child process, as on a machine without them.
    code = (
        "import sys; sys.modules['onnx'] = None; sys.modules['torch'] = None\n"
        "import deltaprop\n"
        "net = deltaprop.load(sys.argv[1])\n"
        "for f in (lambda: deltaprop.to_onnx(net), lambda: deltaprop.to_torch(net)):\n"
        "    try:\n        f()\n    except deltaprop.ConfigError as e:\n        print(e.exit_code, e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "m.safetensors")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "2 ONNX export needs the onnx package" in out
    assert "pip install 'deltaprop[onnx]'" in out
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in out
    env = dict(os.environ, PYTHONSTARTUP="")
    code = (
        "import sys, runpy; sys.modules['onnx'] = None; "
        "sys.argv = ['deltaprop', 'export', sys.argv[1], '--to', 'onnx', '-o', sys.argv[2]]; "
        "runpy.run_module('deltaprop', run_name='__main__')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "m.safetensors"), str(tmp_path / "m.onnx")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert_clean_error(proc, 2, "onnx package", "pip install")
    assert not (tmp_path / "m.onnx").exists()


# -- scikit-learn in ------------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
def test_from_sklearn_classifier_gives_its_probabilities(iris, activation):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    est = fit_quietly(MLPClassifier((8, 5), activation=activation, max_iter=200, random_state=0), X, names)
    net = deltaprop.from_sklearn(est)
    assert net.activations == [{"logistic": "sigmoid"}.get(activation, activation)] * 2 + ["softmax"]
    assert net.loss.name == "cross_entropy"
    assert net.meta["classes"] == ["setosa", "versicolor", "virginica"]
    np.testing.assert_allclose(net.predict_proba(X), est.predict_proba(X), rtol=0, atol=1e-6)
    assert (np.array(net.meta["classes"])[net.predict(X)] == est.predict(X)).all()


def test_from_sklearn_binary_classifier_is_one_sigmoid_unit(iris):
    X, y = iris
    labels = np.where(y == 2, "yes", "no")
    est = fit_quietly(MLPClassifier((6,), activation="tanh", max_iter=200, random_state=1), X, labels)
    net = deltaprop.from_sklearn(est)
    assert (
        net.sizes == [4, 6, 1]
        and net.activations[-1] == "sigmoid"
        and net.loss.name == "binary_cross_entropy"
    )
    assert net.meta["classes"] == ["no", "yes"]
    np.testing.assert_allclose(net.predict_proba(X), est.predict_proba(X), rtol=0, atol=1e-6)


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic"])
def test_from_sklearn_regressor_gives_its_values(diabetes, activation):
    X, y = diabetes
    est = fit_quietly(
        MLPRegressor(hidden_layer_sizes=(10, 4), activation=activation, max_iter=100, random_state=0), X, y
    )
    net = deltaprop.from_sklearn(est)
    assert net.activations[-1] == "identity" and net.loss.name == "squared_error"
    assert net.meta["task"] == "regression" and "classes" not in net.meta
    np.testing.assert_allclose(net.predict(X), est.predict(X), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("scaler", ["StandardScaler", "MinMaxScaler"])
def test_from_sklearn_pipeline_keeps_its_scaler_as_the_input_scaling(iris, scaler):
    from sklearn import preprocessing
    from sklearn.pipeline import make_pipeline

    X, y = iris
    pipe = fit_quietly(
        make_pipeline(getattr(preprocessing, scaler)(), MLPClassifier((7,), max_iter=200, random_state=0)),
        X,
        y,
    )
    net = deltaprop.from_sklearn(pipe)
    assert net.meta["scaler"]["kind"] == {"StandardScaler": "standard", "MinMaxScaler": "minmax"}[scaler]
    Xs = Scaler.from_dict(net.meta["scaler"]).transform(X, dtype=np.float64)
    np.testing.assert_allclose(net.predict_proba(Xs), pipe.predict_proba(X), rtol=0, atol=1e-6)


def test_from_sklearn_reads_deltaprop_estimators(iris):
    X, y = iris
    est = fit_quietly(deltaprop.MLPClassifier((6,), max_iter=30, random_state=0), X, y)
    net = deltaprop.from_sklearn(est)
    np.testing.assert_allclose(net.predict_proba(X), est.predict_proba(X), rtol=0, atol=1e-6)
    assert net.meta["classes"] == [0, 1, 2] and net.meta["source"]["estimator"] == "MLPClassifier"


def test_from_sklearn_refuses_what_it_cannot_read(diabetes):
    X, y = diabetes
    with pytest.raises(ConfigError, match="has it been fitted"):
        deltaprop.from_sklearn(MLPClassifier())
    # (a Poisson regressor, which ends in exp, is read: test_poisson_regressors_go_in_and_out)
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(ConfigError, match="cannot read a LogisticRegression"):
        deltaprop.from_sklearn(LogisticRegression())


# -- PyTorch in and out ---------------------------------------------------------------------------------
torch_cases = [
    ("relu-tanh-logits-softmax", "softmax"),
    ("leaky-sigmoid-binary", None),
    ("sigmoid-identity-regression", "identity"),
    ("relu-softmax-module", None),
]


def _torch_module(case, torch):
    from torch import nn

    torch.manual_seed(0)
    return {
        "relu-tanh-logits-softmax": lambda: nn.Sequential(
            nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3)
        ),
        "leaky-sigmoid-binary": lambda: nn.Sequential(
            nn.Linear(4, 8), nn.LeakyReLU(0.01), nn.Dropout(0.2), nn.Linear(8, 1), nn.Sigmoid()
        ),
        "sigmoid-identity-regression": lambda: nn.Sequential(nn.Linear(4, 5), nn.Sigmoid(), nn.Linear(5, 2)),
        "relu-softmax-module": lambda: nn.Sequential(
            nn.Sequential(nn.Linear(4, 8), nn.ReLU()), nn.Linear(8, 3), nn.Softmax(dim=-1)
        ),
    }[case]().eval()


@pytest.mark.parametrize("case, output", torch_cases)
def test_from_torch_computes_what_the_module_computes(iris, case, output):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0, CPU)")
    module = _torch_module(case, torch)
    X = iris[0].astype(np.float32)
    net = deltaprop.from_torch(module, output=output)
    assert net.dtype == np.float32
    with torch.no_grad():
        T = module(torch.from_numpy(X))
        if output == "softmax":
            T = torch.softmax(T, dim=-1)
    np.testing.assert_allclose(net.forward(X), T.numpy(), rtol=0, atol=1e-5)


def test_from_torch_says_what_it_cannot_read():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    from torch import nn

    logits = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ConfigError, match="ends in Linear.*logits") as err:
        deltaprop.from_torch(logits)
    assert "output='softmax'" in str(err.value)
    with pytest.raises(ConfigError, match="GELU.*does not support") as err:
        deltaprop.from_torch(nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 2)), output="softmax")
    assert "ReLU, Tanh, Sigmoid" in str(err.value)
    with pytest.raises(ConfigError, match="slope 0.2"):
        deltaprop.from_torch(
            nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.2), nn.Linear(4, 2)), output="identity"
        )
    with pytest.raises(ConfigError, match="ends in softmax but output='sigmoid'"):
        deltaprop.from_torch(nn.Sequential(nn.Linear(3, 2), nn.Softmax(dim=-1)), output="sigmoid")
    with pytest.raises(ConfigError, match="ends in relu"):
        deltaprop.from_torch(nn.Sequential(nn.Linear(3, 2), nn.ReLU()))
    with pytest.raises(ConfigError, match="Conv1d"):
        deltaprop.from_torch(nn.Sequential(nn.Conv1d(1, 1, 3)), output="identity")
    assert torch is not None


def test_from_torch_reads_a_module_that_ends_in_log_softmax_as_a_classifier(iris):
    """nn.LogSoftmax last (the NLLLoss habit): the same classifier, its probabilities exp(outputs), said."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    from torch import nn

    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.LogSoftmax(dim=1)).eval()
    X = iris[0].astype(np.float32)
    with pytest.warns(UserWarning, match="ends in LogSoftmax.*exponentials"):
        net = deltaprop.from_torch(module, classes=["a", "b", "c"])
    with torch.no_grad():
        log_p = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(net.forward(X), np.exp(log_p), rtol=0, atol=1e-6)
    assert (net.forward(X).argmax(axis=1) == log_p.argmax(axis=1)).all()
    assert "LogSoftmax read as softmax" in net.meta["source"]["output"]
    with pytest.raises(ConfigError, match=r"LogSoftmax\(dim=0\).*row by row"):
        deltaprop.from_torch(nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(dim=0)))
    with pytest.raises(ConfigError):  # not at the output
        deltaprop.from_torch(nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(dim=1), nn.Linear(3, 2)), output="softmax")


def test_from_torch_reads_an_image_classifier_that_starts_with_flatten():
    """The usual PyTorch image MLP, nn.Flatten() first: deltaprop takes the images as flattened rows
    and computes what the module computes on the images; a Flatten anywhere else is refused."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    from torch import nn

    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    images = np.random.default_rng(0).random((7, 8, 8), dtype=np.float32)
    net = deltaprop.from_torch(module, output="softmax")
    assert net.sizes == [64, 16, 10]
    with torch.no_grad():
        expected = torch.softmax(module(torch.from_numpy(images)), dim=-1).numpy()
    np.testing.assert_allclose(net.forward(images.reshape(7, -1)), expected, rtol=0, atol=1e-6)
    assert "Flatten" in net.meta["source"]["inputs"]
    with pytest.raises(ConfigError, match="Flatten"):
        deltaprop.from_torch(nn.Sequential(nn.Linear(4, 4), nn.Flatten(), nn.Linear(4, 2)), output="softmax")


def _scaled_net(X, sizes, hidden, output, scaling="standard", dtype="float32", classes=None):
    net = deltaprop.Network.from_sizes(sizes, hidden=hidden, output=output, seed=5, dtype=dtype)
    net.meta["scaler"] = Scaler.from_spec(scaling).fit(X).to_dict()
    if classes:
        net.meta["classes"] = classes
    return net


def _deltaprop_outputs(net, X_raw):
    """What ``deltaprop predict`` computes: the stored scaling, then probabilities or values."""
    A = net.forward(Scaler.from_dict(net.meta["scaler"]).transform(X_raw, dtype=net.dtype))
    return net.probabilities(A) if net.is_classifier else A


@pytest.mark.parametrize(
    "hidden, output, k, scaling",
    [
        ("relu", "softmax", 3, "standard"),
        ("tanh", "sigmoid", 1, "minmax"),
        ("leaky_relu", "identity", 2, "divide:10"),
    ],
)
def test_to_torch_equals_deltaprop_and_comes_back(iris, hidden, output, k, scaling):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    X = iris[0]
    net = _scaled_net(X, [4, 7, 5, k], hidden, output, scaling)
    module = deltaprop.to_torch(net)
    with torch.no_grad():
        got = module(torch.from_numpy(X.astype(np.float32))).numpy()
    A = _deltaprop_outputs(net, X)
    want = (
        A[:, 1:] if (output == "sigmoid" and k == 1) else A
    )  # the module returns p, predict_proba [1 − p, p]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    # The bare network and its logits.
    Xs = Scaler.from_dict(net.meta["scaler"]).transform(X, dtype=np.float32)
    with torch.no_grad():
        bare = deltaprop.to_torch(net, scaling=False)(torch.from_numpy(Xs)).numpy()
        Z = deltaprop.to_torch(net, logits=True, scaling=False)(torch.from_numpy(Xs)).numpy()
    np.testing.assert_allclose(bare, net.forward(Xs), rtol=0, atol=1e-5)
    np.testing.assert_allclose(Z, net.logits(Xs)[0], rtol=0, atol=1e-5)
    back = deltaprop.from_torch(module)
    assert back.activations == net.activations and back.meta["scaler"]["kind"] == net.meta["scaler"]["kind"]
    for (W, b), (W2, b2) in zip(net.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
    np.testing.assert_allclose(_deltaprop_outputs(back, X), A, rtol=0, atol=1e-6)


# -- ONNX out and in ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "hidden, output, k, dtype",
    [
        ("relu", "softmax", 3, "float32"),
        ("sigmoid", "sigmoid", 1, "float32"),
        ("leaky_relu", "identity", 2, "float32"),
        ("tanh", "softmax", 3, "float64"),
    ],
)
def test_to_onnx_runs_in_onnx_runtime_and_from_onnx_round_trips(tmp_path, iris, hidden, output, k, dtype):
    ort = pytest.importorskip(
        "onnxruntime", reason="ONNX Runtime is not installed (pip install 'deltaprop[onnx]')"
    )
    pytest.importorskip("onnx", reason="onnx is not installed (pip install 'deltaprop[onnx]')")
    X = iris[0]
    classes = (
        ["setosa", "versicolor", "virginica"] if k == 3 else ["no", "yes"] if output == "sigmoid" else None
    )
    net = _scaled_net(X, [4, 6, 5, k], hidden, output, dtype=dtype, classes=classes)
    path = tmp_path / "m.onnx"
    model = deltaprop.to_onnx(net, path)
    props = {p.key: p.value for p in model.metadata_props}
    if classes:
        assert json.loads(props["classes"]) == classes
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"X": X.astype(dtype)})[0]
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, _deltaprop_outputs(net, X), rtol=0, atol=tol)
    back = deltaprop.from_onnx(path)
    assert back.sizes == net.sizes and back.activations == net.activations and back.dtype == net.dtype
    for (W, b), (W2, b2) in zip(net.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
    assert back.meta["scaler"] == net.meta["scaler"]
    assert back.meta.get("classes") == classes
    assert back.meta["source"]["format"] == "onnx"


@pytest.mark.parametrize("kind", ["multiclass", "binary", "regressor"])
@pytest.mark.parametrize("zipmap", [True, False])
def test_from_onnx_reads_skl2onnx_exports_of_scikit_learn_mlps(iris, diabetes, kind, zipmap):
    skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx is not installed (pip install skl2onnx)")
    if kind == "regressor" and not zipmap:
        pytest.skip("zipmap is an option of classifiers only")
    if kind == "regressor":
        X, y = diabetes
        est = fit_quietly(
            MLPRegressor(hidden_layer_sizes=(8,), activation="tanh", max_iter=100, random_state=0), X, y
        )
    else:
        X, y = iris
        y = (
            np.array(["setosa", "versicolor", "virginica"])[y]
            if kind == "multiclass"
            else (y == 2).astype(int)
        )
        est = fit_quietly(
            MLPClassifier(
                (8, 4),
                activation="relu" if kind == "multiclass" else "logistic",
                max_iter=200,
                random_state=0,
            ),
            X,
            y,
        )
    options = None if zipmap or kind == "regressor" else {id(est): {"zipmap": False}}
    model = skl2onnx.to_onnx(est, X[:1].astype(np.float32), options=options)
    net = deltaprop.from_onnx(model)
    assert net.meta["source"]["producer"].startswith("skl2onnx")
    Xf = X.astype(np.float32)
    if kind == "regressor":
        np.testing.assert_allclose(net.predict(Xf), est.predict(X), rtol=1e-4, atol=1e-3)  # float32 graph
        assert net.loss.name == "squared_error"
    else:
        assert net.meta["classes"] == [str(c) if kind == "multiclass" else int(c) for c in est.classes_]
        np.testing.assert_allclose(net.predict_proba(Xf), est.predict_proba(X), rtol=0, atol=1e-5)


@pytest.mark.parametrize("scaler", ["StandardScaler", "MinMaxScaler"])
def test_from_onnx_reads_skl2onnx_exports_of_scaled_pipelines(iris, scaler):
    # from_sklearn reads a Pipeline(scaler, MLP); skl2onnx writes the same pipeline's scaler as the
    # ai.onnx.ml Scaler operator, Y = (X − offset) · scale: it becomes the model's input scaling.
    skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx is not installed (pip install skl2onnx)")
    from sklearn import preprocessing
    from sklearn.pipeline import make_pipeline

    X, y = iris
    pipe = fit_quietly(
        make_pipeline(getattr(preprocessing, scaler)(), MLPClassifier((7,), max_iter=200, random_state=0)), X, y
    )
    net = deltaprop.from_onnx(skl2onnx.to_onnx(pipe, X[:1].astype(np.float32)))
    Xs = Scaler.from_dict(net.meta["scaler"]).transform(X.astype(np.float32), dtype=np.float32)
    np.testing.assert_allclose(net.predict_proba(Xs), pipe.predict_proba(X), rtol=0, atol=1e-5)
    from_sk = Scaler.from_dict(deltaprop.from_sklearn(pipe).meta["scaler"])
    read = Scaler.from_dict(net.meta["scaler"])
    np.testing.assert_allclose(read.transform(X, dtype=np.float64), from_sk.transform(X, dtype=np.float64),
                               rtol=1e-5, atol=1e-5)


def _onnx_graph(nodes, inits, n_in=3, n_out=2):
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["m", n_in])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["m", n_out])],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_from_onnx_names_unsupported_operators_and_reads_matmul_add():
    pytest.importorskip("onnx", reason="onnx is not installed")
    from onnx import helper

    W, b = np.arange(6.0).reshape(3, 2) / 10, np.array([0.5, -0.5])
    ok = _onnx_graph(
        [
            helper.make_node("MatMul", ["X", "W"], ["Z"]),
            helper.make_node("Add", ["Z", "b"], ["Z2"]),
            helper.make_node("Sigmoid", ["Z2"], ["Y"]),
        ],
        {"W": W, "b": b},
    )
    net = deltaprop.from_onnx(ok)
    np.testing.assert_allclose(net.layers[0].W, W.T)  # MatMul's (n_in, n_out) is deltaprop's Wᵀ
    assert net.activations == ["sigmoid"] and net.loss.name == "binary_cross_entropy"
    elu = _onnx_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Z"]), helper.make_node("Elu", ["Z"], ["Y"])], {"W": W}
    )
    with pytest.raises(ConfigError, match="operator Elu") as err:
        deltaprop.from_onnx(elu)
    assert "MatMul, Add, Gemm, Relu" in err.value.hint
    conv = _onnx_graph([helper.make_node("Conv", ["X", "W"], ["Y"])], {"W": W})
    with pytest.raises(ConfigError, match="operator Conv"):
        deltaprop.from_onnx(conv)
    leaky = _onnx_graph(
        [
            helper.make_node("MatMul", ["X", "W"], ["Z"]),
            helper.make_node("LeakyRelu", ["Z"], ["A"], alpha=0.3),
            helper.make_node("MatMul", ["A", "W2"], ["Y"]),
        ],
        {"W": W, "W2": np.eye(2)},
    )
    with pytest.raises(ConfigError, match="slope 0.3"):
        deltaprop.from_onnx(leaky)


def test_from_onnx_refuses_files_that_are_not_onnx(tmp_path):
    pytest.importorskip("onnx", reason="onnx is not installed")
    text = tmp_path / "table.onnx"
    text.write_text("a,b\n1,2\n")
    with pytest.raises(ModelFileError, match="not an ONNX model"):
        deltaprop.from_onnx(text)
    model_file = tmp_path / "model.onnx"  # a deltaprop model file under the wrong name
    deltaprop.save(deltaprop.Network.from_sizes([3, 2]), model_file)
    with pytest.raises(ModelFileError, match="safetensors"):
        deltaprop.from_onnx(model_file)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08" + bytes(range(256)) * 4)  # starts like ONNX, then is not
    with pytest.raises(ModelFileError, match="not an ONNX model"):
        deltaprop.from_onnx(garbage)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError, match="not an ONNX model"):
        deltaprop.from_onnx(empty)
    with pytest.raises(ModelFileError, match="no file at"):
        deltaprop.from_onnx(tmp_path / "missing.onnx")


# -- the command ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    """scikit-learn's iris written as a CSV (pandas' defaults), trained on by the command for a few epochs."""
    d = tmp_path_factory.mktemp("iris")
    frame = sklearn_datasets.load_iris(as_frame=True).frame
    frame["species"] = np.array(["setosa", "versicolor", "virginica"])[frame.pop("target")]
    frame.to_csv(d / "iris.csv", index=False)
    frame.drop(columns="species").to_csv(d / "inputs.csv", index=False)
    run(
        "train",
        "--data",
        d / "iris.csv",
        "--target",
        "species",
        "--layers",
        "8,6",
        "--activation",
        "tanh",
        "--epochs",
        "15",
        "--out",
        d / "run",
        "--no-plots",
        "-q",
        check=0,
    )
    return d


def _predict_csv(model, inputs):
    proc = run("predict", model, inputs, check=0)
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    return rows[0], [r[0] for r in rows[1:]], np.array([[float(v) for v in r[1:]] for r in rows[1:]])


def test_export_onnx_from_the_command_equals_deltaprop_predict(iris_run):
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed")
    d = iris_run
    proc = run("export", d / "run/model.safetensors", "--to", "onnx", "-o", d / "model.onnx", check=0)
    assert "checked with ONNX Runtime" in proc.stdout and " ok" in proc.stdout
    header, labels, P = _predict_csv(d / "run/model.safetensors", d / "inputs.csv")
    import pandas as pd

    X = pd.read_csv(d / "inputs.csv").to_numpy(np.float32)
    session = ort.InferenceSession(str(d / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"X": X})[0]
    np.testing.assert_allclose(got, P, rtol=0, atol=1e-5)
    meta = session.get_modelmeta().custom_metadata_map
    classes = json.loads(meta["classes"])
    assert header == ["label"] + [f"p_{c}" for c in classes] and classes == [
        "setosa",
        "versicolor",
        "virginica",
    ]
    assert [classes[i] for i in got.argmax(axis=1)] == labels


def test_export_torch_directory_rebuilds_the_model(iris_run, tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    pytest.importorskip("safetensors.torch", reason="safetensors is not installed")
    d = iris_run
    out = tmp_path / "torch_model"
    proc = run("export", d / "run/model.safetensors", "--to", "torch", "-o", out, check=0)
    assert "checked with PyTorch" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["model.py", "model.safetensors"]
    spec = importlib.util.spec_from_file_location("exported_iris", out / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.load()
    assert module.CLASSES == ["setosa", "versicolor", "virginica"]
    import pandas as pd

    X = pd.read_csv(d / "inputs.csv").to_numpy(np.float32)
    with torch.no_grad():
        got = model(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(
        got, _predict_csv(d / "run/model.safetensors", d / "inputs.csv")[2], rtol=0, atol=1e-5
    )
    # The two files are one export: weights from another export beside this model.py are refused (an
    # export cut short between its files); weights a user saved without deltaprop's id are loaded.
    from safetensors.torch import load_file, save_file

    state = {k: v + 1 for k, v in load_file(str(out / "model.safetensors")).items()}
    save_file(state, str(out / "model.safetensors"), metadata={"export_id": "0" * 32})
    with pytest.raises(RuntimeError, match="another export than this model.py"):
        module.load()
    save_file(state, str(out / "model.safetensors"))
    assert torch.equal(module.load()[1].bias, state["1.bias"])
    # A file where a directory is expected is refused.
    assert_clean_error(
        run("export", d / "run/model.safetensors", "--to", "torch", "-o", d / "inputs.csv"), 2, "is a file"
    )


def test_export_npz_holds_plain_arrays(iris_run, tmp_path):
    d = iris_run
    run(
        "export",
        d / "run/model.safetensors",
        "-o",
        tmp_path / "w.npz",
        "--check-data",
        d / "inputs.csv",
        check=0,
    )
    net = deltaprop.load(d / "run/model.safetensors")
    with np.load(tmp_path / "w.npz", allow_pickle=False) as f:
        assert list(f["activations"]) == net.activations and str(f["loss"]) == "cross_entropy"
        np.testing.assert_array_equal(f["W1"], net.layers[0].W)
        np.testing.assert_array_equal(f["shift"], np.asarray(net.meta["scaler"]["shift"], np.float32))
        assert list(f["classes"]) == ["setosa", "versicolor", "virginica"]
        assert json.loads(str(f["meta"]))["data"]["name"] == "iris"


def test_onnx_files_work_with_import_explain_trace_and_info(iris_run, tmp_path):
    pytest.importorskip("onnx", reason="onnx is not installed")
    d = iris_run
    onnx_path = tmp_path / "iris.onnx"
    run("export", d / "run/model.safetensors", "--to", "onnx", "-o", onnx_path, "--no-check", check=0)
    explained = run("explain", onnx_path, check=0).stdout
    assert "Backpropagation for the 4-8-6-3 network" in explained
    assert "W^[1]      8×4" in explained and "W^[3]      3×6" in explained
    traced = run("trace", onnx_path, check=0).stdout
    assert "W^[2] (6×8)" in traced
    info = run("info", onnx_path, check=0).stdout
    assert "imported    from onnx (producer deltaprop" in info and "classes     3: setosa" in info
    proc = run("import", onnx_path, "-o", tmp_path / "back.safetensors", check=0)
    assert "wrote" in proc.stdout
    original, back = (
        deltaprop.load(d / "run/model.safetensors"),
        deltaprop.load(tmp_path / "back.safetensors"),
    )
    for (W, b), (W2, b2) in zip(original.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
    assert back.meta["scaler"] == original.meta["scaler"] and back.meta["classes"] == original.meta["classes"]
    # The imported file, and the .onnx file itself, predict what the original does.
    header, labels, P = _predict_csv(d / "run/model.safetensors", d / "inputs.csv")
    for other in (tmp_path / "back.safetensors", onnx_path):
        header2, labels2, P2 = _predict_csv(other, d / "inputs.csv")
        assert header2 == header and labels2 == labels
        np.testing.assert_allclose(P2, P, rtol=0, atol=1e-6)


def test_imported_networks_train_and_pass_the_gradient_check(iris):
    """An imported network is a Network: gradcheck and fit work on it."""
    X, y = iris
    est = fit_quietly(MLPClassifier((5,), activation="tanh", max_iter=20, random_state=0), X, y)
    net = deltaprop.from_sklearn(est)
    report = deltaprop.gradcheck(net.astype("float64"), X[:6], y[:6], l2=0.1)
    assert report.ok, report
    before = float(net.loss.value(*net.logits(X), net.prepare_targets(y))) / len(X)
    history = deltaprop.fit(net, X, y, epochs=30, batch_size=32, optimizer="adam", lr=0.01, seed=0)
    assert history.epochs[-1]["loss"] < before


def test_the_command_refuses_bad_onnx_files_cleanly(tmp_path):
    pytest.importorskip("onnx", reason="onnx is not installed")
    import onnx
    from onnx import helper

    text = tmp_path / "table.onnx"
    text.write_text("a,b\n1,2\n")
    assert_clean_error(run("info", text), 3, "not an ONNX model", "text file")
    elu = _onnx_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Z"]), helper.make_node("Elu", ["Z"], ["Y"])],
        {"W": np.ones((3, 2))},
    )
    onnx.save(elu, tmp_path / "elu.onnx")
    assert_clean_error(run("explain", tmp_path / "elu.onnx"), 2, "operator Elu", "MatMul")
    assert_clean_error(run("import", tmp_path / "elu.onnx", "-o", tmp_path / "x.safetensors"), 2, "Elu")
    assert not (tmp_path / "x.safetensors").exists()


def test_export_from_a_scikit_learn_model_round_trip(iris, tmp_path):
    """The README's round trip: scikit-learn → deltaprop (explain, trace) → ONNX → ONNX Runtime."""
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed")
    X, y = iris
    est = fit_quietly(MLPClassifier((10,), max_iter=300, random_state=0), X, y)
    net = deltaprop.from_sklearn(est)
    assert "W^[1]      10×4" in deltaprop.explain(net).render("text")
    tr = deltaprop.trace(net, X[:2], y[:2])
    assert tr.render("text")
    deltaprop.to_onnx(net, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"X": X})[0], est.predict_proba(X), rtol=0, atol=1e-10)


def test_from_onnx_reads_what_torch_onnx_export_writes(tmp_path, iris):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    pytest.importorskip("onnx", reason="onnx is not installed")
    from torch import nn

    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3), nn.Softmax(dim=-1)).eval()
    X = iris[0].astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # the TorchScript-based exporter is deprecated, and still what needs no onnxscript
        torch.onnx.export(
            module,
            (torch.from_numpy(X[:2]),),
            str(tmp_path / "t.onnx"),
            dynamo=False,
            input_names=["X"],
            dynamic_axes={"X": {0: "m"}},
        )
    net = deltaprop.from_onnx(tmp_path / "t.onnx")
    assert net.activations == ["tanh", "softmax"] and net.meta["source"]["producer"].startswith("pytorch")
    with torch.no_grad():
        want = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(net.forward(X), want, rtol=0, atol=1e-6)


def test_exports_refuse_what_is_not_a_network_with_a_clear_error(tmp_path, iris):
    from deltaprop.io.exchange.npz import to_npz

    # A user passes the estimator (or a path) instead of the Network: a clear error that says what to
    # pass and how to get it, not an AttributeError from inside the exporter.
    X, y = iris
    clf = fit_quietly(MLPClassifier((5,), max_iter=50, random_state=0), X, y)
    for export, args in [(deltaprop.to_onnx, (tmp_path / "m.onnx",)), (deltaprop.to_torch, ()),
                         (to_npz, (tmp_path / "m.npz",))]:
        for wrong in (clf, "runs/model.safetensors"):
            with pytest.raises(InputTypeError, match="needs a deltaprop Network") as err:
                export(wrong, *args)
            assert "from_sklearn" in err.value.hint and "deltaprop.load" in err.value.hint
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.npz").exists()


def test_a_text_file_given_as_onnx_reads_as_english(tmp_path):
    (tmp_path / "notes.onnx").write_text("hello")
    with pytest.raises(deltaprop.ModelFileError, match=r"is not an ONNX model: it starts with byte 0x68"):
        deltaprop.from_onnx(tmp_path / "notes.onnx")


def test_export_help_shows_examples_that_work_as_printed(iris_run, tmp_path):
    # What `deltaprop export --help` prints as examples runs as printed (the run directory put in for
    # runs/<stamp>), and writes what it says.
    help_text = run("export", "--help", check=0).stdout
    examples = [line.split()[1:] for line in help_text.splitlines() if line.startswith("  deltaprop export ")]
    assert len(examples) >= 3, help_text
    model = str(iris_run / "run/model.safetensors")
    for argv in examples:
        argv = [model if a == "runs/<stamp>/model.safetensors" else a for a in argv]
        proc = run(*argv, cwd=tmp_path)
        assert proc.returncode == 0, (argv, proc.stdout, proc.stderr)
        assert (tmp_path / argv[argv.index("-o") + 1]).exists()


@pytest.mark.parametrize("library", ["scikit-learn", "deltaprop"])
def test_poisson_regressors_go_in_and_out(tmp_path, diabetes, library):
    # MLPRegressor(loss="poisson") ends in exp (A = e^Z, the rate); from_sklearn reads it, the ONNX
    # export computes it (Exp) and reads back; PyTorch export says plainly that it cannot.
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed")
    X, y = diabetes
    counts = np.round(np.exp(y / 100.0))
    cls = MLPRegressor if library == "scikit-learn" else deltaprop.MLPRegressor
    est = fit_quietly(cls(hidden_layer_sizes=(6,), loss="poisson", max_iter=60, random_state=0), X, counts)
    net = deltaprop.from_sklearn(est)
    assert net.activations[-1] == "exp" and net.loss.name == "poisson"
    np.testing.assert_allclose(net.predict(X).reshape(-1), est.predict(X), rtol=1e-6, atol=1e-8)
    deltaprop.to_onnx(net, tmp_path / "p.onnx")
    session = ort.InferenceSession(str(tmp_path / "p.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"X": X.astype(net.dtype)})[0]
    np.testing.assert_allclose(got.reshape(-1), est.predict(X), rtol=1e-6, atol=1e-8)
    back = deltaprop.from_onnx(tmp_path / "p.onnx")
    assert back.activations == net.activations and back.loss.name == "poisson"
    pytest.importorskip("torch", reason="PyTorch is not installed")
    with pytest.raises(ConfigError, match="ends in exp") as err:
        deltaprop.to_torch(net)
    assert "--to onnx" in err.value.hint and "logits=True" in err.value.hint
    import torch

    with torch.no_grad():
        z = deltaprop.to_torch(net, logits=True)(torch.from_numpy(X.astype(net.dtype)))
    np.testing.assert_allclose(torch.exp(z).numpy().reshape(-1), est.predict(X), rtol=1e-6, atol=1e-8)
