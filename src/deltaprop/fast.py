"""Speed tricks, all in one place. None of them changes the mathematics; each says what it saves.

Figures are for the Fashion-MNIST step (784-256-128-10, float32, batch 128) on a 2-core AMD EPYC
with NumPy 2.4 and OpenBLAS; ``bench/profile_step.py`` re-measures where a step spends its time.
The rest of the engine calls these helpers instead of repeating the tricks:

- reused work arrays per batch size (``Dense._buffers_for``) and a ``Network``'s gradient buffers:
  no allocation inside a step;
- plain SGD folds α into the output error, δ_L = α(A − Y)/m, so the update is one subtraction per
  array (``SGD.apply``, ``Trainer.train_step``);
- no dA_prev for the first layer (``Dense.backward(need_dA_prev=False)``): saves the 784-wide
  product, 24 GFLOP an epoch (the epoch's products would be 84 instead of 60 GFLOP);
- activations and their derivatives in place in those buffers (``Activation.backward``);
- plain SGD's update written by the dW product itself, W ← βW − δᵀA_prev in one GEMM call on NumPy's
  own OpenBLAS (:func:`sub_product`): no dW array and no separate pass over W;
- Adam's and momentum's y ← αx + βy as one BLAS pass (:func:`axpby`) where NumPy needs three;
- with the ``fast`` extra (Numba), long runs take each step's forward and backward passes in a few
  compiled calls that call the same cblas functions by address (:func:`blas_address`,
  ``Network.compiled_step``, :mod:`deltaprop.kernels`): the same bits, without Python's per-call cost;
- the helpers below.

Every helper falls back to the plain NumPy expression where its trick does not apply.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import sys
import weakref

import numpy as np

__all__ = ["NARROW", "SMALL_STEP", "zeros_like", "relu", "narrow_order", "row_max", "row_sum", "take_rows",
           "blas_threads_for", "all_finite", "sub_product", "numpy_gemm", "blas_address", "vdot", "axpby"]

#: Layers at most this wide keep Z and A column-major (see :func:`narrow_order`).
NARROW = 32

#: Training steps with at most this many multiply-adds in their forward products (m · Σ n_in·n_out)
#: run their BLAS calls on one thread (see :func:`blas_threads_for`).
SMALL_STEP = 1 << 24

_ZEROS: dict = {}
#: Largest array (elements) :func:`zeros_like` caches; bigger ones (inference on many rows) are not kept.
_ZEROS_MAX = 1 << 20


def zeros_like(Z) -> np.ndarray | None:
    """A cached, read-only zeros array with the shape, dtype and memory layout of ``Z``, or None
    when Z is larger than the cache keeps (``_ZEROS_MAX`` elements) or not contiguous."""
    key = (Z.shape, Z.strides, Z.dtype)
    z = _ZEROS.get(key)
    if z is None:
        if Z.size > _ZEROS_MAX or not (Z.flags.c_contiguous or Z.flags.f_contiguous):
            return None
        if len(_ZEROS) > 16:
            _ZEROS.clear()
        z = _ZEROS[key] = np.zeros_like(Z)
        z.flags.writeable = False
    return z


def relu(Z, out):
    """out = max(Z, 0) element-wise.

    Saves: NumPy's ``maximum`` against the scalar 0 runs a slower broadcasting loop; against a
    zeros array of Z's own shape and layout it runs the plain vectorized loop: 2.4 instead of
    10.5 µs for a (128, 256) float32 array (tiny arrays: the same, ~0.55 µs). Arrays larger than
    the cache keeps go block by block.
    """
    z = zeros_like(Z)
    if z is not None:
        return np.maximum(Z, z, out=out)
    if Z.ndim != 2 or not Z.flags.c_contiguous or not out.flags.c_contiguous:
        return np.maximum(Z, 0, out=out)
    rows = max(1, _ZEROS_MAX // max(1, Z.shape[1]))
    z = zeros_like(Z[:rows])
    for start in range(0, Z.shape[0], rows):
        stop = min(start + rows, Z.shape[0])
        np.maximum(Z[start:stop], z[:stop - start], out=out[start:stop])
    return out

def narrow_order(n_out: int) -> str:
    """Memory order of a layer's Z and A: column-major ("F") for narrow layers (the output, K ≤ 32).

    Saves: row-wise max and sum over the K columns (softmax, the cost, the accuracy count) are
    reductions along a short axis, which NumPy runs 5–8× slower in row-major order than in
    column-major order, where they become element-wise operations over K contiguous columns.
    Softmax, the cost and the accuracy count of a batch together: 15.6 instead of 44.4 µs for
    (128, 10), 43 instead of 96 µs for the digits' (1797, 10).
    """
    return "F" if n_out <= NARROW else "C"


def row_max(Z):
    """max over the columns of each row, (m, K) → (m, 1).

    Saves: a reduction along a short last axis is slow in NumPy (69 µs for a row-major
    (1797, 10) float32 array). Column-major, the same reduction runs over K contiguous columns
    (1.9 µs); row-major and narrow, a loop of element-wise maxima over the K columns (14 µs).
    """
    if Z.shape[1] <= NARROW and not Z.flags.f_contiguous:
        out = Z[:, 0:1].copy()
        for k in range(1, Z.shape[1]):
            np.maximum(out, Z[:, k:k + 1], out=out)
        return out
    return np.maximum.reduce(Z, axis=1, keepdims=True)  # the ufunc method skips np.max's Python wrapper


def row_sum(Z):
    """Σ over the columns of each row, (m, K) → (m, 1)."""
    return np.add.reduce(Z, axis=1, keepdims=True)


def take_rows(src, idx, out):
    """out = src[idx] for a batch of row indices, into a reused buffer.

    Saves: ``np.take(..., mode="clip")`` skips the bounds check of every index (the indices come
    from a permutation of range(n)): 6.3 instead of 17.7 µs for 128 rows of 784 float32 (rows in
    cache), and the reused buffer saves an allocation of 400 KB per step.
    """
    return src.take(idx, axis=0, out=out, mode="clip")  # the method: no np.take wrapper in Python


_CONTROLLER = []


@contextlib.contextmanager
def blas_threads_for(step_macs: int):
    """Within the block, BLAS runs on one thread when a training step's products are small.

    Saves: OpenBLAS splits every product above ~260,000 multiply-adds across its threads, and for
    the products of a small step the hand-over costs more than the second thread gains. Measured
    on 2 cores, 784-256-128-10, whole steps (1 thread vs 2): batch 16, 220 vs 345 µs; batch 64,
    440 vs 550 µs; batch 128, 740 vs 790 µs (close); from batch 256 two threads win, 1190 vs
    1320 µs. So only steps up to 2^24 multiply-adds (batch ≤ 71 here) drop to one thread. Needs
    threadpoolctl (installed with scikit-learn); without it, or for larger steps, nothing
    changes. It never raises a thread count the user has set lower.
    """
    if step_macs > SMALL_STEP:
        yield
        return
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _CONTROLLER.append(None)
        else:
            _CONTROLLER.append(ThreadpoolController())  # built once: it looks up the loaded libraries
    controller = _CONTROLLER[0]
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


def vdot(a, b) -> float:
    """Σ a ⊙ b over every entry of two arrays of one shape.

    Saves: ``np.vdot`` reads its arguments in row-major order, so a column-major array (a narrow
    layer's Z, its targets) is copied first; two column-major arrays are summed as their transposes,
    which are row-major: no copy. With the targets of a narrow output column-major too (the trainer
    gathers them so), the cost of a (128, 10) batch took 15 instead of 44–59 µs (bench/RESULTS.md).
    """
    if a.ndim == 2 and a.flags.f_contiguous and b.flags.f_contiguous and not (a.flags.c_contiguous
                                                                            and b.flags.c_contiguous):
        return np.vdot(a.T, b.T)
    return np.vdot(a, b)


def all_finite(X) -> bool:
    """True when every entry of the float array X is finite (no NaN, no ±inf).

    Σx² by one BLAS dot is finite exactly when no entry is NaN or infinite, barring an overflow of
    large finite values, which the element-wise test then settles. One pass and no temporary, where
    ``np.isfinite(X).all()`` builds an m × n boolean array (47 MB on Fashion-MNIST's training set,
    about 1 ms per 10,000 images at prediction) and costs twice as much on the small parameter arrays
    the trainer checks every epoch (0.4 against 1 µs).
    """
    return math.isfinite(np.vdot(X, X)) or bool(np.isfinite(X).all())


# -- NumPy's own BLAS, for what NumPy cannot express in one pass: C ← αAB + βC and y ← αx + βy --------
#: Set the environment variable DELTAPROP_NO_CBLAS=1 to never call BLAS directly (the NumPy
#: fallbacks below give the same numbers up to float rounding; axpby's give the same bits).
_GEMM: dict = {}
_CBLAS_ROW, _CBLAS_NO, _CBLAS_T = 101, 111, 112


def _openblas_paths() -> list:
    """Files of the OpenBLAS that NumPy loaded: the mapped libraries of this process in NumPy's own
    folders (Linux), else the library NumPy's wheel bundles beside it.

    Only NumPy's folders (``numpy.libs``, ``numpy/.dylibs``, the package itself): SciPy's wheel maps its own
    OpenBLAS (``scipy.libs``) once SciPy is imported (scikit-learn and Numba import it), with its own
    thread pool and 32-bit integers; calling that one would run a second pool beside NumPy's."""
    site = os.path.dirname(os.path.dirname(os.path.abspath(np.__file__)))  # site-packages
    folders = [os.path.join(site, "numpy.libs"), os.path.join(site, "numpy", ".dylibs"),
               os.path.dirname(os.path.abspath(np.__file__))]
    found = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.rstrip("\n").split(" ")[-1]
                name = os.path.basename(path).lower()
                if "openblas" in name and os.path.dirname(path) in folders and path not in found:
                    found.append(path)
    except OSError:
        pass
    if not found:
        import glob

        for folder in folders[:2]:
            found += sorted(glob.glob(os.path.join(folder, "*openblas*")))
    return found


#: (prefix, suffix) of the cblas symbols in the builds NumPy ships, with their integer type: NumPy 2
#: wheels (scipy-openblas, 64-bit integers), NumPy 1.22–1.26 wheels (openblas64_), scipy-openblas32.
_NAMINGS = (("scipy_cblas_", "64_", ctypes.c_int64), ("cblas_", "64_", ctypes.c_int64),
            ("scipy_cblas_", "", ctypes.c_int))
_REAL = {np.dtype(np.float32): ("s", ctypes.c_float), np.dtype(np.float64): ("d", ctypes.c_double)}


def _signature(kind, integer, real) -> list:
    """ctypes argument types of cblas ?gemm, ?dot and ?axpby (OpenBLAS's extension)."""
    vec = [ctypes.c_void_p, integer]
    if kind == "gemm":
        return [ctypes.c_int, ctypes.c_int, ctypes.c_int, integer, integer, integer, real, *vec, *vec, real,
                ctypes.c_void_p, integer]
    if kind == "dot":
        return [integer, *vec, *vec]
    return [integer, real, *vec, real, *vec]  # axpby


def _load_blas() -> dict:
    """{kind: {dtype: function}} for kind in gemm, dot and axpby: the cblas functions of NumPy's own
    OpenBLAS, each tested on small arrays against NumPy; a kind is missing when it cannot be found or
    does not pass, and everything when DELTAPROP_NO_CBLAS is set. ``found["int_bits"]`` is the width of
    their integer arguments."""
    if os.environ.get("DELTAPROP_NO_CBLAS") or not sys.platform.startswith(("linux", "darwin")):
        return {}
    for path in _openblas_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix, integer in _NAMINGS:
            if getattr(lib, f"{prefix}sgemm{suffix}", None) is None:
                continue
            found = {"int_bits": 8 * ctypes.sizeof(integer)}
            for kind in ("gemm", "dot", "axpby"):
                fns = {}
                for dtype, (letter, real) in _REAL.items():
                    fn = getattr(lib, f"{prefix}{letter}{kind}{suffix}", None)
                    if fn is None:
                        break
                    fn.argtypes = _signature(kind, integer, real)
                    fn.restype = real if kind == "dot" else None
                    fns[dtype] = fn
                if len(fns) == 2 and _PASSES[kind](fns):
                    found[kind] = fns
            return found
    return {}


def _gemm_passes(fns) -> bool:
    """The functions compute βW − δᵀA as NumPy does (both layouts of δ, both dtypes)."""
    rng = np.random.default_rng(0)
    for dtype, fn in fns.items():
        for order in ("C", "F"):
            W = rng.standard_normal((5, 7)).astype(dtype)
            delta = np.asarray(rng.standard_normal((3, 5)), dtype=dtype, order=order)
            A = rng.standard_normal((3, 7)).astype(dtype)
            expected = 0.5 * W - delta.T @ A
            _call(fn, W, delta.T, A, -1.0, 0.5)
            if not np.allclose(W, expected, rtol=1e-5, atol=1e-5):
                return False
    return True


def _axpby_passes(fns) -> bool:
    """The functions compute y ← αx + βy with the bits of NumPy's y *= β; y += αx (no fused
    multiply-add), over lengths that reach every vector kernel's main loop and its tail."""
    rng = np.random.default_rng(0)
    for dtype, fn in fns.items():
        for n, beta in ((1, 0.9), (37, 0.9), (5003, 0.9), (5003, 1.0)):
            x, y = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
            expected = y * dtype.type(beta) + x * dtype.type(-0.3)
            fn(n, -0.3, x.ctypes.data, 1, beta, y.ctypes.data, 1)
            if not np.array_equal(y, expected):
                return False
    return True


def _dot_passes(fns) -> bool:
    """The functions give np.vdot's result to the bit (NumPy's own dot of contiguous floats calls them)."""
    rng = np.random.default_rng(0)
    for dtype, fn in fns.items():
        for n in (1, 37, 1280, 5003):
            x, y = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
            if fn(n, x.ctypes.data, 1, y.ctypes.data, 1) != np.vdot(x, y):
                return False
    return True


_PASSES = {"gemm": _gemm_passes, "dot": _dot_passes, "axpby": _axpby_passes}


def _call(fn, C, A, B, alpha, beta, at=None) -> None:
    """C ← α A B + β C by ``fn`` (cblas ?gemm, row-major); A, B and C each C- or F-contiguous (C is
    written in place: when it is column-major, Cᵀ = Bᵀ Aᵀ is computed instead). ``at``: the addresses of
    C, A and B where the caller has them (:func:`address`), else each is looked up."""
    c, a, b = at or (C.ctypes.data, A.ctypes.data, B.ctypes.data)
    if not C.flags.c_contiguous:
        C, A, B, a, b = C.T, B.T, A.T, b, a
    M, N = C.shape
    trans_a, lda = (_CBLAS_NO, A.shape[1]) if A.flags.c_contiguous else (_CBLAS_T, A.shape[0])
    trans_b, ldb = (_CBLAS_NO, B.shape[1]) if B.flags.c_contiguous else (_CBLAS_T, B.shape[0])
    fn(_CBLAS_ROW, trans_a, trans_b, M, N, A.shape[1], alpha, a, max(lda, 1), b, max(ldb, 1), beta, c, max(N, 1))


#: id(array) → (weak reference, shape, strides, address of its first element): see address().
_ADDRESSES: dict = {}


def address(a: np.ndarray) -> int:
    """``a.ctypes.data``, remembered for arrays that live on (the trainer's weights and work arrays).

    Saves: ``a.ctypes`` builds a helper object, about 2 µs a call, and a cblas call from Python needs
    three addresses: 6 of the 15 µs that a small layer's fused SGD product (:func:`sub_product`) took
    from Python. An array's memory does not move while it lives; the entry is used only while its weak
    reference still gives this very array with the same shape and strides."""
    got = _ADDRESSES.get(id(a))
    if got is not None and got[0]() is a and got[1] == a.shape and got[2] == a.strides:
        return got[3]
    where = a.ctypes.data
    if len(_ADDRESSES) >= 512:  # many short-lived arrays: start again rather than grow
        _ADDRESSES.clear()
    _ADDRESSES[id(a)] = (weakref.ref(a), a.shape, a.strides, where)
    return where


def _gemm_for(C, A, B):
    """The cblas function for C ← αAB + βC when every operand suits it (one float dtype, 2-D, each C- or
    F-contiguous, C writeable, shapes that chain, no empty dimension), else None."""
    fn = numpy_gemm(C.dtype) if isinstance(A, np.ndarray) and isinstance(B, np.ndarray) else None
    if (fn is None or not C.flags.writeable or C.ndim != 2 or A.ndim != 2 or B.ndim != 2
            or not C.dtype == A.dtype == B.dtype or 0 in C.shape or A.shape[1] == 0
            or C.shape != (A.shape[0], B.shape[1]) or A.shape[1] != B.shape[0]):
        return None
    for a in (C, A, B):
        if not (a.flags.c_contiguous or a.flags.f_contiguous):
            return None
    return fn


def _blas(kind: str) -> dict:
    """{dtype: cblas function} of NumPy's own OpenBLAS for kind gemm, dot or axpby; empty where it
    cannot be called (other BLAS, other platforms, DELTAPROP_NO_CBLAS set). Looked up and tested once;
    ``_GEMM[kind]``, where set (the tests set {} to take the NumPy paths), takes its place."""
    if "all" not in _GEMM:
        try:
            _GEMM["all"] = _load_blas()
        except Exception:  # anything unexpected from ctypes: use the NumPy paths
            _GEMM["all"] = {}
    return _GEMM[kind] if kind in _GEMM else _GEMM["all"].get(kind, {})


def blas_address(kind: str, dtype) -> int | None:
    """The address of NumPy's own OpenBLAS's cblas ?gemm or ?dot for ``dtype``, for compiled code that
    calls it directly (:mod:`deltaprop.kernels`), or None: not found or not passing its test, other
    BLAS, or integer arguments other than 64-bit (the compiled calls pass int64)."""
    fn = _blas(kind).get(np.dtype(dtype))
    if fn is None or _GEMM.get("all", {}).get("int_bits") != 64:
        return None
    return ctypes.cast(fn, ctypes.c_void_p).value


def numpy_gemm(dtype):
    """The cblas ?gemm of NumPy's own OpenBLAS for this dtype, or None (other BLAS, other platforms,
    DELTAPROP_NO_CBLAS set). Looked up and tested once."""
    return _blas("gemm").get(np.dtype(dtype))


def _axpby_for(x, y):
    """cblas ?axpby for y ← αx + βy when x and y are contiguous, y writeable, one float dtype, one
    size; else None."""
    fn = _blas("axpby").get(y.dtype) if isinstance(x, np.ndarray) and isinstance(y, np.ndarray) else None
    if (fn is None or x.dtype != y.dtype or x.size != y.size or not y.flags.writeable
            or not (x.flags.c_contiguous and y.flags.c_contiguous)):
        return None
    return fn


def axpby(alpha: float, x, beta: float, y, scratch):
    """y ← αx + βy in place (x and y of one shape): Adam's m ← β₁m + (1 − β₁)g and v ← β₂v + (1 − β₂)g²,
    momentum's v ← μv − αg, and with β = 1 a step θ ← θ − α·u (the bits of NumPy's u *= α; θ -= u).

    Saves: NumPy needs three passes (y *= β; s = αx; y += s); OpenBLAS's ``cblas_?axpby`` makes one,
    with the same bits (β·y and α·x each rounded, then their sum: it is used only where a test at
    load time finds exactly those bits). Falls back to the three NumPy passes, with ``scratch`` (an
    array of y's shape; it may be x itself, which is then overwritten). In the training step of
    bench/RESULTS.md each call took 40–50 µs where the three passes took about 90.
    """
    fn = _axpby_for(x, y)
    if fn is not None:
        fn(y.size, alpha, address(x), 1, beta, address(y), 1)
        return y
    if beta != 1:
        y *= beta
    np.multiply(x, alpha, out=scratch)
    y += scratch
    return y


def sub_product(W, delta, A_prev, beta: float = 1.0, scratch=None):
    """W ← β W − δᵀ A_prev in place: plain SGD's step on a layer's weights, with the step size already
    in δ (δ = α ∂J/∂Z) and β = 1 − αλ/m for L2.

    Saves: NumPy has no C ← αAB + βC, so the step was dW = δᵀA_prev (written to an array), then a pass
    reading W and dW and writing W. One ``cblas_?gemm`` call with α = −1, β on NumPy's own OpenBLAS
    writes the result straight into W: no dW array and no pass over W and dW, which after a
    two-thread product sit in both cores' caches (bench/RESULTS.md has the figures). With β = 1 and
    at most ~300 rows (OpenBLAS sums the rows in one block) the bits equal the two-step path's;
    otherwise they agree to float rounding.

    Falls back to the two NumPy steps (dW into ``scratch``, or a new array) where BLAS cannot be called
    directly: another BLAS, a sparse A_prev, other dtypes or layouts.
    """
    fn = _gemm_for(W, delta.T, A_prev) if isinstance(A_prev, np.ndarray) and delta.ndim == 2 else None
    if fn is not None:  # δᵀ is a new view each step; δ, at the same address, is the trainer's work array
        _call(fn, W, delta.T, A_prev, -1.0, beta, (address(W), address(delta), address(A_prev)))
        return W
    if isinstance(A_prev, np.ndarray):
        dW = np.matmul(delta.T, A_prev, out=scratch)
    else:  # a SciPy sparse A_prev: (A_prevᵀ δ)ᵀ, sparse × dense
        dW = (A_prev.T @ delta).T
    if beta != 1.0:
        W *= beta
    W -= dW
    return W
