"""The engine against finite differences, hand-worked numbers and the notes' per-example loop."""

import itertools
import math
import warnings

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import ops
from deltaprop.activations import ACTIVATIONS, get_activation
from deltaprop.gradcheck import numerical_gradient, relative_error
from deltaprop.reference import per_example_backprop

PAIRINGS = [("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy"), ("identity", "squared_error"),
            ("exp", "poisson")]
HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu"]


def make_problem(depth, hidden, output, loss, m, seed=0):
    """A float64 network of `depth` layers and a batch whose pre-activations stay away from ReLU kinks."""
    rng = np.random.default_rng(seed)
    sizes = [4] + [5, 3, 4][: depth - 1] + [3]
    for attempt in range(50):
        net = dp.Network.from_sizes(sizes, hidden=hidden, output=output, loss=loss, dtype="float64",
                                    seed=seed + 100 * attempt)
        for layer in net.layers:
            layer.b[:] = rng.normal(0, 0.1, size=layer.b.shape)
        X = rng.normal(size=(m, sizes[0]))
        net.forward(X, cache=True, check=False)
        if all(np.min(np.abs(layer.Z)) > 1e-3 for layer in net.layers[:-1]):
            break
    if loss == "cross_entropy":
        Y = rng.integers(0, sizes[-1], size=m)
    elif loss == "binary_cross_entropy":
        Y = rng.integers(0, 2, size=(m, sizes[-1]))
    elif loss == "poisson":
        Y = rng.poisson(1.5, size=(m, sizes[-1])).astype(float)  # counts, zeros among them (y log y = 0)
    else:
        Y = rng.normal(size=(m, sizes[-1]))
    return net, X, Y


CASES = [
    (depth, hidden, output, loss, m, l2)
    for depth, hidden, (output, loss), m, l2 in itertools.product([1, 2, 3, 4], HIDDEN, PAIRINGS, [1, 7], [0.0, 0.3])
    if depth > 1 or hidden == "identity"  # a one-layer network has no hidden activation
]


@pytest.mark.parametrize("depth,hidden,output,loss,m,l2", CASES)
def test_gradient_matches_finite_differences(depth, hidden, output, loss, m, l2):
    net, X, Y = make_problem(depth, hidden, output, loss, m)
    report = dp.gradcheck(net, X, Y, l2=l2)
    assert report.ok, report.to_text()
    assert report.max_error <= 1e-7
    assert len(report.rows) == 2 * depth  # every W and every b, biases included


@pytest.mark.parametrize("output,loss", PAIRINGS)
def test_l2_term_alone_matches_finite_differences(output, loss):
    """d/dθ [J(λ) − J(0)] = (λ/m) W for weights and 0 for biases."""
    net, X, Y = make_problem(3, "tanh", output, loss, m=5)
    l2 = 0.7
    _, g_reg = net.backprop(X, Y, l2=l2)
    _, g_plain = net.backprop(X, Y, l2=0.0)

    def l2_part():
        return net.cost(X, Y, l2=l2) - net.cost(X, Y, l2=0.0)

    for layer, (dW, db), (dW0, db0) in zip(net.layers, g_reg, g_plain):
        num_W = numerical_gradient(l2_part, layer.W)
        num_b = numerical_gradient(l2_part, layer.b)
        assert relative_error(dW - dW0, num_W) < 1e-7
        np.testing.assert_allclose(dW - dW0, l2 / 5 * layer.W, rtol=1e-10, atol=1e-14)
        assert np.max(np.abs(num_b)) < 1e-8 and np.array_equal(db, db0)


