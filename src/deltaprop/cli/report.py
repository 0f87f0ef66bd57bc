"""Reports for people: training histories, scores and gradient checks as text, CSV and plots.

Nothing here computes a model; it renders what :mod:`deltaprop.train`, :mod:`deltaprop.metrics`
and :mod:`deltaprop.gradcheck` produced. Library code never prints: the table functions return
strings (or a ``rich`` Table), the others write one file each.

- ``write_history_csv(rows, path)``: ``History.to_rows()`` as CSV, written atomically.
- ``plot_history``, ``plot_confusion``, ``plot_first_layer``, ``plot_gradient_flow``: one image
  each (PNG, or SVG/PDF when the file name says so), written atomically.
- ``per_class_table``, ``confusion_table``, ``history_summary``, ``gradcheck_table``: plain text
  for logs and pipes, readable at 80 columns for 10 classes; ``rich_per_class_table`` for terminals.

Functions that take history ``rows`` accept what :func:`deltaprop.teach.diagnose.read_history` reads:
``History.to_rows()``, a History, a history.csv / history.json file or a run directory.

matplotlib and rich are optional (``pip install 'deltaprop[cli]'``) and imported only when a plot
or a rich table is asked for. Plots use matplotlib's object-oriented API on an Agg canvas, never
pyplot: no window opens, no global backend changes, no figure stays alive in the caller's process.
"""

from __future__ import annotations

import csv
import importlib
import io
import math
import os
from pathlib import Path

import numpy as np

from deltaprop.errors import DeltapropError, InputError
from deltaprop.gradcheck import GradCheckReport, GradCheckRow
from deltaprop.io.files import safe_text
from deltaprop.teach.diagnose import column, per_layer, read_history
from deltaprop.validation import check_positive_int

__all__ = ["write_history_csv", "plot_history", "plot_confusion", "plot_first_layer", "plot_gradient_flow",
           "plot_regression", "plot_roc", "regression_table", "binary_line", "per_class_table",
           "confusion_table", "rich_per_class_table", "history_summary", "gradcheck_table"]

WIDTH = 80          # the terminal width the plain-text tables are laid out for
NAME_WIDTH = 20     # class names longer than this are cut, ending in "…"
_WRITE_HINT = "check that the directory exists and is writable"
_IMAGE_FORMATS = ("png", "svg", "pdf")


# -- files ---------------------------------------------------------------------------------------------

def _atomic_write(path, write, binary: bool) -> Path:
    """Call ``write(f)`` on an in-memory file, then write its bytes with
    :func:`deltaprop.io.modelfile.atomic_write`: readers see the old file or the whole new one, never
    half of it, and a failure leaves the old file as it was."""
    from deltaprop.io.files import atomic_write

    path = Path(os.fspath(path))
    buf = io.BytesIO() if binary else io.StringIO(newline="")
    write(buf)
    data = buf.getvalue() if binary else buf.getvalue().encode("utf-8")
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise DeltapropError(f"cannot write {path}: {exc.strerror or exc}", _WRITE_HINT) from None
    return path


def _require(module: str, what: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise DeltapropError(f"{what} needs {package}, which is not installed",
                             "pip install 'deltaprop[cli]' (or pip install " + package + ")") from None


def _figure(width: float, height: float):
    """A matplotlib Figure on an Agg canvas (no pyplot, no GUI)."""
    _require("matplotlib", "plotting")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    from matplotlib.ticker import MaxNLocator

    for ax in fig.axes:
        if ax.get_xlabel() == "epoch":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epoch 5, never 2.5
    suffix = Path(os.fspath(path)).suffix.lower().lstrip(".")
    fmt = suffix if suffix in _IMAGE_FORMATS else "png"
    return _atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=100), binary=True)


def write_history_csv(rows, path) -> Path:
    """Write ``History.to_rows()`` (or a History) to ``path`` as CSV, atomically; returns the path.

    The header is the union of the rows' keys in first-seen order (``epoch, loss, accuracy, ...,
    delta_norm_1, ..., dW_norm_1, ...``); a value a row lacks is an empty cell. Numbers are written
    with Python's shortest round-trip repr, so ``float(cell)`` gives back the exact value.
    """
    if hasattr(rows, "to_rows"):
        rows = rows.to_rows()
    rows = list(rows)
    if not rows:
        raise InputError("no epochs to write: the history is empty", "train for at least one epoch first")
    if not all(isinstance(r, dict) for r in rows):
        raise InputError("history rows must be dicts (History.to_rows())", "pass history.to_rows()")
    header = list(dict.fromkeys(key for row in rows for key in row))

    def write(f):
        writer = csv.DictWriter(f, fieldnames=header, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)

    return _atomic_write(path, write, binary=False)


