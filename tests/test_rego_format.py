"""The layout rules of ``opa fmt`` (OPA v1.20 format.go) that the Rego printer
follows, checked on random packs (opa fmt itself is not available offline)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings

from policykit.ir.rule import Pack
from policykit.targets.gatekeeper.compiler import compile_template_rego
from policykit.targets.rego.compiler import RegoOptions, compile_pack, library
from tests.conftest import examples
from tests.strategies import packs


def _check_layout(text: str) -> None:
    lines = text.split("\n")
    assert text.endswith("\n") and not text.endswith("\n\n")
    for i, line in enumerate(lines):
        assert line == line.rstrip(), f"trailing whitespace on line {i + 1}"
        indent = line[: len(line) - len(line.lstrip())]
        assert set(indent) <= {"\t"}, f"indentation must be tabs (line {i + 1})"
        if i and not line and not lines[i - 1]:
            raise AssertionError(f"two blank lines at {i + 1}")
        # a function argument is never wrapped in redundant parentheses, nor a number
        assert not re.search(r"\w\(\(", line), line
        assert not re.search(r"(?<![\w.\]])\(-[0-9][0-9.e+-]*\)", line), line
        # no statement starts with "(" or "-" (regopy reads it as a continuation)
        if indent:
            assert not line.lstrip("\t").startswith(("(", "-")), line
    imports = [ln for ln in lines if ln.startswith("import ")]
    assert imports == sorted(imports)
    # rules are separated by exactly one blank line: a line at column 0 that
    # starts a rule follows a blank line or a comment
    for i, line in enumerate(lines[1:], 1):
        if re.match(r"^[A-Za-z_][\w.]*(\(|\s+(:=|contains|if)\b)", line):
            assert lines[i - 1] == "" or lines[i - 1].startswith("#"), (i, line)


@pytest.mark.slow
@settings(max_examples=examples(400))
@given(pack=packs())
def test_generated_rego_follows_opa_fmt_layout(pack: Pack) -> None:
    _check_layout(compile_pack(pack, RegoOptions()))


@settings(max_examples=examples(100))
@given(pack=packs())
def test_the_gatekeeper_dialect_follows_opa_fmt_layout(pack: Pack) -> None:
    opts = RegoOptions(params_ref="input.parameters", package_name="pk", lib_root="lib.policykit")
    _check_layout(compile_template_rego(pack, opts))


def test_library_follows_opa_fmt_layout() -> None:
    for text in library(RegoOptions()).values():
        _check_layout(text)
