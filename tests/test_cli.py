"""`policykit check` / `rules`: exit codes, both formats, configuration, errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner, Result

from policykit.cli.main import cli
from tests.conftest import ROOT

GOOD = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: good
  labels: {app.kubernetes.io/name: good}
spec:
  template:
    spec:
      containers:
      - name: app
        image: registry.example.com/app@sha256:abc
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {memory: 64Mi}
"""
BAD = """apiVersion: apps/v1
kind: Deployment
metadata: {name: bad, labels: {app.kubernetes.io/name: bad}}
spec:
  template:
    spec:
      containers:
      - {name: app, image: "nginx:latest", securityContext: {privileged: true}}
"""
WARN_ONLY = """apiVersion: apps/v1
kind: Deployment
metadata: {name: nolabels}
spec:
  template:
    spec:
      containers:
      - name: app
        image: registry.example.com/app:1.0
        resources: {requests: {cpu: 1, memory: 1Gi}, limits: {memory: 1Gi}}
"""


def schema(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "schemas" / name).read_text())


def run(args: list[str], cwd: Path, input: str | None = None) -> Result:
    runner = CliRunner()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(cli, args, input=input, catch_exceptions=False)
    finally:
        os.chdir(old)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text(BAD)
    (tmp_path / "warn.yaml").write_text(WARN_ONLY)
    return tmp_path


def test_clean_input_exits_0(repo: Path) -> None:
    r = run(["check", "good.yaml"], repo)
    assert r.exit_code == 0, r.output
    assert r.stdout == "1 object in 1 file: 0 deny, 0 warn, 0 info\n"


def test_findings_exit_1_and_a_line_each_when_piped(repo: Path) -> None:
    """Not a terminal (CliRunner): FILE:LINE: SEVERITY RULE OBJECT: MESSAGE, then the summary."""
    r = run(["check", "."], repo)
    assert r.exit_code == 1
    assert r.stdout.splitlines() == [
        "bad.yaml:1: deny K8S-001 Deployment/bad: container app of Deployment bad lacks "
        "cpu/memory requests or a memory limit",
        "bad.yaml:1: deny K8S-002 Deployment/bad: container app of Deployment bad uses "
        "unpinned image nginx:latest",
        "bad.yaml:1: deny K8S-003 Deployment/bad: container app of Deployment bad runs privileged",
        "warn.yaml:1: warn K8S-004 Deployment/nolabels: Deployment nolabels lacks one of the "
        "required labels [app.kubernetes.io/name]",
        "3 objects in 3 files: 3 deny, 1 warn, 0 info",
    ]
    assert r.stderr == ""


def test_fail_on_threshold(repo: Path) -> None:
    assert run(["check", "warn.yaml"], repo).exit_code == 0
    assert run(["check", "warn.yaml", "--fail-on", "warn"], repo).exit_code == 1
    assert run(["check", "good.yaml", "--fail-on", "info"], repo).exit_code == 0


def test_json_report_matches_schema_and_content(repo: Path) -> None:
    r = run(["check", ".", "--format", "json"], repo)
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    jsonschema.Draft202012Validator(schema("report.schema.json")).validate(doc)
    rules = sorted((f["rule"], f["object"]["name"], f.get("item")) for f in doc["findings"])
    assert rules == [
        ("K8S-001", "bad", 0),
        ("K8S-002", "bad", 0),
        ("K8S-003", "bad", 0),
        ("K8S-004", "nolabels", None),
    ]
    f = next(f for f in doc["findings"] if f["rule"] == "K8S-002")
    assert f["message"] == "container app of Deployment bad uses unpinned image nginx:latest"
    assert f["file"] == "bad.yaml" and f["line"] == 1
    assert f["object"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "namespace": "",
        "name": "bad",
    }
    assert doc["summary"]["findings"] == {"deny": 3, "warn": 1, "info": 0}


def test_malformed_file_exits_2_after_checking_the_others(repo: Path) -> None:
    (repo / "broken.yaml").write_text("apiVersion: v1\nkind: [oops\n")
    r = run(["check", ".", "--format", "json"], repo)
    assert r.exit_code == 2
    doc = json.loads(r.stdout)
    assert {f["object"]["name"] for f in doc["findings"]} == {"bad", "nolabels"}
    assert doc["errors"][0]["file"] == "broken.yaml" and doc["errors"][0]["line"] >= 2
    err_lines = [ln for ln in r.stderr.splitlines() if ln]
    assert len(err_lines) == 1 and err_lines[0].startswith("broken.yaml:3: PK001 ")
    assert "Traceback" not in r.output


def test_stdin(repo: Path) -> None:
    r = run(["check", "-", "--format", "json"], repo, input=BAD)
    assert r.exit_code == 1
    assert {f["file"] for f in json.loads(r.stdout)["findings"]} == {"<stdin>"}


def test_usage_errors_exit_2(repo: Path) -> None:
    assert run(["check", "x.yaml", "--fail-on", "fatal"], repo).exit_code == 2
    assert run(["check", "--format", "xml", "x.yaml"], repo).exit_code == 2
    r = run(["check"], repo)
    assert r.exit_code == 2 and "no PATHS" in r.output
    r = run(["check", "good.yaml", "--param", "nonsense"], repo)
    assert r.exit_code == 2 and "PACK.NAME=VALUE" in r.output


