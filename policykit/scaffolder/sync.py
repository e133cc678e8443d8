"""``policykit scaffold sync``: a template's parameter schemas from the rules.

For every Backstage template (``scaffolder.backstage.io/v1beta3``) in the
files given, each parameter mapped to an entity field
(:mod:`policykit.scaffolder.mapping`) gets the field's compiled schema — the
schemas of every rule constraining that field for the entity's kind and type
(:mod:`policykit.scaffolder.drift`), merged, with the rules' messages as
``errorMessage`` — and is added to its step's ``required`` when a rule needs
the field.

sync *owns* these keys of a mapped parameter: the value keywords
(:data:`OWNED`: ``pattern``, ``enum``, ``maxLength`` ... and ``allOf``, where
a rule's schema does not flatten) and ``errorMessage``. It sets them to what
the rules say and removes owned keys the rules no longer ask for (``type`` is
kept when no rule sets one). Everything else — ``title``, ``ui:*`` options,
``default``, comments, key order, other parameters and steps — is left
byte-for-byte as it was: the file is edited with ruamel.yaml's round-trip
mode, and is not written at all when nothing changes. A parameter marked
``x-policykit-sync: false`` is left alone (CATALOG-016 still checks it).
"""

from __future__ import annotations

import codecs
import difflib
import io
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policykit.errors import InputError, PolicykitError, SourceLoc
from policykit.existing.malformed import MALFORMED
from policykit.ir.check import check_pack
from policykit.ir.rule import Pack
from policykit.loader import load_yaml_text
from policykit.loader.readfile import decode, read_bytes
from policykit.scaffolder.drift import Constraint, constraints
from policykit.scaffolder.mapping import (
    FieldPath,
    TemplateMap,
    field_name,
    is_template,
    map_template,
)
from policykit.targets.jsonschema.fields import field_gaps

SYNC_KEY = "x-policykit-sync"
OWNED = (
    "type",
    "enum",
    "const",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "allOf",
    "errorMessage",
)
_NESTED = ("not", "anyOf", "allOf", "oneOf", "if", "properties", "items", "contains")


def desired_schema(cons: Iterable[Constraint]) -> dict[str, Any]:
    """The merged schema of ``cons`` (sorted by rule id): a flat constraint's
    keywords join the top object when they agree with it, else it goes into
    ``allOf``; ``errorMessage`` maps each top keyword to its rule's message."""
    out: dict[str, Any] = {}
    messages: dict[str, str] = {}
    nested: list[Any] = []
    for c in sorted(cons, key=lambda c: (c.rule.id, c.pack)):
        s = c.schema
        if isinstance(s, bool):
            if not s:
                nested.append({"not": {}, "errorMessage": c.message})
            continue
        body = {k: v for k, v in s.items() if k != "errorMessage"}
        if not body:
            continue
        flat = not any(k in body for k in _NESTED)
        if flat and all(k not in out or out[k] == v for k, v in body.items()):
            for k, v in body.items():
                out.setdefault(k, v)
                messages.setdefault(k, c.message)
        else:
            nested.append(s)
    if nested:
        out["allOf"] = nested
    if messages:
        out["errorMessage"] = dict(sorted(messages.items()))
    return out


@dataclass(slots=True)
class FileResult:
    path: Path
    before: str
    after: str
    notes: list[str] = field(default_factory=list)
    # what could not be read or synced: the command reports each and exits 2
    errors: list[PolicykitError] = field(default_factory=list)
    bom: bool = False  # the file began with a UTF-8 byte order mark: kept

    def encoded(self) -> bytes:
        """``after`` as the file's bytes: UTF-8, with the byte order mark the
        file had."""
        return (codecs.BOM_UTF8 if self.bom else b"") + self.after.encode("utf-8")

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        name = self.path.as_posix()
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                f"a/{name}",
                f"b/{name}",
            )
        )


