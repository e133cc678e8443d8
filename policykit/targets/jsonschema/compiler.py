"""The JSON Schema compiler of one rule (see the package docstring for the
translation): ``pos_``/``neg_`` for connectives, ``leaf_`` for the predicates
over one field; constants are folded with :class:`policykit.ir.passes.Folder`."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policykit.ir import nodes as ir
from policykit.ir.passes import Folder
from policykit.ir.rule import Rule
from policykit.targets.base import Compiler, UnsupportedError
from policykit.targets.jsonschema.pattern import END, literal_pattern, schema_pattern
from policykit.targets.jsonschema.schema import (
    MAX_PATH_SEGMENTS,
    Schema,
    all_of,
    any_of,
    at,
    negate,
    selector_schema,
)
from policykit.values import MISSING

_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_BOUND = {"<": "exclusiveMaximum", "<=": "maximum", ">": "exclusiveMinimum", ">=": "minimum"}
_LEN_KEYS = (
    ("string", "minLength", "maxLength"),
    ("array", "minItems", "maxItems"),
    ("object", "minProperties", "maxProperties"),
)


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
        self._fold = Folder(params)
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
            return self._fold.pred(p, self._bound) is truth
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
        return self._fold.is_constant(n, self._bound)

    def _value(self, n: ir.Value) -> Any:
        return self._fold.value(n, self._bound)

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
            fb = self._fold.pred(pred, {**self._bound, fld.operand.root: None})
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
