"""The agents pack: what an AI agent may do, declared, reviewed and enforced.

An agent is declared by an **Agent manifest** (``schemas/agent.schema.json``), a
Kubernetes-style resource ``agents.policykit.dev/v1alpha1``, ``kind: Agent``.
It is a Kubernetes-style resource rather than a Backstage kind because the
permissions must hold where the agent *runs*: as a resource it is checked in CI
like any manifest, rejected at admission by Gatekeeper, Kyverno or a
ValidatingAdmissionPolicy (a CRD in the cluster the agent gateway reads), and
still shows up in Backstage through the Kubernetes plugin or a catalog entity
that points at it. A Backstage kind would be checked in CI only.

Two kinds of rules:

* **static** (AGENT-0xx, on ``kind: Agent``): a non-human identity, an owner,
  tools within the tier's allowlist, no wildcard scopes, write/delete scopes
  behind human approval, egress within the allowlist, a budget within the
  tier's limit, audit logging on;
* **runtime** (AGENT-1xx, on ``kind: ToolCall``): the decision an MCP gateway's
  OPA takes for one call. The input ``{agent, tool, action, args, spend_so_far}``
  (``agent`` the Agent manifest, ``tool`` ``{server, name}``, ``args.cost_usd``
  the call's estimated cost, ``args.domain`` the host it reaches) is evaluated
  as a ``ToolCall`` object; ``deny`` findings deny the call, ``warn`` findings
  require human approval (bounded autonomy: allowed within the bounds, approved
  beyond them, denied past the hard limits). Query ``data.policykit.main.decision``
  for ``{allow, deny, needs_approval, reasons}`` (:mod:`policykit.decision`). The
  decision fails closed: input it cannot classify is denied with a reason before
  these rules run (:mod:`policykit.toolcall` lists what it requires).
"""

from __future__ import annotations

from policykit.dsl import Cond, P, PackBuilder, Val, param, select

AGENT = select(source="kubernetes", api_versions=["agents.policykit.dev/*"], kinds=["Agent"])
CALL = select(api_versions=["agents.policykit.dev/*"], kinds=["ToolCall"])

