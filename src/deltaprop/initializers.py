"""Initial weights, W of shape (n_out, n_in), drawn from an explicit ``numpy.random.Generator``.

- ``glorot`` (Xavier, uniform): W ~ U[−r, r], r = √(6 / (n_in + n_out)); the default for sigmoid
  and tanh, whose slope is largest near 0.
- ``he`` (normal): W ~ N(0, 2 / n_in); the default for ReLU, which zeroes half its inputs.
- ``uniform``: the notes' small symmetric range W ~ U[−ε, ε] (note 000 suggests ε ≈ 0.12).

Biases start at zero: random weights alone break the symmetry between units.

``sklearn`` (:func:`sklearn_uniform`) is scikit-learn's MLP initialization, draw for draw: W and b both
~ U[−r, r] with r = √(f/(n_in + n_out)), f = 6 (f = 2 when the hidden units are logistic), drawn from
a ``numpy.random.RandomState`` in scikit-learn's order and layout (Wᵀ of shape (n_in, n_out), then b),
so that one seed gives scikit-learn's initial weights exactly.
"""

from __future__ import annotations

import numpy as np

from deltaprop.errors import ConfigError, unknown_name

__all__ = ["INITIALIZERS", "initialize", "default_initializer", "sklearn_uniform"]


def glorot(n_out: int, n_in: int, rng: np.random.Generator) -> np.ndarray:
    """W ~ U[−r, r] with r = √(6/(n_in + n_out))."""
    r = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-r, r, size=(n_out, n_in))


def he(n_out: int, n_in: int, rng: np.random.Generator) -> np.ndarray:
    """W ~ N(0, 2/n_in)."""
    return rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_out, n_in))


def uniform(n_out: int, n_in: int, rng: np.random.Generator, epsilon: float = 0.12) -> np.ndarray:
    """W ~ U[−ε, ε], the notes' symmetry-breaking initialization."""
    return rng.uniform(-epsilon, epsilon, size=(n_out, n_in))


INITIALIZERS = {"glorot": glorot, "xavier": glorot, "he": he, "uniform": uniform}


def default_initializer(activation_name: str) -> str:
    """He for the ReLU family, Glorot otherwise."""
    return "he" if activation_name in ("relu", "leaky_relu") else "glorot"


def initialize(name: str, n_out: int, n_in: int, rng: np.random.Generator, dtype="float32", epsilon: float = 0.12):
    """(W, b): W (n_out, n_in) drawn by the named scheme in float64 then cast, b (n_out,) zeros.

    Drawing in float64 and casting makes float32 and float64 networks from the same seed agree to
    float32 rounding.
    """
    key = str(name).lower()
    if key not in INITIALIZERS:
        raise unknown_name("initializer", name, list(INITIALIZERS))
    if not (np.isfinite(epsilon) and epsilon > 0):
        raise ConfigError(f"epsilon must be a positive number, got {epsilon!r}", "try epsilon=0.12")
    draw = INITIALIZERS[key]
    W = (draw(n_out, n_in, rng, epsilon) if draw is uniform else draw(n_out, n_in, rng)).astype(dtype)
    b = np.zeros(n_out, dtype=dtype)
    return W, b


def sklearn_uniform(n_out: int, n_in: int, random_state: np.random.RandomState, logistic: bool = False,
                    dtype="float64"):
    """(W, b) as scikit-learn's MLP draws them: r = √(f/(n_in + n_out)) with f = 2 for logistic hidden
    units and 6 otherwise; Wᵀ ~ U[−r, r] of shape (n_in, n_out) first, then b ~ U[−r, r] (n_out,), both
    from ``random_state`` (a RandomState: its uniform stream is what scikit-learn's seeds mean), in
    float64 then cast. W is returned (n_out, n_in), C-contiguous."""
    if not isinstance(random_state, np.random.RandomState):
        raise ConfigError(f"scikit-learn's initialization draws from a numpy.random.RandomState, got {type(random_state).__name__}",
                          "pass seed=<int> or rng=numpy.random.RandomState(<int>)")
    r = np.sqrt((2.0 if logistic else 6.0) / (n_in + n_out))
    W_T = random_state.uniform(-r, r, (n_in, n_out))
    b = random_state.uniform(-r, r, n_out)
    return np.ascontiguousarray(W_T.T, dtype=dtype), b.astype(dtype)
