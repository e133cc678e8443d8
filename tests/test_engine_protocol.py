"""Every engine ``make_engine`` builds is an :class:`~policykit.engines.base.Engine`
(issue 18 item 5) and finds what the reference engine finds on the examples."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from policykit.api import make_engine
from policykit.api.checking import ENGINES
from policykit.engines.base import DecidingEngine, Engine
from policykit.ir.reads import uses_inventory
from policykit.loader import iter_load
from policykit.model import Document, Finding
from policykit.packs import load_packs
from policykit.scaffolder.drift import WithTemplateCheck

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "starter": (["policykit.packs.starter"], ROOT / "examples/kubernetes"),
    "catalog": (["policykit.packs.catalog"], ROOT / "examples/catalog"),
}


def _docs(path: Path) -> list[Document]:
    return [d for part in iter_load([str(path)]) for d in part.documents]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", ENGINES)
def test_every_engine_is_an_engine_and_agrees_with_native(name: str, case: str) -> None:
    sources, path = CASES[case]
    packs = load_packs(sources)
    docs = _docs(path)
    engine = make_engine(name, packs, {})
    assert isinstance(engine, Engine)
    assert isinstance(engine, WithTemplateCheck) == (case == "catalog")
    assert engine.uses_inventory == uses_inventory(packs)
    engine.set_inventory([d.obj for d in docs])
    native = make_engine("native", packs, {})
    expected = native.evaluate_all(docs)
    assert expected  # the examples have findings: the comparison is not vacuous
    assert engine.evaluate_all(docs) == expected
    assert engine.effective_params == native.effective_params
    one_by_one = [f for d in docs for f in engine.evaluate(d)]
    assert one_by_one == [f for d in docs for f in native.evaluate(d)]


def test_only_the_rego_engines_decide_tool_calls() -> None:
    packs = load_packs(["policykit.packs.starter"])
    deciding = {n for n in ENGINES if isinstance(make_engine(n, packs, {}), DecidingEngine)}
    assert deciding == {"rego", "opa"}


class _NoInventory:
    """An evaluator without ``set_inventory``/``uses_inventory``: not an Engine."""

    def __init__(self) -> None:
        self.effective_params: dict[str, dict[str, Any]] = {}

    def evaluate(self, doc: Document) -> list[Finding]:
        return []

    def evaluate_all(self, docs: Iterable[Document]) -> list[Finding]:
        return []


class _Complete(_NoInventory):
    uses_inventory = False

    def set_inventory(self, objects: Sequence[dict[str, Any]]) -> None:
        pass


def test_the_protocol_asks_for_every_member() -> None:
    assert not isinstance(_NoInventory(), Engine)
    assert isinstance(_Complete(), Engine)
