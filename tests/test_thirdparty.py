"""Third-party Gatekeeper and Kyverno policies and their test suites
(``policykit test``), on fixtures written for policykit: the Rego v0 upgrade
(proven in real OPA), Gatekeeper's template precedence, match and inventory,
Kyverno's match/exclude and pod-controller autogen, and unsupported features
reported as skipped, never as a pass."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft7Validator, Draft202012Validator

from policykit.cli.main import cli
from policykit.engines.rego import load_opa
from policykit.engines.rego_v0 import RegoUpgradeError, upgrade
from policykit.errors import ErrorList, PolicykitError
from policykit.existing import kyverno as ky
from policykit.existing.suites import _expect, run
from policykit.k8s import gatekeeper as gk
from tests.conftest import ROOT, sarif_schema

FIXTURES = ROOT / "tests/fixtures/thirdparty"
SARIF_SCHEMA = sarif_schema()
REPORT_SCHEMA = json.loads((ROOT / "schemas/test-report.schema.json").read_text())

# --- the suites -----------------------------------------------------------------------


def _statuses(engine: gk.Engine) -> dict[str, str]:
    return {f"{c.suite}/{c.name}": c.status for c in run([str(FIXTURES)], engine)}


EXPECTED_SKIPS = {
    "external/external-data/any-pod",
    "limits-and-registries/pk-remote-check/-/ConfigMap/settings",
}


def test_every_fixture_expectation_holds_in_real_opa() -> None:
    got = _statuses("opa")
    # 16 of them the classic Kyverno fixture (kyverno/classic), 18 the Kyverno CLI
    # behaviours (kyverno-cli), 5 the regopy template patterns (gator-regopy)
    assert len(got) == 70
    assert {k for k, s in got.items() if s == "skipped"} == EXPECTED_SKIPS
    assert {k for k, s in got.items() if s == "fail"} == set()


def test_regopy_differs_only_where_its_sprintf_defect_shows() -> None:
    # regopy prints a composite value with %v as `{\"team\"}` where OPA prints
    # ["team"] (docs/engines.md): exactly that assertion fails under regopy
    got = _statuses("rego")
    assert {k for k, s in got.items() if s == "fail"} == {
        "must-label/labels-v0/missing-and-bad-value #2"
    }
    assert {k for k, s in got.items() if s == "skipped"} == EXPECTED_SKIPS


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "thirdparty"
    shutil.copytree(FIXTURES, dst)
    return dst


def test_a_wrong_expectation_fails_with_exit_1(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    suite = root / "gator/labels/suite.yaml"
    suite.write_text(suite.read_text().replace("- violations: 2", "- violations: 3"))
    kt = root / "kyverno/cpol/kyverno-test.yaml"
    kt.write_text(
        kt.read_text().replace(
            "resources: [good-pod]\n  result: pass", "resources: [good-pod]\n  result: fail", 1
        )
    )
    r = CliRunner().invoke(cli, ["test", str(root), "--format", "json", "--engine", "opa"])
    assert r.exit_code == 1, r.output
    doc = json.loads(r.output)
    Draft202012Validator(REPORT_SCHEMA).validate(doc)
    failed = {c["name"]: c for c in doc["cases"] if c["status"] == "fail"}
    assert set(failed) == {
        "labels-v0/missing-and-bad-value #1",
        "pk-run-as-non-root/non-root/Pod/good-pod",
    }
    assert (
        "expected exactly 3 violation(s), got 2"
        in failed["labels-v0/missing-and-bad-value #1"]["reason"]
    )
    assert failed["pk-run-as-non-root/non-root/Pod/good-pod"]["reason"] == "expected fail, got pass"
    assert doc["summary"] == {"total": 70, "passed": 66, "failed": 2, "skipped": 2}
    # the case is located at its assertion / result
    line = failed["labels-v0/missing-and-bad-value #1"]["line"]
    assert suite.read_text().splitlines()[line - 1].strip() == "- violations: 3"


def test_report_formats(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["test", str(FIXTURES), "--format", "sarif", "--engine", "opa"])
    assert r.exit_code == 0, r.output
    sarif = json.loads(r.output)
    Draft7Validator(SARIF_SCHEMA).validate(sarif)
    results = sarif["runs"][0]["results"]
    assert len(results) == 2 and {x["level"] for x in results} == {"note"}
    out = tmp_path / "report.xml"
    r = runner.invoke(cli, ["test", str(FIXTURES), "--format", "junit", "-o", str(out)])
    assert r.exit_code == 0 and r.output == ""
    root = ET.parse(out).getroot()
    assert root.get("tests") == "70" and root.get("skipped") == "2" and root.get("failures") == "0"
    r = runner.invoke(cli, ["test", str(FIXTURES), "--format", "github", "--engine", "opa"])
    lines = r.output.splitlines()
    assert len(lines) == 2 and all(x.startswith("::warning file=") for x in lines)
    r = runner.invoke(cli, ["test", str(FIXTURES), "--run", "unique-ports/", "--engine", "opa"])
    assert r.output.splitlines()[-1] == "3 cases: 3 passed, 0 failed, 0 skipped (unsupported)"


def test_yaml_1_1_booleans_and_counts() -> None:
    loaded = yaml.safe_load("a: no\nb: yes\nc: 'no'\nd: 0\ne: '2'")
    assert loaded["a"] is False and loaded["b"] is True
    for key, zero_ok, one_ok in (
        ("a", True, False),
        ("b", False, True),
        ("c", True, False),
        ("d", True, False),
    ):
        expect = _expect(loaded[key])
        assert expect is not None
        assert (expect[1](0), expect[1](1)) == (zero_ok, one_ok), key
    two = _expect(loaded["e"])
    assert two is not None and two[1](2) and not two[1](1)
    assert _expect(None) is not None and _expect("maybe") is None and _expect(-1) is None


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("template: template.yaml", "template: nosuch.yaml"), "template"),
        (
            ("violations: no\n  - name: missing", "violations: perhaps\n  - name: missing"),
            "violations must be yes, no or a count",
        ),
        (("name: labels-v0", "name: [labels-v0"), "malformed YAML"),
    ],
)
def test_bad_suites_are_one_line_input_errors(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    root = _copy(tmp_path)
    suite = root / "gator/labels/suite.yaml"
    text = suite.read_text()
    assert edit[0] in text
    suite.write_text(text.replace(edit[0], edit[1], 1))
    r = CliRunner().invoke(cli, ["test", str(suite)])
    assert r.exit_code == 2
    assert "Traceback" not in r.output
    assert message in r.output and "suite.yaml" in r.output


def test_constraint_kind_must_match_template(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    c = root / "gator/labels/constraint.yaml"
    c.write_text(c.read_text().replace("kind: PkMustLabel", "kind: PkOther"))
    with pytest.raises(PolicykitError, match="does not match the template's kind"):
        run([str(root / "gator/labels/suite.yaml")], "opa")


# --- Rego v0 ------------------------------------------------------------------------------

V0_CASES: list[tuple[str, str, list[dict[str, Any]]]] = [
    (
        # partial set with a composite key, a function with else, a default, an object rule,
        # braces inside strings and comments, a removed built-in, multi-line heads
        """package t

