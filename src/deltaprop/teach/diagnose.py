"""Read a training run and name the problems it shows, each with a suggestion.

    >>> import deltaprop as dp
    >>> history = dp.fit(net, X, y, epochs=50, callbacks=[dp.DeadUnitMonitor()])
    >>> print(dp.diagnose(history).to_text())
    >>> dp.diagnose("runs/2024-01-01")          # a run directory with history.csv

What it reads: the per-epoch ``loss``, ``val_loss`` and ``lr`` and the gradient-flow figures the
trainer records (``delta_norm_l`` and ``dW_norm_l``, the Frobenius norms of δ_l and dW_l on the
epoch's last batch, layer 1 first); ``dead_fraction_l`` when :class:`DeadUnitMonitor` ran.

What it names (``Finding.code``):

- ``diverged``: the cost became infinite or NaN (the trainer raised DivergenceError);
- ``lr_too_high``: the loss jumps up again and again, or diverged;
- ``loss_rose``: the loss ended higher than it started;
- ``vanishing_gradients``: ‖dW_1‖ is orders of magnitude below ‖dW_L‖ (deep sigmoid/tanh stacks:
  every layer multiplies δ by g' ≤ 1/4);
- ``exploding_gradients``: ‖dW_1‖ orders of magnitude above ‖dW_L‖, or gradient norms that grow
  without bound;
- ``dead_relu``: ReLU units that were inactive for every example of a batch (they get no gradient
  and never recover);
- ``overfitting``: the validation loss rose for several epochs while the training loss kept falling;
- ``stalled``: the loss barely moved.

The thresholds are rules of thumb, stated in each finding's evidence so the reader can judge.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from deltaprop.errors import DataError, DivergenceError
from deltaprop.teach.document import Doc, Renderable
from deltaprop.train import Callback, History

__all__ = ["diagnose", "Diagnosis", "Finding", "DeadUnitMonitor", "read_history", "column", "per_layer", "dead_units"]

VANISHING_RATIO = 1e-3   # ‖dW_1‖/‖dW_L‖ below this: three orders of magnitude
EXPLODING_RATIO = 1e3
EXPLODING_NORM = 1e4     # any ‖dW_l‖ above this
DEAD_FRACTION = 0.5      # half a layer's ReLU units dead


@dataclass
class Finding:
    """One problem: a code (``vanishing_gradients`` ...), a title, the evidence, what to try."""

    code: str
    title: str
    evidence: str
    suggestion: str
    severity: str = "warning"


class DeadUnitMonitor(Callback):
    """Records ``dead_fraction`` (a list, layer 1 first) at the end of each epoch: for every hidden ReLU
    layer, the fraction of its units whose pre-activation Z was ≤ 0 for every example of the epoch's
    last batch (such a unit passes no gradient back, so nothing revives it); None for other layers."""

    def on_epoch_end(self, trainer, logs: dict) -> None:
        fractions = []
        layers = trainer.net.layers
        for i, layer in enumerate(layers):
            if i < len(layers) - 1 and layer.activation.name == "relu" and layer.Z is not None:
                fractions.append(float(np.mean(np.all(layer.Z <= 0, axis=0))))
            else:
                fractions.append(None)
        logs["dead_fraction"] = fractions


def dead_units(net, X) -> list:
    """For each hidden ReLU layer, the fraction of units inactive (Z ≤ 0) on every row of X; None elsewhere."""
    net.forward(X, cache=True)
    out = []
    for i, layer in enumerate(net.layers):
        hidden_relu = i < len(net.layers) - 1 and layer.activation.name == "relu"
        out.append(float(np.mean(np.all(layer.Z <= 0, axis=0))) if hidden_relu else None)
    return out


# -- reading runs ------------------------------------------------------------------------------------------

def _number(text):
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text)
    text = str(text).strip()
    if text == "" or text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def read_history(source) -> tuple[list[dict], str]:
    """(rows, stop_reason) from a History, a DivergenceError, a list of row dicts, a history.csv or
    history.json file, or a run directory holding one of them."""
    if isinstance(source, DivergenceError):
        hist = source.history or History()
        reason = hist.stop_reason or f"diverged at epoch {source.epoch}, batch {source.batch}"
        return hist.to_rows(), reason
    if isinstance(source, History):
        return source.to_rows(), source.stop_reason or ""
    if isinstance(source, (list, tuple)):
        return [{k: _number(v) for k, v in dict(r).items()} for r in source], ""
    path = Path(source)
    if path.is_dir():
        for name in ("history.csv", "history.json"):
            if (path / name).exists():
                path = path / name
                break
        else:
            raise DataError(f"no history.csv or history.json in {path}",
                            "pass the directory a training run wrote (deltaprop train --out DIR), or a History")
    if not path.exists():
        raise DataError(f"no such file or directory: {path}", "pass a run directory, history.csv or a History")
    from deltaprop.io.files import check_regular  # a FIFO or a device would block or never end

    check_regular(path, "history file", DataError, "pass a run directory, history.csv or a History")
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read {path} as JSON ({exc})", "pass the history.json a run wrote") from None
        hist = History.from_dict(data if "epochs" in data else {"epochs": data})
        return hist.to_rows(), hist.stop_reason or ""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [{k: _number(v) for k, v in r.items()} for r in csv.DictReader(f)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {path} as CSV ({exc})", "pass the history.csv a run wrote") from None
    if rows and "loss" not in rows[0]:
        raise DataError(f"{path} has no 'loss' column (columns: {', '.join(rows[0])})",
                        "pass the history.csv written by deltaprop train (History.to_rows())")
    return rows, ""


def per_layer(rows, key) -> np.ndarray | None:
    """(epochs, layers) array of ``key_1, key_2, ...`` (NaN where missing), or None when absent."""
    if not rows:
        return None
    pat = re.compile(rf"^{re.escape(key)}_(\d+)$")
    idx = sorted({int(m.group(1)) for r in rows for c in r for m in [pat.match(c)] if m})
    if not idx:
        return None
    arr = np.full((len(rows), len(idx)), np.nan)
    for e, r in enumerate(rows):
        for j, k in enumerate(idx):
            v = r.get(f"{key}_{k}")
            if isinstance(v, float):
                arr[e, j] = v
    return arr


def column(rows, key) -> np.ndarray:
    return np.array([r.get(key) if isinstance(r.get(key), float) else np.nan for r in rows], dtype=float)


# -- the diagnosis -----------------------------------------------------------------------------------------

class Diagnosis(Renderable):
    """The findings for one run; ``codes`` lists their codes, ``ok`` is True when there are none."""

    def __init__(self, findings: list[Finding], n_epochs: int, source: str = ""):
        self.findings, self.n_epochs, self.source = findings, n_epochs, source

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    @property
    def ok(self) -> bool:
        return not self.findings

    def __contains__(self, code: str) -> bool:
        return code in self.codes

    def document(self) -> Doc:
        doc = Doc()
        doc.h(1, "Diagnosis of a training run" + (f": {self.source}" if self.source else ""))
        if not self.findings:
            doc.p(f"No problems found in {self.n_epochs} epoch{'s' if self.n_epochs != 1 else ''}: the loss fell, "
                  "and the gradients reached every layer.")
            return doc
        doc.p(f"{len(self.findings)} finding{'s' if len(self.findings) > 1 else ''} in "
              f"{self.n_epochs} epoch{'s' if self.n_epochs != 1 else ''}:")
        for f in self.findings:
            doc.h(2, f"{f.title} (`{f.code}`)")
            doc.p(f.evidence)
            doc.p("**Try:** " + f.suggestion)
        return doc

    def to_dict(self) -> dict:
        return {"kind": "diagnosis", "source": self.source, "epochs": self.n_epochs, "ok": self.ok,
                "findings": [asdict(f) for f in self.findings]}

    def __repr__(self) -> str:
        return f"Diagnosis({', '.join(self.codes) or 'no problems'})"


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def diagnose(run, net=None, X=None) -> Diagnosis:
    """Name the problems a run shows. ``run``: a History, a DivergenceError (its ``.history``), a
    run directory (history.csv or history.json inside), such a file, or a list of row dicts.
    With ``net`` (or a run directory holding model.safetensors) and ``X``, dead ReLU units are
    counted on X directly."""
    rows, stop_reason = read_history(run)
    source = str(run) if isinstance(run, (str, Path)) else ""
    findings: list[Finding] = []
    n = len(rows)
    loss = column(rows, "loss")
    val = column(rows, "val_loss")
    lr = column(rows, "lr")
    lr_text = f" (learning rate {_fmt(lr[-1])})" if n and np.isfinite(lr[-1]) else ""

    # -- divergence and a learning rate that is too high --------------------------------------------------
    diverged = "diverg" in stop_reason.lower() or (n > 0 and not np.all(np.isfinite(loss[~np.isnan(loss)])))
    if diverged:
        findings.append(Finding(
            "diverged", "Training diverged",
            f"The cost became infinite or NaN ({stop_reason or 'a non-finite loss in the history'}) after "
            f"{n} complete epoch{'s' if n != 1 else ''}{lr_text}.",
            "lower the learning rate (a tenth of it is a good first try), scale the inputs to mean 0 and "
            "variance 1, or add L2; the trainer restored the weights of the last good epoch.", "error"))
    finite = loss[np.isfinite(loss)]
    rises = np.diff(finite) > 0 if finite.size > 1 else np.array([], dtype=bool)
    big = [(i, finite[i], finite[i + 1]) for i in range(finite.size - 1) if finite[i + 1] > 1.5 * finite[i]]
    oscillating = finite.size >= 5 and rises.mean() >= 0.3 and len(big) >= 1
    # One epoch that multiplies the loss and lands above where training started is an overshoot too,
    # even when the run recovers afterwards (plain SGD with α = 10 does that).
    spikes = [(i, a, b) for i, a, b in big if b > 3 * a and b > finite[0]]
    if diverged or oscillating or spikes:
        if spikes and not oscillating:
            i, a, b = max(spikes, key=lambda t: t[2] / t[1])
            ev = (f"The loss jumped from {_fmt(a)} to {_fmt(b)} between epochs {i + 1} and {i + 2}, above where it "
                  f"started{lr_text}: a step overshot the minimum and threw the weights far up the loss surface.")
        elif oscillating:
            i, a, b = max(big, key=lambda t: t[2] / t[1])
            ev = (f"The loss went up in {int(rises.sum())} of {rises.size} epochs, once from {_fmt(a)} to {_fmt(b)} "
                  f"between epochs {i + 1} and {i + 2}{lr_text}: the steps overshoot the minimum instead of descending into it.")
        else:
            ev = f"A diverging cost almost always means steps too large for the curvature of the loss{lr_text}."
        findings.append(Finding(
            "lr_too_high", "Learning rate too high", ev,
            "divide the learning rate by 3 to 10; or use optimizer='adam' (lr 1e-3), or a decaying schedule."))
    if not diverged and finite.size >= 2 and finite[-1] > finite[0] * 1.05:
        findings.append(Finding(
            "loss_rose", "The loss rose",
            f"The training loss ended at {_fmt(finite[-1])}, above where it started ({_fmt(finite[0])}).",
            "lower the learning rate; check that the targets match the loss (labels 0..K−1 for cross-entropy) "
            "and that the inputs are scaled."))

    # -- gradient flow ------------------------------------------------------------------------------------
    dW = per_layer(rows, "dW_norm")
    if dW is not None and dW.shape[1] >= 2:
        first, last = dW[:, 0], dW[:, -1]
        ok = np.isfinite(first) & np.isfinite(last) & (last > 0)
        if ok.any():
            ratio = float(np.median(first[ok] / last[ok]))
            profile = ", ".join(_fmt(v) for v in dW[np.flatnonzero(ok)[-1]])
            L = dW.shape[1]
            if ratio < VANISHING_RATIO:
                findings.append(Finding(
                    "vanishing_gradients", "Vanishing gradients",
                    f"The first layer's gradient ‖dW_1‖ is {_fmt(ratio)} times the last layer's (median over epochs; "
                    f"about {int(round(-math.log10(ratio)))} orders of magnitude smaller). Per layer, 1 to {L}, in "
                    f"the last epoch: {profile}. Each layer multiplies δ by W and by g'(Z); sigmoid's g' is at most "
                    "1/4, so the error shrinks on its way back and the first layers barely learn.",
                    "use ReLU (or leaky ReLU) hidden units with He initialization (hidden='relu'); use fewer layers; "
                    "or tanh instead of sigmoid, with Glorot initialization."))
            elif ratio > EXPLODING_RATIO:
                findings.append(Finding(
                    "exploding_gradients", "Exploding gradients",
                    f"The first layer's gradient ‖dW_1‖ is {_fmt(ratio)} times the last layer's (median over epochs). "
                    f"Per layer, 1 to {L}, in the last epoch: {profile}.",
                    "lower the learning rate, use Glorot/He initialization (the default) rather than large "
                    "weights, scale the inputs, or add L2."))
        big_norm = np.nanmax(dW) if np.isfinite(dW).any() else np.nan
        if "exploding_gradients" not in [f.code for f in findings] and np.isfinite(big_norm) and big_norm > EXPLODING_NORM:
            findings.append(Finding(
                "exploding_gradients", "Exploding gradients",
                f"A gradient norm ‖dW_l‖ reached {_fmt(big_norm)} (above {EXPLODING_NORM:g}).",
                "lower the learning rate, scale the inputs, or add L2."))

    # -- dead ReLU units ----------------------------------------------------------------------------------
    dead = None
    dead_how = ""
    if net is None and X is not None and isinstance(run, (str, Path)) and (Path(run) / "model.safetensors").exists():
        import deltaprop

        net = deltaprop.load(Path(run) / "model.safetensors")
    if net is not None and X is not None:
        dead = dead_units(net, X)
        dead_how = f"on the {np.shape(X)[0]} examples given"
    else:
        frac = per_layer(rows, "dead_fraction")
        if frac is not None and n:
            dead = [None if np.isnan(v) else float(v) for v in frac[-1]]
            dead_how = "on the last batch of the last epoch"
    if dead:
        bad = [(i + 1, f) for i, f in enumerate(dead) if f is not None and f >= DEAD_FRACTION]
        if bad:
            which = ", ".join(f"layer {l}: {f:.0%}" for l, f in bad)
            findings.append(Finding(
                "dead_relu", "Dead ReLU units",
                f"Units that were inactive (Z ≤ 0) for every example {dead_how}: {which}. A dead unit has "
                "relu'(Z) = 0 everywhere, so δ is 0 there, its weights get no gradient and it never comes back.",
                "lower the learning rate (one large step can push a unit's bias far negative), use leaky_relu, "
                "He initialization, and scaled inputs."))

    # -- overfitting ----------------------------------------------------------------------------------------
    vmask = np.isfinite(val)
    if vmask.sum() >= 5:
        v = val[vmask]
        t = loss[vmask]
        best = int(np.argmin(v))
        rising_after = v.size - 1 - best
        if rising_after >= 3 and v[-1] > v[best] * 1.05 and np.isfinite(t[-1]) and t[-1] < t[best]:
            epochs = np.flatnonzero(vmask)
            findings.append(Finding(
                "overfitting", "Overfitting",
                f"The validation loss was lowest at epoch {epochs[best] + 1} ({_fmt(v[best])}) and rose to "
                f"{_fmt(v[-1])} over the next {rising_after} epochs, while the training loss fell from "
                f"{_fmt(t[best])} to {_fmt(t[-1])}: the network is memorizing the training rows.",
                "stop early (early_stopping=5 restores the best weights), add L2 (l2=0.1 to 1), use a smaller "
                "network, or get more data."))

    # -- no progress ----------------------------------------------------------------------------------------
    if not diverged and finite.size >= 5 and not any(f.code in ("loss_rose", "lr_too_high") for f in findings):
        change = (finite[0] - finite[-1]) / max(abs(finite[0]), 1e-12)
        if 0 <= change < 0.01:
            findings.append(Finding(
                "stalled", "Training stalled",
                f"Over {finite.size} epochs the loss moved by {change:.2%} ({_fmt(finite[0])} to {_fmt(finite[-1])}).",
                "raise the learning rate, scale the inputs, check the gradient flow (vanishing gradients?), "
                "or train longer.", "info"))
    return Diagnosis(findings, n, source)
