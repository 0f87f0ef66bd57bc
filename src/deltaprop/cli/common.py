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
    """A deltaprop model file, or an .onnx file read through deltaprop.from_onnx."""
    from deltaprop import load

    return load(path)


def scaler_of(net):
    from deltaprop.io.preprocessing import Scaler

    return Scaler.from_dict(net.meta["scaler"]) if "scaler" in net.meta else None


def model_inputs(net, X) -> np.ndarray:
    """X as the network sees it: the model's stored input scaling applied, in the model's dtype."""
    from deltaprop.train import is_row_source

    scaler = scaler_of(net)
    if is_row_source(X):  # rows on disk: scaled as they are read
        if X.shape[1] != net.sizes[0]:
            raise InputError(f"the inputs have {X.shape[1]} features but the model takes {net.sizes[0]}",
                             "pass inputs with the same columns as the training data")
        return X.scaled(scaler, net.dtype)
    if scaler is not None:
        if scaler.n_features is not None and np.ndim(X) == 2 and X.shape[1] != scaler.n_features:
            raise InputError(f"the inputs have {X.shape[1]} features but the model was trained on "
                             f"{scaler.n_features}", "pass inputs with the same columns as the training data")
        return scaler.transform(X, dtype=net.dtype)
    return np.asarray(X, dtype=net.dtype)


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
    list): the classification summary (accuracy, log loss, per class, confusion) or MSE and R²; and
    the mean loss of the network's own cost, without the L2 term."""
    from deltaprop import metrics as M

    Z, A = logits(net, X)
    finite_outputs(net, A)
    if class_names is not None:
        out = M.classification_summary(y, net.decide(A), class_names, P=net.probabilities(A))
    else:
        y_pred = A[:, 0] if A.shape[1] == 1 else A
        out = {"mse": M.mean_squared_error(y, y_pred), "r2": M.r2_score(y, y_pred)}
    loss = float(net.loss.value(Z, A, net.prepare_targets(y)) / X.shape[0])
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


def dataset_for(net, spec=None, target=None):
    """The data set ``spec`` names, or the one the model was trained on. A path stored in a model file
    is read only when the file's recorded fingerprint (size, SHA-256) matches: a crafted model cannot
    make the command open, and echo parts of, a file the user did not name."""
    from deltaprop.io.datasets import fingerprint, resolve

    info = net.meta.get("data") or {}
    if not spec:
        spec = info.get("spec")
        if not spec:
            raise ConfigError("this model does not say which data it was trained on", "pass --data SPEC")
        if str(spec).strip().lower() not in ("digits", "fashion-mnist", "fashion_mnist"):
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
    return resolve(spec, test_fraction=info.get("test_fraction", 0.3), seed=info.get("seed", 0),
                   target=target if target is not None else info.get("target"), task=info.get("task"))


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
