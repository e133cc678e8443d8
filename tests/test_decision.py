"""The agents' runtime decision fails closed (issue 19): keys the caller adds
never turn a denied call into an allowed one, what the decision cannot classify
is denied with a reason, and the reference engine, real OPA and regopy answer
the same (policykit/toolcall.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policykit import toolcall as tc
from policykit.decision import decide
from policykit.engines.native import NativeEngine
from policykit.engines.rego import OpaEngine, RegopyEngine
from policykit.packs import load_packs
from tests.conftest import ROOT
from tests.strategies import json_value

Engines = tuple[NativeEngine, OpaEngine, RegopyEngine]


def _agent() -> dict[str, Any]:
    docs = yaml.safe_load_all((ROOT / "examples/platform/agents/agents.yaml").read_text())
    agent: dict[str, Any] = next(d for d in docs if d["metadata"]["name"] == "triage-bot")
    return agent


AGENT = _agent()
# merge_pr costing $10,000: not declared, not in the tier, over budget (issue 19's call)
EXPENSIVE = {
    "agent": AGENT,
    "tool": {"server": "github", "name": "merge_pr"},
    "action": "write",
    "args": {"cost_usd": 10_000},
}
ALLOWED = {
    "agent": AGENT,
    "tool": {"server": "github", "name": "list_issues"},
    "action": "read",
    "args": {"cost_usd": 0.1},
    "spend_so_far": 5,
}


@pytest.fixture(scope="module")
def engines() -> Engines:
    packs = load_packs(["policykit.packs.agents"])
    return NativeEngine(packs), OpaEngine(packs), RegopyEngine(packs, mode="object")


def _all(engines: Engines, call: Any, *, regopy: bool = True) -> dict[str, Any]:
    """The native decision, after checking OPA (and regopy) give the same."""
    native, opa, rp = engines
    want = decide(native, call)
    assert opa.decide(call) == want, call
    if regopy:
        assert rp.decide(call) == want, call
    return want


def _refused(*messages: str) -> dict[str, Any]:
    reasons = [tc.PREFIX + m for m in messages]
    return {"allow": False, "deny": True, "needs_approval": False, "reasons": reasons}


def test_the_base_calls(engines: Engines) -> None:
    denied = _all(engines, EXPENSIVE)
    assert denied["deny"] and not denied["allow"] and len(denied["reasons"]) == 5
    assert _all(engines, ALLOWED)["allow"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"kind": "X"}, tc.M_KIND),
        ({"kind": "Agent"}, tc.M_KIND),
        ({"kind": None}, tc.M_KIND),
        ({"apiVersion": "v1"}, tc.M_API),
        ({"apiVersion": "agents.policykit.dev/v1"}, tc.M_API),
        ({"apiVersion": ["agents.policykit.dev/v1alpha1"]}, tc.M_API),
        ({"metadata": {"name": "triage-bot", "namespace": "agents"}}, tc.M_META),
        ({"metadata": None}, tc.M_META),
    ],
)
def test_the_decisions_own_fields_cannot_be_overridden(
    engines: Engines, extra: dict[str, Any], message: str
) -> None:
    """Before the fix, merge_pr at $10,000 with `kind: X` was allowed with 0 reasons."""
    for base in (EXPENSIVE, ALLOWED):
        assert _all(engines, {**base, **extra}) == _refused(message)


def test_the_decisions_own_values_are_accepted(engines: Engines) -> None:
    own = {"apiVersion": tc.API_VERSION, "kind": tc.KIND}
    assert _all(engines, {**ALLOWED, **own}) == _all(engines, ALLOWED)
    assert _all(engines, {**EXPENSIVE, **own}) == _all(engines, EXPENSIVE)


def test_other_keys_are_ignored(engines: Engines) -> None:
    assert _all(engines, {**ALLOWED, "request_id": "r-1", "spec": {"type": "x"}})["allow"]


def _with(path: str, value: Any, base: dict[str, Any] = ALLOWED) -> dict[str, Any]:
    call = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = call
    for k in parents:
        node = node[k]
    if value is _DROP:
        del node[last]
    else:
        node[last] = value
    return call


_DROP = object()

MALFORMED = [
    ("agent", _DROP, [tc.M_AGENT]),
    ("agent", "triage-bot", [tc.M_AGENT]),
    ("agent.kind", "Deployment", [tc.M_AGENT_TYPE]),
    ("agent.apiVersion", "v1", [tc.M_AGENT_TYPE]),
    ("agent.metadata", _DROP, [tc.M_AGENT_NAME]),
    ("agent.metadata.name", "", [tc.M_AGENT_NAME]),
    ("agent.spec", [], [tc.M_SPEC]),
    ("agent.spec.tier", 1, [tc.M_TIER]),
    ("agent.spec.mcpServers", {"github": []}, [tc.M_SERVERS]),
    ("agent.spec.mcpServers", [{"name": "github", "tools": "list_issues"}], [tc.M_SERVERS]),
    ("agent.spec.mcpServers", [{"name": "github", "tools": [{"name": 1}]}], [tc.M_SERVERS]),
    # a string budget compares above every number in Rego: the budget rule never fired
    ("agent.spec.budget.monthlyUsd", "200", [tc.M_BUDGET]),
    ("agent.spec.budget", _DROP, [tc.M_BUDGET]),
    ("agent.spec.audit.enabled", "true", [tc.M_AUDIT]),
    ("agent.spec.egress", "api.github.com", [tc.M_EGRESS]),
    ("agent.spec.approval", [], [tc.M_APPROVAL]),
    # a string here made the approval rule read a substring, or nothing
    ("agent.spec.approval.requiredFor", "list_issues", [tc.M_REQUIRED_FOR]),
    ("agent.spec.approval.spendAboveUsd", "1", [tc.M_SPEND_ABOVE]),
    ("agent.spec.approval.spendAboveUsd", -1, [tc.M_SPEND_ABOVE]),
    ("tool", _DROP, [tc.M_TOOL]),
    ("tool", "github/list_issues", [tc.M_TOOL]),
    ("tool.name", "", [tc.M_TOOL]),
    ("tool.server", ["github"], [tc.M_TOOL]),
    ("action", _DROP, [tc.M_ACTION]),
    ("action", ["write"], [tc.M_ACTION]),
    ("args", "cheap", [tc.M_ARGS]),
    # a negative cost lowered the spend: a call past the budget was allowed
    ("args.cost_usd", -10_000, [tc.M_COST]),
    ("args.cost_usd", True, [tc.M_COST]),
    ("args.domain", 5, [tc.M_DOMAIN]),
    ("spend_so_far", None, [tc.M_SPEND]),
    ("spend_so_far", -1e9, [tc.M_SPEND]),
    ("spend_so_far", "5", [tc.M_SPEND]),
]


@pytest.mark.parametrize(("path", "value", "messages"), MALFORMED)
def test_a_malformed_call_is_denied_with_its_reason(
    engines: Engines, path: str, value: Any, messages: list[str]
) -> None:
    assert _all(engines, _with(path, value)) == _refused(*messages)


def test_past_the_budget_with_a_negative_cost_is_denied(engines: Engines) -> None:
    """Before the fix: spend 199.5 + cost -100 passed AGENT-103 and was allowed."""
    call = {**ALLOWED, "spend_so_far": 199.5, "args": {"cost_usd": -100}}
    assert _all(engines, call) == _refused(tc.M_COST)


@pytest.mark.parametrize("action", ["Write", "write ", "", "WRITE", "list", "wr\u0456te"])
def test_an_action_the_pack_does_not_know_is_denied(engines: Engines, action: str) -> None:
    """Before AGENT-106: approval_actions matched exactly, so "Write" (or a
    Cyrillic i, U+0456) slipped past AGENT-111 and the call was allowed, no person asked."""
    got = _all(engines, {**ALLOWED, "action": action})
    assert not got["allow"] and got["deny"] and not got["needs_approval"]
    assert [r for r in got["reasons"] if r.startswith("AGENT-106: ")] == [
        f"AGENT-106: action '{action}' is not one of the known actions: the gateway must "
        "classify the call (known_actions and approval_actions list them; matched exactly, "
        "case included)"
    ]
    for known, approval in (("read", False), ("write", True), ("delete", True)):
        got = _all(engines, {**ALLOWED, "action": known})
        assert got["allow"] is not approval and got["needs_approval"] is approval
        assert not got["deny"]


def test_an_action_only_approval_actions_lists_needs_approval() -> None:
    """A configuration listing `deploy` in approval_actions (known_actions left
    at its default) sends deploy calls to a person, as before AGENT-106; it
    does not deny them."""
    packs = load_packs(["policykit.packs.agents"])
    params = {"agents": {"approval_actions": ["write", "delete", "deploy"]}}
    engines = (NativeEngine(packs, params), OpaEngine(packs, params), RegopyEngine(packs, params))
    got = _all(engines, {**ALLOWED, "action": "deploy"})
    assert got["needs_approval"] and not got["deny"] and not got["allow"]
    assert _all(engines, {**ALLOWED, "action": "Deploy"})["deny"]


@pytest.mark.parametrize("call", [None, 5, "call", [ALLOWED], True, {}])
def test_what_is_not_a_call_object_is_denied(engines: Engines, call: Any) -> None:
    got = _all(engines, call)
    assert not got["allow"] and got["deny"]
    if call == {}:
        assert got == _refused(tc.M_ACTION, tc.M_AGENT, tc.M_TOOL)
    else:
        assert got == _refused(tc.M_OBJECT)


def test_every_problem_is_listed_sorted(engines: Engines) -> None:
    call = {"kind": "X", "agent": {"spec": {}}, "tool": {}, "action": 1, "spend_so_far": -1}
    assert _all(engines, call) == _refused(
        tc.M_ACTION,
        tc.M_AGENT_TYPE,
        tc.M_AGENT_NAME,
        tc.M_AUDIT,
        tc.M_BUDGET,
        tc.M_SERVERS,
        tc.M_TIER,
        tc.M_KIND,
        tc.M_SPEND,
        tc.M_TOOL,
    )


def test_without_rules_for_tool_calls_every_call_is_denied() -> None:
    """A bundle with no ToolCall rule used to allow every call with no reason."""
    packs = load_packs(["policykit.packs.starter"])
    want = {"allow": False, "deny": True, "needs_approval": False, "reasons": [tc.NO_RULES]}
    native, opa = NativeEngine(packs), OpaEngine(packs)
    for call in (ALLOWED, EXPENSIVE, {}, 5):
        assert decide(native, call) == want
        assert opa.decide(call) == want


# --- properties --------------------------------------------------------------------

CALL_KEYS = ["apiVersion", "kind", "metadata", "agent", "tool", "action", "args", "spend_so_far"]
KEY_NAMES = st.one_of(
    st.sampled_from([*CALL_KEYS, "spec", "status", "Kind", "KIND", "apiversion", "allow", ""]),
    st.text(max_size=8),
)
JSON = st.one_of(
    json_value(2),
    st.sampled_from([tc.API_VERSION, tc.KIND, "Agent", "ToolCall", "X", "v1", {}, [], 0, -1]),
    st.dictionaries(st.sampled_from(["server", "name", "cost_usd", "domain"]), json_value(1)),
)


@st.composite
def calls(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed call (agent, tool and action present; args and
    spend_so_far sometimes), allowed, needing approval or denied."""
    agent = copy.deepcopy(AGENT)
    agent["spec"]["audit"]["enabled"] = draw(st.booleans())
    call: dict[str, Any] = {
        "agent": agent,
        "tool": {
            "server": draw(st.sampled_from(["github", "docs", "jira"])),
            "name": draw(st.sampled_from(["list_issues", "comment", "merge_pr", "search"])),
        },
        "action": draw(st.sampled_from(["read", "write", "delete", "list"])),
    }
    if draw(st.booleans()):
        args: dict[str, Any] = {}
        if draw(st.booleans()):
            args["cost_usd"] = draw(st.sampled_from([0, 0.5, 40, 10_000]))
        if draw(st.booleans()):
            args["domain"] = draw(st.sampled_from(["api.github.com", "evil.org"]))
        call["args"] = args
    if draw(st.booleans()):
        call["spend_so_far"] = draw(st.sampled_from([0, 12.5, 160, 199.5]))
    return call


