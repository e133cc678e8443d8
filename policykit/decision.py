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

from typing import Any

from policykit.engines.native import NativeEngine
from policykit.toolcall import as_call, refusal

__all__ = ["as_call", "decide", "denied"]


def denied(reasons: list[str]) -> dict[str, Any]:
    """The answer for a call the decision refuses before any rule runs."""
    return {"allow": False, "deny": True, "needs_approval": False, "reasons": reasons}


def decide(engine: NativeEngine, call: Any) -> dict[str, Any]:
    """``{allow, deny, needs_approval, reasons}`` for one call (reference semantics)."""
    refused = refusal(engine.packs, call)
    if refused:
        return denied(refused)
    obj = as_call(call)
    rank = {id(r): i for i, r in enumerate(r for p in engine.packs for r in p.rules)}
    hits = sorted(
        engine.evaluate_object(obj, "kubernetes"),
        key=lambda h: (rank[id(h[0].rule)], -1 if h[2] is None else h[2]),
    )
    severities = [cr.rule.severity for cr, _, _ in hits]
    return {
        "allow": all(s == "info" for s in severities),
        "deny": "deny" in severities,
        "needs_approval": "warn" in severities,
        "reasons": [f"{cr.rule.id}: {msg}" for cr, msg, _ in hits],
    }