agents = PackBuilder(
    "agents",
    "1.0.0",
    description="Permissions of AI agents: declared tools, scopes, egress, budgets, audit, "
    "approval; and the runtime decision for one tool call.",
    params={
        "tier_tools": param(
            {
                "sandbox": {"docs": ["search", "read_page"]},
                "internal": {
                    "docs": ["search", "read_page"],
                    "github": ["read_file", "list_issues", "create_issue", "comment"],
                    "jira": ["read_issue", "create_issue"],
                },
                "production": {
                    "docs": ["search", "read_page"],
                    "github": ["read_file", "list_issues", "create_issue", "comment", "merge_pr"],
                    "jira": ["read_issue", "create_issue", "transition_issue"],
                    "pagerduty": ["read_incident", "acknowledge"],
                },
            },
            {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
            "Per tier: MCP server name -> the tools an agent of that tier may use.",
        ),
        "tier_budget_usd": param(
            {"sandbox": 50, "internal": 500, "production": 2000},
            {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
            "Per tier: the most an agent may spend a month (USD).",
        ),
        "egress_allowlist": param(
            [".example.com", "api.github.com", "api.atlassian.com", "api.pagerduty.com"],
            {"type": "array", "items": {"type": "string", "minLength": 1}},
            "Hosts an agent may reach; an entry starting with '.' allows its subdomains.",
        ),
        "approval_scopes": param(
            r"(:write|:delete|:admin)$",
            {"type": "string"},
            "Regex of scopes whose tools must be listed in spec.approval.requiredFor.",
        ),
        "approval_actions": param(
            ["write", "delete"],
            {"type": "array", "items": {"type": "string"}},
            "Actions of a tool call that always need human approval.",
        ),
        "known_actions": param(
            ["read", "write", "delete"],
            {"type": "array", "items": {"type": "string"}},
            "Actions a gateway may send without approval; an action neither here nor in "
            "approval_actions is denied (the call is not classified, so whether it needs "
            "approval is unknown).",
        ),
    },
)


def _egress_ok(domain: Val) -> Cond:
    return P("egress_allowlist").any(
        lambda a: (domain == a) | (a.startswith(".") & domain.endswith(a))
    )


@agents.rule(
    "AGENT-001",
    title="Agents run under a non-human identity",
    select=AGENT,
    message="Agent {metadata.name} has identity type '{spec.identity.type}' / principal "
    "'{spec.identity.principal}': use a workload or service-account identity",
    remediation="Give the agent its own workload identity (SPIFFE id or service account); never "
    "a person's credentials.",
    tags=["agents", "identity"],
)
def identity(o: Val) -> object:
    ident = o.spec.identity
    return (
        ~ident.type.is_in(["workload", "service-account"])
        | ~ident.principal.is_type("string")
        | ident.principal.contains("@")
    )


@agents.rule(
    "AGENT-002",
    title="Agents have an owning group",
    select=AGENT,
    message="Agent {metadata.name} has owner '{spec.owner}', not a group reference",
    remediation="Set spec.owner to the owning team, e.g. group:default/ml-platform.",
    tags=["agents", "ownership"],
)
def owner(o: Val) -> object:
    return ~o.spec.owner.matches(r"^(group:)?([^:/]+/)?[^:/]+$")


@agents.rule(
    "AGENT-003",
    title="Agents use only the tools their tier allows",
    select=AGENT,
    each=lambda o: o.spec.mcpServers,
    message="Agent {metadata.name} (tier {spec.tier}) declares tools of MCP server {s.name} "
    "that tier {spec.tier} does not allow",
    remediation="Remove the tools, or move the agent to a tier that allows them (review needed).",
    tags=["agents", "tools"],
)
def tools_allowed(o: Val, s: Val) -> object:
    allowed = P("tier_tools")[o.spec.tier][s.name]
    return s.tools.any(lambda t: ~allowed.includes(t.name))


@agents.rule(
    "AGENT-004",
    title="Scopes are never wildcards",
    select=AGENT,
    each=lambda o: o.spec.mcpServers,
    message="Agent {metadata.name} grants a wildcard scope on MCP server {s.name}",
    remediation="Grant the narrowest scopes each tool needs (e.g. issues:read).",
    tags=["agents", "scopes"],
)
def no_wildcards(o: Val, s: Val) -> object:
    return s.tools.any(lambda t: t.scopes.any(lambda sc: sc.contains("*")))


@agents.rule(
    "AGENT-005",
    title="Tools with write or delete scopes require human approval",
    select=AGENT,
    each=lambda o: o.spec.mcpServers,
    message="Agent {metadata.name} may write or delete through MCP server {s.name} without "
    "human approval (add the tools to spec.approval.requiredFor)",
    remediation="List every tool with a write/delete/admin scope in spec.approval.requiredFor.",
    tags=["agents", "approval"],
)
def approval(o: Val, s: Val) -> object:
    needed = o.spec.approval.requiredFor
    return s.tools.any(
        lambda t: (
            t.scopes.any(lambda sc: sc.matches(P("approval_scopes"))) & ~needed.includes(t.name)
        )
    )


@agents.rule(
    "AGENT-006",
    title="Egress stays within the allowlist",
    select=AGENT,
    each=lambda o: o.spec.egress,
    message="Agent {metadata.name} may reach {d}, which is not in the egress allowlist",
    remediation="Remove the host, or have it added to the egress allowlist after review.",
    tags=["agents", "egress"],
)
def egress(o: Val, d: Val) -> object:
    return ~_egress_ok(d)


@agents.rule(
    "AGENT-007",
    title="The budget is set and within the tier's limit",
    select=AGENT,
    message="Agent {metadata.name} (tier {spec.tier}) has a monthly budget of "
    "${spec.budget.monthlyUsd}, above its tier's limit or unset",
    remediation="Set spec.budget.monthlyUsd within the tier's limit.",
    tags=["agents", "finops"],
)
def budget(o: Val) -> object:
    limit = P("tier_budget_usd")[o.spec.tier]
    b = o.spec.budget.monthlyUsd
    return ~b.is_type("number") | ~(b <= limit)


@agents.rule(
    "AGENT-008",
    title="Audit logging is on",
    select=AGENT,
    message="Agent {metadata.name} does not log its tool calls (spec.audit.enabled)",
    remediation="Set spec.audit.enabled: true and a sink.",
    tags=["agents", "audit"],
)
def audit(o: Val) -> object:
    return ~(o.spec.audit.enabled == True)  # noqa: E712 - builds IR


# --- runtime: one tool call ----------------------------------------------------


@agents.rule(
    "AGENT-101",
    title="The agent declares the tool it calls",
    select=CALL,
    message="agent {agent.metadata.name} does not declare tool {tool.server}/{tool.name}",
    tags=["agents", "runtime"],
)
def declared(o: Val) -> object:
    t = o.tool
    return ~o.agent.spec.mcpServers.any(
        lambda s: (s.name == t.server) & s.tools.any(lambda x: x.name == t.name)
    )


@agents.rule(
    "AGENT-102",
    title="The tool is allowed for the agent's tier",
    select=CALL,
    message="tool {tool.server}/{tool.name} is not allowed for tier {agent.spec.tier}",
    tags=["agents", "runtime"],
)
def tier_allows(o: Val) -> object:
    return ~P("tier_tools")[o.agent.spec.tier][o.tool.server].includes(o.tool.name)


@agents.rule(
    "AGENT-103",
    title="The call stays within the agent's budget",
    select=CALL,
    message="agent {agent.metadata.name} has spent ${spend_so_far}; this call (${args.cost_usd}) "
    "would pass its budget of ${agent.spec.budget.monthlyUsd}",
    tags=["agents", "runtime", "finops"],
)
def within_budget(o: Val) -> object:
    spend = o.spend_so_far.default(0) + o.args.cost_usd.default(0)
    return ~(spend <= o.agent.spec.budget.monthlyUsd)


@agents.rule(
    "AGENT-104",
    title="The call reaches only declared, allowed hosts",
    select=CALL,
    message="the call reaches {args.domain}, outside the agent's egress",
    tags=["agents", "runtime", "egress"],
)
def call_egress(o: Val) -> object:
    d = o.args.domain
    return d.exists() & (~o.agent.spec.egress.includes(d) | ~_egress_ok(d))


@agents.rule(
    "AGENT-105",
    title="Agents without audit logging may not act",
    select=CALL,
    message="agent {agent.metadata.name} has audit logging off",
    tags=["agents", "runtime", "audit"],
)
def call_audited(o: Val) -> object:
    return ~(o.agent.spec.audit.enabled == True)  # noqa: E712 - builds IR


@agents.rule(
    "AGENT-106",
    title="The call's action is one the pack knows",
    select=CALL,
    message="action '{action}' is not one of the known actions: the gateway must classify "
    "the call (known_actions and approval_actions list them; matched exactly, case included)",
    remediation="Send one of known_actions (read, write, delete by default), or add the action "
    "to known_actions, and to approval_actions if it changes anything.",
    tags=["agents", "runtime", "approval"],
)
def known_action(o: Val) -> object:
    # fails closed: an action that approval_actions misses only by spelling
    # ("Write", "write ", "") would otherwise be allowed without a person; an
    # action a configuration lists in approval_actions alone is known (it
    # needs approval, AGENT-111)
    return ~o.action.is_in(P("known_actions")) & ~o.action.is_in(P("approval_actions"))


@agents.rule(
    "AGENT-110",
    title="Tools the agent marks for approval need a human",
    severity="warn",
    select=CALL,
    message="tool {tool.name} requires human approval for agent {agent.metadata.name}",
    tags=["agents", "runtime", "approval"],
)
def marked(o: Val) -> object:
    return o.agent.spec.approval.requiredFor.includes(o.tool.name)


@agents.rule(
    "AGENT-111",
    title="Write and delete actions need a human",
    severity="warn",
    select=CALL,
    message="action {action} needs human approval",
    tags=["agents", "runtime", "approval"],
)
def risky_action(o: Val) -> object:
    return o.action.is_in(P("approval_actions"))


@agents.rule(
    "AGENT-112",
    title="Spending beyond the approval bound needs a human",
    severity="warn",
    select=CALL,
    message="the call takes spend to ${spend_so_far} + ${args.cost_usd}, beyond the approval "
    "bound of ${agent.spec.approval.spendAboveUsd}",
    tags=["agents", "runtime", "approval"],
)
def spend_bound(o: Val) -> object:
    spend = o.spend_so_far.default(0) + o.args.cost_usd.default(0)
    return spend > o.agent.spec.approval.spendAboveUsd
