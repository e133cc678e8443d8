"""Waivers at admission: what each Kubernetes target can carry of a waiver.

=================  ==========================================================
target             what travels
=================  ==========================================================
kyverno            everything but ``file``: a ``PolicyException`` per waiver
                   and policy, its ``matchConditions`` in CEL (kind,
                   apiVersion, namespace and name, exact or prefix), its
                   ``expiresAt`` the end of the waiver's last day (UTC)
gatekeeper         namespace-only waivers (exact or ``prefix*``): added to the
                   Constraint's ``spec.match.excludedNamespaces``
vap                namespace-only waivers with exact namespaces (the binding's
                   ``namespaceSelector`` on ``kubernetes.io/metadata.name``),
                   and name-only waivers with an exact name (the binding's
                   ``excludeResourceRules`` with ``resourceNames``)
=================  ==========================================================

Anything else is reported as not carried (``NotCarried``), never widened: a
waiver a target cannot express exactly stays a finding there. Expiry is
enforced by Kyverno; Gatekeeper and VAP have no expiry, so an expired waiver
stays excluded there until the next build (builds export only waivers that
have not expired on the build date).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policykit.k8s.kinds import NAMESPACE_NAME_LABEL, lookup
from policykit.targets.cel import printer as cel
from policykit.targets.k8s.manifests import MANAGED_BY, OPERATIONS
from policykit.waivers import Waiver

META_NAME_LABEL = NAMESPACE_NAME_LABEL


@dataclass(frozen=True, slots=True)
class NotCarried:
    waiver: Waiver
    target: str
    reason: str


def active(waivers: Sequence[Waiver], today: dt.date) -> list[Waiver]:
    return [w for w in waivers if w.expires >= today]


def _policies_for(
    w: Waiver, docs: Sequence[Mapping[str, Any]], kinds: Sequence[str]
) -> list[Mapping[str, Any]]:
    """The manifests (of ``kinds``) enforcing ``w``'s rule (and pack, if given).

    A VAP binding carries no rule annotation; its policy (``spec.policyName``,
    found among ``docs``) does."""
    rules: dict[str, str] = {}
    for d in docs:  # policies carry the rule; a binding shares its policy's name
        meta = d.get("metadata") or {}
        rule = (meta.get("annotations") or {}).get("policykit.io/rule")
        if rule:
            rules[str(meta.get("name"))] = str(rule)
    pack = w.match.get("pack")
    prefix = None if pack is None else pack.replace("_", "-") + "-"
    out = []
    for d in docs:
        if d.get("kind") not in kinds:
            continue
        name = str((d.get("metadata") or {}).get("name", ""))
        rule = rules.get(name)
        if d.get("kind") == "ValidatingAdmissionPolicyBinding":
            rule = rules.get(str((d.get("spec") or {}).get("policyName")))
        if rule != w.rule or (prefix is not None and not name.startswith(prefix)):
            continue
        out.append(d)
    return out


def _cel_field(path: str, value: str) -> str:
    """``object.<path>`` equals ``value`` (or starts with it, for ``prefix*``)."""
    parts = path.split(".")
    guards = []
    base = "object"
    for p in parts:
        guards.append(cel.has(base, p))
        base = cel.select(base, p)
    if value.endswith("*"):
        test = f"{base}.startsWith({cel.string(value[:-1])})"
    else:
        test = f"{base} == {cel.string(value)}"
    return " && ".join([*guards, test])


_FIELDS = {
    "kind": "kind",
    "apiVersion": "apiVersion",
    "namespace": "metadata.namespace",
    "name": "metadata.name",
}


def kyverno_exceptions(
    waivers: Sequence[Waiver],
    policies: Sequence[Mapping[str, Any]],
    *,
    version: str = "v1",
    namespace: str = "kyverno",
) -> tuple[list[dict[str, Any]], list[NotCarried]]:
    """A ``PolicyException`` per waiver (and the ValidatingPolicies it names)."""
    out: list[dict[str, Any]] = []
    missed: list[NotCarried] = []
    for i, w in enumerate(waivers):
        if "file" in w.match:
            missed.append(NotCarried(w, "kyverno", "a file glob means nothing at admission"))
            continue
        refs = _policies_for(w, policies, ("ValidatingPolicy",))
        if not refs:
            continue
        conds = [
            {"name": key.lower(), "expression": _cel_field(_FIELDS[key], value)}
            for key, value in sorted(w.match.items())
            if key in _FIELDS
        ]
        spec: dict[str, Any] = {
            "policyRefs": [
                {"name": p["metadata"]["name"], "kind": "ValidatingPolicy"}
                for p in sorted(refs, key=lambda p: str(p["metadata"]["name"]))
            ],
            "expiresAt": f"{w.expires.isoformat()}T23:59:59Z",
        }
        if conds:
            spec["matchConditions"] = conds
        out.append(
            {
                "apiVersion": f"policies.kyverno.io/{version}",
                "kind": "PolicyException",
                "metadata": {
                    "name": f"policykit-waiver-{w.rule.lower()}-{i + 1}",
                    "namespace": namespace,
                    "labels": dict(MANAGED_BY),
                    "annotations": {
                        "policykit.io/rule": w.rule,
                        "policykit.io/waiver-owner": w.owner,
                        "policykit.io/waiver-reason": w.reason,
                        "policykit.io/waiver-expires": w.expires.isoformat(),
                    },
                },
                "spec": spec,
            }
        )
    return out, missed


def apply_gatekeeper(
    waivers: Sequence[Waiver], constraints: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[NotCarried]]:
    """Constraints with namespace-only waivers as ``excludedNamespaces``."""
    out = copy.deepcopy(constraints)
    missed: list[NotCarried] = []
    for w in waivers:
        extra = set(w.match) - {"namespace", "pack"}
        if extra or "namespace" not in w.match:
            missed.append(
                NotCarried(w, "gatekeeper", "a Constraint can exclude namespaces only, not "
                           + (", ".join(sorted(extra)) or "all objects"))
            )  # fmt: skip
            continue
        kinds = {c["kind"] for c in out}
        for c in _policies_for(w, out, sorted(kinds)):
            match = c["spec"].setdefault("match", {})
            excluded = set(match.get("excludedNamespaces", [])) | {w.match["namespace"]}
            match["excludedNamespaces"] = sorted(excluded)
    return out, missed


def apply_vap(
    waivers: Sequence[Waiver], docs: list[dict[str, Any]], rule_kinds: Mapping[str, Sequence[str]]
) -> tuple[list[dict[str, Any]], list[NotCarried]]:
    """Bindings narrowed by waivers a binding can express exactly."""
    out = copy.deepcopy(docs)
    missed: list[NotCarried] = []
    for w in waivers:
        keys = set(w.match) - {"pack"}
        exact = all(not v.endswith("*") for k, v in w.match.items() if k != "pack")
        targets = _policies_for(w, out, ("ValidatingAdmissionPolicyBinding",))
        if keys == {"namespace"} and exact:
            for b in targets:
                mr = b["spec"].setdefault("matchResources", {})
                sel = mr.setdefault("namespaceSelector", {"matchExpressions": []})
                sel["matchExpressions"].append(
                    {"key": META_NAME_LABEL, "operator": "NotIn", "values": [w.match["namespace"]]}
                )
            continue
        if keys <= {"name", "kind"} and "name" in keys and exact:
            kinds = [w.match["kind"]] if "kind" in w.match else list(rule_kinds.get(w.rule, []))
            infos = [lookup(k) for k in kinds]
            if kinds and all(i is not None for i in infos):
                for b in targets:
                    mr = b["spec"].setdefault("matchResources", {})
                    mr.setdefault("excludeResourceRules", []).extend(
                        {
                            "apiGroups": [i.group],
                            "apiVersions": ["*"],
                            "resources": [i.resource],
                            "resourceNames": [w.match["name"]],
                            "operations": list(OPERATIONS),
                        }
                        for i in infos
                        if i is not None
                    )
                continue
        missed.append(
            NotCarried(
                w,
                "vap",
                "a binding can exclude exact namespaces, or exact names of known kinds, "
                "not other combinations or prefixes",
            )
        )
    return out, missed
