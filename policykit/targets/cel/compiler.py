"""IR → CEL, one compiler shared by Kyverno, ValidatingAdmissionPolicy and the
local CEL engine; reproduces docs/semantics.md.

How the semantics are kept:

* a value compiles to a *guard* (a CEL condition: the value is present) and an
  *expression* (meaningful only under its guard). A path guards every step with
  ``type(x) == map`` and ``has()`` (or ``'key' in x``), so no selection ever
  errors: a missing field, or a step through a non-object, is simply absent;
* every built-in is called only on the types it accepts (type guards), so a
  wrong-typed field gives the reference verdict, never a CEL error;
* parameters are inlined as constants at build time (ValidatingPolicy has no
  ``paramKind``; inlining keeps VAP and Kyverno output identical and one file);
* numbers: arithmetic is done on doubles (the reference is exact decimal: see
  docs/engines.md), ordering and equality use CEL's cross-type numeric rules.

The printed expression is what ships in the manifests and what the local CEL
engine (``policykit.engines.cel``) evaluates — there is no second copy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policykit.engines.native import _Compiler as _NativeCompiler
from policykit.ir import nodes as ir
from policykit.ir.rule import Pack, Rule, Selector
from policykit.targets.base import Compiler, UnsupportedError
from policykit.targets.cel import printer as pr
from policykit.targets.k8s.fieldtypes import FieldType, kubernetes_object, of_kinds
from policykit.values import MISSING, json_type
from policykit.values import render as render_value

CEL_MAX_DEPTH = 24
"""Deepest bracket nesting the compiler emits. cel-cpp's parser gives up past a
recursion depth of 32, which counts more than brackets; 24 keeps a margin."""

CEL_MAX_CODEPOINTS = 100_000
"""Longest expression emitted: cel-cpp refuses longer ones ("expression size
exceeds codepoint limit"), and a long field path's presence checks grow with
the square of its length."""

MSG_SEPARATOR = "; "
"""Joins the messages of the items of an ``each`` rule in one admission message."""


@dataclass(frozen=True, slots=True)
class CV:
    """A compiled value: present when ``guard`` holds, then equal to ``expr``.

    ``jtype`` is what is known statically: ``any``, a JSON type name,
    ``missing`` (never present) or ``keys`` (``expr`` is a map whose keys are
    the value; usable only where key order does not matter).
    """

    guard: str
    expr: str
    jtype: str
    ftype: FieldType | None = None
    """The schema type (typed compilation), when known."""
    opt: str | None = None
    """The value as a CEL optional (``object.?spec.?replicas``), when there is
    one: then ``guard`` is ``<opt>.hasValue()``."""
    nonnull: bool = False
    """Never null when present (a field the schema declares)."""


MISSING_CV = CV("false", "null", "missing")
_TYPE_TEST = {
    "string": "type({e}) == string",
    "number": "(type({e}) == int || type({e}) == double)",
    "boolean": "type({e}) == bool",
    "array": "type({e}) == list",
    "object": "type({e}) == map",
    "null": "{e} == null",
}


def type_test(e: str, t: str) -> str:
    return _TYPE_TEST[t].format(e=pr.paren(e) if t == "null" else e)


@dataclass(frozen=True, slots=True)
class CelRule:
    """One rule in CEL: when it applies, whether it is violated, and the text.

    * ``match``: the rule's selector (``true`` when it has none);
    * ``violation``: true when the object has a finding (for ``each`` rules:
      some item does);
    * ``message``: the finding's message (``each``: every violating item's
      message, joined with ``; ``);
    * ``items``: ``each`` rules only — a list with one entry per item, ``[msg]``
      when the item violates and ``[]`` otherwise (the local engine reports
      findings per item from it, as the reference does).
    """

    rule: Rule
    pack: str
    match: str
    violation: str
    message: str
    static_message: str
    items: str | None = None
    variables: tuple[tuple[str, str], ...] = ()
    """``variables:`` of the policy, in order (``variables.<name>``)."""


class CelCompiler(Compiler):
    """Compiles the rules of one pack with its parameter values inlined."""

    target = "cel"

    def __init__(self, pack: Pack, params: Mapping[str, Any]) -> None:
        super().__init__()
        self.pack = pack
        self.params = dict(params)
        self._native = _NativeCompiler(self.params)
        self._rule: Rule | None = None
        self._object_type: FieldType | None = None
        self._scope: dict[str, FieldType | None] = {}
        self._vars: dict[str, str] = {}  # expression -> name
        self._var_names: set[str] = set()
        self._last_items: FieldType | None = None
        self._text_part = False

    def _unsupported(self, what: str, rule: Rule | None = None) -> UnsupportedError:
        rule = rule or self._rule
        where = f"rule {rule.id}: " if rule else ""
        return UnsupportedError(
            f"{where}target cel cannot express {what}",
            loc=rule.loc if rule else None,
            hint="the Rego targets (rego, gatekeeper) can; see docs/targets.md",
        )

    # --- values -----------------------------------------------------------------

    def value(self, node: ir.Value) -> CV:
        if not _has_path(node):
            return self._constant(self._native.value(node)({}))
        result: CV = self.dispatch("v", node)
        if (
            result.jtype == "number"
            and not isinstance(node, ir.Path)
            and len(result.guard) + len(result.expr) > 300
            and _object_only(node)
        ):  # a large number of the object alone: a policy variable ([n], or [] when absent)
            e = result.expr if result.guard == "true" else f"{result.guard} ? [{result.expr}] : []"
            name = self._vars.get(e)
            if name is None:
                name = _unique(_var_name(node), self._var_names)
                self._vars[e] = name
                self._var_names.add(name)
            ref = f"variables.{name}"
            if result.guard == "true":
                return CV("true", ref, "number", nonnull=True)
            return CV(f"size({ref}) > 0", f"{ref}[0]", "number", nonnull=True)
        return result

    def _constant(self, v: Any) -> CV:
        if v is MISSING:
            return MISSING_CV
        return CV("true", pr.literal(v), json_type(v), nonnull=v is not None)

    def v_Path(self, n: ir.Path) -> CV:
        cur = "object" if n.root == ir.OBJECT_ROOT else n.root
        ft = self._object_type if n.root == ir.OBJECT_ROOT else self._scope.get(n.root)
        guards: list[str] = []
        known_map = n.root == ir.OBJECT_ROOT
        chain: list[str] = []  # typed steps from ``base`` (present, a map)
        base = cur

        def flush() -> None:
            if len(chain) == 1:
                guards.append(pr.has(base, chain[0]))
            elif chain:
                guards.append(f"{_opt_chain(base, chain)}.hasValue()")
            chain.clear()

        for seg in n.segments:
            jt = ft.jtype if ft is not None else "any"
            if (
                ft is not None
                and jt != "any"
                and jt != ("object" if isinstance(seg, str) else "array")
            ):
                return MISSING_CV  # a step through a scalar: statically absent
            if isinstance(seg, str):
                if ft is not None and jt == "object":
                    if not chain:
                        base = cur
                    chain.append(seg)
                else:
                    flush()
                    if not known_map:
                        guards.append(f"type({cur}) == map")
                    guards.append(pr.has(cur, seg))
                cur = pr.select(cur, seg)
                ft = ft.field(seg) if ft is not None and jt == "object" else None
            else:
                flush()
                if ft is None or jt != "array":
                    guards.append(f"type({cur}) == list")
                guards.append(f"size({cur}) > {seg}")
                cur = f"{cur}[{seg}]"
                ft = ft.items() if ft is not None else None
            known_map = False
        opt = _opt_chain(base, chain) if chain and not guards else None
        flush()
        # n guards of O(n) text each: a long path is quadratic text, beyond
        # what cel-cpp parses; refuse it before building (and scanning) it
        size = sum(map(len, guards))
        if size > CEL_MAX_CODEPOINTS:
            raise self._unsupported(
                f"a field path of {len(n.segments)} segments (its CEL presence checks "
                f"would be {size} characters; cel-cpp parses at most {CEL_MAX_CODEPOINTS})"
            )
        if ft is None:
            return CV(pr.conj(guards), cur, "any")
        return CV(pr.conj(guards), cur, ft.jtype, ft, opt, nonnull=True)

    def v_Length(self, n: ir.Length) -> CV:
        o = self.value(n.operand)
        if o.jtype in ("string", "array", "object", "keys"):
            return CV(o.guard, f"size({o.expr})", "number")
        if o.jtype != "any":
            return MISSING_CV
        ok = f"(type({o.expr}) == string || type({o.expr}) == list || type({o.expr}) == map)"
        return CV(pr.conj([o.guard, ok]), f"size({o.expr})", "number")

    def v_Quantity(self, n: ir.Quantity) -> CV:
        o = self._plain(self.value(n.operand))
        if o.jtype == "number":
            return o
        e = o.expr
        if o.jtype == "string":
            return CV(pr.conj([o.guard, f"isQuantity({e})"]), _approx(e), "number")
        if o.jtype != "any":
            return MISSING_CV
        ok = f"(type({e}) == string && isQuantity({e}) || {type_test(e, 'number')})"
        return CV(
            pr.conj([o.guard, ok]),
            f"(type({e}) == string ? {_approx(e)} : double({e}))",
            "number",
        )

    def v_Arith(self, n: ir.Arith) -> CV:
        a, b = self._plain(self.value(n.left)), self._plain(self.value(n.right))
        guards = [a.guard, b.guard, *self._is_number(a), *self._is_number(b)]
        if "missing" in (a.jtype, b.jtype) or "false" in guards:
            return MISSING_CV
        da, db = _double(a), _double(b)
        if n.op == "/":
            guards.append(f"{db} != 0.0")
        return CV(pr.conj(guards), f"({da} {n.op} {db})", "number")

    def _is_number(self, v: CV) -> list[str]:
        if v.jtype == "number":
            return []
        if v.jtype == "any":
            return [type_test(v.expr, "number")]
        return ["false"]

    def v_Default(self, n: ir.Default) -> CV:
        a, b = self._plain(self.value(n.operand)), self._plain(self.value(n.fallback))
        if a.jtype == "missing" or a.jtype == "null":
            return b
        if a.nonnull and a.opt is not None and b.jtype != "missing":
            ft = _merge(a.ftype, b.ftype)
            jt = ft.jtype if ft is not None else "any"
            if b.nonnull and b.opt is not None:  # both optional chains: or()
                opt = f"{a.opt}.or({b.opt})"
                return CV(f"{opt}.hasValue()", f"{opt}.value()", jt, ft, opt, nonnull=True)
            if b.guard == "true" and b.nonnull:
                same = a.jtype == b.jtype and a.jtype != "number"
                eb = b.expr if same else f"dyn({b.expr})"
                return CV("true", f"{a.opt}.orValue({eb})", jt if same else "any", ft, nonnull=True)
        use_a = pr.conj(
            [a.guard, f"{a.expr} != null" if a.jtype == "any" and not a.nonnull else "true"]
        )
        if use_a == "true":
            return a
        # numbers may be int on one side and double on the other: both dyn()
        same = a.jtype == b.jtype and a.jtype != "number"
        ea, eb = (a.expr, b.expr) if same else (f"dyn({a.expr})", f"dyn({b.expr})")
        if b.jtype == "missing":
            return CV(use_a, a.expr, a.jtype)
        return CV(
            pr.disj([use_a, b.guard]),
            f"({use_a} ? {ea} : {eb})",
            a.jtype if a.jtype == b.jtype else "any",
        )

    def v_Keys(self, n: ir.Keys) -> CV:
        o = self._plain(self.value(n.operand))
        if o.jtype not in ("any", "object"):
            return MISSING_CV
        guard = pr.conj([o.guard, type_test(o.expr, "object") if o.jtype == "any" else "true"])
        return CV(guard, o.expr, "keys")

    def _plain(self, v: CV) -> CV:
        """``v`` where only an ordinary value is allowed (not ``keys``)."""
        if v.jtype == "keys":
            raise self._unsupported(
                "keys() except as a collection (all/any/count/sum/in) or under length(): "
                "CEL iterates map keys in no defined order"
            )
        return v

    def _collection(self, node: ir.Value, hoist: bool = False) -> tuple[str, str]:
        """(guard: the collection is a list or key set, expression). ``hoist``:
        a missing collection may read as empty (``[]``); then a collection of
        the object alone becomes a named variable."""
        c = self.value(node)
        self._last_items = c.ftype.items() if c.ftype is not None else None
        if c.jtype == "array" and hoist and c.opt is not None and c.nonnull:
            return self._hoist(node, "true", f"{c.opt}.orValue([])")
        if c.jtype == "array":  # dyn(): items of a literal list get static types
            if hoist and c.guard != "true" and c.ftype is not None:
                return self._hoist(node, "true", f"{c.guard} ? {c.expr} : []")
            return self._hoist(node, c.guard, _dyn(c.expr)) if hoist else (c.guard, _dyn(c.expr))
        if c.jtype == "keys":
            return c.guard, c.expr
        if c.jtype != "any":
            return "false", "[]"
        guard = pr.conj([c.guard, type_test(c.expr, "array")])
        if hoist and _object_only(node) and len(c.expr) + len(guard) > 60:
            return self._hoist(node, "true", f"{guard} ? {c.expr} : []")
        return guard, c.expr

    def _hoist(self, node: ir.Value, guard: str, expr: str) -> tuple[str, str]:
        """A collection of the object alone as a policy variable, named after
        its last field (``variables.containers``)."""
        if guard != "true" or not _object_only(node) or len(expr) < 40:
            return guard, expr
        items = self._last_items
        name = self._vars.get(expr)
        if name is None:
            name = _unique(_var_name(node), self._var_names)
            self._vars[expr] = name
            self._var_names.add(name)
        self._last_items = items
        return "true", f"variables.{name}"

    def _hoist_value(self, node: ir.Value, expr: str, prefix: str) -> str:
        """An always-present value of the object alone (a sum, a count) as a
        policy variable: ``variables.totalContainers``."""
        if not _object_only(node) or len(expr) < 60:
            return expr
        name = self._vars.get(expr)
        if name is None:
            base = _var_name(node)
            name = _unique(prefix + base[:1].upper() + base[1:], self._var_names)
            self._vars[expr] = name
            self._var_names.add(name)
        return f"variables.{name}"

    def _bind(self, var: str) -> None:
        """Type the loop variable ``var`` as the items of the last collection."""
        self._scope[var] = self._last_items

    def v_Index(self, n: ir.Index) -> CV:
        b, k = self._plain(self.value(n.base)), self._plain(self.value(n.key))
        if b.jtype not in ("any", "object") or k.jtype not in ("any", "string"):
            return MISSING_CV
        guards = [b.guard, k.guard]
        if b.jtype == "any":
            guards.append(type_test(b.expr, "object"))
        if k.jtype == "any":
            guards.append(type_test(k.expr, "string"))
        base = pr.paren(b.expr)
        guards.append(f"{pr.paren(k.expr)} in {base}")
        # dyn(): an inlined table's items are statically typed (int != null fails to check)
        return CV(pr.conj(guards), f"dyn({base}[{k.expr}])", "any")

    def v_Filter(self, n: ir.Filter) -> CV:
        guard, coll = self._collection(n.collection)
        if guard == "false":
            return MISSING_CV
        self._bind(n.var)
        body = self.pred(n.body)
        return CV(guard, f"{pr.paren(coll)}.filter({n.var}, {body})", "array")

    def v_Objects(self, n: ir.Objects) -> CV:
        raise self._unsupported(
            "objects() (the inventory): an admission CEL expression sees one object"
        )

    def v_Count(self, n: ir.Count) -> CV:
        guard, coll = self._collection(n.collection, hoist=True)
        if guard == "false":
            return CV("true", "0", "number")
        self._bind(n.var)
        body = self.pred(n.body)
        e = f"size({pr.paren(coll)}.filter({n.var}, {body}))"
        e = e if guard == "true" else f"({guard} ? {e} : 0)"
        return CV("true", self._hoist_value(n, e, "count"), "number", nonnull=True)

    def v_Sum(self, n: ir.Sum) -> CV:
        guard, coll = self._collection(n.collection, hoist=True)
        if guard == "false":
            return CV("true", "0.0", "number")
        self._bind(n.var)
        t = self._plain(self.value(n.term))
        ok = pr.conj([t.guard, *self._is_number(t)])
        term = (
            "0.0"
            if ok == "false"
            else _double(t)
            if ok == "true"
            else f"({ok} ? {_double(t)} : 0.0)"
        )
        e = f"{pr.paren(coll)}.map({n.var}, {term}).sum()"
        e = e if guard == "true" else f"({guard} ? {e} : 0.0)"
        return CV("true", self._hoist_value(n, e, "total"), "number", nonnull=True)

    # --- predicates -------------------------------------------------------------------------

    def pred(self, node: ir.Pred) -> str:
        if not _has_path(node):
            return "true" if self._native.pred(node)({}) else "false"
        result: str = self.dispatch("p", node)
        return result

    def p_Compare(self, n: ir.Compare) -> str:
        a, b = self._plain(self.value(n.left)), self._plain(self.value(n.right))
        if "missing" in (a.jtype, b.jtype):
            return "false"
        if n.op in ("==", "!="):
            if n.op == "==" and _disjoint(a.jtype, b.jtype):
                return "false"
            # dyn(): CEL's checker refuses `==` between different static types
            ea, eb = _dyn(a.expr), _dyn(b.expr)
            return pr.conj([a.guard, b.guard, f"{ea} {n.op} {eb}"])
        # ordering: two numbers or two strings, else false
        kinds = {a.jtype, b.jtype} - {"any"}
        if len(kinds) > 1 or (kinds and kinds.pop() not in ("string", "number")):
            return "false"
        ta, tb = a.jtype, b.jtype
        if "string" in (ta, tb):
            guards = [type_test(v.expr, "string") for v in (a, b) if v.jtype == "any"]
            ea, eb = a.expr, b.expr
        elif "number" in (ta, tb):
            guards = [type_test(v.expr, "number") for v in (a, b) if v.jtype == "any"]
            ea, eb = _double(a), _double(b)
        else:
            ea, eb = a.expr, b.expr
            guards = [
                f"({type_test(ea, 'string')} && {type_test(eb, 'string')} || "
                f"{type_test(ea, 'number')} && {type_test(eb, 'number')})"
            ]
        return pr.conj([a.guard, b.guard, *guards, f"{pr.paren(ea)} {n.op} {pr.paren(eb)}"])

    def p_And(self, n: ir.And) -> str:
        return pr.conj([self.pred(i) for i in n.items])

    def p_Or(self, n: ir.Or) -> str:
        return pr.disj([self.pred(i) for i in n.items])

    def p_Not(self, n: ir.Not) -> str:
        return pr.neg(self.pred(n.item))

    def p_Exists(self, n: ir.Exists) -> str:
        v = self._plain(self.value(n.operand))
        if v.jtype in ("missing", "null"):
            return "false"
        if v.nonnull:
            return v.guard
        return pr.conj([v.guard, f"{pr.paren(v.expr)} != null" if v.jtype == "any" else "true"])

    def p_IsType(self, n: ir.IsType) -> str:
        v = self._plain(self.value(n.operand))
        if v.jtype == "missing":
            return "false"
        if v.jtype != "any":
            return pr.conj([v.guard, "true" if v.jtype == n.type_name else "false"])
        return pr.conj([v.guard, type_test(v.expr, n.type_name)])

    def _string_guard(self, v: CV) -> list[str]:
        if v.jtype == "string":
            return [v.guard]
        if v.jtype == "any":
            return [v.guard, type_test(v.expr, "string")]
        return ["false"]

    def p_Matches(self, n: ir.Matches) -> str:
        if _has_path(n.pattern):
            raise self._unsupported("a regex that is not a constant or parameter")
        pattern = self._native.value(n.pattern)({})
        if not isinstance(pattern, str):
            return "false"
        s = self._plain(self.value(n.subject))
        return pr.conj(
            [*self._string_guard(s), f"{pr.paren(s.expr)}.matches({pr.string(pattern)})"]
        )

    def p_StrOp(self, n: ir.StrOp) -> str:
        s, a = self._plain(self.value(n.subject)), self._plain(self.value(n.arg))
        fn = {"startswith": "startsWith", "endswith": "endsWith", "contains": "contains"}[n.op]
        return pr.conj(
            [*self._string_guard(s), *self._string_guard(a), f"{pr.paren(s.expr)}.{fn}({a.expr})"]
        )

    def p_In(self, n: ir.In) -> str:
        e = self._plain(self.value(n.element))
        if e.jtype == "missing":
            return "false"
        c = self.value(n.collection)
        if c.jtype == "keys":
            return pr.conj([c.guard, *self._string_guard(e), f"{e.expr} in {c.expr}"])
        guard, coll = self._collection(n.collection, hoist=True)
        return pr.conj([e.guard, guard, f"{pr.paren(e.expr)} in {pr.paren(coll)}"])

    def p_Quantifier(self, n: ir.Quantifier) -> str:
        guard, coll = self._collection(n.collection, hoist=True)
        self._bind(n.var)
        body = self.pred(n.body)
        macro = "all" if n.kind == "all" else "exists"
        call = f"{pr.paren(coll)}.{macro}({n.var}, {body})"
        if n.kind == "all":
            return pr.disj([pr.neg(guard), call])
        return pr.conj([guard, call])

    # --- messages -------------------------------------------------------------------------

    def _message_part(self, node: ir.Value) -> str:
        """An interpolated value as a ``dyn`` list item: the value, or ``null``
        (which renders as nothing) when it is missing."""
        self._text_part = False
        if not _has_path(node):  # known at build time: render it now
            return pr.string(render_value(self._native.value(node)({})))
        v = self._plain(self.value(node))
        if v.jtype in ("missing", "null"):
            return "''"
        self._text_part = v.jtype == "string" and v.nonnull
        if self._text_part:  # typed: text as it is, '' when absent
            if v.opt is not None:
                return f"{v.opt}.orValue('')"
            return v.expr if v.guard == "true" else f"({v.guard} ? {v.expr} : '')"
        if v.guard == "true":
            return f"dyn({v.expr})"
        return f"({v.guard} ? dyn({v.expr}) : null)"

    def message(self, rule: Rule) -> str:
        """The message as CEL: literal text and values in one list, rendered by
        one copy of the renderer (``[...].map(_v, render).join('')``)."""
        parts: list[str] = []
        text: set[str] = set()  # parts known to be strings
        for p in rule.message.parts:
            part = pr.string(p) if isinstance(p, str) else self._message_part(p)
            if not isinstance(p, str) and self._text_part:
                text.add(part)
            if parts and _is_str_lit(part) and _is_str_lit(parts[-1]):
                part = pr.string(pr.unquote(parts.pop()) + pr.unquote(part))
            parts.append(part)
        parts = [p for p in parts if p != "''"]
        if not parts:
            return "''"
        if all(_is_str_lit(p) for p in parts):
            return parts[0] if len(parts) == 1 else pr.string("".join(pr.unquote(p) for p in parts))
        if all(_is_str_lit(p) or p in text for p in parts):
            return " + ".join(parts)  # every part is text: concatenate
        items = ", ".join(p if p.startswith(("dyn(", "(")) else f"dyn({p})" for p in parts)
        return f"[{items}].map(_v, {render_any('_v')}).join('')"

    # --- selectors and rules ----------------------------------------------------------------

    def compile_rule(self, rule: Rule) -> CelRule:
        compiled = self._compile_rule(rule)
        self._check_depth(compiled)
        return compiled

    def _check_depth(self, compiled: CelRule) -> None:
        """cel-cpp's parser refuses expressions nested deeper than 32 levels
        (measured; docs/engines.md): refuse them here, naming the rule, rather
        than ship what the local engine cannot check."""
        for expr in (compiled.violation, compiled.message, compiled.items or "true"):
            if len(expr) > CEL_MAX_CODEPOINTS:
                raise self._unsupported(
                    f"an expression of {len(expr)} characters (cel-cpp parses at most "
                    f"{CEL_MAX_CODEPOINTS}): split the rule or shorten its paths",
                    compiled.rule,
                )
            depth = pr.max_depth(expr)
            if depth > CEL_MAX_DEPTH:
                raise self._unsupported(
                    f"an expression nested {depth} levels deep (cel-cpp parses at most "
                    f"{CEL_MAX_DEPTH}): split the rule or simplify its arithmetic",
                    compiled.rule,
                )

    def _compile_rule(self, rule: Rule) -> CelRule:
        self._rule = rule
        self._vars, self._var_names, self._scope = {}, set(), {}
        sel = rule.selector
        self._object_type = None if sel.source == "backstage" else of_kinds(sel.kinds)
        if self._object_type is None and _kubernetes_only(sel):
            self._object_type = kubernetes_object()
        try:
            static = rule.message.text
            match = selector_expr(rule.selector)
            if rule.each is None:
                cond = self.pred(rule.condition)
                msg = self.message(rule)
                return CelRule(
                    rule, self.pack.name, match, cond, msg, static, variables=self._variables()
                )
            guard, coll = self._collection(rule.each.collection, hoist=True)
            self._bind(rule.each.var)
            cond = self.pred(rule.condition)
            msg = self.message(rule)
            var, c = rule.each.var, pr.paren(coll)
            if guard == "false" or cond == "false":
                return CelRule(rule, self.pack.name, match, "false", "''", static, "[]")
            items = f"{c}.map({var}, {cond} ? [{msg}] : [])"
            if guard == "true" and coll.startswith("variables."):
                name = _unique(
                    "failing"
                    + coll[len("variables.") :][:1].upper()
                    + coll[len("variables.") + 1 :],
                    self._var_names,
                )
                self._vars[f"{c}.filter({var}, {cond})"] = name
                self._var_names.add(name)
                failing = f"variables.{name}"
                return CelRule(
                    rule,
                    self.pack.name,
                    match,
                    f"size({failing}) > 0",
                    f"{failing}.map({var}, {msg}).join({pr.string(MSG_SEPARATOR)})",
                    static,
                    items,
                    self._variables(),
                )
            violation = pr.conj([guard, f"{c}.exists({var}, {cond})"])
            joined = f"{c}.filter({var}, {cond}).map({var}, {msg}).join({pr.string(MSG_SEPARATOR)})"
            if guard != "true":
                joined = f"({guard} ? {joined} : '')"
                items = f"({guard} ? {items} : [])"
            return CelRule(
                rule, self.pack.name, match, violation, joined, static, items, self._variables()
            )
        finally:
            self._rule = None

    def _variables(self) -> tuple[tuple[str, str], ...]:
        return tuple((name, expr) for expr, name in self._vars.items())

    def compile(self) -> list[CelRule]:
        return [self.compile_rule(r) for r in self.pack.rules]


def _kubernetes_only(sel: Selector) -> bool:
    """Whether a rule sees Kubernetes objects only (never a Backstage entity)."""
    from policykit.targets.k8s.kinds import lookup

    if sel.source == "kubernetes":
        return True
    return bool(sel.kinds) and sel.source is None and all(lookup(k) for k in sel.kinds)


def _opt_chain(base: str, keys: Sequence[str]) -> str:
    """``base.?a.?b``: optional selection of declared fields (``base[?'x-y']``
    for a key that is not an identifier)."""
    out = base
    for k in keys:
        out += f".?{k}" if pr.is_field_name(k) else f"[?{pr.string(k)}]"
    return out


def _merge(a: FieldType | None, b: FieldType | None) -> FieldType | None:
    if a is None or b is None:
        return None
    return FieldType(a.specs | b.specs, {**b.defs, **a.defs})


def _object_only(node: ir.Node) -> bool:
    """Whether ``node`` reads the object alone: no loop variable bound outside
    it, no inventory (a policy variable sees ``object``, not a comprehension's
    variables)."""
    walked = ir.walk(node)
    bound = {n.var for n in walked if isinstance(n, (ir.Count, ir.Sum, ir.Filter, ir.Quantifier))}
    paths = [n for n in walked if isinstance(n, ir.Path)]
    return (
        any(p.root == ir.OBJECT_ROOT for p in paths)
        and all(p.root == ir.OBJECT_ROOT or p.root in bound for p in paths)
        and not any(isinstance(n, ir.Objects) for n in walked)
    )


def _var_name(node: ir.Node) -> str:
    """A variable's name: the last field of the node's first path."""
    for n in ir.walk(node):
        if isinstance(n, ir.Path):
            names = [s for s in n.segments if isinstance(s, str) and pr.is_field_name(s)]
            if names:
                return names[-1]
    return "items"


def _unique(name: str, taken: set[str]) -> str:
    out, i = name, 2
    while out in taken:
        out, i = f"{name}{i}", i + 1
    return out


def _is_str_lit(e: str) -> bool:
    return len(e) >= 2 and e[0] == "'" and pr.matching_quote(e) == len(e) - 1


def _has_path(node: ir.Node) -> bool:
    return any(isinstance(n, (ir.Path, ir.Objects)) for n in ir.walk(node))


_SELECT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])*$")


def _dyn(e: str) -> str:
    """``e`` for a plain field selection (already dynamic), else ``dyn(e)``."""
    return e if _SELECT.fullmatch(e) else f"dyn({e})"


def _disjoint(t1: str, t2: str) -> bool:
    return "any" not in (t1, t2) and t1 != t2


def _approx(e: str) -> str:
    return f"quantity({e}).asApproximateFloat()"


def _double(v: CV) -> str:
    if v.jtype == "number" and v.expr.lstrip("-").replace(".", "", 1).isdigit():
        return v.expr if "." in v.expr or "e" in v.expr else v.expr + ".0"
    return f"double({v.expr})"


# --- message rendering (docs/semantics.md, "Messages") ---------------------------------------


_STRIP_ZEROS = "('1' + {s}).replace('0', ' ').trim().replace(' ', '0').substring(1)"


def render_number(x: str) -> str:
    """CEL text rendering the double ``x``: integral values
    as integers; others rounded half up to six decimals, trailing zeros removed.
    Kept shallow: cel-cpp refuses expressions nested deeper than 32."""
    frac = _STRIP_ZEROS.format(s="string(1000000 + _n % 1000000).substring(1)")
    return (
        f"({x} <= -9.0e18 || {x} >= 9.0e18 ? string({x}) : "
        f"{x} == double(int({x})) ? string(int({x})) : "
        f"cel.bind(_n, int(({x} < 0.0 ? -{x} : {x}) * 1000000.0 + 0.5), "
        f"[{x} < 0.0 && _n != 0 ? '-' : '', string(_n / 1000000), "
        f"_n % 1000000 == 0 ? '' : '.' + {frac}].join('')))"
    )


def _render_list(v: str) -> str:
    item = (
        "type(_i) == list ? '<list>' : type(_i) == map ? '<object>' : type(_i) == null_type ? '' : "
        f"type(_i) == string ? _i : type(_i) == double ? {render_number('_i')} : string(_i)"
    )
    return f"'[' + {v}.map(_i, {item}).join(', ') + ']'"


def render_any(v: str) -> str:
    return (
        f"type({v}) == string ? {v} : type({v}) == list ? {_render_list(v)} : "
        f"type({v}) == map ? '<object>' : {v} == null ? '' : "
        f"type({v}) == double ? {render_number(v)} : string({v})"
    )


# --- selectors -------------------------------------------------------------------------------

_API_VERSION = "object.apiVersion"
_HAS_API = f"has({_API_VERSION}) && type({_API_VERSION}) == string"
IS_BACKSTAGE = (
    f"({_HAS_API} && {_API_VERSION}.contains('/') && "
    f"cel.bind(_g, {_API_VERSION}.split('/')[0], "
    "_g == 'backstage.io' || _g.endsWith('.backstage.io')))"
)
_NS = "object.metadata.namespace"
_HAS_NS = (
    f"has(object.metadata) && type(object.metadata) == map && has({_NS}) && type({_NS}) == string"
)


def _glob(patterns: Sequence[str], e: str) -> str:
    out = []
    for p in patterns:
        if p.endswith("*"):
            out.append(f"{e}.startsWith({pr.string(p[:-1])})")
        else:
            out.append(f"{e} == {pr.string(p)}")
    return pr.disj(out)


def _glob_static(patterns: Sequence[str], value: str) -> bool:
    return any(value.startswith(p[:-1]) if p.endswith("*") else p == value for p in patterns)


def selector_expr(sel: Selector) -> str:
    """The selector as a CEL condition over ``object`` (docs/semantics.md, "Selectors")."""
    out: list[str] = []
    if sel.source == "backstage":
        out.append(IS_BACKSTAGE)
    elif sel.source == "kubernetes":
        out.append(pr.neg(IS_BACKSTAGE))
    if sel.kinds:
        out.append(f"has(object.kind) && object.kind in {pr.literal(list(sel.kinds))}")
    if sel.api_versions:
        alts = []
        for p in sel.api_versions:
            if p.endswith("/*"):
                alts.append(f"{_API_VERSION}.startsWith({pr.string(p[:-1])})")
            else:
                alts.append(f"{_API_VERSION} == {pr.string(p)}")
        out.append(pr.conj([_HAS_API, f"({pr.disj(alts)})"]))
    if sel.namespaces:
        default_in = _glob_static(sel.namespaces, "default")
        out.append(
            f"({_HAS_NS} ? ({_glob(sel.namespaces, _NS)}) : "
            f"{IS_BACKSTAGE if default_in else 'false'})"
        )
    if sel.exclude_namespaces:
        default_out = _glob_static(sel.exclude_namespaces, "default")
        excluded = (
            f"({_HAS_NS} ? ({_glob(sel.exclude_namespaces, _NS)}) : "
            f"{IS_BACKSTAGE if default_out else 'false'})"
        )
        out.append(pr.neg(excluded))
    for k, v in sel.labels:
        labels = "object.metadata.labels"
        out.append(
            "has(object.metadata) && type(object.metadata) == map && has(object.metadata.labels) "
            f"&& type({labels}) == map && {pr.has(labels, k)} && "
            f"{pr.select(labels, k)} == {pr.string(v)}"
        )
    if sel.entity_types:
        out.append(
            "has(object.spec) && type(object.spec) == map && has(object.spec.type) && "
            f"object.spec.type in {pr.literal(list(sel.entity_types))}"
        )
    return pr.conj([f"({x})" if "||" in x else x for x in out])


def compile_pack(pack: Pack, params: Mapping[str, Any]) -> list[CelRule]:
    """Every rule of ``pack`` in CEL, with ``params`` (the effective values) inlined."""
    return CelCompiler(pack, params).compile()
