"""The classic Kyverno validate engine (policykit/existing/kyverno_classic),
each expectation checked against Kyverno's source (kyverno/kyverno, the file
named beside the case) or the kyverno.io documentation."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from policykit.existing import kyverno_classic as kc
from policykit.existing.kyverno_classic import conditions as cond
from policykit.existing.kyverno_classic import gotypes as go
from policykit.existing.kyverno_classic.jmespath_fns import NotFound, QueryError, search
from policykit.existing.kyverno_classic.pattern import match_pattern, validate_value
from policykit.k8s.errors import Unsupported
from tests.conftest import ROOT

NOW = dt.datetime(2024, 3, 5, 10, 20, 30, tzinfo=dt.UTC)


def _pod(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}], **spec},
    }


def _ctx(**kw: Any) -> Any:
    base: dict[str, Any] = {
        "operation": "CREATE",
        "username": "alice",
        "groups": ("dev",),
        "roles": (),
        "cluster_roles": (),
        "old_object": None,
        "now": NOW,
        "values": {},
    }
    return SimpleNamespace(**{**base, **kw})


def _run(validate: dict[str, Any], obj: dict[str, Any], **rule: Any) -> tuple[str, str]:
    r = {"name": "r", "validate": validate, **rule}
    return kc.evaluate_rule("pol", r, obj, _ctx(**rule.pop("ctx", {})), "Audit")


# --- leaf values: pkg/engine/pattern/pattern.go -----------------------------------------


@pytest.mark.parametrize(
    ("value", "pattern", "ok"),
    [
        ("nginx:1.25", "nginx:*", True),  # wildcard *
        ("ab", "a?", True),  # ? is exactly one character (go-wildcard)
        ("a", "a?", False),
        ("", "?*", False),  # "?*" means non-empty
        ("x", "?*", True),
        (None, "?*", False),  # compareString: nil is never a string
        ("nginx:latest", "!*:latest", True is False),  # ! negates
        ("nginx:1", "!*:latest", True),
        (3, ">2", True),
        (2, ">2", False),
        ("2Gi", "<=1Gi", False),  # quantities
        ("512Mi", "<=1Gi", True),
        ("100m", "<1", True),
        (None, "<=1Gi", True),  # convertNumberToString: nil is "0"
        ("90s", ">1m", True),  # durations before quantities
        ("30s", ">1m", False),
        (5, "1-10", True),  # range a-b
        (11, "1-10", False),
        (11, "1!-10", True),  # a!-b outside the range
        (5, "1!-10", False),
        ("b", "a | b", True),  # | is or
        (5, ">1 & <4", False),  # & is and
        (3, ">1 & <4", True),
        (80, 80, True),
        ("80", 80, True),  # validateIntPattern parses strings
        (80.5, 80, False),
        (True, True, True),
        ("true", True, False),  # validateBoolPattern: only bools
        (None, None, True),  # validateNilPattern: nil, "", 0, false
        ("", None, True),
        (0, None, True),
        (False, None, True),
        ("x", None, False),
        ({"a": 1}, {}, True),  # validateMapPattern: only the type
        (1.5, "1.5E+00", True),  # compareString formats floats with 'E'
        (True, "true", True),
    ],
)
def test_pattern_values(value: Any, pattern: Any, ok: bool) -> None:
    assert validate_value(value, pattern) is ok


# --- anchors: pkg/engine/anchor/handlers.go, pkg/engine/validate/validate.go ------------------


def test_conditional_anchor_skips_when_unmet_and_applies_when_met() -> None:
    pattern = {"spec": {"containers": [{"(name)": "app", "image": "!*:latest"}]}}
    assert match_pattern(_pod(), pattern) is None
    bad = _pod()
    bad["spec"]["containers"][0]["image"] = "nginx:latest"
    err = match_pattern(bad, pattern)
    assert err is not None and not err.skip and err.path == "/spec/containers/0/image/"
    other = _pod()
    other["spec"]["containers"][0]["name"] = "sidecar"
    err = match_pattern(other, pattern)
    assert err is not None and err.skip and "conditional anchor mismatch" in err.message


def test_equality_anchor_checks_only_present_keys() -> None:
    pattern = {"spec": {"=(hostNetwork)": False}}
    assert match_pattern(_pod(), pattern) is None
    assert match_pattern(_pod(hostNetwork=False), pattern) is None
    err = match_pattern(_pod(hostNetwork=True), pattern)
    assert err is not None and err.path == "/spec/hostNetwork/"


def test_negation_anchor_fails_when_key_is_present() -> None:
    pattern = {"spec": {"X(hostPID)": "null"}}
    assert match_pattern(_pod(), pattern) is None
    err = match_pattern(_pod(hostPID=False), pattern)
    assert err is not None and not err.skip and "negation anchor matched" in err.message
    assert err.path == "/spec/hostPID/"


def test_global_anchor_skips_the_whole_resource() -> None:
    pattern = {
        "spec": {
            "containers": [{"<(image)": "corp.io/*"}],
            "imagePullSecrets": [{"name": "regcred"}],
        }
    }
    err = match_pattern(_pod(), pattern)
    assert err is not None and err.skip and "global anchor mismatch" in err.message
    corp = _pod()
    corp["spec"]["containers"][0]["image"] = "corp.io/app:1"
    err = match_pattern(corp, pattern)
    assert err is not None and not err.skip  # applies: the secrets are missing
    corp["spec"]["imagePullSecrets"] = [{"name": "regcred"}]
    assert match_pattern(corp, pattern) is None


def test_existence_anchor_needs_one_matching_element() -> None:
    pattern = {"spec": {"^(containers)": [{"image": "nginx:*"}]}}
    assert match_pattern(_pod(), pattern) is None
    pod = _pod()
    pod["spec"]["containers"] = [{"name": "a", "image": "busybox"}]
    err = match_pattern(pod, pattern)
    assert err is not None and "existence anchor validation failed" in err.message


def test_add_if_not_present_anchor_has_no_validate_handler() -> None:
    # handlers.go CreateElementHandler has no case for +(): the default
    # handler looks the literal key "+(x)" up, so the value is nil
    assert match_pattern(_pod(), {"metadata": {"+(labels)": {"a": "b"}}}) is not None
    assert match_pattern(_pod(), {"metadata": {"+(owner)": None}}) is None


def test_star_requires_presence_and_arrays_apply_the_first_map_to_every_element() -> None:
    assert match_pattern(_pod(), {"metadata": {"labels": {"app": "*"}}}) is None
    err = match_pattern(_pod(), {"metadata": {"labels": {"team": "*"}}})
    assert err is not None
    two = _pod()
    two["spec"]["containers"].append({"name": "b", "image": "nginx:latest"})
    err = match_pattern(two, {"spec": {"containers": [{"image": "!*:latest"}]}})
    assert err is not None and err.path == "/spec/containers/1/image/"
    # scalar arrays: every resource element against the first pattern value
    assert match_pattern({"a": ["x1", "x2"]}, {"a": ["x*"]}) is None
    assert match_pattern({"a": ["x1", "y2"]}, {"a": ["x*"]}) is not None


def test_wildcard_label_keys_expand_to_the_resource_keys() -> None:
    # wildcards.ExpandInMetadata
    pod = _pod()
    pod["metadata"]["labels"] = {"app.kubernetes.io/name": "web"}
    assert match_pattern(pod, {"metadata": {"labels": {"app.kubernetes.io/*": "?*"}}}) is None
    assert match_pattern(pod, {"metadata": {"labels": {"team.io/*": "?*"}}}) is not None


def test_structure_mismatch_and_missing_anchor_keys() -> None:
    err = match_pattern(_pod(), {"spec": {"containers": {"a": 1}}})
    assert err is not None and "different structures" in err.message


# --- rule outcomes: validate_resource.go ------------------------------------------------------


def test_pattern_rule_outcomes_and_messages() -> None:
    v = {"message": "no latest tags", "pattern": {"spec": {"containers": [{"image": "!*:latest"}]}}}
    assert _run(v, _pod())[0] == "pass"
    pod = _pod()
    pod["spec"]["containers"][0]["image"] = "nginx:latest"
    assert _run(v, pod) == (
        "fail",
        "validation error: no latest tags. rule r failed at path /spec/containers/0/image/",
    )
    del v["message"]
    assert _run(v, pod)[1] == "validation error: rule r failed at path /spec/containers/0/image/"


def test_any_pattern() -> None:
    v = {
        "message": "need a probe",
        "anyPattern": [
            {"spec": {"containers": [{"livenessProbe": {}}]}},
            {"spec": {"containers": [{"readinessProbe": {}}]}},
        ],
    }
    status, msg = _run(v, _pod())
    assert status == "fail"
    assert msg == (
        "validation error: need a probe. rule r[0] failed at path /spec/containers/0/livenessProbe/"
        " rule r[1] failed at path /spec/containers/0/readinessProbe/"
    )
    pod = _pod()
    pod["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"port": 80}}
    assert _run(v, pod) == ("pass", "validation rule 'r' anyPattern[1] passed.")


def test_variables_in_patterns_and_messages() -> None:
    v = {
        "message": "{{ request.object.metadata.name }} needs app="
        "{{ request.object.metadata.labels.app }}",
        "pattern": {"metadata": {"labels": {"tier": "{{ request.object.metadata.labels.app }}"}}},
    }
    status, msg = _run(v, _pod())
    assert status == "fail" and msg.startswith("validation error: p needs app=web. rule r")
    # a variable that does not resolve is an error, not a pass (vars.go)
    v2 = {"pattern": {"metadata": {"name": "{{ request.object.metadata.labels.nope }}"}}}
    status, msg = _run(v2, _pod())
    assert status == "error" and "variable substitution failed" in msg and "Unknown key" in msg


def test_deny_conditions_any_all_and_legacy_list() -> None:
    deny = {
        "message": "{{ request.object.metadata.name }} may not run as {{ serviceAccountName }}",
        "deny": {
            "conditions": {
                "any": [
                    {"key": "{{ request.operation }}", "operator": "Equals", "value": "DELETE"},
                    {
                        "key": "{{ request.object.spec.containers[].image }}",
                        "operator": "AnyIn",
                        "value": ["*:latest", "nginx:*"],
                    },
                ]
            }
        },
    }
    assert _run(deny, _pod()) == ("fail", "p may not run as ")
    legacy = {"deny": {"conditions": [{"key": "a", "operator": "Equals", "value": "b"}]}}
    assert _run(legacy, _pod()) == ("pass", "validation rule 'r' passed.")
    all_true = {"deny": {"conditions": {"all": [{"key": 1, "operator": "Equals", "value": 1}]}}}
    assert _run(all_true, _pod()) == ("fail", "validation error: rule r failed")


def test_preconditions_skip_and_error() -> None:
    v = {"deny": {"conditions": {"all": [{"key": 1, "operator": "Equals", "value": 1}]}}}
    pre = {
        "all": [
            {
                "key": "{{ request.object.metadata.namespace }}",
                "operator": "Equals",
                "value": "kube-*",
                "message": "not a system namespace",
            }
        ]
    }
    assert _run(v, _pod(), preconditions=pre) == (
        "skip",
        "preconditions not met; not a system namespace",
    )
    missing = {
        "any": [
            {"key": "{{ request.object.metadata.labels.nope }}", "operator": "Equals", "value": "x"}
        ]
    }
    status, msg = _run(v, _pod(), preconditions=missing)
    assert status == "error" and msg.startswith("failed to evaluate preconditions")
    guarded = {
        "any": [
            {
                "key": "{{ request.object.metadata.labels.nope || '' }}",
                "operator": "Equals",
                "value": "",
            }
        ]
    }
    assert _run(v, _pod(), preconditions=guarded)[0] == "fail"


def test_foreach_element_scope_nesting_and_index() -> None:
    pod = _pod()
    pod["spec"]["containers"] = [
        {"name": "a", "image": "nginx:1", "ports": [{"containerPort": 80}]},
        {"name": "b", "image": "nginx:latest", "ports": [{"containerPort": 8080}]},
    ]
    by_pattern = {
        "foreach": [{"list": "request.object.spec.containers", "pattern": {"image": "!*:latest"}}]
    }
    status, msg = _run(by_pattern, pod)
    assert status == "fail" and msg.startswith(
        "validation failure: validation error: rule r failed"
    )
    by_deny = {
        "message": "{{ element.name }} at {{ elementIndex }}",
        "foreach": [
            {
                "list": "request.object.spec.containers",
                "deny": {
                    "conditions": {
                        "any": [
                            {
                                "key": "{{ element.image }}",
                                "operator": "Equals",
                                "value": "*:latest",
                            }
                        ]
                    }
                },
            }
        ],
    }
    assert _run(by_deny, pod) == ("fail", "validation failure: b at 1")
    nested = {
        "foreach": [
            {
                "list": "request.object.spec.containers",
                "foreach": [
                    {
                        "list": "element.ports",
                        "deny": {
                            "conditions": {
                                "all": [
                                    {
                                        "key": "{{ element0.name }}/{{ element1.containerPort }}",
                                        "operator": "Equals",
                                        "value": "b/8080",
                                    }
                                ]
                            }
                        },
                    }
                ],
            }
        ]
    }
    assert _run(nested, pod)[0] == "fail"
    # elementScope: false validates the whole resource for each element
    unscoped = {
        "foreach": [
            {
                "list": "request.object.spec.containers",
                "elementScope": False,
                "pattern": {"metadata": {"labels": {"app": "web"}}},
            }
        ]
    }
    assert _run(unscoped, pod)[0] == "pass"
    strings = {
        "foreach": [
            {
                "list": "request.object.metadata.labels.app",
                "elementScope": True,
                "pattern": {"a": 1},
            }
        ]
    }
    assert _run(strings, pod)[0] == "error"
    # an absent list: no rule response (validateForEach returns nil)
    absent = {"foreach": [{"list": "request.object.spec.initContainers", "pattern": {"a": 1}}]}
    assert _run(absent, pod) == ("skip", "no rule response")


def test_context_variables_and_values_file() -> None:
    v = {
        "deny": {
            "conditions": {
                "any": [
                    {
                        "key": "{{ team }}",
                        "operator": "NotEquals",
                        "value": "{{ allowed.data.team }}",
                    }
                ]
            }
        }
    }
    rule_ctx = [
        {
            "name": "team",
            "variable": {"jmesPath": "request.object.metadata.labels.team", "default": "none"},
        },
        {"name": "allowed", "configMap": {"name": "teams", "namespace": "policy"}},
    ]
    values = {
        "policies": [
            {"name": "pol", "rules": [{"name": "r", "values": {"allowed.data.team": "none"}}]}
        ]
    }
    r = {"name": "r", "validate": v, "context": rule_ctx}
    assert kc.evaluate_rule("pol", r, _pod(), _ctx(values=values), "Audit")[0] == "pass"
    # without the configMap's value the CLI cannot resolve it: an error
    assert kc.evaluate_rule("pol", r, _pod(), _ctx(), "Audit")[0] == "error"
    # per-resource values and the operation
    values2 = {
        "globalValues": {"request.operation": "UPDATE"},
        "policies": [{"name": "pol", "resources": [{"name": "p", "values": {"custom": "yes"}}]}],
    }
    v2 = {
        "deny": {
            "conditions": {
                "all": [
                    {
                        "key": "{{ request.operation }}-{{ custom }}",
                        "operator": "Equals",
                        "value": "UPDATE-yes",
                    },
                    {
                        "key": "{{ request.oldObject.metadata.name }}",
                        "operator": "Equals",
                        "value": "p",
                    },
                ]
            }
        }
    }
    r2 = {"name": "r", "validate": v2}
    # Audit: the UPDATE replay of validateOldObject only runs for Enforce
    assert kc.evaluate_rule("pol", r2, _pod(), _ctx(values=values2), "Audit")[0] == "fail"
    assert kc.evaluate_rule("pol", r2, _pod(), _ctx(values=values2), "Enforce")[0] == "fail"
    v3 = {"pattern": {"metadata": {"labels": {"team": "?*"}}}}
    r3 = {"name": "r", "validate": v3}
    assert kc.evaluate_rule("pol", r3, _pod(), _ctx(operation="UPDATE"), "Enforce") == (
        "skip",
        "skipping the rule evaluation as pre-existing violations are allowed",
    )


def test_user_info_and_service_account() -> None:
    v = {
        "deny": {
            "conditions": {
                "all": [
                    {"key": "{{ serviceAccountName }}", "operator": "Equals", "value": "builder"},
                    {"key": "{{ request.userInfo.groups }}", "operator": "AnyIn", "value": ["ci"]},
                ]
            }
        }
    }
    ctx = _ctx(username="system:serviceaccount:ci:builder", groups=("ci",))
    assert kc.evaluate_rule("pol", {"name": "r", "validate": v}, _pod(), ctx, "Audit")[0] == "fail"


def test_out_of_reach_features_raise_unsupported() -> None:
    with pytest.raises(Unsupported, match="imageRegistry"):
        kc.evaluate_rule(
            "pol",
            {
                "name": "r",
                "validate": {"deny": {}},
                "context": [{"name": "i", "imageRegistry": {"reference": "x"}}],
            },
            _pod(),
            _ctx(),
            "Audit",
        )
    with pytest.raises(Unsupported, match="images"):
        _run(
            {
                "deny": {
                    "conditions": {
                        "all": [
                            {"key": "{{ images.containers }}", "operator": "Equals", "value": 1}
                        ]
                    }
                }
            },
            _pod(),
        )
    with pytest.raises(Unsupported, match="x509_decode"):
        search("x509_decode('x')", {})


# --- operators: pkg/engine/variables/operator ------------------------------------------------


@pytest.mark.parametrize(
    ("op", "key", "value", "ok"),
    [
        ("Equals", "nginx:1", "nginx:*", True),  # equal.go: the value is the wildcard
        ("Equals", "nginx:*", "nginx:1", False),
        ("Equals", "1Gi", "1024Mi", True),  # quantities
        ("Equals", "1h", "60m", True),  # durations first
        ("Equals", 3, "3", True),
        ("Equals", True, "true", False),
        ("Equals", {"a": 1}, {"a": 1}, True),
        ("equals", "a", "a", True),  # operator names are case-insensitive
        ("NotEquals", "a", "b", True),
        ("In", "b", ["a", "b"], True),
        ("In", ["a", "b"], ["a", "b", "c"], True),
        ("In", ["a", "z"], ["a", "b"], False),
        ("NotIn", "z", ["a", "b"], True),
        ("NotIn", ["a", "z"], ["a", "b"], True),
        ("AnyIn", ["a", "z"], ["a", "b"], True),
        ("AnyIn", ["y", "z"], ["a", "b"], False),
        ("AnyIn", "x-1", ["x-*"], True),  # wildcards both ways
        ("AnyIn", 5, "1-10", True),  # ranges in the value
        ("AnyIn", [5, 50], "1-10", True),
        ("AllIn", ["a", "b"], ["a", "b", "c"], True),
        ("AllIn", ["a", "z"], ["a", "b"], False),
        ("AllIn", [5, 50], "1-10", False),
        ("AnyNotIn", ["a", "z"], ["a", "b"], True),
        ("AnyNotIn", ["a", "b"], ["a", "b"], False),
        ("AllNotIn", ["y", "z"], ["a", "b"], True),
        ("AllNotIn", ["a", "z"], ["a", "b"], False),
        ("GreaterThan", 5, 3, True),
        ("GreaterThan", "5", "3", True),
        ("GreaterThanOrEquals", "1Gi", "512Mi", True),  # quantity strings
        ("LessThan", "1.2.3", "1.10.0", True),  # semver strings
        ("LessThanOrEquals", "30s", "1m", True),
        ("LessThan", "abc", "def", False),
        ("DurationGreaterThan", "2h", "90m", True),
        ("DurationGreaterThanOrEquals", "1h", 3600, True),  # numbers are seconds
        ("DurationLessThan", "1h", "1h", False),
        ("DurationLessThanOrEquals", "1h", "1h", True),
    ],
)
def test_condition_operators(op: str, key: Any, value: Any, ok: bool) -> None:
    assert cond.handler(op)(key, value) is ok


def test_unknown_operator_is_an_error() -> None:
    v = {"deny": {"conditions": {"all": [{"key": 1, "operator": "Bogus", "value": 1}]}}}
    assert _run(v, _pod())[0] == "error"


# --- JMESPath: kyverno/go-jmespath and pkg/engine/jmespath --------------------------------------


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("regex_match('^nginx', 'nginx:1')", True),
        ("regex_replace_all('([a-z]+)-([0-9]+)', 'web-12', '$2-$1')", "12-web"),
        ("regex_replace_all_literal('[0-9]', 'a1b2', '$1')", "a$1b$1"),
        ('label_match(`{"a": "1"}`, `{"a": "1", "b": "2"}`)', True),
        ('label_match(`{"a": "2"}`, `{"a": "1"}`)', False),
        ("to_upper('ab')", "AB"),
        ("to_lower('AB')", "ab"),
        ("split('a,b', ',')", ["a", "b"]),
        ("trim('--a--', '-')", "a"),
        ("trim_prefix('v1.2', 'v')", "1.2"),
        ("truncate('abcdef', `3`)", "abc"),
        ("base64_decode('aGk=')", "hi"),
        ("base64_encode('hi')", "aGk="),
        ("compare('a', 'b')", -1),
        ("equal_fold('Go', 'GO')", True),
        ("replace('aaa', 'a', 'b', `2`)", "bba"),
        ("replace_all('aaa', 'a', 'b')", "bbb"),
        ("add(`1`, `2`)", 3.0),
        ("add('1h', '30m0s')", "1h30m0s"),
        ("subtract(`5`, `2`)", 3.0),
        ("multiply(`2`, `3`)", 6.0),
        ("multiply('1h', `2`)", "2h0m0s"),
        ("divide(`7`, `2`)", 3.5),
        ("divide('1h', '30m0s')", 2.0),
        ("modulo(`7`, `3`)", 1.0),
        ("round(`2.345`, `2`)", 2.35),
        ("sum([`1`, `2`, `3`])", 6.0),
        ("time_now_utc()", "2024-03-05T10:20:30Z"),
        ("time_since('', '2024-03-05T10:00:00Z', '')", "20m30s"),
        ("time_since('', '2024-03-05T10:00:00Z', '2024-03-05T12:00:01Z')", "2h0m1s"),
        ("time_to_cron('2024-03-05T10:20:00Z')", "20 10 5 3 2"),
        ("time_add('2024-03-05T10:20:00Z', '1h')", "2024-03-05T11:20:00Z"),
        ("time_diff('2024-03-05T10:00:00Z', '2024-03-05T10:00:01.5Z')", "1.5s"),
        ("time_before('2024-01-01T00:00:00Z', '2024-03-05T10:20:00Z')", True),
        ("time_after('2024-01-01T00:00:00Z', '2024-03-05T10:20:00Z')", False),
        (
            "time_between('2024-02-01T00:00:00Z', '2024-01-01T00:00:00Z', '2024-03-01T00:00:00Z')",
            True,
        ),
        ("time_utc('2024-03-05T12:00:00+02:00')", "2024-03-05T10:00:00Z"),
        ("time_truncate('2024-03-05T10:20:30Z', '1h')", "2024-03-05T10:00:00Z"),
        ("time_parse('1136239445', '1709634000')", "2024-03-05T10:20:00Z"),
        ("parse_json('{\"a\": [1]}')", {"a": [1]}),
        ("parse_yaml('a: [1]')", {"a": [1]}),
        ("pattern_match('nginx:*', 'nginx:1')", True),
        ("path_canonicalize('/a/../b//c/')", "/b/c"),
        ("items(`{\"b\": 2, \"a\": 1}`, 'k', 'v')", [{"k": "a", "v": 1}, {"k": "b", "v": 2}]),
        ("object_from_lists(['a', 'b'], [`1`])", {"a": 1, "b": None}),
        ("semver_compare('1.2.3', '>=1.0.0 <2.0.0')", True),
        ("semver_compare('2.0.0', '>=1.0.0 <2.0.0 || <0.1.0')", False),
        ("to_boolean('True')", True),
        ("lookup(`{\"a\": 1}`, 'a')", 1),
        ("sha256('x')", "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"),
    ],
)
def test_kyverno_jmespath_functions(expr: str, want: Any) -> None:
    assert search(expr, {}, lambda: NOW) == want


def test_missing_keys_follow_go_jmespath() -> None:
    data = {"a": {"b": 1, "l": [{"x": 1}, {"y": 2}]}}
    with pytest.raises(NotFound):
        search("a.c", data)
    assert search("a.c || 'd'", data) == "d"
    assert search("a.l[].x", data) == [1]  # projections drop the missing
    assert search("to_string(a.c)", data) == "null"  # function arguments read null
    with pytest.raises(QueryError):
        search("modulo(`1.5`, `1`)", data)
    with pytest.raises(Unsupported, match="quantities"):
        search("add('1Gi', '1Gi')", data)


def test_go_formatting() -> None:
    assert go.duration_string(go.parse_duration("1h30m") or 0) == "1h30m0s"
    assert go.duration_string(go.parse_duration("1.5ms") or 0) == "1.5ms"
    assert go.parse_duration("10") is None  # a unit is required, except for "0"
    assert go.float_sprint(1e6) == "1e+06" and go.float_sprint(3.0) == "3"
    assert go.marshal({"b": 1.0, "a": "<"}) == '{"a":"\\u003c","b":1}'


def test_autogen_wraps_patterns_and_rewrites_variables() -> None:
    rule = {
        "name": "autogen-r",
        "validate": {
            "message": "{{ request.object.metadata.name }}",
            "pattern": {"spec": {"hostPID": False}},
        },
    }
    gen = kc.autogen_rule(rule, "autogen")
    assert gen["validate"]["pattern"] == {"spec": {"template": {"spec": {"hostPID": False}}}}
    assert gen["validate"]["message"] == "{{ request.object.spec.template.metadata.name }}"
    cron = kc.autogen_rule(rule, "autogen-cronjob")
    assert cron["validate"]["pattern"]["spec"]["jobTemplate"]["spec"]["template"]["spec"] == {
        "hostPID": False
    }


def test_the_fixture_suite_runs_every_case() -> None:
    from policykit.existing.suites import run

    cases = run([str(ROOT / "tests/fixtures/thirdparty/kyverno/classic")])
    bad = [(c.name, c.reason) for c in cases if c.status != "pass"]
    assert not bad and len(cases) == 16
