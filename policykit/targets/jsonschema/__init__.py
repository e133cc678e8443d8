"""IR → JSON Schema (draft 2020-12), for scaffolder- and catalog-time checks.

JSON Schema can say what a *single field* must look like — present, of a type,
equal to or one of some constants, bounded, of a length, matching a pattern —
and quantify over list items. So this target expresses exactly the rules made
of those pieces; the others are reported as not covered (with the reason), and
stay enforced in CI and at admission by the other targets.

A rule compiles to a schema that an object satisfies exactly when the rule has
*no* finding on it (``docs/semantics.md``):

* every leaf predicate is "the field is present and its value satisfies V";
  its positive form is ``at(path, V, required)``, its negation
  ``at(path, not V, optional)`` — a missing field makes every leaf false;
* ``not`` flips polarity, ``and``/``or`` become ``allOf``/``anyOf`` (De Morgan
  when negated); ``any``/``all`` become ``contains``/``items``;
* the selector becomes ``if``; parameters are inlined at build time.

Per pack, the build writes ``<pack>.schema.json`` (an ``allOf`` with one entry
per covered rule, ``title`` = rule id) and ``<pack>.fields.json`` (per entity
field, the schema a scaffolder form property can use, and whether the field is
required). ``index.json`` lists every rule as covered or not, with the reason.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policykit import __version__
from policykit.engines.native import _Compiler as _NativeCompiler
from policykit.ir import nodes as ir
from policykit.ir.check import check_pack
from policykit.ir.rule import Pack, Rule, Selector
from policykit.model import BACKSTAGE_GROUP_SUFFIX
from policykit.targets.base import Compiler, UnsupportedError
from policykit.targets.features import features_of, level, table
from policykit.targets.jsonschema.pattern import END, literal_pattern, schema_pattern
from policykit.targets.jsonschema.simplify import simplify
from policykit.values import MISSING

Schema = dict[str, Any] | bool
DRAFT = "https://json-schema.org/draft/2020-12/schema"
_JSON_TYPES = {"string", "number", "boolean", "array", "object", "null"}
_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_BOUND = {"<": "exclusiveMaximum", "<=": "maximum", ">": "exclusiveMinimum", ">=": "minimum"}
_LEN_KEYS = (
    ("string", "minLength", "maxLength"),
    ("array", "minItems", "maxItems"),
    ("object", "minProperties", "maxProperties"),
)


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


@dataclass(frozen=True, slots=True)
class Leaf:
    """A leaf predicate over one field: when the field at ``path`` (from the
    current root) is present it holds iff the value satisfies ``v``; when the
    field is missing it holds iff ``absent``."""

    path: tuple[str | int, ...]
    v: Schema
    absent: bool = False


class SchemaCompiler(Compiler):
    """One rule at a time; ``pos_``/``neg_`` give the schema of a predicate
    being true / false, ``leaf_`` the :class:`Leaf` of a one-field predicate.

    Variables bound to constants (a quantifier over a constant list, e.g. a
    parameter) are expanded item by item into ``and``/``or``."""

    target = "jsonschema"

    def __init__(self, params: Mapping[str, Any]) -> None:
        self._native = _NativeCompiler(params)
        self._root = ir.OBJECT_ROOT
        self._bound: dict[str, Any] = {}
        self._rule: Rule | None = None

    # --- entry points ----------------------------------------------------------

    def rule_ok(self, rule: Rule) -> Schema:
        """The schema of "``rule`` has no finding", selector applied."""
        self._rule, self._root, self._bound = rule, ir.OBJECT_ROOT, {}
        cond: ir.Pred = rule.condition
        if rule.each is not None:
            cond = ir.Quantifier("any", rule.each.var, rule.each.collection, cond)
        ok = self.neg(cond)
        sel = selector_schema(rule.selector)
        if sel is True or ok is True:
            return ok
        return {"if": sel, "then": ok}

    def field_ok(self, rule: Rule, field: ir.Path) -> Schema:
        """The schema of ``field``'s value under which ``rule`` (reading only that
        field) has no finding: compiled with the field as the root."""
        self._rule, self._root, self._bound = rule, ir.OBJECT_ROOT, {}
        return self.neg(_rebase(rule.condition, field))

    def pos(self, p: ir.Pred) -> Schema:
        return self._compile(p, True)

    def neg(self, p: ir.Pred) -> Schema:
        return self._compile(p, False)

    def _compile(self, p: ir.Pred, truth: bool) -> Schema:
        if self._constant(p):
            return bool(self._native.pred(p)(self._bound)) is truth
        if isinstance(p, (ir.And, ir.Or, ir.Not, ir.Quantifier)):
            return self.dispatch("pos" if truth else "neg", p)  # type: ignore[no-any-return]
        leaf: Leaf = self.dispatch("leaf", p)
        if len(leaf.path) > MAX_PATH_SEGMENTS:
            # one nested subschema per segment: validators (ajv, python-jsonschema)
            # recurse per level, and JSON readers bound nesting
            raise self._unsupported(
                f"a field path of {len(leaf.path)} segments (one nested schema each; "
                f"at most {MAX_PATH_SEGMENTS})"
            )
        v = leaf.v if truth else negate(leaf.v)
        return at(leaf.path, v, leaf.absent is not truth)

    # --- helpers -----------------------------------------------------------------

    def _unsupported(self, what: str) -> UnsupportedError:
        rule = self._rule
        return UnsupportedError(
            f"{f'rule {rule.id}: ' if rule else ''}target jsonschema cannot express {what}",
            loc=rule.loc if rule else None,
            hint="JSON Schema covers single-field rules; the rule is still enforced by "
            "the rego, gatekeeper, kyverno and vap targets",
        )

    def _constant(self, n: ir.Node) -> bool:
        return all(x.root in self._bound for x in ir.walk(n) if isinstance(x, ir.Path))

    def _value(self, n: ir.Value) -> Any:
        return self._native.value(n)(self._bound)

    def _path(self, v: ir.Value) -> tuple[str | int, ...]:
        if not isinstance(v, ir.Path):
            raise self._unsupported(f"a computed value ({type(v).__name__}) as a field")
        if v.root != self._root:
            raise self._unsupported(
                "a field outside the current list item (JSON Schema cannot look up from an item)"
            )
        return v.segments

    def _leaf(self, pred: ir.Pred, fld: ir.Value, v: Schema) -> Leaf:
        """The leaf of ``pred`` whose one field is ``fld`` (a path, or a path with
        a constant ``default``), given ``v``: the schema of ``pred`` on the
        field's value."""
        if isinstance(fld, ir.Default) and self._constant(fld.fallback):
            path = self._path(fld.operand)
            assert isinstance(fld.operand, ir.Path)
            # null and missing both give the fallback; the fallback's verdict is a constant
            env = {**self._bound, fld.operand.root: None}
            fb = bool(self._native.pred(pred)(env))
            present = all_of([{"not": {"type": "null"}}, v])
            return Leaf(path, any_of([present, {"type": "null"} if fb else False]), fb)
        return Leaf(self._path(fld), v)

    def _split(self, a: ir.Value, b: ir.Value) -> tuple[ir.Value, Any, bool] | None:
        """(field side, constant value, swapped) when exactly one side is constant."""
        ca, cb = self._constant(a), self._constant(b)
        if ca and not cb:
            return b, self._value(a), True
        if cb and not ca:
            return a, self._value(b), False
        return None

    # --- connectives ---------------------------------------------------------------

    def pos_And(self, n: ir.And) -> Schema:
        return all_of([self.pos(i) for i in n.items])

    def neg_And(self, n: ir.And) -> Schema:
        return any_of([self.neg(i) for i in n.items])

    def pos_Or(self, n: ir.Or) -> Schema:
        return any_of([self.pos(i) for i in n.items])

    def neg_Or(self, n: ir.Or) -> Schema:
        return all_of([self.neg(i) for i in n.items])

    def pos_Not(self, n: ir.Not) -> Schema:
        return self.neg(n.item)

    def neg_Not(self, n: ir.Not) -> Schema:
        return self.pos(n.item)

    def pos_Quantifier(self, n: ir.Quantifier) -> Schema:
        return self._quant(n, True)

    def neg_Quantifier(self, n: ir.Quantifier) -> Schema:
        return self._quant(n, False)

    def _quant(self, n: ir.Quantifier, truth: bool) -> Schema:
        # any/true and all/false ask for *some* item whose body has the truth
        # wanted (all/false: some item falsifies it); the others for *every* item
        exists = (n.kind == "any") is truth
        body_truth = truth
        if self._constant(n.collection):
            coll = self._value(n.collection)
            items = coll if isinstance(coll, list) else []
            parts = [self._with(n.var, item, n.body, body_truth) for item in items]
            return any_of(parts) if exists else all_of(parts)
        path = self._path(n.collection)
        outer, self._root = self._root, n.var
        try:
            body = self._compile(n.body, body_truth)
        finally:
            self._root = outer
        if exists:  # a list with an item whose body has the wanted truth
            return at(
                path, {"type": "array", "contains": body} if body is not False else False, True
            )
        # not a list (empty), or every item has it
        return at(path, {"items": body} if body is not True else True, False)

    def _with(self, var: str, value: Any, body: ir.Pred, truth: bool) -> Schema:
        saved = dict(self._bound)
        self._bound[var] = value
        try:
            return self._compile(body, truth)
        finally:
            self._bound = saved

    # --- leaves --------------------------------------------------------------------

    def leaf_Exists(self, n: ir.Exists) -> Leaf:
        return self._leaf(n, n.operand, {"not": {"type": "null"}})

    def leaf_IsType(self, n: ir.IsType) -> Leaf:
        return self._leaf(n, n.operand, {"type": n.type_name})

    def leaf_Compare(self, n: ir.Compare) -> Leaf:
        split = self._split(n.left, n.right)
        if split is None:
            raise self._unsupported("a comparison of two fields")
        fld, c, swapped = split
        op = _FLIP[n.op] if swapped else n.op
        if c is MISSING:  # a comparison with missing is false
            return Leaf((), False)
        if isinstance(fld, ir.Length):
            return self._leaf(n, fld.operand, _length(op, c))
        if op == "==":
            return self._leaf(n, fld, {"const": c})
        if op == "!=":
            return self._leaf(n, fld, {"not": {"const": c}})
        if isinstance(c, str):
            raise self._unsupported("ordering of strings (JSON Schema bounds only numbers)")
        if type(c) not in (int, float):  # ordering with a non-number is false
            return self._leaf(n, fld, False)
        return self._leaf(n, fld, {"type": "number", _BOUND[op]: _num(c)})

    def leaf_Matches(self, n: ir.Matches) -> Leaf:
        pattern = self._value(n.pattern)
        if not isinstance(pattern, str):
            return self._leaf(n, n.subject, False)
        try:
            spelled = schema_pattern(pattern)
        except UnsupportedError as e:
            raise self._unsupported(f"the regex {pattern!r}: {e.message}") from None
        return self._leaf(n, n.subject, {"type": "string", "pattern": spelled})

    def leaf_StrOp(self, n: ir.StrOp) -> Leaf:
        if not self._constant(n.arg):
            raise self._unsupported(f"{n.op} with a field as its argument")
        arg = self._value(n.arg)
        if not isinstance(arg, str):
            return self._leaf(n, n.subject, False)
        lit = literal_pattern(arg)
        pattern = {"startswith": "^" + lit, "endswith": lit + END, "contains": lit}[n.op]
        return self._leaf(n, n.subject, {"type": "string", "pattern": pattern})

    def leaf_In(self, n: ir.In) -> Leaf:
        if self._constant(n.collection):
            coll = self._value(n.collection)
            ok = isinstance(coll, list) and bool(coll)
            return self._leaf(n, n.element, {"enum": coll} if ok else False)
        if not self._constant(n.element):
            raise self._unsupported("membership of one field in another")
        elem = self._value(n.element)
        if isinstance(n.collection, ir.Keys):  # a key of the object
            v: Schema = {"type": "object", "required": [elem]} if isinstance(elem, str) else False
            return self._leaf(n, n.collection.operand, v)
        if elem is MISSING:
            return self._leaf(n, n.collection, False)
        return self._leaf(n, n.collection, {"type": "array", "contains": {"const": elem}})


