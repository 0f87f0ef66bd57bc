"""The compiled update loops (deltaprop.kernels): the same bits as NumPy's passes, loaded only when a run
is long enough, and a training that works the same without them."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import kernels
from deltaprop.optim import Optimizer

pytest.importorskip("numba")
SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module", autouse=True)
def compiled():
    for kind in ("adam", "momentum", "nesterov"):
        for dtype in ("float32", "float64"):
            assert kernels.load(kind, dtype), kernels.status()


@pytest.fixture
def without_kernels(monkeypatch):
    """The NumPy passes: the compiled loops hidden for the test."""
    monkeypatch.setattr(kernels, "_STATE", {})
    monkeypatch.setenv("DELTAPROP_NO_JIT", "1")


def _train(name, dtype, threads=1, l2=1e-3):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((700, 40)).astype(dtype)
    y = rng.integers(0, 5, 700)
    net = dp.Network.from_sizes([40, 300, 130, 5], seed=2, dtype=dtype)  # 52,085 parameters: halves split
    dp.fit(net, X, y, epochs=2, batch_size=100, optimizer=name, lr=0.01, l2=l2, seed=1, threads=threads)
    return net.get_weights()


@pytest.mark.parametrize("name", ["adam", "momentum", "nesterov"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_training_gives_the_same_bits_with_and_without_the_loops(name, dtype, monkeypatch):
    compiled_weights = _train(name, dtype)
    assert kernels.loaded()
    monkeypatch.setattr(kernels, "_STATE", {})
    numpy_weights = _train(name, dtype)
    assert not kernels.loaded()
    for (W1, b1), (W2, b2) in zip(compiled_weights, numpy_weights):
        np.testing.assert_array_equal(W1, W2)
        np.testing.assert_array_equal(b1, b2)


@pytest.mark.parametrize("name", ["adam", "nesterov"])
def test_the_loops_run_on_both_halves_of_the_two_thread_step(name, monkeypatch):
    assert 52_085 >= Optimizer.SPLIT_MIN  # the flat array is updated in two halves on two threads
    two = _train(name, "float32", threads=2)
    monkeypatch.setattr(kernels, "_STATE", {})
    two_numpy = _train(name, "float32", threads=2)
    for (W1, _), (W2, _) in zip(two, two_numpy):
        np.testing.assert_array_equal(W1, W2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_loop_equals_the_numpy_passes_on_odd_sizes_and_values(dtype, monkeypatch):
    rng = np.random.default_rng(0)
    for n in (1, 7, 1000, 4097):
        g = (rng.standard_normal(n) * rng.choice([1e-6, 1.0, 1e3], n)).astype(dtype)
        start = [rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype) * 0.1,
                 np.abs(rng.standard_normal(n)).astype(dtype) * 1e-3]
        p, m, v = (a.copy() for a in start)
        assert kernels.adam(p, g, m, v, 0.9, 0.999, 1e-8, 3e-4)
        with monkeypatch.context() as mp:
            mp.setattr(kernels, "_STATE", {})
            q, mq, vq = (a.copy() for a in start)
            dp.make_optimizer("adam")._update(q, g, mq, vq, np.empty_like(q), 0.9, 0.999, 1e-8, 3e-4)
        np.testing.assert_array_equal(m, mq)
        np.testing.assert_array_equal(v, vq)
        np.testing.assert_array_equal(p, q)


def test_arrays_that_do_not_suit_the_loops_take_the_numpy_passes():
    rng = np.random.default_rng(1)
    a = rng.standard_normal(20).astype(np.float32)
    assert not kernels.adam(a[::2], a[::2].copy(), a[::2].copy(), a[::2].copy(), 0.9, 0.999, 1e-8, 1e-3)
    assert not kernels.adam(a, a.astype(np.float64), a.copy(), a.copy(), 0.9, 0.999, 1e-8, 1e-3)
    assert not kernels.momentum(a.astype(np.int64), a.copy(), a.copy(), 0.9, 0.1, False)
    W = rng.standard_normal((4, 5))  # 2-D contiguous arrays (unpacked layers) are fine
    assert kernels.momentum(W, W.copy(), np.zeros_like(W), 0.9, 0.1, False)


def test_a_short_run_does_not_import_numba_a_long_one_does():
    code = ("import sys, numpy as np, deltaprop as dp\n"
            "X = np.random.default_rng(0).standard_normal((300, 8)); y = np.arange(300) % 3\n"
            "dp.fit(dp.Network.from_sizes([8, 16, 3]), X, y, epochs=3, optimizer='adam')\n"
            "print('numba' in sys.modules)\n"
            "from deltaprop import kernels; kernels.LOAD_AT = 1000\n"
            "dp.fit(dp.Network.from_sizes([8, 16, 3]), X, y, epochs=3, optimizer='adam')\n"
            "print('numba' in sys.modules, kernels.loaded())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "PYTHONPATH": SRC})
    assert out.stdout.split() == ["False", "True", "True"]


def test_worth_loading_follows_the_run_length(without_kernels, monkeypatch):
    assert not kernels.worth_loading(1e12)  # switched off by DELTAPROP_NO_JIT
    monkeypatch.delenv("DELTAPROP_NO_JIT")
    assert kernels.worth_loading(kernels.LOAD_AT) and not kernels.worth_loading(kernels.LOAD_AT / 2)
    assert "loaded for longer runs" in kernels.status()


def test_a_broken_numba_leaves_the_numpy_passes(without_kernels, monkeypatch):
    import numba

    monkeypatch.delenv("DELTAPROP_NO_JIT")

    def broken(**options):
        raise RuntimeError("no LLVM here")

    monkeypatch.setattr(numba, "njit", broken)
    assert not kernels.load()
    assert "no LLVM here" in kernels.status() and not kernels.available()
    rng = np.random.default_rng(0)
    net = dp.Network.from_sizes([6, 8, 2], seed=0)
    history = dp.fit(net, rng.standard_normal((50, 6)), np.arange(50) % 2, epochs=2, optimizer="adam")
    assert len(history) == 2 and np.isfinite(history.loss).all()
