"""deltaprop: multilayer perceptrons with backpropagation derived by hand, in NumPy.

    >>> import deltaprop as dp
    >>> net = dp.Network.from_sizes([64, 32, 10], hidden="relu", output="softmax", seed=0)
    >>> cost, grads = net.backprop(X, y, l2=0.1)          # grads[l] == (dW, db)
    >>> history = dp.fit(net, X, y, epochs=20, batch_size=64, optimizer="adam")
    >>> dp.gradcheck(net, X[:5], y[:5]).ok

``import deltaprop`` needs NumPy alone; the scikit-learn estimators (``deltaprop.MLPClassifier``,
``deltaprop.MLPRegressor``) and the exchange with other libraries (``from_sklearn``, ``from_torch``,
``from_onnx``, ``to_torch``, ``to_onnx``, ``to_npz``: :mod:`deltaprop.io.exchange`) are imported on first use.
"""

from __future__ import annotations

import os as _os
import sys as _sys
from typing import TYPE_CHECKING as _TYPE_CHECKING

if _os.path.basename(_sys.argv[0] if _sys.argv else "") == "deltaprop" or \
        "".join(getattr(_sys, "orig_argv", [])[1:3]) == "-mdeltaprop":
    # The command is starting (`deltaprop ...` or `python -m deltaprop ...`): until cli.main takes over
    # Ctrl-C, it ends the process quietly, as the shell's default does, instead of printing a traceback
    # from the middle of an import. Nothing has been written yet, so nothing is lost.
    import signal as _signal

    if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, _signal.SIG_DFL)

from deltaprop.activations import ACTIVATIONS, get_activation  # noqa: E402
from deltaprop.errors import (
    ConfigError,
    DataError,
    DeltapropError,
    DivergenceError,
    InputError,
    ModelFileError,
)
from deltaprop.gradcheck import GradCheckReport, gradcheck
from deltaprop.layers import Dense
from deltaprop.losses import LOSSES, get_loss
from deltaprop.model import Network
from deltaprop.optim import OPTIMIZERS, SCHEDULES, make_optimizer, make_schedule
from deltaprop.reference import per_example_backprop
from deltaprop.targets import target_task
from deltaprop.teach.diagnose import DeadUnitMonitor, Diagnosis, diagnose
from deltaprop.teach.explain import Explanation, explain
from deltaprop.teach.trace import Trace, trace
from deltaprop.train import Callback, History, Trainer, TrainOptions
from deltaprop.train import fit as _fit

if _TYPE_CHECKING:
    from collections.abc import Iterable
    from os import PathLike
    from pathlib import Path
    from typing import Any

    import numpy as np
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike

    from deltaprop.train import RowSource
    from deltaprop.validation import Rows

__version__ = "0.1.0"

__all__ = [
    "Network", "Dense", "fit", "Trainer", "TrainOptions", "History", "Callback", "target_task",
    "plot_history", "gradcheck", "GradCheckReport",
    "per_example_backprop", "save", "load", "predict", "predict_proba", "raw_inputs", "make_optimizer", "make_schedule", "get_activation", "get_loss",
    "ACTIVATIONS", "LOSSES", "OPTIMIZERS", "SCHEDULES",
    "DeltapropError", "InputError", "ConfigError", "DataError", "ModelFileError", "DivergenceError",
    "MLPClassifier", "MLPRegressor", "__version__",
    "explain", "Explanation", "trace", "Trace", "diagnose", "Diagnosis", "DeadUnitMonitor", "check",
    "from_sklearn", "from_torch", "from_onnx", "to_torch", "to_onnx", "to_npz",
]

# Name -> module of the exchange functions, imported on first use (each needs an optional library).
_EXCHANGE = {"from_sklearn": "sklearn", "from_torch": "torch", "to_torch": "torch", "from_onnx": "onnx",
             "to_onnx": "onnx", "to_npz": "npz"}


