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

# Findings of rule FINOPS-005 about one object.
_finops_005(obj) := [f |
	not values.is_backstage(obj)
	obj.kind in {"CronJob", "DaemonSet", "Deployment", "InferenceService", "Job", "Pod", "ReplicaSet", "ReplicationController", "StatefulSet"}
	total_over_containers := _finops_005_total_over_spec_template_spec_containers(obj)
	is_number(total_over_containers)
	total_over_predictor_containers := _finops_005_total_over_predictor_containers(obj)
	is_number(total_over_predictor_containers)
	cpu_quantity := _finops_005_cpu_quantity(obj)
	is_number(cpu_quantity)
	cpu_hour_usd := data.policykit.params.finops.cpu_hour_usd
	is_number(cpu_hour_usd)
	memory_quantity := _finops_005_memory_quantity(obj)
	is_number(memory_quantity)
	gib_hour_usd := data.policykit.params.finops.gib_hour_usd
	is_number(gib_hour_usd)
	nvidia_com_gpu_quantity := _finops_005_nvidia_com_gpu_quantity(obj)
	is_number(nvidia_com_gpu_quantity)
	gpu_hour_usd_node_selector_gpu_type_label := values.erase(_finops_005_gpu_hour_usd_node_selector_gpu_type_label(obj))
	is_number(gpu_hour_usd_node_selector_gpu_type_label)
	replicas := values.erase(_finops_005_replicas(obj))
	is_number(replicas)
	hours_per_month_kind := values.erase(_finops_005_hours_per_month_kind(obj))
	is_number(hours_per_month_kind)
	labels := obj.metadata.labels
	cost_center_label := data.policykit.params.finops.cost_center_label
	is_object(labels)
	is_string(cost_center_label)
	labels_cost_center_label := labels[cost_center_label]
	budgets := data.policykit.params.finops.budgets
	is_object(budgets)
	is_string(labels_cost_center_label)
	budgets_labels_cost_center_label := budgets[labels_cost_center_label]
	is_number(budgets_labels_cost_center_label)
	budgets_labels_cost_center_label < (((total_over_containers + total_over_predictor_containers) + (((cpu_quantity * cpu_hour_usd) + ((memory_quantity / 1073741824) * gib_hour_usd)) + (nvidia_com_gpu_quantity * gpu_hour_usd_node_selector_gpu_type_label))) * replicas) * hours_per_month_kind
	f := {"id": "FINOPS-005", "msg": concat("", [_finops_005_kind_text(obj), " ", _finops_005_name_text(obj), " is estimated above the monthly budget of cost center ", _finops_005_policykit_dev_cost_center_text(obj), " on its own"]), "pack": "finops", "severity": "deny"}
]

_finops_005_job_template_containers(obj) := job_template_containers if {
	job_template_containers := obj.spec.jobTemplate.spec.template.spec.containers
	job_template_containers != null
} else := obj.spec.containers

_finops_005_containers(obj) := containers if {
	containers := obj.spec.template.spec.containers
	containers != null
} else := _finops_005_job_template_containers(obj)

_finops_005_cpu(c) := cpu if {
	cpu := c.resources.requests.cpu
	cpu != null
} else := c.resources.limits.cpu

_finops_005_requests_cpu_quantity(c) := cpu_quantity if {
	cpu_quantity := quantity.parse(_finops_005_cpu(c))
	cpu_quantity != null
} else := 0

_finops_005_memory(c) := memory if {
	memory := c.resources.requests.memory
	memory != null
} else := c.resources.limits.memory

_finops_005_requests_memory_quantity(c) := memory_quantity if {
	memory_quantity := quantity.parse(_finops_005_memory(c))
	memory_quantity != null
} else := 0

_finops_005_nvidia_com_gpu(c) := nvidia_com_gpu if {
	nvidia_com_gpu := c.resources.requests["nvidia.com/gpu"]
	nvidia_com_gpu != null
} else := c.resources.limits["nvidia.com/gpu"]

_finops_005_requests_nvidia_com_gpu_quantity(c) := nvidia_com_gpu_quantity if {
	nvidia_com_gpu_quantity := quantity.parse(_finops_005_nvidia_com_gpu(c))
	nvidia_com_gpu_quantity != null
} else := 0