def test_gradcheck_catches_a_wrong_gradient():
    net, X, Y = make_problem(2, "sigmoid", "softmax", "cross_entropy", m=4)
    _, grads = net.backprop(X, Y)
    wrong = [(dW.copy(), db.copy()) for dW, db in grads]
    wrong[0][0][1, 2] += 1e-3  # one entry off by a little
    report = dp.gradcheck(net, X, Y, grads=wrong)
    assert not report.ok
    assert not report.rows[0].ok and all(r.ok for r in report.rows[1:])
    # The classic slip of note 001 (dJ/dA = Y − A): the sign of every gradient flipped.
    flipped = [(-dW, -db) for dW, db in grads]
    assert dp.gradcheck(net, X, Y, grads=flipped).max_error > 0.9
    # Forgetting the 1/m: twice too large on a batch of 4.
    assert not dp.gradcheck(net, X, Y, grads=[(4 * dW, 4 * db) for dW, db in grads]).ok


@pytest.mark.parametrize("depth,hidden,output,loss", [
    (4, "sigmoid", "sigmoid", "binary_cross_entropy"),
    (3, "relu", "softmax", "cross_entropy"),
    (2, "tanh", "identity", "squared_error"),
    (3, "leaky_relu", "softmax", "cross_entropy"),
    (2, "tanh", "exp", "poisson"),
])
@pytest.mark.parametrize("l2", [0.0, 0.5])
def test_per_example_loop_equals_vectorized(depth, hidden, output, loss, l2):
    net, X, Y = make_problem(depth, hidden, output, loss, m=9, seed=3)
    c_loop, g_loop = per_example_backprop(net, X, Y, l2=l2)
    c_vec, g_vec = net.backprop(X, Y, l2=l2)
    assert c_loop == pytest.approx(c_vec, rel=1e-10)
    for (dW1, db1), (dW2, db2) in zip(g_loop, g_vec):
        np.testing.assert_allclose(dW1, dW2, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(db1, db2, rtol=1e-10, atol=1e-15)


def test_per_example_record_ends_at_the_vectorized_sum():
    net, X, Y = make_problem(2, "relu", "softmax", "cross_entropy", m=3)
    _, grads, steps = per_example_backprop(net, X, Y, record=True)
    assert len(steps) == 3
    last = steps[-1]
    for Delta, (dW, db) in zip(last, grads):
        np.testing.assert_allclose(Delta[:, 1:] / 3, dW, rtol=1e-12)
        np.testing.assert_allclose(Delta[:, 0] / 3, db, rtol=1e-12)


# -- hand-worked numbers ---------------------------------------------------------------------------
def sig(z):
    return 1.0 / (1.0 + math.exp(-z))


def test_sigmoid_derivative_at_zero_is_a_quarter():
    g = get_activation("sigmoid")
    Z = np.zeros((1, 1))
    assert g.derivative(Z, g.forward(Z))[0, 0] == 0.25
    assert get_activation("tanh").derivative(Z, np.tanh(Z))[0, 0] == 1.0


def test_two_two_one_network_by_hand():
    """x = (1, 2), y = 1, sigmoid everywhere, binary cross-entropy: every number by hand."""
    W1, W2 = [[0.1, 0.2], [0.3, 0.4]], [[0.5, 0.6]]
    b1, b2 = [0.01, -0.02], [0.03]
    net = dp.Network.from_weights([(W1, b1), (W2, b2)], ["sigmoid", "sigmoid"], dtype="float64")
    x, y = (1.0, 2.0), 1.0
    z1 = [0.1 * x[0] + 0.2 * x[1] + 0.01, 0.3 * x[0] + 0.4 * x[1] - 0.02]
    a1 = [sig(z) for z in z1]
    z2 = 0.5 * a1[0] + 0.6 * a1[1] + 0.03
    a2 = sig(z2)
    d2 = a2 - y  # δ^(3) = a^(3) − y
    d1 = [W2[0][j] * d2 * a1[j] * (1 - a1[j]) for j in range(2)]  # δ^(2) = Θᵀδ ⊙ a(1 − a)
    J = -(y * math.log(a2) + (1 - y) * math.log(1 - a2))

    cost, grads = net.backprop(np.array([x]), np.array([[y]]))
    assert cost == pytest.approx(J, rel=1e-12)
    assert net.layers[1].delta[0, 0] == pytest.approx(d2, rel=1e-12)
    np.testing.assert_allclose(net.layers[0].delta[0], d1, rtol=1e-12)
    np.testing.assert_allclose(grads[1][0], [[d2 * a1[0], d2 * a1[1]]], rtol=1e-12)
    np.testing.assert_allclose(grads[0][0], [[d1[0] * x[0], d1[0] * x[1]], [d1[1] * x[0], d1[1] * x[1]]], rtol=1e-12)
    np.testing.assert_allclose(grads[0][1], d1, rtol=1e-12)


@pytest.mark.parametrize("K", [2, 10, 100])
def test_initial_softmax_loss_is_log_k(K):
    net = dp.Network.from_sizes([20, 30, K], hidden="tanh", init="uniform", epsilon=1e-4, dtype="float64", seed=1)
    X = np.random.default_rng(0).normal(size=(50, 20))
    y = np.arange(50) % K
    assert net.cost(X, y) == pytest.approx(math.log(K), rel=1e-4)


def test_softmax_jacobian_collapses_to_a_minus_y():
    """J_softmax · (−y/a) = a − y (note 002), row by row."""
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(4, 5))
    A = ops.softmax(Z)
    Y = np.eye(5)[[0, 3, 1, 4]]
    Jac = get_activation("softmax").jacobian(A)
    np.testing.assert_allclose(np.einsum("mij,mj->mi", Jac, -Y / A), A - Y, atol=1e-12)
    np.testing.assert_allclose(get_activation("softmax").backward(-Y / A, Z, A), A - Y, atol=1e-12)


