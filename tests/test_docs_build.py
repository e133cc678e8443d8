"""The documentation site builds with no warnings (issue 20): ``mkdocs build
--strict`` over ``mkdocs.yml``, the API reference rendered from the docstrings
by mkdocstrings, so a broken link, anchor or cross-reference fails CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True,
        text=True,
        cwd=config.parent,
        timeout=300,
    )


@pytest.mark.slow
def test_the_docs_build_with_no_warnings(tmp_path: Path) -> None:
    site = tmp_path / "site"
    run = _build(ROOT / "mkdocs.yml", site)
    assert run.returncode == 0, run.stderr
    assert "WARNING" not in run.stderr, run.stderr
    reference = (site / "reference" / "index.html").read_text()
    # the reference is rendered from the docstrings, signatures included
    for text in ("check_many", "decide_many", "needs_approval", "ObjectError", "doc_index"):
        assert text in reference, text
    python = (site / "python" / "index.html").read_text()
    assert "process_location" in python and "on_tools_call" in python


def test_a_warning_fails_the_build(tmp_path: Path) -> None:
    """--strict makes a warning (here a link to a missing page) an error."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# x\n\n[missing](nowhere.md)\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: x\n")
    run = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert run.returncode != 0
    assert "nowhere.md" in run.stderr