# { not a body }
default level = "low"
level = "high" { input.n > 10 }

names[n] = upper(n) { n := input.items[_] }

deny[{"msg": msg,
      "n": input.n}] {
  input.n > 3
  msg := sprintf("n={%v}", [input.n])
}

deny[msg] {
  re_match("^x-", input.name)
  msg := "x-names are reserved"
}

size(n) = "big" { n > 5 } else = "small" { true }

flag { any([input.n == 1, input.n == 2]) }

obj = {"a": "{"} { true }
""",
        """package t

default level := "low"
level := "high" if { input.n > 10 }

names[n] := upper(n) if { some n in input.items }

deny contains {"msg": msg, "n": input.n} if {
  input.n > 3
  msg := sprintf("n={%v}", [input.n])
}

deny contains msg if {
  regex.match("^x-", input.name)
  msg := "x-names are reserved"
}

size(n) := "big" if { n > 5 } else := "small"

flag if { input.n in {1, 2} }

obj := {"a": "{"}
""",
        [{"n": 1, "items": ["a"], "name": "x-y"}, {"n": 12, "items": [], "name": "ok"}, {"n": 4}],
    ),
]


def _opa_eval(module: str, inputs: list[dict[str, Any]]) -> list[Any]:
    opa = load_opa()
    engine = opa.OpaEngine()
    engine.add_policy("t.rego", module)
    out = []
    for doc in inputs:
        row = {}
        for rule in ("level", "names", "deny", "flag", "obj"):
            try:
                row[rule] = engine.eval_document(f"t.{rule}", doc)
            except opa.OpaUndefinedError:
                row[rule] = None
        row["size"] = engine.eval_query(f"x := data.t.size({doc.get('n', 0)})", doc)
        out.append(row)
    return out


@pytest.mark.parametrize(("v0", "v1", "inputs"), V0_CASES)
def test_upgraded_v0_means_what_the_v1_spelling_means_in_real_opa(
    v0: str, v1: str, inputs: list[dict[str, Any]]
) -> None:
    up = upgrade(v0)
    assert _opa_eval(up, inputs) == _opa_eval(v1, inputs)
    assert "# { not a body }" in up and '"a": "{"' in up  # strings and comments untouched


def test_v1_modules_pass_through_and_several_bodies_become_several_rules() -> None:
    src = "package p\n\nimport rego.v1\n\nallow if { true }\n"
    assert upgrade(src) == src
    up = upgrade(
        "package p\n\nallow { input.a }\n{ input.b }\ndeny[m] { m := input.x } { m := input.y }\n"
    )
    assert "allow if { input.a }" in up and "\nallow if { input.b }" in up
    assert "\ndeny contains m if { m := input.y }" in up
    opa = load_opa()
    engine = opa.OpaEngine()
    engine.add_policy("p.rego", up)
    for doc, allowed, denied in (
        ({"a": True}, True, []),
        ({"b": True, "x": "1", "y": "2"}, True, ["1", "2"]),
        ({}, None, []),
    ):
        try:
            got = engine.eval_document("p.allow", doc)
        except opa.OpaUndefinedError:
            got = None
        assert got == allowed
        assert sorted(engine.eval_document("p.deny", doc)) == denied
    with pytest.raises(RegoUpgradeError, match="cannot read Rego"):
        upgrade("package p\n\nallow { input.a ~ 1 }\n")


def _downgrade(v1: str) -> str:
    """Our own v1 modules spelled as Rego v0 (with future keywords for `in`)."""
    out = []
    for line in v1.splitlines():
        if line.startswith("violation contains ") and line.endswith(" if {"):
            line = "violation[" + line[len("violation contains ") : -len(" if {")] + "] {"
        elif (line.endswith(" if {") and not line.startswith("\t")) or (
            line.startswith("} else := ") and line.endswith(" if {")
        ):
            line = line[: -len(" if {")] + " {"
        elif (
            (not line.startswith(("\t", " ", "#", "}")))
            and " if " in line
            and "{" not in line.split(" if ", 1)[1][:1]
        ):
            head, cond = line.split(" if ", 1)
            line = f"{head} {{ {cond} }}"
        out.append(line)
        if line.startswith("package "):
            out.append("\nimport future.keywords.in")
    return "\n".join(out) + "\n"


def test_our_templates_spelled_in_v0_give_the_same_violations() -> None:
    """Every Gatekeeper template policykit builds for the example packs,
    rewritten as a legacy v0 template (``targets[].rego`` + ``libs``), gives
    the same violations as the v1 original on every example manifest — in
    real OPA and in regopy."""
    from policykit.loader import load_paths
    from policykit.packs import load_packs
    from policykit.targets import gatekeeper as gk_target

    packs = load_packs(["policykit.packs.starter", str(ROOT / "examples/packs/acme.py")])
    files, _ = gk_target.build(packs, {p.name: p.defaults() for p in packs})
    docs = [d for d in load_paths([str(ROOT / "examples")]).documents if d.source == "kubernetes"]
    compared = 0
    for name, items in files.items():
        if not name.startswith("templates/"):
            continue
        cons = files["constraints/" + name.split("/", 1)[1]]
        for t, c in zip(items, cons, strict=True):
            src = t["spec"]["targets"][0]["code"][0]["source"]
            v0 = _downgrade(src["rego"])
            assert " if " not in v0 and "violation[" in v0
            legacy = json.loads(json.dumps(t))
            legacy["spec"]["targets"][0] = {
                "target": "admission.k8s.gatekeeper.sh",
                "rego": v0,
                "libs": [_downgrade(lib) for lib in src.get("libs") or []],
            }
            for engine in ("opa", "rego"):
                new, old = gk.TemplateRunner(t, engine), gk.TemplateRunner(legacy, engine)
                for d in docs:
                    a = sorted(v.message for v in gk.evaluate(new, c, d.obj))
                    b = sorted(v.message for v in gk.evaluate(old, c, d.obj))
                    assert a == b, (name, d.file, engine)
                    compared += 1
    assert compared > 50


# --- Gatekeeper semantics ---------------------------------------------------------------------


def _ns(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def test_gatekeeper_match_follows_gatekeeper() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "team-system"},
    }
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    assert gk.match({"excludedNamespaces": ["*-system"]}, pod) is False  # suffix glob
    assert gk.match({"namespaces": ["prod"]}, node) is True  # cluster-scoped passes
    assert gk.match({"namespaces": ["prod"], "scope": "Namespaced"}, node) is False
    assert gk.match({"excludedNamespaces": ["kube-*"]}, _ns("kube-public")) is False  # own name
    assert (
        gk.match(
            {"namespaceSelector": {"matchLabels": {"env": "prod"}}},
            pod,
            _ns("team-system", env="prod"),
        )
        is True
    )
    assert (
        gk.match(
            {"namespaceSelector": {"matchLabels": {"env": "prod"}}},
            pod,
            _ns("team-system", env="dev"),
        )
        is False
    )
    assert gk.match({"name": "*-1"}, pod) and not gk.match({"name": "db-*"}, pod)
    assert gk.match({"kinds": [{"kinds": ["Pod"]}]}, pod)  # no apiGroups: any group


def test_inventory_layout() -> None:
    inv = gk.inventory_of(
        [
            _ns("shop"),
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "shop"},
            },
        ]
    )
    assert set(inv["cluster"]["v1"]["Namespace"]) == {"shop"}
    assert set(inv["namespace"]["shop"]["apps/v1"]["Deployment"]) == {"web"}


def test_template_checks_gatekeeper_makes() -> None:
    base = yaml.safe_load((FIXTURES / "gator/labels/template.yaml").read_text())
    bad = json.loads(json.dumps(base))
    bad["metadata"]["name"] = "other"
    with pytest.raises(PolicykitError, match=r"lowercase of its kind"):
        gk.template_source(bad)
    ref = json.loads(json.dumps(base))
    ref["spec"]["targets"][0]["rego"] += "\nextra { data.secrets.x }\n"
    with pytest.raises(PolicykitError, match=r"data\.secrets"):
        gk.template_source(ref)
    lib = json.loads(json.dumps(base))
    lib["spec"]["targets"][0]["libs"] = ["package helpers\nok { true }\n"]
    with pytest.raises(PolicykitError, match=r"must start with 'lib\.'"):
        gk.template_source(lib)
    http = json.loads(json.dumps(base))
    http["spec"]["targets"][0]["rego"] += '\nx { http.send({"url": "u", "method": "get"}) }\n'
    with pytest.raises(gk.Unsupported, match=r"http\.send"):
        gk.template_source(http)


# --- Kyverno ------------------------------------------------------------------------------------


def _cpol(**annotations: str) -> dict[str, Any]:
    doc = yaml.safe_load((FIXTURES / "kyverno/cpol/policy.yaml").read_text())
    doc["metadata"]["annotations"] = annotations
    return doc


def test_clusterpolicy_autogen_rules_as_kyverno_generates_them() -> None:
    rules = ky.legacy_rules(_cpol())
    names = [r["name"] for r in rules]
    assert names[:3] == ["non-root", "team-label", "no-host-network"]
    assert "autogen-non-root" in names and "autogen-cronjob-non-root" in names
    gen = next(r for r in rules if r["name"] == "autogen-non-root")
    kinds = gen["match"]["any"][0]["resources"]["kinds"]
    assert kinds == sorted(ky.POD_CONTROLLERS)
    expr = gen["validate"]["cel"]["variables"][0]["expression"]
    assert expr.startswith("object.spec.template.spec.containers")
    cron = next(r for r in rules if r["name"] == "autogen-cronjob-non-root")
    assert cron["match"]["any"][0]["resources"]["kinds"] == ["CronJob"]
    assert "object.spec.jobTemplate.spec.template.spec.containers" in json.dumps(cron)
    # the annotation narrows or disables it
    narrowed = [r["name"] for r in ky.legacy_rules(_cpol(**{ky.AUTOGEN_ANNOTATION: "Deployment"}))]
    assert "autogen-non-root" in narrowed and "autogen-cronjob-non-root" not in narrowed
    assert [r["name"] for r in ky.legacy_rules(_cpol(**{ky.AUTOGEN_ANNOTATION: "none"}))] == names[
        :3
    ]
    # a rule that names resources turns autogen off for the whole policy
    named = _cpol()
    named["spec"]["rules"][0]["match"]["any"][0]["resources"]["names"] = ["web-*"]
    assert len(ky.legacy_rules(named)) == 3


def test_validatingpolicy_autogen_spares_name_and_namespace() -> None:
    policy = {
        "apiVersion": "policies.kyverno.io/v1",
        "kind": "ValidatingPolicy",
        "metadata": {"name": "p"},
        "spec": {
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": "object.spec.x == 1",
                    "messageExpression": "object.metadata.name + object.metadata.namespace"
                    " + object.metadata.labels.a",
                }
            ],
        },
    }
    specs = dict(ky.vpol_specs(policy))
    assert set(specs) == {"", "autogen-defaults", "autogen-cronjobs"}
    v = specs["autogen-defaults"]["validations"][0]
    assert v["expression"] == "object.spec.template.spec.x == 1"
    assert v["messageExpression"] == (
        "object.metadata.name + object.metadata.namespace + object.spec.template.metadata.labels.a"
    )
    rules = specs["autogen-defaults"]["matchConstraints"]["resourceRules"]
    assert rules == [
        {
            "apiGroups": ["apps"],
            "apiVersions": ["v1"],
            "resources": ["daemonsets", "deployments", "replicasets", "statefulsets"],
            "operations": ["CREATE"],
        },
        {
            "apiGroups": ["batch"],
            "apiVersions": ["v1"],
            "resources": ["jobs"],
            "operations": ["CREATE"],
        },
    ]
    assert "jobTemplate" in specs["autogen-cronjobs"]["validations"][0]["expression"]
    policy["spec"]["autogen"] = {"podControllers": {"controllers": ["deployments"]}}
    assert set(dict(ky.vpol_specs(policy))) == {"", "autogen-defaults"}


def test_kyverno_match_and_exclude() -> None:
    ctx = ky.Context(namespace_labels={"shop": {"env": "prod"}})
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "shop", "annotations": {"a": "yes"}},
    }
    assert ky.matches({"any": [{"resources": {"kinds": ["v1/Pod"], "names": ["web-?"]}}]}, pod, ctx)
    assert not ky.matches(
        {"all": [{"resources": {"kinds": ["Pod"]}}, {"resources": {"namespaces": ["dev"]}}]},
        pod,
        ctx,
    )
    assert ky.matches(
        {
            "resources": {
                "kinds": ["*/*/Pod"],
                "namespaceSelector": {"matchLabels": {"env": "prod"}},
            }
        },
        pod,
        ctx,
    )
    assert not ky.matches({"resources": {"kinds": ["Pod/status"]}}, pod, ctx)
    assert ky.matches({"resources": {"annotations": {"a": "y*"}}}, pod, ctx)
    assert not ky.matches({"resources": {"kinds": ["Pod"], "operations": ["DELETE"]}}, pod, ctx)
    admins = {
        "any": [
            {"resources": {"kinds": ["Pod"]}, "subjects": [{"kind": "Group", "name": "admins"}]}
        ]
    }
    user = ky.Context(groups=("devs",), user_given=True)
    assert not ky.matches(admins, pod, user)
    assert ky.matches(admins, pod, ky.Context(groups=("admins",), user_given=True))


# --- the Kyverno CLI's reading of match/exclude (kyverno/kyverno pkg/engine/utils/match.go) ---

_CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}}


def test_kyverno_match_without_user_info_drops_the_user_part_exclude_keeps_it() -> None:
    """With no userinfo file the CLI's request info is empty: a match filter's
    subjects/roles/clusterRoles are dropped (matchesResourceDescriptionMatchHelper),
    an exclude or PolicyException filter's are held to the empty user."""
    ctx = ky.Context()
    for who in (
        {"subjects": [{"kind": "Group", "name": "devs"}]},
        {"clusterRoles": ["edit"]},
        {"roles": ["shop:admin"]},
        {"subjects": [{"kind": "Group", "name": "system:authenticated"}]},
    ):
        block = {"any": [{"resources": {"kinds": ["ConfigMap"]}, **who}]}
        assert ky.matches(block, _CM, ctx), who
        assert not ky.matches(block, _CM, ctx, "exclude"), who
        assert not ky.matches(block, _CM, ctx, "exception"), who
    given = ky.Context(cluster_roles=("edit",), user_given=True)
    block = {"any": [{"resources": {"kinds": ["ConfigMap"]}, "clusterRoles": ["edit"]}]}
    assert ky.matches(block, _CM, given) and ky.matches(block, _CM, given, "exclude")
    assert not ky.matches(
        {"any": [{"resources": {"kinds": ["ConfigMap"]}, "clusterRoles": ["admin"]}]}, _CM, given
    )


