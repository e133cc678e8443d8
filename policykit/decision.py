"""The runtime decision for one agent tool call (bounded autonomy).

An MCP gateway asks, for each call, ``{agent, tool, action, args,
spend_so_far}``. The input is read as an object of ``kind: ToolCall``
(``apiVersion: agents.policykit.dev/v1alpha1``; the decision's own fields win
over the input's) and every rule selecting it is evaluated; then

* a ``deny`` finding denies the call (a hard limit);
* a ``warn`` finding requires human approval (a bound the agent may pass only
  with a person's consent);
* an ``info`` finding is a note;

``allow`` is true when nothing denies and nothing needs approval, and
``reasons`` lists ``"<rule id>: <message>"`` for every finding, in rule order.

The decision **fails closed**: an input it cannot classify (not an object, an
``apiVersion``/``kind`` of its own, ``metadata``, a malformed field a rule reads:
see :mod:`policykit.toolcall`), or a set of packs with no rule for tool calls, is
denied with ``reasons`` starting ``policykit:`` and no rule is evaluated.
The compiled bundle answers the same at ``data.<root>.main.decision``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policykit.engines.native import NativeEngine
from policykit.errors import PolicykitError
from policykit.ir.evaluate import INVENTORY, selector_matches
from policykit.ir.nodes import OBJECT_ROOT
from policykit.toolcall import (
    AGENT_API_PREFIX,
    API_VERSION,
    KIND,
    M_OBJECT,
    NO_RULES,
    PREFIX,
    as_call,
    decides_calls,
    problems,
    refusal,
)
from policykit.values import plain

__all__ = ["Decider", "Decision", "as_call", "decide", "denied"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The runtime decision for one agent tool call.

    Every engine gives this same object for the same call (the reference
    engine, real OPA and regopy through [`Policy.decide`][policykit.library.Policy.decide]);
    its JSON form, [`to_json`][policykit.decision.Decision.to_json], is the
    document the bundle's ``data.<root>.main.decision`` answers.

    Attributes:
        allow: Nothing denies the call and nothing needs a person's approval
            (only ``info`` findings, or none).
        deny: A ``deny`` rule fired, or the input is not a call the rules can
            decide (then every reason starts ``policykit:``).
        needs_approval: A ``warn`` rule fired: the call may go ahead only with
            a person's consent.
        reasons: ``"<rule id>: <message>"`` for every finding, in rule order.
    """

    allow: bool
    deny: bool
    needs_approval: bool
    reasons: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """``{allow, deny, needs_approval, reasons}``, as the bundle answers."""
        return {
            "allow": self.allow,
            "deny": self.deny,
            "needs_approval": self.needs_approval,
            "reasons": list(self.reasons),
        }

    @classmethod
    def refused(cls, *reasons: str) -> Decision:
        """The denial of a call no rule decides (each reason starts ``policykit:``)."""
        return cls(False, True, False, reasons)

    @classmethod
    def from_json(cls, doc: Any) -> Decision:
        """The decision a ``{allow, deny, needs_approval, reasons}`` document states.

        Raises:
            PolicykitError: ``doc`` is not such a document.
        """
        if not (
            isinstance(doc, Mapping)
            and all(type(doc.get(k)) is bool for k in ("allow", "deny", "needs_approval"))
            and isinstance(doc.get("reasons"), list)
            and all(isinstance(r, str) for r in doc["reasons"])
        ):
            raise PolicykitError(f"not a decision document: {str(doc)[:200]}")
        return cls(doc["allow"], doc["deny"], doc["needs_approval"], tuple(doc["reasons"]))


SOURCE = "kubernetes"  # a call is read as a Kubernetes-style object


def _number(v: Any) -> bool:
    """A JSON number >= 0 (as ``toolcall._nonneg``, for exact types only)."""
    t = type(v)
    return (t is int or (t is float and math.isfinite(v))) and v >= 0


def _strings(v: Any) -> bool:
    return type(v) is list and all(type(x) is str for x in v)


def well_formed(call: Any) -> bool:
    """A fast, sufficient test that ``toolcall.problems(call)`` is empty.

    It checks what ``problems`` checks, on exact JSON types (``dict``,
    ``list``, ``str``, ``int``, ``float``, ``bool``) only: ``True`` means the
    call is well-formed; ``False`` means "ask ``problems``", which has the
    last word (and the reasons). Property tests hold the implication.
    """
    if type(call) is not dict:
        return False
    for k in call:
        if type(k) is not str:
            return False
    get = call.get
    if "metadata" in call:
        return False
    if "apiVersion" in call and call["apiVersion"] != API_VERSION:
        return False
    if "kind" in call and call["kind"] != KIND:
        return False
    agent, tool = get("agent"), get("tool")
    if type(agent) is not dict or type(tool) is not dict:
        return False
    server, name = tool.get("server"), tool.get("name")
    if type(server) is not str or not server or type(name) is not str or not name:
        return False
    if type(get("action")) is not str:
        return False
    if "args" in call:
        args = call["args"]
        if type(args) is not dict:
            return False
        if "cost_usd" in args and not _number(args["cost_usd"]):
            return False
        if "domain" in args and type(args["domain"]) is not str:
            return False
    if "spend_so_far" in call and not _number(call["spend_so_far"]):
        return False
    api, meta, spec = agent.get("apiVersion"), agent.get("metadata"), agent.get("spec")
    if not (type(api) is str and api.startswith(AGENT_API_PREFIX) and agent.get("kind") == "Agent"):
        return False
    if type(meta) is not dict or type(spec) is not dict:
        return False
    agent_name = meta.get("name")
    if type(agent_name) is not str or not agent_name or type(spec.get("tier")) is not str:
        return False
    budget, audit = spec.get("budget"), spec.get("audit")
    if type(budget) is not dict or not _number(budget.get("monthlyUsd", -1)):
        return False
    if type(audit) is not dict or type(audit.get("enabled")) is not bool:
        return False
    servers = spec.get("mcpServers")
    if type(servers) is not list:
        return False
    for server_ in servers:
        if type(server_) is not dict or type(server_.get("name")) is not str:
            return False
        tools = server_.get("tools")
        if type(tools) is not list:
            return False
        for t in tools:
            if type(t) is not dict or type(t.get("name")) is not str:
                return False
    if "egress" in spec and not _strings(spec["egress"]):
        return False
    if "approval" in spec:
        approval = spec["approval"]
        if type(approval) is not dict:
            return False
        if "requiredFor" in approval and not _strings(approval["requiredFor"]):
            return False
        if "spendAboveUsd" in approval and not _number(approval["spendAboveUsd"]):
            return False
    return True


