"""The command's reliability, run for real in subprocesses: SIGINT mid-epoch then --resume ends bit-identical
to a run never interrupted; SIGTERM; --checkpoint-every; divergence recorded in the run directory; and the
command's rows of the bad-input table (exit code, a message naming the problem, never a traceback).
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time

import numpy as np
import pytest

import deltaprop as dp
from cli_child import child_env, command, run
from deltaprop.io import checkpoint as ck
from deltaprop.io.datasets import write_idx

ENV = child_env()
# A short digits run with many small steps, so that a signal lands well inside an epoch.
TRAIN = ["train", "--layers", "32", "--epochs", "5", "--batch-size", "1", "--seed", "4", "--no-plots"]


def start_and_signal(args, signum, after_line="epoch 1/", delay=0.03):
    """Start ``deltaprop ARGS``, send ``signum`` ``delay`` seconds after the progress line starting with
    ``after_line`` is out (so inside the next epoch, which lasts some 100 ms: over a thousand steps of one
    row), and return (exit code, stderr)."""
    proc = subprocess.Popen(command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith(after_line):
            time.sleep(delay)
            proc.send_signal(signum)
            break
    rest_out, rest_err = proc.communicate(timeout=300)
    return proc.returncode, "".join(lines) + rest_err


def history_without_time(path):
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(f)]


def same_bits(a, b):
    return all(p.tobytes() == q.tobytes() for p, q in zip(a.params(), b.params()))


def test_sigint_mid_epoch_then_resume_is_bit_identical(tmp_path):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    proc = run(*TRAIN, "--out", straight, "-q")
    assert proc.returncode == 0, proc.stderr

    code, err = start_and_signal([*TRAIN, "--out", stopped], signal.SIGINT)
    assert code == 130, err
    assert "Traceback" not in err and "interrupted by SIGINT after batch" in err
    assert f"deltaprop train --resume {stopped}" in err
    state = ck.load(stopped / "checkpoint.safetensors")
    assert 1 <= state.epoch < 5 and state.batch > 0, "the signal must land inside an epoch"
    record = json.loads((stopped / "metrics.json").read_text())
    assert record["status"] == "interrupted" and record["batches_into_next_epoch"] == state.batch
    assert not (stopped / "model.safetensors").exists()

    proc = run("train", "--resume", stopped)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert f"resuming after batch {state.batch} of epoch {state.epoch + 1}" in proc.stderr
    assert same_bits(dp.load(straight / "model.safetensors"), dp.load(stopped / "model.safetensors"))
    # Every figure of every epoch is the same, except the dead-unit fractions of the epoch the run was
    # stopped in: the resumed process did not see that epoch whole, so it records them as unknown (empty).
    resumed_epoch = state.epoch + 1
    a, b = history_without_time(straight / "history.csv"), history_without_time(stopped / "history.csv")
    assert len(a) == len(b)
    for row_a, row_b in zip(a, b):
        dead = [k for k in row_a if k.startswith("dead_fraction")]
        assert dead, "the command records dead ReLU fractions"
        if int(row_a["epoch"]) == resumed_epoch:
            assert all(row_b[k] == "" for k in dead), row_b
            row_a, row_b = ({k: v for k, v in r.items() if k not in dead} for r in (row_a, row_b))
        assert row_a == row_b
    assert json.loads((stopped / "metrics.json").read_text())["status"] == "completed"
    # The checkpoint now holds the finished state: nothing is left to resume.
    again = run("train", "--resume", stopped)
    assert again.returncode == 2 and "nothing left to do" in again.stderr


def test_resume_with_fewer_epochs_than_trained_is_refused(tmp_path):
    """Ctrl-C in epoch 3, then --resume --epochs 1: refused, naming where the run stopped, the checkpoint
    untouched. It used to say 'the run was stopped while saving its outputs' and save the model of 2 epochs
    and a part as a finished run of 1 epoch. --epochs 3 finishes the epoch in flight and ends there."""
    out = tmp_path / "run"
    code, err = start_and_signal([*TRAIN, "--out", out], signal.SIGINT, after_line="epoch 2/")
    assert code == 130, err
    state = ck.load(out / "checkpoint.safetensors")
    assert state.epoch == 2 and state.batch > 0, "the signal must land inside epoch 3"
    before = (out / "checkpoint.safetensors").read_bytes()
    for epochs in ("1", "2"):
        proc = run("train", "--resume", out, "--epochs", epochs)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert f"stopped after batch {state.batch} of epoch 3 of 5" in proc.stderr and "--epochs 3" in proc.stderr
        assert "stopped while saving" not in proc.stderr
    assert (out / "checkpoint.safetensors").read_bytes() == before and not (out / "model.safetensors").exists()
    proc = run("train", "--resume", out, "--epochs", "3")
    assert proc.returncode == 0 and f"resuming after batch {state.batch} of epoch 3" in proc.stderr, proc.stderr
    assert len(history_without_time(out / "history.csv")) == 3
    assert dp.load(out / "model.safetensors").meta["training"]["epochs"] == 3


def test_sigterm_stops_cleanly_with_a_checkpoint(tmp_path):
    out = tmp_path / "run"
    code, err = start_and_signal([*TRAIN, "--out", out], signal.SIGTERM)
    assert code == 143 and "Traceback" not in err and "SIGTERM" in err
    assert ck.load(out / "checkpoint.safetensors").batch > 0
    assert json.loads((out / "metrics.json").read_text())["status"] == "interrupted"


def test_checkpoint_every_and_extending_a_finished_run(tmp_path):
    out = tmp_path / "run"
    base = ["train", "--layers", "16", "--batch-size", "64", "--seed", "1", "--no-plots", "-q", "--out", out]
    assert run(*base, "--epochs", "3", "--checkpoint-every", "2").returncode == 0
    assert ck.load(out / "checkpoint.safetensors").epoch == 3  # written at epoch 2 and at the end
    longer = run("train", "--resume", out, "--epochs", "5", "-q")
    assert longer.returncode == 0, longer.stderr
    assert len(history_without_time(out / "history.csv")) == 5
    assert dp.load(out / "model.safetensors").meta["training"]["epochs"] == 5
    # --epochs given with the parser's default value still counts as given.
    assert run("train", "--resume", out, "--epochs", "30", "-q").returncode == 0
    assert len(history_without_time(out / "history.csv")) == 30
    # Any other option is refused, even written with its default value.
    refused = run("train", "--resume", out, "--epochs", "31", "--layers", "128,64")
    assert refused.returncode == 2 and "--layers" in refused.stderr and "Traceback" not in refused.stderr


def test_a_checkpoint_damaged_after_it_was_written_is_refused(tmp_path):
    """A bit flipped in a weight, or a digit changed in the state's JSON (lr0 0.001 → 0.002), passed every
    layout check and resumed silently with other weights or another learning rate; the checksum written
    with the checkpoint refuses both (exit 3), and the intact file resumes."""
    import struct

    out = tmp_path / "run"
    assert run("train", "--layers", "8", "--epochs", "2", "--checkpoint-every", "1", "--no-plots", "-q",
               "--out", out).returncode == 0
    path = out / "checkpoint.safetensors"
    good = path.read_bytes()
    (n,) = struct.unpack("<Q", good[:8])
    weight = bytearray(good)
    weight[-7] ^= 0x01  # the low bits of a float in the last tensor
    header = good[8:8 + n].decode("utf-8")
    assert header.count('\\"lr0\\":0.001,') == 1
    lr = good[:8] + header.replace('\\"lr0\\":0.001,', '\\"lr0\\":0.002,').encode("utf-8") + good[8 + n:]
    for damaged in (bytes(weight), lr):
        path.write_bytes(damaged)
        proc = run("train", "--resume", out, "--epochs", "3", "-q")
        assert proc.returncode == 3 and "do not match the checksum" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        with pytest.raises(dp.ModelFileError, match="checksum"):
            ck.load(path)
    path.write_bytes(good)
    assert run("train", "--resume", out, "--epochs", "3", "-q").returncode == 0


def test_resume_refuses_a_checkpoint_with_damaged_settings(tmp_path):
    out = tmp_path / "run"
    assert run("train", "--layers", "8", "--epochs", "2", "--checkpoint-every", "1", "--no-plots", "-q",
               "--out", out).returncode == 0
    state = ck.load(out / "checkpoint.safetensors")
    config = dict(state.run["config"], epochs="5")
    trainer = dp.Trainer(dp.Network.from_sizes([2, 3, 2]), np.zeros((4, 2)), np.array([0, 1, 0, 1]))
    ck.save(trainer, out / "checkpoint.safetensors", run={"config": config})
    proc = run("train", "--resume", out, "--epochs", "4")
    assert proc.returncode == 3 and "'epochs' is damaged" in proc.stderr and "Traceback" not in proc.stderr


def write_regression_csv(path, rows=120):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 3))
    y = X @ np.array([10.0, 20.0, 30.0]) + 7
    with open(path, "w") as f:
        f.write("a,b,c,price\n")
        for row, target in zip(X, y):
            f.write(",".join(f"{v:.5f}" for v in row) + f",{target:.5f}\n")
    return path


def test_divergence_is_recorded_in_the_run_directory(tmp_path):
    data = write_regression_csv(tmp_path / "reg.csv")
    out = tmp_path / "run"
    proc = run("train", "--data", data, "--task", "regression", "--layers", "8", "--epochs", "5",
               "--optimizer", "sgd", "--lr", "1e3", "--out", out, "--no-plots", "-q")
    assert proc.returncode == 4 and "Traceback" not in proc.stderr and "Warning" not in proc.stderr
    assert "training diverged at epoch" in proc.stderr and "batch" in proc.stderr
    assert "lower the learning rate" in proc.stderr
    record = json.loads((out / "metrics.json").read_text())
    assert record["status"] == "diverged" and record["stop_reason"].startswith("diverged at epoch")
    assert all(np.isfinite(p).all() for p in dp.load(out / "model.safetensors").params())


# -- the command's rows of the bad-input table --------------------------------------------------------
def files(tmp):
    """Small inputs, made once per test: a good CSV, CSVs with one problem each, an IDX directory with a
    wrong magic number, a model trained on the good CSV, a damaged checkpoint."""
    good = tmp / "good.csv"
    with open(good, "w") as f:
        f.write("x1,x2,label\n" + "".join(f"{i % 7 / 7:.3f},{i % 5 / 5:.3f},{i % 2}\n" for i in range(40)))
    (tmp / "text.csv").write_text("x1,x2,label\n0.1,0.2,0\n0.3,high,1\n0.5,0.6,0\n")
    (tmp / "nan.csv").write_text("x1,x2,label\n0.1,0.2,0\n0.3,nan,1\n0.5,0.6,0\n")
    (tmp / "one_class.csv").write_text("x1,x2,label\n0.1,0.2,3\n0.3,0.4,3\n0.5,0.6,3\n0.7,0.8,3\n")
    (tmp / "empty.csv").write_text("")
    idx = tmp / "idx"
    idx.mkdir()
    for part, m in (("train", 6), ("t10k", 4)):
        write_idx(idx / f"{part}-images-idx3-ubyte", np.zeros((m, 2, 2), np.uint8))
        write_idx(idx / f"{part}-labels-idx1-ubyte", np.arange(m, dtype=np.uint8) % 2)
    raw = (idx / "train-images-idx3-ubyte").read_bytes()
    (idx / "train-images-idx3-ubyte").write_bytes(b"\x12\x34\x08\x03" + raw[4:])
    model_dir = tmp / "model_run"
    proc = run("train", "--data", good, "--layers", "4", "--epochs", "2", "--out", model_dir, "--no-plots", "-q",
               "--checkpoint-every", "1")
    assert proc.returncode == 0, proc.stderr
    np.save(tmp / "three_features.npy", np.zeros((2, 3)))
    np.save(tmp / "nan_inputs.npy", np.array([[0.1, np.nan]]))
    (tmp / "pickle.bin").write_bytes(b"\x80\x04\x95" + b"\x00" * 40)
    (tmp / "plain_dir").mkdir()
    broken = tmp / "broken_run"
    broken.mkdir()
    (broken / "checkpoint.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    return {"good": good, "model": model_dir / "model.safetensors", "run": model_dir, "broken": broken}


CLI_CASES = [
    # (id, arguments (with {name} for a prepared file), exit code, words that stderr must contain)
    ("layers-zero", ["train", "--layers", "0"], 2, ["--layers", "0"]),
    ("layers-negative", ["train", "--layers", "32,-4"], 2, ["--layers", "-4"]),
    ("layers-text", ["train", "--layers", "wide"], 2, ["--layers", "wide"]),
    ("epochs-zero", ["train", "--epochs", "0"], 2, ["--epochs", "0"]),
    ("batch-size-zero", ["train", "--batch-size", "0"], 2, ["--batch-size", "0"]),
    ("lr-negative", ["train", "--lr", "-0.1"], 2, ["--lr", "-0.1"]),
    ("lr-nan", ["train", "--lr", "nan"], 2, ["--lr", "nan"]),
    ("lr-inf", ["train", "--lr", "inf"], 2, ["--lr", "inf"]),
    ("val-fraction", ["train", "--val-fraction", "1.5"], 2, ["--val-fraction", "1.5"]),
    ("activation-name", ["train", "--data", "{good}", "--activation", "rleu"], 2,
     ["unknown activation 'rleu'", "did you mean 'relu'"]),
    ("optimizer-name", ["train", "--data", "{good}", "--optimizer", "adma"], 2,
     ["unknown optimizer 'adma'", "did you mean 'adam'"]),
    ("schedule-name", ["train", "--data", "{good}", "--schedule", "cosine"], 2, ["cosine"]),
    ("scale-name", ["train", "--data", "{good}", "--scale", "zscore"], 2, ["zscore", "standard"]),
    ("classes-with-squared-error", ["train", "--data", "{good}", "--loss", "squared_error"], 2,
     ["identity output", "classes"]),
    ("sigmoid-output-with-ce", ["train", "--data", "{good}", "--output", "sigmoid", "--loss", "cross_entropy"], 2,
     ["'sigmoid' output", "cross_entropy"]),
    ("csv-missing", ["train", "--data", "{tmp}/absent.csv"], 2, ["no such file", "absent.csv"]),
    ("csv-target-missing", ["train", "--data", "{good}", "--target", "species"], 2, ["no column 'species'"]),
    ("csv-text-cell", ["train", "--data", "{tmp}/text.csv"], 2, ["row 2", "column 'x2'", "'high'", "not a number"]),
    ("csv-nan-cell", ["train", "--data", "{tmp}/nan.csv"], 2, ["row 2", "column 'x2'", "not finite"]),
    ("csv-empty", ["train", "--data", "{tmp}/empty.csv"], 2, ["empty"]),
    ("csv-one-class", ["train", "--data", "{tmp}/one_class.csv"], 2, ["one class"]),
    ("idx-magic", ["train", "--data", "idx:{tmp}/idx"], 2, ["magic number"]),
    ("unknown-data-spec", ["train", "--data", "cifar"], 2, ["unknown data spec", "cifar"]),
    ("predict-features", ["predict", "{model}", "{tmp}/three_features.npy"], 2, ["3 features", "2"]),
    ("predict-nan", ["predict", "{model}", "{tmp}/nan_inputs.npy"], 2, ["NaN"]),
    ("evaluate-pickle", ["evaluate", "{tmp}/pickle.bin"], 3, ["pickle"]),
    ("info-missing-model", ["info", "{tmp}/none.safetensors"], 3, ["no such model file"]),
    ("resume-missing", ["train", "--resume", "{tmp}/no_run"], 2, ["no such run directory"]),
    ("resume-no-checkpoint", ["train", "--resume", "{tmp}/plain_dir"], 2, ["has no checkpoint.safetensors"]),
    ("resume-finished", ["train", "--resume", "{run}"], 2, ["nothing left to do", "all 2 epochs are done"]),
    ("resume-damaged", ["train", "--resume", "{broken}"], 3, ["not a readable checkpoint"]),
    ("resume-other-options", ["train", "--resume", "{run}", "--lr", "0.5", "--layers", "8"], 2,
     ["cannot change --layers, --lr"]),
    ("checkpoint-every-zero", ["train", "--checkpoint-every", "0"], 2, ["--checkpoint-every", "0"]),
]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    return tmp, files(tmp)


@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_bad_command_input_gets_a_clear_error(case, prepared):
    _, args, code, words = case
    tmp, paths = prepared
    args = [a.format(tmp=tmp, **paths) for a in args]
    proc = run(*args, cwd=tmp)
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and "error" in proc.stderr
    for word in words:
        assert word in proc.stderr, (word, proc.stderr)
