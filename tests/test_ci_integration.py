"""The documented CI integrations are real: the GitHub Actions job and the
pre-commit hooks parse, call real policykit commands, and those commands run."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner

from policykit.cli.main import cli
from tests.conftest import ROOT


def test_pre_commit_hooks_are_valid_and_run(tmp_path: Path) -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    ids = {h["id"]: h for h in hooks}
    assert set(ids) == {"policykit-check", "policykit-build", "policykit-scaffold-sync"}
    for h in hooks:
        assert {"id", "name", "entry", "language"} <= set(h)
        assert h["language"] == "python"
    check = ids["policykit-check"]
    assert check["pass_filenames"] is True and check["entry"] == "policykit check"
    # what pre-commit runs: the entry plus the changed files
    files = [
        str(ROOT / "examples/kubernetes/payments.yaml"),
        str(ROOT / "examples/catalog/org.yaml"),
    ]
    args = shlex.split(check["entry"])[1:] + files
    r = CliRunner().invoke(cli, args)
    assert r.exit_code in (0, 1), r.output
    build = ids["policykit-build"]
    run = subprocess.run(
        ["sh", "-c", build["entry"].replace("policykit ", f"{sys.executable} -m policykit ")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    sync = ids["policykit-scaffold-sync"]
    assert sync["pass_filenames"] is True
    r = CliRunner().invoke(
        cli, [*shlex.split(sync["entry"])[1:], "--check", str(ROOT / "examples/platform/templates")]
    )
    assert r.exit_code == 0, r.output  # the example templates are in sync


def test_github_actions_job_uploads_sarif_always() -> None:
    wf = yaml.safe_load((ROOT / "docs/ci/github-actions.yml").read_text())
    steps = wf["jobs"]["check"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    assert any("--format github" in r for r in runs)
    sarif = next(r for r in runs if "--format sarif" in r)
    assert "--output policykit.sarif" in sarif
    upload = next(
        s for s in steps if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif")
    )
    assert upload["if"] == "always()" and upload["with"]["sarif_file"] == "policykit.sarif"
    assert wf["permissions"]["security-events"] == "write"
    # every policykit command line of the job parses with the real CLI
    for line in runs:
        for part in line.split("||")[0].split("&&"):
            words = shlex.split(part)
            if words and words[0] == "policykit":
                r = CliRunner().invoke(cli, [*words[1:], "--help"])
                assert r.exit_code == 0, (line, r.output)
