"""Compiled values of the CEL compiler and the helpers they are built with.

A value compiles to a :class:`CV`: a *guard* (a CEL condition: the value is
present) and an *expression* (meaningful only under its guard), with what is
known of its type statically (docs/targets.md, "Typed and untyped CEL").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from policykit.ir import nodes as ir
from policykit.targets.cel import printer as pr
from policykit.targets.k8s.fieldtypes import FieldType

CEL_MAX_DEPTH = 24
"""Deepest bracket nesting the compiler emits. cel-cpp's parser gives up past a
recursion depth of 32, which counts more than brackets; 24 keeps a margin."""

CEL_MAX_CODEPOINTS = 100_000
"""Longest expression emitted: cel-cpp refuses longer ones ("expression size
exceeds codepoint limit"), and a long field path's presence checks grow with
the square of its length."""

HOIST_SIZE = 100
"""A value of the object alone whose CEL text (guard and expression) is longer
becomes a named policy variable (``variables:``) instead of being repeated."""

MSG_SEPARATOR = "; "
"""Joins the messages of the items of an ``each`` rule in one admission message."""


@dataclass(frozen=True, slots=True)
class CV:
    """A compiled value: present when ``guard`` holds, then equal to ``expr``.

    ``jtype`` is what is known statically: ``any``, a JSON type name,
    ``missing`` (never present) or ``keys`` (``expr`` is a map whose keys are
    the value; usable only where key order does not matter).
    """

    guard: str
    expr: str
    jtype: str
    ftype: FieldType | None = None
    """The schema type (typed compilation), when known."""
    opt: str | None = None
    """The value as a CEL optional (``object.?spec.?replicas``), when there is
    one: then ``guard`` is ``<opt>.hasValue()``."""
    nonnull: bool = False
    """Never null when present (a field the schema declares)."""
    dbl: bool = False
    """``expr`` is a CEL double already (arithmetic, a quantity): no ``double()``."""
    lst: str | None = None
    """The value as a list of one item (present) or none (absent), when there
    is one: then ``guard`` is ``size(<lst>) > 0`` and ``expr`` is ``<lst>[0]``."""
    conv: tuple[tuple[str, str, str], ...] = ()
    """Quantity conversions still to be written (:mod:`batch`): ``(token,
    value, body)``, ``token`` in ``expr`` standing for ``[value].map(_q, body)[0]``."""


MISSING_CV = CV("false", "null", "missing")
_TYPE_TEST = {
    "string": "type({e}) == string",
    "number": "(type({e}) == int || type({e}) == double)",
    "boolean": "type({e}) == bool",
    "array": "type({e}) == list",
    "object": "type({e}) == map",
    "null": "{e} == null",
}


def type_test(e: str, t: str) -> str:
    return _TYPE_TEST[t].format(e=pr.paren(e) if t == "null" else e)


def opt_chain(base: str, keys: Sequence[str]) -> str:
    """``base.?a.?b``: optional selection of declared fields (``base[?'x-y']``
    for a key that is not an identifier)."""
    out = base
    for k in keys:
        out += f".?{k}" if pr.is_field_name(k) else f"[?{pr.string(k)}]"
    return out


def merge(a: FieldType | None, b: FieldType | None) -> FieldType | None:
    if a is None or b is None:
        return None
    return FieldType(a.specs | b.specs, {**b.defs, **a.defs})


def object_only(node: ir.Node) -> bool:
    """Whether ``node`` reads the object alone: no loop variable bound outside
    it, no inventory (a policy variable sees ``object``, not a comprehension's
    variables)."""
    walked = ir.walk(node)
    bound = {n.var for n in walked if isinstance(n, (ir.Count, ir.Sum, ir.Filter, ir.Quantifier))}
    paths = [n for n in walked if isinstance(n, ir.Path)]
    return (
        any(p.root == ir.OBJECT_ROOT for p in paths)
        and all(p.root == ir.OBJECT_ROOT or p.root in bound for p in paths)
        and not any(isinstance(n, ir.Objects) for n in walked)
    )


def var_name(node: ir.Node) -> str:
    """A variable's name: the last field of the node's first path."""
    for n in ir.walk(node):
        if isinstance(n, ir.Path):
            names = [s for s in n.segments if isinstance(s, str) and pr.is_field_name(s)]
            if names:
                return names[-1]
    return "items"


def unique(name: str, taken: set[str]) -> str:
    out, i = name, 2
    while out in taken:
        out, i = f"{name}{i}", i + 1
    return out


def is_str_lit(e: str) -> bool:
    return len(e) >= 2 and e[0] == "'" and pr.matching_quote(e) == len(e) - 1


SELECT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])*$")


def dyn(e: str) -> str:
    """``e`` for a plain field selection (already dynamic), else ``dyn(e)``."""
    return e if SELECT.fullmatch(e) else f"dyn({e})"


def disjoint(t1: str, t2: str) -> bool:
    return "any" not in (t1, t2) and t1 != t2


def approx(e: str) -> str:
    return f"quantity({e}).asApproximateFloat()"


def is_number_literal(e: str) -> bool:
    try:
        float(e)
    except ValueError:
        return False
    return True


def double(v: CV) -> str:
    if v.dbl:
        return v.expr
    if v.jtype == "number" and v.expr.lstrip("-").replace(".", "", 1).isdigit():
        return v.expr if "." in v.expr or "e" in v.expr else v.expr + ".0"
    return f"double({v.expr})"