_finops_005_job_template_node_selector(obj) := job_template_node_selector if {
	job_template_node_selector := obj.spec.jobTemplate.spec.template.spec.nodeSelector
	job_template_node_selector != null
} else := obj.spec.nodeSelector

_finops_005_node_selector(obj) := node_selector if {
	node_selector := obj.spec.template.spec.nodeSelector
	node_selector != null
} else := _finops_005_job_template_node_selector(obj)

_finops_005_gpu_hour_usd_node_selector_gpu_type_label_b(obj) := gpu_hour_usd_node_selector_gpu_type_label if {
	node_selector := _finops_005_node_selector(obj)
	gpu_type_label := data.policykit.params.finops.gpu_type_label
	is_object(node_selector)
	is_string(gpu_type_label)
	node_selector_gpu_type_label := node_selector[gpu_type_label]
	gpu_hour_usd := data.policykit.params.finops.gpu_hour_usd
	is_object(gpu_hour_usd)
	is_string(node_selector_gpu_type_label)
	value := gpu_hour_usd[node_selector_gpu_type_label]
	gpu_hour_usd_node_selector_gpu_type_label := value
	gpu_hour_usd_node_selector_gpu_type_label != null
} else := 0

_finops_005_total_over_spec_template_spec_containers(obj) := total if {
	containers := _finops_005_containers(obj)
	is_array(containers)
	total := sum([gpu_hour_usd_node_selector_gpu_type_label |
		some c in containers
		cpu_quantity := _finops_005_requests_cpu_quantity(c)
		is_number(cpu_quantity)
		cpu_hour_usd := data.policykit.params.finops.cpu_hour_usd
		is_number(cpu_hour_usd)
		memory_quantity := _finops_005_requests_memory_quantity(c)
		is_number(memory_quantity)
		gib_hour_usd := data.policykit.params.finops.gib_hour_usd
		is_number(gib_hour_usd)
		nvidia_com_gpu_quantity := _finops_005_requests_nvidia_com_gpu_quantity(c)
		is_number(nvidia_com_gpu_quantity)
		gpu_hour_usd_node_selector_gpu_type_label_2 := values.erase(_finops_005_gpu_hour_usd_node_selector_gpu_type_label_b(obj))
		is_number(gpu_hour_usd_node_selector_gpu_type_label_2)
		gpu_hour_usd_node_selector_gpu_type_label := ((cpu_quantity * cpu_hour_usd) + ((memory_quantity / 1073741824) * gib_hour_usd)) + (nvidia_com_gpu_quantity * gpu_hour_usd_node_selector_gpu_type_label_2)
		is_number(gpu_hour_usd_node_selector_gpu_type_label)
	])
} else := 0

_finops_005_gpu_hour_usd_node_selector_gpu_type_label(obj) := gpu_hour_usd_node_selector_gpu_type_label if {
	node_selector := obj.spec.predictor.nodeSelector
	gpu_type_label := data.policykit.params.finops.gpu_type_label
	is_object(node_selector)
	is_string(gpu_type_label)
	node_selector_gpu_type_label := node_selector[gpu_type_label]
	gpu_hour_usd := data.policykit.params.finops.gpu_hour_usd
	is_object(gpu_hour_usd)
	is_string(node_selector_gpu_type_label)
	value := gpu_hour_usd[node_selector_gpu_type_label]
	gpu_hour_usd_node_selector_gpu_type_label := value
	gpu_hour_usd_node_selector_gpu_type_label != null
} else := 0

_finops_005_total_over_predictor_containers(obj) := total if {
	containers := obj.spec.predictor.containers
	is_array(containers)
	total := sum([gpu_hour_usd_node_selector_gpu_type_label |
		some c in containers
		cpu_quantity := _finops_005_requests_cpu_quantity(c)
		is_number(cpu_quantity)
		cpu_hour_usd := data.policykit.params.finops.cpu_hour_usd
		is_number(cpu_hour_usd)
		memory_quantity := _finops_005_requests_memory_quantity(c)
		is_number(memory_quantity)
		gib_hour_usd := data.policykit.params.finops.gib_hour_usd
		is_number(gib_hour_usd)
		nvidia_com_gpu_quantity := _finops_005_requests_nvidia_com_gpu_quantity(c)
		is_number(nvidia_com_gpu_quantity)
		gpu_hour_usd_node_selector_gpu_type_label_2 := values.erase(_finops_005_gpu_hour_usd_node_selector_gpu_type_label(obj))
		is_number(gpu_hour_usd_node_selector_gpu_type_label_2)
		gpu_hour_usd_node_selector_gpu_type_label := ((cpu_quantity * cpu_hour_usd) + ((memory_quantity / 1073741824) * gib_hour_usd)) + (nvidia_com_gpu_quantity * gpu_hour_usd_node_selector_gpu_type_label_2)
		is_number(gpu_hour_usd_node_selector_gpu_type_label)
	])
} else := 0

