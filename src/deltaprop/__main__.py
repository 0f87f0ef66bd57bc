"""``python -m deltaprop`` runs the command."""

import signal
import sys

_interrupted = []


def _on_sigint(signum, frame):
    """Ctrl-C while the command is importing: remembered, then raised as Python's default handler does."""
    _interrupted.append(signum)
    raise KeyboardInterrupt


signal.signal(signal.SIGINT, _on_sigint)
try:
    from deltaprop.cli import main
except BaseException:
    # A Ctrl-C that lands inside a C extension's import can surface as another exception (CPython 3.11
    # turned one inside the ssl module's import into "TypeError: expected a message argument"): once
    # Ctrl-C was pressed, any failure of the imports is the interruption, and no traceback is shown.
    if not _interrupted:
        raise
    sys.stderr.write("deltaprop: error: interrupted\n")
    raise SystemExit(130) from None

raise SystemExit(main())
