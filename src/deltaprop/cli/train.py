"""``deltaprop train``: data spec → scaling → network → Trainer (progress, checkpoints, Ctrl-C) → run
directory (model, history.csv, metrics.json, plots) → summary."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from deltaprop.cli.args import Formatter, fraction, nonnegative_float, positive_float, positive_int, sizes
from deltaprop.cli.common import (
    CHECKPOINT_FILE,
    MODEL_FILE,
    console,
    error,
    metrics,
    out,
    print_class_table,
    seconds,
    write_json,
)
from deltaprop.errors import ConfigError, DataError, DeltapropError, ModelFileError
from deltaprop.targets import TaskUnclearError
from deltaprop.train import TrainOptions

# The command's training defaults are the library's (deltaprop.train.TrainOptions, documented there).
DEFAULTS = TrainOptions()

TRAIN_EXAMPLES = """\
examples:
  deltaprop train                                   train on scikit-learn's digits (the default)
  deltaprop train --data fashion-mnist --layers 256,128 --epochs 20
  deltaprop train --data table.csv --target label --layers 64 --optimizer sgd --lr 0.05
  deltaprop train --epochs 200 --checkpoint-every 10 --out runs/long   Ctrl-C stops cleanly; then:
  deltaprop train --resume runs/long                continue the interrupted run, bit for bit
