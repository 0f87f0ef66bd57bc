"""Reliability: bad input answered clearly, divergence caught, interrupted training resumed bit for bit,
checkpoint and model files that refuse damage (a hypothesis fuzz test of both loaders).

The bad-input table asserts, for every case, the exception type, a message naming the problem and a
hint saying what to do. The command's rows and the subprocess SIGINT test live in test_cli_reliability.py.
"""

import gzip
import json
import os
import pickle
import signal
import struct
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deltaprop as dp
from deltaprop.errors import ConfigError, DataError, DivergenceError, InputError, ModelFileError
from deltaprop.io import checkpoint as ck
from deltaprop.io import datasets
from deltaprop.io.modelfile import save as dp_save
from deltaprop.io.preprocessing import Scaler

RNG = np.random.default_rng(0)
X4 = RNG.normal(size=(30, 4))
Y3 = np.arange(30) % 3


def net4(**kw):
    return dp.Network.from_sizes([4, 6, 3], seed=0, **kw)


def with_nan(X, value=np.nan):
    X = X.copy()
    X[7, 2] = value
    return X


def write(tmp, name, data):
    path = tmp / name
    path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data)
    return path


def idx_bytes(array, magic=None):
    arr = np.asarray(array, dtype=np.uint8)
    head = magic if magic is not None else bytes([0, 0, 0x08, arr.ndim])
    return head + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.tobytes()


