"""The ``deltaprop`` command: parse the arguments, call the library, render the result. No math here.

    deltaprop train                          # digits, a progress bar, a summary, a run directory
    deltaprop train --data fashion-mnist --layers 256,128 --epochs 20
    deltaprop evaluate runs/latest/model.safetensors
    deltaprop predict  runs/latest/model.safetensors images.npy -o predictions.csv
    deltaprop info     runs/latest/model.safetensors
    deltaprop gradcheck --layers 3,4,3,2 --activation tanh
    deltaprop explain --layers 3,4,3,2        deltaprop trace --preset note001
    deltaprop diagnose runs/latest
    deltaprop exercises start any_depth work/   deltaprop check work/any_depth.py
    deltaprop playground                     # the local web app: watch a network learn, step by step

Each command group lives in its own module with a ``register(subparsers)`` function, listed in
:data:`GROUPS`. Every error deltaprop raises on purpose (:class:`deltaprop.errors.DeltapropError`) is
printed as ``error: ...`` with a hint and ends the command with its exit code (2 for bad usage or input, 3
for a bad model file, 4 for divergence); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from deltaprop.cli.common import error
from deltaprop.errors import DeltapropError
from deltaprop.io.files import shown

__all__ = ["main", "build_parser", "GROUPS"]

# The modules of deltaprop.cli that add subcommands, in the order --help lists them.
GROUPS = ("train", "search", "models", "teach", "exercises", "exchange", "playground")

EXAMPLES = """\
examples:
  deltaprop train                                   train on scikit-learn's digits (the default)
  deltaprop train --data fashion-mnist --layers 256,128 --epochs 20
  deltaprop train --data table.csv --target label --layers 64 --optimizer sgd --lr 0.05
  deltaprop train --epochs 200 --checkpoint-every 10   Ctrl-C stops cleanly; then:
  deltaprop train --resume runs/latest                continue the interrupted run, bit for bit
  deltaprop evaluate runs/latest/model.safetensors   accuracy, per-class table, confusion matrix
  deltaprop predict runs/latest/model.safetensors inputs.csv -o predictions.csv
  deltaprop info runs/latest/model.safetensors
  deltaprop gradcheck --layers 3,4,3,2 --activation tanh
  deltaprop explain --layers 3,4,3,2 --l2 0.1        the derivation with this network's shapes
  deltaprop trace --preset note001 --per-example     one backprop step, number by number
  deltaprop exercises start any_depth work/          write backprop yourself (exercises list: all of them)
  deltaprop check work/any_depth.py                  runs your code; names the mistake if there is one
  deltaprop export runs/latest/model.safetensors --to onnx -o model.onnx   (or --to torch -o DIR, --to npz)
  deltaprop import sklearn_mlp.onnx -o model.safetensors   explain, trace and info also read .onnx directly
  deltaprop playground                               train in the browser, step by step (127.0.0.1)
"""


def build_parser() -> argparse.ArgumentParser:
    from deltaprop import __version__

    parser = argparse.ArgumentParser(
        prog="deltaprop", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build, train, explain and export multilayer perceptrons, with backpropagation derived by "
                    "hand in NumPy.", epilog=EXAMPLES)
    parser.add_argument("--version", action="version", version=f"deltaprop {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True
    for name in GROUPS:
        importlib.import_module(f"deltaprop.cli.{name}").register(sub)
    return parser


_MEMORY_HINTS = {
    "train": "use a smaller --batch-size, fewer or narrower --layers, or less data",
    "gradcheck": "use fewer or narrower --layers, or fewer --examples",
    "trace": "use fewer or narrower --layers, or fewer --examples",
}


def main(argv=None) -> int:
    """Run the command; returns the exit code (0 success, 1 failure, 2 usage/input, 3 model file, 4 divergence,
    130 interrupted)."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    debug = "--debug" in argv
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_DFL:  # set by deltaprop/__init__ while the command started
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while the command starts up (imports, parsing)
        if debug:
            raise
        error("interrupted")
        return 130


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv  # as typed: metrics.json records it, --resume reads which options were given
    try:
        return int(args.handler(args) or 0)
    except DeltapropError as err:
        if args.debug:
            raise
        error(str(err))
        return err.exit_code
    except KeyboardInterrupt:
        if args.debug:
            raise
        error("interrupted")
        return 130
    except BrokenPipeError:
        # The reader stopped reading (`| head`): end quietly, as Unix tools do. Point standard output at
        # /dev/null so that the interpreter's final flush does not complain a second time.
        import os

        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    except OSError as err:
        if args.debug:
            raise
        where = f" {shown(err.filename)}" if getattr(err, "filename", None) else ""
        error(f"cannot read or write{where}: {err.strerror or err}\n  hint: check the path, its permissions and "
              "the free space on its disk")
        return 1
    except MemoryError as err:
        if args.debug:
            raise
        # NumPy names the allocation: "Unable to allocate 7.5 GiB for an array with shape (30000, 30000)".
        what = f" ({err})" if str(err) else ""
        hint = _MEMORY_HINTS.get(args.command, "the model or the inputs are too large for this machine's memory: "
                                                "use a smaller model or fewer rows at a time")
        error(f"out of memory{what}\n  hint: {hint}")
        return 1
