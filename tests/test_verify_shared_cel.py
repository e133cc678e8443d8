"""``verify``'s ``vap`` and ``kyverno`` targets run as one (issue 21): one
task per slice runs the ValidatingAdmissionPolicies and the Kyverno
ValidatingPolicies on each object in one session, so the two share the
object's review and CEL bindings (one conversion of the object to CEL) and
each scope remembers a program's result, so an expression both targets
compiled to the same text is evaluated once. The reports are the ones the
two runners give apart: counts, mismatches, checked objects and order."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policykit.engines import cel as celmod
from policykit.engines import cel_bindings
from policykit.engines.cel import CelEvalError, Lookups, using_lookups
from policykit.k8s import validating as admission
from policykit.k8s.request import Review, session
from policykit.waivers import Waiver
from tests.verify_corpus import generated_docs, plain

PACKS = ["policykit.packs.starter"]
LATER = dt.date.today() + dt.timedelta(days=30)

WAIVERS = [
    Waiver("K8S-002", "r", "o", LATER, {"namespace": "prod-apps"}),  # a VAP binding carries it
    Waiver("K8S-001", "r", "o", LATER, {"kind": "Deployment", "name": "svc-3"}),  # both carry it
    Waiver("K8S-003", "r", "o", LATER, {"namespace": "stag*"}),  # Kyverno only: VAP keeps it
]

EXTRA = """\
apiVersion: v1
kind: Pod
metadata: {name: lone, namespace: prod-apps}
spec:
  containers:
  - {name: a, image: "nginx:latest", securityContext: {privileged: true}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: batch}
spec:
  schedule: "0 0 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - {name: a, image: "busybox"}
---
apiVersion: v1
kind: Namespace
metadata: {name: prod-apps}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: prod-apps}
data: {a: b}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
rules: []
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: nowhere}
spec:
  template:
    spec:
      containers: []
