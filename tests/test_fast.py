"""The speed tricks (deltaprop.fast) give exactly what the plain NumPy expressions give."""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import fast

SHAPES = [(1, 1), (3, 4), (128, 10), (128, 256), (1797, 10), (5000, 300)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_reductions_and_relu_match_numpy(shape, order, dtype):
    rng = np.random.default_rng(sum(shape))
    Z = np.asarray(rng.standard_normal(shape) * 3, dtype=dtype, order=order)
    np.testing.assert_array_equal(fast.row_max(Z), Z.max(axis=1, keepdims=True))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(fast.row_sum(Z), Z.sum(axis=1, keepdims=True), rtol=tol, atol=tol * shape[1])
    out = np.empty_like(Z)
    assert fast.relu(Z, out) is out
    np.testing.assert_array_equal(out, np.maximum(Z, 0))
    fast.relu(Z, Z)  # in place
    np.testing.assert_array_equal(Z, out)


def test_relu_on_views_and_nan():
    Z = np.arange(-20.0, 20.0).reshape(8, 5)[:, ::2]  # not contiguous
    Z[0, 0] = np.nan
    out = np.empty(Z.shape)
    fast.relu(Z, out)
    assert np.isnan(out[0, 0])
    np.testing.assert_array_equal(out[1:], np.maximum(Z[1:], 0))


def test_relu_large_arrays_go_block_by_block_with_a_small_cache():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((fast._ZEROS_MAX // 100 + 7, 300)).astype(np.float32)  # > _ZEROS_MAX elements
    before = set(fast._ZEROS)
    out = fast.relu(Z, np.empty_like(Z))
    np.testing.assert_array_equal(out, np.maximum(Z, 0))
    assert all(np.prod(key[0]) <= fast._ZEROS_MAX for key in set(fast._ZEROS) - before)


def test_cached_zeros_cannot_be_written():
    z = fast.zeros_like(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError):
        z[0, 0] = 1.0


def test_narrow_layers_are_column_major_and_give_the_same_numbers():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 20))
    y = rng.integers(0, 3, 50)
    net = dp.Network.from_sizes([20, 40, 3], hidden="relu", seed=2, dtype="float64")
    net.backprop(X, y)
    out, hidden = net.layers[-1], net.layers[0]
    assert out.Z.flags.f_contiguous and out.A.flags.f_contiguous
    assert hidden.Z.flags.c_contiguous
    Z_ref = hidden.A @ out.W.T + out.b
    np.testing.assert_allclose(out.Z, Z_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out.A, np.exp(Z_ref) / np.exp(Z_ref).sum(axis=1, keepdims=True), rtol=1e-12)


def test_blas_threads_are_restored_after_training():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    seen = []

    class Look(dp.Callback):
        def on_epoch_end(self, trainer, logs):
            seen.append([i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"])

    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((64, 5)), rng.integers(0, 2, 64)
    net = dp.Network.from_sizes([5, 8, 2], seed=0)
    dp.fit(net, X, y, epochs=2, batch_size=16, callbacks=[Look()])
    assert seen and all(n == 1 for counts in seen for n in counts)  # a small step: one thread
    after = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert after == before


def test_blas_threads_untouched_for_large_steps():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    with fast.blas_threads_for(fast.SMALL_STEP + 1):
        inside = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert inside == before


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_all_finite_agrees_with_isfinite(dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 7)).astype(dtype)
    assert fast.all_finite(X)
    big = np.full((4, 4), np.finfo(dtype).max / 2, dtype=dtype)  # finite entries whose sum overflows
    assert fast.all_finite(big)
    for bad in (np.nan, np.inf, -np.inf):
        Y = X.copy()
        Y[13, 5] = bad
        assert not fast.all_finite(Y)
    Z = X.copy()
    Z[0, 0], Z[1, 1] = np.inf, -np.inf  # inf − inf: NaN sum, still caught
    assert not fast.all_finite(Z)


# -- plain SGD's step inside the backward pass (fast.sub_product) ---------------------------------
@pytest.fixture(params=["blas", "numpy"])
def gemm_path(request, monkeypatch):
    """Both ways fast.sub_product works: NumPy's own BLAS called directly (where it is found), and the
    NumPy fallback."""
    if request.param == "numpy":
        monkeypatch.setitem(fast._GEMM, "gemm", {})
    elif fast.numpy_gemm(np.float32) is None:
        pytest.skip("NumPy's BLAS cannot be called directly here")
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("beta", [1.0, 0.97])
def test_sub_product_is_beta_w_minus_the_product(gemm_path, dtype, order, beta):
    rng = np.random.default_rng(2)
    for m, n_out, n_in in ((1, 1, 1), (7, 3, 5), (128, 10, 128), (400, 33, 70)):
        W = rng.standard_normal((n_out, n_in)).astype(dtype)
        delta = np.asarray(rng.standard_normal((m, n_out)), dtype=dtype, order=order)
        A = rng.standard_normal((m, n_in)).astype(dtype)
        expected = beta * W.astype(np.float64) - delta.T.astype(np.float64) @ A.astype(np.float64)
        out = fast.sub_product(W, delta, A, beta)
        assert out is W
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(W, expected, rtol=tol, atol=tol * m)


def test_sub_product_with_beta_one_gives_the_bits_of_the_two_numpy_steps(gemm_path):
    rng = np.random.default_rng(4)
    W = rng.standard_normal((64, 48)).astype(np.float32)
    delta = rng.standard_normal((32, 64)).astype(np.float32)
    A = rng.standard_normal((32, 48)).astype(np.float32)
    expected = W - np.matmul(delta.T, A)
    fast.sub_product(W, delta, A)
    np.testing.assert_array_equal(W, expected)


def test_sub_product_takes_views_sparse_input_and_other_layouts():
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(5)
    A = sparse.random(20, 12, density=0.3, format="csr", random_state=1)
    W = rng.standard_normal((4, 12))
    delta = rng.standard_normal((20, 4))
    expected = 0.5 * W - delta.T @ A.toarray()
    fast.sub_product(W, delta, A, 0.5)
    np.testing.assert_allclose(W, expected, rtol=1e-12, atol=1e-12)
    big = rng.standard_normal((4, 24))
    view = big[:, ::2]  # not contiguous: the NumPy path, written through the view
    expected = view - delta.T @ A.toarray()
    fast.sub_product(view, delta, A.toarray())
    np.testing.assert_allclose(big[:, ::2], expected, rtol=1e-12, atol=1e-12)


# -- y ← αx + βy in one BLAS pass (fast.axpby): Adam's and momentum's state ------------------------
@pytest.fixture(params=["blas", "numpy"])
def axpby_path(request, monkeypatch):
    """Both ways fast.axpby works: OpenBLAS's cblas_?axpby (where found and exact), and NumPy."""
    if request.param == "numpy":
        monkeypatch.setitem(fast._GEMM, "axpby", {})
    elif fast._axpby_for(np.zeros(3, np.float32), np.zeros(3, np.float32)) is None:
        pytest.skip("NumPy's BLAS has no exact cblas_saxpby here")
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 63, 64, 1001, 70_001])
def test_axpby_gives_the_bits_of_numpy_three_passes(axpby_path, dtype, n):
    rng = np.random.default_rng(n)
    x, y = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    expected = y * dtype(0.999) + x * dtype(1 - 0.999)
    out = fast.axpby(1 - 0.999, x, 0.999, y, np.empty_like(y))
    assert out is y
    np.testing.assert_array_equal(y, expected)
    # a view in the middle of a flat buffer (Adam's halves), and x given as its own scratch
    buf, xb = rng.standard_normal(n + 10).astype(dtype), rng.standard_normal(n + 10).astype(dtype)
    expected = buf[5:n + 5] * dtype(0.9) + xb[5:n + 5] * dtype(-0.25)
    fast.axpby(-0.25, xb[5:n + 5], 0.9, buf[5:n + 5], xb[5:n + 5])
    np.testing.assert_array_equal(buf[5:n + 5], expected)
    # β = 1: a step θ ← θ − α·u, the bits of u *= α; θ -= u
    theta, u = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    expected = theta - u * dtype(0.01)
    fast.axpby(-0.01, u, 1.0, theta, u)
    np.testing.assert_array_equal(theta, expected)


