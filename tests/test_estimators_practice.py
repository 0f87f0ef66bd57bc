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


def test_load_names_the_parameters_the_file_decides(tmp_path):
    """MLPClassifier.load(path, hidden_layer_sizes=...) raised "TypeError: ... got multiple values for
    keyword argument 'hidden_layer_sizes'"."""
    X, y = _iris()
    est = MLPClassifier(hidden_layer_sizes=(6,), max_iter=3, random_state=0).fit(X, y)
    est.save(tmp_path / "m.safetensors")
    words = r"takes hidden_layer_sizes from the file \(hidden_layer_sizes=\(6,\)"
    with pytest.raises(dp.ConfigError, match=words):
        MLPClassifier.load(tmp_path / "m.safetensors", hidden_layer_sizes=(3,))
    back = MLPClassifier.load(tmp_path / "m.safetensors", warm_start=True, max_iter=2)
    assert back.warm_start and back.fit(X, y).coefs_[0].shape == (4, 6)


def test_loading_a_joblib_pickle_as_a_model_file_says_how_each_is_loaded(tmp_path):
    import joblib

    X, y = _iris()
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    joblib.dump(est, tmp_path / "est.joblib")
    with pytest.raises(dp.ModelFileError, match="a Python pickle .*loads with joblib.load.*est.save"):
        MLPClassifier.load(tmp_path / "est.joblib")


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


# -- labels as people have them --------------------------------------------------------------------------
def _labels_with_a_gap():
    """Iris' species as a CSV column where one label is missing (pandas reads it as NaN)."""
    X, y = _iris()
    species = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    species[57] = None
    return X, species


@pytest.mark.parametrize("make", [
    lambda s: s,                                        # object array with None
    lambda s: pd.Series(s, dtype="str"),                # pandas' text column (NaN where missing)
    lambda s: pd.Categorical(s),                        # a categorical column
    lambda s: pd.array([None if v is None else len(v) for v in s], dtype="Int64"),  # nullable integers
    lambda s: np.array([np.nan if v is None else len(v) for v in s]),               # floats with NaN
])
def test_a_missing_label_is_named_with_its_row(make):
    """A label missing from a CSV raised "TypeError: '<' not supported between instances of 'float' and
    'str'" from deep inside scikit-learn (pandas' text column), or a bare "Input y contains NaN"."""
    X, species = _labels_with_a_gap()
    with pytest.raises(dp.InputError, match=r"y has 1 missing label\(s\) .*first at row 57") as err:
        MLPClassifier(max_iter=2).fit(X, make(species))
    assert "dropna" in err.value.hint


def test_labels_of_mixed_kinds_and_object_numbers_are_named():
    X, y = _iris()
    mixed = np.array(["setosa", 1, "virginica"], dtype=object)[y]
    with pytest.raises(dp.InputError, match=r"mixes labels of different kinds: text \('setosa'\), numbers"):
        MLPClassifier(max_iter=2).fit(X, mixed)
    with pytest.raises(dp.InputError, match="numbers in an array of Python objects") as err:
        MLPClassifier(max_iter=2).fit(X, y.astype(object))
    assert err.value.hint == "pass y.astype(int)"


def test_one_class_gives_probabilities_that_match_classes_():
    """fit on rows of one class gave classes_ of one label and predict_proba of two columns (the second
    one the probability of no class). scikit-learn's own tests fit one class, so it is not refused: the
    one class has probability 1, in one column as classes_ says."""
    X, y = _iris()
    est = MLPClassifier(max_iter=5, random_state=0).fit(X[:50], np.array(["setosa"] * 50))
    assert est.classes_.tolist() == ["setosa"]
    np.testing.assert_array_equal(est.predict_proba(X), np.ones((150, 1)))
    np.testing.assert_array_equal(est.predict_log_proba(X), np.zeros((150, 1)))
    assert (est.predict(X) == "setosa").all() and est.score(X[:50], ["setosa"] * 50) == 1.0
    est = MLPClassifier(random_state=0).partial_fit(X[:50], y[:50], classes=[0, 1, 2])
    assert est.predict_proba(X).shape == (150, 3)


