"""Read a training run and name the problems it shows, each with the evidence and a remedy.

    >>> import deltaprop as dp
    >>> history = dp.fit(net, X, y, epochs=50, callbacks=[dp.DeadUnitMonitor()])
    >>> print(dp.diagnose(history).to_text())
    >>> dp.diagnose("runs/2024-01-01")          # a run directory: history.csv, metrics.json, model

What it reads: the per-epoch ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` and ``lr``; the
gradient-flow figures the trainer records (``dW_norm_l``, the Frobenius norm of dW_l on the epoch's
last batch, layer 1 first); ``dead_fraction_l`` (:class:`DeadUnitMonitor`, which ``deltaprop train``
attaches to every run); and, in a run directory, metrics.json (the network's activations, the
classes and their frequencies, the optimizer, the test accuracy, how the run ended).

Each check is one function (``CHECKS``, in the order they run) that returns its findings, or none,
and says whether it could run. The verdict "no problems" comes only after every check ran, and the
diagnosis lists the checks (``Diagnosis.checks``; ``checks`` in the JSON). The checks, their
thresholds and the runs that trigger them are tabulated in docs/diagnose.md. Finding codes:
``diverged``, ``loss_exploded``, ``zero_gradients``, ``vanishing_gradients``, ``exploding_gradients``,
``dead_relu``, ``lr_too_high``, ``loss_rose``, ``learned_nothing``, ``overfitting``, ``underfitting``,
``stalled``.

Remedies are written in the syntax of the reader: keyword arguments from Python (the default),
command-line flags when ``syntax="command"`` (what ``deltaprop diagnose`` passes).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deltaprop.errors import DataError, DivergenceError
from deltaprop.teach.document import Doc, Renderable
from deltaprop.train import Callback, History, Trainer

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from deltaprop.model import Network

__all__ = ["diagnose", "Diagnosis", "Finding", "Check", "DeadUnitMonitor", "read_history", "column", "per_layer",
           "dead_units", "mean_baseline", "CHECKS"]

# The thresholds: rules of thumb, stated in each finding so the reader can judge (docs/diagnose.md).
VANISHING_RATIO = 1e-3    # a layer's ‖dW_l‖ below this fraction of the largest layer's: three orders of magnitude
VANISHING_ABS = 1e-7      # every ‖dW_l‖ below this while the loss is above half of chance
ZERO_NORM = 1e-30         # ‖dW_l‖ at or below this is zero (underflow included)
EXPLODING_RATIO = 1e3     # ‖dW_1‖ / ‖dW_L‖ above this
EXPLODING_NORM = 1e4      # any ‖dW_l‖ above this
DEAD_FRACTION = 0.5       # half of a ReLU layer's units dead for a whole epoch
EXPLODED_FACTOR = 10      # the first epoch's mean loss above 10 × the chance loss
CHANCE_MARGIN = 0.05      # accuracy at most the majority class's share + 0.05: at chance
OVERFIT_CHANCE = 0.5      # overfitting needs the training loss below half of the chance loss
OVERFIT_RISE = 1.05       # ... and the validation loss 5 % above its minimum
OVERFIT_EPOCHS = 3        # ... for at least 3 epochs after it
OVERFIT_Z = 2.0           # ... ending 2 standard errors (of the validation mean) above the training loss
UNDERFIT_SHARE = 0.10     # the last fifth of the epochs brought ≥ 10 % of the loss's whole fall
UNDERFIT_ACCURACY = 0.9   # training accuracy below this at the end
UNDERFIT_FALL = 0.05      # ... or the training loss fell ≥ 5 % of its value over the last fifth of epochs
UNDERFIT_LOSS = 0.1       # ... to its lowest, still above a tenth of the chance loss (validation not rising)
UNDERFIT_R2 = 0.2         # regression: the training loss explains < 20 % of the target's variance (R² < 0.2)
STALLED_CHANGE = 0.01     # the loss moved by less than 1 % over ≥ 5 epochs
# Learning rates above these, with a symptom of too large steps, are named as the cause. SGD's
# default is 0.1; momentum multiplies the step by about 1/(1 − μ) = 10; Adam's default is 0.001.
LR_CEILING = {"sgd": 1.0, "momentum": 0.3, "nesterov": 0.3, "adam": 0.01}
# Below its optimizer's default (below 1e-3 when the optimizer is unknown), a learning rate is not
# blamed for a loss that exploded: large initial weights or unscaled inputs are the likelier cause.
LR_DEFAULT = {"sgd": 0.1, "momentum": 0.1, "nesterov": 0.1, "adam": 0.001}


@dataclass
class Finding:
    """One problem: a code (``vanishing_gradients`` ...), a title, the evidence, what to try; where it
    applies, the layer (1-based), the epoch (1-based) and the figure that triggered it."""

    code: str
    title: str
    evidence: str
    suggestion: str
    severity: str = "warning"
    layer: int | None = None
    epoch: int | None = None
    value: float | None = None


@dataclass
class Check:
    """One check of the diagnosis: its name (the code it can report), what it measures, whether it
    ran, and a note (why it could not run, or what it saw)."""

    name: str
    measures: str
    ran: bool = True
    note: str = ""


class DeadUnitMonitor(Callback):
    """Records ``dead_fraction`` (a list, layer 1 first) at the end of each epoch: for every hidden ReLU
    layer, the fraction of its units whose activation A = max(0, Z) was 0 for every row of every batch
    of the epoch (such a unit passed no gradient back all epoch: relu'(Z) = 0, so nothing revives it);
    None for other layers. No key at all when the network has no hidden ReLU layer.

    Cheap: after each batch, one column maximum of the cached A per ReLU layer, folded into a running
    maximum (``deltaprop train`` attaches it to every run; history.csv gets ``dead_fraction_<layer>``).
    An epoch resumed after an interruption was not seen whole by this process: its fractions are None
    (unknown) rather than a figure from part of the epoch, which would overstate the dead units."""

    uses_grads = False  # it reads the activations only

    def on_train_begin(self, trainer: Trainer) -> None:
        layers = trainer.net.layers
        self.relu = [i for i, layer in enumerate(layers[:-1]) if layer.activation.name == "relu"]
        self.peak: dict[int, np.ndarray] = {}

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        self.peak = {}
        self.part_of_epoch = trainer.batch > 0  # resumed inside the epoch: its first batches are not seen

    def on_batch_end(self, trainer: Trainer, batch: int, cost: float) -> None:
        layers = trainer.net.layers
        for i in self.relu:
            A = layers[i].A
            peak = self.peak.get(i)
            if peak is None:
                self.peak[i] = A.max(axis=0)
            else:
                np.maximum(peak, A.max(axis=0), out=peak)

    def on_epoch_end(self, trainer: Trainer, logs: dict) -> None:
        if not getattr(self, "relu", None):
            return
        fractions = [None] * len(trainer.net.layers)
        for i in self.relu:
            peak = self.peak.get(i)
            if peak is not None and not getattr(self, "part_of_epoch", False):
                fractions[i] = float(np.mean(peak <= 0))
        logs["dead_fraction"] = fractions


def mean_baseline(trainer: Trainer) -> dict | None:
    """The loss of always predicting the mean ȳ of the training targets, for squared error (None for other
    losses): ``loss`` on the training rows, ½ Σ_k (1/m) Σ_i (y_ik − ȳ_k)² = ½ Σ_k Var(y_k), and ``val_loss``
    on the validation rows, ½ Σ_k (1/n) Σ_i (y_ik − ȳ_k)², each in the loss's own scaling (the standardised
    target when the trainer standardised it, where the training figure is ½ per output; ÷ K with
    ``output_mean``). The regression counterpart of the chance loss: R² = 1 − loss / baseline."""
    loss = trainer.net.loss
    if loss.name != "squared_error" or trainer.Y.shape[0] == 0:
        return None
    Y = np.asarray(trainer.Y, dtype=np.float64)
    mean = Y.mean(axis=0)

    def constant(Y):
        A = np.broadcast_to(mean, Y.shape)
        return float(loss.value(A, A, Y)) / Y.shape[0]

    out = {"loss": constant(Y), "predicting": "the mean of the training targets"}
    if trainer.val is not None and trainer.val[1].shape[0]:
        out["val_loss"] = constant(np.asarray(trainer.val[1], dtype=np.float64))
    return out


def dead_units(net, X) -> list:
    """For each hidden ReLU layer, the fraction of units inactive (Z ≤ 0) on every row of X; None elsewhere."""
    net.forward(X, cache=True)
    out = []
    for i, layer in enumerate(net.layers):
        hidden_relu = i < len(net.layers) - 1 and layer.activation.name == "relu"
        out.append(float(np.mean(np.all(layer.Z <= 0, axis=0))) if hidden_relu else None)
    return out


# -- reading runs ------------------------------------------------------------------------------------------

def _number(text):
    if text is None:
        return None
    if isinstance(text, bool):
        return float(text)
    if isinstance(text, (int, float)):
        return float(text)
    text = str(text).strip()
    if text == "" or text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _clean(row) -> dict:
    """A history row with string keys and numbers (lists of per-layer figures spread into key_l)."""
    out = {}
    for k, v in dict(row).items():
        if not isinstance(k, str):
            continue  # csv.DictReader's key None holds the cells of a row longer than the header
        if isinstance(v, (list, tuple)):
            for i, x in enumerate(v, 1):
                out[f"{k}_{i}"] = _number(x) if not isinstance(x, (list, tuple, dict)) else None
        elif not isinstance(v, dict):
            out[k] = _number(v)
    return out


def read_history(source) -> tuple[list[dict], str]:
    """(rows, stop_reason) from a History, a DivergenceError, a list of row dicts, a history.csv or
    history.json file, or a run directory holding one of them. Unreadable cells become NaN in the
    checks; a file that is not a history at all is a DataError."""
    if isinstance(source, DivergenceError):
        hist = source.history or History()
        reason = hist.stop_reason or f"diverged at epoch {source.epoch}, batch {source.batch}"
        return [_clean(r) for r in hist.to_rows()], reason
    if isinstance(source, History):
        return [_clean(r) for r in source.to_rows()], source.stop_reason or ""
    if isinstance(source, (list, tuple)):
        if not all(isinstance(r, dict) for r in source):
            raise DataError("history rows must be dicts (History.to_rows())", "pass history.to_rows() or a History")
        return [_clean(r) for r in source], ""
    path = Path(source)
    if path.is_dir():
        for name in ("history.csv", "history.json"):
            if (path / name).exists():
                path = path / name
                break
        else:
            raise DataError(f"no history.csv or history.json in {path}",
                            "pass the directory a training run wrote (deltaprop train --out DIR), or a History")
    if not path.exists():
        raise DataError(f"no such file or directory: {path}", "pass a run directory, history.csv or a History")
    if path.suffix.lower() in (".onnx", ".safetensors", ".npz", ".npy", ".pt", ".pth", ".pkl"):
        raise DataError(f"{path} is a model or data file, not a training history",
                        "pass the run directory a `deltaprop train` run wrote (or its history.csv); a network "
                        "imported from elsewhere has no training history here: explain, trace or gradcheck it")
    from deltaprop.io.files import check_regular  # a FIFO or a device would block or never end

    check_regular(path, "history file", DataError, "pass a run directory, history.csv or a History")
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read {path} as JSON ({exc})", "pass the history.json a run wrote") from None
        epochs = data.get("epochs") if isinstance(data, dict) else data
        if not isinstance(epochs, list) or not all(isinstance(e, dict) for e in epochs):
            raise DataError(f"{path} holds no list of epochs", "pass the history.json a run wrote (History.to_dict())")
        reason = data.get("stop_reason") if isinstance(data, dict) else ""
        return [_clean(e) for e in epochs], reason if isinstance(reason, str) else ""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [_clean(r) for r in csv.DictReader(f)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {path} as CSV ({exc})", "pass the history.csv a run wrote") from None
    if rows and "loss" not in rows[0]:
        raise DataError(f"{path} has no 'loss' column (columns: {', '.join(rows[0])})",
                        "pass the history.csv written by deltaprop train (History.to_rows())")
    return rows, ""


def per_layer(rows, key) -> np.ndarray | None:
    """(epochs, layers) array of ``key_1, key_2, ...`` (NaN where missing), or None when absent."""
    if not rows:
        return None
    pat = re.compile(rf"^{re.escape(key)}_(\d+)$")
    idx = sorted({int(m.group(1)) for r in rows for c in r if isinstance(c, str) for m in [pat.match(c)] if m})
    if not idx:
        return None
    arr = np.full((len(rows), max(idx)), np.nan)
    for e, r in enumerate(rows):
        for k in idx:
            v = r.get(f"{key}_{k}")
            if isinstance(v, float):
                arr[e, k - 1] = v
    return arr


def column(rows, key) -> np.ndarray:
    return np.array([r.get(key) if isinstance(r.get(key), float) else np.nan for r in rows], dtype=float)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _model_info(path: Path) -> dict:
    """What a run's model file records of the run, shaped as metrics.json ({} when unreadable)."""
    import deltaprop

    try:
        net = deltaprop.load(path)
    except Exception:  # a damaged model file: nothing to add, the history decides
        return {}
    training = net.meta.get("training") if isinstance(net.meta.get("training"), dict) else {}
    config = {}
    m = re.match(r"(\w+)\(lr=([0-9.eE+-]+)", str(training.get("optimizer", "")))
    if m:
        try:
            config = {"optimizer": m.group(1).lower(), "lr": float(m.group(2))}
        except ValueError:
            pass
    return {"status": training.get("status"), "stop_reason": training.get("stop_reason"), "config": config,
            "network": {"sizes": net.sizes, "activations": net.activations, "loss": net.loss.name},
            "data": {"classes": net.meta.get("classes")}}


