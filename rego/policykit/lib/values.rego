# METADATA
# title: policykit value semantics
# description: |
#   Helpers that let compiled rules reproduce policykit's reference semantics
#   (docs/semantics.md): type-guarded ordering, length, keys, message rendering,
#   and the selector's view of an object.
package policykit.lib.values

# --- ordering: two numbers or two strings, otherwise false -------------------

less(a, b) if {
	_same_ordered(a, b)
	a < b
}

less_eq(a, b) if {
	_same_ordered(a, b)
	a <= b
}

greater(a, b) if {
	_same_ordered(a, b)
	a > b
}

greater_eq(a, b) if {
	_same_ordered(a, b)
	a >= b
}

_same_ordered(a, b) if {
	is_number(a)
	is_number(b)
}

_same_ordered(a, b) if {
	is_string(a)
	is_string(b)
}

# erase(x) is x with its static type forgotten: OPA's type checker types literal
# lists item by item and would reject refs such as item.name on a string.
erase(x) := x

# A regex held in a string value (a parameter), as regex.match reads it. The
# identity in OPA and Gatekeeper; policykit's regopy engine swaps in a version
# that doubles backslashes, because regopy's regex.match unescapes its pattern
# once (docs/engines.md).
pattern(p) := p

# --- derived values -----------------------------------------------------------

length(v) := count(v) if is_string(v)

length(v) := count(v) if is_array(v)

length(v) := count(v) if is_object(v)

# Re-collected into an array: regopy's sort() of a set does not equal the same
# plain array (OPA is fine). `v[k]` would drop keys whose value is false.
keys(v) := [k | some k in sort(object.keys(v))] if is_object(v)

# --- the inventory ------------------------------------------------------------

# others(objs, obj): the objects of objs that are not obj, by identity (kind,
# namespace, name as written; null when absent), as the reference engine's
# Objects node (docs/semantics.md).
others(objs, obj) := [o | some o in objs; identity(o) != identity(obj)]

identity(o) := [_get(o, "kind"), _get(_get(o, "metadata"), "namespace"), _get(_get(o, "metadata"), "name")]

_get(o, k) := v if {
	is_object(o)
	v := o[k]
} else := null

# --- message rendering --------------------------------------------------------

# Else-chains, not one clause per case: OPA evaluates every clause of a
# function (to detect conflicts), an else-chain stops at the first that holds
# (fewer evaluation steps per finding's message).
render(v) := concat("", ["[", concat(", ", [_item(x) | some x in v]), "]"]) if {
	is_array(v)
} else := "<object>" if {
	is_object(v)
} else := _scalar(v)

_item(x) := "<list>" if {
	is_array(x)
} else := "<object>" if {
	is_object(x)
} else := _scalar(x)

_scalar(v) := v if {
	is_string(v)
} else := "" if {
	is_null(v)
} else := "true" if {
	v == true
} else := "false" if {
	v == false
} else := number(v) if {
	is_number(v)
}

# Integral numbers print as integers; others rounded half away from zero to six
# decimals, trailing zeros removed, never in exponent form.
# From 9e18 on, beyond int64: the integer digits in OPA. policykit's regopy
# engine swaps in JSON's spelling (compiler.regopy_modules): regopy's round,
# floor and format_int wrap there, and rego-cpp printed "... is out of range
# for a int64_t" on standard output, into a JSON report written there. (Such
# magnitudes are outside what the targets agree on: docs/semantics.md.)
number(v) := _beyond_int64(v) if abs(v) >= 9000000000000000000

_beyond_int64(v) := _signed(v < 0, format_int(abs(v), 10))

number(v) := _signed(v < 0, format_int(abs(v), 10)) if {
	abs(v) < 9000000000000000000
	v == round(v)
}

# The whole part and the fraction apart: scaling the whole value by 10^6 first
# passed int64 from ~9.2e12 on, and regopy's format_int wrapped it (a negative
# number, or the run's report cut).
number(v) := s if {
	abs(v) < 9000000000000000000
	v != round(v)
	a := abs(v)
	w := floor(a)
	d := a - w
	f := round(d * 1000000)
	parts := _carry(w, f)
	s := _signed(v < 0, concat("", [format_int(parts[0], 10), _fraction(parts[1])]))
}

_carry(w, f) := [w + 1, 0] if f == 1000000

_carry(w, f) := [w, f] if f != 1000000

_fraction(frac) := "" if frac == 0

_fraction(frac) := concat("", [".", trim_right(_pad6(format_int(frac, 10)), "0")]) if frac != 0

_pad6(s) := concat("", [substring("000000", 0, 6 - count(s)), s])

_signed(neg, body) := concat("", ["-", body]) if {
	neg
	body != "0"
}

_signed(neg, body) := body if not neg

_signed(_, body) := body if body == "0"

# --- selectors ------------------------------------------------------------------

# The group of apiVersion (before its first "/", which must be there) is
# backstage.io or ends with .backstage.io: one regex, not two splits and a call
# per rule and object.
is_backstage(obj) if regex.match(`^(?:[^/]*\.)?backstage\.io/`, obj.apiVersion)

# The namespace a selector sees: a Backstage entity without one is in "default";
# a Kubernetes object without one has none (undefined).
namespace(obj) := obj.metadata.namespace if is_string(obj.metadata.namespace)

namespace(obj) := "default" if {
	not _has_namespace(obj)
	is_backstage(obj)
}

# Negation goes through a helper: OPA hoists an undefined ref out of a negated
# call (`not is_string(x.missing)` is false in OPA, true in regopy).
_has_namespace(obj) if is_string(obj.metadata.namespace)

glob_any(patterns, value) if {
	some p in patterns
	_glob(p, value)
}

_glob(p, value) if {
	endswith(p, "*")
	startswith(value, trim_suffix(p, "*"))
}

_glob(p, value) if {
	not endswith(p, "*")
	p == value
}

# An object whose namespace matches one of the patterns (a helper, so that
# `not excluded(...)` never negates a call on an undefined namespace).
excluded(patterns, obj) if glob_any(patterns, namespace(obj))

api_version_any(patterns, value) if {
	some p in patterns
	_api_version(p, value)
}

_api_version(p, value) if p == value

_api_version(p, value) if {
	endswith(p, "/*")
	startswith(value, trim_suffix(p, "*"))
}
