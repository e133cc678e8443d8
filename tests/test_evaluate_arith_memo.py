"""The reference evaluator remembers results of exact arithmetic by operands
(policykit/ir/evaluate/closures.py, ``_ARITH``): whatever was computed before,
a result is ``values.arith`` of its operands, type included (``1`` and ``1.0``,
``0.0`` and ``-0.0``, booleans that are not numbers)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policykit.ir.evaluate import Evaluator, closures
from policykit.ir.nodes import Arith, Literal, Path
from policykit.values import MISSING
from policykit.values import arith as exact_arith
from tests.conftest import examples

NUMBERS = st.one_of(
    st.sampled_from([0, 1, -1, 0.0, -0.0, 1.0, 0.1, 0.2, 0.5, 3, 10**20, 2.5e-7, True, False]),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
OPS = st.sampled_from(["+", "-", "*", "/"])


def expected(op: str, a: Any, b: Any) -> Any:
    numbers = all(type(v) in (int, float) for v in (a, b))
    r = exact_arith(op, a, b) if numbers else None
    return MISSING if r is None else r


def typed(v: Any) -> tuple[str, Any, bool]:
    return type(v).__name__, v, str(v).startswith("-")


@settings(max_examples=examples(300))
@given(st.lists(st.tuples(OPS, NUMBERS, NUMBERS), min_size=1, max_size=30))
def test_remembered_arithmetic_is_exact_arithmetic(calls: list[tuple[str, Any, Any]]) -> None:
    closures._ARITH.clear()
    ev = Evaluator({})
    for op, a, b in calls * 2:  # the second time from the memo
        fn = ev.value(Arith(op, Path("a", ()), Path("b", ())))  # type: ignore[arg-type]
        got = fn({"a": a, "b": b})
        assert typed(got) == typed(expected(op, a, b)), (op, a, b)


def test_the_memo_is_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(closures, "ARITH_MEMO", 4)
    closures._ARITH.clear()
    fn = Evaluator({}).value(Arith("+", Path("a", ()), Literal(1)))
    assert [fn({"a": i}) for i in range(10)] == list(range(1, 11))
    assert len(closures._ARITH) <= 4
