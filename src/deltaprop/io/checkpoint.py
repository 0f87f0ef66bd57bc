"""Checkpoints: a Trainer's whole state in one file, so that an interrupted run continues bit for bit.

What is saved is ``trainer.state_dict()``: the weights, the optimizer state (velocities, Adam's moments,
step count, α), the random generator state, the epoch, the position inside an interrupted epoch (its
shuffled order, the batches already taken, their summed cost), the history and the early-stopping
state. The file has the safetensors layout of :mod:`deltaprop.io.modelfile`, written by the same atomic
writer (temporary file, flush, fsync, rename) and read by the same checked reader:

    tensors         every array of the state, named by where it sits: ``weights.0.0`` (W_1),
                    ``weights.0.1`` (b_1), ``optimizer.ms.2``, ``order``, ``best.weights.1.0``, ...
    __metadata__    format = "deltaprop-checkpoint", format_version, deltaprop_version, dtype,
                    architecture (JSON, as in model files), state (JSON: the rest of the state, an
                    array replaced by {"tensor": name}), settings (JSON: what must not change on
                    resume), data (JSON: a fingerprint of the training rows), run (JSON: the caller's)

Nothing is pickled: :func:`load` checks the layout, then every entry of the state (types, ranges,
shapes, dtypes) before it returns, and raises :class:`~deltaprop.errors.ModelFileError` for anything
else. :func:`restore` also refuses a checkpoint of another network, optimizer, data set or batch size.

Stopping cleanly on Ctrl-C or SIGTERM::

    trainer = dp.Trainer(net, X, y, epochs=50, batch_size=64, seed=0,
                         callbacks=[CheckpointCallback("run/checkpoint.safetensors", every=5)])
    try:
        with interruptible(trainer, "run/checkpoint.safetensors"):
            trainer.run()
    except TrainingInterrupted as stop:
        print(stop)            # where it stopped, and how to continue

and later, in a new process, the same Trainer (same data, seed and options) continues with
``restore(trainer, "run/checkpoint.safetensors"); trainer.run()``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import weakref
from dataclasses import dataclass, field

import numpy as np

from deltaprop.errors import DeltapropError, ModelFileError
from deltaprop.io.files import short, shown
from deltaprop.io.modelfile import (
    check_architecture,
    digest,
    format_version,
    parse_json_entry,
    read_tensors,
    write_tensors,
)
from deltaprop.train import Callback

__all__ = ["save", "load", "restore", "Checkpoint", "CheckpointCallback", "interruptible",
           "TrainingInterrupted", "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "deltaprop-checkpoint"
FORMAT_VERSION = 1

_DAMAGED = "the checkpoint is damaged; resume from an earlier one or train again"
_STATE_KEYS = ("epoch", "batch", "order", "partial", "stop", "t", "weights", "optimizer", "lr0", "schedule",
               "rng", "history", "best", "since_best")
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
# Optimizer hyperparameters a resumed run must share with the checkpoint (its own are not reloaded).
_HYPER = {"momentum": ("momentum", "nesterov"), "adam": ("beta_1", "beta_2", "epsilon"), "sgd": ()}


class TrainingInterrupted(DeltapropError):
    """Training stopped on SIGINT or SIGTERM after the batch in flight; ``checkpoint`` holds the state.

    ``exit_code`` is the shell's convention for a process ended by the signal: 130 (SIGINT), 143 (SIGTERM).
    """

    exit_code = 130

    def __init__(self, message: str, hint: str = "", *, exit_code: int | None = None, signum: int | None = None,
                 checkpoint=None, epoch: int | None = None, batch: int | None = None):
        super().__init__(message, hint, exit_code=exit_code)
        self.signum, self.checkpoint, self.epoch, self.batch = signum, checkpoint, epoch, batch


@dataclass
class Checkpoint:
    """A checked checkpoint: ``state`` (for ``Trainer.load_state_dict``), ``architecture`` (sizes,
    activations, loss), ``dtype``, ``settings``, ``data`` (fingerprint), ``run`` (the caller's dict)."""

    state: dict
    architecture: dict
    dtype: str
    settings: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    run: dict = field(default_factory=dict)
    deltaprop_version: str = ""
    path: str = ""

    @property
    def epoch(self) -> int:
        """Epochs completed."""
        return self.state["epoch"]

    @property
    def batch(self) -> int:
        """Batches of the next epoch already taken (0: the checkpoint sits between epochs)."""
        return self.state["batch"]

    def network(self):
        """The Network with the checkpoint's current weights (to evaluate or export it)."""
        from deltaprop.model import Network

        return Network.from_config({**self.architecture, "dtype": self.dtype}, self.state["weights"])


# -- what a run is -----------------------------------------------------------------------------------
def _architecture(net) -> dict:
    """The network's architecture record (:meth:`Network.config`) without the dtype, which has its own entry."""
    config = net.config()
    return {k: config[k] for k in ("sizes", "activations", "loss")}


def _settings(trainer) -> dict:
    """Options that change the bits of every later step: resuming with others would not continue the run."""
    return {"batch_size": trainer.batch_size, "l2": trainer.l2, "shuffle": trainer.shuffle,
            # The schedule's parameters; its state_keys (adaptive's α and plateau count) are saved with
            # the trainer's state.
            "schedule": f"{type(trainer.schedule).__name__}"
                        f"{sorted((k, v) for k, v in vars(trainer.schedule).items() if k not in trainer.schedule.state_keys)}",
            "early_stopping": trainer.patience, "tol": trainer.tol}


def _fingerprint(trainer) -> dict:
    """The trainer's :meth:`~deltaprop.train.Trainer.data_fingerprint`: different when the data, its
    scaling or the validation split differ."""
    return trainer.data_fingerprint()


# Where each live trainer's state was last written: (path, epoch, batch, t), so that the same state is
# not written twice (a final checkpoint after the callback's last one).
_LAST_SAVED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# -- the state as tensors + JSON ---------------------------------------------------------------------
def _split(value, name: str, tensors: dict):
    """The state with every array moved into ``tensors`` and replaced by {"tensor": name}; non-finite
    floats as {"float": "nan" | "inf" | "-inf"} so that the JSON stays strict."""
    if isinstance(value, np.ndarray):
        tensors[name] = value
        return {"tensor": name}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ModelFileError(f"cannot checkpoint {name or 'the state'}: its keys must be strings",
                                 "keep the trainer's state to str-keyed dicts")
        return {k: _split(v, f"{name}.{k}" if name else k, tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split(v, f"{name}.{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ModelFileError(f"cannot checkpoint {name}: a {type(value).__name__} is not an array, number or text",
                         "keep the trainer's state to arrays, numbers, text, lists and dicts")


def _join(value, tensors: dict, used: set, where: str):
    """The inverse of ``_split``; every tensor is used once, and anything unexpected is refused."""
    if isinstance(value, dict):
        if set(value) == {"tensor"}:
            name = value["tensor"]
            if not isinstance(name, str) or name not in tensors or name in used:
                why = "used twice" if isinstance(name, str) and name in used else "not in the file"
                raise ModelFileError(f"{where}: the state refers to tensor {_short(name)}, which is {why}", _DAMAGED)
            used.add(name)
            return tensors[name]
        if set(value) == {"float"}:
            if value["float"] not in ("nan", "inf", "-inf"):
                raise ModelFileError(f"{where}: {_short(value['float'])} is not a non-finite float", _DAMAGED)
            return float(value["float"])
        return {k: _join(v, tensors, used, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_join(v, tensors, used, where) for v in value]
    return value


def save(trainer, path, *, run: dict | None = None) -> None:
    """Write ``trainer.state_dict()`` to ``path`` atomically; ``run`` is any JSON-able dict the caller
    wants back on resume (the command keeps its options there). A failure leaves ``path`` as it was."""
    import deltaprop

    tensors: dict = {}
    state = _split(trainer.state_dict(), "", tensors)
    try:
        run_text = json.dumps(run or {}, allow_nan=False, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"the run information cannot be stored as JSON: {exc}",
                             "pass a dict of strings, numbers, booleans, lists and None") from None
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "deltaprop_version": str(deltaprop.__version__),
        "dtype": trainer.net.dtype.name,
        "architecture": json.dumps(_architecture(trainer.net), separators=(",", ":")),
        "state": json.dumps(state, allow_nan=False, separators=(",", ":")),
        "settings": json.dumps(_settings(trainer), allow_nan=False, separators=(",", ":")),
        "data": json.dumps(_fingerprint(trainer), separators=(",", ":")),
        "run": run_text,
    }
    metadata["checksum"] = _checksum(metadata, tensors)
    write_tensors(path, tensors, metadata, what="checkpoint")
    _LAST_SAVED[trainer] = (os.fspath(path), trainer.epoch, trainer.batch, trainer.t)


def _checksum(metadata: dict, tensors: dict) -> str:
    """The checkpoint's :func:`deltaprop.io.modelfile.digest`: every metadata entry but this one and every
    tensor, so that damage after the write is found where the layout checks cannot see it (a weight, a
    generator state, a digit in the history)."""
    return digest({k: v for k, v in metadata.items() if k != "checksum"}, tensors)


def _saved_here(trainer, path) -> bool:
    """True when ``path`` already holds the trainer's present state (written by :func:`save`)."""
    return _LAST_SAVED.get(trainer) == (os.fspath(path), trainer.epoch, trainer.batch, trainer.t)


# -- reading, with every entry checked ---------------------------------------------------------------
class _Checker:
    """Type, range and shape checks that raise ModelFileError naming the entry."""

    def __init__(self, path):
        self.path = path

    def fail(self, what: str):
        raise ModelFileError(f"{shown(self.path)}: {what}", _DAMAGED)

    def int(self, value, name: str, low: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            self.fail(f"{name} is {_short(value)}; expected a whole number ≥ {low}")
        return value

    def number(self, value, name: str, positive: bool = False, below_one: bool = False) -> float:
        from deltaprop.validation import check_number

        rule = dict(low=0, low_open=True) if positive else dict(low=0, high=1, high_open=True) if below_one else {}
        try:
            return check_number(value, name, allow_inf=not (positive or below_one), error=ModelFileError, **rule)
        except ModelFileError as exc:
            self.fail(exc.message)

    def array(self, value, name: str, shape: tuple, dtype: str):
        if not isinstance(value, np.ndarray) or value.shape != shape or value.dtype.name != dtype:
            got = (f"a {value.dtype.name} array of shape {value.shape}" if isinstance(value, np.ndarray)
                   else _short(value))
            self.fail(f"{name} is {got}; expected a {dtype} array of shape {shape}")
        if not np.isfinite(value).all():
            self.fail(f"{name} holds NaN or infinite values")
        return value

    def params(self, value, name: str, shapes: list, dtype: str, allow_none: bool = True):
        """A list of arrays of the given shapes, one per parameter (or None)."""
        if value is None and allow_none:
            return None
        if not isinstance(value, list) or len(value) != len(shapes):
            self.fail(f"{name} is {_short(value)}; expected a list of {len(shapes)} arrays")
        for i, (v, s) in enumerate(zip(value, shapes)):
            self.array(v, f"{name}[{i}]", s, dtype)
        return value


def _finite_number(v) -> bool:
    try:
        return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


def _short(value) -> str:
    return f"an array of shape {value.shape}" if isinstance(value, np.ndarray) else short(value)


def _parse_json(path, metadata: dict, key: str) -> dict:
    return parse_json_entry(path, metadata, key, _DAMAGED)


def _check_architecture(c: _Checker, arch: dict, dtype) -> tuple[list, list]:
    """(weight shapes [(n_l, n_{l-1}), (n_l,), ...], sizes) after checking the architecture entry with
    :meth:`Network.check_config`, as model files are checked."""
    config = check_architecture(c.path, arch, dtype, _DAMAGED)
    sizes = config["sizes"]
    shapes = []
    for l in range(1, len(sizes)):
        shapes += [(sizes[l], sizes[l - 1]), (sizes[l],)]
    return shapes, sizes


def _check_state(c: _Checker, state: dict, shapes: list, dtype: str) -> None:
    missing = [k for k in _STATE_KEYS if k not in state]
    if missing:
        c.fail(f"the state lacks {', '.join(missing)}")
    for key in ("epoch", "batch", "t", "since_best"):
        c.int(state[key], key)
    if not isinstance(state["stop"], bool):
        c.fail(f"stop is {_short(state['stop'])}; expected true or false")
    c.number(state["lr0"], "lr0", positive=True)
    schedule = state["schedule"]
    if not isinstance(schedule, dict) or not all(v is None or _finite_number(v) for v in schedule.values()):
        c.fail(f"schedule is {_short(schedule)}; expected a map of parameter names to finite numbers or null")
    pairs = state["weights"]
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        c.fail("weights must be a list of (W, b) pairs")
    c.params([a for p in pairs for a in p], "weights", shapes, dtype, allow_none=False)
    order = state["order"]
    if order is not None and not (isinstance(order, np.ndarray) and order.ndim == 1 and order.dtype.kind == "i"):
        c.fail(f"order is {_short(order)}; expected a 1-d integer array or null")
    partial = state["partial"]
    if not (isinstance(partial, list) and len(partial) == 3):
        c.fail(f"partial is {_short(partial)}; expected [cost sum, correct count, seconds]")
    c.number(partial[0], "partial cost sum")
    c.int(partial[1], "partial correct count")
    c.number(partial[2], "partial seconds")
    _check_optimizer(c, state["optimizer"], shapes, dtype)
    _check_rng(c, state["rng"])
    _check_history(c, state["history"])
    best = state["best"]
    if best is not None:
        if not isinstance(best, dict) or set(best) != {"score", "epoch", "weights"}:
            c.fail("best must be null or {score, epoch, weights}")
        c.number(best["score"], "best score")
        c.int(best["epoch"], "best epoch", 1)
        if not isinstance(best["weights"], list) or not all(isinstance(p, list) and len(p) == 2
                                                            for p in best["weights"]):
            c.fail("best weights must be a list of (W, b) pairs")
        c.params([a for p in best["weights"] for a in p], "best weights", shapes, dtype, allow_none=False)


def _check_optimizer(c: _Checker, opt, shapes: list, dtype: str) -> None:
    if not isinstance(opt, dict) or not isinstance(opt.get("name"), str) or opt["name"] not in _HYPER:
        c.fail(f"the optimizer state names {_short(opt.get('name') if isinstance(opt, dict) else opt)}; "
               f"expected one of {', '.join(_HYPER)}")
    c.number(opt.get("lr"), "optimizer lr", positive=True)
    c.int(opt.get("t"), "optimizer step count")
    if opt["name"] == "momentum":
        c.number(opt.get("momentum"), "momentum", below_one=True)
        if not isinstance(opt.get("nesterov"), bool):
            c.fail("nesterov must be true or false")
        c.params(opt.get("velocities"), "velocities", shapes, dtype)
    elif opt["name"] == "adam":
        c.number(opt.get("beta_1"), "beta_1", below_one=True)
        c.number(opt.get("beta_2"), "beta_2", below_one=True)
        c.number(opt.get("epsilon"), "epsilon", positive=True)
        ms, vs = c.params(opt.get("ms"), "ms", shapes, dtype), c.params(opt.get("vs"), "vs", shapes, dtype)
        if (ms is None) != (vs is None):
            c.fail("Adam's first and second moments must both be present or both absent")
        if vs is not None and any((v < 0).any() for v in vs):
            c.fail("Adam's second moments must be ≥ 0")


def _check_rng(c: _Checker, state) -> None:
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _BIT_GENERATORS:
        c.fail(f"the random generator state names {_short(name)}; expected one of {', '.join(_BIT_GENERATORS)}")
    try:  # NumPy checks the state's contents itself: try it on a generator of the same kind
        getattr(np.random, name)().state = state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        c.fail(f"the random generator state is not a valid {name} state ({type(exc).__name__}: {exc})")


def _check_history(c: _Checker, history) -> None:
    if not isinstance(history, dict) or not isinstance(history.get("epochs"), list):
        c.fail("history must be {epochs: [...], ...}")
    if not isinstance(history.get("stop_reason", ""), str):
        c.fail("history stop_reason must be text")
    if history.get("best_epoch") is not None:
        c.int(history["best_epoch"], "history best_epoch", 1)
    for i, logs in enumerate(history["epochs"], 1):
        if not isinstance(logs, dict) or logs.get("epoch") != i:
            c.fail(f"history entry {i} must be a dict with epoch = {i}")
        for key, value in logs.items():
            values = value if isinstance(value, list) else [value]
            for v in values:
                if not (v is None or (not isinstance(v, bool) and isinstance(v, (int, float)))):
                    c.fail(f"history entry {i}, {key!r} is {_short(value)}; expected numbers")
        c.number(logs.get("loss"), f"history entry {i} loss")


def load(path) -> Checkpoint:
    """The checkpoint in ``path``, with every part checked: the safetensors layout (as for model
    files), the format name and version, the architecture, and each entry of the state (types,
    ranges, and the shape and dtype of every array). ModelFileError for anything else."""
    try:
        tensors, metadata = read_tensors(path)
    except ModelFileError as exc:
        raise ModelFileError(exc.message.replace("model file", "checkpoint"),
                             "pass a checkpoint written by deltaprop (RUN_DIR/checkpoint.safetensors); "
                             "if it was one, it is damaged: resume from an earlier one or train again") from None
    if metadata.get("format") != FORMAT_NAME:
        found = metadata.get("format")
        what = ("a deltaprop model, not a checkpoint" if found == "deltaprop-model"
                else f"not a deltaprop checkpoint ({'format ' + short(found) if found else 'no deltaprop header'})")
        raise ModelFileError(f"{shown(path)} is {what}",
                             "resume from the checkpoint.safetensors in a run directory; a model file holds "
                             "the weights alone, without the optimizer and generator state")
    format_version(path, metadata, "checkpoint", FORMAT_VERSION)
    # Checkpoints written before the checksum existed have none, and are checked entry by entry alone.
    if "checksum" in metadata and metadata["checksum"] != _checksum(metadata, tensors):
        raise ModelFileError(f"{shown(path)} is damaged: its contents do not match the checksum written with it "
                             "(changed after it was written: a disk or copy error)",
                             "resume from an intact copy of it, or start the run again (--overwrite)")
    c = _Checker(path)
    dtype = metadata.get("dtype")
    arch = _parse_json(path, metadata, "architecture")
    shapes, _ = _check_architecture(c, arch, dtype)
    used: set = set()
    try:
        state = _join(_parse_json(path, metadata, "state"), tensors, used, str(path))
    except RecursionError:
        raise ModelFileError(f"{shown(path)}: the state is nested too deeply", _DAMAGED) from None
    if used != set(tensors):
        c.fail(f"tensor(s) {', '.join(sorted(set(tensors) - used)[:5])} are not part of the state")
    _check_state(c, state, shapes, dtype)
    info = {key: _parse_json(path, metadata, key) for key in ("settings", "data", "run")}
    return Checkpoint(state=state, architecture=arch, dtype=dtype, deltaprop_version=metadata.get("deltaprop_version", ""),
                      path=str(path), **info)


def restore(trainer, checkpoint) -> Checkpoint:
    """Load ``checkpoint`` (a path or a :class:`Checkpoint`) into ``trainer``, after checking that it
    belongs to the same run: network, dtype, optimizer and its hyperparameters, batch size and the
    other settings, and the training rows. ``trainer.run()`` then continues where it stopped."""
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load(checkpoint)
    where = ckpt.path or "the checkpoint"
    hint = "resume with the same data, seed and options as the run that wrote it"
    ours = _architecture(trainer.net)
    if ckpt.architecture != ours or ckpt.dtype != trainer.net.dtype.name:
        raise ModelFileError(
            f"{where} is for a {_describe(ckpt.architecture, ckpt.dtype)} network; this run builds "
            f"{_describe(ours, trainer.net.dtype.name)}", hint)
    state, opt = ckpt.state, ckpt.state["optimizer"]
    mine = trainer.optimizer.state_dict()
    if opt["name"] != mine["name"] or any(opt[k] != mine[k] for k in _HYPER[opt["name"]]):
        theirs = ", ".join([opt["name"]] + [f"{k}={opt[k]}" for k in _HYPER[opt["name"]]])
        ours_opt = ", ".join([mine["name"]] + [f"{k}={mine[k]}" for k in _HYPER.get(mine["name"], ())])
        raise ModelFileError(f"{where} was written with optimizer {theirs}; this run uses {ours_opt}", hint)
    if state["rng"]["bit_generator"] != trainer.rng.bit_generator.state["bit_generator"]:
        raise ModelFileError(f"{where} holds a {state['rng']['bit_generator']} random generator; this run uses "
                             f"{trainer.rng.bit_generator.state['bit_generator']}", hint)
    settings = _settings(trainer)
    changed = [f"{k} {ckpt.settings.get(k)!r} → {v!r}" for k, v in settings.items() if ckpt.settings.get(k) != v]
    if changed:
        raise ModelFileError(f"{where} was written with other settings: {'; '.join(changed)}", hint)
    data = _fingerprint(trainer)
    if ckpt.data != data:
        what = (f"{ckpt.data.get('rows')} rows of {ckpt.data.get('features')} features"
                if ckpt.data.get("rows") != data["rows"] or ckpt.data.get("features") != data["features"]
                else "rows with other values (other data, scaling or validation split)")
        raise ModelFileError(f"{where} was trained on {what}; this run has {data['rows']} rows of "
                             f"{data['features']} features", hint)
    n = trainer.X.shape[0]
    n_batches = -(-n // trainer.batch_size)
    order, batch = state["order"], state["batch"]
    if batch >= n_batches or (order is not None and not np.array_equal(np.sort(order), np.arange(n))) \
            or (batch > 0 and order is None and trainer.shuffle and trainer.batch_size < n):
        raise ModelFileError(f"{where}: the position inside the epoch (batch {batch}, order "
                             f"{'none' if order is None else f'of {order.shape[0]} rows'}) does not fit "
                             f"{n} rows in batches of {trainer.batch_size}", _DAMAGED)
    try:
        trainer.load_state_dict(state)
    except DeltapropError as exc:  # pragma: no cover - every entry was checked above
        raise ModelFileError(f"{where}: {exc.message}", _DAMAGED) from None
    return ckpt


def _describe(arch: dict, dtype: str) -> str:
    return f"{'-'.join(map(str, arch['sizes']))} {'/'.join(arch['activations'])} {arch['loss']} {dtype}"


# -- periodic checkpoints and clean interruption -------------------------------------------------------
class CheckpointCallback(Callback):
    """Write the trainer's state to ``path`` every ``every`` epochs and when training ends (finished,
    early-stopped or interrupted), atomically each time: the file always holds a resumable state."""

    def __init__(self, path, every: int = 1, run: dict | None = None):
        from deltaprop.validation import check_positive_int

        self.path, self.every, self.run = path, check_positive_int(every, "checkpoint interval (epochs)"), run

    def on_epoch_end(self, trainer, logs) -> None:
        if trainer.epoch % self.every == 0:
            save(trainer, self.path, run=self.run)

    def on_train_end(self, trainer) -> None:
        save(trainer, self.path, run=self.run)


@contextlib.contextmanager
def interruptible(trainer, path=None, *, run: dict | None = None, signals=(signal.SIGINT, signal.SIGTERM)):
    """While the block runs, SIGINT (Ctrl-C) and SIGTERM set ``trainer.halt``: the batch in flight
    finishes, ``trainer.run()`` returns, the state is written to ``path`` (when given) and
    :class:`TrainingInterrupted` is raised as the block ends. A second signal aborts at once with
    KeyboardInterrupt, without writing. Outside the main thread (where Python delivers signals)
    nothing is installed. The previous handlers are restored in every case."""
    received: list[int] = []

    def on_signal(signum, frame):
        if received:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopped without a checkpoint")
        received.append(signum)
        trainer.halt = True

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for s in signals:
            previous[s] = signal.signal(s, on_signal)
    try:
        yield trainer
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if not trainer.interrupted:
        return  # finished (or a signal came too late to matter): nothing was lost
    if path is not None and not _saved_here(trainer, path):  # a CheckpointCallback may have just written it
        save(trainer, path, run=run)
    signum = received[0] if received else None
    name = signal.Signals(signum).name if signum is not None else "a stop request"
    epoch, batch = trainer.epoch + 1, trainer.batch
    where = (f"after batch {batch} of epoch {epoch}" if batch else f"after epoch {trainer.epoch}")
    raise TrainingInterrupted(
        f"training interrupted by {name} {where} of {trainer.epochs}"
        + (f"; the state is saved in {path}" if path is not None else ""),
        "continue with the same data, seed and options and deltaprop.io.checkpoint.restore(trainer, path)"
        if path is not None else "save trainer.state_dict() to continue later",
        exit_code=128 + signum if signum is not None else None, signum=signum, checkpoint=path,
        epoch=epoch, batch=batch,
    )
