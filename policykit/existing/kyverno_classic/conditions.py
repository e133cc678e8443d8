"""Condition operators of ``preconditions`` and ``deny.conditions``, as
``pkg/engine/variables/operator/*.go`` implements them (equal.go, in.go,
notin.go, anyin.go, allin.go, anynotin.go, allnotin.go, numeric.go,
duration.go, operator.go ``parseDuration``). Keys and values are JSON values
after substitution; Kyverno sees every number as a float64."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from policykit.existing.kyverno_classic import gotypes as go
from policykit.existing.kyverno_classic.leaf import operator_of, validate_value


class UnknownOperator(Exception):
    pass


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _secs_duration(v: Any) -> int | None:
    """A number as seconds (``time.Duration(x) * time.Second``; the float is
    truncated to whole seconds first, as the conversion does)."""
    if _is_num(v):
        return int(v) * 10**9
    return None


def _parse_duration_pair(key: Any, value: Any) -> tuple[int, int] | None:
    """operator.go parseDuration: at least one side a duration string (not "0")."""
    kd = go.parse_duration(key) if isinstance(key, str) and key != "0" else None
    vd = go.parse_duration(value) if isinstance(value, str) and value != "0" else None
    if kd is None and vd is None:
        return None
    if kd is None:
        kd = _secs_duration(key)
        if kd is None:
            return None
    if vd is None:
        vd = _secs_duration(value)
        if vd is None:
            return None
    return kd, vd


# --- Equals / NotEquals (equal.go) -------------------------------------------------


def equals(key: Any, value: Any) -> bool:
    if isinstance(key, bool):
        return isinstance(value, bool) and key == value
    if _is_num(key):
        return _equal_number(float(key), value)
    if isinstance(key, str):
        pair = _parse_duration_pair(key, value)
        if pair is not None:
            return pair[0] == pair[1]
        q = go.parse_quantity(key)
        if q is not None and isinstance(value, str):
            qv = go.parse_quantity(value)
            return qv is not None and q.compare(qv) == 0
        if isinstance(value, str):
            return go.wildcard_match(value, key)
        return False
    if isinstance(key, (dict, list)):
        return type(value) is type(key) and _deep_equal(key, value)
    return False


def _deep_equal(a: Any, b: Any) -> bool:
    if _is_num(a) and _is_num(b):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _equal_number(key: float, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if _is_num(value):
        return float(value) == key
    if isinstance(value, str):
        f = go.parse_float(value)
        return f is not None and f == key
    return False


# --- In / NotIn (in.go, notin.go; deprecated) --------------------------------------


def _matches_any(key: str, values: list[Any]) -> bool:
    """A value of the list matches the key as a wildcard, or the key matches it."""
    return any(
        go.wildcard_match(go.sprint(v), key) or go.wildcard_match(key, go.sprint(v)) for v in values
    )


def _key_in_array(key: str, value: Any) -> tuple[bool, bool]:
    """in.go keyExistsInArray -> (invalid type, exists)."""
    if isinstance(value, list):
        return False, _matches_any(key, value)
    if isinstance(value, str):
        if go.wildcard_match(value, key):
            return False, True
        arr = _json_string_array(value)
        if arr is None:
            return True, False
        return False, key in arr
    return True, False


def _json_string_array(text: str) -> list[str] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if data is None:
        return []
    if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
        return None
    return data


def _in(key: Any, value: Any, negate: bool) -> bool:
    if isinstance(key, str) or _is_num(key) or isinstance(key, bool):
        invalid, exists = _key_in_array(go.sprint(key), value)
        return False if invalid else (exists != negate)
    if isinstance(key, list):
        if not all(isinstance(k, str) for k in key):
            return False  # Go panics on a non-string element; never a pass
        if isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                return False
            vals = list(value)
        elif isinstance(value, str):
            if len(key) == 1 and key[0] == value:
                return True  # in.go: the single-key shortcut answers true for both In and NotIn
            parsed = _json_string_array(value)
            if parsed is None:
                return False
            vals = parsed
        else:
            return False
        missing = any(k not in vals for k in key)
        return missing if negate else not missing
    return False


# --- AnyIn / AllIn / AnyNotIn / AllNotIn (anyin.go, allin.go, ...) ---------------------


def _range(key: str, value: Any) -> bool:
    """anyin.go handleRange: the pattern matcher on a range string."""
    return validate_value(key, value)


def _string_arr(value: str) -> list[str] | None:
    try:
        json.loads(value)
    except ValueError:
        return [value]
    return _json_string_array(value)


def _any_key(key: str, value: Any) -> tuple[bool, bool]:
    """anyKeyExistsInArray (allKeyExistsInArray is the same code)."""
    if isinstance(value, list):
        return False, _matches_any(key, value)
    if isinstance(value, str):
        if go.wildcard_match(value, key):
            return False, True
        if operator_of(value) == "-":
            return False, _range(key, value)
        arr = _string_arr(value)
        if arr is None:
            return True, False
        return False, key in arr
    return True, False


def _w(a: str, b: str) -> bool:
    return go.wildcard_match(a, b) or go.wildcard_match(b, a)


def _set_op(keys: list[str], value: Any, mode: str) -> tuple[bool, bool]:
    """anySetExistsInArray / allSetExistsInArray; mode: any, anynot, all, allnot."""
    if isinstance(value, list):
        vals = [go.sprint(v) for v in value]
    elif mode in ("any", "anynot") and (_is_num(value) or isinstance(value, bool)):
        vals = [go.sprint(value)]
    elif isinstance(value, str):
        if len(keys) == 1 and keys[0] == value:
            return False, mode in ("any", "all")
        if operator_of(value) == "-":
            if mode == "anynot":
                flipped = value.replace("-", "!-", 1)
                return False, any(_range(k, flipped) for k in keys)
            if mode == "any":
                return False, any(_range(k, value) for k in keys)
            if mode == "allnot":
                return False, not any(_range(k, value) for k in keys)
            return False, all(_range(k, value) for k in keys)
        arr = _string_arr(value)
        if arr is None:
            return True, False
        vals = arr
    else:
        return True, False
    if mode == "any":
        return False, any(_w(k, v) for k in keys for v in vals)
    if mode == "anynot":
        return False, any(not any(_w(k, v) for v in vals) for k in keys)
    if mode == "all":
        return False, all(any(_w(k, v) for v in vals) for k in keys)
    return False, not any(_w(k, v) for k in keys for v in vals)


def _set_operator(mode: str) -> Callable[[Any, Any], bool]:
    def evaluate(key: Any, value: Any) -> bool:
        if isinstance(key, str) or _is_num(key) or isinstance(key, bool):
            invalid, exists = _any_key(go.sprint(key), value)
            if invalid:
                return False
            return exists if mode in ("any", "all") else not exists
        if isinstance(key, list):
            invalid, result = _set_op([go.sprint(k) for k in key], value, mode)
            return False if invalid else result
        return False

    return evaluate


# --- GreaterThan ... (numeric.go) ------------------------------------------------------


def _cmp_by(op: str, a: float, b: float) -> bool:
    return {
        "greaterthanorequals": a >= b,
        "greaterthan": a > b,
        "lessthanorequals": a <= b,
        "lessthan": a < b,
    }[op]


def _num_vs(op: str, key: float, value: Any, key_raw: Any) -> bool:
    if isinstance(value, bool):
        return False
    if _is_num(value):
        return _cmp_by(op, key, float(value))
    if isinstance(value, str):
        pair = _parse_duration_pair(key_raw, value)
        if pair is not None:
            return _cmp_by(op, pair[0] / 1e9, pair[1] / 1e9)
        f = go.parse_float(value)
        if f is not None:
            return _cmp_by(op, key, f)
        return False
    return False


def _semver(text: str) -> tuple[int, int, int, tuple[Any, ...]] | None:
    import re

    m = re.fullmatch(
        r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?",
        text,
    )
    if not m:
        return None
    pre = tuple(
        (0, int(p), "") if p.isdigit() else (1, 0, p) for p in (m.group(4) or "").split(".") if p
    )
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), pre


def semver_key(v: tuple[int, int, int, tuple[Any, ...]]) -> tuple[Any, ...]:
    major, minor, patch, pre = v
    return (major, minor, patch, 1 if not pre else 0, pre)


def numeric(op: str) -> Callable[[Any, Any], bool]:
    def evaluate(key: Any, value: Any) -> bool:
        if isinstance(key, bool):
            return False
        if _is_num(key):
            return _num_vs(op, float(key), value, key)
        if not isinstance(key, str):
            return False
        pair = _parse_duration_pair(key, value)
        if pair is not None:
            return _cmp_by(op, pair[0] / 1e9, pair[1] / 1e9)
        qk = go.parse_quantity(key)
        if qk is not None and isinstance(value, str):
            qv = go.parse_quantity(value)
            if qv is not None:
                return _cmp_by(op, float(qk.compare(qv)), 0.0)
        f = go.parse_float(key)
        if f is not None:
            return _num_vs(op, f, value, f)
        sv = _semver(key)
        if sv is not None and isinstance(value, str):
            vv = _semver(value)
            if vv is None:
                return False
            a, b = semver_key(sv), semver_key(vv)
            return _cmp_by(op, float((a > b) - (a < b)), 0.0)
        return False

    return evaluate


# --- DurationGreaterThan ... (duration.go) ------------------------------------------


def duration(op: str) -> Callable[[Any, Any], bool]:
    plain = op.removeprefix("duration")

    def side(v: Any) -> int | None:
        if _is_num(v):
            return int(v) * 10**9
        if isinstance(v, str):
            return go.parse_duration(v)
        return None

    def evaluate(key: Any, value: Any) -> bool:
        if isinstance(key, bool) or not (_is_num(key) or isinstance(key, str)):
            return False
        k = side(key)
        v = side(value) if not isinstance(value, bool) else None
        if k is None or v is None:
            return False
        return _cmp_by(plain, float(k), float(v))

    return evaluate


def handler(operator: str) -> Callable[[Any, Any], bool]:
    """operator.go CreateOperatorHandler (case-insensitive names)."""
    op = operator.lower()
    table: dict[str, Callable[[Any, Any], bool]] = {
        "equal": equals,
        "equals": equals,
        "notequal": lambda k, v: not equals(k, v),
        "notequals": lambda k, v: not equals(k, v),
        "in": lambda k, v: _in(k, v, False),
        "notin": lambda k, v: _in(k, v, True),
        "anyin": _set_operator("any"),
        "allin": _set_operator("all"),
        "anynotin": _set_operator("anynot"),
        "allnotin": _set_operator("allnot"),
    }
    if op in table:
        return table[op]
    if op in ("greaterthanorequals", "greaterthan", "lessthanorequals", "lessthan"):
        return numeric(op)
    if op in (
        "durationgreaterthanorequals",
        "durationgreaterthan",
        "durationlessthanorequals",
        "durationlessthan",
    ):
        return duration(op)
    raise UnknownOperator(operator)
