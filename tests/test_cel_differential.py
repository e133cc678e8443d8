"""The backbone for the CEL targets: random rules x random objects give the
same findings and messages in the reference engine and in the CEL that ships
in Kyverno / ValidatingAdmissionPolicy manifests, run by cel-cpp."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from policykit.engines.cel import CelEngine
from policykit.engines.native import NativeEngine
from policykit.ir import nodes as ir
from policykit.ir.rule import Pack
from policykit.model import Document, Finding
from policykit.targets.base import UnsupportedError
from tests.strategies import objects, packs


def _key(f: Finding) -> tuple[Any, ...]:
    return (f.doc_index, -1 if f.item is None else f.item, f.rule, f.severity, f.message)


def _float_sensitive(pack: Pack) -> bool:
    """Rules whose verdict can depend on float rounding: CEL computes
    arithmetic and quantities in doubles, the reference in exact decimals
    (docs/engines.md). Those are compared on integer-valued data only."""
    return any(
        isinstance(n, (ir.Arith, ir.Sum, ir.Quantity))
        for r in pack.rules
        for n in ir.walk(r.condition)
    )


def _only_integers(o: Any) -> bool:
    if isinstance(o, float):
        return o == int(o)
    if isinstance(o, str):
        return "." not in o and "m" not in o
    if isinstance(o, list):
        return all(_only_integers(x) for x in o)
    if isinstance(o, dict):
        return all(_only_integers(x) for x in o.values())
    return True


@pytest.mark.slow
@settings(max_examples=150)
@given(pack=packs(), objs=st.lists(objects(), min_size=1, max_size=6))
def test_native_and_cel_agree(pack: Pack, objs: list[dict[str, Any]]) -> None:
    try:
        engine = CelEngine([pack])
    except UnsupportedError:
        assume(False)
        raise
    if _float_sensitive(pack):
        assume(all(_only_integers(o) for o in objs))
    docs = [Document(o, "gen.yaml", i, 1) for i, o in enumerate(objs)]
    want = sorted(map(_key, NativeEngine([pack]).evaluate_all(docs)))
    got = sorted(map(_key, engine.evaluate_all(docs)))
    assert got == want
