"""Start-up stays light (issue 21, item 4): importing the command line must not
pull in the heavy modules a command imports when it needs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "jsonschema",
    "jsonschema_rs",
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


def test_the_package_itself_imports_no_typing() -> None:
    """``import policykit`` runs before ``policykit/__main__.py`` can catch a
    Ctrl-C, and a library user pays it too: it stays a few modules, not typing
    and re (23 of its 25 ms when it imported them)."""
    code = (
        "import sys; before = set(sys.modules); import policykit; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "policykit" in out
    assert not {"typing", "re"} & set(out), out


def test_the_cli_package_imports_nothing_heavy() -> None:
    assert _imported_by("policykit.cli") == []


def test_no_engine_or_registry_at_start_up() -> None:
    assert not set(_imported_by("policykit.cli.main")) & set(NEVER_AT_START)


def test_no_heavy_module_at_start_up() -> None:
    assert _imported_by("policykit.cli.main") == []


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["check", "--help"]])
def test_the_command_starts_without_a_heavy_module(args: list[str]) -> None:
    """What ``policykit --version`` (and ``--help``) has imported when it exits."""
    assert _loaded_after(args, HEAVY) == []


def _loaded_after(args: list[str], watched: tuple[str, ...]) -> list[str]:
    """Which of ``watched`` ``policykit ARGS`` (exit 0) has imported when it exits."""
    code = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: sys.__stderr__.write('\\nLOADED ' + json.dumps("
        f"[m for m in {list(watched)!r} if m in sys.modules])))\n"
        "from policykit.cli.main import main\n"
        f"sys.argv = ['policykit', *{args!r}]\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return list(json.loads(r.stderr.rpartition("LOADED ")[2]))


CHECK_PATH_NEVER = tuple(
    m for m in HEAVY if m not in ("cel_expr_python", "policykit.engines", "policykit.targets")
)
"""``check`` of one file on the default engine with a non-table format: the
pack's parameter schemas and values are plain, so they are checked without
jsonschema (policykit/ir/check.py); no Rego engine, registry or signer."""


def _check_one_file(tmp_path: Path, args: list[str], never: tuple[str, ...]) -> tuple[str, str]:
    """``policykit check ARGS one.yaml`` in a fresh interpreter (cwd ``tmp_path``):
    its standard output and which of ``never`` were loaded when it exited."""
    (tmp_path / "one.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: prod}\n"
        "spec:\n  template:\n    spec:\n      containers: [{name: web, image: nginx:1.25}]\n"
    )
    code = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: sys.__stderr__.write('\\nLOADED ' + json.dumps("
        f"[m for m in {list(never)!r} if m in sys.modules])))\n"
        "from policykit.cli.main import main\n"
        f"sys.argv = ['policykit', 'check', *{args!r}, 'one.yaml']\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 1, r.stderr  # the manifest has findings: the pack ran
    return r.stdout, r.stderr.rpartition("LOADED ")[2]


def test_checking_one_file_imports_nothing_heavy(tmp_path: Path) -> None:
    out, loaded = _check_one_file(tmp_path, ["--format", "json"], CHECK_PATH_NEVER)
    assert json.loads(out)["findings"]
    assert loaded == "[]"


CHECK_ONE_FILE_NEVER = (
    *CHECK_PATH_NEVER,
    "policykit.api.building",
    "policykit.api.testing",
    "policykit.api.verifying",
    "policykit.library",
    "policykit.baseline",
    "policykit.k8s.crds",
    "policykit.parallel",
    "multiprocessing",
    "policykit.reports",  # the text lines only (policykit/reports_text.py)
    "policykit.report_markup",
    "tomllib",
    "hashlib",
    "xml.etree.ElementTree",
)
"""``policykit check one-file.yaml`` as a pre-commit hook runs it, output piped
(plain lines): no rich, no build/test/verify, no baseline without --baseline, no
CRD tables without CRDs, no TOML parser for a pyproject.toml that is not ours,
no process pool for one file, no report format but the lines."""


def test_checking_one_file_piped_loads_only_the_check_path(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "someone-else"\n')
    out, loaded = _check_one_file(tmp_path, [], CHECK_ONE_FILE_NEVER)
    assert out.startswith("one.yaml:")  # the plain lines: the pack ran
    assert loaded == "[]"


def test_the_signing_algorithms_are_the_signers() -> None:
    """``build --alg`` is declared without importing jwt: the two lists stay one."""
    from policykit.cli.build import ALGORITHMS
    from policykit.targets.rego import signing

    assert ALGORITHMS == signing.ALGORITHMS


def test_a_configuration_file_is_read_without_jsonschema(tmp_path: Path) -> None:
    """The pre-commit case: a repository with policykit.yaml. A valid
    configuration is validated on the light path (policykit/ir/check.py
    surely_valid); jsonschema loads only to word a refusal."""
    (tmp_path / "policykit.yaml").write_text(
        "packs: [policykit.packs.starter]\nexclude: [vendor]\nfail_on: warn\n"
        "params: {starter: {}}\n"
    )
    out, loaded = _check_one_file(tmp_path, [], CHECK_ONE_FILE_NEVER)
    assert out.startswith("one.yaml:")
    assert loaded == "[]"
    (tmp_path / "policykit.yaml").write_text("packs: [policykit.packs.starter]\nfail_on: never\n")
    r = subprocess.run(
        [sys.executable, "-m", "policykit", "check", "one.yaml"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 2 and "fail_on: 'never' is not one of" in r.stderr, r.stderr


def test_the_install_puts_no_import_hook_in_front_of_every_start() -> None:
    """``pip install -e .`` (the README's install) makes the repository a plain
    path entry, not setuptools' editable finder: that hook is imported by every
    Python start in the environment (``python -c pass`` too) and pulls in
    pathlib, importlib.util and fnmatch, ~25-40 ms before policykit runs
    (pyproject.toml: ``package-dir``). A wheel install has no hook either."""
    code = (
        "import json, sys\n"
        "owner = lambda f: getattr(f, '__module__', None) or type(f).__module__\n"
        "print(json.dumps({'hooks': [owner(f) for f in sys.meta_path"
        " if 'editable' in owner(f).lower()],"
        " 'modules': sorted(m for m in sys.modules if 'editable' in m.lower()),"
        " 'pathlib': 'pathlib' in sys.modules}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    got = json.loads(out)
    assert got["hooks"] == [] and got["modules"] == []
    assert got["pathlib"] is False  # nothing at interpreter start imports it
    import policykit

    assert Path(policykit.__file__).parent.name == "policykit"


COMMAND_MODULES = (
    "policykit.cli.build",
    "policykit.cli.commands",
    "policykit.cli.init",
    "policykit.cli.options",
    "policykit.cli.render",
    "policykit.cli.scaffold",
    "policykit.cli.thirdparty",
)


def _modules_after(args: list[str]) -> list[str]:
    return _loaded_after(args, COMMAND_MODULES)


def test_a_command_loads_its_own_module_only() -> None:
    """``--version`` builds no command; ``check`` (its help here) registers its
    own module's commands, not the others' (the CLI's lazy group)."""
    assert _modules_after(["--version"]) == []
    loaded = _modules_after(["check", "--help"])
    assert "policykit.cli.commands" in loaded
    assert not {"policykit.cli.build", "policykit.cli.scaffold", "policykit.cli.thirdparty",
                "policykit.cli.init"} & set(loaded)  # fmt: skip
    assert len(_modules_after(["--help"])) == len(COMMAND_MODULES)  # every command listed


def test_the_command_table_is_what_the_modules_register() -> None:
    """``policykit.cli.main.COMMANDS`` names each command's module: a command
    added to a module and not to the table would never be found."""
    import importlib

    import click

    from policykit.cli.main import COMMANDS

    found: dict[str, str] = {}
    for module in sorted(set(COMMANDS.values())):
        group = click.Group()
        importlib.import_module(module).register(group)
        found.update(dict.fromkeys(group.commands, module))
    assert found == COMMANDS


def test_a_pyproject_configuration_costs_no_resource_machinery(tmp_path: Path) -> None:
    """``[tool.policykit]`` in pyproject.toml: the schema that validates it is
    read from the package's directory, not through importlib.resources (which
    imports tempfile, shutil, zipfile, bz2 and lzma)."""
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.policykit]\npacks = ["policykit.packs.starter"]\n'
    )
    never = ("importlib.resources", "tempfile", "zipfile", "shutil")
    out, loaded = _check_one_file(tmp_path, [], never)
    assert out.startswith("one.yaml:")
    assert loaded == "[]"


def test_a_shipped_file_is_read_the_same_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """A package that is not a directory on disk (zipped) reads its files
    through importlib.resources: the same text."""
    from policykit import resources

    direct = resources.read_text("schemas", "config.schema.json")
    monkeypatch.setattr(resources, "__file__", "/nonexistent.zip/policykit/resources.py")
    assert resources.read_text("schemas", "config.schema.json") == direct
    assert json.loads(direct)["$schema"]


def test_an_unknown_command_is_told_the_near_one() -> None:
    """The lazy group suggests among every command, registered or not."""
    import click
    from click.testing import CliRunner

    from policykit.cli.main import cli

    r = CliRunner().invoke(cli, ["chek"])
    assert r.exit_code == 2 and "No such command 'chek'" in r.output
    if hasattr(click.exceptions, "NoSuchCommand"):  # click 8.4+ suggests
        assert "Did you mean 'check'?" in r.output
