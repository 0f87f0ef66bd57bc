"""The scikit-learn estimators: scikit-learn's own checks, equality with scikit-learn's MLP from
identical parameters, the scikit-learn world (Pipeline, GridSearchCV, cross_val_score, clone,
pickling), deltaprop's extras, clear errors, and the engine additions they rest on."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import joblib  # noqa: E402
from sklearn import neural_network as sk  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import deltaprop as dp  # noqa: E402
from deltaprop.errors import ConfigError, InputError, InputTypeError  # noqa: E402
from deltaprop.estimators import MLPClassifier, MLPRegressor  # noqa: E402
from deltaprop.io.datasets import load_digits  # noqa: E402
from deltaprop.losses import SquaredError  # noqa: E402
from deltaprop.optim import Adaptive, make_schedule  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# -- scikit-learn's own estimator checks ------------------------------------------------------------
@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# -- data ------------------------------------------------------------------------------------------
def _data(seed=0, m=90, n=5, k=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    y = rng.integers(0, k, m)
    return X, y


def _digits():
    X, y = load_digits()
    return X / 16.0, y


# Settings shared by the parity tests: shuffle off so that both libraries see the batches in order.
PARITY = dict(hidden_layer_sizes=(7, 4), solver="sgd", momentum=0.9, nesterovs_momentum=True, batch_size=16,
              shuffle=False, learning_rate_init=0.05, alpha=0.01, max_iter=1, random_state=0, warm_start=True)


def _same_start(ours, theirs, X, y, sample_weight=None, **params):
    """Fit both for one epoch, then give ours scikit-learn's parameters, and set ``params`` on both:
    the next warm-started fit starts both from identical weights with fresh optimizers."""
    theirs.fit(X, y, sample_weight=sample_weight)
    ours.fit(X, y, sample_weight=sample_weight)
    ours.coefs_ = theirs.coefs_
    ours.intercepts_ = theirs.intercepts_
    ours.set_params(**params)
    theirs.set_params(**params)


def _max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(p) - np.asarray(q)))) for p, q in zip(a, b))


# -- equality with scikit-learn's MLP from identical parameters --------------------------------------
@pytest.mark.parametrize("k", [2, 3, "multilabel"])
def test_probabilities_equal_sklearn_from_identical_parameters(k):
    X, y = _data(1, k=3 if k == "multilabel" else k)
    if k == "multilabel":
        y = (np.random.default_rng(2).random((X.shape[0], 4)) < 0.4).astype(int)
    theirs = sk.MLPClassifier(**PARITY).fit(X, y)
    ours = MLPClassifier(**PARITY).fit(X, y)
    ours.coefs_, ours.intercepts_ = theirs.coefs_, theirs.intercepts_
    assert ours.out_activation_ == theirs.out_activation_
    assert ours.n_outputs_ == theirs.n_outputs_ and ours.n_layers_ == theirs.n_layers_
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_log_proba(X), theirs.predict_log_proba(X), rtol=1e-10)


def test_regression_outputs_equal_sklearn_from_identical_parameters():
    X, _ = _data(3)
    Y = np.random.default_rng(4).normal(size=(X.shape[0], 2))
    theirs = sk.MLPRegressor(**PARITY).fit(X, Y)
    ours = MLPRegressor(**PARITY).fit(X, Y)
    ours.coefs_, ours.intercepts_ = theirs.coefs_, theirs.intercepts_
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-12, atol=1e-14)
    assert ours.score(X, Y) == pytest.approx(theirs.score(X, Y), rel=1e-12)


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_one_epoch_of_sgd_equals_sklearn(momentum, nesterov):
    X, y = _data(5)
    params = dict(PARITY, momentum=momentum, nesterovs_momentum=nesterov)
    theirs, ours = sk.MLPClassifier(**params), MLPClassifier(**params)
    _same_start(ours, theirs, X, y)
    theirs.fit(X, y)
    ours.fit(X, y)
    assert _max_diff(ours.coefs_, theirs.coefs_) < 1e-13
    assert _max_diff(ours.intercepts_, theirs.intercepts_) < 1e-13
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-13)
    assert ours.t_ == theirs.t_


def test_adam_stopping_rule_equals_sklearn():
    """Adam for many epochs and the tol / n_iter_no_change rule on the training loss: same curve, same stop."""
    X, y = _data(6)
    theirs, ours = sk.MLPClassifier(**dict(PARITY, solver="adam")), MLPClassifier(**dict(PARITY, solver="adam"))
    _same_start(ours, theirs, X, y, max_iter=400, tol=1e-3, n_iter_no_change=3, learning_rate_init=0.01)
    theirs.fit(X, y)
    ours.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ < 400
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-10)
    assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-10)
    assert _max_diff(ours.coefs_, theirs.coefs_) < 1e-9


@pytest.mark.parametrize("schedule", ["adaptive", "invscaling"])
def test_learning_rate_schedules_equal_sklearn(schedule):
    X, y = _data(7)
    params = dict(PARITY, learning_rate=schedule, power_t=0.3, learning_rate_init=0.2)
    theirs, ours = sk.MLPClassifier(**params), MLPClassifier(**params)
    _same_start(ours, theirs, X, y, max_iter=200, tol=0.05, n_iter_no_change=2)
    theirs.fit(X, y)
    ours.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-10)
    if schedule == "adaptive":
        # Several plateaus, each dividing α by 5, down to the 1e-6 floor that stops training.
        assert ours.n_iter_ < 200
        assert ours._optimizer.lr == pytest.approx(theirs._optimizer.learning_rate, rel=1e-12) and ours._optimizer.lr < 1e-5


def test_multi_output_regression_with_sample_weights_equals_sklearn():
    """scikit-learn's squared loss is averaged over outputs while its step is not; sample weights."""
    X, _ = _data(8)
    rng = np.random.default_rng(9)
    Y, w = rng.normal(size=(X.shape[0], 3)), rng.uniform(0.5, 2.0, X.shape[0])
    params = dict(PARITY, solver="adam")
    theirs, ours = sk.MLPRegressor(**params), MLPRegressor(**params)
    _same_start(ours, theirs, X, Y, sample_weight=w, max_iter=15)
    theirs.fit(X, Y, sample_weight=w)
    ours.fit(X, Y, sample_weight=w)
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-10)
    assert _max_diff(ours.coefs_, theirs.coefs_) < 1e-12