def _num(c: int | float) -> int | float:
    return int(c) if isinstance(c, float) and c.is_integer() and abs(c) < 2**53 else c


def _length(op: str, c: Any) -> Schema:
    """Value schema of ``length(value) op c`` (false unless string/list/object)."""
    if op == "!=":  # a sized value whose length is not c
        return all_of([{"type": ["string", "array", "object"]}, negate(_length("==", c))])
    if type(c) not in (int, float):
        return False
    lo: int = 0
    hi: int | None = None
    if op == "==":
        if not float(c).is_integer():
            return False
        lo = hi = int(c)
    elif op == "<":
        hi = math.ceil(c) - 1
    elif op == "<=":
        hi = math.floor(c)
    elif op == ">":
        lo = math.floor(c) + 1
    else:
        lo = math.ceil(c)
    lo = max(lo, 0)
    if hi is not None and hi < lo:
        return False
    branches: list[Schema] = []
    for t, kmin, kmax in _LEN_KEYS:
        b: dict[str, Any] = {"type": t}
        if lo:
            b[kmin] = lo
        if hi is not None:
            b[kmax] = hi
        branches.append(b)
    return {"anyOf": branches}


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
    """Holds exactly when the selector picks the object (engines.native.selector_matches)."""
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


# --- build ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Covered:
    rule: Rule
    schema: Schema


