"""``<pack>.fields.json``: what a Backstage rule asks of each entity field, as
a scaffolder form property can carry it (draft-07, ``errorMessage``)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policykit.ir import nodes as ir
from policykit.ir.passes import Folder
from policykit.ir.passes import fold_constant_keys as fold_rule
from policykit.ir.rule import Rule
from policykit.targets.base import UnsupportedError
from policykit.targets.jsonschema.compiler import SchemaCompiler
from policykit.targets.jsonschema.schema import Schema
from policykit.targets.jsonschema.simplify import simplify


@dataclass(frozen=True, slots=True)
class FieldRule:
    """What one rule asks of one entity field: the value schema (for a form
    property: simplified, draft-07, with ``errorMessage``), whether the rule
    fires when the field is absent, and the rule's message as the form shows it."""

    path: str
    schema: Schema
    required: bool
    message: str = ""
    segments: tuple[str, ...] = ()


def single_field(rule: Rule, params: Mapping[str, Any]) -> FieldRule | None:
    """:func:`field_rules` for a rule that constrains exactly one field."""
    got = field_rules(rule, params)
    if isinstance(got, str) or len(got) != 1:
        return None
    return got[0]


def field_rules(rule: Rule, params: Mapping[str, Any]) -> list[FieldRule] | str:
    """The fields a Backstage rule constrains one by one, or why it does not.

    The rule must narrow at most by kind and entity type, and its condition
    (parameters inlined; ``annotations[param]`` is a field) must be a
    disjunction of parts that each read one entity field: then "no finding" is
    the conjunction, per field, of "no part on this field holds" — exact, so
    each field's schema accepts exactly the values the rule accepts there.
    Schemas use only draft-07 keywords (what Backstage's form runs)."""
    sel = rule.selector
    if sel.source == "kubernetes":
        return "the rule is for Kubernetes objects"
    if sel.namespaces or sel.exclude_namespaces or sel.labels or sel.api_versions:
        return "the rule selects by namespace, label or apiVersion"
    rule = fold_rule(rule, params)
    if rule.each is not None:
        return _each_field(rule, params)
    groups: dict[tuple[str, ...], list[ir.Pred]] = {}
    for part in _disjuncts(rule.condition):
        paths = {n for n in ir.walk(part) if isinstance(n, ir.Path)}
        if not paths:
            continue  # a constant part: the whole rule is constant there
        if len(paths) != 1:
            return "a part of the rule reads more than one field"
        (p,) = paths
        if p.root != ir.OBJECT_ROOT or not p.segments:
            return "the rule reads a list item or the whole object"
        if any(isinstance(s, int) for s in p.segments):
            return "the rule reads a list item by position"
        groups.setdefault(p.segments, []).append(part)  # type: ignore[arg-type]
    if not groups:
        return "the rule reads no field"
    if any(
        not any(isinstance(n, ir.Path) for n in ir.walk(part))
        for part in _disjuncts(rule.condition)
    ):
        return "the rule has a part that reads no field"
    comp = SchemaCompiler(params)
    folder = Folder(params)
    out: list[FieldRule] = []
    for segs, parts in groups.items():
        cond: ir.Pred = parts[0] if len(parts) == 1 else ir.Or(tuple(parts))
        p = ir.Path(ir.OBJECT_ROOT, segs)
        try:
            ok = comp.field_ok(dataclasses.replace(rule, condition=cond), p)
        except UnsupportedError as e:
            return e.message
        if _uses(ok, "prefixItems"):  # scaffolder forms run draft-07, which lacks it
            return "the field's schema needs prefixItems (draft 2020-12)"
        fires_when_absent = folder.pred(cond, {ir.OBJECT_ROOT: {}})
        message = form_message(rule, params, p)
        out.append(
            FieldRule(
                ".".join(segs),
                with_messages(simplify(ok), message),
                fires_when_absent,
                message,
                segs,
            )
        )
    return out


def each_field(rule: Rule) -> tuple[str, ...] | None:
    """The entity field an ``each`` rule iterates over, when it is one plain
    field (``metadata.tags``); None for a rule without ``each`` or one over a
    computed list. Callers name the rule against that field when it has no
    form schema, rather than call the field unconstrained."""
    coll = rule.each.collection if rule.each is not None else None
    if not isinstance(coll, ir.Path) or coll.root != ir.OBJECT_ROOT or not coll.segments:
        return None
    if any(not isinstance(s, str) for s in coll.segments):
        return None
    return tuple(str(s) for s in coll.segments)


def field_gaps(rule: Rule, params: Mapping[str, Any]) -> dict[tuple[str, ...], str]:
    """The entity fields ``rule`` constrains that get no form schema from it,
    each with why: the list an ``each`` rule iterates when what it asks of an
    item does not compile. A form filling that field is then not checked by
    the rule, and saying "no rule constrains it" would be false. A rule on
    Kubernetes objects constrains no entity a template creates: no gap."""
    segs = each_field(rule)
    if segs is None or rule.selector.source == "kubernetes":
        return {}
    got = field_rules(rule, params)
    return {segs: got} if isinstance(got, str) else {}


