# METADATA
# title: "policykit pack catalog"
# description: "Backstage entity format rules and platform metadata for the software catalog."
# custom:
#   pack: "catalog"
#   version: "1.0.0"
#   generator: "policykit 0.1.0"
package policykit.catalog

import data.policykit.lib.values

# Findings of rule CATALOG-001 about one object.
_catalog_001(obj) := [f |
	values.is_backstage(obj)
	_catalog_001_not_name_matches_or_more(obj)
	f := {"id": "CATALOG-001", "msg": concat("", [_catalog_001_kind_text(obj), " name '", _catalog_001_name_text(obj), "' is not 1-63 letters, digits, '-', '_' or '.' starting and ending with a letter or digit"]), "pack": "catalog", "severity": "deny"}
]

_catalog_001_name_matches(obj) if {
	name := obj.metadata.name
	is_string(name)
	regex.match(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`, name)
}

_catalog_001_not_name_matches_or_more(obj) if {
	not _catalog_001_name_matches(obj)
}

_catalog_001_not_name_matches_or_more(obj) if {
	is_number(63)
	values.length(obj.metadata.name) > 63
}

_catalog_001_kind_text(obj) := values.render(kind) if {
	kind := obj.kind
} else := ""

_catalog_001_name_text(obj) := values.render(name) if {
	name := obj.metadata.name
} else := ""

# METADATA
# title: "Entity names follow Backstage's format"
# custom:
#   id: "CATALOG-001"
#   severity: "deny"
#   pack: "catalog"
#   pack_version: "1.0.0"
#   tags:
#   - "catalog"
#   - "structure"
#   remediation: "Rename the entity; use metadata.title for a display name."
deny contains f if {
	some f in _catalog_001(input)
}

# Findings of every rule of the pack about one object, in rule order.
findings(obj) := [f |
	some fs in [_catalog_001(obj)]
	some f in fs
]

# Entry point for one object as input (OPA's API, admission).
violations := findings(input)

# Entry point for many objects: input.objects, one result list per object.
batch := [findings(obj) | some obj in input.objects]
