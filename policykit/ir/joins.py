"""Joins over the inventory: where a cross-object rule can use a hash index.

A loop over ``objects()`` whose condition requires an item's field to equal a
value of the object under review (FINOPS-008: the Deployment an HPA scales;
FINOPS-009: the workloads of the same cost center) reads every other object
for every object: n² pairs in a run. Read as a join, it is linear: index the
inventory once by the item side of the equality, then look each object up.

This module only *recognises* such loops (pure functions over IR nodes); the
evaluators build and use the index (``ir/evaluate/joins.py``, the Rego compiler).
Nothing here changes what a rule means: an indexed evaluation must give exactly
what the plain reading gives (property tests hold the engines to it).

A join is recognised in ``Filter(var, Objects(), body)`` when ``body`` (an
``And``, flattened, or a single predicate) has at least one conjunct
``Compare("==", a, b)`` where one side reads the item ``var`` and nothing else
but parameters and constants, and the other reads neither ``var`` nor the
inventory (the object under review, an ``each`` item, ...). The other conjuncts
are split into those that read only the item (applied once, when the index is
built) and the rest (checked on each candidate the index returns).

A sum or a count over such a filter whose term (or body) reads only its own
item is a :class:`Grouped` aggregate: computed once per key, and per object
corrected for the objects the inventory leaves out (those with the identity of
the object under review).
"""

from __future__ import annotations

from collections.abc import Iterable

from policykit.frozen import frozen
from policykit.ir.nodes import (
    TRUE,
    And,
    Compare,
    Count,
    Filter,
    Node,
    Objects,
    Path,
    Pred,
    Quantifier,
    Sum,
    Value,
    walk,
)

_BINDERS = (Count, Sum, Filter, Quantifier)


@frozen
class Join:
    """``Filter(var, Objects(), body)`` read as an equi-join.

    An inventory item ``x`` is kept for the object under review when it is not
    left out by identity, every ``item_keys[i](x)`` equals (JSON equality, both
    present) ``object_keys[i]``, every ``item_only`` predicate holds of ``x``,
    and every ``rest`` predicate holds (with ``var`` bound to ``x``)."""

    var: str
    item_keys: tuple[Value, ...]
    object_keys: tuple[Value, ...]
    item_only: tuple[Pred, ...]
    rest: tuple[Pred, ...]


@frozen
class Grouped:
    """``Sum(var, <join filter>, term)`` or ``Count(var, <join filter>, body)``
    whose ``term``/``body`` reads only ``var``: one total per join key."""

    join: Join
    var: str
    kind: str  # "sum" or "count"
    term: Value | None  # the summed term (sum)
    body: Pred  # the counted condition (count); TRUE for a sum


def free_roots(node: Node) -> tuple[frozenset[str], bool]:
    """The variables ``node`` reads without binding them, and whether it reads
    the inventory."""
    nodes = walk(node)
    bound = {n.var for n in nodes if isinstance(n, _BINDERS)}
    roots = {n.root for n in nodes if isinstance(n, Path)} - bound
    return frozenset(roots), any(isinstance(n, Objects) for n in nodes)


def _binds(node: Node, var: str) -> bool:
    return any(isinstance(n, _BINDERS) and n.var == var for n in walk(node))


def _conjuncts(p: Pred) -> Iterable[Pred]:
    if isinstance(p, And):
        for item in p.items:
            yield from _conjuncts(item)
    else:
        yield p


def _reads_only(node: Node, var: str) -> bool:
    """Reads ``var`` (or nothing) besides parameters and constants."""
    roots, inventory = free_roots(node)
    return not inventory and roots <= {var}


def _item_side(node: Value, var: str) -> bool:
    roots, inventory = free_roots(node)
    return not inventory and roots == {var}


def _object_side(node: Value, var: str) -> bool:
    roots, inventory = free_roots(node)
    return not inventory and var not in roots and bool(roots)


def join_of(n: Filter) -> Join | None:
    """``n`` read as a join over the inventory, or None."""
    if not isinstance(n.collection, Objects) or _binds(n.body, n.var):
        return None
    var = n.var
    item_keys: list[Value] = []
    object_keys: list[Value] = []
    item_only: list[Pred] = []
    rest: list[Pred] = []
    for c in _conjuncts(n.body):
        if isinstance(c, Compare) and c.op == "==":
            if _item_side(c.left, var) and _object_side(c.right, var):
                item_keys.append(c.left)
                object_keys.append(c.right)
                continue
            if _item_side(c.right, var) and _object_side(c.left, var):
                item_keys.append(c.right)
                object_keys.append(c.left)
                continue
        (item_only if _reads_only(c, var) else rest).append(c)
    if not item_keys:
        return None
    return Join(var, tuple(item_keys), tuple(object_keys), tuple(item_only), tuple(rest))


def grouped_of(n: Sum | Count) -> Grouped | None:
    """``n`` as an aggregate computed once per join key, or None."""
    if not isinstance(n.collection, Filter):
        return None
    join = join_of(n.collection)
    if join is None or join.rest:
        return None
    if isinstance(n, Sum):
        if not _reads_only(n.term, n.var) or _binds(n.term, n.var):
            return None
        return Grouped(join, n.var, "sum", n.term, TRUE)
    if not _reads_only(n.body, n.var) or _binds(n.body, n.var):
        return None
    return Grouped(join, n.var, "count", None, n.body)


def joins_in(node: Node) -> list[Join]:
    """Every join of a tree, pre-order (for reports and tests)."""
    out: list[Join] = []
    for n in walk(node):
        if isinstance(n, Filter):
            j = join_of(n)
            if j is not None:
                out.append(j)
    return out
