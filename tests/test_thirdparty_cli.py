"""Existing policies as their own tools run them (issue 22): reports never lost,
the Kyverno CLI's semantics (each behaviour on a fixture of its own under
tests/fixtures/thirdparty/kyverno-cli), Gatekeeper templates on regopy
(tests/fixtures/thirdparty/gator-regopy) and check --policy in SARIF."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import Draft7Validator, Draft202012Validator

from policykit.cli.main import cli
from policykit.engines.cel import CelEvalError, program
from policykit.errors import PolicykitError
from policykit.existing.suites import collect
from policykit.k8s import gatekeeper as gk
from policykit.k8s.celcompat import rewrite
from tests.conftest import ROOT, sarif_schema

FIX = ROOT / "tests/fixtures/thirdparty"
CLI = FIX / "kyverno-cli"
REPORT_SCHEMA = json.loads((ROOT / "schemas/test-report.schema.json").read_text())


def _cases(path: Path) -> dict[str, tuple[str, str]]:
    cases, errors = collect([str(path)], "opa")
    assert errors == []
    return {f"{c.suite}/{c.name}": (c.status, c.reason) for c in cases}


def test_tests_in_hidden_kyverno_test_folders_are_found() -> None:
    got = _cases(CLI / "hidden")
    assert {k: s for k, (s, _) in got.items()} == {
        "hidden-team/pk-hidden-team/team/ConfigMap/owned": "pass",
        "hidden-team/pk-hidden-team/team/ConfigMap/orphan": "pass",
    }


def test_a_base_rule_name_matches_its_autogen_rules() -> None:
    got = _cases(CLI / "autogen")
    assert all(s == "pass" for s, _ in got.values()), got
    loud = got["autogen-lookup/pk-no-privileged/no-privileged/Deployment/loud"][1]
    assert loud.startswith("expected fail, got fail") and "privileged containers" in loud


def test_excluded_resources_pass_as_in_kyverno_test(tmp_path: Path) -> None:
    shutil.copytree(CLI / "autogen", tmp_path / "t")
    kt = tmp_path / "t/kyverno-test.yaml"
    # a rule of Pods only: a result naming a ConfigMap-free rule on a Deployment
    # that no rule matches is "excluded", a pass, whatever was expected
    (tmp_path / "t/resources.yaml").write_text(
        (tmp_path / "t/resources.yaml").read_text()
        + "---\napiVersion: v1\nkind: Service\nmetadata: {name: svc, namespace: apps}\n"
    )
    kt.write_text(
        kt.read_text() + "- {policy: pk-no-privileged, rule: no-privileged, kind: Service,"
        " resources: [svc], result: fail}\n"
    )
    status, reason = _cases(tmp_path / "t")[
        "autogen-lookup/pk-no-privileged/no-privileged/Service/svc"
    ]
    assert status == "pass" and "excluded" in reason


def test_resources_without_a_namespace_are_in_default() -> None:
    got = _cases(CLI / "default-ns")
    status, reason = got["default-namespace/pk-not-in-default/elsewhere/Service/default/api"]
    assert status == "pass" and "not default" in reason
    assert got["default-namespace/pk-not-in-default/elsewhere/Service/shop/api"][0] == "pass"


def test_cel_go_orvalue_and_null_optional_select() -> None:
    got = _cases(CLI / "celgo")
    assert all(s == "pass" for s, _ in got.values()), got
    assert "pods do not run as root" in got["cel-go-compat/pk-mounts-read-only/-/Pod/root"][1]
    data = {"object": {"a": 1, "n": None, "m": {"x": 7}, "l": [{"v": [1]}]}}
    for source, value in (
        ("object.a.orValue(3)", 1),  # not optional: the value itself
        ("object.z.orValue(3)", 3),  # missing: the default
        ("object.n.?x.orValue(5)", 5),  # null.?x is optional.none()
        ("object.?n.?x.orValue(5)", 5),
        ("object.m.?x.orValue(1)", 7),
        ("object.l[3].v.orValue([])", []),
        ("optional.none().orValue(2)", 2),
        ("object.l.all(c, c.v.orValue([]).size() == 1)", True),
    ):
        assert program(rewrite(source)).eval(data) == value, source
    with pytest.raises(CelEvalError):  # cel-cpp alone
        program("object.a.orValue(3)").eval(data)
    assert rewrite("object.a == 1") == "object.a == 1"  # untouched without orValue / .?


def test_clusterpolicy_cel_errors_deny() -> None:
    got = _cases(CLI / "cel-errors")
    assert all(s == "pass" for s, _ in got.values()), got
    unset = got["cel-errors-deny/pk-replicas-declared/replicas/Deployment/unset"][1]
    assert "expression 'object.spec.replicas >= 2' resulted in error" in unset
    # a validation without a message takes the rule's validate.message
    assert (
        "replicas must be at least 2"
        in got["cel-errors-deny/pk-replicas-declared/replicas/Deployment/one"][1]
    )


def test_context_files_back_resource_and_image_lookups(tmp_path: Path) -> None:
    got = _cases(CLI / "context")
    assert all(s == "pass" for s, _ in got.values()), got
    assert "namespace small is full" in got["context-file/pk-quota-and-arch/-/Pod/crowded"][1]
    assert "amd64" in got["context-file/pk-quota-and-arch/-/Pod/arm"][1]
    shutil.copytree(CLI / "context", tmp_path / "t")
    kt = tmp_path / "t/kyverno-test.yaml"
    kt.write_text(kt.read_text().replace("context: context.yaml\n", ""))
    assert {s for s, _ in _cases(tmp_path / "t").values()} == {"skipped"}  # never a pass


def test_duplicate_resources_count_once_and_the_first_wins() -> None:
    got = _cases(CLI / "dedupe")
    assert list(got) == ["duplicates/pk-small-configmaps/size/ConfigMap/settings"]
    assert got["duplicates/pk-small-configmaps/size/ConfigMap/settings"][0] == "pass"


# --- reports never lost ----------------------------------------------------------------


def _broken(tmp_path: Path) -> Path:
    root = tmp_path / "estate"
    shutil.copytree(FIX / "gator/labels", root / "gator/labels")
    shutil.copytree(FIX / "gator/labels", root / "gator/broken")
    template = root / "gator/broken/template.yaml"
    template.write_text(template.read_text().replace("some k\n", "some k ~\n", 1))
    shutil.copytree(CLI / "autogen", root / "kyverno/autogen")
    shutil.copytree(CLI / "dedupe", root / "kyverno/dedupe")
    kt = root / "kyverno/dedupe/kyverno-test.yaml"
    kt.write_text(kt.read_text().replace("resources: [settings]", "resources: [nosuch]"))
    return root


def test_test_keeps_the_whole_json_report_when_files_are_bad(tmp_path: Path) -> None:
    root = _broken(tmp_path)
    r = CliRunner().invoke(cli, ["test", str(root), "--format", "json", "--engine", "rego"])
    assert r.exit_code == 2, r.output
    doc = json.loads(r.output[: r.output.rindex("}") + 1])
    Draft202012Validator(REPORT_SCHEMA).validate(doc)
    errors = [c for c in doc["cases"] if c["status"] == "error"]
    assert len(errors) == 2
    assert any(
        c["file"].endswith("broken/template.yaml") and "cannot read Rego" in c["reason"]
        for c in errors
    )
    assert any("'nosuch'" in c["reason"] for c in errors)
    # every other file still ran
    assert sum(1 for c in doc["cases"] if c["suite"] == "autogen-lookup") == 3
    assert sum(1 for c in doc["cases"] if c["suite"] == "must-label") >= 4


def test_check_policy_keeps_its_report_when_a_policy_cannot_load(tmp_path: Path) -> None:
    root = _broken(tmp_path)
    r = CliRunner().invoke(
        cli,
        [
            "check",
            str(CLI / "autogen/resources.yaml"),
            "--format",
            "sarif",
            "--policy",
            str(root / "gator/broken"),
            "--policy",
            str(CLI / "autogen/policy.yaml"),
            "--policy",
            str(FIX / "gator-regopy/hosts"),
        ],
    )
    assert r.exit_code == 2, r.output
    sarif = json.loads(r.output[: r.output.rindex("}") + 1])
    Draft7Validator(sarif_schema()).validate(sarif)
    run = sarif["runs"][0]
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert len(notes) == 1 and "cannot read Rego" in notes[0]["message"]["text"]
    hits = [x for x in run["results"] if x["properties"]["pack"] == "kyverno"]
    assert {x["ruleId"] for x in hits} == {
        "pk-no-privileged/autogen-no-privileged",
        "pk-no-privileged/autogen-cronjob-no-privileged",
    }
    rules = run["tool"]["driver"]["rules"]
    for x in hits:
        assert rules[x["ruleIndex"]]["id"] == x["ruleId"]
    hosts = next(d for d in rules if d["id"] == "example-hosts")
    assert hosts["fullDescription"]["text"].startswith("Ingress hosts must match")


def test_sarif_descriptors_from_kyverno_annotations(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        (CLI / "autogen/policy.yaml")
        .read_text()
        .replace(
            "  name: pk-no-privileged\n",
            "  name: pk-no-privileged\n  annotations:\n"
            "    policies.kyverno.io/title: No privileged containers\n"
            "    policies.kyverno.io/description: >-\n      Privileged containers can do"
            " anything the host can.\n"
            "    policies.kyverno.io/severity: high\n",
        )
    )
    r = CliRunner().invoke(
        cli,
        [
            "check",
            str(CLI / "autogen/resources.yaml"),
            "--format",
            "sarif",
            "--policy",
            str(policy),
        ],
    )
    assert r.exit_code == 1, r.output
    rules = json.loads(r.output)["runs"][0]["tool"]["driver"]["rules"]
    d = next(x for x in rules if x["id"] == "pk-no-privileged/autogen-no-privileged")
    assert d["name"] == "NoPrivilegedContainers"
    assert d["shortDescription"]["text"] == "No privileged containers"
    assert d["fullDescription"]["text"] == "Privileged containers can do anything the host can."
    assert d["properties"]["severity"] == "high" and d["defaultConfiguration"]["level"] == "error"


# --- Gatekeeper on regopy -----------------------------------------------------------------


@pytest.mark.parametrize("engine", ["opa", "rego"])
def test_v0_templates_with_several_bodies_and_backslash_regexes(engine: gk.Engine) -> None:
    cases, errors = collect([str(FIX / "gator-regopy")], engine)
    assert errors == [] and len(cases) == 5
    assert {c.status for c in cases} == {"pass"}


def test_regopy_pattern_rewrite_leaves_literals() -> None:
    text = (
        'x { regex.match(input.p, y); regex.match(`^a\\.b$`, y); regex.replace(s, input.q, "") }\n'
    )
    got = gk.regopy_patterns(text)
    assert "regex.match(_pk_regopy_pattern(input.p), y)" in got
    assert "regex.match(`^a\\.b$`, y)" in got
    assert 'regex.replace(s, _pk_regopy_pattern(input.q), "")' in got


def test_a_template_that_cannot_evaluate_is_an_error_case_not_a_crash(tmp_path: Path) -> None:
    # OPA: an invalid regex from a parameter is an evaluation error
    root = tmp_path / "hosts"
    shutil.copytree(FIX / "gator-regopy/hosts", root)
    c = root / "constraint.yaml"
    c.write_text(c.read_text().replace('"^[a-z0-9-]+', '"(^[a-z0-9-]+'))
    r = CliRunner().invoke(cli, ["test", str(root), "--format", "json", "--engine", "opa"])
    assert r.exit_code == 2, r.output
    doc = json.loads(r.output[: r.output.rindex("}") + 1])
    assert any(x["status"] == "error" and "could not evaluate" in x["reason"] for x in doc["cases"])
    # regopy: a glob pattern holding a backslash makes it print an error where
    # JSON was expected (a JSONDecodeError ended the run with exit 3)
    template = {
        "apiVersion": "templates.gatekeeper.sh/v1",
        "kind": "ConstraintTemplate",
        "metadata": {"name": "pkescape"},
        "spec": {
            "crd": {"spec": {"names": {"kind": "PkEscape"}}},
            "targets": [
                {
                    "target": "admission.k8s.gatekeeper.sh",
                    "rego": 'package pkescape\n\nviolation[{"msg": "x"}] {\n'
                    '  glob.match(base64.decode("XC4="), [], "a")\n}\n',
                }
            ],
        },
    }
    constraint = {"kind": "PkEscape", "metadata": {"name": "e"}, "spec": {}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"}}
    with pytest.raises(PolicykitError, match="regopy could not evaluate the template"):
        gk.evaluate(gk.TemplateRunner(template, "rego"), constraint, pod)


def test_check_policy_puts_kyverno_objects_without_a_namespace_in_default(tmp_path: Path) -> None:
    """``kyverno apply`` loads a namespaced object without a namespace into
    ``default`` (cmd/cli/kubectl-kyverno/resource/resource.go YamlToUnstructured),
    as ``policykit test`` already did; ``check --policy`` now does too. A
    cluster-scoped object stays without one, and the finding names the object
    as the file wrote it."""
    (tmp_path / "objs.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bare}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: placed, namespace: shop}\n---\n"
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: cr}\n"
    )
    (tmp_path / "policy.yaml").write_text(
        """apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: only-default}
