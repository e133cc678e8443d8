"""CATALOG-016: a template parameter accepts a value the catalog rules reject.

The rule compares two JSON Schemas — the parameter's, as the scaffolder form
validates it, and the field schema the catalog rules compile to — so the DSL
(one object's fields, no schema reasoning) cannot state it. It is a built-in
check: the catalog pack names it (:data:`RULE`), and :func:`wrap` adds its
findings to whatever engine ``policykit check`` runs (native, rego, opa, cel),
evaluated here in Python from the same compiled field schemas
(:func:`policykit.targets.jsonschema.field_rules`). It has no admission form:
templates are checked in CI, where ``policykit check`` runs.

"Accepts" is JSON Schema's (:func:`decide`), decided exactly for the
constraint kinds the compiler emits:

* ``required``: the rule fires on an absent field and the parameter is not
  in its step's ``required`` — the form accepts leaving it out;
* a parameter with ``enum``/``const`` accepts finitely many values: each is
  checked against the field schema (so an enum whose values all match the
  rule's pattern is fine);
* otherwise keyword by keyword: ``type`` (a subset), ``pattern`` (the same
  pattern), ``minLength``/``maxLength``/``minimum``/... (at least as tight),
  ``enum``/``const`` (only a finite parameter can satisfy them).

A drift is reported only with a *witness*, a value the parameter's schema
accepts and the field schema refuses (both checked by a validator). When a
keyword is not implied and no witness is found (two different patterns, a
parameter with ``anyOf``), the finding says it cannot decide (severity
``warn``). A parameter that feeds the entity but cannot be mapped
(:mod:`policykit.scaffolder.mapping`) is an ``info`` finding. A parameter
stricter than the rules is fine.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jsonschema import Draft7Validator

from policykit.ir.check import check_pack
from policykit.ir.rule import Pack, Rule
from policykit.loader.lines import YamlLines
from policykit.model import Document, Finding
from policykit.scaffolder.mapping import (
    FieldPath,
    Parameter,
    TemplateMap,
    field_name,
    is_template,
    map_template,
)
from policykit.targets.jsonschema import compile_pack, field_rules
from policykit.targets.jsonschema.pattern import END

if TYPE_CHECKING:
    from policykit.engines.base import Engine

RULE = "CATALOG-016"
PACK = "catalog"
TITLE = "Template parameters accept only what the catalog rules accept"

_STRING_KW = ("pattern", "minLength", "maxLength", "format")
_NUMBER_KW = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_LOWER = ("minLength", "minItems", "minProperties", "minimum", "exclusiveMinimum")
_UPPER = ("maxLength", "maxItems", "maxProperties", "maximum", "exclusiveMaximum")
_VALUE_KW = frozenset(
    {
        "type",
        "enum",
        "const",
        "pattern",
        "format",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
        "uniqueItems",
        "items",
        "contains",
        "minProperties",
        "maxProperties",
        "properties",
        "required",
        "additionalProperties",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
        "if",
        "then",
        "else",
        "$ref",
    }
)


@dataclass(frozen=True, slots=True)
class Constraint:
    """One rule's schema for one entity field (from ``fields.json``)."""

    pack: str
    rule: Rule
    field: FieldPath
    kinds: tuple[str, ...]
    entity_types: tuple[str, ...]
    required: bool
    schema: Any  # with errorMessage
    message: str

    def applies(self, kind: str, entity_type: str | None) -> bool:
        return (not self.kinds or kind in self.kinds) and (
            not self.entity_types or entity_type in self.entity_types
        )


def constraints(packs: Sequence[Pack], params: Mapping[str, Mapping[str, Any]]) -> list[Constraint]:
    """Every field constraint of ``packs`` with ``params`` (the pack defaults
    filled in)."""
    key = json.dumps({p.name: params.get(p.name, {}) for p in packs}, sort_keys=True, default=str)
    return list(_constraints(tuple(packs), key))


