"""Exercises: write backprop yourself, and deltaprop checks it and names the mistake.

    deltaprop exercises list                       the exercises, following the notes
    deltaprop exercises start any_depth work/      writes work/any_depth.py, a starter with TODOs
    deltaprop check work/any_depth.py              runs YOUR code on small random networks
    deltaprop exercises hint any_depth 2           the hints, one at a time

From Python or a notebook::

    >>> from deltaprop.teach import exercises
    >>> report = exercises.check(backprop)              # the function; its module's EXERCISE names the exercise
    >>> report = exercises.check(backprop, exercise="any_depth")
    >>> report                                          # a notebook shows it as an HTML table

The checker (:mod:`.checker`) runs the learner's function on several networks, seeds and batch
sizes (one example and many), compares every item with deltaprop's engine, and names a mistake
only when a variant from the zoo (:mod:`.zoo`) reproduces the learner's numbers to 1e-6 on every case.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from deltaprop.errors import ConfigError, InputError

from .catalog import EXERCISES, Exercise, get_exercise
from .checker import LearnerError, _frame_in_learner, run_check
from .report import CheckReport

# The longest time limit a check takes: the timers behind it (setitimer, poll) overflow past weeks, and
# a week is no limit for a person at a keyboard.
MAX_TIMEOUT = 7 * 24 * 3600.0

__all__ = [
    "EXERCISES",
    "MAX_TIMEOUT",
    "CheckReport",
    "Exercise",
    "check",
    "get_exercise",
    "hint",
    "list_exercises",
    "load_learner",
    "start",
]


def list_exercises() -> list[Exercise]:
    """The exercises, in the order of the notes (forward pass first, mini-batch updates last)."""
    return list(EXERCISES.values())


def hint(exercise, step: int = 1) -> str:
    """Hints 1..``step`` of an exercise, numbered (the hints reveal the answer a little more each)."""
    ex = get_exercise(exercise)
    n = len(ex.hints)
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ConfigError(f"hint step must be a whole number ≥ 1, got {step!r}", f"{ex.name} has hints 1 to {n}")
    shown = ex.hints[:step]
    lines = [f"hint {i} of {n} ({ex.name}): {h}" for i, h in enumerate(shown, 1)]
    if step < n:
        lines.append(f"(hint {step + 1} of {n} reveals more)")
    else:
        lines.append("(that was the last hint; the answer is what `--solutions` writes)")
    return "\n".join(lines)


def start(exercise, directory, solutions: bool = False, force: bool = False) -> Path:
    """Write the exercise's starter file (or with ``solutions=True`` its answer) as DIRECTORY/NAME.py.
    An existing file is kept unless ``force``; returns the path written."""
    ex = get_exercise(exercise)
    folder = Path(os.path.expanduser(os.fspath(directory)))
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file, not a directory", "give a directory to write the exercise into")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ex.name}.py"
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists; it is kept (it may hold your work)",
                          "choose another directory, or pass --force to overwrite it")
    from deltaprop.io.files import atomic_write

    atomic_write(path, ex.source(solution=solutions).encode("utf-8"))
    return path


def load_learner(path, exercise=None):
    """(Exercise, function) from a learner's Python file: the file is RUN (it is the learner's code), its
    ``EXERCISE = "name"`` (or ``exercise``) says which exercise, and the function is the one the
    exercise names. Raises LearnerError if running the file raises, InputError/ConfigError otherwise."""
    path = Path(os.path.expanduser(os.fspath(path)))
    if not path.is_file():
        raise InputError(f"no Python file at {path}", "give the file that `deltaprop exercises start` wrote")
    if path.suffix != ".py":
        raise InputError(f"{path} is not a .py file", "the check runs a Python file with your function in it")
    name = "deltaprop_learner_" + "".join(ch if ch.isalnum() else "_" for ch in path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent.resolve()))  # the learner's own helper modules beside the file
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        raise LearnerError(f"{path.name} is not valid Python: {err.msg}", f"{path.name}, line {err.lineno}",
                           (err.text or "").strip()) from None
    except (Exception, SystemExit) as err:  # noqa: BLE001 - the learner's module may raise anything while it runs
        where, line = _frame_in_learner(err.__traceback__)
        raise LearnerError(f"running {path.name} raised {type(err).__name__}: {err}", where, line) from None
    finally:
        if sys.path and sys.path[0] == str(path.parent.resolve()):
            sys.path.pop(0)
    ex = _exercise_for(module.__dict__, exercise, f"{path.name}")
    fn = getattr(module, ex.function, None)
    if not callable(fn):
        raise LearnerError(f"{path.name} defines no function {ex.function}(): exercise {ex.name} checks "
                           f"{ex.signature}")
    return ex, fn


def _exercise_for(namespace: dict, exercise, where: str) -> Exercise:
    if exercise is not None:
        return get_exercise(exercise)
    name = namespace.get("EXERCISE")
    if name is None:
        raise ConfigError(f"{where} does not say which exercise it answers (no EXERCISE = \"...\" in it)",
                          "add EXERCISE = \"NAME\" at the top, or name it: --exercise NAME / exercise=\"NAME\"; "
                          "exercises: " + ", ".join(EXERCISES))
    return get_exercise(name)


def check(fn: Callable | str | os.PathLike[str], exercise: str | None = None, *,
          seeds: Sequence[int] = (0, 1, 2), timeout: float | None = 60.0) -> CheckReport:
    """Check a learner's function (or the Python file at path ``fn``, which is run) against an exercise.

    ``exercise``: its name; by default the ``EXERCISE`` of the function's module. Runs the function on the
    exercise's networks with each of ``seeds`` (one example for the first seed, then 4 and 7), compares
    every item with deltaprop's engine, and names the mistake when the zoo reproduces it. The report's
    ``ok`` and ``exit_code`` (0 right, 1 wrong, 2 cannot run) say the verdict; it prints as text and
    renders as HTML in a notebook. Never raises for a fault of the function: that is the report's ``error``.

    ``timeout``: seconds the whole check may take (running the file included) before the learner's code
    is stopped and the report says so: a loop that never ends does not hang the notebook. It is applied
    with a timer signal, so only in the main thread on Unix (where notebooks run their cells); None
    runs without a limit."""
    if timeout is not None and not (isinstance(timeout, (int, float)) and 0 < timeout <= MAX_TIMEOUT):
        raise ConfigError(f"timeout must be a positive number of seconds up to {MAX_TIMEOUT:g} (a week), or None; "
                          f"got {timeout!r}", "e.g. timeout=60 (the default), or timeout=None for no limit")
    source = os.fspath(fn) if isinstance(fn, (str, os.PathLike)) else ""
    if not source and not callable(fn):
        raise InputError(f"check needs your function, got a {type(fn).__name__}",
                         "pass the function itself (check(backprop)) or the path of its file")
    ex = None
    try:
        with _time_limit(timeout):
            if source:
                try:
                    ex, fn = load_learner(fn, exercise)
                except LearnerError as err:
                    ex = get_exercise(exercise) if exercise is not None else _guess_from_text(source)
                    return CheckReport(exercise=ex, cases=[], status="error", error=err, source=source)
            else:
                ex = _exercise_for(getattr(fn, "__globals__", {}), exercise,
                                   f"the module of {getattr(fn, '__name__', 'fn')}")
            report = run_check(ex, fn, cases=ex.make_cases(tuple(seeds)))
    except _TimeUp:
        if ex is None:
            ex = get_exercise(exercise) if exercise is not None else _guess_from_text(source)
        error = LearnerError(f"the check did not finish in {timeout:g} s; your code was stopped (it may loop "
                             "forever, or wait for input): look for a loop that never ends, or give it longer "
                             f"with timeout={max(2 * timeout, 120):g}")
        return CheckReport(exercise=ex, cases=[], status="error", error=error, source=source)
    report.source = source
    return report


class _TimeUp(BaseException):
    """Raised inside the learner's code when the check's time is up (a BaseException, so that the
    checker's `except Exception` around the learner's call lets it through)."""


def _time_limit(seconds):
    """A context that raises _TimeUp after ``seconds`` (a real-time timer and SIGALRM), where that
    can be done: the main thread on Unix. Elsewhere, or with None, no limit."""
    import contextlib
    import signal
    import threading

    if seconds is None or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def limit():
        def time_up(signum, frame):
            raise _TimeUp

        previous = signal.signal(signal.SIGALRM, time_up)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    return limit()


def _guess_from_text(path: str) -> Exercise:
    """The exercise a file names, read without running it (for the report of a file that cannot run)."""
    import re

    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    found = re.search(r"^EXERCISE\s*=\s*['\"]([\w-]+)['\"]", text, re.MULTILINE)
    if found and found.group(1).replace("-", "_") in EXERCISES:
        return get_exercise(found.group(1))
    raise ConfigError(f"{path} cannot be run and does not say which exercise it answers",
                      "add EXERCISE = \"NAME\" at the top; exercises: " + ", ".join(EXERCISES))