def test_kyverno_selectors_resolve_wildcards_and_namespace_selector_cases() -> None:
    """``matchLabels`` wildcards are resolved against the labels first
    (pkg/engine/wildcards ReplaceInSelector); a namespaceSelector never matches
    a Namespace in a rule (an exception ignores it there) and holds a
    cluster-scoped object to no labels."""
    ctx = ky.Context(namespace_labels={"shop": {"env": "prod"}})
    cm = {**_CM, "metadata": {**_CM["metadata"], "labels": {"tier": "frontend", "app": "web"}}}

    def sel(selector: dict[str, Any], key: str = "selector") -> dict[str, Any]:
        return {"resources": {"kinds": ["*"], key: selector}}

    assert ky.matches(sel({"matchLabels": {"tier": "fr*"}}), cm, ctx)
    assert ky.matches(sel({"matchLabels": {"ti?r": "*", "app": "web"}}), cm, ctx)
    assert not ky.matches(sel({"matchLabels": {"tier": "back*"}}), cm, ctx)
    assert not ky.matches(sel({"matchLabels": {"tier": "fr*", "app": "db"}}), cm, ctx)
    assert ky.matches(sel({"matchLabels": {"env": "p*"}}, "namespaceSelector"), cm, ctx)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    assert not ky.matches(sel({}, "namespaceSelector"), namespace, ctx)
    exception = {"any": [sel({}, "namespaceSelector")]}  # an exception's block: any/all only
    assert ky.matches(exception, namespace, ctx, "exception")
    assert not ky.matches(sel({}, "namespaceSelector"), namespace, ctx, "exception")
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {}}
    assert not ky.matches(sel({"matchLabels": {"env": "prod"}}, "namespaceSelector"), role, ctx)
    assert ky.matches(sel({}, "namespaceSelector"), role, ctx)


