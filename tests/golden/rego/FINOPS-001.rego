# METADATA
# title: "policykit pack finops"
# description: "Requests and limits, cost estimates against per-cost-center budgets, GPUs, HPAs and TTLs for Kubernetes workloads."
# custom:
#   pack: "finops"
#   version: "1.0.0"
#   generator: "policykit 0.1.0"
package policykit.finops

import data.policykit.lib.values

# Findings of rule FINOPS-001 about one object.
_finops_001(obj) := [f |
	not values.is_backstage(obj)
	obj.kind in {"CronJob", "DaemonSet", "Deployment", "Job", "Pod", "ReplicaSet", "ReplicationController", "StatefulSet"}
	containers := _finops_001_containers(obj)
	is_array(containers)
	some i
	c := containers[i]
	_finops_001_missing_resources(c)
	f := {"id": "FINOPS-001", "item": i, "msg": concat("", ["container ", _finops_001_c_name_text(c), " of ", _finops_001_kind_text(obj), " ", _finops_001_metadata_name_text(obj), " does not set cpu and memory requests and limits"]), "pack": "finops", "severity": "deny"}
]

_finops_001_job_template_containers(obj) := job_template_containers if {
	job_template_containers := obj.spec.jobTemplate.spec.template.spec.containers
	job_template_containers != null
} else := obj.spec.containers

_finops_001_containers(obj) := containers if {
	containers := obj.spec.template.spec.containers
	containers != null
} else := _finops_001_job_template_containers(obj)

_finops_001_has_requests_cpu(c) if {
	c.resources.requests.cpu != null
}

_finops_001_has_requests_memory(c) if {
	c.resources.requests.memory != null
}

_finops_001_has_limits_cpu(c) if {
	c.resources.limits.cpu != null
}

_finops_001_has_limits_memory(c) if {
	c.resources.limits.memory != null
}

_finops_001_missing_resources(c) if {
	not _finops_001_has_requests_cpu(c)
}

_finops_001_missing_resources(c) if {
	not _finops_001_has_requests_memory(c)
}

_finops_001_missing_resources(c) if {
	not _finops_001_has_limits_cpu(c)
}

_finops_001_missing_resources(c) if {
	not _finops_001_has_limits_memory(c)
}

_finops_001_c_name_text(c) := values.render(name) if {
	name := c.name
} else := ""

_finops_001_kind_text(obj) := values.render(kind) if {
	kind := obj.kind
} else := ""

_finops_001_metadata_name_text(obj) := values.render(name) if {
	name := obj.metadata.name
} else := ""

# METADATA
# title: "Containers request and limit CPU and memory"
# custom:
#   id: "FINOPS-001"
#   severity: "deny"
#   pack: "finops"
#   pack_version: "1.0.0"
#   tags:
#   - "finops"
#   - "kubernetes"
#   remediation: "Set resources.requests and resources.limits for cpu and memory."
deny contains f if {
	some f in _finops_001(input)
}

# Findings of every rule of the pack about one object, in rule order.
findings(obj) := [f |
	some fs in [_finops_001(obj)]
	some f in fs
]

# Entry point for one object as input (OPA's API, admission).
violations := findings(input)

# Entry point for many objects: input.objects, one result list per object.
batch := [findings(obj) | some obj in input.objects]
