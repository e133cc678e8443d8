"""Symbolic conditions (:class:`Cond`, ``all_of``, ``any_of``) and the
conversion of Python operands to IR (:func:`lit`, :func:`as_cond`), with the
hints for a value, a bool or a tuple used where a condition belongs.
:class:`SymbolicValue` is the base of :class:`policykit.dsl.expr.Val`, so this
module tells a value apart without importing it."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, NoReturn

from policykit.dsl.trace import describe, traced_params
from policykit.errors import DefinitionError
from policykit.ir import nodes as ir


class SymbolicValue:
    """The base of :class:`policykit.dsl.expr.Val`: a symbolic JSON value."""

    __slots__ = ()
    node: ir.Value


def param_default(value: Any) -> tuple[str, Any] | None:
    """``(name, default)`` when ``value`` is ``P(name)`` of the traced pack."""
    if isinstance(value, SymbolicValue) and isinstance(value.node, ir.Param):
        params = traced_params()
        if value.node.name in params:
            return value.node.name, params[value.node.name]
    return None


def not_a_condition(value: Any, where: str = "") -> DefinitionError:
    """The error for a value, a Python bool or a tuple used as a condition."""
    at = f" {where}" if where else ""
    owner = getattr(value, "__self__", None)
    if isinstance(owner, SymbolicValue) and inspect.ismethod(value):
        desc = f"{describe(owner.node)}.{value.__name__}"
        return DefinitionError(
            f"{desc} is a method, not a condition{at}",
            hint=f"call it: {desc}(...)",
        )
    if isinstance(value, SymbolicValue):
        desc = describe(value.node)
        return DefinitionError(
            f"{desc} is a value, not a condition{at}; it would hold only where it is true",
            hint=f"write {desc}.exists(), {desc} == ..., or {desc}.is_true() for a boolean field",
        )
    if isinstance(value, bool):
        return DefinitionError(
            f"the Python value {value} is not a condition{at}; Python evaluated it while the "
            "rule was traced",
            hint="'x is None' / 'x is not None' are Python tests: use x.absent() / x.exists(); "
            "a condition that always holds is all_of(), one that never holds any_of()",
        )
    if isinstance(value, tuple):
        return DefinitionError(
            f"a tuple is not a condition{at} (a trailing comma?)",
            hint="combine conditions with & and |",
        )
    return DefinitionError(
        f"expected a condition{at}, got {type(value).__name__} {value!r}",
        hint="build conditions with comparisons, .exists(), .matches(), & | ~",
    )


def lit(value: Any) -> ir.Value:
    """A Python value as an IR value node (``Val`` passes through)."""
    if isinstance(value, SymbolicValue):
        return value.node
    if isinstance(value, Cond):
        raise DefinitionError("a condition cannot be used as a value")
    if value is None or isinstance(value, (str, bool, int, float)):
        return ir.Literal(value)
    if isinstance(value, (list, tuple)):
        items = tuple(value)
        for x in items:
            if not (x is None or isinstance(x, (str, bool, int, float))):
                raise DefinitionError(
                    f"list literal item {x!r} is not a scalar",
                    hint="literal lists hold strings, numbers, booleans or null",
                )
        return ir.Literal(items)
    if isinstance(value, dict):
        raise DefinitionError(
            "cannot compare a path to a dict",
            hint="compare individual fields, e.g. o.metadata.labels['team'] == 'x'",
        )
    if isinstance(value, (set, frozenset)):
        raise DefinitionError(
            f"a set {value!r} cannot be used in a rule",
            hint="write a list: x.is_in([...]) tests membership",
        )
    raise DefinitionError(f"{type(value).__name__} value {value!r} cannot be used in a rule")


def as_cond(value: Any, where: str = "") -> ir.Pred:
    """A condition operand: a ``Cond``. A value (``o.spec.paused``: write
    ``.is_true()``), a Python bool or anything else is refused."""
    if isinstance(value, Cond):
        return value.node
    raise not_a_condition(value, where)


def no_bool(what: str) -> NoReturn:
    raise DefinitionError(
        f"a {what} has no Python truth value while a rule is traced",
        hint="use & | ~ instead of and/or/not, x.includes(v) instead of 'v in x', "
        "x.is_in([...]) instead of 'x in [...]', and no 'if' on a value",
    )


class Cond:
    """A symbolic condition (wraps an :class:`~policykit.ir.nodes.Pred`)."""

    __slots__ = ("node",)

    def __init__(self, node: ir.Pred) -> None:
        self.node = node

    def __and__(self, other: Any) -> Cond:
        return Cond(_flatten(ir.And, (self.node, as_cond(other))))

    def __rand__(self, other: Any) -> Cond:
        return Cond(_flatten(ir.And, (as_cond(other), self.node)))

    def __or__(self, other: Any) -> Cond:
        return Cond(_flatten(ir.Or, (self.node, as_cond(other))))

    def __ror__(self, other: Any) -> Cond:
        return Cond(_flatten(ir.Or, (as_cond(other), self.node)))

    def __invert__(self) -> Cond:
        if isinstance(self.node, ir.Not):
            return Cond(self.node.item)
        return Cond(ir.Not(self.node))

    def __bool__(self) -> bool:
        no_bool("condition")

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("__"):
            raise AttributeError(name)
        raise DefinitionError(
            f"a condition has no `.{name}`: it is already true or false",
            hint="combine conditions with & | ~; methods such as .exists() apply to values",
        )

    def __repr__(self) -> str:
        return f"Cond({self.node!r})"


def _flatten(cls: type[ir.And] | type[ir.Or], items: Sequence[ir.Pred]) -> ir.Pred:
    out: list[ir.Pred] = []
    for i in items:
        if isinstance(i, cls):
            out.extend(i.items)
        else:
            out.append(i)
    return cls(tuple(out))


def all_of(*conds: Any) -> Cond:
    """All conditions hold (``all_of()`` is true)."""
    return Cond(ir.And(tuple(as_cond(c) for c in conds)))


def any_of(*conds: Any) -> Cond:
    """At least one condition holds (``any_of()`` is false)."""
    return Cond(ir.Or(tuple(as_cond(c) for c in conds)))
