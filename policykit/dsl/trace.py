"""Tracing a rule body: the pack's parameters while a rule is traced, and IR
values described as the author wrote them (for the hints of
:mod:`policykit.dsl.expr` and :mod:`policykit.dsl.cond`)."""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from policykit.ir import nodes as ir

_GLOBAL_VARS = itertools.count()
_RULE_VARS: ContextVar[Iterator[int] | None] = ContextVar("policykit_dsl_vars", default=None)
"""The variable counter of the rule being traced: numbered from 0 in each rule,
so a rule's IR (and every target's output) is the same whatever was traced
before it in the process."""


def fresh_var(base: str) -> str:
    """A variable name for a lambda's parameter ``base``, unique in its rule
    (``c_0``, ``c_1``); outside a rule trace, unique in the process (``c__7``)."""
    counter = _RULE_VARS.get()
    if counter is None:
        return f"{base}__{next(_GLOBAL_VARS)}"
    return f"{base}_{next(counter)}"


Operand = Any  # a Val, or a Python scalar / flat list of scalars

_PARAMS: ContextVar[Mapping[str, Any] | None] = ContextVar("policykit_dsl_params", default=None)
"""The parameters (name → default) of the pack whose rule is being traced."""


@contextmanager
def tracing(params: Mapping[str, Any]) -> Iterator[None]:
    """Trace a rule body of a pack with these parameters (name → default), so
    that mistakes can be reported with hints that name them."""
    token = _PARAMS.set(params)
    vars_token = _RULE_VARS.set(itertools.count())
    try:
        yield
    finally:
        _RULE_VARS.reset(vars_token)
        _PARAMS.reset(token)


NUMERIC = (ir.Length, ir.Quantity, ir.Arith, ir.Count, ir.Sum)
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
    if previous is not None and not getattr(previous, "_policykit_trace", False):
        # someone else's profiler runs (cProfile's is not even a Python callable
        # setprofile could restore): leave it be; the line stays unknown
        return fn(*args), None

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "return" and frame.f_code is code:
            lines.append(frame.f_lineno)

    profile._policykit_trace = True  # type: ignore[attr-defined]  # nested calls: ours
    sys.setprofile(profile)
    try:
        result = fn(*args)
    finally:
        sys.setprofile(previous)
    return result, (lines[-1] if lines else None)


def last_name(node: ir.Value) -> str | None:
    """The field name a value ends with (``absnt`` in ``o.spec.owner.absnt``)."""
    if isinstance(node, ir.Path) and node.segments and isinstance(node.segments[-1], str):
        return node.segments[-1]
    if isinstance(node, ir.Index) and isinstance(node.key, ir.Literal):
        key = node.key.value
        return key if isinstance(key, str) else None
    return None


def parent_of(node: ir.Value) -> str:
    if isinstance(node, ir.Path):
        return describe(ir.Path(node.root, node.segments[:-1]))
    if isinstance(node, ir.Index):
        return describe(node.base)
    return describe(node)


def traced_params() -> Mapping[str, Any]:
    return _PARAMS.get() or {}
