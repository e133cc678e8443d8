"""Leaf values of a ``validate.pattern``, following Kyverno's
``pkg/engine/pattern/pattern.go`` (a value against a scalar or string
pattern: wildcards, ``|`` and ``&``, numbers, durations, quantities) and
``pkg/engine/operator/operator.go`` (``>``, ``<=``, ``!``, ranges). The maps,
arrays and anchors around them are :mod:`.pattern`'s."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from policykit.existing.kyverno_classic import gotypes as go


def validate_value(value: Any, pattern: Any) -> bool:
    if isinstance(pattern, bool):
        return isinstance(value, bool) and value == pattern
    if isinstance(pattern, int) or (isinstance(pattern, float) and pattern.is_integer()):
        return (
            _int_pattern(value, int(pattern))
            if isinstance(pattern, int)
            else _float_pattern(value, float(pattern))
        )
    if isinstance(pattern, float):
        return _float_pattern(value, pattern)
    if pattern is None:
        if isinstance(value, bool):
            return not value
        if isinstance(value, (int, float)):
            return value == 0
        if isinstance(value, str):
            return value == ""
        return value is None
    if isinstance(pattern, dict):
        return isinstance(value, dict)
    if isinstance(pattern, str):
        return _string_patterns(value, pattern)
    return False


def _int_pattern(value: Any, pattern: int) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value == pattern
    if isinstance(value, float):
        return value.is_integer() and int(value) == pattern
    if isinstance(value, str):
        n = go.parse_int(value)
        return n is not None and n == pattern
    return False


def _float_pattern(value: Any, pattern: float) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return pattern.is_integer() and int(pattern) == value
    if isinstance(value, float):
        return value == pattern
    if isinstance(value, str):
        f = go.parse_float(value)
        return f is not None and f == pattern
    return False


IN_RANGE = re.compile(r"^([-|+]?\d+(?:\.\d+)?[A-Za-z]*)-([-|+]?\d+(?:\.\d+)?[A-Za-z]*)$")
NOT_IN_RANGE = re.compile(r"^([-|+]?\d+(?:\.\d+)?[A-Za-z]*)!-([-|+]?\d+(?:\.\d+)?[A-Za-z]*)$")


def operator_of(pattern: str) -> str:
    """operator.GetOperatorFromStringPattern."""
    if len(pattern) < 2:
        return ""
    for op in (">=", "<=", ">", "<", "!"):
        if pattern.startswith(op):
            return op
    if NOT_IN_RANGE.match(pattern):
        return "!-"
    if IN_RANGE.match(pattern):
        return "-"
    return ""


def _string_patterns(value: Any, pattern: str) -> bool:
    if isinstance(value, str) and value == pattern:
        return True
    for alt in pattern.split("|"):
        alt = alt.strip(" ")
        if all(_string_pattern(value, c.strip(" ")) for c in alt.split("&")):
            return True
    return False


def _string_pattern(value: Any, pattern: str) -> bool:
    op = operator_of(pattern)
    if op in ("-", "!-"):
        m = (IN_RANGE if op == "-" else NOT_IN_RANGE).match(pattern)
        if m is None:
            return False
        lo, hi = m.group(1), m.group(2)
        if op == "-":  # x >= lo & x <= hi
            return _string_pattern(value, f">= {lo}") and _string_pattern(value, f"<= {hi}")
        return _string_pattern(value, f"< {lo}") or _string_pattern(value, f"> {hi}")
    rest = pattern[len(op) :].strip()
    for compare in (_compare_duration, _compare_quantity):
        res = compare(value, rest, op)
        if res is not None:
            return res
    return _compare_string(value, rest, op)


def _number_string(value: Any) -> str | None:
    """pattern.go convertNumberToString (nil is "0")."""
    if value is None:
        return "0"
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:f}"
    return None


def _by_op(c: int, op: str) -> bool | None:
    return {"": c == 0, "!": c != 0, ">": c > 0, "<": c < 0, ">=": c >= 0, "<=": c <= 0}.get(op)


def _compare_duration(value: Any, pattern: str, op: str) -> bool | None:
    p = go.parse_duration(pattern)
    s = _number_string(value)
    if p is None or s is None:
        return None
    v = go.parse_duration(s)
    if v is None:
        return None
    return _by_op((v > p) - (v < p), op)


def _compare_quantity(value: Any, pattern: str, op: str) -> bool | None:
    p = go.parse_quantity(pattern)
    s = _number_string(value)
    if p is None or s is None:
        return None
    v = go.parse_quantity(s)
    if v is None:
        return None
    return _by_op(v.compare(p), op)


def _compare_string(value: Any, pattern: str, op: str) -> bool:
    if op not in ("", "!"):
        return False
    if isinstance(value, bool):
        s = "true" if value else "false"
    elif isinstance(value, int):
        s = str(value)
    elif isinstance(value, float):
        s = _format_e(value)
    elif isinstance(value, str):
        s = value
    else:
        return False
    hit = go.wildcard_match(pattern, s)
    return not hit if op == "!" else hit


def _format_e(f: float) -> str:
    """strconv.FormatFloat(f, 'E', -1, 64): shortest digits, E notation."""
    sign, ds, e = Decimal(repr(f)).normalize().as_tuple()
    assert isinstance(e, int)
    d = "".join(map(str, ds))
    x = len(d) + e - 1
    m = d[0] + ("." + d[1:] if len(d) > 1 else "")
    return f"{'-' if sign else ''}{m}E{'-' if x < 0 else '+'}{abs(x):02d}"
