"""``python -m deltaprop`` runs the command."""

import sys

try:
    from deltaprop.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command is still importing: no traceback
    sys.stderr.write("deltaprop: error: interrupted\n")
    raise SystemExit(130) from None

raise SystemExit(main())
