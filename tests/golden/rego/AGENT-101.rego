# METADATA
# title: "policykit pack agents"
# description: "Permissions of AI agents: declared tools, scopes, egress, budgets, audit, approval; and the runtime decision for one tool call."
# custom:
#   pack: "agents"
#   version: "1.0.0"
#   generator: "policykit 0.1.0"
package policykit.agents

import data.policykit.lib.values

# Findings of rule AGENT-101 about one object.
_agent_101(obj) := [f |
	obj.kind in {"ToolCall"}
	values.api_version_any(["agents.policykit.dev/*"], obj.apiVersion)
	not _agent_101_any_mcp_servers(obj)
	f := {"id": "AGENT-101", "msg": concat("", ["agent ", _agent_101_agent_name_text(obj), " does not declare tool ", _agent_101_server_text(obj), "/", _agent_101_tool_name_text(obj)]), "pack": "agents", "severity": "deny"}
]

_agent_101_any_tools(obj, s) if {
	tools := s.tools
	is_array(tools)
	some x in tools
	x.name == obj.tool.name
}

_agent_101_any_agent_mcp_servers(obj) if {
	mcp_servers := obj.agent.spec.mcpServers
	is_array(mcp_servers)
	some s in mcp_servers
	s.name == obj.tool.server
	_agent_101_any_tools(obj, s)
}

_agent_101_any_mcp_servers(obj) if {
	_agent_101_any_agent_mcp_servers(obj)
}

_agent_101_agent_name_text(obj) := values.render(name) if {
	name := obj.agent.metadata.name
} else := ""

_agent_101_server_text(obj) := values.render(server) if {
	server := obj.tool.server
} else := ""

_agent_101_tool_name_text(obj) := values.render(name) if {
	name := obj.tool.name
} else := ""

# METADATA
# title: "The agent declares the tool it calls"
# custom:
#   id: "AGENT-101"
#   severity: "deny"
#   pack: "agents"
#   pack_version: "1.0.0"
#   tags:
#   - "agents"
#   - "runtime"
deny contains f if {
	some f in _agent_101(input)
}

# Findings of every rule of the pack about one object, in rule order.
findings(obj) := [f |
	some fs in [_agent_101(obj)]
	some f in fs
]

# Entry point for one object as input (OPA's API, admission).
violations := findings(input)

# Entry point for many objects: input.objects, one result list per object.
batch := [findings(obj) | some obj in input.objects]
