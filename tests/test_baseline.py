"""``check --baseline FILE [--update-baseline]``: record today's findings, then
fail only on new ones; lines may move; fixed entries are counted; a bad
baseline is one clear line and exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from policykit.cli.main import cli
from policykit.resources import load_schema
from tests.conftest import ROOT

NEW_VIOLATION = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: fresh, namespace: dev}
spec:
  template:
    spec:
      containers:
        - {name: app, image: "nginx:latest", securityContext: {privileged: true}}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    return tmp_path


def _check(repo: Path, *args: str) -> tuple[int, dict[str, object], str]:
    r = CliRunner().invoke(
        cli,
        [
            "check",
            str(repo / "examples"),
            "--format",
            "json",
            "--baseline",
            str(repo / "b.json"),
            *args,
        ],
    )
    try:
        doc = json.loads(r.stdout)
    except json.JSONDecodeError:
        doc = {}
    return r.exit_code, doc, r.stderr


def test_record_then_only_new_findings_fail(repo: Path) -> None:
    code, doc, _ = _check(repo, "--update-baseline")
    assert code == 0
    first = (repo / "b.json").read_bytes()
    Draft202012Validator(load_schema("baseline.schema.json")).validate(json.loads(first))
    total = len(doc["findings"])  # type: ignore[arg-type]
    assert total >= 10

    code, doc, _ = _check(repo)
    assert code == 0
    assert doc["summary"]["baselined"] == total and doc["summary"]["fixed"] == 0  # type: ignore[index]
    assert all(f["baselined"] for f in doc["findings"])  # type: ignore[union-attr, index]

    # lines move (a comment block above every object): still baselined
    for f in (repo / "examples").rglob("*.yaml"):
        f.write_text("# moved\n# down\n" + f.read_text())
    code, doc, _ = _check(repo)
    assert code == 0 and doc["summary"]["baselined"] == total  # type: ignore[index]

    # a new violation fails, and only it is new
    (repo / "examples/kubernetes/fresh.yaml").write_text(NEW_VIOLATION)
    code, doc, _ = _check(repo)
    assert code == 1
    new = [f for f in doc["findings"] if not f.get("baselined")]  # type: ignore[union-attr, attr-defined]
    assert new and {f["object"]["name"] for f in new} == {"fresh"}

    # a fixed one is counted; rewriting is deterministic
    (repo / "examples/kubernetes/fresh.yaml").unlink()
    (repo / "examples/kubernetes/batch.yaml").unlink()
    code, doc, _ = _check(repo)
    assert code == 0 and doc["summary"]["fixed"] >= 1  # type: ignore[index]
    _check(repo, "--update-baseline")
    again = (repo / "b.json").read_bytes()
    _check(repo, "--update-baseline")
    assert (repo / "b.json").read_bytes() == again != first


def test_sarif_marks_baseline_state(repo: Path) -> None:
    _check(repo, "--update-baseline")
    (repo / "examples/kubernetes/fresh.yaml").write_text(NEW_VIOLATION)
    r = CliRunner().invoke(
        cli,
        ["check", str(repo / "examples"), "--format", "sarif", "--baseline", str(repo / "b.json")],
    )
    states = {res["baselineState"] for res in json.loads(r.stdout)["runs"][0]["results"]}
    assert states == {"new", "unchanged"}


@pytest.mark.parametrize(
    "content,expect",
    [
        (None, "baseline file not found"),
        ("{not json", "malformed JSON"),
        ('{"version": 1, "findings": [{"fingerprint": "x"}]}', "not a policykit baseline"),
    ],
)
def test_bad_baseline_is_one_line_exit_2(repo: Path, content: str | None, expect: str) -> None:
    if content is not None:
        (repo / "b.json").write_text(content)
    code, _, err = _check(repo)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "PK007" in lines[0] and expect in lines[0], err


def test_update_needs_a_file() -> None:
    r = CliRunner().invoke(cli, ["check", str(ROOT / "examples"), "--update-baseline"])
    assert r.exit_code == 2
