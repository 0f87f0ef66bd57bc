"""One family of errors: what went wrong, what to do about it, and the exit code the command uses.

Every error deltaprop raises on purpose is a :class:`DeltapropError`. It carries

- ``message``: what was received and what was expected;
- ``hint``: what the user can do about it (may be empty);
- ``exit_code``: what ``deltaprop`` returns when the error ends a command.

The subclasses also derive from the built-in exception a Python user would expect
(``ValueError`` for bad values, ``OSError``-free for files so that callers can
catch ``DeltapropError`` alone), so that scikit-learn and plain ``except ValueError``
code keep working.
"""

from __future__ import annotations

import difflib

__all__ = [
    "DeltapropError",
    "InputError",
    "InputTypeError",
    "ConfigError",
    "DataError",
    "ModelFileError",
    "DivergenceError",
    "unknown_name",
]


class DeltapropError(Exception):
    """Base class: ``str(err)`` is the message followed by the hint."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "", *, exit_code: int | None = None) -> None:
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message

    def __reduce__(self):
        # Keep message and hint through pickling (joblib sends errors between processes).
        return (_rebuild, (type(self), self.message, self.hint, self.exit_code))


def _rebuild(cls, message, hint, exit_code):
    return cls(message, hint, exit_code=exit_code)


class InputError(DeltapropError, ValueError):
    """Arrays the caller passed are unusable: shapes, NaN, labels, dtypes."""

    exit_code = 2


class InputTypeError(InputError, TypeError):
    """Input values of a type that cannot be read as numbers at all (a dict inside X, say); also a
    TypeError, as NumPy and scikit-learn raise for such values."""


class ConfigError(DeltapropError, ValueError):
    """A setting is out of range or unknown: layer sizes, names, learning rates."""

    exit_code = 2


class DataError(DeltapropError, ValueError):
    """A data file or data set cannot be read as promised (CSV, IDX, NPZ, missing data set)."""

    exit_code = 2


class ModelFileError(DeltapropError, ValueError):
    """A model file is missing, truncated, garbled, hostile or of another format."""

    exit_code = 3


class DivergenceError(DeltapropError, ValueError, ArithmeticError):
    """Training produced a non-finite loss or gradient; ``history``, ``epoch`` and ``batch`` say where.

    Also a ValueError, as scikit-learn raises for "non-finite parameter weights", so that code written
    for scikit-learn's estimators catches it; and an ArithmeticError, as it always was."""

    exit_code = 4

    def __init__(self, message: str, hint: str = "", *, exit_code: int | None = None,
                 history: object = None, epoch: int | None = None, batch: int | None = None) -> None:
        # history: the run's deltaprop.train.History (typed as object: the error family imports nothing).
        super().__init__(message, hint, exit_code=exit_code)
        self.history, self.epoch, self.batch = history, epoch, batch


def unknown_name(kind: str, name: object, valid: list[str] | tuple[str, ...]) -> ConfigError:
    """Build the error for an unknown registry name: list the valid ones, suggest the closest."""
    valid = sorted(valid)
    close = difflib.get_close_matches(str(name).lower(), valid, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    hint += "valid names: " + ", ".join(valid)
    return ConfigError(f"unknown {kind} {name!r}", hint)
