"""Rego v0 → v1, for the ConstraintTemplates teams already own.

Neither engine we run reads v0 correctly: regopy misreads
``violation[{"msg": m}] { … }`` as an object rule (docs/engines.md), and the
OPA bindings have no v0 switch. So v0 sources are upgraded the way
``opa fmt --v0-v1`` does it, on tokens (strings, raw strings and comments are
never touched):

* a rule body gets ``if``: ``p { … }`` → ``p if { … }``, also after ``else``;
* a partial set rule gets ``contains``: ``deny[msg] { … }`` →
  ``deny contains msg if { … }``;
* built-ins that v1 removed are replaced by their v1 spelling
  (``re_match`` → ``regex.match``, ``net.cidr_overlap`` →
  ``net.cidr_contains``) or by helpers appended to the module (``any``,
  ``all``, ``set_diff``, ``cast_set``, ``cast_array``).

* a rule with several bodies (``p { a } { b }``, v0 only: each body is an
  alternative) becomes one rule per body with the same head, as
  ``opa fmt --v0-v1`` writes it.

A module that already reads as v1 (``import rego.v1``, or heads that already
say ``if``/``contains``) passes through unchanged. What cannot be read is a
:class:`RegoUpgradeError` naming the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from policykit.errors import PolicykitError, SourceLoc


class RegoUpgradeError(PolicykitError):
    """A Rego v0 module this upgrader cannot turn into v1."""

    code = "PK401"


@dataclass(slots=True)
class Token:
    kind: str  # ws, nl, comment, str, raw, num, ident, op
    text: str
    line: int


_TOKEN = re.compile(
    r"""
    (?P<nl>\r?\n)
  | (?P<ws>[ \t\r\f]+)
  | (?P<comment>\#[^\n]*)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>:=|==|!=|<=|>=|[{}\[\]().,;:=<>+\-*/%|&!])
    """,
    re.VERBOSE,
)

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {")", "]", "}"}
# A `{` after one of these begins a value, not a rule body.
_VALUE_BEFORE = {"=", ":=", ",", "(", "[", "{", "|", ":", "==", "!=", "<", ">", "<=", ">="}
_VALUE_BEFORE |= {"+", "-", "*", "/", "%", "&", "not", "in", "some", "with", "as", "default"}
# After one of these at the end of a line, the statement continues.
_CONTINUES = _VALUE_BEFORE | {"else", "if", "contains", "."}

_HELPERS = {
    "any": "_pk_v0_any(xs) := true if {\n\tsome x in xs\n\tx == true\n} else := false\n",
    "all": "_pk_v0_all(xs) := false if {\n\tsome x in xs\n\tx != true\n} else := true\n",
    "set_diff": "_pk_v0_set_diff(a, b) := a - b\n",
    "cast_set": "_pk_v0_cast_set(xs) := {x | some x in xs}\n",
    "cast_array": "_pk_v0_cast_array(xs) := [x | some x in xs]\n",
}
_RENAMED = {"re_match": "regex.match"}


def tokenize(source: str, file: str = "<rego>") -> list[Token]:
    out: list[Token] = []
    pos, line = 0, 1
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            raise RegoUpgradeError(
                f"cannot read Rego at {source[pos : pos + 20]!r}",
                loc=_loc(file, line),
                hint="check the template's Rego syntax",
            )
        kind = m.lastgroup or "op"
        text = m.group()
        out.append(Token(kind, text, line))
        line += text.count("\n")
        pos = m.end()
    return out


def _loc(file: str, line: int) -> SourceLoc:
    return SourceLoc(file, line)


def _significant(tokens: list[Token], start: int, end: int) -> list[int]:
    return [i for i in range(start, end) if tokens[i].kind not in ("ws", "nl", "comment")]


def is_v1(source: str) -> bool:
    """True when the module opts into v1 syntax itself."""
    return re.search(r"^\s*import\s+rego\.v1\s*$", source, re.MULTILINE) is not None


def upgrade(source: str, file: str = "<rego>") -> str:
    """The v1 spelling of a Rego v0 module (v1 modules come back unchanged)."""
    if is_v1(source):
        return source
    tokens = tokenize(source, file)
    edits: dict[int, str] = {}  # token index -> replacement text
    helpers: set[str] = set()
    depth = 0
    stack: list[bool] = []  # per open bracket: is it a rule body?
    head_start: int | None = None
    at_start = True
    last: Token | None = None  # last significant token
    prev_sig: Token | None = None
    last_head: str | None = None  # the v1 head of the last rule with a body
    for i, tok in enumerate(tokens):
        if tok.kind in ("ws", "comment"):
            continue
        if tok.kind == "nl":
            if depth == 0 and (last is None or last.text not in _CONTINUES):
                at_start = True
            continue
        before = prev_sig
        prev_sig = tok
        if tok.kind == "ident" and (before is None or before.text != "."):
            nxt = _significant(tokens, i + 1, min(len(tokens), i + 4))
            calls = bool(nxt) and tokens[nxt[0]].text == "("
            if calls and tok.text in _RENAMED:
                edits[i] = _RENAMED[tok.text]
            elif calls and tok.text in _HELPERS:
                edits[i] = f"_pk_v0_{tok.text}"
                helpers.add(tok.text)
        if (
            tok.text == "cidr_overlap"
            and before is not None
            and before.text == "."
            and i >= 2
            and tokens[i - 2].text == "net"
        ):
            edits[i] = "cidr_contains"
        if depth == 0 and at_start:
            head_start = i
            at_start = False
        if tok.kind == "op" and tok.text in _OPEN:
            body = (
                tok.text == "{"
                and depth == 0
                and before is not None
                and before.text not in _VALUE_BEFORE
            )
            if body and head_start == i and last_head is not None:
                # another body of the rule before: the same head, again
                edits[i] = f"\n{last_head} if {{"
            elif body:
                _body(tokens, head_start, i, edits, file)
                assert head_start is not None
                head = "".join(edits.get(j, tokens[j].text) for j in range(head_start, i))
                last_head = head.strip() if not head.strip().startswith("else") else last_head
            stack.append(body)
            depth += 1
        elif tok.kind == "op" and tok.text in _CLOSE:
            depth = max(0, depth - 1)
            if stack and stack.pop() and depth == 0:
                at_start = True  # `} else …` starts the next head on the same line
        last = tok
    text = "".join(edits.get(i, t.text) for i, t in enumerate(tokens))
    if helpers:
        if not text.endswith("\n"):
            text += "\n"
        text += "\n# policykit: v1 replacements of built-ins removed in Rego v1\n"
        text += "\n".join(_HELPERS[h] for h in sorted(helpers))
    return text


def _body(
    tokens: list[Token], start: int | None, brace: int, edits: dict[int, str], file: str
) -> None:
    """Rewrite the head in tokens[start:brace] of a rule whose body opens at ``brace``."""
    head = _significant(tokens, start if start is not None else brace, brace)
    if not head:
        raise RegoUpgradeError(
            "a rule with several bodies (`p { … } { … }`) cannot be upgraded to Rego v1",
            loc=_loc(file, tokens[brace].line),
            hint="write each body as its own rule with the same head",
        )
    texts = [tokens[i].text for i in head]
    if texts[-1] == "if":
        return
    if texts[0] == "default":
        return
    if texts[0] != "else" and "contains" not in texts and texts[-1] == "]":
        # name[key] with nothing after it: a partial set rule.
        depth = 0
        open_at = None
        for j, i in enumerate(head):
            t = tokens[i].text
            if t in _OPEN:
                if depth == 0 and t == "[" and open_at is None:
                    open_at = j
                depth += 1
            elif t in _CLOSE:
                depth -= 1
            elif depth == 0 and t in ("=", ":=", "("):
                open_at = None
                break
        if open_at is not None and all(
            tokens[i].kind == "ident" or tokens[i].text == "." for i in head[:open_at]
        ):
            edits[head[open_at]] = " contains "
            edits[head[-1]] = ""
    edits[brace] = "if {"
    # keep one space between the head and `if`
    if tokens[brace - 1].kind not in ("ws",):
        edits[brace] = " if {"
