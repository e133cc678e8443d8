"""Gatekeeper: a ConstraintTemplate (``templates.gatekeeper.sh/v1``) and a
Constraint (``constraints.gatekeeper.sh/v1beta1``) per rule.

Per rule, not per pack: a Constraint carries one ``enforcementAction``, and
severity is per rule (deny → deny, warn → warn, info → dryrun); a violation then
names its rule in the constraint's name, as Gatekeeper reports it. The Rego is
the Rego compiler's Gatekeeper dialect (:mod:`.compiler`, Rego v1 under
``code:``), reading the object from ``input.review.object`` and parameters from
``input.parameters``; the helper library ships as ``libs`` under ``lib.policykit``.
``spec.match`` narrows by kind, namespace and labels; the Rego re-checks the
exact selector, so Gatekeeper's match details can never widen a rule.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from policykit import __version__
from policykit.errors import raise_all
from policykit.ir import nodes as ir
from policykit.ir.check import check_pack
from policykit.ir.rule import Pack, Rule
from policykit.k8s import crds
from policykit.k8s.kinds import lookup
from policykit.targets.base import UnsupportedError
from policykit.targets.gatekeeper.compiler import compile_template_rego
from policykit.targets.k8s.manifests import (
    MANAGED_BY,
    RUNTIME_KINDS,
    Skipped,
    left_out,
    policy_name,
    unknown_kind,
)
from policykit.targets.rego.compiler import RegoOptions, library

ACTIONS = {"deny": "deny", "warn": "warn", "info": "dryrun"}
LIB_ROOT = "lib.policykit"
TARGET = "admission.k8s.gatekeeper.sh"


def kind_name(pack: str, rule: Rule) -> str:
    """The Constraint kind: CamelCase, e.g. ``PkStarterK8s001``."""
    words = re.split(r"[^A-Za-z0-9]+", f"pk {pack} {rule.id}")
    return "".join(w[:1].upper() + w[1:].lower() for w in words if w)


def _structural(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A parameter schema as Kubernetes accepts it (structural, no
    ``additionalProperties: false``, no JSON-Schema-only keywords)."""
    drop = {"$schema", "$id", "title", "default", "examples", "const", "$comment"}
    out: dict[str, Any] = {}
    for k, v in schema.items():
        if k in drop or (k == "additionalProperties" and v is False):
            continue
        if k == "properties" and isinstance(v, Mapping):
            out[k] = {p: _structural(s) for p, s in v.items()}
        elif k in ("items", "additionalProperties") and isinstance(v, Mapping):
            out[k] = _structural(v)
        else:
            out[k] = v
    if "type" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def _params_used(rule: Rule) -> list[str]:
    nodes = [rule.condition, *(p for p in rule.message.parts if isinstance(p, ir.Node))]
    if rule.each is not None:
        nodes.append(rule.each.collection)
    names = {n.name for node in nodes for n in ir.walk(node) if isinstance(n, ir.Param)}
    return sorted(names)


@lru_cache(maxsize=1)
def libs() -> tuple[str, ...]:
    """The helper library as Gatekeeper libs (packages under ``lib.``), read once."""
    return tuple(
        block_text(text) for _, text in sorted(library(RegoOptions(lib_root=LIB_ROOT)).items())
    )


_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)


def block_text(rego: str) -> str:
    """Rego a YAML block scalar (``|``) can hold: leading tabs (``opa fmt``'s
    indentation, which YAML blocks refuse) become two spaces each, and no
    line ends in blanks. Indentation means nothing to Rego, so the module is
    the same program."""
    rego = _LEADING_TABS.sub(lambda m: "  " * len(m.group(0)), rego)
    return "\n".join(line.rstrip() for line in rego.split("\n"))


