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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policykit.engines.native import NativeEngine
from policykit.errors import PolicykitError
from policykit.toolcall import NO_RULES, PREFIX, as_call, decides_calls, problems

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


def denied(reasons: list[str]) -> dict[str, Any]:
    """The answer for a call the decision refuses before any rule runs."""
    return {"allow": False, "deny": True, "needs_approval": False, "reasons": reasons}


class Decider:
    """The reference decision for one engine's packs, with what does not
    depend on the call (whether a rule decides calls, the rules' order) worked
    out once: ``Decider(engine)(call)`` is ``decide(engine, call)`` as a
    [`Decision`][policykit.decision.Decision]."""

    __slots__ = ("_decides", "_engine", "_rank")

    def __init__(self, engine: NativeEngine) -> None:
        self._engine = engine
        self._decides = decides_calls(engine.packs)
        self._rank = {id(r): i for i, r in enumerate(r for p in engine.packs for r in p.rules)}

    def __call__(self, call: Any) -> Decision:
        if not self._decides:
            return Decision(False, True, False, (NO_RULES,))
        bad = problems(call)
        if bad:
            return Decision(False, True, False, tuple(PREFIX + m for m in bad))
        rank = self._rank
        hits = self._engine.evaluate_object(as_call(call), "kubernetes")
        if len(hits) > 1:
            hits.sort(key=lambda h: (rank[id(h[0].rule)], -1 if h[2] is None else h[2]))
        severities = [cr.rule.severity for cr, _, _ in hits]
        return Decision(
            "deny" not in severities and "warn" not in severities,
            "deny" in severities,
            "warn" in severities,
            tuple(f"{cr.rule.id}: {msg}" for cr, msg, _ in hits),
        )


def decide(engine: NativeEngine, call: Any) -> dict[str, Any]:
    """``{allow, deny, needs_approval, reasons}`` for one call (reference semantics).

    Kept for existing callers; [`Policy.decide`][policykit.library.Policy.decide]
    is the library's entry point (it returns a [`Decision`][policykit.decision.Decision])."""
    return Decider(engine)(call).to_json()
