"""IR values → CEL: paths (typed or guarded), arithmetic, quantities,
defaults, indexing, collections; and the policy ``variables:`` they share.

The base of :class:`policykit.targets.cel.compiler.CelCompiler`, which adds
predicates, messages and rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policykit.ir import nodes as ir
from policykit.ir.passes import Folder
from policykit.ir.rule import Pack, Rule
from policykit.targets.base import Compiler, UnsupportedError
from policykit.targets.cel import printer as pr
from policykit.targets.cel.batch import Batch, quantity_parts
from policykit.targets.cel.cv import (
    CEL_MAX_CODEPOINTS,
    CV,
    HOIST_SIZE,
    MISSING_CV,
    approx,
    double,
    dyn,
    is_number_literal,
    merge,
    object_only,
    opt_chain,
    type_test,
    unique,
    var_name,
)
from policykit.targets.cel.share import SharedSums
from policykit.targets.k8s.fieldtypes import FieldType
from policykit.values import MISSING, json_type

# an untyped path through more maps than this is refused (PK200): each step is
# a policy variable; real objects nest far less (a pod template's container
# field is 6 deep)
MAX_MAP_STEPS = 64


class ValueCompiler(Compiler):
    """Compiles values; :meth:`pred` (predicates) comes from the subclass."""

    target = "cel"

    def __init__(self, pack: Pack, params: Mapping[str, Any], target: str | None = None) -> None:
        """``target``: the admission target served (``kyverno``, ``vap``),
        named in error messages; None: the shared CEL compiler (``cel``)."""
        super().__init__()
        if target is not None:
            self.target = target
        self.pack = pack
        self.params = dict(params)
        self._fold = Folder(self.params)  # constants, with parameters inlined
        self._rule: Rule | None = None
        self._object_type: FieldType | None = None
        self._scope: dict[str, FieldType | None] = {}
        self._vars: dict[str, str] = {}  # expression -> name
        self._sums = SharedSums()
        self._batch = Batch()
        self._var_names: set[str] = set()
        self._last_items: FieldType | None = None
        self._text_part = False

    def _unsupported(self, what: str, rule: Rule | None = None) -> UnsupportedError:
        rule = rule or self._rule
        where = f"rule {rule.id}: " if rule else ""
        return UnsupportedError(
            f"{where}target {self.target} cannot express {what}",
            loc=rule.loc if rule else None,
            hint="the Rego targets (rego, gatekeeper) can; see docs/targets.md",
        )

    # --- values -----------------------------------------------------------------

    def value(self, node: ir.Value) -> CV:
        return self._value(node, batch=False)

    def _value(self, node: ir.Value, batch: bool) -> CV:
        """``batch``: an operand of arithmetic, whose quantity conversions
        may stay pending (:mod:`batch`); else they are written out here."""
        if self._fold.is_constant(node):
            return self._constant(self._fold.value(node))
        result: CV = self.dispatch("v", node)
        if result.conv:
            if batch:
                return result
            result = self._batch.materialize(result)
        if (
            result.jtype not in ("keys", "missing")
            and result.opt is None
            and len(result.guard) + len(result.expr) > HOIST_SIZE
            and object_only(node)
        ):  # a large value of the object alone: a policy variable ([v], or [] when absent)
            return self._hoist_cv(node, result)
        return result

    def _hoist_cv(self, node: ir.Value, v: CV) -> CV:
        """``v`` as a policy variable: the value itself when always present,
        else a list of one item (present) or none (absent). The variable is
        written once and read twice (guard, value) where the text was repeated."""
        e = v.expr if v.guard == "true" else f"{v.guard} ? [{v.expr}] : []"
        name = self._vars.get(e)
        if name is None:
            name = unique(var_name(node), self._var_names)
            self._vars[e] = name
            self._var_names.add(name)
        ref = f"variables.{name}"
        if v.guard == "true":
            return CV("true", ref, v.jtype, v.ftype, nonnull=v.nonnull, dbl=v.dbl)
        return CV(
            f"size({ref}) > 0", f"{ref}[0]", v.jtype, v.ftype, nonnull=v.nonnull, dbl=v.dbl, lst=ref
        )

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

        segments: Sequence[str | int] = n.segments
        first = segments[0] if segments else None
        if n.root == ir.OBJECT_ROOT and (
            ft is None or (isinstance(first, str) and ft.field(first) is None)
        ):
            lead = 0
            while lead < len(segments) - 1 and isinstance(segments[lead], str):
                lead += 1
            if lead > MAX_MAP_STEPS:
                raise self._unsupported(
                    f"a field path of {len(n.segments)} segments (each map step of an "
                    f"untyped path is a policy variable; at most {MAX_MAP_STEPS})"
                )
            if lead >= 2:  # untyped: the map the path goes through as a variable
                cur = self._map_var(tuple(str(s) for s in segments[:lead]))
                segments, ft = segments[lead:], None

        def flush() -> None:
            if len(chain) == 1:
                guards.append(pr.has(base, chain[0]))
            elif chain:
                guards.append(f"{opt_chain(base, chain)}.hasValue()")
            chain.clear()

        for seg in segments:
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
        opt = opt_chain(base, chain) if chain and not guards else None
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

    def _named(self, expr: str, name: str) -> str:
        """``variables.<name>`` holding ``expr`` (one variable per text)."""
        got = self._vars.get(expr)
        if got is None:
            got = unique(name, self._var_names)
            self._vars[expr] = got
            self._var_names.add(got)
        return f"variables.{got}"

    def _map_var(self, keys: tuple[str, ...]) -> str:
        """``object.<keys>`` when it is a map, else ``{}``, as a policy
        variable (untyped form): a path through it then tests one ``has()``
        per step below it instead of re-testing every step above it. Exact: a
        field of ``{}`` is absent, as is a field of a missing or non-map value."""
        parent = "object"
        for i in range(1, len(keys)):  # the maps above, outermost first (no recursion)
            parent = self._map_step(parent, keys[:i])
        return self._map_step(parent, keys)

    def _map_step(self, parent: str, keys: tuple[str, ...]) -> str:
        cur = pr.select(parent, keys[-1])
        e = f"{pr.has(parent, keys[-1])} && type({cur}) == map ? {cur} : {{}}"
        name = self._vars.get(e)
        if name is None:
            name = keys[-1] if pr.is_field_name(keys[-1]) else "map"
            if name in self._var_names and len(keys) > 1 and pr.is_field_name(keys[-2]):
                name = keys[-2] + name[:1].upper() + name[1:]
            name = unique(name, self._var_names)
            self._vars[e] = name
            self._var_names.add(name)
        return f"variables.{name}"

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
            return CV(pr.conj([o.guard, f"isQuantity({e})"]), approx(e), "number", dbl=True)
        if o.jtype != "any":
            return MISSING_CV
        # one list: [the quantity as a double], or [] when it is none; read twice
        q = self._quantity(o, "[", "]", "[]")
        if object_only(n):
            name = self._vars.get(q)
            if name is None:
                name = unique(var_name(n), self._var_names)
                self._vars[q] = name
                self._var_names.add(name)
            q = f"variables.{name}"
        return CV(f"size({q}) > 0", f"{q}[0]", "number", nonnull=True, dbl=True, lst=q)

    def _quantity(self, o: CV, pre: str, post: str, none: str) -> str:
        return pr.let("_q", *quantity_parts(o, pre, post, none))

    def v_Arith(self, n: ir.Arith) -> CV:
        a = self._plain(self._value(n.left, batch=True))
        b = self._plain(self._value(n.right, batch=True))
        guards = [a.guard, b.guard, *self._is_number(a), *self._is_number(b)]
        if "missing" in (a.jtype, b.jtype) or "false" in guards:
            return MISSING_CV
        if n.op == "/" and not (is_number_literal(b.expr) and float(b.expr) != 0.0):
            # the divisor is read twice (guard, value): no pending conversion
            a, b = self._batch.materialize(a), self._batch.materialize(b)
            guards.append(f"{double(b)} != 0.0")
        da, db = double(a), double(b)
        return CV(
            pr.conj(guards),
            pr.arith(da, n.op, db),
            "number",
            nonnull=True,
            dbl=True,
            conv=a.conv + b.conv,
        )

    def _is_number(self, v: CV) -> list[str]:
        if v.jtype == "number":
            return []
        if v.jtype == "any":
            return [type_test(v.expr, "number")]
        return ["false"]

    def v_Default(self, n: ir.Default) -> CV:
        if isinstance(n.operand, ir.Quantity) and self._fold.is_constant(n.fallback):
            fb = self._constant(self._fold.value(n.fallback))
            if fb.jtype == "number":
                o = self._plain(self.value(n.operand.operand))
                if o.jtype == "any":  # the quantity, else the number
                    # converted with the other quantities of its arithmetic (batch.py)
                    parts = quantity_parts(o, "", "", double(fb))
                    token = self._batch.token()
                    return CV(
                        "true", token, "number", nonnull=True, dbl=True, conv=((token, *parts),)
                    )
        a, b = self._plain(self.value(n.operand)), self._plain(self.value(n.fallback))
        if a.jtype == "missing" or a.jtype == "null":
            return b
        if a.nonnull and a.opt is not None and b.jtype != "missing":
            ft = merge(a.ftype, b.ftype)
            jt = ft.jtype if ft is not None else "any"
            if b.nonnull and b.opt is not None:  # both optional chains: or()
                opt = f"{a.opt}.or({b.opt})"
                return CV(f"{opt}.hasValue()", f"{opt}.value()", jt, ft, opt, nonnull=True)
            if b.guard == "true" and b.nonnull and a.dbl and b.jtype == "number":
                eb = double(b)
                return CV("true", f"{a.opt}.orValue({eb})", "number", nonnull=True, dbl=True)
            if b.guard == "true" and b.nonnull:
                same = a.jtype == b.jtype and a.jtype != "number"
                eb = b.expr if same else f"dyn({b.expr})"
                jt = a.jtype if a.jtype == b.jtype else "any"
                return CV("true", f"{a.opt}.orValue({eb})", jt, ft, nonnull=True)
        if a.lst is not None and a.nonnull and b.guard == "true" and b.nonnull:
            # a list of one value or none, then the fallback: the first of both
            if a.dbl and b.jtype == "number":
                return CV("true", f"({a.lst} + [{double(b)}])[0]", "number", nonnull=True, dbl=True)
            if a.jtype == b.jtype and a.jtype in ("string", "boolean"):
                return CV("true", f"({a.lst} + [{b.expr}])[0]", a.jtype, nonnull=True)
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
            return self._hoist(node, c.guard, dyn(c.expr)) if hoist else (c.guard, dyn(c.expr))
        if c.jtype == "keys":
            return c.guard, c.expr
        if c.jtype != "any":
            return "false", "[]"
        guard = pr.conj([c.guard, type_test(c.expr, "array")])
        if hoist and object_only(node) and len(c.expr) + len(guard) > 60:
            return self._hoist(node, "true", f"{guard} ? {c.expr} : []")
        return guard, c.expr

    def _hoist(self, node: ir.Value, guard: str, expr: str) -> tuple[str, str]:
        """A collection of the object alone as a policy variable, named after
        its last field (``variables.containers``)."""
        if guard != "true" or not object_only(node) or len(expr) < 40:
            return guard, expr
        items = self._last_items
        name = self._vars.get(expr)
        if name is None:
            name = unique(var_name(node), self._var_names)
            self._vars[expr] = name
            self._var_names.add(name)
        self._last_items = items
        return "true", f"variables.{name}"

    def _hoist_value(self, node: ir.Value, expr: str, prefix: str, size: int = 0) -> str:
        """An always-present value of the object alone (a sum, a count) as a
        policy variable: ``variables.totalContainers``. ``size``: the length
        of the text ``expr`` stands for (a placeholder: :mod:`share`)."""
        if not object_only(node) or max(size, len(expr)) < 60:
            return expr
        name = self._vars.get(expr)
        if name is None:
            base = var_name(node)
            name = unique(prefix + base[:1].upper() + base[1:], self._var_names)
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
        key = self._fold.value(n.key) if self._fold.is_constant(n.key) else None
        if b.opt is not None and b.nonnull and b.ftype is not None and isinstance(key, str):
            # a typed map by a constant key: optional indexing (``labels[?'team']``)
            opt = f"{b.opt}[?{k.expr}]"
            ft = b.ftype.field(key)
            if ft is None:
                return CV(f"{opt}.hasValue()", f"{opt}.value()", "any")
            return CV(f"{opt}.hasValue()", f"{opt}.value()", ft.jtype, ft, opt, nonnull=True)
        table = self._fold.value(n.base) if self._fold.is_constant(n.base) else None
        if (
            isinstance(table, dict)
            and table
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in table.values())
        ):  # a table of numbers (a parameter): doubles, never null
            lit = pr.literal({key: float(v) for key, v in table.items()})
            if isinstance(n.base, ir.Param):  # a parameter table: a named variable
                lit = self._named(lit, _camel(n.base.name))
            if k.jtype == "string" and k.nonnull and "" not in table:
                # a missing key reads as '', which the table lacks: one optional lookup
                ke = (
                    k.expr
                    if k.guard == "true"
                    else (
                        f"{k.opt}.orValue('')"
                        if k.opt is not None
                        else f"({k.guard} ? {k.expr} : '')"
                    )
                )
                opt = f"{lit}[?{ke}]"
                return CV(
                    f"{opt}.hasValue()", f"{opt}.value()", "number", None, opt, True, dbl=True
                )
            guards.append(f"{pr.paren(k.expr)} in {lit}")
            return CV(pr.conj(guards), f"{lit}[{k.expr}]", "number", nonnull=True, dbl=True)
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
            "0.0" if ok == "false" else double(t) if ok == "true" else f"({ok} ? {double(t)} : 0.0)"
        )
        e = alone = f"{pr.paren(coll)}.map({n.var}, {term}).sum()"
        if guard == "true" and object_only(n):
            # written once with every sum of the same term (policykit.targets.cel.share)
            e = self._sums.add(coll, n.var, term, e)
        e = e if guard == "true" else f"({guard} ? {e} : 0.0)"
        return CV("true", self._hoist_value(n, e, "total", len(alone)), "number", nonnull=True)

    def pred(self, node: ir.Pred) -> str:
        raise NotImplementedError


def _camel(name: str) -> str:
    """``gpu_hour_usd`` → ``gpuHourUsd`` (a variable's name; CEL identifiers)."""
    head, *rest = [w for w in name.replace("-", "_").split("_") if w] or ["table"]
    out = head + "".join(w[:1].upper() + w[1:] for w in rest)
    return out if pr.is_field_name(out) else "table"
