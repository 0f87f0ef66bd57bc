"""The same random_state gives scikit-learn's model: initial weights bit for bit, then the same
training (sgd, adam, early stopping: to 1e-10 in float64 on one BLAS thread; lbfgs: the final loss to
1e-6), on scikit-learn's bundled data sets; and the parts of scikit-learn's behaviour its own tests
and users lean on (lbfgs, sparse X, Poisson loss, errors, verbose, private attributes)."""

import tracemalloc
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from scipy import sparse  # noqa: E402
from sklearn import datasets  # noqa: E402
from sklearn import neural_network as sk  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import deltaprop as dp  # noqa: E402
from deltaprop.estimators import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

OURS = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}
SETS = ["digits", "breast_cancer", "wine", "diabetes"]


def _load(name):
    """A bundled data set, features standardized; diabetes (regression) with a standardized target."""
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    if name == "diabetes":
        return X, (y - y.mean()) / y.std(), "MLPRegressor"
    return X, y, "MLPClassifier"


def _both(cls, X, y, **params):
    """scikit-learn's and deltaprop's estimator fitted with the same parameters, on one BLAS thread."""
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = getattr(sk, cls)(**params).fit(X, y)
        ours = OURS[cls](**params).fit(X, y)
    return theirs, ours


def _params(est):
    return list(est.coefs_) + list(est.intercepts_)


def _max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(p) - np.asarray(q)))) for p, q in zip(_params(a), _params(b)))


class _InitialWeights(sk.MLPClassifier):
    """scikit-learn's MLPClassifier remembering the weights its _initialize drew."""

    def _initialize(self, *args):
        super()._initialize(*args)
        self.initial_ = [c.copy() for c in self.coefs_] + [b.copy() for b in self.intercepts_]


class _Snapshot(dp.Callback):
    def on_train_begin(self, trainer):
        self.initial = [W.T.copy() for W, _ in trainer.net.get_weights()] + [b.copy() for _, b in trainer.net.get_weights()]


# -- initial weights -------------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "logistic", "tanh"])
@pytest.mark.parametrize("random_state", [0, 7, np.random.RandomState(3)])
def test_initial_weights_equal_sklearn_bit_for_bit(activation, random_state):
    X, y, _ = _load("wine")
    seed = random_state if isinstance(random_state, int) else None
    rs = lambda: random_state if seed is not None else np.random.RandomState(3)  # noqa: E731  a fresh copy each
    theirs = _InitialWeights(hidden_layer_sizes=(9, 5), activation=activation, max_iter=1, random_state=rs()).fit(X, y)
    snap = _Snapshot()
    MLPClassifier(hidden_layer_sizes=(9, 5), activation=activation, max_iter=1, random_state=rs(),
                  callbacks=[snap]).fit(X, y)
    assert all(np.array_equal(a, b) for a, b in zip(theirs.initial_, snap.initial))
    # Network.from_sizes(init="sklearn") draws the same, for anyone who builds networks by hand.
    net = dp.Network.from_sizes([13, 9, 5, 3], hidden="sigmoid" if activation == "logistic" else activation,
                                init="sklearn", dtype="float64",
                                **({"seed": seed} if seed is not None else {"rng": np.random.RandomState(3)}))
    assert all(np.array_equal(layer.W.T, W_T) for layer, W_T in zip(net.layers, theirs.initial_[:3]))
    assert all(np.array_equal(layer.b, b) for layer, b in zip(net.layers, theirs.initial_[3:]))


def test_from_sizes_sklearn_init_refuses_a_generator():
    with pytest.raises(dp.ConfigError, match="RandomState"):
        dp.Network.from_sizes([3, 2], init="sklearn", rng=np.random.default_rng(0))


# -- whole fits: sgd and adam to 1e-10 -----------------------------------------------------------------------
@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("solver, early_stopping", [("sgd", False), ("adam", False), ("sgd", True), ("adam", True)])
def test_stochastic_fits_equal_sklearn(name, solver, early_stopping):
    X, y, cls = _load(name)
    params = dict(hidden_layer_sizes=(16,), solver=solver, early_stopping=early_stopping, max_iter=25, random_state=3,
                  learning_rate_init=0.01 if solver == "sgd" else 0.002, n_iter_no_change=4, tol=1e-3)
    theirs, ours = _both(cls, X, y, **params)
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    assert _max_diff(ours, theirs) < 1e-10
    if early_stopping:
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-10)
        assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_, rel=1e-10)
    else:
        assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-10)
    np.testing.assert_allclose(ours.predict(X[:50]), theirs.predict(X[:50]), rtol=1e-9, atol=1e-12)


