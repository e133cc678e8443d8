"""Kyverno policies as they are written in the wild, evaluated locally:
``ClusterPolicy``/``Policy`` rules with ``validate.cel`` and the CEL-first
``ValidatingPolicy`` (``policies.kyverno.io`` v1alpha1, v1beta1, v1), with
Kyverno's match/exclude semantics and its automatic rules for Pod
controllers (:mod:`policykit.k8s.autogen`).

ValidatingPolicy runs in :func:`policykit.k8s.validating.evaluate_vpol`, the
evaluator ``policykit verify`` uses for policykit's own manifests. This
module runs ClusterPolicy rules: ``validate.cel`` here, classic ``validate``
rules (pattern, anyPattern, deny, foreach, with context entries,
preconditions and ``{{ }}`` variables) in
:mod:`policykit.existing.kyverno_classic`. Anything else — podSecurity,
mutation, generation, image verification, context entries and JMESPath
preconditions on CEL rules, CEL libraries that reach outside the object
(``http``, ``resource``, ``globalContext``, image metadata) — raises
:class:`Unsupported`: the caller reports it as skipped, never as a pass.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from policykit.engines.cel import CelEvalError, program, using_lookups
from policykit.existing import kyverno_classic
from policykit.k8s import autogen
from policykit.k8s.autogen import AUTOGEN_ANNOTATION, POD_CONTROLLERS, vpol_specs
from policykit.k8s.celtexts import cel_texts, refuse_outside, unknown_library
from policykit.k8s.errors import Unsupported
from policykit.k8s.exceptions import legacy_exception
from policykit.k8s.kinds import for_object
from policykit.k8s.matching import kyverno_selector_matches, label_selector_matches, matches
from policykit.k8s.request import Context, admission_data, metadata, namespace_of
from policykit.k8s.validating import (
    Outcome,
    Status,
    bind_variables,
    cel_error,
    evaluate_vpol,
    failed_validations,
    policy_name,
)

__all__ = [
    "AUTOGEN_ANNOTATION",
    "POD_CONTROLLERS",
    "Context",
    "Outcome",
    "Status",
    "evaluate",
    "evaluate_legacy",
    "evaluate_vpol",
    "is_policy",
    "legacy_rules",
    "matches",
    "policy_name",
    "vpol_specs",
]

_VPOL_KINDS = ("ValidatingPolicy", "NamespacedValidatingPolicy")
_LEGACY_KINDS = ("ClusterPolicy", "Policy")


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


def legacy_rules(policy: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The policy's rules followed by the ones Kyverno generates for Pod controllers."""
    return autogen.legacy_rules(policy, kyverno_classic.autogen_rule)


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


_NIL_MAPS = frozenset(
    {"annotations", "labels", "matchLabels", "nodeSelector", "data", "stringData"}
)


