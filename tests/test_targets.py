"""The target rule (classes or regression), the training options in one place, and what dp.fit does
with text labels, class weights and regression targets."""

import dataclasses

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.errors import ConfigError, DataError, InputError
from deltaprop.targets import TaskUnclearError, encode_targets, target_task
from deltaprop.train import TrainOptions


# -- the rule --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "y, task",
    [
        (np.array(["a", "b", "a"]), "classification"),
        (np.array([True, False, True]), "classification"),
        (np.array([0.5, 1.25, 3.0]), "regression"),
        (np.arange(20) % 20, "classification"),  # 20 distinct: classes
        (np.arange(20.0), "classification"),  # whole-valued floats count as whole
        (np.arange(1000) % 50, "classification"),  # 50 distinct in 1000 rows: 5 %
    ],
)
def test_the_rule(y, task):
    assert target_task(y) == task


def test_many_distinct_whole_numbers_ask_which():
    y = np.arange(442) % 214 + 25.0  # like diabetes: 214 distinct whole numbers in 442 rows
    with pytest.raises(TaskUnclearError) as err:
        target_task(y, name="progression")
    assert (
        "214 distinct whole numbers in 442 rows" in err.value.message and "'progression'" in err.value.message
    )
    assert "task='regression'" in err.value.hint and "task='classification'" in err.value.hint
    assert err.value.exit_code == 2
    spelt = err.value.spelt("--task {}")
    assert "--task regression" in spelt.hint and "task='" not in spelt.hint
    # Said explicitly, both readings are accepted.
    assert target_task(y, "regression") == "regression"
    codes, names = encode_targets(y, "classification")
    assert len(names) == 214 and names[0] == "25" and codes.max() == 213


def test_twenty_one_distinct_in_few_rows_is_unclear_but_text_never_is():
    with pytest.raises(TaskUnclearError):
        target_task(np.arange(21))
    assert target_task(np.array([f"c{i}" for i in range(100)])) == "classification"
    with pytest.raises(DataError, match="text"):
        target_task(np.array(["a", "b"]), "regression")


# -- options ---------------------------------------------------------------------------------------
def test_one_set_of_defaults_shared_by_fit_and_the_command():
    from deltaprop.cli.main import build_parser

    o = TrainOptions()
    assert (o.optimizer, o.batch_size, o.epochs) == ("adam", 64, 30)
    args = build_parser().parse_args(["train"])
    assert (args.optimizer, args.batch_size, args.epochs, args.l2, args.seed) == (
        o.optimizer,
        o.batch_size,
        o.epochs,
        o.l2,
        o.seed,
    )
    X = np.random.default_rng(0).normal(size=(100, 3))
    trainer = dp.Trainer(dp.Network.from_sizes([3, 4, 2]), X, (X[:, 0] > 0).astype(int))
    assert trainer.epochs == 30 and trainer.batch_size == 64 and trainer.optimizer.name == "adam"


def test_options_object_and_keyword_overrides():
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    base = TrainOptions(epochs=3, optimizer="sgd", lr=0.5, batch_size=None)
    a, b = dp.Network.from_sizes([3, 4, 2], seed=1), dp.Network.from_sizes([3, 4, 2], seed=1)
    ha = dp.fit(a, X, y, base)
    hb = dp.fit(b, X, y, epochs=3, optimizer="sgd", lr=0.5, batch_size=None)
    assert ha.loss == hb.loss and len(ha) == 3
    assert len(dp.fit(dp.Network.from_sizes([3, 4, 2]), X, y, base, epochs=2)) == 2  # one field overridden
    assert dataclasses.replace(base, epochs=5).epochs == 5
    with pytest.raises(ConfigError, match="unknown training option.*epoch_count"):
        dp.fit(a, X, y, epoch_count=3)
    with pytest.raises(ConfigError, match="epochs"):
        TrainOptions(epochs=0)
    with pytest.raises(ConfigError, match="class_weight"):
        TrainOptions(class_weight="even")


# -- text labels, names back -------------------------------------------------------------------------
def test_fit_takes_text_labels_and_gives_names_back(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 2))
    y = np.where(X[:, 0] > 0.5, "high", np.where(X[:, 0] < -0.5, "low", "mid"))
    net = dp.Network.from_sizes([2, 8, 3], seed=0)
    dp.fit(net, X, y, epochs=60, lr=0.05)
    assert net.meta["classes"] == ["high", "low", "mid"]
    assert set(np.unique(net.predict(X))) <= {0, 1, 2}
    labels = net.predict_labels(X)
    assert labels.dtype.kind == "U" and np.mean(labels == y) > 0.9
    dp.save(net, tmp_path / "m.safetensors")
    back = dp.load(tmp_path / "m.safetensors")
    assert list(back.predict_labels(X)) == list(labels)
    # A second fit keeps the numbering of the first, whatever order the labels come in.
    dp.fit(net, X[::-1], y[::-1], epochs=1)
    assert net.meta["classes"] == ["high", "low", "mid"]
    with pytest.raises(InputError, match="not among the class names"):
        dp.fit(net, X, np.where(y == "mid", "middle", y), epochs=1)


def test_fit_refuses_regression_values_for_a_classifier():
    X = np.zeros((10, 2))
    with pytest.raises(InputError, match="regress"):
        dp.fit(dp.Network.from_sizes([2, 3]), X, np.linspace(0, 1, 10))


