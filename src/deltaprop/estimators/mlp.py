"""scikit-learn estimators on the deltaprop engine: ``MLPClassifier`` and ``MLPRegressor``.

They drop in where ``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor`` stand (pipelines,
grid search, cross-validation, ``clone``, joblib, and scikit-learn's own MLP test file), with
scikit-learn's parameter names and fitted attributes, and train with deltaprop's Network, Trainer
and optimizers (``solver='lbfgs'``: SciPy's L-BFGS-B on the engine's cost and gradient).

A clash of notation: scikit-learn's ``alpha`` is the L2 strength λ (the engine's ``l2``); the notes'
α is the learning rate, here ``learning_rate_init``.

What follows scikit-learn on purpose, so that from identical parameters the two libraries compute
the same probabilities and take the same steps (in float64, to rounding):

- initial weights: scikit-learn's, draw for draw (W and b uniform in ±√(6/(n_in + n_out)), factor 2
  instead of 6 for logistic hidden units), from ``check_random_state(random_state)``, which then
  draws the validation split and each epoch's shuffle in scikit-learn's order
  (:mod:`deltaprop.estimators.sklearn_ways`): one ``random_state`` gives scikit-learn's model;
- output layer: one logistic unit for two classes, softmax for more, logistic units for multi-label
  indicator targets, identity for regression, exp for ``loss='poisson'``;
- cost of a batch B with sample weights s (all 1 by default), W_l of shape (n_l, n_{l−1}):
  J = Σ_{i∈B} s_i loss_i / Σ_{i∈B} s_i + alpha/(2 Σ_{i∈B} s_i) Σ_l ‖W_l‖², biases not penalized;
  for K regression outputs the reported loss_i is ½(1/K)Σ_k (a_ik − y_ik)² while the step follows
  ½Σ_k (a_ik − y_ik)², as scikit-learn does;
- batches: ``batch_size='auto'`` is min(200, n); rows reshuffled every epoch; one epoch per
  ``max_iter`` unit; ``loss_curve_`` holds Σ_B |B|·J_B / n per epoch;
- updates: SGD θ ← θ − α g, momentum v ← μv − αg, θ ← θ + v (Nesterov: θ ← θ + μv − αg), Adam with
  α_t = α√(1 − β₂ᵗ)/(1 − β₁ᵗ) (see :mod:`deltaprop.optim`);
- learning rate (SGD): ``constant``; ``invscaling`` α = α₀/(t + 1)^power_t with t the examples seen
  before the epoch; ``adaptive`` α/5 each time the loss (or score) stalls, stopping at α ≤ 1e-6;
- stopping: more than ``n_iter_no_change`` consecutive epochs whose training loss is not below
  ``best_loss_ − tol``; with ``early_stopping``, whose validation score (accuracy or R² on a held-out
  ``validation_fraction``, stratified for a single binary output as scikit-learn does) is not above
  ``best − tol``, and the best weights are restored;
- ``solver='lbfgs'``: SciPy's L-BFGS-B on scikit-learn's flat parameter vector (every W_lᵀ, then
  every b_l), full batch, ``max_iter`` iterations, ``max_fun`` evaluations, ``gtol=tol``;
- scipy.sparse X (CSR, CSC; other formats converted to CSR): the first layer multiplies it sparse;
- divergence: NaN or infinite weights raise ValueError (deltaprop's DivergenceError, with
  scikit-learn's words, the epoch and batch, and the last finite weights restored); with
  ``early_stopping`` the diverged epoch scores NaN, training stops and the best weights come back;
- ``verbose``: prints scikit-learn's lines ("Iteration 3, loss = 0.41234567", "Validation score: …").

What deltaprop adds: ``validation_loss_curve_`` (the validation loss beside the score),
``history_`` (deltaprop's History: loss, validation loss, learning rate, time and gradient flow per
epoch), float32 kept end to end (float32 X trains in float32 unless ``dtype`` says otherwise),
``callbacks`` (deltaprop Callbacks that see the Trainer), ``gradcheck``, ``explain``,
``to_network`` and ``save`` (the non-pickle model file).

What differs: where the weights diverge with ``early_stopping``, training stops at that epoch
(scikit-learn runs on to ``max_iter`` with NaN weights and scores); the training loss of classifiers
is computed from the logits, where scikit-learn clips probabilities to [ε, 1 − ε] (the two agree
until a probability comes within 2.2e-16 of 0 or 1).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import type_of_target, unique_labels
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - depends on the environment
    from deltaprop.errors import ConfigError

    raise ConfigError(f"deltaprop's scikit-learn estimators need scikit-learn ≥ 1.6 ({exc})",
                      "pip install 'deltaprop[cli]' or pip install 'scikit-learn>=1.6'") from None

from deltaprop import ops
from deltaprop.errors import ConfigError, DivergenceError, InputError, ModelFileError
from deltaprop.estimators import sklearn_ways
from deltaprop.estimators.inputs import ParamList, as_float_array, choice, number
from deltaprop.losses import SquaredError
from deltaprop.model import Network
from deltaprop.optim import SGD, Adam, Adaptive, Momentum, make_schedule
from deltaprop.train import Callback, History, Trainer, TrainOptions
from deltaprop.validation import check_dtype, check_sample_weight, check_X, is_sparse

if TYPE_CHECKING:
    from os import PathLike

    from numpy.typing import ArrayLike, DTypeLike

    from deltaprop.gradcheck import GradCheckReport
    from deltaprop.teach.explain import Explanation
    from deltaprop.validation import Rows

__all__ = ["MLPClassifier", "MLPRegressor"]

_Estimator = TypeVar("_Estimator", bound="_BaseMLP")

_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
_SOLVERS = ("lbfgs", "sgd", "adam")
_LEARNING_RATES = ("constant", "invscaling", "adaptive")


def _folded(net: Network) -> Network:
    """``net`` with the input scaling of ``meta["scaler"]`` folded into the first layer and the
    target scaling of ``meta["target_scaling"]`` into the last: the same predictions from raw inputs.

    Inputs X' = (X − μ)/σ give Z₁ = X' W₁ᵀ + b₁ = X (W₁/σ)ᵀ + (b₁ − W₁ (μ/σ)); an identity output
    y = A·s + t gives W_L' = s·W_L (row-wise), b_L' = s·b_L + t."""
    net = net.copy()
    meta = dict(net.meta)
    scaler = meta.pop("scaler", None)
    if scaler:
        from deltaprop.io.preprocessing import Scaler

        sc = Scaler.from_dict(scaler)
        n = net.sizes[0]
        shift = np.broadcast_to(np.asarray(sc.shift, dtype=np.float64), (n,))
        scale = np.broadcast_to(np.asarray(sc.scale, dtype=np.float64), (n,))
        first = net.layers[0]
        W = first.W.astype(np.float64)
        first.b[...] = first.b - W @ (shift / scale)
        first.W[...] = W / scale
    target = meta.pop("target_scaling", None)
    if target:
        last = net.layers[-1]
        std = np.asarray(target["std"], dtype=np.float64)
        mean = np.asarray(target["mean"], dtype=np.float64)
        last.W[...] = last.W * std[:, None]
        last.b[...] = last.b * std + mean
    net.meta = meta
    return net


def _one_logistic_unit(net: Network) -> Network:
    """A two-unit softmax output as one sigmoid unit: softmax(z)₁ = σ(z₁ − z₀), so W' = W₁ − W₀,
    b' = b₁ − b₀ (rows of the last layer)."""
    from deltaprop.layers import Dense

    last = net.layers[-1]
    W = (last.W[1] - last.W[0]).reshape(1, -1)
    b = (last.b[1:] - last.b[:1]).copy()
    layers = [*net.layers[:-1], Dense(W.astype(last.W.dtype), b.astype(last.b.dtype), "sigmoid")]
    out = Network(layers, "binary_cross_entropy")
    out.meta = dict(net.meta)
    return out