def test_axpby_falls_back_for_strided_and_mixed_arrays():
    rng = np.random.default_rng(1)
    y = rng.standard_normal((6, 8)).astype(np.float32)
    x = rng.standard_normal((6, 8))[:, ::1].astype(np.float64)  # another dtype: NumPy's path
    expected = y * np.float32(0.5) + (x * 2.0).astype(np.float32)
    fast.axpby(2.0, x, 0.5, y, np.empty_like(y))
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    big = rng.standard_normal(40).astype(np.float32)
    view, xs = big[::2], rng.standard_normal(20).astype(np.float32)
    expected = view * np.float32(0.9) + xs * np.float32(0.1)
    fast.axpby(0.1, xs, 0.9, view, np.empty_like(xs))
    np.testing.assert_array_equal(big[::2], expected)


@pytest.mark.parametrize("name", ["adam", "momentum", "nesterov"])
def test_optimizers_through_blas_give_the_bits_of_numpy(name, monkeypatch):
    """A whole training with Adam or momentum: the same weights to the bit with OpenBLAS's axpby and
    with NumPy's passes."""
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((600, 30)).astype(np.float32), rng.integers(0, 4, 600)
    weights = []
    for switch in (None, {}):
        if switch is not None:
            monkeypatch.setitem(fast._GEMM, "axpby", switch)
        net = dp.Network.from_sizes([30, 64, 4], seed=0)
        dp.fit(net, X, y, epochs=3, batch_size=50, optimizer=name, lr=0.01, l2=1e-3, seed=1)
        weights.append(net.get_weights())
    for (W1, b1), (W2, b2) in zip(*weights):
        np.testing.assert_array_equal(W1, W2)
        np.testing.assert_array_equal(b1, b2)


