"""``python -m policykit`` is the ``policykit`` command."""

try:
    from policykit.cli.main import main
except KeyboardInterrupt:  # Ctrl-C while the command loads: no traceback
    from policykit.cli import interrupted, leave_interrupted

    interrupted()
    leave_interrupted()

main()