def fit(net: Network, X: Rows | RowSource, y: ArrayLike, options: TrainOptions | None = None, *,
        progress: bool = False, **overrides: Any) -> History:
    """Train ``net`` on (X, y): :func:`deltaprop.train.fit` (see there, and :class:`TrainOptions` for
    the options and their defaults: Adam, batches of 64, 30 epochs), plus ``progress=True``: a bar
    over the epochs in a terminal or in Jupyter (tqdm's auto mode; ``pip install tqdm``), drawn by a
    callback from :mod:`deltaprop.cli.progress`, outside the engine."""
    if not progress:
        return _fit(net, X, y, options, **overrides)
    from deltaprop.cli.progress import ProgressBar

    bar = ProgressBar()
    callbacks = [*overrides.pop("callbacks", ()), bar]
    try:
        return _fit(net, X, y, options, callbacks=callbacks, **overrides)
    finally:
        bar.on_train_end(None)  # closes the bar when training raised, too


def plot_history(history: History | Iterable[dict], path: str | PathLike[str] | None = None,
                 log: bool | None = None) -> Figure | Path:
    """The loss (and accuracy) curves of a :class:`History` (or its ``to_rows()``), drawn by the
    command's plotting code (matplotlib; ``pip install matplotlib``): the matplotlib Figure, or, when
    ``path`` is given, the image saved there (PNG unless the suffix names another format) and its
    path returned. ``log`` None puts the loss on a log scale when it spans more than a decade."""
    from deltaprop.cli import report

    rows = history.to_rows() if hasattr(history, "to_rows") else list(history)
    return report.plot_history(rows, path, log=log)


def save(net: Network, path: str | PathLike[str]) -> None:
    """Write ``net`` as a model file (safetensors weights + JSON header), atomically; never pickled.
    See docs/file-format.md."""
    from deltaprop.io.modelfile import save as save_model

    save_model(net, path)


def raw_inputs(net: Network, X: ArrayLike) -> np.ndarray:
    """Raw inputs X (m, n_features) as ``net`` sees them: the input scaling stored in
    ``net.meta["scaler"]`` applied (models trained by ``deltaprop train``, networks imported from a
    scikit-learn Pipeline with a scaler), in the network's dtype. X unchanged (as an array) otherwise."""
    import numpy as np

    from deltaprop.io.preprocessing import stored_scaler

    X = np.asarray(X)
    scaler = stored_scaler(net, X)
    if scaler is None:
        return np.asarray(X, dtype=net.dtype)
    return scaler.transform(X, dtype=net.dtype)


def predict(net: Network, X: ArrayLike) -> np.ndarray:
    """What ``deltaprop predict`` gives for raw inputs X: the stored input scaling applied, then class
    names (or indices when the model has none), 0/1 indicators, or values in the targets' units.
    (``net.predict(X)`` takes inputs already scaled, as the network sees them.)"""
    return net.predict_labels(raw_inputs(net, X))


def predict_proba(net: Network, X: ArrayLike) -> np.ndarray:
    """Class probabilities (m, K) for raw inputs X, the stored input scaling applied (see :func:`predict`)."""
    return net.predict_proba(raw_inputs(net, X))


def load(path: str | PathLike[str]) -> Network:
    """Read a model file written by :func:`save`, or an MLP-shaped ``.onnx`` file (through
    :func:`from_onnx`); refuses anything else with ModelFileError."""
    import os

    if os.fspath(path).lower().endswith(".onnx"):
        from deltaprop.io.exchange.onnx import from_onnx

        return from_onnx(path)
    from deltaprop.io.modelfile import load as load_model

    return load_model(path)


def __getattr__(name: str) -> Any:
    # The estimators need scikit-learn: import it only when they are asked for.
    if name in ("MLPClassifier", "MLPRegressor"):
        from deltaprop import estimators

        return getattr(estimators, name)
    if name == "check":  # the exercises' checker: deltaprop.check(backprop, exercise="any_depth")
        from deltaprop.teach.exercises import check

        return check
    if name in _EXCHANGE:
        import importlib

        return getattr(importlib.import_module(f"deltaprop.io.exchange.{_EXCHANGE[name]}"), name)
    raise AttributeError(f"module 'deltaprop' has no attribute {name!r}")
