"""Adversarial inputs against the command, each run in a child process with a time limit and an
address-space limit (RLIMIT_AS): the command must end with a non-zero exit code and a message that names
the problem, never a traceback, never a hang, never more memory than the limit; and whatever model or
checkpoint is left behind must load or be refused cleanly.

The classes follow the promises in docs/reliability.md: trained work is never lost; resources stay
bounded; no file can make deltaprop run code, open files it was not asked to, or drive the terminal; no
input ends in a traceback. Tests that need root (a full tmpfs, a read-only bind mount, writing over
/dev/null) are skipped with the reason when not run as root.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import threading
import time

import numpy as np
import pytest

import cli_child
import deltaprop as dp
from cli_child import child_env, command
from deltaprop.errors import DataError, ModelFileError
from deltaprop.io import checkpoint as ck
from deltaprop.io.datasets import read_idx, resolve, write_idx
from deltaprop.io.files import csv_cell, safe_text
from deltaprop.io.modelfile import read_tensors, write_tensors

ENV = child_env(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
MEMORY_LIMIT = 1536 * 1024**2  # bytes of address space for each child: far below what any attack asked for
TIMEOUT = 90
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
TRAIN = ["train", "--layers", "8", "--epochs", "2", "--no-plots", "-q"]


def _limit():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run(*args, cwd=None, timeout=TIMEOUT):
    """``deltaprop ARGS`` in a child with bounded memory; a hang fails the test through the timeout."""
    return cli_child.run(*args, cwd=cwd, timeout=timeout, env=ENV, preexec_fn=_limit,
                         stdin=subprocess.DEVNULL)


def refused(proc, code, *words):
    """Exit ``code``, no traceback, a one-screen message holding each of ``words``."""
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "error" in proc.stderr and len(proc.stderr) < 5000, proc.stderr[:3000]
    for word in words:
        assert word.lower() in proc.stderr.lower(), (word, proc.stderr)


def loads_or_refused(path):
    """A model or checkpoint left behind is either a valid file or refused with ModelFileError."""
    if not os.path.exists(path):
        return None
    try:
        return (ck.load if "checkpoint" in os.path.basename(path) else dp.load)(path)
    except ModelFileError:
        return None


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A small digits model (run directory, model path)."""
    out = tmp_path_factory.mktemp("model") / "run"
    proc = run(*TRAIN, "--out", out, "--checkpoint-every", "1")
    assert proc.returncode == 0, proc.stderr
    return out, out / "model.safetensors"


def craft(src, dst, meta=None, metadata=None, tensors=None):
    """A copy of the model file ``src`` with ``meta`` (net.meta) or raw ``metadata`` entries replaced."""
    t, md = read_tensors(src)
    if meta is not None:
        md["meta"] = json.dumps(meta)
    md.update(metadata or {})
    write_tensors(dst, tensors or t, md)
    return dst


def model_meta(path):
    return json.loads(read_tensors(path)[1]["meta"])


# -- trained work is never lost ---------------------------------------------------------------------
def test_first_epoch_divergence_is_recorded_and_exits_4(tmp_path):
    for flag in (["--lr", "1e308"], ["--l2", "1e308"]):
        out = tmp_path / flag[0].strip("-")
        proc = run(*TRAIN, "--out", out, *flag)
        refused(proc, 4, "diverged")
        summary = json.loads((out / "metrics.json").read_text())
        assert summary["status"] == "diverged" and summary["epochs"] == 0
        assert isinstance(loads_or_refused(out / "model.safetensors"), dp.Network)


def test_sgd_overflow_keeps_the_model_and_says_diverged(tmp_path):
    out = tmp_path / "run"
    proc = run(*TRAIN, "--layers", "128,64", "--optimizer", "sgd", "--lr", "1e6", "--out", out)
    refused(proc, 4, "diverged")
    assert "softmax outputs" not in proc.stderr
    assert json.loads((out / "metrics.json").read_text())["status"] == "diverged"
    assert (out / "model.safetensors").exists()
    loads_or_refused(out / "model.safetensors")


