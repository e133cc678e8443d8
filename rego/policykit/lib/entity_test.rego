package policykit.lib.entity_test

import data.policykit.lib.entity

test_full_and_short_refs if {
	entity.parse_ref("component:default/artist-web", "group", "default") == {"kind": "component", "namespace": "default", "name": "artist-web"}
	entity.parse_ref("Group:team-a", "group", "default") == {"kind": "group", "namespace": "default", "name": "team-a"}
	entity.parse_ref("platform/team-a", "group", "default") == {"kind": "group", "namespace": "platform", "name": "team-a"}
	entity.parse_ref("team-a", "group", "ns") == {"kind": "group", "namespace": "ns", "name": "team-a"}
}

test_malformed_refs if {
	not entity.parse_ref("", "group", "default")
	not entity.parse_ref("group:", "group", "default")
	not entity.parse_ref("a b", "group", "default")
	not entity.parse_ref("group:Default/x", "group", "default")
	not entity.parse_ref(3, "group", "default")
	not entity.is_ref("-bad")
}
