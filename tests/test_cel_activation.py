"""The admission evaluators share work between policies and expressions
(issue 21): in a :func:`policykit.k8s.request.session` each policy is read
once, the policies evaluated on one object share its conversion to CEL
(one cel-cpp Activation per set of bindings), and variables declared alike
are evaluated once. None of it may change a verdict: every test below
compares the shared evaluation with the plain one (each policy and
expression on its own), on inputs where a stale value would show."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policykit.engines import cel as celmod
from policykit.engines import cel_bindings
from policykit.engines.cel import CelEvalError, variables_read
from policykit.engines.cel_bindings import Bindings
from policykit.k8s import validating as admission
from policykit.k8s.request import session

PODS = {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}


def _vap(name: str, variables: Sequence[tuple[str, str]], *validations: str) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "annotations": {"policykit.io/rule": name.upper()}},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [PODS]},
            "variables": [{"name": n, "expression": e} for n, e in variables],
            "validations": [
                {"expression": v, "messageExpression": f"'{name}: ' + object.metadata.name"}
                for v in validations
            ],
        },
    }


def _binding(policy: dict[str, Any]) -> dict[str, Any]:
    name = policy["metadata"]["name"]
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }


def _vpol(name: str, variables: Sequence[tuple[str, str]], *validations: str) -> dict[str, Any]:
    vap = _vap(name, variables, *validations)
    return {
        "apiVersion": "policies.kyverno.io/v1",
        "kind": "ValidatingPolicy",
        "metadata": vap["metadata"],
        "spec": {k: v for k, v in vap["spec"].items() if k != "failurePolicy"},
    }


def _pod(name: str, *images: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
        "spec": {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]},
    }


Result = list[tuple[str, str]] | str


def _run_vap(policies: Sequence[dict[str, Any]], objs: Sequence[dict[str, Any]]) -> list[Result]:
    """Each policy on each object, in order: its decisions, or the error."""
    out: list[Result] = []
    for obj in objs:
        for p in policies:
            try:
                got = admission.evaluate_vap(p, _binding(p), obj)
                out.append([(d.rule, d.message) for d in got])
            except CelEvalError as exc:
                out.append(f"error: {exc.message}")
    return out


def _run_kyverno(
    policies: Sequence[dict[str, Any]], objs: Sequence[dict[str, Any]]
) -> list[Result]:
    out: list[Result] = []
    for obj in objs:
        for p in policies:
            try:
                got = admission.evaluate_kyverno(p, obj)
                out.append([(d.rule, d.message) for d in got])
            except CelEvalError as exc:
                out.append(f"error: {exc.message}")
    return out


def _shared(run: Any, policies: Sequence[dict[str, Any]], objs: Sequence[Any]) -> list[Result]:
    with session():
        return list(run(policies, objs))


@pytest.fixture
def evaluations(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """How many times each expression is evaluated."""
    counts: dict[str, int] = {}
    real = celmod.Program.eval

    def counting(self: celmod.Program, data: Any) -> Any:
        counts[self.source] = counts.get(self.source, 0) + 1
        return real(self, data)

    monkeypatch.setattr(celmod.Program, "eval", counting)
    yield counts


CONTAINERS = ("containers", "object.spec.containers")
LATEST = ("latest", "variables.containers.filter(c, c.image.endsWith(':latest'))")
PRIVILEGED = ("latest", "variables.containers.filter(c, c.image.startsWith('priv'))")


@pytest.mark.parametrize("run", [_run_vap, _run_kyverno])
def test_two_objects_in_a_row_each_get_their_own_result(run: Any) -> None:
    """The second object is converted afresh: a stale first object would
    make both fail (or both pass)."""
    policies = [_vap("latest", [CONTAINERS, LATEST], "size(variables.latest) == 0")]
    if run is _run_kyverno:
        policies = [_vpol("latest", [CONTAINERS, LATEST], "size(variables.latest) == 0")]
    objs = [_pod("a", "x:latest"), _pod("b", "x:1.0"), _pod("c", "y:latest")]
    plain = run(policies, objs)
    assert plain == [[("LATEST", "latest: a")], [], [("LATEST", "latest: c")]]
    assert _shared(run, policies, objs) == plain


@pytest.mark.parametrize("run", [_run_vap, _run_kyverno])
def test_a_variable_of_the_same_name_is_each_policys_own(run: Any) -> None:
    """Two policies declare ``latest`` differently after the same
    ``containers``: the shared ``containers`` is evaluated once per object,
    each ``latest`` on its own."""
    make = _vap if run is _run_vap else _vpol
    policies = [
        make("latest", [CONTAINERS, LATEST], "size(variables.latest) == 0"),
        make("priv", [CONTAINERS, PRIVILEGED], "size(variables.latest) == 0"),
    ]
    objs = [_pod("a", "x:latest"), _pod("b", "priv:1"), _pod("c", "priv:latest", "x:1")]
    plain = run(policies, objs)
    assert plain == [
        [("LATEST", "latest: a")],
        [],
        [],
        [("PRIV", "priv: b")],
        [("LATEST", "latest: c")],
        [("PRIV", "priv: c")],
    ]
    assert _shared(run, policies, objs) == plain


def test_variables_declared_alike_are_evaluated_once_per_object(
    evaluations: dict[str, int],
) -> None:
    policies = [
        _vap("latest", [CONTAINERS, LATEST], "size(variables.latest) == 0"),
        _vap("priv", [CONTAINERS, PRIVILEGED], "size(variables.latest) == 0"),
    ]
    objs = [_pod("a", "x:latest"), _pod("b", "priv:1")]
    _shared(_run_vap, policies, objs)
    assert evaluations[CONTAINERS[1]] == 2  # once per object, not per policy
    assert evaluations[LATEST[1]] == evaluations[PRIVILEGED[1]] == 2
    evaluations.clear()
    _run_vap(policies, objs)  # outside a session: each policy on its own
    assert evaluations[CONTAINERS[1]] == 4


@pytest.mark.parametrize("run", [_run_vap, _run_kyverno])
def test_an_error_in_one_policy_does_not_leak_into_the_next(run: Any) -> None:
    """``broken`` fails to evaluate in the first policy (it is left out, so
    the validation that reads it errors); the second declares ``broken``
    validly and passes; the third never reads its failing variable (lazy:
    no error)."""
    make = _vap if run is _run_vap else _vpol
    policies = [
        make("one", [("broken", "object.spec.missing.field")], "variables.broken == 1"),
        make("two", [("broken", "1")], "variables.broken == 1"),
        make("three", [("broken", "object.spec.missing.field")], "object.metadata.name != ''"),
    ]
    objs = [_pod("a", "x:1"), _pod("b", "x:2")]
    plain = run(policies, objs)
    assert isinstance(plain[0], str) and plain[0].startswith("error:")
    assert plain[1:3] == [[], []]
    assert plain[3:] == plain[:3]
    assert _shared(run, policies, objs) == plain


def test_a_variable_reads_the_earlier_ones_and_messages_read_both() -> None:
    chain = [
        ("names", "object.spec.containers.map(c, c.name)"),
        ("count", "size(variables.names)"),
        ("many", "variables.count > 1"),
    ]
    policies = [
        _vap("chain", chain, "!variables.many"),
        _vap("chain-copy", chain[:2], "variables.count < 3"),
    ]
    for p in policies:
        p["spec"]["validations"][0]["messageExpression"] = (
            "string(variables.count) + ' in ' + object.metadata.name"
        )
    objs = [_pod("a", "x"), _pod("b", "x", "y"), _pod("c", "x", "y", "z")]
    plain = _run_vap(policies, objs)
    assert plain == [
        [],
        [],
        [("CHAIN", "2 in b")],
        [],
        [("CHAIN", "3 in c")],
        [("CHAIN-COPY", "3 in c")],
    ]
    assert _shared(_run_vap, policies, objs) == plain


def test_match_conditions_see_no_variables_even_after_a_policy_bound_them() -> None:
    policies = [
        _vap("first", [("x", "1")], "variables.x == 1"),
        _vap("second", [("x", "1")], "variables.x == 1"),
    ]
    policies[1]["spec"]["matchConditions"] = [{"name": "reads", "expression": "variables == null"}]
    objs = [_pod("a", "x")]
    plain = _run_vap(policies, objs)
    assert plain == [[], []]
    assert _shared(_run_vap, policies, objs) == plain


def test_a_policy_changed_between_sessions_is_read_again() -> None:
    policy = _vap("latest", [CONTAINERS, LATEST], "size(variables.latest) == 0")
    obj = _pod("a", "x:latest")
    assert _shared(_run_vap, [policy], [obj]) == [[("LATEST", "latest: a")]]
    policy["spec"]["validations"][0]["expression"] = "true"  # in place: the same identity
    assert _shared(_run_vap, [policy], [obj]) == [[]]


@pytest.mark.parametrize(
    ("source", "reads"),
    [
        ("object.kind == 'Pod'", frozenset()),
        ("variables.a + variables.b", frozenset({"a", "b"})),
        ("has(variables.a) && variables.?b.orValue(0) > 0", frozenset({"a", "b"})),
        ("variables . a", frozenset({"a"})),
        ("variables['a']", None),
        ("size(variables) > 0", None),
        ("variables.all(k, k != '')", None),
        ("variables.a.size() > variables.b", frozenset({"a", "b"})),
        ("'variables.c' == variables.a", frozenset({"a", "c"})),  # a superset: harmless
        ("object.myvariables.x", frozenset()),
    ],
)
def test_what_an_expression_may_read_of_the_variables(
    source: str, reads: frozenset[str] | None
) -> None:
    assert variables_read(source) == reads


def test_a_scope_binds_only_what_is_read_and_nothing_else_changes() -> None:
    """An expression that reads the whole map sees every variable; one that
    reads some sees them (an absent one stays absent)."""
    b = Bindings({"object": {"kind": "Pod"}})
    view = b.bind([{"name": "a", "expression": "1"}, {"name": "bad", "expression": "x.y"}])
    assert celmod.program("size(variables)").eval(view) == 1
    assert celmod.program("has(variables.bad)").eval(view) is False
    assert celmod.program("variables.a + 1").eval(view) == 2
    assert celmod.program("object.kind").eval(view) == "Pod"
    assert celmod.program("variables == null").eval(b.plain) is True


def test_the_arena_is_renewed() -> None:
    first = celmod.shared_arena()
    for _ in range(celmod._ARENA_EVALS + 1):
        celmod.program("1 + 1").eval({})
    assert celmod.shared_arena() is not first


# --- a differential property: the shared evaluation is the plain one ------------------

_VARIABLE_EXPRESSIONS = [
    "object.spec.containers",
    "object.spec.containers.map(c, c.image)",
    "object.spec.missing.field",  # errors: left out
    "object.metadata.labels",
    "size(object.spec.containers)",
    "variables.v0",
    "variables.?v1.orValue([])",
    "has(variables.v0)",
    "size(variables)",
    "variables.v2 + 1",
]
_VALIDATIONS = [
    "size(object.spec.containers) < 2",
    "has(variables.v0)",
    "variables.?v1.hasValue()",
    "variables.v0 != null",
    "size(variables) > 1",
    "object.metadata.labels.all(k, k != 'bad')",
    "'team' in object.metadata.labels",
]
_policy_spec = st.tuples(
    st.lists(
        st.tuples(st.sampled_from(["v0", "v1", "v2"]), st.sampled_from(_VARIABLE_EXPRESSIONS)),
        max_size=3,
    ),
    st.lists(st.sampled_from(_VALIDATIONS), min_size=1, max_size=2),
)
_object = st.tuples(
    st.lists(st.sampled_from(["x:1", "y:latest", "z"]), max_size=3),
    st.dictionaries(st.sampled_from(["team", "bad", "app"]), st.just("v"), max_size=2),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=st.lists(_policy_spec, min_size=1, max_size=4),
    shapes=st.lists(_object, min_size=1, max_size=3),
    kyverno=st.booleans(),
)
def test_shared_evaluation_agrees_with_the_plain_one(
    specs: list[Any], shapes: list[Any], kyverno: bool
) -> None:
    make = _vpol if kyverno else _vap
    policies = [make(f"p{i}", variables, *checks) for i, (variables, checks) in enumerate(specs)]
    objs = [_pod(f"o{i}", *images, labels=labels) for i, (images, labels) in enumerate(shapes)]
    run = _run_kyverno if kyverno else _run_vap
    whole = _binding_every_variable(run, policies, objs)
    assert _shared(run, policies, objs) == run(policies, objs) == whole


def _binding_every_variable(
    run: Any, policies: Sequence[dict[str, Any]], objs: Sequence[Any]
) -> list[Result]:
    """``run`` with every expression given the whole ``variables`` map, as
    before scopes bound only what an expression reads (``variables_read``):
    the reference a wrong reading of an expression's variables differs from."""
    celmod.program.cache_clear()  # a Program reads its variables when compiled
    try:
        with mock.patch.object(celmod, "variables_read", lambda source: None):
            return list(run(policies, objs))
    finally:
        celmod.program.cache_clear()