def test_accuracy_close_to_sklearn_on_digits():
    """Same settings, each library its own initial weights and shuffles: within two points on held-out digits
    (bench/estimators_vs_sklearn.py measures the full comparison)."""
    X, y = _digits()
    Xtr, ytr, Xte, yte = X[:1400], y[:1400], X[1400:], y[1400:]
    params = dict(hidden_layer_sizes=(64,), max_iter=200, random_state=0)
    ours = MLPClassifier(**params).fit(Xtr, ytr).score(Xte, yte)
    theirs = sk.MLPClassifier(**params).fit(Xtr, ytr).score(Xte, yte)
    assert ours > 0.9 and abs(ours - theirs) < 0.02


# -- the scikit-learn world -----------------------------------------------------------------------
def test_pipeline_cross_val_score_and_grid_search():
    X, y = _digits()
    X, y = X[:600], y[:600]
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01,
                                                         max_iter=50, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.8
    grid = GridSearchCV(MLPClassifier(learning_rate_init=0.01, max_iter=30, random_state=0),
                        {"hidden_layer_sizes": [(8,), (32,)], "alpha": [1e-4, 1e-1]}, cv=2, n_jobs=2)
    grid.fit(X, y)
    assert set(grid.best_params_) == {"hidden_layer_sizes", "alpha"}
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    assert grid.best_estimator_.score(X, y) > 0.9


def test_clone_gives_an_unfitted_copy_with_the_same_parameters():
    est = MLPRegressor(hidden_layer_sizes=(5, 3), alpha=0.1, dtype="float32", random_state=3)
    est.fit(*_data(10))
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "coefs_") and not hasattr(copy, "net_")
    with pytest.raises(NotFittedError):
        copy.predict(np.zeros((1, 5)))