def denied(reasons: list[str]) -> dict[str, Any]:
    """The answer for a call the decision refuses before any rule runs."""
    return {"allow": False, "deny": True, "needs_approval": False, "reasons": reasons}


class Decider:
    """The reference decision for one engine's packs, with what does not
    depend on the call worked out once: ``Decider(engine)(call)`` is
    ``decide(engine, call)`` as a [`Decision`][policykit.decision.Decision].

    Worked out once: whether a rule decides calls, the rules' order, and which
    rules select a call. A call's ``apiVersion`` and ``kind`` are the
    decision's own and it has no ``metadata`` (refused), so a selector picks
    every call or none, unless it names entity types (read per call).
    """

    __slots__ = ("_decides", "_engine", "_rules")

    def __init__(self, engine: NativeEngine) -> None:
        self._engine = engine
        self._decides = decides_calls(engine.packs)
        rank = {id(r): i for i, r in enumerate(r for p in engine.packs for r in p.rules)}
        probe = {"apiVersion": API_VERSION, "kind": KIND}
        rules = [
            (cr, bool(cr.rule.selector.entity_types))
            for cr in engine.rules_for(probe)
            if cr.rule.selector.entity_types or selector_matches(cr.rule.selector, probe, SOURCE)
        ]
        # in rule order, so the hits need no sorting
        self._rules = sorted(rules, key=lambda r: rank[id(r[0].rule)])

    def prepare(self, call: Any) -> tuple[Any, Decision | None]:
        """The call as the rules read it, and the denial of a call no rule can
        decide (no rule decides calls, or the call is not one: each reason
        starts ``policykit:``), else None. A well-formed call is itself; one
        made of other mapping, sequence, str or number types (an
        ``enum.StrEnum`` action, ruamel.yaml's types) is read as plain values
        (:func:`policykit.values.plain`): the rules test exact types."""
        if not self._decides:
            return call, Decision.refused(NO_RULES)
        if well_formed(call):
            return call, None
        bad = problems(call)
        if bad:
            return call, Decision.refused(*(PREFIX + m for m in bad))
        try:
            return plain(call), None
        except RecursionError:
            return call, Decision.refused(f"{PREFIX}{M_OBJECT} (nested too deeply)")

    def __call__(self, call: Any) -> Decision:
        call, refused = self.prepare(call)
        if refused is not None:
            return refused
        return self.decide_prepared(call)

    def decide_prepared(self, call: Any) -> Decision:
        """The decision of a call :meth:`prepare` gave (and did not refuse)."""
        obj = as_call(call)
        inventory = self._engine.inventory
        reasons: list[str] = []
        deny = warn = False
        # as NativeEngine.evaluate_object, over the rules that select calls
        for cr, per_call in self._rules:
            if per_call and not selector_matches(cr.rule.selector, obj, SOURCE):
                continue
            env: dict[str, Any] = {OBJECT_ROOT: obj, INVENTORY: inventory}
            if cr.each is None:
                if not cr.cond(env):
                    continue
                reasons.append(f"{cr.rule.id}: {cr.message(env)}")
            else:
                coll = cr.each(env)
                if type(coll) is not list:
                    continue
                fired = False
                for item in coll:
                    env[cr.each_var] = item
                    if cr.cond(env):
                        fired = True
                        reasons.append(f"{cr.rule.id}: {cr.message(env)}")
                if not fired:
                    continue
            severity = cr.rule.severity
            if severity == "deny":
                deny = True
            elif severity == "warn":
                warn = True
        return Decision(not (deny or warn), deny, warn, tuple(reasons))


def decide(engine: NativeEngine, call: Any) -> dict[str, Any]:
    """``{allow, deny, needs_approval, reasons}`` for one call (reference semantics).

    The plain reading, kept for existing callers and as the reference the
    faster ``Decider`` is tested against;
    [`Policy.decide`][policykit.library.Policy.decide] is the library's entry
    point (it returns a [`Decision`][policykit.decision.Decision])."""
    refused = refusal(engine.packs, call)
    if refused:
        return denied(refused)
    obj = as_call(call)
    rank = {id(r): i for i, r in enumerate(r for p in engine.packs for r in p.rules)}
    hits = sorted(
        engine.evaluate_object(obj, SOURCE),
        key=lambda h: (rank[id(h[0].rule)], -1 if h[2] is None else h[2]),
    )
    severities = [cr.rule.severity for cr, _, _ in hits]
    return {
        "allow": all(s == "info" for s in severities),
        "deny": "deny" in severities,
        "needs_approval": "warn" in severities,
        "reasons": [f"{cr.rule.id}: {msg}" for cr, msg, _ in hits],
    }
