"""JSON Schema building blocks of this target: ``negate``/``all_of``/``any_of``
(with the boolean schemas folded away), ``at`` (a schema for the value at a
field path), and the schema of a rule's selector."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from policykit.ir.rule import Selector
from policykit.model import BACKSTAGE_GROUP_SUFFIX
from policykit.targets.jsonschema.pattern import literal_pattern

Schema = dict[str, Any] | bool
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def negate(s: Schema) -> Schema:
    if isinstance(s, bool):
        return not s
    if set(s) == {"not"}:
        inner: Schema = s["not"]
        return inner
    return {"not": s}


def all_of(items: Sequence[Schema]) -> Schema:
    kept = [s for s in items if s is not True]
    if any(s is False for s in kept):
        return False
    if not kept:
        return True
    return kept[0] if len(kept) == 1 else {"allOf": kept}


def any_of(items: Sequence[Schema]) -> Schema:
    kept = [s for s in items if s is not False]
    if any(s is True for s in kept):
        return True
    if not kept:
        return False
    return kept[0] if len(kept) == 1 else {"anyOf": kept}


# The deepest field path a schema is written for (nested ``properties``/``items``).
MAX_PATH_SEGMENTS = 64


def at(segments: Sequence[str | int], v: Schema, required: bool) -> Schema:
    """Holds when the value at ``segments`` satisfies ``v``; when the path is
    missing, holds exactly if not ``required``."""
    if not segments:
        return v
    inner = at(segments[1:], v, required)
    seg = segments[0]
    if isinstance(seg, str):
        if inner is True and not required:
            return True
        out: dict[str, Any] = {"properties": {seg: inner}}
        if required:
            out = {"type": "object", "required": [seg], **out}
        return out
    if inner is True and not required:
        return True
    prefix: list[Schema] = [True for _ in range(seg)]
    prefix.append(inner)
    out = {"prefixItems": prefix}
    if required:
        out = {"type": "array", "minItems": seg + 1, **out}
    return out


def _glob_schema(patterns: Sequence[str]) -> Schema:
    return any_of(
        [
            {"type": "string", "pattern": "^" + literal_pattern(p[:-1])}
            if p.endswith("*")
            else {"const": p}
            for p in patterns
        ]
    )


def _glob_default(patterns: Sequence[str]) -> bool:
    return any(
        p == "default" or (p.endswith("*") and "default".startswith(p[:-1])) for p in patterns
    )


BACKSTAGE_API = {
    "type": "string",
    "pattern": "^(?:[^/]*\\.)?" + literal_pattern(BACKSTAGE_GROUP_SUFFIX) + "/",
}


def selector_schema(sel: Selector) -> Schema:
    """Holds exactly when the selector picks the object (policykit.ir.evaluate.selector_matches)."""
    parts: list[Schema] = []
    is_backstage = at(("apiVersion",), BACKSTAGE_API, True)
    if sel.source == "backstage":
        parts.append(is_backstage)
    elif sel.source == "kubernetes":
        parts.append(negate(is_backstage))
    if sel.kinds:
        parts.append(at(("kind",), {"enum": list(sel.kinds)}, True))
    if sel.api_versions:
        parts.append(
            at(("apiVersion",), _glob_schema([_api_glob(a) for a in sel.api_versions]), True)
        )
    ns_path = ("metadata", "namespace")
    ns_str = at(ns_path, {"type": "string"}, True)
    if sel.namespaces:
        named = at(ns_path, all_of([{"type": "string"}, _glob_schema(sel.namespaces)]), True)
        if _glob_default(sel.namespaces):
            named = any_of([named, all_of([negate(ns_str), is_backstage])])
        parts.append(named)
    if sel.exclude_namespaces:
        excluded = at(
            ns_path, all_of([{"type": "string"}, _glob_schema(sel.exclude_namespaces)]), True
        )
        if _glob_default(sel.exclude_namespaces):
            excluded = any_of([excluded, all_of([negate(ns_str), is_backstage])])
        parts.append(negate(excluded))
    for k, v in sel.labels:
        parts.append(at(("metadata", "labels", k), {"const": v}, True))
    if sel.entity_types:
        parts.append(at(("spec", "type"), {"type": "string", "enum": list(sel.entity_types)}, True))
    return all_of(parts)


def _api_glob(a: str) -> str:
    return a[:-1] + "*" if a.endswith("/*") else a
