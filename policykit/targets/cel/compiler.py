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
* text is written once: a large value of the object alone is a named policy
  variable; sums of one per-item term share it (:mod:`share`); the quantity
  conversions of one arithmetic expression share one conversion (:mod:`batch`).

The printed expression is what ships in the manifests and what the local CEL
engine (``policykit.engines.cel``) evaluates — there is no second copy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policykit.ir import nodes as ir
from policykit.ir.rule import Pack, Rule
from policykit.targets.cel import printer as pr
from policykit.targets.cel.cv import (
    CEL_MAX_CODEPOINTS,
    CEL_MAX_DEPTH,
    CV,
    MSG_SEPARATOR,
    disjoint,
    double,
    dyn,
    is_str_lit,
    type_test,
    unique,
)
from policykit.targets.cel.render import render_any, render_number
from policykit.targets.cel.selectors import IS_BACKSTAGE, kubernetes_only, selector_expr
from policykit.targets.cel.share import SharedSums
from policykit.targets.cel.values import ValueCompiler
from policykit.targets.k8s.fieldtypes import kubernetes_object, of_kinds
from policykit.values import render as render_value

__all__ = [
    "CEL_MAX_CODEPOINTS",
    "CEL_MAX_DEPTH",
    "IS_BACKSTAGE",
    "MSG_SEPARATOR",
    "CelCompiler",
    "CelRule",
    "compile_pack",
    "render_any",
    "render_number",
    "selector_expr",
]


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


class CelCompiler(ValueCompiler):
    """Compiles the rules of one pack with its parameter values inlined."""

    # --- predicates -------------------------------------------------------------------------

    def pred(self, node: ir.Pred) -> str:
        if self._fold.is_constant(node):
            return "true" if self._fold.pred(node) else "false"
        result: str = self.dispatch("p", node)
        return result

    def p_Compare(self, n: ir.Compare) -> str:
        a, b = self._plain(self.value(n.left)), self._plain(self.value(n.right))
        if "missing" in (a.jtype, b.jtype):
            return "false"
        if n.op in ("==", "!="):
            if n.op == "==" and disjoint(a.jtype, b.jtype):
                return "false"
            # dyn(): CEL's checker refuses `==` between different static types
            ea, eb = dyn(a.expr), dyn(b.expr)
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
            ea, eb = double(a), double(b)
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
        if not self._fold.is_constant(n.pattern):
            raise self._unsupported("a regex that is not a constant or parameter")
        pattern = self._fold.value(n.pattern)
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
        if self._fold.is_constant(node):  # known at build time: render it now
            return pr.string(render_value(self._fold.value(node)))
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
            if parts and is_str_lit(part) and is_str_lit(parts[-1]):
                part = pr.string(pr.unquote(parts.pop()) + pr.unquote(part))
            parts.append(part)
        parts = [p for p in parts if p != "''"]
        if not parts:
            return "''"
        if all(is_str_lit(p) for p in parts):
            return parts[0] if len(parts) == 1 else pr.string("".join(pr.unquote(p) for p in parts))
        if all(is_str_lit(p) or p in text for p in parts):
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
        self._sums = SharedSums()
        cr = self._compile_texts(rule)
        variables, rewrite = self._sums.resolve(list(cr.variables), set(self._var_names))
        return dataclasses.replace(
            cr,
            violation=rewrite(cr.violation),
            message=rewrite(cr.message),
            items=None if cr.items is None else rewrite(cr.items),
            variables=tuple(variables),
        )

    def _compile_texts(self, rule: Rule) -> CelRule:
        """The rule's texts, sums written as placeholders (:mod:`share`)."""
        self._rule = rule
        self._vars, self._var_names, self._scope = {}, set(), {}
        sel = rule.selector
        self._object_type = None if sel.source == "backstage" else of_kinds(sel.kinds)
        if self._object_type is None and kubernetes_only(sel):
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
                name = unique(
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


def compile_pack(pack: Pack, params: Mapping[str, Any], target: str | None = None) -> list[CelRule]:
    """Every rule of ``pack`` in CEL, with ``params`` (the effective values)
    inlined; errors name ``target`` (``kyverno``, ``vap``; default ``cel``)."""
    return CelCompiler(pack, params, target).compile()