# -- the bad-input table: (id, call, exception type, words the message must contain) -------------------
API_CASES = [
    # X
    ("X-nan", lambda t: dp.fit(net4(), with_nan(X4), Y3), InputError, ["NaN", "row 7", "column 2"]),
    ("X-inf", lambda t: net4().predict(with_nan(X4, np.inf)), InputError, ["infinity"]),
    ("X-1d", lambda t: net4().predict(X4[0]), InputError, ["1-d", "2-d"]),
    ("X-3d", lambda t: net4().forward(X4.reshape(30, 2, 2)), InputError, ["3 dimensions"]),
    ("X-features-at-predict", lambda t: net4().predict(X4[:, :3]), InputError, ["3 features", "expects 4"]),
    ("X-empty", lambda t: dp.fit(net4(), np.zeros((0, 4)), []), InputError, ["no rows"]),
    ("X-strings", lambda t: dp.fit(net4(), np.array([["a", "b", "c", "d"]] * 3), [0, 1, 2]), InputError,
     ["non-numeric"]),
    ("X-objects", lambda t: net4().forward(np.array([[1, 2, "3 cm", 4]], dtype=object)), InputError, ["non-numeric"]),
    ("X-ragged", lambda t: net4().forward([[1, 2, 3, 4], [1, 2]]), InputError, ["numeric array"]),
    ("X-sparse-nan", lambda t: net4().forward(__import__("scipy.sparse").sparse.csr_matrix(with_nan(X4))), InputError,
     ["NaN", "stored values"]),
    ("X-sparse-features", lambda t: net4().forward(__import__("scipy.sparse").sparse.csr_matrix(X4[:, :3])), InputError,
     ["3 features", "expects 4"]),
    ("X-y-lengths", lambda t: dp.fit(net4(), X4, Y3[:20]), InputError, ["30 rows", "20"]),
    ("backprop-lengths", lambda t: net4().backprop(X4, Y3[:10]), InputError, ["30 rows", "10"]),
    ("validation-nan", lambda t: dp.fit(net4(), X4, Y3, validation_data=(with_nan(X4)[:10], Y3[:10])),
     InputError, ["validation X", "NaN"]),
    # y
    ("label-out-of-range", lambda t: dp.fit(net4(), X4, Y3 + 1), InputError, ["label 3", "out of range", "0..2"]),
    ("label-negative", lambda t: net4().backprop(X4, Y3 - 1), InputError, ["label -1", "out of range"]),
    ("label-fraction", lambda t: dp.fit(net4(), X4, Y3 + 0.5), InputError, ["whole numbers"]),
    ("label-text-too-many", lambda t: dp.fit(net4(), X4, np.array(["a", "b", "c", "d", "e"] * 6)), InputError,
     ["5 classes", "3 output unit"]),
    ("label-text-regression", lambda t: dp.fit(dp.Network.from_sizes([4, 1], output="identity"), X4,
                                               np.array(["a", "b", "c"] * 10)), InputError, ["identity output", "'a'"]),
    ("target-nan", lambda t: dp.fit(dp.Network.from_sizes([4, 1], output="identity"), X4, with_nan(X4)[:, 2]),
     InputError, ["NaN"]),
    ("targets-wrong-width", lambda t: net4().backprop(X4, np.zeros((30, 5))), InputError, ["shape (30, 5)", "3 output"]),
    # sizes, counts, rates
    ("size-zero", lambda t: dp.Network.from_sizes([4, 0, 3]), ConfigError, ["layer sizes", "≥ 1"]),
    ("size-negative", lambda t: dp.Network.from_sizes([4, -2, 3]), ConfigError, ["-2"]),
    ("size-fraction", lambda t: dp.Network.from_sizes([4, 2.5, 3]), ConfigError, ["2.5"]),
    ("sizes-too-few", lambda t: dp.Network.from_sizes([4]), ConfigError, ["at least the input and output"]),
    ("epochs-zero", lambda t: dp.fit(net4(), X4, Y3, epochs=0), ConfigError, ["epochs", "≥ 1"]),
    ("epochs-fraction", lambda t: dp.fit(net4(), X4, Y3, epochs=2.5), ConfigError, ["epochs", "2.5"]),
    ("batch-size-zero", lambda t: dp.fit(net4(), X4, Y3, batch_size=0), ConfigError, ["batch_size"]),
    ("batch-size-negative", lambda t: dp.fit(net4(), X4, Y3, batch_size=-8), ConfigError, ["batch_size", "-8"]),
    ("lr-zero", lambda t: dp.fit(net4(), X4, Y3, lr=0), ConfigError, ["lr", "finite number > 0"]),
    ("lr-negative", lambda t: dp.fit(net4(), X4, Y3, lr=-0.1), ConfigError, ["lr", "-0.1"]),
    ("lr-nan", lambda t: dp.fit(net4(), X4, Y3, lr=float("nan")), ConfigError, ["lr", "nan"]),
    ("lr-inf", lambda t: dp.fit(net4(), X4, Y3, optimizer="adam", lr=float("inf")), ConfigError, ["lr", "inf"]),
    ("lr-text", lambda t: dp.fit(net4(), X4, Y3, lr="fast"), ConfigError, ["lr", "'fast'"]),
    ("l2-negative", lambda t: net4().backprop(X4, Y3, l2=-1), ConfigError, ["l2", "≥ 0"]),
    ("early-stopping-zero", lambda t: dp.fit(net4(), X4, Y3, early_stopping=0), ConfigError, ["early_stopping"]),
    ("validation-fraction", lambda t: dp.fit(net4(), X4, Y3, validation_fraction=1.5), ConfigError,
     ["validation_fraction", "1.5"]),
    ("momentum-one", lambda t: dp.fit(net4(), X4, Y3, optimizer="momentum", momentum=1.0), ConfigError,
     ["momentum", "below 1"]),
    ("dtype", lambda t: dp.Network.from_sizes([4, 3], dtype="int8"), ConfigError, ["dtype", "int8"]),
    # names
    ("activation-name", lambda t: dp.Network.from_sizes([4, 6, 3], hidden="rleu"), ConfigError,
     ["unknown activation", "rleu", "relu"]),
    ("loss-name", lambda t: dp.Network.from_sizes([4, 3], loss="crossentropy"), ConfigError,
     ["unknown loss", "cross_entropy"]),
    ("optimizer-name", lambda t: dp.fit(net4(), X4, Y3, optimizer="adma"), ConfigError,
     ["unknown optimizer", "adma", "adam"]),
    ("schedule-name", lambda t: dp.fit(net4(), X4, Y3, schedule="cosine"), ConfigError, ["unknown", "cosine"]),
    ("pairing-softmax-mse", lambda t: dp.Network.from_sizes([4, 3], output="softmax", loss="squared_error"),
     ConfigError, ["'softmax' output", "squared_error"]),
    ("pairing-relu-ce", lambda t: dp.Network.from_sizes([4, 3], output="relu", loss="cross_entropy"), ConfigError,
     ["'relu' output", "cross_entropy"]),
    ("softmax-hidden", lambda t: dp.Network.from_sizes([4, 5, 3], hidden="softmax"), ConfigError,
     ["softmax", "output activation"]),
    # scaling
    ("scaler-kind", lambda t: Scaler("zscore"), ConfigError, ["unknown scaling", "zscore"]),
    ("scaler-nan", lambda t: Scaler("standard").fit(with_nan(X4)), InputError, ["NaN"]),
    ("scaler-columns", lambda t: Scaler("standard").fit(X4).transform(X4[:, :2]), InputError,
     ["2 columns", "fitted on 4"]),
    ("scaler-unfitted", lambda t: Scaler("minmax").transform(X4), ConfigError, ["not been fitted"]),
    ("scaler-divisor", lambda t: Scaler.from_spec("divide:0"), ConfigError, ["divide", "> 0"]),
    # data files
    ("csv-target-missing", lambda t: datasets.read_csv(write(t, "d.csv", "a,b,label\n1,2,0\n3,4,1\n"), target="kind"),
     DataError, ["no column 'kind'"]),
    ("csv-text-cell", lambda t: datasets.read_csv(write(t, "d.csv", "a,b,label\n1,2,0\n3,x,1\n")), DataError,
     ["row 2", "column 'b'", "'x'", "not a number"]),
    ("csv-empty-cell", lambda t: datasets.read_csv(write(t, "d.csv", "a,b,label\n1,,0\n")), DataError,
     ["row 1", "column 'b'", "empty"]),
    ("csv-short-row", lambda t: datasets.read_csv(write(t, "d.csv", "a,b,label\n1,2,0\n3,1\n")), DataError,
     ["line 3", "2 cells"]),
    ("csv-missing-file", lambda t: datasets.read_csv(t / "nope.csv"), DataError, ["no such file"]),
    ("idx-magic", lambda t: datasets.read_idx(write(t, "x.idx", idx_bytes(np.zeros((2, 3)), b"\x12\x34\x08\x02"))),
     DataError, ["magic number"]),
    ("idx-truncated", lambda t: datasets.read_idx(write(t, "x.idx", idx_bytes(np.zeros((4, 5)))[:-3])), DataError,
     ["x.idx"]),
    ("idx-gzip-cut", lambda t: datasets.read_idx(write(t, "x.idx.gz", gzip.compress(idx_bytes(np.ones((9, 9))))[:20])),
     DataError, ["cannot read"]),
    ("npz-missing-arrays", lambda t: datasets.load_npz(_npz(t, a=np.zeros(3))), DataError, ["no array"]),
    ("npz-pickle", lambda t: datasets.load_npz(_npz(t, X=np.array([{"a": 1}], dtype=object), y=np.zeros(1))),
     DataError, ["unpickling"]),
    # model and checkpoint files
    ("load-missing", lambda t: dp.load(t / "none.safetensors"), ModelFileError, ["no such model file"]),
    ("load-pickle", lambda t: dp.load(write(t, "m.pkl", pickle.dumps({"W": [1, 2]}))), ModelFileError, ["pickle"]),
    ("load-truncated", lambda t: dp.load(_truncated_model(t)), ModelFileError, ["ends at byte", "only"]),
    ("load-empty", lambda t: dp.load(write(t, "m", b"")), ModelFileError, ["empty"]),
    ("load-checkpoint-as-model", lambda t: dp.load(_checkpoint(t)), ModelFileError, ["not a deltaprop model"]),
    ("checkpoint-model-file", lambda t: ck.load(_model(t)), ModelFileError, ["a deltaprop model, not a checkpoint"]),
    ("checkpoint-other-network", lambda t: ck.restore(_trainer([4, 5, 3]), _checkpoint(t)), ModelFileError,
     ["4-6-3", "4-5-3"]),
    ("checkpoint-other-data", lambda t: ck.restore(_trainer(X=X4 + 1), _checkpoint(t)), ModelFileError,
     ["other values"]),
    ("checkpoint-other-batch", lambda t: ck.restore(_trainer(batch_size=7), _checkpoint(t)), ModelFileError,
     ["batch_size 8", "7"]),
    ("checkpoint-other-optimizer", lambda t: ck.restore(_trainer(optimizer="sgd", momentum=0), _checkpoint(t)), ModelFileError,
     ["optimizer adam", "sgd"]),
    ("checkpoint-every", lambda t: ck.CheckpointCallback(t / "c", every=0), ConfigError, ["checkpoint interval"]),
]


