"""``python -m deltaprop`` runs the command."""

from deltaprop.cli import main

raise SystemExit(main())