# -- class weights -----------------------------------------------------------------------------------
def test_balanced_class_weight_is_scikit_learns():
    from sklearn.utils.class_weight import compute_class_weight

    from deltaprop.train import _class_weights

    y = np.array([0] * 30 + [1] * 6 + [2] * 4)
    net = dp.Network.from_sizes([2, 3])
    expected = compute_class_weight("balanced", classes=np.arange(3), y=y)
    assert np.allclose(_class_weights(net, y, "balanced"), expected[y])
    assert np.allclose(_class_weights(net, y, {2: 5.0}), np.where(y == 2, 5.0, 1.0))


def test_balanced_class_weight_raises_minority_recall():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 2))
    y = ((X[:, 0] + 0.8 * rng.normal(size=600)) > 1.6).astype(int)  # about 8 % positives, overlapping
    recalls = []
    for cw in (None, "balanced"):
        net = dp.Network.from_sizes([2, 8, 2], seed=0)
        dp.fit(net, X, y, epochs=40, class_weight=cw)
        recalls.append(np.mean(net.predict(X)[y == 1] == 1))
    assert recalls[1] > recalls[0] + 0.2, recalls


# -- regression targets --------------------------------------------------------------------------------
def test_regression_targets_are_standardised_and_scaled_back(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = 150 + 60 * X[:, 0] - 30 * X[:, 1]  # targets in the hundreds, like diabetes
    net = dp.Network.from_sizes([3, 16, 1], output="identity", seed=0)
    h = dp.fit(net, X, y, epochs=60, lr=0.01)
    scaling = net.meta["target_scaling"]
    assert np.isclose(scaling["mean"][0], y.mean()) and np.isclose(scaling["std"][0], y.std())
    assert h.loss[0] < 5  # ½·MSE of standardised targets starts near ½, not near 150²/2
    r2 = 1 - np.sum((net.predict(X) - y) ** 2) / np.sum((y - y.mean()) ** 2)
    assert r2 > 0.95
    dp.save(net, tmp_path / "r.safetensors")
    assert np.allclose(dp.load(tmp_path / "r.safetensors").predict(X), net.predict(X))
    raw = dp.Network.from_sizes([3, 16, 1], output="identity", seed=0)
    dp.fit(raw, X, y, epochs=1, scale_targets=False)
    assert "target_scaling" not in raw.meta


# -- from Python: a DataFrame, a plot, a progress bar -------------------------------------------------
def test_history_to_pandas_plot_and_progress(tmp_path, capsys):
    X = np.random.default_rng(0).normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    h = dp.fit(
        dp.Network.from_sizes([3, 4, 2], seed=0), X, y, epochs=5, validation_fraction=0.25, progress=True
    )
    err = capsys.readouterr().err
    assert "5/5" in err and "epoch" in err  # tqdm's bar went to standard error
    frame = h.to_pandas()
    assert list(frame.index) == [1, 2, 3, 4, 5] and frame["loss"].tolist() == h.loss
    assert {"val_loss", "accuracy", "delta_norm_1"} <= set(frame.columns)
    path = dp.plot_history(h, tmp_path / "curves.png")
    assert path.stat().st_size > 5000
    fig = dp.plot_history(h)
    assert fig.axes[0].get_ylabel() == "loss"


# -- estimators give back class names and read the command's models --------------------------------------
def test_estimator_load_and_dp_load_give_back_class_names(tmp_path):
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = dp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0).fit(X, names)
    clf.save(tmp_path / "clf.safetensors")
    back = dp.MLPClassifier.load(tmp_path / "clf.safetensors")
    assert list(back.classes_) == ["setosa", "versicolor", "virginica"]
    assert (back.predict(X) == clf.predict(X)).all()
    assert np.allclose(back.predict_proba(X), clf.predict_proba(X))
    net = dp.load(tmp_path / "clf.safetensors")
    assert (net.predict_labels(X) == clf.predict(X)).all()
    with pytest.raises(ConfigError, match="MLPClassifier.load"):
        dp.MLPRegressor.load(tmp_path / "clf.safetensors")


def test_estimator_load_folds_the_commands_scalings(tmp_path):
    pytest.importorskip("sklearn")
    from deltaprop.io.preprocessing import Scaler

    rng = np.random.default_rng(0)
    X = rng.normal(loc=50, scale=10, size=(200, 3))
    y = 150 + 3 * X[:, 0] - 2 * X[:, 1]
    scaler = Scaler.from_spec("standard").fit(X)
    net = dp.Network.from_sizes([3, 8, 1], output="identity", seed=0)
    dp.fit(net, scaler.transform(X), y, epochs=5)
    net.meta["scaler"] = scaler.to_dict()
    dp.save(net, tmp_path / "reg.safetensors")
    reg = dp.MLPRegressor.load(tmp_path / "reg.safetensors")
    expected = net.predict(scaler.transform(X, dtype=net.dtype))
    assert np.allclose(reg.predict(X), expected, rtol=1e-4, atol=1e-3 * np.abs(expected).max())
    # A command-style binary model (two softmax units) becomes scikit-learn's one logistic unit.
    two = dp.Network.from_sizes([3, 4, 2], seed=1)
    two.meta["classes"] = ["no", "yes"]
    dp.save(two, tmp_path / "two.safetensors")
    clf = dp.MLPClassifier.load(tmp_path / "two.safetensors")
    assert np.allclose(clf.predict_proba(X / 50), two.predict_proba(X / 50), atol=1e-6)
    assert list(clf.classes_) == ["no", "yes"]


def test_text_targets_asked_for_regression_name_both_spellings():
    with pytest.raises(DataError, match="labels are text") as err:
        target_task(np.array(["setosa", "virginica"]), "regression")
    assert "task='classification'" in err.value.hint and "--task classification" in err.value.hint
    with pytest.raises(DataError) as err:
        target_task(np.array([1.0, 2.0]), "regresion")
    assert "--task regression" in err.value.hint
