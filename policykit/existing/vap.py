"""Existing ValidatingAdmissionPolicies (and their bindings) in ``check
--policy``, as the API server evaluates them
(:func:`policykit.k8s.validating.evaluate_vap`): through each binding that
names the policy, its ``matchConstraints`` and the binding's
``matchResources`` selecting the objects; a policy with no binding is
evaluated alone on what its ``matchConstraints`` select, as ``kyverno
apply`` does offline (kyverno/kyverno ``pkg/admissionpolicy/validate.go``
``Validate``). Where the Kyverno CLI departs from the API server with
bindings (it skips ``matchConstraints``, keeps the last binding's response
and ignores ``validationActions``), policykit follows the API server.

A failed validation is a finding of the policy, at the severity of the
binding's ``validationActions`` (``Deny`` a deny, ``Warn`` a warn, ``Audit``
an info; a policy without binding: deny). An expression that errors is a
finding ``error: …`` under ``failurePolicy: Fail`` (the default) and nothing
under ``Ignore``. A policy with ``paramKind`` (parameter resources) is not
run: it is listed as unsupported, never a pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policykit.engines.cel import CelEvalError
from policykit.k8s import validating as admission
from policykit.k8s.request import metadata

POLICY_KIND = "ValidatingAdmissionPolicy"
BINDING_KIND = "ValidatingAdmissionPolicyBinding"
_GROUP = "admissionregistration.k8s.io/"


def kind_of(obj: Mapping[str, Any]) -> str | None:
    """:data:`POLICY_KIND` or :data:`BINDING_KIND` for such a document, else None."""
    kind = obj.get("kind")
    if str(obj.get("apiVersion", "")).startswith(_GROUP) and kind in (POLICY_KIND, BINDING_KIND):
        return str(kind)
    return None


def problem(policy: Mapping[str, Any]) -> str | None:
    """Why ``policy`` cannot be run (an unsupported feature), else None."""
    spec = policy.get("spec")
    name = metadata(policy).get("name")
    if not isinstance(spec, Mapping):
        return f"{POLICY_KIND} {name}: no spec"
    if spec.get("paramKind"):
        return f"{POLICY_KIND} {name} uses paramKind (parameter resources)"
    return None


def bindings_for(
    policy: Mapping[str, Any], bindings: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The bindings naming ``policy``; none: one that binds it everywhere with
    ``Deny`` (the CLI's evaluation without binding)."""
    name = metadata(policy).get("name")
    own = [b for b in bindings if (b.get("spec") or {}).get("policyName") == name]
    if own:
        return own
    return [{"metadata": {"name": ""}, "spec": {"policyName": name, "validationActions": ["Deny"]}}]


def severity(binding: Mapping[str, Any]) -> str:
    actions = (binding.get("spec") or {}).get("validationActions") or ["Deny"]
    if "Deny" in actions:
        return "deny"
    return "warn" if "Warn" in actions else "info"


def failures(
    policy: Mapping[str, Any],
    bindings: Sequence[Mapping[str, Any]],
    obj: Mapping[str, Any],
    namespace_object: Mapping[str, Any] | None,
) -> list[tuple[str, str]]:
    """``(severity, message)`` of each failed validation (or error) of
    ``policy`` on ``obj``, through each of ``bindings`` (:func:`bindings_for`)."""
    out: list[tuple[str, str]] = []
    for binding in bindings:
        try:
            decisions = admission.evaluate_vap(
                policy, binding, obj, namespace_object=namespace_object, each=True
            )
        except CelEvalError as exc:  # a match condition erred under failurePolicy Fail
            spec = policy.get("spec") or {}
            items = [*(spec.get("matchConditions") or []), *(spec.get("variables") or [])]
            out.append((severity(binding), f"error: {admission.error_text(exc, items)}"))
            continue
        out += [(severity(binding), d.message) for d in decisions]
    return out
