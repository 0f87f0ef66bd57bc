"""What the estimators take over from scikit-learn's MLP beyond its interface, so that one
``random_state`` gives scikit-learn's numbers: its random draws in their order, its L-BFGS solver on
its parameter layout, its learning-rate bookkeeping and its words. A thin layer: every cost and
gradient is the engine's (:meth:`deltaprop.Network.backprop`'s forward and backward passes).

The draws of one fit, all from one ``numpy.random.RandomState`` (scikit-learn's ``check_random_state``
of ``random_state``, made afresh at every ``fit`` and ``partial_fit`` call):

1. the initial weights, layer by layer, Wᵀ (n_in, n_out) then b (:func:`deltaprop.initializers.sklearn_uniform`);
2. with ``early_stopping``, the validation split (scikit-learn's ``train_test_split``, stratified
   for a single binary output);
3. each epoch, a shuffle of the previous epoch's row order (:class:`ShuffledOrder`).

At each epoch's end :class:`Progress` keeps scikit-learn's books in its order (loss curve, verbose
line, validation score, best weights, next learning rate, the ``tol``/``n_iter_no_change`` rule).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

from deltaprop import fast
from deltaprop.errors import ConfigError, InputError
from deltaprop.optim import Adaptive, InverseScaling
from deltaprop.train import Callback

__all__ = ["random_state", "ShuffledOrder", "validation_split", "SolverView", "FitInverseScaling", "Progress",
           "Packing", "fit_lbfgs", "NON_FINITE_WEIGHTS"]

#: scikit-learn's words when training ends with NaN or infinite weights (a ValueError there and here).
NON_FINITE_WEIGHTS = ("Solver produced non-finite parameter weights. The input data may contain large values "
                      "and need to be preprocessed.")


def random_state(value) -> np.random.RandomState:
    """scikit-learn's ``check_random_state``: None → NumPy's global RandomState, an int → a fresh
    ``RandomState(int)``, a RandomState → itself; a ``numpy.random.Generator`` seeds a RandomState
    from its stream (deltaprop accepts one; its draws then are not scikit-learn's)."""
    if isinstance(value, np.random.Generator):
        return np.random.RandomState(int(value.integers(0, 2**32 - 1)))
    if isinstance(value, bool) or not (value is None or isinstance(value, (numbers.Integral, np.random.RandomState))):
        raise ConfigError(f"random_state must be None, a whole number in [0, 2**32 − 1], a RandomState or a Generator; "
                          f"got {value!r}", "for example random_state=0")
    try:
        return check_random_state(value)
    except ValueError as exc:
        raise ConfigError(f"random_state must be None, a whole number in [0, 2**32 − 1], a RandomState or a Generator; "
                          f"got {value!r} ({exc})", "for example random_state=0") from None


class ShuffledOrder:
    """The rows' order in each epoch as scikit-learn draws it: the previous epoch's order, shuffled
    again with the fit's RandomState (``sklearn.utils.shuffle`` of the index array). The Trainer asks
    for ``permutation(n)`` once at the start of every epoch, as it would ask a Generator."""

    def __init__(self, random_state: np.random.RandomState, n: int):
        self.random_state = random_state
        self.order = np.arange(n)

    def permutation(self, n: int) -> np.ndarray:
        p = np.arange(n)
        self.random_state.shuffle(p)
        self.order = self.order[p]
        return self.order


def validation_split(n: int, stratify, fraction: float, random_state) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows), in the order scikit-learn's ``train_test_split`` gives them."""
    try:
        train, test = train_test_split(np.arange(n), random_state=random_state, test_size=fraction,
                                       stratify=stratify)
    except ValueError as exc:  # a class too rare for the stratified split
        raise InputError(f"early_stopping holds out a stratified validation_fraction={fraction} of the "
                         f"rows, and cannot: {exc}", "gather more rows of the rare class, or fit with "
                         "early_stopping=False") from None
    if test.shape[0] < 2:
        raise InputError(f"The validation set is too small: {test.shape[0]} of {n} rows. Increase 'validation_fraction' "
                         "or the size of your dataset.", "early stopping scores at least 2 held-out rows")
    return train, test