# -- plots ---------------------------------------------------------------------------------------------

def _finite(values) -> bool:
    return bool(np.any(np.isfinite(values)))


def _epochs(rows) -> np.ndarray:
    epochs = column(rows, "epoch")
    return epochs if np.all(np.isfinite(epochs)) else np.arange(1, len(rows) + 1, dtype=float)


def _history_rows(rows) -> list[dict]:
    rows, _ = read_history(rows)
    if not rows:
        raise InputError("the history has no epochs", "train for at least one epoch first")
    return rows


def plot_history(rows, path=None, log: bool | None = None, loss_label: str = "loss"):
    """Loss (training, and validation when present) and accuracy (training, validation) per epoch,
    as two panels of one image; only the loss panel for regression (no accuracy recorded).
    The best validation epoch (lowest validation loss) is marked. The loss axis is logarithmic when
    ``log`` is True, or (``log`` None) when the loss spans more than a decade. ``loss_label`` names the
    loss on its axis (e.g. "loss = ½·MSE of the standardised target"). Returns the path written, or
    the matplotlib Figure when ``path`` is None."""
    rows = _history_rows(rows)
    epochs = _epochs(rows)
    loss, val_loss = column(rows, "loss"), column(rows, "val_loss")
    acc, val_acc = column(rows, "accuracy"), column(rows, "val_accuracy")
    with_acc = _finite(acc) or _finite(val_acc)
    fig = _figure(10.0 if with_acc else 5.5, 4.0)
    axes = fig.subplots(1, 2 if with_acc else 1, squeeze=False)[0]
    marker = "o" if len(rows) <= 30 else None

    ax = axes[0]
    ax.plot(epochs, loss, marker=marker, markersize=3, label="training")
    if _finite(val_loss):
        ax.plot(epochs, val_loss, marker=marker, markersize=3, linestyle="--", label="validation")
        best = int(np.nanargmin(val_loss))
        ax.plot([epochs[best]], [val_loss[best]], marker="*", markersize=12, color="black", linestyle="none",
                label=f"lowest validation loss (epoch {epochs[best]:g})")
    both = np.concatenate([loss, val_loss])
    both = both[np.isfinite(both)]
    spans_decades = bool(both.size and both.min() > 0 and both.max() / both.min() > 10)
    if log or (log is None and spans_decades):
        ax.set_yscale("log")  # losses that fall by orders of magnitude read better on a log scale
    ax.set(title="loss", xlabel="epoch", ylabel=loss_label)
    ax.grid(True, alpha=0.3)
    ax.legend()

    if with_acc:
        ax = axes[1]
        if _finite(acc):
            ax.plot(epochs, acc, marker=marker, markersize=3, label="training")
        if _finite(val_acc):
            ax.plot(epochs, val_acc, marker=marker, markersize=3, linestyle="--", label="validation")
        ax.set(title="accuracy", xlabel="epoch", ylabel="accuracy (fraction right)")
        low = np.nanmin(np.concatenate([acc, val_acc]))
        ax.set_ylim(max(0.0, low - 0.05), 1.005)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right")
    for ax in axes:
        if len(rows) <= 12:
            ax.set_xticks(epochs)
    fig.suptitle(f"Training history ({len(rows)} epoch{'s' if len(rows) != 1 else ''})")
    return fig if path is None else _save(fig, path)


def _short(name: str, width: int = NAME_WIDTH) -> str:
    name = safe_text(name)
    return name if len(name) <= width else name[: width - 1] + "…"


def _literal(text: str) -> str:
    """Text from a file as matplotlib must draw it: every $ literal ('$0-$50' is a class name, never
    mathematics to typeset, and a stray '$\\frac' cannot break the plot)."""
    return str(text).replace("$", r"\$")