@dataclass(frozen=True, slots=True)
class PackSchemas:
    """One pack in JSON Schema: the rules covered and those that are not (why)."""

    pack: Pack
    params: Mapping[str, Any] = field(hash=False)
    covered: tuple[Covered, ...]
    uncovered: tuple[tuple[Rule, str], ...]

    def document(self) -> dict[str, Any]:
        """The pack's entity schema: valid exactly when no covered rule fires."""
        doc: dict[str, Any] = {
            "$schema": DRAFT,
            "$id": f"urn:policykit:pack:{self.pack.name}:{self.pack.version}",
            "title": f"policykit pack {self.pack.name} {self.pack.version}",
            "description": f"Generated by policykit {__version__}: {len(self.covered)} of "
            f"{len(self.pack.rules)} rules; see index.json for the others.",
        }
        if self.covered:  # allOf must not be empty
            doc["allOf"] = [
                {
                    "title": c.rule.id,
                    "description": f"{c.rule.title} [{c.rule.severity}]: {c.rule.message.text}",
                    "$comment": f"policykit rule {c.rule.id}",
                    **({"allOf": [c.schema]} if isinstance(c.schema, bool) else c.schema),
                }
                for c in self.covered
            ]
        return doc

    def fields(self) -> dict[str, Any]:
        """Per entity field (dotted path; an annotation or label key is one
        segment), the constraints a scaffolder form property can carry: one
        entry per rule constraining the field, with the kinds/types it applies
        to, the schema (simplified, with ``errorMessage`` for ajv-errors, which
        Backstage's form runs) and the rule's message. ``not_fields`` lists the
        covered rules that constrain no single field, and why."""
        by_field: dict[str, list[dict[str, Any]]] = {}
        not_fields: list[dict[str, str]] = []
        for c in self.covered:
            got = field_rules(c.rule, self.params)
            if isinstance(got, str):
                not_fields.append({"rule": c.rule.id, "reason": got})
                continue
            sel = c.rule.selector
            for f in got:
                by_field.setdefault(f.path, []).append(
                    {
                        "rule": c.rule.id,
                        "severity": c.rule.severity,
                        "kinds": list(sel.kinds),
                        "entity_types": list(sel.entity_types),
                        "required": f.required,
                        "message": f.message,
                        "schema": f.schema,
                    }
                )
        return {
            "$comment": "policykit: per-field constraints for Backstage scaffolder parameters",
            "pack": self.pack.name,
            "version": self.pack.version,
            "fields": dict(sorted(by_field.items())),
            "not_fields": not_fields,
        }


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
    if rule.each is not None:
        return "the rule is evaluated per list item (each)"
    if sel.source == "kubernetes":
        return "the rule is for Kubernetes objects"
    if sel.namespaces or sel.exclude_namespaces or sel.labels or sel.api_versions:
        return "the rule selects by namespace, label or apiVersion"
    rule = fold_rule(rule, params)
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
    native = _NativeCompiler(params)
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
        fires_when_absent = bool(native.pred(cond)({ir.OBJECT_ROOT: {}}))
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


