"""policykit's own rule tests (`policykit.dev/v1alpha1` `Test`, run by
`policykit test`): exact expectations by severity, inline and file objects,
the case's objects as its inventory, packs and parameters from the file or the
configuration, and one clear line for every malformed file."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner, Result

from policykit.cli.main import cli
from tests.conftest import ROOT

PACK = """
from policykit.dsl import P, PackBuilder, objects, param, select

t = PackBuilder("t", "1.0.0", params={"min": param(2, {"type": "integer"})})


@t.rule("T-001", title="replicas", select=select(kinds=["Deployment"]),
        message="{metadata.name} runs {spec.replicas}")
def replicas(o):
    return o.spec.replicas.default(1) < P("min")


@t.rule("T-002", title="team", severity="warn", select=select(kinds=["Deployment"]),
        message="{metadata.name} has no team")
def team(o):
    return o.metadata.labels.team.absent()


@t.rule("T-003", title="unique name", select=select(kinds=["Deployment"]),
        message="{metadata.name} is taken")
def unique(o):
    return objects().any(lambda x: (x.kind == o.kind) & (x.metadata.name == o.metadata.name))
"""


def deployment(name: str, replicas: int = 2, team: str | None = "a", ns: str = "x") -> str:
    labels = f"labels: {{team: {team}}}" if team else "labels: {}"
    return (
        f"apiVersion: apps/v1\nkind: Deployment\n"
        f"metadata: {{name: {name}, namespace: {ns}, {labels}}}\nspec: {{replicas: {replicas}}}\n"
    )


def indent(text: str, n: int) -> str:
    return "".join(" " * n + line + "\n" for line in text.splitlines())


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["test", *args], catch_exceptions=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "pack.py").write_text(PACK)
    (tmp_path / "policykit.yaml").write_text("packs: [pack.py]\n")
    (tmp_path / "tests").mkdir()
    return tmp_path


def write_test(repo: Path, cases: str, head: str = "", name: str = "t.test.yaml") -> Path:
    path = repo / "tests" / name
    path.write_text(
        "apiVersion: policykit.dev/v1alpha1\nkind: Test\nmetadata: {name: suite}\n"
        + head
        + "cases:\n"
        + cases
    )
    return path


def cases_of(r: Result) -> list[dict[str, object]]:
    doc = json.loads(r.output)
    jsonschema.validate(doc, json.loads((ROOT / "schemas/test-report.schema.json").read_text()))
    return list(doc["cases"])


def test_expectations_are_exact_by_severity(repo: Path) -> None:
    write_test(
        repo,
        "- name: denied and warned\n  object:\n"
        + indent(deployment("one", replicas=1, team=None), 4)
        + "  expect: {deny: [T-001], warn: [T-002]}\n"
        "- name: clean\n  object:\n" + indent(deployment("two"), 4) + "  expect: clean\n"
        "- name: the warning is missing from the expectation\n  object:\n"
        + indent(deployment("three", replicas=1, team=None), 4)
        + "  expect: {deny: [T-001]}\n"
        "- name: expected a finding that does not come\n  object:\n"
        + indent(deployment("four"), 4)
        + "  expect: {deny: [T-001]}\n"
        "- name: a rule at the wrong severity\n  object:\n"
        + indent(deployment("five", team=None), 4)
        + "  expect: {deny: [T-002]}\n",
    )
    r = run(str(repo / "tests"), "--format", "json")
    assert r.exit_code == 1
    got = {c["name"]: c for c in cases_of(r)}
    assert [c["status"] for c in got.values()] == ["pass", "pass", "fail", "fail", "fail"]
    assert got["the warning is missing from the expectation"]["reason"] == (
        "expected deny [T-001], got deny [T-001]; warn [T-002] (T-002: three has no team)"
    )
    assert got["expected a finding that does not come"]["reason"] == (
        "expected deny [T-001], got clean"
    )
    assert got["a rule at the wrong severity"]["reason"].startswith(
        "expected deny [T-002], got warn [T-002]"
    )
    # each case points at its line in the file
    lines = (repo / "tests/t.test.yaml").read_text().splitlines()
    for case in got.values():
        assert lines[int(str(case["line"])) - 1] == f"- name: {case['name']}"
        assert case["suite"] == "suite"


def test_rules_limit_a_case(repo: Path) -> None:
    write_test(
        repo,
        "- name: only T-002\n  rules: [T-002]\n  object:\n"
        + indent(deployment("one", replicas=1, team=None), 4)
        + "  expect: {warn: [T-002]}\n",
    )
    r = run(str(repo / "tests"))
    assert r.exit_code == 0, r.output
    assert "1 case: 1 passed" in r.output


def test_the_objects_of_a_case_are_its_inventory(repo: Path) -> None:
    both = indent(deployment("same"), 6).replace("      apiVersion", "    - apiVersion", 1)
    write_test(
        repo,
        "- name: alone, unique\n  rules: [T-003]\n  object:\n"
        + indent(deployment("same"), 4)
        + "  expect: clean\n"
        "- name: two of a name\n  rules: [T-003]\n  objects:\n"
        + both
        + both.replace("namespace: x", "namespace: y")
        + "  expect: {deny: [T-003]}\n",
    )
    r = run(str(repo / "tests"), "--format", "json")
    assert r.exit_code == 0, r.output
    assert [c["status"] for c in cases_of(r)] == ["pass", "pass"]


def test_file_objects_packs_and_params_from_the_file(repo: Path) -> None:
    (repo / "deploy").mkdir()
    (repo / "deploy/app.yaml").write_text(deployment("a", replicas=2) + "---\n" + deployment("b"))
    other = repo / "other"
    other.mkdir()
    (other / "pack.py").write_text(PACK.replace('"t"', '"t2"').replace("T-00", "U-00"))
    write_test(
        repo,
        "- name: the manifests\n  file: ../deploy/app.yaml\n  expect: clean\n"
        "- name: with min 3 both are too small\n  file: ../deploy/app.yaml\n"
        "  rules: [T-001]\n  expect: {deny: [T-001]}\n",
        head="params: {t: {min: 3}}\n",
        name="params.test.yaml",
    )
    r = run(str(repo / "tests/params.test.yaml"), "--format", "json")
    assert [c["status"] for c in cases_of(r)] == ["fail", "pass"]
    # packs named by the file, relative to it, instead of the configuration's
    write_test(
        repo,
        "- name: own pack\n  object:\n"
        + indent(deployment("one", replicas=1), 4)
        + "  expect: {deny: [U-001]}\n",
        head="packs: [../other/pack.py]\n",
        name="packs.test.yaml",
    )
    r = run(str(repo / "tests/packs.test.yaml"))
    assert r.exit_code == 0, r.output


def test_found_in_directories_beside_gator_suites_and_other_yaml(repo: Path) -> None:
    write_test(repo, "- name: c\n  object:\n" + indent(deployment("a"), 4) + "  expect: clean\n")
    (repo / "tests/values.yaml").write_text("replicas: 3\n")  # not a test: ignored
    gator = ROOT / "tests/fixtures/thirdparty/gator/labels"
    r = run(str(repo / "tests"), str(gator), "--format", "json")
    suites = {c["suite"] for c in cases_of(r)}
    assert "suite" in suites and len(suites) > 1


@pytest.mark.parametrize(
    ("cases", "where", "message"),
    [
        (
            "- name: two sources\n  file: a.yaml\n  object: {apiVersion: v1, kind: Pod}\n"
            "  expect: clean\n",
            5,
            "a case names exactly one of object, objects or file",
        ),
        (
            "- name: no expectation\n  object: {apiVersion: v1, kind: Pod}\n",
            5,
            "'expect' is a required property",
        ),
        (
            "- name: a typo\n  object: {apiVersion: v1, kind: Pod}\n  expect: {deny: [t-001]}\n",
            7,
            "does not match",
        ),
        (
            "- name: an unknown rule\n  object: {apiVersion: v1, kind: Pod}\n"
            "  expect: {deny: [T-999]}\n",
            5,
            "names rules no pack defines: T-999",
        ),
        (
            "- name: a missing file\n  file: ../nowhere.yaml\n  expect: clean\n",
            6,
            "file ../nowhere.yaml does not exist",
        ),
        (
            "- name: bad\n  object: {apiVersion: v1, kind: Pod\n",
            0,
            "malformed YAML",
        ),
        (
            "- name: c\n  object: {apiVersion: v1, kind: Pod}\n  expect: clean\n"
            "---\napiVersion: policykit.dev/v1alpha1\nkind: Test\n",
            0,
            "a test file holds one Test document (found 2)",
        ),
        (
            "- name: bomb\n  object: {apiVersion: v1, kind: Pod}\n  expect: clean\n"
            "  x: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
            + "".join(
                f"  {c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
                for p, c in zip("abcdefg", "bcdefgh", strict=True)
            ),
            0,
            "YAML aliases expand beyond",
        ),
        (
            "- name: narrowed\n  rules: [T-001]\n  object: {apiVersion: v1, kind: Pod}\n"
            "  expect: {warn: [T-002]}\n",
            6,
            "expects T-002, which its rules leave out",
        ),
        (
            "- name: verdict\n  object: {apiVersion: v1, kind: Pod}\n  expect: dirty\n",
            7,
            "expect is 'clean' or a mapping",
        ),
    ],
)
def test_malformed_tests_get_one_line(repo: Path, cases: str, where: int, message: str) -> None:
    path = write_test(repo, cases)
    r = CliRunner().invoke(cli, ["test", str(repo / "tests")])
    assert r.exit_code == 2, r.output
    line = r.stderr.strip()  # stdout: the report, with this file as an error case
    assert "\n" not in line and "Traceback" not in line
    assert "ERROR" in r.stdout and "1 input error\n" in r.stdout
    assert message in line
    assert "PK001" in line
    if where:
        assert f"{path.as_posix()}:{where}:" in line, line
    else:
        assert path.as_posix() in line


def test_no_packs_anywhere_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "apiVersion: policykit.dev/v1alpha1\nkind: Test\ncases:\n"
        "- name: c\n  object: {apiVersion: v1, kind: Pod}\n  expect: clean\n"
    )
    r = CliRunner().invoke(cli, ["test", str(path)])
    assert r.exit_code == 2
    assert "no packs" in r.output and "PK001" in r.output


def test_a_bad_parameter_is_reported_against_the_file(repo: Path) -> None:
    path = write_test(
        repo,
        "- name: c\n  object: {apiVersion: v1, kind: Pod}\n  expect: clean\n",
        head="params: {t: {min: many}}\n",
    )
    r = CliRunner().invoke(cli, ["test", str(path)])
    assert r.exit_code == 2
    assert "PK102" in r.output and path.as_posix() in r.output
