"""Optimizers: ``step(params, grads)`` updates aligned lists of arrays in place.

The optimizer never sees a layer: it gets the parameter arrays and their gradients in the same order.
Its state (velocities, moments, step count) lives here, apart from the model. The update rules are
scikit-learn's, so that the two libraries take the same steps from the same parameters:

- SGD (the notes' ``W −= α dW``):          θ ← θ − α g
- momentum:                                 v ← μ v − α g;  θ ← θ + v
- Nesterov:                                 v ← μ v − α g;  θ ← θ + μ v − α g
- Adam:   t ← t + 1; m ← β₁ m + (1 − β₁) g; v ← β₂ v + (1 − β₂) g²;
          α_t = α √(1 − β₂ᵗ)/(1 − β₁ᵗ);  θ ← θ − α_t m / (√v + ε)

Learning-rate schedules give α for an epoch (``constant``, ``step``, ``exponential``,
``invscaling``, ``adaptive``); the trainer sets ``optimizer.lr`` from them at the start of every epoch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from deltaprop import fast, kernels
from deltaprop.errors import ConfigError, unknown_name
from deltaprop.validation import check_nonnegative_float, check_positive_float

__all__ = ["Optimizer", "SGD", "Momentum", "Adam", "OPTIMIZERS", "make_optimizer", "Schedule", "Adaptive", "SCHEDULES", "make_schedule"]


class Optimizer:
    """Base class. ``lr`` is the current learning rate α (the notes' α; scikit-learn's learning_rate).

    ``halves``, when set (the trainer's two-thread step, :class:`deltaprop.parallel.SplitStep`), runs
    an element-wise update over the two halves of each large array on two threads at once: every
    element gets the same operations as on one thread, so the result is the same to the bit.
    """

    name = "optimizer"
    #: True where the update is exactly θ ← θ − α g: the trainer may then fold α into the output
    #: error (δ_L = α(A − Y)/m) and call :meth:`apply` with gradients already multiplied by α.
    folds_lr = False
    #: Arrays smaller than this are updated on one thread even when ``halves`` is set.
    SPLIT_MIN = 1 << 15

    def __init__(self, lr: float = 0.01) -> None:
        self.lr = check_positive_float(lr, "lr")
        self.t = 0
        self.halves = None

    def _each(self, update, arrays, *args) -> None:
        """``update(*arrays, *args)`` on the arrays (aligned, same shapes), in two halves on two
        threads when ``halves`` is set and they are large."""
        halves = getattr(self, "halves", None)  # optimizers unpickled from before it existed have none
        if halves is None or arrays[0].size < self.SPLIT_MIN:
            update(*arrays, *args)
            return
        flat = [a.reshape(-1) for a in arrays]  # views: the arrays are contiguous
        k = (flat[0].size // 2) & ~63  # a cache-line-aligned split
        halves.both(update, [a[:k] for a in flat] + list(args), [a[k:] for a in flat] + list(args))

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Everything needed to continue exactly where it stopped (arrays are copies)."""
        return {"name": self.name, "lr": self.lr, "t": self.t}

    def load_state_dict(self, state: dict) -> None:
        self.lr = float(state["lr"])
        self.t = int(state["t"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr:g})"


def _zeros_like_all(arrays):
    return [np.zeros_like(a) for a in arrays]


class SGD(Optimizer):
    """θ ← θ − α g."""

    name = "sgd"
    folds_lr = True

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        self.t += 1
        for p, g in zip(params, grads):
            p -= self.lr * g

    def apply(self, params: Sequence[np.ndarray], scaled_grads: Sequence[np.ndarray]) -> None:
        """θ ← θ − (α g) for gradients already scaled by α: one subtraction per array."""
        self.t += 1
        for p, g in zip(params, scaled_grads):
            self._each(np.subtract, (p, g, p))


class Momentum(Optimizer):
    """v ← μ v − α g; θ ← θ + v (classical momentum) or θ ← θ + μ v − α g (Nesterov)."""

    name = "momentum"

    def __init__(self, lr: float = 0.01, momentum: float = 0.9, nesterov: bool = False) -> None:
        super().__init__(lr)
        self.momentum = check_nonnegative_float(momentum, "momentum")
        if self.momentum >= 1:
            raise ConfigError(f"momentum must be below 1, got {momentum!r}", "typical values are 0.9 or 0.99")
        self.nesterov = bool(nesterov)
        self.velocities = None
        self._scratch = None

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        if self.velocities is None:
            self.velocities = _zeros_like_all(params)
            self._scratch = _zeros_like_all(params)
        self.t += 1
        for p, g, v, s in zip(params, grads, self.velocities, self._scratch):
            self._each(self._update, (p, g, v, s), self.momentum, self.lr, self.nesterov)

    @staticmethod
    def _update(p, g, v, s, mu, lr, nesterov) -> None:
        if kernels.momentum(p, g, v, mu, lr, nesterov):  # one compiled loop, the same bits
            return
        fast.axpby(-lr, g, mu, v, s)  # v = μ v − α g
        if nesterov:
            fast.axpby(-lr, g, 1.0, p, s)
            fast.axpby(mu, v, 1.0, p, s)  # θ += μ v − α g
        else:
            p += v

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.update(momentum=self.momentum, nesterov=self.nesterov,
                     velocities=None if self.velocities is None else [v.copy() for v in self.velocities])
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        vel = state.get("velocities")
        self.velocities = None if vel is None else [np.array(v, copy=True) for v in vel]
        self._scratch = None if vel is None else _zeros_like_all(self.velocities)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr:g}, momentum={self.momentum:g}, nesterov={self.nesterov})"


