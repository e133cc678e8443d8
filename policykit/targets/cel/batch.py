"""Quantity conversions of one arithmetic expression, written once.

A quantity read with a fallback (``r.requests.cpu.quantity().default(0)``)
becomes ``[value].map(_q, <conversion>)[0]``: the value bound once, then
converted (a number, a quantity string, else the fallback). An arithmetic
expression over several of them (FINOPS-005's ``cpu * 0.031 + mem / GiB *
0.004 + gpus * price``) repeated the ~90-character conversion for each. Here
its operands keep the conversions pending (a token in the text), and the
expression is written with the values converted together::

    [[cpu, mem, gpus].map(_q, <conversion>)].map(_r, _r[0] * 0.031 + ...)[0]

Each value is still converted on its own, by the same text, and the
arithmetic is unchanged (the same doubles). ``[x].map(v, body)[0]`` binds a
value without ``cel.bind``, which Kubernetes' CEL environment lacks
(``k8s.io/apiserver/pkg/cel/environment/base.go``).
"""

from __future__ import annotations

import dataclasses

from policykit.targets.cel import printer as pr
from policykit.targets.cel.cv import CV, approx, type_test
from policykit.targets.cel.share import code_sub, identifiers


def quantity_parts(o: CV, pre: str, post: str, none: str) -> tuple[str, str]:
    """``o`` (of unknown type) as a double, written ``pre + x + post``
    when it is a number or a quantity string, else ``none``. A field the
    schema types as a string or a number (``q``: Quantity, IntOrString)
    needs no number test."""
    as_q, num = f"{pre}{approx('_q')}{post}", f"{pre}double(_q){post}"
    if o.opt is not None and o.nonnull and o.ftype is not None and o.ftype.string_or_number:
        # absent reads as '', which is no quantity
        return (
            f"{o.opt}.orValue('')",
            f"type(_q) != string ? {num} : isQuantity(_q) ? {as_q} : {none}",
        )
    if o.opt is not None and o.nonnull:
        e = f"{o.opt}.orValue(null)"  # null: absent (a declared field is never null)
    elif o.guard != "true":
        e = f"{o.guard} ? {o.expr} : null"
    else:
        e = o.expr
    return (
        e,
        f"type(_q) == string ? (isQuantity(_q) ? {as_q} : {none}) "
        f": {type_test('_q', 'number')} ? {num} : {none}",
    )


class Batch:
    """Tokens for pending conversions, and their writing out."""

    def __init__(self) -> None:
        self._n = 0

    def token(self) -> str:
        self._n += 1
        return f"__q{self._n}__"

    def materialize(self, cv: CV) -> CV:
        """``cv`` with its pending conversions written: alone inline, several
        with one conversion text converted together."""
        if not cv.conv:
            return cv
        guard, expr = cv.guard, cv.expr
        groups: dict[str, list[tuple[str, str]]] = {}
        for token, value, body in cv.conv:
            if token in guard or len([c for c in cv.conv if c[2] == body]) == 1:
                one = pr.let("_q", value, body)
                guard, expr = code_sub(token, one, guard), code_sub(token, one, expr)
            else:
                groups.setdefault(body, []).append((token, value))
        for body, items in groups.items():
            name = _fresh("_r", identifiers(expr))
            for i, (token, _) in enumerate(items):
                expr = code_sub(token, f"{name}[{i}]", expr)
            values = ", ".join(v for _, v in items)
            expr = pr.let(name, f"[{values}].map(_q, {body})", expr)
        return dataclasses.replace(cv, guard=guard, expr=expr, conv=())


def _fresh(name: str, taken: set[str]) -> str:
    out, i = name, 2
    while out in taken:
        out, i = f"{name}{i}", i + 1
    return out