def _add(call: dict[str, Any], where: str, key: str, value: Any) -> dict[str, Any] | None:
    """``call`` with ``key: value`` added at the top or into ``tool``/``args``;
    None when the key is already there (adding, not replacing)."""
    out = copy.deepcopy(call)
    node = out if where == "top" else out.get(where)
    if not isinstance(node, dict) or key in node:
        return None
    node[key] = value
    return out


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    call=calls(),
    where=st.sampled_from(["top", "top", "tool", "args"]),
    key=KEY_NAMES,
    value=JSON,
)
def test_adding_a_key_never_turns_a_denied_call_into_allow(
    engines: Engines, call: dict[str, Any], where: str, key: str, value: Any
) -> None:
    """Any key, any JSON value, added to a call that is not allowed: still not
    allowed, and a denied call still denied; native and real OPA agree."""
    native, opa, _ = engines
    before = decide(native, call)
    assert opa.decide(call) == before
    extended = _add(call, where, key, value)
    if extended is None:
        return
    after = decide(native, extended)
    assert opa.decide(extended) == after
    if not before["allow"]:
        assert not after["allow"], (key, value, after)
    if before["deny"]:
        assert after["deny"], (key, value, after)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    top=st.dictionaries(KEY_NAMES, JSON, max_size=5),
    keep=st.sets(st.sampled_from(["agent", "tool", "action", "args", "spend_so_far"])),
    base=calls(),
)
def test_any_input_gets_the_same_answer_natively_and_in_opa(
    engines: Engines, top: dict[str, Any], keep: set[str], base: dict[str, Any]
) -> None:
    """Arbitrary JSON mixed with parts of a real call: the same decision in the
    reference engine and real OPA, and never allowed unless well-formed."""
    native, opa, _ = engines
    call = {**{k: v for k, v in base.items() if k in keep}, **top}
    got = decide(native, call)
    assert opa.decide(call) == got
    if got["allow"]:
        assert tc.problems(call) == []
        assert got["reasons"] == []


# --- the admission entry points fail closed too -----------------------------------


@pytest.mark.parametrize("value", [None, 5, "Pod", [{"kind": "Pod"}], True])
def test_violations_and_batch_deny_what_is_not_an_object(value: Any) -> None:
    """``violations`` of a non-object input was ``[]``: read as clean."""
    from policykit.targets.rego.compiler import NOT_AN_OBJECT

    packs = load_packs(["policykit.packs.starter"])
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}
    for engine in (OpaEngine(packs), RegopyEngine(packs, mode="object")):
        assert engine._query("violations", value) == [NOT_AN_OBJECT]
        got = engine._query("batch", {"objects": [value, pod]})
        assert got[0] == [NOT_AN_OBJECT]
        assert got[1] == engine.raw_batch([pod])[0] != []
