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
