"""What the runtime decision accepts as one agent tool call: it fails closed.

The decision (:mod:`policykit.decision`, and ``data.<root>.main.decision`` in a
bundle) answers ``allow`` only for an input it can classify. Anything else is
**denied** with ``reasons`` saying why, before any rule is evaluated:

* the input must be a JSON object;
* ``apiVersion`` and ``kind`` belong to the decision: the input is read as
  ``{apiVersion: agents.policykit.dev/v1alpha1, kind: ToolCall}`` over the call
  (the decision's fields win), and an input carrying any other value for them is
  refused; ``metadata`` is not a field of a call (a bundle's waivers match on
  it) and is refused too;
* the fields the agents pack's rules read must be well-formed, because a rule
  reading a malformed field may silently not fire: ``agent`` an Agent manifest
  (``apiVersion agents.policykit.dev/...``, ``kind Agent``) with a non-empty
  ``metadata.name``, ``spec`` an object with a string ``tier``, ``mcpServers`` an
  array of ``{name, tools: [{name}]}`` (strings), ``budget.monthlyUsd`` a number
  >= 0 and ``audit.enabled`` a boolean; when present, ``spec.egress`` an array of
  strings, ``spec.approval`` an object whose ``requiredFor`` is an array of
  strings and ``spendAboveUsd`` a number >= 0; ``tool`` an object whose
  ``server`` and ``name`` are non-empty strings; ``action`` a string; when
  present, ``args`` an object, ``args.cost_usd`` and ``spend_so_far`` numbers
  >= 0 (a negative cost would lower the spend) and ``args.domain`` a string.
  ``null`` is not "absent": a field present with ``null`` is malformed;
* at least one rule must decide tool calls (select ``kind: ToolCall``): a bundle
  without the agents pack (or rules of its own for calls) denies every call.

Other top-level keys (a gateway's request id, say) are ignored: no rule reads
them. The Rego of ``main.decision`` (``policykit/targets/rego/compiler.py``)
applies exactly these checks with exactly these messages; tests hold the two to
the same answers. ``schemas/tool-call.schema.json`` describes the input.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from policykit.ir.evaluate.selector import selector_matches
from policykit.ir.rule import Pack

API_VERSION = "agents.policykit.dev/v1alpha1"
KIND = "ToolCall"
AGENT_API_PREFIX = "agents.policykit.dev/"

PREFIX = "policykit: input is not a tool call: "
UNDEFINED = "policykit: the decision is undefined for this input"
NO_RULES = "policykit: no rule decides tool calls (add the agents pack to the bundle)"

M_OBJECT = "the input must be a JSON object"
M_API = f"apiVersion must be {API_VERSION} or left out (the decision sets it)"
M_KIND = f"kind must be {KIND} or left out (the decision sets it)"
M_META = "metadata is not a field of a tool call"
M_AGENT = "agent must be an object"
M_AGENT_TYPE = f"agent must be an Agent manifest (apiVersion {AGENT_API_PREFIX}..., kind Agent)"
M_AGENT_NAME = "agent.metadata.name must be a non-empty string"
M_SPEC = "agent.spec must be an object"
M_TIER = "agent.spec.tier must be a string"
M_SERVERS = "agent.spec.mcpServers must be an array of {name, tools: [{name}]} with string names"
M_BUDGET = "agent.spec.budget.monthlyUsd must be a number >= 0"
M_AUDIT = "agent.spec.audit.enabled must be a boolean"
M_EGRESS = "agent.spec.egress must be an array of strings"
M_APPROVAL = "agent.spec.approval must be an object"
M_REQUIRED_FOR = "agent.spec.approval.requiredFor must be an array of strings"
M_SPEND_ABOVE = "agent.spec.approval.spendAboveUsd must be a number >= 0"
M_TOOL = "tool must be an object {server, name} of non-empty strings"
M_ACTION = "action must be a string"
M_ARGS = "args must be an object"
M_COST = "args.cost_usd must be a number >= 0"
M_DOMAIN = "args.domain must be a string"
M_SPEND = "spend_so_far must be a number >= 0"

_ABSENT = object()


def _get(value: Any, *keys: str) -> Any:
    """``value[k1][k2]...`` through objects only; ``_ABSENT`` where a step is not
    an object or lacks the key (Rego's undefined)."""
    for k in keys:
        if not isinstance(value, Mapping) or k not in value:
            return _ABSENT
        value = value[k]
    return value


def _string(v: Any) -> bool:
    return isinstance(v, str)


def _nonempty(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def _nonneg(v: Any) -> bool:
    """A JSON number >= 0 (``bool`` is not a number; nor is NaN or infinity)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    if isinstance(v, float) and not math.isfinite(v):
        return False
    return v >= 0


def _strings(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _servers(v: Any) -> bool:
    return isinstance(v, list) and all(
        isinstance(s, Mapping)
        and _string(_get(s, "name"))
        and isinstance(_get(s, "tools"), list)
        and all(isinstance(t, Mapping) and _string(_get(t, "name")) for t in s["tools"])
        for s in v
    )


def problems(call: Any) -> list[str]:
    """Why ``call`` is not a tool call the rules can decide, sorted (``[]``: it is)."""
    if not isinstance(call, Mapping) or not all(isinstance(k, str) for k in call):
        return [M_OBJECT]
    bad: set[str] = set()

    def present(*keys: str) -> bool:
        return _get(call, *keys) is not _ABSENT

    if present("apiVersion") and call["apiVersion"] != API_VERSION:
        bad.add(M_API)
    if present("kind") and call["kind"] != KIND:
        bad.add(M_KIND)
    if present("metadata"):
        bad.add(M_META)
    agent = _get(call, "agent")
    if not isinstance(agent, Mapping):
        bad.add(M_AGENT)
    else:
        api = _get(agent, "apiVersion")
        if not (
            _string(api) and api.startswith(AGENT_API_PREFIX) and _get(agent, "kind") == "Agent"
        ):
            bad.add(M_AGENT_TYPE)
        if not _nonempty(_get(agent, "metadata", "name")):
            bad.add(M_AGENT_NAME)
        spec = _get(agent, "spec")
        if not isinstance(spec, Mapping):
            bad.add(M_SPEC)
        else:
            if not _string(_get(spec, "tier")):
                bad.add(M_TIER)
            if not _servers(_get(spec, "mcpServers")):
                bad.add(M_SERVERS)
            if not _nonneg(_get(spec, "budget", "monthlyUsd")):
                bad.add(M_BUDGET)
            if not isinstance(_get(spec, "audit", "enabled"), bool):
                bad.add(M_AUDIT)
            for keys, ok, msg in (
                (("egress",), _strings, M_EGRESS),
                (("approval",), lambda v: isinstance(v, Mapping), M_APPROVAL),
                (("approval", "requiredFor"), _strings, M_REQUIRED_FOR),
                (("approval", "spendAboveUsd"), _nonneg, M_SPEND_ABOVE),
            ):
                v = _get(spec, *keys)
                if v is not _ABSENT and not ok(v):
                    bad.add(msg)
    tool = _get(call, "tool")
    if not (
        isinstance(tool, Mapping)
        and _nonempty(_get(tool, "server"))
        and _nonempty(_get(tool, "name"))
    ):
        bad.add(M_TOOL)
    if not _string(_get(call, "action")):
        bad.add(M_ACTION)
    for keys, ok, msg in (
        (("args",), lambda v: isinstance(v, Mapping), M_ARGS),
        (("args", "cost_usd"), _nonneg, M_COST),
        (("args", "domain"), _string, M_DOMAIN),
        (("spend_so_far",), _nonneg, M_SPEND),
    ):
        v = _get(call, *keys)
        if v is not _ABSENT and not ok(v):
            bad.add(msg)
    return sorted(bad)


def as_call(call: Mapping[str, Any]) -> dict[str, Any]:
    """The input as the ToolCall object the rules select: the decision's own
    ``apiVersion`` and ``kind`` over the input's (never the other way round)."""
    return {**call, "apiVersion": API_VERSION, "kind": KIND}


def decides_calls(packs: Iterable[Pack]) -> bool:
    """Whether a rule of ``packs`` decides tool calls: its selector names
    ``kind: ToolCall`` and picks the call object."""
    obj = {"apiVersion": API_VERSION, "kind": KIND}
    return any(
        KIND in r.selector.kinds and selector_matches(r.selector, obj, "kubernetes")
        for p in packs
        for r in p.rules
    )


def refusal(packs: Iterable[Pack], call: Any) -> list[str]:
    """The reasons the decision denies ``call`` before evaluating any rule
    (``[]``: the rules decide)."""
    if not decides_calls(packs):
        return [NO_RULES]
    return [PREFIX + m for m in problems(call)]
