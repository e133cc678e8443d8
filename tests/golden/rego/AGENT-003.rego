# METADATA
# title: "policykit pack agents"
# description: "Permissions of AI agents: declared tools, scopes, egress, budgets, audit, approval; and the runtime decision for one tool call."
# custom:
#   pack: "agents"
#   version: "1.0.0"
#   generator: "policykit 0.1.0"
package policykit.agents

import data.policykit.lib.values

# Findings of rule AGENT-003 about one object.
_agent_003(obj) := [f |
	not values.is_backstage(obj)
	obj.kind in {"Agent"}
	values.api_version_any(["agents.policykit.dev/*"], obj.apiVersion)
	mcp_servers := obj.spec.mcpServers
	is_array(mcp_servers)
	some i
	s := mcp_servers[i]
	_agent_003_any_tools(obj, s)
	f := {"id": "AGENT-003", "item": i, "msg": concat("", ["Agent ", _agent_003_metadata_name_text(obj), " (tier ", _agent_003_tier_text(obj), ") declares tools of MCP server ", _agent_003_s_name_text(s), " that tier ", _agent_003_tier_text(obj), " does not allow"]), "pack": "agents", "severity": "deny"}
]

_agent_003_name_in_tier_tools_tier_name(obj, s, t) if {
	tier_tools := data.policykit.params.agents.tier_tools
	tier := obj.spec.tier
	is_object(tier_tools)
	is_string(tier)
	tier_tools_tier := tier_tools[tier]
	name := s.name
	is_object(tier_tools_tier)
	is_string(name)
	tier_tools_tier_name := tier_tools_tier[name]
	is_array(tier_tools_tier_name)
	t.name in tier_tools_tier_name
}

_agent_003_any_tools(obj, s) if {
	tools := s.tools
	is_array(tools)
	some t in tools
	not _agent_003_name_in_tier_tools_tier_name(obj, s, t)
}

_agent_003_metadata_name_text(obj) := values.render(name) if {
	name := obj.metadata.name
} else := ""

_agent_003_tier_text(obj) := values.render(tier) if {
	tier := obj.spec.tier
} else := ""

_agent_003_s_name_text(s) := values.render(name) if {
	name := s.name
} else := ""

# METADATA
# title: "Agents use only the tools their tier allows"
# custom:
#   id: "AGENT-003"
#   severity: "deny"
#   pack: "agents"
#   pack_version: "1.0.0"
#   tags:
#   - "agents"
#   - "tools"
#   remediation: "Remove the tools, or move the agent to a tier that allows them (review needed)."
deny contains f if {
	some f in _agent_003(input)
}

# Findings of every rule of the pack about one object, in rule order.
findings(obj) := [f |
	some fs in [_agent_003(obj)]
	some f in fs
]

# Entry point for one object as input (OPA's API, admission).
violations := findings(input)

# Entry point for many objects: input.objects, one result list per object.
batch := [findings(obj) | some obj in input.objects]