"""


def _lossy(docs: list[Any]) -> Any:
    """A reference that misses the findings of two Deployments and reports
    one of its own on a third: mismatches both CEL runners must find."""
    from policykit.engines.native import NativeEngine
    from policykit.packs import load_packs

    real = NativeEngine.evaluate
    native = NativeEngine(load_packs(PACKS), {})
    hit = [d for d in docs if d.source == "kubernetes" and native.evaluate(d)]
    missed, extra = {id(hit[0]), id(hit[4])}, hit[7]

    def evaluate(self: NativeEngine, doc: Any) -> Any:
        found = real(self, doc)
        if id(doc) in missed:
            return []
        if doc is extra:
            return [*found, dataclasses.replace(found[0], message="planted")]
        return found

    return evaluate


def _verify(docs: list[Any], jobs: int = 1, **kw: Any) -> Any:
    from policykit.packs import load_packs
    from policykit.verify import verify

    return verify(load_packs(PACKS), {}, docs, ["vap", "kyverno"], jobs=jobs, **kw)


def _apart(monkeypatch: pytest.MonkeyPatch) -> None:
    import policykit.verify as verify_module

    monkeypatch.setattr(verify_module, "joint", lambda run: False)


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """How many request bindings are made (each converts the object to CEL)
    and how many expressions cel-cpp evaluates."""
    counts = {"bindings": 0, "evaluations": 0}
    made, evaluated = cel_bindings.Bindings.__init__, cel_bindings.Scope.eval

    def init(self: Any, data: Any) -> None:
        counts["bindings"] += 1
        made(self, data)

    def evaluate(self: Any, expr: Any) -> Any:
        counts["evaluations"] += 1
        return evaluated(self, expr)

    monkeypatch.setattr(cel_bindings.Bindings, "__init__", init)
    monkeypatch.setattr(cel_bindings.Scope, "eval", evaluate)
    yield counts


def test_the_joint_runner_shares_each_objects_bindings_and_reports_as_apart(
    monkeypatch: pytest.MonkeyPatch, conversions: dict[str, int]
) -> None:
    docs = generated_docs(120, 5, EXTRA)
    monkeypatch.setattr("policykit.engines.native.NativeEngine.evaluate", _lossy(docs))
    admitted = sum(d.source == "kubernetes" for d in docs)
    joint = _verify(docs, waivers=WAIVERS)
    shared = dict(conversions)
    conversions.update(bindings=0, evaluations=0)
    _apart(monkeypatch)
    apart = _verify(docs, waivers=WAIVERS)
    assert plain(joint) == plain(apart)
    assert joint.compared == {"vap": admitted, "kyverno": admitted}
    # what makes the reports worth comparing: both targets disagree with the
    # lossy reference
    assert {m.target for m in joint.mismatches} == {"vap", "kyverno"}
    # one conversion per object the policies evaluate, not one per target; and
    # the expressions the two compiled alike are evaluated once
    assert conversions["bindings"] > shared["bindings"] > 0
    assert conversions["bindings"] - shared["bindings"] >= admitted // 2
    assert shared["evaluations"] < conversions["evaluations"]


def test_the_pools_slices_give_the_serial_report(monkeypatch: pytest.MonkeyPatch) -> None:
    import policykit.verify as verify_module

    docs = generated_docs(1200, 5, EXTRA)
    monkeypatch.setattr("policykit.engines.native.NativeEngine.evaluate", _lossy(docs))
    ran: list[Any] = []
    real_run, real_tasks = verify_module._run_task, verify_module._tasks

    def run_task(run: Any, task: Any) -> Any:
        ran.append(task)
        return real_run(run, task)

    def tasks(run: Any, units: Any, workers: int) -> Any:
        got = real_tasks(run, units, workers)
        ran.extend(got)
        return got

    monkeypatch.setattr(verify_module, "_run_task", run_task)
    monkeypatch.setattr(verify_module, "_tasks", tasks)
    serial = _verify(docs, waivers=WAIVERS)
    admitted = serial.compared["vap"]
    assert ran == [(("vap+kyverno", "cel"), 0, admitted)]
    ran.clear()
    pooled = _verify(docs, jobs=2, waivers=WAIVERS)
    assert plain(pooled) == plain(serial)
    # the pool's tasks: the joint runner's slices, covering the admitted objects
    assert {t[0] for t in ran} == {("vap+kyverno", "cel")} and len(ran) == 2
    assert sorted((lo, hi) for _, lo, hi in ran) == [(0, admitted // 2), (admitted // 2, admitted)]


def test_an_error_is_reported_as_the_runners_apart_report_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A policy that errors on some object: the joint runner gives way to the
    two runners apart, which leave that object out of the target that erred
    (named in leftOut) and compare every other; the report is the same either
    way (the error used to end the run)."""
    real = admission.evaluate_vap

    def failing(policy: Any, binding: Any, obj: Any, **kw: Any) -> Any:
        if obj["metadata"].get("name") == "svc-9":
            raise CelEvalError("CEL evaluation error: planted")
        return real(policy, binding, obj, **kw)

    monkeypatch.setattr(admission, "evaluate_vap", failing)
    docs = generated_docs(40, 5, EXTRA)
    joint = _verify(docs)
    _apart(monkeypatch)
    apart = _verify(docs)
    assert (joint.compared, joint.mismatches, joint.left_out) == (
        apart.compared,
        apart.mismatches,
        apart.left_out,
    )
    planted = [x for x in joint.left_out if "planted" in x]
    assert len(planted) == 1 and planted[0].startswith("vap: ") and "svc-9" in planted[0]
    assert joint.compared["vap"] == joint.compared["kyverno"] - 1


# --- the shared bindings and the memo, below verify -------------------------------------

PODS = {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}


def _vap(variables: list[tuple[str, str]], validation: str) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "p", "annotations": {"policykit.io/rule": "P"}},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [PODS]},
            "variables": [{"name": n, "expression": e} for n, e in variables],
            "validations": [
                {"expression": validation, "messageExpression": "'p: ' + object.metadata.name"}
            ],
        },
    }


def _vpol(vap: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "policies.kyverno.io/v1",
        "kind": "ValidatingPolicy",
        "metadata": vap["metadata"],
        "spec": {k: v for k, v in vap["spec"].items() if k != "failurePolicy"},
    }


