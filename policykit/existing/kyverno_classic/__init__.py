"""Classic Kyverno ``validate`` rules — ``pattern``, ``anyPattern``,
``deny.conditions`` and ``foreach`` with ``context``, ``preconditions`` and
JMESPath ``{{ }}`` variables — evaluated as the Kyverno CLI evaluates them
(``kyverno test``). The modules follow Kyverno's source file by file:

* :mod:`.pattern` — ``pkg/engine/validate``, ``pkg/engine/anchor``,
  ``pkg/engine/pattern``, ``pkg/engine/operator``, ``pkg/engine/wildcards``
* :mod:`.conditions` — ``pkg/engine/variables/operator``
* :mod:`.jmespath_fns` — ``pkg/engine/jmespath`` and ``kyverno/go-jmespath``
* :mod:`.engine` — ``pkg/engine/handlers/validation/validate_resource.go``,
  ``pkg/engine/variables/vars.go`` and the CLI's context
  (``cmd/cli/kubectl-kyverno``)

Anything out of reach raises :class:`~policykit.k8s.errors.Unsupported`
naming the feature; the caller reports it as skipped, never as a pass.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from policykit.existing.kyverno_classic.engine import Env, add_variable, validate
from policykit.k8s.errors import Unsupported

__all__ = ["Unsupported", "autogen_rule", "evaluate_rule", "is_classic", "request_context"]

_CLASSIC_KEYS = ("pattern", "anyPattern", "deny", "foreach")

# pkg/autogen/v1/rule.go podReplacementRules / cronJobReplacementRules
_POD = (
    ("request.object.spec", "request.object.spec.template.spec"),
    ("request.oldObject.spec", "request.oldObject.spec.template.spec"),
    ("request.object.metadata", "request.object.spec.template.metadata"),
    ("request.oldObject.metadata", "request.oldObject.spec.template.metadata"),
)
_CRON = (
    ("request.object.spec", "request.object.spec.jobTemplate.spec.template.spec"),
    ("request.oldObject.spec", "request.oldObject.spec.jobTemplate.spec.template.spec"),
    ("request.object.metadata", "request.object.spec.jobTemplate.spec.template.metadata"),
    ("request.oldObject.metadata", "request.oldObject.spec.jobTemplate.spec.template.metadata"),
)


def is_classic(validate_block: Mapping[str, Any]) -> bool:
    return validate_block.get("cel") is None and any(k in validate_block for k in _CLASSIC_KEYS)


def autogen_rule(gen: dict[str, Any], prefix: str) -> dict[str, Any]:
    """A generated rule's validate block as ``pkg/autogen/v1/rule.go``
    ``generateRule`` rewrites it (pattern and anyPattern wrapped in
    ``spec.template`` — for CronJob ``spec.jobTemplate.spec.template`` —,
    deny and foreach kept), then the JSON text rewrite of ``convertRule``."""
    v = gen.get("validate") or {}
    if not is_classic(v):
        return gen
    keep = {
        k: v[k]
        for k in ("message", "failureAction", "failureActionOverrides", "allowExistingViolations")
        if k in v
    }

    def wrap(p: Any) -> Any:
        inner = {"spec": {"template": p}}
        return {"spec": {"jobTemplate": inner}} if prefix == "autogen-cronjob" else inner

    if v.get("pattern") is not None:
        keep["pattern"] = wrap(v["pattern"])
    elif v.get("deny") is not None:
        keep["deny"] = v["deny"]
    elif v.get("anyPattern") is not None:
        keep["anyPattern"] = [wrap(p) for p in v["anyPattern"] or []]
    elif v.get("foreach") is not None:
        keep["foreach"] = v["foreach"]
    out = dict(gen)
    out["validate"] = keep
    text = json.dumps(out)
    for a, b in _CRON if prefix == "autogen-cronjob" else _POD:
        text = text.replace(a, b)
    result: dict[str, Any] = json.loads(text)
    return result


def _values_for(values: Mapping[str, Any], policy: str, resource: str) -> dict[str, Any]:
    """variables.go ComputeVariables: globalValues, then the resource's values."""
    out: dict[str, Any] = dict(values.get("globalValues") or {})
    for p in values.get("policies") or []:
        if p.get("name") != policy:
            continue
        for r in p.get("resources") or []:
            if r.get("name") == resource:
                out.update(r.get("values") or {})
    return out


