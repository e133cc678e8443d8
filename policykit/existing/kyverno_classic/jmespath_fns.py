"""JMESPath as Kyverno runs it: the ``jmespath`` library with

* the ``kyverno/go-jmespath`` fork's missing-key rule (interpreter.go): a
  field missing from an object is a ``NotFoundError`` that only
  sub-expressions and index expressions pass on; every other node
  (functions, comparators, ``||``, projections, pipes, multi-selects) reads
  it as null. ``request.object.metadata.labels.x`` on a Pod without that
  label is therefore an error, ``... || ''`` is ``''``.
* Kyverno's own functions (``pkg/engine/jmespath/functions.go``,
  ``arithmetic.go``, ``time.go``) registered as custom functions.

What policykit does not compute (quantity arithmetic, ``x509_decode``,
``random``, ``image_normalize``, ``is_external_url``, Go time layouts other
than RFC 3339, unknown functions) raises :class:`Unsupported`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
import posixpath
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

import jmespath
import yaml
from jmespath import exceptions as jexc
from jmespath import functions as jfn
from jmespath import parser as jparser
from jmespath import visitor as jvisitor

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


_PROPAGATE = {"subexpression", "index_expression"}
_RFC3339 = "2006-01-02T15:04:05Z07:00"


def _f(x: Any) -> float:
    return float(x)


def _go_arg_string(v: Any, fn: str, i: int) -> str:
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


def _go_repl(template: str) -> str:
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


def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise QueryError(f"invalid regex {pattern!r}: {exc}") from None


def _time(text: Any, fn: str) -> dt.datetime:
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


def _fmt_time(t: dt.datetime) -> str:
    off = t.utcoffset()
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    if off is None or off == dt.timedelta(0):
        return base + "Z"
    total = int(off.total_seconds())
    sign = "+" if total >= 0 else "-"
    total = abs(total)
    return f"{base}{sign}{total // 3600:02d}:{total % 3600 // 60:02d}"


def _sub_ns(a: dt.datetime, b: dt.datetime) -> int:
    d = a - b
    return (d.days * 86400 + d.seconds) * 10**9 + d.microseconds * 1000


def _layout(layout: str, fn: str) -> None:
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


def _arith(fn: str, a: Any, b: Any) -> Any:
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


def _semver_range(spec: str) -> Callable[[tuple[Any, ...]], bool]:
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


_F = TypeVar("_F", bound=Callable[..., Any])


def _sig(*specs: dict[str, Any]) -> Callable[[_F], _F]:
    """``jmespath.functions.signature``, typed."""
    deco: Callable[[_F], _F] = jfn.signature(*specs)  # type: ignore[arg-type]
    return deco


class KyvernoFunctions(jfn.Functions):
    """Kyverno's JMESPath functions (pkg/engine/jmespath/functions.go)."""

    def __init__(self, now: Callable[[], dt.datetime] | None = None) -> None:
        super().__init__()
        self.now: Callable[[], dt.datetime] = now or (lambda: dt.datetime.now(dt.UTC))

    @_sig({"types": ["string"]}, {"types": ["string"]})
    def _func_compare(self, a: str, b: str) -> int:
        return (a > b) - (a < b)

    @_sig({"types": ["string"]}, {"types": ["string"]})
    def _func_equal_fold(self, a: str, b: str) -> bool:
        return a.casefold() == b.casefold()

    @_sig(
        {"types": ["string"]}, {"types": ["string"]}, {"types": ["string"]}, {"types": ["number"]}
    )
    def _func_replace(self, s: str, old: str, new: str, n: float) -> str:
        count = int(n)
        if count < 0:
            return s.replace(old, new) if old else _go_replace_empty(s, new, -1)
        return s.replace(old, new, count) if old else _go_replace_empty(s, new, count)

    @_sig({"types": ["string"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_replace_all(self, s: str, old: str, new: str) -> str:
        return s.replace(old, new) if old else _go_replace_empty(s, new, -1)

    @_sig({"types": ["string"]})
    def _func_to_upper(self, s: str) -> str:
        return s.upper()

    @_sig({"types": ["string"]})
    def _func_to_lower(self, s: str) -> str:
        return s.lower()

    @_sig({"types": ["string"]}, {"types": ["string"]})
    def _func_trim(self, s: str, cutset: str) -> str:
        return s.strip(cutset) if cutset else s

    @_sig({"types": ["string"]}, {"types": ["string"]})
    def _func_trim_prefix(self, s: str, prefix: str) -> str:
        return s.removeprefix(prefix)

    @_sig({"types": ["string"]}, {"types": ["string"]})
    def _func_split(self, s: str, sep: str) -> list[str]:
        if sep == "":
            return list(s)
        return s.split(sep)

    @_sig({"types": ["string"]}, {"types": []}, {"types": []})
    def _func_regex_replace_all(self, rx: str, src: Any, repl: Any) -> str:
        s = _go_arg_string(src, "regex_replace_all", 2)
        r = _go_arg_string(repl, "regex_replace_all", 3)
        return _regex(rx).sub(_go_repl(r), s)

    @_sig({"types": ["string"]}, {"types": []}, {"types": []})
    def _func_regex_replace_all_literal(self, rx: str, src: Any, repl: Any) -> str:
        s = _go_arg_string(src, "regex_replace_all_literal", 2)
        r = _go_arg_string(repl, "regex_replace_all_literal", 3)
        return _regex(rx).sub(lambda _m: r, s)

    @_sig({"types": ["string"]}, {"types": []})
    def _func_regex_match(self, rx: str, src: Any) -> bool:
        return _regex(rx).search(_go_arg_string(src, "regex_match", 2)) is not None

    @_sig({"types": ["string"]}, {"types": []})
    def _func_pattern_match(self, pattern: str, src: Any) -> bool:
        return go.wildcard_match(pattern, _go_arg_string(src, "pattern_match", 2))

    @_sig({"types": []}, {"types": []})
    def _func_label_match(self, labels: Any, match: Any) -> bool:
        if not isinstance(labels, dict) or not isinstance(match, dict):
            raise QueryError("label_match: invalid type, expected Object")
        return all(k in match and match[k] == v for k, v in labels.items())

    @_sig({"types": ["string"]})
    def _func_to_boolean(self, s: str) -> bool:
        low = s.lower()
        if low not in ("true", "false"):
            raise QueryError(
                f"JMESPath function 'to_boolean': lowercase argument must be 'true' or 'false' "
                f"(provided: '{s}')"
            )
        return low == "true"

    @_sig({"types": []}, {"types": []})
    def _func_add(self, a: Any, b: Any) -> Any:
        return _arith("add", a, b)

    @_sig({"types": ["array"]})
    def _func_sum(self, items: list[Any]) -> Any:
        if not items:
            raise QueryError(
                "JMESPath function 'sum': at least one element in the array is required"
            )
        result = items[0]
        for item in items[1:]:
            result = _arith("sum", result, item)
        return result

    @_sig({"types": []}, {"types": []})
    def _func_subtract(self, a: Any, b: Any) -> Any:
        return _arith("subtract", a, b)

    @_sig({"types": []}, {"types": []})
    def _func_multiply(self, a: Any, b: Any) -> Any:
        return _arith("multiply", a, b)

    @_sig({"types": []}, {"types": []})
    def _func_divide(self, a: Any, b: Any) -> Any:
        return _arith("divide", a, b)

    @_sig({"types": []}, {"types": []})
    def _func_modulo(self, a: Any, b: Any) -> Any:
        return _arith("modulo", a, b)

    @_sig({"types": ["number"]}, {"types": ["number"]})
    def _func_round(self, x: float, digits: float) -> float:
        if not float(digits).is_integer():
            raise QueryError(
                "JMESPath function 'round': Non-integer argument(s) passed for round off"
            )
        if digits < 0:
            raise QueryError("JMESPath function 'round': Argument out of bounds")
        shift = 10 ** int(digits)
        v = float(x) * shift
        # Go math.Round: half away from zero
        r = math.floor(abs(v) + 0.5) * (1 if v >= 0 else -1)
        return float(r / shift)

    @_sig({"types": ["string"]})
    def _func_base64_decode(self, s: str) -> str:
        try:
            return base64.b64decode(s, validate=True).decode("utf-8", errors="replace")
        except ValueError as exc:
            raise QueryError(f"illegal base64 data: {exc}") from None

    @_sig({"types": ["string"]})
    def _func_base64_encode(self, s: str) -> str:
        return base64.b64encode(s.encode()).decode()

    @_sig({"types": ["string"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_time_since(self, layout: str, t1: str, t2: str) -> str:
        _layout(layout, "time_since")
        a = _time(t1, "time_since")
        b = _time(t2, "time_since") if t2 else self.now()
        return go.duration_string(_sub_ns(b, a))

    @_sig()
    def _func_time_now(self) -> str:
        return _fmt_time(self.now())

    @_sig()
    def _func_time_now_utc(self) -> str:
        return _fmt_time(self.now().astimezone(dt.UTC))

    @_sig({"types": ["string"]})
    def _func_time_to_cron(self, t: str) -> str:
        x = _time(t, "time_to_cron")
        weekday = (x.weekday() + 1) % 7  # Go: Sunday is 0
        return f"{x.minute} {x.hour} {x.day} {x.month} {weekday}"

    @_sig({"types": ["string"]}, {"types": ["string"]})
    def _func_time_add(self, t: str, d: str) -> str:
        ns = go.parse_duration(d)
        if ns is None:
            raise QueryError(f'time: invalid duration "{d}"')
        return _fmt_time(_time(t, "time_add") + dt.timedelta(microseconds=ns // 1000))

    @_sig({"types": ["string"]}, {"types": ["string"]})
    def _func_time_parse(self, layout: str, ts: str) -> str:
        if go.parse_int(layout) is not None:
            n = go.parse_int(ts)
            if n is None:
                raise QueryError(f'strconv.ParseInt: parsing "{ts}": invalid syntax')
            return _fmt_time(dt.datetime.fromtimestamp(n, dt.UTC))
        _layout(layout, "time_parse")
        return _fmt_time(_time(ts, "time_parse"))

    @_sig({"types": ["string"]})
    def _func_time_utc(self, t: str) -> str:
        return _fmt_time(_time(t, "time_utc").astimezone(dt.UTC))

    @_sig({"types": ["string"]}, {"types": ["string"]})
    def _func_time_diff(self, t1: str, t2: str) -> str:
        return go.duration_string(_sub_ns(_time(t2, "time_diff"), _time(t1, "time_diff")))

    @_sig({"types": ["string"]}, {"types": ["string"]})
    def _func_time_before(self, t1: str, t2: str) -> bool:
        return _time(t1, "time_before") < _time(t2, "time_before")

    @_sig({"types": ["string"]}, {"types": ["string"]})
    def _func_time_after(self, t1: str, t2: str) -> bool:
        return _time(t1, "time_after") > _time(t2, "time_after")

    @_sig({"types": ["string"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_time_between(self, t: str, start: str, end: str) -> bool:
        x = _time(t, "time_between")
        return _time(start, "time_between") < x < _time(end, "time_between")

    @_sig({"types": ["string"]}, {"types": ["string"]})
    def _func_time_truncate(self, t: str, d: str) -> str:
        ns = go.parse_duration(d)
        if ns is None:
            raise QueryError(f'time: invalid duration "{d}"')
        x = _time(t, "time_truncate")
        if ns <= 0:
            return _fmt_time(x)
        epoch = dt.datetime(1, 1, 1, tzinfo=x.tzinfo)  # Go truncates from the zero time
        since = _sub_ns(x, epoch)
        return _fmt_time(x - dt.timedelta(microseconds=(since % ns) // 1000))

    @_sig({"types": ["string"]})
    def _func_path_canonicalize(self, s: str) -> str:
        if s == "":
            return ""
        out = posixpath.normpath(s)
        return "/" + out.lstrip("/") if out.startswith("//") else out

    @_sig({"types": ["string"]}, {"types": ["number"]})
    def _func_truncate(self, s: str, n: float) -> str:
        return s[: max(0, int(n))]

    @_sig({"types": ["string"]}, {"types": ["string"]})
    def _func_semver_compare(self, v: str, r: str) -> bool:
        version = _semver(v) or (0, 0, 0, ())
        return _semver_range(r)(semver_key(version))

    @_sig({"types": ["string"]})
    def _func_parse_json(self, s: str) -> Any:
        try:
            return json.loads(s)
        except ValueError as exc:
            raise QueryError(str(exc)) from None

    @_sig({"types": ["string"]})
    def _func_parse_yaml(self, s: str) -> Any:
        try:
            return yaml.safe_load(s)
        except yaml.YAMLError as exc:
            raise QueryError(str(exc)) from None

    @_sig({"types": ["object", "array"]}, {"types": []})
    def _func_lookup(self, obj: Any, key: Any) -> Any:
        if isinstance(obj, dict):
            if not isinstance(key, str):
                raise QueryError("lookup: argument #2 must be a String")
            return obj.get(key)
        if isinstance(key, bool) or not isinstance(key, (int, float)):
            raise QueryError("lookup: argument #2 must be a Number")
        if not float(key).is_integer():
            raise QueryError("lookup: argument #2: expected an integer number")
        i = int(key)
        return obj[i] if 0 <= i < len(obj) else None

    @_sig({"types": ["object", "array"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_items(self, obj: Any, kname: str, vname: str) -> list[dict[str, Any]]:
        if isinstance(obj, dict):
            return [{kname: k, vname: obj[k]} for k in sorted(obj)]
        return [{kname: float(i), vname: v} for i, v in enumerate(obj)]

    @_sig({"types": ["array"]}, {"types": ["array"]})
    def _func_object_from_lists(self, keys: list[Any], values: list[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i, k in enumerate(keys):
            out[_go_arg_string(k, "object_from_lists", 1)] = values[i] if i < len(values) else None
        return out

    @_sig({"types": ["string"]})
    def _func_sha256(self, s: str) -> str:
        return hashlib.sha256(s.encode()).hexdigest()

    @_sig({"types": ["string"]})
    def _func_sha1(self, s: str) -> str:
        return hashlib.sha1(s.encode()).hexdigest()

    @_sig({"types": ["string"]})
    def _func_md5(self, s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()


_UNSUPPORTED_FUNCTIONS = ("x509_decode", "random", "image_normalize", "is_external_url")


def _go_replace_empty(s: str, new: str, n: int) -> str:
    """strings.Replace with an empty ``old``: insert ``new`` before each rune and at the end."""
    out: list[str] = []
    count = 0
    for ch in s:
        if n < 0 or count < n:
            out.append(new)
            count += 1
        out.append(ch)
    if n < 0 or count < n:
        out.append(new)
    return "".join(out)


class _Interpreter(jvisitor.TreeInterpreter):
    """TreeInterpreter with go-jmespath's NotFoundError rule."""

    def __init__(self, options: jvisitor.Options) -> None:
        super().__init__(options)
        self._stack: list[str] = []

    def visit(self, node: Any, *args: Any, **kwargs: Any) -> Any:
        parent = self._stack[-1] if self._stack else None
        self._stack.append(node["type"])
        try:
            return super().visit(node, *args, **kwargs)
        except NotFound:
            if parent is None or parent in _PROPAGATE:
                raise
            return None
        finally:
            self._stack.pop()

    def visit_field(self, node: Any, value: Any) -> Any:
        if isinstance(value, dict):
            key = node["value"]
            if key not in value:
                raise NotFound(key)
            return value[key]
        return None


@lru_cache(maxsize=2048)
def _compile(expression: str) -> jparser.ParsedResult:
    try:
        return jmespath.compile(expression)
    except jexc.JMESPathError as exc:
        raise QueryError(f"incorrect query {expression}: {exc}") from None


def search(expression: str, data: Any, now: Callable[[], dt.datetime] | None = None) -> Any:
    """Evaluate ``expression`` on ``data``; raises :class:`NotFound`,
    :class:`QueryError` or :class:`Unsupported`."""
    expression = expression.strip()
    if not expression:
        raise QueryError("invalid query (nil)")
    for name in _UNSUPPORTED_FUNCTIONS:
        if re.search(rf"\b{name}\s*\(", expression):
            raise Unsupported(f"the JMESPath function {name}()")
    parsed = _compile(expression)
    functions = KyvernoFunctions(now)
    interpreter = _Interpreter(jvisitor.Options(custom_functions=functions))
    try:
        return interpreter.visit(parsed.parsed, data)
    except jexc.UnknownFunctionError as exc:
        raise Unsupported(f"a JMESPath function policykit does not provide ({exc})") from None
    except jexc.JMESPathError as exc:
        raise QueryError(f"JMESPath query failed: {exc}") from None
