"""The Rego helper library's own unit tests (test_ rules), run through regopy and real OPA."""

from __future__ import annotations

import re

import pytest
import regopy

from policykit.engines.rego import load_opa
from policykit.resources import rego_library
from policykit.targets.rego.compiler import regopy_modules
from tests.conftest import ROOT

LIB = rego_library()
TEST_FILES = sorted((ROOT / "rego").rglob("*_test.rego"))
CASES = [
    (f.relative_to(ROOT).as_posix(), re.search(r"^package (\S+)", f.read_text(), re.M).group(1), t)  # type: ignore[union-attr]
    for f in TEST_FILES
    for t in re.findall(r"^(test_\w+) if", f.read_text(), re.M)
]


def test_library_has_tests_for_every_module() -> None:
    modules = {p.rsplit("/", 1)[-1].removesuffix(".rego") for p in LIB}
    tested = {f.name.removesuffix("_test.rego") for f in TEST_FILES}
    assert modules == tested
    assert len(CASES) >= 15


@pytest.fixture(scope="module")
def engines() -> tuple[object, object]:
    it = regopy.Interpreter()
    opa = load_opa().OpaEngine()
    for path, text in LIB.items():
        opa.add_policy(path, text)
    # regopy runs the library as policykit's regopy engine runs it: with its swaps
    for path, text in regopy_modules(LIB).items():
        it.add_module(path, text)
    for f in TEST_FILES:
        it.add_module(f.name, f.read_text())
        opa.add_policy(f.name, f.read_text())
    return it, opa


@pytest.mark.parametrize(("file", "package", "test"), CASES)
def test_rego_unit_test_passes_in_regopy_and_opa(
    engines: tuple[object, object], file: str, package: str, test: str
) -> None:
    it, opa = engines
    assert opa.eval_document(f"{package}.{test}") is True  # type: ignore[attr-defined]
    out = str(it.query(f"x := data.{package}.{test}"))  # type: ignore[attr-defined]
    assert '"x":true' in out, out


def test_no_function_name_has_two_arities_across_packages() -> None:
    """regopy aborts or segfaults when two packages define a private function
    of the same name with different arities (``_field/3`` next to ``_field/2``;
    docs/engines.md): the library, the main module and a compiled pack must not."""
    from policykit.packs import load_packs
    from policykit.targets.rego.compiler import RegoOptions, compile_packs

    modules = compile_packs(load_packs([]), RegoOptions())
    arities: dict[str, set[int]] = {}
    for text in modules.values():
        for name, args in re.findall(r"^(_[a-z][a-z0-9_]*)\(([^)]*)\)", text, re.M):
            arities.setdefault(name, set()).add(args.count(",") + 1)
    assert not {n: a for n, a in arities.items() if len(a) > 1}
