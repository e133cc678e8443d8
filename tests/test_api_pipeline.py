"""The api does what the commands do (issue 18, item 1): a config in, a result
with its exit code out; the command line only parses, renders and exits."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from policykit import api, reports
from policykit.cli.main import cli
from tests.conftest import ROOT

STARTER = ("policykit.packs.starter",)
K8S = str(ROOT / "examples/kubernetes")


def _check(**kw: object) -> api.CheckReport:
    return api.check(api.CheckConfig(paths=(K8S,), packs=STARTER, **kw))  # type: ignore[arg-type]


def test_check_decides_the_exit_code_as_the_command_does() -> None:
    report = _check()
    assert report.counts() == {"deny": 3, "warn": 1, "info": 0}
    assert report.exit_code == 1
    assert _check(fail_on="warn").exit_code == 1
    r = CliRunner().invoke(cli, ["check", K8S, "--pack", STARTER[0], "--format", "json"])
    assert r.exit_code == report.exit_code
    assert json.loads(r.stdout) == report.to_json()


def test_baseline_and_waivers_are_applied_by_the_api(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    recorded = _check(baseline=baseline, update_baseline=True)
    assert recorded.exit_code == 0 and baseline.is_file()
    assert recorded.notes == [f"policykit: recorded 4 findings in {baseline}"]
    again = _check(baseline=baseline)
    assert again.fixed == 0 and all(f.baselined for f in again.findings)
    assert again.exit_code == 0  # every finding is known
    f = next(f for f in _check().findings if f.severity == "deny")
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        "waivers:\n"
        f"  - rule: {f.rule}\n    match: {{name: {f.object.name}}}\n"
        "    reason: accepted\n    owner: team-a\n    expires: 2000-01-01\n"
    )
    expired = _check(waivers=waivers)
    assert expired.exit_code == 1 and len(expired.expired_waivers) == 1


def test_a_usage_error_is_the_apis_and_the_command_shows_it() -> None:
    with pytest.raises(api.UsageError, match="--update-baseline needs --baseline FILE"):
        _check(update_baseline=True)
    r = CliRunner().invoke(cli, ["check", K8S, "--update-baseline"])
    assert r.exit_code == 2 and "--update-baseline needs --baseline FILE" in r.stderr


@pytest.mark.parametrize("fmt", ["json", "sarif", "junit", "github", "text"])
def test_render_is_what_the_command_prints(fmt: str) -> None:
    report = _check(record_checked=fmt == "junit")
    r = CliRunner().invoke(cli, ["check", K8S, "--pack", STARTER[0], "--format", fmt])
    assert r.stdout == reports.render(report, fmt)


def test_build_returns_what_the_command_writes(tmp_path: Path) -> None:
    built = api.build(api.BuildConfig(target="kyverno", packs=STARTER, out=tmp_path / "a"))
    files, notes = built.artifacts()
    assert "kustomization.yaml" in files and notes[0].startswith("wrote ")
    r = CliRunner().invoke(
        cli, ["build", "--target", "kyverno", "--pack", STARTER[0], "--out", str(tmp_path / "b")]
    )
    assert r.exit_code == 0
    written = {
        p.relative_to(tmp_path / "b").as_posix(): p.read_bytes()
        for p in (tmp_path / "b").rglob("*")
        if p.is_file()
    }
    assert written == files
    assert built.write() == notes and (tmp_path / "a" / "kustomization.yaml").is_file()


CLI_FREE_OF = {
    "policykit.baseline",
    "policykit.waivers",
    "policykit.existing",
    "policykit.existing.policies",
    "policykit.engines.native",
    "policykit.parallel",
}


def test_the_cli_holds_no_baseline_waiver_third_party_or_parameter_logic() -> None:
    """The command modules import none of what the api applies."""
    found = []
    for path in sorted((ROOT / "policykit/cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
                found += [f"{path.name}: {n}" for n in names & CLI_FREE_OF]
    assert found == []


def test_the_api_docstring_examples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import doctest

    monkeypatch.chdir(ROOT)
    result = doctest.testmod(api, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 4
