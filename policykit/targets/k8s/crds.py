"""Moved to :mod:`policykit.k8s.crds` (issue 18, item 4)."""

# moved; importers updated at integration
from policykit.k8s.crds import *  # noqa: F403
from policykit.k8s.crds import API_VERSION as API_VERSION
from policykit.k8s.crds import KIND as KIND
from policykit.k8s.crds import Crd as Crd
from policykit.k8s.crds import CrdError as CrdError
from policykit.k8s.crds import CrdRegistry as CrdRegistry
from policykit.k8s.crds import CrdVersion as CrdVersion
from policykit.k8s.crds import SchemaViolation as SchemaViolation
from policykit.k8s.crds import active as active
from policykit.k8s.crds import load as load
from policykit.k8s.crds import parse as parse
from policykit.k8s.crds import structural_problem as structural_problem
from policykit.k8s.crds import to_json_schema as to_json_schema
from policykit.k8s.crds import using as using