def test_bad_packs_and_params_are_one_line_exit_2(repo: Path) -> None:
    r = run(["check", "good.yaml", "--pack", "no_such_module_xyz"], repo)
    assert r.exit_code == 2 and "no pack module or file named" in r.stderr
    (repo / "broken_pack.py").write_text("def oops(:\n")
    r = run(["check", "good.yaml", "--pack", "broken_pack.py"], repo)
    assert r.exit_code == 2 and "syntax error" in r.stderr and "Traceback" not in r.output
    (repo / "badrule.py").write_text(
        "from policykit.dsl import PackBuilder\n"
        "p = PackBuilder('mine', '1.0.0')\n"
        "@p.rule('MY-001', title='t', message='m')\n"
        "def r(o):\n"
        "    return o.metadata.name.matches('(?=x)')\n"
    )
    r = run(["check", "good.yaml", "--pack", "badrule.py"], repo)
    assert r.exit_code == 2
    assert "badrule.py:5: PK101 rule MY-001" in r.stderr
    r = run(["check", "good.yaml", "--param", "starter.lifecycles=notalist"], repo)
    assert r.exit_code == 2 and "PK102" in r.stderr and "lifecycles" in r.stderr
    r = run(["check", "good.yaml", "--param", "starter.nope=1"], repo)
    assert r.exit_code == 2 and "unknown parameter" in r.stderr


def test_param_override_changes_verdicts(repo: Path) -> None:
    r = run(
        ["check", "warn.yaml", "--fail-on", "warn", "--param", "starter.required_labels=[]"], repo
    )
    assert r.exit_code == 0, r.output


def test_configuration_from_policykit_yaml_and_pyproject(repo: Path) -> None:
    (repo / "team.py").write_text(
        "from policykit.dsl import PackBuilder, select\n"
        "team = PackBuilder('team', '0.1.0')\n"
        "@team.rule('TEAM-001', title='No bad names', message='{metadata.name} is bad',"
        " severity='info')\n"
        "def r(o):\n"
        "    return o.metadata.name == 'bad'\n"
    )
    (repo / "policykit.yaml").write_text("packs: [team.py]\npaths: [bad.yaml]\nfail_on: info\n")
    r = run(["check", "--format", "json"], repo)
    assert r.exit_code == 1
    assert [f["rule"] for f in json.loads(r.stdout)["findings"]] == ["TEAM-001"]
    (repo / "policykit.yaml").unlink()
    (repo / "pyproject.toml").write_text('[tool.policykit]\npacks = ["team.py"]\nparams = {}\n')
    r = run(["check", "good.yaml", "bad.yaml", "--format", "json"], repo)
    assert r.exit_code == 0  # TEAM-001 is info; default fail_on is deny
    assert len(json.loads(r.stdout)["findings"]) == 1
    (repo / "pyproject.toml").write_text('[tool.policykit]\nfail_on = "fatal"\n')
    r = run(["check", "good.yaml"], repo)
    assert r.exit_code == 2 and "PK002" in r.stderr and "fail_on" in r.stderr


def test_rules_command(repo: Path) -> None:
    r = run(["rules", "--format", "json"], repo)
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    jsonschema.Draft202012Validator(schema("rules.schema.json")).validate(doc)
    ids = [x["id"] for x in doc["rules"]]
    assert "CAT-001" in ids and "K8S-001" in ids
    assert all(x["pack"] == "starter" for x in doc["rules"])
    r = run(["rules"], repo)
    assert r.exit_code == 0 and "CAT-001" in r.output


def test_ir_command_round_trips_as_a_pack(repo: Path) -> None:
    r = run(["ir"], repo)
    assert r.exit_code == 0
    (repo / "starter.ir.json").write_text(r.stdout)
    a = run(["check", ".", "--format", "json"], repo)
    b = run(["check", ".", "--format", "json", "--pack", "starter.ir.json"], repo)
    assert json.loads(a.stdout)["findings"] == json.loads(b.stdout)["findings"]


def test_brackets_in_messages_are_printed_literally(tmp_path: Path) -> None:
    """A message is user text, not rich markup: '[owner, costCenter]' is shown."""
    pack = tmp_path / "p.py"
    pack.write_text(
        "from policykit.dsl import PackBuilder, select\n"
        "p = PackBuilder('p', '0.1.0')\n"
        "@p.rule('P-001', title='t', select=select(kinds=['ConfigMap']),\n"
        "        message='[bold]not bold[/bold] {metadata.name}')\n"
        "def r(o):\n"
        "    return o.metadata.name.exists()\n"
    )
    obj = tmp_path / "cm.yaml"
    obj.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '[x]'}\n")
    result = CliRunner().invoke(
        cli, ["check", str(obj), "--pack", str(pack)], env={"COLUMNS": "200"}
    )
    assert result.stdout.splitlines()[0] == (
        f"{obj}:1: deny P-001 ConfigMap/[x]: [bold]not bold[/bold] [x]"
    )
