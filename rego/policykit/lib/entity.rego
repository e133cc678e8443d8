# METADATA
# title: Backstage entity references
# description: |
#   parse_ref(ref, default_kind, default_namespace) reads "[kind:][namespace/]name"
#   into {"kind", "namespace", "name"} (kind lower-cased); undefined when the
#   string is not a well-formed reference.
package policykit.lib.entity

_ref_pattern := `^(?:([A-Za-z][A-Za-z0-9]*):)?(?:([a-z0-9]+(?:-[a-z0-9]+)*)/)?([A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]|[A-Za-z0-9])$`

parse_ref(ref, default_kind, default_namespace) := {
	"kind": lower(_or(m[1], default_kind)),
	"namespace": _or(m[2], default_namespace),
	"name": m[3],
} if {
	is_string(ref)
	m := regex.find_all_string_submatch_n(_ref_pattern, ref, 1)[0]
}

is_ref(ref) if parse_ref(ref, "", "")

_or(s, fallback) := s if s != ""

_or("", fallback) := fallback
