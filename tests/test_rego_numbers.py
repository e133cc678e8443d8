"""Numbers a message renders, at magnitudes regopy's integers cannot hold.

Before: ``render`` scaled the whole value by 10^6, so from ~9.2e12 on regopy
rendered a negative number, and for 1e20 rego-cpp wrote ``... is out of range
for a int64_t`` on standard output, into the JSON report of ``check --engine
rego --format json`` (no longer JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_policykit

PACK = """\
from policykit.dsl import PackBuilder, select

nums = PackBuilder("nums", "0.1.0")


@nums.rule("NUM-001", title="Every number is shown", select=select(kinds=["Component"]),
           message="{metadata.name} n={spec.n}")
def shown(o):
    return o.spec.n.exists()
"""

VALUES = [9223372036854.5, -1099511627776.25, 99999999999999.9, 1e20, -3e19, 7]


@pytest.mark.parametrize("engine", ["native", "rego", "opa"])
def test_large_numbers_render_sanely_and_json_on_stdout_stays_json(
    tmp_path: Path, engine: str
) -> None:
    (tmp_path / "pack.py").write_text(PACK)
    items = [
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": f"c{i}"},
            "spec": {"n": v},
        }
        for i, v in enumerate(VALUES)
    ]
    (tmp_path / "c.json").write_text(
        json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    )
    args = ["check", "c.json", "--pack", "pack.py", "--engine", engine, "--format", "json"]
    proc = run_policykit(*args, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)  # nothing else on standard output
    shown = {f["message"].split(" n=")[0]: f["message"].split(" n=")[1] for f in report["findings"]}
    for i, v in enumerate(VALUES):
        text = shown[f"c{i}"]
        assert text and (text.startswith("-") == (v < 0)), (engine, v, text)
        # exact to the reference where a double holds six decimals; close beyond
        assert abs(float(text) - v) <= max(abs(v) * 1e-15, 1e-6), (engine, v, text)


@pytest.mark.parametrize(
    "v", [9223372036854.5, -1099511627776.25, 1234567.5, 0.9999995, -0.0000001, 12.0000005, 181.04]
)
def test_cel_renders_large_fractions_as_the_reference(v: float) -> None:
    """CEL's renderer scaled the whole value by 10^6 too: from ~9.2e12 int()
    overflowed, the messageExpression erred and the static message showed."""
    from policykit.engines.cel import program
    from policykit.targets.cel.render import render_number
    from policykit.values import format_number

    got = program(render_number("double(object.x)")).eval({"object": {"x": v}})
    assert got == format_number(v)