def _npz(tmp, **arrays):
    path = tmp / "d.npz"
    np.savez(path, **arrays)
    return path


def _model(tmp):
    path = tmp / "m.safetensors"
    dp_save(net4(), path)
    return path


def _truncated_model(tmp):
    path = _model(tmp)
    path.write_bytes(path.read_bytes()[:-10])
    return path


def _trainer(sizes=(4, 6, 3), X=X4, optimizer="adam", batch_size=8, **kw):
    net = dp.Network.from_sizes(list(sizes), seed=0)
    return dp.Trainer(net, X, Y3, epochs=3, batch_size=batch_size, optimizer=optimizer, seed=1, **kw)


def _checkpoint(tmp):
    trainer = _trainer()
    trainer.run()
    path = tmp / "checkpoint.safetensors"
    ck.save(trainer, path)
    return path


@pytest.mark.parametrize("case", API_CASES, ids=[c[0] for c in API_CASES])
def test_bad_input_gets_a_clear_error(case, tmp_path):
    _, call, kind, words = case
    with pytest.raises(kind) as err:
        call(tmp_path)
    text = str(err.value)  # the message, then the hint (where the closest valid name is suggested)
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"
    assert err.value.hint, "every refusal says what to do"
    assert err.value.exit_code in (2, 3)