class SolverView:
    """The estimator's ``_optimizer``: the engine optimizer (``engine``; its ``lr`` is the rate of the
    last epoch) with ``learning_rate`` as scikit-learn keeps it, the rate of the *next* epoch
    (``invscaling`` updates it at each epoch's end, ``adaptive`` divides it by 5 on a plateau).
    Other attributes are the engine optimizer's."""

    def __init__(self, engine, learning_rate: float):
        self.engine = engine
        self.learning_rate = float(learning_rate)

    def __getattr__(self, name):
        if name == "engine" or name.startswith("__"):  # unpickling asks before ``engine`` exists
            raise AttributeError(name)
        return getattr(self.engine, name)

    def __repr__(self) -> str:
        return f"SolverView({self.engine!r}, learning_rate={self.learning_rate:g})"


class FitInverseScaling(InverseScaling):
    """α = α₀ in a fit's first epoch, then α₀/(t + 1)^p with t every example seen so far: within a
    fit this is plain invscaling; after ``warm_start`` scikit-learn's fresh optimizer restarts at α₀."""

    def __call__(self, lr0, epoch, t):
        return lr0 if epoch == 0 else super().__call__(lr0, epoch, t)


# -- the stopping rule, as a Trainer callback ----------------------------------------------------
class Progress(Callback):
    """scikit-learn's end-of-epoch bookkeeping, in its order: loss curve, the verbose line, validation
    score and loss, best weights, the next learning rate, and the ``tol``/``n_iter_no_change`` rule
    (stop, or divide α by 5 for ``adaptive``)."""

    def __init__(self, est, val):
        self.est, self.val = est, val
        self.converged = False

    def on_epoch_end(self, trainer, logs):
        est = self.est
        loss = logs["loss"]
        est.loss_curve_.append(loss)
        est.loss_ = loss
        est.n_iter_ += 1
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {loss:.8f}")
        if self.val is not None:
            Xv, Yv, yv, swv = self.val
            score, val_loss = est._validation_score(Xv, Yv, yv, swv)
            logs["val_loss"], logs["val_score"] = val_loss, score
            self._record_score(score, val_loss, trainer.net)
        else:
            if loss > est.best_loss_ - est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if loss < est.best_loss_:
                est.best_loss_ = loss
        view = est._optimizer
        if est.solver == "sgd" and est.learning_rate == "invscaling":
            view.learning_rate = float(est.learning_rate_init) / (trainer.t + 1) ** float(est.power_t)
        if est._no_improvement_count > est.n_iter_no_change:
            what = "Validation score" if self.val is not None else "Training loss"
            msg = f"{what} did not improve more than tol={est.tol:f} for {est.n_iter_no_change} consecutive epochs."
            schedule = est._schedule
            if isinstance(schedule, Adaptive):
                if schedule.reduce(view.learning_rate):
                    est._no_improvement_count = 0
                    view.learning_rate = schedule.lr
                    if est.verbose:
                        print(f"{msg} Setting learning rate to {view.learning_rate:f}")
                    return
                msg += " Learning rate too small."
            trainer.stop = True
            self.converged = True
            trainer.history.stop_reason = msg
            if est.verbose:
                print(msg + " Stopping.")

    def _record_score(self, score, val_loss, net):
        est = self.est
        est.validation_scores_.append(score)
        est.validation_loss_curve_.append(val_loss)
        if est.verbose:
            print(f"Validation score: {score:f}")
        if score < est.best_validation_score_ + est.tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        if score > est.best_validation_score_:
            est.best_validation_score_ = score
            est._best_weights = net.get_weights()
            est._best_epoch = est._epoch_offset + est.n_iter_

    def diverged(self, trainer, error):
        """scikit-learn's outcome for weights that turned NaN under early stopping: the epoch's loss and
        validation score are NaN and the best weights come back. deltaprop stops there (later epochs
        could only repeat NaN) and says so with a ConvergenceWarning."""
        est = self.est
        est.loss_curve_.append(float("nan"))
        est.loss_ = float("nan")
        est.n_iter_ += 1
        self._record_score(float("nan"), float("nan"), trainer.net)
        trainer.history.stop_reason = error.message
        self.converged = True
        warnings.warn(f"{error.message}; early stopping restores the weights of the best validation score "
                      f"({est.best_validation_score_:g}). Lower learning_rate_init, scale the inputs or raise alpha.",
                      ConvergenceWarning, stacklevel=5)


