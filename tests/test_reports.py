"""CI report formats of ``policykit check``: SARIF 2.1.0 (validated against the
SARIF 2.1.0 schema, errata 01), JUnit XML, GitHub annotations; ``--output``
writes atomically."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from click.testing import CliRunner
from jsonschema import Draft7Validator

from policykit.api import check
from policykit.cli.main import cli
from policykit.errors import InputError, SourceLoc
from policykit.loader import DEFAULT_EXCLUDE
from policykit.model import Finding, ObjectRef
from policykit.reports import fingerprint, github, sarif
from tests.conftest import ROOT, sarif_schema

# as the repository's [tool.policykit] has it: examples/platform is a repository of its own
EXCLUDE = (*DEFAULT_EXCLUDE, "platform")
SARIF_SCHEMA = sarif_schema()


def _run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["check", str(ROOT / "examples"), *args])
    return r.exit_code, r.output


def test_sarif_is_valid_and_complete() -> None:
    code, out = _run("--format", "sarif")
    assert code == 1
    doc = json.loads(out)
    Draft7Validator(SARIF_SCHEMA).validate(doc)
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    report = check(
        [str(ROOT / "examples")],
        packs=["policykit.packs.starter", str(ROOT / "examples/packs/acme.py")],
        exclude=EXCLUDE,
    )
    assert {r["id"] for r in rules} == {r.id for p in report.packs for r in p.rules}
    assert len(run["results"]) == len(report.findings) > 5
    levels = {"deny": "error", "warn": "warning", "info": "note"}
    for res, f in zip(run["results"], report.findings, strict=True):
        assert res["ruleId"] == f.rule and res["level"] == levels[f.severity]
        assert rules[res["ruleIndex"]]["id"] == f.rule
        loc = res["locations"][0]["physicalLocation"]
        assert loc["region"]["startLine"] == f.line
        uri = loc["artifactLocation"]["uri"]
        assert not uri.startswith("/") and (Path.cwd() / uri).is_file(), uri
    # stable fingerprints, distinct per finding
    fps = [r["partialFingerprints"]["policykit/v1"] for r in run["results"]]
    assert len(set(fps)) == len(fps)
    assert run["invocations"][0]["executionSuccessful"] is True


def test_sarif_reports_input_errors_and_odd_paths() -> None:
    f = Finding(
        "X-001", "p", "warn", "m", ObjectRef("v1", "Pod", "", "a"), "dir with space/é.yaml", 0, 7
    )
    err = InputError("bad YAML", loc=SourceLoc("broken.yaml", 3), hint="fix it")
    doc = sarif([], [f], [err])
    Draft7Validator(SARIF_SCHEMA).validate(doc)
    uri = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"][
        "uri"
    ]
    assert uri == "dir%20with%20space/%C3%A9.yaml"
    inv = doc["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is False
    assert inv["toolExecutionNotifications"][0]["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 3
    }


def test_fingerprint_ignores_line_moves_but_not_identity() -> None:
    ref = ObjectRef("v1", "Pod", "ns", "a")
    a = Finding("X-001", "p", "deny", "m", ref, "f.yaml", 0, 3)
    b = Finding("X-001", "p", "deny", "m2", ref, "f.yaml", 1, 30)
    c = Finding("X-001", "p", "deny", "m", ObjectRef("v1", "Pod", "ns", "b"), "f.yaml", 0, 3)
    assert fingerprint(a) == fingerprint(b) != fingerprint(c)


def test_junit_one_case_per_rule_and_object(tmp_path: Path) -> None:
    out = tmp_path / "report.xml"
    code, _ = _run("--format", "junit", "--output", str(out))
    assert code == 1
    root = ET.parse(out).getroot()
    report = check(
        [str(ROOT / "examples")],
        packs=["policykit.packs.starter", str(ROOT / "examples/packs/acme.py")],
        exclude=EXCLUDE,
    )
    cases = root.findall(".//testcase")
    assert int(root.get("tests", "0")) == len(cases)
    failures = [c for c in cases if c.find("failure") is not None]
    # the default --fail-on deny: only deny findings fail, as only they make check exit 1
    failing = {(f.pack, f.rule, f.file, f.line) for f in report.findings if f.severity == "deny"}
    got = {
        (
            c.get("classname", "").split(".")[0],
            c.get("classname", "").split(".", 1)[1],
            c.get("file"),
            int(c.get("line", "0")),
        )
        for c in failures
    }
    assert got == failing
    assert int(root.get("failures", "0")) == len(failures)
    # every (rule, object) that applied is a case: more cases than findings
    assert len(cases) > len(report.findings)


def _junit_cases(out: Path) -> tuple[ET.Element, list[ET.Element]]:
    root = ET.parse(out).getroot()
    return root, root.findall(".//testcase")


def test_junit_warn_findings_pass_unless_fail_on_makes_them_fail(tmp_path: Path) -> None:
    """A warn finding is a passing case with its message in system-out and a
    severity property (JUnit's usual treatment of a passing test's output);
    --fail-on warn makes it a failure, and the exit code follows the verdict."""
    out = tmp_path / "report.xml"
    code, _ = _run("--format", "junit", "--output", str(out))
    root, cases = _junit_cases(out)
    warned = [
        c
        for c in cases
        if c.find("failure") is None and "warn: " in (c.findtext("system-out") or "")
    ]
    assert warned, "the examples have warn findings"
    for c in warned:
        props = {p.get("name"): p.get("value") for p in c.iter("property")}
        assert props["severity"] == "warn"
    assert all(f.get("type") == "deny" for f in root.iter("failure"))
    assert (code == 1) == (int(root.get("failures", "0")) > 0)

    code_warn, _ = _run("--format", "junit", "--output", str(out), "--fail-on", "warn")
    root_warn, _ = _junit_cases(out)
    assert code_warn == 1
    assert int(root_warn.get("failures", "0")) == int(root.get("failures", "0")) + len(warned)
    assert {f.get("type") for f in root_warn.iter("failure")} == {"deny", "warn"}


def test_junit_verdict_matches_the_exit_code(tmp_path: Path) -> None:
    """Only warn findings: exit 0 and no failure; an expired waiver: exit 1 and
    a failing case in a waivers suite."""
    (tmp_path / "d.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: team}\n"
        "spec: {replicas: 1}\n"
    )
    pack = tmp_path / "p.py"
    pack.write_text(
        "from policykit.dsl import PackBuilder, select\n"
        "p = PackBuilder('p', '1.0.0')\n"
        "@p.rule('P-001', title='two replicas', severity='warn',\n"
        "        select=select(kinds=['Deployment']), message='one replica')\n"
        "def one(o):\n"
        "    return o.spec.replicas < 2\n"
    )
    out = tmp_path / "r.xml"
    args = ["check", str(tmp_path / "d.yaml"), "--pack", str(pack), "--format", "junit"]
    r = CliRunner().invoke(cli, [*args, "-o", str(out)])
    root, cases = _junit_cases(out)
    assert r.exit_code == 0 and root.get("failures") == "0" and root.get("errors") == "0"
    assert cases[0].findtext("system-out") == "warn: one replica"

    waivers = tmp_path / "w.yaml"
    waivers.write_text(
        "waivers:\n- rule: P-001\n  match: {name: d}\n"
        "  reason: migrating\n  owner: team@example.com\n  expires: 2020-01-01\n"
    )
    r = CliRunner().invoke(cli, [*args, "-o", str(out), "--waivers", str(waivers)])
    root, _ = _junit_cases(out)
    assert r.exit_code == 1, r.output
    assert root.get("failures") == "1"
    suite = root.find("testsuite[@name='waivers']")
    assert suite is not None and suite.find("testcase/failure") is not None


def test_github_annotations_escape_and_locate() -> None:
    ref = ObjectRef("v1", "Pod", "ns", "a")
    f = Finding("X-001", "p", "warn", "line1\nline2 100%", ref, "a,b:c.yaml", 0, 4)
    text = github([f], [InputError("oops", loc=SourceLoc("x.yaml", 2))])
    lines = text.splitlines()
    assert lines[0] == (
        "::warning file=a%2Cb%3Ac.yaml,line=4,title=X-001 (warn)::Pod/ns/a: line1%0Aline2 100%25"
    )
    assert lines[1].startswith("::error file=x.yaml,line=2,title=PK001::")
    code, out = _run("--format", "github")
    assert code == 1 and out.count("::error ") + out.count("::warning ") >= 5


@pytest.mark.parametrize("fmt", ["json", "sarif", "table"])
def test_output_file_is_written_atomically(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "r.out"
    code, stdout = _run("--format", fmt, "--output", str(out))
    assert code == 1 and stdout == ""
    assert out.read_text().strip()
    assert [p.name for p in tmp_path.iterdir()] == ["r.out"]  # no temporary left behind
    code, _ = _run("--format", fmt, "--output", str(out / "under-a-file"))
    assert code == 2  # cannot be written: one clear line, exit 2


LIST_DOC = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "good",
                "namespace": "dev",
                "labels": {"app.kubernetes.io/name": "g"},
            },
            "spec": {
                "template": {"spec": {"containers": [{"name": "a", "image": "nginx@sha256:00"}]}}
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "bad", "namespace": "dev"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "b",
                                "image": "nginx:latest",
                                "securityContext": {"privileged": True},
                            }
                        ]
                    }
                }
            },
        },
    ],
}


def test_verify_formats_and_list_items(tmp_path: Path) -> None:
    """Items of one `kind: List` share file and document index: verify compares
    them object by object (each target agrees), and the reports name each."""
    f = tmp_path / "list.json"
    f.write_text(json.dumps(LIST_DOC))
    runner = CliRunner()
    r = runner.invoke(
        cli, ["verify", str(f), "--pack", "policykit.packs.starter", "--format", "json"]
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["mismatches"] == [] and doc["compared"]["gatekeeper"] == 2
    out = tmp_path / "verify.xml"
    r = runner.invoke(
        cli,
        [
            "verify",
            str(f),
            "--pack",
            "policykit.packs.starter",
            "--format",
            "junit",
            "--output",
            str(out),
        ],
    )
    assert r.exit_code == 0 and r.stdout == ""
    root = ET.parse(out).getroot()
    names = [c.get("name", "") for c in root.findall(".//testsuite[@name='vap']/testcase")]
    assert len(names) == 2 and names[0].startswith("Deployment/dev/good")
    assert root.get("failures") == "0"
    r = runner.invoke(
        cli, ["verify", str(f), "--pack", "policykit.packs.starter", "--format", "github"]
    )
    assert r.exit_code == 0 and r.stdout == ""


def test_verify_reports_disagreements(tmp_path: Path) -> None:
    from policykit.reports import verify_github, verify_junit
    from policykit.verify import Mismatch, VerifyReport

    report = VerifyReport(objects=1)
    report.compared["vap"] = 1
    report.checked.append(("vap", "a.yaml", 0, "Pod/ns/x"))
    report.mismatches.append(Mismatch("vap", "a.yaml", 0, "K8S-001", "m1", None, "Pod/ns/x"))
    root = ET.fromstring(verify_junit(report).split("\n", 1)[1])
    (case,) = root.findall(".//testcase")
    assert case.find("failure") is not None and "K8S-001" in (case.find("failure").text or "")
    assert verify_github(report).startswith(
        "::error file=a.yaml,title=policykit verify%3A vap disagrees::"
    )