def test_a_namespaced_kyverno_policy_applies_in_its_namespace_only() -> None:
    """pkg/engine/utils/match.go: "policy and resource namespaces mismatch"."""
    policy = {
        "apiVersion": "kyverno.io/v1",
        "kind": "Policy",
        "metadata": {"name": "p", "namespace": "shop"},
        "spec": {
            "validationFailureAction": "Enforce",
            "rules": [
                {
                    "name": "r",
                    "match": {"any": [{"resources": {"kinds": ["ConfigMap"]}}]},
                    "validate": {"message": "no", "deny": {}},
                }
            ],
        },
    }
    elsewhere = {**_CM, "metadata": {"name": "c", "namespace": "other"}}
    got = {o.status for o in ky.evaluate(policy, _CM, ky.Context())}
    assert got == {"fail"}
    assert [o.applied for o in ky.evaluate(policy, elsewhere, ky.Context())] == [False]
    cluster = {**policy, "kind": "ClusterPolicy", "metadata": {"name": "p"}}
    assert {o.status for o in ky.evaluate(cluster, elsewhere, ky.Context())} == {"fail"}


@pytest.mark.parametrize(
    ("validate", "what"),
    [
        ({"manifests": {}}, "manifest verification"),
        ({"assert": {}}, "assert"),
        ({"podSecurity": {"level": "baseline"}}, "podSecurity"),
    ],
)
def test_unsupported_kyverno_rules_are_never_a_pass(validate: dict[str, Any], what: str) -> None:
    policy = _cpol()
    policy["spec"]["rules"] = [
        {"name": "r", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]}, "validate": validate}
    ]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}
    (outcome,) = [o for o in ky.evaluate(policy, pod, ky.Context()) if o.rule == "r"]
    assert outcome.status == "unsupported" and what in outcome.message