def _sgd_training(keep_grads: bool, dtype="float32", l2=1e-3, batch_size=350, epochs=4):
    """A whole plain-SGD training, its step taken inside the backward pass or (keep_grads) from kept
    gradients by SGD.apply."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((900, 24)).astype(dtype)
    y = rng.integers(0, 5, 900)
    net = dp.Network.from_sizes([24, 40, 30, 5], seed=1, dtype=dtype)
    with pytest.MonkeyPatch.context() as mp:
        if keep_grads:
            step = dp.Trainer.train_step
            mp.setattr(dp.Trainer, "train_step",
                       lambda self, Xb, Yb, sw=None, keep_grads=True: step(self, Xb, Yb, sw, keep_grads=True))
        history = dp.fit(net, X, y, epochs=epochs, batch_size=batch_size,
                         optimizer=dp.make_optimizer("sgd", lr=0.2), l2=l2, seed=3)
    return net, history


@pytest.mark.parametrize("dtype,rtol", [("float32", 2e-4), ("float64", 1e-11)])
def test_sgd_step_inside_backward_equals_the_step_from_gradients_over_a_whole_training(gemm_path, dtype, rtol):
    fused, h1 = _sgd_training(keep_grads=False, dtype=dtype)
    kept, h2 = _sgd_training(keep_grads=True, dtype=dtype)
    for p, q in zip(fused.params(), kept.params()):
        np.testing.assert_allclose(p, q, rtol=rtol, atol=rtol / 10)
    np.testing.assert_allclose(h1.loss, h2.loss, rtol=rtol)
    for e1, e2 in zip(h1.epochs, h2.epochs):  # the gradient-flow figures come from each epoch's last batch
        np.testing.assert_allclose(e1["dW_norm"], e2["dW_norm"], rtol=rtol * 10)
        np.testing.assert_allclose(e1["delta_norm"], e2["delta_norm"], rtol=rtol * 10)
    assert fused.get_weights()[0][0].dtype == np.dtype(dtype)


def test_sgd_step_inside_backward_gives_the_same_bits_run_to_run():
    a, ha = _sgd_training(keep_grads=False)
    b, hb = _sgd_training(keep_grads=False)
    assert all(np.array_equal(p, q) for p, q in zip(a.params(), b.params()))
    assert ha.loss == hb.loss


def test_backward_with_sgd_step_leaves_the_gradients_alone_and_steps_every_layer():
    rng = np.random.default_rng(9)
    X, y = rng.standard_normal((30, 6)), rng.integers(0, 3, 30)
    net = dp.Network.from_sizes([6, 5, 3], seed=0, dtype="float64")
    twin = net.copy()
    _, grads = twin.backprop(X, y, l2=0.1)
    net.forward(X, cache=True)
    assert net.backward(net.prepare_targets(y), 0.1, scale=0.5, sgd_step=True) is None
    for layer, before, (dW, db) in zip(net.layers, twin.layers, grads):
        np.testing.assert_allclose(layer.W, before.W - 0.5 * dW, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(layer.b, before.b - 0.5 * db, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("orders", [("C", "C"), ("F", "F"), ("C", "F"), ("F", "C")])
def test_vdot_of_any_layouts_is_numpys(orders):
    rng = np.random.default_rng(7)
    a = np.asarray(rng.standard_normal((128, 10)), order=orders[0])
    b = np.asarray(rng.standard_normal((128, 10)), order=orders[1])
    assert fast.vdot(a, b) == pytest.approx(np.vdot(np.ascontiguousarray(a), np.ascontiguousarray(b)), rel=1e-12)
    assert fast.vdot(a[:, 0], b[:, 0]) == pytest.approx(float(a[:, 0] @ b[:, 0]), rel=1e-12)


def test_a_narrow_output_gathers_its_targets_column_major():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((90, 6)).astype(np.float32), rng.integers(0, 3, 90)
    tr = dp.Trainer(dp.Network.from_sizes([6, 5, 3], seed=0), X, y, batch_size=32)
    idx = rng.permutation(90)[:32]
    xb, yb = tr._gather(idx)
    assert yb.flags.f_contiguous and tr.Y.flags.f_contiguous
    np.testing.assert_array_equal(yb, np.eye(3, dtype=np.float32)[y[idx]])
    np.testing.assert_array_equal(xb, X[idx])
    wide = dp.Trainer(dp.Network.from_sizes([6, 40], seed=0), X, rng.integers(0, 40, 90), batch_size=32)
    assert wide._gather(idx)[1].flags.c_contiguous  # a wide output keeps row-major targets


def test_numpys_own_openblas_is_called_when_scipy_has_mapped_its_own():
    """SciPy's wheel maps a second OpenBLAS (scikit-learn and Numba import SciPy); deltaprop's direct BLAS
    calls must still go to NumPy's, whose thread pool the products use."""
    pytest.importorskip("scipy")
    import subprocess
    import sys
    from pathlib import Path

    code = ("import scipy.linalg, os, numpy as np\n"
            "from deltaprop import fast\n"
            "paths = fast._openblas_paths()\n"
            "print(all(os.path.dirname(p).endswith(('numpy.libs', '.dylibs', 'numpy')) for p in paths),\n"
            "      fast.numpy_gemm(np.float32) is None or fast.blas_address('gemm', np.float32) is not None)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")})
    assert out.stdout.split() == ["True", "True"]


def test_address_follows_each_array_as_ctypes_does():
    """fast.address remembers a live array's address; a new array (even at a recycled id), a view, or an
    array whose shape was set in place gets its own."""
    for _ in range(2000):  # short-lived arrays: ids are recycled while old entries are still there
        a = np.empty(int(np.random.default_rng().integers(1, 50)), np.float32)
        assert fast.address(a) == a.ctypes.data
        assert fast.address(a[1:]) == a[1:].ctypes.data
    b = np.zeros((4, 6))
    assert fast.address(b) == fast.address(b) == b.ctypes.data
    assert fast.address(b.T) == b.ctypes.data and fast.address(b[1]) == b[1].ctypes.data
    b.shape = (6, 4)
    assert fast.address(b) == b.ctypes.data
