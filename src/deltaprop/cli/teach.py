"""``deltaprop gradcheck``, ``explain``, ``trace`` and ``diagnose``: the teaching tools from the shell."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from deltaprop.cli.args import (
    Formatter,
    nonnegative_float,
    number,
    positive_float,
    positive_int,
    seed_int,
    sizes,
)
from deltaprop.cli.common import json_default, out
from deltaprop.errors import ConfigError, ModelFileError, unknown_name
from deltaprop.gradcheck import TOLERANCE, H, gradcheck
from deltaprop.losses import get_loss
from deltaprop.model import Network
from deltaprop.teach.diagnose import diagnose
from deltaprop.teach.explain import NOTATIONS, as_network, explain, parse_sizes
from deltaprop.teach.pictures import network_svg
from deltaprop.teach.trace import (
    MAX_DIGITS,
    PRESETS,
    TRACE_NOTATIONS,
    preset_network,
    random_batch,
    trace,
    trace_preset,
)


def register(sub) -> None:
    c = sub.add_parser("gradcheck", help="backprop against finite differences on a small random problem",
                       formatter_class=Formatter,
                       description="Build a float64 network, draw a small random batch, and compare every dW and db "
                                   "with centered finite differences. Exits 1 when a check fails.")
    c.add_argument("--layers", type=sizes, default="3,4,3,2", metavar="N0,N1,...,NL",
                   help="all layer sizes, input first")
    c.add_argument("--activation", default="tanh", help="hidden activation")
    c.add_argument("--output", help="output activation (default: the one that pairs with --loss, else softmax)")
    c.add_argument("--loss", help="cross_entropy, binary_cross_entropy, squared_error or poisson")
    c.add_argument("--l2", type=nonnegative_float, default=0.0)
    c.add_argument("--examples", "-m", type=positive_int, default=5)
    c.add_argument("--seed", type=seed_int, default=0)
    c.add_argument("--h", type=positive_float, default=H, help="finite-difference step")
    c.add_argument("--tolerance", type=positive_float, default=TOLERANCE,
                   help="largest relative error that passes (an array whose |analytic − numeric| is below the "
                        "rounding noise of the differences passes too; trace applies the same rule)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(handler=cmd_gradcheck)

    register_explain(sub)


def cmd_gradcheck(args) -> int:
    if len(args.layers) < 2:
        raise ConfigError(f"--layers needs at least an input and an output size, got {args.layers}",
                          "for example --layers 3,4,3,2")
    _check_cost("gradcheck", args.layers, args.examples)
    net = Network.from_sizes(args.layers, hidden=args.activation, output=_output_for(args), loss=args.loss,
                             seed=args.seed, dtype="float64")
    X, y = random_batch(net, args.examples, seed=args.seed)
    rep = gradcheck(net, X, y, l2=args.l2, h=args.h, tolerance=args.tolerance)
    if args.json:
        out(json.dumps(rep.to_dict(), indent=2, default=json_default))
    else:
        from deltaprop.cli import report

        out(f"{net!r}, m = {args.examples}, λ = {args.l2:g}")
        out(report.gradcheck_table(rep))
    return 0 if rep.ok else 1


def register_explain(subparsers) -> None:
    """The ``explain``, ``trace`` and ``diagnose`` subcommands."""
    p = subparsers.add_parser(
        "explain", help="the backprop derivation of a network, with its shapes",
        description="Show forward propagation, the cost and the backward pass of a network with this network's "
                    "shapes filled in; or, with --diagnose RUN_DIR (the same as `deltaprop diagnose RUN_DIR`), name "
                    "problems a training run shows.")
    p.add_argument("model", nargs="?", help="a model file written by deltaprop (instead of --layers)")
    p.add_argument("--layers", help="layer sizes, input first: 3,4,3,2")
    p.add_argument("--activation", default=None, help="hidden activation (default relu)")
    p.add_argument("--output", default=None, help="output activation: softmax, sigmoid, identity or exp "
                                                   "(default: the one that pairs with --loss, else softmax)")
    p.add_argument("--loss", default=None, help="cross_entropy, binary_cross_entropy, squared_error or poisson")
    p.add_argument("--l2", type=nonnegative_float, default=0.0, help="L2 strength λ (default 0)")
    p.add_argument("--preset", help="a network of the notes, as in trace: note000, note001, note002, note003")
    p.add_argument("--notation", default="bracket", choices=NOTATIONS,
                   help="bracket: rows are examples, as deltaprop stores them, with note 001's names; columns: notes "
                        "001 and 003 as written (examples in columns, dZ, dW = (1/m) dZ A_prevᵀ); theta: note 000 "
                        "(one example at a time, the bias folded into Θ)")
    p.add_argument("--picture", metavar="FILE.svg", help="also draw the network, with its shapes, into this SVG file")
    p.add_argument("--format", default="text", choices=("text", "markdown", "latex", "html", "json"))
    p.add_argument("--diagnose", metavar="RUN_DIR", help="read RUN_DIR/history.csv and name training problems")
    p.add_argument("--data", nargs="?", const="", metavar="SPEC",
                   help="with --diagnose: also count the saved model's dead ReLU units on these data "
                        "(without SPEC: the data it was trained on)")
    p.add_argument("-o", "--out", help="write to this file instead of standard output")
    p.set_defaults(handler=_cmd_explain)

    t = subparsers.add_parser(
        "trace", help="one small batch through a network, stage by stage, with finite differences",
        description="Run one batch forward and backward and show Z, A, the output error, every δ, dW and db "
                    "beside finite-difference gradients. Use a preset of the notes' networks or --layers.")
    t.add_argument("model", nargs="?", help="a model file written by deltaprop (random inputs of its size)")
    t.add_argument("--preset", help="note000 (2-2-2-1 sigmoid), note001 (3-4-3-2 relu + softmax), note002 "
                                    "(logistic hidden + softmax), note003 (64-10-10 digit classifier)")
    t.add_argument("--layers", help="layer sizes, input first: 3,4,3,2 (random inputs and labels)")
    t.add_argument("--activation", default=None, help="hidden activation of a --layers network (default relu)")
    t.add_argument("--output", default=None, help="output activation of a --layers network (default: the one that "
                                                  "pairs with --loss, else softmax)")
    t.add_argument("--loss", default=None, help="loss of a --layers network")
    t.add_argument("--l2", type=nonnegative_float, default=0.0)
    t.add_argument("--examples", "-m", type=positive_int, default=1, help="batch size m (default 1)")
    t.add_argument("--per-example", action="store_true", help="also show note 000's Δ += δ aᵀ, example by example")
    t.add_argument("--notation", default="bracket", choices=TRACE_NOTATIONS,
                   help="bracket: rows are examples, deltaprop's own arrays; columns: notes 001 and 003 (examples in "
                        "columns, dZ = m δᵀ)")
    t.add_argument("--picture", metavar="FILE.svg",
                   help="also draw the network with z, a and δ of each unit (dZ = m δᵀ with --notation "
                        "columns; example 1, every example on hover)")
    t.add_argument("--seed", type=seed_int, default=0)
    t.add_argument("--digits", type=number(int, 1, MAX_DIGITS), default=4,
                   help=f"significant digits printed, 1 to {MAX_DIGITS} (float64 holds {MAX_DIGITS}; default 4)")
    t.add_argument("--format", default="text", choices=("text", "markdown", "latex", "html", "json"))
    t.add_argument("-o", "--out", help="write to this file instead of standard output")
    t.set_defaults(handler=_cmd_trace)

    d = subparsers.add_parser(
        "diagnose", help="name the problems a training run shows (vanishing gradients, dead units, ...)",
        description="Read RUN_DIR (history.csv and metrics.json, written by deltaprop train), run every check "
                    "(docs/diagnose.md lists them with their thresholds), and name the problems found with their "
                    "remedies, then the checks that ran. `deltaprop explain --diagnose RUN_DIR` is the same.")
    d.add_argument("run", metavar="RUN_DIR", help="the run directory of a deltaprop train run (or its history.csv)")
    d.add_argument("--data", nargs="?", const="", metavar="SPEC",
                   help="also count the saved model's dead ReLU units on these data (without SPEC: the data it was "
                        "trained on; its training rows, scaled as in training)")
    d.add_argument("--format", default="text", choices=("text", "markdown", "latex", "html", "json"))
    d.add_argument("-o", "--out", help="write to this file instead of standard output")
    d.set_defaults(handler=_cmd_diagnose)


# What the teaching commands take on before they refuse with the figure: finite differences cost two
# forward passes per parameter (m·P multiply-adds each), and a trace prints every number of one step.
MAX_GRADCHECK_MACS = 3e10   # about a minute of NumPy on one core
MAX_GRADCHECK_PASSES = 400_000  # the per-pass overhead of small networks
MAX_TRACE_PARAMS = 20_000


def _check_cost(command: str, sizes, m: int) -> None:
    """Refuse, before any work, a gradcheck or trace whose cost grows past minutes (or a document past
    reading), with the figure: P parameters, 2P forward passes of m·P multiply-adds for gradcheck."""
    P = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    if command == "trace" and P > MAX_TRACE_PARAMS:
        raise ConfigError(f"trace prints every number of one step, and the {'-'.join(map(str, sizes))} network has "
                          f"{P:,} parameters (the trace takes up to {MAX_TRACE_PARAMS:,})",
                          "trace a small network, e.g. --layers 3,4,3,2 or --preset note001")
    from deltaprop.io.files import check_memory

    check_memory(8 * 4 * m * sum(sizes), f"{command} with m = {m:,} examples of the {'-'.join(map(str, sizes))} "
                 "network", "use fewer --examples", ConfigError)
    passes, macs = 2 * P, 2.0 * P * m * P
    if command == "gradcheck" and (macs > MAX_GRADCHECK_MACS or passes > MAX_GRADCHECK_PASSES):
        raise ConfigError(f"gradcheck of the {'-'.join(map(str, sizes))} network ({P:,} parameters, m = {m}) needs "
                          f"{passes:,} forward passes, about {macs:.2g} multiply-adds: far more than minutes",
                          "check the gradient on a small network of the same kinds of layers, e.g. --layers 3,4,3,2: "
                          "the same code computes the gradient of any size")


def _output_for(args) -> str | None:
    if args.output:
        return args.output
    if args.loss:
        return get_loss(args.loss).output
    return "softmax"


def text_width(stdout=None) -> int:
    """The terminal's width (COLUMNS, else the terminal's size, else 100), at least 60 and at most 160."""
    import shutil

    return max(60, min(160, shutil.get_terminal_size((100, 24)).columns))


def _render(doc, args, stdout) -> str:
    """The document in --format; text is wrapped to the terminal's width (100 when writing a file)."""
    width = 100 if getattr(args, "out", None) else text_width(stdout)
    return doc.render(args.format, width=width)


