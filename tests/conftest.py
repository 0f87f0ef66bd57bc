"""What every test needs from the process that runs them."""

from __future__ import annotations

import signal

# A test run started in the background (`python -m pytest &` in a script, nohup, some CI runners) inherits
# SIGINT ignored, and so would every command the tests start: the Ctrl-C tests could not send Ctrl-C.
# The tests stand where a person at a terminal stands: SIGINT interrupts (children then inherit SIG_DFL).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
