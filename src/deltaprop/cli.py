"""The ``deltaprop`` command: parse the arguments, call the library, render the result. No math here.

    deltaprop train                          # digits, a progress bar, a summary, a run directory
    deltaprop train --data fashion-mnist --layers 256,128 --epochs 20
    deltaprop evaluate runs/<stamp>/model.safetensors
    deltaprop predict  runs/<stamp>/model.safetensors images.npy -o predictions.csv
    deltaprop info     runs/<stamp>/model.safetensors
    deltaprop gradcheck --layers 3,4,3,2 --activation tanh
    deltaprop explain --layers 3,4,3,2        deltaprop trace --preset note001

Every error deltaprop raises on purpose (:class:`deltaprop.errors.DeltapropError`) is printed as
``error: ...`` with a hint and ends the command with its exit code (2 for bad usage or input, 3 for
a bad model file, 4 for divergence); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shlex
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from deltaprop.errors import ConfigError, DataError, DeltapropError, InputError, ModelFileError

__all__ = ["main", "build_parser"]

MODEL_FILE = "model.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"

EXAMPLES = """\
examples:
  deltaprop train                                   train on scikit-learn's digits (the default)
  deltaprop train --data fashion-mnist --layers 256,128 --epochs 20
  deltaprop train --data table.csv --target label --layers 64 --optimizer sgd --lr 0.05
  deltaprop train --epochs 200 --checkpoint-every 10   Ctrl-C stops cleanly; then:
  deltaprop train --resume runs/LATEST                continue the interrupted run, bit for bit
  deltaprop evaluate runs/LATEST/model.safetensors   accuracy, per-class table, confusion matrix
  deltaprop predict runs/LATEST/model.safetensors inputs.csv -o predictions.csv
  deltaprop info runs/LATEST/model.safetensors
  deltaprop gradcheck --layers 3,4,3,2 --activation tanh
  deltaprop explain --layers 3,4,3,2 --l2 0.1        the derivation with this network's shapes
  deltaprop trace --preset note001 --per-example     one backprop step, number by number
"""


# -- argument parsing --------------------------------------------------------------------------------
class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def _sizes(text: str) -> list[int]:
    """'256,128' -> [256, 128]; an empty string means no hidden layer."""
    text = text.strip()
    if not text:
        return []
    try:
        sizes = [int(part) for part in text.replace(" ", "").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole numbers (e.g. 256,128)")
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be ≥ 1, got {text!r}")
    return sizes


def _number(convert, ok, expected: str):
    """An argparse type: ``convert(text)``, refused unless ``ok(value)``, with ``expected`` in the message."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if convert is int else 'a number'}")
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text}")
        return value

    return parse


_positive_int = _number(int, lambda v: v >= 1, "≥ 1")
_positive_float = _number(float, lambda v: np.isfinite(v) and v > 0, "a finite number > 0")
_nonnegative_float = _number(float, lambda v: np.isfinite(v) and v >= 0, "a finite number ≥ 0")
_fraction = _number(float, lambda v: 0 <= v < 1, "in [0, 1)")