def test_the_table_is_large_enough():
    assert len(API_CASES) >= 40


# -- divergence ------------------------------------------------------------------------------------
class WeightsAtEpochStart(dp.Callback):
    def __init__(self):
        self.weights = []

    def on_epoch_begin(self, trainer, epoch):
        self.weights.append(trainer.net.get_weights())


def assert_weights_equal(net, weights):
    for layer, (W, b) in zip(net.layers, weights):
        assert layer.W.tobytes() == W.tobytes() and layer.b.tobytes() == b.tobytes()


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_learning_rate_1e3_diverges_with_a_message_and_finite_weights(optimizer):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 8)) * 5, rng.integers(0, 4, 200)
    net = dp.Network.from_sizes([8, 32, 4], seed=0)
    seen = WeightsAtEpochStart()
    trainer = dp.Trainer(net, X, y, epochs=20, batch_size=16, optimizer=optimizer, lr=1e3, seed=0, callbacks=[seen])
    with pytest.raises(DivergenceError) as err:
        trainer.run()
    e = err.value
    assert e.exit_code == 4 and e.epoch >= 1 and e.batch >= 1
    assert f"epoch {e.epoch}, batch {e.batch}" in e.message and "learning rate 1000" in e.message
    assert "lower the learning rate" in e.hint and f"start of epoch {e.epoch}" in e.hint
    assert all(np.isfinite(p).all() for p in net.params())
    assert_weights_equal(net, seen.weights[e.epoch - 1])  # the last weights known finite
    assert trainer.history.stop_reason == f"diverged at epoch {e.epoch}, batch {e.batch}"
    opt = trainer.optimizer.state_dict()
    assert all(np.isfinite(a).all() for key in ("ms", "vs", "velocities") for a in (opt.get(key) or []))


def test_a_finite_cost_followed_by_a_non_finite_update_is_caught():
    # Inputs of 1e30 keep the float32 cost finite (≈ 1e30) while the gradient δᵀX overflows: the
    # update of batch 1 makes the weights infinite, and with a single batch no later cost sees it.
    X = (np.random.default_rng(0).normal(size=(60, 4)) * 1e30).astype(np.float32)
    y = np.arange(60) % 3
    for epochs, batch_size in ((1, None), (3, None), (2, 20)):
        net = dp.Network.from_sizes([4, 8, 3], seed=0)
        start = net.get_weights()
        with pytest.raises(DivergenceError) as err:
            dp.fit(net, X, y, epochs=epochs, batch_size=batch_size, optimizer="sgd", lr=1e10)
        assert "epoch 1, batch 1" in err.value.message and "gradient overflowed" in err.value.message
        assert_weights_equal(net, start)


def test_divergence_after_a_resume_rolls_back_to_the_resume_point():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(100, 4)) * 10, rng.normal(size=100) * 100
    trainer = dp.Trainer(dp.Network.from_sizes([4, 16, 1], output="identity", seed=0), X, y, epochs=5,
                         batch_size=10, optimizer="sgd", lr=1e-6, seed=0, callbacks=[HaltAt(0, 4)])
    trainer.run()
    resume_point = trainer.net.get_weights()
    trainer.optimizer.lr = trainer.lr0 = 1e3
    with pytest.raises(DivergenceError) as err:
        trainer.run()
    assert "batch 4 of epoch 1, where the run resumed" in err.value.hint
    assert_weights_equal(trainer.net, resume_point)
    assert trainer.batch == 4


