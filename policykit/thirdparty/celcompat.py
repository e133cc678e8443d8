"""Moved to :mod:`policykit.k8s.celcompat` (issue 18, item 4)."""

# moved; importers updated at integration
from policykit.k8s.celcompat import *  # noqa: F403
from policykit.k8s.celcompat import rewrite as rewrite