@lru_cache(maxsize=16)
def _constraints(packs: tuple[Pack, ...], params_json: str) -> tuple[Constraint, ...]:
    params = json.loads(params_json)
    out: list[Constraint] = []
    for pack in packs:
        eff = check_pack(pack, params.get(pack.name, {}))
        for c in compile_pack(pack, eff).covered:
            got = field_rules(c.rule, eff)
            if isinstance(got, str):
                continue
            sel = c.rule.selector
            for f in got:
                out.append(
                    Constraint(
                        pack.name,
                        c.rule,
                        f.segments,
                        sel.kinds,
                        sel.entity_types,
                        f.required,
                        f.schema,
                        f.message,
                    )
                )
    return tuple(out)


# --- deciding "accepts" ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: str  # "ok" | "drift" | "unknown"
    why: str = ""
    witness: Any = None
    absent: bool = False


def strip_messages(s: Any) -> Any:
    """``s`` without ``errorMessage`` (ajv-errors) anywhere."""
    if isinstance(s, dict):
        return {k: strip_messages(v) for k, v in s.items() if k != "errorMessage"}
    if isinstance(s, list):
        return [strip_messages(v) for v in s]
    return s


def value_schema(param: Mapping[str, Any]) -> dict[str, Any]:
    """The validation keywords of a parameter's schema (no ``ui:*``, titles,
    defaults or ``x-`` keys)."""
    return {k: v for k, v in param.items() if k in _VALUE_KW}


_ECMA_CLASSES = {"d": "0-9", "w": "A-Za-z0-9_", "D": "0-9", "W": "A-Za-z0-9_"}