def test_test_split_with_nan_is_refused_before_training(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), np.arange(60) % 2
    np.savez(tmp_path / "d.npz", X=X, y=y, X_test=np.full((10, 3), np.nan), y_test=np.arange(10) % 2)
    out = tmp_path / "run"
    proc = run(*TRAIN, "--data", tmp_path / "d.npz", "--out", out)
    refused(proc, 2, "test inputs", "nan")
    assert not (out / "model.safetensors").exists() and not (out / "run.json").exists()


def test_ten_thousand_classes_are_refused_before_training(tmp_path):
    rows = "\n".join(f"{i % 7},{i % 10000}" for i in range(20000))
    (tmp_path / "ids.csv").write_text("x,id\n" + rows + "\n")
    proc = run(*TRAIN, "--data", tmp_path / "ids.csv", "--out", tmp_path / "run")
    refused(proc, 2, "10000 distinct whole numbers", "--task regression")  # the command asks which task
    proc = run(*TRAIN, "--data", tmp_path / "ids.csv", "--task", "classification", "--out", tmp_path / "run")
    refused(proc, 2, "10,000 classes", "--task regression")  # asked for classes: too many, before training
    assert not (tmp_path / "run" / "run.json").exists()


def test_a_plot_that_fails_costs_nothing_else(tmp_path, monkeypatch):
    from deltaprop.cli import main, report

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "run" / "curves.png"))

    monkeypatch.setattr(report, "plot_history", full)
    out = tmp_path / "run"
    code = main(["train", "--layers", "8", "--epochs", "2", "-q", "--out", str(out)])
    assert code == 1
    summary = json.loads((out / "metrics.json").read_text())
    assert "curves.png" not in summary["files"] and "gradient_flow.png" in summary["files"]
    assert any("No space left" in p for p in summary["problems"])
    assert isinstance(dp.load(out / "model.safetensors"), dp.Network)


def test_model_is_saved_before_the_test_metrics(tmp_path, monkeypatch):
    from deltaprop.cli import common, main
    from deltaprop.cli import train as train_cmd

    def broken(*args, **kwargs):
        raise MemoryError("Unable to allocate 9.0 GiB for an array with shape (10000, 10000)")

    monkeypatch.setattr(common, "metrics", broken)
    monkeypatch.setattr(train_cmd, "metrics", broken)
    out = tmp_path / "run"
    assert main(["train", "--layers", "8", "--epochs", "1", "-q", "--no-plots", "--out", str(out)]) == 1
    assert isinstance(dp.load(out / "model.safetensors"), dp.Network)
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["test"] is None and "9.0 GiB" in summary["problems"][0]


def test_resume_finishes_a_run_stopped_while_saving(tmp_path, model):
    out = tmp_path / "run"
    shutil.copytree(model[0], out)
    expected = dp.load(out / "model.safetensors")
    for name in ("model.safetensors", "metrics.json", "history.csv"):
        os.unlink(out / name)
    (out / ".model.safetensors.0123456789ab.tmp").write_bytes(b"half a model")
    proc = run("train", "--resume", out, "-q")
    assert proc.returncode == 0, proc.stderr
    assert not (out / ".model.safetensors.0123456789ab.tmp").exists()
    back = dp.load(out / "model.safetensors")
    assert all(a.tobytes() == b.tobytes() for a, b in zip(back.params(), expected.params()))
    assert json.loads((out / "metrics.json").read_text())["status"] == "completed"
    refused(run("train", "--resume", out), 2, "nothing left to do")


def test_one_run_per_directory(tmp_path, model):
    out = tmp_path / "run"
    shutil.copytree(model[0], out)
    refused(run(*TRAIN, "--out", out), 2, "already holds a run", "--overwrite")
    # A checkpoint of another run dropped into the directory is not continued.
    other = tmp_path / "other"
    assert run(*TRAIN, "--out", other, "--checkpoint-every", "1", "--layers", "5").returncode == 0
    shutil.copy(other / "checkpoint.safetensors", out / "checkpoint.safetensors")
    refused(run("train", "--resume", out, "--epochs", "4"), 3, "belongs to another run")
    # --overwrite replaces the old run's files: its checkpoint cannot be resumed any more.
    assert run(*TRAIN, "--out", out, "--overwrite").returncode == 0
    assert not (out / "checkpoint.safetensors").exists()
    refused(run("train", "--resume", out), 2, "nothing left to do")


