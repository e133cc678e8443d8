"""The versioned JSON form of the IR (public: treat changes as breaking).

Shape::

    {"policykit_ir": 1, "packs": [{"name", "version", "description",
      "params": [{"name", "schema", "default", "description"}],
      "rules": [{"id", "title", "severity", "description", "remediation",
                 "tags", "selector", "each", "condition", "message", "loc"}]}]}

Each node is an object with ``"node": <class name>`` and its fields; tuples are
JSON arrays. A message is ``{"parts": [string | node, ...]}``.
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from policykit.errors import IRFormatError, SourceLoc
from policykit.ir.nodes import NODE_CLASSES, Node
from policykit.ir.rule import Each, Message, Pack, ParamSpec, Rule, Selector
from policykit.resources import load_schema
from policykit.safeio import load_json

IR_VERSION = 1
IR_MAX_DEPTH = 200
"""Deepest JSON nesting of an IR document read (the built-in packs reach 14)."""
_BY_NAME: dict[str, type[Node]] = {c.__name__: c for c in NODE_CLASSES}


def node_to_json(node: Node) -> dict[str, Any]:
    out: dict[str, Any] = {"node": type(node).__name__}
    for f in fields(node):  # type: ignore[arg-type]
        out[f.name] = _value_to_json(getattr(node, f.name))
    return out


def _value_to_json(v: Any) -> Any:
    if isinstance(v, Node):
        return node_to_json(v)
    if isinstance(v, tuple):
        return [_value_to_json(x) for x in v]
    return v


def node_from_json(obj: Any) -> Node:
    if not isinstance(obj, dict) or not isinstance(obj.get("node"), str):
        raise IRFormatError(f"expected an IR node object, got {json.dumps(obj)[:80]}")
    cls = _BY_NAME.get(obj["node"])
    if cls is None:
        raise IRFormatError(f"unknown IR node {obj['node']!r}")
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in obj:
            raise IRFormatError(f"IR node {obj['node']} lacks field {f.name!r}")
        kwargs[f.name] = _value_from_json(obj[f.name])
    extra = set(obj) - {f.name for f in fields(cls)} - {"node"}  # type: ignore[arg-type]
    if extra:
        raise IRFormatError(f"IR node {obj['node']} has unknown field(s) {sorted(extra)}")
    return cls(**kwargs)


def _value_from_json(v: Any) -> Any:
    if isinstance(v, dict) and "node" in v:
        return node_from_json(v)
    if isinstance(v, list):
        return tuple(_value_from_json(x) for x in v)
    return v


def rule_to_json(rule: Rule) -> dict[str, Any]:
    sel = rule.selector
    return {
        "id": rule.id,
        "title": rule.title,
        "severity": rule.severity,
        "description": rule.description,
        "remediation": rule.remediation,
        "tags": list(rule.tags),
        "selector": {
            "source": sel.source,
            "api_versions": list(sel.api_versions),
            "kinds": list(sel.kinds),
            "namespaces": list(sel.namespaces),
            "exclude_namespaces": list(sel.exclude_namespaces),
            "labels": dict(sel.labels),
            "entity_types": list(sel.entity_types),
        },
        "each": None
        if rule.each is None
        else {"var": rule.each.var, "collection": node_to_json(rule.each.collection)},
        "condition": node_to_json(rule.condition),
        "message": {
            "parts": [p if isinstance(p, str) else node_to_json(p) for p in rule.message.parts]
        },
        "loc": None if rule.loc is None else {"file": rule.loc.file, "line": rule.loc.line},
        **({"same_as": rule.same_as} if rule.same_as else {}),
    }


def rule_from_json(obj: dict[str, Any]) -> Rule:
    try:
        sel = obj.get("selector") or {}
        each = obj.get("each")
        loc = obj.get("loc")
        return Rule(
            id=obj["id"],
            title=obj["title"],
            severity=obj["severity"],
            condition=node_from_json(obj["condition"]),  # type: ignore[arg-type]
            message=Message(
                tuple(
                    p if isinstance(p, str) else node_from_json(p)  # type: ignore[misc]
                    for p in obj["message"]["parts"]
                )
            ),
            description=obj.get("description", ""),
            remediation=obj.get("remediation", ""),
            tags=tuple(obj.get("tags", ())),
            selector=Selector(
                source=sel.get("source"),
                api_versions=tuple(sel.get("api_versions", ())),
                kinds=tuple(sel.get("kinds", ())),
                namespaces=tuple(sel.get("namespaces", ())),
                exclude_namespaces=tuple(sel.get("exclude_namespaces", ())),
                labels=tuple(sorted((sel.get("labels") or {}).items())),
                entity_types=tuple(sel.get("entity_types", ())),
            ),
            each=None if each is None else Each(each["var"], node_from_json(each["collection"])),  # type: ignore[arg-type]
            loc=None if loc is None else SourceLoc(loc["file"], loc.get("line", 0)),
            same_as=obj.get("same_as", ""),
        )
    except (KeyError, TypeError) as exc:
        raise IRFormatError(f"malformed rule {obj.get('id', '?')!r}: missing {exc}") from None


def pack_to_json(pack: Pack) -> dict[str, Any]:
    return {
        "name": pack.name,
        "version": pack.version,
        "description": pack.description,
        "params": [
            {
                "name": p.name,
                "schema": dict(p.schema),
                "default": p.default,
                "description": p.description,
            }
            for p in pack.params
        ],
        "rules": [rule_to_json(r) for r in pack.rules],
    }


def pack_from_json(obj: dict[str, Any]) -> Pack:
    try:
        return Pack(
            name=obj["name"],
            version=obj["version"],
            description=obj.get("description", ""),
            params=tuple(
                ParamSpec(p["name"], p["schema"], p.get("default"), p.get("description", ""))
                for p in obj.get("params", ())
            ),
            rules=tuple(rule_from_json(r) for r in obj["rules"]),
        )
    except (KeyError, TypeError) as exc:
        raise IRFormatError(f"malformed pack: missing {exc}") from None


def dumps(packs: list[Pack]) -> str:
    """The IR document for ``packs``, as deterministic JSON text."""
    doc = {"policykit_ir": IR_VERSION, "packs": [pack_to_json(p) for p in packs]}
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _json_path(path: Any) -> str:
    """``$.packs[0].rules[3].id`` for a jsonschema error path."""
    out = "$"
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def validate(doc: Any, file: str | None = None) -> None:
    """Refuse an IR document that does not fit ``schemas/ir.schema.json``: one
    line naming the JSON path of the first problem (a wrong type would crash
    later, or, like ``"kinds": "Component"``, silently match nothing)."""
    loc = SourceLoc(file) if file else None
    if not isinstance(doc, dict) or doc.get("policykit_ir") != IR_VERSION:
        raise IRFormatError(
            f"unsupported IR version {doc.get('policykit_ir') if isinstance(doc, dict) else None!r}"
            f"; this policykit reads version {IR_VERSION}",
            loc=loc,
        )
    import jsonschema  # here: loading a pack from Python never needs it (start-up, issue 21)

    validator = jsonschema.Draft202012Validator(load_schema("ir.schema.json"))
    try:
        error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    except RecursionError:
        raise IRFormatError("IR nested too deeply", loc=loc) from None
    if error is not None:
        message = " ".join(error.message.split())
        if len(message) > 200:
            message = message[:200] + "…"
        raise IRFormatError(
            f"IR does not fit schemas/ir.schema.json at {_json_path(error.absolute_path)}: "
            + message,
            loc=loc,
            hint="regenerate it with `policykit ir`",
        )


def loads(text: str, file: str | None = None) -> list[Pack]:
    """The packs of an IR JSON document, validated against its schema first."""
    doc = load_json(text, file or "<IR>", error=IRFormatError, max_depth=IR_MAX_DEPTH)
    validate(doc, file)
    try:
        return [pack_from_json(p) for p in doc.get("packs", [])]
    except IRFormatError as exc:
        exc.loc = exc.loc or (SourceLoc(file) if file else None)
        raise
    except RecursionError:
        raise IRFormatError("IR nested too deeply", loc=SourceLoc(file) if file else None) from None
