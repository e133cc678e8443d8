# METADATA
# title: "policykit pack provenance"
# description: "Model provenance for serving workloads and ml-model catalog entries."
# custom:
#   pack: "provenance"
#   version: "1.0.0"
#   generator: "policykit 0.1.0"
package policykit.provenance

import data.policykit.lib.values

# Findings of rule PROV-002 about one object.
_prov_002(obj) := [f |
	not values.is_backstage(obj)
	obj.kind in {"InferenceService"}
	not _prov_002_storage_uri_matches(obj)
	not _prov_002_policykit_dev_model_digest_matches(obj)
	f := {"id": "PROV-002", "msg": concat("", [_prov_002_kind_text(obj), " ", _prov_002_name_text(obj), " does not pin its model by digest (@sha256:... in the reference, or the annotation policykit.dev/model-digest)"]), "pack": "provenance", "severity": "deny"}
]

_prov_002_storage_uri(obj) := storage_uri if {
	storage_uri := obj.spec.predictor.model.storageUri
	storage_uri != null
} else := obj.metadata.annotations["policykit.dev/model-uri"]

_prov_002_storage_uri_matches(obj) if {
	storage_uri := _prov_002_storage_uri(obj)
	is_string(storage_uri)
	regex.match(`@sha256:[a-f0-9]{64}$`, storage_uri)
}

_prov_002_policykit_dev_model_digest_matches(obj) if {
	policykit_dev_model_digest := obj.metadata.annotations["policykit.dev/model-digest"]
	is_string(policykit_dev_model_digest)
	regex.match(`^sha256:[a-f0-9]{64}$`, policykit_dev_model_digest)
}

_prov_002_kind_text(obj) := values.render(kind) if {
	kind := obj.kind
} else := ""

_prov_002_name_text(obj) := values.render(name) if {
	name := obj.metadata.name
} else := ""

# METADATA
# title: "Model artifacts are pinned by sha256 digest"
# custom:
#   id: "PROV-002"
#   severity: "deny"
#   pack: "provenance"
#   pack_version: "1.0.0"
#   tags:
#   - "provenance"
#   - "ml"
#   - "supply-chain"
#   remediation: "Reference the artifact by digest; a tag or a path can change under you."
deny contains f if {
	some f in _prov_002(input)
}

# Findings of every rule of the pack about one object, in rule order.
findings(obj) := [f |
	some fs in [_prov_002(obj)]
	some f in fs
]

# Entry point for one object as input (OPA's API, admission).
violations := findings(input)

# Entry point for many objects: input.objects, one result list per object.
batch := [findings(obj) | some obj in input.objects]
