"""Conditions: ``p_<Node>`` returns the statements that all hold exactly when
the condition does.

Negation, disjunction and quantifiers go through helper functions whose
arguments are always-defined variables: OPA hoists an undefined ref out of a
negated call (``not f(x.missing)`` is false in OPA, true in regopy). Type
guards (``is_string``, ``is_number``, ``is_array``) make every built-in see the
types the reference engine requires, so no built-in errors.
"""

from __future__ import annotations

from policykit.ir import nodes as ir
from policykit.targets.rego import naming
from policykit.targets.rego import printer as pr
from policykit.targets.rego.core import LIB_VALUES, Stmts, operand
from policykit.targets.rego.expressions import ExpressionCompiler

_ORDER_FN = {"<": "less", "<=": "less_eq", ">": "greater", ">=": "greater_eq"}
_TYPE_FN = {
    "string": "is_string",
    "number": "is_number",
    "boolean": "is_boolean",
    "array": "is_array",
    "object": "is_object",
    "null": "is_null",
}


def _unnarrowed(side: ir.Value, term: str, other: str) -> str:
    """``term`` as one side of ``==``, written so that OPA's type checker does not
    narrow a bare variable to the other side's type. OPA rewrites ``==`` into
    unification (ast/compile.go, rewriteEquals) and the checker then types a
    function's argument by it: in ``f(x) if { x == null; x.a == 1 }`` it has
    ``x`` as null and rejects ``x.a`` ("undefined ref: x.a, have: null"),
    taking the whole module down. ``[x][0]`` is ``x`` and is not narrowed."""
    if isinstance(side, ir.Path) and not side.segments and other != "any":
        return f"[{term}][0]"
    return term


class PredicateCompiler(ExpressionCompiler):
    """``p_<Node>`` for every condition node."""

    def p_Compare(self, n: ir.Compare) -> Stmts:
        sa, a, ta = self.value(n.left)
        sb, b, tb = self.value(n.right)
        if "missing" in (ta, tb):
            return ["false"]
        known_differ = ta != "any" and tb != "any" and ta != tb
        if n.op == "==":
            if known_differ:
                return ["false"]
            return [
                *sa,
                *sb,
                *self._infix(_unnarrowed(n.left, a, tb), "==", _unnarrowed(n.right, b, ta)),
            ]
        if n.op == "!=":
            if known_differ:  # present and of different types: unequal
                # named, not `_ = …`: regopy unifies every `_` of a body into one
                # variable ("Unable to unify due to cycle", docs/engines.md)
                va = self.local(*naming.value_names(n.left))
                vb = self.local(*naming.value_names(n.right))
                return [*sa, *sb, f"{va} := {a}", f"{vb} := {b}"]
            return [*sa, *sb, *self._infix(a, "!=", b)]
        ordered = ("any", "number", "string")
        if ta not in ordered or tb not in ordered or known_differ:
            return ["false"]
        if ta != "any" or tb != "any":
            typ = ta if ta != "any" else tb
            if ta != "any":
                bind, b = self.bound_once(n.right, b)
                other = b
            else:
                bind, a = self.bound_once(n.left, a)
                other = a
            return [*sa, *sb, *bind, f"is_{typ}({other})", *self._infix(a, n.op, b)]
        return [*sa, *sb, f"{self.use(LIB_VALUES)}.{_ORDER_FN[n.op]}({a}, {b})"]

    def p_And(self, n: ir.And) -> Stmts:
        out: Stmts = []
        for item in n.items:
            out.extend(self.pred(item))
        return out or ["true"]

    def p_Or(self, n: ir.Or) -> Stmts:
        if not n.items:
            return ["false"]
        bodies = [self.pred(i) for i in n.items]
        return [self.helper_pred(naming.pred_names(n), bodies, [n])]

    def p_Not(self, n: ir.Not) -> Stmts:
        body = self.pred(n.item)
        return [f"not {self.helper_pred(naming.pred_names(n.item), [body], [n])}"]

    def p_Exists(self, n: ir.Exists) -> Stmts:
        s, t, ty = self.value(n.operand)
        if ty in ("missing", "null"):
            return ["false"]
        return [*s, *self._infix(t, "!=", "null", "value")]

    def p_IsType(self, n: ir.IsType) -> Stmts:
        s, t, ty = self.value(n.operand)
        if ty == "missing" or (ty != "any" and ty != n.type_name):
            return ["false"]
        return [*s, f"{_TYPE_FN[n.type_name]}({t})"]

    def p_Matches(self, n: ir.Matches) -> Stmts:
        s, t, ty = self.value(n.subject)
        sp: Stmts = []
        if isinstance(n.pattern, ir.Literal) and isinstance(n.pattern.value, str):
            p = pr.regex(n.pattern.value)
        else:  # a parameter: through values.pattern (see rego/policykit/lib/values.rego)
            sp, pv, _ = self.value(n.pattern)
            p = f"{self.use(LIB_VALUES)}.pattern({pv})"
        if ty not in ("any", "string"):
            return ["false"]
        bind, t = self.bound_once(n.subject, t)
        return [*s, *sp, *bind, f"is_string({t})", f"regex.match({p}, {t})"]

    def p_StrOp(self, n: ir.StrOp) -> Stmts:
        sa, a, ta = self.value(n.subject)
        sb, b, tb = self.value(n.arg)
        if ta not in ("any", "string") or tb not in ("any", "string"):
            return ["false"]
        ba, a = self.bound_once(n.subject, a)
        bb, b = self.bound_once(n.arg, b)
        guards = [f"is_string({a})", f"is_string({b})"]
        return [*sa, *sb, *ba, *bb, *guards, f"{n.op}({a}, {b})"]

    def p_In(self, n: ir.In) -> Stmts:
        se, e, te = self.value(n.element)
        sc, c, tc = self.value(n.collection)
        if te == "missing" or tc not in ("any", "array"):
            return ["false"]
        elem = operand(n.element, e)
        if elem.startswith(("(", "-")):  # see _infix
            t = self.local(*naming.value_names(n.element))
            return [*se, *sc, f"is_array({c})", f"{t} := {elem}", f"{t} in {c}"]
        return [*se, *sc, f"is_array({c})", f"{elem} in {c}"]

    def p_Quantifier(self, n: ir.Quantifier) -> Stmts:
        coll = self._collection(n.collection, n.var)
        if coll is None:  # never a list: all is vacuously true, any is false
            return ["true"] if n.kind == "all" else ["false"]
        self._scope.append(n.var)
        body = self.pred(n.body)
        if n.kind == "all":  # all = no counterexample
            body = [f"not {self.helper_pred(naming.pred_names(n.body), [body], [n.body])}"]
        self._scope.pop()
        call = self.helper_pred(naming.pred_names(n), [[*coll, *body]], [n])
        return [call] if n.kind == "any" else [f"not {call}"]