def test_schedules_and_momentum_variants_equal_sklearn():
    """invscaling and adaptive (α/5 on plateaus), plain momentum, no shuffling, a ragged last batch."""
    X, y, cls = _load("wine")
    base = dict(hidden_layer_sizes=(8,), solver="sgd", max_iter=60, random_state=1, batch_size=50, tol=1e-2,
                n_iter_no_change=2, learning_rate_init=0.1)
    for extra in (dict(learning_rate="invscaling", power_t=0.3), dict(learning_rate="adaptive"),
                  dict(nesterovs_momentum=False, shuffle=False)):
        theirs, ours = _both(cls, X, y, **base, **extra)
        assert ours.n_iter_ == theirs.n_iter_
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
        assert _max_diff(ours, theirs) < 1e-10
        assert ours._optimizer.learning_rate == pytest.approx(theirs._optimizer.learning_rate, rel=1e-12)


def test_partial_fit_and_warm_start_equal_sklearn():
    X, y, cls = _load("breast_cancer")
    params = dict(hidden_layer_sizes=(8,), solver="sgd", random_state=2, learning_rate="invscaling", power_t=0.4,
                  learning_rate_init=0.05)
    theirs, ours = sk.MLPClassifier(**params), MLPClassifier(**params)
    for _ in range(3):
        theirs.partial_fit(X, y, classes=[0, 1])
        ours.partial_fit(X, y, classes=[0, 1])
    assert _max_diff(ours, theirs) < 1e-12 and ours.t_ == theirs.t_
    assert ours._optimizer.learning_rate == theirs._optimizer.learning_rate
    warm = dict(params, warm_start=True, max_iter=3, solver="adam")
    theirs, ours = _both(cls, X, y, **warm)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, y)
        ours.fit(X, y)
    assert _max_diff(ours, theirs) < 1e-12
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)


# -- lbfgs ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SETS)
def test_lbfgs_final_loss_equals_sklearn(name):
    X, y, cls = _load(name)
    theirs, ours = _both(cls, X, y, hidden_layer_sizes=(16,), solver="lbfgs", max_iter=100, random_state=5)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)
    assert abs(ours.n_iter_ - theirs.n_iter_) <= 2
    assert len(ours.loss_curve_) == ours.n_iter_ and ours.loss_curve_[-1] == pytest.approx(ours.loss_, rel=1e-12)


def test_lbfgs_gradient_in_sklearn_layout_equals_sklearn():
    X, y, cls = _load("wine")
    theirs, ours = _both(cls, X[:40], y[:40], hidden_layer_sizes=(6,), solver="lbfgs", max_iter=1, random_state=0,
                         alpha=0.3)
    theta = np.hstack([p.ravel() for p in _params(theirs)]) * 1.1
    Y = ours._label_binarizer.transform(y[:40])
    J_ours, g_ours = ours._loss_grad_lbfgs(theta, X[:40], Y, None, [], [], [], [])
    units = [13, 6, 3]
    acts = [X[:40]] + [np.empty((40, u)) for u in units[1:]]
    deltas = [np.empty((40, u)) for u in units[1:]]
    J_theirs, g_theirs = theirs._loss_grad_lbfgs(theta, X[:40], Y, None, acts, deltas,
                                                 [np.empty((a, b)) for a, b in zip(units, units[1:])],
                                                 [np.empty(b) for b in units[1:]])
    assert J_ours == pytest.approx(J_theirs, rel=1e-12)
    np.testing.assert_allclose(g_ours, g_theirs, rtol=1e-10, atol=1e-14)


def test_lbfgs_respects_max_fun_and_warns():
    X, y, cls = _load("digits")
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        est = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_fun=5, random_state=0).fit(X, y)
    assert est.n_iter_ <= 5


# -- Poisson -----------------------------------------------------------------------------------------------------------
def _counts(seed=0, m=300):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, 4))
    return X, rng.poisson(np.exp(0.3 * X[:, 0] - 0.2 * X[:, 1] + 0.5)).astype(float)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_poisson_regression_equals_sklearn(solver):
    X, y = _counts()
    theirs, ours = _both("MLPRegressor", X, y, loss="poisson", hidden_layer_sizes=(5,), activation="tanh",
                         solver=solver, max_iter=40, random_state=4, learning_rate_init=0.01)
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    if solver == "lbfgs":
        assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)
    else:
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
        assert _max_diff(ours, theirs) < 1e-10
    pred = ours.predict(X)
    assert np.all(pred > 0)
    np.testing.assert_allclose(pred, theirs.predict(X), rtol=1e-5)


def test_poisson_refuses_negative_targets():
    X, y = _counts()
    with pytest.raises(dp.InputError, match="Poisson targets must be ≥ 0"):
        MLPRegressor(loss="poisson", max_iter=2).fit(X, y - 1.5)


# -- sparse X -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_X_trains_as_its_dense_copy(solver, fmt):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 30)) * (rng.random((120, 30)) < 0.15)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    params = dict(hidden_layer_sizes=(7,), solver=solver, max_iter=15, random_state=0, learning_rate_init=0.01)
    dense = MLPClassifier(**params).fit(X, y)
    sparse_fit = MLPClassifier(**params).fit(sparse.coo_matrix(X).asformat(fmt), y)
    assert _max_diff(dense, sparse_fit) < 1e-10
    np.testing.assert_allclose(sparse_fit.predict_proba(sparse.csr_array(X)), dense.predict_proba(X), rtol=1e-9)


