"""Argument types and the help formatter shared by the subcommands."""

from __future__ import annotations

import argparse

__all__ = ["Formatter", "sizes", "number", "positive_int", "positive_float", "nonnegative_float", "fraction", "nonnegative_int", "seed_int", "port_number"]


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


def number(convert, low=None, high=None, **limits):
    """An argparse type: ``convert(text)`` (int or float), then :func:`deltaprop.validation.check_number`
    with the range ``low``..``high`` (``low_open``, ``high_open``), its words in the message."""
    from deltaprop.errors import ConfigError
    from deltaprop.validation import check_number, number_rule

    def parse(text: str):
        try:
            value = convert(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'a whole number' if convert is int else 'a number'}") from None
        try:
            return check_number(value, "it", low, high, integer=convert is int, **limits)
        except ConfigError:
            rule = number_rule(low, high, integer=convert is int, low_open=limits.get("low_open", False),
                               high_open=limits.get("high_open", False))
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}") from None

    return parse


positive_int = number(int, 1)

nonnegative_int = number(int, 0)

positive_float = number(float, 0, low_open=True)

nonnegative_float = number(float, 0)

fraction = number(float, 0, 1, high_open=True)

# numpy.random.default_rng takes any whole number ≥ 0.
seed_int = number(int, 0)

port_number = number(int, 0, 65535)
