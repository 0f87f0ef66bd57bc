"""The estimators as practitioners use them, on scikit-learn's bundled data sets (iris, wine, breast
cancer, digits, diabetes; as arrays, DataFrames and CSVs written with pandas' defaults): the mistakes a
QA pass found, each with the test that failed before its fix."""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")

from sklearn import datasets  # noqa: E402
from sklearn.base import clone  # noqa: E402

import deltaprop as dp  # noqa: E402
from cli_child import run  # noqa: E402
from deltaprop.estimators import MLPClassifier  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _iris():
    X, y = datasets.load_iris(return_X_y=True, as_frame=True)
    return X, y.to_numpy()


# -- deltaprop's model files of fitted estimators -------------------------------------------------------
@pytest.mark.parametrize("labels", [
    np.array([0, 1, 2]),                # iris' own target, the most common case
    np.array([3, 7, 42]),               # non-contiguous integers
    np.array([1.0, 2.0, 3.0]),          # whole numbers stored as floats
    np.array(["setosa", "versicolor", "virginica"]),
    "bool",                             # one class against the rest, as a boolean
])
def test_saved_estimator_loads_back_with_its_labels(tmp_path, labels):
    """est.save wrote integer, float and boolean classes_ into the file, and every reader (MLPClassifier.load,
    deltaprop.load, `deltaprop info`) refused it as 'garbled': the model was saved and could not be read."""
    X, y = _iris()
    target = (y == 0) if isinstance(labels, str) else labels[y]
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(X, target)
    path = tmp_path / "model.safetensors"
    est.save(path)
    back = MLPClassifier.load(path)
    np.testing.assert_array_equal(back.classes_, est.classes_)
    assert back.classes_.dtype.kind == est.classes_.dtype.kind
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    np.testing.assert_allclose(back.predict_proba(X), est.predict_proba(X), rtol=1e-12)
    np.testing.assert_array_equal(back.feature_names_in_, est.feature_names_in_)
    assert dp.load(path).meta["classes"] == est.classes_.tolist()
    info = run("info", path, check=0)
    assert f"classes     {len(est.classes_)}: {', '.join(str(c) for c in est.classes_)}" in info.stdout


def test_network_from_a_sklearn_mlp_with_integer_labels_saves_and_loads(tmp_path):
    from sklearn.neural_network import MLPClassifier as SkMLP

    X, y = _iris()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = SkMLP(hidden_layer_sizes=(6,), max_iter=20, random_state=0)
        sk.fit(X.to_numpy(), np.array([3, 7, 42])[y])
    dp.save(dp.from_sklearn(sk), tmp_path / "m.safetensors")
    net = dp.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(net.predict_labels(X.to_numpy()), sk.predict(X.to_numpy()))


# -- class_weight ---------------------------------------------------------------------------------------
def _cancer():
    X, y = datasets.load_breast_cancer(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


@pytest.mark.parametrize("solver", ["lbfgs", "sgd", "adam"])
def test_class_weight_is_the_sample_weight_of_each_rows_class(solver):
    """solver='lbfgs' ignored class_weight: MLPClassifier(solver='lbfgs', class_weight={0: 1000, 1: 1e-4})
    gave the unweighted model, without a word. Every solver now trains on s_i · w_{c(i)}."""
    X, y = _cancer()
    weights = {0: 5.0, 1: 0.5}
    params = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=15, random_state=0)
    by_class = MLPClassifier(class_weight=weights, **params).fit(X, y)
    by_row = MLPClassifier(**params).fit(X, y, sample_weight=np.where(y == 0, 5.0, 0.5))
    unweighted = MLPClassifier(**params).fit(X, y)
    np.testing.assert_allclose(by_class.predict_proba(X), by_row.predict_proba(X), rtol=1e-10, atol=1e-12)
    assert np.abs(by_class.predict_proba(X) - unweighted.predict_proba(X)).max() > 1e-3
    if solver == "lbfgs":  # scikit-learn's check_class_weight_classifiers, on real data
        lopsided = MLPClassifier(class_weight={0: 1000, 1: 1e-4}, **dict(params, max_iter=200)).fit(X, y)
        assert np.mean(lopsided.predict(X) == 0) > 0.9  # 37 % of the rows are class 0


def test_balanced_class_weight_counts_rows_by_their_sample_weight():
    """'balanced' counted rows, not their weights: sample_weight=2 on a row was not the row given twice
    (scikit-learn's compute_class_weight takes sample_weight)."""
    from sklearn.utils.class_weight import compute_class_weight

    X, y = _cancer()
    twice = np.arange(0, X.shape[0], 3)
    sw = np.ones(X.shape[0])
    sw[twice] = 2.0
    sw[(y == 0) & (np.arange(y.shape[0]) % 3 == 1)] = 4.0  # class 0 weighs more than its count says
    classes = np.array([0, 1])
    expected = dict(zip(classes, compute_class_weight("balanced", classes=classes, y=y, sample_weight=sw)))
    params = dict(hidden_layer_sizes=(4,), max_iter=10, random_state=0)
    balanced = MLPClassifier(class_weight="balanced", **params).fit(X, y, sample_weight=sw)
    explicit = MLPClassifier(class_weight=expected, **params).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(balanced.predict_proba(X), explicit.predict_proba(X), rtol=1e-10)
    params = dict(params, solver="lbfgs", class_weight="balanced")
    order = np.r_[np.arange(X.shape[0]), twice]
    doubled = np.where(np.isin(np.arange(y.shape[0]), twice), 2.0, 1.0)
    weighted = MLPClassifier(**params).fit(X, y, sample_weight=doubled)
    repeated = MLPClassifier(**params).fit(X[order], y[order])
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-8, atol=1e-10)


def test_partial_fit_takes_class_weight_as_a_dict_and_refuses_balanced():
    X, y = _cancer()
    est = MLPClassifier(hidden_layer_sizes=(4,), random_state=0, class_weight="balanced")
    with pytest.raises(dp.ConfigError, match="'balanced' is not defined for partial_fit") as err:
        est.partial_fit(X[:100], y[:100], classes=[0, 1])
    assert "compute_class_weight" in err.value.hint
    est.set_params(class_weight={0: 2.0}).partial_fit(X[:100], y[:100], classes=[0, 1])
    reference = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
    reference.partial_fit(X[:100], y[:100], classes=[0, 1], sample_weight=np.where(y[:100] == 0, 2.0, 1.0))
    np.testing.assert_allclose(est.predict_proba(X), reference.predict_proba(X), rtol=1e-10)
    with pytest.raises(dp.ConfigError, match="every row a weight of 0"):
        clone(est).set_params(class_weight={0: 0, 1: 0}).fit(X, y)