def template(pack: Pack, rule: Rule) -> dict[str, Any]:
    kind = kind_name(pack.name, rule)
    sub = dataclasses.replace(pack, rules=(rule,))
    opts = RegoOptions(params_ref="input.parameters", package_name=kind.lower(), lib_root=LIB_ROOT)
    rego = block_text(compile_template_rego(sub, opts))
    used = _params_used(rule)
    schema = pack.param_schema()
    props = {n: _structural(schema["properties"][n]) for n in used}
    crd_spec: dict[str, Any] = {"names": {"kind": kind}}
    if props:
        crd_spec["validation"] = {"openAPIV3Schema": {"type": "object", "properties": props}}
    return {
        "apiVersion": "templates.gatekeeper.sh/v1",
        "kind": "ConstraintTemplate",
        "metadata": {
            "name": kind.lower(),
            "labels": dict(MANAGED_BY),
            "annotations": {
                "policykit.io/rule": rule.id,
                "policykit.io/title": rule.title,
                "policykit.io/severity": rule.severity,
                "policykit.io/generator": f"policykit {__version__}",
            },
        },
        "spec": {
            "crd": {"spec": crd_spec},
            "targets": [
                {
                    "target": TARGET,
                    "operations": ["CREATE", "UPDATE"],
                    "code": [
                        {
                            "engine": "Rego",
                            "source": {"version": "v1", "rego": rego, "libs": list(libs())},
                        }
                    ],
                }
            ],
        },
    }


def constraint(pack: Pack, rule: Rule, params: Mapping[str, Any]) -> dict[str, Any]:
    sel = rule.selector
    match: dict[str, Any] = {}
    if sel.kinds:
        groups: dict[str, list[str]] = {}
        for k in sel.kinds:
            if k in RUNTIME_KINDS:
                continue
            info = lookup(k)
            if info is None:
                raise unknown_kind(rule, k)
            groups.setdefault(info.group, []).append(k)
        match["kinds"] = [{"apiGroups": [g], "kinds": ks} for g, ks in sorted(groups.items())]
    if sel.namespaces:
        # Gatekeeper lets objects without a namespace through `namespaces`;
        # policykit's selector never matches them.
        match["scope"] = "Namespaced"
        match["namespaces"] = list(sel.namespaces)
    if sel.exclude_namespaces:
        if not sel.kinds or "Namespace" in sel.kinds:
            raise UnsupportedError(
                f"rule {rule.id}: Gatekeeper's excludedNamespaces also excludes a Namespace "
                "by its own name, which policykit's exclude_namespaces does not",
                loc=rule.loc,
                hint="list the rule's kinds without Namespace, or drop exclude_namespaces",
            )
        match["excludedNamespaces"] = list(sel.exclude_namespaces)
    if sel.labels:
        match["labelSelector"] = {"matchLabels": dict(sel.labels)}
    spec: dict[str, Any] = {"enforcementAction": ACTIONS[rule.severity]}
    if match:
        spec["match"] = match
    used = _params_used(rule)
    if used:
        spec["parameters"] = {n: params[n] for n in used if n in params}
    return {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": kind_name(pack.name, rule),
        "metadata": {
            "name": policy_name(pack.name, rule),
            "labels": dict(MANAGED_BY),
            "annotations": {"policykit.io/rule": rule.id},
        },
        "spec": spec,
    }


def build(
    packs: Sequence[Pack],
    params: Mapping[str, Mapping[str, Any]],
    *,
    custom: crds.CrdRegistry | None = None,
) -> tuple[dict[str, list[dict[str, Any]]], list[Skipped]]:
    """``templates/<pack>.yaml`` and ``constraints/<pack>.yaml`` per pack, and
    the rules left out. ``custom``: the CRDs of the run (default: those in force)."""
    with crds.using(custom):
        return _build(packs, params)


def _build(
    packs: Sequence[Pack], params: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, list[dict[str, Any]]], list[Skipped]]:
    files: dict[str, list[dict[str, Any]]] = {}
    skipped: list[Skipped] = []
    errors: list[UnsupportedError] = []
    for pack in packs:
        eff = check_pack(pack, params.get(pack.name, {}))
        templates, constraints = [], []
        for rule in pack.rules:
            why = left_out(rule, "gatekeeper")
            if why:
                skipped.append(Skipped(rule.id, pack.name, why, "gatekeeper"))
                continue
            try:
                templates.append(template(pack, rule))
                constraints.append(constraint(pack, rule, eff))
            except UnsupportedError as e:
                errors.append(e)
        if templates:
            files[f"templates/{pack.name}.yaml"] = templates
            files[f"constraints/{pack.name}.yaml"] = constraints
    raise_all(errors)
    return files, skipped
