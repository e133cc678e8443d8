"""What a target needs to know about a rule, computed on the IR once, here:

* constants, and their values with parameters inlined (:class:`Folder`, on
  the one definition of a constant in :mod:`policykit.ir.reads`);
* the parameters a rule reads (:func:`params_used`);
* whether it reads the inventory (:func:`reads_inventory`,
  :func:`rule_reads_inventory`, :func:`uses_inventory`);
* the IR features it uses (:func:`node_features`; the capability table's
  :func:`policykit.targets.features.features_of` adds what depends on
  Kubernetes kinds);
* look-ups by a constant key written as field paths
  (:func:`fold_constant_keys`).

Targets import :mod:`policykit.ir` only: the reference semantics they fold
with is :mod:`policykit.ir.evaluate`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any, TypeVar

from policykit.ir import nodes as ir
from policykit.ir.evaluate import Evaluator
from policykit.ir.reads import (
    free_roots,
    is_constant,
    params_used,
    reads_inventory,
    rule_reads_inventory,
    rule_roots,
    uses_inventory,
)
from policykit.ir.rule import Rule

__all__ = [
    "Folder",
    "fold_constant_keys",
    "free_roots",
    "is_constant",
    "node_features",
    "params_used",
    "reads_inventory",
    "rule_reads_inventory",
    "rule_roots",
    "uses_inventory",
]

N = TypeVar("N", bound=ir.Node)


class Folder:
    """Constants of a rule computed at build time, by the reference semantics.

    ``params``: the parameters, inlined (CEL, JSON Schema); ``None`` when the
    target reads them at run time (Rego), so a parameter is not a constant.
    ``bound``: variables a compiler has bound to known values (a quantifier
    over a constant list expanded item by item).
    """

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.params = params
        self._evaluator = Evaluator({} if params is None else params, remember=False)

    def is_constant(self, node: ir.Node, bound: Collection[str] = ()) -> bool:
        return is_constant(node, params=self.params is not None, bound=bound)

    def value(self, node: ir.Value, bound: Mapping[str, Any] | None = None) -> Any:
        """The value of a constant ``node`` (``MISSING`` when it has none)."""
        return self._evaluator.value(self._checked(node, bound))(dict(bound or {}))

    def pred(self, node: ir.Pred, bound: Mapping[str, Any] | None = None) -> bool:
        """The truth of a constant predicate ``node``."""
        return bool(self._evaluator.pred(self._checked(node, bound))(dict(bound or {})))

    def _checked(self, node: N, bound: Mapping[str, Any] | None) -> N:
        if not self.is_constant(node, () if bound is None else bound.keys()):
            raise ValueError(f"not a constant: {node!r}")
        return node


def node_features(rule: Rule) -> set[str]:
    """The IR features a rule uses: its node classes, ``Each``,
    ``ExcludeNamespaces``, ``Message`` (a message that interpolates values)."""
    roots = rule_roots(rule)
    out = {type(n).__name__ for r in roots for n in ir.walk(r)}
    if rule.each is not None:
        out.add("Each")
    if rule.selector.exclude_namespaces:
        out.add("ExcludeNamespaces")
    if any(isinstance(p, ir.Node) for p in rule.message.parts):
        out.add("Message")
    return out


def fold_constant_keys(rule: Rule, params: Mapping[str, Any]) -> Rule:
    """``rule`` with every look-up by a constant string key (``annotations[P(x)]``)
    written as a field path: the same value (missing unless the base is an
    object holding the key), so a target can name the field."""
    folder = Folder(params)

    def fold(node: Any) -> Any:
        if not isinstance(node, ir.Node):
            return node
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(node):  # type: ignore[arg-type]
            v = getattr(node, f.name)
            if isinstance(v, ir.Node):
                changes[f.name] = fold(v)
            elif isinstance(v, tuple):
                changes[f.name] = tuple(fold(x) for x in v)
        out = dataclasses.replace(node, **changes) if changes else node  # type: ignore[type-var]
        if (
            isinstance(out, ir.Index)
            and isinstance(out.base, ir.Path)
            and folder.is_constant(out.key)
        ):
            key = folder.value(out.key)
            if isinstance(key, str):
                return ir.Path(out.base.root, (*out.base.segments, key))
        return out

    return dataclasses.replace(
        rule,
        condition=fold(rule.condition),
        message=dataclasses.replace(rule.message, parts=tuple(fold(p) for p in rule.message.parts)),
    )