def python_pattern(pattern: str) -> str:
    """An ECMA pattern as Python ``re`` reads it alike: a bare ``$`` (end of
    input in ECMA) spelled as the end-of-input look-ahead; ``\\d`` and ``\\w``
    (ASCII in ECMA without the ``u`` flag, Unicode in Python) as their ASCII
    classes."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            letter = pattern[i + 1 : i + 2]
            if letter in _ECMA_CLASSES:
                body = _ECMA_CLASSES[letter]
                if in_class:  # inside a class a negated one cannot be spelled: as written
                    out.append(body if letter.islower() else pattern[i : i + 2])
                else:
                    out.append(f"[{body}]" if letter.islower() else f"[^{body}]")
                i += 2
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        out.append(END if ch == "$" and not in_class else ch)
        i += 1
    return "".join(out)


def _portable(s: Any) -> Any:
    if isinstance(s, dict):
        return {
            k: python_pattern(v) if k == "pattern" and isinstance(v, str) else _portable(v)
            for k, v in s.items()
        }
    if isinstance(s, list):
        return [_portable(v) for v in s]
    return s


def valid(schema: Any, value: Any) -> bool:
    """Whether ``value`` satisfies ``schema`` as the form's ajv reads it (False
    when that cannot be told: :func:`validity`)."""
    return validity(schema, value) is True


def validity(schema: Any, value: Any) -> bool | None:
    """:func:`valid`, or None when the schema cannot be read here (a pattern
    Python's ``re`` cannot compile, ``\\p{...}`` say, which ajv may run)."""
    try:
        return bool(Draft7Validator(_portable(strip_messages(schema))).is_valid(value))
    except Exception:  # an invalid schema or a pattern re cannot read
        return None


def same_pattern(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and python_pattern(a) == python_pattern(b)


def _types(s: Mapping[str, Any]) -> set[str] | None:
    t = s.get("type")
    if isinstance(t, str):
        return {t}
    if isinstance(t, list):
        return {x for x in t if isinstance(x, str)}
    return None


def _candidates(p: Mapping[str, Any], r: Mapping[str, Any]) -> list[Any]:
    """Values to try as witnesses, from the two schemas' keywords."""
    lengths = {0, 1, 2, 3}
    for s in (p, r):
        for k in ("minLength", "maxLength"):
            v = s.get(k)
            if isinstance(v, int) and 0 <= v < 10_000:
                lengths |= {max(v - 1, 0), v, v + 1}
    out: list[Any] = []
    for n in sorted(lengths):
        out += ["a" * n, "A" * n, "0" * n, "-" * n, " " * n, "é" * n]
    out += ["a-", "-a", "a_b", "a.b", "a/b", "a:b", "group:a", "user:a", "a\n"]
    nums: list[Any] = [0, 1, -1, 0.5, 10**9, -(10**9)]
    for s in (p, r):
        for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            v = s.get(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                nums += [v - 1, v, v + 1, v - 0.5, v + 0.5]
    return [*out, *nums, True, False, None, [], {}, *([x] for x in out)]


def decide(param: Parameter, schema: Any, required: bool) -> Verdict:
    """Whether the form, validating ``param``, can accept a value (or no
    value) that ``schema`` (a field schema; ``required``: the rule fires on an
    absent field) refuses."""
    if required and not param.required:
        return Verdict(
            "drift", "it is not required, so the form accepts leaving it out", None, True
        )
    p = value_schema(param.schema)
    r = strip_messages(schema)
    if r is True:
        return Verdict("ok")
    if "const" in p or isinstance(p.get("enum"), list):
        # a value whose acceptance cannot be told (a pattern re cannot read)
        # may be accepted: never filtered out as if refused
        values = (
            [p["const"]] if "const" in p else [v for v in p["enum"] if validity(p, v) is not False]
        )
        unsure = [v for v in values if validity(p, v) is None]
        for v in values:
            if not valid(r, v):
                if v in unsure:
                    return Verdict(
                        "unknown",
                        f"the form may accept {v!r}, which the rule rejects (its pattern "
                        "cannot be read here)",
                    )
                return Verdict("drift", "", v)
        return Verdict("ok")
    members = p.get("allOf")
    if isinstance(members, list) and r in [strip_messages(x) for x in members]:
        return Verdict("ok")  # the parameter holds the rule's schema itself
    reasons = [] if isinstance(r, dict) else ["the rule's schema is false"]
    if isinstance(r, dict):
        reasons = _not_implied(p, r)
    if not reasons:
        return Verdict("ok")
    if "format" not in p:  # a format may refuse a witness ajv-formats would
        for w in _candidates(p, r if isinstance(r, dict) else {}):
            if valid(p, w) and not valid(r, w):
                return Verdict("drift", "", w)
    return Verdict("unknown", "; ".join(reasons))


def _not_implied(p: Mapping[str, Any], r: Mapping[str, Any]) -> list[str]:
    """The keywords of ``r`` that ``p`` does not imply (each with a reason)."""
    out: list[str] = []
    pt = _types(p)
    for k, v in r.items():
        if pt is not None and k in _STRING_KW and "string" not in pt:
            continue  # no string passes: a string keyword is vacuous
        if pt is not None and k in _NUMBER_KW and not pt & {"number", "integer"}:
            continue
        if k == "type":
            rt = {v} if isinstance(v, str) else set(v)
            if pt is None or not all(t in rt or (t == "integer" and "number" in rt) for t in pt):
                out.append(f"type {sorted(pt) if pt else 'any'} is not within {sorted(rt)}")
        elif k in ("enum", "const"):
            out.append(f"the rule allows only {v if k == 'enum' else [v]}")
        elif k == "pattern":
            if "pattern" not in p:
                out.append(f"it has no pattern (the rule's: {v})")
            elif not same_pattern(p["pattern"], v):
                out.append(f"its pattern {p['pattern']} differs from the rule's {v}")
        elif k in _LOWER:
            if not (isinstance(p.get(k), (int, float)) and p[k] >= v):
                out.append(f"{k} is not at least {v}")
        elif k in _UPPER:
            if not (isinstance(p.get(k), (int, float)) and p[k] <= v):
                out.append(f"{k} is not at most {v}")
        else:
            out.append(f"the rule's {k} is not compared")
    return out


# --- findings --------------------------------------------------------------------


def _shown(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False)


def template_findings(
    doc: Document, cons: Sequence[Constraint], tm: TemplateMap | None = None
) -> list[Finding]:
    """CATALOG-016's findings on one template document."""
    tm = tm or map_template(doc.obj, doc.file if doc.file and doc.file != "-" else None)
    lines = _lines(doc)
    out: list[Finding] = []

    def emit(param: str, severity: str, message: str) -> None:
        p = tm.parameters.get(param)
        line = doc.line
        if lines is not None and p is not None:
            where: list[str | int] = ["spec", "parameters"]
            if p.step is not None:
                where.append(p.step)
            line = _key_line(lines, [*where, "properties"], param) or doc.line
        out.append(Finding(RULE, PACK, severity, message, doc.ref, doc.file, doc.index, line, None))

    for u in tm.unmapped:
        emit(
            u.param,
            "info",
            f"Template {tm.name}: parameter {u.param} feeds the entity but cannot be mapped "
            f"to a field: {u.reason}",
        )
    for m in tm.mapped:
        param = tm.parameters[m.param]
        for c in cons:
            if c.field != m.field or not c.applies(tm.kind, tm.entity_type):
                continue
            v = decide(param, c.schema, c.required)
            head = f"Template {tm.name}: parameter {m.param} fills {field_name(m.field)}"
            if v.kind == "drift":
                what = "no value" if v.absent else _shown(v.witness)
                shown = c.message.removeprefix(f"{c.rule.id}: ")
                shown = shown.replace("${0}", "(none)" if v.absent else _shown(v.witness))
                why = f" ({v.why})" if v.why else ""
                emit(
                    m.param,
                    c.rule.severity,
                    f"{head} but accepts {what}{why}, which {c.rule.id} rejects: {shown}",
                )
            elif v.kind == "unknown":
                emit(
                    m.param,
                    "warn",
                    f"{head}: cannot decide whether it accepts a value {c.rule.id} rejects "
                    f"({v.why})",
                )
    return out


def _key_line(lines: YamlLines, path: Sequence[str | int], key: str) -> int:
    """The 1-based line of ``key`` in the mapping at ``path`` (0 if not there)."""
    import yaml

    node = lines.root
    for step in path:
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            node = next((v for k, v in node.value if k.value == step), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            node = node.value[step] if step < len(node.value) else None
        else:
            return 0
    if isinstance(node, yaml.MappingNode):
        for k, _ in node.value:
            if k.value == key:
                return int(k.start_mark.line) + 1
    return 0


def _lines(doc: Document) -> YamlLines | None:
    if not doc.file or doc.file == "-":
        return None
    try:
        text = Path(doc.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return YamlLines(text, doc.index)


def has_rule(packs: Iterable[Pack]) -> bool:
    return any(p.name == PACK for p in packs)


class WithTemplateCheck:
    """An engine, plus CATALOG-016 on every Backstage template it evaluates."""

    def __init__(
        self, engine: Engine, packs: Sequence[Pack], params: Mapping[str, Mapping[str, Any]]
    ) -> None:
        self._engine = engine
        self._packs = [p for p in packs if p.name == PACK]
        self._params = params

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    @property
    def effective_params(self) -> dict[str, dict[str, Any]]:
        return self._engine.effective_params

    @property
    def uses_inventory(self) -> bool:
        return self._engine.uses_inventory

    def set_inventory(self, objects: Sequence[dict[str, Any]]) -> None:
        self._engine.set_inventory(objects)

    def evaluate(self, doc: Document) -> list[Finding]:
        """The wrapped engine's findings on one document (as before the
        :class:`~policykit.engines.base.Engine` Protocol: no CATALOG-016 here;
        :meth:`evaluate_all` is what checks run)."""
        return self._engine.evaluate(doc)

    def evaluate_all(self, docs: Iterable[Document]) -> list[Finding]:
        docs = list(docs)
        out: list[Finding] = list(self._engine.evaluate_all(docs))
        templates = [d for d in docs if is_template(d.obj)]
        if templates:
            cons = constraints(self._packs, self._params)
            for d in templates:
                out.extend(template_findings(d, cons))
        return out


def wrap(engine: Engine, packs: Sequence[Pack], params: Mapping[str, Mapping[str, Any]]) -> Engine:
    """``engine``, with CATALOG-016 when the catalog pack is checked."""
    return WithTemplateCheck(engine, packs, params) if has_rule(packs) else engine
