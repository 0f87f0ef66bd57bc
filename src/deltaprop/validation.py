"""Checks at the public boundary: every message says what was received, what was expected, what to do."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from deltaprop import fast
from deltaprop.errors import ConfigError, InputError, InputTypeError

if TYPE_CHECKING:
    from typing import Protocol, TypeAlias

    from numpy.typing import ArrayLike

    class SparseMatrix(Protocol):
        """A SciPy sparse matrix or array, as :func:`is_sparse` recognizes it (the engine never
        imports SciPy)."""

        nnz: int
        shape: tuple[int, ...]
        ndim: int

        def tocsr(self) -> SparseMatrix: ...

    #: Inputs X (m, n_features): anything NumPy reads as a 2-d array of numbers, or a SciPy sparse matrix.
    Rows: TypeAlias = ArrayLike | SparseMatrix

__all__ = ["check_X", "check_rows", "is_sparse", "check_sample_weight", "check_number", "number_rule", "check_positive_int",
           "check_positive_float", "check_nonnegative_float", "check_dtype"]

FLOAT_DTYPES = ("float32", "float64")


def check_dtype(dtype) -> np.dtype:
    """float32 or float64, by name or dtype."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in FLOAT_DTYPES:
        raise ConfigError(f"unsupported dtype {dtype!r}", "use 'float32' (fast, the default) or 'float64' (for checking)")
    return dt


def is_sparse(X) -> bool:
    """True for a SciPy sparse matrix or array (recognized without importing SciPy)."""
    return not isinstance(X, np.ndarray) and hasattr(X, "tocsr") and hasattr(X, "nnz")


def check_X(X, n_features: int | None = None, dtype=None, what: str = "X", rows_later: bool = False, *,
            finite: bool = True, min_rows: int = 1) -> np.ndarray:
    """X as a 2-d numeric array (m, n_features) with m ≥ ``min_rows`` and at least one feature, finite
    unless ``finite`` is False, cast to ``dtype`` when given. The one input check of the engine, the
    command and the estimators (its messages carry the words scikit-learn's checks look for).

    A SciPy sparse X stays sparse: it comes back in CSR form (rows are cheap to take), its stored
    values checked and cast; the first layer multiplies it as it is (see :class:`deltaprop.layers.Dense`).

    ``rows_later=True`` checks the shape and the kind of values only, leaving the cast and the
    finiteness test of a dense X to :func:`check_rows`, block by block (prediction: each block is
    tested while it is in cache, and a float64 X is never copied whole)."""
    if X is None:
        raise InputError(f"{what} is None", "pass a 2-d array of numbers (m examples, n features)")
    if is_sparse(X):
        if X.ndim == 2 and X.shape[1] == 0:
            raise InputError(f"{what} has 0 feature(s) (shape={X.shape}) while a minimum of 1 is required.",
                             "pass at least one column")
        return _check_sparse_X(X, n_features, dtype, what)
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise InputError(f"{what} cannot be read as a numeric array ({exc})", "pass a 2-d array of numbers") from None
    if arr.dtype.kind == "c":
        raise InputError(f"Complex data not supported: {what} has dtype {arr.dtype}",
                         "pass real numbers (for example the real part, or magnitude and phase as two columns)")
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except TypeError as exc:  # dicts, None and the like inside X: a TypeError, as NumPy raises
            raise InputTypeError(f"{what} holds values that are not numbers ({exc}; dtype {arr.dtype})",
                                 "convert or drop the non-numeric columns first") from None
        except ValueError as exc:
            raise InputError(f"{what} holds non-numeric values: text that is not a number ({exc}; dtype {arr.dtype})",
                             "convert text columns to numbers (for example one-hot) or drop them") from None
    if arr.ndim == 1:
        raise InputError(
            f"{what} is 1-d with shape {arr.shape}; expected a 2-d array (m examples, n features). Reshape your "
            "data either using X.reshape(-1, 1) if it has a single feature or X.reshape(1, -1) if it contains a "
            "single sample", "rows are examples, columns are features")
    if arr.ndim != 2:
        raise InputError(f"{what} has {arr.ndim} dimensions (shape {arr.shape}); expected 2 (m, n_features)",
                         "flatten images first, e.g. X.reshape(len(X), -1)")
    if arr.shape[0] < min_rows:
        raise InputError(f"{what} has no rows (shape {arr.shape})", "pass at least one example")
    if arr.shape[1] == 0:
        raise InputError(f"{what} has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required.",
                         "pass at least one column")
    if n_features is not None and arr.shape[1] != n_features:
        raise InputError(
            f"{what} has {arr.shape[1]} features per row, but the network expects {n_features}",
            "use the same columns (and preprocessing) as when the network was built",
        )
    if rows_later:
        return arr
    return check_rows(arr, dtype, what, finite=finite)


