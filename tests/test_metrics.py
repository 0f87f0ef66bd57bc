"""deltaprop.metrics against scikit-learn's functions, on random labels with absent classes, and by hand."""

import json
import math

import numpy as np
import pytest

from deltaprop import metrics
from deltaprop.errors import InputError

skm = pytest.importorskip("sklearn.metrics")


def _labels(seed, m=200, K=6, absent=(2,), never_predicted=(4,)):
    """Random true/predicted labels where class ``absent`` never occurs in y_true and class
    ``never_predicted`` is never predicted; the last class K−1 occurs in neither."""
    rng = np.random.default_rng(seed)
    present = [k for k in range(K - 1) if k not in absent]
    predictable = [k for k in range(K - 1) if k not in never_predicted]
    y_true = rng.choice(present, size=m)
    # Half the predictions right where possible, the rest random: realistic, not trivial.
    y_pred = np.where(rng.random(m) < 0.5, y_true, rng.choice(predictable, size=m))
    y_pred = np.where(np.isin(y_pred, never_predicted), predictable[0], y_pred)
    return y_true, y_pred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accuracy_and_confusion_equal_sklearn(seed):
    y_true, y_pred = _labels(seed)
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-15)
    C = metrics.confusion_matrix(y_true, y_pred, n_classes=6)
    assert C.dtype == np.int64 and C.shape == (6, 6)
    np.testing.assert_array_equal(C, skm.confusion_matrix(y_true, y_pred, labels=range(6)))
    assert C[2].sum() == 0 and C[:, 4].sum() == 0 and C[5].sum() == C[:, 5].sum() == 0
    assert C.sum() == len(y_true)


def test_confusion_default_size_is_one_plus_largest_label():
    C = metrics.confusion_matrix([0, 3, 3], [1, 3, 0])
    assert C.shape == (4, 4)
    expected = np.zeros((4, 4), dtype=np.int64)
    expected[0, 1] = expected[3, 3] = expected[3, 0] = 1
    np.testing.assert_array_equal(C, expected)
    # rows = true class, columns = predicted class (not the transpose)
    assert metrics.confusion_matrix([1], [0], n_classes=2).tolist() == [[0, 0], [1, 0]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_class_equals_sklearn_with_zero_division_0(seed):
    y_true, y_pred = _labels(seed)
    pc = metrics.per_class(y_true, y_pred, n_classes=6)
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=range(6), zero_division=0)
    np.testing.assert_allclose(pc["precision"], p, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pc["recall"], r, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pc["f1"], f, rtol=0, atol=1e-12)
    assert pc["support"] == s.tolist()
    assert pc["precision"][4] == 0.0  # never predicted
    assert pc["recall"][2] == 0.0  # never occurs
    kw = dict(labels=range(6), average="macro", zero_division=0)
    assert pc["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, **kw), abs=1e-12)
    assert pc["macro_precision"] == pytest.approx(skm.precision_score(y_true, y_pred, **kw), abs=1e-12)
    assert pc["macro_recall"] == pytest.approx(skm.recall_score(y_true, y_pred, **kw), abs=1e-12)
    assert pc["weighted_f1"] == pytest.approx(
        skm.f1_score(y_true, y_pred, labels=range(6), average="weighted", zero_division=0), abs=1e-12)


def test_per_class_by_hand():
    # true 0 0 1 1 1, predicted 0 1 1 1 0: class 0 P=1/2 R=1/2; class 1 P=2/3 R=2/3
    pc = metrics.per_class([0, 0, 1, 1, 1], [0, 1, 1, 1, 0])
    assert pc["precision"] == pytest.approx([0.5, 2 / 3])
    assert pc["recall"] == pytest.approx([0.5, 2 / 3])
    assert pc["f1"] == pytest.approx([0.5, 2 / 3])
    assert pc["support"] == [2, 3]
    assert pc["macro_f1"] == pytest.approx((0.5 + 2 / 3) / 2)


@pytest.mark.parametrize("seed", [0, 1])
def test_log_loss_equals_sklearn_labels_and_one_hot(seed):
    rng = np.random.default_rng(seed)
    m, K = 50, 4
    Z = rng.normal(size=(m, K)) * 2
    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    y = rng.integers(0, K, size=m)
    y[0] = 3  # make sure every label is ≥ 0 and < K; sklearn needs labels= when one is absent
    expected = skm.log_loss(y, P, labels=range(K))
    assert metrics.log_loss(y, P) == pytest.approx(expected, rel=1e-12)
    assert metrics.log_loss(np.eye(K)[y], P) == pytest.approx(expected, rel=1e-12)
    # float32 probabilities (the engine's default dtype) give the same figure to float32 precision
    assert metrics.log_loss(y, P.astype(np.float32)) == pytest.approx(expected, rel=1e-5)


def test_log_loss_binary_vector_and_clipping():
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.1, 0.8, 0.6, 0.3, 0.99])
    expected = -np.mean(np.log([0.9, 0.8, 0.6, 0.7, 0.99]))
    assert metrics.log_loss(y, p) == pytest.approx(expected, rel=1e-12)
    assert metrics.log_loss(y, p.reshape(-1, 1)) == pytest.approx(skm.log_loss(y, p), rel=1e-12)
    # a certain, wrong prediction is finite: −log(1e-15)
    assert metrics.log_loss([1], np.array([[1.0, 0.0]])) == pytest.approx(-math.log(1e-15))
    assert metrics.log_loss([0], np.array([[1.0, 0.0]])) == 0.0


