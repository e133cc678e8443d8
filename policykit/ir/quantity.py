"""Kubernetes resource quantities ("500m", "2Gi", "1.5", "1e3") as numbers.

The grammar is Kubernetes' own (``k8s.io/apimachinery/pkg/api/resource``):
a signed decimal number followed by a binary-SI suffix (``Ki Mi Gi Ti Pi Ei``),
a decimal-SI suffix (``m``, none, ``k M G T P E``) or a decimal exponent
(``e3``, ``E-2``). The value is returned in base units (cores, bytes) as a
float, correctly rounded from the exact decimal value. Anything else — the
empty string, ``"1 Gi"``, ``"1gi"``, ``"0x10"``, a bool — is *not* a quantity
(``None``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

_QUANTITY_RE = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
)
QUANTITY_PATTERN = _QUANTITY_RE.pattern

MULTIPLIERS: dict[str, Decimal] = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


@lru_cache(maxsize=65536)
def parse_quantity(text: str) -> float | None:
    """Parse a quantity string; ``None`` if it is not one."""
    m = _QUANTITY_RE.fullmatch(text)
    if m is None:
        return None
    number, suffix = m.group(1), m.group(2) or ""
    try:
        mantissa = Decimal(number)
        if suffix[:1] in ("e", "E") and suffix not in MULTIPLIERS:
            exp = int(suffix[1:])
            if abs(exp) > 30:
                return None
            value = mantissa.scaleb(exp)
        else:
            value = mantissa * MULTIPLIERS[suffix]
    except (InvalidOperation, ValueError):
        return None
    return float(value)


def to_quantity(value: object) -> float | int | None:
    """A JSON value as a quantity: numbers pass through, strings are parsed."""
    if type(value) is int or type(value) is float:
        return value
    if type(value) is str:
        return parse_quantity(value)
    return None
