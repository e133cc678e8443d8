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

# Findings of rule FINOPS-008 about one object.
_finops_008(obj) := [f |
	not values.is_backstage(obj)
	obj.kind in {"HorizontalPodAutoscaler"}
	total_over_matching_others := _finops_008_total_over_matching_others_by_key(obj)
	is_number(total_over_matching_others)
	max_replicas := obj.spec.maxReplicas
	is_number(max_replicas)
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
	total_over_matching_others * max_replicas > budgets_labels_cost_center_label
	f := {"id": "FINOPS-008", "msg": concat("", ["HorizontalPodAutoscaler ", _finops_008_metadata_name_text(obj), " may scale ", _finops_008_scale_target_ref_name_text(obj), " to ", _finops_008_max_replicas_text(obj), " replicas, above the monthly budget of its cost center"]), "pack": "finops", "severity": "deny"}
]

_finops_008_by_kind_and_name_and_namespace_key(x) := key if {
	kind := x.kind
	is_string(kind)
	name := x.metadata.name
	is_string(name)
	namespace := x.metadata.namespace
	is_string(namespace)
	key := [kind, name, namespace]
} else := null

# The key of each inventory item in the index _finops_008_by_kind_and_name_and_namespace (null: not indexed).
_finops_008_by_kind_and_name_and_namespace_keys := [_finops_008_by_kind_and_name_and_namespace_key(_inventory[i]) | some i in numbers.range(0, count(_inventory) - 1)]

_finops_008_by_kind_and_name_and_namespace_pairs := sort([[k, i] |
	some i in numbers.range(0, count(_finops_008_by_kind_and_name_and_namespace_keys) - 1)
	k := _finops_008_by_kind_and_name_and_namespace_keys[i]
	k != null
])

_finops_008_by_kind_and_name_and_namespace_bounds := array.concat(array.concat([0], [p |
	some p in numbers.range(1, count(_finops_008_by_kind_and_name_and_namespace_pairs) - 1)
	a := _finops_008_by_kind_and_name_and_namespace_pairs[p]
	b := _finops_008_by_kind_and_name_and_namespace_pairs[p - 1]
	a[0] != b[0]
]), [count(_finops_008_by_kind_and_name_and_namespace_pairs)])

_finops_008_by_kind_and_name_and_namespace := {first[0]: [pair[1] |
	some p in numbers.range(s, e - 1)
	pair := _finops_008_by_kind_and_name_and_namespace_pairs[p]
] |
	some j in numbers.range(0, count(_finops_008_by_kind_and_name_and_namespace_bounds) - 2)
	s := _finops_008_by_kind_and_name_and_namespace_bounds[j]
	e := _finops_008_by_kind_and_name_and_namespace_bounds[j + 1]
	first := _finops_008_by_kind_and_name_and_namespace_pairs[s]
}

_finops_008_by_kind_and_name_and_namespace_at(k) := v if {
	v := _finops_008_by_kind_and_name_and_namespace[k]
} else := []

_finops_008_job_template_containers(x) := job_template_containers if {
	job_template_containers := x.spec.jobTemplate.spec.template.spec.containers
	job_template_containers != null
} else := x.spec.containers

_finops_008_containers(x) := containers if {
	containers := x.spec.template.spec.containers
	containers != null
} else := _finops_008_job_template_containers(x)

_finops_008_cpu(c) := cpu if {
	cpu := c.resources.requests.cpu
	cpu != null
} else := c.resources.limits.cpu

_finops_008_cpu_quantity(c) := cpu_quantity if {
	cpu_quantity := quantity.parse(_finops_008_cpu(c))
	cpu_quantity != null
} else := 0

_finops_008_memory(c) := memory if {
	memory := c.resources.requests.memory
	memory != null
} else := c.resources.limits.memory

_finops_008_memory_quantity(c) := memory_quantity if {
	memory_quantity := quantity.parse(_finops_008_memory(c))
	memory_quantity != null
} else := 0