def test_log_loss_refuses_logits_and_wrong_shapes():
    with pytest.raises(InputError, match="outside"):
        metrics.log_loss([0, 1], np.array([[2.0, -1.0], [0.5, 0.5]]))
    with pytest.raises(InputError, match="sum to 1"):
        metrics.log_loss([0, 1], np.array([[0.2, 0.2], [0.5, 0.5]]))
    with pytest.raises(InputError, match="out of range"):
        metrics.log_loss([0, 3], np.full((2, 2), 0.5))
    with pytest.raises(InputError, match="rows"):
        metrics.log_loss([0, 1, 1], np.full((2, 2), 0.5))


@pytest.mark.parametrize("shape", [(40,), (40, 1), (40, 3)])
def test_regression_metrics_equal_sklearn(shape):
    rng = np.random.default_rng(7)
    y = rng.normal(size=shape) * 3 + 1
    yhat = y + rng.normal(size=shape)
    assert metrics.mean_squared_error(y, yhat) == pytest.approx(skm.mean_squared_error(y, yhat), rel=1e-12)
    assert metrics.r2_score(y, yhat) == pytest.approx(skm.r2_score(y, yhat), rel=1e-12)
    # worse than the mean: negative
    assert metrics.r2_score(y, -yhat) == pytest.approx(skm.r2_score(y, -yhat), rel=1e-12)
    assert metrics.r2_score(y, -yhat) < 0


def test_r2_constant_target_and_mixed_shapes():
    y = np.array([[1.0, 2.0], [1.0, 3.0], [1.0, 4.0]])
    exact = y.copy()
    off = y.copy()
    off[:, 0] = 1.5
    assert metrics.r2_score(y, exact) == 1.0 == skm.r2_score(y, exact)
    assert metrics.r2_score(y, off) == pytest.approx(skm.r2_score(y, off)) == pytest.approx(0.5)
    assert metrics.mean_squared_error([1.0, 2.0], [[1.0], [4.0]]) == pytest.approx(2.0)
    with pytest.raises(InputError, match="two examples"):
        metrics.r2_score([1.0], [1.0])
    with pytest.raises(InputError, match="shape"):
        metrics.mean_squared_error(np.zeros((3, 2)), np.zeros((3, 3)))


def test_bad_labels_are_refused_with_hints():
    with pytest.raises(InputError, match="whole numbers"):
        metrics.confusion_matrix([0.5, 1], [0, 1])
    with pytest.raises(InputError, match="negative"):
        metrics.per_class([-1, 0], [0, 0])
    with pytest.raises(InputError, match="encode_labels"):
        metrics.confusion_matrix(["cat", "dog"], ["dog", "dog"])
    with pytest.raises(InputError, match="out of range for 2 classes"):
        metrics.confusion_matrix([0, 2], [0, 1], n_classes=2)
    with pytest.raises(InputError, match="empty"):
        metrics.accuracy([], [])
    with pytest.raises(InputError, match="argmax"):
        metrics.confusion_matrix(np.eye(3), np.eye(3))


def test_accuracy_of_text_labels_and_multilabel_rows():
    assert metrics.accuracy(["a", "b", "b"], ["a", "a", "b"]) == pytest.approx(2 / 3)
    Y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    Yhat = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0]])
    assert metrics.accuracy(Y, Yhat) == pytest.approx(skm.accuracy_score(Y, Yhat)) == pytest.approx(2 / 3)
    assert metrics.accuracy(np.array([1, 0]), np.array([[1], [1]])) == 0.5


def test_classification_summary_is_json_and_consistent():
    y_true, y_pred = _labels(3)
    names = ["zero", "one", "two", "three", "four", "five"]
    rng = np.random.default_rng(3)
    P = rng.dirichlet(np.ones(6), size=len(y_true))
    s = metrics.classification_summary(y_true, y_pred, names, P=P)
    back = json.loads(json.dumps(s))
    assert back == s
    assert s["class_names"] == names and list(s["per_class"]) == names
    assert s["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert s["log_loss"] == pytest.approx(skm.log_loss(y_true, P, labels=range(6)), rel=1e-12)
    assert s["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred, labels=range(6)).tolist()
    assert s["per_class"]["two"]["support"] == 0 and s["per_class"]["four"]["precision"] == 0.0
    f1 = skm.f1_score(y_true, y_pred, labels=range(6), average=None, zero_division=0)
    assert [s["per_class"][n]["f1"] for n in names] == pytest.approx(f1.tolist(), abs=1e-12)
    assert s["n_examples"] == len(y_true)
    assert "log_loss" not in metrics.classification_summary(y_true, y_pred, names)
    with pytest.raises(InputError, match="repeat"):
        metrics.classification_summary([0, 1], [0, 1], ["a", "a"])
    with pytest.raises(InputError, match="out of range"):
        metrics.classification_summary([0, 2], [0, 1], ["a", "b"])


def test_metrics_module_needs_numpy_only():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(metrics))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "numpy", "deltaprop"}
