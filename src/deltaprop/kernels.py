"""Fused update loops for Adam and momentum, compiled by Numba when it is installed (``pip install
'deltaprop[fast]'``); without Numba the optimizers make their NumPy passes and nothing else changes.

NumPy makes one pass over memory per operation, so Adam's update is seven passes over every parameter
(:mod:`deltaprop.optim`, with :func:`deltaprop.fast.axpby`). One compiled loop reads g, m, v and θ once and
writes m, v and θ once, element by element:

    m ← β₁m + (1 − β₁)g;   v ← β₂v + (1 − β₂)g²;   θ ← θ − α_t · m/(√v + ε)        (Adam)
    v ← μv − αg;   θ ← θ + v   or, Nesterov,   θ ← θ − αg + μv                   (momentum)

Each element gets the IEEE operations of the NumPy passes in their order, every product and sum
rounded on its own (no fast-math, so no fused multiply-adds, and the constants cast to the array's
dtype as NumPy casts them), so the weights are the same to the bit with and without Numba
(tests/test_kernels.py). On the Fashion-MNIST network (235,146 float32 parameters) Adam's update took
86 µs against 362 µs for NumPy's twelve passes, hot in cache (bench/RESULTS.md has the epoch figures).

Loading costs a few tenths of a second once per process (importing Numba, then one loop from Numba's
cache, or compiled the first time on a machine), so the trainer loads them only for runs whose updates
are long enough to repay it (:func:`worth_loading`). Set ``DELTAPROP_NO_JIT=1`` to never
use them.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

__all__ = ["available", "load", "loaded", "worth_loading", "adam", "momentum", "LOAD_AT", "status"]

#: Updates of at least this many parameter-steps (parameters × steps of a run) load the kernels: at
#: ~1.2 ns saved per parameter and step in a training, about what the loading costs.
LOAD_AT = 3e8

_STATE: dict = {}


def available() -> bool:
    """True when Numba is installed and not switched off (``DELTAPROP_NO_JIT``); imports nothing."""
    if os.environ.get("DELTAPROP_NO_JIT"):
        return False
    return "error" not in _STATE and importlib.util.find_spec("numba") is not None


def loaded() -> bool:
    """True once the kernels are compiled or loaded in this process."""
    return "adam" in _STATE


def status() -> str:
    """One line for reports: whether the kernels are in use, and why not."""
    if loaded():
        return f"compiled update loops in use (Numba {_STATE['version']})"
    if "error" in _STATE:
        return f"Numba failed to compile the update loops ({_STATE['error']}); NumPy passes used"
    if os.environ.get("DELTAPROP_NO_JIT"):
        return "DELTAPROP_NO_JIT is set: NumPy passes"
    if importlib.util.find_spec("numba") is None:
        return "NumPy passes (pip install 'deltaprop[fast]' for compiled update loops)"
    return "NumPy passes (Numba installed; loaded for longer runs)"


def worth_loading(param_steps: float) -> bool:
    """True when a run of ``param_steps`` parameter updates (parameters × steps) should use the
    kernels: they are loaded already, or the run is long enough to repay loading them."""
    return loaded() or (param_steps >= LOAD_AT and available())


def load(kind: str = "adam", dtype=np.float32) -> bool:
    """Import Numba and compile (or load from its cache) the update loop of ``kind`` (adam, momentum,
    nesterov) for ``dtype``; True when the loops can be used. A failure is kept in :func:`status` and the
    NumPy passes are used."""
    if not available() and not loaded():
        return False
    try:
        try:
            _prepare(kind, dtype, cache=True)
        except Exception:  # no writable place for Numba's cache (a read-only install): compile each time
            if not loaded() or _STATE.get("cache") is False:
                raise
            _forget()
            _prepare(kind, dtype, cache=False)
    except Exception as exc:  # a broken Numba install: the NumPy passes give the same numbers
        _forget()
        _STATE["error"] = f"{type(exc).__name__}: {exc}"[:200]
        return False
    return True


def _forget() -> None:
    """Drop the compiled loops (loaded() is False again)."""
    for key in _LOOPS:
        _STATE.pop(key, None)


def _prepare(kind, dtype, cache: bool) -> None:
    """Build the dispatchers once, then compile (or load from the cache) ``kind`` for ``dtype`` now,
    not inside a training step."""
    if not loaded():
        import numba

        jit = numba.njit(cache=cache, nogil=True, error_model="numpy", boundscheck=False)
        _STATE.update({key: jit(loop) for key, loop in _LOOPS.items()}, version=numba.__version__, cache=cache)
    a, c = np.zeros(1, dtype), np.dtype(dtype).type(0.5)
    if kind == "adam":
        _STATE["adam"](a, a.copy(), a.copy(), a.copy(), c, c, c, c, c, c)
    else:
        _STATE["nesterov" if kind == "nesterov" else "momentum"](a, a.copy(), a.copy(), c, c)


def _adam_loop(p, g, m, v, b1, c1, b2, c2, eps, lr):
    for i in range(p.size):
        gi = g[i]
        mi = m[i] * b1 + gi * c1
        vi = v[i] * b2 + (gi * gi) * c2
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - (mi / (np.sqrt(vi) + eps)) * lr


def _momentum_loop(p, g, v, mu, lr):
    for i in range(p.size):
        vi = v[i] * mu - g[i] * lr
        v[i] = vi
        p[i] = p[i] + vi


def _nesterov_loop(p, g, v, mu, lr):
    for i in range(p.size):
        vi = v[i] * mu - g[i] * lr
        v[i] = vi
        p[i] = (p[i] - g[i] * lr) + vi * mu


#: The compiled loops by optimizer kind (loaded() means the first one is there).
_LOOPS = {"adam": _adam_loop, "momentum": _momentum_loop, "nesterov": _nesterov_loop}


def _flat(arrays):
    """The arrays as 1-D views when all are contiguous, writeable, of one float dtype and size; else None."""
    first = arrays[0]
    if first.dtype not in (np.float32, np.float64):
        return None
    for a in arrays:
        if not isinstance(a, np.ndarray) or a.dtype != first.dtype or a.size != first.size \
                or not a.flags.c_contiguous:
            return None
    if not all(a.flags.writeable for a in arrays):
        return None
    return [a.reshape(-1) for a in arrays]


def adam(p, g, m, v, b1: float, b2: float, eps: float, lr_t: float) -> bool:
    """Adam's update of θ = p, m and v in place by the compiled loop; False (nothing done) when the
    kernels are not loaded or the arrays do not suit them."""
    kernel = _STATE.get("adam")
    flat = None if kernel is None else _flat((p, g, m, v))
    if flat is None:
        return False
    t = p.dtype.type  # constants rounded to the array's dtype, as NumPy rounds a Python float
    kernel(*flat, t(b1), t(1 - b1), t(b2), t(1 - b2), t(eps), t(lr_t))
    return True


def momentum(p, g, v, mu: float, lr: float, nesterov: bool) -> bool:
    """Momentum's (or Nesterov's) update of θ = p and v in place by the compiled loop; False when the
    kernels are not loaded or the arrays do not suit them."""
    kernel = _STATE.get("nesterov" if nesterov else "momentum")
    flat = None if kernel is None else _flat((p, g, v))
    if flat is None:
        return False
    t = p.dtype.type
    kernel(*flat, t(mu), t(lr))
    return True
