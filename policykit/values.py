"""JSON value semantics shared by every engine: equality, rendering, types.

These functions *are* the reference semantics of docs/semantics.md; the
compilers emit code that reproduces them in each target language.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final


class _Missing:
    """The value of a field that is absent (Rego: undefined; CEL: no such key)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


def is_number(v: object) -> bool:
    t = type(v)
    return t is int or t is float


def json_type(v: object) -> str:
    """The JSON type name of a value ("missing" for MISSING)."""
    if v is MISSING:
        return "missing"
    if v is None:
        return "null"
    t = type(v)
    if t is bool:
        return "boolean"
    if t is int or t is float:
        return "number"
    if t is str:
        return "string"
    if t is list or t is tuple:
        return "array"
    if t is dict:
        return "object"
    return "unknown"


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: numbers by value, no bool/number confusion."""
    ta, tb = type(a), type(b)
    if ta is str or tb is str:
        return ta is tb and a == b
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if (ta is int or ta is float) and (tb is int or tb is float):
        return bool(a == b)
    if a is None or b is None:
        return a is b
    if ta in (list, tuple) and tb in (list, tuple):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if ta is dict and tb is dict:
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return False


def render(v: Any) -> str:
    """A value as message text (see docs/semantics.md, "Messages")."""
    t = type(v)
    if t is str:
        return v  # type: ignore[no-any-return]
    if v is MISSING or v is None:
        return ""
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return str(v)
    if t is float:
        return format_number(v)
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def format_number(v: float) -> str:
    """Integral floats print as integers; others in shortest round-trip form."""
    if math.isfinite(v) and v == int(v) and abs(v) < 1e21:
        return str(int(v))
    return repr(v)
