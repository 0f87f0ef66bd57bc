"""Gradient checking: backpropagation's dW, db against centered finite differences of J.

For every parameter θ (or a random sample of them in large layers):

    ∂J/∂θ ≈ (J(θ + h) − J(θ − h)) / 2h,      h ≈ 1e-5, in float64

and per parameter array the relative error ‖a − n‖ / max(‖a‖ + ‖n‖, 1e-12), where a is the
analytic gradient and n the numerical one.

The pass rule (:func:`passes`, shared by :func:`gradcheck` and ``deltaprop trace``): an array passes
when its relative error is at most ``TOLERANCE`` (1e-7), or when the absolute difference ‖a − n‖ is
below the rounding noise of the difference quotients,

    noise_floor = 10 · √N · ε · max(1, |J|) / h      (N entries checked, ε of float64 = 2.2e-16),

since each quotient (J(θ + h) − J(θ − h))/2h carries an error of about ε·|J|/h from rounding J.
Without the floor, a gradient that is itself tiny — the first layers of a deep sigmoid network,
‖dW‖ ≈ 1e-6 — fails the relative test although backprop is right: 1e-11 of noise on 1e-6 is a
relative 1e-5. Correct backprop on well-scaled gradients gives 1e-10 to 1e-8; a slip in a
formula gives 1e-3 or more. Near a ReLU kink (|z| ≲ h) the difference quotient straddles the kink
and the check can fail although backprop is right: :func:`gradcheck` counts such units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from deltaprop.validation import check_X

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

    from deltaprop.model import Network

__all__ = ["gradcheck", "GradCheckReport", "GradCheckRow", "relative_error", "numerical_gradient", "passes",
           "noise_floor", "pass_rule", "failure_hint", "near_kink", "TOLERANCE", "H"]

TOLERANCE = 1e-7  # the largest relative error that passes, for gradcheck and trace alike
H = 1e-5          # the finite-difference step


def noise_floor(cost: float, h: float = H, n: int = 1, dtype=np.float64) -> float:
    """10 · √n · ε · max(1, |J|) / h: the rounding noise of n centered differences of J (the norm of
    their errors, with a margin of 10), ε the machine epsilon of ``dtype``."""
    return float(10 * np.sqrt(n) * np.finfo(dtype).eps * max(1.0, abs(float(cost))) / h)


def passes(a, n, cost: float, h: float = H, tolerance: float = TOLERANCE, count: int | None = None,
           dtype=np.float64):
    """The one pass rule: (ok, relative error, ‖a − n‖, passed by the noise floor only).

    ok when ‖a − n‖ / max(‖a‖ + ‖n‖, 1e-12) ≤ tolerance, or ‖a − n‖ ≤ :func:`noise_floor` of the
    ``count`` entries compared (all of a by default)."""
    rel = relative_error(a, n)
    diff = float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(n, np.float64)))
    floor = noise_floor(cost, h, np.size(a) if count is None else count, dtype)
    by_floor = bool(rel > tolerance and diff <= floor)
    return bool(rel <= tolerance or by_floor), rel, diff, by_floor


def pass_rule(tolerance: float = TOLERANCE, h: float = H) -> str:
    """The pass rule in words, for the reports that apply it."""
    return (f"an array passes when its relative error is at most {tolerance:g}, or when |analytic − numeric| is "
            f"below the rounding noise of the differences, 10·√N·ε·max(1, |J|)/h (ε = {np.finfo(np.float64).eps:.1e}, "
            f"h = {h:g}, N entries)")


def near_kink(net, h: float = H) -> int:
    """Pre-activations of ReLU and leaky ReLU layers within 10·h of the kink at 0 (after a cached forward)."""
    return sum(int(np.sum(np.abs(layer.Z) < 10 * h)) for layer in net.layers[:-1]
               if layer.activation.name in ("relu", "leaky_relu") and layer.Z is not None)


def failure_hint(net, kinks: int, own_gradients: bool = True, h: float = H) -> str:
    """What a failed check means for this network: kinks only where there are ReLU units near one."""
    if h > 1e-3:
        return (f"h = {h:g} is large: the differences carry a truncation error of about h²·J‴/6, which "
                f"dominates; use h = {H:g}.")
    kinked = {a for a in net.activations[:-1] if a in ("relu", "leaky_relu")}
    if kinks and kinked:
        return (f"{kinks} pre-activation(s) of the {' and '.join(sorted(kinked))} units lie within 10·h of the kink at 0, "
                "where the difference quotient straddles the kink and is wrong although backprop is right: "
                "try another seed or more examples.")
    if own_gradients:
        where = ("no pre-activation lies near a kink of its ReLU units" if kinked else
                 "the activations of this network are smooth everywhere")
        return (f"{where}, yet the analytic gradient disagrees with the finite differences beyond rounding noise. "
                "A float64 network built by deltaprop should never do this; please report it with the command that "
                "showed it.")
    return ("the gradients given disagree with the finite differences of J beyond rounding noise; check the "
            "derivation layer by layer (the rows marked NO).")


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
    tolerance: float = TOLERANCE
    h: float = H
    cost: float = 0.0
    near_kink: int = 0
    noise_floor: float = 0.0
    hint: str = ""

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
            "rule": pass_rule(self.tolerance, self.h), "hint": "" if self.ok else self.hint,
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
        if any(r.by_floor for r in self.rows):
            lines.append(f"* gradient too small to measure relatively; |analytic − numeric| is below the rounding "
                         f"noise of the differences ({self.noise_floor:.1e})")
        if not self.ok and self.hint:
            lines.append(self.hint)
        elif self.near_kink:
            lines.append(f"note: {self.near_kink} pre-activations lie within 10·h of a ReLU kink; errors there are expected")
        verdict = "PASSED" if self.ok else "FAILED"  # the last line: the verdict, with the rule it applied
        lines.append(f"{verdict}: max relative error {self.max_error:.2e}; {pass_rule(self.tolerance, self.h)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def gradcheck(net: Network, X: ArrayLike, Y: ArrayLike, l2: float = 0.0, h: float = H,
              tolerance: float = TOLERANCE, grads: Sequence[tuple[ArrayLike, ArrayLike]] | None = None,
              max_checks: int | None = None, seed: int = 0) -> GradCheckReport:
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
            checked = theta.size if idx is None else len(idx)
            # Entries not sampled are 0 in both a_used and n: the floor counts the checked ones.
            ok, err, abs_err, by_floor = passes(a_used, n, cost, h, tolerance, count=checked)
            report.noise_floor = max(report.noise_floor, noise_floor(cost, h, checked))
            report.rows.append(GradCheckRow(li, name, tuple(theta.shape), float(np.linalg.norm(a_used)),
                                            float(np.linalg.norm(n)), err, checked, ok, abs_err, by_floor))
    net64.forward(X64, cache=True, check=False)
    report.near_kink = near_kink(net64, h)
    report.hint = failure_hint(net64, report.near_kink, own_gradients=grads is None, h=h)
    return report
