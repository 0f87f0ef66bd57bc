"""kill -9 at random moments of a whole `deltaprop train` run (start-up, epochs, checkpoint writes, the
final model, history and metrics), then `--resume`: every time the run directory ends complete, with a
model bit for bit equal to the one of the run never interrupted.

A run killed before it stored its options (run.json) has nothing to resume and is started again with the
command first typed; a run killed before its first checkpoint starts again from run.json; a run killed
while saving its outputs has them written from its final checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time

import numpy as np
import pytest

import deltaprop as dp
from cli_child import child_env, command, run
from deltaprop.io.files import TMP_PATTERN

ENV = child_env(OPENBLAS_NUM_THREADS="1")
TRAIN = [
    "train",
    "--layers",
    "24",
    "--epochs",
    "6",
    "--batch-size",
    "16",
    "--seed",
    "3",
    "--checkpoint-every",
    "1",
    "--no-plots",
    "-q",
]
KILLS = int(os.environ.get("KILL_LOOP_N", "12"))


def finish(out):
    """After a kill: --resume (or the first command again, when nothing was stored) until it succeeds."""
    proc = run("train", "--resume", out, "-q", env=ENV)
    if proc.returncode == 2 and ("holds no run" in proc.stderr or "no such run directory" in proc.stderr):
        proc = run(*TRAIN, "--out", out, env=ENV)
    if proc.returncode == 2 and "nothing left to do" in proc.stderr:  # the kill came after the last write
        return proc
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def check_complete(out, expected):
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 6
    for name in summary["files"]:
        assert (out / name).is_file(), name
    assert not [n for n in os.listdir(out) if TMP_PATTERN.match(n)]
    net = dp.load(out / "model.safetensors")
    assert all(a.tobytes() == b.tobytes() for a, b in zip(net.params(), expected.params()))
    with open(out / "history.csv") as f:
        assert len(f.read().strip().splitlines()) == 1 + 6


@pytest.mark.slow
def test_kill_9_anywhere_then_resume_gives_the_uninterrupted_model(tmp_path):
    ref = tmp_path / "ref"
    started = time.perf_counter()
    assert subprocess.run(command(*TRAIN, "--out", ref), env=ENV, timeout=300).returncode == 0
    whole = time.perf_counter() - started
    expected = dp.load(ref / "model.safetensors")
    rng = random.Random(17)
    # Moments spread over the whole run, a third of them in its last fifth (the final saves).
    moments = [rng.uniform(0.0, whole) for _ in range(KILLS - KILLS // 3)]
    moments += [rng.uniform(0.8 * whole, 1.05 * whole) for _ in range(KILLS // 3)]
    seen = set()
    for i, moment in enumerate(sorted(moments)):
        out = tmp_path / f"k{i}"
        proc = subprocess.Popen(
            command(*TRAIN, "--out", out), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(moment)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stored = sorted(n for n in os.listdir(out)) if out.exists() else []
        seen.add(
            ("checkpoint.safetensors" in stored, "model.safetensors" in stored, "metrics.json" in stored)
        )
        finish(out)
        check_complete(out, expected)
    # The kills landed in different phases: before any checkpoint, between checkpoints, while saving.
    assert len(seen) >= 2, seen
    np.testing.assert_equal(len(moments), KILLS)
