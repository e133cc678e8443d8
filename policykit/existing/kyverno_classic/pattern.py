"""``validate.pattern`` / ``anyPattern`` matching, following Kyverno's
``pkg/engine/validate/validate.go`` (MatchPattern, validateMap,
validateArray, validateArrayOfMaps), ``pkg/engine/validate/utils.go`` (key
order), ``pkg/engine/anchor`` (anchors, their handlers, AnchorMap, errors) and
``pkg/engine/wildcards/wildcards.go`` (wildcard label/annotation keys). Leaf
values are :mod:`.leaf`'s (``validate_value`` and ``operator_of`` are
re-exported here)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from policykit.existing.kyverno_classic import gotypes as go
from policykit.existing.kyverno_classic.leaf import operator_of as operator_of
from policykit.existing.kyverno_classic.leaf import validate_value as validate_value

# --- anchors (pkg/engine/anchor/anchor.go) -------------------------------------

_ANCHOR = re.compile(r"^([+<=X^])?\((.+)\)$", re.S)


def parse_anchor(key: str) -> tuple[str, str] | None:
    """``(modifier, key)`` of an anchored key, None for a plain key."""
    m = _ANCHOR.match(key.strip())
    if not m:
        return None
    return m.group(1) or "", m.group(2)


def _is(key: str, *mods: str) -> bool:
    a = parse_anchor(key)
    return a is not None and a[0] in mods


# --- errors (pkg/engine/anchor/error.go, validate.PatternError) ----------------

_NEG, _COND, _GLOBAL = "negation", "conditional", "global"
_MSG = {
    _NEG: "negation anchor matched in resource",
    _COND: "conditional anchor mismatch",
    _GLOBAL: "global anchor mismatch",
}


class PatternFailure(Exception):
    """An error of the matcher. ``anchor`` is set for anchor errors;
    ``skip``/``path`` for a :class:`validate.PatternError`."""

    def __init__(
        self,
        message: str,
        anchor: str = "",
        path: str = "",
        skip: bool = False,
        wrapped: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.anchor = anchor
        self.path = path
        self.skip = skip
        self.pattern_error = wrapped


def _anchor_error(kind: str, msg: str) -> PatternFailure:
    return PatternFailure(f"{_MSG[kind]}: {msg}", anchor=kind)


def _is_error(err: PatternFailure, kind: str) -> bool:
    # anchor.isError: a validateAnchorError by code, anything else by its text
    if err.anchor and not err.pattern_error:
        return err.anchor == kind
    return _MSG[kind] in err.message


def _skip(err: PatternFailure) -> bool:
    return _is_error(err, _COND) or _is_error(err, _GLOBAL)


def _combined_skip(errors: list[PatternFailure], path: str) -> PatternFailure:
    return PatternFailure("; ".join(e.message for e in errors), path=path, skip=True, wrapped=True)


@dataclass
class _AnchorMap:
    keys: dict[str, bool] = field(default_factory=dict)

    def check(self, pattern: Mapping[str, Any], resource: Any) -> None:
        for key in pattern:
            a = parse_anchor(key)
            if a is None or a[0] not in ("", "^", "X"):
                continue
            if self.keys.get(key):
                continue
            self.keys.setdefault(key, False)
            if _has_key(resource, a[1]):
                self.keys[key] = True

    def missing(self) -> bool:
        return any(not v and not _is(k, "X") for k, v in self.keys.items())


def _has_key(resource: Any, key: str) -> bool:
    if isinstance(resource, dict):
        return key in resource
    if isinstance(resource, list):
        return any(_has_key(v, key) for v in resource)
    return False


# --- MatchPattern ----------------------------------------------------------------


def match_pattern(resource: Any, pattern: Any) -> PatternFailure | None:
    """None when ``resource`` matches; otherwise the PatternError Kyverno
    returns (``skip`` set, or ``path`` empty for an execution error)."""
    ac = _AnchorMap()
    try:
        _element(resource, pattern, "/", ac)
    except PatternFailure as err:
        if _skip(err):
            return PatternFailure(err.message, path="", skip=True, wrapped=True)
        if _is_error(err, _NEG):
            return PatternFailure(err.message, path=err.path, wrapped=True)
        if ac.missing():
            return PatternFailure(err.message, path="", wrapped=True)
        return PatternFailure(err.message, path=err.path, wrapped=True)
    return None


def _fail(path: str, message: str) -> PatternFailure:
    return PatternFailure(message, path=path)


def _gotype(v: Any) -> str:
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, list):
        return "[]interface {}"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    return "string"


def _show(v: Any) -> str:
    return go.sprint(v)


def _element(resource: Any, pattern: Any, path: str, ac: _AnchorMap) -> None:
    if isinstance(pattern, dict):
        if not isinstance(resource, dict):
            raise _fail(
                path,
                f"pattern and resource have different structures. Path: {path}. "
                f"Expected {_gotype(pattern)}, found {_gotype(resource)}",
            )
        ac.check(pattern, resource)
        _map(resource, pattern, path, ac)
    elif isinstance(pattern, list):
        if not isinstance(resource, list):
            raise _fail(
                path,
                f"validation rule failed at path {path}, resource does not satisfy the "
                "expected overlay pattern",
            )
        _array(resource, pattern, path, ac)
    else:
        values = resource if isinstance(resource, list) else [resource]
        for v in values:
            if not validate_value(v, pattern):
                raise _fail(
                    path,
                    f"resource value '{_show(resource)}' does not match '{_show(pattern)}' "
                    f"at path {path}",
                )


def _has_nested_anchors(pattern: Any) -> bool:
    if isinstance(pattern, dict):
        if any(parse_anchor(k) is not None and parse_anchor(k)[0] != "+" for k in pattern):  # type: ignore[index]
            return True
        return any(_has_nested_anchors(v) for v in pattern.values())
    if isinstance(pattern, list):
        return any(_has_nested_anchors(v) for v in pattern)
    return False


def _sorted_resource_keys(resources: Mapping[str, Any]) -> list[str]:
    # utils.go getSortedNestedAnchorResource: sorted, then global anchors and
    # values holding anchors pushed to the front (in reverse sorted order)
    front: list[str] = []
    back: list[str] = []
    for k in sorted(resources):
        if _is(k, "<") or _has_nested_anchors(resources[k]):
            front.insert(0, k)
        else:
            back.append(k)
    return front + back


def _map(resource: dict[str, Any], pattern: dict[str, Any], path: str, ac: _AnchorMap) -> None:
    pattern = _expand_metadata(pattern, resource)
    anchors = {k: v for k, v in pattern.items() if _is(k, "", "^", "=", "X")}
    plain = {k: v for k, v in pattern.items() if k not in anchors}
    skips: list[PatternFailure] = []
    applied = 0
    for key in sorted(anchors):
        try:
            _handle(key, anchors[key], resource, path, ac)
        except PatternFailure as err:
            if _skip(err):
                skips.append(err)
                continue
            if not any(not s.pattern_error for s in skips):
                raise
            continue
        applied += 1
    if skips and (applied == 0 or any(not s.pattern_error for s in skips)):
        raise _combined_skip(skips, path)
    for key in _sorted_resource_keys(plain):
        _handle(key, plain[key], resource, path, ac)


def _handle(key: str, pattern: Any, resource: dict[str, Any], path: str, ac: _AnchorMap) -> None:
    """anchor/handlers.go CreateElementHandler and the handlers."""
    a = parse_anchor(key)
    if a is None or a[0] == "+":  # add-if-not-present has no validate handler: default
        current = path + key + "/"
        if pattern == "*":
            if resource.get(key) is None:
                raise _fail(path, f"{path}/{key} not found")
            return
        _element(resource.get(key), pattern, current, ac)
        return
    mod, name = a
    current = path + name + "/"
    if mod == "X":
        if name in resource:
            raise PatternFailure(
                f"{_MSG[_NEG]}: {current} is not allowed", anchor=_NEG, path=current
            )
        return
    if mod == "=":
        if name in resource:
            _element(resource[name], pattern, current, ac)
        return
    if mod == "":
        if name not in resource:
            err = _anchor_error(_COND, "conditional anchor key doesn't exist in the resource")
            err.path = current
            raise err
        try:
            _element(resource[name], pattern, current, ac)
        except PatternFailure as inner:
            err = _anchor_error(_COND, inner.message)
            err.path = inner.path
            raise err from None
        return
    if mod == "<":
        if name in resource:
            try:
                _element(resource[name], pattern, current, ac)
            except PatternFailure as inner:
                err = _anchor_error(_GLOBAL, inner.message)
                err.path = inner.path
                raise err from None
        return
    # ^ existence: every pattern map must match at least one list element
    if name not in resource:
        return
    value = resource[name]
    if not isinstance(value, list):
        raise _fail(
            current,
            f"invalid resource type {_gotype(value)}: Existence ^ () anchor can be used only "
            "on list/array type resource",
        )
    if not isinstance(pattern, list):
        raise _fail(
            current,
            f"invalid pattern type {_gotype(pattern)}: Pattern has to be of list to compare "
            "against resource",
        )
    for p in pattern:
        if not isinstance(p, dict):
            raise _fail(
                current,
                f"invalid pattern type {_gotype(pattern)}: Pattern has to be of type map to "
                "compare against items in resource",
            )
        for i, item in enumerate(value):
            try:
                _element(item, p, f"{current}{i}/", ac)
                break
            except PatternFailure:
                continue
        else:
            raise _fail(current, f"existence anchor validation failed at path {current}")


def _array(resource: list[Any], pattern: list[Any], path: str, ac: _AnchorMap) -> None:
    if not pattern:
        raise _fail(path, "pattern Array empty")
    first = pattern[0]
    if isinstance(first, dict):
        # only the first map is used, against every element
        _each(((i, item, first) for i, item in enumerate(resource)), path, ac)
        return
    if not isinstance(first, list):
        _element(resource, first, path, ac)
        return
    if len(resource) < len(pattern):
        raise _fail(
            "",
            "validate Array failed, array length mismatch, resource Array len is "
            f"{len(resource)} and pattern Array len is {len(pattern)}",
        )
    _each(((i, resource[i], p) for i, p in enumerate(pattern)), path, ac)


def _each(pairs: Iterable[tuple[int, Any, Any]], path: str, ac: _AnchorMap) -> None:
    """Each (index, element, pattern) pair validated; a skip is remembered and
    the next pair tried; only skips and nothing applied is a combined skip."""
    skips: list[PatternFailure] = []
    applied = 0
    for i, item, p in pairs:
        try:
            _element(item, p, f"{path}{i}/", ac)
        except PatternFailure as err:
            if _skip(err):
                skips.append(err)
                continue
            raise
        applied += 1
    if applied == 0 and skips:
        raise _combined_skip(skips, path)


# --- wildcard keys in labels and annotations (wildcards.ExpandInMetadata) -----------


def _pattern_value(tag: str, data: Mapping[str, Any]) -> tuple[str, Any]:
    for k, v in data.items():
        a = parse_anchor(k)
        if k == tag or (a is not None and a[1] == tag):
            return k, v
    return "", None


def _string_map(tag: str, data: Any) -> tuple[str, dict[str, str] | None]:
    if not isinstance(data, dict):
        return "", None
    key, val = _pattern_value(tag, data)
    if not isinstance(val, dict):
        return "", None
    return key, {k: v for k, v in val.items() if isinstance(v, str)}


def _expand_metadata(pattern: dict[str, Any], resource: Mapping[str, Any]) -> dict[str, Any]:
    mkey, meta = _pattern_value("metadata", pattern)
    if meta is None or resource.get("metadata") is None or not isinstance(meta, dict):
        return pattern
    meta = dict(meta)
    for tag in ("labels", "annotations"):
        pkey, pdata = _string_map(tag, meta)
        if pdata is None:
            continue
        _, rdata = _string_map(tag, resource["metadata"])
        if rdata is None:
            continue
        out: dict[str, Any] = {}
        for k, v in pdata.items():
            if not go.contains_wildcard(k):
                out[k] = v
                continue
            a = parse_anchor(k)
            bare = a[1] if a else k
            hit = next((rk for rk in rdata if go.wildcard_match(bare, rk)), bare)
            out[f"{a[0]}({hit})" if a else hit] = v
        meta[pkey] = out
    return {**pattern, mkey: meta}
