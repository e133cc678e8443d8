"""One admission runtime (issue 18, item 4): ``policykit verify`` (through
``k8s.validating.evaluate_kyverno``) and the runner for existing policies
(``existing.kyverno.evaluate``, behind ``policykit test`` and ``check
--policy``) run a Kyverno ValidatingPolicy through the same evaluator,
``policykit.k8s.validating.evaluate_vpol``. Each test below is one place
where the two used to disagree: one input, both callers, the verdict Kyverno
gives (kyverno/kyverno ``pkg/cel/policies/vpol``; cited in the modules)."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest

from policykit.engines.cel import CelEvalError
from policykit.existing import kyverno as ky
from policykit.k8s import gatekeeper as gk
from policykit.k8s import validating as admission
from policykit.k8s.errors import Unsupported
from policykit.k8s.gatekeeper_source import is_policykit_template

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
PODS = {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}


def _policy(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "matchConstraints": {"resourceRules": [PODS]},
        "validations": [
            {
                "expression": "object.spec.containers.all(c, c.image != 'bad')",
                "message": "the image is bad",
            }
        ],
    }
    body.update(spec)
    return {
        "apiVersion": "policies.kyverno.io/v1",
        "kind": "ValidatingPolicy",
        "metadata": {"name": "no-bad", "annotations": {"policykit.io/rule": "R1"}},
        "spec": body,
    }


def _pod(image: str = "bad", ns: str = "default", name: str = "p") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": image}]},
    }


def _deployment(image: str = "bad", ns: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"template": {"metadata": {}, "spec": _pod(image)["spec"]}},
    }


def _exception(
    *conditions: str, kind: str = "ValidatingPolicy", name: str = "ex", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "policies.kyverno.io/v1",
        "kind": "PolicyException",
        "metadata": {"name": name, "namespace": "kyverno", "labels": spec.pop("labels", {})},
        "spec": {
            "policyRefs": [{"name": "no-bad", "kind": kind}],
            "matchConditions": [
                {"name": f"c{i}", "expression": c} for i, c in enumerate(conditions)
            ],
            **spec,
        },
    }


def _verify(
    policy: dict[str, Any],
    obj: dict[str, Any],
    exceptions: Sequence[dict[str, Any]] = (),
    **kw: Any,
) -> list[str]:
    """What ``policykit verify`` sees: the messages of the denials."""
    return [
        d.message
        for d in admission.evaluate_kyverno(policy, obj, exceptions=exceptions, now=NOW, **kw)
    ]


def _runner(
    policy: dict[str, Any],
    obj: dict[str, Any],
    exceptions: Sequence[dict[str, Any]] = (),
    **kw: Any,
) -> list[tuple[str, str]]:
    """What ``policykit test`` sees: (status, message) per result."""
    ctx = ky.Context(exceptions=exceptions, now=NOW, **kw)
    return [(o.status, o.message) for o in ky.evaluate(policy, obj, ctx)]


# --- exceptions ------------------------------------------------------------------------


def test_an_exception_is_checked_before_the_match_conditions() -> None:
    """Kyverno evaluates the exceptions before the policy's matchConditions
    (compiler/policy.go, evaluateWithData): an exception whose condition
    errors is an error even where the match conditions do not hold. verify
    used to raise, the runner to skip."""
    policy = _policy(matchConditions=[{"name": "never", "expression": "false"}])
    broken = [_exception("object.metadata.labels['missing'] == 'x'")]
    with pytest.raises(CelEvalError):
        _verify(policy, _pod(), broken)
    assert [s for s, _ in _runner(policy, _pod(), broken)] == ["error"]
    # an exception that holds wins over the conditions: its reportResult
    held = [_exception("true", reportResult="pass")]
    assert _verify(policy, _pod(), held) == []
    assert _runner(policy, _pod(), held) == [
        ("pass", "rule is passed due to policy exception: kyverno/ex")
    ]


def test_an_exception_names_the_policy_by_name_and_kind() -> None:
    """provider.go: ``ref.Name == policy.GetName() && ref.Kind == policy.GetKind()``.
    An exception for a NamespacedValidatingPolicy of the same name does not
    cover a ValidatingPolicy (the runner used to accept either kind)."""
    other = [_exception("true", kind="NamespacedValidatingPolicy")]
    assert _verify(_policy(), _pod(), other) == ["the image is bad"]
    assert _runner(_policy(), _pod(), other) == [("fail", "the image is bad")]
    own = [_exception("true")]
    assert _verify(_policy(), _pod(), own) == []
    assert _runner(_policy(), _pod(), own) == [
        ("skip", "rule is skipped due to policy exception: kyverno/ex")
    ]


def test_the_highest_priority_exception_gives_the_result() -> None:
    """engine.go handlePolicy: with several matching exceptions the
    ``polex.kyverno.io/priority`` label picks the reportResult (first on a tie);
    an exception with ``allowedValues`` only narrows, it does not exempt."""
    low = _exception("true", name="a")
    high = _exception(
        "true", name="b", reportResult="pass", labels={"polex.kyverno.io/priority": "5"}
    )
    assert _runner(_policy(), _pod(), [low, high])[0][0] == "pass"
    assert _runner(_policy(), _pod(), [high, low])[0][0] == "pass"
    assert (
        _runner(_policy(), _pod(), [low, _exception("true", name="c", reportResult="pass")])[0][0]
        == "skip"
    )
    partial = [_exception("true", allowedValues=["x"])]
    assert _verify(_policy(), _pod(), partial) == ["the image is bad"]
    assert _runner(_policy(), _pod(), partial) == [("fail", "the image is bad")]


# --- evaluation mode -------------------------------------------------------------------


def test_json_mode_evaluates_the_document_as_a_payload() -> None:
    """``spec.evaluation.mode: JSON`` (compiler/policy.go evaluateJson; the CLI
    sends JSON-mode policies no admission request): no matchConstraints, and
    ``object`` is the only variable. verify used to match it as a Kubernetes
    policy (nothing matched), the runner refused it as unsupported."""
    policy = _policy(
        matchConstraints=None,
        evaluation={"mode": "JSON"},
        validations=[
            {"expression": "object.tier != 'gold' && request == null", "message": "no gold"}
        ],
    )
    doc = {"apiVersion": "example.com/v1", "kind": "Plan", "tier": "gold"}
    assert _verify(policy, doc) == ["no gold"]
    assert _runner(policy, doc) == [("fail", "no gold")]
    doc["tier"] = "silver"
    assert _verify(policy, doc) == []
    assert _runner(policy, doc) == [("pass", "")]


# --- autogen ---------------------------------------------------------------------------


def test_pod_controllers_get_the_generated_specs() -> None:
    """Kyverno's provider compiles the specs autogen generates for Pod
    controllers next to the policy (provider.go; vpol/autogen). verify used
    to evaluate the policy alone; ``controllers: []`` (what policykit writes)
    turns them off for both."""
    assert _verify(_policy(), _deployment()) == ["the image is bad"]
    assert _runner(_policy(), _deployment()) == [("fail", "the image is bad")]
    off = _policy(autogen={"podControllers": {"controllers": []}})
    assert _verify(off, _deployment()) == []
    assert _runner(off, _deployment()) == [("skip", "")]


def test_generated_specs_keep_the_namespace_selector_and_the_exceptions() -> None:
    """pkg/cel/autogen: ``CanAutoGen`` refuses an object selector only, and
    ``CreateMatchConstraints`` carries the namespace selector over; the
    generated specs are compiled with the policy's exceptions."""
    sel = {"matchLabels": {"env": "prod"}}
    policy = _policy(matchConstraints={"resourceRules": [PODS], "namespaceSelector": sel})
    prod_ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "p", "labels": {"env": "prod"}},
    }
    labels = {"p": {"env": "prod"}, "d": {"env": "dev"}}
    assert _verify(policy, _deployment(ns="p"), namespace_object=prod_ns) == ["the image is bad"]
    assert _runner(policy, _deployment(ns="p"), namespace_labels=labels) == [
        ("fail", "the image is bad")
    ]
    assert _runner(policy, _deployment(ns="d"), namespace_labels=labels) == [("skip", "")]
    ex = [_exception("object.metadata.namespace == 'p'")]
    assert _verify(policy, _deployment(ns="p"), ex, namespace_object=prod_ns) == []
    assert _runner(policy, _deployment(ns="p"), ex, namespace_labels=labels)[0][0] == "skip"