BINDING = {
    "apiVersion": "admissionregistration.k8s.io/v1",
    "kind": "ValidatingAdmissionPolicyBinding",
    "metadata": {"name": "p"},
    "spec": {"policyName": "p", "validationActions": ["Deny"]},
}

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "a", "namespace": "default"},
    "spec": {"containers": [{"name": "c", "image": "x:latest"}]},
}

VARS = [("images", "object.spec.containers.map(c, c.image)")]
CHECK = "!variables.images.exists(i, i.endsWith(':latest'))"


def _both(obj: dict[str, Any], review: Review, **kyverno: Any) -> tuple[Any, Any]:
    vap = _vap(VARS, CHECK)
    ns = review.namespace_object()
    return (
        [d.message for d in admission.evaluate_vap(vap, BINDING, obj, namespace_object=ns)],
        [
            d.message
            for d in admission.evaluate_kyverno(_vpol(vap), obj, namespace_object=ns, **kyverno)
        ],
    )


def test_vap_and_kyverno_on_one_review_share_bindings_and_results(
    conversions: dict[str, int],
) -> None:
    plain = _both(POD, Review(POD))
    assert plain == (["p: a"], ["p: a"])
    conversions.update(bindings=0, evaluations=0)
    with session() as s:
        assert _both(POD, s.review(POD)) == plain
    # one Bindings; the variable, the validation and its message once each
    assert conversions == {"bindings": 1, "evaluations": 3}


def test_what_differs_is_not_shared(conversions: dict[str, int]) -> None:
    """Other request variables (another Namespace object) or another context
    for the resource library: other bindings, every expression again."""
    other_ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}
    lookups = Lookups()
    with session() as s:
        review = s.review(POD)
        vap = _vap(VARS, CHECK)
        admission.evaluate_vap(vap, BINDING, POD, namespace_object=review.namespace_object())
        assert conversions == {"bindings": 1, "evaluations": 3}
        admission.evaluate_kyverno(_vpol(vap), POD, namespace_object=other_ns)
        assert conversions == {"bindings": 2, "evaluations": 6}
        with using_lookups(lookups):
            admission.evaluate_vap(vap, BINDING, POD, namespace_object=review.namespace_object())
        assert conversions == {"bindings": 3, "evaluations": 9}


def test_the_namespace_both_see_is_the_api_servers() -> None:
    """What ``verify`` gives both evaluators as ``namespaceObject``: the
    Namespace with its name label (none for a Namespace or a cluster-scoped
    object), the same object each time."""
    review = Review(POD)
    ns = review.namespace_object()
    assert ns == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "default", "labels": {"kubernetes.io/metadata.name": "default"}},
    }
    assert review.namespace_object() is ns
    assert Review({"kind": "Namespace", "metadata": {"name": "x"}}).namespace_object() is None
    assert Review({"kind": "ClusterRole", "metadata": {"name": "x"}}).namespace_object() is None


# --- a differential property: a remembered result is the one evaluated -----------------

_EXPRESSIONS = [
    "object.spec.containers.map(c, c.image)",
    "size(object.spec.containers)",
    "object.spec.missing.field",  # errors
    "object.metadata.name + '/' + string(size(variables))",
    "variables.v0",
    "variables.?v1.orValue([])",
    "has(variables.v0) && variables.v0 != null",
    "size(variables.v0) > 1",
    "variables.v1.x",  # errors when v1 has no x
    "[1, 2].map(i, i * size(object.spec.containers))",
    "object.spec.containers.exists(c, c.image.endsWith(':latest'))",
    "namespaceObject.metadata.name",
    "request.operation",
]

_VAR_EXPRESSIONS = [
    "object.spec.containers",
    "object.spec.containers.map(c, c.image)",
    "object.spec.nope",  # errors: left out
    "{'x': size(object.spec.containers)}",
    "variables.v0",
]


