# METADATA
# title: Kubernetes resource quantities
# description: |
#   parse(v) is the value of a Kubernetes quantity ("500m", "2Gi", "1.5", "1e3")
#   in base units; a number is returned as it is; anything else is undefined.
#   Same grammar and values as policykit's reference engine (docs/semantics.md).
package policykit.lib.quantity

_pattern := `^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$`

# Multipliers are exact integers; milli and negative exponents divide, because
# OPA's big-number multiplication by 0.001 is not exact (100 * 0.001 != 0.1).
_multipliers := {
	"": 1,
	"k": 1000,
	"M": 1000000,
	"G": 1000000000,
	"T": 1000000000000,
	"P": 1000000000000000,
	"E": 1000000000000000000,
	"Ki": 1024,
	"Mi": 1048576,
	"Gi": 1073741824,
	"Ti": 1099511627776,
	"Pi": 1125899906842624,
	"Ei": 1152921504606846976,
}

_pow10 := [
	1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
	10000000000, 100000000000, 1000000000000, 10000000000000, 100000000000000,
	1000000000000000, 10000000000000000, 100000000000000000, 1000000000000000000,
]

parse(v) := v if is_number(v)

parse(v) := n if {
	is_string(v)
	m := regex.find_all_string_submatch_n(_pattern, v, 1)[0]
	x := _apply(to_number(_mantissa(m[2])), m[3])
	n := _signed(m[1], x)
}

# to_number refuses ".5", "5." and "+5": write them as JSON numbers first.
_mantissa(s) := concat("", ["0", s]) if startswith(s, ".")

_mantissa(s) := concat("", [s, "0"]) if endswith(s, ".")

_mantissa(s) := s if {
	not startswith(s, ".")
	not endswith(s, ".")
}

_apply(x, suffix) := x * _multipliers[suffix]

_apply(x, "m") := x / 1000

_apply(x, suffix) := y if {
	regex.match(`^[eE][-+]?[0-9]+$`, suffix) # "E" alone is exa, not an exponent
	e := to_number(trim_prefix(substring(suffix, 1, -1), "+"))
	y := _exp(x, e)
}

_exp(x, e) := x * _pow10[e] if e >= 0

_exp(x, e) := x / _pow10[0 - e] if e < 0

_signed("-", x) := 0 - x

_signed(sign, x) := x if sign != "-"