def test_pickle_and_joblib_round_trip(tmp_path):
    X, y = _data(11)
    est = MLPClassifier(hidden_layer_sizes=(16,), solver="sgd", max_iter=5, random_state=0).fit(X, y)
    blob = pickle.dumps(est)
    back = pickle.loads(blob)
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    # The network travels as weights, not with its work buffers.
    assert len(blob) < 3 * sum(c.nbytes + b.nbytes for c, b in zip(est.coefs_, est.intercepts_)) + 20_000
    # The optimizer state travels too: partial_fit continues identically.
    est.partial_fit(X, y)
    back.partial_fit(X, y)
    assert _max_diff(back.coefs_, est.coefs_) == 0.0
    joblib.dump(est, tmp_path / "est.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "est.joblib").predict(X), est.predict(X))


def test_model_file_is_not_a_pickle(tmp_path):
    X, y = _data(12)
    est = MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=0).fit(X, np.array(["a", "b", "c"])[y])
    est.save(tmp_path / "model.safetensors")
    raw = (tmp_path / "model.safetensors").read_bytes()
    assert raw[8:9] == b"{" and b"pickle" not in raw[:64]
    net = dp.load(tmp_path / "model.safetensors")
    np.testing.assert_allclose(net.forward(X), est.predict_proba(X), rtol=1e-6)
    assert net.meta["classes"] == ["a", "b", "c"]


def test_import_deltaprop_does_not_import_sklearn():
    code = ("import sys, deltaprop; assert 'sklearn' not in sys.modules; "
            "from deltaprop.estimators import MLPClassifier; assert deltaprop.MLPClassifier is MLPClassifier; "
            "assert 'sklearn' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- fitted attributes, dtypes, labels ------------------------------------------------------------
def test_coefs_are_the_model_parameters():
    X, y = _data(13)
    est = MLPClassifier(hidden_layer_sizes=(6,), max_iter=3, random_state=0).fit(X, y)
    assert [c.shape for c in est.coefs_] == [(5, 6), (6, 3)]
    assert [b.shape for b in est.intercepts_] == [(6,), (3,)]
    np.testing.assert_array_equal(est.coefs_[0], est.net_.layers[0].W.T)

    def by_hand(X):
        A = np.maximum(X @ est.coefs_[0] + est.intercepts_[0], 0)
        Z = A @ est.coefs_[1] + est.intercepts_[1]
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)

    rng = np.random.default_rng(0)
    est.coefs_[1] = rng.normal(size=(6, 3))  # item assignment
    est.coefs_[0][:, 0] = 0.5  # writing into the view
    est.intercepts_ = [np.zeros(6), rng.normal(size=3)]  # the whole list
    np.testing.assert_allclose(est.predict_proba(X), by_hand(X), rtol=1e-12)
    assert np.all(est.net_.layers[0].W[0] == 0.5) and np.all(est.net_.layers[0].b == 0)
    with pytest.raises(ConfigError, match=r"coefs_\[1\] must have shape \(6, 3\)"):
        est.coefs_[1] = np.zeros((3, 6))
    copied = pickle.loads(pickle.dumps(est.coefs_))
    assert type(copied) is list


@pytest.mark.parametrize("X_dtype, dtype, expected", [
    (np.float32, None, np.float32), (np.float64, None, np.float64), (np.int64, None, np.float64),
    (np.float32, "float64", np.float64), (np.float64, "float32", np.float32)])
def test_dtype_is_kept_end_to_end(X_dtype, dtype, expected):
    X, y = _data(14)
    X = (X * 4).astype(X_dtype)
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, dtype=dtype, random_state=0).fit(X, y)
    assert est.net_.dtype == expected
    assert est.coefs_[0].dtype == expected and est.predict_proba(X).dtype == expected
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, dtype=dtype, random_state=0).fit(X, y.astype(float))
    assert reg.predict(X).dtype == expected


def test_string_labels_binary_multiclass_and_multilabel():
    X, y = _data(15, k=3)
    names = np.array(["cat", "dog", "emu"])
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, names[y])
    assert list(est.classes_) == ["cat", "dog", "emu"] and est.out_activation_ == "softmax"
    assert set(est.predict(X)) <= set(names) and est.predict_proba(X).shape == (90, 3)
    binary = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, names[y % 2])
    assert binary.out_activation_ == "logistic" and binary.n_outputs_ == 1
    P = binary.predict_proba(X)
    assert P.shape == (90, 2) and np.allclose(P.sum(axis=1), 1)
    np.testing.assert_array_equal(binary.predict(X), binary.classes_[(P[:, 1] > 0.5).astype(int)])
    Y = np.stack([y == 0, y == 1, y > 0], axis=1).astype(int)
    multi = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, Y)
    assert multi.out_activation_ == "logistic" and multi.predict(X).shape == (90, 3)


