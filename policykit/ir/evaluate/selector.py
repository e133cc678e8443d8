"""Whether a rule's selector picks an object (``docs/semantics.md``,
"Selectors"): source, kinds, apiVersions, namespaces, labels, entity types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from policykit.ir.rule import Selector
from policykit.values import MISSING


def _glob(patterns: Sequence[str], value: str) -> bool:
    for p in patterns:
        if p.endswith("*"):
            if value.startswith(p[:-1]):
                return True
        elif p == value:
            return True
    return False


def selector_matches(sel: Selector, obj: dict[str, Any], source: str) -> bool:
    """Whether a rule's selector picks ``obj`` (semantics: docs/semantics.md)."""
    if sel.source is not None and sel.source != source:
        return False
    if sel.kinds and obj.get("kind") not in sel.kinds:
        return False
    if sel.api_versions:
        api = obj.get("apiVersion")
        if not isinstance(api, str) or not any(
            api == p or (p.endswith("/*") and api.startswith(p[:-1])) for p in sel.api_versions
        ):
            return False
    meta = obj.get("metadata")
    meta = meta if type(meta) is dict else {}
    if sel.namespaces or sel.exclude_namespaces:
        ns = meta.get("namespace")
        if type(ns) is not str:
            ns = "default" if source == "backstage" else None
        if sel.namespaces and (ns is None or not _glob(sel.namespaces, ns)):
            return False
        if ns is not None and _glob(sel.exclude_namespaces, ns):
            return False
    if sel.labels:
        labels = meta.get("labels")
        if type(labels) is not dict:
            return False
        for k, v in sel.labels:
            if labels.get(k, MISSING) != v or type(labels.get(k)) is not str:
                return False
    if sel.entity_types:
        spec = obj.get("spec")
        t = spec.get("type") if type(spec) is dict else None
        if type(t) is not str or t not in sel.entity_types:
            return False
    return True