def build_parser() -> argparse.ArgumentParser:
    from deltaprop import __version__
    from deltaprop.explain import register as register_explain

    parser = argparse.ArgumentParser(
        prog="deltaprop", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build, train, explain and export multilayer perceptrons, with backpropagation derived by "
                    "hand in NumPy.", epilog=EXAMPLES)
    parser.add_argument("--version", action="version", version=f"deltaprop {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True

    t = sub.add_parser("train", help="train a network and save a run directory", formatter_class=_Formatter,
                       description="Train a network on a data set, with a progress bar, then print the test "
                                   "accuracy and a per-class table and save the model, history, metrics and plots "
                                   "in a run directory.", epilog=EXAMPLES)
    g = t.add_argument_group("data")
    g.add_argument("--data", default="digits",
                   help="digits | fashion-mnist | fashion-mnist:DIR | mnist:DIR | idx:DIR | FILE.csv | FILE.npz | "
                        "X.npy (with --target y.npy) | DIR holding X.npy, y.npy[, X_test.npy, y_test.npy]; .npy rows "
                        "stay on disk and are read by blocks")
    g.add_argument("--target", help="the label column of a CSV file (name or 0-based index; default: the last), "
                                    "or with --data X.npy the .npy file of targets")
    g.add_argument("--in-memory", action="store_true",
                   help=".npy data: load the rows whole instead of reading them by blocks")
    g.add_argument("--task", choices=("classification", "regression"),
                   help="what the labels are (default: whole numbers and text are classes)")
    g.add_argument("--test-fraction", type=_fraction, default=0.3,
                   help="share of rows held out for the test, for data without a test split")
    g.add_argument("--val-fraction", type=_fraction, default=0.1, help="share of training rows for validation")
    g.add_argument("--scale", help="input scaling fitted on the training rows: standard, minmax, none, divide:255 "
                                   "(default: what suits the data set)")
    g = t.add_argument_group("network")
    g.add_argument("--layers", type=_sizes, default="128,64", metavar="H1,H2,...",
                   help="hidden layer sizes (input and output sizes come from the data)")
    g.add_argument("--activation", default="relu", help="hidden activation: relu, tanh, sigmoid, leaky_relu, identity")
    g.add_argument("--output", help="output activation: softmax, sigmoid (two classes) or identity "
                                    "(default: softmax for classes, identity for regression)")
    g.add_argument("--loss", help="cross_entropy, binary_cross_entropy or squared_error (default: the one that "
                                  "pairs with the output)")
    g.add_argument("--init", help="glorot, he or uniform (default: He for ReLU, Glorot otherwise)")
    g.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    g = t.add_argument_group("training")
    g.add_argument("--optimizer", default="adam", help="sgd, momentum, nesterov or adam")
    g.add_argument("--lr", type=_positive_float, help="learning rate α (default 0.1 for sgd/momentum, 0.001 for adam)")
    g.add_argument("--momentum", type=_nonnegative_float,
                   help="μ for momentum and nesterov (default 0.9); with sgd, turns plain SGD into momentum")
    g.add_argument("--schedule", default="constant", help="learning-rate schedule: constant, step, exponential, adaptive (α/5 after 5 epochs without progress), "
                                                          "invscaling")
    g.add_argument("--epochs", type=_positive_int, default=30)
    g.add_argument("--batch-size", type=_positive_int, default=64, help="rows per mini-batch step")
    g.add_argument("--full-batch", action="store_true", help="full-batch gradient descent, as in the notes")
    g.add_argument("--l2", type=_nonnegative_float, default=0.0, help="L2 strength λ in λ/(2m) Σ‖W‖²")
    g.add_argument("--early-stopping", type=_positive_int, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without a better validation loss; keep the best weights")
    g.add_argument("--seed", type=int, default=0, help="seed of the split, the weights and the shuffling")
    g.add_argument("--shuffle", choices=("rows", "blocks"),
                   help="rows: a fresh order of all rows each epoch; blocks: blocks of --block-rows rows in a random "
                        "order, rows shuffled within each block (default: blocks for .npy data read from disk, rows "
                        "otherwise; the same seed gives the same order on disk and in memory)")
    g.add_argument("--block-rows", type=_positive_int, default=1024, metavar="N",
                   help="rows per block for --shuffle blocks (also the rows per read, and per step of the "
                        "streaming fit of the input scaling)")
    g = t.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", help="run directory (default: runs/<date>_<time>)")
    g.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary tables")
    g = t.add_argument_group("interruption", "Ctrl-C or SIGTERM stops after the batch in flight and writes "
                             f"RUN_DIR/{CHECKPOINT_FILE}; --resume continues from it bit for bit")
    g.add_argument("--checkpoint-every", type=_positive_int, metavar="N",
                   help=f"also write RUN_DIR/{CHECKPOINT_FILE} every N epochs (and at the end)")
    g.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the interrupted run in RUN_DIR with the options it was started with "
                        "(--epochs may extend it)")
    t.set_defaults(handler=cmd_train)

    e = sub.add_parser("evaluate", help="accuracy, loss, per-class table and confusion matrix of a saved model",
                       formatter_class=_Formatter,
                       description="Evaluate a saved model on the test split of a data set (by default the data set "
                                   "and split it was trained on).")
    e.add_argument("model", help="a model file written by deltaprop train")
    e.add_argument("--data", help="data spec, as for train (default: the model's own)")
    e.add_argument("--target", help="the label column of a CSV file")
    e.add_argument("--split", choices=("test", "train", "all"), default="test", help="which rows to evaluate")
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    e.set_defaults(handler=cmd_evaluate)

    p = sub.add_parser("predict", help="labels and probabilities for new inputs", formatter_class=_Formatter,
                       description="Predict with a saved model. INPUT is a .csv (features only, or name the label "
                                   "column to drop with --drop), .npy, .npz (array X) or IDX file. The model's input "
                                   "scaling is applied. Writes CSV: the label, then one probability per class.")
    p.add_argument("model", help="a model file written by deltaprop train")
    p.add_argument("input", help="the inputs, one example per row")
    p.add_argument("-o", "--output", help="write the CSV here (default: standard output)")
    p.add_argument("--drop", help="a label column of the CSV input to leave out (name or 0-based index)")
    p.add_argument("--no-proba", action="store_true", help="write the labels only")
    p.set_defaults(handler=cmd_predict)

    i = sub.add_parser("info", help="architecture, parameters and training summary of a model file",
                       formatter_class=_Formatter)
    i.add_argument("model")
    i.add_argument("--json", action="store_true")
    i.set_defaults(handler=cmd_info)

    c = sub.add_parser("gradcheck", help="backprop against finite differences on a small random problem",
                       formatter_class=_Formatter,
                       description="Build a float64 network, draw a small random batch, and compare every dW and db "
                                   "with centered finite differences. Exits 1 when a check fails.")
    c.add_argument("--layers", type=_sizes, default="3,4,3,2", metavar="N0,N1,...,NL",
                   help="all layer sizes, input first")
    c.add_argument("--activation", default="tanh", help="hidden activation")
    c.add_argument("--output", help="output activation (default: the one that pairs with --loss, else softmax)")
    c.add_argument("--loss", help="cross_entropy, binary_cross_entropy or squared_error")
    c.add_argument("--l2", type=_nonnegative_float, default=0.0)
    c.add_argument("--examples", "-m", type=_positive_int, default=5)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--h", type=_positive_float, default=1e-5, help="finite-difference step")
    c.add_argument("--tolerance", type=_positive_float, default=1e-7, help="largest relative error that passes")
    c.add_argument("--json", action="store_true")
    c.set_defaults(handler=cmd_gradcheck)

    register_explain(sub)
    return parser


def main(argv=None) -> int:
    """Run the command; returns the exit code (0 success, 1 failure, 2 usage/input, 3 model file, 4 divergence)."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = parser.parse_args(argv)
    args.argv = argv  # as typed: metrics.json records it, --resume reads which options were given
    try:
        return int(args.handler(args) or 0)
    except DeltapropError as err:
        if args.debug:
            raise
        _error(str(err))
        return err.exit_code
    except KeyboardInterrupt:
        if args.debug:
            raise
        _error("interrupted")
        return 130
    except OSError as err:
        if args.debug:
            raise
        where = f" {err.filename}" if getattr(err, "filename", None) else ""
        _error(f"cannot read or write{where}: {err.strerror or err}\n  hint: check the path and its permissions")
        return 1
    except MemoryError:
        if args.debug:
            raise
        _error("out of memory\n  hint: use a smaller --batch-size, fewer or narrower layers, or less data")
        return 1


def _error(text: str) -> None:
    sys.stderr.write(f"deltaprop: error: {text}\n")


# -- shared helpers ------------------------------------------------------------------------------------
def _load_model(path):
    from deltaprop.modelfile import load

    return load(path)


def _scaler_of(net):
    from deltaprop.preprocessing import Scaler

    return Scaler.from_dict(net.meta["scaler"]) if "scaler" in net.meta else None


def _model_inputs(net, X) -> np.ndarray:
    """X as the network sees it: the model's stored input scaling applied, in the model's dtype."""
    from deltaprop.train import is_row_source

    scaler = _scaler_of(net)
    if is_row_source(X):  # rows on disk: scaled as they are read
        if X.shape[1] != net.sizes[0]:
            raise InputError(f"the inputs have {X.shape[1]} features but the model takes {net.sizes[0]}",
                             "pass inputs with the same columns as the training data")
        return X.scaled(scaler, net.dtype) if scaler is not None else X.scaled(None, net.dtype)
    if scaler is not None:
        if scaler.n_features is not None and np.ndim(X) == 2 and X.shape[1] != scaler.n_features:
            raise InputError(f"the inputs have {X.shape[1]} features but the model was trained on "
                             f"{scaler.n_features}", "pass inputs with the same columns as the training data")
        return scaler.transform(X, dtype=net.dtype)
    return np.asarray(X, dtype=net.dtype)


def _class_names(net) -> list[str] | None:
    """The model's class names; "0".."K−1" for a classifier saved without them; None for regression."""
    names = net.meta.get("classes")
    if names:
        return [str(c) for c in names]
    if not net.is_classifier:
        return None
    k = net.sizes[-1]
    return [str(i) for i in range(2 if k == 1 else k)]


def _console(stderr: bool = False):
    """A rich Console, or None when rich is missing (plain text then)."""
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console(stderr=stderr, highlight=False)


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


# -- train -------------------------------------------------------------------------------------------
def _architecture(args, data):
    """(sizes, hidden, output, loss) for the data: K softmax units for K classes, one sigmoid unit for
    two classes with --output sigmoid, identity units for regression."""
    from deltaprop.activations import canonical_name
    from deltaprop.losses import get_loss

    output = canonical_name(args.output) if args.output else (get_loss(args.loss).output if args.loss else None)
    if data.task == "classification":
        k = data.n_classes
        if k < 2:
            raise DataError(f"the training data holds one class only ({data.class_names[0]!r})",
                            "a classifier needs examples of at least two classes")
        output = output or "softmax"
        if output == "identity":
            raise ConfigError("an identity output with squared error is for regression, but these labels are classes",
                              "use --output softmax (or sigmoid for two classes), or --task regression for numbers")
        if output == "sigmoid":
            if k != 2:
                raise ConfigError(f"a sigmoid output predicts two classes, but the data has {k}",
                                  "use --output softmax for more than two classes")
            n_out = 1
        else:
            n_out = k
    else:
        output = output or "identity"
        if output != "identity":
            raise ConfigError(f"regression targets need an identity output with squared error, not {output}",
                              "drop --output/--loss, or use --task classification for class labels")
        n_out = 1 if data.y_train.ndim == 1 else data.y_train.shape[1]
    return [data.n_features, *args.layers, n_out], args.activation, output, args.loss


def _run_dir(args) -> Path:
    if args.out:
        path = Path(args.out)
    else:
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        path = Path("runs") / stamp
        n = 2
        while path.exists():
            path = Path("runs") / f"{stamp}-{n}"
            n += 1
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {path} is a file, not a directory", "pass a new or existing directory")
    path.mkdir(parents=True, exist_ok=True)
    return path


class _Progress:
    """The training callback that draws progress: a live rich bar on a terminal, one line per few epochs
    otherwise (logs, CI). Both go to standard error, so standard output keeps the summary alone."""

    def __init__(self, epochs: int, quiet: bool):
        from deltaprop.train import Callback

        self.epochs, self.quiet = epochs, quiet
        self.console = _console(stderr=True)
        self.live = self.console is not None and self.console.is_terminal and not quiet
        self.bar = None
        self.every = max(1, epochs // 10)
        progress = self

        class _CB(Callback):
            def on_train_begin(self, trainer):
                progress.begin(trainer)

            def on_epoch_end(self, trainer, logs):
                progress.epoch_end(trainer, logs)

            def on_train_end(self, trainer):
                progress.end()

        self.callback = _CB()

    @staticmethod
    def _fields(logs: dict) -> str:
        parts = [f"loss {logs['loss']:.4g}"]
        if logs.get("accuracy") is not None:
            parts.append(f"acc {logs['accuracy']:.3f}")
        if logs.get("val_loss") is not None:
            parts.append(f"val loss {logs['val_loss']:.4g}")
        if logs.get("val_accuracy") is not None:
            parts.append(f"val acc {logs['val_accuracy']:.3f}")
        return "  ".join(parts)

    def begin(self, trainer):
        if not self.live:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        self.bar = Progress(TextColumn("epoch"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.fields[info]}"),
                            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=self.console)
        self.bar.start()
        self.task = self.bar.add_task("train", total=self.epochs, completed=trainer.epoch, info="")

    def epoch_end(self, trainer, logs):
        if self.bar is not None:
            self.bar.update(self.task, completed=logs["epoch"], info=self._fields(logs))
        elif not self.quiet and (logs["epoch"] % self.every == 0 or logs["epoch"] in (1, self.epochs)):
            sys.stderr.write(f"epoch {logs['epoch']:>{len(str(self.epochs))}}/{self.epochs}  {self._fields(logs)}  "
                             f"({_seconds(logs['time'])})\n")
            sys.stderr.flush()

    def end(self):
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _seconds(t: float) -> str:
    return f"{t * 1000:.1f} ms" if t < 1 else f"{t:.2f} s"


# Options --resume may be given with; every other one comes from the interrupted run.
# Options --resume may be given with; every other one comes from the interrupted run.
_RESUME_OPTIONS = ("epochs", "checkpoint_every", "quiet", "no_plots", "resume")
# Settings a resumed run reads back from its checkpoint, with the type each must have.
_SAVED_TYPES = {"epochs": int, "batch_size": int, "seed": int, "layers": list, "data": str, "dtype": str,
                "optimizer": str, "activation": str}


def _given_train_options(argv) -> set:
    """The ``train`` options written on the command line ``argv`` (dest names), whatever their values:
    the same parse with every default suppressed."""
    parser = build_parser()
    train = next(a for a in parser._subparsers._group_actions if a.dest == "command").choices["train"]
    for action in train._actions:
        action.default = argparse.SUPPRESS
    train._defaults.clear()
    return set(vars(parser.parse_args(argv))) - {"command", "debug"}


def _resumed_args(args):
    """(the interrupted run's options with --epochs, --checkpoint-every, --quiet, --no-plots applied,
    its checkpoint) for ``train --resume RUN_DIR``."""
    from deltaprop import checkpoint

    run_dir = Path(args.resume)
    path = run_dir / CHECKPOINT_FILE
    if not path.is_file():
        what = f"{run_dir} has no {CHECKPOINT_FILE}" if run_dir.is_dir() else f"no such run directory: {run_dir}"
        raise ConfigError(f"--resume: {what}", "pass the directory of a `deltaprop train` run that was interrupted "
                          "(Ctrl-C, SIGTERM) or ran with --checkpoint-every")
    ckpt = checkpoint.load(path)
    saved = ckpt.run.get("config")
    if not isinstance(saved, dict) or not isinstance(saved.get("layers"), list):
        raise ModelFileError(f"{path} was not written by `deltaprop train`",
                             "resume it from Python with deltaprop.checkpoint.restore(trainer, path)")
    for key, kind in _SAVED_TYPES.items():
        value = saved.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is list and
                                                                      not all(type(v) is int for v in value)):
            raise ModelFileError(f"{path}: the run's setting {key!r} is damaged ({value!r})",
                                 "start a new run; the checkpoint cannot say how to continue")
    typed = _given_train_options(args.argv)
    given = typed - set(_RESUME_OPTIONS)
    if given:
        raise ConfigError(f"--resume continues the run with the options it was started with; it cannot change "
                          f"{', '.join('--' + k.replace('_', '-') for k in sorted(given))}",
                          "drop them (only --epochs, --checkpoint-every, --quiet and --no-plots go with --resume), "
                          "or start a new run")
    defaults = vars(build_parser().parse_args(["train"]))
    merged = {**defaults, **saved, "out": str(run_dir), "resume": str(run_dir), "quiet": args.quiet,
              "no_plots": args.no_plots or bool(saved.get("no_plots")), "handler": args.handler, "debug": args.debug,
              "argv": args.argv}
    if "epochs" in typed:
        merged["epochs"] = args.epochs
    if args.checkpoint_every is not None:
        merged["checkpoint_every"] = args.checkpoint_every
    if ckpt.state["stop"] or ckpt.epoch >= merged["epochs"]:
        why = "it stopped early" if ckpt.state["stop"] else f"all {merged['epochs']} epochs are done"
        raise ConfigError(f"--resume: the run in {run_dir} has nothing left to do ({why})",
                          "train longer with --resume RUN_DIR --epochs N (more than the epochs done), "
                          "or start a new run")
    return argparse.Namespace(**merged), ckpt


def _record_interruption(run_dir: Path, trainer, config: dict, stop) -> None:
    """history.csv and metrics.json of an interrupted run: what happened and how to go on."""
    from deltaprop import __version__, report

    report.write_history_csv(trainer.history.to_rows(), run_dir / "history.csv")
    summary = {"deltaprop_version": __version__, "config": config, "status": "interrupted",
               "stop_reason": trainer.history.stop_reason, "epochs": len(trainer.history),
               "batches_into_next_epoch": trainer.batch, "message": stop.message,
               "resume": f"deltaprop train --resume {shlex.quote(str(run_dir))}",
               "files": [CHECKPOINT_FILE, "history.csv", "metrics.json"]}
    _write_json(run_dir / "metrics.json", summary)


def _prepare_inputs(args, data):
    """(shuffle, fitted scaler, X_train, X_test) as training takes them. Rows on disk (a row source) stay
    there: the scaling is fitted in one streaming pass, and the sources read through it. In memory,
    ``--shuffle blocks`` fits the scaling by the same blocks, so that the same rows in memory and on disk
    give the same figures, bit for bit."""
    from deltaprop.preprocessing import Scaler
    from deltaprop.train import is_row_source

    on_disk = is_row_source(data.X_train)
    shuffle = getattr(args, "shuffle", None) or ("blocks" if on_disk else "rows")
    block_rows = getattr(args, "block_rows", 1024)
    if on_disk and shuffle == "rows":
        raise ConfigError("rows read from disk are shuffled by blocks (--shuffle rows would read each row from a "
                          "different place)", "drop --shuffle rows, or load the rows whole with --in-memory")
    if on_disk and args.full_batch:
        raise ConfigError("--full-batch holds every row in memory at once, which reading by blocks is there to avoid",
                          "drop --full-batch, or load the rows whole with --in-memory")
    scaler = Scaler.from_spec(args.scale or data.scaling)
    if on_disk:
        scaler.fit_blocks(data.X_train.blocks(block_rows))
        X_train, X_test = data.X_train.scaled(scaler, args.dtype), data.X_test.scaled(scaler, args.dtype)
    else:
        if shuffle == "blocks":
            X = data.X_train
            scaler.fit_blocks(X[i:i + block_rows] for i in range(0, X.shape[0], block_rows))
        else:
            scaler.fit(data.X_train)
        X_train = scaler.transform(data.X_train, dtype=args.dtype)
        X_test = scaler.transform(data.X_test, dtype=args.dtype)
    if shuffle == "blocks" and data.task == "classification" and not args.quiet:
        _warn_label_runs(data.y_train, block_rows, data.n_classes)
    return shuffle, scaler, X_train, X_test


def _warn_label_runs(y, block_rows: int, k: int) -> None:
    """Say so when the rows come sorted by class: a block shuffle then feeds batches of few classes."""
    if k < 2 or y.shape[0] < 2 * block_rows:
        return
    per_block = [np.unique(y[i:i + block_rows]).shape[0] for i in range(0, y.shape[0], block_rows)]
    seen = float(np.mean(per_block))
    expected = min(k, block_rows)
    if seen < 0.5 * expected:
        _error_note(f"the rows come in runs of one class: a block of {block_rows} rows holds {seen:.1f} of the "
                    f"{k} classes on average, so batches drawn block by block see few classes at once")
        _error_note("shuffle the rows once when saving them (X[p], y[p] with p = numpy.random.permutation(m)), or "
                    "use a smaller --block-rows")


def _error_note(text: str) -> None:
    sys.stderr.write(f"deltaprop: note: {text}\n")


def cmd_train(args) -> int:
    from deltaprop import __version__
    from deltaprop import checkpoint
    from deltaprop.datasets import resolve
    from deltaprop.model import Network
    from deltaprop.train import Trainer

    started = time.perf_counter()
    ckpt = None
    if args.resume:
        args, ckpt = _resumed_args(args)
    data = resolve(args.data, test_fraction=args.test_fraction, seed=args.seed, target=args.target, task=args.task,
                   in_memory=getattr(args, "in_memory", False))
    sizes, hidden, output, loss = _architecture(args, data)
    shuffle, scaler, X_train, X_test = _prepare_inputs(args, data)
    net = Network.from_sizes(sizes, hidden=hidden, output=output, loss=loss, seed=args.seed, dtype=args.dtype,
                             init=args.init)
    run_dir = _run_dir(args)
    progress = _Progress(args.epochs, args.quiet)
    config = {k: v for k, v in vars(args).items() if k not in ("handler", "debug", "argv")}
    callbacks = [progress.callback]
    if args.checkpoint_every or ckpt is not None:  # keep a checkpoint the run has up to date, to its end
        callbacks.append(checkpoint.CheckpointCallback(run_dir / CHECKPOINT_FILE, every=args.checkpoint_every
                                                       or args.epochs, run={"config": config}))
    trainer = Trainer(net, X_train, data.y_train, epochs=args.epochs,
                      batch_size=None if args.full_batch else args.batch_size, optimizer=args.optimizer, lr=args.lr,
                      momentum=args.momentum, schedule=args.schedule, l2=args.l2,
                      validation_fraction=args.val_fraction, early_stopping=args.early_stopping, seed=args.seed,
                      callbacks=callbacks, shuffle=shuffle, block_rows=args.block_rows)
    if ckpt is not None:
        checkpoint.restore(trainer, ckpt)
    if not args.quiet:
        sys.stderr.write(f"deltaprop {__version__}: {data!r}\n{net!r}, {trainer.optimizer!r}, "
                         f"batch {trainer.batch_size}, {args.epochs} epochs -> {run_dir}\n")
        if ckpt is not None:
            where = (f"after batch {ckpt.batch} of epoch {ckpt.epoch + 1}" if ckpt.batch else f"after epoch {ckpt.epoch}")
            sys.stderr.write(f"resuming {where}\n")
    status = "completed"
    try:
        with checkpoint.interruptible(trainer, run_dir / CHECKPOINT_FILE, run={"config": config}):
            history = trainer.run()
    except checkpoint.TrainingInterrupted as stop:
        _record_interruption(run_dir, trainer, config, stop)
        raise checkpoint.TrainingInterrupted(stop.message, "continue with: deltaprop train --resume "
                                             f"{shlex.quote(str(run_dir))}", exit_code=stop.exit_code) from None
    except DeltapropError as err:
        if err.exit_code != 4:  # not a divergence: nothing worth saving
            raise
        history, status = trainer.history, "diverged"
        _error(str(err))
    finally:
        progress.end()
    train_seconds = sum(e["time"] for e in history.epochs)

    net.meta.update({
        "task": data.task,
        "classes": data.class_names,
        "feature_names": data.feature_names,
        "image_shape": list(data.image_shape) if data.image_shape else None,
        "scaler": scaler.to_dict(),
        "data": {"spec": str(args.data), "name": data.name, "test_fraction": args.test_fraction, "seed": args.seed,
                 "target": args.target, "task": args.task},
        "training": {"epochs": len(history), "status": status, "stop_reason": history.stop_reason,
                     "best_epoch": history.best_epoch, "optimizer": repr(trainer.optimizer),
                     "batch_size": trainer.batch_size, "l2": args.l2, "seconds": round(train_seconds, 3),
                     "finished": datetime.now().isoformat(timespec="seconds")},
    })
    metrics = _metrics(net, X_test, data.y_test, data.class_names)
    net.meta["training"]["test"] = {k: metrics[k] for k in ("accuracy", "loss", "mse", "r2") if k in metrics}
    net.save(run_dir / MODEL_FILE)

    from deltaprop import report

    rows = history.to_rows()
    report.write_history_csv(rows, run_dir / "history.csv")
    plots = []
    if not args.no_plots and rows:
        plots = _plots(run_dir, net, data, rows, metrics)
    summary = {
        "deltaprop_version": __version__,
        "command": shlex.join(["deltaprop", *args.argv]),
        "config": config,
        "data": {"name": data.name, "train_rows": int(data.X_train.shape[0]), "test_rows": int(data.X_test.shape[0]),
                 "features": data.n_features, "classes": data.class_names},
        "network": {"sizes": net.sizes, "activations": net.activations, "loss": net.loss.name,
                    "dtype": net.dtype.name, "parameters": net.n_params},
        "status": status,
        "stop_reason": history.stop_reason,
        "epochs": len(history),
        "best_epoch": history.best_epoch,
        "train_seconds": train_seconds,
        "wall_seconds": time.perf_counter() - started,
        "final": {k: history.epochs[-1].get(k) for k in ("loss", "accuracy", "val_loss", "val_accuracy")}
        if history.epochs else {},
        "test": metrics,
        "files": [MODEL_FILE, "history.csv", "metrics.json", *plots],
    }
    _write_json(run_dir / "metrics.json", summary)
    if not args.quiet:
        _print_train_summary(net, data, history, metrics, run_dir, train_seconds, plots)
    else:
        _out(str(run_dir / MODEL_FILE))
    return 4 if status == "diverged" else 0


def _write_json(path, obj) -> None:
    """obj as indented JSON, written atomically (NumPy numbers and arrays, paths converted)."""
    from deltaprop.modelfile import atomic_write

    atomic_write(path, (json.dumps(obj, indent=2, default=_json_default) + "\n").encode())


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


@np.errstate(over="ignore", invalid="ignore")  # a diverged model's metrics overflow: reported, not warned
def _metrics(net, X, y, class_names) -> dict:
    """Metrics of ``net`` on prepared inputs X and targets y (class indices when ``class_names`` is a
    list): the classification summary (accuracy, log loss, per class, confusion) or MSE and R²; and
    the mean loss of the network's own cost, without the L2 term."""
    from deltaprop import metrics as M

    Z, A = _logits(net, X)
    if class_names is not None:
        out = M.classification_summary(y, net.decide(A), class_names, P=net.probabilities(A))
    else:
        y_pred = A[:, 0] if A.shape[1] == 1 else A
        out = {"mse": M.mean_squared_error(y, y_pred), "r2": M.r2_score(y, y_pred)}
    loss = float(net.loss.value(Z, A, net.prepare_targets(y)) / X.shape[0])
    out["loss"] = loss if np.isfinite(loss) else None  # metrics.json stays strict JSON
    return out


def _logits(net, X, rows: int = 4096):
    """(Z_L, A_L) of prepared inputs: at once for an array, block by block for rows on disk."""
    from deltaprop.train import is_row_source

    if not is_row_source(X):
        return net.logits(X)
    parts = [net.logits(X.read(i, i + rows)) for i in range(0, X.shape[0], rows)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _plots(run_dir: Path, net, data, rows, metrics) -> list[str]:
    from deltaprop import report

    made = ["curves.png", "gradient_flow.png"]
    report.plot_history(rows, run_dir / "curves.png")
    report.plot_gradient_flow(rows, run_dir / "gradient_flow.png")
    if data.task == "classification":
        report.plot_confusion(np.array(metrics["confusion_matrix"]), data.class_names, run_dir / "confusion.png")
        made.append("confusion.png")
    if data.image_shape:
        report.plot_first_layer(net.layers[0].W, tuple(data.image_shape), run_dir / "weights.png")
        made.append("weights.png")
    return made


def _print_train_summary(net, data, history, metrics, run_dir, seconds, plots) -> None:
    from deltaprop import report

    _out()
    _out(report.history_summary(history.to_rows()))
    if history.stop_reason:
        _out(history.stop_reason)
    if data.task == "classification":
        _out(f"test accuracy {metrics['accuracy']:.4f}   test loss {metrics['loss']:.4f}   "
             f"({data.X_test.shape[0]} test rows, {seconds:.1f} s of training)")
        _print_class_table(metrics)
    else:
        _out(f"test MSE {metrics['mse']:.4g}   R² {metrics['r2']:.4f}   ({data.X_test.shape[0]} test rows, "
             f"{seconds:.1f} s of training)")
    _out(f"saved: {run_dir / MODEL_FILE}")
    _out(f"       {run_dir}/history.csv, metrics.json{''.join(', ' + p for p in plots)}")
    _out(f"next:  deltaprop evaluate {run_dir / MODEL_FILE}   |   deltaprop explain --diagnose {run_dir}")


def _print_class_table(metrics) -> None:
    from deltaprop import report

    console = _console()
    if console is not None and console.is_terminal:
        console.print(report.rich_per_class_table(metrics))
    else:
        _out(report.per_class_table(metrics))


# -- evaluate ---------------------------------------------------------------------------------------
def _dataset_for(net, spec=None, target=None):
    from deltaprop.datasets import resolve

    info = net.meta.get("data") or {}
    spec = spec or info.get("spec")
    if not spec:
        raise ConfigError("this model does not say which data it was trained on", "pass --data SPEC")
    return resolve(spec, test_fraction=info.get("test_fraction", 0.3), seed=info.get("seed", 0),
                   target=target if target is not None else info.get("target"), task=info.get("task"))


def _labels_for_model(net, data, y) -> np.ndarray:
    """The data set's labels as the model's class indices, matched by class name."""
    classes = _class_names(net)
    if classes is None or data.class_names is None:
        return y
    if list(data.class_names) == classes:
        return y
    lookup = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(data.class_names[int(v)] for v in np.unique(y)) - set(lookup))
    if unknown:
        raise DataError(f"the data holds label(s) {', '.join(map(repr, unknown[:5]))} the model never saw "
                        f"(it knows {', '.join(classes[:12])}{', ...' if len(classes) > 12 else ''})",
                        "evaluate on data with the model's classes")
    remap = np.array([lookup.get(name, -1) for name in data.class_names], dtype=np.int64)
    return remap[y]


def cmd_evaluate(args) -> int:
    net = _load_model(args.model)
    data = _dataset_for(net, args.data, args.target)
    if args.split == "test":
        X, y = data.X_test, data.y_test
    elif args.split == "train":
        X, y = data.X_train, data.y_train
    else:
        from deltaprop.train import is_row_source

        if is_row_source(data.X_train):
            raise ConfigError("--split all joins the train and test rows in memory, but these rows are read from disk",
                              "evaluate --split train and --split test one after the other")
        X, y = np.concatenate([data.X_train, data.X_test]), np.concatenate([data.y_train, data.y_test])
    X = _model_inputs(net, X)
    classes = _class_names(net)
    if net.is_classifier and classes is not None:
        if data.class_names is None:
            raise DataError("the model is a classifier but the data's labels are numbers to regress",
                            "pass --data with class labels")
        y = _labels_for_model(net, data, y)
    result = _metrics(net, X, y, classes if net.is_classifier else None)
    result["rows"] = int(X.shape[0])
    result["split"] = args.split
    if args.json:
        _out(json.dumps(result, indent=2, default=_json_default))
        return 0
    _out(f"{args.model}: {net!r}")
    _out(f"data {data.name}, {args.split} split, {X.shape[0]} rows")
    if "accuracy" in result:
        _out(f"accuracy {result['accuracy']:.4f}   loss {result['loss']:.4f}")
        _print_class_table(result)
        from deltaprop import report

        _out()
        _out(report.confusion_table(np.array(result["confusion_matrix"]), classes))
    else:
        _out(f"MSE {result['mse']:.4g}   R² {result['r2']:.4f}   loss {result['loss']:.4g}")
    return 0


# -- predict ----------------------------------------------------------------------------------------
def cmd_predict(args) -> int:
    from deltaprop.datasets import load_inputs

    net = _load_model(args.model)
    X = load_inputs(args.input, drop=args.drop)
    if X.shape[0] == 0:
        raise InputError(f"{args.input} holds no rows", "pass at least one example")
    X = _model_inputs(net, X)
    A = net.forward(X)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    classes = _class_names(net)
    if net.is_classifier and classes is not None and not (net.activations[-1] == "sigmoid" and A.shape[1] > 1):
        P = net.probabilities(A)
        labels = net.decide(A)
        writer.writerow(["label"] + ([] if args.no_proba else [f"p_{c}" for c in classes]))
        for k, row in zip(labels, P):
            writer.writerow([classes[k]] + ([] if args.no_proba else [repr(float(p)) for p in row]))
    else:
        header = ["y"] if A.shape[1] == 1 else [f"y_{j}" for j in range(1, A.shape[1] + 1)]
        writer.writerow(header)
        for row in A:
            writer.writerow([repr(float(v)) for v in row])
    text = buf.getvalue()
    if args.output:
        from deltaprop.modelfile import atomic_write

        atomic_write(args.output, text.encode("utf-8"))
        sys.stderr.write(f"wrote {X.shape[0]} predictions to {args.output}\n")
    else:
        sys.stdout.write(text)
    return 0


# -- info -------------------------------------------------------------------------------------------
def cmd_info(args) -> int:
    net = _load_model(args.model)
    meta = net.meta
    info = {
        "file": str(args.model),
        "architecture": "-".join(map(str, net.sizes)),
        "sizes": net.sizes,
        "activations": net.activations,
        "loss": net.loss.name,
        "dtype": net.dtype.name,
        "parameters": net.n_params,
        "layers": [{"layer": l, "W": list(layer.W.shape), "b": list(layer.b.shape), "activation": layer.activation.name}
                   for l, layer in enumerate(net.layers, 1)],
        "task": meta.get("task"),
        "classes": meta.get("classes"),
        "scaling": (meta.get("scaler") or {}).get("kind"),
        "data": meta.get("data"),
        "training": meta.get("training"),
    }
    if args.json:
        _out(json.dumps(info, indent=2, default=_json_default))
        return 0
    _out(f"{args.model}")
    _out(f"  network     {net!r}")
    for row in info["layers"]:
        _out(f"  layer {row['layer']}     W {row['W'][0]}×{row['W'][1]}, b {row['b'][0]}, {row['activation']}")
    if info["classes"]:
        names = info["classes"]
        _out(f"  classes     {len(names)}: {', '.join(names[:12])}{', ...' if len(names) > 12 else ''}")
    if info["scaling"]:
        _out(f"  scaling     {info['scaling']} (fitted on the training rows, applied by evaluate and predict)")
    data, tr = info["data"] or {}, info["training"] or {}
    if data:
        _out(f"  data        {data.get('name') or data.get('spec')} (seed {data.get('seed')}, test fraction "
             f"{data.get('test_fraction')})")
    if tr:
        test = tr.get("test") or {}
        scores = ", ".join(f"{k} {v:.4g}" for k, v in test.items() if isinstance(v, (int, float)))
        _out(f"  training    {tr.get('epochs')} epochs, {tr.get('optimizer')}, batch {tr.get('batch_size')}, "
             f"{tr.get('seconds')} s, {tr.get('status')}{'; ' + tr['stop_reason'] if tr.get('stop_reason') else ''}")
        if scores:
            _out(f"  test        {scores}")
        if tr.get("finished"):
            _out(f"  finished    {tr['finished']}")
    return 0


# -- gradcheck --------------------------------------------------------------------------------------
def cmd_gradcheck(args) -> int:
    from deltaprop.explain import _output_for
    from deltaprop.gradcheck import gradcheck
    from deltaprop.model import Network
    from deltaprop.trace import random_batch

    if len(args.layers) < 2:
        raise ConfigError(f"--layers needs at least an input and an output size, got {args.layers}",
                          "for example --layers 3,4,3,2")
    net = Network.from_sizes(args.layers, hidden=args.activation, output=_output_for(args), loss=args.loss,
                             seed=args.seed, dtype="float64")
    X, y = random_batch(net, args.examples, seed=args.seed)
    rep = gradcheck(net, X, y, l2=args.l2, h=args.h, tolerance=args.tolerance)
    if args.json:
        _out(json.dumps(rep.to_dict(), indent=2, default=_json_default))
    else:
        from deltaprop import report

        _out(f"{net!r}, m = {args.examples}, λ = {args.l2:g}")
        _out(report.gradcheck_table(rep))
    return 0 if rep.ok else 1
