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
# five compiled calls and two NumPy calls (Network.compiled_step); plain SGD's update is written by
# the dW product itself (as fast.sub_product), other optimizers get the gradients.

_ROW, _NO, _T = 101, 111, 112  # CblasRowMajor, CblasNoTrans, CblasTrans
_gemm_at = _dot_at = None  # the intrinsics calling cblas ?gemm and ?dot by address (_intrinsics)


def _relu_forward(gemm, A_prev, W, b, Z, A):
    """Z = A_prev Wᵀ + b; A = max(Z, 0) (NaN stays NaN, as np.maximum keeps it). All C-contiguous."""
    m, k = A_prev.shape
    n = W.shape[0]
    zero = W.dtype.type(0)
    _gemm_at(gemm, np.int32(_ROW), np.int32(_NO), np.int32(_T), np.int64(m), np.int64(n), np.int64(k),
             W.dtype.type(1), A_prev.ctypes.data, np.int64(k), W.ctypes.data, np.int64(k), W.dtype.type(0),
             Z.ctypes.data, np.int64(n))
    for i in range(m):
        for j in range(n):
            z = Z[i, j] + b[j]
            Z[i, j] = z
            A[i, j] = zero if z <= 0 else z


def _logits(gemm, A_prev, W, b, ZT, AT, c):
    """Zᵀ = W A_prevᵀ (the output layer's Z is column-major: ZT and AT are its C-contiguous
    transposes), Z += b, c = max over each row of Z, A = Z − c (exponentiated next by NumPy)."""
    m, k = A_prev.shape
    n = W.shape[0]
    _gemm_at(gemm, np.int32(_ROW), np.int32(_NO), np.int32(_T), np.int64(n), np.int64(m), np.int64(k),
             W.dtype.type(1), W.ctypes.data, np.int64(k), A_prev.ctypes.data, np.int64(k), W.dtype.type(0),
             ZT.ctypes.data, np.int64(m))
    for j in range(n):
        bj = b[j]
        for i in range(m):
            ZT[j, i] = ZT[j, i] + bj
    for i in range(m):
        c[i] = ZT[0, i]
    for j in range(1, n):
        for i in range(m):
            z, ci = ZT[j, i], c[i]
            c[i] = ci if (ci != ci or not (z > ci or z != z)) else z
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
    for i in range(m):
        amax[i] = AT[0, i]
    for j in range(1, n):
        for i in range(m):
            a, ai = AT[j, i], amax[i]
            amax[i] = ai if (ai != ai or not (a > ai or a != a)) else a
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


def _backward(gemm, delta, column_major, W, A_prev, dA, dW, db, b, Z_below, c, sum_db, need_dA, step, add_l2):
    """One layer of the backward pass: dA = δ W (with the W before any step), then

    - ``step`` (plain SGD, the step size in δ): W ← cW − δᵀA_prev (c = 1 − αλ/m), b ← b − db;
    - else the gradients: dW = δᵀA_prev (+ c·W when ``add_l2``, c = λ/m), for the optimizer;

    db = Σ_rows δ (unless given), and δ of the layer below = dA ⊙ [Z_below > 0]. δ is (m, n_out),
    C-contiguous, or column-major when ``column_major`` (then ``delta`` is its C-contiguous transpose).
    The cblas calls are those of np.matmul and fast.sub_product for these layouts."""
    if column_major:
        n, m = delta.shape
        lead, ta = m, _T
    else:
        m, n = delta.shape
        lead, ta = n, _NO
    k = W.shape[1]
    one, zero = W.dtype.type(1), W.dtype.type(0)
    if need_dA:
        _gemm_at(gemm, np.int32(_ROW), np.int32(ta), np.int32(_NO), np.int64(m), np.int64(k), np.int64(n), one,
                 delta.ctypes.data, np.int64(lead), W.ctypes.data, np.int64(k), zero, dA.ctypes.data, np.int64(k))
    if step:
        _gemm_at(gemm, np.int32(_ROW), np.int32(_NO if column_major else _T), np.int32(_NO), np.int64(n),
                 np.int64(k), np.int64(m), -one, delta.ctypes.data, np.int64(lead), A_prev.ctypes.data,
                 np.int64(k), c, W.ctypes.data, np.int64(k))
    else:
        _gemm_at(gemm, np.int32(_ROW), np.int32(_NO if column_major else _T), np.int32(_NO), np.int64(n),
                 np.int64(k), np.int64(m), one, delta.ctypes.data, np.int64(lead), A_prev.ctypes.data,
                 np.int64(k), zero, dW.ctypes.data, np.int64(k))
        if add_l2:
            for i in range(n):
                for j in range(k):
                    dW[i, j] = dW[i, j] + c * W[i, j]
    if sum_db:
        for j in range(n):
            db[j] = delta[0, j]
        for i in range(1, m):
            for j in range(n):
                db[j] = db[j] + delta[i, j]
    if step:
        for j in range(n):
            b[j] = b[j] - db[j]
    if need_dA:
        for i in range(m):
            for j in range(k):
                dA[i, j] = dA[i, j] * (one if Z_below[i, j] > 0 else zero)


#: The compiled pieces of the training step (Network.compiled_step).
_STEP = {"relu_forward": _relu_forward, "logits": _logits, "normalize": _normalize, "cost_delta": _cost_delta,
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
    if dtype not in _STATE.get("step_dtypes", ()) or fast.blas_address("gemm", dtype) is None:
        return None  # not loaded, or NumPy's BLAS switched off since (DELTAPROP_NO_CBLAS, the tests' switch)
    return _STATE["step"], *_STATE["step_blas"][dtype]


def _prepare_step(dtype, cache: bool) -> None:
    """Build the step's dispatchers once, then compile (or load) them for ``dtype`` on small arrays."""
    global _gemm_at, _dot_at
    if "step" not in _STATE:
        import numba

        _gemm_at, _dot_at = _intrinsics()
        jit = numba.njit(cache=cache, nogil=True, error_model="numpy", boundscheck=False)
        _STATE["step"] = {key: jit(piece) for key, piece in _STEP.items()}
        _STATE.setdefault("version", numba.__version__)
        _STATE["step_dtypes"] = set()
    p, t = _STATE["step"], dtype.type
    gemm, dot = fast.blas_address("gemm", dtype), fast.blas_address("dot", dtype)
    X, W1, b1, W2, b2 = (np.ones(s, dtype) for s in ((3, 4), (2, 4), (2,), (2, 2), (2,)))
    Z1, A1, ZT, AT, YT, DT, dA = (np.zeros(s, dtype) for s in ((3, 2), (3, 2), (2, 3), (2, 3), (2, 3), (2, 3), (3, 2)))
    v = [np.zeros(3, dtype) for _ in range(6)]
    p["relu_forward"](gemm, X, W1, b1, Z1, A1)
    p["logits"](gemm, A1, W2, b2, ZT, AT, v[0])
    p["normalize"](AT, YT, v[1], v[2])
    p["cost_delta"](dot, ZT, AT, YT, v[0], v[3], v[4], v[5], DT, t(0.5))
    for column_major, delta in ((True, DT), (False, Z1)):
        W, A_prev = (W2, A1) if column_major else (W1, X)
        for step in (True, False):
            p["backward"](gemm, delta, column_major, W, A_prev, dA, np.zeros_like(W), b2, b2.copy(), Z1, t(1),
                          not column_major, column_major, step, not step)
    _STATE["step_dtypes"].add(dtype)
    _STATE.setdefault("step_blas", {})[dtype] = (gemm, dot)


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
