"""JSON value semantics shared by every engine: equality, rendering, types.

These functions *are* the reference semantics of docs/semantics.md; the
compilers emit code that reproduces them in each target language.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Context, Decimal
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


MAX_SAFE_INT = 2**53
"""Numbers below this magnitude render identically in every engine."""


def render(v: Any) -> str:
    """A value as message text (see docs/semantics.md, "Messages")."""
    t = type(v)
    if t is str:
        return v  # type: ignore[no-any-return]
    if v is MISSING or v is None:
        return ""
    if t is bool:
        return "true" if v else "false"
    if t is int or t is float:
        return format_number(v)
    if t is list:
        return "[" + ", ".join(_render_item(x) for x in v) + "]"
    return "<object>"


def _message_cap() -> int:
    try:
        n = int(os.environ.get("POLICYKIT_MAX_MESSAGE_CHARS", "") or 1000)
    except ValueError:
        n = 1000
    return max(n, 40)


MAX_MESSAGE_CHARS = _message_cap()
"""Longest finding message (``POLICYKIT_MAX_MESSAGE_CHARS``, default 1000):
longer ones keep their head and tail around ``…``. Applied to every engine's
findings alike (:class:`policykit.model.Finding`), so targets still agree."""
ELLIPSIS = "\u2026"


def cap_message(text: str, cap: int | None = None) -> str:
    """``text``, or its first and last characters around ``…`` when longer than
    ``cap`` (the result is exactly ``cap`` long: capping is idempotent)."""
    cap = MAX_MESSAGE_CHARS if cap is None else cap
    if len(text) <= cap:
        return text
    head = cap // 2
    tail = cap - head - 1
    return text[:head] + ELLIPSIS + (text[-tail:] if tail else "")


def uncapped_pattern(message: str, cap: int | None = None) -> str:
    """A regular expression (to match with ``re.DOTALL``) of the texts that
    :func:`cap_message` turns into ``message``: itself, and when it is capped,
    any longer text with its first and last characters (what the cap kept)."""
    import re  # verify only: not on check's path

    cap = MAX_MESSAGE_CHARS if cap is None else cap
    head = cap // 2
    itself = re.escape(message)
    if len(message) != cap or message[head] != ELLIPSIS:
        return itself
    return f"(?:{itself}|{re.escape(message[:head])}.{{2,}}{re.escape(message[head + 1 :])})"


def render_part(v: Any, cap: int | None = None) -> str:
    """:func:`render` for one interpolated value of a message, shortened so a
    huge value costs no more than the cap: ``cap_message`` of the joined
    message is unchanged (keeping ``cap // 2 + 1`` characters at each end)."""
    text = render(v)
    keep = (MAX_MESSAGE_CHARS if cap is None else cap) // 2 + 1
    if len(text) > 2 * keep:
        return text[:keep] + text[-keep:]
    return text


def _render_item(v: Any) -> str:
    if type(v) is list:
        return "<list>"
    if type(v) is dict:
        return "<object>"
    return render(v)


def format_number(v: float) -> str:
    """Integral values as integers; others rounded to 6 decimals, zeros stripped.

    Rounding is half away from zero on the exact decimal value (as Rego's
    ``round``), so ``0.1234565`` renders ``0.123457`` and ``2.5e-7`` ``0``.
    """
    if type(v) is float and not math.isfinite(v):
        # never read from input (the loader refuses inf/nan); kept total anyway
        return "NaN" if v != v else ("-Infinity" if v < 0 else "Infinity")
    d = to_decimal(v)
    if d == d.to_integral_value() or abs(d) >= MAX_SAFE_INT:
        return str(int(d))
    scaled = (abs(d) * 1_000_000).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    whole, frac = divmod(int(scaled), 1_000_000)
    text = str(whole) + (("." + f"{frac:06d}".rstrip("0")) if frac else "")
    return ("-" + text) if d < 0 and text != "0" else text


def to_decimal(v: float) -> Decimal:
    """The exact decimal a JSON number stands for (floats by shortest repr)."""
    if type(v) is int:
        return Decimal(v)
    return Decimal(repr(v))


DECIMAL = Context(prec=60)
"""Context for exact arithmetic on JSON numbers (as OPA's big-number arithmetic)."""


def arith(op: str, a: int | float, b: int | float) -> int | float | None:
    """``a op b`` computed exactly on decimals; ``None`` for division by zero."""
    if op == "/" and b == 0:
        return None
    if type(a) is int and type(b) is int and op != "/":
        return a + b if op == "+" else a - b if op == "-" else a * b
    x, y = to_decimal(a), to_decimal(b)
    if op == "+":
        r = DECIMAL.add(x, y)
    elif op == "-":
        r = DECIMAL.subtract(x, y)
    elif op == "*":
        r = DECIMAL.multiply(x, y)
    else:
        r = DECIMAL.divide(x, y)
    return from_decimal(r)


def exact_sum(values: list[int | float]) -> int | float:
    """Sum of numbers computed exactly on decimals."""
    if all(type(v) is int for v in values):
        return sum(values)
    total = Decimal(0)
    for v in values:
        total = DECIMAL.add(total, to_decimal(v))
    return from_decimal(total)


def from_decimal(d: Decimal) -> int | float:
    """A decimal result back to a JSON number: an int when integral."""
    if d == d.to_integral_value() and abs(d) < MAX_SAFE_INT:
        return int(d)
    return float(d)


_EXACT = (str, int, float, bool, type(None))


def plain(value: Any) -> Any:
    """``value`` with only the exact types the engines read (``dict``, ``list``,
    ``str``, ``int``, ``float``, ``bool``, ``None``): a mapping becomes a dict,
    a tuple a list, a subclass of str/int/float/bool (ruamel.yaml's round-trip
    scalars, an ``enum.StrEnum``) its base value. The engines test exact types,
    so such an object read as something else: a ruamel-loaded manifest's
    containers were never seen. Anything else is kept as it is. ``value``
    itself when it is plain already (no copy)."""
    return value if _is_plain(value) else _plain(value)


def _is_plain(value: Any) -> bool:
    t = type(value)
    if t is dict:
        return all(type(k) in _EXACT and _is_plain(v) for k, v in value.items())
    if t is list:
        return all(_is_plain(v) for v in value)
    return t in _EXACT or not isinstance(value, _CONVERTED)


def _plain(value: Any) -> Any:
    if type(value) in _EXACT:
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    return value


_CONVERTED = (Mapping, list, tuple, str, int, float)
