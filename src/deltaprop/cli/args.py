"""Argument types and the help formatter shared by the subcommands."""

from __future__ import annotations

import argparse

import numpy as np

__all__ = ["Formatter", "sizes", "number", "positive_int", "positive_float", "nonnegative_float", "fraction"]


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written; "(default: X)" added to an option's help once, only where the help
    does not already speak of its default and there is one to show."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or action.default is None or action.default is False
                or action.default == argparse.SUPPRESS
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


def sizes(text: str) -> list[int]:
    """'256,128' -> [256, 128]; an empty string means no hidden layer."""
    text = text.strip()
    if not text:
        return []
    try:
        sizes = [int(part) for part in text.replace(" ", "").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole numbers (e.g. 256,128)") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be ≥ 1, got {text!r}")
    return sizes


def number(convert, ok, expected: str):
    """An argparse type: ``convert(text)``, refused unless ``ok(value)``, with ``expected`` in the message."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if convert is int else 'a number'}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text}")
        return value

    return parse


positive_int = number(int, lambda v: v >= 1, "≥ 1")

positive_float = number(float, lambda v: np.isfinite(v) and v > 0, "a finite number > 0")

nonnegative_float = number(float, lambda v: np.isfinite(v) and v >= 0, "a finite number ≥ 0")

fraction = number(float, lambda v: 0 <= v < 1, "in [0, 1)")
