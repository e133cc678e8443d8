"""The Go behaviour Kyverno's JMESPath functions inherit
(``pkg/engine/jmespath/functions.go``, ``arithmetic.go``, ``time.go``):
argument checks, regular expressions and replacement templates, RFC 3339
times and Go layouts, arithmetic on numbers and durations, semver ranges; and
the query errors (:class:`NotFound`, :class:`QueryError`). The functions
themselves are :mod:`.jmespath_fns`'s."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from typing import Any

from policykit.existing.kyverno_classic import gotypes as go
from policykit.existing.kyverno_classic.conditions import _semver, semver_key
from policykit.k8s.errors import Unsupported


class NotFound(Exception):
    """go-jmespath ``NotFoundError``."""

    def __init__(self, key: str) -> None:
        super().__init__(f'Unknown key "{key}" in path')
        self.key = key


class QueryError(Exception):
    """Any other failure of a query (Kyverno: "JMESPath query failed")."""


_RFC3339 = "2006-01-02T15:04:05Z07:00"


def _f(x: Any) -> float:
    return float(x)


def go_arg_string(v: Any, fn: str, i: int) -> str:
    """functions.go ifaceToString: strings, numbers ('f' with 32-bit precision), bools."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        f = float(v)
        if f.is_integer():
            return str(int(f))
        return repr(float(f"{f:.7g}")).rstrip("0").rstrip(".") if abs(f) < 1e16 else str(f)
    if isinstance(v, str):
        return v
    raise QueryError(f"invalid type for argument #{i} of {fn}: expected String or Real")


def go_repl(template: str) -> str:
    """A Go regexp replacement template ($1, ${name}, $$) as a Python one."""
    out: list[str] = []
    i = 0
    while i < len(template):
        c = template[i]
        if c == "$" and i + 1 < len(template):
            if template[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            m = re.match(r"\{(\w+)\}|(\w+)", template[i + 1 :])
            if m:
                name = m.group(1) or m.group(2)
                out.append(f"\\g<{name}>")
                i += 1 + m.end()
                continue
        out.append("\\\\" if c == "\\" else c)
        i += 1
    return "".join(out)


def go_regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise QueryError(f"invalid regex {pattern!r}: {exc}") from None


def parse_time(text: Any, fn: str) -> dt.datetime:
    if not isinstance(text, str):
        raise QueryError(f"{fn}: expected a string time")
    s = text.strip()
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})", s)
    if not m:
        raise QueryError(f'parsing time "{text}" as "{_RFC3339}": cannot parse')
    frac = (m.group(3) or "")[:7].ljust(7, "0")[1:] if m.group(3) else ""
    iso = f"{m.group(1)}T{m.group(2)}{'.' + frac if frac else ''}" + (
        "+00:00" if m.group(4) == "Z" else m.group(4)
    )
    return dt.datetime.fromisoformat(iso)


def fmt_time(t: dt.datetime) -> str:
    off = t.utcoffset()
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    if off is None or off == dt.timedelta(0):
        return base + "Z"
    total = int(off.total_seconds())
    sign = "+" if total >= 0 else "-"
    total = abs(total)
    return f"{base}{sign}{total // 3600:02d}:{total % 3600 // 60:02d}"


def sub_ns(a: dt.datetime, b: dt.datetime) -> int:
    d = a - b
    return (d.days * 86400 + d.seconds) * 10**9 + d.microseconds * 1000


def check_layout(layout: str, fn: str) -> None:
    if layout not in ("", _RFC3339):
        raise Unsupported(f"{fn} with the Go time layout {layout!r}")


# --- arithmetic (arithmetic.go) ---------------------------------------------------------


def _operand(v: Any, fn: str) -> tuple[str, Any]:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return "scalar", float(v)
    if isinstance(v, str):
        if go.parse_quantity(v) is not None:
            return "quantity", v
        d = go.parse_duration(v)
        if d is not None:
            return "duration", d
    raise QueryError(f"JMESPath function '{fn}': invalid operand")


def arith(fn: str, a: Any, b: Any) -> Any:
    (ka, va), (kb, vb) = _operand(a, fn), _operand(b, fn)
    if "quantity" in (ka, kb):
        raise Unsupported(f"{fn}() on resource quantities")
    mismatch = QueryError(f"JMESPath function '{fn}': types mismatch")
    if fn in ("add", "sum", "subtract"):
        if ka != kb:
            raise mismatch
        r = va + vb if fn != "subtract" else va - vb
        return go.duration_string(r) if ka == "duration" else r
    if fn == "multiply":
        if ka == kb == "scalar":
            return va * vb
        if {ka, kb} == {"duration", "scalar"}:
            d, s = (va, vb) if ka == "duration" else (vb, va)
            return go.duration_string(int((d / 1e9) * s * 1e9))
        raise mismatch
    if fn == "divide":
        if (kb == "scalar" and vb == 0) or (kb == "duration" and vb == 0):
            raise QueryError("JMESPath function 'divide': Zero divisor passed")
        if ka == kb == "scalar":
            return va / vb
        if ka == kb == "duration":
            return (va / 1e9) / (vb / 1e9)
        if ka == "duration" and kb == "scalar":
            return go.duration_string(int(va / 1e9 / vb * 1e9))
        raise mismatch
    # modulo
    if ka == kb == "scalar":
        if not (float(va).is_integer() and float(vb).is_integer()):
            raise QueryError("JMESPath function 'modulo': Non-integer argument(s) passed")
        if int(vb) == 0:
            raise QueryError("JMESPath function 'modulo': Zero divisor passed")
        x, y = int(va), int(vb)
        return float(int(math.fmod(x, y)))
    if ka == kb == "duration":
        if vb == 0:
            raise QueryError("JMESPath function 'modulo': Zero divisor passed")
        return go.duration_string(int(math.fmod(va, vb)))
    raise mismatch


def semver_range(spec: str) -> Callable[[tuple[Any, ...]], bool]:
    """blang/semver ParseRange: ``||`` of space-separated comparators."""
    alternatives: list[list[tuple[str, tuple[Any, ...]]]] = []
    for alt in spec.split("||"):
        parts: list[tuple[str, tuple[Any, ...]]] = []
        for tok in alt.split():
            m = re.fullmatch(r"(>=|<=|!=|==|=|>|<|!)?(.+)", tok)
            assert m is not None
            v = _semver(m.group(2))
            if v is None:
                raise QueryError(f"Could not parse Range {spec!r}")
            parts.append((m.group(1) or "=", semver_key(v)))
        if not parts:
            raise QueryError(f"Could not parse Range {spec!r}")
        alternatives.append(parts)

    def check(key: tuple[Any, ...]) -> bool:
        ops: dict[str, Callable[[Any, Any], bool]] = {
            ">=": lambda a, b: a >= b,
            "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b,
            "<": lambda a, b: a < b,
            "=": lambda a, b: a == b,
            "==": lambda a, b: a == b,
            "!=": lambda a, b: a != b,
            "!": lambda a, b: a != b,
        }
        return any(all(ops[o](key, v) for o, v in alt) for alt in alternatives)

    return check
