"""Every network the four notes describe builds, passes the gradient check, and learns."""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.reference import from_theta, per_example_backprop, to_theta


def test_note_000_sigmoid_network_with_theta_and_l2():
    """000: L = 4 layers (2-2-2-1), sigmoid units, logistic cost with λ/(2m) ΣΘ² skipping biases."""
    net = dp.Network.from_sizes([2, 2, 2, 1], hidden="sigmoid", output="sigmoid", init="uniform",
                                epsilon=0.12, dtype="float64", seed=0)
    assert net.loss.name == "binary_cross_entropy"
    assert [to_theta(layer.W, layer.b).shape for layer in net.layers] == [(2, 3), (2, 3), (1, 3)]  # s_{l+1} × (s_l + 1)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0])  # XOR
    assert dp.gradcheck(net, X, y, l2=1.0).ok
    c_loop, g_loop = per_example_backprop(net, X, y, l2=1.0)
    c_vec, g_vec = net.backprop(X, y, l2=1.0)
    assert c_loop == pytest.approx(c_vec, rel=1e-12)
    # D = (Δ + λΘ̃)/m: the bias column carries no λ term.
    _, g0 = net.backprop(X, y, l2=0.0)
    for layer, (dW, db), (dW0, db0) in zip(net.layers, g_vec, g0):
        np.testing.assert_allclose(db, db0, rtol=1e-14)
        np.testing.assert_allclose(dW - dW0, 1.0 / 4 * layer.W, rtol=1e-12)
    W, b = from_theta(to_theta(net.layers[0].W, net.layers[0].b))
    np.testing.assert_array_equal(W, net.layers[0].W)
    np.testing.assert_array_equal(b, net.layers[0].b)
    net = dp.Network.from_sizes([2, 4, 4, 1], hidden="sigmoid", output="sigmoid", dtype="float64", seed=3)
    h = dp.fit(net, X, y, epochs=3000, optimizer="sgd", batch_size=None, lr=2.0)
    assert h.loss[-1] < 0.1 * h.loss[0]
    assert np.array_equal(net.predict(X), y)


def test_note_000_multilabel_k_sigmoid_outputs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    Y = np.stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0], axis=1).astype(int)
    net = dp.Network.from_sizes([3, 5, 2], hidden="sigmoid", output="sigmoid", dtype="float64", seed=1)
    assert dp.gradcheck(net, X[:6], Y[:6], l2=0.1).ok
    dp.fit(net, X, Y, epochs=500, optimizer="sgd", batch_size=None, lr=1.0)
    assert np.mean(net.predict(X) == Y) > 0.9


def test_note_001_relu_4_3_2_network():
    """001: n_x-4-3-2 with ReLU hidden layers; deltaprop pairs cross-entropy with a softmax output."""
    n_x = 3
    net = dp.Network.from_sizes([n_x, 4, 3, 2], hidden="relu", output="softmax", dtype="float64", seed=0)
    assert [layer.W.shape for layer in net.layers] == [(4, 3), (3, 4), (2, 3)]  # W^[l] ∈ R^{n[l] × n[l-1]}
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, n_x))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    assert dp.gradcheck(net, X[:5], y[:5]).ok
    # The notes' column form Z = W A + b is the transpose of deltaprop's row form Z = A Wᵀ + b.
    A1_rows = net.forward(X)
    A = X.T
    for layer in net.layers:
        Z = layer.W @ A + layer.b[:, None]
        A = layer.activation.forward(Z.T).T
    np.testing.assert_allclose(A.T, A1_rows, rtol=1e-12)
    h = dp.fit(net, X, y, epochs=400, optimizer="sgd", batch_size=None, lr=0.3)
    assert h.loss[-1] < h.loss[0]
    assert np.mean(net.predict(X) == y) > 0.8


def test_note_002_logistic_hidden_softmax_output_and_minibatch_update():
    """002: W −= α/|B| · (ŷ − y)ᵀ X for the softmax layer (here without hidden layer, exactly the note's line)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 4))
    y = rng.integers(0, 3, 8)
    net = dp.Network.from_sizes([4, 3], output="softmax", dtype="float64", seed=0)
    W0, b0 = net.layers[0].W.copy(), net.layers[0].b.copy()
    Y = np.eye(3)[y]
    Yhat = net.forward(X)
    dp.fit(net, X, y, epochs=1, batch_size=8, optimizer="sgd", shuffle=False, lr=0.5)
    np.testing.assert_allclose(net.layers[0].W, W0 - 0.5 / 8 * (Yhat - Y).T @ X, rtol=1e-12)
    np.testing.assert_allclose(net.layers[0].b, b0 - 0.5 / 8 * (Yhat - Y).sum(axis=0), rtol=1e-12)
    deep = dp.Network.from_sizes([4, 6, 3], hidden="logistic", output="softmax", dtype="float64", seed=2)
    assert deep.activations == ["sigmoid", "softmax"]
    assert dp.gradcheck(deep, X, y, l2=0.05).ok
    h = dp.fit(deep, X, y, epochs=300, batch_size=4, optimizer="sgd", lr=0.5)
    assert h.loss[-1] < 0.2 * h.loss[0]


def test_note_003_two_layer_digit_classifier():
    """003: ReLU hidden, softmax output, dZ2 = A2 − Y, dW = dZ Aᵀ/m, db = ΣdZ/m, update, iterate."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    net = dp.Network.from_sizes([64, 10, 10], hidden="relu", output="softmax", dtype="float64", seed=0)
    m = 50
    A1 = np.maximum(X[:m] @ net.layers[0].W.T + net.layers[0].b, 0)
    Z2 = A1 @ net.layers[1].W.T + net.layers[1].b
    A2 = np.exp(Z2 - Z2.max(axis=1, keepdims=True))
    A2 /= A2.sum(axis=1, keepdims=True)
    dZ2 = A2 - np.eye(10)[y[:m]]
    _, grads = net.backprop(X[:m], y[:m])
    np.testing.assert_allclose(grads[1][0], (dZ2.T @ A1) / m, rtol=1e-12)  # the note's dW2 = dZ2 A1ᵀ / m, transposed
    np.testing.assert_allclose(grads[1][1], dZ2.sum(axis=0) / m, rtol=1e-12)
    assert dp.gradcheck(net, X[:4], y[:4]).ok
    cut = 1257
    h = dp.fit(net, X[:cut], y[:cut], epochs=300, optimizer="sgd", batch_size=None, lr=0.5)  # full batch, as in the note
    assert h.loss[-1] < 0.3
    assert np.mean(net.predict(X[cut:]) == y[cut:]) > 0.85
