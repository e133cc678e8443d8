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

import difflib
import inspect
import itertools
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NoReturn

from policykit.errors import DefinitionError, RegexDialectError, SourceLoc
from policykit.ir import nodes as ir
from policykit.ir.regex import check_portable

_var_counter = itertools.count()

Operand = Any  # a Val, or a Python scalar / flat list of scalars

_PARAMS: ContextVar[Mapping[str, Any] | None] = ContextVar("policykit_dsl_params", default=None)
"""The parameters (name → default) of the pack whose rule is being traced."""


@contextmanager
def tracing(params: Mapping[str, Any]) -> Iterator[None]:
    """Trace a rule body of a pack with these parameters (name → default), so
    that mistakes can be reported with hints that name them."""
    token = _PARAMS.set(params)
    try:
        yield
    finally:
        _PARAMS.reset(token)


_NUMERIC = (ir.Length, ir.Quantity, ir.Arith, ir.Count, ir.Sum)
"""Derived values that are always numbers (or missing)."""


def describe(node: ir.Value) -> str:
    """How the author wrote a value: ``o.spec.owner``, ``c.image``, ``P("x")["k"]``."""
    if isinstance(node, ir.Path):
        root = "o" if node.root == ir.OBJECT_ROOT else re.sub(r"_\d+$", "", node.root)
        out = root
        for seg in node.segments:
            is_name = isinstance(seg, str) and seg.isidentifier()
            out += f".{seg}" if is_name else f"[{seg!r}]"
        return out
    if isinstance(node, ir.Param):
        return f'P("{node.name}")'
    if isinstance(node, ir.Index):
        key = node.key.value if isinstance(node.key, ir.Literal) else "..."
        return f"{describe(node.base)}[{key!r}]"
    return "this value"


def call_traced(fn: Callable[..., Any], *args: Any) -> tuple[Any, int | None]:
    """``fn(*args)``, and the line of the ``return`` that ``fn`` left by
    (``None`` when unknown): where a wrong result was written."""
    code = getattr(fn, "__code__", None)
    lines: list[int] = []
    previous = sys.getprofile()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "return" and frame.f_code is code:
            lines.append(frame.f_lineno)

    sys.setprofile(profile)
    try:
        result = fn(*args)
    finally:
        sys.setprofile(previous)
    return result, (lines[-1] if lines else None)


def _last_name(node: ir.Value) -> str | None:
    """The field name a value ends with (``absnt`` in ``o.spec.owner.absnt``)."""
    if isinstance(node, ir.Path) and node.segments and isinstance(node.segments[-1], str):
        return node.segments[-1]
    if isinstance(node, ir.Index) and isinstance(node.key, ir.Literal):
        key = node.key.value
        return key if isinstance(key, str) else None
    return None


def _parent(node: ir.Value) -> str:
    if isinstance(node, ir.Path):
        return describe(ir.Path(node.root, node.segments[:-1]))
    if isinstance(node, ir.Index):
        return describe(node.base)
    return describe(node)


def _params() -> Mapping[str, Any]:
    return _PARAMS.get() or {}


def _param_default(value: Any) -> tuple[str, Any] | None:
    """``(name, default)`` when ``value`` is ``P(name)`` of the traced pack."""
    if isinstance(value, Val) and isinstance(value.node, ir.Param):
        params = _params()
        if value.node.name in params:
            return value.node.name, params[value.node.name]
    return None


def not_a_condition(value: Any, where: str = "") -> DefinitionError:
    """The error for a value, a Python bool or a tuple used as a condition."""
    at = f" {where}" if where else ""
    owner = getattr(value, "__self__", None)
    if isinstance(owner, Val) and inspect.ismethod(value):
        desc = f"{describe(owner.node)}.{value.__name__}"
        return DefinitionError(
            f"{desc} is a method, not a condition{at}",
            hint=f"call it: {desc}(...)",
        )
    if isinstance(value, Val):
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


def _no_bool(what: str) -> NoReturn:
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
        _no_bool("condition")

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
        return isinstance(self.node, _NUMERIC)

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
        _no_bool("value")

    def __contains__(self, item: object) -> bool:
        _no_bool("value")

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
        name = _last_name(self.node)
        if name is None:
            raise DefinitionError(f"{describe(self.node)} is a value and cannot be called")
        close = difflib.get_close_matches(name, METHODS, n=1, cutoff=0.6)
        guess = _ALIASES.get(name) or (f".{close[0]}()" if close else "")
        if guess:
            raise DefinitionError(
                f"`{name}` is read as a field name; did you mean `{guess}`?",
                hint=f"{_parent(self.node)}.{name} is the field {name!r}, which cannot be called",
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
        param = _param_default(arg)
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
        param = _param_default(collection)
        if isinstance(collection, str) or (param and not isinstance(param[1], list)):
            if param:
                raise DefinitionError(
                    f'{method}(P("{param[0]}")) never holds: the parameter is '
                    f"{type(param[1]).__name__} {param[1]!r}, not a list",
                    hint=f'compare with {describe(self.node)} == P("{param[0]}")',
                )
            if collection in _params():
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
        param = _param_default(element)
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
        var = (name.co_varnames[0] if name and name.co_argcount else "x") + f"_{next(_var_counter)}"
        return var, fn(Val(ir.Path(var)))

    def _bind_cond(self, fn: Callable[[Val], Any], method: str) -> tuple[str, ir.Pred]:
        """Bind ``fn``'s variable; its result must be a condition (reported at
        the line ``fn`` returned from)."""
        name = getattr(fn, "__code__", None)
        var = (name.co_varnames[0] if name and name.co_argcount else "x") + f"_{next(_var_counter)}"
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
            return Val(ir.Count(f"x_{next(_var_counter)}", self.node, ir.TRUE))
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