def test_missing_policy_or_resource_is_an_input_error(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    kt = root / "kyverno/vpol/kyverno-test.yaml"
    kt.write_text(
        kt.read_text()
        .replace("resources: [bounded]", "resources: [absent]")
        .replace("policy: pk-prod-only-registry", "policy: pk-nope", 1)
    )
    with pytest.raises(ErrorList) as info:
        run([str(kt)], "opa")
    text = "\n".join(info.value.lines())
    assert (
        "resource 'absent'" in text and "policy 'pk-nope'" in text and "kyverno-test.yaml:" in text
    )


# --- check --policy -----------------------------------------------------------------------------


def test_check_runs_third_party_policies_next_to_packs(tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    shutil.copy(FIXTURES / "gator/labels/missing.yaml", manifests / "orphan.yaml")
    shutil.copy(FIXTURES / "kyverno/cpol/resources.yaml", manifests / "pods.yaml")
    r = CliRunner().invoke(
        cli,
        [
            "check",
            str(manifests),
            "--format",
            "json",
            "--policy",
            str(FIXTURES / "gator/labels"),
            "--policy",
            str(FIXTURES / "kyverno/cpol/policy.yaml"),
        ],
    )
    assert r.exit_code == 1, r.output
    doc = json.loads(r.output[: r.output.rindex("}") + 1])
    Draft202012Validator(json.loads((ROOT / "schemas/report.schema.json").read_text())).validate(
        doc
    )
    got = {
        (f["pack"], f["rule"], f["object"]["name"], f["severity"])
        for f in doc["findings"]
        if f["pack"] in ("gatekeeper", "kyverno")
    }
    assert ("gatekeeper", "teams-label-workloads", "orphan", "deny") in got
    assert ("gatekeeper", "teams-label-workloads", "root-deploy", "deny") in got  # tier missing
    assert ("kyverno", "pk-run-as-non-root/non-root", "root-pod", "deny") in got
    assert ("kyverno", "pk-run-as-non-root/team-label", "root-pod", "warn") in got  # Audit
    assert ("kyverno", "pk-run-as-non-root/autogen-non-root", "root-deploy", "deny") in got
    assert not any(
        name in ("good-pod", "system-pod") and rule.endswith("/non-root")
        for _, rule, name, _ in got
    )
    # the pattern rule runs (thirdparty/kyverno_classic): no pod sets hostNetwork
    assert not any("no-host-network" in u for u in doc["unsupported"])
    assert not any(rule.endswith("/no-host-network") for _, rule, _, _ in got)
    # the built-in packs ran too
    assert any(f["pack"] == "starter" for f in doc["findings"])


def test_constraint_without_template_is_an_input_error(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "gator/labels/constraint.yaml", tmp_path / "c.yaml")
    r = CliRunner().invoke(
        cli,
        ["check", str(FIXTURES / "gator/labels/good.yaml"), "--policy", str(tmp_path / "c.yaml")],
    )
    assert r.exit_code == 2 and "PK400" in r.output and "no ConstraintTemplate" in r.output


def test_clusterpolicy_cel_params_from_param_resources() -> None:
    policy = {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": "max-replicas"},
        "spec": {
            "rules": [
                {
                    "name": "cap",
                    "match": {"any": [{"resources": {"kinds": ["apps/v1/Deployment"]}}]},
                    "validate": {
                        "cel": {
                            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
                            "paramRef": {"name": "limits", "namespace": "policy"},
                            "expressions": [
                                {"expression": "object.spec.replicas <= int(params.data.max)"}
                            ],
                        }
                    },
                }
            ]
        },
    }
    limits = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "limits", "namespace": "policy"},
        "data": {"max": "3"},
    }
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "a"},
        "spec": {"replicas": 5},
    }
    (o,) = ky.evaluate(policy, deploy, ky.Context(params=[limits]))
    assert (o.status, o.message) == (
        "fail",
        "failed expression: object.spec.replicas <= int(params.data.max)",
    )
    deploy["spec"]["replicas"] = 2
    assert ky.evaluate(policy, deploy, ky.Context(params=[limits]))[0].status == "pass"
    # no parameter resource: an evaluation error, not a pass
    assert ky.evaluate(policy, deploy, ky.Context())[0].status == "error"


