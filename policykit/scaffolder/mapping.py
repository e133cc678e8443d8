"""Which template parameter fills which entity field.

A Backstage template (``scaffolder.backstage.io/v1beta3``) collects
``spec.parameters`` and creates an entity in its ``steps``. policykit learns
the mapping, first match wins per parameter:

1. ``x-policykit-field`` on the parameter (a field path as in ``fields.json``:
   ``metadata.name``, ``spec.owner``, ``metadata.annotations.<key>``,
   ``metadata.labels.<key>``; a list for several fields) — explicit;
2. a ``catalog:write`` step whose ``input.entity`` holds the whole expression
   ``${{ parameters.x }}`` at a field;
3. a ``fetch:template`` step passing ``values.v: ${{ parameters.x }}`` with a
   skeleton (``input.url``, a relative path) in the repository whose
   ``catalog-info.yaml`` holds ``${{ values.v }}`` or ``${{ values.v | dump }}``
   at a field (``dump`` writes the value as JSON, which YAML reads back as the
   same value: Backstage's sample skeletons use it).

A parameter used by such a step in a way none of these explains (the skeleton
is not in the repository or not readable, or the field takes
``"prefix-${{ values.v }}"``) is *unmapped*, with the reason: callers report
it, never drop it. Parameters no entity-producing step uses (``repoUrl`` for
``publish:github``, a value the skeleton's ``catalog-info.yaml`` never reads)
fill no field.

The entity's kind and ``spec.type`` come from the ``catalog:write`` entity or
the skeleton when literal there, else ``x-policykit-kind`` on the template's
``spec`` (default ``Component``) and the template's ``spec.type``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_API = "scaffolder.backstage.io/v1beta3"
FIELD_KEY = "x-policykit-field"
KIND_KEY = "x-policykit-kind"
_EXPR = r"^\$\{\{\s*%s(?:\.([A-Za-z_$][\w$]*)|\[['\"]([^'\"]+)['\"]\])\s*\}\}$"
PARAM_EXPR = re.compile(_EXPR % "parameters")
VALUES_EXPR = re.compile(_EXPR % "values")
ANY_PARAM = re.compile(r"parameters(?:\.([A-Za-z_$][\w$]*)|\[['\"]([^'\"]+)['\"]\])")
_REF = r"values(?:\.([A-Za-z_$][\w$]*)|\[['\"]([^'\"]+)['\"]\])"
VALUES_DUMP = re.compile(r"^\$\{\{\s*" + _REF + r"\s*\|\s*dump\s*\}\}$")
ANY_VALUE = re.compile(r"(?<![\w$.])" + _REF)
TEMPLATE_EXPR = re.compile(r"\$\{\{.*?\}\}", re.DOTALL)
_KEYED = (("metadata", "annotations"), ("metadata", "labels"))

FieldPath = tuple[str, ...]


def parse_field(text: str) -> FieldPath:
    """``metadata.annotations.policykit.dev/cost-center`` -> its segments (an
    annotation or label key is one segment, dots and all)."""
    parts = text.split(".")
    for prefix in _KEYED:
        if tuple(parts[:2]) == prefix and len(parts) > 2:
            return (*prefix, ".".join(parts[2:]))
    return tuple(parts)


def field_name(path: FieldPath) -> str:
    return ".".join(path)


@dataclass(frozen=True, slots=True)
class Parameter:
    """A property of a parameters step: where it is and what it says."""

    name: str
    step: int | None  # index in spec.parameters (None: parameters is one object)
    schema: dict[str, Any]
    required: bool


@dataclass(frozen=True, slots=True)
class Mapped:
    param: str
    field: FieldPath
    source: str  # "x-policykit-field", "catalog:write", "skeleton <path>"


@dataclass(frozen=True, slots=True)
class Unmapped:
    param: str
    reason: str


@dataclass(slots=True)
class TemplateMap:
    name: str
    kind: str
    entity_type: str | None
    parameters: dict[str, Parameter] = field(default_factory=dict)
    mapped: list[Mapped] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)


def is_template(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("apiVersion") == TEMPLATE_API
        and obj.get("kind") == "Template"
    )


def parameters(tpl: dict[str, Any]) -> dict[str, Parameter]:
    spec = tpl.get("spec")
    steps = spec.get("parameters") if isinstance(spec, dict) else None
    listed: list[tuple[int | None, Any]] = (
        list(enumerate(steps)) if isinstance(steps, list) else [(None, steps)]
    )
    out: dict[str, Parameter] = {}
    for i, step in listed:
        if not isinstance(step, dict) or not isinstance(step.get("properties"), dict):
            continue
        req = step.get("required")
        required = {r for r in req if isinstance(r, str)} if isinstance(req, list) else set()
        for name, schema in step["properties"].items():
            if isinstance(name, str) and isinstance(schema, dict) and name not in out:
                out[name] = Parameter(name, i, schema, name in required)
    return out


def _expr_name(m: re.Match[str]) -> str:
    return m.group(1) or m.group(2)


def _walk(node: Any, path: FieldPath = ()) -> Iterator[tuple[FieldPath, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(k, str):
                yield from _walk(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, (*path, str(i)))
    else:
        yield path, node


def _steps(tpl: dict[str, Any]) -> list[dict[str, Any]]:
    spec = tpl.get("spec")
    steps = spec.get("steps") if isinstance(spec, dict) else None
    return [s for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []


def _skeleton_entity(base: Path | None, url: Any) -> tuple[Path | None, Any]:
    """The skeleton's catalog-info (path, parsed) when it is in the repository."""
    if base is None or not isinstance(url, str) or "://" in url or url.startswith("/"):
        return None, None
    for name in ("catalog-info.yaml", "catalog-info.yml"):
        p = base / url / name
        if p.is_file():
            try:
                return p, yaml.safe_load(p.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                return p, None
    return None, None


def map_template(tpl: dict[str, Any], file: str | Path | None = None) -> TemplateMap:
    """The parameter -> entity field mapping of the template ``tpl`` read from
    ``file`` (the skeleton is looked up next to it)."""
    base = Path(file).parent if file else None
    meta = tpl.get("metadata")
    spec = tpl.get("spec") if isinstance(tpl.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    name = meta.get("name") if isinstance(meta, dict) else None
    kind = spec.get(KIND_KEY) if isinstance(spec.get(KIND_KEY), str) else "Component"
    etype = spec.get("type") if isinstance(spec.get("type"), str) else None
    out = TemplateMap(str(name or "?"), str(kind), etype, parameters(tpl))
    found: dict[str, list[Mapped]] = {}
    why: dict[str, str] = {}

    def add(param: str, fld: FieldPath, source: str) -> None:
        found.setdefault(param, [])
        if all(m.field != fld for m in found[param]):
            found[param].append(Mapped(param, fld, source))

    for p in out.parameters.values():  # 1. explicit
        given = p.schema.get(FIELD_KEY)
        for text in given if isinstance(given, list) else [given]:
            if isinstance(text, str) and text:
                add(p.name, parse_field(text), FIELD_KEY)
    explicit = set(found)
    entity_kinds: list[tuple[Any, Any]] = []
    for step in _steps(tpl):
        action, inp = step.get("action"), step.get("input")
        if not isinstance(inp, dict):
            continue
        if action == "catalog:write" and isinstance(inp.get("entity"), dict):  # 2.
            ent = inp["entity"]
            entity_kinds.append((ent.get("kind"), (ent.get("spec") or {}).get("type")))
            for path, v in _walk(ent):
                _use(v, path, "catalog:write", explicit, add, why)
        if action == "fetch:template" and isinstance(inp.get("values"), dict):  # 3.
            skel_path, skel = _skeleton_entity(base, inp.get("url"))
            if isinstance(skel, dict):
                entity_kinds.append((skel.get("kind"), (skel.get("spec") or {}).get("type")))
            fetch = _Fetch(inp, skel_path, skel)
            for vname, v in inp["values"].items():
                if isinstance(vname, str) and isinstance(v, str):
                    fetch.use(vname, v, out.parameters, explicit, add, why)
    for k, t in entity_kinds:
        if isinstance(k, str) and "${{" not in k:  # literal, not a value filled in
            out.kind = k
            if isinstance(t, str) and "${{" not in t:
                out.entity_type = t
            break
    for pname in out.parameters:
        if pname in found:
            out.mapped.extend(found[pname])
        elif pname in why:
            out.unmapped.append(Unmapped(pname, why[pname]))
    return out


@dataclass(slots=True)
class _SkeletonUses:
    """Where a skeleton's catalog-info reads each of the values passed to it.

    ``exact``: fields that hold the value itself (``${{ values.v }}`` or
    ``${{ values.v | dump }}``), so the field's rules are the parameter's.
    ``computed``: the first field whose text merely uses it (a prefix, a
    filter, two values joined): the entity gets something the parameter's
    schema does not describe, so the parameter is reported, not mapped there.
    """

    exact: dict[str, list[FieldPath]] = field(default_factory=dict)
    computed: dict[str, tuple[FieldPath, str]] = field(default_factory=dict)


def _skeleton_uses(skel: Any) -> _SkeletonUses:
    """The values the skeleton entity ``skel`` reads, field by field."""
    out = _SkeletonUses()
    for path, v in _walk(skel):
        if not isinstance(v, str):
            continue
        m = VALUES_EXPR.match(v) or VALUES_DUMP.match(v)
        if m:
            out.exact.setdefault(_expr_name(m), []).append(path)
            continue
        for expr in TEMPLATE_EXPR.findall(v):
            for x in ANY_VALUE.finditer(expr):
                out.computed.setdefault(_expr_name(x), (path, v))
    return out


class _Fetch:
    """One ``fetch:template`` step: maps the parameters its ``values`` pass
    through to the skeleton's catalog-info fields (rule 3), or says why not."""

    def __init__(self, inp: dict[str, Any], skel_path: Path | None, skel: Any) -> None:
        self.url = inp.get("url")
        self.skel_path = skel_path
        self.skel = skel
        self.uses = _skeleton_uses(skel) if isinstance(skel, dict) else _SkeletonUses()

    def use(
        self,
        vname: str,
        v: str,
        params: dict[str, Parameter],
        explicit: set[str],
        add: Any,
        why: dict[str, str],
    ) -> None:
        """Map (``add``) or explain (``why``) each parameter ``values.vname: v`` uses."""
        whole = PARAM_EXPR.match(v) is not None
        for param in (_expr_name(x) for x in ANY_PARAM.finditer(v)):
            if param in explicit or param not in params:
                continue
            if whole and self.skel_path is not None:
                for path in self.uses.exact.get(vname, []):
                    add(param, path, f"skeleton {self.skel_path.as_posix()}")
            reason = self.reason(vname, v, whole)
            if reason:
                why.setdefault(param, reason)

    def reason(self, vname: str, v: str, whole: bool) -> str | None:
        """Why ``values.vname`` cannot be followed to an entity field as a
        whole value (None: it can, or the skeleton's catalog-info never reads
        it, so it fills no field)."""
        if self.skel_path is None:
            return (
                f"fetch:template passes it as values.{vname}, but the skeleton "
                f"{self.url!r} is not in the repository (set {FIELD_KEY})"
            )
        if not isinstance(self.skel, dict):
            return (
                f"fetch:template passes it as values.{vname}, but the skeleton's "
                f"{self.skel_path.as_posix()} is not one YAML mapping policykit can read "
                f"(set {FIELD_KEY})"
            )
        if not whole:
            return f"values.{vname} is computed from it ({v!r}; set {FIELD_KEY})"
        if vname in self.uses.computed:
            fld, text = self.uses.computed[vname]
            return (
                f"values.{vname} is computed in the skeleton "
                f"({field_name(fld)}: {text!r}; set {FIELD_KEY})"
            )
        return None


def _use(
    v: Any,
    path: FieldPath,
    source: str,
    explicit: set[str],
    add: Any,
    why: dict[str, str],
) -> None:
    if not isinstance(v, str):
        return
    m = PARAM_EXPR.match(v)
    if m:
        if _expr_name(m) not in explicit:
            add(_expr_name(m), path, source)
        return
    for x in ANY_PARAM.finditer(v):
        p = _expr_name(x)
        if p not in explicit:
            why.setdefault(
                p, f"{source} computes {field_name(path)} from it ({v!r}; set {FIELD_KEY})"
            )