def test_same_random_state_same_model_and_generators_accepted():
    X, y = _data(16)
    a = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=7).fit(X, y)
    b = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=7).fit(X, y)
    assert _max_diff(a.coefs_, b.coefs_) == 0.0
    c = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=np.random.default_rng(7)).fit(X, y)
    d = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=np.random.RandomState(7)).fit(X, y)
    assert c.predict_proba(X).shape == d.predict_proba(X).shape == (90, 3)


def test_partial_fit_classes_and_continuation():
    X, y = _data(17)
    est = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=0.1, random_state=0)
    with pytest.raises(InputError, match="classes must be passed on the first call"):
        est.partial_fit(X, y)
    est.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert list(est.classes_) == [0, 1, 2] and est.n_iter_ == 1 and est.t_ == int(np.sum(y < 2))
    losses = [est.partial_fit(X, y).loss_ for _ in range(20)]
    assert losses[-1] < losses[0] and len(est.loss_curve_) == 21
    with pytest.raises(InputError, match=r"y has labels \[7\] that are not among the classes \[0, 1, 2\]"):
        est.partial_fit(X, np.where(y == 2, 7, y))
    with pytest.raises(InputError, match="differs from those of the first call"):
        est.partial_fit(X, y, classes=[0, 1, 2, 3])
    with pytest.raises(ConfigError, match="partial_fit does not support early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


def test_warm_start_continues_and_refuses_new_classes():
    X, y = _data(18)
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, warm_start=True, random_state=0).fit(X, y)
    before = [c.copy() for c in est.coefs_]
    est.fit(X, y)
    assert len(est.loss_curve_) == 10 and len(est.history_) == 10 and est.t_ == 10 * 90
    assert _max_diff(before, est.coefs_) > 0
    with pytest.raises(InputError, match="warm_start can only be used where `y` has the same classes"):
        est.fit(X, y % 2)


# -- deltaprop's extras ---------------------------------------------------------------------------
def test_early_stopping_keeps_validation_loss_and_restores_the_best_weights():
    X, y = _digits()

    class Snapshots(dp.Callback):
        def __init__(self):
            self.weights = []

        def on_epoch_end(self, trainer, logs):
            self.weights.append(trainer.net.get_weights())

    snaps = Snapshots()
    est = MLPClassifier(hidden_layer_sizes=(32,), early_stopping=True, n_iter_no_change=3, tol=1e-3,
                        max_iter=100, random_state=0, callbacks=[snaps]).fit(X[:800], y[:800])
    n = est.n_iter_
    assert len(est.validation_scores_) == len(est.validation_loss_curve_) == len(est.loss_curve_) == n < 100
    assert est.best_loss_ is None and est.best_validation_score_ == max(est.validation_scores_)
    best = est.history_.best_epoch
    assert est.validation_scores_[best - 1] == est.best_validation_score_
    assert _max_diff([w for w, _ in snaps.weights[best - 1]], [c.T for c in est.coefs_]) == 0.0
    assert est.history_.val_loss == est.validation_loss_curve_
    assert all(np.isfinite(est.validation_loss_curve_))


def test_callbacks_see_the_trainer_and_can_stop_it():
    X, y = _data(19)

    class StopAfterThree(dp.Callback):
        def on_epoch_end(self, trainer, logs):
            if logs["epoch"] == 3:
                trainer.stop = True

    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0, callbacks=[StopAfterThree()])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(X, y)
    assert est.n_iter_ == 3 and len(est.history_) == 3


@pytest.mark.parametrize("params", [dict(), dict(early_stopping=True, n_iter_no_change=2, tol=0.5),
                                    dict(solver="sgd", learning_rate="adaptive", n_iter_no_change=1, tol=0.5)])
def test_verbose_prints_what_sklearn_prints(capsys, params):
    """The same lines, numbers included: the same random_state gives the same training."""
    X, y = _data(20)
    settings = dict(hidden_layer_sizes=(4,), max_iter=12, verbose=True, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk.MLPClassifier(**settings).fit(X, y)
        theirs = capsys.readouterr().out
        MLPClassifier(**settings).fit(X, y)
        ours = capsys.readouterr().out
    assert "Iteration 2, loss = " in ours and ours == theirs


def test_convergence_warning_at_max_iter():
    X, y = _data(21)
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)


