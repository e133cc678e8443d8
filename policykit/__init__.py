"""policykit: state each policy once; compile it to every enforcement point."""

__version__ = "0.1.0"
