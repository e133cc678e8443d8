"""Names in the generated Rego, taken from the DSL instead of counters.

The compiler writes every name it invents as a placeholder and names it once
the text around it is known, so that a name never collides with another:

* a **local** (``\\x01t7:cpu,requests_cpu\\x02``) is named per rule body, from
  what it holds (the field a path reads, the parameter, what is computed);
  the candidates are tried in order, then ``<first>_2``, ``_3``…;
* a **bound variable** (``\\x01vc\\x02``) keeps the lambda's parameter name
  (``c``, ``ctr``) unless the body already uses it, and is named per helper
  (every body of a function shares its parameters);
* a **helper** (``\\x01h3:_finops_001:missing_cpu,...\\x02``) is named per
  module, ``<rule function>_<what it computes>``; a helper ``X`` written with
  derived names (``X_keys``, ``X_at``) claims them all; the candidates are
  tried in order, then ``_b``, ``_c``… (never a digit: a counter's mark).

Every placeholder holds its candidates, so naming is a pure function of the
text: the same pack gives byte-identical output.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence

from policykit.ir import nodes as ir
from policykit.ir.names import REGO_KEYWORDS

_PLACEHOLDER = re.compile(r"\x01([tvh])([^\x02]*)\x02([A-Za-z0-9_]*)")
_STRINGS = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`')
_COMMENT = re.compile(r"^\t*#.*$", re.MULTILINE)
_WORD = re.compile(r"(?<![.\w])[A-Za-z_][A-Za-z0-9_]*")  # not a field after a dot
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_DSL_NUMBER = re.compile(r"_+[0-9]+$")
MAX_NAME = 44

# Names a local never takes: keywords, the imports and rules of every module,
# and the built-ins whose names a field could spell (a local would shadow them).
RESERVED = REGO_KEYWORDS | {
    "values",
    "quantity",
    "entity",
    "lib",
    "findings",
    "violations",
    "violation",
    "batch",
    "deny",
    "warn",
    "info",
    "decision",
    "reviewed",
    "encoded",
    "waived",
    "all",
    "any",
    "abs",
    "array",
    "base64",
    "bits",
    "ceil",
    "concat",
    "count",
    "crypto",
    "endswith",
    "floor",
    "format_int",
    "glob",
    "graph",
    "http",
    "indexof",
    "is_array",
    "is_boolean",
    "is_null",
    "is_number",
    "is_object",
    "is_set",
    "is_string",
    "type_name",
    "to_number",
    "intersection",
    "io",
    "json",
    "lower",
    "max",
    "min",
    "net",
    "numbers",
    "object",
    "opa",
    "print",
    "product",
    "regex",
    "rego",
    "replace",
    "round",
    "semver",
    "sort",
    "split",
    "sprintf",
    "startswith",
    "strings",
    "substring",
    "sum",
    "time",
    "trace",
    "trim",
    "union",
    "units",
    "upper",
    "urlquery",
    "uuid",
    "walk",
    "yaml",
}

# Path segments that say little on their own: a short name skips them.
_FILLER = {"spec", "template", "metadata", "status", "data"}


def snake(text: str) -> str:
    """``jobTemplate`` → ``job_template``; anything else → a lower-case word."""
    words = _NOT_WORD.split(_CAMEL.sub("_", text).lower())
    out = "_".join(w for w in words if w)
    return out if out[:1].isalpha() else f"f_{out}" if out else "value"


def _join(*parts: str) -> str:
    return "_".join(p for p in parts if p)


# --- placeholders ------------------------------------------------------------------


def local(candidates: Sequence[str], n: int) -> str:
    """A local named later from ``candidates`` (the first is preferred)."""
    return f"\x01t{n}:{','.join(_clean(candidates))}\x02"


def is_local(term: str) -> bool:
    """Whether ``term`` is one local variable (a placeholder of :func:`local`)."""
    m = _PLACEHOLDER.fullmatch(term)
    return m is not None and m.group(1) == "t" and not m.group(3)


def var(name: str) -> str:
    """A variable the DSL bound (a lambda's parameter)."""
    return f"\x01v{name}\x02"


def helper(prefix: str, candidates: Sequence[str], n: int) -> str:
    """A helper function of the rule whose function is ``prefix``."""
    return f"\x01h{n}:{prefix}:{','.join(_clean(candidates))}\x02"


def _clean(candidates: Sequence[str]) -> list[str]:
    """Distinct snake-case names of at most MAX_NAME characters (a longer one
    loses its leading words when no other is left)."""
    names = [snake(c) for c in candidates]
    out = [c for i, c in enumerate(names) if len(c) <= MAX_NAME and c not in names[:i]]
    if not out and names:
        words = names[0].split("_")
        while len(words) > 1 and len("_".join(words)) > MAX_NAME:
            words.pop(0)
        out = ["_".join(words)[:MAX_NAME]]
    return out or ["value"]


def _taken(text: str) -> set[str]:
    """Identifiers of ``text`` outside placeholders, strings and comments."""
    plain = _PLACEHOLDER.sub(" ", _COMMENT.sub("", _STRINGS.sub('""', text)))
    return set(_WORD.findall(plain))


def _pick(candidates: Sequence[str], taken: set[str]) -> str:
    for c in candidates:
        if c not in taken and c not in RESERVED:
            return c
    k = 2
    while f"{candidates[0]}_{k}" in taken:
        k += 1
    return f"{candidates[0]}_{k}"


def name_locals(lines: list[str]) -> list[str]:
    """Names the bound variables and locals of a block of rules (separated by
    blank lines), each rule on its own."""
    out: list[str] = []
    chunk: list[str] = []
    for line in lines:
        if line:
            chunk.append(line)
            continue
        out += [*(_name_rule(chunk) if chunk else []), line]
        chunk = []
    return out + (_name_rule(chunk) if chunk else [])


def _name_rule(lines: list[str]) -> list[str]:
    """Names the bound variables of one rule (a function with all its bodies),
    then the locals of each body. A body starts at the rule's first line or at
    a line ``} else``; every body sees the head line (the parameters)."""
    text = "\n".join(lines)
    if "\x01t" not in text and "\x01v" not in text:
        return lines
    taken = _taken(text)
    names: dict[str, str] = {}
    for m in _PLACEHOLDER.finditer(text):
        if m.group(1) == "v" and m.group(2) not in names:
            names[m.group(2)] = _pick(_var_names(m.group(2)), taken)
            taken.add(names[m.group(2)])
    text = _substitute(text, "v", names)
    out = text.split("\n")
    head = _taken(out[0])
    starts = [0, *(i for i, ln in enumerate(out) if ln.startswith("} else"))]
    for a, b in zip(starts, [*starts[1:], len(out)], strict=True):
        body = "\n".join(out[a:b])
        local_taken = _taken(body) | head | set(names.values())
        chosen: dict[str, str] = {}
        for m in _PLACEHOLDER.finditer(body):
            if m.group(1) == "t" and m.group(2) not in chosen:
                chosen[m.group(2)] = _pick(m.group(2).split(":", 1)[1].split(","), local_taken)
                local_taken.add(chosen[m.group(2)])
        out[a:b] = _substitute(body, "t", chosen).split("\n")
    return out


def defines(text: str) -> str | None:
    """The helper placeholder that every rule of ``text`` defines, if one does."""
    heads = {chunk.split("(", 1)[0] for chunk in text.split("\n\n")}
    if len(heads) != 1:
        return None
    head = heads.pop()
    m = _PLACEHOLDER.fullmatch(head)
    return head if m is not None and m.group(1) == "h" and not m.group(3) else None


def prefix_of(placeholder: str) -> str:
    """The rule function a helper placeholder belongs to."""
    return placeholder.split(":", 2)[1]


def share(text: str, shared: set[str]) -> str:
    """``text`` with the helpers in ``shared`` moved to the pack: no rule's name."""
    for p in sorted(shared):
        n, _, cands = p.split(":", 2)
        text = text.replace(p, f"{n}::{cands}")
    return text


def resolve(text: str, aliases: dict[str, str]) -> str:
    """``text`` with each helper placeholder in ``aliases`` replaced by its twin."""
    if not aliases or "\x01h" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        whole = m.group(0)[: len(m.group(0)) - len(m.group(3))]
        return aliases.get(whole, whole) + m.group(3)

    return _PLACEHOLDER.sub(one, text)


def bare(name: str) -> str:
    """A DSL variable's name without the number the DSL adds (``c_10``: ``c``)."""
    return _DSL_NUMBER.sub("", name) or name


def _var_names(name: str) -> list[str]:
    """A DSL variable's names: the lambda's parameter (the DSL numbers it,
    ``c_10``, to keep it unique; a name here is unique per rule body)."""
    short = _DSL_NUMBER.sub("", name)
    return [short, name] if short and short != name else [name]


def _substitute(text: str, kind: str, names: dict[str, str]) -> str:
    """``text`` with the placeholders of ``kind`` replaced by their names."""

    def one(m: re.Match[str]) -> str:
        return names[m.group(2)] + m.group(3) if m.group(1) == kind else m.group(0)

    return _PLACEHOLDER.sub(one, text)


def _letters() -> Iterator[str]:
    """``b`` … ``z``, then ``bb``, ``bc`` …: marks that are not a counter's digits."""
    alphabet = "bcdefghijklmnopqrstuvwxyz"
    for size in itertools.count(1):
        for letters in itertools.product(alphabet, repeat=size):
            yield "".join(letters)


def name_helpers(text: str) -> str:
    """Names every helper of a module, in order of first appearance (the rule's
    own function names its helpers before they name theirs)."""
    taken = _taken(text)
    suffixes: dict[str, set[str]] = {}
    order: list[str] = []
    for m in _PLACEHOLDER.finditer(text):
        if m.group(1) != "h":
            continue
        if m.group(2) not in suffixes:
            order.append(m.group(2))
        suffixes.setdefault(m.group(2), set()).add(m.group(3))
    cands = {key: key.split(":", 2)[2].split(",") for key in order}
    chosen: dict[str, str] = {}
    for key in order:
        prefix = key.split(":", 2)[1]
        # a name two helpers of the rule could take goes to neither, when a
        # longer one tells them apart (has_requests_cpu, has_limits_cpu)
        rivals = {c for k in order if k != key and k.split(":", 2)[1] == prefix for c in cands[k]}
        mine = cands[key]
        ranked = [c for c in mine[:2] if c not in rivals] + mine
        tries = [f"{prefix}_{c}" for c in ranked]
        lettered = (f"{prefix}_{mine[0]}_{w}" for w in _letters())
        name = next(
            n
            for n in itertools.chain(tries, lettered)
            if not {n + s for s in suffixes[key]} & taken
        )
        family = {name + s for s in suffixes[key]}
        chosen[key] = name
        taken |= family
    return _substitute(text, "h", chosen)


# --- what a node computes, in words ---------------------------------------------------


def value_names(node: ir.Value) -> list[str]:
    """Names for ``node``'s value, shortest first: a path by its last fields
    (``cpu``, ``requests_cpu``…), a parameter by its name, a computed value
    by what it computes."""
    if isinstance(node, ir.Path):
        words = [snake(s) for s in node.segments if isinstance(s, str)]
        root = "obj" if node.root == ir.OBJECT_ROOT else _DSL_NUMBER.sub("", node.root)
        if not words:
            return [root]
        useful = [w for w in words if w not in _FILLER] or words[-1:]
        out = [useful[-1], _join(*useful[-2:]), _join(*useful[-3:]), _join(*words)]
        return [*out, _join(root, *words)]
    if isinstance(node, ir.Param):
        return [node.name]
    if isinstance(node, ir.Literal):
        word = snake(node.value) if isinstance(node.value, str) else ""
        return [word] if 0 < len(word) <= 20 and not word[-1].isdigit() else ["literal"]
    if isinstance(node, ir.Default):
        return value_names(node.operand)
    if isinstance(node, ir.Objects):
        return ["others"]
    if isinstance(node, (ir.Length, ir.Keys, ir.Quantity)):
        post = {ir.Length: "length", ir.Keys: "keys", ir.Quantity: "quantity"}[type(node)]
        return [_join(b, post) for b in value_names(node.operand)]
    if isinstance(node, ir.Arith):
        word = {"+": "plus", "-": "minus", "*": "times", "/": "per", "%": "mod"}.get(node.op, "op")
        lefts, rights = value_names(node.left), value_names(node.right)
        return [_join(lefts[0], word, rights[0]), _join(lefts[0], word, rights[0], "value")]
    if isinstance(node, ir.Index):
        bases, keys = value_names(node.base), value_names(node.key)
        return [_join(bases[0], keys[0]), *(_join(b, keys[0]) for b in bases[1:])]
    if isinstance(node, ir.Count):
        return [_join("number_of", c) for c in value_names(node.collection)]
    if isinstance(node, ir.Sum):
        terms, colls = value_names(node.term), value_names(node.collection)
        return [
            _join("total", terms[0]),
            *(_join("total", terms[0], "in", c) for c in colls),
            *(_join("total_over", c) for c in colls),
        ]
    if isinstance(node, ir.Filter):
        return [_join("matching", c) for c in value_names(node.collection)]
    return [snake(type(node).__name__)]


_COMPARE = {
    "==": "is",
    "!=": "is_not",
    "<": "below",
    "<=": "at_most",
    ">": "above",
    ">=": "at_least",
}


def pred_names(node: ir.Pred) -> list[str]:
    """Names for a helper that holds when ``node`` holds: ``has_cpu``,
    ``missing_resources``, ``any_containers``…"""
    if isinstance(node, ir.Exists):
        return [_join("has", v) for v in value_names(node.operand)]
    if isinstance(node, ir.Not):
        if isinstance(node.item, ir.Exists):
            return [_join("missing", v) for v in value_names(node.item.operand)]
        return [_join("not", p) for p in pred_names(node.item)]
    if isinstance(node, ir.Compare):
        lefts, rights = value_names(node.left), value_names(node.right)
        word = _COMPARE.get(node.op, "compares")
        return [_join(lefts[0], word, rights[0]), *(_join(a, word, rights[0]) for a in lefts[1:])]
    if isinstance(node, ir.IsType):
        return [_join(v, "is", node.type_name) for v in value_names(node.operand)]
    if isinstance(node, ir.Matches):
        return [_join(v, "matches") for v in value_names(node.subject)]
    if isinstance(node, ir.StrOp):
        op = {"startswith": "starts_with", "endswith": "ends_with"}.get(node.op, node.op)
        return [_join(v, op, value_names(node.arg)[0]) for v in value_names(node.subject)]
    if isinstance(node, ir.In):
        return [_join(v, "in", value_names(node.collection)[0]) for v in value_names(node.element)]
    if isinstance(node, ir.Quantifier):
        colls = value_names(node.collection)
        if node.kind == "any":
            return [_join("any", c) for c in colls]
        return [_join("counterexample_in", c) for c in colls]
    if isinstance(node, (ir.Or, ir.And)):
        return _combined(node)
    return [snake(type(node).__name__)]


def _combined(node: ir.Or | ir.And) -> list[str]:
    """``missing_resources`` for missing fields under one path; else the parts
    joined by ``_or_``/``_and_`` when short; else the first part and ``_or_more``."""
    word = "or" if isinstance(node, ir.Or) else "and"
    missing = [
        i.item.operand.segments
        for i in node.items
        if isinstance(i, ir.Not)
        and isinstance(i.item, ir.Exists)
        and isinstance(i.item.operand, ir.Path)
    ]
    out: list[str] = []
    if word == "or" and len(missing) == len(node.items) > 1:
        common = _common_prefix(missing)
        words = [snake(s) for s in common if isinstance(s, str)]
        if words:
            out.append(_join("missing", words[-1]))
            out.append(_join("missing", *words))
    parts = [pred_names(i)[0] for i in node.items]
    joined = f"_{word}_".join(parts)
    if parts and len(joined) <= MAX_NAME:
        out.append(joined)
    if parts:
        out.append(_join(parts[0], word, "more"))
    return out or [word]


def _common_prefix(paths: list[tuple[str | int, ...]]) -> tuple[str | int, ...]:
    if not paths:
        return ()
    first = paths[0]
    n = 0
    while n < len(first) and all(len(p) > n and p[n] == first[n] for p in paths):
        n += 1
    return first[:n]
