"""The ``deltaprop`` command: ``main.py`` builds the parser and runs a subcommand; each command group
has its module with a ``register(subparsers)``; ``report.py`` draws the plots and tables."""

from deltaprop.cli.main import main

__all__ = ["main"]
