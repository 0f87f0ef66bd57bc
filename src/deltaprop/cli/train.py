"""``deltaprop train``: data spec → scaling → network → Trainer (progress, checkpoints, Ctrl-C) → run
directory (model, history.csv, metrics.json, plots) → summary."""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from deltaprop.cli.args import Formatter, fraction, positive_int, train_option
from deltaprop.cli.common import (
    CHECKPOINT_FILE,
    MODEL_FILE,
    RUN_FILE,
    console,
    error,
    live_bar,
    metrics,
    out,
    print_class_table,
    seconds,
    write_json,
)
from deltaprop.errors import (
    ConfigError,
    DataError,
    DeltapropError,
    DivergenceError,
    InputError,
    ModelFileError,
)
from deltaprop.io.datasets import absolute_spec, fingerprint, names_a_path
from deltaprop.io.files import (
    check_memory,
    clean_stale_tmp,
    fmt_bytes,
    free_space,
    open_regular,
    safe_lines,
    short,
    shown,
)
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
                   help="digits | fashion-mnist | fashion-mnist:DIR | mnist:DIR | idx:DIR | FILE.csv | FILE.tsv | FILE.npz | "
                        "X.npy (with --target y.npy) | DIR holding X.npy, y.npy[, X_test.npy, y_test.npy]; .npy rows "
                        "stay on disk and are read by blocks")
    g.add_argument("--target", help="the label column of a CSV file (name or 0-based index; default: the last), "
                                    "or with --data X.npy the .npy file of targets")
    g.add_argument("--in-memory", action="store_true",
                   help=".npy data: load the rows whole instead of reading them by blocks")
    train_option(g, "drop")
    train_option(g, "delimiter")
    g.add_argument("--task", choices=("classification", "regression"),
                   help="what the target is (default: text is classes, fractions are regression, whole "
                        "numbers are classes when at most 20 distinct values or 5%% of the rows are "
                        "distinct; otherwise the command asks)")
    g.add_argument("--test-fraction", type=fraction, default=0.3,
                   help="share of rows held out for the test, for data without a test split")
    g.add_argument("--val-fraction", type=fraction, default=0.1, help="share of training rows for validation")
    train_option(g, "scale")
    g = t.add_argument_group("network")
    train_option(g, "layers")
    train_option(g, "activation")
    g.add_argument("--output", help="output activation: softmax, sigmoid (two classes) or identity "
                                    "(default: softmax for classes, identity for regression)")
    g.add_argument("--loss", help="cross_entropy, binary_cross_entropy or squared_error (default: the one that "
                                  "pairs with the output)")
    train_option(g, "init")
    train_option(g, "dtype")
    g = t.add_argument_group("training")
    for name in ("optimizer", "lr", "momentum", "schedule", "epochs", "batch_size"):
        train_option(g, name)
    g.add_argument("--full-batch", action="store_true", help="full-batch gradient descent, as in the notes")
    train_option(g, "l2")
    train_option(g, "class_weight")
    g.add_argument("--early-stopping", type=positive_int, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without a better validation loss; keep the best weights")
    train_option(g, "seed")
    g.add_argument("--shuffle", choices=("rows", "blocks"),
                   help="rows: a fresh order of all rows each epoch; blocks: blocks of --block-rows rows in a random "
                        "order, rows shuffled within each block (default: blocks for .npy data read from disk, rows "
                        "otherwise; the same seed gives the same order on disk and in memory)")
    g.add_argument("--block-rows", type=positive_int, default=DEFAULTS.block_rows, metavar="N",
                   help="rows per block for --shuffle blocks (also the rows per read, and per step of the "
                        "streaming fit of the input scaling)")
    g = t.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", help="run directory (default: runs/<date>_<time>); a directory "
                                                 "that holds another run is refused unless --overwrite")
    g.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out DIR (its model, checkpoint, history, metrics and plots)")
    g.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary tables")
    g = t.add_argument_group("interruption", "Ctrl-C or SIGTERM stops after the batch in flight and writes "
                             f"RUN_DIR/{CHECKPOINT_FILE}; --resume continues from it bit for bit")
    g.add_argument("--checkpoint-every", type=positive_int, metavar="N",
                   help=f"also write RUN_DIR/{CHECKPOINT_FILE} every N epochs (and at the end)")
    g.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the interrupted run in RUN_DIR with the options it was started with "
                        "(--epochs may extend it; --data may say where its data moved), or finish the outputs "
                        "of a run stopped while saving them")
    t.set_defaults(handler=cmd_train)



def _architecture(args, data):
    """(sizes, hidden, output, loss) for the data: K softmax units for K classes, one sigmoid unit for
    two classes with --output sigmoid, identity units for regression."""
    from deltaprop.activations import canonical_name
    from deltaprop.losses import get_loss

    if data.n_features == 0:
        raise DataError(f"the data {shown(data.name)} has no feature columns (only the labels)",
                        "pass data with at least one input column; for a CSV, check --target and the delimiter")
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


# What a run directory holds; a directory with any of these belongs to a run.
PLOT_FILES = ("curves.png", "gradient_flow.png", "confusion.png", "roc.png", "residuals.png", "weights.png")
RUN_OUTPUTS = (MODEL_FILE, CHECKPOINT_FILE, "history.csv", "metrics.json", RUN_FILE, *PLOT_FILES)
LOCK_FILE = ".lock"
_LOCKS: dict = {}  # {run directory: open lock file} of this process's runs: unlocked when it exits


