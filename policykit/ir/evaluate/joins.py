"""Joins over the inventory, evaluated (the shapes are found by
:mod:`policykit.ir.joins`): per join and per inventory, an index of the items
by key, built once; a filter looks the object under review up in it, a count
or sum is computed once per key, less the object's own identity."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from policykit.ir.evaluate.env import INVENTORY, Env, PredFn, ValueFn, identity
from policykit.ir.joins import Grouped, Join
from policykit.ir.nodes import OBJECT_ROOT, And, Objects
from policykit.values import DECIMAL, exact_sum, from_decimal, is_number, to_decimal

if TYPE_CHECKING:
    from policykit.ir.evaluate.closures import Evaluator


def index_of(ev: Evaluator, join: Join) -> Callable[[Env], JoinIndex]:
    """The join's index over the current inventory, built on first use and
    again for each new inventory (``set_inventory``)."""
    var = join.var
    keys = ev.plain(lambda: [ev.value(k) for k in join.item_keys])
    only = ev.plain(lambda: [ev.pred(p) for p in join.item_only])
    state: list[Any] = [None, None]

    def index(env: Env) -> JoinIndex:
        inv = env.get(INVENTORY, ())
        if inv is state[0]:
            return state[1]  # type: ignore[no-any-return]
        groups: dict[Any, list[tuple[Any, Any]]] = {}
        inner: Env = {}
        for item in inv:
            inner[var] = item
            key = join_key([k(inner) for k in keys])
            if key is NO_KEY or not all(p(inner) for p in only):
                continue
            groups.setdefault(key, []).append((identity(item), item))
        state[0], state[1] = inv, JoinIndex(groups)
        return state[1]  # type: ignore[no-any-return]

    return index


def object_key(ev: Evaluator, join: Join) -> ValueFn:
    fns = [ev.value(k) for k in join.object_keys]
    return lambda env: join_key([f(env) for f in fns])


def join_filter(ev: Evaluator, join: Join) -> ValueFn:
    index, key_of = index_of(ev, join), object_key(ev, join)
    var = join.var
    rest: PredFn | None = None
    if join.rest:
        items = join.rest
        rest = ev.in_loop(
            var, Objects(), lambda: ev.pred(items[0] if len(items) == 1 else And(items))
        )

    def lookup(env: Env) -> Any:
        key = key_of(env)
        if key is NO_KEY:
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


def grouped(ev: Evaluator, g: Grouped) -> ValueFn:
    index, key_of = index_of(ev, g.join), object_key(ev, g.join)
    var = g.var
    if g.term is not None:
        term = g.term
        per_item: ValueFn = ev.plain(lambda: ev.value(term))
    else:
        body = g.body
        counted = ev.plain(lambda: ev.pred(body))
        per_item = lambda env: 1 if counted(env) else None  # noqa: E731
    totals: list[Any] = [None, {}]  # the index they were computed from, key → Total

    def aggregate(env: Env) -> Any:
        key = key_of(env)
        if key is NO_KEY:
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
            total = totals[1][key] = Total(values)
        return total.without(identity(env[OBJECT_ROOT]))

    return aggregate


NO_KEY: Any = object()
"""A join key that equals nothing: a missing value, or a NaN somewhere."""


def hashable(v: Any) -> Any:
    """A hashable stand-in for a JSON value: equal exactly when the values are
    equal as ``==`` compares them (``json_equal``: ``1 == 1.0``, ``true != 1``)."""
    t = type(v)
    if t is str or t is int:
        return v
    if t is float:
        return v if v == v else NO_KEY
    if t is bool:
        return (v,)
    if v is None:
        return None
    if t is list:
        items = tuple(hashable(x) for x in v)
        return NO_KEY if any(x is NO_KEY for x in items) else ("list", items)
    if t is dict:
        pairs = frozenset((k, hashable(x)) for k, x in v.items())
        return NO_KEY if any(x is NO_KEY for _, x in pairs) else ("dict", pairs)
    return NO_KEY  # MISSING


def join_key(values: list[Any]) -> Any:
    if len(values) == 1:
        return hashable(values[0])
    keys = tuple(hashable(v) for v in values)
    return NO_KEY if any(k is NO_KEY for k in keys) else keys


class JoinIndex:
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


class Total:
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
