"""One playground session: a data set, a network, an optimizer, and where training stands.

The page never computes: it asks the server, and the server answers from this object, which runs
deltaprop's own engine — :meth:`Network.backprop` and an optimizer from :mod:`deltaprop.optim` for
each Step (one mini-batch), :func:`deltaprop.trace` for the backprop view and
:func:`deltaprop.explain` for its equations.

The network is float64, so the backprop view's numbers are the ones ``deltaprop trace`` prints for
the same network, seed and batch: a preset (``network=note001``) with ``batch=2`` and ``seed=0`` shows
exactly ``deltaprop trace --preset note001 --examples 2 --seed 0``.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields

import numpy as np

import deltaprop
from deltaprop.errors import ConfigError, DeltapropError, unknown_name
from deltaprop.model import Network
from deltaprop.optim import OPTIMIZERS, make_optimizer
from deltaprop.playground.data import DATASETS, make_dataset

__all__ = ["PRESET_NAMES", "Config", "Session"]

HIDDEN_ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu", "identity")
PRESET_NAMES = ("note000", "note001", "note002", "note003")
GRID = 64  # the decision boundary is sampled on GRID × GRID points
SHOWN_EXAMPLES = 8  # the backprop view lists at most this many rows of a batch


def _presets():
    from deltaprop.teach.trace import PRESETS, preset_network

    return PRESETS, preset_network


@dataclass
class Config:
    """Everything a page's URL can set. ``network``: hidden layer sizes (``"8,8"``; ``""`` for none)
    or a preset of the notes (``note000`` … ``note003``), which brings its own data."""

    data: str = "circles"
    network: str = "6,4"
    activation: str = "tanh"
    optimizer: str = "sgd"
    lr: float = 0.1
    batch: int = 10
    l2: float = 0.0
    seed: int = 0
    noise: float = 0.05
    points: int = 400
    test_fraction: float = 0.3
    model_name: str = field(default="", repr=False)

    @classmethod
    def from_query(cls, query: dict, base: Config | None = None) -> Config:
        """A Config from strings (URL query or JSON); unknown keys are refused by name."""
        cfg = asdict(base or cls())
        known = {f.name: f.type for f in fields(cls)}
        for key, value in query.items():
            key = {"layers": "network", "batch_size": "batch", "lambda": "l2"}.get(key, key)
            if key not in known or key == "model_name":
                raise unknown_name("setting", key, [k for k in known if k != "model_name"] + ["layers"])
            kind = known[key]
            try:
                cfg[key] = (int(value) if kind == "int" else float(value) if kind == "float" else str(value).strip())
            except (TypeError, ValueError):
                raise ConfigError(f"{key} must be a number, got {value!r}", f"for example {key}={cfg[key]}") from None
        return cls(**cfg).checked()

    def checked(self) -> Config:
        if self.data not in DATASETS and self.data != "model":
            raise unknown_name("data set", self.data, list(DATASETS))
        if self.activation not in HIDDEN_ACTIVATIONS:
            raise unknown_name("activation", self.activation, list(HIDDEN_ACTIVATIONS))
        if self.optimizer not in OPTIMIZERS:
            raise unknown_name("optimizer", self.optimizer, list(OPTIMIZERS))
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"the learning rate must be above 0, got {self.lr}", "for example lr=0.1")
        if self.seed < 0:  # numpy.random.default_rng takes any whole number ≥ 0 (seed=-1 was a server error)
            raise ConfigError(f"the seed must be a whole number ≥ 0, got {self.seed}", "for example seed=0")
        if self.batch < 1:
            raise ConfigError(f"the batch size must be at least 1, got {self.batch}", "for example batch=10")
        if not (self.l2 >= 0 and math.isfinite(self.l2)):
            raise ConfigError(f"λ must be 0 or more, got {self.l2}", "for example l2=0.01")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"test_fraction must be between 0 and 1, got {self.test_fraction}", "for example 0.3")
        if not 0 <= self.noise <= 1:
            raise ConfigError(f"noise must be between 0 and 1, got {self.noise}", "for example 0.05")
        if not 10 <= self.points <= 5000:
            raise ConfigError(f"points must be between 10 and 5000, got {self.points}", "for example 400")
        if self.preset is None:
            self.hidden_sizes()
        return self

    @property
    def preset(self) -> str | None:
        return self.network if self.network in PRESET_NAMES else None

    def hidden_sizes(self) -> list[int]:
        text = self.network.strip()
        if not text:
            return []
        # '8-4' and '8 4' separate sizes; a minus that starts a number is a negative size, never read as its
        # absolute value ('-8' was 8), and two commas in a row leave a size out ('8,,4' was 8,4)
        if re.search(r"(^|[,\s])-|--", text):
            raise ConfigError(f"hidden layer sizes must be whole numbers ≥ 1, got {self.network!r}",
                              "write them as 8,8 (hidden layers only), or leave empty for none")
        if re.search(r"^,|,\s*,|,$", text):
            raise ConfigError(f"a layer size is missing in {self.network!r}: two commas in a row, or one at an end",
                              "write one whole number between each pair of commas, as 8,8")
        parts = [p for p in re.split(r"[,\s-]+", text) if p]
        try:
            sizes = [int(p) for p in parts]
        except ValueError:
            raise ConfigError(f"cannot read hidden layer sizes from {self.network!r}",
                              "write them as 8,8 (hidden layers only), leave empty for none, or name a preset: "
                              + ", ".join(PRESET_NAMES)) from None
        if any(s < 1 or s > 256 for s in sizes) or len(sizes) > 6:
            raise ConfigError(f"hidden layers must be 1 to 256 units, at most 6 layers; got {self.network!r}",
                              "for example 8,8")
        return sizes

    def query(self) -> dict:
        d = asdict(self)
        d.pop("model_name")
        return d


class Session:
    """The session's data, network and training state; every method returns JSON-able dicts."""

    def __init__(self, config: Config | None = None, model_path: str | None = None):
        self.model_path = model_path
        self.reset(config or Config())

    # -- setup ------------------------------------------------------------------------------------
    def reset(self, config: Config) -> None:
        cfg = config.checked()
        rng = np.random.default_rng(cfg.seed)
        self.about = ""
        if cfg.preset:
            presets, preset_network = _presets()
            p = presets[cfg.preset]
            net = preset_network(cfg.preset, cfg.seed)
            # The preset's batch, drawn exactly as `deltaprop trace --preset` draws it, is the training set,
            # so the first Step's backprop view is that command's trace; a second draw is the test set.
            Xtr, ytr = p["data"](cfg.batch, np.random.default_rng(cfg.seed + 1))
            Xte, yte = p["data"](max(cfg.batch, 20), np.random.default_rng(cfg.seed + 2))
            n_classes = net.sizes[-1] if net.loss.name == "cross_entropy" else 2
            self.classes = [str(k) for k in range(n_classes)]
            self.about = p["about"]
            self.shuffle = False
            data_name = cfg.preset
        else:
            if cfg.data == "model":
                if not self.model_path:
                    raise ConfigError("no model file was given", "start with deltaprop playground MODEL_FILE, "
                                                                 "or upload one on the page")
                net = deltaprop.load(self.model_path).astype("float64")
                data_name = "digits" if net.sizes[0] == 64 else "circles" if net.sizes[0] == 2 else None
                if data_name is None:
                    raise ConfigError(f"the model takes {net.sizes[0]} inputs; the playground's data sets have "
                                      "2 (circles, xor, moons, spiral, blobs) or 64 (digits)",
                                      "load a model trained on digits or on two features")
                if not net.is_classifier:
                    raise ConfigError("the model is a regression network", "the playground shows classifiers")
                cfg.model_name = self.model_path
            else:
                data_name = cfg.data
            X, y, self.classes = make_dataset(data_name, cfg.points, cfg.seed, cfg.noise)
            order = rng.permutation(len(X))
            n_test = max(1, round(cfg.test_fraction * len(X)))
            te, tr = order[:n_test], order[n_test:]
            if not len(tr):
                raise ConfigError(f"test_fraction={cfg.test_fraction:g} of {len(X)} points leaves no "
                                  "training rows", "lower test_fraction (for example 0.3) or raise points")
            Xtr, ytr, Xte, yte = X[tr], y[tr], X[te], y[te]
            if cfg.data != "model":
                sizes = [X.shape[1], *cfg.hidden_sizes(), len(self.classes)]
                net = Network.from_sizes(sizes, hidden=cfg.activation, output="softmax", seed=cfg.seed,
                                         dtype="float64")
            elif net.sizes[-1] != len(self.classes):
                raise ConfigError(f"the model has {net.sizes[-1]} outputs but {data_name} has "
                                  f"{len(self.classes)} classes", "load a model trained on this data")
            self.shuffle = True
        self.config, self.data_name = cfg, data_name
        self.net = net
        self.X, self.y, self.X_test, self.y_test = Xtr, ytr, Xte, yte
        self.Y = net.prepare_targets(ytr)
        self.Y_test = net.prepare_targets(yte)
        self.optimizer = make_optimizer(cfg.optimizer, cfg.lr)
        self.rng = np.random.default_rng(cfg.seed + 7)
        self.steps, self.epoch = 0, 0
        self.order = self._new_order()
        self.pos = 0
        self.history: list[dict] = []
        self._record()

    def _new_order(self) -> np.ndarray:
        n = len(self.X)
        return self.rng.permutation(n) if self.shuffle else np.arange(n)

    def batch_indices(self) -> np.ndarray:
        """The rows of the training set the next Step will use (one mini-batch)."""
        return self.order[self.pos:self.pos + self.config.batch]

    # -- training ---------------------------------------------------------------------------------
    def losses(self) -> tuple[float, float]:
        """(training loss, test loss): the mean loss over each whole set (the λ term excluded)."""
        return float(self.net.cost(self.X, self.Y)), float(self.net.cost(self.X_test, self.Y_test))

    def accuracy(self, X, y) -> float:
        return float(np.mean(self.net.predict(X) == (y if y.ndim == 1 else np.argmax(y, axis=1))))

    def _record(self) -> None:
        loss, test_loss = self.losses()
        self.history.append({"step": self.steps, "loss": loss, "test_loss": test_loss})

    def step(self, n: int = 1) -> None:
        """n training steps, one mini-batch each: J and (dW, db) from ``Network.backprop``, then the optimizer."""
        if not 1 <= n <= 1000:
            raise ConfigError(f"steps at a time must be 1 to 1000, got {n}", "for example n=10")
        for _ in range(n):
            idx = self.batch_indices()
            cost, grads = self.net.backprop(self.X[idx], self.Y[idx], l2=self.config.l2)
            if not math.isfinite(cost) or not all(np.all(np.isfinite(g)) for pair in grads for g in pair):
                raise DeltapropError(f"training diverged at step {self.steps + 1}: the cost or a gradient is not "
                                     "finite", "lower the learning rate and press Reset", exit_code=4)
            self.optimizer.step(self.net.params(), [g for pair in grads for g in pair])
            self.steps += 1
            self.pos += len(idx)
            if self.pos >= len(self.X):
                self.epoch += 1
                self.pos = 0
                self.order = self._new_order()
            self._record()

    # -- what the page shows ----------------------------------------------------------------------
    def state(self) -> dict:
        from deltaprop.teach.pictures import network_svg

        last = self.history[-1]
        hist = self.history
        if len(hist) > 600:  # the curve needs no more points than the canvas has pixels
            keep = np.unique(np.linspace(0, len(hist) - 1, 600).astype(int))
            hist = [hist[k] for k in keep]
        return {
            "config": self.config.query(),
            "data": self.data_name, "about": self.about, "classes": self.classes,
            "preset": self.config.preset,
            "sizes": self.net.sizes, "activations": self.net.activations, "loss_name": self.net.loss.name,
            "n_params": self.net.n_params,
            "step": self.steps, "epoch": self.epoch, "batch_size": len(self.batch_indices()),
            "n_train": len(self.X), "n_test": len(self.X_test),
            "loss": last["loss"], "test_loss": last["test_loss"],
            "accuracy": self.accuracy(self.X, self.y), "test_accuracy": self.accuracy(self.X_test, self.y_test),
            "history": hist,
            "network_svg": network_svg(self.net, max_units=12, title="the network now: edges are weights"),
            "two_d": self.net.sizes[0] == 2,
        }

    def boundary(self) -> dict:
        """The network's prediction on a GRID × GRID square around the data (2-D data only), with the points."""
        if self.net.sizes[0] != 2:
            return {"two_d": False}
        both = np.vstack([self.X, self.X_test])
        lo = np.minimum(both.min(axis=0), -1.0) - 0.1
        hi = np.maximum(both.max(axis=0), 1.0) + 0.1
        gx = np.linspace(lo[0], hi[0], GRID)
        gy = np.linspace(hi[1], lo[1], GRID)  # top row first, as an image
        P = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
        A = self.net.predict_proba(P)
        return {"two_d": True, "grid": GRID, "x": [float(lo[0]), float(hi[0])], "y": [float(lo[1]), float(hi[1])],
                "label": np.argmax(A, axis=1).astype(int).tolist(),
                "confidence": np.round(np.max(A, axis=1), 4).tolist(),
                "train": np.round(self.X, 4).tolist(), "train_y": self.y.astype(int).tolist(),
                "test": np.round(self.X_test, 4).tolist(), "test_y": self.y_test.astype(int).tolist(),
                "n_classes": len(self.classes)}

    def backprop(self, notation: str = "bracket") -> dict:
        """The next Step's batch traced stage by stage (forward, cost, output error, backward with dW, db
        and their finite-difference check), each stage with its equations from ``explain``; ``notation``
        'bracket' (deltaprop's rows) or 'columns' (notes 001 and 003: examples in columns, dZ)."""
        from deltaprop.playground.stages import backprop_view

        if notation not in ("bracket", "columns"):
            raise ConfigError(f"unknown notation {notation!r}", "use bracket (rows are examples) or columns "
                              "(notes 001 and 003)")
        idx = self.batch_indices()
        return backprop_view(self.net, self.X[idx], self.Y[idx], self.config.l2, idx, self.steps,
                             shown=SHOWN_EXAMPLES, about=self.about, preset=self.config.preset, notation=notation)
