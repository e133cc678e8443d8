"""Rewrite a generated field schema the way a person writes it.

The compiler builds a rule's schema mechanically (``not``/``anyOf`` from De
Morgan, a length test over strings, lists and objects alike, ``$`` spelled as
a look-ahead). A scaffolder form shows ajv's error per keyword, so
``not: {anyOf: [{minLength: 64}, ...]}`` reads "must NOT be valid" where a
person wrote ``maxLength: 63``. :func:`simplify` applies rewrites that are
*exact* (the schema accepts the same values before and after):

* De Morgan: ``not anyOf[a, b]`` is ``allOf[not a, not b]``; ``not not a`` is ``a``;
* ``allOf`` is flattened; ``true`` conjuncts dropped; one left is itself;
* under a conjunct that fixes one type ``T``: ``not {type: U, ...}`` with
  ``U != T`` is true (dropped), ``not {type: T, minLength: n}`` is
  ``maxLength: n - 1`` (likewise ``maxLength``, ``minimum`` ...);
* ``not {type: null}`` is dropped next to a conjunct that already excludes
  null (a type without null, an enum or const without null), and then
  ``anyOf[{type: null}, x]`` next to it is ``x``;
* conjuncts whose keywords are disjoint (or equal, like a shared ``type``)
  merge into one object: JSON Schema keywords of one object are a conjunction.

:func:`human_pattern` spells the end of input ``$``: exact in ECMA-262 without
the ``m`` flag (ajv, so the Backstage form), which is what field schemas are for.
"""

from __future__ import annotations

from typing import Any

from policykit.targets.jsonschema.pattern import END

Schema = dict[str, Any] | bool

_NOT_NULL = {"not": {"type": "null"}}
_NULL = {"type": "null"}
# not {type: T, k: n} under type T, as the keyword and bound that say the same
_FLIP_BOUND: dict[str, tuple[str, int]] = {
    "minLength": ("maxLength", -1),
    "maxLength": ("minLength", 1),
    "minItems": ("maxItems", -1),
    "maxItems": ("minItems", 1),
    "minProperties": ("maxProperties", -1),
    "maxProperties": ("minProperties", 1),
}
_FLIP_NUMBER = {
    "minimum": "exclusiveMaximum",
    "exclusiveMinimum": "maximum",
    "maximum": "exclusiveMinimum",
    "exclusiveMaximum": "minimum",
}


def human_pattern(pattern: str) -> str:
    """``pattern`` with the portable end-of-input look-ahead spelled ``$``."""
    return pattern.replace(END, "$")


def simplify(s: Schema) -> Schema:
    if isinstance(s, bool):
        return s
    out: dict[str, Any] = {}
    for k, v in s.items():
        if k in ("allOf", "anyOf", "oneOf"):
            out[k] = [simplify(x) for x in v]
        elif k in ("not", "items", "contains", "if", "then", "else"):
            out[k] = simplify(v)
        elif k == "properties":
            out[k] = {p: simplify(x) for p, x in v.items()}
        elif k == "pattern":
            out[k] = human_pattern(v)
        else:
            out[k] = v
    if set(out) == {"not"}:
        return _simplify_not(out["not"])
    if set(out) == {"allOf"}:
        return _simplify_all(out["allOf"])
    if set(out) == {"anyOf"} and len(out["anyOf"]) == 1:
        single: Schema = out["anyOf"][0]
        return single
    return out


def _simplify_not(inner: Schema) -> Schema:
    if isinstance(inner, bool):
        return not inner
    if set(inner) == {"not"}:
        twice: Schema = inner["not"]
        return twice
    if set(inner) == {"anyOf"}:
        return _simplify_all([_simplify_not(b) for b in inner["anyOf"]])
    return {"not": inner}


def _single_type(s: Schema) -> str | None:
    if isinstance(s, dict) and isinstance(s.get("type"), str):
        t: str = s["type"]
        return t
    return None


def _excludes_null(s: Schema) -> bool:
    if not isinstance(s, dict):
        return False
    t = s.get("type")
    if isinstance(t, str) and t != "null":
        return True
    if isinstance(t, list) and "null" not in t:
        return True
    if "enum" in s and isinstance(s["enum"], list) and None not in s["enum"]:
        return True
    return "const" in s and s["const"] is not None


def _simplify_all(items: list[Schema]) -> Schema:
    flat: list[Schema] = []
    for x in items:
        if isinstance(x, dict) and set(x) == {"allOf"}:
            flat.extend(x["allOf"])
        elif x is not True:
            flat.append(x)
    if any(x is False for x in flat):
        return False
    # not-null next to anyOf[null, x]: the null branch is dead
    if _NOT_NULL in flat:
        flat = [
            _drop_null_branch(x) if isinstance(x, dict) and set(x) == {"anyOf"} else x for x in flat
        ]
        if any(_excludes_null(x) for x in flat if x != _NOT_NULL):
            flat = [x for x in flat if x != _NOT_NULL]
    # under one fixed type, a negated one-keyword branch becomes a bound (or true)
    types = {t for t in map(_single_type, flat) if t is not None}
    if len(types) == 1:
        (t,) = types
        kept: list[Schema] = []
        for x in flat:
            y = _under_type(x, t)
            if y is not True:
                kept.append(y)
        flat = kept
    merged: list[dict[str, Any]] = []
    rest: list[Schema] = []
    for x in flat:
        if not isinstance(x, dict):
            rest.append(x)
            continue
        for m in merged:
            if all(k not in m or m[k] == v for k, v in x.items()):
                m.update(x)
                break
        else:
            merged.append(dict(x))
    out: list[Schema] = [*merged, *rest]
    if not out:
        return True
    return out[0] if len(out) == 1 else {"allOf": out}


def _drop_null_branch(x: dict[str, Any]) -> Schema:
    branches = [b for b in x["anyOf"] if b != _NULL]
    if not branches:
        return False
    return branches[0] if len(branches) == 1 else {"anyOf": branches}


def _under_type(x: Schema, t: str) -> Schema:
    """``x`` as it reads for a value known to be of type ``t``."""
    if not (isinstance(x, dict) and set(x) == {"not"} and isinstance(x["not"], dict)):
        return x
    inner: dict[str, Any] = x["not"]
    it = inner.get("type")
    if isinstance(it, str) and it != t and {it, t} != {"number", "integer"}:
        return True  # a value of type t is never of type it
    if it != t:
        return x
    rest = {k: v for k, v in inner.items() if k != "type"}
    if len(rest) != 1:
        return x
    ((k, v),) = rest.items()
    if k in _FLIP_BOUND and isinstance(v, int):
        nk, d = _FLIP_BOUND[k]
        if nk.startswith("max") and v + d < 0:
            return False
        return {"type": t, nk: v + d} if v + d > 0 or nk.startswith("max") else True
    if k in _FLIP_NUMBER:
        return {"type": t, _FLIP_NUMBER[k]: v}
    return x
