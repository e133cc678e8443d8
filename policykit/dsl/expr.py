"""Symbolic values and conditions: Python operators that build IR.

A rule body receives :class:`Val` proxies; attribute and item access extend a
field path, comparison operators and methods return :class:`Cond` proxies,
and ``&``, ``|``, ``~`` combine conditions. Nothing here evaluates anything.

>>> from policykit.dsl.expr import obj
>>> cond = obj().metadata.labels["team"].exists() & (obj().spec.replicas >= 2)
>>> type(cond.node).__name__
'And'
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from policykit.errors import DefinitionError, RegexDialectError
from policykit.ir import nodes as ir
from policykit.ir.regex import check_portable

_var_counter = itertools.count()

Operand = Any  # a Val, or a Python scalar / flat list of scalars


def lit(value: Any) -> ir.Value:
    """A Python value as an IR value node (``Val`` passes through)."""
    if isinstance(value, Val):
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
    raise DefinitionError(f"{type(value).__name__} value {value!r} cannot be used in a rule")


def as_cond(value: Any) -> ir.Pred:
    """A condition operand: a ``Cond``, or a field that must be ``true``."""
    if isinstance(value, Cond):
        return value.node
    if isinstance(value, Val):
        return ir.Compare("==", value.node, ir.Literal(True))
    if isinstance(value, bool):
        return ir.Compare("==", ir.Literal(value), ir.Literal(True))
    raise DefinitionError(
        f"expected a condition, got {type(value).__name__} {value!r}",
        hint="build conditions with comparisons, .exists(), .matches(), & | ~",
    )


def _no_bool(what: str) -> NoReturn:
    raise DefinitionError(
        f"a {what} has no Python truth value while a rule is traced",
        hint="use & | ~ instead of and/or/not, and x.includes(v) instead of 'v in x'",
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
        _no_bool("condition")

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


class Val:
    """A symbolic JSON value (wraps an :class:`~policykit.ir.nodes.Value`).

    Attribute access and ``[key]`` extend a field path. Field names that clash
    with a method below (``keys``, ``count``, ``all`` ...) or that are not
    Python identifiers are written with brackets: ``o.metadata["keys"]``.
    """

    __slots__ = ("node",)

    def __init__(self, node: ir.Value) -> None:
        self.node = node

    # paths ------------------------------------------------------------------

    def __getattr__(self, name: str) -> Val:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, key: str | int | Val) -> Val:
        """A field (``o.spec["x"]``), a list item (``o.items[0]``), or a look-up
        by a key computed at run time (``P("prices")[o.metadata.labels["tier"]]``)."""
        if isinstance(key, Val):
            return Val(ir.Index(self.node, key.node))
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            raise DefinitionError(f"path key {key!r} must be a string or an index")
        if isinstance(key, int) and key < 0:
            raise DefinitionError(f"negative index {key} is not supported")
        if not isinstance(self.node, ir.Path):
            if isinstance(key, str):  # a field of a parameter or a computed object
                return Val(ir.Index(self.node, ir.Literal(key)))
            raise DefinitionError(
                f"cannot take item {key!r} of a computed value ({type(self.node).__name__})"
            )
        return Val(ir.Path(self.node.root, (*self.node.segments, key)))

    # comparisons --------------------------------------------------------------

    def __eq__(self, other: object) -> Cond:  # type: ignore[override]
        return Cond(ir.Compare("==", self.node, lit(other)))

    def __ne__(self, other: object) -> Cond:  # type: ignore[override]
        return Cond(ir.Compare("!=", self.node, lit(other)))

    def __lt__(self, other: Operand) -> Cond:
        return Cond(ir.Compare("<", self.node, lit(other)))

    def __le__(self, other: Operand) -> Cond:
        return Cond(ir.Compare("<=", self.node, lit(other)))

    def __gt__(self, other: Operand) -> Cond:
        return Cond(ir.Compare(">", self.node, lit(other)))

    def __ge__(self, other: Operand) -> Cond:
        return Cond(ir.Compare(">=", self.node, lit(other)))

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        _no_bool("value")

    def __contains__(self, item: object) -> bool:
        _no_bool("value")

    def __iter__(self) -> NoReturn:
        raise DefinitionError(
            "cannot iterate a value while a rule is traced",
            hint="use .all(lambda x: ...), .any(...), .count(...) or .sum(...)",
        )

    def __repr__(self) -> str:
        return f"Val({self.node!r})"

    # arithmetic ---------------------------------------------------------------

    def _arith(self, op: ir.ArithOp, other: Operand, *, reverse: bool = False) -> Val:
        a, b = self.node, lit(other)
        return Val(ir.Arith(op, b, a) if reverse else ir.Arith(op, a, b))

    def __add__(self, o: Operand) -> Val:
        return self._arith("+", o)

    def __radd__(self, o: Operand) -> Val:
        return self._arith("+", o, reverse=True)

    def __sub__(self, o: Operand) -> Val:
        return self._arith("-", o)

    def __rsub__(self, o: Operand) -> Val:
        return self._arith("-", o, reverse=True)

    def __mul__(self, o: Operand) -> Val:
        return self._arith("*", o)

    def __rmul__(self, o: Operand) -> Val:
        return self._arith("*", o, reverse=True)

    def __truediv__(self, o: Operand) -> Val:
        return self._arith("/", o)

    def __rtruediv__(self, o: Operand) -> Val:
        return self._arith("/", o, reverse=True)

    # predicates ---------------------------------------------------------------

    def exists(self) -> Cond:
        """Present and not null."""
        return Cond(ir.Exists(self.node))

    def absent(self) -> Cond:
        """Missing or null."""
        return Cond(ir.Not(ir.Exists(self.node)))

    def is_true(self) -> Cond:
        return Cond(ir.Compare("==", self.node, ir.Literal(True)))

    def matches(self, pattern: str | Val) -> Cond:
        """A string in which the portable regex ``pattern`` is found.

        >>> obj().metadata.name.matches("^[a-z]+$").node.pattern.value
        '^[a-z]+$'
        """
        if isinstance(pattern, Val):
            if not isinstance(pattern.node, ir.Param):
                raise DefinitionError("a regex must be a literal string or a parameter")
            return Cond(ir.Matches(self.node, pattern.node))
        if not isinstance(pattern, str):
            raise DefinitionError(f"regex {pattern!r} is not a string")
        try:
            check_portable(pattern)
        except RegexDialectError as exc:
            raise RegexDialectError(exc.message, hint=exc.hint) from None
        return Cond(ir.Matches(self.node, ir.Literal(pattern)))

    def startswith(self, prefix: str | Val) -> Cond:
        return Cond(ir.StrOp("startswith", self.node, lit(prefix)))

    def endswith(self, suffix: str | Val) -> Cond:
        return Cond(ir.StrOp("endswith", self.node, lit(suffix)))

    def contains(self, sub: str | Val) -> Cond:
        """Substring test on strings (for lists use :meth:`includes`)."""
        return Cond(ir.StrOp("contains", self.node, lit(sub)))

    def is_in(self, collection: Sequence[Any] | Val) -> Cond:
        """Equal to some item of a literal list, a list parameter or a list field."""
        return Cond(ir.In(self.node, lit(collection)))

    def not_in(self, collection: Sequence[Any] | Val) -> Cond:
        """Present and equal to no item of ``collection``."""
        return Cond(ir.And((ir.Exists(self.node), ir.Not(ir.In(self.node, lit(collection))))))

    def includes(self, element: Operand) -> Cond:
        """This list has an item equal to ``element``."""
        return Cond(ir.In(lit(element), self.node))

    def is_type(self, type_name: str) -> Cond:
        if type_name not in ("string", "number", "boolean", "array", "object", "null"):
            raise DefinitionError(f"unknown JSON type {type_name!r}")
        return Cond(ir.IsType(self.node, type_name))  # type: ignore[arg-type]

    # derived values -----------------------------------------------------------

    def length(self) -> Val:
        return Val(ir.Length(self.node))

    def quantity(self) -> Val:
        """A Kubernetes quantity as a number in base units ("500m" → 0.5)."""
        return Val(ir.Quantity(self.node))

    def keys(self) -> Val:
        return Val(ir.Keys(self.node))

    def default(self, fallback: Operand) -> Val:
        return Val(ir.Default(self.node, lit(fallback)))

    # quantifiers --------------------------------------------------------------

    def _bind(self, fn: Callable[[Val], Any]) -> tuple[str, Any]:
        name = getattr(fn, "__code__", None)
        var = (name.co_varnames[0] if name and name.co_argcount else "x") + f"_{next(_var_counter)}"
        return var, fn(Val(ir.Path(var)))

    def all(self, fn: Callable[[Val], Any]) -> Cond:
        """Every item satisfies ``fn`` (true for an empty or missing list)."""
        var, body = self._bind(fn)
        return Cond(ir.Quantifier("all", var, self.node, as_cond(body)))

    def any(self, fn: Callable[[Val], Any]) -> Cond:
        """Some item satisfies ``fn`` (false for an empty or missing list)."""
        var, body = self._bind(fn)
        return Cond(ir.Quantifier("any", var, self.node, as_cond(body)))

    def none(self, fn: Callable[[Val], Any]) -> Cond:
        return ~self.any(fn)

    def count(self, fn: Callable[[Val], Any] | None = None) -> Val:
        """How many items satisfy ``fn`` (all items when ``fn`` is omitted)."""
        if fn is None:
            return Val(ir.Count(f"x_{next(_var_counter)}", self.node, ir.TRUE))
        var, body = self._bind(fn)
        return Val(ir.Count(var, self.node, as_cond(body)))

    def filter(self, fn: Callable[[Val], Any]) -> Val:
        """The items that satisfy ``fn``, in order (missing if not a list)."""
        var, body = self._bind(fn)
        return Val(ir.Filter(var, self.node, as_cond(body)))

    def sum(self, fn: Callable[[Val], Any]) -> Val:
        """Sum of ``fn(item)`` over the list; non-numbers add 0."""
        var, term = self._bind(fn)
        return Val(ir.Sum(var, self.node, lit(term)))


def obj() -> Val:
    """The object under review (the root of every path)."""
    return Val(ir.Path(ir.OBJECT_ROOT))


def objects() -> Val:
    """Every other object of the inventory (see :class:`policykit.ir.nodes.Objects`):
    what cross-object rules, such as a budget per cost center, sum over."""
    return Val(ir.Objects())


def quantity(value: Operand) -> Val:
    """A Kubernetes quantity as a number (a field or a literal like "2Gi")."""
    return Val(ir.Quantity(lit(value)))