def _confusion_input(cm, class_names):
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise InputError(f"the confusion matrix has shape {cm.shape}; expected (K, K)",
                         "pass deltaprop.metrics.confusion_matrix(y_true, y_pred)")
    if cm.dtype.kind not in "iub" or (cm.size and cm.min() < 0):
        raise InputError("the confusion matrix must hold counts (whole numbers ≥ 0)",
                         "pass counts; plot_confusion normalizes them itself")
    names = [str(c) for c in class_names]
    if len(names) != cm.shape[0]:
        raise InputError(f"{len(names)} class names for a {cm.shape[0]}×{cm.shape[0]} confusion matrix",
                         "pass one name per class, class 0 first")
    return cm.astype(np.int64), names


def plot_confusion(cm, class_names, path, normalize: bool = True) -> Path:
    """Heat map of the confusion matrix C (rows: true class, columns: predicted class) with the
    counts written in the cells. With ``normalize`` the colour is the row fraction C[j, k] / Σ_k C[j, k]
    (how the examples of each true class were predicted, so rare classes show as clearly as common
    ones); without, the colour is the count."""
    cm, names = _confusion_input(cm, class_names)
    K = cm.shape[0]
    support = cm.sum(axis=1, keepdims=True)
    shown = np.divide(cm, support, out=np.zeros(cm.shape), where=support > 0) if normalize else cm.astype(float)
    vmax = 1.0 if normalize else max(float(cm.max()), 1.0)
    side = min(max(5.0, 0.55 * K + 2.5), 16.0)  # beyond 40 classes the cells carry colour only
    fig = _figure(side + 1.2, side)
    ax = fig.subplots()
    image = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=vmax)
    if K <= 40:
        size = 11 if K <= 10 else 8 if K <= 20 else 6
        for j in range(K):
            for k in range(K):
                dark = shown[j, k] > 0.55 * vmax
                ax.text(k, j, str(cm[j, k]), ha="center", va="center", fontsize=size,
                        color="white" if dark else ("black" if cm[j, k] else "0.6"))
    labels = [_short(n, 14) for n in names]
    wide = max(map(len, labels)) > 2
    labels = [_literal(n) for n in labels]
    ax.set_xticks(range(K), labels, rotation=45 if wide else 0, ha="right" if wide else "center",
                  rotation_mode="anchor")
    ax.set_yticks(range(K), labels)
    ax.set(xlabel="predicted class", ylabel="true class")
    total = int(cm.sum())
    acc = np.trace(cm) / total if total else float("nan")
    ax.set_title(f"Confusion matrix: accuracy {acc:.1%} of {total} examples")
    bar = fig.colorbar(image, ax=ax, shrink=0.8)
    bar.set_label("fraction of the true class (row)" if normalize else "examples")
    return _save(fig, path)


