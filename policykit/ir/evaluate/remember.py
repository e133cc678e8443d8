"""What the reference evaluator remembers inside loops over the inventory.

A cross-object rule reads every other object for every object (n² pairs); in
its loop bodies, the largest parts that read only the item are remembered per
item, and those that read only the object under review are computed once per
object (benchmarks/bench_inventory.py).
"""

from __future__ import annotations

from typing import Any

from policykit.ir.evaluate.env import INVENTORY, Env, F
from policykit.ir.nodes import OBJECT_ROOT, Literal, Node, Param, Path


def worth_remembering(node: Node) -> bool:
    """Whether computing ``node`` costs more than a cache look-up."""
    if isinstance(node, (Literal, Param)):
        return False
    return not (isinstance(node, Path) and len(node.segments) < 2)


def per_item(fn: F, var: str) -> F:
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


def per_object(fn: F) -> F:
    """``fn`` (which reads only the object under review) computed once per
    object, not once per inventory item it is compared with."""
    state: list[Any] = [None, None]

    def remembered(env: Env) -> Any:
        obj = env[OBJECT_ROOT]
        if obj is not state[0]:
            state[0], state[1] = obj, fn(env)
        return state[1]

    return remembered