# -- X as people have it ---------------------------------------------------------------------------------
def test_dataframe_text_columns_are_named():
    X, y = _iris()
    X = X.assign(colour=pd.Categorical(["red", "green", "blue"] * 50), site=["kew"] * 150)
    words = r"column\(s\) that are not numbers: 'colour' \(category\), 'site' \(str"
    with pytest.raises(dp.InputError, match=words) as err:
        MLPClassifier(max_iter=2).fit(X, y)
    assert "OneHotEncoder" in err.value.hint
    numbers_as_text = X.drop(columns=["colour", "site"]).assign(extra=["1.5"] * 150)  # read as numbers
    assert MLPClassifier(max_iter=2).fit(numbers_as_text, y).n_features_in_ == 5


def test_nullable_dataframe_columns_and_pandas_na():
    """A DataFrame of pandas' nullable dtypes (Float64, Int64: df.convert_dtypes()) with a pd.NA was
    refused as 'values that are not numbers (... NAType ...)': it is a missing value, and is called one."""
    X, y = _iris()
    nullable = X.convert_dtypes()
    est = MLPClassifier(max_iter=5, random_state=0).fit(nullable, y)
    plain = MLPClassifier(max_iter=5, random_state=0).fit(X, y)
    np.testing.assert_array_equal(est.predict_proba(nullable), plain.predict_proba(X))
    nullable.iloc[3, 1] = pd.NA
    for call in (lambda: clone(est).fit(nullable, y), lambda: est.predict(nullable)):
        with pytest.raises(dp.InputError, match=r"NaN or infinity \(first at row 3, column 1\)") as err:
            call()
        assert "missing values" in err.value.hint


# -- regression targets and CSVs, where a fit goes quietly wrong --------------------------------------------
def _diabetes():
    X, y = datasets.load_diabetes(return_X_y=True, as_frame=True)
    return X, y.to_numpy()


def _warnings_of(fit):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", category=DeprecationWarning)
        fit()
    return [str(w.message) for w in caught if w.category is UserWarning]