def test_gradcheck_and_explain_of_the_fitted_network():
    X, y = _data(22)
    est = MLPClassifier(hidden_layer_sizes=(6,), activation="tanh", alpha=0.3, max_iter=3, random_state=0,
                        dtype="float64").fit(X, y)
    assert est.gradcheck(X[:10], y[:10]).ok
    assert "6" in str(est.explain())


def test_sample_weights_equal_repeated_rows():
    """Integer weights are repeated rows, zero weights are dropped rows (full batch, so the batches agree)."""
    X, y = _data(23, m=60)
    w = np.random.default_rng(24).integers(0, 3, 60)
    params = dict(hidden_layer_sizes=(8,), max_iter=20, random_state=0, shuffle=False)  # auto: one full batch
    weighted = MLPClassifier(**params).fit(X, y, sample_weight=w)
    repeated = MLPClassifier(**params).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    assert _max_diff(weighted.coefs_, repeated.coefs_) < 1e-10
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-10)


# -- clear errors ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted():
    X, y = _data(25, n=4)
    return MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, y), X, y


def test_nan_in_X_at_fit_and_predict(fitted):
    est, X, y = fitted
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(InputError, match=r"NaN or infinity \(first at row 3, column 2\)") as err:
        clone(est).fit(bad, y)
    assert isinstance(err.value, ValueError) and "fill or drop" in str(err.value)
    with pytest.raises(InputError, match="NaN"):
        est.predict(bad)


def test_wrong_feature_count_at_predict(fitted):
    est, X, _ = fitted
    with pytest.raises(InputError, match="X has 3 features, but MLPClassifier is expecting 4 features") as err:
        est.predict_proba(X[:, :3])
    assert "same columns" in err.value.hint


def test_one_d_string_complex_sparse_and_object_X(fitted):
    est, X, y = fitted
    with pytest.raises(InputError, match="1-d with shape"):
        est.predict(X[0])
    with pytest.raises(InputError, match="text that is not a number"):
        clone(est).fit(np.array([["a", "b", "c", "d"]] * 90), y)
    with pytest.raises(InputError, match="Complex data not supported"):
        clone(est).fit(X + 1j, y)
    scipy_sparse = pytest.importorskip("scipy.sparse")
    bad = scipy_sparse.csr_matrix(X)
    bad.data[3] = np.nan
    with pytest.raises(InputError, match="NaN or infinity among its stored values"):
        clone(est).fit(bad, y)
    obj = X.astype(object)
    obj[0, 0] = {"a": 1}
    with pytest.raises(InputTypeError, match="not numbers") as err:
        clone(est).fit(obj, y)
    assert isinstance(err.value, TypeError) and isinstance(err.value, ValueError)


def test_bad_targets(fitted):
    est, X, y = fitted
    with pytest.raises(InputError, match="requires y to be passed"):
        clone(est).fit(X, None)
    with pytest.raises(InputError, match="Unknown label type: continuous"):
        clone(est).fit(X, X[:, 0])
    with pytest.raises(InputError, match="X has 90 rows but y has 89"):
        clone(est).fit(X, y[:-1])
    with pytest.raises(InputError, match="y contains NaN"):
        MLPRegressor().fit(X, np.where(y == 1, np.nan, y))
    with pytest.raises(InputError, match="sample weights are all zero"):
        clone(est).fit(X, y, sample_weight=np.zeros(90))
    with pytest.raises(InputError, match="sample_weight has shape"):
        clone(est).fit(X, y, sample_weight=np.ones(3))


@pytest.mark.parametrize("params, match", [
    (dict(solver="newton"), "valid values: 'lbfgs', 'sgd', 'adam'"),
    (dict(max_fun=0), "max_fun must be a whole number"),
    (dict(activation="softplus"), "valid values: 'identity', 'logistic', 'tanh', 'relu'"),
    (dict(hidden_layer_sizes=(10, 0)), "hidden_layer_sizes must be whole numbers"),
    (dict(learning_rate_init=0), "learning_rate_init must be a finite number > 0"),
    (dict(momentum=1.5), r"momentum must be a finite number in \[0, 1\)"),
    (dict(batch_size=0), "batch_size must be a whole number"),
    (dict(dtype="float16"), "unsupported dtype"),
    (dict(random_state="seed"), "random_state must be"),
])
def test_bad_settings_raise_config_errors(fitted, params, match):
    _, X, y = fitted
    with pytest.raises(ConfigError, match=match):
        MLPClassifier(**params).fit(X, y)