def _rule_values(values: Mapping[str, Any], policy: str, rule: str) -> dict[str, Any]:
    for p in values.get("policies") or []:
        if p.get("name") != policy:
            continue
        for r in p.get("rules") or []:
            if r.get("name") == rule:
                if r.get("foreachValues"):
                    raise Unsupported("foreachValues in the values file")
                return dict(r.get("values") or {})
    return {}


def request_context(
    policy_name: str,
    obj: Mapping[str, Any],
    operation: str,
    *,
    username: str = "",
    groups: tuple[str, ...] = (),
    roles: tuple[str, ...] = (),
    cluster_roles: tuple[str, ...] = (),
    old_object: Mapping[str, Any] | None = None,
    values: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON context the CLI builds for one resource (policy_processor.go
    makePolicyContext, policycontext.NewPolicyContext)."""
    meta = obj.get("metadata") or {}
    resource_values = _values_for(values or {}, policy_name, str(meta.get("name", "")))
    resource_values.setdefault("request.operation", operation)
    op = str(resource_values["request.operation"])
    request: dict[str, Any] = {
        "operation": op,
        "namespace": str(meta.get("namespace", "") or ""),
        "userInfo": {"username": username, "groups": list(groups)},
        "roles": list(roles),
        "clusterRoles": list(cluster_roles),
    }
    if op != "DELETE":
        request["object"] = copy.deepcopy(dict(obj))
    if op in ("UPDATE", "DELETE"):
        request["oldObject"] = copy.deepcopy(dict(old_object if old_object is not None else obj))
    sa_name = sa_ns = ""
    prefix = "system:serviceaccount:"
    if username.startswith(prefix) and len(username) > len(prefix):
        parts = username[len(prefix) :].split(":")
        if len(parts) >= 2:
            sa_ns, sa_name = parts[0], parts[1]
    data: dict[str, Any] = {
        "request": request,
        "serviceAccountName": sa_name,
        "serviceAccountNamespace": sa_ns,
    }
    for key, value in resource_values.items():
        add_variable(data, str(key), value)
    return data


def evaluate_rule(
    pname: str,
    rule: Mapping[str, Any],
    obj: Mapping[str, Any],
    ctx: Any,
    action: str,
) -> tuple[str, str]:
    """One matched ClusterPolicy/Policy rule on one resource: ``(status,
    message)`` with status pass, fail, skip or error. ``ctx`` is a
    :class:`policykit.k8s.request.Context`."""
    values: Mapping[str, Any] = getattr(ctx, "values", None) or {}
    if values.get("apiCallResponses") and any(
        e.get("apiCall") is not None for e in _all_entries(rule)
    ):
        raise Unsupported("apiCallResponses mocks in the values file")
    data = request_context(
        pname,
        obj,
        ctx.operation,
        username=ctx.username,
        groups=tuple(ctx.groups),
        roles=tuple(ctx.roles),
        cluster_roles=tuple(ctx.cluster_roles),
        old_object=ctx.old_object,
        values=values,
    )
    initial = copy.deepcopy(data)
    moment: dt.datetime | None = ctx.now
    env = Env(
        data=data,
        rule=rule,
        rule_values=_rule_values(values, pname, str(rule.get("name", ""))),
        delete=data["request"]["operation"] == "DELETE",
        now=(lambda: moment) if moment is not None else None,
    )
    spec = dict(rule.get("validate") or {})
    spec["preconditions"] = rule.get("preconditions")
    got = validate(env, spec, 0, rule.get("context"))
    if got is None:
        return "skip", "no rule response"
    status, message = got
    allow_existing = (rule.get("validate") or {}).get("allowExistingViolations", True)
    old = initial["request"].get("oldObject")
    if (
        status == "fail"
        and action == "Enforce"
        and initial["request"]["operation"] == "UPDATE"
        and allow_existing is not False
        and isinstance(old, dict)
    ):
        # validate_resource.go validateOldObject: the old object validated as
        # a CREATE; a violation it already had is not reported again
        initial["request"].update({"operation": "CREATE", "object": old, "oldObject": {}})
        prior = validate(
            replace(env, data=initial, failed={}, element=None), spec, 0, rule.get("context")
        )
        if prior is not None and prior[0] == "fail":
            return "skip", "skipping the rule evaluation as pre-existing violations are allowed"
    return status, message


def _all_entries(rule: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    out = list(rule.get("context") or [])

    def walk(fes: Any) -> None:
        for fe in fes or []:
            out.extend(fe.get("context") or [])
            walk(fe.get("foreach"))

    walk((rule.get("validate") or {}).get("foreach"))
    return out
