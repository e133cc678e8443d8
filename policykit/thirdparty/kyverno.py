"""Kyverno policies as they are written in the wild, evaluated locally:
``ClusterPolicy``/``Policy`` rules with ``validate.cel`` and the CEL-first
``ValidatingPolicy`` (``policies.kyverno.io`` v1alpha1, v1beta1, v1), with
Kyverno's match/exclude semantics and its automatic rules for Pod
controllers, generated the way Kyverno generates them:

* ClusterPolicy (``pkg/autogen/v1``): a rule matching ``Pod`` (and no other
  kind, no names, selector or annotations in any rule) gets
  ``autogen-<rule>`` for DaemonSet, Deployment, Job, StatefulSet, ReplicaSet
  and ReplicationController and ``autogen-cronjob-<rule>`` for CronJob
  (narrowed by the ``pod-policies.kyverno.io/autogen-controllers``
  annotation; ``none`` turns it off). The rule's JSON is rewritten
  ``object.spec`` → ``object.spec.template.spec`` and ``object.metadata`` →
  ``object.spec.template.metadata`` (CronJob: under
  ``spec.jobTemplate.spec.template``), as Kyverno does on bytes.
* ValidatingPolicy (``pkg/cel/autogen``): a policy whose only resource rule
  is ``""/v1/pods`` (no selectors, no exclusions, no names) gets one
  generated spec for deployments, daemonsets, replicasets, statefulsets and
  jobs and one for cronjobs (``spec.autogen.podControllers.controllers``
  narrows them). The rewrite spares ``….metadata.name`` and
  ``….metadata.namespace``.

Classic ``validate`` rules (pattern, anyPattern, deny, foreach, with context
entries, preconditions and ``{{ }}`` variables) run in
:mod:`policykit.thirdparty.kyverno_classic`. Anything else — podSecurity,
mutation, generation, image verification, context entries and JMESPath
preconditions on CEL rules, CEL libraries that reach outside the object
(``http``, ``resource``, ``globalContext``, image metadata) — raises
:class:`Unsupported`: the caller reports it as skipped, never as a pass.
"""

from __future__ import annotations

import copy
import datetime as dt
import fnmatch
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from policykit.engines.admission import (
    bind_variables,
    constraints_match,
    exception_applies,
    failed_validations,
    label_selector_matches,
    request_for,
)
from policykit.engines.cel import CelEvalError, Lookups, program, using_lookups
from policykit.engines.gatekeeper import Unsupported
from policykit.targets.k8s.kinds import for_object
from policykit.thirdparty import celcompat, kyverno_classic

Status = Literal["pass", "fail", "skip", "error", "unsupported"]

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
_OUTSIDE_CEL = (
    (re.compile(r"\bhttp\.(?:Get|Post|Client)\b"), "the http CEL library"),
    (re.compile(r"\bresource\.(?:Get|List|Post)\b"), "the resource CEL library"),
    (re.compile(r"\bglobalContext\.Get\b"), "globalContext"),
    (re.compile(r"\bimage\.GetMetadata\b"), "image metadata lookups"),
    (re.compile(r"\bimagedata\."), "the imagedata library"),
)
_CONTEXT_BACKED = ("the resource CEL library", "image metadata lookups")
_VPOL_KINDS = ("ValidatingPolicy", "NamespacedValidatingPolicy")
_LEGACY_KINDS = ("ClusterPolicy", "Policy")


@dataclass(frozen=True, slots=True)
class Outcome:
    """One rule's result for one resource, as ``kyverno test`` reports it."""

    policy: str
    rule: str
    status: Status
    message: str = ""
    action: str = "Audit"  # Enforce | Audit (ValidatingPolicy: Deny | Audit | Warn)
    # False when the rule does not apply to the resource at all: Kyverno's engine
    # then gives no rule response (a rule that applies and skips gives one)
    applied: bool = True


