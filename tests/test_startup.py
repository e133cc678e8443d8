"""Start-up stays light (issue 21, item 4): importing the command line must not
pull in the heavy modules a command imports when it needs them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "jsonschema",
    "jwt",
    "cryptography",
    "rich",
    "regopy",
    "opa_bindings",
    "oras",
    "cel_expr_python",
    "policykit.engines",
    "policykit.targets",
)
NEVER_AT_START = ("regopy", "opa_bindings", "oras")
"""Engines and registries: imported by the command that runs them, never by
``import policykit.cli.main`` (tests of that below)."""


def _imported_by(module: str) -> list[str]:
    code = (
        f"import json, sys; import {module}; "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return list(json.loads(out))


def test_the_cli_package_imports_nothing_heavy() -> None:
    assert _imported_by("policykit.cli") == []


def test_no_engine_or_registry_at_start_up() -> None:
    assert not set(_imported_by("policykit.cli.main")) & set(NEVER_AT_START)


def test_no_heavy_module_at_start_up() -> None:
    assert _imported_by("policykit.cli.main") == []


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["check", "--help"]])
def test_the_command_starts_without_a_heavy_module(args: list[str]) -> None:
    """What ``policykit --version`` (and ``--help``) has imported when it exits."""
    code = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: sys.__stderr__.write('\\nLOADED ' + json.dumps("
        f"[m for m in {list(HEAVY)!r} if m in sys.modules])))\n"
        "from policykit.cli.main import main\n"
        f"sys.argv = ['policykit', *{args!r}]\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr.rpartition("LOADED ")[2] == "[]"


def test_the_signing_algorithms_are_the_signers() -> None:
    """``build --alg`` is declared without importing jwt: the two lists stay one."""
    from policykit.cli.build import ALGORITHMS
    from policykit.targets.rego import signing

    assert ALGORITHMS == signing.ALGORITHMS
