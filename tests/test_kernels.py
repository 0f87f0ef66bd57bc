"""The compiled update loops (deltaprop.kernels): the same bits as NumPy's passes, loaded only when a run
is long enough, and a training that works the same without them."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import kernels
from deltaprop.optim import Optimizer
from deltaprop.teach.diagnose import DeadUnitMonitor
from deltaprop.train import Trainer, TrainOptions

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


def _printed_by(code: str) -> list[str]:
    """The words ``code`` prints, run in a fresh Python (nothing loaded) on this checkout's deltaprop."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "PYTHONPATH": SRC})
    return out.stdout.split()


def test_a_short_run_does_not_import_numba_a_long_one_does():
    code = ("import sys, numpy as np, deltaprop as dp\n"
            "X = np.random.default_rng(0).standard_normal((300, 8)); y = np.arange(300) % 3\n"
            "dp.fit(dp.Network.from_sizes([8, 16, 3]), X, y, epochs=3, optimizer='adam')\n"
            "print('numba' in sys.modules)\n"
            "from deltaprop import kernels; kernels.LOAD_AT = 1000\n"
            "dp.fit(dp.Network.from_sizes([8, 16, 3]), X, y, epochs=3, optimizer='adam')\n"
            "print('numba' in sys.modules, kernels.loaded())\n")
    assert _printed_by(code) == ["False", "True", "True"]


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


# -- the compiled training step (Network.compiled_step) -------------------------------------------------
@pytest.fixture
def step_loaded(monkeypatch):
    """The compiled step loaded, and every run long enough to take it; unloaded afterwards, so that the
    other test files' short runs take the NumPy step they test."""
    for dtype in ("float32", "float64"):
        assert kernels.load_step(dtype), kernels.status()
    monkeypatch.setattr(kernels, "STEP_LOAD_AT", 0)
    state = kernels._STATE  # a test may hide it (_hide); this one is put back after the test
    yield
    for key in ("step", "step_dtypes"):
        state.pop(key, None)


def _hide(monkeypatch):
    """The NumPy step from here on: nothing loaded, and nothing to load."""
    monkeypatch.setattr(kernels, "_STATE", {})
    monkeypatch.setenv("DELTAPROP_NO_JIT", "1")