def check_rows(arr: np.ndarray, dtype=None, what: str = "X", first_row: int = 0, *, finite: bool = True) -> np.ndarray:
    """Rows of a dense X already shape-checked by :func:`check_X`, cast to ``dtype`` (when given) and
    tested finite in one pass (unless ``finite`` is False); ``first_row`` is the index of ``arr``'s
    first row in the whole X (for the message)."""
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    if finite and arr.dtype.kind == "f" and not fast.all_finite(arr):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InputError(
            f"{what} contains NaN or infinity (first at row {first_row + int(bad[0])}, column {int(bad[1])})",
            "fill or drop missing values before training or predicting",
        )
    return arr


def _check_sparse_X(X, n_features, dtype, what):
    if X.ndim != 2 or X.shape[0] == 0:
        raise InputError(f"{what} is a sparse matrix of shape {X.shape}; expected 2-d with at least one row",
                         "pass a 2-d CSR or CSC matrix with one row per example")
    if n_features is not None and X.shape[1] != n_features:
        raise InputError(f"{what} has {X.shape[1]} features per row, but the network expects {n_features}",
                         "use the same columns (and preprocessing) as when the network was built")
    X = X.tocsr()
    if X.dtype.kind not in "biuf":
        raise InputError(f"{what} holds non-numeric values (dtype {X.dtype})", "store numbers in the sparse matrix")
    target = np.dtype(dtype) if dtype is not None else (X.dtype if X.dtype.kind == "f" else np.dtype(np.float64))
    if X.dtype != target:
        X = X.astype(target)
    if not np.all(np.isfinite(X.data)):
        raise InputError(f"{what} contains NaN or infinity among its stored values",
                         "fill or drop missing values before training or predicting")
    return X


def check_sample_weight(sample_weight, m: int, dtype=np.float64) -> np.ndarray:
    """Sample weights as a finite, non-negative (m,) float array with a positive sum."""
    try:
        w = np.asarray(sample_weight)
        if w.dtype.kind not in "biuf":
            w = w.astype(np.float64)
    except (TypeError, ValueError):
        raise InputError(f"sample_weight holds non-numeric values (dtype {np.asarray(sample_weight, dtype=object).dtype})",
                         "pass one number per example") from None
    if w.ndim == 0:
        w = np.full(m, float(w))
    if w.shape != (m,):
        raise InputError(f"sample_weight has shape {w.shape}, but there are {m} examples",
                         f"pass a 1-d array of {m} weights, one per row of X")
    w = w.astype(dtype)
    if not np.all(np.isfinite(w)):
        raise InputError("sample_weight contains NaN or infinity", "pass finite weights")
    if np.any(w < 0):
        raise InputError("sample_weight contains negative weights", "weights must be ≥ 0")
    if not w.sum() > 0:
        raise InputError("sample weights are all zero: the weighted loss is undefined",
                         "give at least one example a weight above zero")
    return w


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def number_rule(low=None, high=None, *, low_open: bool = False, high_open: bool = False,
                integer: bool = False) -> str:
    """The words for a range: 'a whole number ≥ 1', 'a finite number > 0', 'a finite number in [0, 1)'."""
    kind = "a whole number" if integer else "a finite number"
    if low is not None and high is not None:
        return f"{kind} in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{kind} {'>' if low_open else '≥'} {low:g}"
    if high is not None:
        return f"{kind} {'<' if high_open else '≤'} {high:g}"
    return kind


def check_number(value, name: str, low=None, high=None, *, low_open: bool = False, high_open: bool = False,
                 integer: bool = False, allow_none: bool = False, allow_inf: bool = False, error=ConfigError,
                 hint: str | None = None):
    """``value`` when it is a number (a whole one with ``integer``; never a bool) in the range given by
    ``low``/``high`` (open ends with ``low_open``/``high_open``), finite unless ``allow_inf``; None passes
    with ``allow_none``. Otherwise ``error`` (ConfigError by default) saying '{name} must be {rule}; got
    {value}'. The one numeric check of the command's arguments, the estimators' parameters and the
    files' records, so that all of them word a bad number the same way."""
    if value is None and allow_none:
        return None
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer) if integer
                                                                 else (int, float, np.integer, np.floating))
    if ok:
        try:
            v = float(value)
        except OverflowError:  # an int beyond any float
            v = math.inf if value > 0 else -math.inf
        ok = math.isfinite(v) or (allow_inf and not math.isnan(v))
        if ok and low is not None:
            ok = v > low if low_open else v >= low
        if ok and high is not None:
            ok = v < high if high_open else v <= high
    if not ok:
        rule = number_rule(low, high, low_open=low_open, high_open=high_open, integer=integer)
        rule += " or None" if allow_none else ""
        raise error(f"{name} must be {rule}; got {_short(value)}", hint if hint is not None else f"pass {rule}")
    return int(value) if integer else value


def check_positive_int(value, name: str) -> int:
    """A whole number ≥ 1."""
    return check_number(value, name, 1, integer=True, hint=f"pass a positive {name}")


def check_positive_float(value, name: str) -> float:
    """A finite number > 0."""
    return float(check_number(value, name, 0, low_open=True, hint=f"for example {name}=0.1"))


def check_nonnegative_float(value, name: str) -> float:
    """A finite number ≥ 0."""
    return float(check_number(value, name, 0, hint=f"for example {name}=0.0"))
