"""``python -m policykit`` is the ``policykit`` command."""

import sys

try:
    from policykit.cli.main import main
except KeyboardInterrupt:  # Ctrl-C while the command loads: no traceback
    from policykit.cli import EXIT_INTERRUPTED, interrupted

    interrupted()
    sys.exit(EXIT_INTERRUPTED)

main()