def test_sparse_X_is_never_densified():
    """200 × 400,000 with 2,000 stored values: a dense copy would take 640 MB; training and prediction
    stay far below (the peak is the weights, 9.6 MB, times the copies Adam and the trainer keep).
    L-BFGS is left out: its own history (10 pairs of 1.2M-long vectors) dwarfs the input either way."""
    rng = np.random.default_rng(2)
    m, n = 200, 400_000
    X = sparse.csr_matrix((rng.normal(size=2000), (rng.integers(0, m, 2000), rng.integers(0, n, 2000))), shape=(m, n))
    y = rng.integers(0, 2, m)
    tracemalloc.start()
    try:
        for solver in ("sgd", "adam"):
            MLPClassifier(hidden_layer_sizes=(3,), solver=solver, max_iter=2, random_state=0).fit(X, y).predict(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 150e6, f"peak {peak / 1e6:.0f} MB"


# -- errors and behaviour -----------------------------------------------------------------------------------------
def test_non_finite_weights_raise_sklearns_value_error():
    X = np.finfo(np.float64).max * np.random.default_rng(0).uniform(size=(10, 2))
    y = np.random.default_rng(1).normal(size=10)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights") as err:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            MLPRegressor(max_iter=5).fit(X, y)
    assert isinstance(err.value, dp.DivergenceError) and err.value.epoch == 1
    assert "scale the inputs" in err.value.hint


def test_divergence_under_early_stopping_restores_the_best_weights():
    X, y, _ = _load("wine")
    snaps = []

    class Keep(dp.Callback):
        def on_epoch_end(self, trainer, logs):
            snaps.append(trainer.net.get_weights())

    est = MLPRegressor(hidden_layer_sizes=(50,), activation="identity", solver="sgd", learning_rate_init=0.3,
                       momentum=0.0, max_iter=30, early_stopping=True, random_state=0, callbacks=[Keep()])
    with pytest.warns(ConvergenceWarning, match="diverged"):
        est.fit(X, y * 1e3)
    assert np.isnan(est.validation_scores_[-1]) and isinstance(est.validation_scores_[-1], float)
    assert all(np.all(np.isfinite(p)) for p in _params(est))
    best = int(np.nanargmax(est.validation_scores_))
    assert all(np.array_equal(W.T, c) for (W, _), c in zip(snaps[best], est.coefs_))


def test_unknown_parameter_is_reported_in_sklearns_words():
    for name in ("MLPClassifier", "MLPRegressor"):
        with pytest.raises(TypeError) as theirs:
            getattr(sk, name)(hidden_units=3)
        with pytest.raises(TypeError) as ours:
            OURS[name](hidden_units=3)
        assert str(ours.value) == str(theirs.value)


def test_partial_fit_is_hidden_for_lbfgs():
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")
    assert hasattr(MLPClassifier(solver="sgd"), "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'"):
        getattr(MLPRegressor(solver="lbfgs"), "partial_fit")  # noqa: B009


def test_multilabel_partial_fit_with_classes():
    X, Y = datasets.make_multilabel_classification(n_samples=60, n_classes=4, random_state=0)
    est = MLPClassifier(hidden_layer_sizes=(10,), solver="sgd", random_state=0)
    for _ in range(3):
        est.partial_fit(X, Y, classes=[0, 1, 2, 3])
    assert est.predict(X).shape == Y.shape and list(est.classes_) == [0, 1, 2, 3]
    ref = sk.MLPClassifier(hidden_layer_sizes=(10,), solver="sgd", random_state=0)
    for _ in range(3):
        ref.partial_fit(X, Y, classes=[0, 1, 2, 3])
    assert _max_diff(est, ref) < 1e-10


def test_weights_assigned_before_fitting_start_partial_fit():
    """scikit-learn's own test_fit sets coefs_ and intercepts_ by hand, then calls partial_fit."""
    est = MLPClassifier(solver="sgd", learning_rate_init=0.1, alpha=0.1, activation="logistic", hidden_layer_sizes=2,
                        momentum=0)
    est.coefs_ = [np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0.0]]), None]
    est.coefs_[1] = np.array([[0.1], [0.2]])
    est.intercepts_ = [np.array([0.1, 0.1]), np.array([1.0])]
    est.partial_fit(np.array([[0.6, 0.8, 0.7]]), [0], classes=[0, 1])
    np.testing.assert_allclose(est.coefs_[1].ravel(), [0.04706, 0.154089], atol=2e-4)
    assert est.predict_proba([[0.6, 0.8, 0.7]])[0, 1] == pytest.approx(0.739, abs=1e-3)