def test_the_same_object_with_other_exceptions_or_namespaces_is_evaluated_again() -> None:
    """A session keeps one context per object *and* arguments: an exception
    or a Namespace object given for the second call is not lost."""
    policy = _vpol("latest", [CONTAINERS, LATEST], "size(variables.latest) == 0")
    exception = {
        "apiVersion": "policies.kyverno.io/v1",
        "kind": "PolicyException",
        "metadata": {"name": "allow-a", "namespace": "kyverno"},
        "spec": {
            "policyRefs": [{"name": "latest", "kind": "ValidatingPolicy"}],
            "matchConditions": [{"name": "a", "expression": "object.metadata.name == 'a'"}],
        },
    }
    policy["spec"]["matchConstraints"]["namespaceSelector"] = {"matchLabels": {"team": "x"}}
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "default", "labels": {"team": "x"}},
    }
    obj = _pod("a", "x:latest")

    def calls() -> list[list[str]]:
        return [
            [d.message for d in admission.evaluate_kyverno(policy, obj, **kw)]
            for kw in (
                {},
                {"namespace_object": namespace},
                {"namespace_object": namespace, "exceptions": [exception]},
                {"namespace_object": namespace},
            )
        ]

    plain = calls()
    assert plain == [[], ["latest: a"], [], ["latest: a"]]
    with session():
        assert calls() == plain