# -- what the checks read ------------------------------------------------------------------------------------

_SYNTAX = {  # name: (command-line flag, Python keyword)
    "lr": ("--lr", "lr"), "epochs": ("--epochs", "epochs"), "layers": ("--layers", "sizes"),
    "activation": ("--activation", "hidden"), "optimizer": ("--optimizer", "optimizer"), "l2": ("--l2", "l2"),
    "early_stopping": ("--early-stopping", "early_stopping"), "init": ("--init", "init"),
    "scale": ("--scale", "scale"), "val_fraction": ("--val-fraction", "validation_fraction"),
}


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _last_epochs(k: int) -> str:
    """'epoch' or 'k epochs', after "the last"."""
    return "epoch" if k == 1 else f"{k} epochs"


class _Run:
    """Everything the checks read about one run, and the syntax its remedies are written in."""

    def __init__(self, run, syntax: str, optimizer=None, net=None, X=None):
        self.syntax = "command" if syntax in ("command", "cli") else "python"
        self.trainer = run if hasattr(run, "history") and hasattr(run, "optimizer") else None
        source = self.trainer.history if self.trainer is not None else run
        self.info: dict = {}
        directory = None
        if isinstance(run, (str, Path)):
            directory = Path(run) if Path(run).is_dir() else Path(run).parent
            self.info = _read_json(directory / "metrics.json")
        if directory is not None and not self.info and Path(run).is_dir() and (directory / "model.safetensors").is_file():
            self.info = _model_info(directory / "model.safetensors")
        try:
            self.rows, self.stop_reason = read_history(source)
        except DataError:
            # A run that diverged in its first epoch has no history to write: what metrics.json (or
            # the model file's own record) says of how it ended is all there is to read.
            if not (Path(run).is_dir() and self.info):
                raise
            self.rows, self.stop_reason = [], ""
        self.source = str(run) if isinstance(run, (str, Path)) else ""
        self.directory = directory
        info = self.info
        self.status = info.get("status") if isinstance(info.get("status"), str) else ""
        if not self.stop_reason and isinstance(info.get("stop_reason"), str):
            self.stop_reason = info["stop_reason"]
        self.n = len(self.rows)
        self.loss, self.val = column(self.rows, "loss"), column(self.rows, "val_loss")
        self.acc, self.val_acc = column(self.rows, "accuracy"), column(self.rows, "val_accuracy")
        self.lr = column(self.rows, "lr")
        self.val_se = column(self.rows, "val_loss_se")  # s/√n of the validation loss (absent before 2026-12)
        self.dW = per_layer(self.rows, "dW_norm")
        self.dead = per_layer(self.rows, "dead_fraction")
        # The network: from a net given, a Trainer, or metrics.json.
        network = info.get("network") if isinstance(info.get("network"), dict) else {}
        the_net = net if net is not None else (self.trainer.net if self.trainer is not None else None)
        if the_net is not None:
            self.activations, self.loss_name, self.n_out = list(the_net.activations), the_net.loss.name, the_net.sizes[-1]
        else:
            acts = network.get("activations")
            self.activations = [str(a) for a in acts] if isinstance(acts, list) else None
            self.loss_name = network.get("loss") if isinstance(network.get("loss"), str) else None
            sizes = network.get("sizes")
            self.n_out = sizes[-1] if isinstance(sizes, list) and sizes and isinstance(sizes[-1], int) else None
        # Chance: the loss and accuracy of a network that knows nothing but the class frequencies.
        data = info.get("data") if isinstance(info.get("data"), dict) else {}
        classes = data.get("classes")
        self.k = len(classes) if isinstance(classes, list) and len(classes) >= 2 else None
        if self.k is None and self.loss_name == "cross_entropy" and self.n_out:
            self.k = self.n_out
        self.chance = self.chance_how = None
        if self.loss_name == "cross_entropy" and self.k:
            self.chance, self.chance_how = math.log(self.k), f"ln {self.k} = {math.log(self.k):.4g}"
        elif self.loss_name == "binary_cross_entropy" and self.n_out:
            self.chance = self.n_out * math.log(2)
            self.chance_how = (f"{self.n_out}·ln 2 = {self.chance:.4g}" if self.n_out > 1 else f"ln 2 = {self.chance:.4g}")
        self._regression_baseline(info, data, the_net)
        self._validation_rows(info, data)
        # The loss of a network that knows nothing: chance for classes, the training mean for squared error.
        self.null, self.null_how = ((self.chance, self.chance_how) if self.chance is not None
                                    else (self.baseline, self.baseline_how))
        test = info.get("test") if isinstance(info.get("test"), dict) else {}
        self.test_r2 = float(test["r2"]) if isinstance(test.get("r2"), (int, float)) else None
        self.test_acc = test.get("accuracy") if isinstance(test.get("accuracy"), (int, float)) else None
        self.majority = self.majority_how = None
        cm = test.get("confusion_matrix")
        try:
            counts = np.asarray(cm, dtype=float).sum(axis=1) if cm is not None else None
        except (TypeError, ValueError):
            counts = None
        if counts is not None and counts.ndim == 1 and counts.size >= 2 and counts.sum() > 0:
            self.majority = float(counts.max() / counts.sum())
            self.majority_how = f"the largest class holds {self.majority:.1%} of the test rows"
        elif self.k:
            self.majority, self.majority_how = 1.0 / self.k, f"1/{self.k} for {self.k} balanced classes"
        # The optimizer and its learning rate.
        config = info.get("config") if isinstance(info.get("config"), dict) else {}
        name = optimizer
        if name is None and self.trainer is not None:
            name = type(self.trainer.optimizer).__name__.lower()
        if name is None and isinstance(config.get("optimizer"), str):
            name = config["optimizer"]
            if name == "sgd" and isinstance(config.get("momentum"), (int, float)) and config["momentum"] > 0:
                name = "momentum"
        self.optimizer = None if name is None else str(getattr(name, "name", name)).lower()
        if self.optimizer not in LR_CEILING:
            self.optimizer = {"sgd": "sgd"}.get(self.optimizer, self.optimizer)
        finite_lr = self.lr[np.isfinite(self.lr)]
        self.lr_value = float(finite_lr[-1]) if finite_lr.size else (
            float(config["lr"]) if isinstance(config.get("lr"), (int, float)) else None)
        self.best_epoch = info.get("best_epoch") if isinstance(info.get("best_epoch"), int) else None
        if self.trainer is not None:
            self.best_epoch = self.trainer.history.best_epoch
        elif hasattr(run, "best_epoch"):
            self.best_epoch = run.best_epoch
        self.restored = "restored the weights" in (self.stop_reason or "")
        # Dead units measured on data given now (a net and X, or the run's model and X).
        self.probe, self.probe_how = None, ""
        if X is not None:
            if the_net is None and directory is not None and (directory / "model.safetensors").exists():
                import deltaprop

                the_net = deltaprop.load(directory / "model.safetensors")
                self.activations = list(the_net.activations)
            if the_net is not None:
                self.probe = dead_units(the_net, X)
                self.probe_how = f"the {np.shape(X)[0]} rows given"

    def _regression_baseline(self, info: dict, data: dict, net) -> None:
        """``baseline`` and ``val_baseline``: for squared error, the loss of always predicting the mean of
        the training targets (R² = 1 − loss / baseline), from the Trainer, metrics.json's ``baseline``, or,
        for a run written before metrics.json recorded it, from the target scaling (½ per output on the
        standardised target); ``baseline_how`` says which. None when unknown."""
        self.baseline = self.val_baseline = None
        self.baseline_how = ""
        if self.loss_name != "squared_error":
            return
        recorded = mean_baseline(self.trainer) if self.trainer is not None else info.get("baseline")
        scaled = data.get("target_scaling") if "target_scaling" in data else (
            net.meta.get("target_scaling") if net is not None else None)
        target = ("standardised " if isinstance(scaled, dict) else "") + (
            "target" if (self.n_out or 1) == 1 else f"{self.n_out} targets")
        var = "½·Var" if (self.n_out or 1) == 1 else "½·Σ Var"
        known = isinstance(recorded, dict) and isinstance(recorded.get("loss"), (int, float))
        if known and recorded["loss"] > 0:
            self.baseline = float(recorded["loss"])
            val = recorded.get("val_loss")
            self.val_baseline = float(val) if isinstance(val, (int, float)) and val > 0 else None
            self.baseline_how = f"predicting the training mean ({var} of the {target} = {self.baseline:.3g})"
        elif isinstance(scaled, dict) and self.n_out:
            per_output = bool(getattr(getattr(net, "loss", None), "output_mean", False))
            self.baseline = self.val_baseline = 0.5 if per_output else 0.5 * self.n_out
            self.baseline_how = (f"predicting the training mean ({var} of the {target} = "
                                 f"{self.baseline:.3g}; this run's metrics.json, written by an older "
                                 "deltaprop, does not record it, so the validation rows are taken to "
                                 "have the same)")

    def _validation_rows(self, info: dict, data: dict) -> None:
        """``n_val``: how many rows the validation loss is a mean over (None when unknown), and
        ``val_rows``, the same in words ('12 validation rows'; for an older run whose metrics.json does
        not record the count, the share of the training rows its options held out)."""
        self.n_val, self.val_rows = None, "the validation rows"
        if self.trainer is not None and self.trainer.val is not None:
            self.n_val = int(self.trainer.val[0].shape[0])
        elif isinstance(data.get("validation_rows"), int) and not isinstance(data["validation_rows"], bool):
            self.n_val = data["validation_rows"]
        else:
            config = info.get("config") if isinstance(info.get("config"), dict) else {}
            fraction, rows = config.get("val_fraction"), data.get("train_rows")
            if isinstance(fraction, (int, float)) and isinstance(rows, int) and 0 < fraction < 1:
                self.val_rows = f"the validation rows ({fraction:.0%} of {rows} training rows)"
        if self.n_val is not None:
            self.val_rows = _plural(self.n_val, "validation row")

    def r2(self, loss: float, validation: bool = False) -> float | None:
        """1 − loss / baseline: the share of the target's variance a regression loss explains."""
        base = self.val_baseline if validation else self.baseline
        return None if base is None or not math.isfinite(loss) else 1.0 - loss / base

    # -- words --------------------------------------------------------------------------------------------
    def arg(self, name: str, value=None) -> str:
        """An option as the reader types it: ``--lr 0.01`` from the command, ``lr=0.01`` in Python."""
        flag, kw = _SYNTAX.get(name, ("--" + name.replace("_", "-"), name))
        text = f"{value:g}" if isinstance(value, float) else str(value)
        if self.syntax == "command":
            return f"`{flag}`" if value is None else f"`{flag} {text}`"
        if value is None:
            return f"`{kw}=...`"
        return f"`{kw}={value!r}`" if isinstance(value, str) else f"`{kw}={text}`"

    def smaller_lr(self) -> str:
        if self.lr_value:
            lower = float(f"{self.lr_value / 10:.2g}")
            return f"{self.arg('lr', lower)} (a tenth of {self.lr_value:g})"
        return f"a tenth of it ({self.arg('lr')})"

    def hidden(self) -> list[str]:
        return list(self.activations[:-1]) if self.activations else []

    def gradient_norms(self) -> np.ndarray:
        """‖dW_l‖ per epoch (rows) and layer (columns), as the history recorded them; the check that asks
        is skipped when the history has no dW_norm_<layer> columns."""
        if self.dW is None:
            raise _Skip("no dW_norm_<layer> columns in the history")
        return self.dW

    def act(self, layer: int) -> str:
        """The activation of layer ``layer`` (1-based), or '' when unknown."""
        if self.activations and 1 <= layer <= len(self.activations):
            return self.activations[layer - 1]
        return ""

    def final_accuracy(self):
        """(the best of the last training, validation and test accuracies, which ones)."""
        seen = []
        for name, arr in (("training", self.acc), ("validation", self.val_acc)):
            ok = arr[np.isfinite(arr)]
            if ok.size:
                seen.append((name, float(ok[-1])))
        if self.test_acc is not None:
            seen.append(("test", float(self.test_acc)))
        return seen


    def reference(self) -> tuple[float | None, str]:
        """(the loss of a network that knows nothing, in words): the chance loss, for squared error the
        loss of predicting the training mean, else the first epoch's loss."""
        if self.chance is not None:
            return self.chance, f"the chance loss ({self.chance_how})"
        if self.baseline is not None:
            return self.baseline, f"the loss of {self.baseline_how}"
        first = float(self.loss[0]) if self.n and np.isfinite(self.loss[0]) else None
        return first, "the first epoch's loss"

    def final_r2(self) -> list[tuple[str, float]]:
        """[(which rows, R²)] at the end, training first: 1 − loss / the loss of predicting the training mean
        (the test figure is metrics.json's, against the test rows' own mean)."""
        out = []
        for name, curve, validation in (("training", self.loss, False), ("validation", self.val, True)):
            finite = curve[np.isfinite(curve)]
            r2 = self.r2(float(finite[-1]), validation) if finite.size else None
            if r2 is not None:
                out.append((name, r2))
        if self.test_r2 is not None and out:
            out.append(("test", self.test_r2))  # against the test rows' own mean: R² as evaluate prints it
        return out

    def scale_hint(self) -> str:
        if self.syntax == "command":
            return "`--scale standard`"
        return "inputs scaled to mean 0 and variance 1 per column"

    def lr_text(self) -> str:
        return f" (learning rate {self.lr_value:g})" if self.lr_value else ""


