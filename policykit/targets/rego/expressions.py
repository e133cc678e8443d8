"""Values: ``v_<Node>`` returns (guard statements, term, semantic type).

A missing value is Rego's *undefined*: a term over it makes every statement
that uses it fail. Defaults, aggregates and filters are helper functions with
an ``else``, so they are always defined.
"""

from __future__ import annotations

from policykit.ir import nodes as ir
from policykit.ir.joins import grouped_of, join_of
from policykit.targets.rego import naming
from policykit.targets.rego import printer as pr
from policykit.targets.rego.core import (
    INVENTORY_RULE,
    LIB_QUANTITY,
    LIB_VALUES,
    MISSING_VAL,
    OBJ,
    Stmts,
    Val,
    is_number_value,
    operand,
)
from policykit.targets.rego.fold import constant_value, is_constant
from policykit.targets.rego.joins import JoinCompiler


class ExpressionCompiler(JoinCompiler):
    """``v_<Node>`` for every value node."""

    def v_Path(self, n: ir.Path) -> Val:
        base = OBJ if n.root == ir.OBJECT_ROOT else self.bound(n.root)
        return [], pr.ref(base, n.segments), "any"

    def v_Literal(self, n: ir.Literal) -> Val:
        return self._constant(list(n.value) if isinstance(n.value, tuple) else n.value)

    def v_Param(self, n: ir.Param) -> Val:
        return [], pr.ref(self.opts.params(self.pack.name), [n.name]), "any"

    def v_Length(self, n: ir.Length) -> Val:
        s, t, ty = self.value(n.operand)
        if ty not in ("any", "string", "array", "object"):
            return MISSING_VAL
        return s, f"{self.use(LIB_VALUES)}.length({t})", "number"

    def v_Keys(self, n: ir.Keys) -> Val:
        s, t, ty = self.value(n.operand)
        if ty not in ("any", "object"):
            return MISSING_VAL
        return s, f"{self.use(LIB_VALUES)}.keys({t})", "array"

    def v_Quantity(self, n: ir.Quantity) -> Val:
        s, t, ty = self.value(n.operand)
        if ty not in ("any", "string", "number"):
            return MISSING_VAL
        return s, f"{self.use(LIB_QUANTITY)}.parse({t})", "number"

    def v_Arith(self, n: ir.Arith) -> Val:
        sa, a, ta = self.value(n.left)
        sb, b, tb = self.value(n.right)
        if ta not in ("any", "number") or tb not in ("any", "number"):
            return MISSING_VAL
        ga, a = self._number(n.left, a)
        gb, b = self._number(n.right, b)
        guards = [*ga, *gb]
        if n.op == "/" and not (is_constant(n.right) and constant_value(n.right) != 0):
            guards += self._infix(b, "!=", "0", "divisor")
        # as opa fmt writes it: parentheses only around an infix operand of an infix
        return [*sa, *sb, *guards], f"{operand(n.left, a)} {n.op} {operand(n.right, b)}", "number"

    def _number(self, node: ir.Value, term: str) -> tuple[Stmts, str]:
        """Guards that ``term`` (an operand of arithmetic) is a number, and the
        term to use after them. Another arithmetic value is one whenever it is
        defined, and so is a numeric constant: no guard. Anything else is bound
        once to a local, guarded, then used by name: regopy does not cache a
        helper's result, and a term written twice is computed twice. The local
        is as defined as the term: the guard needed the term defined anyway."""
        if isinstance(node, ir.Arith) or (is_constant(node) and is_number_value(term)):
            return [], term
        bind, v = self.bound_once(node, term)
        return [*bind, f"is_number({v})"], v

    def v_Default(self, n: ir.Default) -> Val:
        fallback, self._fallback_next = self._fallback_next, False
        sa, a, ta = self.value(n.operand)
        self._fallback_next = isinstance(n.fallback, ir.Default)
        sb, b, tb = self.value(n.fallback)
        self._fallback_next = False
        if ta in ("missing", "null"):
            return sb, b, tb
        if ta != "any" and is_constant(n.operand):  # a present, non-null constant
            return sa, a, ta
        names = naming.value_names(n)
        if fallback and len(names) > 1:  # a fallback's fallback: the chain's name is the first's
            names = names[1:]
        name = self.helper_name(names, [n])
        params, args = self._signature(self._free([n]))
        v = self.local(*names)
        lines = [f"{name}({params}) := {v} if {{", *pr.indent([*sa, f"{v} := {a}", f"{v} != null"])]
        if sb:
            fb = self.local(*naming.value_names(n.fallback))
            lines += ["} else := " + fb + " if {", *pr.indent([*sb, f"{fb} := {b}"]), "}"]
        else:
            lines += ["} else := " + b]
        self.add_helper(lines)
        if ta == tb:
            return [], f"{name}({args})", ta
        # OPA types the helper as the union of both branches (e.g. any<null,
        # number>) and refuses comparing it with a third type: erase it to any
        return [], f"{self.use(LIB_VALUES)}.erase({name}({args}))", "any"

    def v_Index(self, n: ir.Index) -> Val:
        sb, b, tb = self.value(n.base)
        sk, k, tk = self.value(n.key)
        if tb not in ("any", "object") or tk not in ("any", "string"):
            return MISSING_VAL
        # named first: a call's result cannot be indexed in place
        nb, vb = self._named(b, naming.value_names(n.base))
        nk, vk = self._named(k, [*naming.value_names(n.key), "key"])
        v = self.local(*naming.value_names(n), "value")
        guards = [*nb, *nk, f"is_object({vb})", f"is_string({vk})"]
        return [*sb, *sk, *guards, f"{v} := {vb}[{vk}]"], v, "any"

    def _named(self, term: str, names: list[str]) -> tuple[list[str], str]:
        """``term`` as a variable: itself when it is one already."""
        if naming.is_local(term):
            return [], term
        v = self.local(*names)
        return [f"{v} := {term}"], v

    def v_Filter(self, n: ir.Filter) -> Val:
        join = join_of(n) if self.index_joins else None
        if join is not None:
            looked_up = self._join_filter(n, join)
            if looked_up is not None:
                return looked_up
        sc, tc, ty = self.value(n.collection)
        if ty not in ("any", "array"):
            return MISSING_VAL
        name = self.helper_name(naming.value_names(n), [n])
        params, args = self._signature(self._free([n]))
        c = self.local(*naming.value_names(n.collection))
        result = self.local("matching")
        var = self.bound(n.var)
        self._scope.append(n.var)
        body = self.pred(n.body)
        self._scope.pop()
        self.add_helper(
            [
                f"{name}({params}) := {result} if {{",
                *pr.indent([*sc, f"{c} := {tc}", f"is_array({c})", f"{result} := [{var} |"]),
                *pr.indent([f"some {var} in {c}", *body], 2),
                "\t]",
                "}",
            ]
        )
        # "array", not "any": OPA's type checker knows and refuses e.g. regex.match on it
        return [], f"{name}({args})", "array"

    def v_Objects(self, n: ir.Objects) -> Val:
        self.uses_inventory = True
        return [], f"{self.use(LIB_VALUES)}.others({INVENTORY_RULE}, {OBJ})", "array"

    def v_Count(self, n: ir.Count) -> Val:
        grouped = grouped_of(n) if self.index_joins else None
        if grouped is not None:
            looked_up = self._grouped(n, grouped)
            if looked_up is not None:
                return looked_up
        return self._aggregate("count", n, lambda: self._aggregate_body(n))

    def v_Sum(self, n: ir.Sum) -> Val:
        grouped = grouped_of(n) if self.index_joins else None
        if grouped is not None:
            looked_up = self._grouped(n, grouped)
            if looked_up is not None:
                return looked_up
        return self._aggregate("sum", n, lambda: self._aggregate_body(n))