def test_two_trainings_never_share_a_directory(tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen(
        command("train", "--layers", "64", "--epochs", "400", "--batch-size", "8", "-q", "--no-plots",
                "--out", out),
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 60
        while not (out / "run.json").exists() and time.time() < deadline:
            time.sleep(0.05)
        assert (out / "run.json").exists()
        refused(run(*TRAIN, "--out", out, "--overwrite"), 2, "another `deltaprop train`", str(first.pid))
        refused(run("train", "--resume", out), 2, "another `deltaprop train`")
    finally:
        first.kill()
        first.wait()


def test_relative_data_resumes_from_another_directory(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    np.savetxt(tmp_path / "t.csv", np.column_stack([X, y]), delimiter=",", header="a,b,c,label", comments="")
    proc = run(*TRAIN, "--data", "t.csv", "--out", "run", "--checkpoint-every", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    os.unlink(tmp_path / "run" / "model.safetensors")
    proc = run("train", "--resume", tmp_path / "run", "--epochs", "3", "-q", cwd="/")
    assert proc.returncode == 0, proc.stderr
    assert dp.load(tmp_path / "run" / "model.safetensors").meta["training"]["epochs"] == 3
    # The data changed since: refused, and --data cannot point elsewhere either.
    with open(tmp_path / "t.csv", "a") as f:
        f.write("0,0,0,1\n")
    refused(run("train", "--resume", tmp_path / "run", "--epochs", "4"), 2, "changed since the run started")


@pytest.mark.skipif(
    not ROOT, reason="a read-only bind mount needs root (root writes into chmod 555 directories)"
)
def test_read_only_output_directory_is_exit_2_before_training(tmp_path):
    target = tmp_path / "ro"
    target.mkdir()
    with _mount(["--bind", str(target), str(target)], remount_ro=True) as ok:
        if not ok:
            pytest.skip("mount is not permitted here")
        proc = run(*TRAIN, "--out", target)
        refused(proc, 2, "cannot be written", str(target), "free")


@pytest.mark.skipif(not ROOT, reason="mounting a small tmpfs needs root")
def test_full_disk_is_exit_2_before_training(tmp_path):
    target = tmp_path / "small"
    target.mkdir()
    with _mount(["-t", "tmpfs", "-o", "size=64k", "tmpfs", str(target)]) as ok:
        if not ok:
            pytest.skip("mount is not permitted here")
        (target / "filler").write_bytes(b"x" * 40_000)
        proc = run("train", "--layers", "256,256", "--epochs", "1", "-q", "--out", target / "run")
        refused(proc, 2, "free", "need")
        assert not (target / "run" / "model.safetensors").exists()


@contextlib.contextmanager
def _mount(args, remount_ro=False):
    where = args[-1]
    if subprocess.run(["mount", *args], capture_output=True).returncode != 0:
        yield False
        return
    try:
        if (
            remount_ro
            and subprocess.run(["mount", "-o", "remount,bind,ro", where], capture_output=True).returncode
        ):
            yield False
            return
        yield True
    finally:
        subprocess.run(["umount", where], capture_output=True)


# -- silent corruption ---------------------------------------------------------------------------------
def _idx_dir(tmp_path, images, labels, test_images=None, test_labels=None):
    d = tmp_path / "idx"
    d.mkdir(exist_ok=True)
    write_idx(d / "train-images-idx3-ubyte", images)
    write_idx(d / "train-labels-idx1-ubyte", labels)
    write_idx(d / "t10k-images-idx3-ubyte", images if test_images is None else test_images)
    write_idx(d / "t10k-labels-idx1-ubyte", labels if test_labels is None else test_labels)
    return d


def test_idx_float_images_keep_their_values(tmp_path):
    images = np.random.default_rng(0).random((20, 4, 4)).astype(np.float32)
    d = _idx_dir(tmp_path, images, (np.arange(20) % 2).astype(np.uint8))
    data = resolve(f"idx:{d}")
    np.testing.assert_array_equal(np.sort(data.X_train.ravel()), np.sort(images.ravel()))
    assert data.X_train.dtype == np.float32 and data.X_train.max() <= 1 and data.X_train.max() > 0.5
    assert data.scaling == "standard"


@pytest.mark.parametrize(
    "images, labels, words",
    [
        (np.full((4, 2, 2), np.nan, np.float32), np.array([0, 1, 0, 1], np.uint8), "pixel 0 is nan"),
        (np.zeros((4, 2, 2), np.uint8), np.array([0, 0.5, 1, 1], np.float32), "not a whole number"),
        (np.zeros((4, 2, 2), np.uint8), np.array([0, 1, 2**31 - 1, 1], np.int32), "at most 100,000"),
        (np.zeros((0, 2, 2), np.uint8), np.zeros(0, np.uint8), "no images"),
    ],
    ids=["nan-pixels", "half-label", "huge-label", "no-images"],
)
def test_idx_values_are_never_wrapped(tmp_path, images, labels, words):
    d = _idx_dir(tmp_path, images, labels)
    refused(run(*TRAIN, "--data", f"idx:{d}", "--out", tmp_path / "run"), 2, words)


@pytest.mark.parametrize(
    "rows, words",
    [
        (["1,1e300", "2,0", "3,0", "4,1e300"], "too large to be a class label"),
        (["1,a", "2,", "3,b", "4,a"], "label is empty"),
    ],
    ids=["huge-labels", "empty-label"],
)
def test_csv_labels_are_never_wrapped(tmp_path, rows, words):
    (tmp_path / "d.csv").write_text("x,y\n" + "\n".join(rows * 5) + "\n")
    refused(run(*TRAIN, "--data", tmp_path / "d.csv", "--out", tmp_path / "run"), 2, words)


def test_huge_weights_are_not_reported_as_probabilities(tmp_path, model):
    tensors, md = read_tensors(model[1])
    tensors = {k: (v * np.float32(1e30)) if k.startswith("W") else v for k, v in tensors.items()}
    write_tensors(tmp_path / "big.safetensors", tensors, md)
    np.save(tmp_path / "x.npy", np.full((3, 64), 16.0))
    refused(run("predict", tmp_path / "big.safetensors", tmp_path / "x.npy"), 4, "NaN or infinite", "|w|")


def test_class_list_longer_than_the_output_is_refused(tmp_path, model):
    meta = model_meta(model[1])
    bad = craft(model[1], tmp_path / "m.safetensors", meta={**meta, "classes": [str(i) for i in range(101)]})
    refused(run("info", bad), 3, "classes lists 101 names", "10")


def _reader(path, got):
    with open(path, "rb") as f:
        got.append(f.read())


def test_predict_writes_into_special_files_without_replacing_them(tmp_path, model):
    np.save(tmp_path / "x.npy", np.zeros((2, 64)))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list = []
    reader = threading.Thread(target=_reader, args=(fifo, got))
    reader.start()
    time.sleep(0.2)
    assert run("predict", model[1], tmp_path / "x.npy", "-o", fifo).returncode == 0
    reader.join(10)
    assert got and got[0].startswith(b"label,") and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    # Nobody reads the FIFO: refused at once, no hang.
    refused(run("predict", model[1], tmp_path / "x.npy", "-o", fifo), 1, "no process is reading")
    # A symbolic link stays a link; the file it names gets the predictions.
    (tmp_path / "real.csv").write_text("old\n")
    os.symlink(tmp_path / "real.csv", tmp_path / "link.csv")
    assert run("predict", model[1], tmp_path / "x.npy", "-o", tmp_path / "link.csv").returncode == 0
    assert os.path.islink(tmp_path / "link.csv") and (tmp_path / "real.csv").read_text().startswith("label,")
    # A directory is named as itself, not as a temporary file inside it.
    proc = run("predict", model[1], tmp_path / "x.npy", "-o", tmp_path)
    refused(proc, 2, str(tmp_path), "directory")  # a usage error, found before any work
    assert ".tmp" not in proc.stderr


@pytest.mark.skipif(not ROOT, reason="checking that /dev/null survives needs root, as replacing it does")
def test_predict_onto_a_device_keeps_the_device(tmp_path, model):
    np.save(tmp_path / "x.npy", np.zeros((2, 64)))
    assert run("predict", model[1], tmp_path / "x.npy", "-o", "/dev/null").returncode == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    if os.path.exists("/dev/full"):
        refused(run("predict", model[1], tmp_path / "x.npy", "-o", "/dev/full"), 1, "no space")
        assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


# -- no traceback, whatever the file says ---------------------------------------------------------------
META_CASES = [
    ("classes-int", {"classes": 7}, "classes"),
    ("classes-dict", {"classes": {"a": 1}}, "classes"),
    ("classes-nested", {"classes": [["0"], ["1"]] + [str(i) for i in range(8)]}, "classes"),
    ("classes-short", {"classes": ["a", "b"]}, "classes lists 2"),
    ("data-str", {"data": "digits"}, "data"),
    ("data-seed-negative", {"data": {"spec": "digits", "seed": -1}}, "seed"),
    ("data-seed-float", {"data": {"spec": "digits", "seed": 1.5}}, "seed"),
    ("data-seed-string", {"data": {"spec": "digits", "seed": "0"}}, "seed"),
    ("data-fraction-string", {"data": {"spec": "digits", "test_fraction": "0.3"}}, "test_fraction"),
    ("data-spec-list", {"data": {"spec": ["digits"]}}, "spec"),
    ("training-list", {"training": [1, 2]}, "training"),
    ("training-epochs-str", {"training": {"epochs": "30"}}, "epochs"),
    ("training-test-str", {"training": {"test": {"accuracy": "high"}}}, "test"),
    ("image-shape-wrong", {"image_shape": [3, 3]}, "image_shape"),
    ("task-unknown", {"task": "clustering"}, "task"),
    ("features-short", {"feature_names": ["a"]}, "feature_names"),
]


@pytest.mark.parametrize("case", META_CASES, ids=[c[0] for c in META_CASES])
@pytest.mark.parametrize("command", ["info", "evaluate"])
def test_crafted_meta_is_refused_by_name(tmp_path, model, case, command):
    _, change, word = case
    bad = craft(model[1], tmp_path / "m.safetensors", meta={**model_meta(model[1]), **change})
    refused(run(command, bad), 3, word)


@pytest.mark.parametrize("version", ["²", "1" * 100_000, "-1", "0"])
def test_crafted_format_versions(tmp_path, model, version):
    bad = craft(model[1], tmp_path / "m.safetensors", metadata={"format_version": version})
    refused(run("info", bad), 3, "format")
    ckpt_bad = tmp_path / "c.safetensors"
    t, md = read_tensors(model[0] / "checkpoint.safetensors")
    write_tensors(ckpt_bad, t, {**md, "format_version": version})
    with pytest.raises(ModelFileError):
        ck.load(ckpt_bad)


@pytest.mark.parametrize(
    "change, word",
    [
        ({"dtype": "int8"}, "dtype"),
        ({"seed": -1}, "seed"),
        ({"val_fraction": "0.1"}, "val_fraction"),
        ({"test_fraction": 2.5}, "test_fraction"),
        ({"layers": [8, -3]}, "layers"),
        ({"lr": "fast"}, "lr"),
        ({"data": 5}, "data"),
    ],
    ids=[
        "dtype-int8",
        "seed-negative",
        "fraction-string",
        "fraction-big",
        "layers-negative",
        "lr-text",
        "data-int",
    ],
)
def test_tampered_checkpoint_config(tmp_path, model, change, word):
    out = tmp_path / "run"
    shutil.copytree(model[0], out)
    os.unlink(out / "model.safetensors")
    t, md = read_tensors(out / "checkpoint.safetensors")
    run_info = json.loads(md["run"])
    run_info["config"].update(change)
    # A crafted file leaves the checksum out (or computes its own): every stored option is still checked.
    md.pop("checksum")
    write_tensors(out / "checkpoint.safetensors", t, {**md, "run": json.dumps(run_info)})
    refused(run("train", "--resume", out), 3, word, "damaged")


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "--seed", "-1"], ["--seed", "≥ 0"]),
        (["trace", "--seed", "-1"], ["--seed", "≥ 0"]),
        (["gradcheck", "--seed", "-1"], ["--seed", "≥ 0"]),
        (["trace", "--digits", "-5"], ["--digits", "[1, 17]"]),
        (["explain", "--layers", "3,-4,2"], ["≥ 1", "3,-4,2"]),
        (["train", "--optimizer", "adam", "--momentum", "0.9", "--epochs", "1"], ["--momentum", "adam"]),
    ],
    ids=[
        "train-seed",
        "trace-seed",
        "gradcheck-seed",
        "trace-digits",
        "explain-negative-layer",
        "momentum-adam",
    ],
)
def test_bad_numbers_are_usage_errors(tmp_path, args, words):
    extra = ["--out", tmp_path / "r"] if args[0] == "train" else []
    refused(run(*args, *extra, cwd=tmp_path), 2, *words)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: np.savez(p / "d.npz", X=np.zeros((0, 3)), y=np.zeros(0)), ["no rows"]),
        (lambda p: np.savez(p / "d.npz", X=np.float64(3.0), y=np.zeros(0)), ["no rows"]),
        (lambda p: np.savez(p / "d.npz", X=np.zeros((20, 0)), y=np.arange(20) % 2), ["no feature columns"]),
    ],
    ids=["zero-rows", "zero-d", "zero-features"],
)
def test_empty_arrays(tmp_path, make, words):
    make(tmp_path)
    refused(run(*TRAIN, "--data", tmp_path / "d.npz", "--out", tmp_path / "run"), 2, *words)


