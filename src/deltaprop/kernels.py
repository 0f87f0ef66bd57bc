"""Compiled loops, by Numba when it is installed (``pip install 'deltaprop[fast]'``): fused update loops
for Adam and momentum, and the training step's forward and backward passes in a few compiled calls.
Without Numba the engine makes its NumPy passes and nothing else changes: the weights are the same to
the bit either way (tests/test_kernels.py).

**The update loops.** NumPy makes one pass over memory per operation, so Adam's update is seven passes
over every parameter (:mod:`deltaprop.optim`, with :func:`deltaprop.fast.axpby`). One compiled loop reads
g, m, v and θ once and writes m, v and θ once, element by element:

    m ← β₁m + (1 − β₁)g;   v ← β₂v + (1 − β₂)g²;   θ ← θ − α_t · m/(√v + ε)        (Adam)
    v ← μv − αg;   θ ← θ + v   or, Nesterov,   θ ← θ − αg + μv                   (momentum)

On the Fashion-MNIST network (235,146 float32 parameters) Adam's update took 86 µs against 362 µs for
NumPy's twelve passes, hot in cache (bench/RESULTS.md has the epoch figures).

**The compiled step** (:func:`load_step`, used by ``Network.compiled_step``). A step of a ReLU network
with a softmax output makes about forty NumPy and BLAS calls from Python, each costing microseconds
however small its array. Five compiled pieces make the same cblas calls into NumPy's own OpenBLAS (by
the addresses :func:`deltaprop.fast.blas_address` gives, passed in at run time, so Numba's cache holds
nothing specific to one process) with the element-wise work between them: Z + b and ReLU, softmax's
shift and normalisation, the cost's sums, δ_L, db, the ReLU derivative, plain SGD's update of b.

Each element gets the IEEE operations of the NumPy passes in their order, every product and sum
rounded on its own (no fast-math, so no fused multiply-adds, and the constants cast to the array's
dtype as NumPy casts them); exponentials and logarithms stay NumPy's own (its vectorized exp and log
are not libm's), and so does the sum of a column-major δ_L (NumPy's pairwise order).

Loading costs about half a second once per process (importing Numba, then the loops from Numba's
cache, or compiled the first time on a machine), so the trainer loads them only for runs long enough
to repay it (:func:`worth_loading`, :func:`worth_loading_step`). Set ``DELTAPROP_NO_JIT=1`` to never
use them.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

from deltaprop import fast

__all__ = ["available", "load", "loaded", "worth_loading", "adam", "momentum", "LOAD_AT", "status", "load_step",
           "step_pieces", "worth_loading_step", "STEP_LOAD_AT"]

#: Updates of at least this many parameter-steps (parameters × steps of a run) load the kernels: at
#: ~1.2 ns saved per parameter and step in a training, about what the loading costs.
LOAD_AT = 3e8

#: Runs of at least this many steps load the compiled training step (:func:`load_step`).
STEP_LOAD_AT = 3000

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
    parts = (["compiled update loops"] if loaded() else []) + (["compiled training step"] if _STATE.get("step_dtypes") else [])
    if parts:
        return f"{' and '.join(parts)} in use (Numba {_STATE['version']})"
    if "error" in _STATE:
        return f"Numba failed to compile the update loops ({_STATE['error']}); NumPy passes used"
    if os.environ.get("DELTAPROP_NO_JIT"):
        return "DELTAPROP_NO_JIT is set: NumPy passes"
    if importlib.util.find_spec("numba") is None:
        return "NumPy passes (pip install 'deltaprop[fast]' for a compiled training step and update loops)"
    return "NumPy passes (Numba installed; loaded for longer runs)"


def worth_loading(param_steps: float) -> bool:
    """True when a run of ``param_steps`` parameter updates (parameters × steps) should use the
    kernels: they are loaded already, or the run is long enough to repay loading them."""
    return loaded() or (param_steps >= LOAD_AT and available())


def worth_loading_step(steps: float) -> bool:
    """True when a run of ``steps`` steps should take them by the compiled pieces (:func:`load_step`):
    loaded already, or the run long enough to repay loading them."""
    return "step" in _STATE or (steps >= STEP_LOAD_AT and available())


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


# -- the training step in a few compiled pieces --------------------------------------------------------
# The training step of a ReLU network with a softmax output makes about forty NumPy and BLAS calls from
# Python, each costing a few microseconds however small its array: ~190 µs a step of overhead alone, a
# sixth of the Fashion-MNIST step. These pieces make the same calls to NumPy's own OpenBLAS (its
# function addresses, passed in: nothing machine-specific is compiled in, so Numba's cache stays valid)
# and the same IEEE operations element by element, so the weights are the bits of the NumPy path. The
# exponentials and logarithms stay NumPy's (its vectorized exp and log are not libm's), so a step is
# a few compiled calls and two NumPy calls (Network.compiled_step); plain SGD's update is written by
# the dW product itself (as fast.sub_product), other optimizers get the gradients.

_ROW, _NO, _T = 101, 111, 112  # CblasRowMajor, CblasNoTrans, CblasTrans
_gemm_at = _dot_at = None  # the intrinsics calling cblas ?gemm and ?dot by address (_intrinsics)


# Every array reaches a piece C-contiguous: a column-major one (a narrow layer's Z, A and δ, see
# fast.narrow_order) as its transpose, with a flag saying so, so that each piece compiles once per dtype.
# A C-contiguous operand goes to cblas as it is (CblasNoTrans, its row length as leading dimension), a
# column-major one transposed (CblasTrans, its column length): the calls np.matmul and fast.sub_product make.


def _linear(gemm, Ap, ap_t, W, b, Zc, z_t, relu, Ac):
    """Z = A_prev Wᵀ + b, and A = max(Z, 0) when ``relu`` (NaN stays NaN, as np.maximum keeps it). A_prev
    is ``Ap`` (or Apᵀ when ``ap_t``); Z and A are ``Zc``, ``Ac`` (or their transposes when ``z_t``: then
    Zᵀ = W A_prevᵀ is computed, as Dense.forward does for a column-major Z)."""
    n, k = W.shape
    m = Zc.shape[1] if z_t else Zc.shape[0]
    one, zero = W.dtype.type(1), W.dtype.type(0)
    if z_t:  # Zᵀ (n, m) = W (n, k) · A_prevᵀ (k, m)
        _gemm_at(gemm, np.int32(_ROW), np.int32(_NO), np.int32(_NO if ap_t else _T), np.int64(n), np.int64(m),
                 np.int64(k), one, W.ctypes.data, np.int64(k), Ap.ctypes.data, np.int64(m if ap_t else k), zero,
                 Zc.ctypes.data, np.int64(m))
        for j in range(n):
            bj = b[j]
            for i in range(m):
                z = Zc[j, i] + bj
                Zc[j, i] = z
                if relu:
                    Ac[j, i] = zero if z <= 0 else z
    else:  # Z (m, n) = A_prev (m, k) · Wᵀ (k, n)
        _gemm_at(gemm, np.int32(_ROW), np.int32(_T if ap_t else _NO), np.int32(_T), np.int64(m), np.int64(n),
                 np.int64(k), one, Ap.ctypes.data, np.int64(m if ap_t else k), W.ctypes.data, np.int64(k), zero,
                 Zc.ctypes.data, np.int64(n))
        for i in range(m):
            for j in range(n):
                z = Zc[i, j] + b[j]
                Zc[i, j] = z
                if relu:
                    Ac[i, j] = zero if z <= 0 else z


def _column_max(XT, out):
    """out = the maximum of each row of X (``XT`` is its transpose), as np.maximum.reduce keeps a NaN."""
    n, m = XT.shape
    for i in range(m):
        out[i] = XT[0, i]
    for j in range(1, n):
        for i in range(m):
            x, o = XT[j, i], out[i]
            out[i] = o if (o != o or not (x > o or x != x)) else x


def _shift(ZT, AT, c):
    """Softmax's first pass on the output layer's Z (column-major: ``ZT`` and ``AT`` are its transposes):
    c = max over each row of Z, A = Z − c (exponentiated next by NumPy)."""
    n, m = ZT.shape
    _column_max(ZT, c)
    for j in range(n):
        for i in range(m):
            AT[j, i] = ZT[j, i] - c[i]


def _normalize(AT, YT, s, amax):
    """A /= Σ_k A (softmax's last pass); amax = max over each row of A; returns how many rows have
    their target class (the first largest target) at that maximum: the batch's right answers."""
    n, m = AT.shape
    for i in range(m):
        s[i] = AT[0, i]
    for j in range(1, n):
        for i in range(m):
            s[i] = s[i] + AT[j, i]
    for j in range(n):
        for i in range(m):
            AT[j, i] = AT[j, i] / s[i]
    _column_max(AT, amax)
    right = 0
    for i in range(m):
        best, label = YT[0, i], 0
        for j in range(1, n):
            if YT[j, i] > best:
                best, label = YT[j, i], j
        if AT[label, i] >= amax[i]:
            right += 1
    return right


def _cost_delta(dot, ZT, AT, YT, c, log_amax, lse, ysum, DT, scale):
    """Cross-entropy Σ_i [lse_i Σ_k y_ik − Σ_k y_ik z_ik] with lse = c − log max_k a_k (as
    CrossEntropy.value), its two sums by cblas ?dot as np.vdot makes them; and δ_L = (A − Y)·scale."""
    n, m = AT.shape
    for i in range(m):
        lse[i] = c[i] - log_amax[i]
        ysum[i] = YT[0, i]
    for j in range(1, n):
        for i in range(m):
            ysum[i] = ysum[i] + YT[j, i]
    first = _dot_at(dot, np.int64(m), lse.ctypes.data, np.int64(1), ysum.ctypes.data, np.int64(1), scale)
    second = _dot_at(dot, np.int64(m * n), YT.ctypes.data, np.int64(1), ZT.ctypes.data, np.int64(1), scale)
    for j in range(n):
        for i in range(m):
            DT[j, i] = (AT[j, i] - YT[j, i]) * scale
    return first - second


#: Hidden activations the compiled step serves, by the code its backward piece takes: each
#: derivative as the activation's own ``backward`` computes it.
ACTIVATION_CODES = {"relu": 0, "sigmoid": 1, "tanh": 2, "identity": 3, "leaky_relu": 4}


def _backward(gemm, Dc, d_t, W, Ap, ap_t, dA, dW, db, b, Zb, Ab, b_t, c, sum_db, need_dA, step, add_l2, kind,
              slope):
    """One layer of the backward pass: dA = δ W (with the W before any step), then

    - ``step`` (plain SGD, the step size in δ): W ← cW − δᵀA_prev (c = 1 − αλ/m), b ← b − db;
    - else the gradients: dW = δᵀA_prev (+ c·W when ``add_l2``, c = λ/m), for the optimizer;

    db = Σ_rows δ when ``sum_db`` (a row-major δ; a column-major one's is summed by NumPy before), and δ
    of the layer below = dA ⊙ g'(Z_below) by ``kind`` (ACTIVATION_CODES): [Z > 0]; A(1 − A) as
    (dA·A) − (dA·A)·A; 1 − A² as dA − (dA·A)·A; 1; 1 or ``slope``. δ is ``Dc`` (or Dcᵀ when ``d_t``),
    A_prev ``Ap`` (or Apᵀ), Z and A of the layer below ``Zb``, ``Ab`` (or their transposes when ``b_t``);
    dA, dW, W are row-major."""
    if d_t:
        n, m = Dc.shape
    else:
        m, n = Dc.shape
    k = W.shape[1]
    one, zero = W.dtype.type(1), W.dtype.type(0)
    d_lead = m if d_t else n
    a_lead = m if ap_t else k
    if need_dA:  # dA (m, k) = δ (m, n) · W (n, k)
        _gemm_at(gemm, np.int32(_ROW), np.int32(_T if d_t else _NO), np.int32(_NO), np.int64(m), np.int64(k),
                 np.int64(n), one, Dc.ctypes.data, np.int64(d_lead), W.ctypes.data, np.int64(k), zero,
                 dA.ctypes.data, np.int64(k))
    # W or dW (n, k) = δᵀ (n, m) · A_prev (m, k)
    ta, tb = np.int32(_NO if d_t else _T), np.int32(_T if ap_t else _NO)
    if step:
        _gemm_at(gemm, np.int32(_ROW), ta, tb, np.int64(n), np.int64(k), np.int64(m), -one, Dc.ctypes.data,
                 np.int64(d_lead), Ap.ctypes.data, np.int64(a_lead), c, W.ctypes.data, np.int64(k))
    else:
        _gemm_at(gemm, np.int32(_ROW), ta, tb, np.int64(n), np.int64(k), np.int64(m), one, Dc.ctypes.data,
                 np.int64(d_lead), Ap.ctypes.data, np.int64(a_lead), zero, dW.ctypes.data, np.int64(k))
        if add_l2:
            for i in range(n):
                for j in range(k):
                    dW[i, j] = dW[i, j] + c * W[i, j]
    if sum_db:
        for j in range(n):
            db[j] = Dc[0, j]
        for i in range(1, m):
            for j in range(n):
                db[j] = db[j] + Dc[i, j]
    if step:
        for j in range(n):
            b[j] = b[j] - db[j]
    if need_dA and kind != 3:
        for i in range(m):
            for j in range(k):
                d = dA[i, j]
                if kind == 0:
                    z = Zb[j, i] if b_t else Zb[i, j]
                    d = d * (one if z > 0 else zero)
                elif kind == 4:
                    z = Zb[j, i] if b_t else Zb[i, j]
                    d = d * (one if z > 0 else slope)
                else:
                    a = Ab[j, i] if b_t else Ab[i, j]
                    t = d * a
                    d = t - t * a if kind == 1 else d - t * a
                dA[i, j] = d


#: Compiled helpers the pieces call (compiled first, under these module names).
_HELPERS = {"_column_max": _column_max}

#: The compiled pieces of the training step (Network.compiled_step).
_STEP = {"linear": _linear, "shift": _shift, "normalize": _normalize, "cost_delta": _cost_delta,
         "backward": _backward}


def load_step(dtype=np.float32) -> bool:
    """Import Numba and compile (or load from its cache) the pieces of the training step for ``dtype``;
    True when they can be used (NumPy's OpenBLAS reachable, see :func:`deltaprop.fast.blas_address`).
    A failure is kept in :func:`status` and the NumPy step is used."""
    dtype = np.dtype(dtype)
    if dtype in _STATE.get("step_dtypes", ()):
        return True
    if not available() or fast.blas_address("gemm", dtype) is None or fast.blas_address("dot", dtype) is None:
        return False
    try:
        try:
            _prepare_step(dtype, cache=_STATE.get("step_cache", True))
        except Exception:  # no writable place for Numba's cache: compile each time
            if _STATE.get("step_cache") is False:
                raise
            _STATE.pop("step", None)
            _STATE["step_cache"] = False
            _prepare_step(dtype, cache=False)
    except Exception as exc:
        _STATE.pop("step", None)
        _STATE["error"] = f"{type(exc).__name__}: {exc}"[:200]
        return False
    return True


def step_pieces(dtype):
    """(pieces, gemm address, dot address) for the compiled training step in ``dtype``, or None when
    :func:`load_step` has not made them ready."""
    dtype = np.dtype(dtype)
    if dtype not in _STATE.get("step_dtypes", ()):
        return None
    gemm, dot = fast.blas_address("gemm", dtype), fast.blas_address("dot", dtype)
    if gemm is None or dot is None:
        return None  # NumPy's BLAS switched off since loading (DELTAPROP_NO_CBLAS, the tests' switch)
    return _STATE["step"], gemm, dot


def _prepare_step(dtype, cache: bool) -> None:
    """Build the step's dispatchers once, then compile (or load) them for ``dtype`` on small arrays."""
    global _gemm_at, _dot_at
    if "step" not in _STATE:
        import numba

        _gemm_at, _dot_at = _intrinsics()
        jit = numba.njit(cache=cache, nogil=True, error_model="numpy", boundscheck=False)
        globals().update({name: jit(helper) for name, helper in _HELPERS.items()})
        _STATE["step"] = {key: jit(piece) for key, piece in _STEP.items()}
        _STATE.setdefault("version", numba.__version__)
        _STATE["step_dtypes"] = set()
    p, t = _STATE["step"], dtype.type
    gemm, dot = fast.blas_address("gemm", dtype), fast.blas_address("dot", dtype)
    X, W1, b1, W2, b2 = (np.ones(s, dtype) for s in ((3, 4), (2, 4), (2,), (2, 2), (2,)))
    Z1, A1, ZT, AT, YT, DT, dA = (np.zeros(s, dtype) for s in ((3, 2), (3, 2), (2, 3), (2, 3), (2, 3), (2, 3), (3, 2)))
    v = [np.zeros(3, dtype) for _ in range(6)]
    p["linear"](gemm, X, False, W1, b1, Z1, False, True, A1)
    p["linear"](gemm, A1, False, W2, b2, ZT, True, False, AT)
    p["shift"](ZT, AT, v[0])
    p["normalize"](AT, YT, v[1], v[2])
    p["cost_delta"](dot, ZT, AT, YT, v[0], v[3], v[4], v[5], DT, t(0.5))
    for step in (True, False):
        p["backward"](gemm, DT, True, W2, A1, False, dA, np.zeros_like(W2), b2, b2.copy(), Z1, A1, False, t(1),
                      False, True, step, not step, 0, t(0.01))
    _STATE["step_dtypes"].add(dtype)


def _intrinsics():
    """(gemm_at, dot_at): calls of a cblas ?gemm or ?dot at an address given at run time."""
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def gemm_at(typingctx, addr, order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc):
        def codegen(context, builder, signature, args):
            fnty = ir.FunctionType(ir.VoidType(), [context.get_value_type(t) for t in signature.args[1:]])
            builder.call(builder.inttoptr(args[0], fnty.as_pointer()), args[1:])
            return context.get_dummy_value()
        return types.void(addr, order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), codegen

    @intrinsic
    def dot_at(typingctx, addr, n, x, incx, y, incy, like):
        """Returns a float of ``like``'s type (cblas_sdot or cblas_ddot)."""
        def codegen(context, builder, signature, args):
            fnty = ir.FunctionType(context.get_value_type(signature.return_type),
                                   [context.get_value_type(t) for t in signature.args[1:6]])
            return builder.call(builder.inttoptr(args[0], fnty.as_pointer()), args[1:6])
        return like(addr, n, x, incx, y, incy, like), codegen

    return gemm_at, dot_at


#: The compiled loops by optimizer kind (loaded() means the first one is there).
_LOOPS = {"adam": _adam_loop, "momentum": _momentum_loop, "nesterov": _nesterov_loop}


def _flat(arrays):
    """The arrays as 1-D views when all are contiguous, writeable, of one float dtype and size; else None."""
    first = arrays[0]
    if first.dtype not in (np.float32, np.float64):
        return None
    for a in arrays:
        if not isinstance(a, np.ndarray) or a.dtype != first.dtype or a.size != first.size \
                or not a.flags.c_contiguous or not a.flags.writeable:
            return None
    return [a if a.ndim == 1 else a.reshape(-1) for a in arrays]  # the trainer's flat arrays pass as they are


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