"""


def register(sub) -> None:
    t = sub.add_parser("train", help="train a network and save a run directory", formatter_class=Formatter,
                       description="Train a network on a data set, with a progress bar, then print the test "
                                   "accuracy and a per-class table and save the model, history, metrics and plots "
                                   "in a run directory.", epilog=TRAIN_EXAMPLES)
    g = t.add_argument_group("data")
    g.add_argument("--data", default="digits",
                   help="digits | fashion-mnist | fashion-mnist:DIR | mnist:DIR | idx:DIR | FILE.csv | FILE.npz | "
                        "X.npy (with --target y.npy) | DIR holding X.npy, y.npy[, X_test.npy, y_test.npy]; .npy rows "
                        "stay on disk and are read by blocks")
    g.add_argument("--target", help="the label column of a CSV file (name or 0-based index; default: the last), "
                                    "or with --data X.npy the .npy file of targets")
    g.add_argument("--in-memory", action="store_true",
                   help=".npy data: load the rows whole instead of reading them by blocks")
    g.add_argument("--drop", metavar="COL[,COL]",
                   help="CSV columns to leave out (names or 0-based indices), such as an ID column")
    g.add_argument("--delimiter", help="the CSV cell separator: comma, semicolon or tab (default: detected)")
    g.add_argument("--task", choices=("classification", "regression"),
                   help="what the target is (default: text is classes, fractions are regression, whole "
                        "numbers are classes when at most 20 distinct values or 5%% of the rows are "
                        "distinct; otherwise the command asks)")
    g.add_argument("--test-fraction", type=fraction, default=0.3,
                   help="share of rows held out for the test, for data without a test split")
    g.add_argument("--val-fraction", type=fraction, default=0.1, help="share of training rows for validation")
    g.add_argument("--scale", help="input scaling fitted on the training rows: standard, minmax, none, divide:255 "
                                   "(default: what suits the data set)")
    g = t.add_argument_group("network")
    g.add_argument("--layers", type=sizes, default="128,64", metavar="H1,H2,...",
                   help="hidden layer sizes (input and output sizes come from the data)")
    g.add_argument("--activation", default="relu", help="hidden activation: relu, tanh, sigmoid, leaky_relu, identity")
    g.add_argument("--output", help="output activation: softmax, sigmoid (two classes) or identity "
                                    "(default: softmax for classes, identity for regression)")
    g.add_argument("--loss", help="cross_entropy, binary_cross_entropy or squared_error (default: the one that "
                                  "pairs with the output)")
    g.add_argument("--init", help="glorot, he or uniform (default: He for ReLU, Glorot otherwise)")
    g.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                   help="float type of weights and computation: float32 is fast, float64 for checking")
    g = t.add_argument_group("training")
    g.add_argument("--optimizer", default=DEFAULTS.optimizer, help="sgd, momentum, nesterov or adam")
    g.add_argument("--lr", type=positive_float, help="learning rate α (default 0.1 for sgd/momentum, 0.001 for adam)")
    g.add_argument("--momentum", type=nonnegative_float,
                   help="μ for momentum and nesterov (default 0.9); with sgd, turns plain SGD into momentum")
    g.add_argument("--schedule", default=DEFAULTS.schedule,
                   help="learning-rate schedule: constant, step, exponential, adaptive (α/5 after 5 epochs "
                        "without progress), invscaling")
    g.add_argument("--epochs", type=positive_int, default=DEFAULTS.epochs,
                   help="passes over the training rows")
    g.add_argument("--batch-size", type=positive_int, default=DEFAULTS.batch_size,
                   help="rows per mini-batch step")
    g.add_argument("--full-batch", action="store_true", help="full-batch gradient descent, as in the notes")
    g.add_argument("--l2", type=nonnegative_float, default=DEFAULTS.l2, help="L2 strength λ in λ/(2m) Σ‖W‖²")
    g.add_argument("--class-weight", choices=("balanced",),
                   help="weigh each row by its class: balanced gives class c the weight m / (K·m_c), as in "
                        "scikit-learn (default: every row weighs 1)")
    g.add_argument("--early-stopping", type=positive_int, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without a better validation loss; keep the best weights")
    g.add_argument("--seed", type=int, default=DEFAULTS.seed,
                   help="seed of the split, the weights and the shuffling")
    g.add_argument("--shuffle", choices=("rows", "blocks"),
                   help="rows: a fresh order of all rows each epoch; blocks: blocks of --block-rows rows in a random "
                        "order, rows shuffled within each block (default: blocks for .npy data read from disk, rows "
                        "otherwise; the same seed gives the same order on disk and in memory)")
    g.add_argument("--block-rows", type=positive_int, default=DEFAULTS.block_rows, metavar="N",
                   help="rows per block for --shuffle blocks (also the rows per read, and per step of the "
                        "streaming fit of the input scaling)")
    g = t.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", help="run directory (default: runs/<date>_<time>)")
    g.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary tables")
    g = t.add_argument_group("interruption", "Ctrl-C or SIGTERM stops after the batch in flight and writes "
                             f"RUN_DIR/{CHECKPOINT_FILE}; --resume continues from it bit for bit")
    g.add_argument("--checkpoint-every", type=positive_int, metavar="N",
                   help=f"also write RUN_DIR/{CHECKPOINT_FILE} every N epochs (and at the end)")
    g.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the interrupted run in RUN_DIR with the options it was started with "
                        "(--epochs may extend it)")
    t.set_defaults(handler=cmd_train)



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
        self.console = console(stderr=True)
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
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(TextColumn("epoch"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.fields[info]}"),
                            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=self.console)
        self.bar.start()
        self.task = self.bar.add_task("train", total=self.epochs, completed=trainer.epoch, info="")

    def epoch_end(self, trainer, logs):
        if self.bar is not None:
            self.bar.update(self.task, completed=logs["epoch"], info=self._fields(logs))
        elif not self.quiet and (logs["epoch"] % self.every == 0 or logs["epoch"] in (1, self.epochs)):
            sys.stderr.write(f"epoch {logs['epoch']:>{len(str(self.epochs))}}/{self.epochs}  {self._fields(logs)}  "
                             f"({seconds(logs['time'])})\n")
            sys.stderr.flush()

    def end(self):
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


_RESUME_OPTIONS = ("epochs", "checkpoint_every", "quiet", "no_plots", "resume")


_SAVED_TYPES = {"epochs": int, "batch_size": int, "seed": int, "layers": list, "data": str, "dtype": str,
                "optimizer": str, "activation": str}


def _given_train_options(argv) -> set:
    """The ``train`` options written on the command line ``argv`` (dest names), whatever their values:
    the same parse with every default suppressed."""
    parser, train = _train_parser()
    for action in train._actions:
        action.default = argparse.SUPPRESS
    train._defaults.clear()
    return set(vars(parser.parse_args(argv))) - {"command", "debug"}


def _train_parser():
    """(a parser with the ``train`` subcommand alone, that subparser): to read what was typed."""
    parser = argparse.ArgumentParser(prog="deltaprop")
    parser.add_argument("--debug", action="store_true")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    return parser, sub.choices["train"]


def _resumed_args(args):
    """(the interrupted run's options with --epochs, --checkpoint-every, --quiet, --no-plots applied,
    its checkpoint) for ``train --resume RUN_DIR``."""
    from deltaprop.io import checkpoint

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
                             "resume it from Python with deltaprop.io.checkpoint.restore(trainer, path)")
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
    defaults = vars(_train_parser()[0].parse_args(["train"]))
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
    from deltaprop import __version__
    from deltaprop.cli import report

    report.write_history_csv(trainer.history.to_rows(), run_dir / "history.csv")
    summary = {"deltaprop_version": __version__, "config": config, "status": "interrupted",
               "stop_reason": trainer.history.stop_reason, "epochs": len(trainer.history),
               "batches_into_next_epoch": trainer.batch, "message": stop.message,
               "resume": f"deltaprop train --resume {shlex.quote(str(run_dir))}",
               "files": [CHECKPOINT_FILE, "history.csv", "metrics.json"]}
    write_json(run_dir / "metrics.json", summary)


def _prepare_inputs(args, data):
    """(shuffle, fitted scaler, X_train, X_test) as training takes them. Rows on disk (a row source) stay
    there: the scaling is fitted in one streaming pass, and the sources read through it. In memory,
    ``--shuffle blocks`` fits the scaling by the same blocks, so that the same rows in memory and on disk
    give the same figures, bit for bit."""
    from deltaprop.io.preprocessing import Scaler
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
        _note(f"the rows come in runs of one class: a block of {block_rows} rows holds {seen:.1f} of the "
                    f"{k} classes on average, so batches drawn block by block see few classes at once")
        _note("shuffle the rows once when saving them (X[p], y[p] with p = numpy.random.permutation(m)), or "
                    "use a smaller --block-rows")


def _note(text: str) -> None:
    sys.stderr.write(f"deltaprop: note: {text}\n")


def cmd_train(args) -> int:
    from deltaprop import __version__
    from deltaprop.io import checkpoint
    from deltaprop.io.datasets import parse_delimiter, resolve
    from deltaprop.model import Network
    from deltaprop.train import Trainer

    started = time.perf_counter()
    ckpt = None
    if args.resume:
        args, ckpt = _resumed_args(args)
    try:
        data = resolve(args.data, test_fraction=args.test_fraction, seed=args.seed, target=args.target,
                       task=args.task, in_memory=getattr(args, "in_memory", False), drop=getattr(args, "drop", None),
                       delimiter=parse_delimiter(args.delimiter) if getattr(args, "delimiter", None)
                       else None)
    except TaskUnclearError as unclear:
        raise unclear.spelt("--task {}") from None
    for note in data.notes:  # what the reader decided on its own is never silent
        _note(note)
    sizes, hidden, output, loss = _architecture(args, data)
    shuffle, scaler, X_train, X_test = _prepare_inputs(args, data)
    net = Network.from_sizes(sizes, hidden=hidden, output=output, loss=loss, seed=args.seed, dtype=args.dtype,
                             init=args.init)
    run_dir = _run_dir(args)
    _point_latest(run_dir)  # from the start: an interrupted run is the newest one too
    progress = _Progress(args.epochs, args.quiet)
    config = {k: v for k, v in vars(args).items() if k not in ("handler", "debug", "argv")}
    # The data file's absolute path, size and hash travel with the checkpoint, for --resume to check.
    run_info = {"config": config, "data_source": data.source}
    from deltaprop.teach.diagnose import DeadUnitMonitor

    callbacks = [DeadUnitMonitor(), progress.callback]  # dead ReLU units per epoch, for diagnose
    if args.checkpoint_every or ckpt is not None:  # keep a checkpoint the run has up to date, to its end
        callbacks.append(checkpoint.CheckpointCallback(run_dir / CHECKPOINT_FILE, every=args.checkpoint_every
                                                       or args.epochs, run=run_info))
    options = TrainOptions(epochs=args.epochs, batch_size=None if args.full_batch else args.batch_size,
                           optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
                           schedule=args.schedule, l2=args.l2, validation_fraction=args.val_fraction,
                           early_stopping=args.early_stopping, seed=args.seed, shuffle=shuffle,
                           block_rows=args.block_rows, class_weight=getattr(args, "class_weight", None))
    trainer = Trainer(net, X_train, data.y_train, options, callbacks=callbacks)
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
        with checkpoint.interruptible(trainer, run_dir / CHECKPOINT_FILE, run=run_info):
            history = trainer.run()
    except checkpoint.TrainingInterrupted as stop:
        _record_interruption(run_dir, trainer, config, stop)
        raise checkpoint.TrainingInterrupted(stop.message, "continue with: deltaprop train --resume "
                                             f"{shlex.quote(str(run_dir))}", exit_code=stop.exit_code) from None
    except DeltapropError as err:
        if err.exit_code != 4:  # not a divergence: nothing worth saving
            raise
        history, status = trainer.history, "diverged"
        error(str(err))
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
                 "target": args.target, "task": args.task, "target_name": data.target_name,
                 "drop": getattr(args, "drop", None), "delimiter": getattr(args, "delimiter", None),
                 "source": data.source},
        "training": {"epochs": len(history), "status": status, "stop_reason": history.stop_reason,
                     "best_epoch": history.best_epoch, "optimizer": repr(trainer.optimizer),
                     "batch_size": trainer.batch_size, "l2": args.l2, "seconds": round(train_seconds, 3),
                     "class_weight": getattr(args, "class_weight", None),
                     "finished": datetime.now().isoformat(timespec="seconds")},
    })
    test_metrics = metrics(net, X_test, data.y_test, data.class_names)
    kept = ("accuracy", "loss", "mse", "rmse", "mae", "r2", "roc_auc", "average_precision")
    net.meta["training"]["test"] = {k: test_metrics[k] for k in kept if k in test_metrics}
    from deltaprop.io.modelfile import save

    save(net, run_dir / MODEL_FILE)

    from deltaprop.cli import report

    rows = history.to_rows()
    report.write_history_csv(rows, run_dir / "history.csv")
    plots = []
    if not args.no_plots and rows:
        plots = _plots(run_dir, net, data, rows, test_metrics, X_test)
    summary = {
        "deltaprop_version": __version__,
        "command": shlex.join(["deltaprop", *args.argv]),
        "environment": environment(),
        "config": config,
        "data": {"name": data.name, "train_rows": int(data.X_train.shape[0]), "test_rows": int(data.X_test.shape[0]),
                 "features": data.n_features, "classes": data.class_names, "target": data.target_name,
                 "source": data.source, "target_scaling": net.meta.get("target_scaling")},
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
        "test": test_metrics,
        "files": [MODEL_FILE, "history.csv", "metrics.json", *plots],
    }
    write_json(run_dir / "metrics.json", summary)
    if not args.quiet:
        _print_train_summary(net, data, history, test_metrics, run_dir, train_seconds, plots)
    else:
        out(str(run_dir / MODEL_FILE))
    return 4 if status == "diverged" else 0


def _plots(run_dir: Path, net, data, rows, metrics, X_test) -> list[str]:
    from deltaprop.cli import report

    made = ["curves.png", "gradient_flow.png"]
    regression = data.task != "classification"
    report.plot_history(rows, run_dir / "curves.png",
                        loss_label="loss = ½·MSE of the standardised target" if regression
                        else "loss (cross-entropy)")
    report.plot_gradient_flow(rows, run_dir / "gradient_flow.png")
    if not regression:
        report.plot_confusion(np.array(metrics["confusion_matrix"]), data.class_names, run_dir / "confusion.png")
        made.append("confusion.png")
        if metrics.get("roc_auc") is not None:
            P = net.predict_proba(X_test)
            report.plot_roc(data.y_test, P[:, 1], run_dir / "roc.png", positive=data.class_names[1])
            made.append("roc.png")
    elif X_test.shape[0] and data.y_test.ndim == 1 and metrics.get("mse") is not None:
        report.plot_regression(data.y_test, net.predict(X_test), run_dir / "residuals.png", data.target_name)
        made.append("residuals.png")
    if data.image_shape:
        report.plot_first_layer(net.layers[0].W, tuple(data.image_shape), run_dir / "weights.png")
        made.append("weights.png")
    return made


def environment() -> dict:
    """Python, NumPy and BLAS versions and the platform: what a figure in metrics.json was measured on."""
    import platform

    blas = None
    try:
        from threadpoolctl import threadpool_info

        libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if libs:
            blas = {k: libs[0].get(k) for k in ("internal_api", "version", "num_threads")}
    except Exception:  # threadpoolctl missing or unable to inspect: the versions still say much
        blas = None
    return {"python": platform.python_version(), "numpy": np.__version__, "blas": blas,
            "platform": platform.platform(), "machine": platform.machine()}


def _point_latest(run_dir: Path) -> None:
    """Keep runs/latest pointing at the newest run in a ``runs`` directory (the default place, or an
    --out inside one): a symbolic link, or a text file holding the run's name where links cannot be
    made. A 'latest' that is a real directory is left alone."""
    latest = run_dir.parent / "latest"
    if run_dir.name == "latest" or run_dir.parent.name != "runs":  # only in a runs/ directory
        return
    try:
        if latest.is_symlink() or latest.is_file():
            latest.unlink()
        elif latest.exists():
            return
        try:
            latest.symlink_to(run_dir.name, target_is_directory=True)
        except OSError:
            latest.write_text(run_dir.name + "\n")
    except OSError:
        pass  # a convenience: the run itself is saved


def _print_train_summary(net, data, history, metrics, run_dir, seconds, plots) -> None:
    from deltaprop.cli import report

    out()
    out(report.history_summary(history.to_rows()))
    if history.stop_reason:
        out(history.stop_reason)
    if data.task == "classification":
        out(f"test accuracy {metrics['accuracy']:.4f}   test loss {metrics['loss']:.4f} (cross-entropy)   "
            f"({data.X_test.shape[0]} test rows, {seconds:.1f} s of training)")
        print_class_table(metrics)
    else:
        out("the loss above is ½·MSE of the standardised target (the target scaled to mean 0, std 1); "
            "the test figures are in its own units")
        out(report.regression_table(metrics, data.target_name).rstrip())
        out(f"({data.X_test.shape[0]} test rows, {seconds:.1f} s of training)")
    out(f"saved: {run_dir / MODEL_FILE}")
    out(f"       {run_dir}/history.csv, metrics.json{''.join(', ' + p for p in plots)}")
    out(f"next:  deltaprop evaluate {shlex.quote(str(run_dir / MODEL_FILE))}   |   "
        f"deltaprop diagnose {shlex.quote(str(run_dir))}")