def plot_first_layer(W, image_shape, path, max_units: int = 64) -> Path:
    """Each row w_j of the first layer's W (n_1, n_x) drawn as an image of ``image_shape`` (rows,
    cols): the input pattern that drives hidden unit j (z_j = w_j · x + b_j). Red is a positive
    weight, blue a negative one; the colour scale is symmetric per unit, ±max|w_j|. At most
    ``max_units`` units (the first ones) are drawn. A Network may be passed for W."""
    if hasattr(W, "layers"):
        W = W.layers[0].W
    W = np.asarray(W, dtype=np.float64)
    max_units = check_positive_int(max_units, "max_units")
    try:
        r, c = (int(s) for s in image_shape)
    except (TypeError, ValueError):
        raise InputError(f"image_shape must be (rows, cols), got {image_shape!r}",
                         "for example (8, 8) for the digits, (28, 28) for MNIST") from None
    if W.ndim != 2:
        raise InputError(f"W has shape {W.shape}; expected the first layer's weights (n_1, n_x)",
                         "pass net.layers[0].W")
    if r < 1 or c < 1 or r * c != W.shape[1]:
        raise InputError(f"image_shape {r}×{c} = {r * c} pixels, but each row of W has {W.shape[1]} inputs",
                         "pass the shape of the input images, for example (8, 8) for 64 inputs")
    n = min(W.shape[0], max_units)
    ncols = math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    cell = 1.2 if n > 16 else 1.8
    fig = _figure(max(ncols * cell, 4.5), nrows * cell * r / c + 0.9)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for j, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if j >= n:
            continue
        w = W[j]
        vmax = float(np.max(np.abs(w))) or 1.0
        ax.imshow(w.reshape(r, c), cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_title(f"unit {j + 1}", fontsize=7, pad=2)
    more = f", units 1–{n} of {W.shape[0]}" if n < W.shape[0] else ""
    fig.suptitle(f"First-layer weights: rows of W₁ ({W.shape[0]}×{W.shape[1]}) as {r}×{c} images{more}\n"
                 "red positive, blue negative, colour scale ±max|w| per unit", fontsize=10)
    return _save(fig, path)


def plot_gradient_flow(rows, path) -> Path:
    """‖δ_l‖ and ‖dW_l‖ (Frobenius norms on each epoch's last batch) per layer over the epochs, on a
    log scale, one line per layer. In a deep sigmoid network every layer multiplies δ by
    g′(z) ≤ ¼ on the way back, so the lines of the first layers lie orders of magnitude below the
    last (vanishing gradients); with ReLU they stay together. The title gives ‖dW_1‖ / ‖dW_L‖ at
    the last epoch."""
    rows = _history_rows(rows)
    epochs = _epochs(rows)
    panels = [(key, title, per_layer(rows, key)) for key, title in
              (("delta_norm", "‖δ_l‖: error of layer l"), ("dW_norm", "‖dW_l‖: gradient of W_l"))]
    panels = [p for p in panels if p[2] is not None]
    if not panels:
        raise InputError("the history has no gradient-flow columns (delta_norm_1, dW_norm_1, ...)",
                         "pass the rows of a History recorded by deltaprop.fit (History.to_rows())")
    fig = _figure(5.0 * len(panels) + 1.4, 4.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    from matplotlib import colormaps

    for ax, (_key, title, values) in zip(axes, panels):
        L = values.shape[1]
        colors = colormaps["viridis"](np.linspace(0.0, 0.9, L))
        values = np.where(values > 0, values, np.nan)  # log scale: a zero norm is not drawable
        for l in range(L):
            ax.plot(epochs, values[:, l], color=colors[l], marker="o" if len(rows) <= 30 else None,
                    markersize=3, label=f"layer {l + 1}")
        ax.set_yscale("log")
        ax.set(title=title, xlabel="epoch", ylabel="Frobenius norm (log scale)")
        ax.grid(True, which="both", alpha=0.3)
    # One legend beside the panels: the same colours mean the same layers in both, and no line hides under it.
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8, ncols=2 if len(labels) > 16 else 1)
    title = "Gradient flow per layer"
    dW = per_layer(rows, "dW_norm")
    if dW is not None and dW.shape[1] > 1 and dW[-1, -1] > 0 and np.isfinite(dW[-1, 0]):
        title += f": last epoch ‖dW_1‖ / ‖dW_L‖ = {dW[-1, 0] / dW[-1, -1]:.2g}"
    fig.suptitle(title)
    return _save(fig, path)


# -- text ----------------------------------------------------------------------------------------------

def _summary_rows(summary: dict):
    """[(name, precision, recall, f1, support)] from a classification_summary dict."""
    try:
        per = summary["per_class"]
        return [(name, float(v["precision"]), float(v["recall"]), float(v["f1"]), int(v["support"]))
                for name, v in per.items()]
    except (KeyError, TypeError, AttributeError, ValueError):
        raise InputError("the summary has no per-class scores",
                         "pass deltaprop.metrics.classification_summary(y_true, y_pred, class_names)") from None


def _averages(summary: dict, rows) -> list[tuple]:
    """[(label, precision, recall, f1, support)] for the accuracy and average lines (None: blank)."""
    n = sum(r[4] for r in rows)
    f1 = np.array([r[3] for r in rows])
    weights = np.array([r[4] for r in rows], dtype=float)
    return [
        ("accuracy", None, None, summary.get("accuracy"), n),
        ("macro avg", summary.get("macro_precision", float(np.mean([r[1] for r in rows]))),
         summary.get("macro_recall", float(np.mean([r[2] for r in rows]))),
         summary.get("macro_f1", float(f1.mean())), n),
        ("weighted avg",
         summary.get("weighted_precision", float(np.array([r[1] for r in rows]) @ weights / n) if n else 0.0),
         summary.get("weighted_recall", float(np.array([r[2] for r in rows]) @ weights / n) if n else 0.0),
         summary.get("weighted_f1", float(f1 @ weights / n) if n else 0.0), n),
    ]


def _score(x) -> str:
    return "" if x is None else f"{x:.3f}"


def per_class_table(summary: dict) -> str:
    """Precision, recall, F1 and support per class, then accuracy and the macro and weighted
    averages, as aligned plain text (the layout of scikit-learn's classification_report).
    Class names longer than 20 characters are cut with "…"; 10 classes fit in 80 columns."""
    rows = _summary_rows(summary)
    extra = _averages(summary, rows)
    names = [_short(r[0]) for r in rows]
    w = max([len("weighted avg")] + [len(n) for n in names])
    sw = max(len("support"), len(str(max([r[4] for r in extra] + [0]))))
    line = lambda name, p, r, f, s: (f"{name:<{w}}  {_score(p):>9}  {_score(r):>6}  {_score(f):>6}  "
                                     f"{'' if s is None else s:>{sw}}").rstrip()
    out = [f"{'class':<{w}}  {'precision':>9}  {'recall':>6}  {'f1':>6}  {'support':>{sw}}",
           "-" * (w + 29 + sw)]
    out += [line(name, *r[1:]) for name, r in zip(names, rows)]
    out.append("")
    out += [line(*e) for e in extra]
    if summary.get("log_loss") is not None:
        out.append(f"{'log loss':<{w}}  {summary['log_loss']:>9.4f}")
    binary = binary_line(summary)
    if binary:
        out.append(binary)
    return "\n".join(out) + "\n"


def binary_line(summary: dict) -> str | None:
    """'ROC-AUC 0.991 · average precision 0.994 (positive class 'b', threshold 0.5)' for two classes."""
    if summary.get("roc_auc") is None:
        return None
    return (f"ROC-AUC {summary['roc_auc']:.4f} · average precision {summary['average_precision']:.4f} "
            f"(positive class {summary.get('positive_class')!r}: "
            f"p ≥ {summary.get('threshold', 0.5):g} predicts it)")


def regression_table(summary: dict, target: str | None = None) -> str:
    """MSE, RMSE, MAE and R² (in the target's units) and the loss, as aligned plain text."""
    name = f" of {target!r}" if target else ""
    out = [f"regression{name} on {summary.get('n_examples', summary.get('rows', '?'))} rows"]
    for key, label in (("mse", "MSE"), ("rmse", "RMSE"), ("mae", "MAE"), ("r2", "R²")):
        v = summary.get(key)
        out.append(f"  {label:<5} {'' if v is None else format(v, '.4g'):>12}")
    if summary.get("loss") is not None:
        out.append(f"  loss  {summary['loss']:>12.4g}   (½·MSE of the standardised target, as in training)")
    return "\n".join(out) + "\n"


def plot_regression(y_true, y_pred, path, target: str | None = None) -> Path:
    """Two panels: predicted against true values (the diagonal is a perfect fit) and the residuals
    y − ŷ against the prediction (a band around 0 is what a good fit leaves)."""
    y_true = np.asarray(y_true, dtype=float).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=float).reshape(-1)
    fig = _figure(10.0, 4.2)
    ax1, ax2 = fig.subplots(1, 2)
    name = _literal(target or "target")
    ax1.scatter(y_true, y_pred, s=12, alpha=0.7)
    lo, hi = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    ax1.plot([lo, hi], [lo, hi], color="black", linewidth=1, label="ŷ = y")
    ax1.set(title="predicted against true", xlabel=f"true {name}", ylabel=f"predicted {name}")
    ax1.legend()
    ax1.grid(True, alpha=0.3)
    ax2.scatter(y_pred, y_true - y_pred, s=12, alpha=0.7)
    ax2.axhline(0, color="black", linewidth=1)
    ax2.set(title="residuals", xlabel=f"predicted {name}", ylabel="y − ŷ")
    ax2.grid(True, alpha=0.3)
    from deltaprop import metrics as M

    fit = M.regression_summary(y_true, y_pred)  # the figures the summary prints, on the plotted rows
    fig.suptitle(f"{name} on {y_true.shape[0]} test rows: R² {fit['r2']:.3g}, RMSE {fit['rmse']:.4g}, "
                 f"MAE {fit['mae']:.4g}")
    return _save(fig, path)


