"""``deltaprop check FILE.py`` and ``deltaprop exercises list|start|hint``: the exercises from the shell.

``register(subparsers)`` adds them to the command's parser; each parser's ``handler`` returns the exit
code: check gives 0 (every item right), 1 (a gradient or the cost wrong), 2 (the function cannot be run).
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from deltaprop.cli.args import positive_float, positive_int

__all__ = ["register"]


def register(subparsers) -> None:
    c = subparsers.add_parser(
        "check", help="check your own backprop against deltaprop's and name the mistake (runs your file)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Run FILE.py -- this runs your code, on purpose: check only a file you would run yourself -- and "
            "call its function (the one its exercise names, e.g. backprop) on small random networks: several "
            "shapes, seeds, one example and many. Every item (the cost, each layer's dW and db, ...) is "
            "compared with deltaprop's own; a wrong one is named when it matches a known mistake (sign "
            "flipped, 1/m missing, g' missing, dW transposed, ...), with the line of the derivation it "
            "contradicts.", 90),
        epilog="exit codes: 0 every item right; 1 a gradient or the cost wrong; 2 the function cannot be run\n"
               "(it raises, returns the wrong shapes, None or NaN, runs past --timeout) or the file cannot be read\n\n"
               "  deltaprop exercises start any_depth work/\n  deltaprop check work/any_depth.py")
    c.add_argument("file", metavar="FILE.py", help="your Python file; its EXERCISE = \"NAME\" says which exercise")
    c.add_argument("--exercise", metavar="NAME", help="the exercise, if the file does not say")
    c.add_argument("--format", default="text", choices=("text", "html", "json"))
    c.add_argument("-o", "--out", help="write the report to this file instead of standard output")
    c.add_argument("--timeout", type=positive_float, default=60.0, metavar="SECONDS",
                   help="stop your code if the whole check has not finished in this time (default 60)")
    c.set_defaults(handler=_cmd_check)

    e = subparsers.add_parser(
        "exercises", help="exercises that follow the notes: list, start, hint",
        description="Exercises in writing backprop yourself, following the notes: the forward pass, the output "
                    "error for each loss, one hidden layer, any depth, L2, note 000's per-example loop and the "
                    "vectorized form, mini-batch updates. `deltaprop check` checks your answer.")
    sub = e.add_subparsers(dest="action", metavar="ACTION", title="actions")
    sub.required = True
    lst = sub.add_parser("list", help="the exercises")
    lst.set_defaults(handler=_cmd_list)
    st = sub.add_parser("start", help="write an exercise's starter file, DIR/NAME.py")
    st.add_argument("name", metavar="NAME")
    st.add_argument("directory", metavar="DIR")
    st.add_argument("--solutions", action="store_true", help="write the answer instead (for teachers)")
    st.add_argument("--force", action="store_true", help="overwrite an existing DIR/NAME.py")
    st.set_defaults(handler=_cmd_start)
    h = sub.add_parser("hint", help="the hints of an exercise, one more each time")
    h.add_argument("name", metavar="NAME")
    h.add_argument("step", nargs="?", type=positive_int, default=1, help="show hints 1 to STEP (default 1)")
    h.set_defaults(handler=_cmd_hint)


def _write(text: str, args) -> None:
    out = getattr(args, "out", None)
    if out:
        from deltaprop.io.files import atomic_write

        atomic_write(out, (text if text.endswith("\n") else text + "\n").encode("utf-8"))
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _cmd_check(args) -> int:
    import math

    from deltaprop.errors import ConfigError
    from deltaprop.teach.exercises import MAX_TIMEOUT

    if not (args.timeout > 0 and math.isfinite(args.timeout)):
        raise ConfigError(f"--timeout must be a positive number of seconds, got {args.timeout:g}",
                          "e.g. --timeout 60 (the default)")
    if args.timeout > MAX_TIMEOUT:
        raise ConfigError(f"--timeout {args.timeout:g} is longer than the system's timers can wait "
                          f"(at most {MAX_TIMEOUT:g} s, a week)", "e.g. --timeout 600 for ten minutes")
    try:
        import multiprocessing

        context = multiprocessing.get_context("fork")
    except ValueError:  # no fork (Windows): the check runs here (with a time limit where one can be set)
        text, code = _check_here(args, timeout=args.timeout)
    else:
        text, code = _check_in_child(args, context)
    _write(text, args)
    return code


def _check_here(args, timeout=None) -> tuple[str, int]:
    """Run the learner's file in this process; (the rendered report, its exit code). In the forked
    child the parent keeps the time (``timeout`` None)."""
    import contextlib

    from deltaprop.teach.exercises import check

    # What your code prints goes to standard error when standard output carries JSON or HTML (or nothing).
    quiet = args.format != "text" or bool(args.out)
    with contextlib.redirect_stdout(sys.stderr) if quiet else contextlib.nullcontext():
        report = check(args.file, exercise=args.exercise, timeout=timeout)
    report.from_command = True
    text = {"text": report.to_text, "html": lambda: report.to_html(standalone=True), "json": report.to_json}[args.format]()
    return text, report.exit_code


def _check_in_child(args, context) -> tuple[str, int]:
    """Run the check in a forked child, so that a learner's function that never returns (a loop that
    does not end) or ends the process itself cannot hang or fool the command: the child sends back the
    rendered report and its exit code, or the error deltaprop raised; past ``--timeout`` it is killed."""
    from deltaprop.errors import InputError

    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(args, send), daemon=True)
    child.start()
    send.close()
    try:
        ready = receive.poll(args.timeout)
        result = receive.recv() if ready else None
    except EOFError:  # the child ended without a word: the learner's code ended the process
        result = "ended"
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join()
    name = args.file
    if result is None:
        raise InputError(f"the check of {name} did not finish in {args.timeout:g} s; it was stopped (your code "
                         "may loop forever, or wait for input)",
                         "look for a loop that never ends; if your code is just slow, give it longer: "
                         f"--timeout {max(2 * args.timeout, 120):g}")
    if result == "ended":
        raise InputError(f"running {name} ended the process (exit code {child.exitcode}) before the check "
                         "finished: your code calls os._exit, or crashed the interpreter",
                         "return from your function instead of ending the program")
    if isinstance(result, BaseException):
        raise result
    return result


def _child(args, send) -> None:
    import os

    try:
        result = _check_here(args)
    except BaseException as err:  # noqa: BLE001 - deltaprop's own error (or any) goes back to the command
        from deltaprop.errors import DeltapropError

        result = err if isinstance(err, DeltapropError) else RuntimeError(f"{type(err).__name__}: {err}")
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        send.send(result)
    finally:
        send.close()
        os._exit(0)  # skip the learner's atexit handlers and finalizers


def _cmd_list(args) -> int:
    from deltaprop.teach.exercises import list_exercises

    lines = []
    for ex in list_exercises():
        lines.append(f"{ex.name:<13} {ex.title} ({ex.notes})")
        lines.append(f"{'':<13} {ex.signature}")
    lines.append("")
    lines.append("start one:  deltaprop exercises start NAME DIR      check it:  deltaprop check DIR/NAME.py")
    _write("\n".join(lines), args)
    return 0


def _cmd_start(args) -> int:
    from deltaprop.teach.exercises import get_exercise, start

    path = start(args.name, args.directory, solutions=args.solutions, force=args.force)
    ex = get_exercise(args.name)
    what = "the answer to" if args.solutions else "the starter of"
    text = [f"wrote {path}: {what} '{ex.name}' ({ex.title})", ""]
    text += textwrap.wrap(ex.summary, 100)
    text += ["", f"write {ex.signature}", f"check it:  deltaprop check {path}",
             f"a hint:    deltaprop exercises hint {ex.name}"]
    _write("\n".join(text), args)
    return 0


def _cmd_hint(args) -> int:
    from deltaprop.teach.exercises import hint

    text = hint(args.name, args.step)
    nxt = f"(hint {args.step + 1} of "
    if nxt in text:  # say it in the command's words
        text = text.replace(text[text.index(nxt):], f"(next: deltaprop exercises hint {args.name} {args.step + 1})")
    _write("\n".join(textwrap.fill(line, 100, subsequent_indent="  ") for line in text.splitlines()), args)
    return 0
