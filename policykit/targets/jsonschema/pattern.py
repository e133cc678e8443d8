"""The portable regex dialect, spelled for JSON Schema's ``pattern``.

A schema's ``pattern`` is run by two very different engines: ECMA-262 in
Unicode mode (ajv, which Backstage's scaffolder forms use) and Python's ``re``
in Unicode mode (the ``jsonschema`` package). The dialect (policykit.ir.regex)
is ASCII RE2; this module rewrites a pattern so that both engines read it as
RE2 does:

* ``\\d \\w`` become ASCII classes (both engines would otherwise differ from
  RE2 and, in Python, from each other); ``\\D \\W`` likewise outside a class;
* ``.`` becomes ``[^\\n]`` (ECMA's ``.`` also refuses ``\\r`` and U+2028/9);
* ``$`` becomes ``(?![\\s\\S])`` (Python's ``$`` also matches before a final
  newline); ``\\A`` becomes ``^``;
* ``(?P<name>`` becomes ``(?:`` (ECMA spells names ``(?<name>``);
* identity escapes of characters that ECMA's Unicode mode refuses to escape
  (``\\#``, ``\\-`` outside a class, ``\\"`` ...) become the bare character; a
  bare ``{`` ``}`` ``]`` that is not syntax gets a backslash, as Unicode mode
  demands; a ``]`` first in a class is escaped (ECMA reads ``[]`` as empty).

What cannot be rewritten is refused with :class:`UnsupportedError`: ``\\b``
and ``\\B`` (word boundaries are Unicode-aware in Python's ``re``) and
``\\D``/``\\W`` inside a class.
"""

from __future__ import annotations

import re

from policykit.ir.regex import check_portable
from policykit.targets.base import UnsupportedError

_SYNTAX = set("^$\\.*+?()[]{}|/")
_WORD = "0-9A-Za-z_"
_QUANT = re.compile(r"\{\d+(,\d*)?\}")


def schema_pattern(pattern: str) -> str:
    """The JSON Schema spelling of a dialect ``pattern`` (validated here)."""
    check_portable(pattern)
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            out.append(_escape(pattern[i + 1], in_class))
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            j = i + 1
            if pattern[j : j + 1] == "^":
                j += 1
            out.append(pattern[i:j])
            if pattern[j : j + 1] == "]":
                out.append("\\]")
                j += 1
            i = j
            continue
        if ch == "(" and pattern.startswith("(?P<", i):
            out.append("(?:")
            i = pattern.index(">", i) + 1
            continue
        if ch == "{":
            m = _QUANT.match(pattern, i)
            if m:
                out.append(m.group())
                i = m.end()
                continue
            out.append("\\{")
        elif ch in "}]":
            out.append("\\" + ch)
        elif ch == ".":
            out.append("[^\\n]")
        elif ch == "$":
            out.append("(?![\\s\\S])")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _escape(c: str, in_class: bool) -> str:
    if c == "d":
        return "0-9" if in_class else "[0-9]"
    if c == "w":
        return _WORD if in_class else f"[{_WORD}]"
    if c in "DW":
        if in_class:
            raise UnsupportedError(
                f"\\{c} inside a character class has no portable JSON Schema spelling",
                hint="list the characters explicitly",
            )
        return "[^0-9]" if c == "D" else f"[^{_WORD}]"
    if c in "bB":
        raise UnsupportedError(
            f"\\{c} (word boundary) is Unicode-aware in Python's re but ASCII in RE2",
            hint="spell the boundary with classes, or rely on the other targets",
        )
    if c == "A":
        return "^"
    if c in "tnrfvx" or c in _SYNTAX or (in_class and c == "-"):
        return "\\" + c
    return c


def literal_pattern(text: str) -> str:
    """A pattern matching ``text`` literally (both engines, Unicode mode)."""
    return "".join("\\" + c if c in _SYNTAX else c for c in text)


END = "(?![\\s\\S])"
"""End of input in both engines (``$`` is not: Python also matches before ``\\n``)."""
