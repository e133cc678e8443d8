"""Local admission: evaluate ValidatingAdmissionPolicy (+ Binding) and Kyverno
ValidatingPolicy manifests over an object as the API server / Kyverno would —
``matchConstraints`` (resource rules, operations, namespace and object
selectors), ``matchConditions``, then each validation, with
``messageExpression`` falling back to ``message`` when it errors or yields an
empty or multi-line string. CEL runs on :mod:`policykit.engines.cel`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policykit.engines.cel import CelEvalError, program
from policykit.targets.k8s.kinds import for_object


@dataclass(frozen=True, slots=True)
class Decision:
    """One failed validation: which policy, its rule, the actions and the text."""

    policy: str
    rule: str
    actions: tuple[str, ...]
    message: str


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, Any]) -> bool:
    """``metav1.LabelSelector`` semantics; an empty or absent selector matches all."""
    if not selector:
        return True
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def request_for(obj: Mapping[str, Any], operation: str = "CREATE") -> dict[str, Any]:
    """An AdmissionRequest for ``obj`` (the ``request`` CEL variable)."""
    api = str(obj.get("apiVersion", ""))
    group, _, version = api.rpartition("/")
    info = for_object(dict(obj))
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    return {
        "operation": operation,
        "kind": {"group": group, "version": version, "kind": obj.get("kind")},
        "resource": {
            "group": group,
            "version": version,
            "resource": info.resource if info else "",
        },
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "userInfo": {"username": "policykit-local", "groups": ["system:authenticated"]},
        "dryRun": False,
    }


def _rule_matches(rule: Mapping[str, Any], obj: Mapping[str, Any], operation: str) -> bool:
    info = for_object(dict(obj))
    if info is None:
        return False
    version = str(obj.get("apiVersion", "")).rpartition("/")[2]

    def has(field: str, value: str) -> bool:
        items = rule.get(field) or []
        return "*" in items or value in items

    scope = rule.get("scope", "*")
    if scope == "Namespaced" and not info.namespaced:
        return False
    if scope == "Cluster" and info.namespaced:
        return False
    names = rule.get("resourceNames") or []
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    return (
        has("apiGroups", info.group)
        and has("apiVersions", version)
        and has("resources", info.resource)
        and has("operations", operation)
        and (not names or meta.get("name") in names)
    )


def constraints_match(
    mc: Mapping[str, Any],
    obj: Mapping[str, Any],
    operation: str,
    namespace_labels: Mapping[str, Any] | None = None,
) -> bool:
    """``matchConstraints`` / ``matchResources`` of VAP and ValidatingPolicy."""
    if not any(_rule_matches(r, obj, operation) for r in mc.get("resourceRules") or []):
        return False
    if any(_rule_matches(r, obj, operation) for r in mc.get("excludeResourceRules") or []):
        return False
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    assert isinstance(labels, dict)
    if not label_selector_matches(mc.get("objectSelector"), labels):
        return False
    ns_sel = mc.get("namespaceSelector")
    info = for_object(dict(obj))
    if namespace_labels is None:  # the API server labels every namespace with its name
        ns = meta.get("namespace")
        namespace_labels = {"kubernetes.io/metadata.name": ns} if isinstance(ns, str) else {}
    return not (
        ns_sel
        and info is not None
        and info.namespaced
        and not label_selector_matches(ns_sel, namespace_labels)
    )


def rule_of(manifest: Mapping[str, Any]) -> str:
    """The policykit rule id a manifest enforces (its ``policykit.io/rule`` annotation)."""
    return str(
        ((manifest.get("metadata") or {}).get("annotations") or {}).get("policykit.io/rule", "")
    )


def bind_variables(
    variables: Sequence[Mapping[str, Any]],
    data: dict[str, Any],
    base: Mapping[str, Any] | None = None,
) -> None:
    """``variables.<name>`` for each declared variable, in order (each may use the
    ones before it). One that fails to evaluate is left out, so an expression
    that uses it errors, as the lazy evaluation in the API server does."""
    bound: dict[str, Any] = dict(base or {})
    data["variables"] = bound
    for var in variables:
        try:
            bound[str(var["name"])] = program(str(var["expression"])).eval(data)
        except CelEvalError:
            continue


def failed_validations(
    validations: Sequence[Mapping[str, Any]], data: Mapping[str, Any]
) -> list[str]:
    """The message of every validation whose expression is not true — the
    ``messageExpression`` when it yields one line of text, else ``message``,
    else the API server's ``failed expression: …``. An expression that errors
    raises :class:`CelEvalError` (failure policy is the caller's business)."""
    out: list[str] = []
    for v in validations:
        if program(v["expression"]).eval(data) is True:
            continue
        message = str(v.get("message") or "") or f"failed expression: {v['expression']}"
        if v.get("messageExpression"):
            try:
                text = program(v["messageExpression"]).eval(data)
            except CelEvalError:
                text = None
            if isinstance(text, str) and text.strip() and "\n" not in text:
                message = text
        out.append(message)
    return out


def _validate(
    name: str,
    rule: str,
    spec: Mapping[str, Any],
    actions: Sequence[str],
    obj: Mapping[str, Any],
    operation: str,
    namespace_object: Mapping[str, Any] | None,
) -> list[Decision]:
    ns_labels = ((namespace_object or {}).get("metadata") or {}).get("labels") or {}
    if not constraints_match(spec.get("matchConstraints") or {}, obj, operation, ns_labels):
        return []
    data: dict[str, Any] = {
        "object": obj,
        "oldObject": None,
        "request": request_for(obj, operation),
        "namespaceObject": namespace_object,
    }
    for cond in spec.get("matchConditions") or []:
        if program(cond["expression"]).eval(data) is not True:
            return []
    bind_variables(spec.get("variables") or [], data)
    return [
        Decision(name, rule, tuple(actions), message)
        for message in failed_validations(spec.get("validations") or [], data)
    ]


def evaluate_vap(
    policy: Mapping[str, Any],
    binding: Mapping[str, Any],
    obj: Mapping[str, Any],
    *,
    operation: str = "CREATE",
    namespace_object: Mapping[str, Any] | None = None,
) -> list[Decision]:
    """A ValidatingAdmissionPolicy through one of its bindings."""
    bspec = binding.get("spec") or {}
    if bspec.get("policyName") != policy["metadata"]["name"]:
        return []
    ns_labels = (
        ((namespace_object.get("metadata") or {}).get("labels") or {})
        if namespace_object is not None
        else None
    )
    narrow = bspec.get("matchResources")
    if narrow and not constraints_match(
        {
            "resourceRules": [
                {"apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "operations": ["*"]}
            ],
            **narrow,
        },
        obj,
        operation,
        ns_labels,
    ):
        return []
    return _validate(
        policy["metadata"]["name"],
        rule_of(policy),
        policy["spec"],
        bspec.get("validationActions") or [],
        obj,
        operation,
        namespace_object,
    )


def exception_applies(
    exc: Mapping[str, Any],
    policy: str,
    data: Mapping[str, Any],
    moment: dt.datetime,
    kinds: Sequence[str] = ("ValidatingPolicy",),
) -> bool:
    """A ``policies.kyverno.io`` PolicyException covers the request: it names
    the policy, has not expired at ``moment``, and all its matchConditions hold."""
    espec = exc.get("spec") or {}
    refs = espec.get("policyRefs") or []
    if not any(r.get("name") == policy and r.get("kind") in kinds for r in refs):
        return False
    expires = espec.get("expiresAt")
    if expires and dt.datetime.fromisoformat(str(expires).replace("Z", "+00:00")) < moment:
        return False
    return all(
        program(str(c["expression"])).eval(data) is True for c in espec.get("matchConditions") or []
    )


def evaluate_kyverno(
    policy: Mapping[str, Any],
    obj: Mapping[str, Any],
    *,
    operation: str = "CREATE",
    namespace_object: Mapping[str, Any] | None = None,
    exceptions: Sequence[Mapping[str, Any]] = (),
    now: dt.datetime | None = None,
) -> list[Decision]:
    """A Kyverno ValidatingPolicy (admission evaluation), skipped for an object
    a ``PolicyException`` covers: it names the policy, has not expired, and all
    its ``matchConditions`` hold."""
    spec = policy["spec"]
    name = policy["metadata"]["name"]
    moment = now or dt.datetime.now(dt.UTC)
    data = {"object": obj, "oldObject": None, "request": request_for(obj, operation)}
    if any(exception_applies(exc, name, data, moment) for exc in exceptions):
        return []
    return _validate(
        policy["metadata"]["name"],
        rule_of(policy),
        spec,
        spec.get("validationActions") or ["Deny"],
        obj,
        operation,
        namespace_object,
    )
