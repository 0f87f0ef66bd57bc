"""What the targets are: classes or values to regress. One rule, for ``deltaprop.fit`` and the command.

The rule, for a 1-d target y of m rows (:func:`target_task`):

- text (or booleans)                                   → classification;
- numbers with a fractional part (2.5, 0.1)             → regression;
- whole numbers (3, and whole-valued floats such as 25.0) with at most ``MAX_CLASSES`` (20) distinct
  values, or at most ``MAX_CLASS_SHARE`` (5 %) of the rows distinct → classification;
- more distinct whole numbers than that                → no guess: :class:`TaskUnclearError` shows the
  count and asks the caller to say which (``task="regression"`` / ``task="classification"`` from
  Python, ``--task regression`` / ``--task classification`` in the command).

Where the caller has said it (``task=``, ``--task``, or a network whose output already is a classifier
or a regression output), the rule only checks that the targets can be what was said.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from deltaprop.errors import DataError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["MAX_CLASSES", "MAX_CLASS_SHARE", "TASKS", "target_task", "encode_targets", "TaskUnclearError"]

MAX_CLASSES = 20
MAX_CLASS_SHARE = 0.05
TASKS = ("classification", "regression")


class TaskUnclearError(DataError):
    """Whole-number targets with too many distinct values to be taken for classes unasked."""

    def __init__(self, distinct: int, rows: int, name: str | None = None, ask: str = "task={!r}"):
        self.distinct, self.rows, self.name = distinct, rows, name
        what = f"the target {name!r}" if name else "the targets"
        super().__init__(
            f"{what} holds {distinct} distinct whole numbers in {rows} rows: regression values, or "
            f"{distinct} "
            f"classes? deltaprop takes whole numbers for classes only when there are at most {MAX_CLASSES} "
            f"distinct values or at most {MAX_CLASS_SHARE:.0%} of the rows are distinct",
            self.ask(ask),
        )

    @staticmethod
    def ask(spelling: str) -> str:
        """The hint, with the option spelt as where it is read (``"--task {}"`` in the command)."""
        return (
            f"say which: {spelling.format('regression')} (predict the numbers) or "
            f"{spelling.format('classification')} (one class per value)"
        )

    def spelt(self, spelling: str) -> TaskUnclearError:
        """The same error with the hint in another syntax."""
        return TaskUnclearError(self.distinct, self.rows, self.name, spelling)


def _is_text(y: np.ndarray) -> bool:
    return y.dtype.kind in "USOb"


def target_task(y: ArrayLike, task: str | None = None, *, name: str | None = None,
                ask: str = "task={!r}") -> str:
    """'classification' or 'regression' for the 1-d targets ``y`` by the module's rule, or ``task``
    when given (checked: text cannot be regressed). Raises :class:`TaskUnclearError` when the rule
    cannot tell; ``name`` (the target column) and ``ask`` (how the option is spelt) shape its message."""
    y = np.asarray(y)

    def spelt(value: str) -> str:  # the library's spelling, and the command's beside it by default
        return ask.format(value) + (f" (--task {value})" if ask == "task={!r}" else "")

    if task is not None and task not in TASKS:
        raise DataError(f"unknown task {task!r}", f"use {spelt('classification')} or {spelt('regression')}")
    text = _is_text(y)
    if task == "regression":
        if text:
            example = next((str(v) for v in y.reshape(-1)[:1000] if not _is_number(v)), str(y.reshape(-1)[0]))
            raise DataError(
                f"regression needs numeric targets, but the labels are text (e.g. {example!r})",
                f"use {spelt('classification')}",
            )
        return task
    if task == "classification" or text:
        return "classification"
    if y.dtype.kind == "f" and not (np.all(np.isfinite(y)) and np.all(np.mod(y, 1) == 0)):
        return "regression"
    distinct = int(np.unique(y).shape[0])
    rows = int(y.shape[0])
    if distinct <= MAX_CLASSES or distinct <= MAX_CLASS_SHARE * rows:
        return "classification"
    raise TaskUnclearError(distinct, rows, name, ask)


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def encode_targets(
    y, task: str | None = None, class_names=None, *, name: str | None = None, ask: str = "task={!r}"
):
    """(y as class indices 0..K−1 (int64) or values (float64), class names or None), with the task
    from :func:`target_task`. Classes are numbered in sorted order of their labels (numbers
    numerically; 3.0 is class "3"). With ``class_names`` given, labels are either indices into them or
    the names themselves."""
    y = np.asarray(y)
    if target_task(y, task, name=name, ask=ask) == "regression":
        return y.astype(np.float64), None
    numeric = y.dtype.kind in "biuf"
    if class_names is not None:
        class_names = [str(c) for c in class_names]
        if numeric and np.all(np.mod(y, 1) == 0) and y.min() >= 0 and y.max() < len(class_names):
            # Labels already index the given names: keep the numbering.
            return y.astype(np.int64), class_names
        lookup = {c: i for i, c in enumerate(class_names)}
        unknown = sorted({_label_text(v) for v in y.tolist()} - set(lookup))
        if unknown:
            raise DataError(
                f"labels {', '.join(map(repr, unknown[:5]))} are not among the class names {class_names}",
                "store labels as indices 0..K-1 or as the class names themselves",
            )
        return np.array([lookup[_label_text(v)] for v in y.tolist()], dtype=np.int64), class_names
    values, index = np.unique(y, return_inverse=True)
    if numeric and values.dtype.kind == "f" and np.all(np.mod(values, 1) == 0):
        if np.abs(values).max() > 2**53:  # no int64 wrap: such a number is no class label
            raise DataError(f"the label {values[np.argmax(np.abs(values))]:g} is too large to be a class label "
                            "(class labels are whole numbers up to 2^53)",
                            "for numbers to predict, pass task='regression' (--task regression)")
        values = values.astype(np.int64)  # 3.0 is class "3"
    return index.reshape(-1).astype(np.int64), [_label_text(v) for v in values.tolist()]


def _label_text(v) -> str:
    """A label as its class name: 3.0 → "3", "setosa" → "setosa"."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)
