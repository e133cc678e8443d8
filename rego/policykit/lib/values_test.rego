package policykit.lib.values_test

import data.policykit.lib.values

test_ordering_needs_matching_types if {
	values.less(1, 2)
	values.less("a", "b")
	not values.less("5", 30)
	not values.greater("5", 3)
	not values.less(true, 2)
	not values.greater_eq(null, null)
	values.greater_eq(2, 2.0)
}

test_length_and_keys if {
	values.length("héllo") == 5
	values.length([1, 2]) == 2
	values.length({"a": 1}) == 1
	not values.length(3)
	values.keys({"b": 1, "a": 2}) == ["a", "b"]
	not values.keys([1])
}

test_render_scalars if {
	values.render("x") == "x"
	values.render(null) == ""
	values.render(true) == "true"
	values.render(false) == "false"
	values.render(3) == "3"
	values.render(-3) == "-3"
	values.render(3.0) == "3"
}

test_render_fractions if {
	values.render(0.5) == "0.5"
	values.render(181.04) == "181.04"
	values.render(-2.25) == "-2.25"
	values.render(0.1234567) == "0.123457"
	values.render(0.1234564) == "0.123456"
	values.render(0.0000001) == "0"
	values.render(-0.0000001) == "0"
	values.render(1234567.5) == "1234567.5"
}

# Past 9.2e12 the whole value times 10^6 left int64: regopy rendered
# 9223372036854.5 as a negative number, and 1e20 as nothing, printing on
# standard output.
test_render_large_fractions if {
	values.render(1099511627776.5) == "1099511627776.5"
	values.render(9223372036854.5) == "9223372036854.5"
	values.render(-9223372036854.25) == "-9223372036854.25"
	values.render(68719476735.75) == "68719476735.75"
	values.render(0.9999995) == "1"
	values.render(2.9999999) == "3"
}

test_render_beyond_int64_is_never_negative_nor_empty if {
	s := values.render(1e20)
	startswith(s, "1")
	not contains(s, "-")
	t := values.render(-1e20)
	startswith(t, "-1")
}

test_render_lists_and_objects if {
	values.render(["a", 1, true, null, [1], {"k": 1}]) == "[a, 1, true, , <list>, <object>]"
	values.render({"a": 1}) == "<object>"
	values.render([]) == "[]"
}

test_backstage_and_namespaces if {
	values.is_backstage({"apiVersion": "backstage.io/v1alpha1"})
	values.is_backstage({"apiVersion": "scaffolder.backstage.io/v1beta3"})
	not values.is_backstage({"apiVersion": "apps/v1"})
	not values.is_backstage({"apiVersion": "v1"})
	values.namespace({"apiVersion": "backstage.io/v1alpha1", "metadata": {}}) == "default"
	not values.namespace({"apiVersion": "apps/v1", "metadata": {}})
	values.namespace({"apiVersion": "apps/v1", "metadata": {"namespace": "x"}}) == "x"
}

test_globs if {
	values.glob_any(["prod-*"], "prod-a")
	values.glob_any(["a", "b"], "b")
	not values.glob_any(["prod-*"], "staging")
	values.api_version_any(["backstage.io/*"], "backstage.io/v1alpha1")
	values.api_version_any(["apps/v1"], "apps/v1")
	not values.api_version_any(["apps/*"], "batch/v1")
}

test_erase_and_excluded if {
	values.erase([1, "a"]) == [1, "a"]
	values.excluded(["kube-*"], {"apiVersion": "v1", "metadata": {"namespace": "kube-system"}})
	not values.excluded(["kube-*"], {"apiVersion": "v1", "metadata": {"namespace": "prod"}})
	not values.excluded(["kube-*"], {"apiVersion": "v1", "metadata": {}})
}

test_pattern_is_the_identity if {
	values.pattern("^a+$") == "^a+$"
	regex.match(values.pattern("^a+$"), "aaa")
	not regex.match(values.pattern("^a+$"), "ab")
}

test_others_leaves_out_the_object_by_identity if {
	a := {"kind": "Deployment", "metadata": {"namespace": "x", "name": "a"}}
	a2 := {"kind": "Deployment", "metadata": {"namespace": "x", "name": "a"}, "spec": {"replicas": 3}}
	b := {"kind": "Deployment", "metadata": {"namespace": "y", "name": "a"}}
	c := {"kind": "Job", "metadata": {"name": "a"}}
	values.others([a, b, c], a2) == [b, c]
	values.others([a, b, c], {"kind": "Job", "metadata": {"name": "a", "namespace": null}}) == [a, b]
	values.others([a, "not an object"], a) == ["not an object"]
}
