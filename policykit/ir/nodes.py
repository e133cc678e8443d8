"""Expression nodes of the policykit IR.

Every node is a frozen, slotted dataclass (made by :func:`policykit.frozen.frozen`,
which defines it faster) that states what a rule *means*, never how a target
spells it. There are two sorts of node:

* :class:`Value` nodes evaluate to a JSON value, or to *missing* (a field that is
  absent, a path through a non-object, a quantity that does not parse ...);
* :class:`Pred` nodes evaluate to true or false — never to missing.

The semantics of each node are written down once in ``docs/semantics.md`` and
implemented by :mod:`policykit.ir.evaluate` (the reference engine
:mod:`policykit.engines.native` runs it); every compiler reproduces them.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Literal as TLiteral

from policykit.frozen import frozen

# A scalar JSON value a rule may contain as a literal.
Scalar = str | int | float | bool | None
# A literal is a scalar or a flat tuple of scalars (a list literal).
LiteralValue = Scalar | tuple[Scalar, ...]

OBJECT_ROOT = "object"
"""Name of the root every top-level path starts from: the object under review."""

CompareOp = TLiteral["==", "!=", "<", "<=", ">", ">="]
StrOpName = TLiteral["startswith", "endswith", "contains"]
ArithOp = TLiteral["+", "-", "*", "/"]
QuantKind = TLiteral["all", "any"]

COMPARE_OPS: tuple[str, ...] = ("==", "!=", "<", "<=", ">", ">=")
STR_OPS: tuple[str, ...] = ("startswith", "endswith", "contains")
ARITH_OPS: tuple[str, ...] = ("+", "-", "*", "/")


class Node:
    """Base of every IR node."""

    __slots__ = ()

    def children(self) -> tuple[Node, ...]:
        """Direct child nodes, in field order."""
        out: list[Node] = []
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, Node):
                out.append(v)
            elif isinstance(v, tuple):
                out.extend(x for x in v if isinstance(x, Node))
        return tuple(out)


class Value(Node):
    """A node that yields a JSON value or *missing*."""

    __slots__ = ()


class Pred(Node):
    """A node that yields true or false."""

    __slots__ = ()


# --- values -----------------------------------------------------------------


@frozen
class Path(Value):
    """A field path from a root: the object (``object``) or a bound variable.

    Segments are object keys (``str``) or list indexes (``int``, negative counts
    from the end is *not* allowed). Traversing a missing key, a non-object with a
    string segment, or a non-list / out-of-range index yields *missing*.
    """

    root: str
    segments: tuple[str | int, ...] = ()


@frozen
class Literal(Value):
    """A constant: a scalar or a flat list of scalars."""

    value: LiteralValue


@frozen
class Param(Value):
    """A pack parameter, supplied as data; its default lives in the pack."""

    name: str


@frozen
class Length(Value):
    """Number of code points of a string, items of a list or keys of an object."""

    operand: Value


@frozen
class Quantity(Value):
    """A Kubernetes quantity ("500m", "2Gi", "1.5", 3) as a number in base units."""

    operand: Value


@frozen
class Arith(Value):
    """Arithmetic on two numbers; division by zero is *missing*."""

    op: ArithOp
    left: Value
    right: Value


@frozen
class Default(Value):
    """``operand`` if it is present and not null, else ``fallback``."""

    operand: Value
    fallback: Value


@frozen
class Keys(Value):
    """The keys of an object as a list (sorted); *missing* if not an object."""

    operand: Value


@frozen
class Count(Value):
    """How many items of ``collection`` satisfy ``body`` (``var`` bound to each)."""

    var: str
    collection: Value
    body: Pred


@frozen
class Sum(Value):
    """Sum of ``term`` over ``collection``; items whose term is not a number add 0."""

    var: str
    collection: Value
    term: Value


@frozen
class Index(Value):
    """``base[key]`` for an object ``base`` and a string ``key`` computed at run
    time (a price by GPU type, a budget by cost center); *missing* when
    ``base`` is not an object, ``key`` not a string, or the key is absent."""

    base: Value
    key: Value


@frozen
class Filter(Value):
    """The items of the list ``collection`` that satisfy ``body``, in order;
    *missing* when ``collection`` is not a list."""

    var: str
    collection: Value
    body: Pred


@frozen
class Objects(Value):
    """Every *other* object of the inventory, as a list: in CI the objects
    checked in the same run, at admission what the target can see (Gatekeeper's
    synced ``data.inventory``, an OPA bundle's ``data.<root>.inventory``). The
    object under review is left out by identity (kind, namespace, name), so a
    rule adds its own contribution once whether or not it is already stored."""


# --- predicates -------------------------------------------------------------


@frozen
class Compare(Pred):
    """``left op right``; false when either side is missing.

    ``==``/``!=`` compare JSON values (``1 == 1.0``; ``true != 1``). Ordering
    compares two numbers or two strings (by code point) and is false otherwise.
    """

    op: CompareOp
    left: Value
    right: Value


@frozen
class And(Pred):
    items: tuple[Pred, ...]


@frozen
class Or(Pred):
    items: tuple[Pred, ...]


@frozen
class Not(Pred):
    item: Pred


@frozen
class Exists(Pred):
    """True when ``operand`` is present and not null."""

    operand: Value


@frozen
class Matches(Pred):
    """``subject`` is a string in which ``pattern`` (dialect: docs/semantics.md) is found."""

    subject: Value
    pattern: Value


@frozen
class StrOp(Pred):
    """startswith / endswith / contains on two strings; false otherwise."""

    op: StrOpName
    subject: Value
    arg: Value


@frozen
class In(Pred):
    """``element`` equals (as ``==``) some item of the list ``collection``."""

    element: Value
    collection: Value


@frozen
class Quantifier(Pred):
    """all / any item of ``collection`` satisfies ``body``.

    A collection that is missing or not a list counts as empty: ``all`` is
    true, ``any`` is false.
    """

    kind: QuantKind
    var: str
    collection: Value
    body: Pred


@frozen
class IsType(Pred):
    """``operand`` is present and of JSON type ``type_name``."""

    operand: Value
    type_name: TLiteral["string", "number", "boolean", "array", "object", "null"]


TRUE = Compare("==", Literal(True), Literal(True))

NODE_CLASSES: tuple[type[Node], ...] = (
    Path,
    Literal,
    Param,
    Length,
    Quantity,
    Arith,
    Default,
    Keys,
    Count,
    Sum,
    Index,
    Filter,
    Objects,
    Compare,
    And,
    Or,
    Not,
    Exists,
    Matches,
    StrOp,
    In,
    Quantifier,
    IsType,
)
"""Every concrete node class; compilers are checked to handle each of them."""


def walk(node: Node) -> list[Node]:
    """All nodes of a tree, pre-order."""
    out: list[Node] = []
    stack = [node]
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(reversed(n.children()))
    return out
