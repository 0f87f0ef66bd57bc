"""Training: mini-batches, the training step, epochs, validation, early stopping, callbacks.

One step on a mini-batch B of m rows (note 002's ``W −= α/|B| · ...``, note 003's loop):

    1. Xb, Yb = rows B of X, Y (reshuffled every epoch from the seed)
    2. forward:  Z_l = A_{l−1} W_lᵀ + b_l, A_l = g_l(Z_l)
    3. cost:     J = (1/m) Σ loss_i + λ/(2m) Σ ‖W_l‖²
    4. backward: δ_L = (A_L − Y)/m, ..., (dW_l, db_l)
    5. update:   optimizer.step(params, grads)

Full-batch gradient descent, as in the notes, is ``batch_size=None``.

Rows are drawn in a fresh random order every epoch (``shuffle=True``), or by blocks
(``shuffle="blocks"``, :func:`block_order`): the blocks of ``block_rows`` consecutive rows in a random
order, the rows of each block in a random order. The block order is what data read from disk needs
(each block is read once per epoch, in one positioned read); ``X`` may then be a *row source* instead
of an array: any object with ``shape`` (m, n), ``dtype``, ``read(start, stop)`` returning rows
``start..stop−1`` as the network's inputs, and ``subset(rows)`` returning the source of those rows
(sorted row numbers), such as :class:`deltaprop.io.blocks.NpyRows`. The same seed gives the same
order, so a source and the same rows in memory train to the same weights, bit for bit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from deltaprop import fast, kernels, ops
from deltaprop.errors import ConfigError, DeltapropError, DivergenceError, InputError
from deltaprop.model import Network
from deltaprop.optim import SGD, Optimizer, Schedule, make_optimizer, make_schedule
from deltaprop.parallel import SplitStep
from deltaprop.validation import (
    check_nonnegative_float,
    check_positive_int,
    check_sample_weight,
    check_X,
    is_sparse,
)

if TYPE_CHECKING:
    from typing import Protocol

    import pandas as pd
    from numpy.typing import ArrayLike

    from deltaprop.validation import Rows

    class RowSource(Protocol):
        """Rows kept elsewhere (on disk), read on demand; see the module's docstring."""

        shape: tuple[int, int]
        dtype: np.dtype

        def read(self, start: int, stop: int) -> np.ndarray: ...

        def subset(self, rows: np.ndarray) -> RowSource: ...

__all__ = ["fit", "Trainer", "TrainOptions", "History", "Callback", "train_test_split", "block_order",
           "is_row_source", "BLOCK_ROWS"]

#: Rows per block of the block shuffle (``shuffle="blocks"``) unless told otherwise.
BLOCK_ROWS = 1024


@dataclass
class History:
    """What happened, epoch by epoch: one dict per epoch with ``epoch``, ``loss``, ``accuracy``
    (classifiers), ``val_loss``, ``val_accuracy`` (with validation data), ``val_loss_se`` (the standard
    error of the validation loss as a mean over its n rows, s/√n with s the standard deviation of the
    rows' losses: how far the figure moves with the rows drawn), ``lr``, ``time`` (seconds), and
    per-layer gradient-flow figures ``delta_norm`` and ``dW_norm`` (lists, layer 1 first, from the
    epoch's last batch, for the unscaled gradient of J)."""

    epochs: list = field(default_factory=list)
    best_epoch: int | None = None
    stop_reason: str = ""

    def _column(self, key):
        return [e.get(key) for e in self.epochs]

    @property
    def loss(self) -> list[float]:
        return self._column("loss")

    @property
    def val_loss(self) -> list[float | None]:
        return self._column("val_loss")

    @property
    def accuracy(self) -> list[float | None]:
        return self._column("accuracy")

    @property
    def val_accuracy(self) -> list[float | None]:
        return self._column("val_accuracy")

    def __len__(self) -> int:
        return len(self.epochs)

    def to_rows(self) -> list[dict]:
        """One flat dict per epoch (per-layer lists spread into ``delta_norm_1``, ``dW_norm_1``, ...)."""
        rows = []
        for e in self.epochs:
            row = {}
            for key, value in e.items():
                if isinstance(value, list):
                    for i, v in enumerate(value, 1):
                        row[f"{key}_{i}"] = v
                else:
                    row[key] = value
            rows.append(row)
        return rows

    def to_pandas(self) -> pd.DataFrame:
        """The history as a pandas DataFrame, one row per epoch indexed by ``epoch`` (the columns of
        :meth:`to_rows`). pandas is optional: ``pip install pandas``."""
        try:
            import pandas as pd
        except ImportError:
            raise ConfigError("History.to_pandas needs pandas, which is not installed",
                              "pip install pandas (or use history.to_rows())") from None
        frame = pd.DataFrame(self.to_rows())
        return frame.set_index("epoch") if "epoch" in frame.columns else frame

    def to_dict(self) -> dict:
        return {"epochs": [dict(e) for e in self.epochs], "best_epoch": self.best_epoch, "stop_reason": self.stop_reason}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        return cls(epochs=[dict(e) for e in d.get("epochs", [])], best_epoch=d.get("best_epoch"),
                   stop_reason=d.get("stop_reason", ""))

    def __repr__(self) -> str:
        if not self.epochs:
            return "History(no epochs)"
        last = self.epochs[-1]
        parts = [f"{len(self.epochs)} epochs", f"loss {last['loss']:.4g}"]
        for key in ("accuracy", "val_loss", "val_accuracy"):
            if last.get(key) is not None:
                parts.append(f"{key} {last[key]:.4g}")
        return "History(" + ", ".join(parts) + ")"


class Callback:
    """Hooks into the training loop. Set ``trainer.stop = True`` to end training after this epoch,
    ``trainer.halt = True`` to end it after this batch (resumable: see :class:`Trainer`).

    ``net.grads`` holds the batch's gradients in ``on_batch_end`` (and in ``on_epoch_end``, those of the
    epoch's last batch). A callback whose ``on_batch_end`` does not read them sets ``uses_grads = False``:
    when no batch hook uses them, plain SGD takes its step inside the backward pass without writing
    them (``Trainer.train_step(keep_grads=False)``)."""

    #: Whether on_batch_end reads net.grads (True unless a callback says otherwise).
    uses_grads = True

    def on_train_begin(self, trainer: Trainer) -> None: ...

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None: ...

    def on_batch_end(self, trainer: Trainer, batch: int, cost: float) -> None: ...

    def on_epoch_end(self, trainer: Trainer, logs: dict) -> None: ...

    def on_train_end(self, trainer: Trainer) -> None: ...


