"""Moved to :mod:`policykit.k8s.gatekeeper` (issue 18, item 4)."""

# moved; importers updated at integration
from policykit.k8s.gatekeeper import *  # noqa: F403
from policykit.k8s.gatekeeper import Engine as Engine
from policykit.k8s.gatekeeper import TemplateRunner as TemplateRunner
from policykit.k8s.gatekeeper import TemplateSource as TemplateSource
from policykit.k8s.gatekeeper import Unsupported as Unsupported
from policykit.k8s.gatekeeper import Violation as Violation
from policykit.k8s.gatekeeper import evaluate as evaluate
from policykit.k8s.gatekeeper import inventory_of as inventory_of
from policykit.k8s.gatekeeper import match as match
from policykit.k8s.gatekeeper import regopy_patterns as regopy_patterns
from policykit.k8s.gatekeeper import review_of as review_of
from policykit.k8s.gatekeeper import template_source as template_source
