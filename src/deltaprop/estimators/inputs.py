"""The estimators' checks of what they are given: settings (one clear ConfigError per bad value,
worded so that scikit-learn's estimator checks recognize them), X as a float array or a CSR matrix,
and ``coefs_``/``intercepts_`` as views that write through to the network."""

from __future__ import annotations

import numpy as np

from deltaprop.errors import ConfigError, InputError
from deltaprop.validation import check_number, check_X, is_sparse

__all__ = ["choice", "number", "as_float_array", "ParamList"]


# -- settings ------------------------------------------------------------------------------------
def choice(value, name, options):
    if not isinstance(value, str) or value not in options:
        hint = "valid values: " + ", ".join(repr(o) for o in options)
        raise ConfigError(f"{name} must be one of {', '.join(options)}; got {value!r}", hint)
    return value


def number(value, name, low=None, high=None, low_open=False, high_open=False, integer=False):
    """The estimators' parameters through the one numeric check (:func:`deltaprop.validation.check_number`)."""
    return check_number(value, name, low, high, low_open=low_open, high_open=high_open, integer=integer,
                        allow_inf=name == "n_iter_no_change",
                        hint=f"see help({name!r}) in the estimator's docstring")


# -- input checks (deltaprop errors, worded so that scikit-learn's checks recognize them) ---------
def as_float_array(X, what="X"):
    """X as a 2-d float32/float64 array (sparse stays sparse), through the one input check
    (:func:`deltaprop.validation.check_X`); NaN and infinity are refused later, where scikit-learn does.

    A pandas DataFrame with nullable columns (Float64, Int64, boolean) is read with pandas' NA as NaN,
    so that a missing value is called one; a column that cannot be read as numbers is named."""
    frame = hasattr(X, "dtypes") and hasattr(X, "columns") and hasattr(X, "to_numpy")
    if frame and any(not isinstance(dt, np.dtype) for dt in X.dtypes) and all(
            getattr(dt, "kind", "O") in "biuf" for dt in X.dtypes):
        X = X.to_numpy(dtype=np.float64, na_value=np.nan)
    try:
        arr = check_X(X, what=what, finite=False, min_rows=0)
    except InputError as exc:
        bad = _text_columns(X) if frame else []
        if not bad:
            raise
        raise type(exc)(f"{what} has column(s) that are not numbers: {', '.join(bad)} ({exc.message})",
                        "encode them as numbers (OneHotEncoder in a ColumnTransformer for categories) "
                        "or drop them (X.drop(columns=[...]))") from None
    if not is_sparse(arr) and arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr


def _text_columns(frame) -> list[str]:
    """The columns of a DataFrame that NumPy cannot read as numbers, each as 'name' (dtype)."""
    bad = []
    for name, dtype in frame.dtypes.items():
        if getattr(dtype, "kind", "O") in "biuf":
            continue
        try:
            np.asarray(frame[name].to_numpy(), dtype=np.float64)
        except (TypeError, ValueError):
            bad.append(f"{name!r} ({dtype})")
    return bad


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
