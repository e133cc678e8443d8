"""IR → Rego v1, one module per pack, reproducing docs/semantics.md.

Shape of a compiled pack (package ``<root>.<pack>``)::

    _cat_001(obj) := [f | <selector>; <condition>; f := {"id": ..., "msg": ...}]
    findings(obj) := [f | some fs in [_cat_001(obj), ...]; some f in fs]
    violations := findings(input)                      # one object as input
    batch := [findings(obj) | some obj in input.objects]   # many objects
    deny contains f if { some f in _cat_001(input) }    # with METADATA, per rule

How the semantics are kept:

* a missing value is Rego's *undefined*: any statement over it fails, so every
  predicate over it is false;
* negation, disjunction and quantifiers go through helper functions whose
  arguments are always-defined variables: OPA hoists an undefined ref out of a
  negated call (``not f(x.missing)`` is false in OPA, true in regopy);
* type guards (``is_string``, ``is_number``, ``is_array``) make every built-in see
  the types the reference engine requires, so no built-in errors;
* rules are functions of the object (no ``with input as``: it crashes regopy).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policykit import __version__
from policykit import toolcall as tc
from policykit.engines.native import _Compiler as _NativeCompiler
from policykit.ir import nodes as ir
from policykit.ir.joins import Grouped, Join, grouped_of, join_of
from policykit.ir.rule import Pack, Rule, Selector
from policykit.targets.base import Compiler
from policykit.targets.rego import printer as pr
from policykit.values import MISSING, json_type

OBJ = "obj"
INVENTORY_RULE = "_inventory"
INVENTORY_IDS = "_inventory_ids"
CALL_API_VERSION = tc.API_VERSION
# What the violations and batch entry points answer for an input that is not an object.
NOT_AN_OBJECT = {
    "id": "POLICYKIT-INPUT",
    "pack": "policykit",
    "severity": "deny",
    "msg": "policykit: input is not an object",
}
CALL_KIND = tc.KIND
LIB_VALUES = "values"
LIB_QUANTITY = "quantity"
_ORDER_FN = {"<": "less", "<=": "less_eq", ">": "greater", ">=": "greater_eq"}
_TYPE_FN = {
    "string": "is_string",
    "number": "is_number",
    "boolean": "is_boolean",
    "array": "is_array",
    "object": "is_object",
    "null": "is_null",
}
ROOT_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")

Stmts = list[str]
Val = tuple[Stmts, str, str]
"""Compiled value: guard statements, the term, and its semantic type (``any``,
a JSON type name, or ``missing`` when it can never be present)."""
MISSING_VAL: Val = (["false"], "null", "missing")


@dataclass(frozen=True)
class RegoOptions:
    """Where compiled code lives and reads its parameters from."""

    root: str = "policykit"
    params_ref: str | None = None  # default: data.<root>.params.<pack>
    entry: str = "opa"  # "opa": violations/batch/deny...; "gatekeeper": violation only
    package_name: str | None = None  # default: <root>.<pack>
    lib_root: str | None = None  # default: <root>.lib

    def package(self, pack: str) -> str:
        return self.package_name or f"{self.root}.{pack}"

    def lib(self, name: str) -> str:
        return f"data.{self.lib_root or self.root + '.lib'}.{name}"

    def params(self, pack: str) -> str:
        return self.params_ref or pr.ref(f"data.{self.root}.params", [pack])


class RegoCompiler(Compiler):
    """Compiles one pack; ``v_<Node>`` for values, ``p_<Node>`` for predicates."""

    target = "rego"

    def __init__(self, pack: Pack, options: RegoOptions) -> None:
        super().__init__()
        self.pack = pack
        self.opts = options
        self.module = pr.Module(options.package(pack.name))
        self._helpers: list[list[str]] = []
        self._n = 0
        self._prefix = ""
        self._scope: list[str] = [OBJ]
        self._meta: dict[str, Any] = {}
        self.uses_inventory = False
        self.uses_inventory_ids = False
        self.index_joins = True  # False: every loop over the inventory as written (tests)

    # --- naming -----------------------------------------------------------------

    def fresh(self, kind: str) -> str:
        self._n += 1
        return f"{self._prefix}_{kind}{self._n}"

    def temp(self) -> str:
        self._n += 1
        return f"t__{self._n}"

    def use(self, lib: str) -> str:
        self.module.imports.add(self.opts.lib(lib))
        return lib

    # --- helpers ---------------------------------------------------------------------

    def _free(self, nodes: Sequence[ir.Node]) -> list[str]:
        roots: set[str] = set()
        for n in nodes:
            for sub in ir.walk(n):
                if isinstance(sub, ir.Path):
                    roots.add(OBJ if sub.root == ir.OBJECT_ROOT else sub.root)
                elif isinstance(sub, ir.Objects):  # the object under review is left out
                    roots.add(OBJ)
        return [v for v in self._scope if v in roots]

    def _signature(self, free: list[str]) -> tuple[str, str]:
        """(parameter list, argument list) of a helper over ``free`` variables."""
        if not free:  # a helper over constants and parameters only
            return "_", "null"
        return ", ".join(free), ", ".join(free)

    def helper_pred(self, kind: str, bodies: list[Stmts], nodes: Sequence[ir.Node]) -> str:
        """A helper true when any body holds; returns the call expression."""
        name = self.fresh(kind)
        params, args = self._signature(self._free(nodes))
        for body in bodies:
            lines = [f"{name}({params}) if {{", *pr.indent(body or ["true"]), "}"]
            self._helpers.append(lines)
        return f"{name}({args})"

    # --- values -----------------------------------------------------------------------

    def value(self, node: ir.Value) -> Val:
        if _is_constant(node):
            return self._constant(_native_value(node))
        result: Val = self.dispatch("v", node)
        return result

    def _constant(self, v: Any) -> Val:
        if v is MISSING:
            return MISSING_VAL
        if isinstance(v, list):
            # literal lists go through erase(): OPA's type checker would otherwise
            # type their items and reject refs such as item.name on a string
            return [], f"{self.use(LIB_VALUES)}.erase({pr.term(v)})", "array"
        return [], pr.term(v), json_type(v)

    def v_Path(self, n: ir.Path) -> Val:
        base = OBJ if n.root == ir.OBJECT_ROOT else n.root
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
        guards = [f"is_number({a})", f"is_number({b})"]
        if n.op == "/":
            guards += self._infix(b, "!=", "0")
        # as opa fmt writes it: parentheses only around an infix operand of an infix
        return [*sa, *sb, *guards], f"{_operand(n.left, a)} {n.op} {_operand(n.right, b)}", "number"

    def v_Default(self, n: ir.Default) -> Val:
        sa, a, ta = self.value(n.operand)
        sb, b, tb = self.value(n.fallback)
        if ta in ("missing", "null"):
            return sb, b, tb
        if ta != "any" and _is_constant(n.operand):  # a present, non-null constant
            return sa, a, ta
        name = self.fresh("default")
        params, args = self._signature(self._free([n]))
        v = self.temp()
        lines = [f"{name}({params}) := {v} if {{", *pr.indent([*sa, f"{v} := {a}", f"{v} != null"])]
        if sb:
            fb = self.temp()
            lines += ["} else := " + fb + " if {", *pr.indent([*sb, f"{fb} := {b}"]), "}"]
        else:
            lines += ["} else := " + b]
        self._helpers.append(lines)
        if ta == tb:
            return [], f"{name}({args})", ta
        # OPA types the helper as the union of both branches (e.g. any<null,
        # number>) and refuses comparing it with a third type: erase it to any
        return [], f"{self.use(LIB_VALUES)}.erase({name}({args}))", "any"

    def _collection(self, coll: ir.Value, var: str) -> Stmts | None:
        """Statements binding ``var`` to each item; None if never a list."""
        sc, tc, ty = self.value(coll)
        if ty not in ("any", "array"):
            return None
        c = self.temp()
        return [*sc, f"{c} := {tc}", f"is_array({c})", f"some {var} in {c}"]

    def _aggregate(
        self, kind: str, fn: str, n: ir.Count | ir.Sum, inner: Callable[[], tuple[Stmts, str]]
    ) -> Val:
        """``fn([head | some var in coll; ...])`` in a helper that is 0 for non-lists."""
        sc, tc, ty = self.value(n.collection)
        if ty not in ("any", "array"):
            return [], "0", "number"
        name = self.fresh(kind)
        params, args = self._signature(self._free([n]))
        c, result = self.temp(), self.temp()
        self._scope.append(n.var)
        body, head = inner()
        self._scope.pop()
        self._helpers.append(
            [
                f"{name}({params}) := {result} if {{",
                *pr.indent([*sc, f"{c} := {tc}", f"is_array({c})", f"{result} := {fn}([{head} |"]),
                *pr.indent([f"some {n.var} in {c}", *body], 2),
                "\t])",
                "} else := 0",
            ]
        )
        return [], f"{name}({args})", "number"

    def v_Index(self, n: ir.Index) -> Val:
        sb, b, tb = self.value(n.base)
        sk, k, tk = self.value(n.key)
        if tb not in ("any", "object") or tk not in ("any", "string"):
            return MISSING_VAL
        vb, vk, v = self.temp(), self.temp(), self.temp()
        # named first: a call's result cannot be indexed in place
        guards = [f"{vb} := {b}", f"{vk} := {k}", f"is_object({vb})", f"is_string({vk})"]
        return [*sb, *sk, *guards, f"{v} := {vb}[{vk}]"], v, "any"

    def v_Filter(self, n: ir.Filter) -> Val:
        join = join_of(n) if self.index_joins else None
        if join is not None:
            looked_up = self._join_filter(n, join)
            if looked_up is not None:
                return looked_up
        sc, tc, ty = self.value(n.collection)
        if ty not in ("any", "array"):
            return MISSING_VAL
        name = self.fresh("filter")
        params, args = self._signature(self._free([n]))
        c, result = self.temp(), self.temp()
        self._scope.append(n.var)
        body = self.pred(n.body)
        self._scope.pop()
        self._helpers.append(
            [
                f"{name}({params}) := {result} if {{",
                *pr.indent([*sc, f"{c} := {tc}", f"is_array({c})", f"{result} := [{n.var} |"]),
                *pr.indent([f"some {n.var} in {c}", *body], 2),
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
        return self._aggregate("count", "count", n, lambda: (self.pred(n.body), n.var))

    def v_Sum(self, n: ir.Sum) -> Val:
        grouped = grouped_of(n) if self.index_joins else None
        if grouped is not None:
            looked_up = self._grouped(n, grouped)
            if looked_up is not None:
                return looked_up

        def term() -> tuple[Stmts, str]:
            st, tt, ty = self.value(n.term)
            if ty not in ("any", "number"):
                return ["false"], "0"
            t = self.temp()
            return [*st, f"{t} := {tt}", f"is_number({t})"], t

        return self._aggregate("sum", "sum", n, term)

    # --- joins over the inventory (policykit/ir/joins.py) ----------------------------------
    #
    # A join's index is a rule without arguments, so OPA evaluates it once per
    # query (and caches it), as does regopy: an object from the join key (a
    # string, or an array of strings for several keys) to the positions in
    # ``_inventory`` of the items with that key, in inventory order. It is
    # built by sorting [key, position] pairs and cutting them where the key
    # changes: linear after the sort, and without object comprehensions whose
    # values would conflict. Keys that are not strings (rare: numbers, where
    # 1 == 1.0, booleans, null, composites) are not indexed: an object whose
    # key is not a string reads the inventory as written.

    def _pushed_scope(self, scope: list[str], compile_: Callable[[], Any]) -> Any:
        outer = self._scope
        self._scope = scope
        try:
            return compile_()
        finally:
            self._scope = outer

    def _keys(self, keys: Sequence[ir.Value]) -> tuple[Stmts, str] | None:
        """Statements binding the join key (strings only), and the key term;
        None when a key can never be a string."""
        stmts: Stmts = []
        terms: list[str] = []
        for k in keys:
            sk, tk, ty = self.value(k)
            if ty not in ("any", "string"):
                return None
            v = self.temp()
            stmts += [*sk, f"{v} := {tk}", f"is_string({v})"]
            terms.append(v)
        return stmts, terms[0] if len(terms) == 1 else "[" + ", ".join(terms) + "]"

    def _join_index(self, join: Join) -> str | None:
        """Emits the join's index rules; returns the name of the key → positions
        object (``<name>_keys`` holds each item's key, null if not indexed)."""
        var = join.var

        def item_side() -> tuple[Stmts, str] | None:
            only: Stmts = []
            for p in join.item_only:
                only += self.pred(p)
            keyed = self._keys(join.item_keys)
            return None if keyed is None else ([*only, *keyed[0]], keyed[1])

        keyed = self._pushed_scope([var], item_side)
        if keyed is None:
            return None
        self.uses_inventory = True
        name = self.fresh("join")
        k = self.temp()
        inv = INVENTORY_RULE
        self._helpers.append(
            [
                f"{name}_key({var}) := {k} if {{",
                *pr.indent([*keyed[0], f"{k} := {keyed[1]}"]),
                "} else := null",
            ]
        )
        self._helpers.append(
            [
                f"# The key of each inventory item in join {name} (null: not indexed).",
                f"{name}_keys := [{name}_key({inv}[i]) | some i in {_positions(inv)}]",
            ]
        )
        self._helpers.append(
            _group_by(
                name,
                [
                    f"some i in numbers.range(0, count({name}_keys) - 1)",
                    f"k := {name}_keys[i]",
                    "k != null",
                ],
                "k",
            )
        )
        self._helpers.append(_get_or(f"{name}_at", name, "[]"))
        return name

    def _object_side(self, join: Join) -> tuple[Stmts, Stmts, str] | None:
        """(statements defining every object-side key, the same plus string
        guards, the key term)."""
        defined: Stmts = []
        for key in join.object_keys:
            sk, tk, ty = self.value(key)
            if ty == "missing":
                return None
            defined += [*sk, f"{self.temp()} := {tk}"]
        keyed = self._keys(join.object_keys)
        if keyed is None:
            return None
        return defined, keyed[0], keyed[1]

    def _join_filter(self, n: ir.Filter, join: Join) -> Val | None:
        side = self._object_side(join)
        index = self._join_index(join) if side is not None else None
        if side is None or index is None:
            return None
        defined, guarded, key = side
        self._scope.append(n.var)
        rest: Stmts = []
        for p in join.rest:
            rest += self.pred(p)
        plain = self.pred(n.body)
        self._scope.pop()
        name = self.fresh("filter")
        params, args = self._signature(self._free([n]))
        k, me, r = self.temp(), self.temp(), self.temp()
        lib = self.use(LIB_VALUES)
        others = f"{lib}.others({INVENTORY_RULE}, {OBJ})"
        self._helpers.append(
            [
                f"{name}({params}) := {r} if {{",
                *pr.indent([*guarded, f"{k} := {key}", f"{me} := {lib}.identity({OBJ})"]),
                f"\t{r} := [{n.var} |",
                *pr.indent(
                    [
                        f"some i in {index}_at({k})",
                        f"{n.var} := {INVENTORY_RULE}[i]",
                        f"{lib}.identity({n.var}) != {me}",
                        *rest,
                    ],
                    2,
                ),
                "\t]",
                f"}} else := {r} if {{",  # a key that is present but not a string
                *pr.indent([*defined, f"{r} := [{n.var} |"]),
                *pr.indent([f"some {n.var} in {others}", *plain], 2),
                "\t]",
                "} else := []",
            ]
        )
        return [], f"{name}({args})", "array"

    def _grouped(self, n: ir.Sum | ir.Count, g: Grouped) -> Val | None:
        side = self._object_side(g.join)
        index = self._join_index(g.join) if side is not None else None
        if side is None or index is None:
            return None
        defined, guarded, key = side
        var = n.var

        def per_item() -> tuple[Stmts, str]:
            if g.term is None:
                return self.pred(g.body), "1"
            st, tt, ty = self.value(g.term)
            if ty not in ("any", "number"):
                return ["false"], "0"
            return st, tt

        body, head = self._pushed_scope([var], per_item)
        t = self.temp()
        self._helpers.append(
            [
                f"{index}_term({var}) := {t} if {{",
                *pr.indent([*body, f"{t} := {head}", f"is_number({t})"]),
                "} else := null",
            ]
        )
        inv = INVENTORY_RULE
        self._helpers.append(
            [f"{index}_terms := [{index}_term({inv}[i]) | some i in {_positions(inv)}]"]
        )
        self._helpers.append(
            [
                f"# The {g.kind} over each key of join {index}.",
                f"{index}_totals := {{k: sum([t |",
                f"\tsome i in {index}[k]",
                f"\tt := {index}_terms[i]",
                "\tt != null",
                f"]) | some k in object.keys({index})}}",
            ]
        )
        self._helpers.append(_get_or(f"{index}_total", f"{index}_totals", "0"))
        self._helpers.append(
            [
                f"{index}_less(total, mine) := total if count(mine) == 0",
                "",
                f"{index}_less(total, mine) := total - sum(mine) if count(mine) > 0",
            ]
        )
        self.uses_inventory_ids = True
        plain = self._aggregate(g.kind, g.kind, n, lambda: self._aggregate_body(n))
        name = self.fresh(g.kind)
        params, args = self._signature(self._free([n]))
        k, mine, r = self.temp(), self.temp(), self.temp()
        lib = self.use(LIB_VALUES)
        self._helpers.append(
            [
                f"{name}({params}) := {r} if {{",
                *pr.indent(
                    [
                        *guarded,
                        f"{k} := {key}",
                        f"{mine} := [t |",
                        f"\tsome i in {INVENTORY_IDS}_at({lib}.identity({OBJ}))",
                        f"\t{index}_keys[i] == {k}",
                        f"\tt := {index}_terms[i]",
                        "\tt != null",
                        "]",
                        f"{r} := {index}_less({index}_total({k}), {mine})",
                    ]
                ),
                f"}} else := {r} if {{",  # a key that is present but not a string
                *pr.indent([*defined, f"{r} := {plain[1]}"]),
                "} else := 0",
            ]
        )
        return [], f"{name}({args})", "number"

    def _aggregate_body(self, n: ir.Sum | ir.Count) -> tuple[Stmts, str]:
        if isinstance(n, ir.Count):
            return self.pred(n.body), n.var
        st, tt, ty = self.value(n.term)
        if ty not in ("any", "number"):
            return ["false"], "0"
        t = self.temp()
        return [*st, f"{t} := {tt}", f"is_number({t})"], t

    # --- predicates ---------------------------------------------------------------------

    def pred(self, node: ir.Pred) -> Stmts:
        if _is_constant(node):
            return ["true"] if _native_pred(node) else ["false"]
        result: Stmts = self.dispatch("p", node)
        return result

    def p_Compare(self, n: ir.Compare) -> Stmts:
        sa, a, ta = self.value(n.left)
        sb, b, tb = self.value(n.right)
        if "missing" in (ta, tb):
            return ["false"]
        known_differ = ta != "any" and tb != "any" and ta != tb
        if n.op == "==":
            return ["false"] if known_differ else [*sa, *sb, *self._infix(a, "==", b)]
        if n.op == "!=":
            if known_differ:  # present and of different types: unequal
                # named, not `_ = …`: regopy unifies every `_` of a body into one
                # variable ("Unable to unify due to cycle", docs/engines.md)
                va, vb = self.temp(), self.temp()
                return [*sa, *sb, f"{va} := {a}", f"{vb} := {b}"]
            return [*sa, *sb, *self._infix(a, "!=", b)]
        ordered = ("any", "number", "string")
        if ta not in ordered or tb not in ordered or known_differ:
            return ["false"]
        if ta != "any" or tb != "any":
            typ = ta if ta != "any" else tb
            other = b if ta != "any" else a
            guard = f"is_{typ}({other})"
            return [*sa, *sb, guard, *self._infix(a, n.op, b)]
        return [*sa, *sb, f"{self.use(LIB_VALUES)}.{_ORDER_FN[n.op]}({a}, {b})"]

    def _infix(self, a: str, op: str, b: str) -> Stmts:
        """``a op b`` as a statement that does not start with ``(`` or ``-``:
        regopy reads such a line as continuing the one before it (a call on the
        previous term), so the sides are swapped or the left one is named."""
        if not a.startswith(("(", "-")):
            return [f"{a} {op} {b}"]
        if not b.startswith(("(", "-")):
            return [f"{b} {_SWAP[op]} {a}"]
        t = self.temp()
        return [f"{t} := {a}", f"{t} {op} {b}"]

    def p_And(self, n: ir.And) -> Stmts:
        out: Stmts = []
        for item in n.items:
            out.extend(self.pred(item))
        return out or ["true"]

    def p_Or(self, n: ir.Or) -> Stmts:
        if not n.items:
            return ["false"]
        bodies = [self.pred(i) for i in n.items]
        return [self.helper_pred("or", bodies, [n])]

    def p_Not(self, n: ir.Not) -> Stmts:
        body = self.pred(n.item)
        return [f"not {self.helper_pred('holds', [body], [n])}"]

    def p_Exists(self, n: ir.Exists) -> Stmts:
        s, t, ty = self.value(n.operand)
        if ty in ("missing", "null"):
            return ["false"]
        return [*s, *self._infix(t, "!=", "null")]

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
        return [*s, *sp, f"is_string({t})", f"regex.match({p}, {t})"]

    def p_StrOp(self, n: ir.StrOp) -> Stmts:
        sa, a, ta = self.value(n.subject)
        sb, b, tb = self.value(n.arg)
        if ta not in ("any", "string") or tb not in ("any", "string"):
            return ["false"]
        return [*sa, *sb, f"is_string({a})", f"is_string({b})", f"{n.op}({a}, {b})"]

    def p_In(self, n: ir.In) -> Stmts:
        se, e, te = self.value(n.element)
        sc, c, tc = self.value(n.collection)
        if te == "missing" or tc not in ("any", "array"):
            return ["false"]
        elem = _operand(n.element, e)
        if elem.startswith(("(", "-")):  # see _infix
            t = self.temp()
            return [*se, *sc, f"is_array({c})", f"{t} := {elem}", f"{t} in {c}"]
        return [*se, *sc, f"is_array({c})", f"{elem} in {c}"]

    def p_Quantifier(self, n: ir.Quantifier) -> Stmts:
        coll = self._collection(n.collection, n.var)
        if coll is None:  # never a list: all is vacuously true, any is false
            return ["true"] if n.kind == "all" else ["false"]
        self._scope.append(n.var)
        body = self.pred(n.body)
        if n.kind == "all":  # all = no counterexample
            body = [f"not {self.helper_pred('holds', [body], [n.body])}"]
        self._scope.pop()
        kind = "any" if n.kind == "any" else "counterexample"
        call = self.helper_pred(kind, [[*coll, *body]], [n])
        return [call] if n.kind == "any" else [f"not {call}"]

    # --- rules ---------------------------------------------------------------------------

    def selector(self, sel: Selector) -> Stmts:
        out: Stmts = []
        if sel.source == "backstage":
            out.append(f"{self.use(LIB_VALUES)}.is_backstage({OBJ})")
        elif sel.source == "kubernetes":
            out.append(f"not {self.use(LIB_VALUES)}.is_backstage({OBJ})")
        if sel.kinds:
            out.append(f"{OBJ}.kind in {pr.string_set(sel.kinds)}")
        if sel.api_versions:
            pats = pr.term(list(sel.api_versions))
            out.append(f"{self.use(LIB_VALUES)}.api_version_any({pats}, {OBJ}.apiVersion)")
        if sel.namespaces:
            pats = pr.term(list(sel.namespaces))
            out.append(f"{self.use(LIB_VALUES)}.glob_any({pats}, values.namespace({OBJ}))")
        if sel.exclude_namespaces:
            pats = pr.term(list(sel.exclude_namespaces))
            out.append(f"not {self.use(LIB_VALUES)}.excluded({pats}, {OBJ})")
        for k, v in sel.labels:
            out.append(f"{pr.ref(OBJ, ['metadata', 'labels', k])} == {pr.string(v)}")
        if sel.entity_types:
            out.append(f"{OBJ}.spec.type in {pr.string_set(sel.entity_types)}")
        return out

    def message(self, rule: Rule) -> tuple[Stmts, str]:
        parts: list[str] = []
        for part in rule.message.parts:
            if isinstance(part, str):
                parts.append(pr.string(part))
                continue
            name = self.fresh("msg")
            params, args = self._signature(self._free([part]))
            s, t, _ = self.value(part)
            v = self.temp()
            self._helpers.append(
                [
                    f"{name}({params}) := {self.use(LIB_VALUES)}.render({v}) if {{",
                    *pr.indent([*s, f"{v} := {t}"]),
                    '} else := ""',
                ]
            )
            parts.append(f"{name}({args})")
        if not parts:
            return [], '""'
        if len(parts) == 1 and rule.message.parts and isinstance(rule.message.parts[0], str):
            return [], parts[0]
        return [], 'concat("", [' + ", ".join(parts) + "])"

    def compile_rule(self, rule: Rule) -> str:
        """Adds the rule's function and partial-set contribution; returns its name."""
        fn = "_" + rule.id.lower().replace("-", "_")
        self._prefix = fn
        self._scope = [OBJ]
        body: Stmts = self.selector(rule.selector)
        finding: dict[str, str] = {
            "id": pr.string(rule.id),
            "pack": pr.string(self.pack.name),
            "severity": pr.string(rule.severity),
        }
        if rule.each is not None:
            idx = self.temp()
            sc, tc, _ = self.value(rule.each.collection)
            c = self.temp()
            # not `some i, x in c`: regopy rejects two-variable `some` in comprehensions
            body += [
                *sc,
                f"{c} := {tc}",
                f"is_array({c})",
                f"some {idx}",
                f"{rule.each.var} := {c}[{idx}]",
            ]
            self._scope.append(rule.each.var)
            finding["item"] = idx
        body += self.pred(rule.condition)
        sm, msg = self.message(rule)
        body += sm
        finding["msg"] = msg
        obj = "{" + ", ".join(f'"{k}": {finding[k]}' for k in sorted(finding)) + "}"
        body.append(f"f := {obj}")
        self.module.add(
            [
                f"# Findings of rule {rule.id} about one object.",
                *pr.comprehension(f"{fn}({OBJ}) := [", "f", body, "]"),
            ]
        )
        for h in self._helpers:
            self.module.add(h)
        self._helpers = []
        meta = {
            "title": rule.title,
            "description": rule.description,
            "custom": {
                "id": rule.id,
                "severity": rule.severity,
                "pack": self.pack.name,
                "pack_version": self.pack.version,
                "tags": list(rule.tags),
                "remediation": rule.remediation,
            },
        }
        if self.opts.entry == "opa":
            self.module.rule(
                f"{rule.severity} contains f", [f"some f in {fn}(input)"], pr.metadata_block(meta)
            )
        else:
            self._meta = meta
        return fn

    def _inventory_rule(self) -> list[str]:
        """``_inventory``: every object the target can see, as a list."""
        if self.opts.entry == "gatekeeper":
            return [
                "# Gatekeeper's synced objects (data.inventory), cluster-scoped and namespaced.",
                f"{INVENTORY_RULE} := array.concat(_inventory_cluster, _inventory_namespaced)",
                "",
                "_inventory_cluster := [o |",
                "\tsome gv in object.keys(data.inventory.cluster)",
                "\tsome k in object.keys(data.inventory.cluster[gv])",
                "\tsome o in data.inventory.cluster[gv][k]",
                "]",
                "",
                "_inventory_namespaced := [o |",
                "\tsome ns in object.keys(data.inventory.namespace)",
                "\tsome gv in object.keys(data.inventory.namespace[ns])",
                "\tsome k in object.keys(data.inventory.namespace[ns][gv])",
                "\tsome o in data.inventory.namespace[ns][gv][k]",
                "]",
            ]
        ref = f"data.{self.opts.root}.inventory"
        return [
            f"# The inventory the bundle's user supplies as {ref} (a list; none: empty).",
            f"{INVENTORY_RULE} := x if {{",
            f"\tx := {ref}",
            "\tis_array(x)",
            "} else := []",
        ]

    def compile(self) -> str:
        self.module.header = [
            *pr.metadata_block(
                {
                    "title": f"policykit pack {self.pack.name}",
                    "description": self.pack.description,
                    "custom": {
                        "pack": self.pack.name,
                        "version": self.pack.version,
                        "generator": f"policykit {__version__}",
                    },
                }
            ),
        ]
        names = [self.compile_rule(r) for r in self.pack.rules]
        if self.uses_inventory:
            self.module.add(self._inventory_rule())
        if self.uses_inventory_ids:
            inv = INVENTORY_RULE
            pairs = [
                f"some i in numbers.range(0, count({inv}) - 1)",
                f"k := {self.use(LIB_VALUES)}.identity({inv}[i])",
            ]
            self.module.add(
                [
                    "# The positions in the inventory of each identity (kind, namespace, name).",
                    *_group_by(INVENTORY_IDS, pairs, "k"),
                ]
            )
            self.module.add(_get_or(f"{INVENTORY_IDS}_at", INVENTORY_IDS, "[]"))
        calls = ", ".join(f"{n}({OBJ})" for n in names)
        self.module.add(
            [
                "# Findings of every rule of the pack about one object, in rule order.",
                *pr.comprehension(
                    f"findings({OBJ}) := [", "f", [f"some fs in [{calls}]", "some f in fs"], "]"
                ),
            ]
        )
        if self.opts.entry == "gatekeeper":
            details = '{"rule": f.id, "pack": f.pack, "severity": f.severity}'
            self.module.rule(
                'violation contains {"msg": f.msg, "details": ' + details + "}",
                ["some f in findings(input.review.object)"],
                pr.metadata_block(self._meta or {"title": self.pack.name}),
            )
            return self.module.text()
        self.module.add(
            [
                "# Entry point for one object as input (OPA's API, admission).",
                "violations := findings(input)",
            ]
        )
        self.module.add(
            [
                "# Entry point for many objects: input.objects, one result list per object.",
                f"batch := [findings({OBJ}) | some {OBJ} in input.objects]",
            ]
        )
        return self.module.text()


def _get_or(fn: str, obj: str, default: str) -> list[str]:
    """``fn(k)``: ``obj[k]``, else ``default``. Not ``object.get``: regopy's
    misses a key that is an array."""
    return [f"{fn}(k) := v if {{", f"\tv := {obj}[k]", f"}} else := {default}"]


def _positions(array: str) -> str:
    """The positions of ``array`` (an empty array: 0 and -1, which index nothing)."""
    return f"numbers.range(0, count({array}) - 1)"


def _group_by(name: str, body: Stmts, key: str) -> list[str]:
    """``name``: key → the positions ``i`` that ``body`` binds with that ``key``,
    ascending. Sorted [key, i] pairs are cut where the key changes; object
    comprehensions would refuse two different values for one key."""
    pairs, bounds = f"{name}_pairs", f"{name}_bounds"
    return [
        *pr.comprehension(f"{pairs} := sort([", f"[{key}, i]", body, "])"),
        "",
        f"{bounds} := array.concat(array.concat([0], [p |",
        f"\tsome p in numbers.range(1, count({pairs}) - 1)",
        f"\ta := {pairs}[p]",
        f"\tb := {pairs}[p - 1]",
        "\ta[0] != b[0]",
        f"]), [count({pairs})])",
        "",
        f"{name} := {{first[0]: [pair[1] |",
        "\tsome p in numbers.range(s, e - 1)",
        f"\tpair := {pairs}[p]",
        "] |",
        f"\tsome j in numbers.range(0, count({bounds}) - 2)",
        f"\ts := {bounds}[j]",
        f"\te := {bounds}[j + 1]",
        f"\tfirst := {pairs}[s]",
        "}",
    ]


def _is_constant(node: ir.Node) -> bool:
    """No paths and no parameters below: the value is known at compile time."""
    return not any(isinstance(n, (ir.Path, ir.Param, ir.Objects)) for n in ir.walk(node))


def _native_value(node: ir.Value) -> Any:
    return _NativeCompiler({}).value(node)({})


def _native_pred(node: ir.Pred) -> bool:
    return _NativeCompiler({}).pred(node)({})


def compile_pack(pack: Pack, options: RegoOptions | None = None) -> str:
    """The Rego v1 module of one pack."""
    return RegoCompiler(pack, options or RegoOptions()).compile()


def main_module(packs: Sequence[Pack], options: RegoOptions) -> str:
    """``<root>.main``: findings of every pack, per object and in batch."""
    mod = pr.Module(f"{options.root}.main")
    mod.header = pr.metadata_block(
        {"title": "policykit entry points", "custom": {"generator": f"policykit {__version__}"}}
    )
    refs = [f"data.{options.package(p.name)}.findings({OBJ})" for p in packs]
    if not refs:
        joined = "[]"
    elif len(refs) == 1:
        joined = refs[0]
    else:
        joined = f"[f | some fs in [{', '.join(refs)}]; some f in fs]"
    mod.imports.add(options.lib(LIB_VALUES))
    mod.add(["# Findings of every pack about one object.", f"all_findings({OBJ}) := {joined}"])
    mod.add(
        [
            "# Less those a waiver in force accepts (the bundle's waivers data).",
            *pr.comprehension(
                f"findings({OBJ}) := [",
                "f",
                [f"some f in all_findings({OBJ})", f"not waived(f, {OBJ})"],
                "]",
            ),
        ]
    )
    waivers_ref = f"data.{options.root}.waivers.items"  # undefined without waivers: none apply
    mod.add(
        [
            "# A waiver: rule id, expiry (ns, end of its last day) and fields that must",
            "# match (exact, or a prefix ending in *); see policykit/waivers.py.",
            "waived(f, obj) if {",
            f"\tsome w in {waivers_ref}",
            "\tw.rule == f.id",
            "\ttime.now_ns() <= w.expires_ns",
            "\tnot _mismatch(w, f, obj)",
            "}",
        ]
    )
    mod.add(
        [
            "_mismatch(w, f, obj) if {",
            "\tsome key",
            "\twant := w.match[key]",
            "\tnot values.glob_any([want], _field(key, f, obj))",
            "}",
        ]
    )
    mod.add(['_field("pack", f, _) := f.pack'])
    for key, ref in (
        ("kind", f"{OBJ}.kind"),
        ("apiVersion", f"{OBJ}.apiVersion"),
        ("name", f"{OBJ}.metadata.name"),
    ):
        mod.add(
            [
                f'_field("{key}", _, {OBJ}) := v if {{',
                f"\tv := {ref}",
                "\tis_string(v)",
                '} else := ""',
            ]
        )
    mod.add(
        [
            f'_field("namespace", _, {OBJ}) := v if {{',
            f"\tv := values.namespace({OBJ})",
            '} else := ""',
        ]
    )
    mod.add(
        [
            "# Findings about one input value; what is not an object (not even",
            "# there) is denied, never passed as clean: fails closed.",
            f"reviewed({OBJ}) := findings({OBJ}) if {{",
            f"\tis_object({OBJ})",
            f"}} else := [{pr.term(NOT_AN_OBJECT)}]",
        ]
    )
    mod.add(
        [
            "# One object as input.",
            f"default violations := [{pr.term(NOT_AN_OBJECT)}]",
            "",
            "violations := reviewed(input)",
        ]
    )
    mod.add(
        [
            "# input.objects: one result list per object.",
            f"batch := [reviewed({OBJ}) | some {OBJ} in input.objects]",
        ]
    )
    mod.add(
        [
            "# The same with base64 messages, for engines whose output encoder does not",
            "# escape strings (regopy prints quotes and control characters raw).",
            *pr.comprehension(
                f"encoded({OBJ}) := [",
                'object.union(f, {"msg": base64.encode(f.msg)})',
                [f"some f in reviewed({OBJ})"],
                "]",
            ),
        ]
    )
    mod.add(
        [
            f"default violations_encoded := [{pr.term(_encoded(NOT_AN_OBJECT))}]",
            "",
            "violations_encoded := encoded(input)",
        ]
    )
    block: list[str] = []
    for line in [*decision_rules(packs), ""]:
        if line:
            block.append(line)
        elif block:
            mod.add(block)
            block = []
    mod.add(
        [
            "# The same with base64 reasons (regopy's output encoder, as above).",
            'decision_encoded := object.union(decision, {"reasons": '
            "[base64.encode(r) | some r in decision.reasons]})",
        ]
    )
    mod.add([f"batch_encoded := [encoded({OBJ}) | some {OBJ} in input.objects]"])
    return mod.text()


def _encoded(finding: Mapping[str, Any]) -> dict[str, Any]:
    return {**finding, "msg": base64.b64encode(str(finding["msg"]).encode()).decode()}


def decision_rules(packs: Sequence[Pack]) -> list[str]:
    """``decision``: the runtime decision for one agent tool call, failing closed
    exactly as :mod:`policykit.toolcall` (the same checks, the same messages)."""
    s = pr.string
    refused = '{"allow": false, "deny": true, "needs_approval": false, "reasons": _call_refusal}'
    out = [
        "# The runtime decision for one call, input {agent, tool, action, args,",
        "# spend_so_far} read as a ToolCall object (its apiVersion and kind win over",
        "# the input's): deny findings deny it, warn findings need human approval.",
        "# It fails closed: an input it cannot classify is denied with the reasons",
        "# why, before any rule runs; so is anything undefined (policykit/toolcall.py).",
        f'default decision := {{"allow": false, "deny": true, "needs_approval": false, '
        f'"reasons": [{s(tc.UNDEFINED)}]}}',
        "",
        f"decision := {refused} if {{",
        "\tcount(_call_refusal) > 0",
        "} else := {",
        '\t"allow": count(_call_findings) == count(_call_notes),',
        '\t"deny": count(_call_denied) > 0,',
        '\t"needs_approval": count(_call_approval) > 0,',
        '\t"reasons": [concat(": ", [f.id, f.msg]) | some f in _call_findings],',
        "}",
        "",
    ]
    out += [
        "# A rule, not is_object(input) under not: that is undefined without input.",
        "_call_input_object if is_object(input)",
        "",
        "_call_in := input if {",
        "\t_call_input_object",
        "} else := {}",
        "",
        "_call := object.union(_call_in, "
        f'{{"apiVersion": {s(tc.API_VERSION)}, "kind": {s(tc.KIND)}}})',
        "",
    ]
    if not tc.decides_calls(packs):
        out += [f"_call_refusal := [{s(tc.NO_RULES)}]"]
    else:
        out += [
            f'_call_refusal := [concat("", [{s(tc.PREFIX)}, m]) | some m in _call_problems]',
            "",
            f"_call_problems := [{s(tc.M_OBJECT)}] if {{",
            "\tnot _call_input_object",
            "} else := sort(_call_bad)",
        ]

        checks: list[str] = []

        def bad(msg: str, binds: Sequence[str], var: str, *ok: str) -> None:
            """``msg`` when the ``ok`` body fails for ``var``: the lookups sit in a
            function body, so an undefined path fails ``ok`` (a ``not`` over an
            undefined argument would be undefined itself)."""
            fn = f"_call_ok_{len(checks)}"
            checks.extend(["", f"{fn}({var}) if {{", *(f"\t{b}" for b in ok), "}"])
            body = [*binds, f"not {fn}({var})"]
            out.extend(["", f"_call_bad contains {s(msg)} if {{", *(f"\t{b}" for b in body), "}"])

        c, agent, spec = (
            ["c := _call_in"],
            ["a := _call_in.agent", "is_object(a)"],
            "_call_in.agent.spec",
        )
        bad(tc.M_API, ["v := _call_in.apiVersion"], "v", f"v == {s(tc.API_VERSION)}")
        bad(tc.M_KIND, ["v := _call_in.kind"], "v", f"v == {s(tc.KIND)}")
        bad(tc.M_META, c, "c", 'not "metadata" in object.keys(c)')
        bad(tc.M_AGENT, c, "c", "is_object(c.agent)")
        bad(
            tc.M_AGENT_TYPE,
            agent,
            "a",
            "is_string(a.apiVersion)",
            f"startswith(a.apiVersion, {s(tc.AGENT_API_PREFIX)})",
            'a.kind == "Agent"',
        )
        bad(tc.M_AGENT_NAME, agent, "a", "_call_nonempty(a.metadata.name)")
        bad(tc.M_SPEC, agent, "a", "is_object(a.spec)")
        for msg, check in (
            (tc.M_TIER, "is_string(sp.tier)"),
            (tc.M_SERVERS, "_call_servers(sp.mcpServers)"),
            (tc.M_BUDGET, "_call_nonneg(sp.budget.monthlyUsd)"),
            (tc.M_AUDIT, "is_boolean(sp.audit.enabled)"),
        ):
            bad(msg, [f"sp := {spec}", "is_object(sp)"], "sp", check)
        for msg, ref, check in (
            (tc.M_EGRESS, f"{spec}.egress", "_call_strings(v)"),
            (tc.M_APPROVAL, f"{spec}.approval", "is_object(v)"),
            (tc.M_REQUIRED_FOR, f"{spec}.approval.requiredFor", "_call_strings(v)"),
            (tc.M_SPEND_ABOVE, f"{spec}.approval.spendAboveUsd", "_call_nonneg(v)"),
            (tc.M_ARGS, "_call_in.args", "is_object(v)"),
            (tc.M_COST, "_call_in.args.cost_usd", "_call_nonneg(v)"),
            (tc.M_DOMAIN, "_call_in.args.domain", "is_string(v)"),
            (tc.M_SPEND, "_call_in.spend_so_far", "_call_nonneg(v)"),
        ):
            bad(msg, [f"v := {ref}"], "v", check)
        bad(
            tc.M_TOOL,
            c,
            "c",
            "is_object(c.tool)",
            "_call_nonempty(c.tool.server)",
            "_call_nonempty(c.tool.name)",
        )
        bad(tc.M_ACTION, c, "c", "is_string(c.action)")
        out += checks
        out += [
            "",
            "_call_nonempty(x) if {",
            "\tis_string(x)",
            '\tx != ""',
            "}",
            "",
            "_call_nonneg(x) if {",
            "\tis_number(x)",
            "\tx >= 0",
            "}",
            "",
            "_call_strings(xs) if {",
            "\tis_array(xs)",
            "\tevery x in xs {",
            "\t\tis_string(x)",
            "\t}",
            "}",
            "",
            "_call_servers(servers) if {",
            "\tis_array(servers)",
            "\tevery srv in servers {",
            "\t\tis_object(srv)",
            "\t\tis_string(srv.name)",
            "\t\tis_array(srv.tools)",
            "\t\tevery t in srv.tools {",
            "\t\t\tis_object(t)",
            "\t\t\tis_string(t.name)",
            "\t\t}",
            "\t}",
            "}",
        ]
    out += ["", "_call_findings := findings(_call)"]
    for name, severity in (("denied", "deny"), ("approval", "warn"), ("notes", "info")):
        out.append(f'_call_{name} := [f | some f in _call_findings; f.severity == "{severity}"]')
    return out


def library(options: RegoOptions) -> dict[str, str]:
    """The Rego helper library with its packages moved under ``options.root``."""
    from policykit.resources import rego_library

    out: dict[str, str] = {}
    lib_root = options.lib_root or f"{options.root}.lib"
    for path, text in rego_library().items():
        if lib_root != "policykit.lib":
            text = text.replace("package policykit.lib.", f"package {lib_root}.")
            text = text.replace("data.policykit.lib.", f"data.{lib_root}.")
        out[path.replace("policykit/lib/", lib_root.replace(".", "/") + "/", 1)] = text
    return out


def compile_packs(packs: Sequence[Pack], options: RegoOptions | None = None) -> dict[str, str]:
    """Every module a bundle needs: bundle path → Rego text (sorted, deterministic)."""
    opts = options or RegoOptions()
    base = opts.root.replace(".", "/")
    modules = dict(library(opts))
    for p in packs:
        modules[f"{base}/{p.name}/policy.rego"] = compile_pack(p, opts)
    modules[f"{base}/main/main.rego"] = main_module(packs, opts)
    return dict(sorted(modules.items()))


def params_module(packs: Sequence[Pack], params: dict[str, dict[str, Any]], root: str) -> str:
    """Parameters as a module (``<root>.params``): the same document as the
    bundle's data, for engines that cannot load data faithfully (regopy)."""
    mod = pr.Module(f"{root}.params")
    for p in packs:
        mod.add([f"{p.name} := {pr.term(params.get(p.name, p.defaults()))}"])
    return mod.text()


def params_data(
    packs: Sequence[Pack], params: dict[str, dict[str, Any]], root: str
) -> dict[str, Any]:
    """The bundle's data document: ``{<root...>: {"params": {pack: values}}}``."""
    return under_root(root, {"params": {p.name: params.get(p.name, p.defaults()) for p in packs}})


def under_root(root: str, doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` placed at ``data.<root>`` (``a.b`` → ``{"a": {"b": doc}}``)."""
    for seg in reversed(root.split(".")):
        doc = {seg: doc}
    return doc


_SWAP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _operand(node: ir.Value, text: str) -> str:
    """``text`` as the operand of an infix operator: an arithmetic value (itself
    infix) is parenthesised, everything else is a term (opa fmt's rule)."""
    return f"({text})" if isinstance(node, ir.Arith) and " " in text else text


REGOPY_PATTERN = 'pattern(p) := replace(p, base64.decode("XA=="), base64.decode("XFw="))'


def regopy_modules(modules: Mapping[str, str]) -> dict[str, str]:
    """``modules`` as regopy must run them: ``values.pattern`` doubles
    backslashes, because regopy's ``regex.match`` unescapes a pattern held in a
    string once (docs/engines.md). Everything else is unchanged."""
    out = dict(modules)
    hits = 0
    for path, text in modules.items():
        if "\npattern(p) := p\n" in text:
            out[path] = text.replace("\npattern(p) := p\n", "\n" + REGOPY_PATTERN + "\n")
            hits += 1
    if hits != 1:
        raise AssertionError(f"expected one values.pattern definition, found {hits}")
    return out