class Adam(Optimizer):
    """m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; θ ← θ − α√(1−β₂ᵗ)/(1−β₁ᵗ) · m/(√v + ε)."""

    name = "adam"

    def __init__(self, lr: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8) -> None:
        super().__init__(lr)
        for value, label in ((beta_1, "beta_1"), (beta_2, "beta_2")):
            if not (0 <= float(value) < 1):
                raise ConfigError(f"{label} must lie in [0, 1), got {value!r}", "the usual values are 0.9 and 0.999")
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.epsilon = check_positive_float(epsilon, "epsilon")
        self.ms = self.vs = self._scratch = None

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        if self.ms is None:
            self.ms, self.vs, self._scratch = _zeros_like_all(params), _zeros_like_all(params), _zeros_like_all(params)
        self.t += 1
        b1, b2 = self.beta_1, self.beta_2
        lr_t = self.lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        for p, g, m, v, s in zip(params, grads, self.ms, self.vs, self._scratch):
            self._each(self._update, (p, g, m, v, s), b1, b2, self.epsilon, lr_t)

    @staticmethod
    def _update(p, g, m, v, s, b1, b2, epsilon, lr_t) -> None:
        """One compiled loop where :mod:`deltaprop.kernels` is loaded; else seven NumPy passes, where m, v
        and θ each take one BLAS call (:func:`deltaprop.fast.axpby`). The same bits either way."""
        if kernels.adam(p, g, m, v, b1, b2, epsilon, lr_t):
            return
        fast.axpby(1 - b1, g, b1, m, s)  # m = β₁m + (1 − β₁)g
        np.multiply(g, g, out=s)
        fast.axpby(1 - b2, s, b2, v, s)  # v = β₂v + (1 − β₂)g²
        np.sqrt(v, out=s)
        s += epsilon
        np.divide(m, s, out=s)
        fast.axpby(-lr_t, s, 1.0, p, s)  # θ −= α_t m/(√v + ε)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                     ms=None if self.ms is None else [a.copy() for a in self.ms],
                     vs=None if self.vs is None else [a.copy() for a in self.vs])
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if state.get("ms") is None:
            self.ms = self.vs = self._scratch = None
        else:
            self.ms = [np.array(a, copy=True) for a in state["ms"]]
            self.vs = [np.array(a, copy=True) for a in state["vs"]]
            self._scratch = _zeros_like_all(self.ms)

    def __repr__(self) -> str:
        return f"Adam(lr={self.lr:g}, beta_1={self.beta_1:g}, beta_2={self.beta_2:g}, epsilon={self.epsilon:g})"


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "nesterov": Momentum, "adam": Adam}


def make_optimizer(name: str | Optimizer = "sgd", lr: float | None = None,
                   **options: float | bool) -> Optimizer:
    """An optimizer by name: ``sgd``, ``momentum``, ``nesterov`` (momentum with Nesterov's look-ahead), ``adam``.

    ``lr`` defaults to 0.1 for the SGD family and 0.001 for Adam. Options: ``momentum`` (default
    0.9), ``beta_1``, ``beta_2``, ``epsilon``.
    """
    if isinstance(name, Optimizer):
        return name
    key = str(name).strip().lower()
    if key not in OPTIMIZERS:
        raise unknown_name("optimizer", name, list(OPTIMIZERS))
    if lr is None:
        lr = 0.001 if key == "adam" else 0.1
    if key == "sgd":
        if options.get("momentum"):
            return Momentum(lr, momentum=options["momentum"], nesterov=bool(options.get("nesterov", False)))
        return SGD(lr)
    if key in ("momentum", "nesterov"):
        return Momentum(lr, momentum=options.get("momentum", 0.9), nesterov=key == "nesterov" or bool(options.get("nesterov")))
    return Adam(lr, **{k: options[k] for k in ("beta_1", "beta_2", "epsilon") if k in options})