def _emit(text: str, args, stdout) -> int:
    if getattr(args, "out", None):
        from deltaprop.io.files import atomic_write

        atomic_write(args.out, text.encode("utf-8"))
    else:
        stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _cmd_explain(args, stdout=None) -> int:
    stdout = stdout or sys.stdout
    if args.diagnose:
        return _emit(_render(_diagnosis(args.diagnose, args.data), args, stdout), args, stdout)
    if sum(bool(x) for x in (args.model, args.layers, args.preset)) > 1:
        raise ConfigError("give one of a model file, --layers or --preset", "deltaprop explain --layers 3,4,3,2")
    _refuse_kinds_for_fixed_network("explain", args)
    if args.preset:
        if args.preset not in PRESETS:
            raise unknown_name("preset", args.preset, list(PRESETS))
        net = preset_network(args.preset)
    elif args.model:
        net = as_network(args.model) if os.path.exists(args.model) else None
        if net is None:
            raise ModelFileError(f"no model file at {args.model}", "pass the path of a file written by deltaprop "
                                                                   "train, or use --layers 3,4,3,2")
    elif args.layers:
        net = Network.from_sizes(parse_sizes(args.layers), hidden=args.activation or "relu",
                                 output=_output_for(args), loss=args.loss)
    else:
        raise ConfigError("nothing to explain", "give --layers 3,4,3,2 (with --activation, --output, --loss), "
                                                "--preset note001, a model file, or --diagnose RUN_DIR")
    _picture(args, net)
    return _emit(_render(explain(net, notation=args.notation, l2=args.l2), args, stdout), args, stdout)