def train_test_split(X, y, test_fraction: float, rng: np.random.Generator, stratify: bool = True):
    """Rows split at random into (X_train, y_train, X_test, y_test), per class when ``stratify``."""
    n = X.shape[0]
    if stratify and y is not None and np.asarray(y).ndim == 1:
        test = []
        for c in np.unique(y):
            rows = np.flatnonzero(y == c)
            rows = rows[rng.permutation(rows.shape[0])]
            k = int(round(test_fraction * rows.shape[0]))
            test.append(rows[:k])
        test = np.sort(np.concatenate(test))
    else:
        test = np.sort(rng.permutation(n)[: int(round(test_fraction * n))])
    mask = np.ones(n, dtype=bool)
    mask[test] = False
    if test.shape[0] == 0 or mask.sum() == 0:
        raise InputError(f"{n} rows are too few to split {1 - test_fraction:.0%}/{test_fraction:.0%}: one side would be empty",
                         "use more rows or a different fraction")
    return X[mask], y[mask], X[test], y[test]


@dataclass
class TrainOptions:
    """How to train: the one home of the training defaults.

    :func:`fit`, :class:`Trainer` and ``deltaprop train`` share these defaults (the command's flags
    read them from here); the scikit-learn estimators keep scikit-learn's own (``solver='adam'``,
    ``batch_size=min(200, m)``, ``max_iter=200``, ``learning_rate_init=0.001``, ``alpha=0.0001``).

    ==================  ==============  ==========================================================
    field               default         meaning
    ==================  ==============  ==========================================================
    epochs              30              passes over the training rows
    batch_size          64              rows per step; None: full-batch gradient descent (the notes)
    optimizer           'adam'          'sgd', 'momentum', 'nesterov', 'adam', or an Optimizer
    lr                  None            α; None: 0.1 for sgd/momentum/nesterov, 0.001 for adam
    momentum            None            μ (0.9 for momentum/nesterov); with 'sgd' turns it into momentum
    schedule            'constant'      'constant', 'step', 'exponential', 'invscaling', 'adaptive'
    schedule_options    None            the schedule's parameters, e.g. {'step': 10, 'gamma': 0.5}
    l2                  0.0             λ in J = mean loss + λ/(2m) Σ‖W‖²
    validation_fraction 0.0             share of the rows held out for validation (the command: 0.1)
    early_stopping      None            patience in epochs; restores the best weights
    tol                 0.0             an improvement smaller than tol does not count
    shuffle             True            reshuffle the rows every epoch (True or 'rows'); 'blocks': blocks of
                                        block_rows rows in a random order, rows shuffled within (data on
                                        disk); False or 'none': keep the order
    block_rows          1024            rows per block of shuffle='blocks'
    seed                0               the random generator of shuffling and the validation split
    class_weight        None            'balanced' (m / (K·m_c), scikit-learn's meaning) or {class: w}
    scale_targets       True            regression (identity output): train on standardised targets,
                                        undone on predict; an exp (Poisson) output learns the counts
    threads             1               2: each batch split over two threads, one BLAS thread each
                                        (:mod:`deltaprop.parallel`); the same training up to rounding
    ==================  ==============  ==========================================================

    Build one with keywords (``TrainOptions(epochs=100, lr=0.01)``) and vary it with
    ``dataclasses.replace``; values are checked when the options are made.
    """

    epochs: int = 30
    batch_size: int | None = 64
    optimizer: str | Optimizer = "adam"
    lr: float | None = None
    momentum: float | None = None
    schedule: str | Schedule = "constant"
    schedule_options: dict | None = None
    l2: float = 0.0
    validation_fraction: float = 0.0
    early_stopping: int | None = None
    tol: float = 0.0
    shuffle: bool | str = True
    block_rows: int = BLOCK_ROWS
    seed: int = 0
    class_weight: str | dict | None = None
    scale_targets: bool = True
    threads: int = 1

    def __post_init__(self) -> None:
        self.epochs = check_positive_int(self.epochs, "epochs")
        if self.batch_size is not None:
            self.batch_size = check_positive_int(self.batch_size, "batch_size")
        self.l2 = check_nonnegative_float(self.l2, "l2")
        self.tol = check_nonnegative_float(self.tol, "tol")
        if self.early_stopping is not None:
            self.early_stopping = check_positive_int(self.early_stopping, "early_stopping patience")
        vf = self.validation_fraction
        if vf is None or isinstance(vf, bool) or not isinstance(vf, (int, float, np.integer, np.floating)) \
                or not (vf == 0 or 0 < float(vf) < 1):
            raise ConfigError(f"validation_fraction must lie in (0, 1), got {vf!r}",
                              "for example validation_fraction=0.1")
        self.validation_fraction = float(vf)
        cw = self.class_weight
        if cw is not None and cw != "balanced" and not isinstance(cw, dict):
            raise ConfigError(f"class_weight must be 'balanced', a dict {{class: weight}} or None, "
                              f"got {cw!r}",
                              "for example class_weight='balanced'")
        if self.shuffle not in (True, False, "rows", "blocks", "none"):
            raise ConfigError(f"shuffle must be True, False, 'rows' or 'blocks', got {self.shuffle!r}",
                              "shuffle='blocks' draws blocks of rows in a random order (data read from disk)")
        self.block_rows = check_positive_int(self.block_rows, "block_rows")
        self.scale_targets = bool(self.scale_targets)
        self.threads = check_positive_int(self.threads, "threads")
        if self.threads > 2:
            raise ConfigError(f"threads must be 1 or 2, got {self.threads!r}",
                              "threads=2 splits each batch over two threads; 1 runs the step on this one")

    @classmethod
    def of(cls, options: TrainOptions | None, overrides: dict) -> TrainOptions:
        """``options`` (or the defaults) with the fields in ``overrides`` replaced; an unknown name is
        refused with the valid ones listed."""
        if options is not None and not isinstance(options, TrainOptions):
            raise ConfigError(f"options must be a TrainOptions, got {type(options).__name__}",
                              "pass TrainOptions(...) or keyword arguments such as epochs=10")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise ConfigError(f"unknown training option(s) {', '.join(unknown)}",
                              "valid options: " + ", ".join(names) + "; and validation_data, sample_weight, "
                              "callbacks, rng, track_accuracy")
        if options is None:
            return cls(**overrides)
        return dataclasses.replace(options, **overrides) if overrides else options

    def to_dict(self) -> dict:
        """The options as plain values (an Optimizer or schedule object by its repr)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = v if v is None or isinstance(v, (str, int, float, bool, dict)) else repr(v)
        return out


def block_order(n: int, block_rows: int, rng: np.random.Generator) -> np.ndarray:
    """One epoch's row order under the block shuffle: the blocks [k·B, (k+1)·B) of B = ``block_rows``
    consecutive rows (the last may be shorter) in the order of ``rng.permutation`` of the block
    numbers, the rows of each block in the order of a further ``rng.permutation``, block by block."""
    B = check_positive_int(block_rows, "block_rows")
    parts = []
    for k in rng.permutation(-(-n // B)):
        start = int(k) * B
        parts.append(start + rng.permutation(min(B, n - start)))
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def is_row_source(X) -> bool:
    """True for a row source (see the module's docstring) rather than an array."""
    return all(hasattr(X, name) for name in ("read", "subset", "shape", "dtype")) and not isinstance(X, np.ndarray)


def _rows(X, start: int, stop: int):
    """Rows start..stop−1 of an array or a row source."""
    return X.read(start, stop) if is_row_source(X) else X[start:stop]


class _BlockCache:
    """Gathers batches of a row source under the block shuffle: reads whole blocks, keeps the last
    two (a batch spans at most two blocks when B ≥ the batch size), takes the batch's rows from them."""

    def __init__(self, source, block_rows: int):
        self.source, self.B = source, block_rows
        self.blocks: dict[int, np.ndarray] = {}

    def block(self, k: int) -> np.ndarray:
        rows = self.blocks.get(k)
        if rows is None:
            if len(self.blocks) >= 2:
                del self.blocks[next(iter(self.blocks))]
            start = k * self.B
            rows = self.blocks[k] = self.source.read(start, min(start + self.B, self.source.shape[0]))
        return rows

    def gather(self, idx, out) -> np.ndarray:
        which = idx // self.B
        first = int(which[0])
        if int(which[-1]) == first and np.all(which == first):  # the usual case: one block
            return fast.take_rows(self.block(first), idx - first * self.B, out)
        for k in dict.fromkeys(which.tolist()):  # the blocks in the batch's order
            sel = which == k
            out[sel] = self.block(k)[idx[sel] - k * self.B]
        return out


class Trainer:
    """The training loop with its state: the network, the optimizer, the random generator, the
    epoch count and the history. ``state_dict`` and ``load_state_dict`` capture all of it, so that a
    run stopped after any batch continues bit for bit.

    ``Trainer(net, X, y, options)`` takes a :class:`TrainOptions` (or its defaults), single fields
    overridden by keyword (``Trainer(net, X, y, epochs=5)``), and what is not an option but data or a
    live object: ``validation_data=(Xv, yv)``, ``sample_weight``, ``callbacks``, ``rng`` (a
    Generator instead of one seeded with ``options.seed``) and ``track_accuracy``.

    ``stop = True`` ends training after the current epoch; ``halt = True`` (what the SIGINT/SIGTERM
    handler of :func:`deltaprop.io.checkpoint.interruptible` sets) ends it after the batch in flight, with
    ``interrupted`` True and the epoch part-done; ``run()`` again (or a fresh Trainer given the saved
    ``state_dict``) takes the next batch of the same shuffled order.

    A non-finite cost, or weights that turn non-finite during an epoch, raise DivergenceError naming
    the epoch and batch, after rolling weights and optimizer state back to the start of the epoch
    (or the point where the run resumed): the last state known to be finite.

    A run long enough to repay it loads the compiled kernels first (:mod:`deltaprop.kernels`, with the
    ``fast`` extra); ``load_seconds`` says how long that took (Numba compiles them on a machine's first
    such run, and loads them from its cache after)."""

    def __init__(self, net: Network, X: Rows | RowSource, y: ArrayLike, options: TrainOptions | None = None,
                 *, validation_data: tuple[Rows, ArrayLike] | None = None,
                 sample_weight: ArrayLike | None = None, callbacks: Iterable[Callback] = (),
                 rng: np.random.Generator | None = None, track_accuracy: bool = True,
                 **overrides: Any) -> None:
        options = TrainOptions.of(options, overrides)
        self.options = options
        self.net = net
        self.threads = options.threads
        self._split = None  # the two-thread step (deltaprop.parallel) while run() runs with threads=2
        self._split_last = False  # whether the last step was split
        self.epochs = options.epochs
        self.l2 = options.l2
        self.tol = options.tol
        self.shuffle = {"rows": True, "none": False}.get(options.shuffle, options.shuffle)
        self.block_rows = options.block_rows
        self.rng = rng if rng is not None else np.random.default_rng(options.seed)
        self.callbacks = list(callbacks)
        self.track_accuracy = bool(track_accuracy) and net.is_classifier
        if isinstance(options.optimizer, Optimizer):
            self.optimizer = options.optimizer
        else:
            # 'sgd' stays the notes' plain θ −= α g unless a momentum is asked for; 'momentum' and
            # 'nesterov' default to μ = 0.9.
            momentum = options.momentum
            self.optimizer = make_optimizer(options.optimizer, options.lr,
                                            **({} if momentum is None else {"momentum": momentum}))
        self.lr0 = self.optimizer.lr
        self.schedule = make_schedule(options.schedule, **(options.schedule_options or {}))
        self.patience = options.early_stopping
        validation_fraction = options.validation_fraction

        source = is_row_source(X)
        if source:
            _check_source(X, net, "X")
            if self.shuffle is True:
                raise ConfigError("rows read from a row source are shuffled by blocks, not one by one "
                                  "(that would read every row from a different place)", "pass shuffle='blocks'")
        else:
            X = check_X(X, net.sizes[0], net.dtype)
        y = _labels_for(net, np.asarray(y))
        if y.shape[0] != X.shape[0]:
            raise InputError(f"X has {X.shape[0]} rows but y has {y.shape[0]}", "pass one target per example")
        sw = None if sample_weight is None else check_sample_weight(sample_weight, X.shape[0], net.dtype)
        if validation_data is None and validation_fraction:
            # Split row numbers, so that the sample weights follow their rows.
            train, _, test, _ = train_test_split(np.arange(X.shape[0]), y, float(validation_fraction), self.rng,
                                                 stratify=net.is_classifier and y.ndim == 1)
            if source:
                X, y, Xv, yv = X.subset(train), y[train], X.subset(test), y[test]
            else:
                X, y, Xv, yv = X[train], y[train], X[test], y[test]
            sw = None if sw is None else sw[train]
            validation_data = (Xv, yv)
        if options.class_weight is not None:
            cw = _class_weights(net, y, options.class_weight)
            sw = cw if sw is None else sw * cw
        self.sample_weight = sw
        self._sparse = is_sparse(X)
        self.X = X if (source or self._sparse) else np.ascontiguousarray(X)  # sparse X stays CSR (check_X)
        self._blocks = _BlockCache(X, self.block_rows) if source else None
        self.target_scaling = None
        # Only an identity output learns standardised targets: counts of an exp (Poisson) output would go
        # below 0, and its predictions A·std + mean, with A = e^z > 0, could never fall below the mean.
        if not net.is_classifier and (net.meta.get("target_scaling")
                                      or (options.scale_targets and net.activations[-1] == "identity")):
            self.target_scaling = _target_scaling(net, y)
        self.Y = self._prepare(y)
        if self.Y.shape[1] <= fast.NARROW:
            # A narrow output layer keeps Z, A and δ_L column-major (fast.narrow_order): its targets too, so
            # that δ_L = A − Y and the cost's sums run over contiguous columns (batches gathered by column).
            self.Y = np.ascontiguousarray(self.Y.T).T
        # Accuracy: the right class for softmax and one sigmoid unit; every label right for several
        # sigmoid units (multi-label, "subset accuracy").
        self.multilabel = net.activations[-1] == "sigmoid" and net.sizes[-1] > 1
        self.labels = _predicted_labels(self.Y) if self.track_accuracy else None
        self.val = None
        if validation_data is not None:
            Xv, yv = validation_data
            if is_row_source(Xv):
                _check_source(Xv, net, "validation X")
            else:
                Xv = check_X(Xv, net.sizes[0], net.dtype, what="validation X")
            Yv = self._prepare(_labels_for(net, np.asarray(yv)))
            if Yv.shape[0] != Xv.shape[0]:
                raise InputError(f"validation X has {Xv.shape[0]} rows but y has {Yv.shape[0]}",
                                 "pass one target per example")
            self.val = (Xv, Yv)
        n = self.X.shape[0]
        self.batch_size = n if options.batch_size is None else min(options.batch_size, n)
        self.history = History()
        self.epoch = 0  # epochs completed
        self.t = 0  # training examples seen
        self.stop = False  # set by early stopping or a callback: end after this epoch
        # Stopping after any batch and continuing from the next one: ``halt`` (a signal handler may set
        # it) ends run() after the batch in flight, leaving the epoch part-done: ``batch`` batches of
        # this epoch's ``_order`` taken, their summed cost, correct count and seconds in ``_partial``.
        self.halt = False
        self.interrupted = False
        self.batch = 0
        self._order = None
        self._partial = (0.0, 0, 0.0)
        self._best = None  # (score, epoch, weights)
        self._since_best = 0
        self._fingerprint = None
        self._compiled = False  # steps by Network.compiled_step (set by run)
        self._right = None  # right answers of the last batch, when its compiled step counted them
        self.load_seconds = 0.0  # what run() spent loading the compiled kernels before the first batch
        self._xbuf: dict[int, np.ndarray] = {}
        self._ybuf: dict[int, np.ndarray] = {}

    def _prepare(self, y) -> np.ndarray:
        """Targets as the loss works with them: one-hot classes, or values standardised with the
        network's target scaling (when it has one)."""
        Y = self.net.prepare_targets(y)
        if self.target_scaling is not None:
            mean, std = self.target_scaling
            Y = ((Y - mean) / std).astype(Y.dtype, copy=False)
        return Y

    # -- one step ----------------------------------------------------------------------------------
    def train_step(self, Xb: Rows, Yb: np.ndarray, sample_weight: np.ndarray | None = None,
                   keep_grads: bool = True) -> float:
        """Forward, cost, backward and update on one batch (rows weighted by ``sample_weight`` if
        given); returns J of the batch before the update.

        ``keep_grads=False`` lets plain SGD take its step inside the backward pass
        (``Network.backward(sgd_step=True)``: the same step, no gradient arrays written, so
        ``net.grads`` is left as it was). The loop asks for the gradients on each epoch's last batch, for
        its gradient-flow figures, and on every batch when a batch callback uses them
        (:attr:`Callback.uses_grads`)."""
        net, opt = self.net, self.optimizer
        # θ −= α g with α folded into δ_L = α(A − Y)/m: the gradients come out already scaled.
        scale = opt.lr if opt.folds_lr else 1.0
        split = self._split
        self._split_last = split is not None and split.usable(net, Xb.shape[0], sample_weight, self._sparse)
        self._right = None
        sgd_step = not keep_grads and type(opt) is SGD
        done = None
        if self._compiled and sample_weight is None and not self._split_last:
            done = net.compiled_step(Xb, Yb, scale, self.l2, sgd_step=sgd_step)
        if done is not None:  # the same arithmetic to the bit, in a few compiled calls
            cost, self._right = done
            if sgd_step:
                opt.t += 1  # as SGD.apply counts its steps
                return cost
            grads = net.grads
        elif sgd_step and not self._split_last:
            net.forward(Xb, cache=True, check=False)
            if sample_weight is not None and not sample_weight.any():
                return 0.0  # as below: nothing to learn from rows that all weigh 0
            cost = net.cached_cost(Yb, self.l2, sample_weight)
            net.backward(Yb, self.l2, scale=scale, sample_weight=sample_weight, sgd_step=True)
            opt.t += 1  # as SGD.apply counts its steps
            return cost
        elif self._split_last:
            cost = split.run(Xb, Yb, self.l2, scale)  # both halves' gradients summed into net.flat_grads()
            grads = net.grads
        else:
            net.forward(Xb, cache=True, check=False)
            if sample_weight is not None and not sample_weight.any():
                # Every row weighs 0: the batch carries nothing to learn and J_B = Σ s·loss / Σ s is
                # undefined, so no update (the whole set's weights are checked to sum above 0). The
                # forward pass above still lets the epoch's accuracy count these rows.
                return 0.0
            cost = net.cached_cost(Yb, self.l2, sample_weight)
            grads = net.backward(Yb, self.l2, scale=scale, sample_weight=sample_weight)
        params, flat_grads = net.flat_params(), net.flat_grads()
        if params is not None and flat_grads is not None:
            params, grads = [params], [flat_grads]  # the whole network as one array: a few passes
        else:
            params, grads = net.params(), [g for pair in grads for g in pair]
        (opt.apply if opt.folds_lr else opt.step)(params, grads)
        return cost

    def _gather(self, idx):
        """Rows idx of X and Y into reused buffers (:func:`deltaprop.fast.take_rows`); Y's rows in Y's
        layout (column-major for a narrow output, see ``__init__``)."""
        m = idx.shape[0]
        yb = self._ybuf.get(m)
        if yb is None:
            yb = self._ybuf[m] = np.empty((m, self.Y.shape[1]), dtype=self.Y.dtype,
                                          order="F" if self.Y.flags.f_contiguous else "C")
        if yb.flags.c_contiguous:
            fast.take_rows(self.Y, idx, yb)
        else:  # column-major: columns idx of the row-major Yᵀ
            self.Y.T.take(idx, axis=1, out=yb.T, mode="clip")  # the method: no np.take wrapper in Python
        if self._sparse:  # CSR rows: a small sparse batch, the whole matrix never densified
            return self.X[idx], yb
        xb = self._xbuf.get(m)
        if xb is None:
            xb = self._xbuf[m] = np.empty((m, self.X.shape[1]), dtype=self.X.dtype)
        if self._blocks is not None:
            self._blocks.gather(idx, xb)
        else:
            fast.take_rows(self.X, idx, xb)
        return xb, yb

    def _correct(self, idx, Yb) -> int:
        """How many rows of the last batch the network got right (labels precomputed once; counted
        already by a compiled step)."""
        if self._right is not None:
            return self._right
        labels = self.labels if idx is None else self.labels[idx]
        if self._split_last:
            return sum(_n_correct(A, Yb[s:s + A.shape[0]], labels[s:s + A.shape[0]], self.multilabel)
                       for A, s in self._split.outputs())
        return _n_correct(self.net.layers[-1].A, Yb, labels, self.multilabel)

    # -- evaluation --------------------------------------------------------------------------------
    def evaluate(self, X: Rows | RowSource, Y: np.ndarray) -> tuple[float, float | None]:
        """(J without the L2 term, accuracy) on prepared data, in chunks to bound memory."""
        loss, accuracy, _ = self._evaluate(X, Y)
        return loss, accuracy

    def _evaluate(self, X, Y, spread: bool = False) -> tuple[float, float | None, float | None]:
        """:meth:`evaluate`, and with ``spread`` the standard error of the loss as a mean over the m rows,
        s/√m (s: the sample standard deviation of loss_i; None below 2 rows or for a loss without
        ``rows``). The loss itself is the same sum as without it, bit for bit."""
        net = self.net
        total, correct, m = 0.0, 0, X.shape[0]
        per_row: list | None = [] if spread and m >= 2 else None
        for start in range(0, m, 4096):
            xb, yb = _rows(X, start, min(start + 4096, m)), Y[start:start + 4096]
            Z, A = net.logits(xb)
            total += net.loss.value(Z, A, yb)
            if per_row is not None:
                try:
                    per_row.append(np.asarray(net.loss.rows(Z, A, yb), dtype=np.float64).reshape(-1))
                except NotImplementedError:  # a loss of the caller's own with no per-row form
                    per_row = None
            if self.track_accuracy:
                correct += _n_correct(A, yb, _predicted_labels(yb), self.multilabel)
        se = None
        if per_row:
            with np.errstate(over="ignore", invalid="ignore"):
                s = float(np.std(np.concatenate(per_row), ddof=1))
            se = s / math.sqrt(m) if math.isfinite(s) else None
        return total / m, (correct / m if self.track_accuracy else None), se

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> History:
        """Train until ``epochs`` epochs are done, early stopping fires, or a callback stops it."""
        # Overflow on the way to divergence is detected from the cost and reported as a
        # DivergenceError; NumPy's RuntimeWarnings would only repeat it less clearly.
        sizes = self.net.sizes
        step_macs = self.batch_size * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        if self.threads == 2 and SplitStep.usable(self.net, self.batch_size, self.sample_weight,
                                                  self._sparse):
            self._split = SplitStep(self.net)
            self.optimizer.halves = self._split  # element-wise updates over two halves, same bits
            step_macs = 0  # one BLAS thread in each of the two threads
        self._compiled = False
        loading = time.perf_counter()
        steps = max(0, self.epochs - self.epoch) * -(-self.X.shape[0] // self.batch_size)  # left in this run
        if self._split is None and not self._sparse and self.sample_weight is None and self.net.compiled_step_fits():
            # The step's forward and backward passes in a few compiled calls when the run is long enough
            # to repay loading them (the same bits).
            if kernels.worth_loading_step(steps):
                self._compiled = kernels.load_step(self.net.dtype)
        if not self.optimizer.folds_lr:  # Adam, momentum: one compiled update loop when it pays (same bits)
            if kernels.worth_loading(steps * self.net.n_params):
                kind = "nesterov" if getattr(self.optimizer, "nesterov", False) else self.optimizer.name
                kernels.load(kind, self.net.dtype)
        self.load_seconds = time.perf_counter() - loading
        try:
            with np.errstate(over="ignore", invalid="ignore"), fast.blas_threads_for(step_macs):
                return self._run()
        finally:
            if self._split is not None:
                self._split.close()
                self.optimizer.halves = None
            self._split = None

    def _run(self) -> History:
        cbs = self.callbacks
        batch_cbs = [cb for cb in cbs if type(cb).on_batch_end is not Callback.on_batch_end]
        grads_used = any(getattr(cb, "uses_grads", True) for cb in batch_cbs)
        for cb in cbs:
            cb.on_train_begin(self)
        n, bs = self.X.shape[0], self.batch_size
        full_batch = bs >= n
        n_batches = -(-n // bs)
        self.interrupted = False
        if not self.stop:  # continuing after an interruption or a divergence: the old reason is void
            self.history.stop_reason = ""
        while self.epoch < self.epochs and not self.stop and not self._halted():
            epoch = self.epoch
            for cb in cbs:
                cb.on_epoch_begin(self, epoch)
            if self.batch == 0:  # a fresh epoch, not the rest of an interrupted one
                self.optimizer.lr = self.schedule(self.lr0, epoch, self.t)
                self._order = self._epoch_order(n, full_batch)
                self._partial = (0.0, 0, 0.0)
            good = self._known_good()
            cost_sum, correct, seconds = self._partial
            started = time.perf_counter()
            for b in range(self.batch, n_batches):
                idx, Xb, Yb, sw = self._batch(b)
                m = Xb.shape[0]
                cost = self.train_step(Xb, Yb, sw, keep_grads=grads_used or b == n_batches - 1)
                if not math.isfinite(cost):
                    self._diverged(good)
                cost_sum += cost * m
                if self.track_accuracy:
                    correct += self._correct(idx, Yb)
                self.t += m
                self.batch = b + 1
                for cb in batch_cbs:
                    cb.on_batch_end(self, b, cost)
                if self.halt and self.batch < n_batches and self._halted():
                    break
            if self.interrupted:
                self._partial = (cost_sum, correct, seconds + time.perf_counter() - started)
                break
            # A finite cost can precede a non-finite update (an overflowing gradient): the batch's cost
            # check misses it when it is the epoch's last, so check the weights once per epoch.
            if not self._finite_weights():
                self._diverged(good)
            self.batch, self._order = 0, None
            logs = {"epoch": epoch + 1, "loss": cost_sum / n}
            if self.track_accuracy:
                logs["accuracy"] = correct / n
            if self.val is not None:
                val = self._evaluate(*self.val, spread=True)
                logs["val_loss"], logs["val_accuracy"], logs["val_loss_se"] = val
                for key in ("val_accuracy", "val_loss_se"):
                    if logs[key] is None:
                        del logs[key]
            logs["lr"] = self.optimizer.lr
            logs["time"] = seconds + time.perf_counter() - started
            logs.update(self._gradient_flow())
            self.history.epochs.append(logs)
            self.schedule.end_epoch(logs.get("val_loss", logs["loss"]), self.optimizer.lr)
            self.epoch += 1
            self._early_stopping(logs)
            for cb in cbs:
                cb.on_epoch_end(self, logs)
        self.halt = False
        if self.interrupted:
            where = f"after batch {self.batch} of epoch {self.epoch + 1}" if self.batch else f"after epoch {self.epoch}"
            self.history.stop_reason = f"interrupted {where}"
        elif self._best is not None and self.patience is not None:
            self.net.set_weights(self._best[2])
            self.history.best_epoch = self._best[1]
        for cb in cbs:
            cb.on_train_end(self)
        return self.history

    def _epoch_order(self, n: int, full_batch: bool):
        """This epoch's row order (None: rows in their stored order), drawn from ``rng``."""
        if not self.shuffle or full_batch:
            return None
        if self.shuffle == "blocks":
            return block_order(n, self.block_rows, self.rng)
        return self.rng.permutation(n)

    def _halted(self) -> bool:
        """True once (and then ``interrupted``) when ``halt`` was set: stop with the state resumable."""
        if self.halt and self.epoch < self.epochs and not self.stop:
            self.halt, self.interrupted = False, True
        return self.interrupted

    # -- divergence --------------------------------------------------------------------------------
    def _known_good(self) -> tuple:
        """What a divergence rolls back to: the state at the start of this epoch (or where it resumed)."""
        return (self.net.get_weights(), self.optimizer.state_dict(), self.t, self.batch, self._partial)

    def _roll_back(self, good) -> None:
        weights, opt_state, self.t, self.batch, self._partial = good
        self.net.set_weights(weights)
        self.optimizer.load_state_dict(opt_state)

    def _finite_weights(self) -> bool:
        return all(fast.all_finite(p) for p in self.net.params())

    def _batch(self, b: int):
        """(idx, Xb, Yb, sample weights or None) of batch b of this epoch: rows
        ``_order[b·bs : (b+1)·bs]`` (idx None: all rows)."""
        n, bs, sw = self.X.shape[0], self.batch_size, self.sample_weight
        if bs >= n and self._blocks is None:
            return None, self.X, self.Y, sw
        start = b * bs
        idx = self._order[start:start + bs] if self._order is not None else np.arange(start, min(start + bs, n))
        return (idx, *self._gather(idx), None if sw is None else sw[idx])

    def _first_bad_batch(self, good) -> tuple[int, str]:
        """Replay the epoch from the known-good state, checking the cost and the weights after every
        batch, to name the first batch that went wrong and how (run only after a divergence)."""
        self._roll_back(good)
        n_batches = -(-self.X.shape[0] // self.batch_size)
        for b in range(self.batch, n_batches):
            cost = self.train_step(*self._batch(b)[1:], keep_grads=b == n_batches - 1)  # as _run steps
            if not math.isfinite(cost):
                return b, f"the cost became {cost}"
            if not self._finite_weights():
                return b, (f"the update made the weights NaN or infinite although the cost ({cost:.4g}) was "
                           "finite: a gradient overflowed")
        return n_batches - 1, "the weights became NaN or infinite"  # not reproduced: cannot happen

    def _diverged(self, good):
        """Find where it went wrong, roll back to the last finite state, raise DivergenceError."""
        b, what = self._first_bad_batch(good)
        self._roll_back(good)
        epoch = self.epoch + 1
        since = f"the start of epoch {epoch}" if good[3] == 0 else f"batch {good[3]} of epoch {epoch}, where the run resumed"
        self.history.stop_reason = f"diverged at epoch {epoch}, batch {b + 1}"
        raise DivergenceError(
            f"training diverged at epoch {epoch}, batch {b + 1}: {what} (learning rate {self.optimizer.lr:g})",
            "lower the learning rate (try a tenth of it), scale the inputs, or add L2; "
            f"the weights were restored to those at {since}, the last known to be finite",
            history=self.history, epoch=epoch, batch=b + 1,
        )

    def _gradient_flow(self) -> dict:
        """‖δ_l‖ and ‖dW_l‖ (Frobenius) of the last batch, for the unscaled gradient of J."""
        scale = self.optimizer.lr if self.optimizer.folds_lr else 1.0
        grads = self.net.grads
        deltas = (self._split.delta_norms() if self._split_last and self._split is not None
                  else [_norm(layer.delta) for layer in self.net.layers])
        return {
            "delta_norm": [d / scale for d in deltas],
            "dW_norm": [_norm(dW) / scale for dW, _ in grads],
        }

    def _early_stopping(self, logs: dict) -> None:
        if self.patience is None:
            return
        score = logs.get("val_loss", logs["loss"])
        if self._best is None or score < self._best[0] - self.tol:
            self._best = (score, logs["epoch"], self.net.get_weights())
            self._since_best = 0
        else:
            self._since_best += 1
            if self._since_best >= self.patience:
                self.stop = True
                which = "validation loss" if "val_loss" in logs else "training loss"
                self.history.stop_reason = (f"early stopping: no improvement of the {which} for {self.patience} "
                                            f"epochs; restored the weights of epoch {self._best[1]}")

    # -- checkpoints -------------------------------------------------------------------------------
    def data_fingerprint(self) -> dict:
        """Shape and a hash of up to 4096 evenly spaced training rows (and their targets and weights):
        cheap for any data set, and different when the data, its scaling or the validation split differ.
        Computed once: a trainer's data never changes."""
        if self._fingerprint is None:
            X, Y, sw = self.X, self.Y, self.sample_weight
            step = max(1, X.shape[0] // 4096)
            h = hashlib.blake2b(digest_size=16)
            sample = X.subset(np.arange(0, X.shape[0], step)).read(0, X.shape[0]) if self._blocks is not None \
                else X[::step]
            for arr in (sample, Y[::step]) + (() if sw is None else (sw[::step],)):
                h.update(str(arr.dtype).encode())
                h.update(np.ascontiguousarray(arr).tobytes())
            self._fingerprint = {"rows": int(X.shape[0]), "features": int(X.shape[1]), "outputs": int(Y.shape[1]),
                                 "hash": h.hexdigest()}
        return self._fingerprint

    # The optimizers' per-parameter state (velocities, Adam's moments): one flat array while training,
    # one array per W_l and b_l in checkpoints (the layout checkpoints have always had).
    _OPTIMIZER_ARRAYS = ("velocities", "ms", "vs")

    def _optimizer_state(self, saved: dict | None = None) -> dict:
        """The optimizer's state split per parameter (``saved`` None), or ``saved`` joined into the flat
        layout the optimizer uses for this network."""
        params = self.net.params()
        flat = self.net.flat_params() is not None
        state = dict(self.optimizer.state_dict() if saved is None else saved)
        for key in self._OPTIMIZER_ARRAYS:
            arrays = state.get(key)
            if arrays is None:
                continue
            if saved is None and len(arrays) == 1 and len(params) > 1:
                bounds = np.cumsum([0] + [p.size for p in params])
                state[key] = [arrays[0][a:b].reshape(p.shape).copy() for a, b, p in zip(bounds, bounds[1:], params)]
            elif saved is not None and flat and len(arrays) == len(params) > 1:
                state[key] = [np.concatenate([np.asarray(a, dtype=self.net.dtype).ravel() for a in arrays])]
        return state

    def state_dict(self) -> dict:
        """Weights, optimizer state, random generator state, epoch, history, early-stopping state and
        the position inside an interrupted epoch: enough to continue exactly, bit for bit."""
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "order": None if self._order is None else self._order.copy(),
            "partial": list(self._partial),
            "stop": self.stop,
            "t": self.t,
            "weights": self.net.get_weights(),
            "optimizer": self._optimizer_state(),
            "lr0": self.lr0,
            "schedule": dict(vars(self.schedule)),  # its parameters, and the state of 'adaptive'
            "rng": self.rng.bit_generator.state,
            "history": self.history.to_dict(),
            "best": None if self._best is None else {"score": self._best[0], "epoch": self._best[1],
                                                      "weights": [(W.copy(), b.copy()) for W, b in self._best[2]]},
            "since_best": self._since_best,
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state["epoch"])
        self.batch = int(state.get("batch", 0))
        order = state.get("order")
        self._order = None if order is None else np.array(order, dtype=np.int64)
        self._partial = tuple(state.get("partial", (0.0, 0, 0.0)))
        self.stop = bool(state.get("stop", False))
        self.t = int(state["t"])
        self.net.set_weights(state["weights"])
        self.optimizer.load_state_dict(self._optimizer_state(state["optimizer"]))
        self.lr0 = float(state["lr0"])
        own = vars(self.schedule)
        own.update({k: v for k, v in state.get("schedule", {}).items() if k in own})
        self.rng.bit_generator.state = state["rng"]
        self.history = History.from_dict(state["history"])
        best = state.get("best")
        self._best = None if best is None else (best["score"], best["epoch"], best["weights"])
        self._since_best = int(state.get("since_best", 0))


def _check_source(X, net: Network, what: str) -> None:
    """A row source's shape and dtype against the network (its rows are checked as they are read)."""
    shape = tuple(X.shape)
    if len(shape) != 2 or shape[0] < 1:
        raise InputError(f"{what} has shape {shape}; expected (m ≥ 1 examples, n features)", "pass rows of features")
    if shape[1] != net.sizes[0]:
        raise InputError(f"{what} has {shape[1]} features per row, but the network expects {net.sizes[0]}",
                         "use the same columns (and preprocessing) as when the network was built")
    if np.dtype(X.dtype) != net.dtype:
        raise InputError(f"{what} gives {np.dtype(X.dtype).name} rows, but the network computes in {net.dtype.name}",
                         "read the rows as the network's dtype")


def _norm(a) -> float:
    """Frobenius norm as one dot product (np.linalg.norm costs several microseconds more per call);
    vdot takes any shape and layout, and math.sqrt of the float skips a NumPy scalar."""
    return math.sqrt(float(np.vdot(a, a)))


def _n_correct(A, Y, labels, multilabel: bool) -> int:
    """Rows whose prediction from A matches the targets Y (labels = Y's class indices)."""
    if multilabel:
        return int(np.count_nonzero(np.all((A > 0.5) == (Y > 0.5), axis=1)))
    if A.shape[1] == 1:
        return int(np.count_nonzero((A[:, 0] > 0.5) == labels))
    # The right class holds the row maximum: cheaper than argmax along the short axis.
    right = A[np.arange(A.shape[0]), labels]
    return int(np.count_nonzero(right >= ops.row_max(A)[:, 0]))


def _predicted_labels(A):
    """Class index per row: argmax for several columns, A > ½ for one."""
    if A.shape[1] == 1:
        return (A[:, 0] > 0.5).astype(np.int64)
    return np.argmax(A, axis=1)


def fit(net: Network, X: Rows | RowSource, y: ArrayLike, options: TrainOptions | None = None,
        **overrides: Any) -> History:
    """Train ``net`` on (X, y) and return the History.

    ``options`` is a :class:`TrainOptions` (its defaults are the command's: Adam, batches of 64, 30
    epochs); keyword arguments override single fields (``fit(net, X, y, epochs=100, lr=0.01)``), and
    the runtime arguments of :class:`Trainer` pass through (``validation_data``, ``sample_weight``,
    ``callbacks``, ``rng``). ``sample_weight`` gives one weight per row of X: the training cost is the
    weighted mean; validation loss and accuracy stay plain means over the validation rows.

    Targets: for a classifier, class indices 0..K−1, a one-hot matrix, or text labels (their sorted
    names are kept in ``net.meta["classes"]``; :meth:`Network.predict_labels` gives them back). For a
    regression network (identity output), numbers; they are standardised for training and the
    scaling kept in ``net.meta["target_scaling"]``, so that ``net.predict`` gives values in the
    targets' units (``scale_targets=False`` trains on the raw values). The targets must fit the
    network: text needs a classifier, numbers with a fractional part a regression network
    (:mod:`deltaprop.targets` holds the rule the command uses to guess the task).

    ``threads=2`` splits each batch of 64 rows or more over two Python threads with one BLAS thread
    each (:mod:`deltaprop.parallel`): the same training up to float32 rounding.

    ``deltaprop.fit`` (the package's) adds ``progress=True``: a progress bar drawn outside the engine.
    """
    return Trainer(net, X, y, options, **overrides).run()


def _labels_for(net: Network, y: np.ndarray) -> np.ndarray:
    """1-d targets checked against the network's task and text labels turned into class indices
    (names from ``net.meta["classes"]``, or set there in sorted order)."""
    if y.ndim != 1:
        return y
    from deltaprop.targets import encode_targets

    if not net.is_classifier:
        if y.dtype.kind in "USOb":
            example = str(y[0]) if y.shape[0] else ""
            raise InputError(f"the network has an identity output (regression) but the targets are labels "
                             f"(e.g. {example!r})",
                             "build a classifier (output='softmax' or 'sigmoid') for labels")
        return y
    if y.dtype.kind == "f" and not (np.all(np.isfinite(y)) and np.all(np.mod(y, 1) == 0)):
        bad = y[~(np.isfinite(y) & (np.mod(y, 1) == 0))][0]
        raise InputError(f"class labels must be whole numbers, got {bad!r}: these targets look like values "
                         "to regress",
                         "pass integer labels 0..K−1, or build a regression network (output='identity')")
    if y.dtype.kind not in "USO":
        return y
    known = net.meta.get("classes")
    n_out = net.sizes[-1]
    k = 2 if n_out == 1 else n_out
    if known:
        try:
            return encode_targets(y, "classification", known)[0]
        except DeltapropError as exc:
            raise InputError(exc.message,
                             "pass labels among the network's classes (net.meta['classes'])") from None
    codes, names = encode_targets(y, "classification")
    if len(names) > k:
        raise InputError(f"the labels name {len(names)} classes ({', '.join(names[:8])}"
                         f"{', ...' if len(names) > 8 else ''}) but the network has {n_out} output unit(s)",
                         f"build the network with {len(names)} output units")
    net.meta["classes"] = names
    return codes


def _class_weights(net: Network, y: np.ndarray, class_weight) -> np.ndarray:
    """One weight per row from its class: 'balanced' gives class c the weight m / (K · m_c) (scikit-
    learn's meaning: K classes present, m_c rows of class c); a dict maps class (index or name) to weight."""
    if not net.is_classifier:
        raise ConfigError("class_weight is for classifiers; this network regresses", "leave class_weight out")
    if y.ndim == 2 and y.shape[1] > 1:
        if net.activations[-1] == "sigmoid":
            raise ConfigError("class_weight is not defined for several sigmoid outputs (multi-label)",
                              "pass sample_weight instead")
        labels = np.argmax(y, axis=1)
    else:
        labels = np.asarray(y).reshape(-1).astype(np.int64)
    if isinstance(class_weight, str):
        present, counts = np.unique(labels, return_counts=True)
        per_class = np.zeros(int(labels.max()) + 1)
        per_class[present] = labels.shape[0] / (present.shape[0] * counts)
        return per_class[labels]
    names = [str(c) for c in (net.meta.get("classes") or [])]
    k = 2 if net.sizes[-1] == 1 else net.sizes[-1]
    per_class = np.ones(k)
    for key, weight in dict(class_weight).items():
        index = names.index(str(key)) if str(key) in names else key
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < k:
            raise ConfigError(f"class_weight names the class {key!r}, which the network does not have",
                              f"use class indices 0..{k - 1}" + (f" or the names {names}" if names else ""))
        per_class[int(index)] = check_nonnegative_float(weight, f"class_weight[{key!r}]")
    return per_class[labels]


def _target_scaling(net: Network, y) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per output column of the regression targets, from ``net.meta["target_scaling"]``
    or measured on y and stored there (a column that never varies keeps std 1)."""
    stored = net.meta.get("target_scaling")
    n_out = net.sizes[-1]
    if stored:
        mean = np.asarray(stored["mean"], dtype=net.dtype)
        std = np.asarray(stored["std"], dtype=net.dtype)
        return mean, std
    Y = np.asarray(y, dtype=np.float64)
    Y = Y.reshape(-1, n_out) if Y.ndim == 1 else Y
    if Y.ndim != 2 or Y.shape[1] != n_out or not np.all(np.isfinite(Y)):
        return None  # prepare_targets reports what is wrong
    mean = Y.mean(axis=0)
    std = Y.std(axis=0)
    std[~(std > 0)] = 1.0
    net.meta["target_scaling"] = {"mean": mean.tolist(), "std": std.tolist()}
    return mean.astype(net.dtype), std.astype(net.dtype)