def test_kyverno_failure_action_overrides() -> None:
    """pkg/engine/api/engineresponse.go matchOverride and ruleAction: the rule's
    failureActionOverrides, then its failureAction, then the spec's
    validationFailureActionOverrides, then validationFailureAction."""
    rule = {
        "name": "r",
        "match": {"any": [{"resources": {"kinds": ["ConfigMap"]}}]},
        "validate": {"message": "no", "deny": {}},
    }
    policy: dict[str, Any] = {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": "p"},
        "spec": {
            "validationFailureAction": "Audit",
            "validationFailureActionOverrides": [
                {"action": "Bogus", "namespaces": ["*"]},  # not a valid action: passed over
                {"action": "Enforce", "namespaces": ["prod-*"]},
                {"action": "Enforce", "namespaceSelector": {"matchLabels": {"tier": "gold"}}},
            ],
            "rules": [rule],
        },
    }
    ctx = ky.Context(namespace_labels={"shop": {"tier": "gold"}})

    def action(ns: str, p: dict[str, Any] = policy) -> str:
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": ns}}
        (outcome,) = ky.evaluate(p, obj, ctx)
        assert outcome.status == "fail"
        return outcome.action

    assert [action(ns) for ns in ("prod-eu", "dev", "shop")] == ["Enforce", "Audit", "Enforce"]
    ruled = copy.deepcopy(policy)
    ruled["spec"]["rules"][0]["validate"]["failureAction"] = "Audit"  # the rule's own wins
    assert action("prod-eu", ruled) == "Audit"
    ruled["spec"]["rules"][0]["validate"]["failureActionOverrides"] = [
        {"action": "Enforce", "namespaces": ["dev"]}
    ]
    assert [action(ns, ruled) for ns in ("dev", "prod-eu")] == ["Enforce", "Audit"]


