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

__all__ = [
    "EXTRA",
    "KindInfo",
    "as_admitted",
    "builtin",
    "for_object",
    "from_openapi",
    "lookup",
    "table",
]


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


def as_admitted(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` as the API server gives a built-in kind to admission: with no
    field written as ``null``. The server decodes the object into its Go type
    before admission (k8s.io/apimachinery's JSON decoding), where a null
    pointer, map or slice is nil and left out of the object admission sees
    (``omitempty``), and a null struct is its zero value: an admission
    expression never meets a null field there, so the local harness drops
    them too (``resources:`` or ``labels:`` left empty in a manifest made
    every CEL policy reading past them err), except where the Go type is a
    struct, whose zero value ``{}`` admission sees (:data:`_STRUCTS`). A copy
    only when there is a null; other kinds (custom resources, Backstage
    entities) as they are."""
    kind = obj.get("kind")
    if not isinstance(kind, str) or builtin(kind) is None:
        return obj
    if active().lookup(kind) is not None or for_object(obj) is None:
        return obj
    return _without_nulls(obj) if _has_null(obj) else obj


def _has_null(v: Any) -> bool:
    if isinstance(v, dict):
        return any(x is None or _has_null(x) for x in v.values())
    if isinstance(v, list):
        return any(_has_null(x) for x in v)
    return False


_STRUCTS = frozenset({"metadata", "spec", "template", "jobTemplate", "strategy", "updateStrategy"})
"""Fields the built-in workload kinds declare as (non-pointer) Go structs: a
null there decodes to the zero value, ``{}``, which CEL's ``has()`` tells
from an absent field. A container's ``resources`` is one too. (By name, for
the common kinds: ReplicationController's ``template`` is a pointer.)"""
_CONTAINERS = frozenset({"containers", "initContainers", "ephemeralContainers"})


def _without_nulls(v: Any, in_container: bool = False) -> Any:
    if isinstance(v, dict):
        out: dict[str, Any] = {}
        for k, x in v.items():
            if x is None:
                if k in _STRUCTS or (in_container and k == "resources"):
                    out[k] = {}
                continue
            out[k] = _without_nulls(x, False) if k not in _CONTAINERS else _items(x)
        return out
    if isinstance(v, list):
        return [_without_nulls(x) for x in v]
    return v


def _items(v: Any) -> Any:
    """A container list: each item a container (its null ``resources`` is ``{}``)."""
    return [_without_nulls(x, True) for x in v] if isinstance(v, list) else _without_nulls(v)
