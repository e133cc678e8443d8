"""The shortcuts ``verify``'s CEL runners take per evaluation (issue 21) give
the answers of the long way: a CEL result read without asking every value's
type, and matchConstraints that remember their resource-rule answer per
kind, API version and operation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policykit.engines.cel import CelEvalError, program
from policykit.k8s.kinds import lookup
from policykit.k8s.matching import Constraints
from tests.conftest import examples

# --- Program.read: an error's plain value is its message, a string ------------


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ('"NOT_FOUND: Key not found in map : \\"x\\""', 'NOT_FOUND: Key not found in map : "x"'),
        ('"INVALID_ARGUMENT: divide by zero"', "INVALID_ARGUMENT: divide by zero"),
        ("''", ""),
        ("[1, 'a']", [1, "a"]),
        ("{'a': {'b': true}}", {"a": {"b": True}}),
        ("1 + 1", 2),
        ("null", None),
    ],
)
def test_a_value_reads_as_itself_even_a_string_like_an_error(source: str, value: Any) -> None:
    assert program(source).eval({}) == value


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{}.x", 'CEL evaluation error: NOT_FOUND: Key not found in map : "x" in {}.x'),
        ("1 / 0", "CEL evaluation error: INVALID_ARGUMENT: divide by zero in 1 / 0"),
        ("object.spec", "CEL evaluation error: "),  # null has no fields
    ],
)
def test_an_error_raises_with_its_message(source: str, message: str) -> None:
    with pytest.raises(CelEvalError) as got:
        program(source).eval({})
    assert got.value.message.startswith(message)


# --- Constraints: the resource rules' answer remembered per kind ---------------

KINDS = ["Pod", "Deployment", "Namespace", "Job", "ClusterRole", "Service"]
API = {"Pod": "v1", "Namespace": "v1", "Service": "v1", "Deployment": "apps/v1"}
API |= {"Job": "batch/v1", "ClusterRole": "rbac.authorization.k8s.io/v1"}
VERSIONS = ["v1", "v1beta1"]
OPERATIONS = ["CREATE", "UPDATE", "DELETE"]


def _items(choices: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from([*choices, "*"]), max_size=3)


rules = st.fixed_dictionaries(
    {
        "apiGroups": _items(["", "apps", "batch", "rbac.authorization.k8s.io"]),
        "apiVersions": _items(VERSIONS),
        "resources": _items(["pods", "deployments", "namespaces", "jobs", "clusterroles"]),
        "operations": _items(OPERATIONS),
        "scope": st.sampled_from(["*", "Namespaced", "Cluster"]),
    },
    optional={"resourceNames": st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=2)},
)
constraints = st.fixed_dictionaries(
    {"resourceRules": st.lists(rules, max_size=3)},
    optional={"excludeResourceRules": st.lists(rules, max_size=2)},
)
# every kind, version, operation and name, in an order hypothesis draws: the
# memo answers each request after another with the same key (or a near one)
GRID = [(k, v, o, n) for k in KINDS for v in VERSIONS for o in OPERATIONS for n in ("a", "b", "c")]


def _object(kind: str, version: str, name: str) -> dict[str, Any]:
    group = API[kind].rpartition("/")[0]
    return {
        "apiVersion": f"{group}/{version}" if group else version,
        "kind": kind,
        "metadata": {"name": name, "namespace": "default"},
    }


@settings(max_examples=examples(300), deadline=None)
@given(constraints, st.permutations(GRID))
def test_remembered_answers_are_those_of_a_fresh_reading(
    mc: dict[str, Any], asked: list[tuple[str, str, str, str]]
) -> None:
    shared = Constraints(mc)  # asked of every request in turn: its memo fills
    for kind, version, operation, name in asked:
        obj, info = _object(kind, version, name), lookup(kind)
        assert shared.matches(obj, info, operation) == Constraints(mc).matches(obj, info, operation)


def test_a_rule_naming_resources_is_asked_of_each_object() -> None:
    mc = {
        "resourceRules": [
            {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["*"]}
        ],
        "excludeResourceRules": [
            {
                "apiGroups": ["*"],
                "apiVersions": ["*"],
                "resources": ["*"],
                "operations": ["*"],
                "resourceNames": ["skipped"],
            }
        ],
    }
    c, info = Constraints(mc), lookup("Pod")
    assert c.matches(_object("Pod", "v1", "kept"), info, "CREATE")
    assert not c.matches(_object("Pod", "v1", "skipped"), info, "CREATE")
    assert c.matches(_object("Pod", "v1", "kept"), info, "CREATE")
    assert not c.matches(_object("Pod", "v1beta1", "kept"), info, "CREATE")
