"""cel-go behaviours Kyverno relies on, on cel-cpp, by rewriting the expression.

policykit evaluates CEL in cel-cpp (cel-expr-python), which cannot take new
overloads of ``orValue`` or ``_?._`` and cannot pass optional values to host
functions. So the two cel-go behaviours Kyverno's policies rely on are
restored by rewriting the parsed expression before it is compiled:

* ``x.orValue(y)`` on a value that is not optional returns ``x``, and on an
  error returns ``y``: Kyverno routes every ``orValue`` through
  ``__orValueCompat__`` (kyverno/kyverno ``pkg/cel/compiler/env.go``,
  ``OrValueCompatEnvOptions``, used by the ValidatingPolicy compiler
  ``pkg/cel/policies/vpol/compiler/compiler.go``). Here the receiver's field
  selections become optional selections (a missing field is ``none``, so
  ``y``), and the value is unwrapped only when it is optional.
* ``null.?field`` (and ``null[?key]``) is ``optional.none()`` in cel-go; cel-cpp
  has no overload for a null receiver. Each optional selection is guarded.

A value the rewrite needs more than once is bound as the one element of a
``map`` (:func:`_bind`), not with ``cel.bind``, whose lazy initialisation in
cel-cpp can read a comprehension slot an earlier ``exists`` left behind; a
policy's own ``cel.bind`` is rewritten the same way (cel-go binds eagerly:
``ext.Bindings`` expands it to a comprehension whose accumulator is the
value, cel-go ``ext/bindings.go``).

Anything this parser does not read is left as written (the caller compiles
the original), so a rewrite can only turn an error into cel-go's value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_STRING = (
    r"(?:[rRbB]{1,2})?(?:"
    r'"""(?:\\.|[^\\])*?"""'
    r"|'''(?:\\.|[^\\])*?'''"
    r'|"(?:\\.|[^"\\\n])*"'
    r"|'(?:\\.|[^'\\\n])*')"
)
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*)
  | (?P<str>"""
    + _STRING
    + r""")
  | (?P<num>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[uU]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>&&|\|\||==|!=|<=|>=|[<>!+\-*/%?:.,()\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)
_RELOPS = {"<", "<=", ">", ">=", "==", "!=", "in"}


class _Unreadable(Exception):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _Unreadable(text[pos : pos + 10])
        kind = m.lastgroup or "op"
        if kind != "ws":
            out.append((kind, m.group()))
        pos = m.end()
    return out


Node = tuple[Any, ...]


@dataclass(slots=True)
class _Parser:
    toks: list[tuple[str, str]]
    pos: int = 0

    def peek(self, ahead: int = 0) -> str:
        i = self.pos + ahead
        return self.toks[i][1] if i < len(self.toks) else ""

    def take(self, want: str | None = None) -> str:
        if self.pos >= len(self.toks):
            raise _Unreadable("end")
        text = self.toks[self.pos][1]
        if want is not None and text != want:
            raise _Unreadable(text)
        self.pos += 1
        return text

    def expr(self) -> Node:
        cond = self.binary(0)
        if self.peek() == "?":
            self.take()
            a = self.binary(0)
            self.take(":")
            b = self.expr()
            return ("cond", cond, a, b)
        return cond

    _LEVELS: tuple[frozenset[str], ...] = (
        frozenset({"||"}),
        frozenset({"&&"}),
        frozenset(_RELOPS),
        frozenset({"+", "-"}),
        frozenset({"*", "/", "%"}),
    )

    def binary(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek() in self._LEVELS[level] and self.pos < len(self.toks):
            op = self.take()
            left = ("bin", op, left, self.binary(level + 1))
        return left

    def unary(self) -> Node:
        if self.peek() in ("!", "-"):
            op = self.take()
            return ("un", op, self.unary())
        return self.member()

    def args(self, close: str) -> list[Node]:
        out: list[Node] = []
        while self.peek() != close:
            out.append(self.expr())
            if self.peek() == ",":
                self.take()
            elif self.peek() != close:
                raise _Unreadable(self.peek())
        self.take(close)
        return out

    def member(self) -> Node:
        node = self.primary()
        while True:
            tok = self.peek()
            if tok == ".":
                self.take()
                optional = self.peek() == "?"
                if optional:
                    self.take()
                if self.pos >= len(self.toks) or self.toks[self.pos][0] != "ident":
                    raise _Unreadable(self.peek())
                name = self.take()
                if not optional and self.peek() == "(":
                    self.take()
                    node = ("mcall", node, name, self.args(")"))
                else:
                    node = ("sel", node, name, optional)
            elif tok == "[":
                self.take()
                optional = self.peek() == "?"
                if optional:
                    self.take()
                index = self.expr()
                self.take("]")
                node = ("idx", node, index, optional)
            else:
                return node

    def primary(self) -> Node:
        if self.pos >= len(self.toks):
            raise _Unreadable("end")
        kind, tok = self.toks[self.pos]
        if kind in ("str", "num"):
            self.take()
            return ("lit", tok)
        if tok == "." or kind == "ident":
            name = self.take()
            if name == ".":
                name += self.take()
            if self.peek() == "(":
                self.take()
                return ("call", name, self.args(")"))
            if self.peek() == "{":
                raise _Unreadable("message construction")
            return ("id", name)
        if tok == "(":
            self.take()
            inner = self.expr()
            self.take(")")
            return inner
        if tok == "[":
            self.take()
            items: list[Node] = []
            while self.peek() != "]":
                opt = self.peek() == "?"
                if opt:
                    self.take()
                items.append(("opt" if opt else "plain", self.expr()))
                if self.peek() == ",":
                    self.take()
                elif self.peek() != "]":
                    raise _Unreadable(self.peek())
            self.take("]")
            return ("list", items)
        if tok == "{":
            self.take()
            entries: list[Node] = []
            while self.peek() != "}":
                opt = self.peek() == "?"
                if opt:
                    self.take()
                key = self.expr()
                self.take(":")
                entries.append((opt, key, self.expr()))
                if self.peek() == ",":
                    self.take()
                elif self.peek() != "}":
                    raise _Unreadable(self.peek())
            self.take("}")
            return ("map", entries)
        raise _Unreadable(tok)


def _print(n: Node) -> str:
    kind = n[0]
    if kind in ("lit", "id"):
        return str(n[1])
    if kind == "call":
        return f"{n[1]}({', '.join(_print(a) for a in n[2])})"
    if kind == "mcall":
        return f"{_print(n[1])}.{n[2]}({', '.join(_print(a) for a in n[3])})"
    if kind == "sel":
        return f"{_print(n[1])}.{'?' if n[3] else ''}{n[2]}"
    if kind == "idx":
        return f"{_print(n[1])}[{'?' if n[3] else ''}{_print(n[2])}]"
    if kind == "list":
        return "[" + ", ".join(("?" if o == "opt" else "") + _print(e) for o, e in n[1]) + "]"
    if kind == "map":
        return (
            "{" + ", ".join(f"{'?' if o else ''}{_print(k)}: {_print(v)}" for o, k, v in n[1]) + "}"
        )
    # operators in parentheses of their own: ``(a + b)[0]`` must not print as ``a + b[0]``
    if kind == "un":
        return f"({n[1]}({_print(n[2])}))"
    if kind == "bin":
        return f"(({_print(n[2])}) {n[1]} ({_print(n[3])}))"
    assert kind == "cond"
    return f"(({_print(n[1])}) ? ({_print(n[2])}) : ({_print(n[3])}))"


def _bind(var: str, value: str, body: str) -> str:
    """``body`` with ``var`` bound to ``value``, as the one element of a ``map``.

    Not ``cel.bind``: cel-cpp initialises a ``cel.bind`` variable lazily, on its
    first read, and takes a comprehension slot that still holds a value as
    already initialised. A slot is not cleared when an ``exists``/``all`` stops
    early, so a ``cel.bind`` evaluated after ``xs.filter(s, s.t.exists(t, ...))``
    could read the stale ``t`` instead of its own value (AGENT-004's message
    lost the agent's name). A ``map``'s variable is assigned on each iteration.
    """
    return f"([{value}].map({var}, {body})[0])"


class _Rewriter:
    def __init__(self) -> None:
        self.count = 0

    def fresh(self) -> str:
        self.count += 1
        return f"pkcompat{self.count}"

    def optionalize(self, n: Node) -> Node:
        """The receiver of ``orValue`` with its field selections and indexes optional."""
        if n[0] == "sel":
            return ("sel", self.optionalize(n[1]), n[2], True)
        if n[0] == "idx":
            return ("idx", self.optionalize(n[1]), n[2], True)
        return n

    def walk(self, n: Node) -> Node:
        kind = n[0]
        if kind == "mcall" and n[2] == "orValue" and len(n[3]) == 1:
            target = self.walk(self.optionalize(n[1]))
            default = self.walk(n[3][0])
            outer, inner = self.fresh(), self.fresh()
            unwrap = _bind(
                inner,
                f"dyn({outer}.orValue({_print(default)}))",
                f"type({inner}) == optional_type ? {inner}.orValue({_print(default)}) : {inner}",
            )
            text = _bind(
                outer,
                f"dyn({_print(target)})",
                f"type({outer}) == optional_type ? {unwrap} : {outer}",
            )
            return ("lit", text)
        if kind == "mcall" and n[1] == ("id", "cel") and n[2] == "bind" and len(n[3]) == 3:
            var, init, body = n[3]
            if var[0] == "id":  # cel-go's eager binding, without cel-cpp's lazy slot
                return ("lit", _bind(var[1], _print(self.walk(init)), _print(self.walk(body))))
        if kind in ("sel", "idx") and n[3]:
            target = self.walk(n[1])
            var = self.fresh()
            rest = f".?{n[2]}" if kind == "sel" else f"[?{_print(self.walk(n[2]))}]"
            null = (
                f"{var} == null || (type({var}) == optional_type && {var}.hasValue() "
                f"&& {var}.value() == null)"
            )
            text = _bind(var, f"dyn({_print(target)})", f"{null} ? optional.none() : {var}{rest}")
            return ("lit", text)
        if kind == "sel":
            return ("sel", self.walk(n[1]), n[2], False)
        if kind == "idx":
            return ("idx", self.walk(n[1]), self.walk(n[2]), False)
        if kind == "call":
            return ("call", n[1], [self.walk(a) for a in n[2]])
        if kind == "mcall":
            return ("mcall", self.walk(n[1]), n[2], [self.walk(a) for a in n[3]])
        if kind == "list":
            return ("list", [(o, self.walk(e)) for o, e in n[1]])
        if kind == "map":
            return ("map", [(o, self.walk(k), self.walk(v)) for o, k, v in n[1]])
        if kind == "un":
            return ("un", n[1], self.walk(n[2]))
        if kind == "bin":
            return ("bin", n[1], self.walk(n[2]), self.walk(n[3]))
        if kind == "cond":
            return ("cond", self.walk(n[1]), self.walk(n[2]), self.walk(n[3]))
        return n


_NEEDS = re.compile(r"\.\s*\?|\[\s*\?|\borValue\b|\bcel\s*\.\s*bind\b")


@lru_cache(maxsize=8192)
def rewrite(source: str) -> str:
    """``source`` with cel-go's ``orValue``, null optional-selection and
    ``cel.bind`` behaviours spelled out for cel-cpp; unchanged when it uses
    none of them or cannot be read."""
    if not _NEEDS.search(source):
        return source
    try:
        parser = _Parser(_tokens(source))
        tree = parser.expr()
        if parser.pos != len(parser.toks):
            return source
        return _print(_Rewriter().walk(tree))
    except (_Unreadable, RecursionError):
        return source
