"""Waivers: a waived finding is reported, not failing; an expired waiver fails
naming its owner; a waiver matching nothing is stale; bad files are one line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from policykit.cli.main import cli
from policykit.resources import load_schema
from tests.conftest import ROOT

WAIVERS = """\
waivers:
  - rule: K8S-002
    match: {kind: Deployment, namespace: prod-*, file: "*/kubernetes/search.yaml"}
    reason: vendor image, pinned upstream in Q1
    owner: team-search@acme.example
    expires: 2027-03-31
  - rule: K8S-003
    match: {name: nothing-like-this}
    reason: no longer needed
    owner: nobody@acme.example
    expires: 2030-01-01
"""


def _check(tmp_path: Path, waivers: str, *args: str) -> tuple[int, dict[str, object], str]:
    f = tmp_path / "policykit.waivers.yaml"
    f.write_text(waivers)
    r = CliRunner().invoke(
        cli,
        ["check", str(ROOT / "examples"), "--format", "json", "--waivers", str(f), *args],
    )
    doc = json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}
    return r.exit_code, doc, r.stderr


def test_waived_findings_do_not_fail(tmp_path: Path) -> None:
    base = CliRunner().invoke(cli, ["check", str(ROOT / "examples"), "--format", "json"])
    before = json.loads(base.stdout)
    code, doc, err = _check(tmp_path, WAIVERS, "--today", "2026-11-23", "--fail-on", "deny")
    Draft202012Validator(load_schema("report.schema.json")).validate(doc)
    waived = [f for f in doc["findings"] if "waived" in f]  # type: ignore[union-attr, operator]
    assert [f["rule"] for f in waived] == ["K8S-002"]
    assert waived[0]["waived"]["owner"] == "team-search@acme.example"
    assert doc["summary"]["waived"] == 1  # type: ignore[index]
    assert doc["summary"]["findings"]["deny"] == before["summary"]["findings"]["deny"] - 1  # type: ignore[index]
    assert len(doc["findings"]) == len(before["findings"])  # type: ignore[arg-type]
    # the stale waiver is reported, with its file line
    assert doc["waivers"]["stale"] and ":7:" in doc["waivers"]["stale"][0]  # type: ignore[index]
    assert "stale:" in err and "nothing-like-this" in err
    assert code == 1  # other deny findings remain


def test_only_waived_findings_means_success(tmp_path: Path) -> None:
    packs = tmp_path / "p.py"
    packs.write_text(
        textwrap.dedent(
            """
            from policykit.dsl import PackBuilder, select
            pk = PackBuilder("only", "1.0.0")

            @pk.rule("ONLY-001", title="no privileged", select=select(kinds=["CronJob"]),
                     message="{metadata.name} runs something privileged")
            def priv(o):
                return o.spec.jobTemplate.spec.template.spec.containers.any(
                    lambda c: c.securityContext.privileged == True)  # noqa: E712
            """
        )
    )
    waiver = textwrap.dedent(
        """\
        waivers:
          - rule: ONLY-001
            match: {namespace: batch}
            reason: needs host access until the operator lands
            owner: batch@acme.example
            expires: 2026-12-01
        """
    )
    code, doc, _ = _check(tmp_path, waiver, "--pack", str(packs), "--today", "2026-12-01")
    assert code == 0 and doc["summary"]["waived"] == 1  # type: ignore[index]
    # the day after, it expires: the finding fails again and the owner is named
    code, doc, err = _check(tmp_path, waiver, "--pack", str(packs), "--today", "2026-12-02")
    assert code == 1 and doc["summary"]["waived"] == 0  # type: ignore[index]
    assert "expired on 2026-12-01" in err and "batch@acme.example" in err


def test_sarif_suppressions(tmp_path: Path) -> None:
    f = tmp_path / "w.yaml"
    f.write_text(WAIVERS)
    r = CliRunner().invoke(
        cli,
        ["check", str(ROOT / "examples"), "--format", "sarif", "--waivers", str(f),
         "--today", "2026-11-23"],
    )  # fmt: skip
    results = json.loads(r.stdout)["runs"][0]["results"]
    suppressed = [x for x in results if x.get("suppressions")]
    assert [x["ruleId"] for x in suppressed] == ["K8S-002"]
    assert suppressed[0]["suppressions"][0]["status"] == "accepted"


@pytest.mark.parametrize(
    "text,expect",
    [
        ("waivers: [", "malformed YAML"),
        ("waivers:\n  - rule: K8S-002\n    reason: r\n    owner: o\n", "expires"),
        (
            "waivers:\n  - rule: bad id\n    reason: r\n    owner: o\n    expires: 2027-01-01\n",
            "invalid waiver",
        ),
        (
            "waivers:\n  - rule: K8S-002\n    reason: r\n    owner: o\n    expires: soon\n",
            "must be a date",
        ),
        (
            "waivers:\n  - rule: K8S-002\n    match: {color: red}\n    reason: r\n"
            "    owner: o\n    expires: 2027-01-01\n",
            "invalid waiver",
        ),
    ],
)
def test_bad_waivers_are_one_line(tmp_path: Path, text: str, expect: str) -> None:
    code, _, err = _check(tmp_path, text)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "PK009" in lines[0] and expect in lines[0], err
    assert "policykit.waivers.yaml" in lines[0]
