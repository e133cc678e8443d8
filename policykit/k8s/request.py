"""What an admission request carries besides the object: operation, user,
namespaces, parameter resources, PolicyExceptions — the :class:`Context` of
one evaluation — and the ``request`` variable built from it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policykit.engines.cel import Lookups
from policykit.k8s.kinds import for_object


@dataclass(slots=True)
class Context:
    """What the CLI gets besides the resource: operation, namespace labels
    (from the values file), the requesting user and parameter resources."""

    operation: str = "CREATE"
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    username: str = "policykit-local"
    groups: tuple[str, ...] = ("system:authenticated",)
    roles: tuple[str, ...] = ()
    cluster_roles: tuple[str, ...] = ()
    params: Sequence[Mapping[str, Any]] = ()
    exceptions: Sequence[Mapping[str, Any]] = ()
    old_object: Mapping[str, Any] | None = None
    now: dt.datetime | None = None
    # Namespace objects from the values file's ``namespaces`` (they win over
    # ``namespaceSelector`` labels, cmd/cli/kubectl-kyverno/variables/variables.go)
    namespaces: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # what resource.Get/List and image.GetMetadata read (a kyverno-test's
    # ``context:`` file); None: those libraries are not run
    lookups: Lookups | None = None
    values: Mapping[str, Any] = field(default_factory=dict)  # the kyverno-test values file


def metadata(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """``obj.metadata`` when it is a map, else ``{}``."""
    meta = (obj or {}).get("metadata")
    return meta if isinstance(meta, dict) else {}


def namespace_of(obj: Mapping[str, Any]) -> str:
    """The namespace an object is in (a Namespace: its own name)."""
    meta = metadata(obj)
    if obj.get("kind") == "Namespace":
        return str(meta.get("name", ""))
    return str(meta.get("namespace", "") or "")


def request_for(obj: Mapping[str, Any], operation: str = "CREATE") -> dict[str, Any]:
    """An AdmissionRequest for ``obj`` (the ``request`` CEL variable)."""
    api = str(obj.get("apiVersion", ""))
    group, _, version = api.rpartition("/")
    info = for_object(dict(obj))
    meta = metadata(obj)
    return {
        "operation": operation,
        "kind": {"group": group, "version": version, "kind": obj.get("kind")},
        "resource": {
            "group": group,
            "version": version,
            "resource": info.resource if info else "",
        },
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "userInfo": {"username": "policykit-local", "groups": ["system:authenticated"]},
        "dryRun": False,
    }


def admission_data(obj: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    """The CEL variables of an admission evaluation: ``object``, ``oldObject``
    (on DELETE the object is the old one), ``request`` with the context's
    user, and ``namespaceObject`` (a Namespace carrying the context's labels
    for that namespace, none for cluster-scoped objects and Namespaces)."""
    request = request_for(obj, ctx.operation)
    request["userInfo"] = {"username": ctx.username, "groups": list(ctx.groups)}
    ns = namespace_of(obj)
    ns_obj = (
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, "labels": ctx.namespace_labels.get(ns, {})},
        }
        if ns and obj.get("kind") != "Namespace"
        else None
    )
    return {
        "object": obj if ctx.operation != "DELETE" else None,
        "oldObject": ctx.old_object if ctx.operation != "DELETE" else obj,
        "request": request,
        "namespaceObject": ns_obj,
    }