def test_a_regression_worse_than_the_mean_says_why():
    """diabetes' target + 10⁶: MLPRegressor (as scikit-learn's) ended at R² = −1.6·10⁸, predicting about
    22,600 for targets near 10⁶, with a ConvergenceWarning only. It now says that the fit is worse than
    the mean, that the targets sit far from 0, and how to scale them."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.preprocessing import StandardScaler

    X, y = _diabetes()
    est = MLPRegressor(max_iter=60, learning_rate_init=0.01, random_state=0)
    said = _warnings_of(lambda: est.fit(X, y + 1e6))
    assert est.score(X, y + 1e6) < 0
    assert len(said) == 1 and "worse than their mean" in said[0] and "mean 1e+06" in said[0], said
    assert "TransformedTargetRegressor" in said[0]
    scaled = TransformedTargetRegressor(regressor=clone(est), transformer=StandardScaler())
    assert _warnings_of(lambda: scaled.fit(X, y + 1e6)) == []
    assert scaled.score(X, y + 1e6) > 0.4
    assert abs(np.mean(scaled.predict(X)) - np.mean(y + 1e6)) < 20  # in the target's units
    assert _warnings_of(lambda: clone(est).fit(X, (y - y.mean()) / y.std())) == []


def test_a_csv_index_read_back_as_a_feature_is_pointed_out(tmp_path):
    """iris written with pandas' defaults (to_csv keeps the index) and read back with read_csv: the
    column 'Unnamed: 0' of row numbers became a feature, without a word (iris is sorted by species, so the
    row number gives the label away, and new rows numbered from 0 are misread)."""
    X, y = _iris()
    X.to_csv(tmp_path / "iris.csv")
    back = pd.read_csv(tmp_path / "iris.csv")
    assert back.columns[0] == "Unnamed: 0"
    said = _warnings_of(lambda: MLPClassifier(max_iter=5, random_state=0).fit(back, y))
    assert len(said) == 1 and "'Unnamed: 0' holds increasing row numbers" in said[0]
    assert "index_col=0" in said[0]
    right = pd.read_csv(tmp_path / "iris.csv", index_col=0)
    assert _warnings_of(lambda: MLPClassifier(max_iter=5, random_state=0).fit(right, y)) == []


# -- continuing a fit, columns at predict, a rare class under early stopping --------------------------------
@pytest.mark.parametrize("change, words", [
    (dict(hidden_layer_sizes=(20,)), r"hidden_layer_sizes=\(20,\) \(the network has \(10,\)\)"),
    (dict(activation="tanh"), r"activation='tanh' \(the network has 'relu'\)"),
])
def test_continuing_a_fit_after_changing_the_architecture_is_refused(change, words):
    """warm_start=True, then set_params(hidden_layer_sizes=(20,)) (as in a hand-rolled search): fit went on
    training the old 10-unit relu network (scikit-learn does the same), and the parameters lied about it."""
    X, y = _cancer()
    est = MLPClassifier(hidden_layer_sizes=(10,), max_iter=3, random_state=0, warm_start=True).fit(X, y)
    with pytest.raises(dp.ConfigError, match="warm_start=True continues the fitted network.*" + words) as err:
        est.set_params(**change).fit(X, y)
    assert "warm_start=False" in err.value.hint
    with pytest.raises(dp.ConfigError, match="partial_fit continues the fitted network"):
        est.partial_fit(X, y)
    assert clone(est).set_params(warm_start=False).fit(X, y).coefs_[0].shape[1] == change.get(
        "hidden_layer_sizes", (10,))[0]
    est.set_params(hidden_layer_sizes=(10,), activation="relu").fit(X, y)  # set back: continues


def test_dataframe_columns_at_predict_are_named_with_the_way_to_select_them():
    """A DataFrame with one more column at predict said 'X has 31 features, but MLPClassifier is
    expecting 30' (scikit-learn names the new column); renamed or reordered columns gave scikit-learn's
    words without the way out."""
    X, y = datasets.load_breast_cancer(return_X_y=True, as_frame=True)
    est = MLPClassifier(max_iter=3, random_state=0).fit(X, y)
    for bad, words in ((X.assign(extra=1.0), "Feature names unseen at fit time:\n- extra"),
                       (X[X.columns[::-1]], "Feature names must be in the same order as they were in fit"),
                       (X.drop(columns=["mean area"]), "seen at fit time, yet now missing:\n- mean area")):
        with pytest.raises(dp.InputError, match=words) as err:
            est.predict(bad)
        assert err.value.hint.endswith("X[est.feature_names_in_]")
        np.testing.assert_array_equal(est.predict(X[est.feature_names_in_]), est.predict(X))


def test_early_stopping_with_a_class_too_rare_to_stratify_says_what_to_do():
    X, y = _cancer()
    y = np.r_[np.zeros(99, dtype=int), 1]
    with pytest.raises(dp.InputError, match="holds out a stratified validation_fraction=0.1") as err:
        MLPClassifier(max_iter=3, early_stopping=True).fit(X[:100], y)
    assert "early_stopping=False" in err.value.hint


def test_an_estimator_loaded_by_joblib_with_mmap_mode_trains_on(tmp_path):
    """joblib.load(path, mmap_mode='r') (how joblib shares large arrays) gave read-only optimizer state:
    partial_fit raised 'ValueError: output array is read-only' from deep inside the update loop."""
    import joblib

    X, y = datasets.load_digits(return_X_y=True)
    X = X / 16.0
    est = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0).fit(X, y)
    joblib.dump(est, tmp_path / "est.joblib")
    mapped, plain = joblib.load(tmp_path / "est.joblib", mmap_mode="r"), joblib.load(tmp_path / "est.joblib")
    np.testing.assert_array_equal(mapped.predict_proba(X), est.predict_proba(X))
    mapped.partial_fit(X, y)
    plain.partial_fit(X, y)
    np.testing.assert_array_equal(mapped.predict_proba(X), plain.predict_proba(X))