_finops_008_nvidia_com_gpu(c) := nvidia_com_gpu if {
	nvidia_com_gpu := c.resources.requests["nvidia.com/gpu"]
	nvidia_com_gpu != null
} else := c.resources.limits["nvidia.com/gpu"]

_finops_008_nvidia_com_gpu_quantity(c) := nvidia_com_gpu_quantity if {
	nvidia_com_gpu_quantity := quantity.parse(_finops_008_nvidia_com_gpu(c))
	nvidia_com_gpu_quantity != null
} else := 0

_finops_008_job_template_node_selector(x) := job_template_node_selector if {
	job_template_node_selector := x.spec.jobTemplate.spec.template.spec.nodeSelector
	job_template_node_selector != null
} else := x.spec.nodeSelector

_finops_008_node_selector(x) := node_selector if {
	node_selector := x.spec.template.spec.nodeSelector
	node_selector != null
} else := _finops_008_job_template_node_selector(x)

_finops_008_gpu_hour_usd_node_selector_gpu_type_label(x) := gpu_hour_usd_node_selector_gpu_type_label if {
	node_selector := _finops_008_node_selector(x)
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

_finops_008_total_over_spec_template_spec_containers(x) := total if {
	containers := _finops_008_containers(x)
	is_array(containers)
	total := sum([gpu_hour_usd_node_selector_gpu_type_label |
		some c in containers
		cpu_quantity := _finops_008_cpu_quantity(c)
		is_number(cpu_quantity)
		cpu_hour_usd := data.policykit.params.finops.cpu_hour_usd
		is_number(cpu_hour_usd)
		memory_quantity := _finops_008_memory_quantity(c)
		is_number(memory_quantity)
		gib_hour_usd := data.policykit.params.finops.gib_hour_usd
		is_number(gib_hour_usd)
		nvidia_com_gpu_quantity := _finops_008_nvidia_com_gpu_quantity(c)
		is_number(nvidia_com_gpu_quantity)
		gpu_hour_usd_node_selector_gpu_type_label_2 := values.erase(_finops_008_gpu_hour_usd_node_selector_gpu_type_label(x))
		is_number(gpu_hour_usd_node_selector_gpu_type_label_2)
		gpu_hour_usd_node_selector_gpu_type_label := ((cpu_quantity * cpu_hour_usd) + ((memory_quantity / 1073741824) * gib_hour_usd)) + (nvidia_com_gpu_quantity * gpu_hour_usd_node_selector_gpu_type_label_2)
		is_number(gpu_hour_usd_node_selector_gpu_type_label)
	])
} else := 0

_finops_008_gpu_hour_usd_node_selector_gpu_type_label_b(x) := gpu_hour_usd_node_selector_gpu_type_label if {
	node_selector := x.spec.predictor.nodeSelector
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

_finops_008_total_over_predictor_containers(x) := total if {
	containers := x.spec.predictor.containers
	is_array(containers)
	total := sum([gpu_hour_usd_node_selector_gpu_type_label |
		some c in containers
		cpu_quantity := _finops_008_cpu_quantity(c)
		is_number(cpu_quantity)
		cpu_hour_usd := data.policykit.params.finops.cpu_hour_usd
		is_number(cpu_hour_usd)
		memory_quantity := _finops_008_memory_quantity(c)
		is_number(memory_quantity)
		gib_hour_usd := data.policykit.params.finops.gib_hour_usd
		is_number(gib_hour_usd)
		nvidia_com_gpu_quantity := _finops_008_nvidia_com_gpu_quantity(c)
		is_number(nvidia_com_gpu_quantity)
		gpu_hour_usd_node_selector_gpu_type_label_2 := values.erase(_finops_008_gpu_hour_usd_node_selector_gpu_type_label_b(x))
		is_number(gpu_hour_usd_node_selector_gpu_type_label_2)
		gpu_hour_usd_node_selector_gpu_type_label := ((cpu_quantity * cpu_hour_usd) + ((memory_quantity / 1073741824) * gib_hour_usd)) + (nvidia_com_gpu_quantity * gpu_hour_usd_node_selector_gpu_type_label_2)
		is_number(gpu_hour_usd_node_selector_gpu_type_label)
	])
} else := 0

_finops_008_requests_cpu(x) := cpu if {
	cpu := x.spec.predictor.model.resources.requests.cpu
	cpu != null
} else := x.spec.predictor.model.resources.limits.cpu

_finops_008_requests_cpu_quantity(x) := cpu_quantity if {
	cpu_quantity := quantity.parse(_finops_008_requests_cpu(x))
	cpu_quantity != null
} else := 0

_finops_008_requests_memory(x) := memory if {
	memory := x.spec.predictor.model.resources.requests.memory
	memory != null
} else := x.spec.predictor.model.resources.limits.memory

_finops_008_requests_memory_quantity(x) := memory_quantity if {
	memory_quantity := quantity.parse(_finops_008_requests_memory(x))
	memory_quantity != null
} else := 0

_finops_008_requests_nvidia_com_gpu(x) := nvidia_com_gpu if {
	nvidia_com_gpu := x.spec.predictor.model.resources.requests["nvidia.com/gpu"]
	nvidia_com_gpu != null
} else := x.spec.predictor.model.resources.limits["nvidia.com/gpu"]

_finops_008_requests_nvidia_com_gpu_quantity(x) := nvidia_com_gpu_quantity if {
	nvidia_com_gpu_quantity := quantity.parse(_finops_008_requests_nvidia_com_gpu(x))
	nvidia_com_gpu_quantity != null
} else := 0

_finops_008_hours_per_month_kind(x) := hours_per_month_kind if {
	hours_per_month := data.policykit.params.finops.hours_per_month
	kind := x.kind
	is_object(hours_per_month)
	is_string(kind)
	value := hours_per_month[kind]
	hours_per_month_kind := value
	hours_per_month_kind != null
} else := 730

_finops_008_by_kind_and_name_and_namespace_term(x) := term if {
	total_over_containers := _finops_008_total_over_spec_template_spec_containers(x)
	is_number(total_over_containers)
	total_over_predictor_containers := _finops_008_total_over_predictor_containers(x)
	is_number(total_over_predictor_containers)
	cpu_quantity := _finops_008_requests_cpu_quantity(x)
	is_number(cpu_quantity)
	cpu_hour_usd := data.policykit.params.finops.cpu_hour_usd
	is_number(cpu_hour_usd)
	memory_quantity := _finops_008_requests_memory_quantity(x)
	is_number(memory_quantity)
	gib_hour_usd := data.policykit.params.finops.gib_hour_usd
	is_number(gib_hour_usd)
	nvidia_com_gpu_quantity := _finops_008_requests_nvidia_com_gpu_quantity(x)
	is_number(nvidia_com_gpu_quantity)
	gpu_hour_usd_node_selector_gpu_type_label := values.erase(_finops_008_gpu_hour_usd_node_selector_gpu_type_label_b(x))
	is_number(gpu_hour_usd_node_selector_gpu_type_label)
	hours_per_month_kind := values.erase(_finops_008_hours_per_month_kind(x))
	is_number(hours_per_month_kind)
	term := ((total_over_containers + total_over_predictor_containers) + (((cpu_quantity * cpu_hour_usd) + ((memory_quantity / 1073741824) * gib_hour_usd)) + (nvidia_com_gpu_quantity * gpu_hour_usd_node_selector_gpu_type_label))) * hours_per_month_kind
	is_number(term)
} else := null

_finops_008_by_kind_and_name_and_namespace_terms := [_finops_008_by_kind_and_name_and_namespace_term(_inventory[i]) | some i in numbers.range(0, count(_inventory) - 1)]

# The sum over each key of the index _finops_008_by_kind_and_name_and_namespace.
_finops_008_by_kind_and_name_and_namespace_totals := {k: sum([t |
	some i in _finops_008_by_kind_and_name_and_namespace[k]
	t := _finops_008_by_kind_and_name_and_namespace_terms[i]
	t != null
]) | some k in object.keys(_finops_008_by_kind_and_name_and_namespace)}

_finops_008_by_kind_and_name_and_namespace_total(k) := v if {
	v := _finops_008_by_kind_and_name_and_namespace_totals[k]
} else := 0

_finops_008_by_kind_and_name_and_namespace_less(total, mine) := total if count(mine) == 0

_finops_008_by_kind_and_name_and_namespace_less(total, mine) := total - sum(mine) if count(mine) > 0

_finops_008_index_key(x) := key if {
	kind := x.kind
	is_string(kind)
	name := x.metadata.name
	is_string(name)
	namespace := x.metadata.namespace
	is_string(namespace)
	key := [kind, name, namespace]
} else := null

# The key of each inventory item in the index _finops_008_index (null: not indexed).
_finops_008_index_keys := [_finops_008_index_key(_inventory[i]) | some i in numbers.range(0, count(_inventory) - 1)]

_finops_008_index_pairs := sort([[k, i] |
	some i in numbers.range(0, count(_finops_008_index_keys) - 1)
	k := _finops_008_index_keys[i]
	k != null
])

_finops_008_index_bounds := array.concat(array.concat([0], [p |
	some p in numbers.range(1, count(_finops_008_index_pairs) - 1)
	a := _finops_008_index_pairs[p]
	b := _finops_008_index_pairs[p - 1]
	a[0] != b[0]
]), [count(_finops_008_index_pairs)])

_finops_008_index := {first[0]: [pair[1] |
	some p in numbers.range(s, e - 1)
	pair := _finops_008_index_pairs[p]
] |
	some j in numbers.range(0, count(_finops_008_index_bounds) - 2)
	s := _finops_008_index_bounds[j]
	e := _finops_008_index_bounds[j + 1]
	first := _finops_008_index_pairs[s]
}

_finops_008_index_at(k) := v if {
	v := _finops_008_index[k]
} else := []

_finops_008_matching_others(obj) := matching if {
	kind := obj.spec.scaleTargetRef.kind
	is_string(kind)
	name := obj.spec.scaleTargetRef.name
	is_string(name)
	namespace := obj.metadata.namespace
	is_string(namespace)
	key := [kind, name, namespace]
	me := values.identity(obj)
	matching := [x |
		some i in _finops_008_index_at(key)
		x := _inventory[i]
		values.identity(x) != me
	]
} else := matching if {
	kind := obj.spec.scaleTargetRef.kind
	name := obj.spec.scaleTargetRef.name
	namespace := obj.metadata.namespace
	matching := [x |
		some x in values.others(_inventory, obj)
		x.kind == obj.spec.scaleTargetRef.kind
		x.metadata.name == obj.spec.scaleTargetRef.name
		x.metadata.namespace == obj.metadata.namespace
	]
} else := []

_finops_008_total_over_matching_others(obj) := total if {
	matching_others := _finops_008_matching_others(obj)
	is_array(matching_others)
	total := sum([gpu_type_label_times_hours_per_month_kind |
		some x in matching_others
		total_over_containers := _finops_008_total_over_spec_template_spec_containers(x)
		is_number(total_over_containers)
		total_over_predictor_containers := _finops_008_total_over_predictor_containers(x)
		is_number(total_over_predictor_containers)
		cpu_quantity := _finops_008_requests_cpu_quantity(x)
		is_number(cpu_quantity)
		cpu_hour_usd := data.policykit.params.finops.cpu_hour_usd
		is_number(cpu_hour_usd)
		memory_quantity := _finops_008_requests_memory_quantity(x)
		is_number(memory_quantity)
		gib_hour_usd := data.policykit.params.finops.gib_hour_usd
		is_number(gib_hour_usd)
		nvidia_com_gpu_quantity := _finops_008_requests_nvidia_com_gpu_quantity(x)
		is_number(nvidia_com_gpu_quantity)
		gpu_hour_usd_node_selector_gpu_type_label := values.erase(_finops_008_gpu_hour_usd_node_selector_gpu_type_label_b(x))
		is_number(gpu_hour_usd_node_selector_gpu_type_label)
		hours_per_month_kind := values.erase(_finops_008_hours_per_month_kind(x))
		is_number(hours_per_month_kind)
		gpu_type_label_times_hours_per_month_kind := ((total_over_containers + total_over_predictor_containers) + (((cpu_quantity * cpu_hour_usd) + ((memory_quantity / 1073741824) * gib_hour_usd)) + (nvidia_com_gpu_quantity * gpu_hour_usd_node_selector_gpu_type_label))) * hours_per_month_kind
		is_number(gpu_type_label_times_hours_per_month_kind)
	])
} else := 0

_finops_008_total_over_matching_others_by_key(obj) := total if {
	kind := obj.spec.scaleTargetRef.kind
	is_string(kind)
	name := obj.spec.scaleTargetRef.name
	is_string(name)
	namespace := obj.metadata.namespace
	is_string(namespace)
	key := [kind, name, namespace]
	mine := [t |
		some i in _inventory_ids_at(values.identity(obj))
		_finops_008_by_kind_and_name_and_namespace_keys[i] == key
		t := _finops_008_by_kind_and_name_and_namespace_terms[i]
		t != null
	]
	total := _finops_008_by_kind_and_name_and_namespace_less(_finops_008_by_kind_and_name_and_namespace_total(key), mine)
} else := total if {
	kind := obj.spec.scaleTargetRef.kind
	name := obj.spec.scaleTargetRef.name
	namespace := obj.metadata.namespace
	total := _finops_008_total_over_matching_others(obj)
} else := 0

_finops_008_metadata_name_text(obj) := values.render(name) if {
	name := obj.metadata.name
} else := ""

_finops_008_scale_target_ref_name_text(obj) := values.render(name) if {
	name := obj.spec.scaleTargetRef.name
} else := ""

_finops_008_max_replicas_text(obj) := values.render(max_replicas) if {
	max_replicas := obj.spec.maxReplicas
} else := ""

# METADATA
# title: "An HPA's maximum scale stays within the cost center's budget"
# custom:
#   id: "FINOPS-008"
#   severity: "deny"
#   pack: "finops"
#   pack_version: "1.0.0"
#   tags:
#   - "finops"
#   - "autoscaling"
#   remediation: "Lower maxReplicas, or make the target's requests cheaper."
deny contains f if {
	some f in _finops_008(input)
}

# The inventory the bundle's user supplies as data.policykit.inventory (a list; none: empty).
_inventory := x if {
	x := data.policykit.inventory
	is_array(x)
} else := []

# The positions in the inventory of each identity (kind, namespace, name).
_inventory_ids_pairs := sort([[k, i] |
	some i in numbers.range(0, count(_inventory) - 1)
	k := values.identity(_inventory[i])
])

_inventory_ids_bounds := array.concat(array.concat([0], [p |
	some p in numbers.range(1, count(_inventory_ids_pairs) - 1)
	a := _inventory_ids_pairs[p]
	b := _inventory_ids_pairs[p - 1]
	a[0] != b[0]
]), [count(_inventory_ids_pairs)])

_inventory_ids := {first[0]: [pair[1] |
	some p in numbers.range(s, e - 1)
	pair := _inventory_ids_pairs[p]
] |
	some j in numbers.range(0, count(_inventory_ids_bounds) - 2)
	s := _inventory_ids_bounds[j]
	e := _inventory_ids_bounds[j + 1]
	first := _inventory_ids_pairs[s]
}

_inventory_ids_at(k) := v if {
	v := _inventory_ids[k]
} else := []

# Findings of every rule of the pack about one object, in rule order.
findings(obj) := [f |
	some fs in [_finops_008(obj)]
	some f in fs
]

# Entry point for one object as input (OPA's API, admission).
violations := findings(input)

# Entry point for many objects: input.objects, one result list per object.
batch := [findings(obj) | some obj in input.objects]
