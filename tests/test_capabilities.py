"""The capability table (policykit/targets/capabilities.json) is true of the
compilers, docs/targets.md is generated from it, and a build reports every rule
a target cannot express at once — or leaves them out with --allow-partial."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings

from policykit.cli.main import cli
from policykit.ir import nodes as ir
from policykit.ir.rule import Message, Pack, Rule, Selector
from policykit.targets import capabilities as cap
from policykit.targets.base import UnsupportedError
from tests.conftest import ROOT, examples
from tests.strategies import packs

ADMISSION = ("gatekeeper", "kyverno", "vap")


def test_table_covers_every_node_class_and_target() -> None:
    t = cap.table()
    node_names = {c.__name__ for c in ir.NODE_CLASSES}
    assert node_names <= set(t["features"])
    for feat, row in t["features"].items():
        assert set(row) - {"description", "note"} == set(t["targets"]), feat
        assert all(row[x] in ("yes", "partial", "no", "skip") for x in t["targets"]), feat
        for target in row.get("note", {}):
            assert target in t["targets"], (feat, target)
        for target in t["targets"]:
            if row[target] in ("partial", "skip"):
                assert target in row.get("note", {}), (
                    f"{feat}/{target} needs a note saying which uses"
                )
    assert set(cap.COMPILERS) == set(t["targets"])


def test_docs_matrix_is_generated_from_the_table() -> None:
    assert (ROOT / "docs/targets.md").read_text() == cap.render_markdown()


@settings(max_examples=examples(120))
@given(pack=packs())
def test_table_agrees_with_the_compilers(pack: Pack) -> None:
    """A rule made only of features a target marks "yes" compiles for it; a
    rule using a "no" feature is refused by the compiler itself."""
    params = pack.defaults()
    for rule in pack.rules:
        single = dataclasses.replace(pack, rules=(rule,))
        feats = cap.features_of(rule)
        for target in cap.targets():
            levels = {cap.level(f, target) for f in feats}
            if "skip" in levels:
                continue
            try:
                cap.COMPILERS[target](single, params)
                ok = True
            except UnsupportedError:
                ok = False
            if levels <= {"yes"}:
                assert ok, (target, rule)
            if "no" in levels:
                assert not ok, (target, rule)


ROOT_ = ir.OBJECT_ROOT
KEYS_VALUE = ir.Compare("==", ir.Keys(ir.Path(ROOT_, ("metadata", "labels"))), ir.Literal(("a",)))
ARITH = ir.Compare(
    ">", ir.Arith("*", ir.Path(ROOT_, ("spec", "replicas")), ir.Literal(2)), ir.Literal(9)
)


def _rule(rid: str, cond: ir.Pred) -> Rule:
    return Rule(rid, "t", "deny", cond, Message(("m",)), selector=Selector(kinds=("Deployment",)))


def test_partial_uses_are_refused_with_the_targets_that_can() -> None:
    pack = Pack("p", "1.0.0", (_rule("P-001", KEYS_VALUE), _rule("P-002", ARITH)))
    err = cap.why_not(pack, pack.rules[0], "kyverno", {})
    assert err is not None and err.code == "PK200"
    assert "rule P-001" in err.message and "keys()" in err.message
    assert "targets that can: rego, gatekeeper" in err.hint
    assert cap.why_not(pack, pack.rules[0], "rego", {}) is None
    err2 = cap.why_not(pack, pack.rules[1], "jsonschema", {})
    assert err2 is not None and err2.code == "PK201" and "Arith" in err2.message
    assert "rego, gatekeeper, kyverno, vap" in err2.hint
    plan = cap.plan([pack], {}, ["rego", "kyverno", "vap", "jsonschema"])
    assert [e.message.split(":")[0] for e in plan.errors] == ["rule P-001", "rule P-001"]
    assert [r.id for r in plan.packs["kyverno"][0].rules] == ["P-002"]
    assert [r.id for r in plan.packs["jsonschema"][0].rules] == ["P-001", "P-002"]  # advisory


PACK_SRC = """
from policykit.dsl import PackBuilder, select

pk = PackBuilder("odd", "1.0.0")


@pk.rule("ODD-001", title="label keys are exactly a", select=select(kinds=["Deployment"]),
         message="{metadata.name} labels")
def keys_exact(o):
    return o.metadata.labels.keys() == ["a"]


@pk.rule("ODD-002", title="also keys", select=select(kinds=["Deployment"]), message="x")
def keys_again(o):
    return o.metadata.annotations.keys() == []


@pk.rule("ODD-003", title="fine", select=select(kinds=["Deployment"]), message="x")
def fine(o):
    return o.spec.replicas > 3
"""


def test_build_reports_all_at_once_and_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "odd.py"
    src.write_text(textwrap.dedent(PACK_SRC))
    runner = CliRunner()
    out = tmp_path / "dist"
    r = runner.invoke(cli, ["build", "--target", "all", "--pack", str(src), "--out", str(out)])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if "PK200" in ln]
    # both rules, both CEL targets, every line with the author's file:line
    assert len(lines) == 4, r.output
    assert all(f"{src}:" in ln and "targets that can: rego, gatekeeper" in ln for ln in lines)
    assert {("ODD-001" in ln, "kyverno" in ln) for ln in lines} == {
        (True, True),
        (True, False),
        (False, True),
        (False, False),
    }
    assert not out.exists()

    r = runner.invoke(
        cli, ["build", "--target", "all", "--pack", str(src), "--out", str(out), "--allow-partial"]
    )
    assert r.exit_code == 0, r.output
    assert r.output.count("warning:") == 4
    kyverno = (out / "kyverno/odd.yaml").read_text()
    assert "ODD-003" in kyverno.upper() and "ODD-001" not in kyverno.upper()
    assert "odd-001" in (out / "gatekeeper/constraints/odd.yaml").read_text()


@pytest.mark.parametrize("target", ADMISSION)
def test_backstage_rules_are_skipped_not_errors(target: str) -> None:
    rule = Rule(
        "B-001",
        "t",
        "deny",
        ir.Exists(ir.Path(ROOT_, ("spec", "owner"))),
        Message(("m",)),
        selector=Selector(source="backstage"),
    )
    pack = Pack("b", "1.0.0", (rule,))
    assert "BackstageSource" in cap.features_of(rule)
    assert cap.why_not(pack, rule, target, {}) is None
