"""Symbolic values and conditions: Python operators that build IR.

A rule body receives :class:`Val` proxies; attribute and item access extend a
field path, comparison operators and methods return :class:`Cond` proxies,
and ``&``, ``|``, ``~`` combine conditions. Nothing here evaluates anything.
Conditions and the conversion of operands are :mod:`policykit.dsl.cond`'s,
the tracing context and descriptions :mod:`policykit.dsl.trace`'s (the names
importers use are re-exported here).

>>> from policykit.dsl.expr import obj
>>> cond = obj().metadata.labels["team"].exists() & (obj().spec.replicas >= 2)
>>> type(cond.node).__name__
'And'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from policykit.dsl.cond import Cond as Cond
from policykit.dsl.cond import SymbolicValue, as_cond, lit, no_bool, param_default
from policykit.dsl.cond import all_of as all_of
from policykit.dsl.cond import any_of as any_of
from policykit.dsl.cond import not_a_condition as not_a_condition
from policykit.dsl.trace import (
    NUMERIC,
    describe,
    fresh_var,
    last_name,
    parent_of,
    traced_params,
)
from policykit.dsl.trace import Operand as Operand
from policykit.dsl.trace import call_traced as call_traced
from policykit.dsl.trace import tracing as tracing
from policykit.errors import DefinitionError, RegexDialectError, SourceLoc
from policykit.ir import nodes as ir
from policykit.ir.regex import check_portable


class Val(SymbolicValue):
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

    def _compare(self, op: ir.CompareOp, other: Any) -> Cond:
        desc = describe(self.node)
        if other is None:
            if op == "==":
                raise DefinitionError(
                    f"{desc} == None holds only for an explicit null, never for a missing field",
                    hint=f"use {desc}.absent() (missing or null), or "
                    f"{desc}.is_type('null') for an explicit null only",
                )
            if op == "!=":
                raise DefinitionError(
                    f"{desc} != None: write {desc}.exists()",
                    hint="the same test, present and not null, said plainly; "
                    "None is never needed in a rule",
                )
            raise DefinitionError(f"{desc} {op} None never holds", hint=self._number_hint(None))
        if op not in ("==", "!=") and (
            isinstance(other, (bool, list, tuple)) or (isinstance(other, str) and self._numeric())
        ):
            raise DefinitionError(
                f"{desc} {op} {other!r} never holds: ordering compares two numbers or two strings",
                hint=self._number_hint(other),
            )
        if self._numeric() and isinstance(other, (str, bool, list, tuple)):
            verdict = "never holds" if op == "==" else "always holds"
            raise DefinitionError(
                f"{desc} is a number, so {op} {other!r} {verdict}",
                hint=self._number_hint(other),
            )
        return Cond(ir.Compare(op, self.node, lit(other)))

    def _numeric(self) -> bool:
        return isinstance(self.node, NUMERIC)

    @staticmethod
    def _number_hint(other: Any) -> str:
        if isinstance(other, str):
            return f"compare with a number, or quantity({other!r}) for a Kubernetes quantity"
        if isinstance(other, (list, tuple)):
            return "x.is_in([...]) tests membership"
        return "compare with a number or a string"

    def __eq__(self, other: object) -> Cond:  # type: ignore[override]
        return self._compare("==", other)

    def __ne__(self, other: object) -> Cond:  # type: ignore[override]
        return self._compare("!=", other)

    def __lt__(self, other: Operand) -> Cond:
        return self._compare("<", other)

    def __le__(self, other: Operand) -> Cond:
        return self._compare("<=", other)

    def __gt__(self, other: Operand) -> Cond:
        return self._compare(">", other)

    def __ge__(self, other: Operand) -> Cond:
        return self._compare(">=", other)

    # Python protocols that cannot work on a symbolic value ---------------------

    def __hash__(self) -> int:
        raise DefinitionError(
            f"{describe(self.node)} cannot be a set item or a dict key while a rule is traced",
            hint="x.is_in([...]) instead of 'x in {...}'",
        )

    def __bool__(self) -> bool:
        no_bool("value")

    def __contains__(self, item: object) -> bool:
        no_bool("value")

    def __iter__(self) -> NoReturn:
        raise DefinitionError(
            "cannot iterate a value while a rule is traced",
            hint="use .all(lambda x: ...), .any(...), .count(...) or .sum(...)",
        )

    def __len__(self) -> int:
        raise DefinitionError(
            f"{describe(self.node)} has no Python length while a rule is traced",
            hint=f"{describe(self.node)}.length() is its length when the rule runs; "
            "iterate with .all/.any/.count/.sum",
        )

    def __format__(self, spec: str) -> str:
        raise DefinitionError(
            f"{describe(self.node)} cannot be put in a Python string while a rule is traced",
            hint="compare with .startswith()/.endswith()/.contains(); messages take {placeholders}",
        )

    __str__ = __format__  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Val({self.node!r})"

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        name = last_name(self.node)
        if name is None:
            raise DefinitionError(f"{describe(self.node)} is a value and cannot be called")
        import difflib  # only for the hint

        close = difflib.get_close_matches(name, METHODS, n=1, cutoff=0.6)
        guess = _ALIASES.get(name) or (f".{close[0]}()" if close else "")
        if guess:
            raise DefinitionError(
                f"`{name}` is read as a field name; did you mean `{guess}`?",
                hint=f"{parent_of(self.node)}.{name} is the field {name!r}, which cannot be called",
            )
        raise DefinitionError(
            f"`{name}` is read as a field name, and a value has no method `{name}`",
            hint="the methods are " + ", ".join(f".{m}()" for m in METHODS),
        )

    # conditions on values: & | ~ need conditions -------------------------------

    def _not_cond(self, *_: Any) -> NoReturn:
        raise not_a_condition(self, "in & | ~")

    __and__ = __rand__ = __or__ = __ror__ = __invert__ = _not_cond

    # arithmetic ---------------------------------------------------------------

    def _arith(self, op: ir.ArithOp, other: Operand, *, reverse: bool = False) -> Val:
        if not isinstance(other, Val) and (
            isinstance(other, bool) or not isinstance(other, (int, float))
        ):
            written = (
                f"{other!r} {op} {describe(self.node)}"
                if reverse
                else (f"{describe(self.node)} {op} {other!r}")
            )
            raise DefinitionError(
                f"{written} is always missing: arithmetic takes numbers",
                hint="there is no string concatenation; test strings with .startswith(), "
                ".endswith(), .contains(); quantity('2Gi') is a quantity as a number",
            )
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

    def _text(self, method: str, arg: Any) -> ir.Value:
        """The argument of a string test: a string or a value, not a list."""
        param = param_default(arg)
        if isinstance(arg, (list, tuple)) or (param and isinstance(param[1], list)):
            items = f'P("{param[0]}")' if param else repr(arg)
            raise DefinitionError(
                f"{method}() takes one string, not the list {items}: it would never hold",
                hint=f"test each: any_of(*({describe(self.node)}.{method}(s) for s in [...]))"
                if not param
                else f"{items}.any(lambda s: {describe(self.node)}.{method}(s))",
            )
        if not isinstance(arg, (str, Val)):
            raise DefinitionError(
                f"{method}() takes a string, not {type(arg).__name__} {arg!r}: it would never hold"
            )
        return lit(arg)

    def startswith(self, prefix: str | Val) -> Cond:
        return Cond(ir.StrOp("startswith", self.node, self._text("startswith", prefix)))

    def endswith(self, suffix: str | Val) -> Cond:
        return Cond(ir.StrOp("endswith", self.node, self._text("endswith", suffix)))

    def contains(self, sub: str | Val) -> Cond:
        """Substring test on strings (for lists use :meth:`includes`)."""
        return Cond(ir.StrOp("contains", self.node, self._text("contains", sub)))

    def _collection(self, method: str, collection: Any) -> ir.Value:
        """The list of ``is_in``/``not_in``: a literal list or a value, not a string."""
        param = param_default(collection)
        if isinstance(collection, str) or (param and not isinstance(param[1], list)):
            if param:
                raise DefinitionError(
                    f'{method}(P("{param[0]}")) never holds: the parameter is '
                    f"{type(param[1]).__name__} {param[1]!r}, not a list",
                    hint=f'compare with {describe(self.node)} == P("{param[0]}")',
                )
            if collection in traced_params():
                hint = f'did you mean P("{collection}")?'
            else:
                hint = f"for a list write {method}([{collection!r}]); "
                hint += f"for one value, == {collection!r}"
            raise DefinitionError(
                f"{method}({collection!r}) takes a list, not a string: "
                + ("it would never hold" if method == "is_in" else "it would always hold"),
                hint=hint,
            )
        if not isinstance(collection, (list, tuple, Val)):
            if isinstance(collection, dict):
                raise DefinitionError(
                    f"{method}() takes a list, not a dict",
                    hint=f"for its keys write {method}([...keys]) or {method}(x.keys())",
                )
            lit(collection)  # a set or another type: its own error
            raise DefinitionError(
                f"{method}() takes a list, not {type(collection).__name__} {collection!r}",
                hint=f"for one value, {describe(self.node)} == {collection!r}",
            )
        return lit(collection)

    def is_in(self, collection: Sequence[Any] | Val) -> Cond:
        """Equal to some item of a literal list, a list parameter or a list field."""
        return Cond(ir.In(self.node, self._collection("is_in", collection)))

    def not_in(self, collection: Sequence[Any] | Val) -> Cond:
        """Present and equal to no item of ``collection``."""
        coll = self._collection("not_in", collection)
        return Cond(ir.And((ir.Exists(self.node), ir.Not(ir.In(self.node, coll)))))

    def includes(self, element: Operand) -> Cond:
        """This list has an item equal to ``element``."""
        param = param_default(element)
        if isinstance(element, (list, tuple)) or (param and isinstance(param[1], list)):
            items = f'P("{param[0]}")' if param else repr(element)
            raise DefinitionError(
                f"includes() tests for one item, and {items} is a list",
                hint=f"every one: {items}.all(lambda v: {describe(self.node)}.includes(v)); "
                f"any one: {items}.any(lambda v: {describe(self.node)}.includes(v))",
            )
        if element is None:
            raise DefinitionError(
                "includes(None) tests for a null item",
                hint="to test that the list is missing or null, use .absent()",
            )
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
        var = fresh_var(name.co_varnames[0] if name and name.co_argcount else "x")
        return var, fn(Val(ir.Path(var)))

    def _bind_cond(self, fn: Callable[[Val], Any], method: str) -> tuple[str, ir.Pred]:
        """Bind ``fn``'s variable; its result must be a condition (reported at
        the line ``fn`` returned from)."""
        name = getattr(fn, "__code__", None)
        var = fresh_var(name.co_varnames[0] if name and name.co_argcount else "x")
        body, line = call_traced(fn, Val(ir.Path(var)))
        try:
            return var, as_cond(body, f"in .{method}()")
        except DefinitionError as exc:
            if name is not None and line is not None:
                exc.loc = SourceLoc(name.co_filename, line)
            raise

    def all(self, fn: Callable[[Val], Any]) -> Cond:
        """Every item satisfies ``fn`` (true for an empty or missing list)."""
        var, body = self._bind_cond(fn, "all")
        return Cond(ir.Quantifier("all", var, self.node, body))

    def any(self, fn: Callable[[Val], Any]) -> Cond:
        """Some item satisfies ``fn`` (false for an empty or missing list)."""
        var, body = self._bind_cond(fn, "any")
        return Cond(ir.Quantifier("any", var, self.node, body))

    def none(self, fn: Callable[[Val], Any]) -> Cond:
        return ~self.any(fn)

    def count(self, fn: Callable[[Val], Any] | None = None) -> Val:
        """How many items satisfy ``fn`` (all items when ``fn`` is omitted)."""
        if fn is None:
            return Val(ir.Count(fresh_var("x"), self.node, ir.TRUE))
        var, body = self._bind_cond(fn, "count")
        return Val(ir.Count(var, self.node, body))

    def filter(self, fn: Callable[[Val], Any]) -> Val:
        """The items that satisfy ``fn``, in order (missing if not a list)."""
        var, body = self._bind_cond(fn, "filter")
        return Val(ir.Filter(var, self.node, body))

    def sum(self, fn: Callable[[Val], Any]) -> Val:
        """Sum of ``fn(item)`` over the list; non-numbers add 0."""
        var, term = self._bind(fn)
        return Val(ir.Sum(var, self.node, lit(term)))


METHODS: tuple[str, ...] = tuple(
    sorted(n for n, v in vars(Val).items() if not n.startswith("_") and callable(v))
)
"""The methods of :class:`Val`: a field of one of these names is written ``o.x["name"]``."""

_ALIASES: dict[str, str] = {
    "get": '["key"] (with .default(...) for a fallback)',
    "len": ".length()",
    "size": ".length()",
    "missing": ".absent()",
    "is_none": ".absent()",
    "isnull": ".absent()",
    "is_null": ".absent()",
    "present": ".exists()",
    "has": ".exists()",
    "isin": ".is_in()",
}
"""Names people reach for, and the method that does it."""


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
