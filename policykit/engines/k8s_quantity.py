"""Kubernetes' CEL quantity library (``quantity()``, ``isQuantity()``,
``asApproximateFloat()``, ``compareTo()`` ...) as apimachinery computes it.

``resource.ParseQuantity`` keeps small values as ``value * 10^scale`` in an
int64 (the fast path) and everything else as an ``inf.Dec`` rounded *up* to
nano units; ``AsApproximateFloat64`` then returns ``float(base) * Pow10(exp)`` —
one float multiplication, so ``"1.1"`` gives ``1.1000000000000001``. The local
CEL engine uses this module so it computes what the API server computes, not
what the reference engine computes (the difference is documented in
docs/engines.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

_RE = re.compile(
    r"^([+-]?)([0-9]*)(?:\.([0-9]*))?(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
)
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_INT64_MAX = 2**63 - 1
_MAX_EXPONENT = 307


@dataclass(frozen=True, slots=True)
class Quantity:
    """A parsed quantity: ``unscaled * 10^exponent`` (exact), as apimachinery stores it."""

    unscaled: int
    exponent: int

    @property
    def exact(self) -> Decimal:
        return Decimal(self.unscaled).scaleb(self.exponent)

    def approximate_float(self) -> float:
        base = float(self.unscaled)
        if self.exponent == 0:
            return base
        return base * _pow10(self.exponent)

    def compare(self, other: Quantity) -> int:
        a, b = self.exact, other.exact
        return (a > b) - (a < b)

    def is_integer(self) -> bool:
        return self.exact == self.exact.to_integral_value()


def _pow10(n: int) -> float:
    """Go's ``math.Pow10``: exact powers for n >= 0, ``1 / 10^-n`` below."""
    if n >= 0:
        return float(10**n) if n <= 308 else float("inf")
    if n < -323:
        return 0.0
    return 1.0 / float(10**-n)


@lru_cache(maxsize=65536)
def parse(text: str) -> Quantity | None:
    """``resource.ParseQuantity``; ``None`` where it returns an error."""
    m = _RE.fullmatch(text)
    if m is None:
        return None
    sign, num, denom, suffix = m.group(1), m.group(2), m.group(3), m.group(4) or ""
    denom = denom or ""
    if not num and not denom:
        return None
    num = num or "0"
    negative = sign == "-"
    if suffix in _BINARY:
        base, exponent = 2, _BINARY[suffix]
    elif suffix in _DECIMAL:
        base, exponent = 10, _DECIMAL[suffix]
    else:
        base, exponent = 10, int(suffix[1:])
        if abs(exponent) > _MAX_EXPONENT:
            return None
    digits = int(num + denom)
    # fast path: an int64 amount, as apimachinery's parseQuantityString + int64Amount
    if base == 10:
        precision = 18 - (len(num) + len(denom))
        scale, mantissa = exponent, 1
    elif len(denom) == 0:
        precision = 15 - len(num) - int(float(exponent) * 3 / 10) - 1
        scale, mantissa = 0, 1 << exponent
    else:
        precision, scale, mantissa = -1, 0, 1
    if precision >= 0:
        scale -= len(denom)
        if scale >= -9:
            value = digits * mantissa
            if value <= _INT64_MAX:
                return Quantity(-value if negative else value, scale)
    # inf.Dec path: exact, then rounded up (away from zero) to nano units
    unscaled, dec_scale = digits, len(denom)
    if base == 10:
        dec_scale -= exponent
    else:
        unscaled *= 1 << exponent
    if unscaled != 0:
        if dec_scale > 9:
            div = 10 ** (dec_scale - 9)
            unscaled = -(-unscaled // div)
        else:
            unscaled *= 10 ** (9 - dec_scale)
        dec_scale = 9
    return Quantity(-unscaled if negative else unscaled, -dec_scale)