def test_kyverno_empty_filters_select_nothing() -> None:
    """Kyverno's IsEmpty: an empty filter never matches (a rule's: "match
    cannot be empty", its user part dropped without user info; an exclude's;
    an exception's), and an exception's block is any/all only. A
    ServiceAccount subject is a wildcard (pkg/utils/match CheckSubjects)."""
    ctx = ky.Context()
    subjects_only = {"subjects": [{"kind": "Group", "name": "devs"}]}
    for mode in ("match", "exclude", "exception"):
        assert not ky.matches({"any": [{}]}, _CM, ctx, mode), mode
        assert not ky.matches({"any": [{"resources": {"kinds": []}}]}, _CM, ctx, mode), mode
    assert not ky.matches({"any": [subjects_only]}, _CM, ctx)  # no user info: empty
    given = ky.Context(groups=("devs",), user_given=True)
    assert ky.matches({"any": [subjects_only]}, _CM, given)
    assert not ky.matches({"resources": {"kinds": ["ConfigMap"]}}, _CM, ctx, "exception")
    assert ky.matches({"resources": {"kinds": ["ConfigMap"]}}, _CM, ctx)  # a rule's legacy form
    sa = ky.Context(username="system:serviceaccount:ci:deployer-7", user_given=True)
    wild = {
        "any": [{"subjects": [{"kind": "ServiceAccount", "namespace": "ci", "name": "deployer-*"}]}]
    }
    assert ky.matches(wild, _CM, sa)