def _outcome(program: celmod.Program, data: Any) -> Any:
    try:
        return ("value", program.eval(data))
    except CelEvalError as exc:
        return ("error", exc.message)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    images=st.lists(st.sampled_from(["a:1", "b:latest", "c@sha256:0"]), max_size=3),
    declared=st.lists(st.sampled_from(_VAR_EXPRESSIONS), max_size=3),
    other=st.lists(st.sampled_from(_VAR_EXPRESSIONS), max_size=3),
    order=st.lists(st.sampled_from(_EXPRESSIONS), min_size=1, max_size=12),
    lookups=st.booleans(),
)
def test_a_remembered_result_is_the_plain_evaluations(
    images: list[str], declared: list[str], other: list[str], order: list[str], lookups: bool
) -> None:
    """Each expression in ``order`` (repeats included) on shared bindings,
    remembered per scope, gives what it gives evaluated on its own with
    every variable bound plainly (or errors alike); two policies that declare
    variables of the same names differently, bound on the same bindings and
    read in turns, each see their own."""
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]},
    }
    review = Review(obj)
    data = {
        "object": obj,
        "oldObject": None,
        "request": review.request("CREATE"),
        "namespaceObject": review.namespace_object(),
    }
    policies = [
        [{"name": f"v{i}", "expression": e} for i, e in enumerate(declared)],
        [{"name": f"v{i}", "expression": e} for i, e in enumerate(other)],
    ]
    context = using_lookups(Lookups()) if lookups else using_lookups(None)
    with context:
        bindings = review.bindings(data, celmod.active_lookups())
        views = [bindings.bind(variables) for variables in policies]
        # the plain reference: each variable evaluated in order on a plain map
        plain: list[dict[str, Any]] = []
        for variables in policies:
            bound: dict[str, Any] = {}
            for v in variables:
                got = _outcome(celmod.program(v["expression"]), {**data, "variables": bound})
                if got[0] == "value":
                    bound[str(v["name"])] = got[1]
            plain.append(bound)
        for source in order + order[::-1]:
            prog = celmod.program(source)
            for view, bound in zip(views, plain, strict=True):  # in turns
                assert _outcome(prog, view) == _outcome(prog, {**data, "variables": bound}), source
            assert _outcome(prog, bindings.plain) == _outcome(prog, data), source


def _delete_vap(validation: str) -> dict[str, Any]:
    vap = _vap([], validation)
    rules = vap["spec"]["matchConstraints"]["resourceRules"]
    vap["spec"]["matchConstraints"]["resourceRules"] = [
        {**r, "operations": ["CREATE", "DELETE"]} for r in rules
    ]
    vap["spec"]["validations"][0]["messageExpression"] = "'deleting: ' + string(object == null)"
    return vap


def test_a_vap_on_delete_sees_the_object_as_old_object() -> None:
    """An AdmissionRequest for DELETE has ``object`` null and the object as
    ``oldObject``; the VAP harness bound the object as ``object`` on every
    operation (:func:`admission_data` has it right for Kyverno)."""
    vap = _delete_vap("object != null && oldObject == null")
    assert admission.evaluate_vap(vap, BINDING, POD) == []
    (d,) = admission.evaluate_vap(vap, BINDING, POD, operation="DELETE")
    assert d.message == "deleting: true"
    old = _delete_vap("oldObject.metadata.name != 'a'")
    (d,) = admission.evaluate_vap(old, BINDING, POD, operation="DELETE")
    assert d.message == "deleting: true"
    with session():  # the session's review keeps the two operations apart
        assert admission.evaluate_vap(vap, BINDING, POD) == []
        assert len(admission.evaluate_vap(vap, BINDING, POD, operation="DELETE")) == 1


def test_no_namespace_object_for_a_cluster_scoped_kind() -> None:
    """A cluster-scoped object with a stray ``metadata.namespace`` has no
    Namespace (the API server binds null); a namespaced one has its own."""
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole"}
    assert Review({**role, "metadata": {"name": "r", "namespace": "x"}}).namespace_object() is None
    got = Review(POD).namespace_object()
    assert got is not None and got["metadata"]["name"] == "default"
