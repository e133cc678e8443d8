"""The ``parameters`` section of ``<pack>.fields.json`` (issue 17, item 1).

``fields.json`` gives each rule's schema per entity field. When ``policykit
build`` is given the repository's templates (``--templates``, else the
configured ``paths``), every template parameter that fills a field a pack
constrains gets the schema under the parameter too, keyed
``<template>#<parameter>`` (the template's ``metadata.name``): exactly the
schema ``policykit scaffold sync`` writes into that parameter
(:func:`policykit.scaffolder.sync.parameter_schema`), from that pack's rules.
A platform that builds its forms from the artifact, rather than rewriting the
templates in place, reads it there.

A parameter a template feeds into the entity in a way policykit cannot map is
listed under ``unmapped_parameters`` with the reason, never dropped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from policykit.ir.rule import Pack
from policykit.scaffolder.drift import constraints
from policykit.scaffolder.mapping import TemplateMap, field_name, is_template, map_template
from policykit.scaffolder.sync import parameter_schema, yaml_files


@dataclass(frozen=True, slots=True)
class Template:
    file: str  # as shown: relative to the working directory when under it
    map: TemplateMap


def read_templates(paths: Sequence[str]) -> tuple[list[Template], list[str]]:
    """The Backstage templates in ``paths`` (mapped), and notes: a template
    name met twice (the later one is left out)."""
    out: list[Template] = []
    notes: list[str] = []
    seen: dict[str, str] = {}
    for f in yaml_files(paths):
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if "scaffolder.backstage.io" not in text:
            continue
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError:
            continue  # `policykit check` reports it
        shown = _shown(f)
        for doc in docs:
            if not is_template(doc):
                continue
            tm = map_template(doc, f)
            if tm.name in seen:
                notes.append(
                    f"{shown}: template {tm.name} is also in {seen[tm.name]}; "
                    "fields.json gives the first one's parameters"
                )
                continue
            seen[tm.name] = shown
            out.append(Template(shown, tm))
    return out, notes


def _shown(f: Path) -> str:
    try:
        rel = Path(os.path.relpath(f.resolve(), Path.cwd().resolve()))
    except ValueError:  # another drive
        return f.as_posix()
    return f.as_posix() if rel.parts[:1] == ("..",) else rel.as_posix()


def parameters_section(
    templates: Sequence[Template], pack: Pack, params: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """``parameters`` and ``unmapped_parameters`` for ``pack``'s fields.json."""
    cons = [c for c in constraints([pack], params) if c.pack == pack.name]
    by_param: dict[str, Any] = {}
    unmapped: list[dict[str, str]] = []
    for t in templates:
        tm = t.map
        for name in dict.fromkeys(m.param for m in tm.mapped):
            ps = parameter_schema(tm, name, cons)
            if not ps.constraints:
                continue
            by_param[f"{tm.name}#{name}"] = {
                "template": tm.name,
                "file": t.file,
                "parameter": name,
                "fields": [field_name(f) for f in ps.fields],
                "kind": tm.kind,
                "entity_type": tm.entity_type,
                "rules": sorted({c.rule.id for c in ps.constraints}),
                "required": ps.required,
                "schema": ps.schema,
            }
        unmapped += [
            {"template": tm.name, "file": t.file, "parameter": u.param, "reason": u.reason}
            for u in tm.unmapped
        ]
    return {"parameters": dict(sorted(by_param.items())), "unmapped_parameters": unmapped}


def parameters_by_pack(
    paths: Sequence[str], packs: Sequence[Pack], params: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Per pack name, the section :func:`parameters_section` gives for the
    templates in ``paths``; and the notes."""
    templates, notes = read_templates(paths)
    return {p.name: parameters_section(templates, p, params) for p in packs}, notes
