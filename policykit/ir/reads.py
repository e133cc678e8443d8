"""What an IR node reads: document fields (paths from variables), parameters,
the inventory — and so the one definition of a *constant*.

A node is constant when its value is the same for every object under review
and every inventory, so a compiler may compute it at build time with the
reference semantics (:class:`policykit.ir.passes.Folder`): it reads

* no path, except from a variable in ``bound`` (a compiler that expands a
  quantifier over a constant list binds its variable to each item),
* not the inventory (``Objects``),
* no parameter, unless parameters are inlined at build time (``params=True``:
  CEL, JSON Schema; the Rego targets read them from ``data`` at run time).

This module depends on :mod:`policykit.ir.nodes` only, so the reference
evaluator and the passes both build on it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from policykit.ir.nodes import Count, Filter, Node, Objects, Param, Path, Quantifier, Sum, walk
from policykit.ir.rule import Pack, Rule


def is_constant(node: Node, *, params: bool = True, bound: Collection[str] = ()) -> bool:
    """Whether ``node`` is known at build time (see the module docstring)."""
    for n in walk(node):
        if isinstance(n, Path):
            if n.root not in bound:
                return False
        elif isinstance(n, Objects) or (not params and isinstance(n, Param)):
            return False
    return True


def reads_inventory(node: Node) -> bool:
    """Whether ``node`` reads the inventory (over a collection: its items are
    inventory objects, or constants)."""
    return any(isinstance(n, Objects) for n in walk(node))


def free_roots(node: Node) -> tuple[set[str], bool]:
    """The variables ``node`` reads that it does not bind itself, and whether
    it reads the inventory."""
    nodes = walk(node)
    bound = {n.var for n in nodes if isinstance(n, (Count, Sum, Filter, Quantifier))}
    roots = {n.root for n in nodes if isinstance(n, Path)} - bound
    return roots, any(isinstance(n, Objects) for n in nodes)


def rule_roots(rule: Rule) -> list[Node]:
    """The expressions of a rule: its condition, its ``each`` collection and
    the values its message interpolates."""
    roots: list[Node] = [rule.condition]
    if rule.each is not None:
        roots.append(rule.each.collection)
    roots += [p for p in rule.message.parts if isinstance(p, Node)]
    return roots


def params_used(rule: Rule | Node) -> set[str]:
    """The names of the parameters a rule (or a node) reads."""
    roots = rule_roots(rule) if isinstance(rule, Rule) else [rule]
    return {n.name for r in roots for n in walk(r) if isinstance(n, Param)}


def rule_reads_inventory(rule: Rule) -> bool:
    """Whether some expression of ``rule`` reads the inventory."""
    return any(reads_inventory(r) for r in rule_roots(rule))


def uses_inventory(packs: Iterable[Pack]) -> bool:
    """Whether some rule reads the inventory (then every object must be loaded
    before any is evaluated)."""
    return any(rule_reads_inventory(rule) for pack in packs for rule in pack.rules)
