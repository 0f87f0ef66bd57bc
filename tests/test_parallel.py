"""The two-thread step (deltaprop.parallel), the step against a plain NumPy step over a whole training,
and prediction in blocks."""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.errors import ConfigError, DivergenceError, InputError
from deltaprop.io.preprocessing import Scaler


def _data(m=600, n=30, k=4, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n)).astype(dtype)
    W = rng.standard_normal((n, k))
    y = np.argmax(X @ W + 0.3 * rng.standard_normal((m, k)), axis=1)
    return X, y


def _train(threads, optimizer="sgd", seed=3, epochs=4, **options):
    X, y = _data()
    net = dp.Network.from_sizes([30, 48, 24, 4], seed=seed)
    history = dp.fit(net, X, y, epochs=epochs, batch_size=100, optimizer=optimizer,
                     lr=0.05 if optimizer != "adam" else 3e-3, seed=seed, threads=threads, **options)
    return net, history


@pytest.mark.parametrize("optimizer", ["sgd", "nesterov", "adam"])
def test_two_threads_equal_one_thread_within_float32_rounding(optimizer):
    one, h1 = _train(1, optimizer, l2=1e-3)
    two, h2 = _train(2, optimizer, l2=1e-3)
    for (W1, b1), (W2, b2) in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(W2, W1, rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(b2, b1, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(h2.loss, h1.loss, rtol=1e-4)
    assert h2.accuracy == pytest.approx(h1.accuracy, abs=2 / 600)  # a row at a tie may flip
    for e1, e2 in zip(h1.epochs, h2.epochs):  # the gradient-flow figures count both halves
        np.testing.assert_allclose(e2["delta_norm"], e1["delta_norm"], rtol=1e-3)
        np.testing.assert_allclose(e2["dW_norm"], e1["dW_norm"], rtol=1e-3)
    assert any(not np.array_equal(a, b) for a, b in zip(one.params(), two.params()))  # it did split


def test_two_threads_give_the_same_bits_from_run_to_run():
    a, ha = _train(2, "adam")
    b, hb = _train(2, "adam")
    for p, q in zip(a.params(), b.params()):
        assert np.array_equal(p, q)
    assert ha.loss == hb.loss


def test_same_seed_same_bits_on_one_thread():
    a, _ = _train(1, "sgd")
    b, _ = _train(1, "sgd")
    assert all(np.array_equal(p, q) for p, q in zip(a.params(), b.params()))


def test_two_threads_fall_back_for_sample_weights_and_small_batches():
    X, y = _data(m=200)
    sw = np.linspace(0.5, 2.0, 200)
    nets = []
    for threads in (1, 2):
        net = dp.Network.from_sizes([30, 16, 4], seed=0)
        dp.fit(net, X, y, epochs=2, batch_size=50, seed=0, sample_weight=sw, threads=threads)
        nets.append(net)
    for p, q in zip(*(n.params() for n in nets)):  # weighted rows: the one-thread step, same bits
        assert np.array_equal(p, q)
    net = dp.Network.from_sizes([30, 16, 4], seed=0)
    dp.fit(net, X, y, epochs=1, batch_size=40, threads=2)  # halves of 20 rows: one thread


def test_two_threads_report_divergence_and_restore_the_weights():
    X, y = _data(m=400)
    X[:, 0] *= 1e4
    errors = []
    for threads in (1, 2):
        net = dp.Network.from_sizes([30, 32, 4], seed=0)
        with pytest.raises(DivergenceError) as info:
            dp.fit(net, X, y, epochs=3, batch_size=100, optimizer="sgd", lr=50.0, threads=threads)
        assert all(np.isfinite(p).all() for p in net.params())  # rolled back to the last finite state
        errors.append((info.value.epoch, info.value.batch))
    assert errors[0] == errors[1]


def test_threads_must_be_one_or_two():
    X, y = _data(m=100)
    for bad in (0, 3, 1.5):
        with pytest.raises(ConfigError):
            dp.fit(dp.Network.from_sizes([30, 4], seed=0), X, y, epochs=1, threads=bad)


def _plain_training(net, X, y, epochs, batch_size, lr, seed):
    """The textbook step in plain NumPy (note 002, rows as examples) with the trainer's shuffles."""
    Ws = [layer.W.copy() for layer in net.layers]
    bs = [layer.b.copy() for layer in net.layers]
    rng = np.random.default_rng(seed)
    Y = np.eye(net.sizes[-1], dtype=X.dtype)[y]
    n = X.shape[0]
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            A, cache = X[idx], []
            for i, (W, b) in enumerate(zip(Ws, bs)):
                Z = A @ W.T + b
                cache.append((A, Z))
                if i < len(Ws) - 1:
                    A = np.maximum(Z, 0)
                else:
                    E = np.exp(Z - Z.max(axis=1, keepdims=True))
                    A = E / E.sum(axis=1, keepdims=True)
            delta = (A - Y[idx]) / len(idx)
            for i in range(len(Ws) - 1, -1, -1):
                A_prev, _ = cache[i]
                dW, db = delta.T @ A_prev, delta.sum(axis=0)
                if i > 0:
                    delta = (delta @ Ws[i]) * (cache[i - 1][1] > 0)
                Ws[i] -= lr * dW
                bs[i] -= lr * db
    return Ws, bs


@pytest.mark.parametrize("threads", [1, 2])
def test_the_step_equals_a_plain_numpy_step_over_a_whole_training(threads):
    X, y = _data(m=500)
    net = dp.Network.from_sizes([30, 40, 20, 4], seed=5)
    Ws, bs = _plain_training(net, X, y, epochs=5, batch_size=100, lr=0.1, seed=7)
    dp.fit(net, X, y, epochs=5, batch_size=100, optimizer=dp.make_optimizer("sgd", lr=0.1), seed=7,
           threads=threads)
    for layer, W, b in zip(net.layers, Ws, bs):
        np.testing.assert_allclose(layer.W, W, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(layer.b, b, rtol=1e-4, atol=1e-5)


# -- prediction in blocks ------------------------------------------------------------------------
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity"])
def test_prediction_in_blocks_equals_the_whole_pass(output, monkeypatch):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((103, 12))
    net = dp.Network.from_sizes([12, 9, 7, 3], hidden=["tanh", "relu"], output=output, seed=2,
                                dtype="float64")
    whole = net.forward(X, cache=True).copy()
    monkeypatch.setattr(net, "infer_rows", 10)
    np.testing.assert_allclose(net.forward(X), whole, rtol=1e-13, atol=1e-15)
    Z, A = net.logits(X)
    np.testing.assert_allclose(A, whole, rtol=1e-13, atol=1e-15)
    expected = net.decide(whole)
    if output == "identity":  # values: equal up to the rounding of the products' order
        np.testing.assert_allclose(net.predict(X), expected, rtol=1e-13, atol=1e-15)
    else:
        np.testing.assert_array_equal(net.predict(X), expected)


def test_predict_is_the_argmax_of_predict_proba_in_float32():
    X, _ = _data(m=3000)
    net = dp.Network.from_sizes([30, 64, 10], seed=4)
    np.testing.assert_array_equal(net.predict(X), np.argmax(net.predict_proba(X), axis=1))
    np.testing.assert_array_equal(net.predict(X.astype(np.float64)), net.predict(X))  # cast block by block


def test_prediction_names_the_first_bad_row_across_blocks(monkeypatch):
    X, _ = _data(m=50)
    net = dp.Network.from_sizes([30, 8, 4], seed=0)
    monkeypatch.setattr(net, "infer_rows", 16)
    X = X.astype(np.float64)
    X[37, 5] = np.nan
    with pytest.raises(InputError, match="row 37, column 5"):
        net.predict(X)
    with pytest.raises(InputError, match="features"):
        net.predict(X[:, :5])


def test_prediction_reads_sparse_input_in_blocks(monkeypatch):
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(0)
    X = sparse.random(70, 40, density=0.1, format="csr", random_state=0, dtype=np.float64)
    net = dp.Network.from_sizes([40, 6, 3], seed=0, dtype="float64")
    monkeypatch.setattr(net, "infer_rows", 16)
    np.testing.assert_allclose(net.forward(X), net.forward(X.toarray()), rtol=1e-12)
    assert rng is not None


@pytest.mark.parametrize("kind", ["standard", "minmax", "divide", "none"])
def test_scaling_folded_into_the_first_layer_gives_the_same_outputs(kind):
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 5.0, size=(200, 6))
    X[:, 2] = 7.0  # a constant column (scale 1)
    scaler = Scaler(kind).fit(X)
    net = dp.Network.from_sizes([6, 10, 3], seed=1)
    folded = scaler.fold_into(net)
    np.testing.assert_allclose(folded.forward(X), net.forward(scaler.transform(X, dtype=np.float32)),
                               rtol=1e-4, atol=1e-5)
    if kind == "none":
        assert all(np.array_equal(p, q) for p, q in zip(net.params(), folded.params()))
    for p, q in zip(net.params()[2:], folded.params()[2:]):  # layers after the first untouched
        assert np.array_equal(p, q)


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam"])
def test_updates_over_two_threads_give_the_same_bits(name):
    from deltaprop.parallel import SplitStep

    rng = np.random.default_rng(0)
    from deltaprop.optim import Optimizer

    n = 3 * Optimizer.SPLIT_MIN + 17
    grads = [rng.standard_normal(n).astype(np.float32) for _ in range(4)]
    results = []
    net = dp.Network.from_sizes([4, 3], seed=0)
    with SplitStep(net) as halves:
        for threads in (1, 2):
            opt = dp.make_optimizer(name, lr=0.01)
            opt.halves = halves if threads == 2 else None
            p = rng.standard_normal(n).astype(np.float32) if not results else results[0][0].copy()
            start = p.copy()
            for g in grads:
                (opt.apply if opt.folds_lr else opt.step)([p], [g])
            results.append((start, p))
    assert np.array_equal(results[0][0], results[1][0])
    assert np.array_equal(results[0][1], results[1][1])