# -- stopping after any batch, checkpoints, resuming ---------------------------------------------------
class HaltAt(dp.Callback):
    """Ask the trainer to stop after batch ``batch`` (1-based) of epoch ``epoch`` (0-based)."""

    def __init__(self, epoch, batch, how="halt"):
        self.epoch, self.batch, self.how = epoch, batch, how

    def on_batch_end(self, trainer, b, cost):
        if trainer.epoch == self.epoch and b + 1 == self.batch:
            if self.how == "halt":
                trainer.halt = True
            else:
                os.kill(os.getpid(), self.how)


DATA = np.random.default_rng(3).normal(size=(83, 5)).astype(np.float32), np.random.default_rng(4).integers(0, 3, 83)


def make_trainer(optimizer="adam", callbacks=(), rng=None, **kw):
    options = dict(epochs=5, batch_size=10, optimizer=optimizer, seed=7, validation_fraction=0.2,
                   early_stopping=20, schedule="invscaling")
    options.update(kw)
    net = dp.Network.from_sizes([5, 9, 3], hidden="tanh", seed=2)
    return dp.Trainer(net, *DATA, callbacks=list(callbacks), rng=rng, **options)


def same_run(a, b):
    """Bit for bit: weights, optimizer state, generator, position, history (without wall times)."""
    for p, q in zip(a.net.params(), b.net.params()):
        assert p.tobytes() == q.tobytes()
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["rng"] == sb["rng"] and (sa["epoch"], sa["batch"], sa["t"]) == (sb["epoch"], sb["batch"], sb["t"])
    for key in ("velocities", "ms", "vs"):
        for p, q in zip(sa["optimizer"].get(key) or [], sb["optimizer"].get(key) or []):
            assert p.tobytes() == q.tobytes()
    strip = lambda h: [{k: v for k, v in e.items() if k != "time"} for e in h.epochs]  # noqa: E731
    assert strip(a.history) == strip(b.history)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam"])
