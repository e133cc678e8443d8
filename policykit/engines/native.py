"""The reference engine: defines what every rule means.

Each rule is compiled once into Python closures (no tree walking per object);
:func:`NativeEngine.evaluate` then costs a few dictionary look-ups per rule.
The semantics implemented here are those of ``docs/semantics.md``; every other
target is tested against this engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from policykit.ir.check import check_pack
from policykit.ir.joins import Grouped, Join, grouped_of, join_of
from policykit.ir.nodes import (
    OBJECT_ROOT,
    And,
    Arith,
    Compare,
    Count,
    Default,
    Exists,
    Filter,
    In,
    Index,
    IsType,
    Keys,
    Length,
    Literal,
    Matches,
    Node,
    Not,
    Objects,
    Or,
    Param,
    Path,
    Pred,
    Quantifier,
    Quantity,
    StrOp,
    Sum,
    Value,
    walk,
)
from policykit.ir.quantity import to_quantity
from policykit.ir.regex import compile_portable
from policykit.ir.rule import Pack, Rule, Selector
from policykit.model import Document, Finding, findings_of
from policykit.values import (
    DECIMAL,
    MISSING,
    exact_sum,
    from_decimal,
    is_number,
    json_equal,
    json_type,
    render_part,
    to_decimal,
)
from policykit.values import arith as exact_arith

Env = dict[str, Any]
INVENTORY = "$inventory"
"""Env key of the inventory (every object of the run) that ``Objects`` reads."""


def identity(obj: Any) -> tuple[Any, Any, Any]:
    """(kind, namespace, name) as written, null when absent: what tells the
    object under review apart from the rest of the inventory."""

    def get(o: Any, k: str) -> Any:
        return o.get(k) if type(o) is dict else None

    meta = get(obj, "metadata")
    return get(obj, "kind"), get(meta, "namespace"), get(meta, "name")


ValueFn = Callable[[Env], Any]
PredFn = Callable[[Env], bool]
F = TypeVar("F", ValueFn, PredFn)
T = TypeVar("T")


def _reads_inventory(node: Node) -> bool:
    """Whether ``node`` reads the inventory (over a collection: its items are
    inventory objects, or constants)."""
    return any(isinstance(n, Objects) for n in walk(node))


def _roots(node: Node) -> tuple[set[str], bool]:
    """The variables ``node`` reads that it does not bind itself, and whether
    it reads the inventory."""
    nodes = walk(node)
    bound = {n.var for n in nodes if isinstance(n, (Count, Sum, Filter, Quantifier))}
    roots = {n.root for n in nodes if isinstance(n, Path)} - bound
    return roots, any(isinstance(n, Objects) for n in nodes)


def _worth_remembering(node: Node) -> bool:
    """Whether computing ``node`` costs more than a cache look-up."""
    if isinstance(node, (Literal, Param)):
        return False
    return not (isinstance(node, Path) and len(node.segments) < 2)


def _per_item(fn: F, var: str) -> F:
    """``fn`` remembered per inventory item (``var``'s value).

    The cache is tied to the inventory list it was filled from, which it keeps
    alive, so an item's ``id`` cannot be reused while its entry is kept."""
    state: list[Any] = [None, {}]

    def remembered(env: Env) -> Any:
        inv = env.get(INVENTORY)
        if inv is not state[0]:
            state[0], state[1] = inv, {}
        item = env[var]
        hit = state[1].get(id(item))
        if hit is not None and hit[0] is item:
            return hit[1]
        value = fn(env)
        state[1][id(item)] = (item, value)
        return value

    return remembered


def _per_object(fn: F) -> F:
    """``fn`` (which reads only the object under review) computed once per
    object, not once per inventory item it is compared with."""
    state: list[Any] = [None, None]

    def remembered(env: Env) -> Any:
        obj = env[OBJECT_ROOT]
        if obj is not state[0]:
            state[0], state[1] = obj, fn(env)
        return state[1]

    return remembered


class _Compiler:
    """IR → closures, dispatching on node class (``v_<Class>``)."""

    def __init__(self, params: Mapping[str, Any], *, remember: bool = True) -> None:
        self.params = params
        self.remember = remember
        # inside the body of a loop over the inventory: its variable. A cross-
        # object rule reads every other object for every object (n² pairs); in
        # its loop bodies, the largest parts that read only the item are
        # remembered per item, and those that read only the object under
        # review are computed once per object (benchmarks/bench_inventory.py).
        self._loop_var: str | None = None

    def _in_loop(self, var: str, collection: Value, compile_body: Callable[[], F]) -> F:
        outer = self._loop_var
        self._loop_var = var if self.remember and _reads_inventory(collection) else None
        try:
            return compile_body()
        finally:
            self._loop_var = outer

    def _remember(self, node: Node, compile_node: Callable[[Node], F]) -> F:
        var = self._loop_var
        if var is None or not _worth_remembering(node):
            return compile_node(node)
        roots, reads_inventory = _roots(node)
        if reads_inventory or (not roots <= {var} and not roots <= {OBJECT_ROOT}):
            return compile_node(node)
        self._loop_var = None  # its parts are not remembered on their own
        try:
            fn = compile_node(node)
        finally:
            self._loop_var = var
        return _per_item(fn, var) if roots <= {var} else _per_object(fn)

    def value(self, node: Value) -> ValueFn:
        fn: Callable[[Any], ValueFn] | None = getattr(self, f"v_{type(node).__name__}", None)
        if fn is None:
            raise NotImplementedError(f"native engine: no value semantics for {node!r}")
        return self._remember(node, fn)

    def pred(self, node: Pred) -> PredFn:
        fn: Callable[[Any], PredFn] | None = getattr(self, f"p_{type(node).__name__}", None)
        if fn is None:
            raise NotImplementedError(f"native engine: no predicate semantics for {node!r}")
        return self._remember(node, fn)

    # values ---------------------------------------------------------------

    def v_Path(self, n: Path) -> ValueFn:
        root, segs = n.root, n.segments
        if not segs:
            return lambda env: env[root]
        if all(isinstance(s, str) for s in segs):
            if len(segs) == 1:
                (a,) = segs

                def get1(env: Env) -> Any:
                    v = env[root]
                    return v.get(a, MISSING) if type(v) is dict else MISSING

                return get1
            if len(segs) == 2:
                a, b = segs

                def get2(env: Env) -> Any:
                    v = env[root]
                    if type(v) is not dict:
                        return MISSING
                    v = v.get(a, MISSING)
                    return v.get(b, MISSING) if type(v) is dict else MISSING

                return get2

        def get(env: Env) -> Any:
            v = env[root]
            for s in segs:
                if type(s) is str:
                    if type(v) is not dict:
                        return MISSING
                    v = v.get(s, MISSING)
                else:
                    if type(v) is not list or s >= len(v):  # type: ignore[operator]
                        return MISSING
                    v = v[s]  # type: ignore[index]
            return v

        return get

    def v_Literal(self, n: Literal) -> ValueFn:
        v = list(n.value) if isinstance(n.value, tuple) else n.value
        return lambda env: v

    def v_Param(self, n: Param) -> ValueFn:
        v = self.params.get(n.name, MISSING)
        return lambda env: v

    def v_Length(self, n: Length) -> ValueFn:
        f = self.value(n.operand)

        def length(env: Env) -> Any:
            v = f(env)
            t = type(v)
            return len(v) if t is str or t is list or t is dict else MISSING

        return length

    def v_Quantity(self, n: Quantity) -> ValueFn:
        f = self.value(n.operand)

        def qty(env: Env) -> Any:
            q = to_quantity(f(env))
            return MISSING if q is None else q

        return qty

    def v_Arith(self, n: Arith) -> ValueFn:
        lf, rf, op = self.value(n.left), self.value(n.right), n.op

        def arith(env: Env) -> Any:
            a, b = lf(env), rf(env)
            if not (is_number(a) and is_number(b)):
                return MISSING
            r = exact_arith(op, a, b)
            return MISSING if r is None else r

        return arith

    def v_Default(self, n: Default) -> ValueFn:
        f, fb = self.value(n.operand), self.value(n.fallback)

        def default(env: Env) -> Any:
            v = f(env)
            return fb(env) if v is MISSING or v is None else v

        return default

    def v_Keys(self, n: Keys) -> ValueFn:
        f = self.value(n.operand)

        def keys(env: Env) -> Any:
            v = f(env)
            return sorted(v) if type(v) is dict else MISSING

        return keys

    def v_Count(self, n: Count) -> ValueFn:
        grouped = grouped_of(n) if self.remember else None
        if grouped is not None:
            return self._grouped(grouped)
        cf, var = self.value(n.collection), n.var
        body = self._in_loop(var, n.collection, lambda: self.pred(n.body))

        def count(env: Env) -> Any:
            coll = cf(env)
            if type(coll) is not list:
                return 0
            inner = dict(env)
            c = 0
            for item in coll:
                inner[var] = item
                if body(inner):
                    c += 1
            return c

        return count

    def v_Sum(self, n: Sum) -> ValueFn:
        grouped = grouped_of(n) if self.remember else None
        if grouped is not None:
            return self._grouped(grouped)
        cf, var = self.value(n.collection), n.var
        term = self._in_loop(var, n.collection, lambda: self.value(n.term))

        def total(env: Env) -> Any:
            coll = cf(env)
            if type(coll) is not list:
                return 0
            inner = dict(env)
            terms: list[int | float] = []
            for item in coll:
                inner[var] = item
                t = term(inner)
                if is_number(t):
                    terms.append(t)
            return exact_sum(terms)

        return total

    def v_Index(self, n: Index) -> ValueFn:
        bf, kf = self.value(n.base), self.value(n.key)

        def index(env: Env) -> Any:
            b, k = bf(env), kf(env)
            if type(b) is not dict or type(k) is not str:
                return MISSING
            return b.get(k, MISSING)

        return index

    def v_Filter(self, n: Filter) -> ValueFn:
        join = join_of(n) if self.remember else None
        if join is not None:
            return self._join_filter(join)
        cf, var = self.value(n.collection), n.var
        body = self._in_loop(var, n.collection, lambda: self.pred(n.body))

        def keep(env: Env) -> Any:
            coll = cf(env)
            if type(coll) is not list:
                return MISSING
            inner = dict(env)
            out = []
            for item in coll:
                inner[var] = item
                if body(inner):
                    out.append(item)
            return out

        return keep

    def v_Objects(self, n: Objects) -> ValueFn:
        state: list[Any] = [None, []]  # the inventory, and its objects' identities

        def others(env: Env) -> Any:
            inv = env.get(INVENTORY, ())
            if inv is not state[0]:
                state[0], state[1] = inv, [(identity(o), o) for o in inv]
            me = identity(env[OBJECT_ROOT])
            return [o for who, o in state[1] if who != me]

        return others

    # joins over the inventory (policykit/ir/joins.py) ------------------------

    def _plain(self, compile_node: Callable[[], T]) -> T:
        """Compiled outside any loop over the inventory (nothing remembered):
        for what the index evaluates once per item."""
        outer = self._loop_var
        self._loop_var = None
        try:
            return compile_node()
        finally:
            self._loop_var = outer

    def _index_of(self, join: Join) -> Callable[[Env], _JoinIndex]:
        """The join's index over the current inventory, built on first use and
        again for each new inventory (``set_inventory``)."""
        var = join.var
        keys = self._plain(lambda: [self.value(k) for k in join.item_keys])
        only = self._plain(lambda: [self.pred(p) for p in join.item_only])
        state: list[Any] = [None, None]

        def index(env: Env) -> _JoinIndex:
            inv = env.get(INVENTORY, ())
            if inv is state[0]:
                return state[1]  # type: ignore[no-any-return]
            groups: dict[Any, list[tuple[Any, Any]]] = {}
            inner: Env = {}
            for item in inv:
                inner[var] = item
                key = _join_key([k(inner) for k in keys])
                if key is _NO_KEY or not all(p(inner) for p in only):
                    continue
                groups.setdefault(key, []).append((identity(item), item))
            state[0], state[1] = inv, _JoinIndex(groups)
            return state[1]  # type: ignore[no-any-return]

        return index

    def _object_key(self, join: Join) -> ValueFn:
        fns = [self.value(k) for k in join.object_keys]
        return lambda env: _join_key([f(env) for f in fns])

    def _join_filter(self, join: Join) -> ValueFn:
        index, key_of = self._index_of(join), self._object_key(join)
        var = join.var
        rest: PredFn | None = None
        if join.rest:
            items = join.rest
            rest = self._in_loop(
                var, Objects(), lambda: self.pred(items[0] if len(items) == 1 else And(items))
            )

        def lookup(env: Env) -> Any:
            key = key_of(env)
            if key is _NO_KEY:
                return []
            group = index(env).groups.get(key)
            if not group:
                return []
            me = identity(env[OBJECT_ROOT])
            out = [o for who, o in group if who != me]
            if rest is None:
                return out
            inner = dict(env)
            kept = []
            for o in out:
                inner[var] = o
                if rest(inner):
                    kept.append(o)
            return kept

        return lookup

    def _grouped(self, g: Grouped) -> ValueFn:
        index, key_of = self._index_of(g.join), self._object_key(g.join)
        var = g.var
        if g.term is not None:
            term = g.term
            per_item: ValueFn = self._plain(lambda: self.value(term))
        else:
            body = g.body
            counted = self._plain(lambda: self.pred(body))
            per_item = lambda env: 1 if counted(env) else None  # noqa: E731
        totals: list[Any] = [None, {}]  # the index they were computed from, key → _Total

        def aggregate(env: Env) -> Any:
            key = key_of(env)
            if key is _NO_KEY:
                return 0
            idx = index(env)
            if totals[0] is not idx:
                totals[0], totals[1] = idx, {}
            total = totals[1].get(key)
            if total is None:
                group = idx.groups.get(key, [])
                inner: Env = {}
                values = []
                for who, item in group:
                    inner[var] = item
                    values.append((who, per_item(inner)))
                total = totals[1][key] = _Total(values)
            return total.without(identity(env[OBJECT_ROOT]))

        return aggregate

    # predicates -----------------------------------------------------------

    def p_Compare(self, n: Compare) -> PredFn:
        lf, rf, op = self.value(n.left), self.value(n.right), n.op
        if op == "==":
            return lambda env: _eq(lf(env), rf(env))
        if op == "!=":
            return lambda env: _ne(lf(env), rf(env))

        def order(env: Env) -> bool:
            a, b = lf(env), rf(env)
            ta, tb = type(a), type(b)
            if (ta is int or ta is float) and (tb is int or tb is float):
                pass
            elif not (ta is str and tb is str):
                return False
            if op == "<":
                return bool(a < b)
            if op == "<=":
                return bool(a <= b)
            if op == ">":
                return bool(a > b)
            return bool(a >= b)

        return order

    def p_And(self, n: And) -> PredFn:
        fs = [self.pred(i) for i in n.items]
        if len(fs) == 2:  # the common case, without a generator per call
            a, b = fs
            return lambda env: a(env) and b(env)
        return lambda env: all(f(env) for f in fs)

    def p_Or(self, n: Or) -> PredFn:
        fs = [self.pred(i) for i in n.items]
        if len(fs) == 2:
            a, b = fs
            return lambda env: a(env) or b(env)
        return lambda env: any(f(env) for f in fs)

    def p_Not(self, n: Not) -> PredFn:
        f = self.pred(n.item)
        return lambda env: not f(env)

    def p_Exists(self, n: Exists) -> PredFn:
        f = self.value(n.operand)

        def exists(env: Env) -> bool:
            v = f(env)
            return v is not MISSING and v is not None

        return exists

    def p_Matches(self, n: Matches) -> PredFn:
        sf = self.value(n.subject)
        pattern = self.value(n.pattern)({})
        search = compile_portable(pattern).search
        return lambda env: (type(s := sf(env)) is str) and search(s) is not None

    def p_StrOp(self, n: StrOp) -> PredFn:
        sf, af, op = self.value(n.subject), self.value(n.arg), n.op

        def strop(env: Env) -> bool:
            s, a = sf(env), af(env)
            if type(s) is not str or type(a) is not str:
                return False
            if op == "startswith":
                return s.startswith(a)
            if op == "endswith":
                return s.endswith(a)
            return a in s

        return strop

    def p_In(self, n: In) -> PredFn:
        ef, cf = self.value(n.element), self.value(n.collection)

        def member(env: Env) -> bool:
            e, coll = ef(env), cf(env)
            if e is MISSING or type(coll) is not list:
                return False
            return any(json_equal(e, x) for x in coll)

        return member

    def p_Quantifier(self, n: Quantifier) -> PredFn:
        cf, var = self.value(n.collection), n.var
        body = self._in_loop(var, n.collection, lambda: self.pred(n.body))
        want_all = n.kind == "all"

        def quant(env: Env) -> bool:
            coll = cf(env)
            if type(coll) is not list:
                return want_all
            inner = dict(env)
            for item in coll:
                inner[var] = item
                if body(inner) is not want_all:
                    return not want_all
            return want_all

        return quant

    def p_IsType(self, n: IsType) -> PredFn:
        f, name = self.value(n.operand), n.type_name
        return lambda env: json_type(f(env)) == name


_NO_KEY: Any = object()
"""A join key that equals nothing: a missing value, or a NaN somewhere."""


def _hashable(v: Any) -> Any:
    """A hashable stand-in for a JSON value: equal exactly when the values are
    equal as ``==`` compares them (``json_equal``: ``1 == 1.0``, ``true != 1``)."""
    t = type(v)
    if t is str or t is int:
        return v
    if t is float:
        return v if v == v else _NO_KEY
    if t is bool:
        return (v,)
    if v is None:
        return None
    if t is list:
        items = tuple(_hashable(x) for x in v)
        return _NO_KEY if any(x is _NO_KEY for x in items) else ("list", items)
    if t is dict:
        pairs = frozenset((k, _hashable(x)) for k, x in v.items())
        return _NO_KEY if any(x is _NO_KEY for _, x in pairs) else ("dict", pairs)
    return _NO_KEY  # MISSING


def _join_key(values: list[Any]) -> Any:
    if len(values) == 1:
        return _hashable(values[0])
    keys = tuple(_hashable(v) for v in values)
    return _NO_KEY if any(k is _NO_KEY for k in keys) else keys


class _JoinIndex:
    """The inventory items a join can keep, by key, in inventory order, each
    with its identity."""

    __slots__ = ("groups",)

    def __init__(self, groups: dict[Any, list[tuple[Any, Any]]]) -> None:
        self.groups = groups


def _span_ok(values: list[int | float]) -> bool:
    """Whether every sum of some of ``values``, added one by one in the
    reference's 60-digit decimal context, is exact (so a total less a part is
    what adding up the rest gives)."""
    low: int | None = None
    high: int | None = None
    for v in values:
        d = to_decimal(v)
        if not d:
            continue
        exp = d.as_tuple().exponent
        assert isinstance(exp, int)
        low = exp if low is None else min(low, exp)
        high = d.adjusted() if high is None else max(high, d.adjusted())
    if low is None or high is None:
        return True
    return high - low + 1 + len(str(len(values))) < DECIMAL.prec


class _Total:
    """A sum (or count) over a join group, less the items with one identity:
    exactly ``exact_sum`` over the rest, without adding the rest up again."""

    __slots__ = ("by_id", "everything", "exact", "ints", "non_ints", "terms", "unhashable")

    def __init__(self, values: list[tuple[Any, Any]]) -> None:
        self.terms = [(who, v) for who, v in values if is_number(v)]
        numbers = [v for _, v in self.terms]
        self.ints = sum(v for v in numbers if type(v) is int)
        self.non_ints = sum(1 for v in numbers if type(v) is not int)
        self.everything = exact_sum(numbers)
        # the exact decimal total, when a total less a part is exact too
        self.exact = _decimal_sum(numbers) if self.non_ints and _span_ok(numbers) else None
        # identity → its terms; identities holding a list or an object are not hashable
        self.by_id: dict[Any, list[int | float]] = {}
        self.unhashable: list[tuple[Any, int | float]] = []
        for who, v in self.terms:
            try:
                self.by_id.setdefault(who, []).append(v)
            except TypeError:
                self.unhashable.append((who, v))

    def without(self, me: Any) -> int | float:
        """``exact_sum`` of the terms of the items whose identity is not ``me``."""
        try:
            mine = list(self.by_id.get(me, ()))
        except TypeError:  # ``me`` is unhashable: only an unhashable identity equals it
            mine = []
        mine += [v for who, v in self.unhashable if who == me]
        if not mine:
            return self.everything
        if sum(1 for v in mine if type(v) is not int) == self.non_ints:
            return self.ints - sum(v for v in mine if type(v) is int)  # the rest: integers
        if self.exact is not None:
            return from_decimal(DECIMAL.subtract(self.exact, _decimal_sum(mine)))
        return exact_sum([v for who, v in self.terms if who != me])


def _decimal_sum(values: list[int | float]) -> Decimal:
    total = Decimal(0)
    for v in values:
        total = DECIMAL.add(total, to_decimal(v))
    return total


def _eq(a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING:
        return False
    return json_equal(a, b)


def _ne(a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING:
        return False
    return not json_equal(a, b)


def _glob(patterns: Sequence[str], value: str) -> bool:
    for p in patterns:
        if p.endswith("*"):
            if value.startswith(p[:-1]):
                return True
        elif p == value:
            return True
    return False


def selector_matches(sel: Selector, obj: dict[str, Any], source: str) -> bool:
    """Whether a rule's selector picks ``obj`` (semantics: docs/semantics.md)."""
    if sel.source is not None and sel.source != source:
        return False
    if sel.kinds and obj.get("kind") not in sel.kinds:
        return False
    if sel.api_versions:
        api = obj.get("apiVersion")
        if not isinstance(api, str) or not any(
            api == p or (p.endswith("/*") and api.startswith(p[:-1])) for p in sel.api_versions
        ):
            return False
    meta = obj.get("metadata")
    meta = meta if type(meta) is dict else {}
    if sel.namespaces or sel.exclude_namespaces:
        ns = meta.get("namespace")
        if type(ns) is not str:
            ns = "default" if source == "backstage" else None
        if sel.namespaces and (ns is None or not _glob(sel.namespaces, ns)):
            return False
        if ns is not None and _glob(sel.exclude_namespaces, ns):
            return False
    if sel.labels:
        labels = meta.get("labels")
        if type(labels) is not dict:
            return False
        for k, v in sel.labels:
            if labels.get(k, MISSING) != v or type(labels.get(k)) is not str:
                return False
    if sel.entity_types:
        spec = obj.get("spec")
        t = spec.get("type") if type(spec) is dict else None
        if type(t) is not str or t not in sel.entity_types:
            return False
    return True


@dataclass(slots=True)
class _CompiledRule:
    rule: Rule
    pack: str
    cond: PredFn
    parts: list[str | ValueFn]
    each: ValueFn | None
    each_var: str

    def message(self, env: Env) -> str:
        # render_part: a huge value costs no more than the message cap (Finding caps)
        return "".join(p if type(p) is str else render_part(p(env)) for p in self.parts)  # type: ignore[operator]


def compile_rule(
    rule: Rule, pack: str, params: Mapping[str, Any], *, remember: bool = True
) -> _CompiledRule:
    c = _Compiler(params, remember=remember)
    return _CompiledRule(
        rule=rule,
        pack=pack,
        cond=c.pred(rule.condition),
        parts=[p if isinstance(p, str) else c.value(p) for p in rule.message.parts],
        each=None if rule.each is None else c.value(rule.each.collection),
        each_var="" if rule.each is None else rule.each.var,
    )


class NativeEngine:
    """Evaluates packs over documents; the reference for every other engine."""

    def __init__(
        self,
        packs: Sequence[Pack],
        params: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        remember: bool = True,
    ) -> None:
        """``remember=False`` evaluates cross-object rules without remembering
        anything between inventory items (the plain reading of the semantics,
        n² times slower; for tests and benchmarks)."""
        params = params or {}
        self.packs = tuple(packs)
        self.effective_params: dict[str, dict[str, Any]] = {}
        self._by_kind: dict[str, list[_CompiledRule]] = {}
        self._any_kind: list[_CompiledRule] = []
        self.inventory: list[dict[str, Any]] = []
        for pack in self.packs:
            eff = check_pack(pack, params.get(pack.name, {}))
            self.effective_params[pack.name] = eff
            for rule in pack.rules:
                cr = compile_rule(rule, pack.name, eff, remember=remember)
                if rule.selector.kinds:
                    for k in rule.selector.kinds:
                        self._by_kind.setdefault(k, []).append(cr)
                else:
                    self._any_kind.append(cr)

    @property
    def uses_inventory(self) -> bool:
        return uses_inventory(self.packs)

    def set_inventory(self, objects: Sequence[dict[str, Any]]) -> None:
        """The objects ``Objects`` reads (every object of the run)."""
        self.inventory = list(objects)

    def rules_for(self, obj: dict[str, Any]) -> list[_CompiledRule]:
        kind = obj.get("kind")
        specific = self._by_kind.get(kind, []) if isinstance(kind, str) else []
        return self._any_kind + specific if specific else self._any_kind

    def evaluate_object(
        self, obj: dict[str, Any], source: str
    ) -> list[tuple[_CompiledRule, str, int | None]]:
        """(rule, message, item) for every finding about one object."""
        out: list[tuple[_CompiledRule, str, int | None]] = []
        for cr in self.rules_for(obj):
            if not selector_matches(cr.rule.selector, obj, source):
                continue
            env: Env = {OBJECT_ROOT: obj, INVENTORY: self.inventory}
            if cr.each is None:
                if cr.cond(env):
                    out.append((cr, cr.message(env), None))
                continue
            coll = cr.each(env)
            if type(coll) is not list:
                continue
            for i, item in enumerate(coll):
                env[cr.each_var] = item
                if cr.cond(env):
                    out.append((cr, cr.message(env), i))
        return out

    def evaluate(self, doc: Document) -> list[Finding]:
        hits = self.evaluate_object(doc.obj, doc.source)
        if not hits:  # the common case: no object reference to build
            return []
        return findings_of(doc, ((cr.rule, cr.pack, msg, item) for cr, msg, item in hits))

    def evaluate_all(self, docs: Iterable[Document]) -> list[Finding]:
        out: list[Finding] = []
        for d in docs:
            out.extend(self.evaluate(d))
        return out


def uses_inventory(packs: Iterable[Pack]) -> bool:
    """Whether some rule reads the inventory (then every object must be loaded
    before any is evaluated)."""
    for pack in packs:
        for rule in pack.rules:
            roots: list[Any] = [rule.condition, *rule.message.parts]
            if rule.each is not None:
                roots.append(rule.each.collection)
            for r in roots:
                if not isinstance(r, str) and _reads_inventory(r):
                    return True
    return False


def nodes_supported() -> set[str]:
    """Node classes this engine gives semantics to (for the capability tests)."""
    return {n[2:] for n in dir(_Compiler) if n.startswith(("v_", "p_"))}
