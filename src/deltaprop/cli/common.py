"""What the subcommands share: the run directory's file names, loading a model and applying its input
scaling, class names, console output and JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from deltaprop.errors import ConfigError, DataError, DivergenceError, InputError

MODEL_FILE = "model.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
RUN_FILE = "run.json"  # the run's id and options, written before training starts


def load_model(path):
    """A deltaprop model file, or an .onnx file read through deltaprop.from_onnx; a missing file is
    explained in the command's terms."""
    from deltaprop import load
    from deltaprop.errors import ModelFileError

    if not Path(path).exists():
        run_dir = Path(path).parent
        if Path(path).name == MODEL_FILE and (run_dir / CHECKPOINT_FILE).is_file():
            from deltaprop.io.files import shown

            raise ModelFileError(f"{shown(run_dir)} holds a run that was stopped before it saved its model "
                                 f"(it has {CHECKPOINT_FILE}, no {MODEL_FILE})",
                                 f"finish it with deltaprop train --resume {shown(run_dir)} (its model is saved "
                                 "at the end), or pass another run's model")
        raise ModelFileError(f"no such model file: {path}",
                             f"check the path; `deltaprop train` writes RUN_DIR/{MODEL_FILE}, and "
                             f"runs/latest/{MODEL_FILE} is the newest run's")
    return load(path)


def scaler_of(net):
    from deltaprop.io.preprocessing import stored_scaler

    return stored_scaler(net)


def model_inputs(net, X) -> np.ndarray:
    """X as the network sees it: the model's stored input scaling applied, in the model's dtype."""
    from deltaprop.train import is_row_source

    if is_row_source(X):  # rows on disk: scaled as they are read
        if X.shape[1] != net.sizes[0]:
            raise InputError(f"the inputs have {X.shape[1]} features but the model takes {net.sizes[0]}",
                             "pass inputs with the same columns as the training data")
        return X.scaled(scaler_of(net), net.dtype)
    scaler = _checked_scaler(net, X)
    if scaler is not None:
        return scaler.transform(X, dtype=net.dtype)
    return np.asarray(X, dtype=net.dtype)


def prediction_network(net, X):
    """The network to feed X to as it is: ``net`` with the model's stored input scaling folded into its
    first layer (:meth:`deltaprop.io.preprocessing.Scaler.fold_into`), or ``net`` itself without one.
    Prediction then makes no scaled copy of X; the outputs equal ``net``'s on the scaled X up to rounding."""
    scaler = _checked_scaler(net, X)
    return net if scaler is None else scaler.fold_into(net)


def _checked_scaler(net, X):
    from deltaprop.io.preprocessing import stored_scaler

    return stored_scaler(net, X)


def class_names(net) -> list[str] | None:
    """The model's class names; "0".."K−1" for a classifier saved without them; None for regression."""
    names = net.meta.get("classes")
    if names:
        return [str(c) for c in names]
    if not net.is_classifier:
        return None
    k = net.sizes[-1]
    return [str(i) for i in range(2 if k == 1 else k)]


def console(stderr: bool = False):
    """A rich Console, or None when rich is missing (plain text then)."""
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console(stderr=stderr, highlight=False)


