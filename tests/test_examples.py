"""`policykit check examples` from the repository root reports exactly the
explained findings of examples/expected-findings.policykit.json, and exits 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def test_check_examples_matches_the_expected_findings() -> None:
    expected = json.loads((ROOT / "examples/expected-findings.policykit.json").read_text())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "policykit", "check", "examples", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == expected["exit_code"], proc.stderr
    got = [
        (
            f["file"],
            f["rule"],
            f["object"]["kind"],
            f["object"]["name"],
            f.get("item"),
            f["message"],
        )
        for f in json.loads(proc.stdout)["findings"]
    ]
    want = [
        (f["file"], f["rule"], f["kind"], f["name"], f["item"], f["message"])
        for f in expected["findings"]
    ]
    assert got == want
    assert all(f["why"] for f in expected["findings"])


def test_every_example_file_loads_cleanly() -> None:
    from policykit.loader import load_paths

    result = load_paths([str(ROOT / "examples")])
    assert not result.errors
    assert not result.skipped
    assert len(result.documents) >= 13