# -- the checks: each returns (findings, note) or raises _Skip(why it cannot run) ---------------------------

class _Skip(Exception):
    """A check that cannot run on this run; the message says why."""


_CAUSES = ("diverged", "loss_exploded", "zero_gradients", "vanishing_gradients", "exploding_gradients", "dead_relu",
           "lr_too_high")


_CAUSE_WORDS = {"diverged": "the cost diverged", "loss_exploded": "the loss exploded in epoch 1",
                "zero_gradients": "zero gradients", "vanishing_gradients": "vanishing gradients",
                "exploding_gradients": "exploding gradients", "dead_relu": "dead ReLU units",
                "lr_too_high": "a learning rate too high", "learned_nothing": "nothing learned"}


def _ranges(numbers: list[int]) -> str:
    """'1–88, 90' for [1, 2, ..., 88, 90]."""
    parts, start = [], None
    for i, k in enumerate(numbers):
        if start is None:
            start = k
        if i + 1 == len(numbers) or numbers[i + 1] != k + 1:
            parts.append(f"{start}" if start == k else f"{start}–{k}")
            start = None
    return ", ".join(parts)


def _layers_text(run: _Run, layers: list[int]) -> str:
    """'1–2 (relu), 3 (softmax)': layer numbers grouped by activation where the activations are known."""
    if not all(run.act(k) for k in layers):
        return _ranges(layers)
    groups: list[tuple[str, list[int]]] = []
    for k in layers:
        if groups and groups[-1][0] == run.act(k) and groups[-1][1][-1] == k - 1:
            groups[-1][1].append(k)
        else:
            groups.append((run.act(k), [k]))
    return ", ".join(f"{_ranges(ks)} ({act})" for act, ks in groups)