def _run_dir(args) -> Path:
    """The run directory, created, writable (checked by writing into it) and locked for this process:
    a ConfigError (exit 2) with the path and the free space when it cannot be written, and when another
    ``deltaprop train`` is writing into it."""
    if args.out:
        path = Path(os.path.expanduser(args.out))
    else:
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        path = Path("runs") / stamp
        n = 2
        while path.exists():
            path = Path("runs") / f"{stamp}-{n}"
            n += 1
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {shown(path)} is a file, not a directory", "pass a new or existing directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test.{os.getpid()}.tmp"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, b"deltaprop")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise _unwritable(path, exc) from None
    _lock(path)
    return path


def _unwritable(path: Path, exc: OSError) -> ConfigError:
    where = path if path.exists() else next((p for p in path.parents if p.exists()), path)
    free = free_space(where)
    return ConfigError(f"the run directory {shown(path)} cannot be written: {exc.strerror or exc} "
                       f"({fmt_bytes(free) + ' free' if free is not None else 'free space unknown'} on its disk)",
                       "choose another --out directory, or make room or permission there")


def _lock(path: Path) -> None:
    """An exclusive lock on RUN_DIR/.lock for as long as this process runs (the kernel drops it when the
    process ends, however it ends): two trainings never write into one run directory."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks, the directory check stays
        return
    key = os.path.realpath(path)
    if key in _LOCKS:  # this process holds it already (deltaprop search retrains into its own directory)
        return
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _unwritable(path, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode("ascii", "replace").strip()
        os.close(fd)
        raise ConfigError(f"another `deltaprop train` (process {holder or '?'}) is writing into {shown(path)}",
                          "wait for it to end, or choose another --out") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    _LOCKS[key] = fd


def _claim(run_dir: Path, args) -> None:
    """Make ``run_dir`` this run's own: a directory holding another run is refused unless --overwrite
    (then that run's files are removed; nothing else is touched); temporary files a killed writer left
    are removed."""
    present = [name for name in RUN_OUTPUTS if os.path.lexists(run_dir / name)]
    if present and not args.overwrite:
        resume = f"deltaprop train --resume {shlex.quote(str(run_dir))}"
        if not _outputs_complete(run_dir, ""):
            again = f"continue it with {resume}, "
        elif CHECKPOINT_FILE in present:
            again = f"train it longer with {resume} --epochs N, "
        else:  # a finished run without a checkpoint: --resume has nothing to continue
            again = ""
        raise ConfigError(f"{shown(run_dir)} already holds a run ({', '.join(present)})",
                          f"{again}choose another --out, or pass --overwrite to replace it")
    for name in present:
        try:
            os.unlink(run_dir / name)
        except OSError as exc:
            raise _unwritable(run_dir, exc) from None
    clean_stale_tmp(run_dir)


def _read_run_file(run_dir: Path) -> dict | None:
    """RUN_DIR/run.json (the run's id and options, written before training starts), checked; None when
    there is none."""
    import json

    path = run_dir / RUN_FILE
    if not os.path.lexists(path):
        return None
    with open_regular(path, "run file", ModelFileError) as f:
        raw = f.read(_MAX_RUN_FILE + 1)
    try:
        if len(raw) > _MAX_RUN_FILE:
            raise ValueError(f"over {_MAX_RUN_FILE:,} bytes")
        record = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{shown(path)} is damaged: {short(str(exc), 120)}",
                             "start a new run (or --overwrite this one)") from None
    if (not isinstance(record, dict) or not isinstance(record.get("run_id"), str) or len(record["run_id"]) > 64
            or not isinstance(record.get("config"), dict)):
        raise ModelFileError(f"{shown(path)} is damaged: it must hold a run_id and the run's config",
                             "start a new run (or --overwrite this one)")
    return record


_MAX_RUN_FILE = 10_000_000


def _no_constant(name):
    raise ValueError(f"{name} is not valid JSON")


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
        if not self.quiet and trainer.load_seconds >= 1.0:  # the pause before the first epoch, explained
            sys.stderr.write(f"loading deltaprop's compiled kernels took {seconds(trainer.load_seconds)}: Numba compiles "
                             "them on a machine's first long run and keeps them in its cache for later runs\n")
            sys.stderr.flush()
        if self.live:
            self.bar, self.task = live_bar(self.console, "epoch", self.epochs, trainer.epoch)

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


_RESUME_OPTIONS = ("epochs", "checkpoint_every", "quiet", "no_plots", "resume", "data")


def _saved_rules():
    """{option: check} for the options a checkpoint or run.json stores: each is checked before use, so that
    a damaged or crafted file gives a clear refusal, never a traceback."""
    from deltaprop.validation import check_number

    def num(**kw):
        return lambda v, k: check_number(v, k, error=ModelFileError, hint=_DAMAGED_RUN, **kw)

    def text(choices=None, none=True):
        def check(v, k):
            if (v is None and none) or (isinstance(v, str) and len(v) <= 4096 and (choices is None or v in choices)):
                return v
            raise ModelFileError(f"{k} must be {'one of ' + ', '.join(choices) if choices else 'text'}"
                                 f"{' or null' if none else ''}; got {short(v)}", _DAMAGED_RUN)
        return check

    def flag(v, k):
        if not isinstance(v, bool):
            raise ModelFileError(f"{k} must be true or false; got {short(v)}", _DAMAGED_RUN)
        return v

    def layers(v, k):
        if not isinstance(v, list) or len(v) > 1000 or not all(type(x) is int and 1 <= x <= 2**31 for x in v):
            raise ModelFileError(f"{k} must be a list of whole numbers ≥ 1; got {short(v)}", _DAMAGED_RUN)
        return v

    def target(v, k):
        if v is None or (isinstance(v, str) and len(v) <= 4096) or (type(v) is int):
            return v
        raise ModelFileError(f"{k} must be a column name or number; got {short(v)}", _DAMAGED_RUN)

    return {"epochs": num(low=1, integer=True), "batch_size": num(low=1, integer=True), "seed": num(low=0, integer=True),
            "layers": layers, "data": text(none=False), "dtype": text(("float32", "float64"), none=False),
            "optimizer": text(none=False), "activation": text(none=False), "output": text(), "loss": text(),
            "init": text(), "scale": text(), "schedule": text(none=False), "task": text(("classification", "regression")),
            "target": target, "lr": num(low=0, low_open=True, allow_none=True),
            "momentum": num(low=0, allow_none=True), "l2": num(low=0), "test_fraction": num(low=0, high=1, high_open=True),
            "val_fraction": num(low=0, high=1, high_open=True),
            "early_stopping": num(low=1, integer=True, allow_none=True),
            "checkpoint_every": num(low=1, integer=True, allow_none=True), "full_batch": flag, "no_plots": flag,
            "shuffle": text(("rows", "blocks")), "block_rows": num(low=1, integer=True), "in_memory": flag,
            "drop": text(), "delimiter": text(), "class_weight": text(("balanced",))}


_DAMAGED_RUN = "the run's stored settings are damaged; start a new run"


def _check_saved(saved, where: str) -> dict:
    if not isinstance(saved, dict) or not isinstance(saved.get("layers"), list):
        raise ModelFileError(f"{where} was not written by `deltaprop train`",
                             "resume it from Python with deltaprop.io.checkpoint.restore(trainer, path)")
    for key, check in _saved_rules().items():
        if key in saved or key in ("epochs", "batch_size", "seed", "layers", "data", "dtype", "optimizer",
                                   "activation"):
            try:
                check(saved.get(key), key)
            except ModelFileError as exc:
                raise ModelFileError(f"{where}: the run's setting {key!r} is damaged: {exc.message}", exc.hint) from None
    return saved


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
    """(the run's options with --epochs, --checkpoint-every, --quiet, --no-plots, --data applied, its
    checkpoint or None) for ``train --resume RUN_DIR``. The checkpoint must belong to the run that
    RUN_DIR/run.json describes; without a checkpoint the run starts again from its stored options."""
    from deltaprop.io import checkpoint

    run_dir = Path(os.path.expanduser(args.resume))
    if run_dir.name == "latest" and run_dir.is_symlink():  # the run it names: hints stay right once it moves on
        run_dir = run_dir.parent / os.readlink(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"--resume: no such run directory: {shown(run_dir)}",
                          "pass the directory of a `deltaprop train` run that was interrupted or stopped")
    record = _read_run_file(run_dir)
    path = run_dir / CHECKPOINT_FILE
    ckpt = checkpoint.load(path) if os.path.lexists(path) else None
    if ckpt is None and record is None:
        raise ConfigError(f"--resume: {shown(run_dir)} has no {CHECKPOINT_FILE} and no {RUN_FILE}: it holds no run "
                          "to resume", "pass the directory of a `deltaprop train` run; a run stopped before it "
                          "stored its settings must be started again with the command first typed")
    if ckpt is not None:
        saved = _check_saved(ckpt.run.get("config"), shown(path))
        if record is not None and ckpt.run.get("run_id") != record["run_id"]:
            raise ModelFileError(f"{shown(path)} belongs to another run than the one {RUN_FILE} in {shown(run_dir)} "
                                 "describes", "this directory mixes two runs: start a new run in another --out, "
                                 "or pass --overwrite")
    else:
        saved = _check_saved(record["config"], shown(run_dir / RUN_FILE))
        if _outputs_complete(run_dir, record["run_id"]):
            raise ConfigError(f"--resume: the run in {shown(run_dir)} has nothing left to do (it ended and its "
                              f"outputs are written; it kept no {CHECKPOINT_FILE} to train on from)",
                              "start a new run (with --checkpoint-every N a run can later be extended)")
    typed = _given_train_options(args.argv)
    given = typed - set(_RESUME_OPTIONS)
    if given:
        raise ConfigError(f"--resume continues the run with the options it was started with; it cannot change "
                          f"{', '.join('--' + k.replace('_', '-') for k in sorted(given))}",
                          "drop them (only --epochs, --checkpoint-every, --quiet, --no-plots and --data go with "
                          "--resume), or start a new run")
    defaults = vars(_train_parser()[0].parse_args(["train"]))
    merged = {**defaults, **saved, "out": str(run_dir), "resume": str(run_dir), "quiet": args.quiet,
              "no_plots": args.no_plots or bool(saved.get("no_plots")), "handler": args.handler, "debug": args.debug,
              "argv": args.argv, "overwrite": False}
    if "epochs" in typed:
        merged["epochs"] = args.epochs
    if args.checkpoint_every is not None:
        merged["checkpoint_every"] = args.checkpoint_every
    merged["run_id"] = (record or {}).get("run_id") or ckpt.run.get("run_id") or ""
    stored_print = saved.get("data_fingerprint")
    source = (record or {}).get("data_source") or (ckpt.run.get("data_source") if ckpt is not None else None)
    if "data" in typed:
        merged["data"] = args.data
        found = fingerprint(args.data)
        if isinstance(stored_print, dict) and found != stored_print and not _same_bytes(args.data, source):
            raise DataError(f"--data {shown(args.data)} is not the data this run was trained on (its size or "
                            "contents differ)", "pass the same data file, or start a new run")
    elif isinstance(saved.get("data"), str) and names_a_path(saved["data"]):
        if not isinstance(stored_print, dict):
            raise ConfigError(f"the run's data {shown(saved['data'])} is a file, and this run does not record a "
                              "fingerprint of it", "say which data to read: --resume RUN_DIR --data PATH")
        try:
            now = fingerprint(saved["data"])
        except DataError as exc:
            raise DataError(f"the run's data cannot be read: {exc.message}",
                            "if it moved, say where it is now: deltaprop train --resume "
                            f"{shlex.quote(str(run_dir))} --data PATH; or start a new run") from None
        if now != stored_print and not _same_bytes(saved["data"], source):
            raise DataError(f"the run's data {shown(saved['data'])} changed since the run started (its size or "
                            "contents differ)", "pass the data it was trained on with --data PATH, or start a new run")
    merged["finishing"] = False
    if ckpt is not None and (ckpt.state["stop"] or ckpt.epoch >= merged["epochs"]):
        if _outputs_complete(run_dir, merged["run_id"]):
            why = "it stopped early" if ckpt.state["stop"] else f"all {merged['epochs']} epochs are done"
            raise ConfigError(f"--resume: the run in {shown(run_dir)} has nothing left to do ({why}, its outputs "
                              "are written)", "train longer with --resume RUN_DIR --epochs N (more than the epochs "
                              "done), or start a new run")
        merged["finishing"] = True  # stopped while saving: write the outputs from the checkpoint
    return argparse.Namespace(**merged), ckpt


def _same_bytes(spec, source) -> bool:
    """True when ``spec`` names one file with the size and SHA-256 the run recorded of its data file
    (``source``): the same data, moved or renamed (the fingerprint of a spec also hashes the file's name)."""
    from deltaprop.io.datasets import changed_file

    if not isinstance(source, dict) or not isinstance(source.get("sha256"), str):
        return False
    try:
        return changed_file({**source, "path": os.path.expanduser(str(spec))}) is None
    except OSError:
        return False


def _outputs_complete(run_dir: Path, run_id: str) -> bool:
    """True when RUN_DIR/metrics.json says the run ended (completed or diverged), belongs to ``run_id``,
    and every file it lists is there."""
    import json

    path = run_dir / "metrics.json"
    try:
        with open_regular(path, "metrics file", ModelFileError) as f:
            summary = json.loads(f.read(_MAX_RUN_FILE).decode("utf-8"))
    except (ModelFileError, ValueError, UnicodeDecodeError, RecursionError):
        return False
    if not isinstance(summary, dict) or summary.get("status") not in ("completed", "diverged"):
        return False
    if run_id and summary.get("run_id") not in (run_id, None):
        return False
    files = summary.get("files")
    return isinstance(files, list) and all(isinstance(n, str) and (run_dir / n).is_file() for n in files)


def _record_interruption(run_dir: Path, trainer, config: dict, stop) -> None:
    """history.csv and metrics.json of an interrupted run: what happened and how to go on."""
    from deltaprop import __version__
    from deltaprop.cli import report

    files = [CHECKPOINT_FILE, RUN_FILE, "metrics.json"]
    if trainer.history.epochs:
        report.write_history_csv(trainer.history.to_rows(), run_dir / "history.csv")
        files.insert(1, "history.csv")
    summary = {"deltaprop_version": __version__, "run_id": config.get("run_id"), "config": config,
               "status": "interrupted", "stop_reason": trainer.history.stop_reason, "epochs": len(trainer.history),
               "batches_into_next_epoch": trainer.batch, "message": stop.message,
               "resume": f"deltaprop train --resume {shlex.quote(str(run_dir))}", "files": files}
    write_json(run_dir / "metrics.json", summary)


def _estimate(args, data, sizes) -> dict:
    """Bytes the run will need: memory for training (weights, gradients, optimizer state, the copies
    that early stopping and the divergence rollback keep, one batch's activations, the test pass) and
    disk for its files (model, checkpoint, metrics, plots)."""
    itemsize = 4 if args.dtype == "float32" else 8
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    slots = {"adam": 2, "momentum": 1, "nesterov": 1}.get(str(args.optimizer).lower(), 1)
    copies = 3 + slots + (1 if args.early_stopping else 0)  # W, dW, rollback copy, optimizer, best
    m_train = int(data.X_train.shape[0])
    batch = m_train if args.full_batch else min(args.batch_size, m_train)
    widest = max(sizes)
    from deltaprop.train import is_row_source

    in_memory = 0 if is_row_source(data.X_train) else m_train * sizes[0] * itemsize  # the scaled copy
    test_rows = int(data.X_test.shape[0]) if not is_row_source(data.X_test) else 4096
    memory = (params * itemsize * copies + 3 * batch * sum(sizes) * itemsize
              + test_rows * widest * itemsize * 2 + in_memory)
    k = data.n_classes or 0
    metrics_bytes = 2000 + 300 * k + (16 * k * k if k <= MAX_CONFUSION_CLASSES else 0) + 2000 * args.epochs
    model = params * itemsize + 64 * 1024 + 200 * k + 50 * sizes[0]
    disk = model * 2 + params * itemsize * (1 + slots) + metrics_bytes * 2 + (0 if args.no_plots else 2_000_000)
    return {"params": params, "memory": memory, "disk": disk, "model": model}


MAX_CLASSES = 1000  # more is an ID or a number column read as classes, not a task for this command
MAX_CONFUSION_CLASSES = 100  # above it, metrics.json and the plot leave the K × K matrix out


def _preflight(run_dir: Path, args, data, sizes) -> None:
    """Refuse, before any training, what would fail after it: too many classes, a network that does not
    fit in memory, a disk without room for the run's files, test inputs that are not finite."""
    from deltaprop import fast
    from deltaprop.train import is_row_source

    if data.task == "classification" and data.n_classes > MAX_CLASSES:
        raise DataError(f"the labels make {data.n_classes:,} classes (for {data.X_train.shape[0]:,} training rows); "
                        f"deltaprop trains classifiers of up to {MAX_CLASSES:,}",
                        "is the label column an ID or a number? choose it with --target, or pass --task regression")
    need = _estimate(args, data, sizes)
    check_memory(need["memory"], f"training the {'-'.join(map(str, sizes))} network ({need['params']:,} parameters "
                 f"in {args.dtype}, batches of {args.batch_size})",
                 "use fewer or narrower --layers, or a smaller --batch-size"
                 + (", or --dtype float32" if args.dtype == "float64" else ""), ConfigError)
    free = free_space(run_dir)
    if free is not None and need["disk"] > free:
        raise ConfigError(f"the run directory {shown(run_dir)} has {fmt_bytes(free)} free, but this run's files "
                          f"(model, checkpoint, metrics, plots) need about {fmt_bytes(need['disk'])}",
                          "make room there or choose another --out")
    for name, X in (("training", data.X_train), ("test", data.X_test)):
        if X.shape[0] == 0:
            raise DataError(f"the {name} split has no rows", "use more data, or another --test-fraction")
        if is_row_source(X):  # rows on disk: checked block by block as they are read
            continue
        if X.dtype.kind == "f" and not fast.all_finite(X):
            r, c = (int(v) for v in np.argwhere(~np.isfinite(X))[0])
            raise DataError(f"the {name} inputs hold NaN or infinity (first at row {r}, column {c})",
                            "fill or drop the missing values before training")


def _check_scaled(X, Z, name: str, spec: str) -> None:
    """Refuse scaled inputs Z that came out infinite or NaN from finite inputs X (values too large for the
    scaling or the dtype, or a divisor too small). Rows read from disk are checked as they are read."""
    from deltaprop import fast
    from deltaprop.train import is_row_source

    if is_row_source(Z) or Z.dtype.kind != "f" or fast.all_finite(Z):
        return
    r, c = (int(v) for v in np.argwhere(~np.isfinite(Z))[0])
    raise DataError(f"the input scaling {spec!r} turns the {name} value {float(X[r, c]):.6g} (row {r}, column {c}) "
                    f"into {Z[r, c]} in {Z.dtype.name}: the values are too large for it, or the divisor "
                    "too small", "rescale the data, pass another --scale (standard, minmax, none, divide:N), "
                    "or --dtype float64")


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
    """``deltaprop train``; a run directory this call made is removed again when the run fails before it
    stored its options (a mistyped --target, a data file that does not read): no empty run is left
    behind, and runs/latest keeps pointing at the last run that started."""
    fresh = not args.resume and (not args.out or not os.path.lexists(os.path.expanduser(args.out)))
    try:
        return _train(args, fresh)
    finally:
        while _UNSTARTED:
            _drop_unstarted(_UNSTARTED.pop())


_UNSTARTED: list = []  # run directories made by this process whose run has not stored run.json yet


def _drop_unstarted(run_dir: Path) -> None:
    """Remove ``run_dir`` if it holds nothing but this process's lock (its run never started)."""
    if (run_dir / RUN_FILE).exists():
        return
    fd = _LOCKS.pop(os.path.realpath(run_dir), None)
    try:
        os.unlink(run_dir / LOCK_FILE)
        os.rmdir(run_dir)  # refused, and left alone, when anything else is in it
    except OSError:
        pass
    if fd is not None:
        os.close(fd)


def _train(args, fresh: bool) -> int:
    from deltaprop import __version__
    from deltaprop.io import checkpoint
    from deltaprop.io.datasets import parse_delimiter, resolve
    from deltaprop.model import Network
    from deltaprop.train import Trainer

    started = time.perf_counter()
    ckpt = None
    if args.resume:
        args, ckpt = _resumed_args(args)
    else:
        args.run_id, args.finishing = secrets.token_hex(8), False
    # 1. The run directory: writable, locked, this run's own.
    run_dir = _run_dir(args)
    if fresh:
        _UNSTARTED.append(run_dir)
    if not args.resume:
        _claim(run_dir, args)
    else:
        clean_stale_tmp(run_dir)
    # 2. The data; the run's options with the data's absolute path and fingerprint.
    try:
        data = resolve(args.data, test_fraction=args.test_fraction, seed=args.seed, target=args.target,
                       task=args.task, in_memory=getattr(args, "in_memory", False), drop=getattr(args, "drop", None),
                       delimiter=parse_delimiter(args.delimiter) if getattr(args, "delimiter", None) else None,
                       max_classes=MAX_CLASSES)
    except TaskUnclearError as unclear:
        raise unclear.spelt("--task {}") from None
    if not getattr(args, "notes_said", False):  # deltaprop search said them before its retraining
        for note in data.notes:  # what the reader decided on its own is never silent
            _note(note)
    args.data = absolute_spec(args.data)
    if isinstance(args.target, str) and args.target.lower().endswith(".npy"):  # the targets of .npy inputs
        args.target = os.path.abspath(os.path.expanduser(args.target))
    config = {k: v for k, v in vars(args).items()
              if k not in ("handler", "debug", "argv", "run_id", "finishing", "overwrite", "notes_said")}
    if not isinstance(config.get("data_fingerprint"), dict):
        config["data_fingerprint"] = fingerprint(args.data)
    # The data file's absolute path, size and hash also travel with the checkpoint and the model.
    run_info = {"config": config, "run_id": args.run_id, "data_source": data.source}
    # 3. The network and what it will need, checked before training.
    sizes, hidden, output, loss = _architecture(args, data)
    _preflight(run_dir, args, data, sizes)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # reported by _check_scaled
        shuffle, scaler, X_train, X_test = _prepare_inputs(args, data)
    _check_scaled(data.X_train, X_train, "training", args.scale or data.scaling)
    _check_scaled(data.X_test, X_test, "test", args.scale or data.scaling)
    net = Network.from_sizes(sizes, hidden=hidden, output=output, loss=loss, seed=args.seed, dtype=args.dtype,
                             init=args.init)
    progress = _Progress(args.epochs, args.quiet)
    from deltaprop.teach.diagnose import DeadUnitMonitor

    callbacks = [DeadUnitMonitor(), progress.callback]  # dead ReLU units per epoch, for diagnose
    if args.checkpoint_every or ckpt is not None:  # keep a checkpoint the run has up to date, to its end
        callbacks.append(checkpoint.CheckpointCallback(run_dir / CHECKPOINT_FILE, every=args.checkpoint_every
                                                       or args.epochs, run=run_info))
    if args.momentum is not None and str(args.optimizer).lower() not in ("sgd", "momentum", "nesterov"):
        raise ConfigError(f"--momentum is for sgd, momentum and nesterov; {args.optimizer} does not use it",
                          "drop --momentum, or pass --optimizer momentum")
    options = TrainOptions(epochs=args.epochs, batch_size=None if args.full_batch else args.batch_size,
                           optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
                           schedule=args.schedule, l2=args.l2, validation_fraction=args.val_fraction,
                           early_stopping=args.early_stopping, seed=args.seed, shuffle=shuffle,
                           block_rows=args.block_rows, class_weight=getattr(args, "class_weight", None))
    try:
        trainer = Trainer(net, X_train, data.y_train, options, callbacks=callbacks)
    except InputError as exc:
        if "too few to split" not in exc.message:
            raise
        raise DataError(f"the validation split of the training rows: {exc.message} (every class has too few rows "
                        "for its share)", "pass --val-fraction 0 (no validation rows), or use more data") from None
    if ckpt is not None:
        checkpoint.restore(trainer, ckpt)
    # Every check passed: the run's options are stored before any training (a run killed before its first
    # checkpoint starts again from them with --resume).
    write_json(run_dir / RUN_FILE, {"format": "deltaprop-run", "deltaprop_version": __version__, **run_info,
                                    "command": shlex.join(["deltaprop", *args.argv])})
    _point_latest(run_dir)  # once the run starts: an interrupted run is the newest one too, a refused one is not
    if not args.quiet:
        sys.stderr.write(safe_lines(f"deltaprop {__version__}: {data!r}\n{net!r}, {trainer.optimizer!r}, "
                                    f"batch {trainer.batch_size}, {args.epochs} epochs -> {run_dir}") + "\n")
        if args.finishing:
            sys.stderr.write("the run was stopped while saving its outputs: writing them from its checkpoint\n")
        elif ckpt is not None:
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
    return _write_outputs(run_dir, args, config, net, data, trainer, history, status, scaler, X_test, started)


def _write_outputs(run_dir, args, config, net, data, trainer, history, status, scaler, X_test, started) -> int:
    """The run's files in the order that cannot lose the trained network: the model first (atomically),
    then the test metrics (the model written again with them), history.csv, metrics.json, the plots.
    A failure after the model is reported and the rest still written; the exit code says it."""
    from deltaprop import __version__
    from deltaprop.cli import report
    from deltaprop.io.modelfile import save
    from deltaprop.teach.diagnose import mean_baseline

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
                 "read": data.reading, "source": data.source, "fingerprint": config.get("data_fingerprint")},
        "training": {"epochs": len(history), "status": status, "stop_reason": history.stop_reason,
                     "best_epoch": history.best_epoch, "optimizer": repr(trainer.optimizer),
                     "batch_size": trainer.batch_size, "l2": args.l2, "seconds": round(train_seconds, 3),
                     "class_weight": getattr(args, "class_weight", None),
                     "finished": datetime.now().isoformat(timespec="seconds"), "run_id": args.run_id},
    })
    save(net, run_dir / MODEL_FILE)  # 1. nothing after this can lose the trained network
    problems = []
    try:
        test_metrics = metrics(net, X_test, data.y_test, data.class_names)
    except DivergenceError as exc:
        test_metrics, status = None, "diverged"
        net.meta["training"]["status"] = status
        problems.append(f"test metrics: {exc.message}")
    except (DeltapropError, MemoryError, FloatingPointError) as exc:
        test_metrics = None
        problems.append(f"test metrics: {_what(exc)}")
    if test_metrics is not None:
        kept = ("accuracy", "loss", "mse", "rmse", "mae", "r2", "roc_auc", "average_precision")
        net.meta["training"]["test"] = {k: test_metrics[k] for k in kept if k in test_metrics}
    if test_metrics is not None or status == "diverged":
        try:
            save(net, run_dir / MODEL_FILE)
        except DeltapropError as exc:
            problems.append(f"model file with the test metrics: {exc.message}")
    files = [MODEL_FILE, RUN_FILE]
    if CHECKPOINT_FILE and (run_dir / CHECKPOINT_FILE).is_file():
        files.append(CHECKPOINT_FILE)
    rows = history.to_rows()
    if rows:
        try:
            report.write_history_csv(rows, run_dir / "history.csv")
            files.append("history.csv")
        except (OSError, DeltapropError) as exc:
            problems.append(f"history.csv: {_what(exc)}")
    planned = [] if args.no_plots or not rows else _planned_plots(data, test_metrics, X_test)
    summary = {
        "deltaprop_version": __version__,
        "run_id": args.run_id,
        "command": shlex.join(["deltaprop", *args.argv]),
        "environment": environment(),
        "config": config,
        "data": {"name": data.name, "train_rows": int(data.X_train.shape[0]), "test_rows": int(data.X_test.shape[0]),
                 "features": data.n_features, "classes": data.class_names, "target": data.target_name,
                 "source": data.source, "read": data.reading,
                 "target_scaling": net.meta.get("target_scaling"),
                 # diagnose weighs the validation loss against the noise of a mean over this many rows
                 "validation_rows": int(trainer.val[0].shape[0]) if trainer.val is not None else 0},
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
        "test": _compact(test_metrics),
        "baseline": mean_baseline(trainer),
        "problems": problems,
        "files": [*files, "metrics.json", *planned],
    }
    try:  # the plots are listed before they exist: a run stopped while drawing them is finished by --resume
        write_json(run_dir / "metrics.json", summary)
    except OSError as exc:
        problems.append(f"metrics.json: {_what(exc)}")
    made = []
    for name in planned:
        try:
            _plot(name, run_dir, net, data, rows, test_metrics, X_test)
            made.append(name)
        except Exception as exc:  # noqa: BLE001 - a plot never costs the run: reported, the rest goes on
            if args.debug:
                raise
            problems.append(f"{name}: {_what(exc)}")
    if made != planned:
        summary["files"] = [*files, "metrics.json", *made]
        try:
            write_json(run_dir / "metrics.json", summary)
        except OSError as exc:
            problems.append(f"metrics.json: {_what(exc)}")
    if not args.quiet and test_metrics is not None:
        _print_train_summary(net, data, history, test_metrics, run_dir, train_seconds, made,
                             _still_learning(run_dir, status, args.debug))
    else:
        out(str(run_dir / MODEL_FILE))
    for problem in problems:
        error(f"{problem}\n  the model is saved in {run_dir / MODEL_FILE}")
    if status == "diverged":
        return 4
    return 1 if problems else 0


