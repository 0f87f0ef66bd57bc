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
from deltaprop.estimators import MLPClassifier, MLPRegressor  # noqa: E402

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
        sk = SkMLP(hidden_layer_sizes=(6,), max_iter=20, random_state=0).fit(X.to_numpy(), np.array([3, 7, 42])[y])
    dp.save(dp.from_sklearn(sk), tmp_path / "m.safetensors")
    net = dp.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(net.predict_labels(X.to_numpy()), sk.predict(X.to_numpy()))