@dataclass(slots=True)
class Context:
    """What the CLI gets besides the resource: operation, namespace labels
    (from the values file), the requesting user and parameter resources."""

    operation: str = "CREATE"
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    username: str = "policykit-local"
    groups: tuple[str, ...] = ("system:authenticated",)
    roles: tuple[str, ...] = ()
    cluster_roles: tuple[str, ...] = ()
    params: Sequence[Mapping[str, Any]] = ()
    exceptions: Sequence[Mapping[str, Any]] = ()
    old_object: Mapping[str, Any] | None = None
    now: dt.datetime | None = None
    # Namespace objects from the values file's ``namespaces`` (they win over
    # ``namespaceSelector`` labels, cmd/cli/kubectl-kyverno/variables/variables.go)
    namespaces: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # what resource.Get/List and image.GetMetadata read (a kyverno-test's
    # ``context:`` file); None: those libraries are not run
    lookups: Lookups | None = None
    values: Mapping[str, Any] = field(default_factory=dict)  # the kyverno-test values file


def is_policy(obj: Mapping[str, Any]) -> bool:
    api = str(obj.get("apiVersion", ""))
    kind = obj.get("kind")
    return (api.startswith("kyverno.io/") and kind in _LEGACY_KINDS) or (
        api.startswith("policies.kyverno.io/")
        and kind
        in (
            *_VPOL_KINDS,
            "MutatingPolicy",
            "GeneratingPolicy",
            "ImageValidatingPolicy",
            "DeletingPolicy",
            "NamespacedMutatingPolicy",
            "NamespacedImageValidatingPolicy",
            "NamespacedDeletingPolicy",
        )
    )


def policy_name(policy: Mapping[str, Any]) -> str:
    meta = policy.get("metadata") or {}
    name = str(meta.get("name", ""))
    if policy.get("kind") in ("Policy", "NamespacedValidatingPolicy") and meta.get("namespace"):
        return f"{meta['namespace']}/{name}"
    return name


# --- matching ---------------------------------------------------------------


