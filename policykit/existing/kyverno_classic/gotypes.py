"""Go behaviours Kyverno's classic engine inherits and Python does not share:
``time.ParseDuration`` / ``Duration.String``, ``fmt.Sprint`` of a float64,
``encoding/json`` marshalling, and the wildcard matcher
(``github.com/IGLOU-EU/go-wildcard`` v1.0.3, used through
``kyverno/ext/wildcard/match.go``: ``*`` is any run, ``?`` exactly one
character, nothing else is special)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any

from policykit.engines import k8s_quantity

_UNITS = {
    "ns": 1,
    "us": 10**3,
    "\u00b5s": 10**3,
    "\u03bcs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


def parse_duration(text: str) -> int | None:
    """Go's ``time.ParseDuration`` in nanoseconds; None where Go errors."""
    s = text
    neg = False
    if s[:1] in ("-", "+"):
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        return None
    total = Fraction(0)
    while s:
        m = re.match(r"([0-9]*)(?:\.([0-9]*))?", s)
        assert m is not None
        whole, frac = m.group(1), m.group(2)
        if not whole and not frac:
            return None
        s = s[m.end() :]
        u = re.match(r"[^0-9.]*", s)
        assert u is not None
        unit = u.group(0)
        s = s[u.end() :]
        if unit not in _UNITS:
            return None
        value = Fraction(int(whole or "0"))
        if frac:
            value += Fraction(int(frac), 10 ** len(frac))
        total += value * _UNITS[unit]
    ns = int(total)
    if ns > 2**63 - 1:
        return None
    return -ns if neg else ns


def _frac(u: int, prec: int) -> tuple[str, int]:
    digits = ""
    printed = False
    for _ in range(prec):
        d = u % 10
        printed = printed or d != 0
        if printed:
            digits = str(d) + digits
        u //= 10
    return ("." + digits if printed else ""), u


def duration_string(ns: int) -> str:
    """Go's ``time.Duration.String``: ``1h2m3.5s``, ``1.5ms``, ``0s``."""
    neg, u = ns < 0, abs(ns)
    if u < 10**9:
        if u == 0:
            return "0s"
        if u < 10**3:
            prec, unit = 0, "ns"
        elif u < 10**6:
            prec, unit = 3, "\u00b5s"
        else:
            prec, unit = 6, "ms"
        frac, whole = _frac(u, prec)
        out = f"{whole}{frac}{unit}"
    else:
        frac, secs = _frac(u, 9)
        out = f"{secs % 60}{frac}s"
        minutes = secs // 60
        if minutes:
            out = f"{minutes % 60}m{out}"
            if minutes // 60:
                out = f"{minutes // 60}h{out}"
    return "-" + out if neg else out


def float_sprint(f: float) -> str:
    """``fmt.Sprint(float64)``: %v is strconv's shortest ``'g'``, which switches
    to %e when the exponent is below -4 or at least 6 (``1e+06``)."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    sign, digits, exp = Decimal(repr(f)).normalize().as_tuple()
    assert isinstance(exp, int)
    ds = "".join(map(str, digits))
    dp = len(ds) + exp  # position of the decimal point
    x = dp - 1
    eprec = 6
    s = "-" if sign else ""
    if x < -4 or x >= eprec:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{s}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if dp <= 0:
        return f"{s}0.{'0' * -dp}{ds}"
    if dp >= len(ds):
        return f"{s}{ds}{'0' * (dp - len(ds))}"
    return f"{s}{ds[:dp]}.{ds[dp:]}"


def sprint(v: Any) -> str:
    """``fmt.Sprint`` of a JSON value (numbers are float64 in Kyverno's context)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return float_sprint(float(v))
    if v is None:
        return "<nil>"
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return "[" + " ".join(sprint(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{sprint(v[k])}" for k in sorted(v)) + "]"
    return str(v)


def _num(v: Any) -> Any:
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
        return int(v)
    if isinstance(v, dict):
        return {k: _num(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_num(x) for x in v]
    return v


def marshal(v: Any) -> str:
    """``encoding/json.Marshal``: sorted keys, no spaces, HTML characters escaped."""
    text = json.dumps(_num(v), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@lru_cache(maxsize=4096)
def _wild_re(pattern: str) -> re.Pattern[str]:
    parts = ["." if c == "?" else ".*" if c == "*" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.S)


def wildcard_match(pattern: str, name: str) -> bool:
    """``wildcard.Match(pattern, name)``."""
    if pattern == "":
        return name == ""
    if pattern == "*":
        return True
    return _wild_re(pattern).fullmatch(name) is not None


def contains_wildcard(s: str) -> bool:
    return "*" in s or "?" in s


def parse_quantity(text: str) -> k8s_quantity.Quantity | None:
    """``resource.ParseQuantity``; surrounding spaces are refused as Go does."""
    if not text or text != text.strip():
        return None
    return k8s_quantity.parse(text)


def parse_float(text: str) -> float | None:
    """``strconv.ParseFloat(s, 64)`` for the decimal forms YAML values take."""
    if not re.fullmatch(
        r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?i:inf|infinity|nan)", text
    ):
        return None
    return float(text)


def parse_int(text: str) -> int | None:
    """``strconv.ParseInt(s, 10, 64)``."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    n = int(text)
    return n if -(2**63) <= n < 2**63 else None
