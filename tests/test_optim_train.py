"""Optimizers against their update formulas, and the training loop's promises."""

import math

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.optim import make_optimizer, make_schedule


def grad_sequence(shapes, steps, seed=0):
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=s) for s in shapes] for _ in range(steps)]


SHAPES = [(3, 4), (3,), (2, 3), (2,)]


def run(opt, steps):
    rng = np.random.default_rng(1)
    params = [rng.normal(size=s) for s in SHAPES]
    start = [p.copy() for p in params]
    grads = grad_sequence(SHAPES, steps)
    for g in grads:
        opt.step(params, g)
    return start, params, grads


@pytest.mark.parametrize("steps", [1, 10])
def test_sgd(steps):
    start, params, grads = run(make_optimizer("sgd", lr=0.05), steps)
    for i, p in enumerate(params):
        expected = start[i] - 0.05 * sum(g[i] for g in grads)
        np.testing.assert_allclose(p, expected, rtol=1e-12)


@pytest.mark.parametrize("steps", [1, 10])
@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_and_nesterov(steps, nesterov):
    lr, mu = 0.05, 0.9
    start, params, grads = run(make_optimizer("nesterov" if nesterov else "momentum", lr=lr, momentum=mu), steps)
    for i, p in enumerate(params):
        theta, v = start[i].copy(), np.zeros_like(start[i])
        for g in grads:
            v = mu * v - lr * g[i]
            theta = theta + (mu * v - lr * g[i] if nesterov else v)
        np.testing.assert_allclose(p, theta, rtol=1e-12)


@pytest.mark.parametrize("steps", [1, 10])
def test_adam(steps):
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    start, params, grads = run(make_optimizer("adam", lr=lr), steps)
    for i, p in enumerate(params):
        theta, m, v = start[i].copy(), 0 * start[i], 0 * start[i]
        for t, g in enumerate(grads, 1):
            m = b1 * m + (1 - b1) * g[i]
            v = b2 * v + (1 - b2) * g[i] ** 2
            theta = theta - lr * math.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
        np.testing.assert_allclose(p, theta, rtol=1e-12)


def test_optimizer_state_round_trip_continues_identically():
    for name in ("momentum", "adam"):
        a = make_optimizer(name, lr=0.01)
        start, params, grads = run(a, 5)
        b = make_optimizer(name, lr=0.01)
        b.load_state_dict(a.state_dict())
        p_a, p_b = [p.copy() for p in params], [p.copy() for p in params]
        extra = grad_sequence(SHAPES, 3, seed=9)
        for g in extra:
            a.step(p_a, g)
            b.step(p_b, g)
        for x, y in zip(p_a, p_b):
            assert x.tobytes() == y.tobytes()


def test_schedules():
    assert make_schedule("constant")(0.1, 7, 100) == 0.1
    assert make_schedule("step", step=2, gamma=0.5)(0.1, 5, 0) == pytest.approx(0.1 * 0.25)
    assert make_schedule("exponential", gamma=0.9)(0.1, 3, 0) == pytest.approx(0.1 * 0.9**3)
    assert make_schedule("invscaling", power_t=0.5)(0.1, 0, 99) == pytest.approx(0.01)
    with pytest.raises(dp.ConfigError, match="valid names"):
        make_schedule("cosine-ish")


def test_unknown_names_list_valid_ones_and_suggest():
    with pytest.raises(dp.ConfigError) as err:
        make_optimizer("adma")
    assert "adam" in err.value.hint and "did you mean" in err.value.hint
    with pytest.raises(dp.ConfigError, match="activation"):
        dp.Network.from_sizes([2, 3, 2], hidden="rleu")
    with pytest.raises(dp.ConfigError, match="loss"):
        dp.get_loss("hinge")


def test_mismatched_output_and_loss_is_refused():
    # Note 001 trains a ReLU output with cross-entropy: not a probability model.
    with pytest.raises(dp.ConfigError) as err:
        dp.Network.from_sizes([3, 4, 3, 2], hidden="relu", output="relu", loss="cross_entropy")
    assert "pairs with a 'softmax' output" in err.value.hint


