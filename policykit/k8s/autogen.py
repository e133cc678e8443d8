"""Kyverno's automatic rules for Pod controllers, generated the way Kyverno
generates them:

* ClusterPolicy (``pkg/autogen/v1``): a rule matching ``Pod`` (and no other
  kind, no names, selector or annotations in any rule) gets
  ``autogen-<rule>`` for DaemonSet, Deployment, Job, StatefulSet, ReplicaSet
  and ReplicationController and ``autogen-cronjob-<rule>`` for CronJob
  (narrowed by the ``pod-policies.kyverno.io/autogen-controllers``
  annotation; ``none`` turns it off). The rule's JSON is rewritten
  ``object.spec`` -> ``object.spec.template.spec`` and ``object.metadata`` ->
  ``object.spec.template.metadata`` (CronJob: under
  ``spec.jobTemplate.spec.template``), as Kyverno does on bytes.
* ValidatingPolicy (``pkg/cel/policies/vpol/autogen/autogen.go`` with
  ``pkg/cel/autogen``: ``CanAutoGen``, ``CreateMatchConstraints``): a policy
  whose only resource rule is ``""/v1/pods`` (no object selector, no
  exclusions, no names) gets one generated spec for deployments, daemonsets,
  replicasets, statefulsets and jobs and one for cronjobs
  (``spec.autogen.podControllers.controllers`` narrows them; ``[]`` turns it
  off). The generated match constraints keep the namespace selector and the
  operations; the rewrite spares ``....metadata.name`` and
  ``....metadata.namespace``. Kyverno's provider
  (``pkg/cel/policies/vpol/engine/provider.go``) compiles each generated spec
  with the policy's own PolicyExceptions.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

AUTOGEN_ANNOTATION = "pod-policies.kyverno.io/autogen-controllers"
POD_CONTROLLERS = (
    "DaemonSet",
    "Deployment",
    "Job",
    "StatefulSet",
    "ReplicaSet",
    "ReplicationController",
)
_CEL_POD = (
    ("object.spec", "object.spec.template.spec"),
    ("oldObject.spec", "oldObject.spec.template.spec"),
    ("object.metadata", "object.spec.template.metadata"),
    ("oldObject.metadata", "oldObject.spec.template.metadata"),
)
_CEL_CRON = (
    ("object.spec", "object.spec.jobTemplate.spec.template.spec"),
    ("oldObject.spec", "oldObject.spec.jobTemplate.spec.template.spec"),
    ("object.metadata", "object.spec.jobTemplate.spec.template.metadata"),
    ("oldObject.metadata", "oldObject.spec.jobTemplate.spec.template.metadata"),
)
# ValidatingPolicy autogen: config -> (group, version, resource, kind, replacements)
_VPOL_TARGETS = {
    "daemonsets": ("apps", "v1", "daemonsets", "DaemonSet", "defaults"),
    "deployments": ("apps", "v1", "deployments", "Deployment", "defaults"),
    "replicasets": ("apps", "v1", "replicasets", "ReplicaSet", "defaults"),
    "statefulsets": ("apps", "v1", "statefulsets", "StatefulSet", "defaults"),
    "jobs": ("batch", "v1", "jobs", "Job", "defaults"),
    "cronjobs": ("batch", "v1", "cronjobs", "CronJob", "cronjobs"),
}
_VPOL_REPLACE = {
    "defaults": (("spec", "spec.template.spec"), ("metadata", "spec.template.metadata")),
    "cronjobs": (
        ("spec", "spec.jobTemplate.spec.template.spec"),
        ("metadata", "spec.jobTemplate.spec.template.metadata"),
    ),
}
_PROTECTED = re.compile(r"\.(?:namespace|name)(?![A-Za-z0-9_])")

# --- ClusterPolicy autogen ----------------------------------------------------


def _kinds_of(block: Mapping[str, Any] | None) -> list[str]:
    if not block:
        return []
    out: list[str] = []
    for f in [block, *(block.get("any") or []), *(block.get("all") or [])]:
        out += [str(k).split("/")[-1] for k in (f.get("resources") or {}).get("kinds") or []]
    return out


def _autogen_allowed(spec: Mapping[str, Any]) -> bool:
    needed = False
    for rule in spec.get("rules") or []:
        if rule.get("generate"):
            return False
        mutate = rule.get("mutate") or {}
        if mutate.get("patchesJson6902") or any(
            fe.get("patchesJson6902") for fe in mutate.get("foreach") or []
        ):
            return False
        for block in (rule.get("match"), rule.get("exclude")):
            if not block:
                continue
            for f in [block, *(block.get("any") or []), *(block.get("all") or [])]:
                rd = f.get("resources") or {}
                kinds = [str(k).split("/")[-1] for k in rd.get("kinds") or []]
                if rd.get("name") or rd.get("names") or rd.get("selector") is not None:
                    return False
                if rd.get("annotations") is not None or (len(kinds) > 1 and "Pod" in kinds):
                    return False
                needed = needed or bool(set(kinds) & {"Pod", *POD_CONTROLLERS, "CronJob"})
    return needed


def _rewrite(rule: Mapping[str, Any], pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    text = json.dumps(rule)
    for a, b in pairs:
        text = text.replace(a, b)
    out: dict[str, Any] = json.loads(text)
    return out


def _with_kinds(src: Mapping[str, Any], kinds: list[str], only_pod: bool) -> dict[str, Any]:
    block: dict[str, Any] = copy.deepcopy(dict(src))
    for key in ("any", "all"):
        if block.get(key):
            for f in block[key]:
                rd = f.get("resources") or {}
                if not only_pod or "Pod" in [str(k).split("/")[-1] for k in rd.get("kinds") or []]:
                    f.setdefault("resources", {})["kinds"] = list(kinds)
            return block
    block.setdefault("resources", {})["kinds"] = list(kinds)
    return block


def _controllers(policy: Mapping[str, Any]) -> list[str] | None:
    ann = ((policy.get("metadata") or {}).get("annotations") or {}).get(AUTOGEN_ANNOTATION)
    if ann is None or ann == "":
        return [*POD_CONTROLLERS, "CronJob"]
    if ann == "none":
        return None
    if ann == "all":
        return [*POD_CONTROLLERS, "CronJob"]
    return [c.strip() for c in str(ann).split(",")]


def legacy_rules(
    policy: Mapping[str, Any], rewrite_classic: Callable[[dict[str, Any], str], dict[str, Any]]
) -> list[dict[str, Any]]:
    """The policy's rules followed by the ones Kyverno generates for Pod
    controllers. A ``validate.cel`` rule is rewritten on its JSON text; a
    classic one (pattern, deny, foreach) by ``rewrite_classic(rule, prefix)``."""
    spec = policy.get("spec") or {}
    rules = [dict(r) for r in spec.get("rules") or []]
    controllers = _controllers(policy)
    if controllers is None or not _autogen_allowed(spec):
        return rules
    plain = sorted(c for c in controllers if c in POD_CONTROLLERS)
    out = [r for r in rules if not str(r.get("name", "")).startswith("autogen-")]
    for rule in rules:
        name = str(rule.get("name", ""))
        if name.startswith("autogen-"):
            continue
        match_kinds = _kinds_of(rule.get("match"))
        exclude_kinds = _kinds_of(rule.get("exclude"))
        if "Pod" not in match_kinds or (exclude_kinds and "Pod" not in exclude_kinds):
            continue
        for prefix, kinds, pairs in (
            ("autogen", plain, _CEL_POD),
            ("autogen-cronjob", ["CronJob"] if "CronJob" in controllers else [], _CEL_CRON),
        ):
            if not kinds:
                continue
            gen = copy.deepcopy(rule)
            gen["name"] = f"{prefix}-{name}"[:63]
            gen["match"] = _with_kinds(rule["match"], kinds, prefix == "autogen")
            if rule.get("exclude") and (exclude_kinds or prefix == "autogen"):
                gen["exclude"] = _with_kinds(rule["exclude"], kinds, prefix == "autogen")
            if (gen.get("validate") or {}).get("cel") is not None:
                gen = _rewrite(gen, pairs)
            else:
                gen = rewrite_classic(gen, prefix)
            out.append(gen)
    return out


# --- ValidatingPolicy autogen ---------------------------------------------------


def _vpol_can_autogen(mc: Mapping[str, Any] | None) -> bool:
    if not mc:
        return False
    s = mc.get("objectSelector") or {}
    if s.get("matchLabels") or s.get("matchExpressions"):
        return False
    rules = mc.get("resourceRules") or []
    if mc.get("excludeResourceRules") or len(rules) != 1:
        return False
    r = rules[0]
    return (
        not r.get("resourceNames")
        and r.get("apiGroups") == [""]
        and r.get("apiVersions") == ["v1"]
        and r.get("resources") == ["pods"]
    )


def _vpol_replace(text: str, frm: str, to: str) -> str:
    out: list[str] = []
    pos = 0
    while True:
        i = text.find(frm, pos)
        if i < 0:
            out.append(text[pos:])
            return "".join(out)
        out.append(text[pos:i])
        rest_at = i + len(frm)
        out.append(frm if _PROTECTED.match(text, rest_at) else to)
        pos = rest_at


def vpol_specs(policy: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The policy's spec, then one generated spec per replacement set."""
    spec = dict(policy.get("spec") or {})
    out: list[tuple[str, dict[str, Any]]] = [("", spec)]
    if not _vpol_can_autogen(spec.get("matchConstraints")):
        return out
    auto = ((spec.get("autogen") or {}).get("podControllers") or {}).get("controllers")
    configs = list(_VPOL_TARGETS) if auto is None else [c for c in auto if c in _VPOL_TARGETS]
    groups: dict[str, list[tuple[str, str, str, str]]] = {}
    for c in configs:
        g, v, res, kind, ref = _VPOL_TARGETS[c]
        groups.setdefault(ref, []).append((g, v, res, kind))
    operations = spec["matchConstraints"]["resourceRules"][0].get("operations") or ["*"]
    for ref in sorted(groups):
        gvs: dict[tuple[str, str], set[str]] = {}
        for g, v, res, _ in groups[ref]:
            gvs.setdefault((g, v), set()).add(res)
        gen = copy.deepcopy(spec)
        gen["matchConstraints"] = {
            **(
                {"namespaceSelector": spec["matchConstraints"]["namespaceSelector"]}
                if spec["matchConstraints"].get("namespaceSelector") is not None
                else {}
            ),
            "resourceRules": [
                {
                    "apiGroups": [g],
                    "apiVersions": [v],
                    "resources": sorted(rs),
                    "operations": list(operations),
                }
                for (g, v), rs in sorted(gvs.items())
            ],
        }
        text = json.dumps(gen)
        for frm, to in _VPOL_REPLACE[ref]:
            text = _vpol_replace(text, "object." + frm, "object." + to)
            text = _vpol_replace(text, "oldObject." + frm, "oldObject." + to)
        out.append((f"autogen-{ref}", json.loads(text)))
    return out