@pytest.mark.parametrize("epoch,batch", [(0, 1), (2, 3), (1, 7), (3, 6)])
def test_interrupted_and_resumed_from_a_file_ends_bit_identical(tmp_path, optimizer, epoch, batch):
    full = make_trainer(optimizer)
    full.run()
    part = make_trainer(optimizer, [HaltAt(epoch, batch)])
    history = part.run()
    n_batches = -(-part.X.shape[0] // part.batch_size)
    assert part.interrupted
    if batch < n_batches:
        assert (part.epoch, part.batch) == (epoch, batch)
        assert history.stop_reason == f"interrupted after batch {batch} of epoch {epoch + 1}"
    else:  # after an epoch's last batch the epoch is finished first
        assert (part.epoch, part.batch) == (epoch + 1, 0)
    ck.save(part, tmp_path / "c.safetensors", run={"note": "resume me"})
    resumed = make_trainer(optimizer)
    got = ck.restore(resumed, tmp_path / "c.safetensors")
    assert got.run == {"note": "resume me"} and (got.epoch, got.batch) == (part.epoch, part.batch)
    resumed.run()
    same_run(full, resumed)


@pytest.mark.parametrize("shuffle,batch_size", [(False, 10), (True, None)])
def test_resume_without_shuffling_and_full_batch(shuffle, batch_size):
    full = make_trainer(shuffle=shuffle, batch_size=batch_size)
    full.run()
    part = make_trainer(shuffle=shuffle, batch_size=batch_size, callbacks=[HaltAt(1, 1)])
    part.run()
    resumed = make_trainer(shuffle=shuffle, batch_size=batch_size)
    resumed.load_state_dict(part.state_dict())
    resumed.run()
    same_run(full, resumed)


def test_halting_twice_in_process_then_continuing():
    full = make_trainer("momentum")
    full.run()
    part = make_trainer("momentum", [HaltAt(0, 2), HaltAt(3, 5)])
    part.run()
    part.run()
    assert part.interrupted and (part.epoch, part.batch) == (3, 5)
    part.run()
    assert not part.interrupted and part.history.stop_reason == ""
    same_run(full, part)


def test_checkpoint_round_trip_keeps_every_bit(tmp_path):
    trainer = make_trainer("adam", [HaltAt(2, 4)], rng=np.random.Generator(np.random.MT19937(5)))
    trainer.run()
    trainer.history.epochs[0]["delta_norm"][0] = float("inf")  # non-finite floats survive, as tagged JSON
    ck.save(trainer, tmp_path / "c")
    got = ck.load(tmp_path / "c")
    want = trainer.state_dict()

    def compare(a, b):
        if isinstance(a, np.ndarray):
            assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
            assert a.tobytes() == b.tobytes()
        elif isinstance(a, dict):
            assert sorted(a) == sorted(b)
            for k in a:
                compare(a[k], b[k])
        elif isinstance(a, (list, tuple)):
            assert len(a) == len(b)
            for x, y in zip(a, b):
                compare(x, y)
        else:
            assert type(a) is type(b) and (a == b or (a != a and b != b)), (a, b)

    compare(want, got.state)
    assert got.architecture == {"sizes": [5, 9, 3], "activations": ["tanh", "softmax"], "loss": "cross_entropy"}
    assert got.dtype == "float32" and got.deltaprop_version == dp.__version__
    net = got.network()
    assert_weights_equal(net, trainer.net.get_weights())


def test_a_failed_checkpoint_write_leaves_the_previous_file(tmp_path):
    trainer = make_trainer()
    trainer.run()
    path = tmp_path / "c"
    ck.save(trainer, path)
    before = path.read_bytes()
    trainer.history.epochs[0]["note"] = object()
    with pytest.raises(ModelFileError, match="cannot checkpoint history.epochs.0.note"):
        ck.save(trainer, path)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["c"]


def test_checkpoint_callback_writes_every_n_epochs_and_at_the_end(tmp_path):
    path = tmp_path / "c"
    seen = []

    class Probe(dp.Callback):
        def on_epoch_end(self, trainer, logs):
            seen.append(ck.load(path).epoch if path.exists() else None)

    trainer = make_trainer(callbacks=[ck.CheckpointCallback(path, every=2), Probe()], epochs=5)
    trainer.run()
    assert seen == [None, 2, 2, 4, 4]
    assert ck.load(path).epoch == 5


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_after_the_batch_writes_the_checkpoint_and_raises(tmp_path, signum, code):
    full = make_trainer()
    full.run()
    path = tmp_path / "checkpoint.safetensors"
    before = signal.getsignal(signum)
    trainer = make_trainer(callbacks=[HaltAt(1, 3, how=signum)])
    with pytest.raises(ck.TrainingInterrupted) as err:
        with ck.interruptible(trainer, path, run={"cmd": "train"}):
            trainer.run()
    e = err.value
    assert e.exit_code == code and e.signum == signum and (e.epoch, e.batch) == (2, 3)
    assert signal.Signals(signum).name in e.message and "after batch 3 of epoch 2" in e.message
    assert str(path) in e.message and "restore" in e.hint
    assert signal.getsignal(signum) is before
    resumed = make_trainer()
    assert ck.restore(resumed, path).run == {"cmd": "train"}
    resumed.run()
    same_run(full, resumed)


def test_a_second_signal_aborts_at_once(tmp_path):
    class Twice(dp.Callback):
        def on_batch_end(self, trainer, b, cost):
            os.kill(os.getpid(), signal.SIGINT)

    trainer = make_trainer(callbacks=[Twice()])
    with pytest.raises(KeyboardInterrupt, match="second SIGINT"):
        with ck.interruptible(trainer, tmp_path / "c"):
            trainer.run()
            trainer.run()
    assert not (tmp_path / "c").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_finished_run_raises_nothing(tmp_path):
    trainer = make_trainer()
    with ck.interruptible(trainer, tmp_path / "c"):
        trainer.run()
    assert not trainer.interrupted and not (tmp_path / "c").exists()


def test_a_pickle_payload_is_never_executed(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    data = pickle.dumps(Payload())
    for loader in (dp.load, ck.load):
        for blob in (data, struct.pack("<Q", len(data)) + data, _with_metadata_value(tmp_path, data.hex())):
            path = write(tmp_path, "evil", blob)
            with pytest.raises(ModelFileError):
                loader(path)
    assert not marker.exists()


def _with_metadata_value(tmp, text):
    """A valid checkpoint whose state entry is replaced by ``text``."""
    raw = _checkpoint(tmp).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header["__metadata__"]["state"] = text
    return _pack(header, raw[8 + n:])


def _pack(header, data):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


# -- fuzzing both loaders ------------------------------------------------------------------------------
FUZZ_DIR = None


def _good_files():
    """(model bytes, checkpoint bytes, a trainer the checkpoint fits), made once."""
    global FUZZ_DIR
    if FUZZ_DIR is None:
        import tempfile

        d = tempfile.mkdtemp(prefix="deltaprop-fuzz-")
        trainer = make_trainer("adam", [HaltAt(1, 2)])
        trainer.run()
        ck.save(trainer, os.path.join(d, "c"))
        dp_save(trainer.net, os.path.join(d, "m"))
        FUZZ_DIR = (open(os.path.join(d, "m"), "rb").read(), open(os.path.join(d, "c"), "rb").read(), d)
    return FUZZ_DIR


def _leaves(value, path=()):
    """Every position in a JSON value (dicts, lists and their items), as key paths."""
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, path + (i,))


def _replace(value, path, new):
    if not path:
        return new
    value = value.copy() if isinstance(value, (dict, list)) else value
    value[path[0]] = _replace(value[path[0]], path[1:], new)
    return value


NASTY = st.one_of(
    st.integers(min_value=-2**70, max_value=2**70), st.sampled_from([0, 1, -1, 2**31, 2**62, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6), st.none(), st.booleans(),
    st.lists(st.integers(min_value=-3, max_value=10**13), max_size=4), st.just({}), st.just([]),
    st.just({"tensor": "weights.0.0"}), st.just({"float": "nan"}), st.just({"tensor": "nope"}),
    st.sampled_from(["F32", "F64", "I64", "U8", "deltaprop-model", "deltaprop-checkpoint", "PCG64", "MT19937"]),
)


def _mutate_header(raw, choice, new, where):
    """Replace one position of the header ("header"), of a JSON document inside __metadata__
    ("metadata"), or of the checkpoint's state document, the largest of them ("state")."""
    (n,) = struct.unpack("<Q", raw[:8])
    header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
    if where != "header":
        keys = sorted(header["__metadata__"])
        if where == "state" and "state" in keys:
            keys = ["state"]
        key = keys[choice % len(keys)]
        try:
            doc = json.loads(header["__metadata__"][key])
        except ValueError:
            doc = header["__metadata__"][key]
        places = list(_leaves(doc))
        doc = _replace(doc, places[(choice // len(keys)) % len(places)], new)
        header["__metadata__"][key] = json.dumps(doc)
    else:
        places = list(_leaves(header))
        header = _replace(header, places[choice % len(places)], new)
    return _pack(header, data)


def _mutate_bytes(raw, edits, cut):
    buf = bytearray(raw)
    for position, byte in edits:
        buf[position % len(buf)] = byte
    return bytes(buf[: len(buf) - cut % len(buf)] if cut else buf)


def _must_refuse_cleanly(blob, which):
    model, ckpt, d = _good_files()
    path = os.path.join(d, "fuzzed")
    with open(path, "wb") as f:
        f.write(blob)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        if which == "model":
            dp.load(path)
        else:
            ck.restore(make_trainer("adam"), ck.load(path))
    except ModelFileError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.perf_counter() - started < 5, "the loader must not hang"
    assert peak < 32 * 2**20, f"the loader allocated {peak:,} bytes for a {len(blob):,}-byte file"


FUZZ = settings(max_examples=int(os.environ.get("FUZZ_N", 300)), deadline=None, suppress_health_check=list(HealthCheck), derandomize=not os.environ.get("FUZZ_N"))


@FUZZ
@given(which=st.sampled_from(["model", "checkpoint"]),
       edits=st.lists(st.tuples(st.integers(min_value=0, max_value=10**6), st.integers(0, 255)), max_size=6),
       cut=st.integers(min_value=0, max_value=10**6))
def test_fuzz_random_bytes(which, edits, cut):
    model, ckpt, _ = _good_files()
    _must_refuse_cleanly(_mutate_bytes(model if which == "model" else ckpt, edits, cut), which)


@FUZZ
@given(which=st.sampled_from(["model", "checkpoint"]), choice=st.integers(min_value=0, max_value=10**6),
       new=NASTY, where=st.sampled_from(["header", "metadata", "state"]))
def test_fuzz_header_entries(which, choice, new, where):
    model, ckpt, _ = _good_files()
    _must_refuse_cleanly(_mutate_header(model if which == "model" else ckpt, choice, new, where), which)


# -- the estimators' rows of the bad-input table -----------------------------------------------------
def _clf(**kw):
    from deltaprop.estimators import MLPClassifier

    return MLPClassifier(max_iter=3, random_state=0, **kw)


def _reg(**kw):
    from deltaprop.estimators import MLPRegressor

    return MLPRegressor(max_iter=3, random_state=0, **kw)


ESTIMATOR_CASES = [
    ("est-nan", lambda: _clf().fit(with_nan(X4), Y3), InputError, ["NaN", "row 7", "column 2"]),
    ("est-inf-predict", lambda: _clf().fit(X4, Y3).predict(with_nan(X4, np.inf)), InputError, ["infinity"]),
    ("est-features", lambda: _clf().fit(X4, Y3).predict(X4[:, :3]), InputError, ["3 features", "expecting 4"]),
    ("est-regressor-features", lambda: _reg().fit(X4, Y3 * 1.0).predict(X4[:, :2]), InputError,
     ["2 features", "expecting 4"]),
    ("est-strings", lambda: _clf().fit(np.array([["a", "b", "c", "d"]] * 30), Y3), InputError, ["not a number"]),
    ("est-lengths", lambda: _clf().fit(X4, Y3[:20]), InputError, ["30 rows", "20"]),
    ("est-empty", lambda: _clf().fit(np.zeros((0, 4)), []), InputError, ["no rows"]),
    ("est-1d", lambda: _clf().fit(X4[:, 0], Y3), InputError, ["1-d"]),
    ("est-target-nan", lambda: _reg().fit(X4, with_nan(X4)[:, 2]), InputError, ["NaN"]),
    ("est-unseen-label", lambda: _clf().partial_fit(X4, Y3, classes=[0, 1]), InputError, ["[2]", "classes"]),
    ("est-layer-zero", lambda: _clf(hidden_layer_sizes=(0,)).fit(X4, Y3), ConfigError, ["hidden_layer_sizes"]),
    ("est-lr-zero", lambda: _clf(learning_rate_init=0).fit(X4, Y3), ConfigError, ["learning_rate_init", "0"]),
    ("est-lr-nan", lambda: _clf(learning_rate_init=float("nan")).fit(X4, Y3), ConfigError, ["learning_rate_init"]),
    ("est-activation", lambda: _clf(activation="rleu").fit(X4, Y3), ConfigError, ["activation", "'rleu'", "relu"]),
    ("est-solver", lambda: _clf(solver="adma").fit(X4, Y3), ConfigError, ["solver", "'adma'", "adam"]),
    ("est-max-iter", lambda: _clf().set_params(max_iter=0).fit(X4, Y3), ConfigError, ["max_iter"]),
    ("est-batch-size", lambda: _clf(batch_size=0).fit(X4, Y3), ConfigError, ["batch_size"]),
]


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")
@pytest.mark.parametrize("case", ESTIMATOR_CASES, ids=[c[0] for c in ESTIMATOR_CASES])
def test_bad_estimator_input_gets_a_clear_error(case):
    pytest.importorskip("sklearn")
    _, call, kind, words = case
    with pytest.raises(kind) as err:
        call()
    text = str(err.value)
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"
    assert err.value.hint


# -- state that is not the network's: sample weights, the adaptive schedule ----------------------------
def test_resume_with_sample_weights_and_an_adaptive_schedule(tmp_path):
    from deltaprop.optim import Adaptive

    weights = np.random.default_rng(9).uniform(0.5, 2.0, DATA[0].shape[0])

    class Plateau(dp.Callback):  # what the estimators do on a plateau: divide α by 5
        def on_epoch_end(self, trainer, logs):
            if logs["epoch"] == 2:
                trainer.schedule.reduce(trainer.optimizer.lr)

    def make(*extra):
        return make_trainer("momentum", [Plateau(), *extra], schedule=Adaptive(), sample_weight=weights)

    full = make()
    full.run()
    part = make(HaltAt(3, 2))
    part.run()
    ck.save(part, tmp_path / "c")
    resumed = make()
    ck.restore(resumed, tmp_path / "c")
    assert resumed.schedule.lr == part.schedule.lr is not None
    resumed.run()
    same_run(full, resumed)
    other = make_trainer("momentum", [Plateau()], schedule=Adaptive(), sample_weight=weights[::-1].copy())
    with pytest.raises(ModelFileError, match="other values"):
        ck.restore(other, tmp_path / "c")