class Packing:
    """scikit-learn's flat parameter vector θ: every W_lᵀ (n_{l−1}, n_l) flattened row by row, then
    every b_l. ``unpack`` writes θ into the network's W_l (n_l, n_{l−1}) and b_l in place."""

    def __init__(self, net):
        self.net = net
        self.slices, start = [], 0
        for layer in net.layers:
            self.slices.append((start, start + layer.W.size))
            start += layer.W.size
        self.bias_slices = []
        for layer in net.layers:
            self.bias_slices.append((start, start + layer.b.size))
            start += layer.b.size
        self.size = start

    def pack(self, Ws, bs) -> np.ndarray:
        return np.concatenate([W.T.ravel() for W in Ws] + [b.ravel() for b in bs])

    def theta(self) -> np.ndarray:
        return self.pack([layer.W for layer in self.net.layers], [layer.b for layer in self.net.layers])

    def unpack(self, theta) -> None:
        for layer, (s, e), (bs, be) in zip(self.net.layers, self.slices, self.bias_slices):
            layer.W[...] = theta[s:e].reshape(layer.n_in, layer.n_out).T
            layer.b[...] = theta[bs:be]

    def loss_grad(self, theta, X, Y, sample_weight, l2: float):
        """(J(θ), ∇J(θ)) on the whole of (X, Y): the engine's forward pass, cost and backward pass."""
        net = self.net
        self.unpack(theta)
        with np.errstate(over="ignore", invalid="ignore"):
            net.forward(X, cache=True, check=False)
            cost = net.cached_cost(Y, l2, sample_weight)
            grads = net.backward(Y, l2, sample_weight=sample_weight)
        return cost, self.pack([dW for dW, _ in grads], [db for _, db in grads])


def fit_lbfgs(est, X, Y, sample_weight) -> None:
    """Minimize J over θ with SciPy's L-BFGS-B from the network's current weights, as scikit-learn
    does: at most ``max_iter`` iterations and ``max_fun`` evaluations, stop when the projected
    gradient's largest component is ≤ ``tol``. Sets ``n_iter_``, ``loss_`` and ``loss_curve_`` (J after
    each iteration, deltaprop's addition) and warns ConvergenceWarning as scikit-learn does."""
    net = est.net_
    packing = Packing(net)
    l2 = float(est.alpha)
    curve = []
    sizes = net.sizes
    with fast.blas_threads_for(X.shape[0] * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))):
        result = scipy.optimize.minimize(
            packing.loss_grad, packing.theta(), args=(X, Y, sample_weight, l2), method="L-BFGS-B", jac=True,
            options={"maxfun": int(est.max_fun), "maxiter": int(est.max_iter), "gtol": float(est.tol)},
            callback=lambda intermediate_result: curve.append(float(intermediate_result.fun)))
    packing.unpack(result.x)
    est.n_iter_ = min(int(result.nit), int(est.max_iter))
    est.loss_ = float(result.fun)
    est.loss_curve_.extend(curve)
    if curve:
        est.best_loss_ = min(curve) if est.best_loss_ is None else min(est.best_loss_, min(curve))
    if result.status != 0:
        msg = f"lbfgs failed to converge after {est.n_iter_} iteration(s) (status={result.status}):\n{result.message}\n"
        if est.n_iter_ == est.max_iter:
            msg += f"\nIncrease the number of iterations to improve the convergence (max_iter={est.max_iter})."
        warnings.warn(msg, ConvergenceWarning, stacklevel=4)
