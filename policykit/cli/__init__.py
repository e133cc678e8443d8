"""The ``policykit`` command line (a thin shell over :mod:`policykit.api`)."""