# -- numerical stability ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_no_overflow_at_huge_logits(dtype):
    Z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [3e4, 1e4, -5e3]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ACTIVATIONS:
            if name == "exp":  # e^{1e4} is infinite: a Poisson rate that large is a divergence (Trainer's job)
                continue
            A = get_activation(name).forward(Z.copy())
            assert np.all(np.isfinite(A)), name
        assert ops.sigmoid(Z)[0, 0] == 1.0 and ops.sigmoid(Z)[0, 1] == 0.0
        np.testing.assert_allclose(ops.softmax(Z).sum(axis=1), 1.0, rtol=1e-6)
        assert np.all(np.isfinite(ops.log_softmax(Z))) and np.all(np.isfinite(ops.log_sigmoid(Z)))
        for output, loss in PAIRINGS:
            if output == "exp":
                continue
            lo = dp.get_loss(loss)
            A = get_activation(output).forward(Z.copy())
            Y = np.eye(3, dtype=dtype)[[1, 0, 2]]
            value = lo.value(Z, A, Y)
            assert np.isfinite(value)
        # The wrong-class logit 1e4 above the right one costs exactly 1e4 nats, not inf.
        ce = dp.get_loss("cross_entropy").value(Z[:1], ops.softmax(Z[:1]), np.array([[0, 1, 0]], dtype=dtype))
        assert ce == pytest.approx(2e4, rel=1e-6)


