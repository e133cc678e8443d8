"""A policy document with a field of the wrong type is an input error of that
policy (PK400, its file and line), never an internal error: every other policy
still runs and the report is written (``check --policy``, ``policykit test``).
Each mutation below crashed a run (exit 3, no report) before
policykit/existing/malformed.py."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from policykit.cli.main import cli
from tests.conftest import ROOT

FIX = ROOT / "tests/fixtures/thirdparty"
OBJS = FIX / "vap/objs.yaml"

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        node: Any = doc
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        if isinstance(node, list):
            node[int(keys[-1])] = value
        else:
            node[keys[-1]] = value

    return mutate


CASES: list[tuple[str, str, Mutation]] = [
    ("gator/labels/template.yaml", "ConstraintTemplate", _set("spec.targets", {"a": 1})),
    ("gator/labels/constraint.yaml", "PkMustLabel", _set("metadata", {})),
    (
        "gator/labels/constraint.yaml",
        "PkMustLabel",
        _set("spec.match.excludedNamespaces", [5]),
    ),
    ("gator/labels/constraint.yaml", "PkMustLabel", _set("metadata", ["x"])),
    ("kyverno/vpol/policy.yaml", "ValidatingPolicy", _set("spec.variables", 5)),
    ("kyverno/vpol/policy.yaml", "ValidatingPolicy", _set("spec.matchConditions.0", "x")),
    ("kyverno/vpol/policy.yaml", "ValidatingPolicy", _set("spec.validations", 5)),
    ("vap/vap.yaml", "ValidatingAdmissionPolicy", _set("spec.validations", [5])),
    ("vap/vap.yaml", "ValidatingAdmissionPolicyBinding", _set("spec", ["x"])),
]


def _mutated(tmp_path: Path, rel: str, kind: str, mutate: Mutation) -> Path:
    docs = list(yaml.safe_load_all((FIX / rel).read_text()))
    first = next(d for d in docs if isinstance(d, dict) and d.get("kind") == kind)
    mutate(first)
    out = tmp_path / "bad" / Path(rel).name
    out.parent.mkdir(exist_ok=True)
    out.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return out


@pytest.mark.parametrize(("rel", "kind", "mutate"), CASES)
def test_check_policy_reports_a_malformed_policy_and_runs_the_others(
    tmp_path: Path, rel: str, kind: str, mutate: Mutation
) -> None:
    bad = _mutated(tmp_path, rel, kind, mutate)
    others = [FIX / "vap/vap.yaml"] if "vap/" not in rel else [FIX / "kyverno/vpol/policy.yaml"]
    policies = [bad, *others]
    if rel.startswith("gator/") and "template" not in rel:
        policies.append(FIX / "gator/labels/template.yaml")
    if rel.startswith("gator/") and "template" in rel:
        policies.append(FIX / "gator/labels/constraint.yaml")
    objs = [str(OBJS), str(FIX / "kyverno/vpol/resources.yaml")]  # Deployments and Pods
    args = ["check", *objs, "--format", "json", "-o", str(tmp_path / "out.json")]
    for p in policies:
        args += ["--policy", str(p)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2, r.output
    assert "internal error" not in r.output and "Traceback" not in r.output
    report = json.loads((tmp_path / "out.json").read_text())
    errors = report["errors"]
    assert errors and all(e["file"] == bad.as_posix() for e in errors), errors
    # PK400 from the policy runner, or PK001 from the reader (metadata not a map)
    assert all(e["code"] in ("PK400", "PK001") for e in errors), errors
    assert any("malformed" in e["message"] or "not a map" in e["message"] for e in errors)
    if "vap/" not in rel:  # the well-formed VAPs beside it still ran
        assert any(f["pack"] == "vap" for f in report["findings"])


def test_one_malformed_gator_suite_keeps_the_others(tmp_path: Path) -> None:
    shutil.copytree(FIX / "gator/labels", tmp_path / "good")
    shutil.copytree(FIX / "gator/labels", tmp_path / "bad")
    _mutated(
        tmp_path,
        "gator/labels/constraint.yaml",
        "PkMustLabel",
        _set("spec.match.excludedNamespaces", [5]),
    )
    out = tmp_path / "t.json"
    r = CliRunner().invoke(
        cli,
        ["test", str(tmp_path / "good"), str(tmp_path / "bad"), "--format", "json", "-o", str(out)],
    )
    assert r.exit_code == 2, r.output
    assert "internal error" not in r.output
    report = json.loads(out.read_text())
    good = [c for c in report["cases"] if "/good/" in c["file"]]
    assert good and all(c["status"] == "pass" for c in good), good
    bad = [c for c in report["cases"] if "/bad/" in c["file"]]
    assert bad and all(c["status"] == "error" and "malformed" in c["reason"] for c in bad), bad


def test_a_malformed_kyverno_evaluation_is_an_error_for_every_result_on_it(
    tmp_path: Path,
) -> None:
    """One evaluation serves every result naming the same policy, resource and
    operation: when it fails on a malformed policy, each of them is an error
    (the second read an empty, remembered outcome: a PASS "excluded")."""
    (tmp_path / "policy.yaml").write_text(
        """apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: p}
spec:
  validationFailureAction: Enforce
  rules:
  - name: r1
    match: {any: [{resources: {kinds: [Pod]}}]}
    exclude: {any: [{resources: {annotations: "x"}}]}
    validate: {message: one, deny: {}}
  - name: r2
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate: {message: two, deny: {}}
"""
    )
    (tmp_path / "resources.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: pod1, namespace: a}\n"
    )
    (tmp_path / "kyverno-test.yaml").write_text(
        "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nmetadata: {name: t}\n"
        "policies: [policy.yaml]\nresources: [resources.yaml]\nresults:\n"
        "- {policy: p, rule: r1, resources: [pod1], kind: Pod, result: fail}\n"
        "- {policy: p, rule: r2, resources: [pod1], kind: Pod, result: fail}\n"
    )
    from policykit.existing.suites import collect

    cases, errors = collect([str(tmp_path)], "rego")
    assert cases == []
    assert [(e.code, e.loc.line) for e in errors] == [("PK400", 7), ("PK400", 8)]  # the results
    assert all("malformed" in e.message for e in errors)
