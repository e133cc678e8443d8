"""``python -m policykit`` is the ``policykit`` command."""

from policykit.cli.main import main

main()