def live_bar(console, unit: str, total: int, completed: int = 0):
    """A started rich progress bar on ``console`` over ``total`` items named ``unit`` ("epoch", "fits"):
    the count, the bar, the task's ``info`` field, the time spent and the time left. Returns the
    ``rich.progress.Progress`` and its task id; ``update(task, completed=, info=)`` moves it, ``stop()`` ends it."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(TextColumn(unit), MofNCompleteColumn(), BarColumn(), TextColumn("{task.fields[info]}"),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console)
    bar.start()
    return bar, bar.add_task(unit, total=total, completed=completed, info="")


def error(text: str) -> None:
    """``deltaprop: error: TEXT`` on standard error; control characters from names in files are escaped."""
    from deltaprop.io.files import safe_lines

    sys.stderr.write(f"deltaprop: error: {safe_lines(text)}\n")


def out(text: str = "") -> None:
    """A line on standard output; control characters (names from files) are escaped, never sent raw."""
    from deltaprop.io.files import safe_lines

    sys.stdout.write(safe_lines(text) + "\n")


def seconds(t: float) -> str:
    return f"{t * 1000:.1f} ms" if t < 1 else f"{t:.2f} s"


def write_json(path, obj) -> None:
    """obj as indented JSON, written atomically (NumPy numbers and arrays, paths converted)."""
    from deltaprop.io.files import atomic_write

    atomic_write(path, (json.dumps(obj, indent=2, default=json_default) + "\n").encode())


def json_default(value):
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
def metrics(net, X, y, class_names) -> dict:
    """Metrics of ``net`` on prepared inputs X and targets y (class indices when ``class_names`` is a
    list): the classification summary (accuracy, log loss, per class, confusion; ROC-AUC, average
    precision and the threshold for two classes) or MSE, RMSE, MAE and R² in the targets' units; and
    ``loss``, the mean loss of the network's own cost without the L2 term (for regression ½·MSE of
    the standardised targets, as training reports it)."""
    from deltaprop import metrics as M

    Z, A = logits(net, X)
    finite_outputs(net, A)
    Y = net.prepare_targets(y)
    if class_names is not None:
        out = M.classification_summary(y, net.decide(A), class_names, P=net.probabilities(A))
    else:
        finite = bool(np.all(np.isfinite(A)))
        out = M.regression_summary(y, net.decide(A)) if finite else {"mse": None, "rmse": None, "mae": None,
                                                                      "r2": None}
        scaling = net.meta.get("target_scaling")
        if scaling:  # the loss is the training loss: on the standardised targets
            Y = (Y - np.asarray(scaling["mean"], dtype=Y.dtype)) / np.asarray(scaling["std"], dtype=Y.dtype)
    loss = float(net.loss.value(Z, A, Y) / X.shape[0])
    out["loss"] = loss if np.isfinite(loss) else None  # metrics.json stays strict JSON
    return out


def finite_outputs(net, A) -> None:
    """A DivergenceError (exit 4) when the network's outputs A are NaN or infinite: its weights are too
    large for these inputs (a diverged or damaged model), and every figure from them would be garbage."""
    from deltaprop import fast

    if fast.all_finite(A):
        return
    bad = int(np.sum(~np.all(np.isfinite(A), axis=1)))
    biggest = max(float(np.max(np.abs(p))) for p in net.params())
    raise DivergenceError(f"the network's outputs are NaN or infinite on {bad} of {A.shape[0]} rows (its weights "
                          f"reach |w| = {biggest:.3g}, too large for these inputs in {net.dtype.name})",
                          "the model diverged or is damaged: retrain it with a lower learning rate, or check "
                          "that the inputs are scaled as in training")


def logits(net, X, rows: int = 4096):
    """(Z_L, A_L) of prepared inputs: at once for an array, block by block for rows on disk."""
    from deltaprop.train import is_row_source

    if not is_row_source(X):
        return net.logits(X)
    parts = [net.logits(X.read(i, i + rows)) for i in range(0, X.shape[0], rows)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def print_class_table(metrics) -> None:
    from deltaprop.cli import report

    con = console()
    if con is not None and con.is_terminal:
        con.print(report.rich_per_class_table(metrics))
    else:
        out(report.per_class_table(metrics))


def target_name(net) -> str | None:
    """The name of the column the model predicts (a CSV header), or None."""
    info = net.meta.get("data") or {}
    return info.get("target_name") or None


def dataset_for(net, spec=None, target=None):
    """The Dataset of ``spec`` (default: the model's own data, refused when its file changed since
    training), split as training split it."""
    return evaluation_data(net, spec, target, split="test")[2]


def evaluation_data(net, spec=None, target=None, split=None, drop=None, delimiter=None):
    """(X, y, Dataset, split) to evaluate ``net`` on. Without ``spec``: the model's own data (from the
    absolute path it recorded, refused when the file changed since training) and, by default, its
    test split. With ``spec``: that data, all of it by default (``split`` 'test' or 'train' splits it
    as training did), its columns matched to the model's by name."""
    from deltaprop.io.datasets import (
        TABLE_SUFFIXES,
        changed_file,
        column_order,
        fingerprint,
        names_a_path,
        parse_delimiter,
        resolve,
    )

    info = net.meta.get("data") or {}
    own = not spec
    if own:
        spec = info.get("spec")
        if not spec:
            raise ConfigError("this model does not say which data it was trained on", "pass --data SPEC")
        source = info.get("source")
        if not source and names_a_path(spec):
            # A path stored in a model file is read only when its fingerprint is recorded and matches:
            # a crafted model cannot make the command open, and echo parts of, a file the user did not name.
            from deltaprop.io.files import shown

            stored = info.get("fingerprint")
            if not isinstance(stored, dict):
                raise ConfigError(f"the model names its data {shown(spec)} but records no fingerprint of it, so "
                                  "deltaprop will not open it on the model's word", f"pass --data {shown(spec)} "
                                  "(or another data spec) to say which data to read")
            try:
                same = fingerprint(spec) == stored
            except DataError:
                same = False
            if not same:
                raise DataError(f"the model's data {shown(spec)} is missing or is not the file it was trained on "
                                "(its size or contents differ)", "pass --data SPEC to say which data to evaluate on")
        if source:
            why = changed_file(source)
            if why and not Path(source["path"]).is_file():
                raise DataError(f"the model's data file {source['path']} is gone (moved or deleted)",
                                "if it moved, pass it: --data NEW_PATH --split test gives the rows held out in "
                                "training (checked to be the same file); --data FILE alone scores every row")
            if why:
                raise DataError(f"{why}: its test split would no longer be the rows held out in training",
                                "evaluate the file as it is now on all its rows with "
                                f"--data {source['path']}, "
                                "or train again")
            spec = source["path"]  # absolute: evaluate works from any directory
        target = target if target is not None else info.get("target")
        drop = drop if drop is not None else info.get("drop")
        delimiter = delimiter if delimiter is not None else info.get("delimiter")
    elif target is None:
        target = target_name(net)
    split = split or ("test" if own else "all")
    task = net.meta.get("task") or ("classification" if net.is_classifier else "regression")
    is_file = str(spec).lower().endswith((*TABLE_SUFFIXES, ".npz"))
    whole = split == "all" and is_file
    data = resolve(spec, test_fraction=0 if whole else info.get("test_fraction", 0.3),
                   seed=info.get("seed", 0), target=target, task=task, drop=drop,
                   delimiter=parse_delimiter(delimiter) if delimiter else None,
                   dropped_in_training=None if own else info.get("drop"),
                   known=None if own else net.meta.get("feature_names"))
    if split == "test":
        X, y = data.X_test, data.y_test
    elif split == "train" or whole:
        X, y = data.X_train, data.y_train
    else:
        from deltaprop.train import is_row_source

        if is_row_source(data.X_train):
            raise ConfigError("--split all joins the train and test rows in memory, but these rows are read "
                              "from disk", "evaluate --split train and --split test one after the other")
        X, y = np.concatenate([data.X_train, data.X_test]), np.concatenate([data.y_train, data.y_test])
    source = info.get("source")
    if not own and split in ("test", "train") and is_file and isinstance(source, dict):
        if changed_file({**source, "path": str(Path(spec).expanduser())}):
            data.notes.append(f"{spec} is not the file the model was trained on (other size or contents): its "
                              f"{split} split is not the rows training used as its {split} rows")
    names = net.meta.get("feature_names")
    read = data.reading if isinstance(data.reading, dict) else {}
    headerless = read.get("header") is False or read.get("numbered_header") is True
    if headerless and names and data.feature_names != names:  # nothing to match by name: said, as in predict
        from deltaprop.io.datasets import headerless_note

        data.notes.append(headerless_note(spec, names, numbered=read.get("header") is not False))
    elif names and data.feature_names and data.feature_names != names:
        order, notes = column_order(data.feature_names, names, None, spec)
        X = X[:, order]
        data.notes.extend(notes)
    elif not names and not own and data.feature_names and read.get("header") is True and not read.get(
            "numbered_header"):
        from deltaprop.io.datasets import unnamed_model_note

        data.notes.append(unnamed_model_note(spec, data.feature_names))
    return X, y, data, split


def labels_for_model(net, data, y) -> np.ndarray:
    """The data set's labels as the model's class indices, matched by class name."""
    classes = class_names(net)
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