def test_a_scope_keeps_the_arena_of_its_activation_alive() -> None:
    """cel-expr-python's Activation keeps no Python reference to the arena it
    allocates in, and the shared arena is replaced every ``_ARENA_EVALS``
    evaluations: a scope whose Activation outlives a replacement must still
    hold its arena (else it would be freed under the Activation), and give the
    same values after the shared arena moved on and other objects ran."""
    engine = celmod
    expr = engine.environment().compile(
        "object.spec.containers.map(c, c.name + '-' + string(c.n)).join(',')"
    )

    def obj(tag: str, n: int) -> dict[str, Any]:
        return {"spec": {"containers": [{"name": f"{tag}{i}" * 3, "n": i} for i in range(n)]}}

    scopes = []
    for k in range(4):
        scope = cel_bindings.Scope({"object": obj(f"s{k}x", 60)})
        scope.eval(expr)
        first = scope.eval(expr).plain_value()  # the second: on the scope's Activation
        held = scope._arena  # the arena its Activation allocates in
        assert held is not None
        for _ in range(engine._ARENA_EVALS + 10):  # the shared arena is replaced
            cel_bindings.Scope({"object": obj("junk", 20)}).eval(expr)
        assert engine._arena[0] is not held and scope._arena is held
        del held
        scopes.append((scope, first))
    gc.collect()
    for scope, first in scopes:
        assert scope.eval(expr).plain_value() == first
