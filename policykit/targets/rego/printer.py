"""The one place where anything becomes Rego text.

Every user string (ids, titles, messages, regexes, keys, literal values) goes
through :func:`string` or :func:`metadata_block`; nothing else in the compiler
quotes or escapes. Output follows ``opa fmt``: tabs, ``if { ... }`` bodies, one
blank line between rules.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from policykit.errors import DefinitionError
from policykit.ir.names import REGO_KEYWORDS

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f\u2028\u2029]')
_RAW_UNSAFE = re.compile(r'[`"\x00-\x1f\x7f\u2028\u2029]')


def _checked(s: str) -> bytes:
    try:
        return s.encode("utf-8")
    except UnicodeEncodeError:
        raise DefinitionError(f"string {s!r} is not valid Unicode text") from None


def string(s: str) -> str:
    """A Rego string expression that every engine reads back as ``s``.

    Plain ``"..."`` when nothing needs escaping, else ``base64.decode("...")``:
    regopy does not decode escape sequences (``"a\\tb"`` stays backslash-t) and
    stores raw strings with backslashes doubled, so no spelling with an escape or
    a raw string survives it (each case checked against regopy and real OPA).
    """
    raw = _checked(s)
    if not _NEEDS_ESCAPE.search(s):
        return f'"{s}"'
    return f'base64.decode("{base64.b64encode(raw).decode()}")'


def regex(pattern: str) -> str:
    """A regex literal: a raw string when possible (both engines match raw-string
    patterns correctly, and they read as written), else :func:`string`. The
    pattern is first spelled as regopy reads it (:func:`regopy_spelling`)."""
    _checked(pattern)
    pattern = regopy_spelling(pattern)
    if not _RAW_UNSAFE.search(pattern):
        return f"`{pattern}`"
    return string(pattern)


_NAMED_GROUP = re.compile(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>")
_HEX = re.compile(r"\\x([0-9a-fA-F]{2})")


def regopy_spelling(pattern: str) -> str:
    """``pattern`` (in the portable dialect, :mod:`policykit.ir.regex`) with
    what regopy cannot read spelled as it can, meaning the same in RE2:

    * a named group ``(?P<name>...)`` is ``(?:...)`` (matching never reads the
      name; in regopy the named group matched nothing, silently);
    * ``\\xHH`` of a printable ASCII character is that character, escaped when
      it is punctuation (regopy fails on ``\\x`` with unreadable output); one
      of a control character stays (regopy cannot match it: docs/engines.md).
    """
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            hx = _HEX.match(pattern, i)
            code = int(hx.group(1), 16) if hx else -1
            if hx and 0x20 <= code < 0x7F:
                c = chr(code)
                if c.isdigit() or c == ",":  # after "{" a bare one would make a repeat
                    out.append(c if in_class else f"[{c}]")
                else:
                    out.append(c if c.isalpha() or c == " " else "\\" + c)
                i = hx.end()
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]" or out[-1] in ("[", "[^")
            out.append(ch)
        elif ch == "[":
            in_class = True
            out.append("[^" if pattern.startswith("[^", i) else "[")
            i += 2 if pattern.startswith("[^", i) else 1
            continue
        elif (m := _NAMED_GROUP.match(pattern, i)) is not None:
            out.append("(?:")
            i = m.end()
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def number(v: int | float) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(v)
    if isinstance(v, float) and not math.isfinite(v):
        raise DefinitionError("NaN and infinity have no Rego spelling")
    # as opa fmt writes it; the compiler never starts a statement with a number
    # (a line starting with "-" or "(" continues the previous one in regopy)
    return str(v) if isinstance(v, int) else repr(v)


def term(v: Any) -> str:
    """A JSON value as a Rego term (objects with sorted keys)."""
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
        return "[" + ", ".join(term(x) for x in v) + "]"
    if isinstance(v, Mapping):
        items = (f"{string(str(k))}: {term(v[k])}" for k in sorted(v))
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"no Rego term for {type(v).__name__}")


def string_set(values: Iterable[str]) -> str:
    return "{" + ", ".join(string(v) for v in sorted(set(values))) + "}"


def is_identifier(key: str) -> bool:
    return bool(_IDENT.fullmatch(key)) and key not in REGO_KEYWORDS


def ref(base: str, segments: Sequence[str | int]) -> str:
    """``base.a["b-c"][0]``: dots for identifiers, brackets for the rest."""
    out = [base]
    for s in segments:
        if isinstance(s, int):
            out.append(f"[{s}]")
        elif is_identifier(s):
            out.append(f".{s}")
        else:
            out.append(f"[{string(s)}]")
    return "".join(out)


def _yaml_scalar(v: Any) -> str:
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=True)
    return json.dumps(v)


def metadata_block(fields: Mapping[str, Any]) -> list[str]:
    """A ``# METADATA`` annotation; every value is a JSON (hence YAML) scalar."""
    lines = ["# METADATA"]

    def emit(key: str, value: Any, indent: str) -> None:
        if isinstance(value, Mapping):
            if not value:
                return
            lines.append(f"# {indent}{key}:")
            for k in value:
                emit(k, value[k], indent + "  ")
        elif isinstance(value, (list, tuple)):
            if not value:
                return
            lines.append(f"# {indent}{key}:")
            lines.extend(f"# {indent}- {_yaml_scalar(x)}" for x in value)
        elif value is not None and value != "":
            lines.append(f"# {indent}{key}: {_yaml_scalar(value)}")

    for k, v in fields.items():
        emit(k, v, "")
    return lines


class Module:
    """Collects the top-level statements of one module and prints it."""

    def __init__(self, package: str) -> None:
        self.package = package
        self.header: list[str] = []
        self.imports: set[str] = set()
        self.blocks: list[list[str]] = []

    def add(self, lines: list[str]) -> None:
        self.blocks.append(lines)

    def rule(self, head: str, body: Sequence[str], comment: Sequence[str] = ()) -> None:
        """``head if { body }`` (or ``head`` alone when the body is empty)."""
        lines = list(comment)
        if body:
            lines.append(f"{head} if {{")
            lines.extend(indent(body))
            lines.append("}")
        else:
            lines.append(head)
        self.add(lines)

    def text(self) -> str:
        out = [*self.header, f"package {self.package}", ""]
        if self.imports:
            out.extend(f"import {i}" for i in sorted(self.imports))
            out.append("")
        for b in self.blocks:
            out.extend(b)
            out.append("")
        return "\n".join(out).rstrip("\n") + "\n"


def indent(lines: Iterable[str], level: int = 1) -> list[str]:
    pad = "\t" * level
    return [pad + ln if ln else ln for ln in lines]


def comprehension(open_: str, head: str, body: Sequence[str], close: str) -> list[str]:
    """A multi-line array/set comprehension as ``opa fmt`` lays it out."""
    return [f"{open_}{head} |", *indent(body), close]