@pytest.mark.parametrize("values, scale, words", [
    ((1e308, -1e308), "standard", ["1e+308", "overflows"]),
    ((1.0, 2.0), "divide:1e-320", ["divide:1e-320", "divisor too small"]),
], ids=["huge-features", "tiny-divisor"])
def test_scaling_overflow_is_not_called_missing_values(tmp_path, values, scale, words):
    rows = ["a,b,y"] + [f"{values[i % 2]},{i},{i % 2}" for i in range(40)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    proc = run(*TRAIN, "--data", tmp_path / "d.csv", "--scale", scale, "--out", tmp_path / "run")
    refused(proc, 2, *words)
    assert "NaN or infinite values" not in proc.stderr and "RuntimeWarning" not in proc.stderr


def test_predict_on_empty_inputs(tmp_path, model):
    np.save(tmp_path / "empty.npy", np.zeros((0, 64)))
    refused(run("predict", model[1], tmp_path / "empty.npy"), 2, "no examples")
    write_idx(tmp_path / "empty.idx", np.zeros((0, 8, 8), np.uint8))
    refused(run("predict", model[1], tmp_path / "empty.idx"), 2, "no examples")
    (tmp_path / "garbage.npy").write_bytes(os.urandom(256))
    proc = run("predict", model[1], tmp_path / "garbage.npy")
    refused(proc, 2, "not a NumPy .npy file")
    assert "unpickling" not in proc.stderr


def _importing_deltaprop(pid) -> bool:
    """True once the child has loaded NumPy's compiled core: Python's own startup (site) is over and
    deltaprop's imports are under way."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return "_multiarray_umath" in f.read()
    except OSError:
        return False


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="watches the child's imports through /proc")
def test_sigint_while_the_command_starts_is_not_a_traceback(tmp_path):
    # From deltaprop's first imports to the first steps (Python's own startup before it is not deltaprop's
    # code): a quiet end or a clean "interrupted", never a traceback.
    for delay in (0.0, 0.01, 0.03, 0.06, 0.1, 0.2, 0.4, 0.8):
        proc = subprocess.Popen(
            command("train", "--epochs", "1", "-q", "--no-plots", "--out", tmp_path / f"r{delay}"),
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 30
        while not _importing_deltaprop(proc.pid) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.001)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=TIMEOUT)
        assert "Traceback" not in err, (delay, err)
        assert proc.returncode in (0, 130, -signal.SIGINT), (delay, proc.returncode, err)


# -- hangs and memory ------------------------------------------------------------------------------------
def test_fifos_are_refused_without_blocking(tmp_path, model):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    refused(run("info", fifo), 3, "FIFO")
    refused(run("predict", model[1], fifo), 2, "FIFO")
    refused(run(*TRAIN, "--data", fifo, "--out", tmp_path / "r"), 2, "FIFO")
    run_dir = tmp_path / "fiforun"
    run_dir.mkdir()
    os.mkfifo(run_dir / "history.csv")
    refused(run("diagnose", run_dir), 2, "FIFO")
    # A FIFO named as the data inside a model: never opened.
    meta = model_meta(model[1])
    bad = craft(
        model[1],
        tmp_path / "m.safetensors",
        meta={**meta, "data": {**meta["data"], "spec": str(fifo), "fingerprint": None}},
    )
    refused(run("evaluate", bad), 2, "no fingerprint")


def test_devices_are_refused(tmp_path, model):
    for name in ("zero.csv", "zero-idx", "model.safetensors"):
        os.symlink("/dev/zero", tmp_path / name)
    refused(run(*TRAIN, "--data", tmp_path / "zero.csv", "--out", tmp_path / "r"), 2, "character device")
    refused(run("predict", model[1], tmp_path / "zero-idx"), 2, "character device")
    proc = run("info", tmp_path / "model.safetensors")
    refused(proc, 3, "character device")
    assert "empty" not in proc.stderr


def test_sparse_model_file_is_refused_without_reading_it(tmp_path, model):
    t, md = read_tensors(model[1])
    sparse = tmp_path / "sparse.safetensors"
    write_tensors(sparse, t, md)
    with open(sparse, "r+b") as f:
        f.truncate(6 * 1024**3)  # 6 GB apparent, a few KB on disk
    started = time.time()
    refused(run("info", sparse), 3, "follow the header")
    assert time.time() - started < 30


def test_model_declaring_huge_tensors_is_refused_by_memory(tmp_path, model):
    t, md = read_tensors(model[1])
    arch = json.loads(md["architecture"])
    sizes = [64, 60000, 10]
    md["architecture"] = json.dumps({**arch, "sizes": sizes})
    big = tmp_path / "big.safetensors"
    header = {"W1": {"dtype": "F32", "shape": [60000, 64], "data_offsets": [0, 60000 * 64 * 4]}}
    # Declared tensors far beyond the file: refused by the offsets before anything is read.
    import struct

    text = json.dumps({**header, "__metadata__": md}).encode()
    big.write_bytes(struct.pack("<Q", len(text)) + text)
    refused(run("info", big), 3, "ends at byte")


def test_resource_estimates_refuse_before_work(tmp_path):
    started = time.time()
    refused(
        run("train", "--layers", "30000,30000", "--epochs", "1", "--out", tmp_path / "r"),
        2,
        "GB",
        "parameters",
    )
    refused(run("trace", "--layers", "3000,3000,2"), 2, "9,009,002 parameters")
    refused(run("gradcheck", "--layers", "2000,2000,2"), 2, "forward passes")
    assert time.time() - started < 60


def test_compressed_and_archived_bombs(tmp_path):
    import gzip

    # An IDX header declaring 100,000 images of 100 × 100 in a tiny .gz: refused by memory, not read.
    d = tmp_path / "bomb"
    d.mkdir()
    head = bytes([0, 0, 8, 3]) + np.array([100_000, 100, 100], ">u4").tobytes()
    with gzip.open(d / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(head)
        f.write(b"\0" * 10_000_000)
    with pytest.raises(DataError, match="truncated|memory"):
        read_idx(d / "train-images-idx3-ubyte.gz")
    # An .npz member whose header asks for 9 GB.
    import io
    import zipfile

    from numpy.lib import format as npy

    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (30000, 40000)})
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("X.npy", buf.getvalue() + b"\0" * 1000)
        z.writestr("y.npy", buf.getvalue())
    refused(
        run(*TRAIN, "--data", tmp_path / "bomb.npz", "--out", tmp_path / "r"),
        2,
        "declares shape (30000, 40000)",
    )


def test_long_names_in_crafted_files_make_short_messages(tmp_path, model):
    t, md = read_tensors(model[1])
    t["x" * 20_000_000] = np.zeros(1, np.float32)
    write_tensors(tmp_path / "long.safetensors", t, md)
    proc = run("info", tmp_path / "long.safetensors")
    refused(proc, 3, "unexpected")


# -- no file opens what the user did not name, or drives the terminal -------------------------------------
def test_model_cannot_make_evaluate_open_another_file(tmp_path, model):
    secret = tmp_path / "secret.csv"
    secret.write_text("TOPSECRET,1\n")
    meta = model_meta(model[1])
    for fp in (None, {"bytes": 12, "sha256": "0" * 64}):
        bad = craft(
            model[1],
            tmp_path / "m.safetensors",
            meta={**meta, "data": {**meta["data"], "spec": str(secret), "fingerprint": fp}},
        )
        proc = run("evaluate", bad)
        assert proc.returncode == 2 and "TOPSECRET" not in proc.stderr + proc.stdout, proc.stderr
        assert "Traceback" not in proc.stderr


def test_class_names_are_escaped_for_terminal_and_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2))
    names = np.array(["=cmd|' /C calc'!A0", "\x1b[31mred\x1b[0m", "+plain"])[np.arange(120) % 3]
    lines = ["a,b,label"] + [f'{x0},{x1},"{n}"' for (x0, x1), n in zip(X, names)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    proc = run(
        "train", "--layers", "4", "--epochs", "1", "--no-plots", "--data", tmp_path / "d.csv", "--out", out
    )
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr and "\\x1b[31mred" in proc.stdout
    info = run("info", out / "model.safetensors")
    assert "\x1b" not in info.stdout and "\\x1b" in info.stdout
    np.save(tmp_path / "x.npy", X[:9])
    pred = run("predict", out / "model.safetensors", tmp_path / "x.npy")
    assert pred.returncode == 0, pred.stderr
    cells = [line.split(",")[0] for line in pred.stdout.splitlines()]
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells), cells
    assert "\x1b" not in pred.stdout and "'=cmd|' /C calc'!A0" in pred.stdout


def test_safe_text_and_csv_cell():
    assert safe_text("a\x1b[2Jb\u202e") == "a\\x1b[2Jb\\u202e"
    assert csv_cell("=1+1") == "'=1+1" and csv_cell("-1.5") == "-1.5" and csv_cell("@SUM") == "'@SUM"
    assert csv_cell("cat") == "cat"


# -- formats written before this change still load -----------------------------------------------------
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def test_previous_format_files_still_load(tmp_path):
    net = dp.load(os.path.join(DATA, "model_format1_v0.safetensors"))
    assert net.sizes == [64, 6, 10] and net.meta["classes"] == [str(i) for i in range(10)]
    ckpt = ck.load(os.path.join(DATA, "checkpoint_format1_v0.safetensors"))
    assert ckpt.epoch == 2 and ckpt.network().sizes == [64, 6, 10]
    # A run directory of the previous format (no run.json): --resume --epochs extends it.
    out = tmp_path / "old"
    out.mkdir()
    shutil.copy(os.path.join(DATA, "checkpoint_format1_v0.safetensors"), out / "checkpoint.safetensors")
    proc = run("train", "--resume", out, "--epochs", "3", "-q")
    assert proc.returncode == 0, proc.stderr
    assert dp.load(out / "model.safetensors").meta["training"]["epochs"] == 3


def test_validation_split_too_small_suggests_val_fraction_0(tmp_path):
    rows = ["a,b,y"] + [f"{i},{i % 5},{i % 3}" for i in range(18)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    refused(run(*TRAIN, "--data", tmp_path / "d.csv", "--out", tmp_path / "run"), 2, "--val-fraction 0")


def test_a_failed_checkpoint_write_names_the_checkpoint(tmp_path):
    trainer = dp.Trainer(dp.Network.from_sizes([2, 3, 2]), np.zeros((4, 2)), np.array([0, 1, 0, 1]))
    with pytest.raises(ModelFileError, match="cannot write the checkpoint") as err:
        ck.save(trainer, tmp_path / "missing" / "checkpoint.safetensors")
    assert "model file" not in str(err.value)