def _r2_words(r2s: list[tuple[str, float]]) -> str:
    """'0.76 on the training rows, 0.25 on the validation rows'."""
    return ", ".join(f"{r:.2f} on the {name} rows" + (" (against their own mean)" if name == "test" else "")
                     for name, r in r2s)


def _epoch_of(text: str):
    m = re.search(r"epoch (\d+)", text or "")
    return int(m.group(1)) if m else None


def check_diverged(run: _Run, found: list) -> tuple[list, str]:
    """The cost became infinite or NaN (the trainer stopped with a DivergenceError)."""
    bad_row = next((i for i, r in enumerate(run.rows)
                    if isinstance(r.get("loss"), float) and not math.isfinite(r["loss"])), None)
    diverged = "diverg" in run.stop_reason.lower() or run.status == "diverged" or bad_row is not None
    if not diverged:
        return [], ""
    epoch = _epoch_of(run.stop_reason) or (None if bad_row is None else bad_row + 1)
    what = run.stop_reason or "a non-finite loss in the history"
    return [Finding(
        "diverged", "Training diverged",
        f"The cost became infinite or NaN ({what}) after {_plural(run.n, 'complete epoch')}{run.lr_text()}.",
        f"lower the learning rate, {run.smaller_lr()}; scale the inputs ({run.scale_hint()}); or add L2 "
        f"({run.arg('l2', 0.01)}). The trainer restored the weights of the last epoch whose weights were finite.",
        "error", epoch=epoch, value=run.lr_value)], ""


def check_loss_exploded(run: _Run, found: list) -> tuple[list, str]:
    """The first epoch's mean training loss above EXPLODED_FACTOR × the chance loss."""
    if run.null is None:
        raise _Skip("no chance loss to compare with (the number of classes unknown; for squared error, the "
                    "loss of predicting the training mean unknown)")
    if not run.n or not np.isfinite(run.loss[0]):
        raise _Skip("no finite loss of a first epoch")
    first = float(run.loss[0])
    if first <= EXPLODED_FACTOR * run.null:
        against = f"chance ({run.chance_how})" if run.chance is not None else f"the loss of {run.null_how}"
        return [], f"epoch 1's loss {_fmt(first)} is within {EXPLODED_FACTOR}× {against}"
    later = run.loss[1:][np.isfinite(run.loss[1:])]
    after = (f" Later epochs were lower (down to {_fmt(float(later.min()))}), but the blow-up had already thrown "
             "the weights far from where they started: ReLU units die and sigmoid units saturate there."
             if later.size and later.min() < first else "")
    if _lr_small(run):
        why = (": the learning rate is small, so the weights themselves started too large for these inputs, or the "
               "inputs are far from unit scale")
        fix = (f"scale the inputs ({run.scale_hint()}) and start from Glorot or He initialization (the default; "
               f"{run.arg('init', 'glorot')}) instead of larger weights.")
    else:
        why = ": some step early in the epoch overshot"
        fix = f"lower the learning rate, {run.smaller_lr()}, and scale the inputs ({run.scale_hint()})."
    return [Finding(
        "loss_exploded", "The loss exploded in the first epoch",
        f"The mean training loss of epoch 1 was {_fmt(first)}, {first / run.null:.3g} times the loss of a "
        f"network that knows nothing ({run.null_how}){run.lr_text()}{why}.{after}", fix, "error", epoch=1,
        value=first)], ""


def check_zero_gradients(run: _Run, found: list) -> tuple[list, str]:
    """‖dW_l‖ = 0 in a layer (any layer, the last included) at the last epoch."""
    dW = run.gradient_norms()
    last = dW[-1]
    zero = [l for l in range(last.size) if np.isfinite(last[l]) and last[l] <= ZERO_NORM]
    if not zero:
        return [], ""
    final = run.loss[np.isfinite(run.loss)]
    if final.size and final[-1] < 1e-6:
        return [], "dW is 0 because the loss is 0: a perfect fit"
    since = {}
    for l in zero:
        e = dW.shape[0] - 1
        while e > 0 and np.isfinite(dW[e - 1, l]) and dW[e - 1, l] <= ZERO_NORM:
            e -= 1
        since[l] = e + 1
    layers = _layers_text(run, [l + 1 for l in zero])
    first = min(since.values())
    cause = ""
    dead = run.dead[-1] if run.dead is not None else None
    if dead is not None:
        full = [l + 1 for l in range(dead.size) if np.isfinite(dead[l]) and dead[l] >= 0.999]
        if full:
            k = full[-1]
            j = k + 1
            cause = (f" Every unit of ReLU layer {k} was inactive for the whole epoch, so $A^{{[{k}]}} = 0$: "
                     f"$dW^{{[{j}]}} = \\delta^{{[{j}]\\top}} A^{{[{k}]}} = 0$, and "
                     f"$\\delta^{{[{k}]}} = (\\delta^{{[{j}]}} W^{{[{j}]}}) \\odot \\mathrm{{relu}}'(Z^{{[{k}]}}) = 0$, "
                     "which zeroes every gradient below it.")
    smooth = [a for a in run.hidden() if a in ("sigmoid", "tanh")]
    if not cause and smooth:
        cause = (f" δ shrank by the {'/'.join(sorted(set(smooth)))} derivative in every layer until it fell below the "
                 "smallest number the data type holds (underflow).")
    if "relu" in run.hidden() and not smooth:
        fix = (f"lower the learning rate, {run.smaller_lr()}, so that no step kills the units; or use leaky ReLU "
               f"({run.arg('activation', 'leaky_relu')}), whose units keep a slope of 0.01 below 0.")
    else:
        fix = (f"use ReLU hidden units ({run.arg('activation', 'relu')}, He initialization by default) or fewer "
               "layers.")
    return [Finding(
        "zero_gradients", "Zero gradients",
        f"‖dW‖ was exactly 0 in layer{'s' if len(zero) > 1 else ''} {layers} at the last epoch ({run.n}), "
        f"since epoch {first}: {'these layers' if len(zero) > 1 else 'this layer'} no longer learn{'' if len(zero) > 1 else 's'}."
        + cause, fix, "error", layer=zero[0] + 1, epoch=first, value=0.0)], ""