# --- validations -----------------------------------------------------------------------


def test_the_first_failing_validation_decides() -> None:
    """compiler/policy.go returns at the first validation that is false: one
    result with its message (the runner used to join every message, verify
    to report each)."""
    policy = _policy(
        validations=[
            {"expression": "object.spec.containers.all(c, c.image != 'bad')", "message": "first"},
            {"expression": "false", "message": "second"},
        ]
    )
    assert _verify(policy, _pod()) == ["first"]
    assert _runner(policy, _pod()) == [("fail", "first")]
    assert _verify(policy, _pod("good")) == ["second"]


def test_both_callers_agree_on_a_grid_of_inputs() -> None:
    """Every combination above through both callers: verify denies exactly
    when the runner fails, with the same message."""
    policies = [
        _policy(),
        _policy(autogen={"podControllers": {"controllers": ["deployments"]}}),
        _policy(
            matchConditions=[
                {"name": "c", "expression": "object.metadata.namespace != 'kube-system'"}
            ]
        ),
    ]
    objects = [_pod(), _pod("good"), _deployment(), _deployment("good"), _pod(ns="kube-system")]
    exception_sets: list[list[dict[str, Any]]] = [
        [],
        [_exception("object.metadata.namespace == 'kube-system'")],
        [_exception("true", kind="NamespacedValidatingPolicy")],
    ]
    for p in policies:
        for o in objects:
            for ex in exception_sets:
                denied = _verify(copy.deepcopy(p), o, ex)
                ran = _runner(copy.deepcopy(p), o, ex)
                assert denied == [m for s, m in ran if s == "fail"], (p, o, ex)