def _sgd_run(dtype="float32", sizes=(40, 70, 50, 6), rows=700, hidden="relu", **options):
    """A short training of a network the compiled step fits (plain SGD unless ``options`` says), with a
    validation split and a last batch of another size."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((rows, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], rows)
    net = dp.Network.from_sizes(list(sizes), hidden=hidden, seed=4, dtype=dtype)
    settings = dict(epochs=3, batch_size=64, optimizer="sgd", lr=0.05, seed=2, validation_fraction=0.1)
    history = dp.fit(net, X, y, **{**settings, **options})
    return net, history


def _same_training(a, b):
    (net_a, hist_a), (net_b, hist_b) = a, b
    for p, q in zip(net_a.params(), net_b.params()):
        np.testing.assert_array_equal(p, q)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert [e[key] for e in hist_a.epochs] == [e[key] for e in hist_b.epochs], key


@pytest.mark.parametrize("dtype,options", [
    ("float32", {}),
    ("float64", {}),
    ("float32", {"l2": 0.01, "schedule": "step", "schedule_options": {"step": 1, "gamma": 0.5}}),
    ("float32", {"batch_size": 128}),  # 630 rows: batches of 128 and a last one of 118
])
def test_a_plain_sgd_training_gives_the_same_bits_with_and_without_the_compiled_step(step_loaded, dtype,
                                                                                   options, monkeypatch):
    compiled = _sgd_run(dtype, **options)
    assert compiled[0]._step_plan is not None  # the compiled pieces took the steps
    _hide(monkeypatch)
    plain = _sgd_run(dtype, **options)
    assert plain[0]._step_plan is None
    _same_training(compiled, plain)


@pytest.mark.parametrize("options", [
    {"optimizer": "adam", "lr": 1e-3},
    {"optimizer": "momentum", "l2": 0.01},
    {"optimizer": "nesterov", "dtype": "float64"},
])
@pytest.mark.parametrize("update_loops", [True, False])
def test_other_optimizers_take_the_compiled_passes_with_the_same_bits(step_loaded, options, update_loops,
                                                                       monkeypatch):
    """Their gradients come from the compiled forward and backward passes; their update stays theirs
    (the compiled update loops or NumPy's passes)."""
    if not update_loops:
        monkeypatch.setattr(kernels, "LOAD_AT", float("inf"))
        for key in ("adam", "momentum", "nesterov"):
            monkeypatch.delitem(kernels._STATE, key, raising=False)
    compiled = _sgd_run(**options)
    assert compiled[0]._step_plan is not None and kernels.loaded() == update_loops
    _hide(monkeypatch)
    _same_training(compiled, _sgd_run(**options))


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_a_batch_callback_sees_each_batchs_own_gradients(step_loaded, name, monkeypatch):
    """on_batch_end reads net.grads as the batch left them, with the compiled step and without; plain
    SGD then writes them (before, it stepped inside backward and left the last epoch's), and the weights
    are the bits of a run without the callback. The diagnosis's dead-unit monitor reads activations
    only: plain SGD still steps inside backward beside it."""
    class GradNorms(dp.Callback):
        def __init__(self):
            self.norms = []

        def on_batch_end(self, trainer, batch, cost):
            self.norms.append([float(np.linalg.norm(g)) for pair in trainer.net.grads for g in pair])

    seen, step = [], dp.Network.compiled_step

    def spy(self, *args, sgd_step=True, **kwargs):
        seen.append(sgd_step)
        return step(self, *args, sgd_step=sgd_step, **kwargs)
    monkeypatch.setattr(dp.Network, "compiled_step", spy)
    lr = 0.05 if name == "sgd" else 1e-3
    compiled = GradNorms()
    watched = _sgd_run(optimizer=name, lr=lr, callbacks=[compiled])
    assert seen and not any(seen)
    seen.clear()
    _same_training(watched, _sgd_run(optimizer=name, lr=lr, callbacks=[DeadUnitMonitor()]))
    assert seen.count(True) == (27 if name == "sgd" else 0)  # all but each epoch's last of 10 batches
    monkeypatch.undo()
    _hide(monkeypatch)
    plain = GradNorms()
    _sgd_run(optimizer=name, lr=lr, callbacks=[plain])
    assert compiled.norms == plain.norms and len(compiled.norms) == 30
    assert all(n > 0 for norms in compiled.norms for n in norms[0::2])
    assert len({tuple(n) for n in compiled.norms}) == 30  # fresh every batch


@pytest.mark.parametrize("hidden", ["relu", "sigmoid", "tanh", "identity", "leaky_relu"])
@pytest.mark.parametrize("sizes", [(40, 70, 16, 6), (40, 20, 50, 6)])  # narrow (column-major) hidden layers
def test_every_hidden_activation_and_layout_gives_the_same_bits(step_loaded, hidden, sizes, monkeypatch):
    for options in ({"optimizer": "sgd", "l2": 0.01}, {"optimizer": "adam", "lr": 1e-3, "dtype": "float64"}):
        compiled = _sgd_run(sizes=sizes, hidden=hidden, **options)
        assert compiled[0]._step_plan is not None
        with monkeypatch.context() as hidden_kernels:
            _hide(hidden_kernels)
            _same_training(compiled, _sgd_run(sizes=sizes, hidden=hidden, **options))


def test_a_deeper_network_and_two_classes_give_the_same_bits(step_loaded, monkeypatch):
    compiled = _sgd_run(sizes=(30, 64, 33, 40, 2), batch_size=50)
    assert compiled[0]._step_plan is not None
    _hide(monkeypatch)
    _same_training(compiled, _sgd_run(sizes=(30, 64, 33, 40, 2), batch_size=50))


def test_one_compiled_step_equals_the_numpy_step_on_odd_values(step_loaded):
    rng = np.random.default_rng(0)
    a = dp.Network.from_sizes([20, 36, 48, 5], seed=1)
    b = dp.Network.from_sizes([20, 36, 48, 5], seed=1)
    X = (rng.standard_normal((37, 20)) * rng.choice([1e-20, 1.0, 1e3], (37, 20))).astype(np.float32)
    X[3, :] = 0.0  # a row of zeros: every ReLU at its kink, Z = b
    Y = np.asfortranarray(a.prepare_targets(rng.integers(0, 5, 37)))
    Y[5] = [0.1, 0.2, 0.3, 0.4, 0.0]  # soft targets sum in order
    for _ in range(5):
        a.forward(X, cache=True, check=False)
        cost = a.cached_cost(Y, 0.3)
        a.backward(Y, 0.3, scale=0.01, sgd_step=True)
        got = b.compiled_step(X, Y, 0.01, 0.3)
        assert got is not None and got[0] == cost
        right = int(np.count_nonzero(a.layers[-1].A[np.arange(37), np.argmax(Y, axis=1)]
                                     >= a.layers[-1].A.max(axis=1)))
        assert got[1] == right
    for p, q in zip(a.params(), b.params()):
        np.testing.assert_array_equal(p, q)
    for la, lb in zip(a.layers, b.layers):  # the cache that explain and the gradient figures read
        for name in ("A_prev", "Z", "A", "delta"):
            np.testing.assert_array_equal(getattr(la, name), getattr(lb, name))


def test_a_layer_given_new_weights_or_activation_between_steps_is_followed(step_loaded):
    rng = np.random.default_rng(2)
    a, b = dp.Network.from_sizes([20, 36, 48, 5], seed=1), dp.Network.from_sizes([20, 36, 48, 5], seed=1)
    X = rng.standard_normal((30, 20)).astype(np.float32)
    Y = np.asfortranarray(a.prepare_targets(rng.integers(0, 5, 30)))
    for step in range(5):
        for net in (a, b):  # a callback rebinds a weight array, then swaps an activation
            if step == 2:
                net.layers[1].W = net.layers[1].W * 0.5
            if step == 3:
                net.layers[0].activation = dp.activations.Tanh()
        a.forward(X, cache=True, check=False)
        cost = a.cached_cost(Y)
        a.backward(Y, scale=0.05, sgd_step=True)
        assert b.compiled_step(X, Y, 0.05)[0] == cost
    for p, q in zip(a.params(), b.params()):
        np.testing.assert_array_equal(p, q)


def test_batches_and_networks_that_do_not_fit_take_the_numpy_step(step_loaded):
    rng = np.random.default_rng(0)
    net = dp.Network.from_sizes([20, 36, 5], seed=1)
    X = rng.standard_normal((10, 20)).astype(np.float32)
    Y = np.asfortranarray(net.prepare_targets(np.arange(10) % 5))
    before = [p.copy() for p in net.params()]
    assert net.compiled_step(X[:1], Y[:1], 0.1) is None  # one row
    assert net.compiled_step(X.astype(np.float64), Y, 0.1) is None  # another dtype
    assert net.compiled_step(np.asfortranarray(X), Y, 0.1) is None  # column-major X
    assert net.compiled_step(X, np.ascontiguousarray(Y), 0.1) is None  # row-major Y
    for p, q in zip(before, net.params()):
        np.testing.assert_array_equal(p, q)  # nothing done
    assert not dp.Network.from_sizes([20, 36, 40]).compiled_step_fits()  # 40 classes: a row-major output
    assert not dp.Network.from_sizes([20, 1, 5]).compiled_step_fits()  # a layer one unit wide
    assert not dp.Network.from_sizes([20, 36, 1], output="identity").compiled_step_fits()  # regression
    assert not dp.Network.from_sizes([20, 36, 3], output="sigmoid").compiled_step_fits()  # multi-label

    class Softplusish(dp.activations.ReLU):  # a subclass may compute otherwise: not the piece's ReLU
        pass

    net = dp.Network.from_sizes([20, 36, 5])
    net.layers[0].activation = Softplusish()
    assert not net.compiled_step_fits()


@pytest.mark.parametrize("options", [{"sample_weight": np.linspace(0.5, 2, 700)}, {"threads": 2},
                                     {"class_weight": "balanced"}])
def test_runs_the_compiled_step_does_not_serve_train_as_before(step_loaded, options):
    net, history = _sgd_run(**options)
    assert net._step_plan is None and np.isfinite(history.loss).all()


def test_a_divergence_is_found_at_the_same_batch_with_the_compiled_step(step_loaded, monkeypatch):
    errors = []
    for hide in (False, True):
        if hide:
            _hide(monkeypatch)
        with pytest.raises(dp.DivergenceError) as info:
            _sgd_run(lr=1e4, epochs=2)
        errors.append(str(info.value))
    assert errors[0] == errors[1]


def test_without_numpys_blas_the_step_is_numpys(step_loaded, monkeypatch):
    from deltaprop import fast

    monkeypatch.setitem(fast._GEMM, "gemm", {})  # as DELTAPROP_NO_CBLAS=1, or another BLAS
    net, history = _sgd_run()
    assert net._step_plan is None and np.isfinite(history.loss).all()


def test_the_compiled_step_loads_for_long_runs_only(without_kernels, monkeypatch):
    assert not kernels.worth_loading_step(1e9)  # switched off by DELTAPROP_NO_JIT
    monkeypatch.delenv("DELTAPROP_NO_JIT")
    assert kernels.worth_loading_step(kernels.STEP_LOAD_AT) and not kernels.worth_loading_step(kernels.STEP_LOAD_AT - 1)
    code = ("import sys, numpy as np, deltaprop as dp\n"
            "X = np.random.default_rng(0).standard_normal((640, 8)).astype('float32'); y = np.arange(640) % 3\n"
            "dp.fit(dp.Network.from_sizes([8, 40, 3]), X, y, epochs=3, optimizer='sgd')\n"
            "print('numba' in sys.modules)\n"
            "from deltaprop import kernels; kernels.STEP_LOAD_AT = 20\n"
            "net = dp.Network.from_sizes([8, 40, 3])\n"
            "dp.fit(net, X, y, epochs=3, optimizer='sgd')\n"
            "print('numba' in sys.modules, net._step_plan is not None, kernels.status().startswith('compiled training step'))\n")
    assert _printed_by(code) == ["False", "True", "True", "True"]


def test_the_pause_of_loading_the_kernels_is_measured_and_explained(step_loaded, monkeypatch, capsys):
    """A first long run on a machine waits for Numba to compile the kernels before its first epoch:
    the trainer measures the wait (load_seconds) and the command's progress output says what it was."""
    from deltaprop.cli.train import _Progress

    loaded = kernels.load_step

    def slow_load(dtype):  # as Numba compiling the pieces on a machine's first run
        time.sleep(1.1)
        return loaded(dtype)
    monkeypatch.setattr(kernels, "load_step", slow_load)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((200, 5)).astype(np.float32), rng.integers(0, 3, 200)
    trainer = Trainer(dp.Network.from_sizes([5, 8, 3], seed=0), X, y, TrainOptions(epochs=1, optimizer="sgd"),
                      callbacks=[_Progress(1, quiet=False).callback])
    trainer.run()
    assert trainer._compiled and 1.1 <= trainer.load_seconds < 10
    assert "loading deltaprop's compiled kernels took 1." in capsys.readouterr().err
    for seconds, quiet in ((0.3, False), (5.0, True)):  # a load from Numba's cache; --quiet
        trainer.load_seconds = seconds
        _Progress(1, quiet=quiet).begin(trainer)
        assert "compiled kernels" not in capsys.readouterr().err
    _hide(monkeypatch)
    trainer = Trainer(dp.Network.from_sizes([5, 8, 3], seed=0), X, y, TrainOptions(epochs=1, optimizer="sgd"))
    trainer.run()
    assert not trainer._compiled and trainer.load_seconds < 0.5