def _measured(dW: np.ndarray) -> np.ndarray:
    """The epochs (a mask over the rows of dW) where every layer's ‖dW_l‖ is finite and above zero, so
    that ratios between layers mean something."""
    return np.all(np.isfinite(dW), axis=1) & np.all(dW > ZERO_NORM, axis=1)


def _last_profile(dW: np.ndarray, good: np.ndarray) -> str:
    """‖dW_1‖, ..., ‖dW_L‖ at the last measured epoch, as the findings print them."""
    return ", ".join(_fmt(v) for v in dW[np.flatnonzero(good)[-1]])


def check_vanishing_gradients(run: _Run, found: list) -> tuple[list, str]:
    """A layer's ‖dW_l‖ below VANISHING_RATIO × the largest layer's (median over epochs); or every layer's
    below VANISHING_ABS while the loss is far from its minimum."""
    dW = run.gradient_norms()
    L = dW.shape[1]
    good = _measured(dW)
    if L >= 2 and good.any():
        ratios = dW[good] / dW[good].max(axis=1, keepdims=True)
        med = np.median(ratios, axis=0)
        l = int(np.argmin(med))
        if med[l] < VANISHING_RATIO:
            top = int(np.argmax(dW[good][-1]))
            profile = _last_profile(dW, good)
            acts = sorted({run.act(k + 1) for k in range(l, L - 1) if run.act(k + 1)})
            why = {"sigmoid": "sigmoid's g'(z) = A(1 − A) is at most 1/4",
                   "tanh": "tanh's g'(z) = 1 − A² is at most 1 and near 0 where units saturate (|z| > 2)",
                   "relu": "ReLU passes δ only through active units",
                   "leaky_relu": "leaky ReLU passes only 0.01 of δ through inactive units"}
            reasons = "; ".join(why[a] for a in acts if a in why)
            text = (f"‖dW_{l + 1}‖ is {med[l]:.2g} times the largest layer's (layer {top + 1}), the median over "
                    f"{_plural(int(good.sum()), 'epoch')}: about {round(-math.log10(med[l]))} orders of magnitude "
                    f"smaller. Per layer, 1 to {L}, at the last epoch: {profile}. On its way back δ is multiplied, "
                    f"layer after layer, by W and by g'(Z)" + (f" ({reasons})" if reasons else "")
                    + ", so it shrinks and the first layers barely learn.")
            if "sigmoid" in acts or "tanh" in acts:
                fix = (f"use ReLU hidden units ({run.arg('activation', 'relu')}, He initialization by default), or "
                       "fewer layers" + (f"; tanh ({run.arg('activation', 'tanh')}) is a smaller step: centered, with "
                                         "g' up to 1" if "sigmoid" in acts else "") + ".")
            elif acts:
                fix = f"use fewer layers, or He initialization ({run.arg('init', 'he')}) for ReLU units."
            else:
                fix = (f"if the hidden units are sigmoid or tanh, use ReLU ({run.arg('activation', 'relu')}, He "
                       "initialization by default); else use fewer layers (pass the network, net=, to have its "
                       "activations named).")
            return [Finding("vanishing_gradients", "Vanishing gradients", text, fix, layer=l + 1,
                            epoch=run.n, value=float(med[l]))], ""
    rows = np.flatnonzero(np.all(np.isfinite(dW), axis=1))
    if rows.size:
        e = int(rows[-1])
        reference = run.chance if run.chance is not None else (float(run.loss[0]) if np.isfinite(run.loss[0]) else None)
        biggest = float(dW[e].max())
        if (ZERO_NORM < biggest < VANISHING_ABS and reference is not None and np.isfinite(run.loss[e])
                and run.loss[e] > 0.5 * reference):
            return [Finding(
                "vanishing_gradients", "Vanishing gradients in every layer",
                f"At epoch {e + 1} the largest ‖dW_l‖ of all {L} layers, the last included, was {biggest:.2g} "
                f"(below {VANISHING_ABS:g}) while the loss ({_fmt(float(run.loss[e]))}) was still above half of "
                f"its {'chance level' if run.chance is not None else 'first value'}: the units are saturated.",
                f"scale the inputs ({run.scale_hint()}), use smaller initial weights ({run.arg('init', 'glorot')}) "
                f"or ReLU units ({run.arg('activation', 'relu')}).", epoch=e + 1, value=biggest)], ""
    return [], "" if L >= 2 else "one layer: nothing to compare"


def check_exploding_gradients(run: _Run, found: list) -> tuple[list, str]:
    """‖dW_1‖ / ‖dW_L‖ above EXPLODING_RATIO (median over epochs), or any ‖dW_l‖ above EXPLODING_NORM."""
    dW = run.gradient_norms()
    L = dW.shape[1]
    good = _measured(dW)
    if L >= 2 and good.any():
        ratio = float(np.median(dW[good, 0] / dW[good, -1]))
        if ratio > EXPLODING_RATIO:
            profile = _last_profile(dW, good)
            return [Finding(
                "exploding_gradients", "Exploding gradients",
                f"‖dW_1‖ is {ratio:.3g} times ‖dW_{L}‖ (median over epochs). Per layer, 1 to {L}, at the last "
                f"epoch: {profile}.",
                f"lower the learning rate ({run.smaller_lr()}), use Glorot or He initialization (the default) rather "
                f"than large weights, scale the inputs ({run.scale_hint()}), or add L2 ({run.arg('l2', 0.01)}).",
                layer=1, epoch=run.n, value=ratio)], ""
    finite = dW[np.isfinite(dW)]
    if finite.size and finite.max() > EXPLODING_NORM:
        e, l = np.unravel_index(int(np.nanargmax(np.where(np.isfinite(dW), dW, -np.inf))), dW.shape)
        return [Finding(
            "exploding_gradients", "Exploding gradients",
            f"‖dW_{l + 1}‖ reached {_fmt(float(dW[e, l]))} at epoch {e + 1} (above {EXPLODING_NORM:g}).",
            f"lower the learning rate ({run.smaller_lr()}), scale the inputs ({run.scale_hint()}), or add L2 "
            f"({run.arg('l2', 0.01)}).", layer=int(l) + 1, epoch=int(e) + 1, value=float(dW[e, l]))], ""
    return [], ""


def check_dead_relu(run: _Run, found: list) -> tuple[list, str]:
    """A hidden ReLU layer with at least DEAD_FRACTION of its units inactive (A = 0) for every row of an
    epoch's batches (history), or of the data given."""
    if run.activations is not None and "relu" not in run.hidden():
        return [], "no hidden ReLU layer"
    findings = []
    if run.probe is not None:
        bad = [(i + 1, f) for i, f in enumerate(run.probe) if f is not None and f >= DEAD_FRACTION]
        if bad:
            which = ", ".join(f"layer {l}: {f:.0%}" for l, f in bad)
            l, f = max(bad, key=lambda t: t[1])
            findings.append(Finding(
                "dead_relu", "Dead ReLU units",
                f"Units of the model that are inactive (Z ≤ 0) on every one of {run.probe_how}: {which}. A dead "
                "unit has relu'(Z) = 0 for every example, so δ is 0 there, its weights get no gradient and it "
                "never comes back.", _dead_fix(run), layer=l, value=f))
            return findings, f"measured on {run.probe_how}"
    if run.dead is None or not run.n:
        if run.probe is not None:
            return [], f"measured on {run.probe_how}"
        raise _Skip("no dead_fraction_<layer> columns in the history (deltaprop train records them; in Python "
                    "fit(..., callbacks=[DeadUnitMonitor()])) and no data to measure on (diagnose RUN --data SPEC)")
    last = run.dead[-1]
    bad = [(l + 1, float(last[l])) for l in range(last.size) if np.isfinite(last[l]) and last[l] >= DEAD_FRACTION]
    if not bad:
        return [], ""
    since = {}
    for l, _ in bad:
        col = run.dead[:, l - 1]
        e = col.size - 1
        while e > 0 and np.isfinite(col[e - 1]) and col[e - 1] >= DEAD_FRACTION:
            e -= 1
        since[l] = e + 1
    which = ", ".join(f"layer {l}: {f:.0%}" for l, f in bad)
    l, f = max(bad, key=lambda t: t[1])
    return [Finding(
        "dead_relu", "Dead ReLU units",
        f"Units of the hidden ReLU layers that were inactive (A = 0) for every row of every batch of the last epoch "
        f"({run.n}): {which}; at least {DEAD_FRACTION:.0%} since epoch {min(since.values())}. A dead unit has "
        "relu'(Z) = 0 for every example, so δ is 0 there, its weights get no gradient and it never comes back.",
        _dead_fix(run), layer=l, epoch=min(since.values()), value=f)], ""


