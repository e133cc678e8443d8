"""The runtime decision for one agent tool call (bounded autonomy).

An MCP gateway asks, for each call, ``{agent, tool, action, args,
spend_so_far}``. The input is read as an object of ``kind: ToolCall``
(``apiVersion: agents.policykit.dev/v1alpha1``) and every rule selecting it is
evaluated; then

* a ``deny`` finding denies the call (a hard limit);
* a ``warn`` finding requires human approval (a bound the agent may pass only
  with a person's consent);
* an ``info`` finding is a note;

``allow`` is true when nothing denies and nothing needs approval, and
``reasons`` lists ``"<rule id>: <message>"`` for every finding, in rule order.
The compiled bundle answers the same at ``data.<root>.main.decision``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policykit.engines.native import NativeEngine
from policykit.targets.rego.compiler import CALL_API_VERSION, CALL_KIND


def as_call(call: Mapping[str, Any]) -> dict[str, Any]:
    """The input as the ToolCall object the rules select."""
    return {"apiVersion": CALL_API_VERSION, "kind": CALL_KIND, **call}


def decide(engine: NativeEngine, call: Mapping[str, Any]) -> dict[str, Any]:
    """``{allow, deny, needs_approval, reasons}`` for one call (reference semantics)."""
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