def _refuse_kinds_for_fixed_network(command: str, args) -> None:
    """--activation, --output and --loss build a --layers network: a preset (trace's default, note001) or a
    model file has its own, and a flag that would be ignored is refused instead."""
    given = [f"--{name} {getattr(args, name)}" for name in ("activation", "output", "loss") if getattr(args, name)]
    if not given or args.layers:
        return
    preset = args.preset or (None if args.model or command != "trace" else "note001")
    if preset in PRESETS:
        p = PRESETS[preset]
        sizes = ",".join(map(str, p["sizes"]))
        what = (f"{'the default preset ' if not args.preset else 'the preset '}{preset} is note {preset[4:]}'s own "
                f"network ({sizes.replace(',', '-')}, {p['hidden']} hidden units, {p['output']} output)")
    elif args.model:
        what, sizes = f"the model file {args.model} has its own layers", "3,4,3,2"
    else:
        return  # an unknown preset is named by the caller
    flags = " and ".join(g.split()[0] for g in given)
    raise ConfigError(f"{' and '.join(given)} would be ignored: {what}",
                      f"drop {flags}, or build the network you mean: deltaprop {command} --layers {sizes} "
                      f"{' '.join(given)}")


def _picture(args, net, tr=None) -> None:
    """--picture FILE.svg: the network (with a trace's values) as SVG, written whole or not at all."""
    if not getattr(args, "picture", None):
        return
    from deltaprop.io.modelfile import atomic_write

    atomic_write(args.picture, network_svg(net, tr, notation=getattr(args, "notation", None)).encode("utf-8"))