def _dead_fix(run: _Run) -> str:
    return (f"lower the learning rate, {run.smaller_lr()}: one large step can push a unit's bias so far negative "
            f"that no example activates it again; or use leaky ReLU ({run.arg('activation', 'leaky_relu')}); and "
            f"scale the inputs ({run.scale_hint()}).")


def _lr_small(run: _Run) -> bool:
    """The learning rate is below its optimizer's default (below 1e-3 for an unknown optimizer)."""
    if run.lr_value is None:
        return False
    return run.lr_value < LR_DEFAULT.get(run.optimizer or "", 1e-3)


def _above_ceiling(run: _Run):
    """(ceiling, optimizer) when the run's learning rate is above its optimizer's usual ceiling, else None."""
    if run.optimizer in LR_CEILING and run.lr_value is not None and run.lr_value > LR_CEILING[run.optimizer]:
        return LR_CEILING[run.optimizer], run.optimizer
    return None


def check_learned_nothing(run: _Run, found: list) -> tuple[list, str]:
    """Accuracy at the end no better than the majority class's share + CHANCE_MARGIN (training,
    validation and test alike); without accuracy, the final loss at least 0.95 × the chance loss."""
    accs = run.final_accuracy()
    loss = run.loss[np.isfinite(run.loss)]
    if accs and run.majority is not None:
        at_chance = all(a <= run.majority + CHANCE_MARGIN for _, a in accs)
        shown = ", ".join(f"{name} {a:.1%}" for name, a in accs)
        figure = max(a for _, a in accs)
        how = (f"The accuracy at the end ({shown}) is no better than always answering the largest class "
               f"({run.majority:.1%}: {run.majority_how}).")
    elif run.chance is not None and loss.size:
        at_chance = loss[-1] >= 0.95 * run.chance
        figure = float(loss[-1])
        how = f"The final training loss {_fmt(figure)} is at the loss of a network that knows nothing ({run.chance_how})."
    elif run.baseline is not None and loss.size:
        r2s = run.final_r2()
        at_chance = all(r <= CHANCE_MARGIN for _, r in r2s)  # the loss ≥ 0.95 × predicting the mean
        figure = max(r for _, r in r2s)
        how = (f"At the end the network explains almost none of the target's variance: R² {_r2_words(r2s)}, "
               f"against {run.baseline_how}. It does no better than always predicting the mean.")
    else:
        raise _Skip("no accuracy and no loss of a network that knows nothing to compare with (a regression "
                    "loss other than squared error, or a history without its network)")
    if not at_chance:
        return [], ""
    if run.chance is not None and loss.size and accs:
        rel = "above" if loss[-1] > 1.05 * run.chance else "at"
        how += f" The final training loss {_fmt(float(loss[-1]))} is {rel} the chance loss ({run.chance_how})."
    causes = [c for c in _CAUSES if c in [f.code for f in found]]
    ceiling = _above_ceiling(run)
    seen = [_CAUSE_WORDS[c] for c in causes]
    if ceiling:
        seen.append(f"a learning rate of {run.lr_value:g} for {ceiling[1]} (above {ceiling[0]:g})")
    cause = (f" Causes seen: {', '.join(seen)} (see the other findings)." if seen else
             " No cause shows in the recorded figures.")
    fix = ("fix the causes named in the other findings first." if seen else
           f"check that the {'targets' if run.chance is None else 'labels'} belong to the inputs, scale the "
           f"inputs ({run.scale_hint()}), and try a learning "
           f"rate 3 to 10 times larger or smaller ({run.arg('lr')}).")
    return [Finding("learned_nothing", "The network learned nothing", how + cause, fix, "error", epoch=run.n,
                    value=figure)], ""


def check_lr_too_high(run: _Run, found: list) -> tuple[list, str]:
    """The loss overshoots (divergence, a blow-up in epoch 1, a spike above the start, or rises in ≥ 30 %
    of the epochs with a jump of 1.5×); or the learning rate is above its optimizer's usual ceiling
    (LR_CEILING) while a symptom of too large steps shows (dead units, zero gradients, nothing learned)."""
    codes = [f.code for f in found]
    finite = run.loss[np.isfinite(run.loss)]
    rises = np.diff(finite) > 0 if finite.size > 1 else np.array([], dtype=bool)
    big = [(i, finite[i], finite[i + 1]) for i in range(finite.size - 1) if finite[i + 1] > 1.5 * finite[i]]
    oscillating = finite.size >= 5 and rises.mean() >= 0.3 and len(big) >= 1
    spikes = [(i, a, b) for i, a, b in big if b > 3 * a and b > finite[0]]
    ceiling = _above_ceiling(run)
    symptoms = [c for c in ("dead_relu", "zero_gradients", "learned_nothing", "exploding_gradients") if c in codes]
    ev = ""
    if spikes and not oscillating:
        i, a, b = max(spikes, key=lambda t: t[2] / t[1])
        ev = (f"The loss jumped from {_fmt(a)} to {_fmt(b)} between epochs {i + 1} and {i + 2}, above where it "
              f"started{run.lr_text()}: a step overshot the minimum and threw the weights far up the loss surface.")
    elif oscillating:
        i, a, b = max(big, key=lambda t: t[2] / t[1])
        ev = (f"The loss went up in {int(rises.sum())} of {rises.size} epochs, once from {_fmt(a)} to {_fmt(b)} between "
              f"epochs {i + 1} and {i + 2}{run.lr_text()}: the steps overshoot the minimum instead of descending into it.")
    elif "diverged" in codes:
        ev = f"A diverging cost almost always means steps too large for the curvature of the loss{run.lr_text()}."
    elif "loss_exploded" in codes and not _lr_small(run):
        ev = f"The loss blew up in the first epoch{run.lr_text()}."
    elif ceiling and symptoms:
        ev = (f"A learning rate of {run.lr_value:g} is above what {ceiling[1]} usually tolerates ({ceiling[0]:g}), and "
              f"the run shows what too large steps do: {', '.join(_CAUSE_WORDS[c] for c in symptoms)}.")
    note = "" if run.optimizer in LR_CEILING else "optimizer unknown: only the loss curve was read"
    if not ev:
        if ceiling:
            note = f"learning rate {run.lr_value:g} is above {ceiling[1]}'s usual {ceiling[0]:g}, but no symptom shows"
        return [], note
    if ceiling and not ev.startswith("A learning rate"):
        ev += f" {run.lr_value:g} is above what {ceiling[1]} usually tolerates ({ceiling[0]:g})."
    extra = {"momentum": " Momentum multiplies the step by about 1/(1 − μ) (10 for μ = 0.9).",
             "nesterov": " Nesterov momentum multiplies the step by about 1/(1 − μ) (10 for μ = 0.9).",
             "adam": " Adam's usual range is 1e-4 to 1e-2 (its default is 0.001)."}.get(run.optimizer or "", "")
    fix = f"lower the learning rate, {run.smaller_lr()}.{extra}"
    if run.optimizer in ("sgd", None):
        fix += f" Or use Adam ({run.arg('optimizer', 'adam')} with {run.arg('lr', 0.001)})."
    return [Finding("lr_too_high", "Learning rate too high", ev, fix, value=run.lr_value)], note