def _each_field(rule: Rule, params: Mapping[str, Any]) -> list[FieldRule] | str:
    """:func:`field_rules` of an ``each`` rule: one schema for the list field,
    ``items`` holding what every item must be.

    Compiled as :meth:`SchemaCompiler.rule_ok` compiles ``each`` ("no item
    makes the condition true"), with the list as the root, so it is exact in the
    same way: a value that is not a list, or no value, has no item and no
    finding, and ``items`` constrains arrays only. The message goes inside
    ``items``, so ajv-errors' ``${0}`` is the offending item, as ``{item}`` is
    in the rule's message."""
    assert rule.each is not None
    segs = each_field(rule)
    if segs is None:
        return "the rule is evaluated per item of a computed list (each), not of one field"
    fld = ir.Path(ir.OBJECT_ROOT, segs)
    per_item = ir.Quantifier("any", rule.each.var, fld, rule.condition)
    try:
        ok = SchemaCompiler(params).field_ok(dataclasses.replace(rule, condition=per_item), fld)
    except UnsupportedError as e:
        return f"per list item (each): {e.message}"
    if _uses(ok, "prefixItems"):  # scaffolder forms run draft-07, which lacks it
        return "the items' schema needs prefixItems (draft 2020-12)"
    message = form_message(rule, params, ir.Path(rule.each.var, ()))
    schema = _items_with_messages(simplify(ok), message)
    return [FieldRule(".".join(segs), schema, False, message, segs)]


def _items_with_messages(schema: Schema, message: str) -> Schema:
    """``{"items": s}`` with ``message`` on ``s`` (see :func:`with_messages`),
    so the form names the rule at the item that breaks it."""
    if isinstance(schema, dict) and set(schema) == {"items"}:
        return {"items": with_messages(schema["items"], message)}
    return with_messages(schema, message)


def _disjuncts(p: ir.Pred) -> list[ir.Pred]:
    """``p`` as a flat disjunction (``or``, and ``not and`` by De Morgan)."""
    if isinstance(p, ir.Or):
        return [d for i in p.items for d in _disjuncts(i)]
    if isinstance(p, ir.Not) and isinstance(p.item, ir.And):
        return [d for i in p.item.items for d in _disjuncts(ir.Not(i))]
    if isinstance(p, ir.Not) and isinstance(p.item, ir.Not):
        return _disjuncts(p.item.item)
    return [p]


def form_message(rule: Rule, params: Mapping[str, Any], field_path: ir.Path) -> str:
    """The rule's message as a scaffolder form shows it for ``field_path``:
    ``<ID>: <message>`` with parameters filled in, the field's own value as
    ajv-errors' ``${0}`` (the value entered, shown as JSON), ``{kind}`` as the one kind the
    rule selects (else "entity"), ``metadata.name`` left out (the entity has
    none yet) and any other field as ``<dotted.path>``."""
    from policykit.values import render

    folder = Folder(params)
    kinds = rule.selector.kinds
    out: list[str] = []
    for part in rule.message.parts:
        if isinstance(part, str):
            out.append(part.replace("${", "$ {"))  # ajv-errors would read a template
        elif part == field_path:
            out.append("${0}")
        elif folder.is_constant(part):
            out.append(render(folder.value(part)).replace("${", "$ {"))
        elif part == ir.Path(ir.OBJECT_ROOT, ("kind",)):
            out.append(kinds[0] if len(kinds) == 1 else "entity")
        elif part == ir.Path(ir.OBJECT_ROOT, ("metadata", "name")):
            out.append("")  # the entity being created has no name yet
        elif isinstance(part, ir.Path):
            out.append("<" + ".".join(str(s) for s in part.segments) + ">")
        else:
            out.append("<" + type(part).__name__.lower() + ">")
    # ajv-errors renders ${0} as JSON (a string in double quotes): no quotes of our own
    text = "".join(out).replace("'${0}'", "${0}").replace('"${0}"', "${0}")
    text = re.sub(r"  +", " ", text).strip()
    text = text[:1].upper() + text[1:]
    return f"{rule.id}: {text}"


_NESTING = ("not", "anyOf", "allOf", "oneOf", "if", "properties", "items", "contains")


def with_messages(schema: Schema, message: str) -> Schema:
    """``schema`` carrying ``message`` for ajv-errors' ``errorMessage``
    (Backstage's form registers ajv-errors; ``docs/golden-path.md``): per
    keyword when the schema is one flat object, so each error the form lists
    names the rule; else one message for the schema and its subschemas."""
    if isinstance(schema, bool):
        return schema if schema else {"not": {}, "errorMessage": message}
    if not schema:
        return schema
    if any(k in schema for k in _NESTING):
        return {**schema, "errorMessage": message}
    return {**schema, "errorMessage": dict.fromkeys(sorted(schema), message)}


def _uses(schema: Any, keyword: str) -> bool:
    if isinstance(schema, dict):
        return keyword in schema or any(_uses(v, keyword) for v in schema.values())
    if isinstance(schema, list):
        return any(_uses(v, keyword) for v in schema)
    return False
