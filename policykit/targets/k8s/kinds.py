"""Kubernetes kinds as admission rules name them: group, versions, resource.

Admission matching (VAP/Kyverno ``resourceRules``, Gatekeeper ``match.kinds``)
names *resources* by API group, not kinds, so every kind a rule selects must be
known. Three sources, in this order:

1. the CRDs of the run (``crds:`` in policykit.yaml, ``--crd``):
   :mod:`policykit.targets.k8s.crds`, the registry in force;
2. the built-in kinds: data (``kinds.json``), derived from the Kubernetes
   OpenAPI document by :func:`from_openapi` (a test keeps the two in step);
   nothing else is ever added to it;
3. the custom resources the built-in packs govern (``EXTRA``), for when no CRD
   of theirs is given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

EXTRA: dict[str, dict[str, Any]] = {
    "InferenceService": {
        "group": "serving.kserve.io",
        "versions": ["v1beta1"],
        "resource": "inferenceservices",
        "namespaced": True,
    },
    "Notebook": {
        "group": "kubeflow.org",
        "versions": ["v1", "v1beta1"],
        "resource": "notebooks",
        "namespaced": True,
    },
    "Agent": {  # policykit's own agent manifest (schemas/agent.schema.json)
        "group": "agents.policykit.dev",
        "versions": ["v1alpha1"],
        "resource": "agents",
        "namespaced": True,
    },
}


@dataclass(frozen=True, slots=True)
class KindInfo:
    kind: str
    group: str
    versions: tuple[str, ...]
    resource: str
    namespaced: bool


def from_openapi(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Kind table from a Kubernetes OpenAPI v2 document (collection POST paths)."""
    table: dict[str, dict[str, Any]] = {}
    for path, ops in sorted(doc["paths"].items()):
        post = ops.get("post")
        if not post or post.get("x-kubernetes-action") != "post" or "{name}" in path:
            continue
        gvk = post.get("x-kubernetes-group-version-kind")
        if not gvk:
            continue
        kind, group, version = gvk["kind"], gvk["group"], gvk["version"]
        entry = table.get(kind)
        if entry is not None and entry["group"] != group:
            continue  # e.g. Event in core and events.k8s.io: keep the core one
        if entry is None:
            table[kind] = {
                "group": group,
                "versions": [version],
                "resource": path.rstrip("/").rsplit("/", 1)[1],
                "namespaced": "{namespace}" in path,
            }
        elif version not in entry["versions"]:
            entry["versions"].append(version)
    for e in table.values():
        e["versions"].sort()
    return dict(sorted(table.items()))


@lru_cache(maxsize=1)
def table() -> dict[str, KindInfo]:
    raw = json.loads(resources.files("policykit.targets.k8s").joinpath("kinds.json").read_text())
    raw.update(EXTRA)
    return {
        k: KindInfo(k, v["group"], tuple(v["versions"]), v["resource"], v["namespaced"])
        for k, v in raw.items()
    }


@lru_cache(maxsize=1)
def _builtin() -> dict[str, KindInfo]:
    raw = json.loads(resources.files("policykit.targets.k8s").joinpath("kinds.json").read_text())
    return {
        k: KindInfo(k, v["group"], tuple(v["versions"]), v["resource"], v["namespaced"])
        for k, v in raw.items()
    }


def builtin(kind: str) -> KindInfo | None:
    """A built-in Kubernetes kind (``kinds.json`` only)."""
    return _builtin().get(kind)


def lookup(kind: str) -> KindInfo | None:
    """``kind`` from the CRDs in force, else the built-in table and ``EXTRA``."""
    from policykit.targets.k8s.crds import active

    return active().lookup(kind) or table().get(kind)


def for_object(obj: dict[str, Any]) -> KindInfo | None:
    """The table entry of an object, checked against its apiVersion's group."""
    info = lookup(str(obj.get("kind")))
    api = obj.get("apiVersion")
    if info is None or not isinstance(api, str):
        return None
    group = api.rsplit("/", 1)[0] if "/" in api else ""
    return info if group == info.group else None
