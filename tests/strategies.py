"""Hypothesis generators: random rules from the IR grammar, and random objects.

Rules are drawn node by node (depth-limited), with bound variables in scope,
parameters, ``each`` collections, selectors and interpolated messages. Objects
share a small key alphabet with the rules so that paths hit present, missing,
null and wrongly-typed fields alike.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from policykit.ir import nodes as ir
from policykit.ir.rule import Each, Message, Pack, ParamSpec, Rule, Selector

KEYS = ["a", "b", "n", "s", "l", "x-y", "é"]
KINDS = ["Thing", "Other"]
TEXT = st.text(alphabet='ab-_.:/é😀 "\\{}#\n', max_size=5)
PATTERNS = [r"^a", r"b$", r"[0-9]+", r"^[a-z]+(-[a-z]+)*$", r"é", r"\d", r"^$", r"a|b", r"\."]
QUANTITY_STRINGS = ["1", "500m", "2Gi", "1.5", ".5", "1e3", "3k", "x", "", "1gi"]

numbers = st.one_of(
    st.integers(-1000, 1000),
    st.decimals(
        min_value=-1000, max_value=1000, places=2, allow_nan=False, allow_infinity=False
    ).map(lambda d: float(d)),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, TEXT, st.sampled_from(QUANTITY_STRINGS))


def json_value(depth: int = 2) -> st.SearchStrategy[Any]:
    if depth <= 0:
        return scalars
    inner = json_value(depth - 1)
    return st.one_of(
        scalars,
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    )


@st.composite
def objects(draw: st.DrawFn) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": draw(TEXT)}
    if draw(st.booleans()):
        meta["namespace"] = draw(st.sampled_from(["prod-a", "dev", "default"]))
    if draw(st.booleans()):
        meta["labels"] = draw(
            st.dictionaries(
                st.sampled_from(["team", "tier"]), st.sampled_from(["x", "y"]), max_size=2
            )
        )
    spec = draw(st.dictionaries(st.sampled_from(KEYS), json_value(2), max_size=5))
    api = draw(st.sampled_from(["v1", "apps/v1", "backstage.io/v1alpha1"]))
    return {"apiVersion": api, "kind": draw(st.sampled_from(KINDS)), "metadata": meta, "spec": spec}


class RuleGen:
    """Draws IR nodes with ``data.draw``; ``scope`` lists the bound variables."""

    def __init__(self, draw: st.DrawFn, params: dict[str, Any], *, inventory: bool = False) -> None:
        self.draw = draw
        self.params = params
        self.inventory = inventory  # draw Objects nodes (not for the CEL targets)
        self.n = 0

    def var(self) -> str:
        self.n += 1
        return f"v{self.n}"

    def path(self, scope: list[str]) -> ir.Path:
        roots = [ir.OBJECT_ROOT, *scope]
        root = self.draw(st.sampled_from(roots))
        segs: list[str | int] = []
        if root == ir.OBJECT_ROOT:
            segs.append(self.draw(st.sampled_from(["spec", "spec", "metadata"])))
        for _ in range(self.draw(st.integers(0 if root != ir.OBJECT_ROOT else 1, 2))):
            segs.append(
                self.draw(st.one_of(st.sampled_from([*KEYS, "name", "labels"]), st.integers(0, 2)))
            )
        return ir.Path(root, tuple(segs))

    def literal(self) -> ir.Literal:
        v = self.draw(st.one_of(scalars, st.lists(scalars, max_size=3).map(tuple)))
        return ir.Literal(v)

    def value(self, depth: int, scope: list[str]) -> ir.Value:
        choices = ["path", "path", "literal"]
        if self.params:
            choices.append("param")
        if depth > 0:
            choices += ["length", "quantity", "arith", "default", "keys", "count", "sum"]
            choices += ["index", "filter"]
            if self.inventory:
                choices += ["objects", "objects"]
        kind = self.draw(st.sampled_from(choices))
        if kind == "path":
            return self.path(scope)
        if kind == "literal":
            return self.literal()
        if kind == "param":
            return ir.Param(self.draw(st.sampled_from(sorted(self.params))))
        if kind == "length":
            return ir.Length(self.value(depth - 1, scope))
        if kind == "quantity":
            return ir.Quantity(
                self.draw(
                    st.one_of(
                        st.just(self.path(scope)),
                        st.sampled_from(QUANTITY_STRINGS).map(ir.Literal),
                    )
                )
            )
        if kind == "arith":
            op = self.draw(st.sampled_from(["+", "-", "*", "/"]))
            return ir.Arith(op, self.value(depth - 1, scope), self.value(depth - 1, scope))
        if kind == "default":
            return ir.Default(self.value(depth - 1, scope), self.value(depth - 1, scope))
        if kind == "keys":
            return ir.Keys(self.value(depth - 1, scope))
        if kind == "index":
            base: ir.Value = self.value(depth - 1, scope)
            if "table" in self.params and self.draw(st.booleans()):
                base = ir.Param("table")
            key = self.draw(
                st.one_of(
                    st.just(self.value(depth - 1, scope)), st.sampled_from(KEYS).map(ir.Literal)
                )
            )
            return ir.Index(base, key)
        if kind == "objects":
            return ir.Objects()
        v = self.var()
        coll = self.value(depth - 1, scope)
        if kind == "count":
            return ir.Count(v, coll, self.pred(depth - 1, [*scope, v]))
        if kind == "filter":
            return ir.Filter(v, coll, self.pred(depth - 1, [*scope, v]))
        return ir.Sum(v, coll, self.value(depth - 1, [*scope, v]))

    def pred(self, depth: int, scope: list[str]) -> ir.Pred:
        choices = ["compare", "compare", "exists", "matches", "strop", "in", "istype"]
        if depth > 0:
            choices += ["and", "or", "not", "quant", "quant"]
        kind = self.draw(st.sampled_from(choices))
        d = depth - 1
        if kind == "compare":
            op = self.draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
            return ir.Compare(op, self.value(d, scope), self.value(d, scope))
        if kind == "exists":
            return ir.Exists(self.value(d, scope))
        if kind == "matches":
            pattern: ir.Value = ir.Literal(self.draw(st.sampled_from(PATTERNS)))
            if "pattern" in self.params and self.draw(st.booleans()):
                pattern = ir.Param("pattern")
            return ir.Matches(self.value(d, scope), pattern)
        if kind == "strop":
            op = self.draw(st.sampled_from(["startswith", "endswith", "contains"]))
            return ir.StrOp(op, self.value(d, scope), self.value(d, scope))
        if kind == "in":
            return ir.In(self.value(d, scope), self.value(d, scope))
        if kind == "istype":
            t = self.draw(
                st.sampled_from(["string", "number", "boolean", "array", "object", "null"])
            )
            return ir.IsType(self.value(d, scope), t)  # type: ignore[arg-type]
        if kind in ("and", "or"):
            items = tuple(self.pred(d, scope) for _ in range(self.draw(st.integers(0, 3))))
            return ir.And(items) if kind == "and" else ir.Or(items)
        if kind == "not":
            return ir.Not(self.pred(d, scope))
        v = self.var()
        coll = self.value(d, scope)
        q = self.draw(st.sampled_from(["all", "any"]))
        return ir.Quantifier(q, v, coll, self.pred(d, [*scope, v]))  # type: ignore[arg-type]

    def selector(self) -> Selector:
        return Selector(
            source=self.draw(st.sampled_from([None, None, "kubernetes", "backstage"])),
            kinds=tuple(self.draw(st.lists(st.sampled_from(KINDS), max_size=2, unique=True))),
            namespaces=tuple(self.draw(st.lists(st.sampled_from(["prod-*", "dev"]), max_size=1))),
            exclude_namespaces=tuple(self.draw(st.lists(st.sampled_from(["dev*"]), max_size=1))),
            labels=tuple(self.draw(st.lists(st.sampled_from([("team", "x")]), max_size=1))),
        )

    def rule(self, i: int) -> Rule:
        scope: list[str] = []
        each = None
        if self.draw(st.booleans()):
            each = Each("it", self.path([]))
            scope = ["it"]
        parts: list[str | ir.Value] = [f"r{i} "]
        for _ in range(self.draw(st.integers(0, 3))):
            parts.append(self.value(1, scope))
            parts.append(self.draw(TEXT))
        return Rule(
            id=f"GEN-{i}",
            title=f"generated rule {i}",
            severity=self.draw(st.sampled_from(["deny", "warn", "info"])),
            condition=self.pred(self.draw(st.integers(0, 3)), scope),
            message=Message(tuple(parts)),
            selector=self.selector(),
            each=each,
        )


@st.composite
def packs(draw: st.DrawFn, inventory: bool = False) -> Pack:
    params: dict[str, Any] = {}
    specs = []
    if draw(st.booleans()):
        params["limit"] = draw(numbers)
        specs.append(ParamSpec("limit", {"type": "number"}, params["limit"]))
    if draw(st.booleans()):
        params["allowed"] = draw(st.lists(scalars, max_size=3))
        specs.append(ParamSpec("allowed", {"type": "array"}, params["allowed"]))
    if draw(st.booleans()):
        params["pattern"] = draw(st.sampled_from(PATTERNS))
        specs.append(ParamSpec("pattern", {"type": "string"}, params["pattern"]))
    if draw(st.booleans()):
        params["table"] = draw(st.dictionaries(st.sampled_from(KEYS), scalars, max_size=4))
        specs.append(ParamSpec("table", {"type": "object"}, params["table"]))
    gen = RuleGen(draw, params, inventory=inventory)
    rules = tuple(gen.rule(i) for i in range(1, draw(st.integers(1, 3)) + 1))
    return Pack("gen", "1.0.0", rules, tuple(specs))


def decimal_places(v: float) -> int:
    exp = Decimal(repr(v)).as_tuple().exponent
    return -exp if isinstance(exp, int) and exp < 0 else 0