def _nil_maps(node: Any) -> Any:
    """Empty maps for the known map fields left empty in YAML (``labels:``), as
    the CLI's ``normalizeNilMaps`` does (cmd/cli/kubectl-kyverno/resource/resource.go)."""
    if isinstance(node, dict):
        return {k: {} if v is None and k in _NIL_MAPS else _nil_maps(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_nil_maps(v) if isinstance(v, dict) else v for v in node]
    return node


def cli_resource(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A resource as the Kyverno CLI loads it (``kyverno apply`` and ``kyverno
    test``: cmd/cli/kubectl-kyverno/resource/resource.go ``YamlToUnstructured``),
    a copy: a namespaced kind without a namespace gets ``default`` (a kind the
    CLI does not know counts as namespaced), and empty map fields become maps."""
    out: dict[str, Any] = _nil_maps(dict(obj))
    meta = out.get("metadata") if isinstance(out.get("metadata"), dict) else None
    info = for_object(out)
    if (info is None or info.namespaced) and not (meta or {}).get("namespace"):
        out["metadata"] = {**(meta or {}), "namespace": "default"}
    return out


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


def evaluate_legacy(
    policy: Mapping[str, Any], obj: Mapping[str, Any], ctx: Context
) -> list[Outcome]:
    """Every rule (with the autogen ones) of a ClusterPolicy/Policy on one resource.
    A rule policykit cannot run raises :class:`Unsupported` only when it would
    apply to the resource."""
    name = policy_name(policy)
    spec = policy.get("spec") or {}
    default_action = str(
        _override(spec.get("validationFailureActionOverrides"), obj, ctx)
        or spec.get("validationFailureAction")
        or "Audit"
    ).capitalize()
    # a namespaced Policy applies in its own namespace only ("policy and
    # resource namespaces mismatch": pkg/engine/utils/match.go
    # MatchesResourceDescription; a Namespace object's own namespace is "")
    own = str(metadata(policy).get("namespace") or "") if policy.get("kind") == "Policy" else ""
    elsewhere = bool(own) and own != str(metadata(obj).get("namespace") or "")
    out: list[Outcome] = []
    for rule in legacy_rules(policy):
        rname = str(rule.get("name", ""))
        if (
            elsewhere
            or not matches(rule.get("match"), obj, ctx)
            or matches(rule.get("exclude"), obj, ctx, "exclude")
        ):
            out.append(Outcome(name, rname, "skip", applied=False))
            continue
        try:
            out.append(_legacy_rule(name, rule, default_action, obj, ctx))
        except Unsupported as exc:
            out.append(Outcome(name, rname, "unsupported", exc.message))
    return out


def _override(overrides: Any, obj: Mapping[str, Any], ctx: Context) -> str | None:
    """The action of the first override whose namespaces and namespaceSelector
    hold for the object (Kyverno's ``matchOverride``, pkg/engine/api/
    engineresponse.go: no namespaces and no selector is every namespace;
    an action other than Enforce/Audit is passed over), else None."""
    if not isinstance(overrides, list):
        return None
    ns = str(metadata(obj).get("namespace") or "")
    labels = ctx.namespace_labels.get(ns, {})
    for o in overrides:
        if not isinstance(o, Mapping) or o.get("action") not in _ACTIONS:
            continue
        selector = o.get("namespaceSelector")
        namespaces = o.get("namespaces")
        if namespaces is None:
            places = True
        else:
            places = isinstance(namespaces, list) and any(
                fnmatch.fnmatchcase(ns, str(n)) for n in namespaces
            )
        if places and (
            selector is None
            or (isinstance(selector, Mapping) and kyverno_selector_matches(selector, labels))
        ):
            return str(o["action"])
    return None


_ACTIONS = ("Enforce", "Audit", "enforce", "audit")  # ValidationFailureAction.IsValid


def _legacy_rule(
    name: str, rule: Mapping[str, Any], default_action: str, obj: Mapping[str, Any], ctx: Context
) -> Outcome:
    rname = str(rule.get("name", ""))
    why = _unsupported_rule(rule)
    if why is not None:
        raise Unsupported(f"rule {rname} of {name} uses {why}")
    validate = rule["validate"]
    action = str(
        _override(validate.get("failureActionOverrides"), obj, ctx)
        or validate.get("failureAction")
        or default_action
    ).capitalize()
    if kyverno_classic.is_classic(validate):
        if legacy_exception(name.rpartition("/")[2], rname, obj, ctx):
            return Outcome(name, rname, "skip", "a PolicyException applies", action)
        got, message = kyverno_classic.evaluate_rule(
            name.rpartition("/")[2], rule, obj, ctx, action
        )
        return Outcome(name, rname, got, message, action)  # type: ignore[arg-type]
    refuse_outside(cel_texts(rule), f"rule {rname} of {name}", ctx)
    if legacy_exception(name.rpartition("/")[2], rname, obj, ctx):
        return Outcome(name, rname, "skip", "a PolicyException applies", action)
    return _legacy_cel(name, rule, action, obj, ctx)


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
    data = admission_data(obj, ctx)
    ns = namespace_of(obj)
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
                unknown_library(exc, f"rule {rname} of {name}")
                return Outcome(name, rname, "fail", cel_error(expression, exc), action)
        bind_variables(cel.get("variables") or [], data)
        for v in cel.get("expressions") or []:
            expression = str(v.get("expression", ""))
            with_message = {**v, "message": v.get("message") or validate.get("message") or ""}
            try:
                failed = failed_validations([with_message], data)
            except CelEvalError as exc:
                unknown_library(exc, f"rule {rname} of {name}")
                return Outcome(name, rname, "fail", cel_error(expression, exc), action)
            if failed:
                return Outcome(name, rname, "fail", failed[0], action)
    return Outcome(name, rname, "pass", "", action)


def evaluate(policy: Mapping[str, Any], obj: Mapping[str, Any], ctx: Context) -> list[Outcome]:
    """Outcomes of every rule of a Kyverno policy on one resource; what
    policykit cannot run is an ``unsupported`` outcome naming the feature."""
    if policy.get("kind") in _LEGACY_KINDS:
        return evaluate_legacy(policy, obj, ctx)
    try:
        return evaluate_vpol(policy, obj, ctx)
    except Unsupported as exc:
        return [Outcome(policy_name(policy), "", "unsupported", exc.message)]
