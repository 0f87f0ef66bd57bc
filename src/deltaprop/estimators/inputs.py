"""The estimators' checks of what they are given: settings (one clear ConfigError per bad value,
worded so that scikit-learn's estimator checks recognize them), X as a float array or a CSR matrix,
and ``coefs_``/``intercepts_`` as views that write through to the network."""

from __future__ import annotations

import numbers

import numpy as np

from deltaprop.errors import ConfigError, InputError, InputTypeError
from deltaprop.validation import check_X, is_sparse

__all__ = ["choice", "number", "as_float_array", "ParamList"]


# -- settings ------------------------------------------------------------------------------------
def choice(value, name, options):
    if not isinstance(value, str) or value not in options:
        hint = "valid values: " + ", ".join(repr(o) for o in options)
        raise ConfigError(f"{name} must be one of {', '.join(options)}; got {value!r}", hint)
    return value


def number(value, name, low=None, high=None, low_open=False, high_open=False, integer=False):
    ok = isinstance(value, numbers.Integral if integer else numbers.Real) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = np.isfinite(v) or (name == "n_iter_no_change" and v == np.inf)
        if low is not None:
            ok = ok and (v > low if low_open else v >= low)
        if high is not None:
            ok = ok and (v < high if high_open else v <= high)
    if not ok:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
        kind = "a whole number" if integer else "a number"
        where = f" in {lo or '(−∞'}, {hi or '∞)'}" if (low is not None or high is not None) else ""
        raise ConfigError(f"{name} must be {kind}{where}; got {value!r}", f"see help({name!r}) in the estimator's docstring")
    return value


# -- input checks (deltaprop errors, worded so that scikit-learn's checks recognize them) ---------
def as_float_array(X, what="X"):
    """X as a 2-d float32/float64 array, refusing what an MLP cannot read, each with a clear InputError."""
    if X is None:
        raise InputError(f"{what} is None", "pass a 2-d array of numbers (m examples, n features)")
    if is_sparse(X):
        if X.ndim == 2 and X.shape[1] == 0:
            raise InputError(f"{what} has 0 feature(s) (shape={X.shape}) while a minimum of 1 is required.",
                             "pass at least one column")
        return check_X(X)  # CSR, float, finite stored values: the first layer multiplies it sparse
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
        except TypeError as exc:
            raise InputTypeError(f"{what} holds values that are not numbers ({exc})",
                                 "convert or drop the non-numeric columns first") from None
        except ValueError as exc:
            raise InputError(f"{what} holds text that is not a number ({exc})",
                             "encode text columns (for example with sklearn's OneHotEncoder) first") from None
    if arr.ndim == 1:
        raise InputError(f"{what} is 1-d with shape {arr.shape}, but a 2-d array (m examples, n features) is expected. "
                         "Reshape your data either using X.reshape(-1, 1) if it has a single feature or "
                         "X.reshape(1, -1) if it contains a single sample",
                         "scikit-learn estimators always take a 2-d X")
    if arr.ndim == 2 and arr.shape[1] == 0:
        raise InputError(f"{what} has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required.",
                         "pass at least one column")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr


class ParamList(list):
    """``coefs_`` / ``intercepts_``: views of the network's parameters. Writing into an array, or
    assigning an item, changes the model; copies and pickles are plain lists."""

    def __init__(self, est, kind):
        self._est, self._kind = est, kind
        super().__init__(est._param_views(kind))

    def __setitem__(self, index, value):
        if isinstance(index, slice):
            for i, v in zip(range(len(self))[index], value):
                self[i] = v
            return
        self._est._assign(self._kind, index, value)
        super().__setitem__(index, self._est._param_views(self._kind)[index])

    def __reduce_ex__(self, protocol):
        return (list, (list(self),))