def test_sgd_fold_of_the_learning_rate_equals_the_plain_step():
    """The trainer's folded step (δ_L scaled by α) equals θ −= α·backprop's gradient."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 5)), rng.integers(0, 3, 40)
    a = dp.Network.from_sizes([5, 6, 3], dtype="float64", seed=3)
    b = a.copy()
    dp.fit(a, X, y, epochs=1, batch_size=None, optimizer="sgd", lr=0.3, l2=0.2)
    _, grads = b.backprop(X, y, l2=0.2)
    for layer, (dW, db) in zip(b.layers, grads):
        layer.W -= 0.3 * dW
        layer.b -= 0.3 * db
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_allclose(la.W, lb.W, rtol=1e-13)
        np.testing.assert_allclose(la.b, lb.b, rtol=1e-13)


def test_minibatch_epoch_uses_each_row_once_and_mean_cost():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 4)), rng.integers(0, 2, 50)
    net = dp.Network.from_sizes([4, 2], dtype="float64")
    seen = []

    class Spy(dp.Callback):
        def on_batch_end(self, trainer, batch, cost):
            seen.append(trainer.net.layers[0].A_prev.shape[0])

    h = dp.fit(net, X, y, epochs=2, batch_size=16, callbacks=[Spy()])
    assert seen == [16, 16, 16, 2] * 2
    assert len(h) == 2 and h.epochs[0]["epoch"] == 1


def test_history_records_validation_and_gradient_flow():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(120, 6)), rng.integers(0, 3, 120)
    net = dp.Network.from_sizes([6, 8, 5, 3], seed=1)
    h = dp.fit(net, X, y, epochs=4, batch_size=32, validation_fraction=0.25, optimizer="adam")
    e = h.epochs[-1]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"):
        assert key in e
    assert len(e["delta_norm"]) == 3 and len(e["dW_norm"]) == 3
    assert all(v > 0 for v in e["dW_norm"])
    rows = h.to_rows()
    assert "dW_norm_3" in rows[0] and len(rows) == 4


def test_early_stopping_restores_best_weights():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 5)), rng.integers(0, 2, 60)  # noise: validation loss soon rises
    Xv, yv = rng.normal(size=(60, 5)), rng.integers(0, 2, 60)
    net = dp.Network.from_sizes([5, 64, 2], seed=0, dtype="float64")
    snapshots = []

    class Keep(dp.Callback):
        def on_epoch_end(self, trainer, logs):
            snapshots.append(trainer.net.get_weights())

    h = dp.fit(net, X, y, epochs=200, batch_size=10, lr=0.2, validation_data=(Xv, yv), early_stopping=3,
               callbacks=[Keep()])
    assert len(h) < 200 and "early stopping" in h.stop_reason
    best = h.best_epoch
    assert h.val_loss[best - 1] == min(h.val_loss)
    for (W, _b), layer in zip(snapshots[best - 1], net.layers):
        np.testing.assert_array_equal(W, layer.W)


def test_divergence_stops_with_finite_weights():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(100, 4)) * 10, rng.normal(size=100) * 100
    net = dp.Network.from_sizes([4, 16, 1], output="identity")
    with pytest.raises(dp.DivergenceError) as err:
        dp.fit(net, X, y, epochs=50, batch_size=10, optimizer="sgd", lr=1e3)
    assert "epoch" in err.value.message and "lower the learning rate" in err.value.hint
    assert all(np.all(np.isfinite(p)) for p in net.params())


def test_trainer_state_round_trip_is_bit_identical():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(90, 5)).astype(np.float32), rng.integers(0, 3, 90)
    full = dp.Network.from_sizes([5, 7, 3], seed=2)
    dp.Trainer(full, X, y, epochs=6, batch_size=16, optimizer="adam", seed=4).run()

    part = dp.Network.from_sizes([5, 7, 3], seed=2)
    first = dp.Trainer(part, X, y, epochs=3, batch_size=16, optimizer="adam", seed=4)
    first.run()
    state = first.state_dict()
    resumed_net = dp.Network.from_sizes([5, 7, 3], seed=99)
    second = dp.Trainer(resumed_net, X, y, epochs=6, batch_size=16, optimizer="adam", seed=123)
    second.load_state_dict(state)
    h = second.run()
    assert len(h) == 6
    for a, b in zip(full.params(), resumed_net.params()):
        assert a.tobytes() == b.tobytes()


def test_digits_reaches_96_percent_quickly():
    import time

    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    cut = int(0.7 * len(X))
    tr, te = order[:cut], order[cut:]
    net = dp.Network.from_sizes([64, 64, 10], hidden="relu", seed=0)
    started = time.perf_counter()
    dp.fit(net, X[tr], y[tr], epochs=30, batch_size=32, optimizer="sgd", lr=0.1, seed=0)
    elapsed = time.perf_counter() - started
    accuracy = np.mean(net.predict(X[te]) == y[te])
    assert accuracy >= 0.96, accuracy
    assert elapsed < 10


def test_sgd_is_plain_unless_a_momentum_is_given():
    from deltaprop.optim import SGD, Momentum
    from deltaprop.train import Trainer

    net = dp.Network.from_sizes([2, 3, 2], seed=0)
    X, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    assert type(Trainer(net, X, y, optimizer="sgd").optimizer) is SGD
    assert type(Trainer(net, X, y, optimizer="sgd", momentum=0.5).optimizer) is Momentum
    assert Trainer(net, X, y, optimizer="momentum").optimizer.momentum == 0.9


def test_a_batch_whose_weights_are_all_zero_is_skipped():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), np.array([0, 1] * 20)
    net = dp.Network.from_sizes([3, 4, 2], seed=0, dtype="float64")
    w = np.r_[np.zeros(20), np.ones(20)]
    history = dp.fit(net, X, y, epochs=2, batch_size=5, shuffle=False, sample_weight=w, optimizer="sgd")
    assert len(history) == 2 and np.isfinite(history.loss).all()
    # The same as training on the weighted rows alone, batch for batch (the zero batches change nothing).
    ref = dp.Network.from_sizes([3, 4, 2], seed=0, dtype="float64")
    dp.fit(ref, X[20:], y[20:], epochs=2, batch_size=5, shuffle=False, optimizer="sgd")
    for (W, b), (W2, b2) in zip(net.get_weights(), ref.get_weights()):
        assert np.array_equal(W, W2) and np.array_equal(b, b2)


def test_a_schedule_option_it_does_not_have_is_a_clear_error():
    with pytest.raises(dp.ConfigError, match="no option 'factor'") as info:
        make_schedule("step", step=10, factor=0.5)
    assert "step, gamma" in info.value.hint
    with pytest.raises(dp.ConfigError, match="no option 'factor'"):  # a ConfigError, not a TypeError
        dp.fit(dp.Network.from_sizes([2, 3, 2]), np.zeros((4, 2)), [0, 1, 0, 1], epochs=1, schedule="step",
               schedule_options={"step": 10, "factor": 0.5})


def test_adaptive_schedule_divides_the_rate_when_the_loss_stalls():
    from deltaprop.optim import make_schedule

    s = make_schedule("adaptive", patience=2)
    lr = 1.0
    for loss in (1.0, 0.5, 0.5, 0.5):  # improves once, then stalls twice
        s.end_epoch(loss, lr)
        lr = s(1.0, 0, 0)
    assert lr == 0.2 and s.stalls == 0
    # Through fit: a learning rate far too large stalls, and the schedule brings it down.
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), np.array([0, 1, 2] * 20)
    net = dp.Network.from_sizes([3, 8, 3], seed=0, dtype="float64")
    h = dp.fit(net, X, y, epochs=30, optimizer="sgd", lr=50.0, schedule="adaptive",
               schedule_options={"patience": 2})
    assert min(h._column("lr")) < 50.0
    assert make_schedule("adaptive", patience=None).end_epoch(1.0, 1.0) is None
