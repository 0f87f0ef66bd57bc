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

import hashlib
import math
import time
from dataclasses import dataclass, field

import numpy as np

from deltaprop import fast, ops
from deltaprop.errors import ConfigError, DivergenceError, InputError
from deltaprop.model import Network
from deltaprop.optim import Optimizer, make_optimizer, make_schedule
from deltaprop.validation import (
    check_nonnegative_float,
    check_positive_int,
    check_sample_weight,
    check_X,
    is_sparse,
)

__all__ = ["fit", "Trainer", "History", "Callback", "train_test_split", "block_order", "is_row_source",
           "BLOCK_ROWS"]

#: Rows per block of the block shuffle (``shuffle="blocks"``) unless told otherwise.
BLOCK_ROWS = 1024


@dataclass
class History:
    """What happened, epoch by epoch: one dict per epoch with ``epoch``, ``loss``, ``accuracy``
    (classifiers), ``val_loss``, ``val_accuracy`` (with validation data), ``lr``, ``time`` (seconds),
    and per-layer gradient-flow figures ``delta_norm`` and ``dW_norm`` (lists, layer 1 first, from the
    epoch's last batch, for the unscaled gradient of J)."""

    epochs: list = field(default_factory=list)
    best_epoch: int | None = None
    stop_reason: str = ""

    def _column(self, key):
        return [e.get(key) for e in self.epochs]

    @property
    def loss(self):
        return self._column("loss")

    @property
    def val_loss(self):
        return self._column("val_loss")

    @property
    def accuracy(self):
        return self._column("accuracy")

    @property
    def val_accuracy(self):
        return self._column("val_accuracy")

    def __len__(self):
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
    ``trainer.halt = True`` to end it after this batch (resumable: see :class:`Trainer`)."""

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

    ``stop = True`` ends training after the current epoch; ``halt = True`` (what the SIGINT/SIGTERM
    handler of :func:`deltaprop.io.checkpoint.interruptible` sets) ends it after the batch in flight, with
    ``interrupted`` True and the epoch part-done; ``run()`` again (or a fresh Trainer given the saved
    ``state_dict``) takes the next batch of the same shuffled order.

    A non-finite cost, or weights that turn non-finite during an epoch, raise DivergenceError naming
    the epoch and batch, after rolling weights and optimizer state back to the start of the epoch
    (or the point where the run resumed): the last state known to be finite."""

    def __init__(self, net: Network, X, y, *, epochs: int = 10, batch_size: int | None = None,
                 optimizer="sgd", lr: float | None = None, momentum: float | None = None, schedule="constant",
                 schedule_options: dict | None = None, l2: float = 0.0, validation_data=None,
                 validation_fraction: float = 0.0, early_stopping: int | None = None, tol: float = 0.0,
                 shuffle: bool | str = True, seed: int = 0, rng: np.random.Generator | None = None,
                 callbacks=(), track_accuracy: bool = True, sample_weight=None, block_rows: int = BLOCK_ROWS):
        self.net = net
        self.epochs = check_positive_int(epochs, "epochs")
        self.l2 = check_nonnegative_float(l2, "l2")
        self.tol = check_nonnegative_float(tol, "tol")
        if shuffle not in (True, False, "rows", "blocks", "none"):
            raise ConfigError(f"shuffle must be True, False, 'rows' or 'blocks', got {shuffle!r}",
                              "shuffle='blocks' draws blocks of rows in a random order (data read from disk)")
        self.shuffle = {"rows": True, "none": False}.get(shuffle, shuffle)
        self.block_rows = check_positive_int(block_rows, "block_rows")
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        self.callbacks = list(callbacks)
        self.track_accuracy = bool(track_accuracy) and net.is_classifier
        if isinstance(optimizer, Optimizer):
            self.optimizer = optimizer
        else:
            # 'sgd' stays the notes' plain θ −= α g unless a momentum is asked for; 'momentum' and
            # 'nesterov' default to μ = 0.9.
            self.optimizer = make_optimizer(optimizer, lr, **({} if momentum is None else {"momentum": momentum}))
        self.lr0 = self.optimizer.lr
        self.schedule = make_schedule(schedule, **(schedule_options or {}))
        if early_stopping is not None:
            early_stopping = check_positive_int(early_stopping, "early_stopping patience")
        self.patience = early_stopping

        source = is_row_source(X)
        if source:
            _check_source(X, net, "X")
            if self.shuffle is True:
                raise ConfigError("rows read from a row source are shuffled by blocks, not one by one "
                                  "(that would read every row from a different place)", "pass shuffle='blocks'")
        else:
            X = check_X(X, net.sizes[0], net.dtype)
        y = np.asarray(y)
        if y.shape[0] != X.shape[0]:
            raise InputError(f"X has {X.shape[0]} rows but y has {y.shape[0]}", "pass one target per example")
        sw = None if sample_weight is None else check_sample_weight(sample_weight, X.shape[0], net.dtype)
        if validation_data is None and validation_fraction:
            if not (0 < float(validation_fraction) < 1):
                raise ConfigError(f"validation_fraction must lie in (0, 1), got {validation_fraction!r}",
                                  "for example validation_fraction=0.1")
            # Split row numbers, so that the sample weights follow their rows.
            train, _, test, _ = train_test_split(np.arange(X.shape[0]), y, float(validation_fraction), self.rng,
                                                 stratify=net.is_classifier and y.ndim == 1)
            if source:
                X, y, Xv, yv = X.subset(train), y[train], X.subset(test), y[test]
            else:
                X, y, Xv, yv = X[train], y[train], X[test], y[test]
            sw = None if sw is None else sw[train]
            validation_data = (Xv, yv)
        self.sample_weight = sw
        self._sparse = is_sparse(X)
        self.X = X if (source or self._sparse) else np.ascontiguousarray(X)  # sparse X stays CSR (check_X)
        self._blocks = _BlockCache(X, self.block_rows) if source else None
        self.Y = net.prepare_targets(y)
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
            Yv = net.prepare_targets(yv)
            if Yv.shape[0] != Xv.shape[0]:
                raise InputError(f"validation X has {Xv.shape[0]} rows but y has {Yv.shape[0]}",
                                 "pass one target per example")
            self.val = (Xv, Yv)
        n = self.X.shape[0]
        self.batch_size = n if batch_size is None else min(check_positive_int(batch_size, "batch_size"), n)
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
        self._xbuf: dict[int, np.ndarray] = {}
        self._ybuf: dict[int, np.ndarray] = {}

    # -- one step ----------------------------------------------------------------------------------
    def train_step(self, Xb, Yb, sample_weight=None) -> float:
        """Forward, cost, backward and update on one batch (rows weighted by ``sample_weight`` if
        given); returns J of the batch before the update."""
        net, opt = self.net, self.optimizer
        net.forward(Xb, cache=True, check=False)
        if sample_weight is not None and not sample_weight.any():
            # Every row weighs 0: the batch carries nothing to learn and J_B = Σ s·loss / Σ s is
            # undefined, so no update (the whole set's weights are checked to sum above 0). The
            # forward pass above still lets the epoch's accuracy count these rows.
            return 0.0
        cost = net.cached_cost(Yb, self.l2, sample_weight)
        # θ −= α g with α folded into δ_L = α(A − Y)/m: the gradients come out already scaled.
        grads = net.backward(Yb, self.l2, scale=opt.lr if opt.folds_lr else 1.0, sample_weight=sample_weight)
        params, flat_grads = net.flat_params(), net.flat_grads()
        if params is not None and flat_grads is not None:
            params, grads = [params], [flat_grads]  # the whole network as one array: a few passes
        else:
            params, grads = net.params(), [g for pair in grads for g in pair]
        (opt.apply if opt.folds_lr else opt.step)(params, grads)
        return cost

    def _gather(self, idx):
        """Rows idx of X and Y into reused buffers (:func:`deltaprop.fast.take_rows`)."""
        m = idx.shape[0]
        if self._sparse:  # CSR rows: a small sparse batch, the whole matrix never densified
            yb = self._ybuf.get(m)
            if yb is None:
                yb = self._ybuf[m] = np.empty((m, self.Y.shape[1]), dtype=self.Y.dtype)
            fast.take_rows(self.Y, idx, yb)
            return self.X[idx], yb
        xb = self._xbuf.get(m)
        if xb is None:
            xb = self._xbuf[m] = np.empty((m, self.X.shape[1]), dtype=self.X.dtype)
            self._ybuf[m] = np.empty((m, self.Y.shape[1]), dtype=self.Y.dtype)
        yb = self._ybuf[m]
        if self._blocks is not None:
            self._blocks.gather(idx, xb)
        else:
            fast.take_rows(self.X, idx, xb)
        fast.take_rows(self.Y, idx, yb)
        return xb, yb

    def _correct(self, idx, Yb) -> int:
        """How many rows of the last batch the network got right (labels precomputed once)."""
        labels = self.labels if idx is None else self.labels[idx]
        return _n_correct(self.net.layers[-1].A, Yb, labels, self.multilabel)

    # -- evaluation --------------------------------------------------------------------------------
    def evaluate(self, X, Y) -> tuple[float, float | None]:
        """(J without the L2 term, accuracy) on prepared data, in chunks to bound memory."""
        net = self.net
        total, correct, m = 0.0, 0, X.shape[0]
        for start in range(0, m, 4096):
            xb, yb = _rows(X, start, min(start + 4096, m)), Y[start:start + 4096]
            Z, A = net.logits(xb)
            total += net.loss.value(Z, A, yb)
            if self.track_accuracy:
                correct += _n_correct(A, yb, _predicted_labels(yb), self.multilabel)
        return total / m, (correct / m if self.track_accuracy else None)

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> History:
        """Train until ``epochs`` epochs are done, early stopping fires, or a callback stops it."""
        # Overflow on the way to divergence is detected from the cost and reported as a
        # DivergenceError; NumPy's RuntimeWarnings would only repeat it less clearly.
        sizes = self.net.sizes
        step_macs = self.batch_size * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        with np.errstate(over="ignore", invalid="ignore"), fast.blas_threads_for(step_macs):
            return self._run()

    def _run(self) -> History:
        cbs = self.callbacks
        batch_cbs = [cb for cb in cbs if type(cb).on_batch_end is not Callback.on_batch_end]
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
                cost = self.train_step(Xb, Yb, sw)
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
                logs["val_loss"], logs["val_accuracy"] = self.evaluate(*self.val)
                if logs["val_accuracy"] is None:
                    del logs["val_accuracy"]
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
            cost = self.train_step(*self._batch(b)[1:])
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
        return {
            "delta_norm": [_norm(layer.delta) / scale for layer in self.net.layers],
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


def fit(net: Network, X, y, **options) -> History:
    """Train ``net`` on (X, y) and return the History. Options are :class:`Trainer`'s:

    ``epochs`` (10), ``batch_size`` (None: full batch, as in the notes), ``optimizer`` ('sgd',
    'momentum', 'nesterov', 'adam' or an Optimizer), ``lr`` (0.1 for SGD, 0.001 for Adam),
    ``momentum``, ``schedule`` and ``schedule_options``, ``l2`` (λ), ``validation_data=(Xv, yv)``
    or ``validation_fraction``, ``early_stopping`` (patience in epochs; restores the best weights),
    ``tol``, ``shuffle``, ``seed``, ``callbacks``, ``sample_weight`` (one weight per row of X: the training
    cost is the weighted mean; validation loss and accuracy stay plain means over the validation rows).
    """
    return Trainer(net, X, y, **options).run()
