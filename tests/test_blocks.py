"""Out-of-core training: the block shuffle, the .npy row reader, the streaming input scaling, and
``deltaprop train --data X.npy --target y.npy`` against the same rows in memory, bit for bit."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_child import command, run_argv
from deltaprop import Network, Trainer
from deltaprop.errors import ConfigError, DataError, InputError
from deltaprop.io.blocks import NpyRows
from deltaprop.io.preprocessing import Scaler
from deltaprop.train import block_order


def run(*args, cwd=None, measure=False):
    """``python -m deltaprop ARGS`` in a subprocess; with ``measure``, through a parent that prints the
    child's peak resident memory (``getrusage(RUSAGE_CHILDREN)``) in KiB as its last line."""
    cmd = command(*args)
    if measure:
        cmd = [sys.executable, "-c", "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)", *cmd]
    return run_argv(cmd, cwd=cwd, timeout=600)


def weights(path):
    from safetensors.numpy import load_file

    return load_file(str(path))


def same_weights(a, b) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


# -- the block shuffle ---------------------------------------------------------------------------
def test_block_order_is_blocks_in_random_order_with_rows_shuffled_inside():
    n, B = 1000, 64
    order = block_order(n, B, np.random.default_rng(5))
    assert np.array_equal(np.sort(order), np.arange(n))
    # Cut the order where the block changes: every block appears once, whole, in one run.
    blocks = order // B
    runs = [blocks[0]] + [b for a, b in zip(blocks[:-1], blocks[1:]) if a != b]
    assert sorted(runs) == list(range(-(-n // B)))
    assert runs != sorted(runs)  # the blocks are not in their stored order ...
    first = order[:np.count_nonzero(blocks == runs[0])]
    assert not np.array_equal(first, np.sort(first))  # ... nor the rows inside one
    assert np.array_equal(order, block_order(n, B, np.random.default_rng(5)))
    assert not np.array_equal(order, block_order(n, B, np.random.default_rng(6)))


def test_trainer_refuses_row_shuffle_of_a_row_source(tmp_path):
    np.save(tmp_path / "X.npy", np.zeros((10, 3), dtype=np.float32))
    net = Network.from_sizes([3, 2], output="softmax", seed=0)
    with pytest.raises(ConfigError, match="blocks"):
        Trainer(net, NpyRows(tmp_path / "X.npy"), np.zeros(10, dtype=int), batch_size=4)


# -- the reader ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8", ">f4"])
def test_npy_rows_read_what_numpy_stored(tmp_path, dtype):
    rng = np.random.default_rng(0)
    X = (rng.random((3000, 2, 7)) * 200).astype(dtype)
    np.save(tmp_path / "X.npy", X)
    rows = NpyRows(tmp_path / "X.npy")
    flat = X.reshape(3000, 14)
    assert rows.shape == (3000, 14)
    assert np.array_equal(rows.raw(17, 2950), flat[17:2950])
    assert np.array_equal(rows.raw(2990, 5000), flat[2990:])
    pick = np.sort(rng.choice(3000, 400, replace=False))
    sub = rows.subset(pick)
    assert np.array_equal(sub.raw(0, 400), flat[pick])
    assert np.array_equal(sub.subset([0, 7, 399]).raw(0, 3), flat[pick[[0, 7, 399]]])
    scaler = Scaler("standard").fit(flat[pick])
    assert np.array_equal(sub.scaled(scaler, "float32").read(3, 333), scaler.transform(flat[pick][3:333], "float32"))


def test_subset_reads_in_pieces_no_larger_than_the_span(tmp_path, monkeypatch):
    import deltaprop.io.blocks as blocks

    X = np.arange(50_000 * 3, dtype=np.float64).reshape(50_000, 3)
    np.save(tmp_path / "X.npy", X)
    pick = np.sort(np.random.default_rng(1).choice(50_000, 900, replace=False))
    monkeypatch.setattr(blocks, "SPAN_BYTES", 24 * 100)  # 100 rows per read
    sub = NpyRows(tmp_path / "X.npy").subset(pick)
    assert np.array_equal(sub.raw(0, 900), X[pick])
    assert sub._buf.shape[0] <= 100


def test_reader_refuses_what_it_cannot_read_by_rows(tmp_path):
    np.save(tmp_path / "f.npy", np.asfortranarray(np.ones((5, 3))))
    with pytest.raises(DataError, match="Fortran"):
        NpyRows(tmp_path / "f.npy")
    np.savez(tmp_path / "z.npy", X=np.ones((5, 3)))
    os.replace(tmp_path / "z.npy.npz", tmp_path / "z.npy")
    with pytest.raises(DataError, match="npz"):
        NpyRows(tmp_path / "z.npy")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match="unpickling"):
        NpyRows(tmp_path / "o.npy")
    with pytest.raises(DataError, match="no such file"):
        NpyRows(tmp_path / "missing.npy")
    np.save(tmp_path / "t.npy", np.ones((100, 4)))
    with open(tmp_path / "t.npy", "r+b") as f:
        f.truncate(os.path.getsize(tmp_path / "t.npy") - 200)
    with pytest.raises(DataError):
        NpyRows(tmp_path / "t.npy").raw(0, 100)
    bad = np.ones((10, 2))
    bad[7, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(InputError, match="NaN"):
        NpyRows(tmp_path / "nan.npy").scaled(Scaler("none"), "float32").read(0, 10)


# -- the streaming scaling -----------------------------------------------------------------------
def test_streaming_scaling_matches_the_in_memory_fit():
    X = np.random.default_rng(2).normal(50, 7, (10_001, 6))
    X[:, 3] = 4.0  # a constant column keeps scale 1
    blocks = (X[i:i + 1000] for i in range(0, X.shape[0], 1000))
    streamed, whole = Scaler("standard").fit_blocks(blocks), Scaler("standard").fit(X)
    np.testing.assert_allclose(streamed.shift, whole.shift, rtol=1e-13)
    np.testing.assert_allclose(streamed.scale, whole.scale, rtol=1e-12)
    assert streamed.scale[3] == 1.0
    mm = Scaler("minmax").fit_blocks(X[i:i + 333] for i in range(0, X.shape[0], 333))
    assert np.array_equal(mm.shift, Scaler("minmax").fit(X).shift)
    X[5000, 2] = np.inf
    with pytest.raises(InputError, match="rows 5001..6000"):
        Scaler("standard").fit_blocks(X[i:i + 1000] for i in range(0, X.shape[0], 1000))


def test_rows_on_disk_and_in_memory_train_to_the_same_weights(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 12))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    np.save(tmp_path / "X.npy", X)
    scaler = Scaler("standard").fit_blocks(X[i:i + 200] for i in range(0, 3000, 200))

    def train(inputs):
        net = Network.from_sizes([12, 16, 3], seed=1)
        history = Trainer(net, inputs, y, epochs=3, batch_size=50, optimizer="adam", shuffle="blocks", block_rows=200,
                          validation_fraction=0.1, seed=2).run()
        return net, history

    a, ha = train(scaler.transform(X, dtype="float32"))
    b, hb = train(NpyRows(tmp_path / "X.npy").scaled(scaler, "float32"))
    assert all(np.array_equal(p, q) for p, q in zip(a.params(), b.params()))
    assert ha.loss == hb.loss and ha.val_loss == hb.val_loss


# -- the command ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_files(tmp_path_factory):
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("npy")
    X, y = load_digits(return_X_y=True)
    (root / "d").mkdir()
    np.save(root / "d" / "X.npy", X)
    np.save(root / "d" / "y.npy", y)
    np.savez(root / "d.npz", X=X, y=y)
    return root


def test_train_from_npy_equals_training_in_memory_with_block_shuffle(digits_files):
    root = digits_files
    common = ["--epochs", "4", "--layers", "32", "--block-rows", "200", "--no-plots", "--seed", "4"]
    disk = run("train", "--data", "d", "--out", "disk", *common, cwd=root)
    assert disk.returncode == 0, disk.stderr
    npz = run("train", "--data", "d.npz", "--shuffle", "blocks", "--out", "npz", "-q", *common, cwd=root)
    mem = run("train", "--data", "d/X.npy", "--target", "d/y.npy", "--in-memory", "--shuffle", "blocks", "--out",
              "mem", "-q", *common, cwd=root)
    rows = run("train", "--data", "d.npz", "--out", "rows", "-q", *common, cwd=root)
    assert npz.returncode == mem.returncode == rows.returncode == 0, (npz.stderr, mem.stderr, rows.stderr)
    assert same_weights(root / "disk/model.safetensors", root / "npz/model.safetensors")
    assert same_weights(root / "disk/model.safetensors", root / "mem/model.safetensors")
    assert not same_weights(root / "disk/model.safetensors", root / "rows/model.safetensors")  # another order
    a, b = (json.loads((root / d / "metrics.json").read_text()) for d in ("disk", "npz"))
    assert a["final"] == b["final"] and a["test"]["accuracy"] == b["test"]["accuracy"] > 0.6
    assert a["config"]["shuffle"] is None and a["data"]["train_rows"] == 1258
    # evaluate reads the test rows from the files again, by blocks
    ev = run("evaluate", "disk/model.safetensors", "--json", cwd=root)
    assert ev.returncode == 0, ev.stderr
    assert json.loads(ev.stdout)["accuracy"] == a["test"]["accuracy"]


def test_train_from_npy_resumes_bit_for_bit(digits_files, tmp_path):
    root = digits_files
    common = ["--data", root / "d", "--layers", "16", "--block-rows", "300", "--no-plots", "-q"]
    whole = run("train", *common, "--epochs", "4", "--out", tmp_path / "whole")
    first = run("train", *common, "--epochs", "2", "--checkpoint-every", "1", "--out", tmp_path / "part")
    assert whole.returncode == first.returncode == 0, (whole.stderr, first.stderr)
    rest = run("train", "--resume", tmp_path / "part", "--epochs", "4", "-q")
    assert rest.returncode == 0, rest.stderr
    assert same_weights(tmp_path / "whole/model.safetensors", tmp_path / "part/model.safetensors")


def test_train_from_npy_refusals(digits_files, tmp_path):
    root = digits_files
    no_target = run("train", "--data", "d/X.npy", "--epochs", "1", "--out", tmp_path / "a", cwd=root)
    assert no_target.returncode == 2 and "--target y.npy" in no_target.stderr and "Traceback" not in no_target.stderr
    rows = run("train", "--data", "d", "--shuffle", "rows", "--epochs", "1", "--out", tmp_path / "b", cwd=root)
    assert rows.returncode == 2 and "blocks" in rows.stderr
    full = run("train", "--data", "d", "--full-batch", "--epochs", "1", "--out", tmp_path / "c", cwd=root)
    assert full.returncode == 2 and "--in-memory" in full.stderr
    np.save(tmp_path / "y_short.npy", np.zeros(5))
    short = run("train", "--data", root / "d/X.npy", "--target", tmp_path / "y_short.npy", "--out", tmp_path / "d")
    assert short.returncode == 2 and "1797 rows" in short.stderr


def test_rows_sorted_by_class_get_a_note(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 1000)
    X = rng.normal(size=(3000, 4)) + y[:, None]
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    proc = run("train", "--data", "X.npy", "--target", "y.npy", "--epochs", "1", "--no-plots", "--block-rows", "256", "--out", "r",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "runs of one class" in proc.stderr and "permutation" in proc.stderr
    np.save(tmp_path / "X.npy", X[p := rng.permutation(3000)])
    np.save(tmp_path / "y.npy", y[p])
    proc = run("train", "--data", "X.npy", "--target", "y.npy", "--epochs", "1", "--no-plots", "--block-rows", "256", "--out", "r",
               "--overwrite", cwd=tmp_path)
    assert proc.returncode == 0 and "runs of one class" not in proc.stderr


def write_large_npy(path: Path, m: int, n: int, seed: int = 0):
    """A float32 (m, n) .npy written chunk by chunk (never whole in this process) and its labels."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=n)
    labels = []
    with open(path, "wb") as f:
        np.lib.format.write_array_header_2_0(f, {"descr": np.dtype(np.float32).str, "fortran_order": False,
                                                 "shape": (m, n)})
        for start in range(0, m, 20_000):
            X = rng.normal(size=(min(20_000, m - start), n)).astype(np.float32)
            f.write(X.tobytes())
            labels.append((X @ w > 0).astype(np.int64))
    return np.concatenate(labels)


@pytest.mark.slow
def test_npy_several_times_larger_than_the_memory_the_run_reaches(tmp_path):
    m, n = 400_000, 256  # 410 MB of float32
    np.save(tmp_path / "y.npy", write_large_npy(tmp_path / "X.npy", m, n))
    size = os.path.getsize(tmp_path / "X.npy")
    common = ["--data", "X.npy", "--target", "y.npy", "--epochs", "1", "--layers", "32", "--batch-size", "256",
              "--no-plots", "-q", "--seed", "1"]
    disk = run("train", *common, "--out", "disk", cwd=tmp_path, measure=True)
    assert disk.returncode == 0, disk.stderr
    peak = int(disk.stdout.strip().splitlines()[-1]) * 1024
    assert size >= 3 * peak, f"file {size / 2**20:.0f} MiB, peak resident {peak / 2**20:.0f} MiB"
    mem = run("train", *common, "--in-memory", "--shuffle", "blocks", "--out", "mem", cwd=tmp_path, measure=True)
    assert mem.returncode == 0, mem.stderr
    assert int(mem.stdout.strip().splitlines()[-1]) * 1024 > size  # in memory, the rows are resident
    assert same_weights(tmp_path / "disk/model.safetensors", tmp_path / "mem/model.safetensors")
    metrics = json.loads((tmp_path / "disk/metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.9