def check_loss_rose(run: _Run, found: list) -> tuple[list, str]:
    """The training loss ended more than 5 % above its first epoch."""
    finite = run.loss[np.isfinite(run.loss)]
    if finite.size < 2:
        raise _Skip("fewer than two epochs with a finite loss")
    if "diverged" in [f.code for f in found] or finite[-1] <= finite[0] * 1.05:
        return [], ""
    return [Finding(
        "loss_rose", "The loss rose",
        f"The training loss ended at {_fmt(finite[-1])}, above where it started ({_fmt(finite[0])}){run.lr_text()}.",
        f"lower the learning rate ({run.smaller_lr()}); check that the targets match the loss (labels 0..K−1 for "
        f"cross-entropy) and that the inputs are scaled ({run.scale_hint()}).", epoch=run.n, value=float(finite[-1]))], ""


def check_overfitting(run: _Run, found: list) -> tuple[list, str]:
    """The validation loss rose at least OVERFIT_EPOCHS epochs after its minimum, to OVERFIT_RISE × it,
    while the training loss kept falling to below OVERFIT_CHANCE × the chance loss (the loss of
    predicting the training mean for squared error; the first epoch's loss without either), and the
    training accuracy, where there is one, reached UNDERFIT_ACCURACY (a network that still misses a tenth
    of its training rows is not memorizing them).

    And the gap is beyond the noise of the validation rows: the validation loss is a mean over n rows,
    whose standard error s/√n (``val_loss_se``, s the standard deviation of the rows' losses) the trainer
    records; at the last epoch the validation loss must lie OVERFIT_Z standard errors above the training
    loss. On a few rows one confident mistake moves the mean by its whole loss ÷ n (iris, seed 1, 200
    epochs: one of 12 rows ends at a loss of 9.6, 0.8 of the mean 0.85): such a rise is weak evidence,
    noted in the check (and atop the diagnosis), not reported. A
    history without ``val_loss_se`` (an older run) is read as before, and the finding says it was not
    weighed."""
    vmask = np.isfinite(run.val)
    if vmask.sum() < 5:
        raise _Skip("no validation loss (or fewer than 5 epochs of it)")
    v, t, epochs = run.val[vmask], run.loss[vmask], np.flatnonzero(vmask) + 1
    se, va = run.val_se[vmask], run.val_acc[vmask]
    best = int(np.argmin(v))
    after = v.size - 1 - best
    if not (after >= OVERFIT_EPOCHS and v[-1] > v[best] * OVERFIT_RISE):
        return [], ""
    reference, what = run.reference()
    memorized = np.isfinite(t[-1]) and reference is not None and t[-1] < OVERFIT_CHANCE * reference
    if not (memorized and t[-1] < t[best]):
        return [], (f"the validation loss rose, but the training loss ({_fmt(float(t[-1]))}) is not well "
                    f"below {what}: not memorization")
    acc = run.acc[np.isfinite(run.acc)]
    if acc.size and acc[-1] < UNDERFIT_ACCURACY:
        return [], (f"the validation loss rose, but the training accuracy ({acc[-1]:.1%}) is below "
                    f"{UNDERFIT_ACCURACY:.0%}: not memorization")
    if run.restored and run.best_epoch:
        return [], (f"the validation loss rose after epoch {epochs[best]}, and early stopping restored the "
                    f"weights of epoch {run.best_epoch}")
    rows = run.val_rows
    accuracy_rose = bool(np.isfinite(va[best]) and np.isfinite(va[-1]) and va[-1] > va[best])
    meanwhile = (f" The validation accuracy rose meanwhile ({va[best]:.1%} → {va[-1]:.1%}): the loss rose "
                 "because some rows became confidently wrong, not because more rows were wrong."
                 if accuracy_rose else "")
    rise = (f"The validation loss was lowest at epoch {epochs[best]} ({_fmt(v[best])}) and rose to "
            f"{_fmt(v[-1])} over the next {_plural(after, 'epoch')}, while the training loss fell from "
            f"{_fmt(t[best])} to {_fmt(t[-1])}")
    if np.isfinite(se[-1]):
        gap = float(v[-1] - t[-1])
        z = gap / se[-1] if se[-1] > 0 else (math.inf if gap > 0 else 0.0)
        noise = (f"it is a mean over {rows} with a standard error of {_fmt(float(se[-1]))} (s/√n of the "
                 f"rows' losses), and ends {z:.1f} standard errors above the training loss")
        if z < OVERFIT_Z:
            return [], (f"weak evidence, not reported: the validation loss rose from {_fmt(v[best])} (epoch "
                        f"{epochs[best]}) to {_fmt(v[-1])}, but {noise} ({_fmt(float(t[-1]))}): within the "
                        f"noise of so few rows (a finding needs {OVERFIT_Z:g} standard errors).{meanwhile} "
                        f"More validation rows ({run.arg('val_fraction', 0.2)}) would tell")
        weighed = f" The gap is beyond noise: {noise}."
    else:
        weighed = (" This history does not record how noisy the validation loss is (no val_loss_se: a run "
                   "written by an older deltaprop), so the rise was not weighed against the noise of "
                   f"{rows}: on a few dozen rows, one or two rows with large losses can make such a rise. "
                   "Train again to have it weighed.")
    stop = (f"stop early ({run.arg('early_stopping', 5)} stops after 5 epochs without a better validation "
            "loss and keeps the best weights), add L2")
    fix = (f"add L2 ({run.arg('l2', 0.1)}, up to 1), use a smaller network, or get more data. Early stopping "
           f"({run.arg('early_stopping', 5)}) would keep epoch {epochs[best]}'s weights, the lowest "
           "validation loss but the lower validation accuracy." if accuracy_rose else
           f"{stop} ({run.arg('l2', 0.1)}, up to 1), use a smaller network, or get more data.")
    return [Finding(
        "overfitting", "Overfitting",
        f"{rise}, far below {what}: the network is memorizing the training rows.{weighed}{meanwhile}", fix,
        epoch=int(epochs[best]), value=float(v[-1]))], ""


def check_underfitting(run: _Run, found: list) -> tuple[list, str]:
    """Still improving at the last epoch: the last fifth of the epochs (at least one) brought at least
    UNDERFIT_SHARE of the (validation, else training) loss's whole fall and ended at its lowest; or, for
    a loss with a chance level, the training loss fell by at least UNDERFIT_FALL of its value over the
    last fifth, to its lowest, while still above UNDERFIT_LOSS × the chance loss and the validation loss
    did not rise over those epochs (a slow but steady fall far from a fitted network: iris at Adam's
    default 30 epochs); or the final training accuracy below UNDERFIT_ACCURACY."""
    use_val = np.isfinite(run.val).sum() >= 2
    curve = run.val if use_val else run.loss
    epochs = np.flatnonzero(np.isfinite(curve)) + 1
    curve = curve[np.isfinite(curve)]
    acc = run.acc[np.isfinite(run.acc)]
    if curve.size < 2 and not acc.size:
        raise _Skip("one epoch and no accuracy: no trend to read")
    parts = []
    still = False
    if curve.size >= 2 and not run.restored:
        k = max(1, round(curve.size / 5))
        total = float(curve[0] - curve.min())
        recent = float(curve[-1 - k] - curve[-1])
        if total > 0 and recent >= UNDERFIT_SHARE * total and curve[-1] <= curve.min() * 1.005:
            still = True
            which = "validation" if use_val else "training"
            parts.append(f"The {which} loss was still falling at the last epoch: {_fmt(recent)} of its whole fall of "
                         f"{_fmt(total)} ({recent / total:.0%}) came in the last {_last_epochs(k)} (to epoch "
                         f"{epochs[-1]}), which ended at its lowest.")
    if not still and not run.restored and run.null is not None:
        loss = run.loss[np.isfinite(run.loss)]
        k = max(1, round(loss.size / 5))
        val = run.val[np.isfinite(run.val)]
        if loss.size > k:
            fall = float(loss[-1 - k] - loss[-1])
            val_steady = val.size <= k or val[-1] <= val[-1 - k]
            if (fall >= UNDERFIT_FALL * loss[-1] and loss[-1] <= loss.min() * 1.005
                    and loss[-1] > UNDERFIT_LOSS * run.null and val_steady):
                still = True
                parts.append(f"The training loss was still falling at the last epoch: it fell by "
                             f"{fall / loss[-1]:.0%} of its final value ({_fmt(loss[-1 - k])} to "
                             f"{_fmt(loss[-1])}) in the last {_last_epochs(k)}"
                             + (", the validation loss with it," if val.size > k else "")
                             + f" and is still {loss[-1] / run.null:.0%} of "
                             + (f"the chance loss ({run.chance_how})." if run.chance is not None else
                                f"the loss of {run.null_how}."))
    low = bool(acc.size) and acc[-1] < UNDERFIT_ACCURACY
    if low:
        parts.append(f"The training accuracy ended at {acc[-1]:.1%}, below {UNDERFIT_ACCURACY:.0%}.")
    # Regression: the share of the target's variance explained, R² = 1 − loss / (loss of predicting the mean).
    r2s = run.final_r2() if run.chance is None and run.baseline is not None else []
    r2_train = r2s[0][1] if r2s and r2s[0][0] == "training" else None
    if r2_train is not None and r2_train < UNDERFIT_R2 and not acc.size:
        low = True
        parts.append(f"The training loss ended near that of predicting the training mean: the network "
                     f"explains {max(r2_train, 0):.0%} of the variance of its training rows (R² "
                     f"{r2_train:.2f}, below {UNDERFIT_R2:g}).")
    if parts and r2s:
        parts.append(f"R² at the end, against {run.baseline_how}: {_r2_words(r2s)}.")
    if not parts:
        if r2s:
            return [], f"R² at the end, against {run.baseline_how}: {_r2_words(r2s)}"
        unknown = "no R²: the loss of predicting the training mean is unknown (pass the network or Trainer)"
        return [], unknown if run.loss_name == "squared_error" else ""
    causes = [f.code for f in found if f.code in _CAUSES or f.code == "learned_nothing"]
    if causes:
        return [], (f"not reported: {', '.join(_CAUSE_WORDS[c] for c in causes)} explain{'s' if len(causes) == 1 else ''} "
                    "the shortfall; fix that first")
    more = max(2 * run.n, run.n + 10)
    bigger = ("a larger network (`--layers` with wider or more layers)" if run.syntax == "command"
              else "a larger network (wider or more layers in `Network.from_sizes`)")
    fix = (f"train longer ({run.arg('epochs', more)})" + (f", or use {bigger} or a larger learning rate" if low else "")
           + "." if still else f"use {bigger}, train longer ({run.arg('epochs', more)}) or raise the learning rate.")
    value = float(acc[-1]) if low and acc.size else (r2_train if low else float(curve[-1]))
    return [Finding("underfitting", "Underfitting: the network can still learn", " ".join(parts), fix, "info",
                    epoch=run.n, value=value)], ""