# --- Gatekeeper -------------------------------------------------------------------------


def test_policykit_templates_are_recognised_by_their_metadata() -> None:
    """A template is policykit's own when it carries the generator annotation
    and the managed-by label, not when its Rego happens to define
    ``pattern(p) := p`` (the text the runner used to sniff)."""
    from policykit.packs import load_packs
    from policykit.targets import gatekeeper as gk_target

    packs = load_packs(["policykit.packs.starter"])
    files, _ = gk_target.build(packs, {p.name: p.defaults() for p in packs})
    ours = next(
        t for n, items in sorted(files.items()) if n.startswith("templates/") for t in items
    )
    assert is_policykit_template(ours) and gk.TemplateRunner(ours).own
    stripped = copy.deepcopy(ours)
    stripped["metadata"] = {"name": ours["metadata"]["name"]}
    assert not is_policykit_template(stripped) and not gk.TemplateRunner(stripped).own
    theirs = {
        "apiVersion": "templates.gatekeeper.sh/v1",
        "kind": "ConstraintTemplate",
        "metadata": {"name": "k8sname"},
        "spec": {
            "crd": {"spec": {"names": {"kind": "K8sName"}}},
            "targets": [
                {
                    "target": "admission.k8s.gatekeeper.sh",
                    "code": [
                        {
                            "engine": "Rego",
                            "source": {
                                "version": "v1",
                                "rego": "package k8sname\n\npattern(p) := p\n\n"
                                'violation contains {"msg": "name"} if {\n'
                                "\tregex.match(pattern(input.parameters.re), "
                                "input.review.object.metadata.name)\n}\n",
                            },
                        }
                    ],
                }
            ],
        },
    }
    runner = gk.TemplateRunner(theirs)
    assert not runner.own
    constraint = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "K8sName",
        "metadata": {"name": "dotted"},
        "spec": {"parameters": {"re": "^a\\.b$"}},
    }
    # the third-party regex goes through regopy_patterns: ``\.`` read once
    assert [v.message for v in gk.evaluate(runner, constraint, _pod(name="a.b"))] == ["name"]
    assert gk.evaluate(runner, constraint, _pod(name="axb")) == []


def test_match_conditions_that_error_follow_the_failure_policy() -> None:
    """A match condition that errors (or is not a bool) fails the request
    under ``failurePolicy: Fail`` and skips the policy under ``Ignore`` — for
    a ValidatingAdmissionPolicy (the API server's matcher) and a
    ValidatingPolicy (Kyverno's ``Policy.match``) alike."""
    broken = [{"name": "b", "expression": "object.metadata.labels['missing'] == 'x'"}]
    vap: dict[str, Any] = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "no-bad"},
        "spec": {**_policy()["spec"], "matchConditions": broken},
    }
    binding = {"spec": {"policyName": "no-bad", "validationActions": ["Deny"]}}
    with pytest.raises(CelEvalError):
        admission.evaluate_vap(vap, binding, _pod())
    vap["spec"]["failurePolicy"] = "Ignore"
    assert admission.evaluate_vap(vap, binding, _pod()) == []
    vpol = _policy(matchConditions=broken)
    assert [s for s, _ in _runner(vpol, _pod())] == ["error"]
    vpol["spec"]["failurePolicy"] = "Ignore"
    assert _runner(vpol, _pod()) == [("skip", "matchConditions not met")]
    assert _verify(vpol, _pod()) == []
    not_bool = _policy(matchConditions=[{"name": "n", "expression": "'yes'"}])
    assert [s for s, _ in _runner(not_bool, _pod())] == ["error"]


# --- preparing a policy once ------------------------------------------------------------


def test_a_policy_is_prepared_once_and_again_when_changed_in_place() -> None:
    """The specs (autogen), their compatible CEL and what reaches outside the
    object are worked out once per policy, not per object (verify of 10k
    objects, issue 21); a policy edited in place is worked out again."""
    policy = _policy()
    assert _verify(policy, _pod()) == ["the image is bad"]
    first = admission._specs(policy)
    assert admission._specs(policy) is first  # the same preparation, reused
    assert len(first) >= 2  # the pod spec and the ones autogen made for controllers
    policy["spec"]["validations"][0]["expression"] = "true"
    assert _verify(policy, _pod()) == []  # not the stale preparation
    assert admission._specs(policy) is not first
    policy["spec"]["validations"].append({"expression": "http.Get('https://x') != null"})
    with pytest.raises(Unsupported, match="ValidatingPolicy no-bad uses the http CEL library"):
        _verify(policy, _pod())
