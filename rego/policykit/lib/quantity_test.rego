package policykit.lib.quantity_test

import data.policykit.lib.quantity

test_plain_numbers if {
	quantity.parse("1") == 1
	quantity.parse("1.5") == 1.5
	quantity.parse(".5") == 0.5
	quantity.parse("5.") == 5
	quantity.parse("+2") == 2
	quantity.parse("-2") == -2
	quantity.parse(3) == 3
}

test_decimal_si if {
	quantity.parse("500m") == 0.5
	quantity.parse("100m") == 0.1
	quantity.parse("1k") == 1000
	quantity.parse("2M") == 2000000
	quantity.parse("1G") == 1000000000
	# exa: the suffix E alone, not an exponent without digits (was an
	# evaluation error in OPA; found by tests/test_semantics.py)
	quantity.parse("5E") == 5000000000000000000
	quantity.parse("2P") == 2000000000000000
}

test_binary_si if {
	quantity.parse("1Ki") == 1024
	quantity.parse("2Gi") == 2147483648
	quantity.parse("1.5Mi") == 1572864
	quantity.parse("1Ei") == 1152921504606846976
}

test_exponents if {
	quantity.parse("1e3") == 1000
	quantity.parse("1E-2") == 0.01
	quantity.parse("5e+2") == 500
}

test_not_quantities if {
	not quantity.parse("")
	not quantity.parse("1gi")
	not quantity.parse("1 Gi")
	not quantity.parse("0x10")
	not quantity.parse("1K")
	not quantity.parse("e3")
	not quantity.parse(true)
	not quantity.parse(null)
}