def _diagnosis(run, data_spec):
    """The diagnosis of a run directory, remedies as command flags; with ``--data``, the saved model's
    dead units counted on the data set's training rows too."""
    if data_spec is None:
        return diagnose(run, syntax="command")
    from deltaprop.cli.common import MODEL_FILE, dataset_for, load_model, model_inputs

    path = Path(run)
    model = (path if path.is_dir() else path.parent) / MODEL_FILE
    if not model.is_file():
        raise ModelFileError(f"--data needs the model of the run, but there is no {model}",
                             "pass the run directory written by deltaprop train, or drop --data")
    net = load_model(model)
    data = dataset_for(net, data_spec or None)
    X = model_inputs(net, data.X_train)
    return diagnose(run, net=net, X=X, syntax="command",
                    about_X=f"the {X.shape[0]} training rows of {data.name}")


def _cmd_diagnose(args, stdout=None) -> int:
    return _emit(_render(_diagnosis(args.run, args.data), args, stdout), args, stdout or sys.stdout)


def _cmd_trace(args, stdout=None) -> int:
    stdout = stdout or sys.stdout
    if args.examples < 1:
        raise ConfigError(f"--examples must be at least 1, got {args.examples}", "for example --examples 3")
    given = [x for x in (args.preset, args.layers, args.model) if x]
    if len(given) > 1:
        raise ConfigError("give one of --preset, --layers or a model file", "deltaprop trace --preset note001")
    _refuse_kinds_for_fixed_network("trace", args)
    if args.layers or args.model:
        if args.layers:
            _check_cost("trace", parse_sizes(args.layers), args.examples)
            net = Network.from_sizes(parse_sizes(args.layers), hidden=args.activation or "relu",
                                     output=_output_for(args), loss=args.loss, seed=args.seed, dtype="float64")
        else:
            net = as_network(args.model)
            _check_cost("trace", net.sizes, args.examples)
        X, Y = random_batch(net, args.examples, seed=args.seed)
        tr = trace(net, X, Y, l2=args.l2, per_example=args.per_example, digits=args.digits, notation=args.notation)
    else:
        name = args.preset or "note001"
        if name not in PRESETS:
            raise unknown_name("preset", name, list(PRESETS))
        tr = trace_preset(name, examples=args.examples, l2=args.l2, per_example=args.per_example, seed=args.seed,
                          digits=args.digits, notation=args.notation)
    _picture(args, tr.net, tr)
    return _emit(_render(tr, args, stdout), args, stdout)
