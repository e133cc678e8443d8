"""Kubernetes kinds as admission rules name them: group, versions, resource.

Admission matching (VAP/Kyverno ``resourceRules``, Gatekeeper ``match.kinds``)
names *resources* by API group, not kinds, so every kind a rule selects must be
known. Three sources, in this order:

1. the CRDs of the run (``crds:`` in policykit.yaml, ``--crd``):
   :mod:`policykit.k8s.crds`, the registry in force;
2. the built-in kinds (:mod:`policykit.k8s.kindtable`, ``kinds.json``);
3. the custom resources the built-in packs govern (``kindtable.EXTRA``).

The layering is ``kindtable`` ← ``crds`` ← ``kinds``: no cycle (issue 18, item 4).
"""

from __future__ import annotations

from typing import Any

from policykit.k8s.crds import active
from policykit.k8s.kindtable import EXTRA, KindInfo, builtin, from_openapi, table

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""The label the API server gives every namespace: its name."""

__all__ = ["EXTRA", "KindInfo", "builtin", "for_object", "from_openapi", "lookup", "table"]


def lookup(kind: str) -> KindInfo | None:
    """``kind`` from the CRDs in force, else the built-in table and ``EXTRA``."""
    return active().lookup(kind) or table().get(kind)


def for_object(obj: dict[str, Any]) -> KindInfo | None:
    """The table entry of an object, checked against its apiVersion's group."""
    info = lookup(str(obj.get("kind")))
    api = obj.get("apiVersion")
    if info is None or not isinstance(api, str):
        return None
    group = api.rsplit("/", 1)[0] if "/" in api else ""
    return info if group == info.group else None
