"""The command as a person runs it: ``python -m deltaprop ARGS`` in a child process, for every test file
that runs the real command. One place for the argv, the child's environment and the exit-code check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def command(*args) -> list[str]:
    """The argv of ``python -m deltaprop ARGS`` (each argument through ``str``, so paths may be given)."""
    return [sys.executable, "-m", "deltaprop", *map(str, args)]


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment, with the child's output unbuffered (progress lines arrive as written),
    matplotlib off-screen, this checkout's ``src`` first on the path, and ``extra`` on top."""
    return dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        MPLBACKEND="Agg",
        PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]),
        **extra,
    )


def run_argv(argv, *, cwd=None, check: int | None = None, timeout: float = 300, env=None, **popen):
    """Run ``argv`` (text mode, output captured; ``env`` defaults to :func:`child_env`). With ``check``,
    assert that the exit code is ``check`` and show both streams when it is not."""
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd,
                          env=child_env() if env is None else env, timeout=timeout, check=False, **popen)
    if check is not None:
        assert proc.returncode == check, (
            f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def run(*args, cwd=None, check: int | None = None, timeout: float = 300, env=None, **popen):
    """``python -m deltaprop ARGS`` in a child process; returns the CompletedProcess (see
    :func:`run_argv`)."""
    return run_argv(command(*args), cwd=cwd, check=check, timeout=timeout, env=env, **popen)


def assert_clean_error(proc, code: int, *words: str) -> None:
    """The command refused as the developers' guide asks: exit ``code``, no traceback, an error message on
    stderr that holds each of ``words`` (case aside)."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "error" in proc.stderr
    for w in words:
        assert w.lower() in proc.stderr.lower(), (w, proc.stderr)
