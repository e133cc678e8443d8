"""The values the cost estimate works on (:mod:`policykit.targets.k8s.celcost`):
cost ranges, size models, CEL types from the schema, and a sub-expression's
type and size (``Info``) — shared by the estimator and the call costs
(:mod:`.calls`), so neither imports the other."""

from __future__ import annotations

import math
from dataclasses import dataclass

from policykit.targets.k8s import fieldtypes

U64 = 2**64 - 1
MAX_REQUEST_BYTES = 3 * 1024 * 1024  # celconfig.MaxRequestSizeBytes
TRAVERSAL = 0.1  # common.StringTraversalCostFactor
REGEX = 0.25  # common.RegexStringLengthCostFactor
TYPICAL_ITEMS = 16


def _add(a: int, b: int) -> int:
    return min(a + b, U64)


def _mul(a: int, b: int) -> int:
    return min(a * b, U64)


def _factor(x: int, f: float) -> int:
    """cel-go ``multiplyByCostFactor``: rounded up, saturating."""
    if x > 0 and f > 0 and x > U64 / f:
        return U64
    c = math.ceil(x * f)
    return U64 if c >= 2.0**64 else int(c)


@dataclass(frozen=True, slots=True)
class Range:
    """A cost or size estimate: cel-go's ``CostEstimate``/``SizeEstimate``."""

    lo: int = 0
    hi: int = 0

    def __add__(self, o: Range) -> Range:
        return Range(_add(self.lo, o.lo), _add(self.hi, o.hi))

    def __mul__(self, o: Range) -> Range:
        return Range(_mul(self.lo, o.lo), _mul(self.hi, o.hi))

    def factor(self, f: float) -> Range:
        return Range(_factor(self.lo, f), _factor(self.hi, f))

    def union(self, o: Range) -> Range:
        return Range(min(self.lo, o.lo), max(self.hi, o.hi))


def fixed(n: int) -> Range:
    return Range(n, n)


UNKNOWN = Range(0, U64)
ZERO = fixed(0)
ONE = fixed(1)


@dataclass(frozen=True, slots=True)
class Sizes:
    """Sizes for values no schema bounds. ``items is None``: Kubernetes' rule
    (schemas.go ``estimateMaxArrayItemsFromMinSize``, ``...AdditionalProperties...``,
    ``estimateMaxStringLengthPerRequest``: what fits in a 3 MiB request) and
    cel-go's unknown for a value of unknown type. Otherwise every list and map
    holds at most ``items`` entries and every string ``CHARS_PER_ITEM x items``
    characters."""

    items: int | None

    @property
    def unknown(self) -> Range:
        return UNKNOWN if self.items is None else Range(0, CHARS_PER_ITEM * self.items)

    def list(self, min_item: int) -> Range:
        if self.items is not None:
            return Range(0, self.items)
        return Range(0, (MAX_REQUEST_BYTES - 2) // (min_item + 1))

    def map(self, min_value: int) -> Range:
        if self.items is not None:
            return Range(0, self.items)
        return Range(0, (MAX_REQUEST_BYTES - 2) // (min_value + 6))

    def string(self) -> Range:
        return Range(
            0, CHARS_PER_ITEM * self.items if self.items is not None else MAX_REQUEST_BYTES - 2
        )


CHARS_PER_ITEM = 16
WORST = Sizes(None)
TYPICAL = Sizes(TYPICAL_ITEMS)

SCALARS = frozenset({"int", "uint", "double", "bool", "null", "duration", "timestamp"})


@dataclass(frozen=True, slots=True)
class Ty:
    """What is known of a value's type. ``ft``: its schema (sizes come from
    the :class:`Sizes` model); ``elem``: a list's items or a map's values, or
    an optional's value."""

    kind: str  # dyn struct map list string bytes optional type quantity + SCALARS
    ft: fieldtypes.FieldType | None = None
    elem: Ty | None = None


DYN = Ty("dyn")


def _of(ft: fieldtypes.FieldType | None) -> Ty:
    if ft is None:
        return DYN
    resolved = ft._resolved()
    j = ft.jtype
    if j == "object":
        if all(isinstance(r, dict) for r in resolved):
            return Ty("struct", ft)
        return Ty(
            "map",
            ft,
            _of(ft.field("*"))
            if any(isinstance(r, str) and r.startswith("{}") for r in resolved)
            else DYN,
        )
    if j == "array":
        return Ty("list", ft, _of(ft.items()))
    if j == "string":
        return Ty("string", ft)
    if j == "number":
        return Ty("double" if any(r == "n" for r in resolved) else "int", ft)
    if j == "boolean":
        return Ty("bool", ft)
    return DYN


def _min_json(t: Ty | None) -> int:
    """schemas.go ``estimateMinSizeJSON``."""
    if t is None:
        return 1
    return {"bool": 4, "int": 1, "double": 1, "string": 2, "list": 2, "map": 2, "struct": 2}.get(
        t.kind, 1
    )


@dataclass(frozen=True, slots=True)
class Entry:
    """cel-go ``entrySizeEstimate``: a container's key and value sizes."""

    kind: str
    key: Range
    val: Range

    def union(self, o: Entry | None) -> Entry | None:
        if o is None:
            return None
        return Entry(self.kind, self.key.union(o.key), self.val.union(o.val))


@dataclass(frozen=True, slots=True)
class Info:
    ty: Ty
    size: Range | None = None
    entry: Entry | None = None