def _warn_of_a_csv_index(X, arr) -> None:
    """A DataFrame read from a CSV that pandas' to_csv wrote with its index (the default) starts with a
    column 'Unnamed: 0' of row numbers: a feature that tells the rows' order, not the examples (and
    leaks the label where the file is sorted by it). deltaprop's command leaves it out and says so; an
    estimator takes the columns it is given, and says what it sees."""
    columns = getattr(X, "columns", None)
    if columns is None or len(columns) < 2 or str(columns[0]) != "Unnamed: 0" or is_sparse(arr):
        return
    first = arr[:, 0]
    if first.shape[0] > 1 and np.all(first == np.round(first)) and np.all(np.diff(first) > 0):
        warnings.warn("X's first column 'Unnamed: 0' holds increasing row numbers: the index that pandas' "
                      "to_csv writes, read back as a feature, from which the network would learn the rows' "
                      "order. Read the file with pd.read_csv(path, index_col=0), or drop the column "
                      "(X.drop(columns='Unnamed: 0')).", UserWarning, stacklevel=4)


def _worse_than_the_mean(est, Y, sw) -> None:
    """Warn when a regression ends with a training loss above half the targets' variance, the loss of
    predicting their mean (R² < 0 on the training rows): most often targets far from 0, which a network
    whose outputs start near 0 reaches slowly (y + 10⁶: R² = −1.6·10⁸ after 200 epochs)."""
    if est.loss != "squared_error" or not np.isfinite(est.loss_):
        return
    w = np.ones(Y.shape[0]) if sw is None else np.asarray(sw, dtype=np.float64)
    mean = w @ Y / w.sum()
    variance = float(np.mean(w @ (Y - mean) ** 2 / w.sum()))
    if variance <= 0 or est.loss_ <= variance / 2:
        return
    spread = float(np.sqrt(variance))
    far = float(np.max(np.abs(mean)))
    why = (f" The targets sit far from 0 (mean {far:.4g}, standard deviation {spread:.4g}) and the network's "
           "outputs start near 0." if far > 10 * spread else "")
    warnings.warn(f"MLPRegressor fits the training rows worse than their mean would: training loss "
                  f"{est.loss_:.4g} > {variance / 2:.4g}, half the targets' variance (R² < 0).{why} Scale "
                  "the targets: TransformedTargetRegressor(regressor=MLPRegressor(...), "
                  "transformer=StandardScaler()) from sklearn.compose; or train longer (max_iter, "
                  "learning_rate_init).", UserWarning, stacklevel=4)


def _writable(value, memo: dict):
    """``value`` with every read-only NumPy array in it (in lists, tuples, dicts and deltaprop objects'
    attributes) replaced by a writable copy; an array met twice gets one copy."""
    if isinstance(value, np.ndarray):
        if value.flags.writeable:
            return value
        return memo.setdefault(id(value), np.array(value))
    if isinstance(value, (list, tuple)):
        return type(value)(_writable(v, memo) for v in value)
    if isinstance(value, dict):
        return {k: _writable(v, memo) for k, v in value.items()}
    if type(value).__module__.startswith("deltaprop") and hasattr(value, "__dict__"):
        for name, item in list(vars(value).items()):
            vars(value)[name] = _writable(item, memo)
    return value


# -- the shared base -----------------------------------------------------------------------------
def _stochastic_solver(est) -> bool:
    """``partial_fit`` exists for the stochastic solvers only (``hasattr`` says False for lbfgs), as in scikit-learn."""
    if est.solver not in ("sgd", "adam"):
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. {est.solver} is not stochastic.")
    return True