spec:
  validationFailureAction: Enforce
  rules:
  - name: in-default
    match: {any: [{resources: {kinds: [ConfigMap, ClusterRole], namespaces: [default]}}]}
    validate:
      message: "{{ request.object.metadata.namespace }}"
      deny: {}
"""
    )
    objs, policy = str(tmp_path / "objs.yaml"), str(tmp_path / "policy.yaml")
    r = CliRunner().invoke(cli, ["check", objs, "--policy", policy, "--format", "json"])
    assert r.exit_code == 1, r.output
    found = json.loads(r.output)["findings"]
    got = [(f["object"]["name"], f["object"]["namespace"], f["message"]) for f in found]
    assert got == [("bare", "", "default")]


def test_check_policy_runs_validating_admission_policies() -> None:
    """A ValidatingAdmissionPolicy as ``kyverno apply`` runs it offline
    (pkg/admissionpolicy/validate.go): through each binding naming it (its
    matchResources and validationActions), or alone without one (Deny); an
    expression that errors is a finding in the API server's words under
    failurePolicy Fail and nothing under Ignore; paramKind is unsupported,
    never a pass (tests/fixtures/thirdparty/vap)."""
    vap = FIX / "vap"
    args = ["check", str(vap / "objs.yaml"), "--policy", str(vap / "vap.yaml")]
    r = CliRunner().invoke(cli, [*args, "--format", "json", "--pack", "policykit.packs.starter"])
    assert r.exit_code == 1, r.output
    report = json.loads(r.stdout)
    got = [
        (f["rule"], f["pack"], f["severity"], f["object"]["name"], f["message"])
        for f in report["findings"]
        if f["pack"] == "vap"
    ]
    assert got == [
        # the binding's namespaceSelector: the Namespace "shop" in the input is env=prod
        ("max-replicas", "vap", "warn", "big", "replicas 5 > 3"),
        (
            "need-team",
            "vap",
            "deny",
            "nolabels",
            "error: expression 'object.metadata.labels.team != ''' resulted in error: "
            "no such key: labels",
        ),
    ]
    assert report["unsupported"] == [
        "ValidatingAdmissionPolicy with-params uses paramKind (parameter resources)"
    ]
    r = CliRunner().invoke(cli, [*args, "--format", "sarif"])
    rules = {d["id"]: d for d in json.loads(r.stdout)["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["max-replicas"]["defaultConfiguration"]["level"] == "warning"
    assert rules["need-team"]["defaultConfiguration"]["level"] == "error"
    assert rules["need-team"]["properties"]["pack"] == "vap"


def test_a_kyverno_test_naming_a_validating_admission_policy_is_an_error_that_says_so(
    tmp_path: Path,
) -> None:
    shutil.copy(FIX / "vap/vap.yaml", tmp_path / "vap.yaml")
    shutil.copy(FIX / "vap/objs.yaml", tmp_path / "objs.yaml")
    (tmp_path / "kyverno-test.yaml").write_text(
        "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nmetadata: {name: t}\n"
        "policies: [vap.yaml]\nresources: [objs.yaml]\n"
        "results:\n- {policy: max-replicas, resources: [big], kind: Deployment, result: fail}\n"
    )
    cases, errors = collect([str(tmp_path)], "opa")
    assert cases == []
    assert [e.message for e in errors] == [
        "policy 'max-replicas' is a ValidatingAdmissionPolicy: policykit test does not run "
        "those in kyverno tests"
    ]
    assert errors[0].hint.startswith("policykit check --policy")


def test_a_vap_sees_the_namespace_of_an_object_whose_namespace_is_not_in_the_input() -> None:
    """``namespaceObject`` is the input's Namespace, else one with the object's
    namespace name (an object without one is in ``default``, as the CLI loads
    it); it was null, and reading it an error."""
    vap = FIX / "vap"
    r = CliRunner().invoke(
        cli,
        ["check", str(vap / "configmaps.yaml"), "--policy", str(vap / "namespace-object.yaml"),
         "--pack", "policykit.packs.starter", "--format", "json"],
    )  # fmt: skip
    found = [(f["object"]["name"], f["message"]) for f in json.loads(r.stdout)["findings"]]
    assert found == [("a", "not in kube-system")], r.output


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        ("Ignore", ["too many"]),
        (
            "Fail",
            [
                "too many",
                "error: expression 'object.spec.nope.x == 1' resulted in error: no such key: nope",
            ],
        ),
    ],
)
def test_each_vap_validation_is_its_own_decision(
    tmp_path: Path, failure: str, expected: list[str]
) -> None:
    """As the API server's validator: a validation that errs is a decision of
    its own under Fail and none under Ignore; the others are evaluated either
    way (one error hid every other validation, and under Ignore all of them)."""
    (tmp_path / "vap.yaml").write_text(
        f"""apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: p}}
spec:
  failurePolicy: {failure}
  matchConstraints:
    resourceRules:
    - {{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}}
  validations:
  - expression: "object.spec.nope.x == 1"
  - expression: "object.spec.replicas <= 5"
    message: too many
"""
    )
    (tmp_path / "d.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: a}\n"
        "spec: {replicas: 9}\n"
    )
    r = CliRunner().invoke(
        cli,
        ["check", str(tmp_path / "d.yaml"), "--policy", str(tmp_path / "vap.yaml"),
         "--pack", "policykit.packs.starter", "--format", "json"],
    )  # fmt: skip
    got = [f["message"] for f in json.loads(r.stdout)["findings"] if f["pack"] == "vap"]
    assert sorted(got) == sorted(expected), r.output
