"""Kubernetes admission manifests from CEL-compiled rules: ValidatingAdmissionPolicy
+ Binding (``admissionregistration.k8s.io/v1``) and Kyverno ValidatingPolicy
(``policies.kyverno.io/v1``, or ``v1beta1``/``v1alpha1`` for older clusters).

One policy per rule: severity maps to validation actions per rule
(deny → Deny, warn → Warn, info → Audit), and a finding names its rule.
Parameters are inlined at build time (ValidatingPolicy has no ``paramKind``);
rebuild to re-parameterise. Every manifest is YAML written by :func:`dump`,
the one place user strings reach YAML.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from policykit import __version__
from policykit.errors import raise_all
from policykit.ir import nodes as ir
from policykit.ir.rule import Pack, Rule
from policykit.k8s import crds
from policykit.k8s.kinds import lookup
from policykit.targets.base import UnsupportedError
from policykit.targets.cel import printer as cel_printer
from policykit.targets.cel.compiler import CelRule, compile_pack
from policykit.targets.cel.selectors import selector_expr

ACTIONS = {"deny": "Deny", "warn": "Warn", "info": "Audit"}
KYVERNO_VERSIONS = ("v1", "v1beta1", "v1alpha1")
OPERATIONS = ["CREATE", "UPDATE"]
MANAGED_BY = {"app.kubernetes.io/managed-by": "policykit"}


@dataclass(frozen=True, slots=True)
class Skipped:
    """A rule left out of an admission target, and why (never silently)."""

    rule: str
    pack: str
    reason: str
    target: str = ""


def policy_name(pack: str, rule: Rule) -> str:
    """A DNS-1123 subdomain naming the rule: ``<pack>-<rule id>``."""
    return re.sub(r"[^a-z0-9.-]", "-", f"{pack}-{rule.id}".lower())


# kinds that are never Kubernetes objects: what a rule selecting them decides at run time
RUNTIME_KINDS = {
    "ToolCall": "a runtime decision on an agent's tool call (kind ToolCall): the OPA "
    "bundle's main.decision answers it at the gateway; no Kubernetes object is a ToolCall",
}
CEL_TARGETS = ("kyverno", "vap")
INVENTORY_REASON = (
    "reads other objects (objects()), and a CEL policy sees one object at a time: "
    "enforced at admission by gatekeeper (sync the kinds it reads) and in CI"
)


def runtime_kinds(rule: Rule) -> list[str]:
    """The runtime-only kinds a rule selects."""
    return [k for k in rule.selector.kinds if k in RUNTIME_KINDS]


def admission_applicable(rule: Rule) -> str | None:
    """Why ``rule`` cannot run at Kubernetes admission at all, or None."""
    if rule.selector.source == "backstage":
        return "a Backstage catalog rule: checked in CI and by the scaffolder schema"
    if rule.selector.api_versions and all(
        a.split("/")[0].endswith("backstage.io") for a in rule.selector.api_versions
    ):
        return "selects only Backstage apiVersions"
    kinds = rule.selector.kinds
    if kinds and len(runtime_kinds(rule)) == len(kinds):
        return RUNTIME_KINDS[kinds[0]]
    return None


def reads_inventory(rule: Rule) -> bool:
    roots: list[ir.Node] = [rule.condition]
    if rule.each is not None:
        roots.append(rule.each.collection)
    roots += [p for p in rule.message.parts if isinstance(p, ir.Node)]
    return any(isinstance(n, ir.Objects) for r in roots for n in ir.walk(r))


def left_out(rule: Rule, target: str) -> str | None:
    """Why an admission ``target`` leaves ``rule`` out by design (not an error:
    the build lists it), or None: not for admission at all, or a cross-object
    rule in a CEL target."""
    why = admission_applicable(rule)
    if why is None and target in CEL_TARGETS and reads_inventory(rule):
        why = INVENTORY_REASON
    return why


def unknown_kind(rule: Rule, kind: str) -> UnsupportedError:
    """A kind neither built in nor defined by a CRD of the run (PK201)."""
    err = UnsupportedError(
        f"rule {rule.id}: kind {kind!r} is neither a built-in Kubernetes kind nor defined "
        "by a CRD, so admission cannot match it",
        loc=rule.loc,
        hint="add its CustomResourceDefinition to `crds:` in policykit.yaml or pass --crd PATH",
    )
    err.code = "PK201"
    return err


def resource_rules(rule: Rule) -> list[dict[str, Any]]:
    """``resourceRules`` from the selector's kinds (all resources when none):
    per API group, its plural resources; a custom kind's rule also names the
    versions its CRD serves."""
    if not rule.selector.kinds:
        return [
            {
                "apiGroups": ["*"],
                "apiVersions": ["*"],
                "operations": list(OPERATIONS),
                "resources": ["*"],
                "scope": "*",
            }
        ]
    custom = crds.active()
    by_group: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for kind in rule.selector.kinds:
        if kind in RUNTIME_KINDS:
            continue
        info = lookup(kind)
        if info is None:
            raise unknown_kind(rule, kind)
        versions = info.versions if custom.get(kind) is not None else ("*",)
        by_group.setdefault((info.group, versions), []).append(info.resource)
    return [
        {
            "apiGroups": [g],
            "apiVersions": list(vs),
            "operations": list(OPERATIONS),
            "resources": sorted(set(rs)),
            "scope": "*",
        }
        for (g, vs), rs in sorted(by_group.items())
    ]


def allowed(violation: str) -> str:
    """The validation expression: true when the object has no violation."""
    if violation == "false":
        return "true"
    m = re.fullmatch(r"size\((variables\.[A-Za-z0-9_]+)\) > 0", violation)
    if m:
        return f"size({m.group(1)}) == 0"
    return cel_printer.neg(violation)


def static_message(rule: Rule) -> str:
    """The validation's static ``message``: plain text (the rule's title),
    shown when the dynamic ``messageExpression`` yields nothing usable."""
    return _one_line(f"{rule.title} ({rule.id})")


def _one_line(text: str) -> str:
    """Kubernetes refuses line breaks in a validation ``message``."""
    return " ".join(text.split()) or "policy violation"


_BREAKS = ("\n", "\r")


def message_expression(message: str) -> str:
    """A ``messageExpression`` without line breaks: the API server discards a
    message with a line break (and an empty or blank one) for ``message``."""
    for ch in _BREAKS:
        message = f"({message}).replace({cel_printer.string(ch)}, ' ')"
    return message


def shown_message(message: str, fallback: str) -> str:
    """What the API server shows for an evaluated ``messageExpression``: line
    breaks as spaces, and ``fallback`` (the static ``message``) when blank."""
    for ch in _BREAKS:
        message = message.replace(ch, " ")
    return message if message.strip() else fallback


def _metadata(name: str, cr: CelRule, pack: Pack) -> dict[str, Any]:
    return {
        "name": name,
        "labels": {**MANAGED_BY, "policykit.io/pack": pack.name.replace("_", "-")},
        "annotations": {
            "policykit.io/rule": cr.rule.id,
            "policykit.io/title": cr.rule.title,
            "policykit.io/severity": cr.rule.severity,
            "policykit.io/pack-version": pack.version,
            "policykit.io/generator": f"policykit {__version__}",
        },
    }


def admission_match(rule: Rule, rules: Sequence[Mapping[str, Any]]) -> str:
    """The ``matchConditions`` selector: the rule's selector less what the
    resource ``rules`` already guarantee (:func:`selector_expr`)."""
    admitted = [(str(g), [str(v) for v in r["apiVersions"]]) for r in rules for g in r["apiGroups"]]
    return selector_expr(rule.selector, admitted)


def _spec_core(cr: CelRule) -> dict[str, Any]:
    rules = resource_rules(cr.rule)
    spec: dict[str, Any] = {"matchConstraints": {"resourceRules": rules}}
    match = admission_match(cr.rule, rules)
    if match != "true":
        spec["matchConditions"] = [{"name": "selector", "expression": match}]
    if cr.variables:
        spec["variables"] = [{"name": n, "expression": e} for n, e in cr.variables]
    validation: dict[str, Any] = {
        "expression": allowed(cr.violation),
        "message": static_message(cr.rule),
        "reason": "Invalid",
    }
    if cr.message != "''":
        validation["messageExpression"] = message_expression(cr.message)
    spec["validations"] = [validation]
    return spec


def vap(cr: CelRule, pack: Pack) -> list[dict[str, Any]]:
    """A ValidatingAdmissionPolicy and its Binding for one rule."""
    name = f"{policy_name(pack.name, cr.rule)}.policykit.io"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": _metadata(name, cr, pack),
        "spec": {"failurePolicy": "Fail", **_spec_core(cr)},
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": dict(MANAGED_BY)},
        "spec": {"policyName": name, "validationActions": [ACTIONS[cr.rule.severity]]},
    }
    return [policy, binding]


def kyverno(cr: CelRule, pack: Pack, version: str = "v1") -> list[dict[str, Any]]:
    """A Kyverno ValidatingPolicy for one rule (pod-controller autogen off: the
    rule already names every kind it governs)."""
    if version not in KYVERNO_VERSIONS:
        raise UnsupportedError(
            f"unknown Kyverno ValidatingPolicy version {version!r}",
            hint=f"use one of {', '.join(KYVERNO_VERSIONS)}",
        )
    spec = {
        "validationActions": [ACTIONS[cr.rule.severity]],
        "failurePolicy": "Fail",
        **_spec_core(cr),
        "autogen": {"podControllers": {"controllers": []}},
    }
    return [
        {
            "apiVersion": f"policies.kyverno.io/{version}",
            "kind": "ValidatingPolicy",
            "metadata": _metadata(policy_name(pack.name, cr.rule), cr, pack),
            "spec": spec,
        }
    ]


def check_limits(policy: Mapping[str, Any], rule: Rule, target: str) -> None:
    """PK200 when the API server (or the local engine) would refuse ``policy``
    (an expression over the length or nesting limit) or abort its evaluation
    at run time (over a cost limit) (:mod:`limits`)."""
    from policykit.targets.k8s import limits

    found = limits.problems(policy)
    if found:
        raise UnsupportedError(
            f"rule {rule.id}: target {target} would be refused at kubectl apply "
            "or aborted at run time: " + "; ".join(found),
            loc=rule.loc,
            hint="split the rule or simplify it; the Rego targets (rego, gatekeeper) have no "
            "such limit",
        )


def build(
    target: str,
    packs: Sequence[Pack],
    params: Mapping[str, Mapping[str, Any]],
    *,
    kyverno_version: str = "v1",
    custom: crds.CrdRegistry | None = None,
) -> tuple[dict[str, list[dict[str, Any]]], list[Skipped]]:
    """Manifests per file name (``<pack>.yaml``) and the rules left out
    (:func:`left_out`). ``custom``: the CRDs of the run (default: those in force).

    Every rule that cannot be expressed raises; the errors of all rules are
    collected and raised together (one :class:`UnsupportedError`).
    """
    with crds.using(custom):
        return _build(target, packs, params, kyverno_version)


def _build(
    target: str,
    packs: Sequence[Pack],
    params: Mapping[str, Mapping[str, Any]],
    kyverno_version: str,
) -> tuple[dict[str, list[dict[str, Any]]], list[Skipped]]:
    from policykit.ir.check import check_pack

    files: dict[str, list[dict[str, Any]]] = {}
    skipped: list[Skipped] = []
    errors: list[UnsupportedError] = []
    for pack in packs:
        eff = check_pack(pack, params.get(pack.name, {}))
        docs: list[dict[str, Any]] = []
        applicable = []
        for rule in pack.rules:
            why = left_out(rule, target)
            if why:
                skipped.append(Skipped(rule.id, pack.name, why, target))
            else:
                applicable.append(rule)
        sub = dataclasses.replace(pack, rules=tuple(applicable))
        try:
            compiled = compile_pack(sub, eff, target)
        except UnsupportedError as e:
            errors.append(e)
            continue
        for cr in compiled:
            try:
                made = vap(cr, pack) if target == "vap" else kyverno(cr, pack, kyverno_version)
                check_limits(made[0], cr.rule, target)
                docs += made
            except UnsupportedError as e:
                errors.append(e)
        if docs:
            files[f"{pack.name}.yaml"] = docs
    raise_all(errors)
    return files, skipped


class _Dumper(yaml.CSafeDumper):
    """Multi-line strings (Rego, long CEL) as literal block scalars (``|``)."""


def _str(dumper: _Dumper, data: str) -> yaml.Node:
    if "\n" in data:
        # the emitter falls back to a quoted style when a block cannot hold the text
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_str(data)


_Dumper.add_representer(str, _str)


def dump(docs: Iterable[dict[str, Any]]) -> str:
    """YAML for manifests: the one place user strings are written as YAML
    (multi-line text as block scalars)."""
    return yaml.dump_all(
        list(docs),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        explicit_start=True,
    )