class _BaseMLP(BaseEstimator):
    """What MLPClassifier and MLPRegressor share; see the module docstring."""

    _is_classifier = False

    def _keep_params(self, params: dict) -> None:
        """Store every parameter of the estimator's own ``__init__`` signature (``params``: its ``locals()``)
        as the attribute of that name, unchecked, as scikit-learn asks (``fit`` checks them)."""
        for name in self._get_param_names():
            setattr(self, name, params[name])

    # -- settings ----------------------------------------------------------------------------------
    def _hidden_sizes(self) -> list:
        h = self.hidden_layer_sizes
        sizes = [h] if isinstance(h, numbers.Integral) else (list(h) if hasattr(h, "__iter__") and not isinstance(h, str) else None)
        if sizes is None or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in sizes):
            raise ConfigError(f"hidden_layer_sizes must be whole numbers ≥ 1 (one per hidden layer); got {h!r}",
                              "for example hidden_layer_sizes=(100,) or (64, 32)")
        return [int(s) for s in sizes]

    def _check_params(self) -> None:
        choice(self.activation, "activation", _ACTIVATIONS)
        choice(self.solver, "solver", _SOLVERS)
        choice(self.learning_rate, "learning_rate", _LEARNING_RATES)
        number(self.alpha, "alpha", 0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            number(self.batch_size, "batch_size", 1, integer=True)
        number(self.learning_rate_init, "learning_rate_init", 0, low_open=True)
        number(self.power_t, "power_t", 0)
        number(self.max_iter, "max_iter", 1, integer=True)
        number(self.tol, "tol", 0)
        number(self.momentum, "momentum", 0, 1, high_open=True)
        number(self.validation_fraction, "validation_fraction", 0, 1, low_open=True, high_open=True)
        number(self.beta_1, "beta_1", 0, 1, high_open=True)
        number(self.beta_2, "beta_2", 0, 1, high_open=True)
        number(self.epsilon, "epsilon", 0, low_open=True)
        if self.n_iter_no_change != np.inf:
            number(self.n_iter_no_change, "n_iter_no_change", 1, integer=True)
        number(self.max_fun, "max_fun", 1, integer=True)
        if self.dtype is not None:
            check_dtype(self.dtype)
        if self.callbacks is not None and not all(isinstance(cb, Callback) for cb in self.callbacks):
            raise ConfigError("callbacks must be a list of deltaprop.Callback objects", "subclass deltaprop.Callback")

    def _make_optimizer(self):
        lr = float(self.learning_rate_init)
        if self.solver == "adam":
            return Adam(lr, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        if self.momentum > 0:
            return Momentum(lr, momentum=self.momentum, nesterov=bool(self.nesterovs_momentum))
        return SGD(lr)

    def _make_schedule(self):
        """The schedule that lives as long as the optimizer (its state, for 'adaptive', must)."""
        # scikit-learn applies learning_rate to SGD only; Adam keeps its α.
        if self.solver == "sgd" and self.learning_rate == "adaptive":
            return Adaptive(factor=5.0, min_lr=1e-6, patience=None)  # sklearn_ways.Progress watches the loss
        return make_schedule("constant")

    def _schedule_for(self, incremental: bool):
        if self.solver == "sgd" and self.learning_rate == "invscaling":
            return make_schedule("invscaling", power_t=self.power_t) if incremental else sklearn_ways.FitInverseScaling(self.power_t)
        return self._schedule

    # -- inputs ------------------------------------------------------------------------------------
    def _check_X(self, X, reset: bool) -> np.ndarray:
        arr = as_float_array(X)
        if not reset and hasattr(X, "columns") and getattr(self, "feature_names_in_", None) is not None:
            # Columns by name first, in scikit-learn's words (which name the new and the missing ones).
            try:
                validate_data(self, X, skip_check_array=True, reset=False)
            except ValueError as exc:
                raise InputError(str(exc).rstrip(), "select the columns by name, in the order of fit: "
                                 "X[est.feature_names_in_]") from None
        expected = getattr(self, "n_features_in_", None)
        if not reset and expected is not None and arr.ndim == 2 and arr.shape[1] != expected:
            raise InputError(f"X has {arr.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input",
                             "pass the same columns (and preprocessing) as when the estimator was fitted")
        arr = check_X(arr)  # 2-d, rows ≥ 1, finite: deltaprop's messages
        validate_data(self, X, skip_check_array=True, reset=reset)  # n_features_in_, feature_names_in_
        if reset:
            _warn_of_a_csv_index(X, arr)
        return arr

    def _check_same_architecture(self, hidden, how):
        """A fit that continues the fitted network (warm_start, partial_fit) after set_params changed
        hidden_layer_sizes or activation trained the old network without a word."""
        fitted_hidden = list(self.net_.sizes[1:-1])
        names = {"sigmoid": "logistic"}
        fitted_act = sorted({names.get(a, a) for a in self.net_.activations[:-1]})
        changed = []
        if hidden != fitted_hidden:
            changed.append(f"hidden_layer_sizes={tuple(hidden)} (the network has {tuple(fitted_hidden)})")
        if hidden and fitted_act and fitted_act != [self.activation]:
            had = ", ".join(map(repr, fitted_act))
            changed.append(f"activation={self.activation!r} (the network has {had})")
        if changed:
            raise ConfigError(f"{how} continues the fitted network, but the estimator now says "
                              f"{' and '.join(changed)}",
                              "to train the new architecture, set warm_start=False or fit a clone(est); "
                              "to continue, set the parameters back")

    def _check_y_array(self, y, m: int) -> np.ndarray:
        if y is None:
            raise InputError(f"{type(self).__name__} requires y to be passed, but the target y is None",
                             "pass the targets: fit(X, y)")
        try:
            y = np.asarray(y)
        except Exception as exc:
            raise InputError(f"y cannot be read as an array ({exc})", "pass one target per row of X") from None
        if y.ndim == 0 or y.ndim > 2:
            raise InputError(f"y has shape {y.shape}; expected (m,) or (m, n_outputs)", "pass one target per row of X")
        if y.shape[0] != m:
            raise InputError(f"X has {m} rows but y has {y.shape[0]}", "pass one target per row of X")
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected. Please change the shape of y "
                          "to (n_samples, ), for example using ravel().", DataConversionWarning, stacklevel=4)
            y = y.ravel()
        return y

    def _sample_weight(self, sample_weight, m):
        return None if sample_weight is None else check_sample_weight(sample_weight, m)

    # -- training ----------------------------------------------------------------------------------
    def _has_parameters(self) -> bool:
        return "net_" in self.__dict__ or "_assigned" in self.__dict__

    def _fit(self, X, y, sample_weight=None, incremental=False):
        self._check_params()
        hidden = self._hidden_sizes()
        if incremental and self.early_stopping:
            raise ConfigError("partial_fit does not support early_stopping=True",
                              "hold out validation data yourself, or use fit with early_stopping=True")
        first = not self._has_parameters() or (not self.warm_start and not incremental)
        if not first and "net_" in self.__dict__:
            self._check_same_architecture(hidden, "partial_fit" if incremental else "warm_start=True")
        X = self._check_X(X, reset=first)
        m = X.shape[0]
        y = self._check_y_array(y, m)
        Y = self._encode_targets(y, incremental)
        sw = self._row_weights(Y, self._sample_weight(sample_weight, m), incremental)
        # scikit-learn draws everything of one call from check_random_state(random_state), in this order:
        # initial weights, validation split, each epoch's shuffle (see sklearn_ways).
        self._random_state = sklearn_ways.random_state(self.random_state)
        if first:
            dtype = check_dtype(self.dtype) if self.dtype is not None else X.dtype
            self._initialize(X.shape[1], hidden, Y.shape[1], dtype)
        elif "net_" not in self.__dict__:
            self._adopt_assigned_parameters(X.shape[1], hidden, Y.shape[1])
        elif Y.shape[1] != self.n_outputs_:
            raise InputError(f"y has {Y.shape[1]} outputs, but the fitted network has {self.n_outputs_}",
                             "pass targets of the same kind as before, or fit a fresh estimator (warm_start=False)")
        dtype = self.net_.dtype
        X = X.astype(dtype, copy=False)
        Y = self.net_.prepare_targets(Y)
        if self.solver == "lbfgs":
            sklearn_ways.fit_lbfgs(self, X, Y, None if sw is None else sw.astype(dtype, copy=False))
        else:
            self._fit_stochastic(X, Y, sw, incremental)
        if not all(np.all(np.isfinite(p)) for p in self.net_.params()):
            raise DivergenceError(sklearn_ways.NON_FINITE_WEIGHTS,
                                  "scale the inputs (StandardScaler), lower learning_rate_init or raise alpha")
        if not self._is_classifier and not incremental:
            _worse_than_the_mean(self, Y, sw)
        return self

    def _fit_stochastic(self, X, Y, sw, incremental):
        if not incremental or "_optimizer" not in self.__dict__:
            self._optimizer = sklearn_ways.SolverView(self._make_optimizer(), float(self.learning_rate_init))
            self._schedule = self._make_schedule()
        val = None
        if self.early_stopping:
            X, Y, sw, val = self._split_validation(X, Y, sw)
        if self.batch_size == "auto":
            batch_size = min(200, X.shape[0])
        else:
            if self.batch_size > X.shape[0]:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
                              stacklevel=4)
            batch_size = int(np.clip(self.batch_size, 1, X.shape[0]))

        progress = sklearn_ways.Progress(self, val)
        # scikit-learn's own defaults, not deltaprop's TrainOptions defaults; targets trained as given.
        options = TrainOptions(epochs=1 if incremental else int(self.max_iter), batch_size=batch_size,
                               optimizer=self._optimizer.engine, schedule=self._schedule_for(incremental),
                               l2=float(self.alpha), shuffle=bool(self.shuffle), scale_targets=False)
        trainer = Trainer(self.net_, X, Y, options,
                          rng=sklearn_ways.ShuffledOrder(self._random_state, X.shape[0]), track_accuracy=False,
                          sample_weight=sw, callbacks=[progress, *(self.callbacks or [])])
        # The schedule counts the examples seen across calls (partial_fit, warm_start) from α₀.
        trainer.t = self.t_
        trainer.lr0 = float(self.learning_rate_init)
        self.n_iter_ = 0
        self._epoch_offset = len(self.history_.epochs)
        try:
            trainer.run()
        except DivergenceError as error:
            if not self.early_stopping:
                raise DivergenceError(f"{sklearn_ways.NON_FINITE_WEIGHTS} ({error.message})", error.hint,
                                      history=error.history, epoch=error.epoch, batch=error.batch) from None
            progress.diverged(trainer, error)
        self.t_ = trainer.t
        for e in trainer.history.epochs:
            e["epoch"] = len(self.history_.epochs) + 1
            self.history_.epochs.append(e)
        self.history_.stop_reason = trainer.history.stop_reason or (
            "" if incremental else f"reached max_iter={self.max_iter} epochs")
        if self.early_stopping:
            self.net_.set_weights(self._best_weights)
            self.history_.best_epoch = self._best_epoch
        if not incremental and not progress.converged and not trainer.stop and self.n_iter_ == self.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the optimization "
                          "hasn't converged yet.", ConvergenceWarning, stacklevel=4)

    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight=None, *work_arrays):
        """(J(θ), ∇J(θ)) with θ in scikit-learn's layout (every W_lᵀ flattened, then every b_l), as
        scikit-learn's private method of this name computes them: the weights are set to θ. The
        trailing work arrays scikit-learn passes are not needed."""
        check_is_fitted(self)
        packing = sklearn_ways.Packing(self.net_)
        dtype = self.net_.dtype
        X = check_X(X, self.net_.sizes[0], dtype)
        Y = np.asarray(y, dtype=dtype)
        Y = self.net_.prepare_targets(Y.reshape(Y.shape[0], -1))
        sw = None if sample_weight is None else check_sample_weight(sample_weight, X.shape[0], dtype)
        return packing.loss_grad(np.asarray(packed_coef_inter), X, Y, sw, float(self.alpha))

    def _row_weights(self, Y, sw, incremental):
        """The weight of each row in J: ``sample_weight`` (None: all 1). MLPClassifier multiplies in its
        ``class_weight``."""
        return sw

    def _initialize(self, n_features, hidden, n_outputs, dtype):
        """A fresh network with scikit-learn's initial weights, and the fitted attributes that go with it."""
        out = self._output_activation(n_outputs)
        sizes = [n_features, *hidden, n_outputs]
        self.__dict__.pop("_assigned", None)
        self.net_ = Network.from_sizes(sizes, hidden=self.activation, output=out, loss=self._engine_loss(out),
                                       init="sklearn", rng=self._random_state, dtype=dtype)
        self.n_layers_ = len(sizes)
        self.n_outputs_ = n_outputs
        self.out_activation_ = "logistic" if out == "sigmoid" else out
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self.history_ = History()
        self._no_improvement_count = 0
        self._best_weights = self.net_.get_weights()  # scikit-learn's best-so-far starts at the initial weights
        self._best_epoch = None
        if self.early_stopping and self.solver != "lbfgs":
            self.validation_scores_, self.validation_loss_curve_ = [], []
            self.best_validation_score_, self.best_loss_ = -np.inf, None
        else:
            self.validation_scores_ = self.validation_loss_curve_ = self.best_validation_score_ = None
            self.best_loss_ = np.inf
        for name in ("_optimizer", "_schedule"):
            self.__dict__.pop(name, None)

    @staticmethod
    def _engine_loss(out):
        if out == "identity":
            return SquaredError(output_mean=True)  # the figure scikit-learn reports for several outputs
        return None  # the loss that pairs with the output

    def _adopt_assigned_parameters(self, n_features, hidden, n_outputs):
        """A network from ``coefs_`` and ``intercepts_`` assigned before any fit (scikit-learn's own
        tests do this), with the bookkeeping attributes the caller did not set given their defaults."""
        assigned = self.__dict__.pop("_assigned")
        sizes = [n_features, *hidden, n_outputs]
        coefs, intercepts = assigned.get("coefs_"), assigned.get("intercepts_")
        expected = [(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        if coefs is None or intercepts is None or len(coefs) != len(expected) or len(intercepts) != len(expected):
            raise ConfigError("coefs_ and intercepts_ were assigned before fitting, but not one array per layer "
                              f"(layer shapes {expected})", "assign both lists in full, or fit without assigning them")
        weights = []
        for (n_in, n_out), W_T, b in zip(expected, coefs, intercepts):
            W_T, b = np.asarray(W_T, dtype=np.float64), np.asarray(b, dtype=np.float64).reshape(-1)
            if W_T.shape != (n_in, n_out) or b.shape != (n_out,):
                raise ConfigError(f"an assigned layer has coefs_ {W_T.shape} and intercepts_ {b.shape}; this data and "
                                  f"hidden_layer_sizes need ({n_in}, {n_out}) and ({n_out},)",
                                  "assign arrays of scikit-learn's shapes (n_in, n_out) and (n_out,)")
            weights.append((W_T.T, b))
        out = self._output_activation(n_outputs)
        self.net_ = Network.from_weights(weights, [self.activation] * len(hidden) + [out], self._engine_loss(out))
        for name, value in (("n_layers_", len(sizes)), ("n_outputs_", n_outputs), ("n_iter_", 0), ("t_", 0),
                            ("loss_curve_", []), ("history_", History()), ("_no_improvement_count", 0),
                            ("best_loss_", np.inf), ("validation_scores_", None), ("validation_loss_curve_", None),
                            ("best_validation_score_", None), ("_best_epoch", None)):
            self.__dict__.setdefault(name, value)
        self.out_activation_ = "logistic" if out == "sigmoid" else out
        self._best_weights = self.net_.get_weights()

    def _split_validation(self, X, Y, sw):
        """Hold out ``validation_fraction`` of the rows with scikit-learn's ``train_test_split`` and the
        fit's RandomState (stratified for a single binary output, as scikit-learn does)."""
        stratify = Y.astype(bool) if self._is_classifier and Y.shape[1] == 1 else None
        train, test = sklearn_ways.validation_split(X.shape[0], stratify, float(self.validation_fraction),
                                                    self._random_state)
        swv = None if sw is None else sw[test]
        val = (X[test], Y[test], self._decode(Y[test]), swv)
        return X[train], Y[train], None if sw is None else sw[train], val

    def _validation_score(self, Xv, Yv, yv, swv):
        """(score, loss) on the held-out rows from one forward pass: accuracy or R², and J without L2."""
        Z, A = self.net_.logits(Xv)
        if swv is None:
            val_loss = self.net_.loss.value(Z, A, Yv) / Xv.shape[0]
        else:
            val_loss = self.net_.loss.weighted_value(Z, A, Yv, swv) / float(swv.sum())
        if not np.all(np.isfinite(A)):
            return np.nan, val_loss
        return float(self._metric(yv, self._decode(A), sample_weight=swv)), val_loss

    # -- prediction ----------------------------------------------------------------------------------
    def _outputs(self, X):
        """(Z_L, A_L) for checked X in the network's dtype."""
        check_is_fitted(self)
        X = self._check_X(X, reset=False).astype(self.net_.dtype, copy=False)
        return self.net_.logits(X)

    # -- parameters as scikit-learn shows them -------------------------------------------------------
    def _param_views(self, kind):
        check_is_fitted(self)
        if kind == "coefs_":
            return [layer.W.T for layer in self.net_.layers]
        return [layer.b for layer in self.net_.layers]

    def _assign(self, kind, i, value):
        """Write ``value`` into layer i's W (given as Wᵀ, scikit-learn's layout) or b, in place, so
        that the optimizer's view of the parameters stays valid."""
        layer = self.net_.layers[i]
        target = layer.W.T if kind == "coefs_" else layer.b
        new = np.asarray(value)
        if new.shape != target.shape:
            raise ConfigError(f"{kind}[{i}] must have shape {target.shape}, got {new.shape}",
                              "to change the architecture, set hidden_layer_sizes and fit again")
        target[...] = new

    def _get_params(self, kind):
        if "net_" not in self.__dict__:
            assigned = self.__dict__.get("_assigned", {})
            if kind in assigned:
                return assigned[kind]
            raise AttributeError(f"{kind} exists after fit")
        return ParamList(self, kind)

    def _set_params(self, kind, values, shape_text):
        if "net_" not in self.__dict__:
            # Before any fit (scikit-learn's tests set the weights by hand, then call partial_fit): the
            # list is kept as given, so that assigning its items afterwards lands in it too; the next
            # partial_fit or warm_start fit builds the network from it.
            self.__dict__.setdefault("_assigned", {})[kind] = values if isinstance(values, list) else list(values)
            return
        values = list(values)
        if len(values) != len(self.net_.layers):
            raise ConfigError(f"{kind} must list one {shape_text} array per layer of a fitted estimator",
                              "fit first; to change the architecture, set hidden_layer_sizes and fit again")
        for i, v in enumerate(values):
            self._assign(kind, i, v)

    @property
    def coefs_(self) -> list[np.ndarray]:
        """W_lᵀ for each layer, (n_{l−1}, n_l) as scikit-learn stores them: views of the network's
        weights; assigning them (whole, or one item) changes the model."""
        return self._get_params("coefs_")

    @coefs_.setter
    def coefs_(self, values: Sequence[ArrayLike]) -> None:
        self._set_params("coefs_", values, "(n_in, n_out)")

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """b_l for each layer, (n_l,): views of the network's biases; assigning them changes the model."""
        return self._get_params("intercepts_")

    @intercepts_.setter
    def intercepts_(self, values: Sequence[ArrayLike]) -> None:
        self._set_params("intercepts_", values, "(n_out,)")

    def __sklearn_is_fitted__(self):
        return "net_" in self.__dict__

    # -- deltaprop's extras ----------------------------------------------------------------------------
    def to_network(self) -> Network:
        """A copy of the trained network (W_l (n_l, n_{l−1})), with classes and feature names in ``meta``."""
        check_is_fitted(self)
        net = self.net_.copy()
        if hasattr(self, "classes_"):
            net.meta["classes"] = [c.item() if hasattr(c, "item") else c for c in self.classes_]
        if hasattr(self, "feature_names_in_"):
            net.meta["feature_names"] = [str(n) for n in self.feature_names_in_]
        return net

    def save(self, path: str | PathLike[str]) -> None:
        """Write the trained network as a deltaprop model file (safetensors + JSON header; never pickle)."""
        from deltaprop.io.modelfile import save

        save(self.to_network(), path)

    @classmethod
    def load(cls: type[_Estimator], path: str | PathLike[str], **params: Any) -> _Estimator:
        """A fitted estimator from a deltaprop model file: one written by :meth:`save`, by
        ``deltaprop.save`` or by ``deltaprop train``. The class names stored in the file come back as
        ``classes_``; a command model's input scaling and standardised regression target are folded
        into the first and last layers (W₁' = W₁/σ, b₁' = b₁ − W₁(μ/σ); W_L' = s·W_L, b_L' = s·b_L + t),
        so that the estimator takes raw inputs and predicts in the target's units. ``params`` set
        other constructor parameters (for a later ``fit`` with ``warm_start=True``)."""
        from deltaprop.io.modelfile import load

        net = _folded(load(path))
        acts = net.activations
        hidden = sorted(set(acts[:-1]))
        if len(hidden) > 1:
            raise ConfigError(f"{path}: the hidden layers mix activations ({', '.join(hidden)}); scikit-learn's "
                              "MLPs use one", "use deltaprop.load(path) for this network")
        names = {"sigmoid": "logistic"}
        sk_hidden = names.get(hidden[0], hidden[0]) if hidden else "relu"
        if sk_hidden not in _ACTIVATIONS:
            raise ConfigError(f"{path}: hidden activation {hidden[0]} has no scikit-learn name",
                              "use deltaprop.load(path) for this network")
        if net.is_classifier != cls._is_classifier:
            kind = "a classifier" if net.is_classifier else "a regression network"
            other = "MLPClassifier" if net.is_classifier else "MLPRegressor"
            raise ConfigError(f"{path} holds {kind}", f"load it with {other}.load")
        fixed = sorted({"hidden_layer_sizes", "activation"} & set(params))
        if fixed:
            raise ConfigError(f"{cls.__name__}.load takes {' and '.join(fixed)} from the file "
                              f"(hidden_layer_sizes={tuple(net.sizes[1:-1])}, activation={sk_hidden!r})",
                              "leave them out; to train another architecture, fit a new estimator")
        est = cls(hidden_layer_sizes=tuple(net.sizes[1:-1]), activation=sk_hidden, **params)
        n_out = net.sizes[-1]
        if cls._is_classifier:
            from sklearn.preprocessing import LabelBinarizer

            stored = net.meta.get("classes")
            if acts[-1] == "sigmoid" and n_out > 1:  # multi-label: K indicator columns
                est._label_binarizer = LabelBinarizer().fit(np.eye(n_out, dtype=np.int64))
            else:
                k = 2 if n_out == 1 else n_out
                classes = np.asarray(stored if stored else list(range(k)))
                if classes.shape[0] != k:
                    raise ModelFileError(f"{path} names {classes.shape[0]} classes for {k} outputs",
                                         "the file is damaged")
                est._label_binarizer = LabelBinarizer().fit(classes)
                if n_out == 2:
                    # Two softmax units → scikit-learn's one logistic unit: p₁ = σ(z₁ − z₀), exactly.
                    net = _one_logistic_unit(net)
                    n_out = 1
            est.classes_ = est._label_binarizer.classes_
        est._random_state = sklearn_ways.random_state(est.random_state)
        est._initialize(net.sizes[0], list(net.sizes[1:-1]), n_out, net.dtype)
        loss = est._engine_loss(acts[-1]) or net.loss
        est.net_ = Network(net.layers, loss)
        est.n_features_in_ = net.sizes[0]
        if net.meta.get("feature_names"):
            est.feature_names_in_ = np.asarray(net.meta["feature_names"], dtype=object)
        return est

    def gradcheck(self, X: Rows, y: ArrayLike, **options: Any) -> GradCheckReport:
        """Finite-difference check of the network's gradient on (X, y) with this estimator's L2
        (``alpha``); options go to :func:`deltaprop.gradcheck`. Returns the GradCheckReport."""
        from deltaprop.gradcheck import gradcheck

        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        Y = self._encode_targets(self._check_y_array(y, X.shape[0]), incremental=True, refit=False)
        return gradcheck(self.net_, X, Y, l2=float(self.alpha), **options)

    def explain(self, notation: str = "bracket") -> Explanation:
        """The backprop derivation of this estimator's network with its shapes (:func:`deltaprop.teach.explain`)."""
        from deltaprop.teach.explain import explain

        check_is_fitted(self)
        return explain(self.net_, notation=notation, l2=float(self.alpha))

    # -- pickling: the network travels as weights and architecture, without its work buffers --------
    def __getstate__(self):
        state = dict(super().__getstate__())
        net = state.get("net_")
        if net is not None:
            state["net_"] = {"weights": net.get_weights(), "activations": net.activations, "loss": net.loss,
                             "meta": dict(net.meta)}
        return state

    def __setstate__(self, state):
        spec = state.get("net_")
        if isinstance(spec, dict):
            net = Network.from_weights(spec["weights"], spec["activations"], spec["loss"])
            net.meta = spec["meta"]
            state = dict(state, net_=net)
        # joblib.load(path, mmap_mode="r") gives read-only arrays: the optimizer state that partial_fit
        # updates in place, and the best weights early stopping writes, become copies of their own.
        memo = {}
        state = {k: _writable(v, memo) if k in ("_optimizer", "_best_weights") else v
                 for k, v in state.items()}
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


# -- the classifier --------------------------------------------------------------------------------
def _is_missing(v) -> bool:
    """None, NaN (a float or NumPy float) or pandas' NA (without importing pandas)."""
    return v is None or (isinstance(v, float) and v != v) or type(v).__name__ in ("NAType", "NaTType")


def _label_values(y, what):
    """Labels a person can get from a CSV or a DataFrame, refused by name before scikit-learn's
    ``type_of_target`` sorts them (where a missing label or a mix of text and numbers raised
    "TypeError: '<' not supported between instances of 'float' and 'str'")."""
    if y.dtype.kind not in "fO":
        return
    types = set(map(type, y.ravel())) if y.dtype.kind == "O" else set()
    missing = None
    if y.dtype.kind == "f":
        missing = np.isnan(y)
    elif any(t is type(None) or issubclass(t, float) or t.__name__ in ("NAType", "NaTType") for t in types):
        missing = np.frompyfunc(_is_missing, 1, 1)(y).astype(bool)
    if missing is not None and missing.any():
        rows = np.flatnonzero(missing.reshape(missing.shape[0], -1).any(axis=1))
        raise InputError(f"{what} has {rows.shape[0]} missing label(s) (NaN, None or pandas' NA; first "
                         f"at row {int(rows[0])})", "drop the rows without a label "
                         "(df.dropna(subset=[target])) or fill them in, before the split into X and y")

    def kind_of(t):
        return ("text" if issubclass(t, str) else "booleans" if issubclass(t, (bool, np.bool_))
                else "numbers" if issubclass(t, numbers.Number) else t.__name__)

    kinds = {kind_of(t) for t in types}
    if len(kinds) > 1:
        examples = {}
        for v in y.ravel():
            examples.setdefault(kind_of(type(v)), v.item() if isinstance(v, np.generic) else v)
        shown = ", ".join(f"{k} ({v!r})" for k, v in examples.items())
        raise InputError(f"{what} mixes labels of different kinds: {shown}",
                         "give every label one kind, for example y.astype(str)")
    if kinds and kinds <= {"numbers", "booleans"}:
        raise InputError(f"Unknown label type: {what} holds numbers in an array of Python objects "
                         "(dtype object), which scikit-learn does not read as class labels",
                         "pass y.astype(int)")


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multilayer perceptron classifier trained by backpropagation with L-BFGS, SGD or Adam;
    scikit-learn's ``MLPClassifier`` on deltaprop's engine (same random_state, same model).

    Output layer: one logistic unit for two classes (binary cross-entropy), softmax over K ≥ 3
    classes (cross-entropy), K logistic units for a multi-label indicator matrix. Labels may be
    integers or strings.

    Parameters (scikit-learn's names and meanings)
    ----------------------------------------------
    hidden_layer_sizes : tuple of int, default (100,)
        Units per hidden layer, input and output excluded.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default 'relu'
        g of the hidden layers.
    solver : {'lbfgs', 'sgd', 'adam'}, default 'adam'
        'lbfgs': SciPy's L-BFGS-B on the whole data (often best on small data); 'sgd', 'adam': mini-batches.
    alpha : float, default 1e-4
        L2 strength λ in J = … + λ/(2 Σ s_i) Σ ‖W‖² (not the notes' α, which is the learning rate).
    batch_size : int or 'auto', default 'auto' (= min(200, n))
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default 'constant' (SGD only)
    learning_rate_init : float, default 0.001
        α₀, the step size.
    power_t : float, default 0.5
        Exponent of 'invscaling'.
    max_iter : int, default 200
        Epochs (sgd, adam) or L-BFGS iterations.
    shuffle : bool, default True
        Reshuffle the rows every epoch.
    random_state : None, int, numpy RandomState or Generator
        scikit-learn's ``check_random_state``: draws the initial weights, the validation split and the
        shuffles, in scikit-learn's order (the same int gives scikit-learn's model). A Generator seeds
        a RandomState.
    tol : float, default 1e-4;  n_iter_no_change : int, default 10
        Stop after more than ``n_iter_no_change`` epochs without an improvement of ``tol``.
    verbose : bool
        Print scikit-learn's line per epoch ("Iteration 1, loss = …") and its stopping messages.
    warm_start : bool
        Continue from the previous fit's weights.
    momentum : float, default 0.9;  nesterovs_momentum : bool, default True (SGD only)
    early_stopping : bool;  validation_fraction : float, default 0.1
        Hold out rows, stop on their accuracy, restore the best weights.
    beta_1, beta_2, epsilon : Adam's β₁ (0.9), β₂ (0.999), ε (1e-8).
    max_fun : int, default 15000
        L-BFGS: at most this many evaluations of J and its gradient.

    X may be a scipy.sparse matrix (CSR or CSC): the first layer multiplies it without densifying it.

    deltaprop's own
    ---------------
    dtype : None, 'float32' or 'float64', default None
        Training dtype; None keeps float32 X in float32 (anything else trains in float64).
    callbacks : list of deltaprop.Callback, default None
        Hooks into each fit's Trainer (epoch and batch ends; set ``trainer.stop = True`` to stop).
    class_weight : None, 'balanced' or dict {label: weight}, default None
        Weighs each row by its class, scikit-learn's meaning: 'balanced' gives class c the weight
        Σ s / (K · Σ_{i ∈ c} s_i) (m / (K · m_c) without ``sample_weight``); multiplied with
        ``sample_weight``, for every solver, and in the early-stopping score. partial_fit takes a dict only.

    Fitted attributes
    -----------------
    classes_, coefs_ (W_lᵀ views: assigning changes the model), intercepts_, loss_, loss_curve_,
    best_loss_, validation_scores_, best_validation_score_, validation_loss_curve_, n_iter_, t_,
    n_layers_, n_outputs_, out_activation_, n_features_in_, feature_names_in_, net_ (the
    deltaprop Network), history_ (deltaprop History).
    """

    _is_classifier = True

    # An explicit signature of its own, as scikit-learn requires (get_params reads it), and so that an
    # unknown keyword is reported as MLPClassifier.__init__()'s, in Python's (and scikit-learn's) words.
    def __init__(self, hidden_layer_sizes: int | Sequence[int] = (100,), activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: int | str = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001, power_t: float = 0.5,
                 max_iter: int = 200, shuffle: bool = True,
                 random_state: int | np.random.RandomState | np.random.Generator | None = None,
                 tol: float = 1e-4, verbose: bool = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: int = 10, max_fun: int = 15000,
                 dtype: DTypeLike = None, callbacks: Sequence[Callback] | None = None,
                 class_weight: str | dict | None = None) -> None:
        self._keep_params(locals())

    _metric = staticmethod(accuracy_score)

    def fit(self, X: Rows, y: ArrayLike, sample_weight: ArrayLike | None = None) -> MLPClassifier:
        """Train on X (m, n_features) and labels y (m,) or a 0/1 indicator matrix (m, K); returns self."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_stochastic_solver)
    def partial_fit(self, X: Rows, y: ArrayLike, sample_weight: ArrayLike | None = None,
                    classes: ArrayLike | None = None) -> MLPClassifier:
        """One epoch over (X, y), continuing from the current weights and optimizer state.
        ``classes`` (every label that will ever be seen) is required on the first call, except for a
        multi-label indicator y (its columns are the labels). Only for solver='sgd' or 'adam'."""
        if "net_" not in self.__dict__:
            multilabel = y is not None and type_of_target(np.asarray(y)) == "multilabel-indicator"
            if classes is None and not multilabel:
                raise InputError("classes must be passed on the first call to partial_fit",
                                 "pass classes=np.unique(y_all), every label that will ever be seen")
            # An indicator matrix names its labels by its columns: the binarizer learns them from y.
            target = np.asarray(y) if multilabel else np.asarray(classes)
            what = "y" if multilabel else "classes"
            self._label_binarizer = LabelBinarizer().fit(self._checked_labels(target, what))
            self.classes_ = self._label_binarizer.classes_
        elif (classes is not None and self._label_binarizer.y_type_ != "multilabel-indicator"
              and not np.array_equal(np.unique(np.asarray(classes)), self.classes_)):
            raise InputError(f"classes={np.unique(classes).tolist()} differs from those of the first call to partial_fit, "
                             f"{np.asarray(self.classes_).tolist()}", "pass the same classes every time, or leave classes out")
        return self._fit(X, y, sample_weight, incremental=True)

    def _checked_labels(self, y, what="y"):
        _label_values(y, what)
        kind = type_of_target(y, input_name="y")
        if kind not in ("binary", "multiclass", "multilabel-indicator"):
            raise InputError(f"Unknown label type: {kind}. MLPClassifier needs class labels "
                             "(integers or strings), or a 0/1 indicator matrix for multi-label targets",
                             "use MLPRegressor for continuous targets; encode the classes otherwise")
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            raise InputError("Input y contains NaN or infinity", "drop the rows without a label")
        return y

    def _row_weights(self, Y, sw, incremental):
        """s_i · w_{c(i)}: ``sample_weight`` times the weight of each row's class, for every solver (L-BFGS
        too) and for the early-stopping score of the held-out rows. 'balanced' gives class c the weight
        Σ s / (K · Σ_{i ∈ c} s_i), counted over the rows given to ``fit`` (scikit-learn's
        ``compute_class_weight`` with ``sample_weight``); a dict maps labels of ``classes_`` to weights,
        1 for the classes it leaves out."""
        cw = self.class_weight
        if cw is None:
            return sw
        if isinstance(cw, str):
            if cw != "balanced":
                raise ConfigError(f"class_weight must be 'balanced', a dict or None, got {cw!r}",
                                  "for example class_weight='balanced'")
            if incremental:
                raise ConfigError("class_weight='balanced' is not defined for partial_fit: one batch's class "
                                  "frequencies are not those of the data",
                                  "pass class_weight=dict(zip(classes, compute_class_weight('balanced', "
                                  "classes=classes, y=y_all))) (sklearn.utils.class_weight), or use fit")
        elif not isinstance(cw, dict):
            raise ConfigError(f"class_weight must be 'balanced', a dict or None, got {type(cw).__name__}",
                              "for example class_weight={0: 1.0, 1: 5.0}")
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            raise ConfigError("class_weight is not defined for several sigmoid outputs (multi-label)",
                              "pass sample_weight instead")
        classes = np.asarray(self.classes_).tolist()
        column = (Y[:, 0] > 0.5).astype(np.intp) if Y.shape[1] == 1 else np.argmax(Y, axis=1)
        s = np.ones(Y.shape[0]) if sw is None else np.asarray(sw, dtype=np.float64)
        if isinstance(cw, str):
            mass = np.bincount(column, weights=s, minlength=len(classes))
            present = np.count_nonzero(np.bincount(column, minlength=len(classes)))
            with np.errstate(divide="ignore"):
                per_class = np.where(mass > 0, s.sum() / (present * mass), 0.0)
        else:
            unknown = [k for k in cw if k not in classes]
            if unknown:
                raise ConfigError(f"class_weight names {unknown!r}, which are not among the classes "
                                  f"{classes}", "key class_weight by the labels in y")
            per_class = np.ones(len(classes))
            for key, weight in cw.items():
                per_class[classes.index(key)] = number(weight, f"class_weight[{key!r}]", 0)
        weights = s * per_class[column]
        if not np.any(weights > 0):
            raise ConfigError(f"class_weight {cw!r} gives every row a weight of 0",
                              "give some class a weight > 0")
        return weights

    def _encode_targets(self, y, incremental, refit=True):
        """Y (m, K) as scikit-learn's LabelBinarizer gives it (a single column for two classes)."""
        y = self._checked_labels(y)
        fresh = not hasattr(self, "_label_binarizer") or (refit and not self.warm_start and not incremental)
        if fresh:
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start and not incremental and refit:
                if set(classes) != set(self.classes_):
                    raise InputError("warm_start can only be used where `y` has the same classes as in the previous call "
                                     f"to fit. Previously got {self.classes_}, `y` has {classes}",
                                     "fit a fresh estimator (warm_start=False) for new classes")
            elif len(np.setdiff1d(classes, self.classes_)):
                unseen = np.setdiff1d(classes, self.classes_).tolist()
                raise InputError(f"y has labels {unseen} that are not among the classes {np.asarray(self.classes_).tolist()}",
                                 "pass every label in classes= on the first call to partial_fit, or refit")
        return self._label_binarizer.transform(y).astype(np.float64)

    def _output_activation(self, n_outputs):
        if self._label_binarizer.y_type_ == "multiclass":
            return "softmax"
        return "sigmoid"

    def _decode(self, A):
        """Labels from outputs or one-hot/indicator rows (threshold ½, or the largest column)."""
        return self._label_binarizer.inverse_transform(A.ravel() if A.shape[1] == 1 else A)

    def predict(self, X: Rows) -> np.ndarray:
        """Class labels (m,), or a 0/1 indicator matrix (m, K) for multi-label targets."""
        _, A = self._outputs(X)
        return self._decode(A)

    def predict_proba(self, X: Rows) -> np.ndarray:
        """Probabilities (m, n_classes), in the order of ``classes_`` (for two classes [1 − p, p]; a
        classifier fitted on one class gives that class probability 1, one column as ``classes_``)."""
        A = self._probability_outputs(*self._outputs(X))
        if self._one_class():
            return np.ones((A.shape[0], 1), dtype=A.dtype)
        return self.net_.probabilities(A)

    def _one_class(self) -> bool:
        # scikit-learn fits y of one class (its own tests do); its predict_proba then gave two columns for
        # the one label of classes_, the second one the probability of no class at all.
        return self._label_binarizer.y_type_ != "multilabel-indicator" and len(self.classes_) == 1

    def _probability_outputs(self, Z, A):
        """A_L with logistic units as e^{log σ(z)}: σ(z) to full relative precision where it is tiny
        (the engine's σ, built for speed, rounds σ(−40) to 0; scikit-learn's gives 4.2e-18)."""
        if self.out_activation_ == "logistic":
            return np.exp(ops.log_sigmoid(Z))
        return A

    def predict_log_proba(self, X: Rows) -> np.ndarray:
        """log predict_proba: log P where P is a normal float (so its largest entry is the largest
        probability's, ties included, as scikit-learn's np.log(predict_proba) gives), and from the
        logits where P underflows, so that it stays finite for confident rows (scikit-learn: −inf)."""
        Z, A = self._outputs(X)
        if self._one_class():
            return np.zeros((A.shape[0], 1), dtype=A.dtype)
        P = self.net_.probabilities(self._probability_outputs(Z, A))
        if self.out_activation_ == "softmax":
            from_logits = ops.log_softmax(Z)
        elif A.shape[1] == 1:
            from_logits = np.hstack([ops.log_sigmoid(-Z), ops.log_sigmoid(Z)])
        else:
            from_logits = ops.log_sigmoid(Z)
        normal = P >= np.finfo(P.dtype).tiny
        with np.errstate(divide="ignore"):
            return np.where(normal, np.log(np.where(normal, P, 1)), from_logits)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


# -- the regressor ---------------------------------------------------------------------------------
class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multilayer perceptron regressor trained by backpropagation with L-BFGS, SGD or Adam;
    scikit-learn's ``MLPRegressor`` on deltaprop's engine (same random_state, same model).

    The parameters, deltaprop's own ``dtype`` and ``callbacks``, and the fitted attributes are those
    of :class:`MLPClassifier` (without ``classes_``; the early-stopping score is R²), and ``loss``:

    - 'squared_error' (identity output): for K outputs the reported loss is ½ mean over rows and
      outputs, as scikit-learn reports it, while the step follows ½ Σ over outputs;
    - 'poisson' (exp output, for counts and rates y ≥ 0): half the Poisson deviance
      Σ_k [y log(y/a) − y + a], predictions a = e^z > 0 (see :class:`deltaprop.losses.PoissonDeviance`).
    """

    def __init__(self, loss: str = "squared_error", hidden_layer_sizes: int | Sequence[int] = (100,),
                 activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: int | str = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001, power_t: float = 0.5,
                 max_iter: int = 200, shuffle: bool = True,
                 random_state: int | np.random.RandomState | np.random.Generator | None = None,
                 tol: float = 1e-4, verbose: bool = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: int = 10, max_fun: int = 15000,
                 dtype: DTypeLike = None, callbacks: Sequence[Callback] | None = None) -> None:
        self._keep_params(locals())

    _metric = staticmethod(r2_score)

    def _check_params(self):
        choice(self.loss, "loss", ("squared_error", "poisson"))
        super()._check_params()

    def fit(self, X: Rows, y: ArrayLike, sample_weight: ArrayLike | None = None) -> MLPRegressor:
        """Train on X (m, n_features) and targets y (m,) or (m, n_outputs); returns self."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_stochastic_solver)
    def partial_fit(self, X: Rows, y: ArrayLike, sample_weight: ArrayLike | None = None) -> MLPRegressor:
        """One epoch over (X, y), continuing from the current weights and optimizer state. Only for
        solver='sgd' or 'adam'."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _encode_targets(self, y, incremental, refit=True):
        if y.dtype.kind not in "biuf":
            try:
                y = y.astype(np.float64)
            except (TypeError, ValueError):
                raise InputError(f"y holds values that are not numbers (dtype {y.dtype})",
                                 "MLPRegressor needs numeric targets; use MLPClassifier for labels") from None
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        Y = Y.astype(np.float64, copy=False)
        if not np.all(np.isfinite(Y)):
            raise InputError("Input y contains NaN or infinity", "drop or fill the rows with missing targets")
        return Y

    def _output_activation(self, n_outputs):
        return "exp" if self.loss == "poisson" else "identity"

    def _decode(self, A):
        return A.ravel() if A.shape[1] == 1 else A

    def predict(self, X: Rows) -> np.ndarray:
        """Predicted values (m,) for one output, (m, n_outputs) for several."""
        _, A = self._outputs(X)
        return self._decode(A)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
