# METADATA
# title: "policykit pack catalog"
# description: "Backstage entity format rules and platform metadata for the software catalog."
# custom:
#   pack: "catalog"
#   version: "1.0.0"
#   generator: "policykit 0.1.0"
package policykit.catalog

import data.policykit.lib.values

# Findings of rule CATALOG-005 about one object.
_catalog_005(obj) := [f |
	values.is_backstage(obj)
	tags := obj.metadata.tags
	is_array(tags)
	some i
	t := tags[i]
	_catalog_005_not_t_matches_or_t_length_above_literal(t)
	f := {"id": "CATALOG-005", "item": i, "msg": concat("", [_catalog_005_kind_text(obj), " ", _catalog_005_name_text(obj), " has tag '", _catalog_005_t_text(t), "': tags are 1-63 of a-z 0-9 : + #, separated by single '-'"]), "pack": "catalog", "severity": "deny"}
]

_catalog_005_t_matches(t) if {
	is_string(t)
	regex.match(`^[a-z0-9:+#]+(-[a-z0-9:+#]+)*$`, t)
}

_catalog_005_not_t_matches_or_t_length_above_literal(t) if {
	not _catalog_005_t_matches(t)
}

_catalog_005_not_t_matches_or_t_length_above_literal(t) if {
	is_number(63)
	values.length(t) > 63
}

_catalog_005_kind_text(obj) := values.render(kind) if {
	kind := obj.kind
} else := ""

_catalog_005_name_text(obj) := values.render(name) if {
	name := obj.metadata.name
} else := ""

_catalog_005_t_text(t) := values.render(t_2) if {
	t_2 := t
} else := ""

# METADATA
# title: "Tags follow Backstage's format"
# custom:
#   id: "CATALOG-005"
#   severity: "deny"
#   pack: "catalog"
#   pack_version: "1.0.0"
#   tags:
#   - "catalog"
#   - "structure"
#   remediation: "Lower-case the tag and replace other characters with '-'."
deny contains f if {
	some f in _catalog_005(input)
}

# Findings of every rule of the pack about one object, in rule order.
findings(obj) := [f |
	some fs in [_catalog_005(obj)]
	some f in fs
]

# Entry point for one object as input (OPA's API, admission).
violations := findings(input)

# Entry point for many objects: input.objects, one result list per object.
batch := [findings(obj) | some obj in input.objects]