# -- the engine additions the estimators rest on ------------------------------------------------------
def test_backprop_with_integer_sample_weights_equals_repeated_rows():
    rng = np.random.default_rng(26)
    X, y = rng.normal(size=(12, 4)), rng.integers(0, 3, 12)
    w = np.array([0, 1, 2, 3] * 3)
    for output, Y in (("softmax", y), ("sigmoid", (rng.random((12, 3)) < 0.5).astype(float)),
                      ("identity", rng.normal(size=(12, 3)))):
        net = dp.Network.from_sizes([4, 5, 3], hidden="tanh", output=output, seed=1, dtype="float64")
        cost_w, grads_w = net.backprop(X, Y, l2=0.7, sample_weight=w)
        cost_r, grads_r = net.backprop(np.repeat(X, w, axis=0), np.repeat(Y, w, axis=0), l2=0.7)
        assert cost_w == pytest.approx(cost_r, rel=1e-12)
        assert _max_diff([g for pair in grads_w for g in pair], [g for pair in grads_r for g in pair]) < 1e-13
        # Without L2, scaling every weight by a constant changes nothing (with L2 it does: λ/(2 Σ s)).
        cost_1, grads_1 = net.backprop(X, Y, sample_weight=w)
        cost_s, grads_s = net.backprop(X, Y, sample_weight=2.5 * w)
        assert cost_s == pytest.approx(cost_1, rel=1e-12)
        assert _max_diff([g for pair in grads_s for g in pair], [g for pair in grads_1 for g in pair]) < 1e-13


def test_trainer_sample_weights_follow_their_rows_into_the_validation_split():
    rng = np.random.default_rng(27)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    net = dp.Network.from_sizes([3, 4, 2], seed=0, dtype="float64")
    trainer = dp.Trainer(net, X, y, epochs=1, validation_fraction=0.25, sample_weight=np.arange(40.0), seed=3)
    kept = {tuple(row): i for i, row in enumerate(X)}
    assert [kept[tuple(row)] for row in trainer.X] == list(trainer.sample_weight.astype(int))
    assert trainer.X.shape[0] + trainer.val[0].shape[0] == 40


def test_squared_error_output_mean_scales_the_value_not_the_gradient():
    rng = np.random.default_rng(28)
    A, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    plain, mean = SquaredError(), SquaredError(output_mean=True)
    assert mean.value(A, A, Y) == pytest.approx(plain.value(A, A, Y) / 3, rel=1e-14)
    np.testing.assert_allclose(mean.rows(A, A, Y) * 3, plain.rows(A, A, Y), rtol=1e-14)
    np.testing.assert_array_equal(mean.delta(A, Y, 0.2), plain.delta(A, Y, 0.2))


def test_adaptive_schedule_divides_by_five_until_the_floor():
    schedule = make_schedule("adaptive")
    assert isinstance(schedule, Adaptive) and schedule(0.1, 0, 0) == 0.1
    assert schedule.reduce(0.1) and schedule(0.1, 5, 999) == pytest.approx(0.02)
    lr = 0.02
    while schedule.reduce(lr):
        lr = schedule(0.1, 0, 0)
    assert lr <= 1e-6 and lr > 1e-6 / 5


def test_classifier_takes_class_weight_as_documented():
    """class_weight is one of MLPClassifier's parameters (get_params, clone, set_params), and 'balanced'
    raises the recall of a rare class, as in scikit-learn's linear models."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 2))
    y = ((X[:, 0] + 0.8 * rng.normal(size=600)) > 1.6).astype(int)  # about 8 % positives, overlapping
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=40, random_state=0, class_weight="balanced")
    assert est.get_params()["class_weight"] == "balanced" and clone(est).class_weight == "balanced"
    assert "class_weight" not in MLPRegressor().get_params()
    recalls = []
    for cw in (None, "balanced"):
        fitted = clone(est).set_params(class_weight=cw).fit(X, y)
        recalls.append(np.mean(fitted.predict(X)[y == 1] == 1))
    assert recalls[1] > recalls[0] + 0.2, recalls
    with pytest.raises(ConfigError, match="class_weight"):
        MLPClassifier(max_iter=2, class_weight="even").fit(X, y)