# -- learning-rate schedules -----------------------------------------------------------------------
class Schedule:
    """α for epoch e (0-based) after t training examples seen: constant α₀."""

    name = "constant"
    #: Attributes that change as training goes (saved in checkpoints), as opposed to parameters.
    state_keys: tuple = ()

    def __call__(self, lr0: float, epoch: int, t: int) -> float:
        return lr0

    def end_epoch(self, loss: float, lr: float) -> None:
        """Called by the trainer after each epoch with its loss (validation loss if any) and α."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class StepDecay(Schedule):
    """α = α₀ · γ^⌊e / step⌋."""

    name = "step"

    def __init__(self, step: int = 10, gamma: float = 0.5) -> None:
        if isinstance(step, bool) or int(step) < 1:
            raise ConfigError(f"step must be ≥ 1 epoch, got {step!r}", "for example step=10")
        self.step, self.gamma = int(step), check_positive_float(gamma, "gamma")

    def __call__(self, lr0: float, epoch: int, t: int) -> float:
        return lr0 * self.gamma ** (epoch // self.step)


class ExponentialDecay(Schedule):
    """α = α₀ · γ^e."""

    name = "exponential"

    def __init__(self, gamma: float = 0.95) -> None:
        self.gamma = check_positive_float(gamma, "gamma")

    def __call__(self, lr0: float, epoch: int, t: int) -> float:
        return lr0 * self.gamma**epoch


class InverseScaling(Schedule):
    """α = α₀ / (t + 1)^p, t the number of training examples seen (scikit-learn's ``invscaling``)."""

    name = "invscaling"

    def __init__(self, power_t: float = 0.5) -> None:
        self.power_t = check_nonnegative_float(power_t, "power_t")

    def __call__(self, lr0: float, epoch: int, t: int) -> float:
        return lr0 / (t + 1) ** self.power_t


class Adaptive(Schedule):
    """α = α₀ / 5ᵏ after k plateaus (scikit-learn's ``adaptive``).

    With ``patience`` (the default, 5 epochs) the trainer reports each epoch's loss to
    :meth:`end_epoch`, and α is divided by ``factor`` once the loss has not fallen by more than
    ``tol`` for ``patience`` epochs in a row. With ``patience=None`` the schedule does not watch the
    loss itself: whoever does (the scikit-learn estimators, after ``n_iter_no_change`` epochs without
    improvement) calls :meth:`reduce`, which divides the current α by ``factor`` and returns True, or
    returns False once α has reached ``min_lr`` (time to stop).
    """

    name = "adaptive"
    state_keys = ("lr", "best", "stalls")

    def __init__(self, factor: float = 5.0, min_lr: float = 1e-6, patience: int | None = 5,
                 tol: float = 1e-4) -> None:
        self.factor = check_positive_float(factor, "factor")
        self.min_lr = check_nonnegative_float(min_lr, "min_lr")
        if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
            raise ConfigError(f"patience must be a whole number ≥ 1 or None, got {patience!r}", "for example patience=5")
        self.patience = patience
        self.tol = check_nonnegative_float(tol, "tol")
        self.lr = None  # None until the first reduction: α = α₀
        self.best = None  # the lowest loss reported to end_epoch
        self.stalls = 0  # epochs in a row without an improvement of more than tol

    def __call__(self, lr0: float, epoch: int, t: int) -> float:
        return lr0 if self.lr is None else self.lr

    def reduce(self, lr: float) -> bool:
        """α ← α / factor from the current α; False (and no change) once α ≤ min_lr."""
        if lr <= self.min_lr:
            return False
        self.lr = lr / self.factor
        return True

    def end_epoch(self, loss: float, lr: float) -> None:
        if self.patience is None:
            return
        if self.best is None or loss < self.best - self.tol:
            self.best, self.stalls = float(loss), 0
        else:
            self.stalls += 1
            if self.stalls >= self.patience and self.reduce(lr):
                self.stalls = 0

    def __repr__(self) -> str:
        return f"Adaptive(factor={self.factor:g}, min_lr={self.min_lr:g}, patience={self.patience})"


SCHEDULES = {"constant": Schedule, "step": StepDecay, "exponential": ExponentialDecay, "invscaling": InverseScaling,
             "adaptive": Adaptive}


def make_schedule(name: str | Schedule = "constant", **options: float | None) -> Schedule:
    """A schedule by name: constant, step (step, gamma), exponential (gamma), invscaling (power_t),
    adaptive (factor, min_lr)."""
    if isinstance(name, Schedule):
        return name
    key = str(name).strip().lower()
    if key not in SCHEDULES:
        raise unknown_name("learning-rate schedule", name, list(SCHEDULES))
    import inspect

    accepted = [p for p in inspect.signature(SCHEDULES[key]).parameters if p != "self"]
    wrong = [k for k in options if k not in accepted]
    if wrong:
        raise ConfigError(f"the {key} schedule has no option {', '.join(map(repr, wrong))}",
                          f"its options are {', '.join(accepted)}" if accepted else "it takes no options")
    return SCHEDULES[key](**options)
