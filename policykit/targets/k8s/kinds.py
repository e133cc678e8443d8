"""Moved to :mod:`policykit.k8s.kinds` (issue 18, item 4)."""

# moved; importers updated at integration
from policykit.k8s.kinds import *  # noqa: F403
from policykit.k8s.kinds import EXTRA as EXTRA
from policykit.k8s.kinds import KindInfo as KindInfo
from policykit.k8s.kinds import builtin as builtin
from policykit.k8s.kinds import for_object as for_object
from policykit.k8s.kinds import from_openapi as from_openapi
from policykit.k8s.kinds import lookup as lookup
from policykit.k8s.kinds import table as table