def _what(exc: BaseException) -> str:
    if isinstance(exc, DeltapropError):
        return exc.message
    if isinstance(exc, OSError):
        return f"cannot write {exc.filename or ''}: {exc.strerror or exc}".replace("write : ", "write: ")
    if isinstance(exc, MemoryError):
        return f"out of memory ({exc})" if str(exc) else "out of memory"
    return f"{type(exc).__name__}: {short(str(exc), 300)}"


def _compact(test_metrics):
    """The test metrics for metrics.json: the K × K confusion matrix left out above
    MAX_CONFUSION_CLASSES classes (it would be megabytes of JSON; `deltaprop evaluate` prints it)."""
    if test_metrics is None or len(test_metrics.get("confusion_matrix") or []) <= MAX_CONFUSION_CLASSES:
        return test_metrics
    return {**test_metrics, "confusion_matrix": None,
            "confusion_matrix_note": f"left out: {len(test_metrics['confusion_matrix'])} classes"}


def _planned_plots(data, test_metrics, X_test) -> list[str]:
    made = ["curves.png", "gradient_flow.png"]
    if data.task == "classification":
        if test_metrics is not None and data.n_classes <= MAX_CONFUSION_CLASSES:
            made.append("confusion.png")
        if test_metrics is not None and test_metrics.get("roc_auc") is not None:
            made.append("roc.png")
    elif (test_metrics is not None and X_test.shape[0] and data.y_test.ndim == 1
          and test_metrics.get("mse") is not None):
        made.append("residuals.png")
    if data.image_shape:
        made.append("weights.png")
    return made


