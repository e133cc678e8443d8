"""Patterns of the portable regex dialect that regopy reads differently.

Before: a named group ``(?P<app>...)`` matched nothing in regopy (silently: no
finding where every other engine had one), and ``\\xHH`` ended the run with
"regopy returned unreadable output". The Rego compiler now spells them as
regopy reads them (printer.regopy_spelling), for OPA and Gatekeeper alike; a
control character by ``\\xHH``, or such a pattern given as a parameter, is a
clear PK010 in regopy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from policykit.errors import RegexDialectError
from policykit.ir.regex import compile_portable
from policykit.targets.rego.printer import regopy_spelling
from tests.conftest import run_policykit

PACK = """\
from policykit.dsl import P, PackBuilder, param, select

rx = PackBuilder("rx", "0.1.0", params={{"pat": param({pat!r}, {{"type": "string"}}, "p")}})
C = select(kinds=["Component"])


@rx.rule("RX-001", title="named", select=C, message="{{metadata.name}} named")
def named(o):
    return o.metadata.name.matches(r"^(?P<app>[a-z]+)-v\\d+$")


@rx.rule("RX-002", title="hex", select=C, message="{{metadata.name}} hex")
def hexed(o):
    return o.metadata.name.matches(r"\\x41\\x2e[\\x61-\\x63]")


@rx.rule("RX-003", title="param", select=C, message="{{metadata.name}} param")
def by_param(o):
    return o.metadata.name.matches(P("pat"))
"""

NAMES = ["web-v2", "web-2", "xA.b", "A.d", "q-v10"]


def _check(tmp_path: Path, engine: str, pat: str) -> tuple[int, object, str]:
    (tmp_path / "pack.py").write_text(PACK.format(pat=pat))
    items = [
        {"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": n}}
        for n in NAMES
    ]
    (tmp_path / "c.json").write_text(
        json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    )
    args = ["check", "c.json", "--pack", "pack.py", "--engine", engine, "--format", "json"]
    proc = run_policykit(*args, cwd=tmp_path)
    report = json.loads(proc.stdout) if proc.stdout else None
    return proc.returncode, report, proc.stderr


def test_named_groups_and_hex_escapes_match_in_every_rego_engine(tmp_path: Path) -> None:
    got = {}
    for engine in ("native", "rego", "opa"):
        code, report, err = _check(tmp_path, engine, "^q-")
        assert code == 1, (engine, err)
        got[engine] = sorted((f["rule"], f["message"]) for f in report["findings"])  # type: ignore[index]
    assert got["rego"] == got["native"] == got["opa"]
    assert ("RX-001", "web-v2 named") in got["native"] and ("RX-002", "xA.b hex") in got["native"]


@pytest.mark.parametrize("pat", [r"^(?P<p>q)-", r"\x71-"])
def test_a_parameter_pattern_regopy_cannot_read_is_a_clear_error(tmp_path: Path, pat: str) -> None:
    code, _, err = _check(tmp_path, "rego", pat)
    assert code == 2 and "PK010 rule RX-003: regopy cannot run the parameter pat" in err, err
    assert "unreadable output" not in err
    code, report, err = _check(tmp_path, "opa", pat)
    assert code == 1 and ("RX-003", "q-v10 param") in {
        (f["rule"], f["message"])
        for f in report["findings"]  # type: ignore[index]
    }, err


PORTABLE = st.lists(
    st.sampled_from(
        [
            "a",
            "(?P<g>b)",
            r"\x41",
            r"\x2e",
            r"\x5d",
            "[",
            "]",
            "[^",
            "(?:",
            ")",
            r"\d",
            ".",
            "|",
            "*",
            r"\\",
            "{",
            "}",
            r"\x32",
            r"\x2c",
            "2",
        ]
    ),
    max_size=8,
).map("".join)


@settings(max_examples=300, deadline=None)
@example(pattern=r"^a{\x32}$", subject="a{2}")  # a literal brace, not a repeat
@example(pattern=r"^a{\x32}$", subject="aa")
@given(pattern=PORTABLE, subject=st.text(alphabet="abAB.]d1\\(x{},2", max_size=6))
def test_the_regopy_spelling_means_what_the_pattern_means(pattern: str, subject: str) -> None:
    """For any pattern of the dialect, the respelled one finds the same matches
    (Python's re on both, as the reference reads them)."""
    try:
        want = compile_portable(pattern)
    except RegexDialectError:
        return  # not in the dialect (unbalanced brackets, a class with nothing)
    spelled = regopy_spelling(pattern)
    assert "(?P<" not in spelled or "[" in pattern
    assert bool(want.search(subject)) == bool(compile_portable(spelled).search(subject))
