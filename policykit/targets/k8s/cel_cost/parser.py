"""A parser for the CEL that policykit emits, into the tree cel-go's cost
estimator walks (google/cel-go ``parser/parser.go``, ``parser/macro.go``).

Macros expand the way cel-go expands them, so a comprehension's cost follows
``checker/cost.go`` exactly: ``has(x.f)`` is a presence test; ``all``,
``exists``, ``exists_one``, ``map`` (2 and 3 arguments) and ``filter`` become
comprehensions over ``@result``; ``cel.bind(v, init, e)`` is the comprehension
with an empty range that ``isBind`` recognises. Optional syntax: ``a.?f`` is
the call ``_?._(a, "f")``, ``a[?k]`` is ``_[?_](a, k)``.

No maintained Python library gives a CEL tree with macros expanded this way
(cel-expr-python exposes evaluation, not the tree), hence this parser. It
covers the whole expression grammar of the CEL spec except message
construction ``T{f: v}`` and ``?`` list/map elements, which policykit never
emits; they are a :class:`CelSyntaxError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

ACCU = "@result"


class CelSyntaxError(ValueError):
    """Text outside the CEL subset this parser reads."""


@dataclass(frozen=True, slots=True)
class Lit:
    value: object  # str | bytes | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Ident:
    name: str


@dataclass(frozen=True, slots=True)
class Select:
    operand: Expr
    field: str
    test_only: bool = False


@dataclass(frozen=True, slots=True)
class Call:
    fn: str
    target: Expr | None
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class ListE:
    elems: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class MapE:
    entries: tuple[tuple[Expr, Expr], ...]


@dataclass(frozen=True, slots=True)
class Comp:
    iter_var: str
    iter_range: Expr
    accu_var: str
    accu_init: Expr
    loop_cond: Expr
    loop_step: Expr
    result: Expr


Expr = Lit | Ident | Select | Call | ListE | MapE | Comp

_TOKEN = re.compile(
    r"""(?P<ws>\s+|//[^\n]*)
    |(?P<str>[rR]?[bB]?[rR]?('''|\"\"\"|'|"))
    |(?P<num>0[xX][0-9a-fA-F]+[uU]?|(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?[uU]?)
    |(?P<id>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op>\.\?|\[\?|==|!=|<=|>=|&&|\|\||[-+*/%!<>?:.,\[\](){}])""",
    re.X,
)
_ESC = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "`": "`",
    "?": "?",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}


def _string(text: str, pos: int, prefix: str, quote: str) -> tuple[object, int]:
    raw = "r" in prefix.lower()
    end = text.find(quote, pos) if raw else -1
    out: list[str] = []
    i = pos
    while True:
        if raw:
            if end < 0:
                raise CelSyntaxError(f"unterminated string at {pos}")
            out.append(text[pos:end])
            i = end + len(quote)
            break
        if i >= len(text):
            raise CelSyntaxError(f"unterminated string at {pos}")
        if text.startswith(quote, i):
            i += len(quote)
            break
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt in _ESC:
                out.append(_ESC[nxt])
                i += 2
            elif nxt in ("x", "u", "U"):
                n = {"x": 2, "u": 4, "U": 8}[nxt]
                out.append(chr(int(text[i + 2 : i + 2 + n], 16)))
                i += 2 + n
            elif nxt.isdigit():
                out.append(chr(int(text[i + 1 : i + 4], 8)))
                i += 4
            else:
                raise CelSyntaxError(f"bad escape at {i}")
        else:
            out.append(ch)
            i += 1
    s = "".join(out)
    return (s.encode() if "b" in prefix.lower() else s), i


def tokenize(text: str) -> list[tuple[str, object]]:
    toks: list[tuple[str, object]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise CelSyntaxError(f"unexpected {text[pos]!r} at {pos}")
        kind = m.lastgroup or ""
        if kind == "ws":
            pos = m.end()
        elif kind == "str":
            lead = m.group("str")
            quote = lead.lstrip("rRbB")
            value, pos = _string(text, m.end(), lead[: len(lead) - len(quote)], quote)
            toks.append(("lit", value))
        elif kind == "num":
            t = m.group("num")
            pos = m.end()
            if t[-1] in "uU":
                toks.append(("lit", int(t[:-1], 0)))
            elif re.fullmatch(r"0[xX][0-9a-fA-F]+|\d+", t):
                toks.append(("lit", int(t, 0)))
            else:
                toks.append(("lit", float(t)))
        elif kind == "id":
            word = m.group("id")
            pos = m.end()
            if word in ("true", "false"):
                toks.append(("lit", word == "true"))
            elif word == "null":
                toks.append(("lit", None))
            else:
                toks.append(("id", word))
        else:
            toks.append(("op", m.group("op")))
            pos = m.end()
    toks.append(("eof", None))
    return toks


_REL = {"==": "_==_", "!=": "_!=_", "<": "_<_", "<=": "_<=_", ">": "_>_", ">=": "_>=_", "in": "@in"}
_ADD = {"+": "_+_", "-": "_-_"}
_MUL = {"*": "_*_", "/": "_/_", "%": "_%_"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, object]:
        return self.toks[self.i]

    def take(self, op: str | None = None) -> tuple[str, object]:
        tok = self.toks[self.i]
        if op is not None and tok != ("op", op):
            raise CelSyntaxError(f"expected {op!r}, found {tok[1]!r}")
        self.i += 1
        return tok

    def at(self, op: str) -> bool:
        return self.toks[self.i] == ("op", op)

    def expr(self) -> Expr:
        cond = self.or_()
        if self.at("?"):
            self.take()
            yes = self.or_()
            self.take(":")
            no = self.expr()
            return Call("_?_:_", None, (cond, yes, no))
        return cond

    def or_(self) -> Expr:
        e = self.and_()
        while self.at("||"):
            self.take()
            e = Call("_||_", None, (e, self.and_()))
        return e

    def and_(self) -> Expr:
        e = self.rel()
        while self.at("&&"):
            self.take()
            e = Call("_&&_", None, (e, self.rel()))
        return e

    def rel(self) -> Expr:
        e = self.add()
        while True:
            kind, v = self.peek()
            key = v if kind == "op" else ("in" if (kind, v) == ("id", "in") else None)
            if key not in _REL:
                return e
            self.take()
            e = Call(_REL[str(key)], None, (e, self.add()))

    def add(self) -> Expr:
        e = self.mul()
        while self.peek()[0] == "op" and self.peek()[1] in _ADD:
            op = str(self.take()[1])
            e = Call(_ADD[op], None, (e, self.mul()))
        return e

    def mul(self) -> Expr:
        e = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in _MUL:
            op = str(self.take()[1])
            e = Call(_MUL[op], None, (e, self.unary()))
        return e

    def unary(self) -> Expr:
        if self.at("!"):
            self.take()
            return Call("!_", None, (self.unary(),))
        if self.at("-"):
            self.take()
            inner = self.unary()
            if isinstance(inner, Lit) and isinstance(inner.value, (int, float)):
                return Lit(-inner.value)
            return Call("-_", None, (inner,))
        return self.member()

    def args(self, close: str) -> tuple[Expr, ...]:
        out: list[Expr] = []
        while not self.at(close):
            out.append(self.expr())
            if not self.at(close):
                self.take(",")
        self.take(close)
        return tuple(out)

    def member(self) -> Expr:
        e = self.primary()
        while True:
            if self.at(".") or self.at(".?"):
                opt = self.take()[1] == ".?"
                kind, name = self.take()
                if kind != "id":
                    raise CelSyntaxError(f"expected a field name, found {name!r}")
                if opt:
                    e = Call("_?._", None, (e, Lit(str(name))))
                elif self.at("("):
                    self.take()
                    e = _macro(str(name), e, self.args(")"))
                else:
                    e = Select(e, str(name))
            elif self.at("[") or self.at("[?"):
                opt = self.take()[1] == "[?"
                idx = self.expr()
                self.take("]")
                e = Call("_[?_]" if opt else "_[_]", None, (e, idx))
            else:
                return e

    def primary(self) -> Expr:
        kind, v = self.take()
        if kind == "lit":
            return Lit(v)
        if kind == "id":
            name = str(v)
            if self.at("("):
                self.take()
                return _macro(name, None, self.args(")"))
            return Ident(name)
        if v == "(":
            e = self.expr()
            self.take(")")
            return e
        if v == "[":
            return ListE(self.args("]"))
        if v == "{":
            entries: list[tuple[Expr, Expr]] = []
            while not self.at("}"):
                k = self.expr()
                self.take(":")
                entries.append((k, self.expr()))
                if not self.at("}"):
                    self.take(",")
            self.take("}")
            return MapE(tuple(entries))
        if v == ".":  # a leading-dot qualified name
            return self.primary()
        raise CelSyntaxError(f"unexpected {v!r}")


def _var(e: Expr) -> str:
    if not isinstance(e, Ident):
        raise CelSyntaxError("a macro's variable must be a simple name")
    return e.name


def _macro(name: str, target: Expr | None, args: tuple[Expr, ...]) -> Expr:
    """cel-go ``parser/macro.go``: the standard macros, and ``cel.bind``
    (``ext/bindings.go``)."""
    acc = Ident(ACCU)
    if target is None and name == "has" and len(args) == 1:
        arg = args[0]
        if not isinstance(arg, Select):
            raise CelSyntaxError("has() takes a field selection")
        return Select(arg.operand, arg.field, test_only=True)
    if target == Ident("cel") and name == "bind" and len(args) == 3:
        return Comp(
            "#unused", ListE(()), _var(args[0]), args[1], Lit(False), Ident(_var(args[0])), args[2]
        )
    if target is not None and name in ("all", "exists") and len(args) == 2:
        v, pred = _var(args[0]), args[1]
        if name == "all":
            return Comp(
                v,
                target,
                ACCU,
                Lit(True),
                Call("@not_strictly_false", None, (acc,)),
                Call("_&&_", None, (acc, pred)),
                acc,
            )
        return Comp(
            v,
            target,
            ACCU,
            Lit(False),
            Call("@not_strictly_false", None, (Call("!_", None, (acc,)),)),
            Call("_||_", None, (acc, pred)),
            acc,
        )
    if target is not None and name == "exists_one" and len(args) == 2:
        v, pred = _var(args[0]), args[1]
        step = Call("_?_:_", None, (pred, Call("_+_", None, (acc, Lit(1))), acc))
        return Comp(v, target, ACCU, Lit(0), Lit(True), step, Call("_==_", None, (acc, Lit(1))))
    if target is not None and name in ("map", "filter") and len(args) in (2, 3):
        v = _var(args[0])
        if name == "filter" and len(args) == 2:
            item: Expr = Ident(v)
            guard: Expr | None = args[1]
        else:
            item, guard = args[-1], (args[1] if len(args) == 3 else None)
        add: Expr = Call("_+_", None, (acc, ListE((item,))))
        if guard is not None:
            add = Call("_?_:_", None, (guard, add, acc))
        return Comp(v, target, ACCU, ListE(()), Lit(True), add, acc)
    return Call(name, target, args)


@lru_cache(maxsize=1024)
def parse(text: str) -> Expr:
    """The tree of ``text`` (immutable, so cached); :class:`CelSyntaxError`
    outside the subset."""
    p = _Parser(text)
    e = p.expr()
    if p.peek()[0] != "eof":
        raise CelSyntaxError(f"unexpected {p.peek()[1]!r} after the expression")
    return e