def _plot(name: str, run_dir: Path, net, data, rows, metrics, X_test) -> None:
    from deltaprop.cli import report

    if name == "curves.png":
        regression = data.task != "classification"
        report.plot_history(rows, run_dir / name, loss_label="loss = ½·MSE of the standardised target"
                            if regression else "loss (cross-entropy)")
    elif name == "gradient_flow.png":
        report.plot_gradient_flow(rows, run_dir / name)
    elif name == "confusion.png":
        report.plot_confusion(np.array(metrics["confusion_matrix"]), data.class_names, run_dir / name)
    elif name == "roc.png":
        P = net.predict_proba(X_test)
        report.plot_roc(data.y_test, P[:, 1], run_dir / name, positive=data.class_names[1])
    elif name == "residuals.png":
        report.plot_regression(data.y_test, net.predict(X_test), run_dir / name, data.target_name)
    elif name == "weights.png":
        report.plot_first_layer(net.layers[0].W, tuple(data.image_shape), run_dir / name)


def environment() -> dict:
    """Python, NumPy and BLAS versions, the platform, and whether the compiled step and update loops ran
    (:func:`deltaprop.kernels.status`): what a figure in metrics.json was measured on."""
    import platform

    blas = None
    try:
        from threadpoolctl import threadpool_info

        libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if libs:
            blas = {k: libs[0].get(k) for k in ("internal_api", "version", "num_threads")}
    except Exception:  # threadpoolctl missing or unable to inspect: the versions still say much
        blas = None
    from deltaprop import kernels

    return {"python": platform.python_version(), "numpy": np.__version__, "blas": blas,
            "platform": platform.platform(), "machine": platform.machine(), "compiled": kernels.status()}


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


