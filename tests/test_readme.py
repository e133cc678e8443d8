"""The README's promises: CI runs its test command, and its code runs."""

from __future__ import annotations

import doctest
import importlib
import re

import pytest

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def _commands() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert block, "README starts with a sh block of the two commands"
    return [ln for ln in block.group(1).splitlines() if ln and not ln.startswith("#")]


def test_two_commands_near_the_top_and_ci_runs_the_test_one() -> None:
    cmds = _commands()
    assert len(cmds) == 2
    assert "policykit check examples" in cmds[0]
    assert "pytest" in cmds[1]
    # CI runs every test: the ones marked slow too (a plain run leaves them out)
    assert cmds[1].endswith("python -m pytest -q --all"), cmds[1]
    ci = (ROOT / ".ci/run").read_text()
    # CI runs both, as written, in a clean clone with nothing beside it
    assert f"({cmds[0]})" in ci and cmds[1] in ci
    assert "git clone" in ci and "mktemp -d" in ci
    for cmd in cmds:  # a fresh machine (PEP 668) needs the virtual environment
        assert cmd.startswith("python3 -m venv .venv && . .venv/bin/activate && "), cmd
    assert README.index("```sh") < 600


def test_readme_python_example_defines_a_working_pack() -> None:
    block = re.search(r"```python\n(.*?)```", README, re.S)
    assert block
    code = "\n".join(
        line[2:] if line.startswith("  ") else line for line in block.group(1).splitlines()
    )
    ns: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), ns)
    from policykit.engines.native import NativeEngine
    from policykit.model import Document

    pack = ns["acme"].build()  # type: ignore[attr-defined]
    doc = Document(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "x"},
            "spec": {
                "replicas": 2,
                "template": {
                    "spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "4"}}}]}
                },
            },
        },
        "x.yaml",
        0,
        1,
    )
    findings = NativeEngine([pack]).evaluate(doc)
    assert [f.message for f in findings] == ["Deployment x requests CPU worth more than $150"]


@pytest.mark.parametrize(
    "module",
    ["policykit.dsl", "policykit.dsl.expr", "policykit.dsl.pack", "policykit.dsl.k8s"],
)
def test_docstring_examples_run(module: str) -> None:
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