def plot_roc(y_true, scores, path, positive: str = "1") -> Path:
    """The ROC curve (true-positive rate against false-positive rate as the threshold falls), its
    area in the legend, the chance diagonal, and the point of the threshold ½ marked."""
    from deltaprop import metrics as M

    fpr, tpr, thresholds = M.roc_curve(y_true, scores)
    auc = M.roc_auc_score(y_true, scores)
    fig = _figure(5.0, 4.6)
    ax = fig.subplots()
    ax.plot(fpr, tpr, label=f"ROC, area {auc:.3f}")
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="chance")
    at = int(np.flatnonzero(thresholds >= 0.5)[-1]) if np.any(thresholds >= 0.5) else 0
    ax.plot([fpr[at]], [tpr[at]], marker="o", color="black", linestyle="none", label="threshold ½")
    ax.set(title=_literal(f"ROC curve (positive class {positive!r})"), xlabel="false-positive rate",
           ylabel="true-positive rate (recall)", xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def confusion_table(cm, class_names) -> str:
    """The confusion matrix as aligned plain text: rows true class, columns predicted class, with
    row and column totals. Class names head the columns when they fit; otherwise columns are
    headed by class index and each row label starts with its index. Ten classes with counts of up
    to four digits fit in 80 columns."""
    cm, names = _confusion_input(cm, class_names)
    K = cm.shape[0]
    totals_w = len(str(int(cm.sum())))
    count_w = len(str(int(cm.sum(axis=0).max())))  # the widest cell is a column total
    corner = "true \\ pred"
    tw = max(totals_w, len("total"))
    # Names head the columns when each fits a column of at most 7 characters and the row fits 80.
    head_w = max(count_w, max(len(n) for n in names))
    if head_w <= max(count_w, 7) and len(corner) + K * (head_w + 1) + tw + 2 <= WIDTH:
        heads, col_w, labels = names, head_w, names
    else:
        iw = len(str(K - 1))
        heads, col_w = [str(k) for k in range(K)], max(count_w, iw)
        labels = [f"{k:>{iw}} {n}" for k, n in enumerate(names)]
    label_budget = max(WIDTH - K * (col_w + 1) - (tw + 2), len(corner), 8)
    labels = [_short(lab, min(NAME_WIDTH, label_budget)) for lab in labels]
    lw = max(len(corner), max(len(lab) for lab in labels), len("total"))
    out = [f"{corner:<{lw}}" + "".join(f" {h:>{col_w}}" for h in heads) + f"  {'total':>{tw}}"]
    for lab, row in zip(labels, cm):
        out.append(f"{lab:<{lw}}" + "".join(f" {int(v):>{col_w}}" for v in row) + f"  {int(row.sum()):>{tw}}")
    out.append(f"{'total':<{lw}}" + "".join(f" {int(v):>{col_w}}" for v in cm.sum(axis=0))
               + f"  {int(cm.sum()):>{tw}}")
    return "\n".join(out) + "\n"


def rich_per_class_table(summary: dict):
    """The per-class table as a ``rich.table.Table`` for terminals: the same numbers as
    :func:`per_class_table`, names cut with an ellipsis, averages in their own section, accuracy
    and log loss in the caption."""
    _require("rich", "the rich table")
    from rich.table import Table
    from rich.text import Text

    rows = _summary_rows(summary)
    extra = _averages(summary, rows)
    caption = [f"accuracy {summary['accuracy']:.3f}"] if summary.get("accuracy") is not None else []
    if summary.get("log_loss") is not None:
        caption.append(f"log loss {summary['log_loss']:.4f}")
    caption.append(f"{extra[0][4]} examples")
    if summary.get("roc_auc") is not None:
        caption.append(f"ROC-AUC {summary['roc_auc']:.4f} · "
                       f"average precision {summary['average_precision']:.4f}")
    table = Table(title="Scores per class", caption=" · ".join(caption))
    table.add_column("class", overflow="ellipsis", max_width=NAME_WIDTH, no_wrap=True)
    for name in ("precision", "recall", "f1", "support"):
        table.add_column(name, justify="right")
    for name, p, r, f, s in rows:
        # A class the test set lacks has no meaningful scores: dim it rather than hide it.
        # A name from a file is text, never rich markup or terminal control codes.
        table.add_row(Text(safe_text(name)), _score(p), _score(r), _score(f), str(s), style="dim" if s == 0 else None)
    table.add_section()
    for label, p, r, f, s in extra:
        table.add_row(label, _score(p), _score(r), _score(f), str(s), style="bold")
    return table


def _trend(values: np.ndarray, epochs: np.ndarray, what: str, best: str) -> str | None:
    """'what 2.3 → 0.1 (lowest 0.09 at epoch 7)' over the finite values, or None without any."""
    ok = np.isfinite(values)
    if not ok.any():
        return None
    v, e = values[ok], epochs[ok]
    k = int(np.argmin(v) if best == "lowest" else np.argmax(v))
    if v.size == 1:
        return f"{what} {v[0]:.4g}"
    return f"{what} {v[0]:.4g} → {v[-1]:.4g} ({best} {v[k]:.4g} at epoch {e[k]:g})"


def history_summary(rows) -> str:
    """One paragraph on a training run: number of epochs and total time, first → last training
    loss and accuracy with the best of each, the same for validation, the learning rate when it
    changed, and why training stopped (when the source records it)."""
    source = rows
    rows, reason = read_history(rows)
    if not rows:
        return "No epochs recorded."
    if not reason and hasattr(source, "stop_reason"):
        reason = source.stop_reason
    n = len(rows)
    epochs = _epochs(rows)
    times = column(rows, "time")
    head = f"{n} epoch{'s' if n != 1 else ''}"
    if _finite(times):
        total = float(np.nansum(times))
        per = total / n
        head += f" in {total:.3g} s ({per * 1000:.3g} ms per epoch)" if per < 1 else f" in {total:.3g} s ({per:.3g} s per epoch)"
    parts = [p for p in (
        _trend(column(rows, "loss"), epochs, "training loss", "lowest"),
        _trend(column(rows, "accuracy"), epochs, "training accuracy", "best"),
        _trend(column(rows, "val_loss"), epochs, "validation loss", "lowest"),
        _trend(column(rows, "val_accuracy"), epochs, "validation accuracy", "best"),
    ) if p]
    text = head + ". " + "; ".join(p[0].upper() + p[1:] if i == 0 else p for i, p in enumerate(parts)) + "."
    lr = column(rows, "lr")
    lr = lr[np.isfinite(lr)]
    if lr.size and lr.min() != lr.max():
        text += f" Learning rate {lr[0]:.3g} → {lr[-1]:.3g}."
    if reason:
        text += f" Stopped: {reason}."
    return text


def gradcheck_table(report) -> str:
    """The gradient check as a table: per layer and parameter array, the shape, ‖analytic‖,
    ‖numeric‖ and relative error, failures marked NO, then the verdict (the report's own
    rendering, :meth:`GradCheckReport.to_text`). Also takes ``report.to_dict()`` (e.g. read
    back from JSON)."""
    if isinstance(report, dict):
        try:
            rows = [GradCheckRow(int(r["layer"]), str(r["param"]), tuple(r["shape"]), float(r["analytic_norm"]),
                                 float(r["numeric_norm"]), float(r["relative_error"]), int(r["checked"]),
                                 bool(r["ok"]), float(r.get("abs_error", 0.0)), bool(r.get("passed_by_noise_floor", False)))
                     for r in report["rows"]]
            report = GradCheckReport(rows=rows, tolerance=float(report["tolerance"]), h=float(report["h"]),
                                     cost=float(report.get("cost", 0.0)), near_kink=int(report.get("near_kink", 0)),
                                     noise_floor=float(report.get("noise_floor", 0.0)), hint=str(report.get("hint", "")))
        except (KeyError, TypeError, ValueError):
            raise InputError("the dict is not a gradient-check report", "pass deltaprop.gradcheck(...) or its to_dict()") from None
    if not isinstance(report, GradCheckReport):
        raise InputError(f"expected a GradCheckReport, got {type(report).__name__}", "pass deltaprop.gradcheck(net, X, y)")
    return report.to_text()
