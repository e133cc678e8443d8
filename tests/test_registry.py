"""The target registry (issue 18, item 3): targets are declared once, and a
build compiles each rule once per target."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from policykit.ir import nodes as ir
from policykit.ir.rule import Message, Pack, Rule, Selector
from policykit.targets import capabilities, registry
from policykit.targets.cel.compiler import CelCompiler
from policykit.targets.rego.compiler import RegoCompiler
from tests.conftest import ROOT

OBJ = ir.OBJECT_ROOT


def _rule(n: int) -> Rule:
    """A rule every target expresses: a field compared with a constant."""
    paths = [("spec", "replicas"), ("metadata", "name"), ("spec", "paused")]
    path = paths[n % len(paths)]
    value: Any = {0: 1, 1: "x", 2: True}[n % len(paths)]
    cond = ir.Compare("==", ir.Path(OBJ, path), ir.Literal(value))
    return Rule(
        f"R-{n:03d}",
        f"rule {n}",
        "deny",
        cond,
        Message((f"rule {n} holds",)),
        selector=Selector(kinds=("Deployment",)),
    )


SEVEN = Pack("seven", "1.0.0", tuple(_rule(n) for n in range(7)))


def test_the_registry_is_the_capability_tables_target_list() -> None:
    assert registry.names() == list(capabilities.table()["targets"])
    assert registry.build_choices() == [*registry.names(), "all"]
    assert registry.verify_choices()[:2] == ["rego", "opa"]
    assert set(registry.verify_choices()) - {"opa"} == set(registry.names())
    outputs = [t.output for t in registry.TARGETS.values()]
    assert len(set(outputs)) == len(outputs)  # `build --target all` puts each apart
    assert registry.admission() == ["gatekeeper", "kyverno", "vap"]


def test_the_docs_target_table_is_the_registrys() -> None:
    text = (ROOT / "docs/targets.md").read_text()
    assert "\n".join(registry.render_table()) in text


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Counter[str]]]:
    """Per target, how often each rule reached the registry's compile function
    (and its one-rule check); per compiler class, how often each rule was compiled."""
    seen: dict[str, Counter[str]] = {
        "refuse": Counter(),
        "Rego rules": Counter(),
        "CEL rules": Counter(),
    }

    def wrap_compile(name: str, fn: registry.Compile) -> registry.Compile:
        def run(packs: Any, params: Any, opts: registry.Options) -> Any:
            seen.setdefault(name, Counter()).update(r.id for p in packs for r in p.rules)
            return fn(packs, params, opts)

        return run

    def wrap_refuse(name: str, fn: registry.Refuse) -> registry.Refuse:
        def run(pack: Pack, params: Any) -> None:
            seen["refuse"].update(f"{name}/{r.id}" for r in pack.rules)
            fn(pack, params)

        return run

    for name, target in list(registry.TARGETS.items()):
        wrapped = dataclasses.replace(
            target,
            compile=wrap_compile(name, target.compile),
            refuse=wrap_refuse(name, target.refuse),
        )
        monkeypatch.setitem(registry.TARGETS, name, wrapped)

    def count_rule(key: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def run(self: Any, rule: Rule) -> Any:
            seen[key][rule.id] += 1
            return real(self, rule)

        return run

    monkeypatch.setattr(
        RegoCompiler, "compile_rule", count_rule("Rego rules", RegoCompiler.compile_rule)
    )
    monkeypatch.setattr(
        CelCompiler, "compile_rule", count_rule("CEL rules", CelCompiler.compile_rule)
    )
    yield seen


def test_build_all_compiles_each_rule_once_per_target(counted: dict[str, Counter[str]]) -> None:
    """22 Rego compiles for a 7-rule pack before the registry (the plan
    compiled every rule alone, then build compiled them all again): now the
    plan's outputs are what build writes."""
    plan = capabilities.plan(
        [SEVEN], {"seven": {}}, registry.names(), options=registry.Options(revision="r")
    )
    assert plan.errors == [] and plan.failure is None
    assert set(plan.outputs) == set(registry.names())
    ids = {r.id for r in SEVEN.rules}
    for name in registry.names():
        assert counted[name] == Counter(dict.fromkeys(ids, 1)), name
    assert counted["refuse"] == Counter()  # no rule was asked alone
    # below the registry: the bundle and Gatekeeper compile each rule once (Rego),
    # Kyverno and VAP once each (CEL)
    assert counted["Rego rules"] == Counter(dict.fromkeys(ids, 2))
    assert counted["CEL rules"] == Counter(dict.fromkeys(ids, 2))


def test_a_refusal_asks_each_rule_alone_and_hints_from_the_same_results(
    counted: dict[str, Counter[str]],
) -> None:
    keys = ir.Compare(
        "==", ir.Keys(ir.Path(OBJ, ("metadata", "labels"))), ir.Literal(("a",))
    )  # kyverno and vap cannot express keys()
    odd = dataclasses.replace(_rule(7), id="K-001", condition=keys)
    pack = dataclasses.replace(SEVEN, rules=(*SEVEN.rules, odd))
    plan = capabilities.plan([pack], {"seven": {}}, ["rego", "gatekeeper", "kyverno", "vap"])
    assert [e.message.split(":")[0] for e in plan.errors] == ["rule K-001", "rule K-001"]
    assert all("targets that can: rego, gatekeeper" in (e.hint or "") for e in plan.errors)
    assert [r.id for r in plan.packs["kyverno"][0].rules] == [r.id for r in SEVEN.rules]
    # rego and gatekeeper compiled everything in one pass and were never asked again
    assert not any(k.startswith(("rego/", "gatekeeper/")) for k in counted["refuse"])
    assert counted["refuse"]["kyverno/K-001"] == 1


def test_allow_partial_is_an_error_level(counted: dict[str, Counter[str]]) -> None:
    keys = ir.Compare("==", ir.Keys(ir.Path(OBJ, ("metadata", "labels"))), ir.Literal(("a",)))
    odd = dataclasses.replace(_rule(7), id="K-001", condition=keys)
    pack = dataclasses.replace(SEVEN, rules=(*SEVEN.rules, odd))
    opts = registry.Options()
    raised = capabilities.plan([pack], {}, ["vap"], options=opts)
    assert len(raised.errors) == 1 and raised.outputs == {}  # RAISE: nothing to write
    warned = capabilities.plan(
        [pack], {}, ["vap"], options=opts, level=capabilities.ErrorLevel.WARN
    )
    assert len(warned.errors) == 1 and set(warned.outputs) == {"vap"}
    files, _ = warned.outputs["vap"]
    names = [d["metadata"]["name"] for docs in files.values() for d in docs]
    assert not any("k-001" in n for n in names) and any("r-000" in n for n in names)
