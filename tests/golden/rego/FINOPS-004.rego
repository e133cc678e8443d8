# METADATA
# title: "policykit pack finops"
# description: "Requests and limits, cost estimates against per-cost-center budgets, GPUs, HPAs and TTLs for Kubernetes workloads."
# custom:
#   pack: "finops"
#   version: "1.0.0"
#   generator: "policykit 0.1.0"
package policykit.finops

import data.policykit.lib.quantity
import data.policykit.lib.values

# Findings of rule FINOPS-004 about one object.
_finops_004(obj) := [f |
	not values.is_backstage(obj)
	obj.kind in {"CronJob", "DaemonSet", "Deployment", "InferenceService", "Job", "Pod", "ReplicaSet", "ReplicationController", "StatefulSet"}
	total_nvidia_com_gpu_quantity := _finops_004_total_nvidia_com_gpu_quantity(obj)
	is_number(total_nvidia_com_gpu_quantity)
	total_nvidia_com_gpu_quantity_in_containers := _finops_004_total_nvidia_com_gpu_quantity_in_containers(obj)
	is_number(total_nvidia_com_gpu_quantity_in_containers)
	nvidia_com_gpu_quantity := _finops_004_nvidia_com_gpu_quantity(obj)
	is_number(nvidia_com_gpu_quantity)
	is_number(0)
	0 < (total_nvidia_com_gpu_quantity + total_nvidia_com_gpu_quantity_in_containers) + nvidia_com_gpu_quantity
	not _finops_004_labels_cost_center_label_in_gpu_cost_centers(obj)
	f := {"id": "FINOPS-004", "msg": concat("", [_finops_004_kind_text(obj), " ", _finops_004_name_text(obj), " requests GPUs but its cost center '", _finops_004_policykit_dev_cost_center_text(obj), "' is not one of ", _finops_004_gpu_cost_centers_text(null)]), "pack": "finops", "severity": "deny"}
]

_finops_004_job_template_containers(obj) := job_template_containers if {
	job_template_containers := obj.spec.jobTemplate.spec.template.spec.containers
	job_template_containers != null
} else := obj.spec.containers

_finops_004_containers(obj) := containers if {
	containers := obj.spec.template.spec.containers
	containers != null
} else := _finops_004_job_template_containers(obj)

_finops_004_nvidia_com_gpu(c) := nvidia_com_gpu if {
	nvidia_com_gpu := c.resources.requests["nvidia.com/gpu"]
	nvidia_com_gpu != null
} else := c.resources.limits["nvidia.com/gpu"]

_finops_004_requests_nvidia_com_gpu_quantity(c) := nvidia_com_gpu_quantity if {
	nvidia_com_gpu_quantity := quantity.parse(_finops_004_nvidia_com_gpu(c))
	nvidia_com_gpu_quantity != null
} else := 0

_finops_004_total_nvidia_com_gpu_quantity(obj) := total if {
	containers := _finops_004_containers(obj)
	is_array(containers)
	total := sum([nvidia_com_gpu_quantity |
		some c in containers
		nvidia_com_gpu_quantity := _finops_004_requests_nvidia_com_gpu_quantity(c)
		is_number(nvidia_com_gpu_quantity)
	])
} else := 0

_finops_004_total_nvidia_com_gpu_quantity_in_containers(obj) := total if {
	containers := obj.spec.predictor.containers
	is_array(containers)
	total := sum([nvidia_com_gpu_quantity |
		some c in containers
		nvidia_com_gpu_quantity := _finops_004_requests_nvidia_com_gpu_quantity(c)
		is_number(nvidia_com_gpu_quantity)
	])
} else := 0

_finops_004_requests_nvidia_com_gpu(obj) := nvidia_com_gpu if {
	nvidia_com_gpu := obj.spec.predictor.model.resources.requests["nvidia.com/gpu"]
	nvidia_com_gpu != null
} else := obj.spec.predictor.model.resources.limits["nvidia.com/gpu"]

_finops_004_nvidia_com_gpu_quantity(obj) := nvidia_com_gpu_quantity if {
	nvidia_com_gpu_quantity := quantity.parse(_finops_004_requests_nvidia_com_gpu(obj))
	nvidia_com_gpu_quantity != null
} else := 0

_finops_004_labels_cost_center_label_in_gpu_cost_centers(obj) if {
	labels := obj.metadata.labels
	cost_center_label := data.policykit.params.finops.cost_center_label
	is_object(labels)
	is_string(cost_center_label)
	labels_cost_center_label := labels[cost_center_label]
	is_array(data.policykit.params.finops.gpu_cost_centers)
	labels_cost_center_label in data.policykit.params.finops.gpu_cost_centers
}

_finops_004_kind_text(obj) := values.render(kind) if {
	kind := obj.kind
} else := ""

_finops_004_name_text(obj) := values.render(name) if {
	name := obj.metadata.name
} else := ""

_finops_004_policykit_dev_cost_center_text(obj) := values.render(policykit_dev_cost_center) if {
	policykit_dev_cost_center := obj.metadata.labels["policykit.dev/cost-center"]
} else := ""

_finops_004_gpu_cost_centers_text(_) := values.render(gpu_cost_centers) if {
	gpu_cost_centers := data.policykit.params.finops.gpu_cost_centers
} else := ""

# METADATA
# title: "GPUs are requested only by approved cost centers"
# custom:
#   id: "FINOPS-004"
#   severity: "deny"
#   pack: "finops"
#   pack_version: "1.0.0"
#   tags:
#   - "finops"
#   - "gpu"
#   remediation: "Run GPU work under an approved cost center, or ask FinOps to approve yours."
deny contains f if {
	some f in _finops_004(input)
}

# Findings of every rule of the pack about one object, in rule order.
findings(obj) := [f |
	some fs in [_finops_004(obj)]
	some f in fs
]

# Entry point for one object as input (OPA's API, admission).
violations := findings(input)

# Entry point for many objects: input.objects, one result list per object.
batch := [findings(obj) | some obj in input.objects]
