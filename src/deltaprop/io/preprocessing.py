"""Input scaling fitted on the training rows and stored with the model as JSON.

Every kind is the same affine map, column by column:

    X' = (X − shift) / scale        X (m, n), shift and scale (n,) or scalars

- ``standard``: shift = column mean, scale = column standard deviation;
- ``minmax``:   shift = column minimum, scale = column maximum − minimum (X' in [0, 1]);
- ``divide``:   shift = 0, scale = a fixed number (``divide:255`` for 8-bit pixels, ``divide:16`` for digits);
- ``none``:     X' = X.

A column that never varies in the training rows (std or range 0, like the always-blank corner pixels
of the digits) gets scale 1, so it maps to 0 instead of to NaN.
"""

from __future__ import annotations

import math

import numpy as np

from deltaprop.errors import ConfigError, InputError, unknown_name

__all__ = ["Scaler", "SCALER_KINDS"]

SCALER_KINDS = ("none", "standard", "minmax", "divide")


class Scaler:
    """``fit`` on training rows, ``transform`` any rows, ``to_dict``/``from_dict`` for the model file.

        >>> s = Scaler("standard").fit(X_train)
        >>> X_train_s, X_test_s = s.transform(X_train), s.transform(X_test)
        >>> net.meta["scaler"] = s.to_dict()
    """

    def __init__(self, kind: str = "standard", by: float | None = None):
        kind = str(kind).strip().lower()
        if kind not in SCALER_KINDS:
            raise unknown_name("scaling", kind, list(SCALER_KINDS))
        if kind == "divide":
            by = 255.0 if by is None else by
            if not _finite_number(by) or by <= 0:
                raise ConfigError(f"divide scaling needs a finite number > 0, got {by!r}", "for example divide:255")
            by = float(by)
        elif by is not None:
            raise ConfigError(f"only divide scaling takes a divisor, not {kind}", "for example divide:255")
        self.kind = kind
        self.by = by
        self.n_features: int | None = None
        self.shift: np.ndarray | float | None = None
        self.scale: np.ndarray | float | None = None
        if kind in ("none", "divide"):
            # Nothing to learn: usable before fit (n_features stays open until fit).
            self.shift, self.scale = 0.0, (by if kind == "divide" else 1.0)

    @classmethod
    def from_spec(cls, spec: str) -> Scaler:
        """A scaler from the CLI form: ``standard``, ``minmax``, ``none``, ``divide`` or ``divide:255``."""
        text = str(spec).strip().lower()
        kind, _, arg = text.partition(":")
        if kind == "divide" and arg:
            try:
                by = float(arg)
            except ValueError:
                raise ConfigError(f"cannot read the divisor in {spec!r}", "for example divide:255") from None
            return cls("divide", by)
        if arg:
            raise ConfigError(f"{kind} scaling takes no argument (got {spec!r})", "use standard, minmax, none or divide:255")
        return cls(kind)

    @property
    def fitted(self) -> bool:
        return self.kind in ("none", "divide") or self.n_features is not None

    def fit(self, X) -> Scaler:
        """Learn shift and scale from the training rows X (m, n); returns self."""
        X = _as_2d(X, "X")
        self.n_features = X.shape[1]
        if self.kind in ("none", "divide"):
            return self
        X64 = X.astype(np.float64, copy=False)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, by column
            if self.kind == "standard":
                shift, scale = X64.mean(axis=0), X64.std(axis=0)
            else:
                shift = X64.min(axis=0)
                scale = X64.max(axis=0) - shift
        # Constant columns: scale 1 keeps them at 0 rather than dividing by zero.
        scale = np.where(scale > 0, scale, 1.0)
        if not (np.isfinite(shift).all() and np.isfinite(scale).all()):
            if not np.isfinite(X64).all():
                raise InputError("the training rows hold NaN or infinite values; the scaling cannot be fitted",
                                 "fill or drop missing values first")
            j = int(np.flatnonzero(~(np.isfinite(shift) & np.isfinite(scale)))[0])
            biggest = float(np.max(np.abs(X64[:, j])))
            raise InputError(f"column {j} holds values up to {biggest:.3g} in size: its {self.kind} scaling "
                             "overflows float64 (the mean, spread or range is infinite)",
                             "rescale that column (e.g. divide it by a large power of ten), or pass --scale none "
                             "(scaling='none')")
        self.shift, self.scale = shift, scale
        return self

    def fit_blocks(self, blocks) -> Scaler:
        """Learn shift and scale in one pass over blocks of rows (any iterable of (m_k, n) arrays), for
        data too large to hold at once; returns self.

        ``standard``: each block's column means μ_k and sums of squared deviations M_k, merged in
        float64 as they come (Chan, Golub and LeVeque): with δ = μ_k − μ and m' = m + m_k,
        μ ← μ + δ·m_k/m', M ← M + M_k + δ²·m·m_k/m'; then shift = μ and scale = √(M/m). This equals
        :meth:`fit` on the stacked rows to float rounding, and the same blocks give the same figures
        bit for bit. ``minmax``: column minima and maxima, exactly as :meth:`fit`. Every block is
        checked for NaN and infinities.
        """
        m, n = 0, None
        mean = M2 = low = high = None
        for block in blocks:
            B = _as_2d(block, "X")
            if n is None:
                n = B.shape[1]
            elif B.shape[1] != n:
                raise InputError(f"a block of rows has {B.shape[1]} columns, the first had {n}",
                                 "pass blocks of the same columns")
            mk = B.shape[0]
            if mk == 0:
                continue
            B64 = B.astype(np.float64, copy=False)
            if B.dtype.kind == "f" and not np.isfinite(B64).all():
                raise InputError(f"rows {m + 1}..{m + mk} of the training data hold NaN or infinite values; the "
                                 "scaling cannot be fitted", "fill or drop missing values first")
            if self.kind == "standard":
                mu_k = B64.mean(axis=0)
                M_k = np.square(B64 - mu_k).sum(axis=0)
                if mean is None:
                    mean, M2 = mu_k, M_k
                else:
                    total = m + mk
                    delta = mu_k - mean
                    mean = mean + delta * (mk / total)
                    M2 = M2 + M_k + np.square(delta) * (m * mk / total)
            elif self.kind == "minmax":
                lo, hi = B64.min(axis=0), B64.max(axis=0)
                low = lo if low is None else np.minimum(low, lo)
                high = hi if high is None else np.maximum(high, hi)
            m += mk
        if m == 0:
            raise InputError("no rows to fit the scaling on", "pass at least one row")
        self.n_features = n
        if self.kind == "standard":
            shift, scale = mean, np.sqrt(M2 / m)
        elif self.kind == "minmax":
            shift, scale = low, high - low
        else:
            return self
        self.shift, self.scale = shift, np.where(scale > 0, scale, 1.0)
        return self

    def transform(self, X, dtype=None) -> np.ndarray:
        """X' = (X − shift) / scale, as ``dtype`` (default: float32 for float32 or small-integer
        input such as uint8 pixels, float64 otherwise)."""
        if not self.fitted:
            raise ConfigError(f"this {self.kind} scaler has not been fitted", "call fit(X_train) first")
        X = _as_2d(X, "X")
        if self.n_features is not None and X.shape[1] != self.n_features:
            raise InputError(f"X has {X.shape[1]} columns but the scaling was fitted on {self.n_features}",
                             "scale the same columns the model was trained on")
        if dtype is None:
            dtype = np.result_type(X.dtype, np.float32)
        out = np.array(X, dtype=dtype, copy=True)
        if self.kind == "none":
            return out
        out -= np.asarray(self.shift, dtype=dtype)
        out /= np.asarray(self.scale, dtype=dtype)
        return out

    def fold_into(self, net):
        """A copy of ``net`` that takes rows as they come, before scaling: the scaling folded into the
        first layer's weights, so that prediction makes no scaled copy of X.

            Z_1 = ((X − shift) / scale) W_1ᵀ + b_1 = X W_1'ᵀ + b_1'
            with W_1' = W_1 / scale (per column), b_1' = b_1 − W_1' shift

        computed in float64 and stored in the network's dtype. Its outputs equal ``net``'s on
        ``transform(X)`` up to rounding."""
        if not self.fitted:
            raise ConfigError(f"this {self.kind} scaler has not been fitted", "call fit(X_train) first")
        folded = net.copy()
        if self.kind == "none":
            return folded
        first = folded.layers[0]
        W = first.W.astype(np.float64) / np.asarray(self.scale, dtype=np.float64)
        shift = np.broadcast_to(np.asarray(self.shift, dtype=np.float64), (W.shape[1],))
        b = first.b.astype(np.float64) - W @ shift
        first.W[...] = W
        first.b[...] = b
        return folded

    def fit_transform(self, X, dtype=None) -> np.ndarray:
        return self.fit(X).transform(X, dtype)

    def to_dict(self) -> dict:
        """A JSON-able description: ``{"kind", "n_features", "shift", "scale"}`` (+ ``"by"`` for divide)."""
        d = {"kind": self.kind, "n_features": self.n_features}
        if self.kind == "divide":
            d["by"] = self.by
        if self.kind in ("standard", "minmax"):
            if self.n_features is None:
                raise ConfigError(f"this {self.kind} scaler has not been fitted", "call fit(X_train) first")
            # Python floats are written with repr, so float64 values survive JSON bit for bit.
            d["shift"] = [float(v) for v in self.shift]
            d["scale"] = [float(v) for v in self.scale]
        return d

    @classmethod
    def from_dict(cls, d) -> Scaler:
        """The scaler ``to_dict`` described; ConfigError names what is wrong with a bad description."""
        if not isinstance(d, dict) or "kind" not in d:
            raise ConfigError(f"a scaling description must be a dict with a 'kind', got {type(d).__name__}",
                              "use Scaler.to_dict() to make one")
        s = cls(d["kind"], d.get("by") if d.get("kind") == "divide" else None)
        n = d.get("n_features")
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ConfigError(f"n_features must be a whole number ≥ 1, got {n!r}", "use Scaler.to_dict() to make one")
        s.n_features = n
        if s.kind in ("standard", "minmax"):
            if n is None:
                raise ConfigError(f"a {s.kind} scaling needs n_features, shift and scale", "use Scaler.to_dict() to make one")
            arrays = []
            for key in ("shift", "scale"):
                v = d.get(key)
                ok = isinstance(v, list) and len(v) == n and all(_finite_number(x) for x in v)
                if not ok:
                    raise ConfigError(f"{s.kind} scaling: {key!r} must be a list of {n} finite numbers",
                                      "use Scaler.to_dict() to make one")
                arrays.append(np.array(v, dtype=np.float64))
            if (arrays[1] <= 0).any():
                raise ConfigError(f"{s.kind} scaling: every scale must be > 0", "use Scaler.to_dict() to make one")
            s.shift, s.scale = arrays
        return s

    def __repr__(self) -> str:
        arg = f", by={self.by:g}" if self.kind == "divide" else ""
        state = "" if self.fitted else ", unfitted"
        return f"Scaler({self.kind!r}{arg}{state})"


