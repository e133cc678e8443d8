"""The built-in Kubernetes kinds as admission rules name them: group,
versions, resource, scope (``kinds.json``, derived from the Kubernetes OpenAPI
document by :func:`from_openapi`; a test keeps the two in step), plus the
custom resources the built-in packs govern (``EXTRA``), for when no CRD of
theirs is given. Nothing here knows about the CRDs of a run: that is
:mod:`policykit.k8s.kinds`, which consults :mod:`policykit.k8s.crds` first
(this module is below both, so they do not import each other).

``kinds.json`` still lives in ``policykit/targets/k8s/`` (pyproject's
package-data and ``targets/k8s/fieldtypes.py`` name it there); it moves here
at integration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
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
    return {**_builtin(), **_infos(EXTRA)}


@lru_cache(maxsize=1)
def _builtin() -> dict[str, KindInfo]:
    from policykit.resources import read_text  # kinds.json, read once

    return _infos(json.loads(read_text("targets", "k8s", "kinds.json")))


def _infos(raw: dict[str, dict[str, Any]]) -> dict[str, KindInfo]:
    return {
        k: KindInfo(k, v["group"], tuple(v["versions"]), v["resource"], v["namespaced"])
        for k, v in raw.items()
    }


def builtin(kind: str) -> KindInfo | None:
    """A built-in Kubernetes kind (``kinds.json`` only)."""
    return _builtin().get(kind)
