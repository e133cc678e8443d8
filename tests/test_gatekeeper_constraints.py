"""A constraint as Gatekeeper hands it to its template: the defaults of the
template's parameter schema filled in (open-policy-agent/frameworks
constraint/pkg/client/template_client.go ApplyDefaultParams, with the API
server's structural defaulting), and in a CEL template ``params`` is the whole
constraint, ``variables.params`` its parameters (gatekeeper
pkg/drivers/k8scel/driver.go, transform/cel_snippets.go)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policykit.k8s import defaulting
from policykit.k8s import gatekeeper as gk

OBJ = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "a"}}


def test_structural_defaulting() -> None:
    schema = {
        "type": "object",
        "properties": {
            "prefix": {"type": "string", "default": "pk-"},
            "maybe": {"type": "string", "nullable": True, "default": "d"},
            "limits": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"max": {"type": "integer", "default": 3}},
                },
            },
            "byTeam": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"on": {"type": "boolean", "default": True}},
                },
            },
            "nested": {
                "type": "object",
                "properties": {"deep": {"type": "object", "default": {"a": [1]}}},
            },
        },
    }
    value: dict[str, Any] = {
        "maybe": None,  # nullable: null stays
        "limits": [{}, {"max": 9}, {"max": None}],  # not nullable: null is defaulted
        "byTeam": {"t1": {}, "t2": {"on": False}},
    }
    defaulting.default(value, schema)
    assert value == {
        "prefix": "pk-",
        "maybe": None,
        "limits": [{"max": 3}, {"max": 9}, {"max": 3}],
        "byTeam": {"t1": {"on": True}, "t2": {"on": False}},
    }  # "nested" is absent and has no default of its own: nothing inside it is made
    other: dict[str, Any] = {"nested": {}}
    defaulting.default(other, schema)
    other["nested"]["deep"]["a"].append(2)  # a copy of the default, never the schema's
    assert schema["properties"]["nested"]["properties"]["deep"]["default"] == {"a": [1]}
    assert defaulting.has_defaults(schema)
    assert not defaulting.has_defaults({"type": "object", "properties": {"a": {"type": "string"}}})


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(_JSON)
def test_a_schema_without_defaults_changes_nothing(value: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"": {"type": "object"}, "a": {"type": "array", "items": {}}},
        "additionalProperties": {"type": "object", "properties": {"b": {"type": "string"}}},
    }
    before = copy.deepcopy(value)
    defaulting.default(value, schema)
    assert value == before


def _template(body: dict[str, Any], kind: str = "PkLabels") -> dict[str, Any]:
    return {
        "apiVersion": "templates.gatekeeper.sh/v1",
        "kind": "ConstraintTemplate",
        "metadata": {"name": kind.lower()},
        "spec": {
            "crd": {
                "spec": {
                    "names": {"kind": kind},
                    "validation": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "prefix": {"type": "string", "default": "pk-"},
                                "labels": {"type": "array", "items": {"type": "string"}},
                            },
                        }
                    },
                }
            },
            "targets": [{"target": "admission.k8s.gatekeeper.sh", **body}],
        },
    }


REGO = """package pklabels
violation[{"msg": msg}] {
  l := input.parameters.labels[_]
  k := concat("", [input.parameters.prefix, l])
  not input.review.object.metadata.labels[k]
  msg := concat(" ", ["missing", k])
}"""


@pytest.mark.parametrize("engine", ["rego", "opa"])
def test_rego_templates_see_the_parameter_defaults(engine: gk.Engine) -> None:
    if engine == "opa":
        from policykit.engines.rego import EngineUnavailable, load_opa

        try:
            load_opa()
        except EngineUnavailable:
            pytest.skip("real OPA is not installed (python -m policykit.engines.opa_install)")
    runner = gk.TemplateRunner(_template({"rego": REGO}), engine)
    constraint = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "PkLabels",
        "metadata": {"name": "need"},
        "spec": {"parameters": {"labels": ["team"]}},
    }
    before = copy.deepcopy(constraint)
    assert [v.message for v in gk.evaluate(runner, constraint, OBJ)] == ["missing pk-team"]
    many = gk.evaluate_many(runner, constraint, [OBJ, OBJ], [None, None])
    assert [[v.message for v in vs] for vs in many] == [["missing pk-team"]] * 2  # type: ignore[union-attr]
    given_prefix = copy.deepcopy(constraint)
    given_prefix["spec"]["parameters"]["prefix"] = "x-"
    assert [v.message for v in gk.evaluate(runner, given_prefix, OBJ)] == ["missing x-team"]
    assert constraint == before  # the user's constraint is not changed


def test_cel_templates_read_the_constraint_as_params() -> None:
    cel = {
        "code": [
            {
                "engine": "K8sNativeValidation",
                "source": {
                    "validations": [
                        {
                            "expression": "false",
                            "messageExpression": "params.metadata.name + ' ' + "
                            "variables.params.prefix + string(size(variables.params.labels))",
                        }
                    ]
                },
            }
        ]
    }
    runner = gk.TemplateRunner(_template(cel, "PkCel"))
    constraint = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "PkCel",
        "metadata": {"name": "the-constraint"},
        "spec": {"parameters": {"labels": ["a", "b"]}},
    }
    assert [v.message for v in gk.evaluate(runner, constraint, OBJ)] == ["the-constraint pk-2"]
    null = _template(
        {
            "code": [
                {
                    "engine": "K8sNativeValidation",
                    "source": {
                        "validations": [
                            {
                                "expression": "variables.params == null",
                                "message": "variables.params is not null",
                            }
                        ]
                    },
                }
            ]
        },
        "PkNull",
    )
    bare = {**constraint, "kind": "PkNull", "spec": {}}  # no parameters: variables.params is null
    assert gk.evaluate(gk.TemplateRunner(null), bare, OBJ) == []
    action = {
        "code": [
            {
                "engine": "K8sNativeValidation",
                "source": {
                    "validations": [
                        {
                            "expression": "false",
                            "messageExpression": "params.spec.enforcementAction",
                        }
                    ]
                },
            }
        ]
    }
    runner = gk.TemplateRunner(_template(action, "PkAction"))
    for spec, said in (({}, "deny"), ({"enforcementAction": "warn"}, "warn")):
        got = gk.evaluate(
            runner, {"kind": "PkAction", "metadata": {"name": "c"}, "spec": spec}, OBJ
        )
        assert [v.message for v in got] == [said]  # the constraint CRD's default: deny


@pytest.mark.parametrize(
    ("scoped", "severity"),
    [
        ([{"action": "warn", "enforcementPoints": [{"name": "*"}]}], "warn"),
        ([{"action": "deny", "enforcementPoints": [{"name": "validation.gatekeeper.sh"}]}], None),
        (
            [
                {"action": "warn", "enforcementPoints": [{"name": "*"}]},
                {"action": "deny", "enforcementPoints": [{"name": "gator.gatekeeper.sh"}]},
            ],
            "deny",
        ),
        ([{"action": "dryrun", "enforcementPoints": [{"name": "gator.gatekeeper.sh"}]}], "info"),
    ],
)
def test_scoped_enforcement_is_read_at_gators_enforcement_point(
    tmp_path: Path, scoped: list[dict[str, Any]], severity: str | None
) -> None:
    """``enforcementAction: scoped``: the actions whose enforcementPoints name
    gator's point or ``*`` (frameworks constraint_client.go matches; gator test
    fails on a deny among them); none: no result at all. It was always deny."""
    import json

    import yaml
    from click.testing import CliRunner

    from policykit.cli.main import cli

    runner = gk.TemplateRunner(_template({"rego": REGO}))
    constraint = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "PkLabels",
        "metadata": {"name": "need"},
        "spec": {
            "enforcementAction": "scoped",
            "scopedEnforcementActions": scoped,
            "parameters": {"labels": ["team"]},
        },
    }
    found = gk.evaluate(runner, constraint, OBJ)
    assert len(found) == (0 if severity is None else 1)
    (tmp_path / "policies.yaml").write_text(
        yaml.safe_dump_all([_template({"rego": REGO}), constraint], sort_keys=False)
    )
    (tmp_path / "obj.yaml").write_text(yaml.safe_dump(OBJ))
    r = CliRunner().invoke(
        cli,
        ["check", str(tmp_path / "obj.yaml"), "--policy", str(tmp_path / "policies.yaml"),
         "--pack", "policykit.packs.starter", "--format", "json"],
    )  # fmt: skip
    got = [f["severity"] for f in json.loads(r.stdout)["findings"] if f["pack"] == "gatekeeper"]
    assert got == ([] if severity is None else [severity]), r.output


def test_a_cel_template_expression_that_errors_reads_as_the_api_servers() -> None:
    """Gatekeeper's CEL driver is the API server's validator: an expression
    that errors under failurePolicy Fail is a violation whose message is
    ``expression '…' resulted in error: no such key: …`` (cel-go's words; it
    was cel-cpp's ``NOT_FOUND: Key not found in map``), the text gator
    suites assert on."""
    cel = {
        "code": [
            {
                "engine": "K8sNativeValidation",
                "source": {"validations": [{"expression": "object.spec.replicas < 3"}]},
            }
        ]
    }
    runner = gk.TemplateRunner(_template(cel, "PkErr"))
    constraint = {"kind": "PkErr", "metadata": {"name": "c"}, "spec": {}}
    assert [v.message for v in gk.evaluate(runner, constraint, OBJ)] == [
        "expression 'object.spec.replicas < 3' resulted in error: no such key: spec"
    ]
