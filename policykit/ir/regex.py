"""The regex dialect: the subset on which RE2 (OPA, Kubernetes CEL), cel-cpp and
Python's ``re`` agree.

Allowed: literals (any code point), ``.``, character classes ``[...]`` / ``[^...]``
with ranges, ``\\d \\D \\w \\W`` (ASCII), ``\\b \\B``, escaped punctuation,
``\\t \\n \\r \\f \\v``, ``\\xHH``, groups ``(...)``, ``(?:...)``, ``(?P<name>...)``,
alternation, ``* + ? {n} {n,} {n,m}`` (bounds <= 1000) and their lazy forms,
anchors ``^``, ``$`` (end of text only) and ``\\A``.

Rejected (a target would read them differently or not at all): inline flags,
lookaround, back-references, possessive/atomic forms, ``\\s``/``\\S`` (``\\v``
differs), ``\\Z``/``\\z``, ``\\u``/``\\U``/``\\N``/octal escapes, POSIX classes
``[[:alpha:]]``, nested-set operators, ``{,n}``.

A match is *unanchored* (found anywhere in the string), as in Rego's
``regex.match`` and CEL's ``matches``.
"""

from __future__ import annotations

import re
import re._constants as sre_c
import re._parser as sre_p
import warnings
from functools import lru_cache
from typing import Any

from policykit.errors import RegexDialectError

_MAX_REPEAT_BOUND = 1000
_ALLOWED_LETTER_ESCAPES = set("dDwWbBtnrfvAx")
_OK_OPS = {
    sre_c.LITERAL,
    sre_c.NOT_LITERAL,
    sre_c.IN,
    sre_c.ANY,
    sre_c.BRANCH,
    sre_c.SUBPATTERN,
    sre_c.MAX_REPEAT,
    sre_c.MIN_REPEAT,
    sre_c.AT,
    sre_c.RANGE,
    sre_c.NEGATE,
    sre_c.CATEGORY,
}
_OK_AT = {
    sre_c.AT_BEGINNING,
    sre_c.AT_END,
    sre_c.AT_BOUNDARY,
    sre_c.AT_NON_BOUNDARY,
    sre_c.AT_BEGINNING_STRING,
    sre_c.AT_END_STRING,  # only ever from our own rewrite of '$' (a literal \Z is refused)
}
_OK_CATEGORIES = {
    sre_c.CATEGORY_DIGIT,
    sre_c.CATEGORY_NOT_DIGIT,
    sre_c.CATEGORY_WORD,
    sre_c.CATEGORY_NOT_WORD,
}


def _scan(pattern: str) -> str:
    """Check the text of ``pattern``; return the Python spelling of it.

    The only rewrite is ``$`` outside a class, which becomes ``\\Z`` so that
    Python, like RE2, does not match before a trailing newline.
    """
    out: list[str] = []
    i = 0
    in_class = False
    class_start = -1
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise RegexDialectError("pattern ends with a lone backslash")
            nxt = pattern[i + 1]
            if nxt.isalnum():
                if nxt not in _ALLOWED_LETTER_ESCAPES:
                    raise RegexDialectError(
                        f"escape \\{nxt} is not in the portable regex dialect",
                        hint="use an explicit class such as [ \\t\\n] or [0-9]",
                    )
                if nxt in "AbB" and in_class:
                    raise RegexDialectError(f"\\{nxt} inside a character class")
                if nxt == "x" and not re.fullmatch(r"[0-9a-fA-F]{2}", pattern[i + 2 : i + 4]):
                    raise RegexDialectError("\\x must be followed by exactly two hex digits")
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if ch == "[" and i + 1 < n and pattern[i + 1] in ":.=":
                raise RegexDialectError("POSIX classes like [[:alpha:]] are not portable")
            if ch == "[":
                raise RegexDialectError("a '[' inside a class must be escaped as \\[")
            if pattern[i : i + 2] in ("&&", "~~", "||", "--"):
                raise RegexDialectError(f"'{pattern[i : i + 2]}' inside a class is not portable")
            if (
                ch == "]"
                and i > class_start + 1
                and not (i == class_start + 2 and pattern[class_start + 1] == "^")
            ):
                in_class = False
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            class_start = i
            out.append(ch)
            i += 1
            continue
        if ch == "(" and pattern[i + 1 : i + 2] == "?":
            rest = pattern[i + 2 : i + 4]
            if not (rest.startswith(":") or rest == "P<"):
                raise RegexDialectError(
                    "only (?:...) and (?P<name>...) groups are portable "
                    "(no inline flags, lookaround or atomic groups)"
                )
        if ch == "{" and pattern[i + 1 : i + 2] == ",":
            raise RegexDialectError("'{,n}' means different things in RE2 and Python; use {0,n}")
        if ch == "$":
            out.append(r"\Z")
            i += 1
            continue
        out.append(ch)
        i += 1
    if in_class:
        raise RegexDialectError("unterminated character class")
    return "".join(out)


def _check_tree(items: Any) -> None:
    for op, av in items:
        if op not in _OK_OPS:
            raise RegexDialectError(f"regex construct {op} is not in the portable dialect")
        if op == sre_c.AT and av not in _OK_AT:
            raise RegexDialectError(f"anchor {av} is not in the portable dialect")
        if op == sre_c.CATEGORY and av not in _OK_CATEGORIES:
            raise RegexDialectError(f"class {av} is not in the portable dialect")
        if op == sre_c.IN:
            _check_tree(av)
        elif op == sre_c.BRANCH:
            for alt in av[1]:
                _check_tree(alt)
        elif op == sre_c.SUBPATTERN:
            _, add_flags, del_flags, sub = av
            if add_flags or del_flags:
                raise RegexDialectError("inline flags are not portable")
            _check_tree(sub)
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
            lo, hi, sub = av
            if lo > _MAX_REPEAT_BOUND or (hi != sre_c.MAXREPEAT and hi > _MAX_REPEAT_BOUND):
                raise RegexDialectError(f"repeat bounds above {_MAX_REPEAT_BOUND} are not portable")
            _check_tree(sub)


@lru_cache(maxsize=4096)
def compile_portable(pattern: str) -> re.Pattern[str]:
    """Validate ``pattern`` against the dialect and compile it for Python.

    Raises :class:`RegexDialectError` (one clear message) when it is outside.
    """
    if not isinstance(pattern, str):
        raise RegexDialectError(f"a regex must be a string, not {type(pattern).__name__}")
    py = _scan(pattern)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            parsed = sre_p.parse(py, re.ASCII)
        except (re.error, FutureWarning) as exc:
            raise RegexDialectError(f"invalid regex {pattern!r}: {exc}") from None
    if parsed.state.flags & ~(re.ASCII | re.UNICODE):
        raise RegexDialectError("inline flags are not portable")
    _check_tree(parsed)
    return re.compile(py, re.ASCII)


def check_portable(pattern: str) -> None:
    """Raise :class:`RegexDialectError` if ``pattern`` is outside the dialect."""
    compile_portable(pattern)
