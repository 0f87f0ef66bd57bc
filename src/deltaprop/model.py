"""The network: an ordered list of Dense layers and the loss that owns the output link.

Forward propagation (rows are examples, A_0 = X):

    Z_l = A_{l−1} W_lᵀ + b_l,    A_l = g_l(Z_l),    l = 1..L

Backpropagation, layers in reverse (the one place 1/m enters is the output error):

    δ_L = (A_L − Y)/m
    dW_l = δ_lᵀ A_{l−1} + (λ/m) W_l,    db_l = Σ_rows δ_l
    δ_{l−1} = (δ_l W_l) ⊙ g'_{l−1}(Z_{l−1})

and the cost J = (1/m) Σ_i loss_i + λ/(2m) Σ_l ‖W_l‖².
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from deltaprop import fast, kernels
from deltaprop.activations import ACTIVATIONS, canonical_name
from deltaprop.errors import ConfigError, InputError
from deltaprop.initializers import default_initializer, initialize, sklearn_uniform
from deltaprop.layers import Dense
from deltaprop.losses import CrossEntropy, Loss, check_pairing, get_loss, l2_cost, loss_for_output
from deltaprop.validation import (
    check_dtype,
    check_nonnegative_float,
    check_rows,
    check_sample_weight,
    check_X,
    is_sparse,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike

    from deltaprop.validation import Rows

__all__ = ["Network"]


def _activation_code(activation) -> int | None:
    """The code of a hidden activation in the compiled step's backward piece (kernels.ACTIVATION_CODES),
    or None when the compiled step does not serve it (a subclass, say, which may compute otherwise)."""
    code = kernels.ACTIVATION_CODES.get(activation.name)
    return code if code is not None and type(activation) is ACTIVATIONS[activation.name] else None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Network:
    """A multilayer perceptron: ``layers[l].W`` (n_l, n_{l−1}), ``layers[l].b`` (n_l,), and a loss.

    Build one with :meth:`from_sizes` (random initial weights) or :meth:`from_weights`.
    ``meta`` is a JSON-able dict saved with the model (classes, input scaling, training summary).
    """

    def __init__(self, layers: list[Dense], loss: str | Loss = "cross_entropy") -> None:
        if not layers:
            raise ConfigError("a network needs at least one layer", "pass sizes such as [64, 32, 10]")
        self.layers = list(layers)
        self.loss: Loss = get_loss(loss)
        check_pairing(self.layers[-1].activation.name, self.loss)
        for prev, layer in zip(self.layers, self.layers[1:]):
            if layer.n_in != prev.n_out:
                raise ConfigError(
                    f"layer shapes do not chain: a layer with {prev.n_out} outputs feeds one with {layer.n_in} inputs",
                    "W_l must have shape (n_l, n_{l-1})",
                )
        for layer in self.layers[:-1]:
            if layer.activation.coupled:
                raise ConfigError(
                    f"{layer.activation.name} is only supported as the output activation",
                    "use relu, tanh, sigmoid, leaky_relu or identity for hidden layers",
                )
        self.meta: dict = {}
        self._delta_out: dict[int, np.ndarray] = {}
        self._step_plan: dict | None = None  # compiled_step's calls for the last batch buffers
        self._grads = None
        self._flat = None  # every W_l and b_l as views of one array (see flat_params)
        self._flat_grads = None
        self._pack()

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_sizes(cls, sizes: Sequence[int], hidden: str | Sequence[str] = "relu", output: str = "softmax",
                   loss: str | Loss | None = None, seed: int | None = 0, dtype: DTypeLike = "float32",
                   init: str | None = None, epsilon: float = 0.12,
                   rng: np.random.Generator | np.random.RandomState | None = None) -> Network:
        """A network with layer sizes ``[n_x, n_1, ..., n_L]``, hidden activation ``hidden`` (a name,
        or a list of one name per hidden layer) and output activation ``output``.

        Weights come from ``init`` (default: He for ReLU layers, Glorot otherwise) through
        ``numpy.random.default_rng(seed)`` (or ``rng``), so the same seed gives the same bits.
        ``init="sklearn"`` draws scikit-learn's MLP initialization instead (W and b uniform in
        ±√(6/(n_in + n_out)), ±√(2/(n_in + n_out)) for sigmoid hidden units), from
        ``numpy.random.RandomState(seed)`` (or ``rng``, a RandomState) in scikit-learn's order: the same
        seed gives the weights ``sklearn.neural_network.MLP*(random_state=seed)`` starts from.
        ``loss`` defaults to the loss that pairs with ``output``.
        """
        sizes = list(sizes) if not isinstance(sizes, (str, bytes)) else None
        if not sizes or len(sizes) < 2:
            raise ConfigError(f"sizes must list at least the input and output sizes, got {sizes!r}",
                              "for example sizes=[64, 32, 10]")
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
                raise ConfigError(f"layer sizes must be whole numbers ≥ 1, got {sizes!r}", "for example sizes=[64, 32, 10]")
        dtype = check_dtype(dtype)
        n_hidden = len(sizes) - 2
        hidden_names = [hidden] * n_hidden if isinstance(hidden, str) or hidden is None else list(hidden)
        if len(hidden_names) != n_hidden:
            raise ConfigError(f"{len(hidden_names)} hidden activations given for {n_hidden} hidden layers",
                              "pass one name, or one per hidden layer")
        names = [canonical_name(h) for h in hidden_names] + [canonical_name(output)]
        loss = get_loss(loss if loss is not None else loss_for_output(names[-1]))
        check_pairing(names[-1], loss)
        if names[-1] == "softmax" and sizes[-1] == 1:
            raise ConfigError("a softmax output of 1 unit is always 1: its cost and every gradient are 0 whatever "
                              "the weights, so it cannot learn",
                              "for two classes use 2 softmax outputs, or 1 sigmoid output with binary cross-entropy "
                              "(output='sigmoid'; the command: --output sigmoid)")
        layers = []
        if isinstance(init, str) and init.lower() == "sklearn":
            rng = rng if rng is not None else np.random.RandomState(seed)
            # scikit-learn's factor 2 applies to every layer when its (single) hidden activation is logistic.
            logistic = n_hidden > 0 and all(n == "sigmoid" for n in names[:-1])
            for n_in, n_out, act in zip(sizes[:-1], sizes[1:], names):
                W, b = sklearn_uniform(int(n_out), int(n_in), rng, logistic, dtype)
                layers.append(Dense(W, b, act))
            return cls(layers, loss)
        rng = rng if rng is not None else np.random.default_rng(seed)
        for n_in, n_out, act in zip(sizes[:-1], sizes[1:], names):
            W, b = initialize(init or default_initializer(act), int(n_out), int(n_in), rng, dtype, epsilon)
            layers.append(Dense(W, b, act))
        return cls(layers, loss)

    @classmethod
    def from_weights(cls, weights: Iterable[tuple[ArrayLike, ArrayLike]], activations: str | Sequence[str],
                     loss: str | Loss | None = None, dtype: DTypeLike | None = None) -> Network:
        """A network from ``[(W_1, b_1), ...]`` with W_l (n_l, n_{l−1}) and one activation name per layer."""
        weights = list(weights)
        activations = [activations] * len(weights) if isinstance(activations, str) else list(activations)
        if len(activations) != len(weights):
            raise ConfigError(f"{len(activations)} activations for {len(weights)} layers", "give one per layer")
        layers = []
        for (W, b), act in zip(weights, activations):
            W = np.array(W, dtype=dtype, copy=True)
            if dtype is None and W.dtype.kind in "biu":
                W = W.astype(np.float64)
            b = np.array(b, dtype=W.dtype, copy=True).reshape(-1)
            check_dtype(W.dtype)
            if W.ndim != 2 or b.shape != (W.shape[0],):
                raise ConfigError(f"weights of shape {W.shape} and bias of shape {b.shape} do not form a layer",
                                  "W must be (n_out, n_in) and b (n_out,)")
            layers.append(Dense(W, b, act))
        names = [layer.activation.name for layer in layers]
        return cls(layers, loss if loss is not None else loss_for_output(names[-1]))

    # -- the architecture record ---------------------------------------------------------------
    def config(self) -> dict:
        """The architecture record ``{"sizes": [n_0, ..., n_L], "activations": [g_1, ..., g_L], "loss",
        "dtype"}``: with the weights [(W_1, b_1), ...] it is the whole network. Model files, checkpoints
        and the estimators' pickles store it; :meth:`from_config` builds the network back."""
        return {"sizes": [int(s) for s in self.sizes], "activations": list(self.activations),
                "loss": self.loss.name, "dtype": self.dtype.name}

    @staticmethod
    def check_config(config: object) -> dict:
        """``config`` (as :meth:`config` returns it) checked field by field, as a fresh dict; a
        ConfigError names the field that is wrong. Used on every record read from a file."""
        if not isinstance(config, dict):
            raise ConfigError(f"the architecture record is {_short(config)}, not a mapping",
                              "pass {'sizes': [...], 'activations': [...], 'loss': ..., 'dtype': ...}")
        sizes, activations = config.get("sizes"), config.get("activations")
        loss, dtype = config.get("loss"), config.get("dtype", "float64")
        if (not isinstance(sizes, list) or len(sizes) < 2
                or not all(type(s) is int and 1 <= s <= 2**31 for s in sizes)):
            raise ConfigError(f"architecture sizes {_short(sizes)} must list at least two whole numbers ≥ 1 "
                              "(and ≤ 2^31)", "the record is damaged")
        if (not isinstance(activations, list) or len(activations) != len(sizes) - 1
                or not all(isinstance(a, str) and len(a) <= 40 for a in activations)):
            raise ConfigError(f"architecture activations {_short(activations)} must name one activation per layer "
                              f"({len(sizes) - 1})", "the record is damaged")
        if not isinstance(loss, str) or len(loss) > 40:
            raise ConfigError(f"architecture loss {_short(loss)} must be a loss name", "the record is damaged")
        if not isinstance(dtype, str) or dtype not in ("float32", "float64"):
            raise ConfigError(f"architecture dtype {_short(dtype)} is not float32 or float64", "the record is damaged")
        # The names and their pairing, checked by building a one-unit-wide stand-in.
        Network.from_weights([(np.zeros((1, 1)), np.zeros(1))] * len(activations), activations, loss)
        return {"sizes": list(sizes), "activations": list(activations), "loss": loss, "dtype": dtype}

    @classmethod
    def from_config(cls, config: dict, weights: Iterable[tuple[ArrayLike, ArrayLike]]) -> Network:
        """The network of the record ``config`` (see :meth:`config`) with ``weights`` [(W_1, b_1), ...],
        W_l (n_l, n_{l−1}) and b_l (n_l,); shapes are checked against the sizes."""
        config = cls.check_config(config)
        sizes, weights = config["sizes"], list(weights)
        if len(weights) != len(sizes) - 1:
            raise ConfigError(f"{len(weights)} (W, b) pairs for the {len(sizes) - 1} layers of sizes {sizes}",
                              "pass one pair per layer")
        for l, (W, b) in enumerate(weights, 1):
            if np.shape(W) != (sizes[l], sizes[l - 1]) or np.shape(b) != (sizes[l],):
                raise ConfigError(f"layer {l}: W {np.shape(W)} and b {np.shape(b)} do not fit sizes {sizes} "
                                  f"(W_{l} is ({sizes[l]}, {sizes[l - 1]}), b_{l} is ({sizes[l]},))",
                                  "the weights belong to another architecture")
        return cls.from_weights(weights, config["activations"], config["loss"], dtype=config["dtype"])

    # -- description -----------------------------------------------------------------------------
    @property
    def sizes(self) -> list[int]:
        return [self.layers[0].n_in] + [layer.n_out for layer in self.layers]

    @property
    def dtype(self) -> np.dtype:
        return self.layers[0].W.dtype

    @property
    def activations(self) -> list[str]:
        return [layer.activation.name for layer in self.layers]

    @property
    def n_params(self) -> int:
        return sum(layer.W.size + layer.b.size for layer in self.layers)

    @property
    def is_classifier(self) -> bool:
        return self.loss.name in ("cross_entropy", "binary_cross_entropy")

    def __repr__(self) -> str:
        hidden = sorted(set(self.activations[:-1]))
        return (f"Network({'-'.join(map(str, self.sizes))}, hidden={','.join(hidden) or '-'}, "
                f"output={self.activations[-1]}, loss={self.loss.name}, {self.dtype.name}, {self.n_params:,} params)")

    # -- parameters --------------------------------------------------------------------------------
    def params(self) -> list[np.ndarray]:
        """The live parameter arrays [W_1, b_1, W_2, b_2, ...]; optimizers update them in place."""
        return [p for layer in self.layers for p in (layer.W, layer.b)]

    # -- one flat buffer: the optimizers update every parameter in a few whole-array passes -----------
    def _pack(self) -> None:
        """Copy every W_l and b_l into one flat array and make the layers' arrays views of it.

        The values do not change. An optimizer then updates all parameters with a few passes over one
        contiguous array instead of a dozen NumPy calls per array (Adam: 12 per array, 2L arrays).
        Layers of mixed dtypes stay unpacked.
        """
        params = self.params()
        dtype = params[0].dtype
        if any(p.dtype != dtype for p in params):
            self._flat = None
            return
        flat = np.empty(sum(p.size for p in params), dtype=dtype)
        offset = 0
        for layer in self.layers:
            for name in ("W", "b"):
                a = getattr(layer, name)
                view = flat[offset:offset + a.size].reshape(a.shape)
                view[...] = a
                setattr(layer, name, view)
                offset += a.size
        self._flat = flat
        self._packed = self.params()  # the views, for _is_packed
        self._flat_grads = None

    def _is_packed(self) -> bool:
        """True while every W_l and b_l is still its view of the flat array (nobody rebound one): the
        same array objects that :meth:`_pack` made (a view cannot move, so identity is enough)."""
        params, packed = self.params(), getattr(self, "_packed", ())
        return self._flat is not None and len(params) == len(packed) and all(p is q for p, q in zip(params, packed))

    def flat_params(self) -> np.ndarray | None:
        """The one array that every W_l and b_l is a view of, in the order of :meth:`params` (packed
        again when a layer's array was replaced); None when the layers' dtypes differ."""
        if not self._is_packed():
            self._pack()
        return self._flat

    def flat_grads(self) -> np.ndarray | None:
        """The one array that the (dW_l, db_l) of :meth:`backward` are views of, in the order of
        :meth:`params`; None before a backward pass or for unpacked layers."""
        return self._flat_grads if self._grads is not None else None

    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Copies of [(W_1, b_1), ...]."""
        return [(layer.W.copy(), layer.b.copy()) for layer in self.layers]

    def set_weights(self, weights: Iterable[tuple[ArrayLike, ArrayLike]]) -> None:
        """Copy [(W_1, b_1), ...] into the live arrays (shapes must match)."""
        weights = list(weights)
        if len(weights) != len(self.layers):
            raise ConfigError(f"{len(weights)} (W, b) pairs for {len(self.layers)} layers", "pass one pair per layer")
        for layer, (W, b) in zip(self.layers, weights):
            if np.shape(W) != layer.W.shape or np.shape(b) != layer.b.shape:
                raise ConfigError(f"shapes {np.shape(W)}, {np.shape(b)} do not match {layer.W.shape}, {layer.b.shape}",
                                  "set weights of the same architecture")
            layer.W[...] = W
            layer.b[...] = b

    def copy(self) -> Network:
        net = Network.from_weights(self.get_weights(), self.activations, self.loss.name)
        net.meta = dict(self.meta)
        return net

    def astype(self, dtype: DTypeLike) -> Network:
        """A copy of the network in another float dtype (float64 for gradient checks, say)."""
        dtype = check_dtype(dtype)
        net = Network.from_weights([(W.astype(dtype), b.astype(dtype)) for W, b in self.get_weights()],
                                   self.activations, self.loss.name)
        net.meta = dict(self.meta)
        return net

    # -- forward -----------------------------------------------------------------------------------
    #: Rows per block of an inference pass (forward without cache, logits, predict): every
    #: intermediate array is at most (infer_rows, width), however many rows X has.
    infer_rows = 2048

    def forward(self, X: Rows, cache: bool = False, check: bool = True) -> np.ndarray:
        """A_L for X (m, n_x): Z_l = A_{l−1} W_lᵀ + b_l, A_l = g_l(Z_l) for l = 1..L.

        Probabilities for softmax and sigmoid outputs, values for identity. With ``cache=True`` every
        layer keeps ``A_prev``, ``Z`` and ``A`` (in buffers reused from batch to batch) for
        :meth:`backward` and :meth:`cached_cost`. ``check=False`` skips the input check (shape, dtype,
        finiteness) for a batch already checked, as the trainer's batches are. Without the cache the
        rows go through in blocks of :attr:`infer_rows` (see :meth:`_infer`).
        """
        if cache:
            A = check_X(X, self.sizes[0], self.dtype) if check else X
            return self._propagate(A, self.layers, cache)
        return self._infer(X, check, logits=False)[1]

    @staticmethod
    def _propagate(A, layers, cache: bool):
        """A through ``layers`` in turn: the one loop of the training forward pass."""
        for layer in layers:
            A = layer.forward(A, cache=cache)
        return A

    def _infer(self, X, check: bool, logits: bool, activate: bool = True):
        """(Z_L or None, A_L or None) for X, without a cache, block by block.

        Each block of :attr:`infer_rows` rows is cast and tested finite (when ``check``) while it is
        in cache, then goes through the layers in two work arrays reused for every block; the output
        layer writes Z_L = A_{L−1} W_Lᵀ + b_L straight into its rows of the result and its activation
        in place (softmax with no further copy). Memory: the result plus two (infer_rows, width)
        arrays, whatever m. ``logits`` keeps Z_L apart from A_L; ``activate=False`` returns Z_L alone.
        """
        n_x = self.sizes[0]
        X = check_X(X, n_x, self.dtype, rows_later=True) if check else X
        sparse = is_sparse(X)
        dtype, layers, m = self.dtype, self.layers, X.shape[0]
        last = layers[-1]
        Z_out = np.empty((m, last.n_out), dtype)
        A_out = (np.empty_like(Z_out) if logits else Z_out) if activate else None
        rows = max(1, min(int(self.infer_rows), m))
        width = max([layer.n_out for layer in layers[:-1]], default=1)
        work = [np.empty(rows * width, dtype) for _ in range(2 if len(layers) > 2 else 1)]
        for start in range(0, m, rows):
            stop = min(start + rows, m)
            A = X[start:stop]
            if check and not sparse:
                A = check_rows(A, dtype, first_row=start)
            elif not sparse and A.dtype != dtype:
                A = A.astype(dtype)
            for i, layer in enumerate(layers[:-1]):
                Z = work[i % len(work)][:(stop - start) * layer.n_out].reshape(stop - start, layer.n_out)
                if isinstance(A, np.ndarray):
                    np.matmul(A, layer.W.T, out=Z)
                else:
                    Z[...] = A @ layer.W.T  # SciPy's sparse × dense product
                Z += layer.b
                A = layer.activation.forward(Z, out=Z)
            Z = Z_out[start:stop]
            if isinstance(A, np.ndarray):
                np.matmul(A, last.W.T, out=Z)
            else:
                Z[...] = A @ last.W.T
            Z += last.b
            if activate:
                last.activation.forward(Z, out=A_out[start:stop])
        return (Z_out if logits or not activate else None), A_out

    def predict(self, X: Rows) -> np.ndarray:
        """Class indices (softmax: argmax; one sigmoid unit: A > ½), 0/1 indicators (several sigmoid
        units), or the regression values (identity; shape (m,) for a single output), in the targets'
        units when the network was trained on standardised targets (``meta["target_scaling"]``).

        X as the network sees it: a model that stores an input scaling (``meta["scaler"]``: trained by
        ``deltaprop train``, or imported from a scikit-learn Pipeline) takes raw inputs through
        ``deltaprop.predict(net, X)`` / ``deltaprop.predict_proba(net, X)``, which apply it.

        For a softmax output the argmax is taken of the logits Z_L: softmax is increasing, so the class
        is the same, without the exponentials."""
        if self.activations[-1] == "softmax":
            return np.argmax(self._infer(X, True, logits=True, activate=False)[0], axis=1)
        return self.decide(self.forward(X))

    def predict_labels(self, X: Rows) -> np.ndarray:
        """The class names of :meth:`predict`'s indices, from ``meta["classes"]`` (an array of str);
        the indices themselves when the network has no class names; values for regression."""
        predicted = self.predict(X)
        names = self.meta.get("classes")
        if not self.is_classifier or not names or np.ndim(predicted) != 1:
            return predicted
        return np.asarray(names)[predicted]

    def predict_proba(self, X: Rows) -> np.ndarray:
        """Class probabilities (m, K): softmax rows; [1 − p, p] for one sigmoid unit; each label's
        probability for several sigmoid units. For classifiers only."""
        return self.probabilities(self.forward(X))

    def decide(self, A: np.ndarray) -> np.ndarray:
        """What :meth:`predict` returns, from output activations A (m, n_L) already computed: the one
        rule that turns outputs (or one-hot / 0-1 targets) into labels. Softmax: argmax; one sigmoid
        unit: A > ½; several sigmoid units: A > ½ per label; identity: the values (scaled back to the
        targets' units when ``meta["target_scaling"]`` holds the mean and std they were standardised with)."""
        out = self.activations[-1]
        if out == "softmax":
            return np.argmax(A, axis=1)
        if out == "sigmoid":
            return (A[:, 0] > 0.5).astype(np.int64) if A.shape[1] == 1 else (A > 0.5).astype(np.int64)
        scaling = self.meta.get("target_scaling")
        if scaling:
            # Trained on standardised targets y' = (y − mean)/std: back to the targets' units.
            A = A * np.asarray(scaling["std"], dtype=A.dtype) + np.asarray(scaling["mean"], dtype=A.dtype)
        return A[:, 0] if A.shape[1] == 1 else A

    def probabilities(self, A: np.ndarray) -> np.ndarray:
        """What :meth:`predict_proba` returns, from output activations A (m, n_L) already computed."""
        if not self.is_classifier:
            raise ConfigError("a regression network has no class probabilities", "use predict(X) for its values")
        if A.shape[1] == 1 and self.activations[-1] == "sigmoid":
            return np.column_stack([1 - A[:, 0], A[:, 0]])
        return A

    # -- cost and gradient -------------------------------------------------------------------------
    def prepare_targets(self, Y: ArrayLike) -> np.ndarray:
        """Y as the float (m, n_L) matrix the loss works with (labels one-hot encoded)."""
        return self.loss.prepare_targets(Y, self.sizes[-1], self.dtype)

    @property
    def grads(self) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """The (dW, db) of the last :meth:`backward`, per layer (None before one ran)."""
        return self._grads

    def _grad_buffers(self):
        """(dW_l, db_l) work arrays, views of one flat array laid out as :meth:`flat_params`."""
        if self._grads is None or self._grads[0][0].dtype != self.dtype:
            params = self.params()
            if all(p.dtype == self.dtype for p in params):
                flat = np.empty(sum(p.size for p in params), dtype=self.dtype)
                views, offset = [], 0
                for p in params:
                    views.append(flat[offset:offset + p.size].reshape(p.shape))
                    offset += p.size
                self._flat_grads = flat
                self._grads = list(zip(views[0::2], views[1::2]))
            else:
                self._flat_grads = None
                self._grads = [(np.empty_like(layer.W), np.empty_like(layer.b)) for layer in self.layers]
        return self._grads

    def _delta_buffer(self, m: int) -> np.ndarray:
        """The reused (m, n_L) work array of δ_L, in the output layer's memory order (fast.narrow_order)."""
        out = self.layers[-1]
        delta = self._delta_out.get(m)
        if delta is None or delta.dtype != self.dtype or delta.shape[1] != out.n_out:
            delta = self._delta_out[m] = np.empty((m, out.n_out), self.dtype, fast.narrow_order(out.n_out))
        return delta

    def backward(self, Y: ArrayLike, l2: float = 0.0, scale: float = 1.0,
                 sample_weight: ArrayLike | None = None,
                 sgd_step: bool = False) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """Backpropagation after ``forward(X, cache=True)``: gradients of ``scale·J`` into reused buffers.

        δ_L = scale·(A_L − Y)/m;  for l = L..1: dW_l = δ_lᵀ A_{l−1} + scale·(λ/m) W_l, db_l = Σ δ_l,
        δ_{l−1} = (δ_l W_l) ⊙ g'(Z_{l−1}).  ``scale`` lets plain SGD fold its step size into δ_L.
        With sample weights s (m,), the cost is J = Σ_i s_i loss_i / Σ_i s_i + λ/(2 Σ_i s_i) Σ ‖W‖²:
        row i of δ_L is scaled by s_i and Σ_i s_i takes the place of m.
        Each layer keeps its ``delta`` for inspection (explain, trace, gradient-flow statistics).
        Y is prepared (:meth:`prepare_targets`); the returned (dW, db) arrays are reused by the next
        call: copy them to keep them.

        ``sgd_step=True`` takes plain SGD's step θ ← θ − scale·g layer by layer inside the pass instead
        (scale = α): W_l ← (1 − α λ/m) W_l − δ_lᵀ A_{l−1}, b_l ← b_l − Σ δ_l, each after δ_l W_l has used the
        old W_l (:meth:`Dense.sgd_backward`). No dW is kept (the grads are not filled); returns None.
        """
        m = Y.shape[0]
        grads = self._grad_buffers()
        out = self.layers[-1]
        delta = self._delta_buffer(m)
        total = m if sample_weight is None else float(sample_weight.sum())
        self.loss.delta(out.A, Y, scale / total, out=delta)
        if sample_weight is not None:
            delta *= sample_weight.reshape(-1, 1)
        l2_over_m = scale * l2 / total
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            layer.delta = delta
            dW, db = grads[i]
            if sgd_step:
                dA_prev = layer.sgd_backward(delta, db, 1.0 - l2_over_m, need_dA_prev=i > 0, scratch=dW)
            else:
                dA_prev = layer.backward(delta, dW, db, l2_over_m, need_dA_prev=i > 0)
            if i > 0:
                below = self.layers[i - 1]
                delta = below.activation.backward(dA_prev, below.Z, below.A)
        return None if sgd_step else grads

    def compiled_step_fits(self) -> bool:
        """True when :meth:`compiled_step` can take this network's steps: hidden layers with relu, sigmoid,
        tanh, identity or leaky_relu (kernels.ACTIVATION_CODES), a softmax cross-entropy output of
        2..``fast.NARROW`` classes (its Z, A and δ column-major), every layer at least 2 wide, one float
        dtype."""
        layers = self.layers
        return (type(self.loss) is CrossEntropy and 2 <= layers[-1].n_out <= fast.NARROW
                and all(_activation_code(layer.activation) is not None for layer in layers[:-1])
                and all(layer.n_in >= 2 and layer.n_out >= 2 and layer.W.dtype == self.dtype for layer in layers)
                and self.dtype in (np.float32, np.float64))

    def compiled_step(self, X: np.ndarray, Y: np.ndarray, scale: float, l2: float = 0.0, sgd_step: bool = True
                      ) -> tuple[float, int] | None:
        """The training step's forward and backward passes on a batch by the compiled pieces of
        :mod:`deltaprop.kernels`: the arithmetic of ``forward(X, cache=True)``, ``cached_cost(Y, l2)`` and
        ``backward(Y, l2, scale, sgd_step=sgd_step)`` to the bit, in about two compiled calls a layer and
        a few NumPy ones (softmax's exponentials, the cost's logarithms, tanh and sigmoid) instead of about
        a dozen calls a layer.

        Z_l = A_{l−1} W_lᵀ + b_l, A_l = g_l(Z_l), A_L = softmax(Z_L); δ_L = scale·(A_L − Y)/m; then
        for l = L..1, with δ_l W_l taken first (the old W_l): plain SGD's step (``sgd_step``, the step size
        in ``scale``) W_l ← (1 − scale·λ/m) W_l − δ_lᵀ A_{l−1}, b_l ← b_l − Σ_rows δ_l; or the gradients
        dW_l = δ_lᵀ A_{l−1} + scale·(λ/m) W_l, db_l = Σ_rows δ_l into :attr:`grads` for an optimizer; and
        δ_{l−1} = (δ_l W_l) ⊙ g'_{l−1}(Z_{l−1}).

        Returns (J of the batch before the step, rows whose target class holds the row maximum of A_L),
        or None, with nothing done, when the pieces are not loaded (:func:`deltaprop.kernels.load_step`)
        or the batch does not fit: :meth:`compiled_step_fits`, at least 2 rows, X C-contiguous and Y
        column-major (as the trainer gathers them) in the network's dtype, every W_l and b_l contiguous
        and writeable. The calls' arguments are kept from step to step while X, Y, every W_l and b_l and
        every activation are the same objects (the trainer's reused batch buffers).
        """
        plan = self._step_plan
        if plan is None or plan["X"] is not X or plan["Y"] is not Y or any(
                a is not b for a, b in zip(plan["params"], self.params())) or any(
                a is not layer.activation for a, layer in zip(plan["activations"], self.layers)):
            plan = self._step_plan = self._plan_step(X, Y)
            if plan is None:
                return None
        pieces, layers, A_L, a_max, log_a_max = plan["pieces"], self.layers, plan["A_L"], plan["a_max"], plan["log"]
        linear, backward = pieces["linear"], pieces["backward"]
        for layer, (args, activate, cache) in zip(layers, plan["forward"]):
            linear(*args)
            if activate is not None:  # tanh, sigmoid, identity: NumPy's own (its tanh is not libm's)
                activate(cache[1], out=cache[2])
            layer.A_prev, layer.Z, layer.A = cache
        pieces["shift"](*plan["shift"])
        np.exp(A_L, out=A_L)
        right = pieces["normalize"](*plan["normalize"])
        np.log(a_max, out=log_a_max)
        m, t = X.shape[0], self.dtype.type
        cost = float(pieces["cost_delta"](*plan["cost_delta"], t(scale / m))) / m
        if l2:
            cost += l2_cost([layer.W for layer in layers], l2, m)
        l2_over_m = scale * l2 / m
        c, add_l2 = (t(1.0 - l2_over_m), False) if sgd_step else (t(l2_over_m), bool(l2_over_m))
        for layer, (args, numpy_db, flags, delta) in zip(reversed(layers), plan["backward"]):
            if numpy_db is not None:  # a column-major δ: its db summed as NumPy sums it (pairwise)
                np.add.reduce(numpy_db[0], axis=0, out=numpy_db[1])
            backward(*args, c, *flags[:2], sgd_step, add_l2, *flags[2:])
            layer.delta = delta
        return cost, int(right)

    def _plan_step(self, X, Y) -> dict | None:
        """The arguments of each compiled call of :meth:`compiled_step` for batches in X and Y (their
        buffers and the layers' arrays), or None when the step does not fit."""
        got = kernels.step_pieces(self.dtype)
        m, layers = X.shape[0], self.layers
        out = layers[-1]
        if got is None or m < 2 or not self.compiled_step_fits() or not (
                X.dtype == self.dtype and X.flags.c_contiguous and X.shape[1] == self.sizes[0]
                and Y.dtype == self.dtype and Y.flags.f_contiguous and Y.shape == (m, out.n_out)):
            return None
        params = self.params()
        if not all(p.flags.c_contiguous and p.flags.writeable for p in params):
            return None
        pieces, gemm, dot = got

        def c_view(a):  # (the array as the pieces take it: C-contiguous, or its transpose; transposed?)
            return (a, False) if a.flags.c_contiguous else (a.T, True)

        plan: dict = {"X": X, "Y": Y, "params": params, "activations": [layer.activation for layer in layers],
                      "pieces": pieces, "forward": [], "backward": []}
        A, inputs, caches = X, [], []
        for layer in layers:
            Z, A_next, _, _ = layer._buffers_for(m)
            relu = _activation_code(layer.activation) == 0
            activate = None if relu or layer is out else layer.activation.forward
            plan["forward"].append(((gemm, *c_view(A), layer.W, layer.b, *c_view(Z), relu, c_view(A_next)[0]),
                                    activate, (A, Z, A_next)))
            inputs.append(A)
            caches.append((Z, A_next))
            A = A_next
        Z, A_L = caches[-1]
        scratch = np.empty((6, m), self.dtype)
        row_max, row_sum, a_max, log_a_max, lse, y_sum = scratch
        delta = self._delta_buffer(m)
        grads = self._grad_buffers()
        plan.update(A_L=A_L, a_max=a_max, log=log_a_max, shift=(Z.T, A_L.T, row_max),
                    normalize=(A_L.T, Y.T, row_sum, a_max),
                    cost_delta=(dot, Z.T, A_L.T, Y.T, row_max, log_a_max, lse, y_sum, delta.T))
        unused = scratch[:1, :1]
        for i in range(len(layers) - 1, -1, -1):
            layer = layers[i]
            dW, db = grads[i]
            if i > 0:
                dA, (Z_below, A_below) = layer._buffers_for(m)[2], caches[i - 1]
                below = layers[i - 1].activation
                code, slope = _activation_code(below), getattr(below, "slope", 0.0)
            else:
                dA, Z_below, A_below, slope = unused, unused, unused, 0.0
                code = kernels.ACTIVATION_CODES["identity"]  # no layer below: no derivative to apply
            Dc, d_t = c_view(delta)
            Zb, b_t = c_view(Z_below)
            args = (gemm, Dc, d_t, layer.W, *c_view(inputs[i]), dA, dW, db, layer.b, Zb, c_view(A_below)[0], b_t)
            plan["backward"].append((args, (delta, db) if d_t else None,
                                     (not d_t, i > 0, code, self.dtype.type(slope)), delta))
            delta = dA
        return plan

    def cached_cost(self, Y: ArrayLike, l2: float = 0.0, sample_weight: ArrayLike | None = None) -> float:
        """J for the batch whose forward pass is cached: (1/m) Σ loss_i + λ/(2m) Σ ‖W‖²
        (with sample weights s: Σ s_i loss_i / Σ s_i + λ/(2 Σ s_i) Σ ‖W‖²)."""
        out = self.layers[-1]
        if sample_weight is None:
            m = Y.shape[0]
            data = self.loss.value(out.Z, out.A, Y) / m
        else:
            m = float(sample_weight.sum())
            data = self.loss.weighted_value(out.Z, out.A, Y, sample_weight) / m
        return data + l2_cost([layer.W for layer in self.layers], l2, m)

    def _checked_batch(self, X, Y, l2, sample_weight=None):
        """(X, Y, λ, s) checked and converted for this network: X (m, n_x) finite, Y (m, n_L)
        targets, s (m,) sample weights or None."""
        l2 = check_nonnegative_float(l2, "l2")
        X = check_X(X, self.sizes[0], self.dtype)
        Y = self.prepare_targets(Y)
        if Y.shape[0] != X.shape[0]:
            raise InputError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}", "pass one target per example")
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, X.shape[0], self.dtype)
        return X, Y, l2, sample_weight

    def backprop(self, X: Rows, Y: ArrayLike, l2: float = 0.0, sample_weight: ArrayLike | None = None
                 ) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
        """(J, grads) for the batch (X, Y), with grads[l] = (dW_l, db_l) of the shapes of W_l, b_l.

        Y: integer labels (m,) or one-hot (m, K) for cross_entropy; 0/1 (m, K) for
        binary_cross_entropy; values for squared_error (the network's own loss, ``net.loss``).
        ``sample_weight`` (m,) weighs the rows:
        J = Σ s_i loss_i / Σ s_i + λ/(2 Σ s_i) Σ ‖W‖². The arrays returned are fresh copies.
        """
        X, Y, l2, sw = self._checked_batch(X, Y, l2, sample_weight)
        self.forward(X, cache=True, check=False)
        cost = self.cached_cost(Y, l2, sw)
        grads = self.backward(Y, l2, sample_weight=sw)
        return cost, [(dW.copy(), db.copy()) for dW, db in grads]

    def logits(self, X: Rows) -> tuple[np.ndarray, np.ndarray]:
        """(Z_L, A_L) for checked X, without caching: the output's pre-activation and activation."""
        return self._infer(X, check=False, logits=True)

    def cost(self, X: Rows, Y: ArrayLike, l2: float = 0.0) -> float:
        """J = (1/m) Σ_i loss_i + λ/(2m) Σ_l ‖W_l‖², without the gradient."""
        X, Y, l2, _ = self._checked_batch(X, Y, l2)
        Z, A = self.logits(X)
        m = X.shape[0]
        return self.loss.value(Z, A, Y) / m + l2_cost([layer.W for layer in self.layers], l2, m)