def _disjuncts(p: ir.Pred) -> list[ir.Pred]:
    """``p`` as a flat disjunction (``or``, and ``not and`` by De Morgan)."""
    if isinstance(p, ir.Or):
        return [d for i in p.items for d in _disjuncts(i)]
    if isinstance(p, ir.Not) and isinstance(p.item, ir.And):
        return [d for i in p.item.items for d in _disjuncts(ir.Not(i))]
    if isinstance(p, ir.Not) and isinstance(p.item, ir.Not):
        return _disjuncts(p.item.item)
    return [p]


def fold_rule(rule: Rule, params: Mapping[str, Any]) -> Rule:
    """``rule`` with every look-up by a constant string key (``annotations[P(x)]``)
    written as a field path: the same value (missing unless the base is an
    object holding the key), so JSON Schema can name the field."""
    native = _NativeCompiler(params)

    def fold(node: Any) -> Any:
        if not isinstance(node, ir.Node):
            return node
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(node):  # type: ignore[arg-type]
            v = getattr(node, f.name)
            if isinstance(v, ir.Node):
                changes[f.name] = fold(v)
            elif isinstance(v, tuple):
                changes[f.name] = tuple(fold(x) for x in v)
        out = dataclasses.replace(node, **changes) if changes else node  # type: ignore[type-var]
        if (
            isinstance(out, ir.Index)
            and isinstance(out.base, ir.Path)
            and not any(isinstance(x, ir.Path) for x in ir.walk(out.key))
        ):
            key = native.value(out.key)({})
            if isinstance(key, str):
                return ir.Path(out.base.root, (*out.base.segments, key))
        return out

    return dataclasses.replace(
        rule,
        condition=fold(rule.condition),
        message=dataclasses.replace(rule.message, parts=tuple(fold(p) for p in rule.message.parts)),
    )


