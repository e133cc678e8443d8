"""The "use from Python" page (docs/python.md) and the README's library section
run as written: every ``python`` block, in order, from the root of a clone
(issue 20)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from tests.conftest import ROOT

BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks(text: str) -> list[str]:
    return BLOCK.findall(text)


def _section(markdown: str, heading: str) -> str:
    start = markdown.index(f"\n{heading}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end != -1 else len(markdown)]


def _run(blocks: list[str], name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """The blocks run in order in one module (as a reader pastes them), so
    dataclasses and type hints in them resolve."""
    module = types.ModuleType(f"_example_{abs(hash(name))}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.chdir(ROOT)
    for i, code in enumerate(blocks):
        exec(compile(code, f"{name}, python block {i + 1}", "exec"), module.__dict__)
    return module.__dict__


def test_python_page_examples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    page = (ROOT / "docs/python.md").read_text()
    blocks = _blocks(page)
    assert len(blocks) >= 8
    for needed in ("on_tools_call", "process_location", "check_many", "decide_many"):
        assert any(needed in b for b in blocks), needed
    ns = _run(blocks, "docs/python.md", monkeypatch)
    assert ns["rejected"] and ns["calls"]


def test_readme_library_section_runs_and_points_to_the_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readme = (ROOT / "README.md").read_text()
    section = _section(readme, "## Use from Python")
    assert "docs/python.md" in section
    blocks = _blocks(section)
    assert blocks, "the README's library section has examples"
    _run(blocks, "README.md", monkeypatch)


def test_every_python_block_is_found() -> None:
    """The fence pattern catches every block (none indented or spelled otherwise)."""
    for path in (ROOT / "docs/python.md", ROOT / "README.md"):
        text = path.read_text()
        if path.name == "README.md":
            text = _section(text, "## Use from Python")
        assert text.count("```python") == len(_blocks(text)), Path(path).name
