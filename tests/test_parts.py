"""The engine's parts on their own, with numbers a reader can check by hand: initializers (scales
pinned), losses (values and output errors), the Dense layer (forward and backward)."""

import math

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.initializers import initialize
from deltaprop.layers import Dense
from deltaprop.losses import get_loss, l2_cost

# -- initializers -----------------------------------------------------------------------------------------


def test_he_draws_normal_with_variance_two_over_n_in():
    W, b = initialize("he", 500, 400, np.random.default_rng(0), "float64")
    assert W.shape == (500, 400) and np.all(b == 0)
    # 200,000 draws: the sample standard deviation is within 1 % of √(2/400) = 0.0707 (its error is ~0.16 %).
    assert W.std() == pytest.approx(math.sqrt(2 / 400), rel=0.01)
    assert abs(W.mean()) < 0.001
    # the very numbers of the generator, scaled: He is N(0, 2/n_in) drawn in float64
    np.testing.assert_array_equal(W, np.random.default_rng(0).normal(0.0, math.sqrt(2 / 400), size=(500, 400)))


def test_glorot_draws_uniform_within_sqrt_six_over_fan_sum():
    W, _ = initialize("glorot", 300, 500, np.random.default_rng(1), "float64")
    r = math.sqrt(6 / 800)  # 0.0866
    assert np.abs(W).max() <= r and np.abs(W).max() > 0.999 * r
    assert W.var() == pytest.approx(r * r / 3, rel=0.01)  # the variance of U[−r, r] is r²/3 = 2/(n_in + n_out)


def test_uniform_uses_epsilon_and_float32_matches_float64_to_rounding():
    W, _ = initialize("uniform", 20, 30, np.random.default_rng(2), "float64", epsilon=0.12)
    assert np.abs(W).max() <= 0.12
    W32, _ = initialize("uniform", 20, 30, np.random.default_rng(2), "float32", epsilon=0.12)
    assert W32.dtype == np.float32 and np.array_equal(W32, W.astype(np.float32))


def test_default_initializer_is_he_for_relu_and_glorot_otherwise():
    relu = dp.Network.from_sizes([400, 300, 2], hidden="relu", seed=0, dtype="float64")
    tanh = dp.Network.from_sizes([400, 300, 2], hidden="tanh", seed=0, dtype="float64")
    assert relu.layers[0].W.std() == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    assert np.abs(tanh.layers[0].W).max() <= math.sqrt(6 / 700)


def test_unknown_initializer_lists_the_valid_names():
    with pytest.raises(dp.ConfigError, match="glorot"):
        initialize("lecun", 2, 2, np.random.default_rng(0))


# -- losses -----------------------------------------------------------------------------------------------


def test_cross_entropy_by_hand():
    loss = get_loss("cross_entropy")
    Z = np.array([[0.0, math.log(3.0)]])  # softmax = [1/4, 3/4]
    A = dp.get_activation("softmax").forward(Z.copy())
    np.testing.assert_allclose(A, [[0.25, 0.75]])
    Y = loss.prepare_targets(np.array([1]), 2, np.float64)
    assert loss.value(Z, A, Y) == pytest.approx(-math.log(0.75))  # 0.2877
    assert loss.value(Z, A, loss.prepare_targets(np.array([0]), 2, np.float64)) == pytest.approx(math.log(4))
    # δ_L = (A − Y)/m, m = 1, scaled by 1
    np.testing.assert_allclose(loss.delta(A, Y, 1.0), [[0.25, -0.25]])


def test_binary_cross_entropy_by_hand():
    loss = get_loss("binary_cross_entropy")
    Z = np.array([[0.0], [math.log(3.0)]])  # σ = 1/2, 3/4
    A = dp.get_activation("sigmoid").forward(Z.copy())
    Y = np.array([[1.0], [0.0]])
    # −ln ½ − ln(1 − ¾) = ln 2 + ln 4 = ln 8
    assert loss.value(Z, A, Y) == pytest.approx(math.log(8))
    np.testing.assert_allclose(loss.delta(A, Y, 0.5), [[-0.25], [0.375]])  # (A − Y)/m with m = 2


def test_squared_error_by_hand_has_the_half():
    loss = get_loss("squared_error")
    Z = np.array([[1.0, 2.0], [0.0, -1.0]])
    Y = np.zeros((2, 2))
    assert loss.value(Z, Z, Y) == pytest.approx(0.5 * (1 + 4 + 0 + 1))
    np.testing.assert_allclose(loss.delta(Z, Y, 0.5), Z / 2)


def test_l2_cost_excludes_biases_and_divides_by_2m():
    W1, W2 = np.array([[1.0, 2.0]]), np.array([[3.0]])
    assert l2_cost([W1, W2], 0.5, 4) == pytest.approx(0.5 / 8 * (1 + 4 + 9))


# -- the Dense layer --------------------------------------------------------------------------------------


def test_dense_forward_and_backward_by_hand():
    W, b = np.array([[1.0, 2.0], [3.0, -4.0]]), np.array([1.0, -1.0])
    layer = Dense(W, b, "relu")
    A_prev = np.array([[1.0, 1.0], [2.0, 0.0]])
    A = layer.forward(A_prev, cache=True)
    # Z = A_prev Wᵀ + b = [[1+2+1, 3−4−1], [2+1, 6−1]] = [[4, −2], [3, 5]]
    np.testing.assert_allclose(layer.Z, [[4.0, -2.0], [3.0, 5.0]])
    np.testing.assert_allclose(A, [[4.0, 0.0], [3.0, 5.0]])
    delta = np.array([[1.0, 0.0], [0.0, 2.0]])
    dW, db = np.empty_like(W), np.empty_like(b)
    dA_prev = layer.backward(delta, dW, db, l2_over_m=0.5)
    # dW = δᵀ A_prev + (λ/m) W = [[1, 1], [4, 0]] + ½ W
    np.testing.assert_allclose(dW, [[1.5, 2.0], [5.5, -2.0]])
    np.testing.assert_allclose(db, [1.0, 2.0])  # Σ_rows δ
    np.testing.assert_allclose(dA_prev, [[1.0, 2.0], [6.0, -8.0]])  # δ W
    assert layer.backward(delta, dW, db, need_dA_prev=False) is None
    np.testing.assert_allclose(layer.forward(A_prev, cache=False), A)  # no cache: same numbers, fresh array
    np.testing.assert_allclose(layer.linear(A_prev), layer.Z)
