"""Files written before the layout change (deltaprop 0.1.0, kept in tests/data/) still load: the model
predicts the same numbers, and the checkpoint resumes to the same final weights as the run that wrote it."""

from pathlib import Path

import numpy as np

import deltaprop as dp
from deltaprop.io import checkpoint

DATA = Path(__file__).parent / "data"


def test_model_file_of_version_0_1_loads_and_predicts_the_same():
    net = dp.load(DATA / "v0.1-model.safetensors")
    expected = np.load(DATA / "v0.1-expected.npz")
    assert net.sizes == [4, 5, 3] and net.activations == ["tanh", "softmax"]
    for i, (W, b) in enumerate(net.get_weights()):
        np.testing.assert_array_equal(W, expected[f"W{i}"])
        np.testing.assert_array_equal(b, expected[f"b{i}"])
    np.testing.assert_array_equal(net.forward(expected["X"]), expected["P"])
    assert net.meta["classes"] == ["a", "b", "c"] and net.meta["feature_names"] == ["f1", "f2", "f3", "f4"]


def test_checkpoint_of_version_0_1_resumes_to_the_same_weights():
    expected = np.load(DATA / "v0.1-expected.npz")
    net = dp.Network.from_sizes([4, 5, 3], hidden="tanh", seed=3)
    trainer = dp.Trainer(net, expected["X"], expected["y"], epochs=3, batch_size=16, optimizer="adam", seed=1)
    checkpoint.restore(trainer, checkpoint.load(DATA / "v0.1-checkpoint.safetensors"))
    assert trainer.epoch == 1 and trainer.batch == 2
    trainer.run()
    resumed = np.load(DATA / "v0.1-resumed.npz")
    for i, (W, _) in enumerate(trainer.net.get_weights()):
        np.testing.assert_array_equal(W, resumed[f"W{i}"])