def test_training_at_huge_inputs_has_no_warnings():
    net = dp.Network.from_sizes([3, 4, 2], hidden="sigmoid", output="sigmoid", dtype="float32")
    X = np.array([[1e4, -1e4, 5e3], [-1e4, 1e4, 0.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cost, grads = net.backprop(X, np.array([[1, 0], [0, 1]]))
    assert np.isfinite(cost) and all(np.all(np.isfinite(g)) for pair in grads for g in pair)


# -- determinism and dtypes ------------------------------------------------------------------------
def test_same_seed_same_bits():
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(200, 8)).astype(np.float32), rng.integers(0, 3, 200)
    runs = []
    for _ in range(2):
        net = dp.Network.from_sizes([8, 16, 3], seed=42)
        dp.fit(net, X, y, epochs=3, batch_size=32, optimizer="adam", seed=7)
        runs.append(net.get_weights())
    for (W1, b1), (W2, b2) in zip(*runs):
        assert W1.tobytes() == W2.tobytes() and b1.tobytes() == b2.tobytes()
    other = dp.Network.from_sizes([8, 16, 3], seed=43)
    assert not np.array_equal(other.layers[0].W, dp.Network.from_sizes([8, 16, 3], seed=42).layers[0].W)


def test_float32_is_default_and_kept_float64_on_request():
    net = dp.Network.from_sizes([4, 3, 2])
    assert net.dtype == np.float32
    X = np.ones((2, 4))
    assert net.forward(X).dtype == np.float32
    cost, grads = net.backprop(X, [0, 1])
    assert all(g.dtype == np.float32 for pair in grads for g in pair)
    net64 = dp.Network.from_sizes([4, 3, 2], dtype="float64")
    assert net64.forward(X).dtype == np.float64
    # The same seed draws the same weights up to float32 rounding.
    np.testing.assert_allclose(net.layers[0].W, net64.layers[0].W, rtol=1e-6)


def test_shapes_follow_the_notes():
    net = dp.Network.from_sizes([3, 4, 3, 2], hidden="relu")
    assert [layer.W.shape for layer in net.layers] == [(4, 3), (3, 4), (2, 3)]
    assert [layer.b.shape for layer in net.layers] == [(4,), (3,), (2,)]
    assert net.forward(np.zeros((5, 3))).shape == (5, 2)
    _, grads = net.backprop(np.ones((5, 3)), [0, 1, 1, 0, 1])
    assert [(dW.shape, db.shape) for dW, db in grads] == [((4, 3), (4,)), ((3, 4), (3,)), ((2, 3), (2,))]


def test_one_hot_and_integer_labels_agree():
    net, X, _ = make_problem(2, "tanh", "softmax", "cross_entropy", m=6)
    y = np.array([0, 2, 1, 1, 0, 2])
    c1, g1 = net.backprop(X, y)
    c2, g2 = net.backprop(X, np.eye(3)[y])
    assert c1 == c2
    for a, b in zip(g1, g2):
        np.testing.assert_array_equal(a[0], b[0])


def test_predict_conventions():
    X = np.random.default_rng(0).normal(size=(6, 4))
    soft = dp.Network.from_sizes([4, 3])
    assert soft.predict(X).shape == (6,) and set(soft.predict(X)) <= {0, 1, 2}
    one = dp.Network.from_sizes([4, 1], output="sigmoid")
    assert set(one.predict(X)) <= {0, 1} and one.predict(X).shape == (6,)
    multi = dp.Network.from_sizes([4, 3], output="sigmoid")
    assert multi.predict(X).shape == (6, 3)
    reg = dp.Network.from_sizes([4, 1], output="identity")
    assert reg.predict(X).shape == (6,)


def test_poisson_deviance_by_hand():
    """loss_i = Σ_k [y log(y/a) − y + a] with a = e^z: y = 0, z = 0 costs e^0 = 1; y = 2, z = log 2 costs
    2 log 1 − 2 + 2 = 0; y = 1, z = 0 costs 0 − 1 + 1 = 0; and δ_L = (e^Z − Y)/m."""
    lo = dp.get_loss("poisson")
    Z = np.array([[0.0, math.log(2.0)], [0.0, 1.0]])
    A = np.exp(Z)
    Y = np.array([[0.0, 2.0], [1.0, 0.0]])
    np.testing.assert_allclose(lo.rows(Z, A, Y), [1.0, math.e], rtol=1e-15)
    assert lo.value(Z, A, Y) == pytest.approx(1.0 + math.e, rel=1e-15)
    np.testing.assert_allclose(lo.delta(A, Y, 0.5), (A - Y) / 2, rtol=1e-15)
    net = dp.Network.from_sizes([2, 2], hidden=[], output="exp", dtype="float64")
    assert net.loss.name == "poisson" and not net.is_classifier
    with pytest.raises(dp.InputError, match="Poisson targets must be ≥ 0"):
        net.backprop(np.ones((1, 2)), np.array([[1.0, -1.0]]))
