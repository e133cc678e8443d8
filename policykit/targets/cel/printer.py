"""The one place where anything becomes CEL text.

Every user string (messages, regexes, keys, literal values) goes through
:func:`string`; field access through :func:`select`. Nothing else in the CEL
compiler quotes or escapes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

from policykit.errors import DefinitionError
from policykit.ir.names import CEL_RESERVED

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def string(s: str) -> str:
    """A single-quoted CEL string literal that reads back as ``s``.

    Backslash, quotes and control characters are escaped; other code points are
    written as themselves (CEL source is UTF-8). Lone surrogates are refused.
    """
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise DefinitionError(f"string {s!r} is not valid Unicode text") from None
    out: list[str] = []
    for ch in s:
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F or ch in "\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


_UNESCAPES = {v: k for k, v in _ESCAPES.items()}


def unquote(e: str) -> str:
    """The string a literal made by :func:`string` stands for."""
    out: list[str] = []
    i = 1
    while i < len(e) - 1:
        ch = e[i]
        if ch == "\\":
            if e[i + 1] == "u":
                out.append(chr(int(e[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_UNESCAPES[e[i : i + 2]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def matching_quote(e: str) -> int:
    """Index of the quote closing the string literal ``e`` starts with, or -1."""
    i = 1
    while i < len(e):
        if e[i] == "\\":
            i += 2
            continue
        if e[i] == e[0]:
            return i
        i += 1
    return -1


def number(v: int | float) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(v)
    if isinstance(v, int):
        return str(v)
    if not math.isfinite(v):
        raise DefinitionError(f"number {v!r} cannot be written in CEL")
    r = repr(v)
    if "e" in r or "E" in r:
        mant, exp = r.lower().split("e")
        if "." not in mant:
            mant += ".0"
        return f"{mant}e{exp}"
    return r if "." in r else r + ".0"


def literal(v: Any) -> str:
    """A JSON value as a CEL literal; mixed-type lists wrap items in ``dyn()``
    (Kubernetes and Kyverno require homogeneous aggregate literals)."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return string(v)
    if isinstance(v, (int, float)):
        return number(v)
    if isinstance(v, (list, tuple)):
        items = [literal(x) for x in v]
        kinds = {_kind(x) for x in v}
        if len(kinds) > 1:
            items = [f"dyn({x})" for x in items]
        return "[" + ", ".join(items) + "]"
    if isinstance(v, dict):
        pairs = [f"{string(str(k))}: {literal(x)}" for k, x in sorted(v.items())]
        if len({_kind(x) for x in v.values()}) > 1:
            pairs = [f"{string(str(k))}: dyn({literal(x)})" for k, x in sorted(v.items())]
        return "{" + ", ".join(pairs) + "}"
    raise TypeError(f"not a JSON value: {v!r}")


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "double"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "list"
    return "map"


def is_field_name(key: str) -> bool:
    """Whether ``key`` can be written ``x.key`` (else ``x['key']``)."""
    return bool(_IDENT.fullmatch(key)) and key not in CEL_RESERVED and not key.startswith("__")


def select(base: str, key: str) -> str:
    return f"{base}.{key}" if is_field_name(key) else f"{base}[{string(key)}]"


def has(base: str, key: str) -> str:
    """Presence test of a key in a map (``base`` must be known to be a map)."""
    return f"has({base}.{key})" if is_field_name(key) else f"{string(key)} in {base}"


def conj(items: Sequence[str]) -> str:
    items = [i for i in items if i != "true"]
    if "false" in items:
        return "false"
    if not items:
        return "true"
    return " && ".join(_paren_or(i) for i in items)


def disj(items: Sequence[str]) -> str:
    items = [i for i in items if i != "false"]
    if "true" in items:
        return "true"
    if not items:
        return "false"
    return " || ".join(_paren_ternary(i) for i in items)


def neg(item: str) -> str:
    if item == "true":
        return "false"
    if item == "false":
        return "true"
    if item.startswith("!") and _balanced_atom(item[1:]):
        return item[1:]
    return "!" + (item if _balanced_atom(item) else f"({item})")


def paren(e: str) -> str:
    return e if _balanced_atom(e) else f"({e})"


_ADDITIVE = ("+", "-")
_MULTIPLICATIVE = ("*", "/", "%")
_OTHER_OPS = ("&&", "||", " ? ", "==", "!=", "<", ">", " in ", "!")


def arith(a: str, op: str, b: str) -> str:
    """``a op b`` with the parentheses CEL's precedence needs and no more
    (``a * 2.0 + b``), keeping the tree as written: a right operand of the
    same precedence keeps its parentheses (floating point is not associative)."""

    def level(e: str) -> int:  # 0: other operators, 1: additive, 2: multiplicative, 3: atom
        if _top_level(e, _OTHER_OPS):
            return 0 if not (e.startswith("(") and _matching_close(e) == len(e) - 1) else 3
        if _top_level(e, _ADDITIVE):
            return 1
        if _top_level(e, _MULTIPLICATIVE):
            return 2
        return 3

    mine = 1 if op in _ADDITIVE else 2
    left = a if level(a) >= mine else f"({a})"
    right = b if level(b) > mine else f"({b})"
    return f"{left} {op} {right}"


def let(name: str, value: str, body: str) -> str:
    """``body`` with ``name`` bound to ``value``, evaluated once:
    ``[value].map(name, body)[0]``. Not ``cel.bind``: Kubernetes' base CEL
    environment (k8s.io/apiserver/pkg/cel/environment/base.go) has no
    ``ext.Bindings``, so a ValidatingAdmissionPolicy using it is refused;
    ``map`` is a core macro everywhere."""
    return f"[{value}].map({name}, {body})[0]"


def _paren_or(e: str) -> str:
    return f"({e})" if _top_level(e, ("||", "?")) else e


def _paren_ternary(e: str) -> str:
    return f"({e})" if _top_level(e, ("?",)) else e


def _scan(e: str) -> Iterator[tuple[int, int]]:
    """(index, bracket depth after it) of every character of ``e`` outside
    string literals — the one scanner the parenthesizing helpers share."""
    depth = 0
    quote = ""
    i = 0
    while i < len(e):
        ch = e[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        else:
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
            yield i, depth
        i += 1


def _top_level(e: str, ops: tuple[str, ...]) -> bool:
    """Whether any of ``ops`` occurs outside brackets and strings in ``e``."""
    return any(
        depth == 0 and e[i] not in ")]}" and any(e.startswith(op, i) for op in ops)
        for i, depth in _scan(e)
    )


def _balanced_atom(e: str) -> bool:
    """An expression that needs no parentheses as an operand: an identifier,
    call, selection or index chain, literal, or a fully parenthesized one."""
    return not _top_level(
        e, ("&&", "||", "?", "==", "!=", "<", ">", " in ", "+", "-", "*", "/", "%", "!")
    ) or (e.startswith("(") and _matching_close(e) == len(e) - 1)


def _matching_close(e: str) -> int:
    """Index of the bracket closing the one ``e`` starts with, or -1."""
    return next((i for i, depth in _scan(e) if depth == 0 and e[i] in ")]}"), -1)


def max_depth(expr: str) -> int:
    """Deepest nesting of brackets in ``expr`` (outside string literals)."""
    depth = deepest = 0
    quote: str | None = None
    i = 0
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in ")]}":
            depth -= 1
        i += 1
    return deepest
