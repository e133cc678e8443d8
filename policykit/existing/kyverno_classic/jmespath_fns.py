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
from policykit.existing.kyverno_classic.jmespath_go import NotFound as NotFound
from policykit.existing.kyverno_classic.jmespath_go import QueryError as QueryError
from policykit.existing.kyverno_classic.jmespath_go import (
    arith,
    check_layout,
    fmt_time,
    go_arg_string,
    go_regex,
    go_repl,
    parse_time,
    semver_range,
    sub_ns,
)
from policykit.k8s.errors import Unsupported

_PROPAGATE = {"subexpression", "index_expression"}


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
        s = go_arg_string(src, "regex_replace_all", 2)
        r = go_arg_string(repl, "regex_replace_all", 3)
        return go_regex(rx).sub(go_repl(r), s)

    @_sig({"types": ["string"]}, {"types": []}, {"types": []})
    def _func_regex_replace_all_literal(self, rx: str, src: Any, repl: Any) -> str:
        s = go_arg_string(src, "regex_replace_all_literal", 2)
        r = go_arg_string(repl, "regex_replace_all_literal", 3)
        return go_regex(rx).sub(lambda _m: r, s)

    @_sig({"types": ["string"]}, {"types": []})
    def _func_regex_match(self, rx: str, src: Any) -> bool:
        return go_regex(rx).search(go_arg_string(src, "regex_match", 2)) is not None

    @_sig({"types": ["string"]}, {"types": []})
    def _func_pattern_match(self, pattern: str, src: Any) -> bool:
        return go.wildcard_match(pattern, go_arg_string(src, "pattern_match", 2))

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
        return arith("add", a, b)

    @_sig({"types": ["array"]})
    def _func_sum(self, items: list[Any]) -> Any:
        if not items:
            raise QueryError(
                "JMESPath function 'sum': at least one element in the array is required"
            )
        result = items[0]
        for item in items[1:]:
            result = arith("sum", result, item)
        return result

    @_sig({"types": []}, {"types": []})
    def _func_subtract(self, a: Any, b: Any) -> Any:
        return arith("subtract", a, b)

    @_sig({"types": []}, {"types": []})
    def _func_multiply(self, a: Any, b: Any) -> Any:
        return arith("multiply", a, b)

    @_sig({"types": []}, {"types": []})
    def _func_divide(self, a: Any, b: Any) -> Any:
        return arith("divide", a, b)

    @_sig({"types": []}, {"types": []})
    def _func_modulo(self, a: Any, b: Any) -> Any:
        return arith("modulo", a, b)

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
        check_layout(layout, "time_since")
        a = parse_time(t1, "time_since")
        b = parse_time(t2, "time_since") if t2 else self.now()
        return go.duration_string(sub_ns(b, a))

    @_sig()
    def _func_time_now(self) -> str:
        return fmt_time(self.now())

    @_sig()
    def _func_time_now_utc(self) -> str:
        return fmt_time(self.now().astimezone(dt.UTC))

    @_sig({"types": ["string"]})
    def _func_time_to_cron(self, t: str) -> str:
        x = parse_time(t, "time_to_cron")
        weekday = (x.weekday() + 1) % 7  # Go: Sunday is 0
        return f"{x.minute} {x.hour} {x.day} {x.month} {weekday}"

    @_sig({"types": ["string"]}, {"types": ["string"]})
    def _func_time_add(self, t: str, d: str) -> str:
        ns = go.parse_duration(d)
        if ns is None:
            raise QueryError(f'time: invalid duration "{d}"')
        return fmt_time(parse_time(t, "time_add") + dt.timedelta(microseconds=ns // 1000))

    @_sig({"types": ["string"]}, {"types": ["string"]})
    def _func_time_parse(self, layout: str, ts: str) -> str:
        if go.parse_int(layout) is not None:
            n = go.parse_int(ts)
            if n is None:
                raise QueryError(f'strconv.ParseInt: parsing "{ts}": invalid syntax')
            return fmt_time(dt.datetime.fromtimestamp(n, dt.UTC))
        check_layout(layout, "time_parse")
        return fmt_time(parse_time(ts, "time_parse"))

    @_sig({"types": ["string"]})
    def _func_time_utc(self, t: str) -> str:
        return fmt_time(parse_time(t, "time_utc").astimezone(dt.UTC))

    @_sig({"types": ["string"]}, {"types": ["string"]})
    def _func_time_diff(self, t1: str, t2: str) -> str:
        return go.duration_string(sub_ns(parse_time(t2, "time_diff"), parse_time(t1, "time_diff")))

    @_sig({"types": ["string"]}, {"types": ["string"]})
    def _func_time_before(self, t1: str, t2: str) -> bool:
        return parse_time(t1, "time_before") < parse_time(t2, "time_before")

    @_sig({"types": ["string"]}, {"types": ["string"]})
    def _func_time_after(self, t1: str, t2: str) -> bool:
        return parse_time(t1, "time_after") > parse_time(t2, "time_after")

    @_sig({"types": ["string"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_time_between(self, t: str, start: str, end: str) -> bool:
        x = parse_time(t, "time_between")
        return parse_time(start, "time_between") < x < parse_time(end, "time_between")

    @_sig({"types": ["string"]}, {"types": ["string"]})
    def _func_time_truncate(self, t: str, d: str) -> str:
        ns = go.parse_duration(d)
        if ns is None:
            raise QueryError(f'time: invalid duration "{d}"')
        x = parse_time(t, "time_truncate")
        if ns <= 0:
            return fmt_time(x)
        epoch = dt.datetime(1, 1, 1, tzinfo=x.tzinfo)  # Go truncates from the zero time
        since = sub_ns(x, epoch)
        return fmt_time(x - dt.timedelta(microseconds=(since % ns) // 1000))

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
        return semver_range(r)(semver_key(version))

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
            out[go_arg_string(k, "object_from_lists", 1)] = values[i] if i < len(values) else None
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