_finops_005_requests_cpu(obj) := cpu if {
	cpu := obj.spec.predictor.model.resources.requests.cpu
	cpu != null
} else := obj.spec.predictor.model.resources.limits.cpu

_finops_005_cpu_quantity(obj) := cpu_quantity if {
	cpu_quantity := quantity.parse(_finops_005_requests_cpu(obj))
	cpu_quantity != null
} else := 0

_finops_005_requests_memory(obj) := memory if {
	memory := obj.spec.predictor.model.resources.requests.memory
	memory != null
} else := obj.spec.predictor.model.resources.limits.memory

_finops_005_memory_quantity(obj) := memory_quantity if {
	memory_quantity := quantity.parse(_finops_005_requests_memory(obj))
	memory_quantity != null
} else := 0

_finops_005_requests_nvidia_com_gpu(obj) := nvidia_com_gpu if {
	nvidia_com_gpu := obj.spec.predictor.model.resources.requests["nvidia.com/gpu"]
	nvidia_com_gpu != null
} else := obj.spec.predictor.model.resources.limits["nvidia.com/gpu"]

_finops_005_nvidia_com_gpu_quantity(obj) := nvidia_com_gpu_quantity if {
	nvidia_com_gpu_quantity := quantity.parse(_finops_005_requests_nvidia_com_gpu(obj))
	nvidia_com_gpu_quantity != null
} else := 0

_finops_005_spec_replicas(obj) := replicas if {
	replicas := obj.spec.replicas
	replicas != null
} else := obj.spec.parallelism

_finops_005_obj_spec_replicas(obj) := replicas if {
	replicas := _finops_005_spec_replicas(obj)
	replicas != null
} else := obj.spec.jobTemplate.spec.parallelism

_finops_005_replicas_of_obj(obj) := replicas if {
	replicas := _finops_005_obj_spec_replicas(obj)
	replicas != null
} else := obj.spec.predictor.minReplicas

_finops_005_replicas(obj) := replicas if {
	replicas := _finops_005_replicas_of_obj(obj)
	replicas != null
} else := 1

_finops_005_hours_per_month_kind(obj) := hours_per_month_kind if {
	hours_per_month := data.policykit.params.finops.hours_per_month
	kind := obj.kind
	is_object(hours_per_month)
	is_string(kind)
	value := hours_per_month[kind]
	hours_per_month_kind := value
	hours_per_month_kind != null
} else := 730

_finops_005_kind_text(obj) := values.render(kind) if {
	kind := obj.kind
} else := ""

_finops_005_name_text(obj) := values.render(name) if {
	name := obj.metadata.name
} else := ""

_finops_005_policykit_dev_cost_center_text(obj) := values.render(policykit_dev_cost_center) if {
	policykit_dev_cost_center := obj.metadata.labels["policykit.dev/cost-center"]
} else := ""

# METADATA
# title: "A workload's monthly cost estimate stays within its cost center's budget"
# custom:
#   id: "FINOPS-005"
#   severity: "deny"
#   pack: "finops"
#   pack_version: "1.0.0"
#   tags:
#   - "finops"
#   remediation: "Lower requests or replicas, or raise the cost center's budget with FinOps."
deny contains f if {
	some f in _finops_005(input)
}

# Findings of every rule of the pack about one object, in rule order.
findings(obj) := [f |
	some fs in [_finops_005(obj)]
	some f in fs
]

# Entry point for one object as input (OPA's API, admission).
violations := findings(input)

# Entry point for many objects: input.objects, one result list per object.
batch := [findings(obj) | some obj in input.objects]