def form_message(rule: Rule, params: Mapping[str, Any], field_path: ir.Path) -> str:
    """The rule's message as a scaffolder form shows it for ``field_path``:
    ``<ID>: <message>`` with parameters filled in, the field's own value as
    ajv-errors' ``${0}`` (the value entered, shown as JSON), ``{kind}`` as the one kind the
    rule selects (else "entity"), ``metadata.name`` left out (the entity has
    none yet) and any other field as ``<dotted.path>``."""
    from policykit.values import render

    native = _NativeCompiler(params)
    kinds = rule.selector.kinds
    out: list[str] = []
    for part in rule.message.parts:
        if isinstance(part, str):
            out.append(part.replace("${", "$ {"))  # ajv-errors would read a template
        elif part == field_path:
            out.append("${0}")
        elif not any(isinstance(x, ir.Path) for x in ir.walk(part)):
            out.append(render(native.value(part)({})).replace("${", "$ {"))
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


def _rebase(node: Any, p: ir.Path) -> Any:
    if isinstance(node, ir.Path):
        return ir.Path(ir.OBJECT_ROOT, ()) if node == p else node
    if not isinstance(node, ir.Node):
        return node
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(node):  # type: ignore[arg-type]
        v = getattr(node, f.name)
        if isinstance(v, ir.Node):
            changes[f.name] = _rebase(v, p)
        elif isinstance(v, tuple):
            changes[f.name] = tuple(_rebase(x, p) for x in v)
    return dataclasses.replace(node, **changes)  # type: ignore[type-var]


def compile_pack(pack: Pack, params: Mapping[str, Any]) -> PackSchemas:
    """Every rule of ``pack`` that JSON Schema can express, ``params`` inlined."""
    comp = SchemaCompiler(params)
    covered: list[Covered] = []
    uncovered: list[tuple[Rule, str]] = []
    for rule in pack.rules:
        rule = fold_rule(rule, params)
        refused = [f for f in sorted(features_of(rule)) if level(f, "jsonschema") == "no"]
        if refused:
            what = ", ".join(f"{f} ({table()['features'][f]['description']})" for f in refused)
            uncovered.append((rule, f"rule {rule.id}: target jsonschema cannot express {what}"))
            continue
        try:
            covered.append(Covered(rule, comp.rule_ok(rule)))
        except UnsupportedError as e:
            uncovered.append((rule, e.message))
    return PackSchemas(pack, params, tuple(covered), tuple(uncovered))


def build(
    packs: Sequence[Pack],
    params: Mapping[str, Mapping[str, Any]],
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, str]:
    """File name → text: ``<pack>.schema.json``, ``<pack>.fields.json``, ``index.json``.

    ``parameters``: per pack name, the keys ``fields.json`` gains for the
    repository's templates (:mod:`policykit.scaffolder.fields`: the schema
    under each template parameter that fills a constrained field); ``None``
    when no templates were given."""
    files: dict[str, str] = {}
    index: list[dict[str, Any]] = []
    for pack in packs:
        ps = compile_pack(pack, check_pack(pack, params.get(pack.name, {})))
        files[f"{pack.name}.schema.json"] = dumps(ps.document())
        fields_doc = ps.fields()
        if parameters is not None:
            fields_doc.update(
                parameters.get(pack.name, {"parameters": {}, "unmapped_parameters": []})
            )
        files[f"{pack.name}.fields.json"] = dumps(fields_doc)
        why = {r.id: reason for r, reason in ps.uncovered}
        for r in pack.rules:  # in the pack's order
            entry: dict[str, Any] = {"pack": pack.name, "rule": r.id, "covered": r.id not in why}
            if r.id in why:
                entry["reason"] = why[r.id]
            index.append(entry)
    files["index.json"] = dumps({"generator": f"policykit {__version__}", "rules": index})
    return files


def dumps(doc: Any) -> str:
    """The one JSON writer of this target (sorted keys, UTF-8, final newline)."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