def _still_learning(run_dir: Path, status: str, debug: bool) -> str:
    """One line naming diagnose's verdict on the run's curves, with what to try: ``underfitting`` (the loss
    still falling at the last epoch, a low training accuracy or R²) or ``overfitting`` (the validation loss
    turned up while the training loss fell far below chance, by more than the noise of the validation rows);
    "" otherwise, and when both show (the two remedies would pull both ways: diagnose explains)."""
    from deltaprop.teach.diagnose import diagnose

    if status != "completed" or not (run_dir / "history.csv").is_file():
        return ""
    try:
        found = diagnose(run_dir, syntax="command")
    except Exception:  # noqa: BLE001 - a hint never costs the run; `deltaprop diagnose` reports the error
        if debug:
            raise
        return ""
    codes = found.codes
    figures = f"deltaprop diagnose {shlex.quote(str(run_dir))} gives the figures"
    if "underfitting" in codes and "overfitting" not in codes:
        finding = found.findings[codes.index("underfitting")]
        remedy = finding.suggestion.replace("`", "").rstrip(".")
        return f"underfitting (the network can still learn): {remedy}; {figures}"
    if "overfitting" in codes and "underfitting" not in codes:
        finding = found.findings[codes.index("overfitting")]
        remedy = finding.suggestion.replace("`", "").split(". ")[0].rstrip(".")
        return (f"overfitting (the validation loss was lowest at epoch {finding.epoch} and rose to "
                f"{finding.value:.3g}, beyond the noise of the validation rows): {remedy}; {figures}")
    return ""


def _print_train_summary(net, data, history, metrics, run_dir, seconds, plots, hint="") -> None:
    from deltaprop.cli import report

    out()
    out(report.history_summary(history.to_rows()))
    if history.stop_reason:
        out(history.stop_reason)
    if data.task == "classification":
        out(f"test accuracy {metrics['accuracy']:.4f}   test loss {metrics['loss']:.4f} (cross-entropy)   "
            f"({data.X_test.shape[0]} test rows, {seconds:.3g} s of training)")
        print_class_table(metrics)
    else:
        out("the loss above is ½·MSE of the standardised target (the target scaled to mean 0, std 1); "
            "the test figures are in its own units")
        out(report.regression_table(metrics, data.target_name).rstrip())
        out(f"({data.X_test.shape[0]} test rows, {seconds:.3g} s of training)")
    if hint:
        out(hint)
    out(f"saved: {run_dir / MODEL_FILE}")
    out(f"       {run_dir}/history.csv, metrics.json{''.join(', ' + p for p in plots)}")
    out(f"next:  deltaprop evaluate {shlex.quote(str(run_dir / MODEL_FILE))}   |   "
        f"deltaprop diagnose {shlex.quote(str(run_dir))}")