def _plain(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return str(v)
    return v


def _yaml() -> Any:
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    return y


def guess_indent(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) indentation of a YAML text, as ruamel.yaml's
    ``YAML.indent`` takes them: from the first nested mapping and the first
    block sequence under a key (default 2, 2, 0)."""
    mapping = sequence = offset = None
    lines = [x for x in text.splitlines() if x.strip() and not x.lstrip().startswith(("#", "---"))]
    for a, b in itertools.pairwise(lines):
        if not a.rstrip().endswith(":") or a.lstrip().startswith("- "):
            continue
        ia, ib = len(a) - len(a.lstrip()), len(b) - len(b.lstrip())
        if b.lstrip().startswith("- ") and ib >= ia and sequence is None:
            body = b.lstrip()[1:]
            offset = ib - ia
            sequence = offset + 1 + len(body) - len(body.lstrip())
        elif not b.lstrip().startswith("- ") and ib > ia and mapping is None:
            mapping = ib - ia
        if mapping is not None and sequence is not None:
            break
    m = mapping or 2
    return m, sequence or m, offset or 0


Gap = tuple[Any, FieldPath, str]
"""A rule, an entity field it constrains that no form schema can carry, and why."""


def sync_rules(
    packs: Sequence[Pack], params: Mapping[str, Mapping[str, Any]]
) -> tuple[list[Constraint], list[Gap]]:
    """What the rules ask of template parameters (:func:`constraints`), and the
    fields they constrain that no form schema can carry: the same for every
    file of a run, so made once."""
    gaps: list[Gap] = []
    for p in packs:
        effective = check_pack(p, params.get(p.name, {}))
        gaps += [(r, f, why) for r in p.rules for f, why in field_gaps(r, effective).items()]
    return constraints(packs, params), gaps


def sync_text(
    text: str,
    path: Path,
    packs: Sequence[Pack],
    params: Mapping[str, Mapping[str, Any]],
    rules: tuple[list[Constraint], list[Gap]] | None = None,
) -> FileResult:
    """The synced text of one YAML file (``before`` == ``after`` when in sync or
    not a template); ``rules``: :func:`sync_rules` of ``packs``, when made."""
    result = FileResult(path, text, text)
    if "scaffolder.backstage.io" not in text:
        return result
    # the guarded reader first: what `policykit check` refuses (a repeated key,
    # an alias bomb, nesting without end) is an error here too, never rewritten
    checked = load_yaml_text(text, path.as_posix())
    if checked.errors:
        result.errors += checked.errors
        return result
    y = _yaml()
    try:
        docs = list(y.load_all(text))
    except Exception as e:  # not YAML ruamel can round-trip
        result.errors.append(
            InputError(f"cannot be synced: {type(e).__name__}", loc=SourceLoc(path.as_posix()))
        )
        return result
    cons, gaps = rules if rules is not None else sync_rules(packs, params)
    changed = False
    for doc in docs:
        plain_doc = _plain(doc)
        if not is_template(plain_doc):
            continue
        try:
            tm = map_template(plain_doc, path)
            changed |= _sync_doc(doc, tm, cons, result.notes, path, gaps)
        except MALFORMED as e:
            meta = plain_doc.get("metadata")
            name = meta.get("name") if isinstance(meta, dict) else None
            result.errors.append(
                InputError(
                    f"template {name!r} cannot be synced: a field has the wrong type "
                    f"({type(e).__name__}: {e})",
                    loc=SourceLoc(path.as_posix()),
                )
            )
    if not changed:
        return result
    mapping, sequence, offset = guess_indent(text)
    y.indent(mapping=mapping, sequence=sequence, offset=offset)
    buf = io.StringIO()
    if len(docs) == 1 and not text.lstrip().startswith("---"):
        y.dump(docs[0], buf)
    else:
        y.explicit_start = text.lstrip().startswith("---")
        y.dump_all(docs, buf)
    result.after = _line_breaks(buf.getvalue(), text)
    return result


def _line_breaks(out: str, text: str) -> str:
    """``out`` with the line breaks of ``text``: CRLF when its first line ends
    in CRLF (ruamel.yaml writes LF, and keeps a CR that ends a comment, which
    would leave a file of mixed breaks), else LF."""
    first = text.find("\n")
    lf = out.replace("\r\n", "\n")
    return lf.replace("\n", "\r\n") if first > 0 and text[first - 1] == "\r" else lf


@dataclass(frozen=True, slots=True)
class ParameterSchema:
    """What the rules ask of one template parameter: the merged schema of every
    rule constraining a field it fills (for the entity's kind and type), and
    whether one of them needs the field present."""

    param: str
    fields: tuple[FieldPath, ...]
    constraints: tuple[Constraint, ...]
    schema: dict[str, Any]
    required: bool


def parameter_schema(tm: TemplateMap, param: str, cons: Sequence[Constraint]) -> ParameterSchema:
    """The schema ``scaffold sync`` writes into ``param`` of the template ``tm``
    (and ``fields.json`` gives under ``<template>#<param>``)."""
    fields = tuple(m.field for m in tm.mapped if m.param == param)
    applicable = tuple(c for c in cons if c.field in fields and c.applies(tm.kind, tm.entity_type))
    return ParameterSchema(
        param,
        fields,
        applicable,
        desired_schema(applicable),
        any(c.required for c in applicable),
    )


def _sync_doc(
    doc: Any,
    tm: TemplateMap,
    cons: Sequence[Constraint],
    notes: list[str],
    path: Path,
    gaps: Sequence[Gap] = (),
) -> bool:
    for u in tm.unmapped:
        notes.append(
            f"{path.as_posix()}: template {tm.name}: parameter {u.param} not mapped: {u.reason}"
        )
    changed = False
    spec = doc.get("spec")
    steps: Any = spec.get("parameters") if isinstance(spec, Mapping) else None
    if not tm.mapped or not isinstance(steps, Mapping | list):
        return False  # no parameter feeds the entity: nothing to sync
    # one schema per parameter, over every field it fills (a parameter with
    # several x-policykit-field entries gets them all, once)
    for name in dict.fromkeys(m.param for m in tm.mapped):
        p = tm.parameters[name]
        step: Any = steps[p.step] if p.step is not None else steps
        prop = step["properties"][name]
        if prop.get(SYNC_KEY) is False:
            continue
        ps = parameter_schema(tm, name, cons)
        for fld in ps.fields:
            if not any(c.field == fld for c in ps.constraints):
                why = [
                    f"{r.id} constrains it, but no form schema can carry it: {g}"
                    for r, f, g in gaps
                    if f == fld and selector_applies(r.selector, tm.kind, tm.entity_type)
                ]
                notes.append(
                    f"{path.as_posix()}: template {tm.name}: parameter {name} fills "
                    f"{field_name(fld)}, " + ("; ".join(why) or "which no rule constrains")
                )
        want = ps.schema
        for k in OWNED:
            if k in want:
                if _plain(prop.get(k)) != want[k] or k not in prop:
                    prop[k] = want[k]
                    changed = True
            elif k in prop and k != "type":
                del prop[k]
                changed = True
        if ps.required and not p.required:
            req = step.get("required")
            if req is None:
                step["required"] = [name]
            elif isinstance(req, list):
                req.append(name)
            else:
                notes.append(
                    f"{path.as_posix()}: template {tm.name}: required is not a list; "
                    f"{name} not made required"
                )
                continue
            changed = True
    return changed


def selector_applies(sel: Any, kind: str, entity_type: str | None) -> bool:
    """Whether a rule's selector takes the entity a template creates (its
    kind and ``spec.type``): the rules a note about the template may name."""
    return (not sel.kinds or kind in sel.kinds) and (
        not sel.entity_types or entity_type in sel.entity_types
    )


def sync_paths(
    paths: Sequence[str],
    packs: Sequence[Pack],
    params: Mapping[str, Mapping[str, Any]],
) -> list[FileResult]:
    """Every ``*.yaml``/``*.yml`` file under ``paths``, synced (not written)."""
    out: list[FileResult] = []
    for p in paths:
        if not Path(p).exists():
            missing = FileResult(Path(p), "", "")
            missing.errors.append(InputError("no such file or directory", loc=SourceLoc(p)))
            out.append(missing)
    rules = sync_rules(packs, params)
    for f in yaml_files(paths):
        try:
            raw = read_bytes(f, name=f.as_posix(), error=InputError)
            text = decode(raw, f.as_posix(), error=InputError)
        except PolicykitError as exc:  # unreadable, not UTF-8 ...
            bad = FileResult(f, "", "")
            bad.errors.append(exc)
            out.append(bad)
            continue
        synced = sync_text(text, f, packs, params, rules)
        synced.bom = raw.startswith(codecs.BOM_UTF8)
        out.append(synced)
    return out


def yaml_files(paths: Sequence[str]) -> list[Path]:
    """The `*.yaml`/`*.yml` files in ``paths`` (directories searched, hidden
    ones and node_modules skipped), in order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            # hidden folders and node_modules *under* p: p itself may sit in
            # one (a CI workspace under ~/.jenkins), as check reads it there
            out += sorted(
                x
                for x in p.rglob("*")
                if x.suffix in (".yaml", ".yml")
                and x.is_file()
                and not any(
                    part.startswith(".") or part == "node_modules"
                    for part in x.relative_to(p).parts
                )
            )
        elif p.is_file():
            out.append(p)
    return out
