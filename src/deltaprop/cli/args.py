"""Argument types, the help formatter and the training options shared by the subcommands."""

from __future__ import annotations

import argparse

__all__ = ["Formatter", "sizes", "number", "positive_int", "positive_float", "nonnegative_float", "fraction", "nonnegative_int", "seed_int", "port_number",
           "train_option"]


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


def _train_options() -> dict:
    """The options of one training, as ``deltaprop train`` gives them: dest → add_argument's keywords.
    The defaults are the library's (:class:`deltaprop.train.TrainOptions`, documented there)."""
    from deltaprop.train import TrainOptions

    defaults = TrainOptions()
    return {
        "drop": dict(metavar="COL[,COL]",
                     help="CSV columns to leave out (names or 0-based indices), such as an ID column"),
        "delimiter": dict(help="the CSV cell separator: comma, semicolon or tab (default: detected)"),
        "scale": dict(help="input scaling fitted on the training rows: standard, minmax, none, divide:255 "
                           "(default: what suits the data set)"),
        "layers": dict(type=sizes, default="128,64", metavar="H1,H2,...",
                       help="hidden layer sizes (input and output sizes come from the data)"),
        "activation": dict(default="relu", help="hidden activation: relu, tanh, sigmoid, leaky_relu, identity"),
        "init": dict(help="glorot, he or uniform (default: He for ReLU, Glorot otherwise)"),
        "dtype": dict(default="float32", choices=("float32", "float64"),
                      help="float type of weights and computation: float32 is fast, float64 for checking"),
        "optimizer": dict(default=defaults.optimizer, help="sgd, momentum, nesterov or adam"),
        "lr": dict(type=positive_float, help="learning rate α (default 0.1 for sgd/momentum, 0.001 for adam)"),
        "momentum": dict(type=nonnegative_float,
                         help="μ for momentum and nesterov (default 0.9); with sgd, turns plain SGD into momentum"),
        "schedule": dict(default=defaults.schedule,
                         help="learning-rate schedule: constant, step, exponential, adaptive (α/5 after 5 epochs "
                              "without progress), invscaling"),
        "epochs": dict(type=positive_int, default=defaults.epochs, help="passes over the training rows"),
        "batch_size": dict(type=positive_int, default=defaults.batch_size, help="rows per mini-batch step"),
        "l2": dict(type=nonnegative_float, default=defaults.l2, help="L2 strength λ in λ/(2m) Σ‖W‖²"),
        "class_weight": dict(choices=("balanced",),
                             help="weigh each row by its class: balanced gives class c the weight m / (K·m_c), as "
                                  "in scikit-learn (default: every row weighs 1)"),
        "seed": dict(type=seed_int, default=0, help="seed of the split, the weights and the shuffling"),
    }


def train_option(group, name: str, **changes) -> None:
    """Add the training option ``name`` (``"batch_size"`` → ``--batch-size``) to an argparse parser or
    group with the type, default and help ``deltaprop train`` gives it, so that the commands that train
    (train, search) take the same values; ``changes`` replace keywords (a command's own help)."""
    group.add_argument("--" + name.replace("_", "-"), **{**_train_options()[name], **changes})