def check_stalled(run: _Run, found: list) -> tuple[list, str]:
    """The loss moved by less than STALLED_CHANGE over at least 5 epochs."""
    finite = run.loss[np.isfinite(run.loss)]
    if finite.size < 5:
        raise _Skip("fewer than 5 epochs with a finite loss")
    if any(f.code in ("diverged", "loss_rose", "lr_too_high") for f in found):
        return [], ""
    change = (finite[0] - finite[-1]) / max(abs(finite[0]), 1e-12)
    if not 0 <= change < STALLED_CHANGE:
        return [], ""
    return [Finding(
        "stalled", "Training stalled",
        f"Over {finite.size} epochs the loss moved by {change:.2%} ({_fmt(finite[0])} to {_fmt(finite[-1])}).",
        f"raise the learning rate ({run.arg('lr')}), scale the inputs ({run.scale_hint()}), check the gradient flow "
        "(the other findings), or train longer.", "info", epoch=run.n, value=float(change))], ""


# name, what it measures (docs/diagnose.md has the thresholds), the function
CHECKS = [
    ("diverged", "the cost stayed finite", check_diverged),
    ("loss_exploded", "the first epoch's loss against the chance loss", check_loss_exploded),
    ("zero_gradients", "‖dW_l‖ = 0 in any layer at the last epoch", check_zero_gradients),
    ("vanishing_gradients", "each layer's ‖dW_l‖ against the largest", check_vanishing_gradients),
    ("exploding_gradients", "‖dW_1‖ against ‖dW_L‖, and the largest ‖dW_l‖", check_exploding_gradients),
    ("dead_relu", "ReLU units inactive for a whole epoch", check_dead_relu),
    ("learned_nothing", "the final accuracy against the majority class", check_learned_nothing),
    ("lr_too_high", "overshoot in the loss curve; the learning rate against its optimizer's range", check_lr_too_high),
    ("loss_rose", "the last epoch's loss against the first", check_loss_rose),
    ("overfitting", "the validation loss turning up while the training loss falls below chance", check_overfitting),
    ("underfitting", "still improving at the last epoch, or low training accuracy", check_underfitting),
    ("stalled", "the loss moving at all", check_stalled),
]


# -- the diagnosis -----------------------------------------------------------------------------------------

class Diagnosis(Renderable):
    """The findings for one run and the checks that produced them. ``codes`` lists the findings' codes;
    ``ok`` is True when there are none; ``complete`` when every check ran."""

    def __init__(self, findings: list[Finding], n_epochs: int, source: str = "",
                 checks: list[Check] | None = None) -> None:
        self.findings, self.n_epochs, self.source = findings, n_epochs, source
        self.checks = checks or []

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def complete(self) -> bool:
        return all(c.ran for c in self.checks)

    def __contains__(self, code: str) -> bool:
        return code in self.codes

    def document(self) -> Doc:
        doc = Doc()
        doc.h(1, "Diagnosis of a training run" + (f": {self.source}" if self.source else ""))
        epochs = _plural(self.n_epochs, "epoch")
        ran = [c for c in self.checks if c.ran]
        if not self.findings:
            if self.complete:
                doc.p(f"No problems found in {epochs}: all {len(ran)} checks below ran, and none fired.")
            else:
                doc.p(f"No problems found in {epochs} by the {len(ran)} checks that ran; "
                      f"{len(self.checks) - len(ran)} could not run (below), so this is not a clean bill of health.")
        else:
            doc.p(f"{len(self.findings)} finding{'s' if len(self.findings) > 1 else ''} in {epochs}:")
            for f in self.findings:
                doc.h(2, f"{f.title} (`{f.code}`)")
                doc.p(f.evidence)
                doc.p("**Try:** " + f.suggestion)
        weak = [c.name for c in self.checks if c.ran and c.note.startswith("weak evidence")]
        if weak:
            names = ", ".join(f"`{n}`" for n in weak)
            doc.p(f"Weak evidence, too little to report: {names} (the checks below say what was seen and why "
                  "it is within noise).")
        doc.h(2, "Checks")
        fired = set(self.codes)
        doc.table(["check", "measures", "result"],
                  [[f"`{c.name}`", c.measures,
                    ("finding" if c.name in fired else "no problem") + (f": {c.note}" if c.note else "")
                    if c.ran else f"not run: {c.note}"] for c in self.checks])
        return doc

    def to_dict(self) -> dict:
        return {"kind": "diagnosis", "source": self.source, "epochs": self.n_epochs, "ok": self.ok,
                "complete": self.complete, "findings": [asdict(f) for f in self.findings],
                "checks": [dict(asdict(c), found=c.name in self.codes) for c in self.checks]}

    def __repr__(self) -> str:
        return f"Diagnosis({', '.join(self.codes) or 'no problems'})"


def diagnose(run: History | Trainer | DivergenceError | str | PathLike[str] | Sequence[dict],
             net: Network | None = None, X: ArrayLike | None = None, *, optimizer: str | None = None,
             syntax: str = "python", about_X: str = "") -> Diagnosis:
    """Name the problems a run shows, after running every check in ``CHECKS``.

    ``run``: a History, a Trainer, a DivergenceError (its ``.history``), a run directory
    (history.csv or history.json inside, with metrics.json and model.safetensors when ``deltaprop
    train`` wrote it), such a file, or a list of row dicts. With ``X`` (and ``net``, or a run
    directory holding model.safetensors), dead ReLU units are counted on X directly. ``optimizer``
    ('sgd', 'momentum', 'nesterov', 'adam') lets a History's learning rate be judged against its
    optimizer's usual range (a run directory and a Trainer say it themselves). ``syntax``: 'python'
    (remedies as keyword arguments) or 'command' (as ``deltaprop train`` flags). ``about_X`` names
    the rows of X in the finding ("the 1258 training rows of digits").
    """
    view = _Run(run, syntax, optimizer=optimizer, net=net, X=X)
    if about_X and view.probe is not None:
        view.probe_how = about_X
    findings: list[Finding] = []
    checks: list[Check] = []
    for name, measures, fn in CHECKS:
        if not view.n and name not in ("diverged", "dead_relu", "lr_too_high"):
            checks.append(Check(name, measures, False, "no complete epoch in the history"))
            continue
        try:
            new, note = fn(view, findings)
        except _Skip as skip:
            checks.append(Check(name, measures, False, str(skip)))
            continue
        findings.extend(new)
        checks.append(Check(name, measures, True, note))
    return Diagnosis(findings, view.n, view.source, checks)