def _finite_number(x) -> bool:
    """A real, finite number (not a bool; ints too large for a float are not finite here)."""
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        return False
    try:
        return math.isfinite(float(x))
    except OverflowError:
        return False


def _as_2d(X, what: str) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise InputError(f"{what} must be 2-d (m examples, n features), got shape {X.shape}",
                         "flatten images first, e.g. X.reshape(len(X), -1)")
    if X.dtype.kind not in "biuf":
        raise InputError(f"{what} holds non-numeric values (dtype {X.dtype})", "convert it to numbers first")
    return X


def stored_scaler(net, X=None) -> Scaler | None:
    """The input scaling a model stores (``net.meta["scaler"]``: trained by ``deltaprop train``, or
    imported from a scikit-learn Pipeline), or None; refused with the model's feature names when X has
    another number of columns than it was fitted on."""
    spec = net.meta.get("scaler")
    if not spec:
        return None
    scaler = Scaler.from_dict(spec)
    if scaler.n_features is not None and X is not None and np.ndim(X) == 2 and X.shape[1] != scaler.n_features:
        names = net.meta.get("feature_names")
        listing = f" ({', '.join(names[:12])}{', ...' if len(names) > 12 else ''})" if names else ""
        raise InputError(f"the inputs have {X.shape[1]} features but the model was trained on "
                         f"{scaler.n_features}{listing}",
                         "pass inputs with the same columns as the training data (a CSV header lets "
                         "deltaprop match them by name)")
    return scaler
