"""Gradient checking: backpropagation's dW, db against centered finite differences of J.

For every parameter θ (or a random sample of them in large layers):

    ∂J/∂θ ≈ (J(θ + h) − J(θ − h)) / 2h,      h ≈ 1e-5, in float64

and per parameter array the relative error ‖a − n‖ / max(‖a‖ + ‖n‖, 1e-12), where a is the
analytic gradient and n the numerical one. Correct backprop gives about 1e-9 or less; a slip in a
formula gives 1e-2 or more. Near a ReLU kink (|z| ≲ h) the difference quotient straddles the kink
and the check can fail although backprop is right: :func:`gradcheck` reports how many such units it saw.

A gradient that is itself tiny (‖a‖ ≈ 1e-6, say, for the bias of a saturated unit) cannot be
measured to a relative 1e-7: the difference quotient carries a rounding noise of about
ε_machine·|J|/h ≈ 1e-11 per entry. Such an array also passes when the absolute difference
‖a − n‖ is below that noise floor (``noise_floor`` in the report), and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deltaprop.validation import check_X

__all__ = ["gradcheck", "GradCheckReport", "GradCheckRow", "relative_error", "numerical_gradient"]


def relative_error(a, n) -> float:
    """‖a − n‖ / max(‖a‖ + ‖n‖, 1e-12)."""
    a, n = np.asarray(a, dtype=np.float64), np.asarray(n, dtype=np.float64)
    return float(np.linalg.norm(a - n) / max(np.linalg.norm(a) + np.linalg.norm(n), 1e-12))


def numerical_gradient(f, theta: np.ndarray, h: float = 1e-5, indices=None) -> np.ndarray:
    """Centered differences of the scalar function f() with respect to the array theta (changed in
    place and restored). Only the flat ``indices`` are computed when given; others stay 0."""
    grad = np.zeros_like(theta, dtype=np.float64)
    flat, gflat = theta.reshape(-1), grad.reshape(-1)
    for k in (range(flat.size) if indices is None else indices):
        old = flat[k]
        flat[k] = old + h
        f_plus = f()
        flat[k] = old - h
        f_minus = f()
        flat[k] = old
        gflat[k] = (f_plus - f_minus) / (2 * h)
    return grad


@dataclass
class GradCheckRow:
    """One parameter array: its layer (1-based), name ('W' or 'b'), shape, norms and relative error."""

    layer: int
    name: str
    shape: tuple
    analytic_norm: float
    numeric_norm: float
    error: float
    checked: int
    ok: bool
    abs_error: float = 0.0
    by_floor: bool = False


@dataclass
class GradCheckReport:
    """Per-layer, per-parameter comparison; ``ok`` when every error is ≤ ``tolerance``."""

    rows: list = field(default_factory=list)
    tolerance: float = 1e-7
    h: float = 1e-5
    cost: float = 0.0
    near_kink: int = 0
    noise_floor: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def max_error(self) -> float:
        return max((r.error for r in self.rows), default=0.0)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok, "max_error": self.max_error, "tolerance": self.tolerance, "h": self.h,
            "cost": self.cost, "near_kink": self.near_kink, "noise_floor": self.noise_floor,
            "rows": [{"layer": r.layer, "param": r.name, "shape": list(r.shape), "analytic_norm": r.analytic_norm,
                      "numeric_norm": r.numeric_norm, "relative_error": r.error, "abs_error": r.abs_error, "checked": r.checked, "ok": r.ok,
                      "passed_by_noise_floor": r.by_floor}
                     for r in self.rows],
        }

    def to_text(self) -> str:
        lines = [f"{'layer':>5}  {'param':<5} {'shape':<12} {'|analytic|':>12} {'|numeric|':>12} {'rel. error':>11}  ok"]
        for r in self.rows:
            shape = "×".join(map(str, r.shape))
            lines.append(f"{r.layer:>5}  {r.name:<5} {shape:<12} {r.analytic_norm:>12.4e} {r.numeric_norm:>12.4e} "
                         f"{r.error:>11.2e}  {('yes*' if r.by_floor else 'yes') if r.ok else 'NO'}")
        verdict = "PASSED" if self.ok else "FAILED"
        lines.append(f"{verdict}: max relative error {self.max_error:.2e} (tolerance {self.tolerance:g}, h = {self.h:g})")
        if any(r.by_floor for r in self.rows):
            lines.append(f"* gradient too small to measure relatively; |analytic − numeric| is below the rounding "
                         f"noise of the differences ({self.noise_floor:.1e})")
        if self.near_kink:
            lines.append(f"note: {self.near_kink} pre-activations lie within 10·h of a ReLU kink; errors there are expected")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def gradcheck(net, X, Y, l2: float = 0.0, h: float = 1e-5, tolerance: float = 1e-7,
              grads=None, max_checks: int | None = None, seed: int = 0) -> GradCheckReport:
    """Compare the gradient of J with centered finite differences, on a float64 copy of ``net``.

    ``grads`` — a list of (dW, db) to check instead of the network's own backprop (check your own
    derivation). ``max_checks`` — at most this many random entries per parameter array (all by
    default). The network itself is never changed.
    """
    net64 = net.astype("float64")
    X64 = check_X(X, net64.sizes[0], np.float64)
    cost, own = net64.backprop(X64, Y, l2=l2)
    analytic = own if grads is None else [(np.asarray(dW, np.float64), np.asarray(db, np.float64)) for dW, db in grads]
    Yp = net64.prepare_targets(Y)

    def J():
        return net64.cost(X64, Yp, l2=l2)

    rng = np.random.default_rng(seed)
    report = GradCheckReport(tolerance=tolerance, h=h, cost=cost)
    for li, (layer, (dW, db)) in enumerate(zip(net64.layers, analytic), start=1):
        for name, theta, a in (("W", layer.W, dW), ("b", layer.b, db)):
            if a.shape != theta.shape:
                report.rows.append(GradCheckRow(li, name, theta.shape, float("nan"), float("nan"), float("inf"), 0, False))
                continue
            idx = None
            if max_checks is not None and theta.size > max_checks:
                idx = np.sort(rng.choice(theta.size, size=max_checks, replace=False))
            n = numerical_gradient(J, theta, h, idx)
            a_used = a if idx is None else np.where(np.isin(np.arange(a.size), idx).reshape(a.shape), a, 0.0)
            err = relative_error(a_used, n)
            abs_err = float(np.linalg.norm(a_used - n))
            checked = theta.size if idx is None else len(idx)
            floor = 10 * np.sqrt(checked) * np.finfo(np.float64).eps * max(1.0, abs(cost)) / h
            report.noise_floor = max(report.noise_floor, floor)
            by_floor = bool(err > tolerance and abs_err <= floor)  # a plain bool, so to_dict() is JSON
            report.rows.append(GradCheckRow(li, name, tuple(theta.shape), float(np.linalg.norm(a_used)),
                                            float(np.linalg.norm(n)), err, checked, err <= tolerance or by_floor,
                                            abs_err, by_floor))
    net64.forward(X64, cache=True, check=False)
    report.near_kink = sum(int(np.sum(np.abs(layer.Z) < 10 * h)) for layer in net64.layers[:-1]
                           if layer.activation.name in ("relu", "leaky_relu"))
    return report