def _wild(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


def _kind_matches(spec: str, obj: Mapping[str, Any]) -> bool:
    """``Kind``, ``version/Kind``, ``group/version/Kind`` (wildcards allowed);
    a subresource (``Pod/status``) never matches the resource itself."""
    parts = spec.split("/")
    api = str(obj.get("apiVersion", ""))
    group, _, version = api.rpartition("/")
    kind = str(obj.get("kind", ""))
    if len(parts) >= 2 and parts[-1][:1].islower() and parts[-2][:1].isupper():
        return False  # Kind/subresource
    if len(parts) == 1:
        return _wild(parts[0], kind)
    if len(parts) == 2:
        return _wild(parts[0], version) and _wild(parts[1], kind)
    return _wild(parts[0], group) and _wild(parts[1], version) and _wild(parts[2], kind)


def _namespace(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    if obj.get("kind") == "Namespace":
        return str(meta.get("name", ""))
    return str(meta.get("namespace", "") or "")


def _description_matches(rd: Mapping[str, Any], obj: Mapping[str, Any], ctx: Context) -> bool:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    kinds = rd.get("kinds") or []
    if kinds and not any(_kind_matches(str(k), obj) for k in kinds):
        return False
    names = list(rd.get("names") or []) + ([rd["name"]] if rd.get("name") else [])
    if names and not any(_wild(str(n), str(meta.get("name", ""))) for n in names):
        return False
    if rd.get("namespaces") and not any(_wild(str(n), _namespace(obj)) for n in rd["namespaces"]):
        return False
    if rd.get("operations") and ctx.operation not in rd["operations"]:
        return False
    annotations = meta.get("annotations") or {}
    for k, v in (rd.get("annotations") or {}).items():
        if k not in annotations or not _wild(str(v), str(annotations[k])):
            return False
    if rd.get("selector") is not None and not label_selector_matches(
        rd["selector"], meta.get("labels") or {}
    ):
        return False
    if rd.get("namespaceSelector") is not None:
        info = for_object(dict(obj))
        if info is None or info.namespaced or obj.get("kind") == "Namespace":
            labels = ctx.namespace_labels.get(_namespace(obj), {})
            if obj.get("kind") == "Namespace":
                labels = {**labels, **(meta.get("labels") or {})}
            if not label_selector_matches(rd["namespaceSelector"], labels):
                return False
    return True


def _user_matches(f: Mapping[str, Any], ctx: Context) -> bool:
    if f.get("roles") and not set(f["roles"]) & set(ctx.roles):
        return False
    if f.get("clusterRoles") and not set(f["clusterRoles"]) & set(ctx.cluster_roles):
        return False
    subjects = f.get("subjects") or []
    if not subjects:
        return True
    for s in subjects:
        kind, name = s.get("kind"), str(s.get("name", ""))
        if kind == "User" and _wild(name, ctx.username):
            return True
        if kind == "Group" and any(_wild(name, g) for g in ctx.groups):
            return True
        if kind == "ServiceAccount" and ctx.username == (
            f"system:serviceaccount:{s.get('namespace', '')}:{name}"
        ):
            return True
    return False


def _filter_matches(f: Mapping[str, Any], obj: Mapping[str, Any], ctx: Context) -> bool:
    rd = f.get("resources")
    if rd is not None and not _description_matches(rd, obj, ctx):
        return False
    return _user_matches(f, ctx)


def matches(block: Mapping[str, Any] | None, obj: Mapping[str, Any], ctx: Context) -> bool:
    """A ``match``/``exclude`` block: ``any`` (one filter), ``all`` (every
    filter) or a single filter at the top."""
    if not block:
        return False
    if block.get("any"):
        return any(_filter_matches(f, obj, ctx) for f in block["any"])
    if block.get("all"):
        return all(_filter_matches(f, obj, ctx) for f in block["all"])
    return _filter_matches(block, obj, ctx)


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


def legacy_rules(policy: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The policy's rules followed by the ones Kyverno generates for Pod controllers."""
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
                gen = kyverno_classic.autogen_rule(gen, prefix)
            out.append(gen)
    return out


# --- ValidatingPolicy autogen ---------------------------------------------------


def _vpol_can_autogen(mc: Mapping[str, Any] | None) -> bool:
    if not mc:
        return False
    for sel in ("namespaceSelector", "objectSelector"):
        s = mc.get(sel) or {}
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
            "resourceRules": [
                {
                    "apiGroups": [g],
                    "apiVersions": [v],
                    "resources": sorted(rs),
                    "operations": list(operations),
                }
                for (g, v), rs in sorted(gvs.items())
            ]
        }
        text = json.dumps(gen)
        for frm, to in _VPOL_REPLACE[ref]:
            text = _vpol_replace(text, "object." + frm, "object." + to)
            text = _vpol_replace(text, "oldObject." + frm, "oldObject." + to)
        out.append((f"autogen-{ref}", json.loads(text)))
    return out


# --- evaluation -------------------------------------------------------------------


def _refuse_outside(texts: Sequence[str], where: str, ctx: Context | None = None) -> None:
    for text in texts:
        for pattern, what in _OUTSIDE_CEL:
            if ctx is not None and ctx.lookups is not None and what in _CONTEXT_BACKED:
                continue  # backed by the test's context file
            if pattern.search(text):
                raise Unsupported(f"{where} uses {what}")


def _cel_texts(node: Any) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("expression", "messageExpression", "valueExpression") and isinstance(v, str):
                out.append(v)
            else:
                out += _cel_texts(v)
    elif isinstance(node, list):
        for v in node:
            out += _cel_texts(v)
    return out


def _unsupported_rule(rule: Mapping[str, Any]) -> str | None:
    if rule.get("mutate"):
        return "mutation"
    if rule.get("generate"):
        return "generation"
    if rule.get("verifyImages"):
        return "image verification"
    validate = rule.get("validate")
    if not validate:
        return "a rule without validate"
    if kyverno_classic.is_classic(validate):
        return None
    if validate.get("cel") is None:
        for key, what in (
            ("pattern", "pattern"),
            ("anyPattern", "anyPattern"),
            ("deny", "deny"),
            ("foreach", "foreach"),
            ("podSecurity", "podSecurity"),
            ("manifests", "manifest verification"),
            ("assert", "assert"),
        ):
            if key in validate:
                return f"Kyverno {what} rules"
        return "a validate rule without cel"
    if rule.get("context"):
        return "context entries (apiCall, configMap, globalReference)"
    if rule.get("preconditions"):
        return "JMESPath preconditions"
    return None


def _params_for(spec: Mapping[str, Any], ctx: Context) -> Any:
    kind = spec.get("paramKind")
    ref = spec.get("paramRef")
    if not kind or not ref:
        return None
    for p in ctx.params:
        if p.get("kind") != kind.get("kind") or p.get("apiVersion") != kind.get("apiVersion"):
            continue
        meta = p.get("metadata") or {}
        if ref.get("name") and meta.get("name") != ref["name"]:
            continue
        if ref.get("namespace") and meta.get("namespace") != ref["namespace"]:
            continue
        if ref.get("selector") is not None and not label_selector_matches(
            ref["selector"], meta.get("labels") or {}
        ):
            continue
        return p
    if ref.get("parameterNotFoundAction") == "Allow":
        return None
    raise CelEvalError(f"no parameter resource {kind.get('kind')} {ref.get('name', '')!r}")


def _data(obj: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    request = request_for(obj, ctx.operation)
    request["userInfo"] = {"username": ctx.username, "groups": list(ctx.groups)}
    ns = _namespace(obj)
    ns_obj = (
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, "labels": ctx.namespace_labels.get(ns, {})},
        }
        if ns and obj.get("kind") != "Namespace"
        else None
    )
    return {
        "object": obj if ctx.operation != "DELETE" else None,
        "oldObject": ctx.old_object if ctx.operation != "DELETE" else obj,
        "request": request,
        "namespaceObject": ns_obj,
    }


def _legacy_exception(policy: str, rule: str, obj: Mapping[str, Any], ctx: Context) -> bool:
    for exc in ctx.exceptions:
        if not str(exc.get("apiVersion", "")).startswith("kyverno.io/"):
            continue
        spec = exc.get("spec") or {}
        named = any(
            e.get("policyName") == policy and rule in (e.get("ruleNames") or [])
            for e in spec.get("exceptions") or []
        )
        if named and matches(spec.get("match"), obj, ctx):
            return True
    return False


def evaluate_legacy(
    policy: Mapping[str, Any], obj: Mapping[str, Any], ctx: Context
) -> list[Outcome]:
    """Every rule (with the autogen ones) of a ClusterPolicy/Policy on one resource.
    A rule policykit cannot run raises :class:`Unsupported` only when it would
    apply to the resource."""
    name = policy_name(policy)
    spec = policy.get("spec") or {}
    default_action = str(spec.get("validationFailureAction") or "Audit").capitalize()
    out: list[Outcome] = []
    for rule in legacy_rules(policy):
        rname = str(rule.get("name", ""))
        if not matches(rule.get("match"), obj, ctx) or matches(rule.get("exclude"), obj, ctx):
            out.append(Outcome(name, rname, "skip", applied=False))
            continue
        try:
            out.append(_legacy_rule(name, rule, default_action, obj, ctx))
        except Unsupported as exc:
            out.append(Outcome(name, rname, "unsupported", exc.message))
    return out


def _legacy_rule(
    name: str, rule: Mapping[str, Any], default_action: str, obj: Mapping[str, Any], ctx: Context
) -> Outcome:
    rname = str(rule.get("name", ""))
    why = _unsupported_rule(rule)
    if why is not None:
        raise Unsupported(f"rule {rname} of {name} uses {why}")
    validate = rule["validate"]
    action = str(validate.get("failureAction") or default_action).capitalize()
    if kyverno_classic.is_classic(validate):
        if _legacy_exception(name.rpartition("/")[2], rname, obj, ctx):
            return Outcome(name, rname, "skip", "a PolicyException applies", action)
        got, message = kyverno_classic.evaluate_rule(
            name.rpartition("/")[2], rule, obj, ctx, action
        )
        return Outcome(name, rname, got, message, action)  # type: ignore[arg-type]
    _refuse_outside(_cel_texts(rule), f"rule {rname} of {name}", ctx)
    if _legacy_exception(name.rpartition("/")[2], rname, obj, ctx):
        return Outcome(name, rname, "skip", "a PolicyException applies", action)
    return _legacy_cel(name, rule, action, obj, ctx)


def _cel_error(expression: str, exc: CelEvalError) -> str:
    """The API server's text for an expression that errors
    (k8s.io/apiserver/pkg/admission/plugin/cel/filter.go)."""
    detail = exc.message.removeprefix("CEL evaluation error: ")
    detail = detail.removesuffix(f" in {expression[:120]}")
    return f"expression '{expression}' resulted in error: {detail}"


def _legacy_cel(
    name: str, rule: Mapping[str, Any], action: str, obj: Mapping[str, Any], ctx: Context
) -> Outcome:
    """A ``validate.cel`` rule as Kyverno runs it (pkg/engine/handlers/validation/
    validate_cel.go): the API server's validator with no failure policy, so Fail —
    an expression (precondition, validation) that errors denies with its error
    as the message, the first denying validation gives the message, a validation
    without a message takes the rule's ``validate.message``; offline the
    namespace object is ``{metadata: {name: <namespace>}}``."""
    rname = str(rule.get("name", ""))
    validate = rule["validate"]
    cel = validate["cel"] or {}
    data = _data(obj, ctx)
    ns = _namespace(obj)
    data["namespaceObject"] = (
        {"metadata": {"name": ns}} if ns and obj.get("kind") != "Namespace" else None
    )
    try:
        data["params"] = _params_for(cel, ctx)
    except CelEvalError as exc:  # "error in parameterized resource": a rule error
        return Outcome(name, rname, "error", exc.message, action)
    with using_lookups(ctx.lookups):
        for cond in rule.get("celPreconditions") or []:
            expression = str(cond.get("expression", ""))
            try:
                if program(expression).eval(data) is not True:
                    return Outcome(name, rname, "skip", "cel preconditions not met", action)
            except CelEvalError as exc:
                _unknown_library(exc, f"rule {rname} of {name}")
                return Outcome(name, rname, "fail", _cel_error(expression, exc), action)
        bind_variables(cel.get("variables") or [], data)
        for v in cel.get("expressions") or []:
            expression = str(v.get("expression", ""))
            with_message = {**v, "message": v.get("message") or validate.get("message") or ""}
            try:
                failed = failed_validations([with_message], data)
            except CelEvalError as exc:
                _unknown_library(exc, f"rule {rname} of {name}")
                return Outcome(name, rname, "fail", _cel_error(expression, exc), action)
            if failed:
                return Outcome(name, rname, "fail", failed[0], action)
    return Outcome(name, rname, "pass", "", action)


def _unknown_library(exc: CelEvalError, where: str) -> None:
    text = exc.message
    if "undeclared reference" in text or "no matching overload" in text.lower():
        raise Unsupported(f"{where} uses a CEL function policykit does not provide ({text[:120]})")


def _vpol_exception(policy: str, data: Mapping[str, Any], ctx: Context) -> str | None:
    """The result a PolicyException gives (its ``reportResult``), or None."""
    moment = ctx.now or dt.datetime.now(dt.UTC)
    for exc in ctx.exceptions:
        if str(exc.get("apiVersion", "")).startswith("policies.kyverno.io/") and (
            exception_applies(exc, policy, data, moment, _VPOL_KINDS)
        ):
            return "pass" if (exc.get("spec") or {}).get("reportResult") == "pass" else "skip"
    return None


def evaluate_vpol(policy: Mapping[str, Any], obj: Mapping[str, Any], ctx: Context) -> list[Outcome]:
    """A ValidatingPolicy (or its autogen spec) on one resource: ``skip`` when
    it does not match, ``pass``/``fail`` from its validations, ``error`` when
    an expression fails to evaluate."""
    name = policy_name(policy)
    kind = str(policy.get("kind"))
    if kind not in _VPOL_KINDS:
        raise Unsupported(f"{kind} {name} (only ValidatingPolicy is evaluated)")
    spec = policy.get("spec") or {}
    mode = (spec.get("evaluation") or {}).get("mode", "Kubernetes")
    if mode != "Kubernetes":
        raise Unsupported(f"ValidatingPolicy {name} uses evaluation mode {mode}")
    actions = tuple(spec.get("validationActions") or ["Deny"])
    action = "Enforce" if "Deny" in actions else "Audit"
    ns_labels = ctx.namespace_labels.get(_namespace(obj), {})
    for rule, sp in vpol_specs(policy):
        ns_meta = {"kubernetes.io/metadata.name": _namespace(obj), **ns_labels}
        if not constraints_match(sp.get("matchConstraints") or {}, obj, ctx.operation, ns_meta):
            continue
        _refuse_outside(_cel_texts(sp), f"ValidatingPolicy {name}", ctx)
        sp = _cel_go_compat(sp)
        data = _data(obj, ctx)
        ns_object = ctx.namespaces.get(_namespace(obj))
        if ns_object is not None and obj.get("kind") != "Namespace":
            data["namespaceObject"] = ns_object
        try:
            with using_lookups(ctx.lookups):
                if not all(
                    program(str(c["expression"])).eval(data) is True
                    for c in sp.get("matchConditions") or []
                ):
                    return [Outcome(name, rule, "skip", "matchConditions not met", action)]
                held = _vpol_exception(name.rpartition("/")[2], data, ctx)
                if held is not None:
                    return [Outcome(name, rule, held, "a PolicyException applies", action)]  # type: ignore[arg-type]
                bind_variables(sp.get("variables") or [], data)
                failed = failed_validations(sp.get("validations") or [], data)
        except CelEvalError as exc:
            _unknown_library(exc, f"ValidatingPolicy {name}")
            return [Outcome(name, rule, "error", exc.message, action)]
        return [Outcome(name, rule, "fail" if failed else "pass", "; ".join(failed), action)]
    return [Outcome(name, "", "skip", "", action)]


_CEL_KEYS = ("expression", "messageExpression", "valueExpression")


@lru_cache(maxsize=8192)
def _compat_expression(source: str) -> str:
    """``source`` with cel-go's behaviours spelled out (thirdparty/celcompat.py),
    or as written when the rewrite does not compile."""
    rewritten = celcompat.rewrite(source)
    if rewritten == source:
        return source
    try:
        program(rewritten)
    except CelEvalError:
        return source
    return rewritten


def _cel_go_compat(node: Any) -> Any:
    """A ValidatingPolicy spec with every CEL expression through
    :func:`_compat_expression` (Kyverno compiles them with cel-go and its
    ``orValue`` compatibility, pkg/cel/compiler/env.go)."""
    if isinstance(node, dict):
        return {
            k: _compat_expression(v) if k in _CEL_KEYS and isinstance(v, str) else _cel_go_compat(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_cel_go_compat(v) for v in node]
    return node


def evaluate(policy: Mapping[str, Any], obj: Mapping[str, Any], ctx: Context) -> list[Outcome]:
    """Outcomes of every rule of a Kyverno policy on one resource; what
    policykit cannot run is an ``unsupported`` outcome naming the feature."""
    if policy.get("kind") in _LEGACY_KINDS:
        return evaluate_legacy(policy, obj, ctx)
    try:
        return evaluate_vpol(policy, obj, ctx)
    except Unsupported as exc:
        return [Outcome(policy_name(policy), "", "unsupported", exc.message)]
