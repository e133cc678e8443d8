"""The laws of docs/semantics.md, checked on the reference engine."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from policykit.ir import nodes as ir
from policykit.ir.quantity import MULTIPLIERS, parse_quantity
from policykit.values import MISSING, json_equal, render
from tests.conftest import eval_pred, eval_value, path

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
OPS = ["==", "!=", "<", "<=", ">", ">="]


def lit(v: Any) -> ir.Literal:
    return ir.Literal(tuple(v) if isinstance(v, list) else v)


# --- missing --------------------------------------------------------------------


@given(op=st.sampled_from(OPS), v=scalars)
def test_any_comparison_with_a_missing_side_is_false(op: str, v: Any) -> None:
    obj = {"a": {"b": 1}}
    for missing in (path("nope"), path("a", "b", "c"), path("a", 3)):
        assert eval_pred(ir.Compare(op, missing, lit(v)), obj) is False  # type: ignore[arg-type]
        assert eval_pred(ir.Compare(op, lit(v), missing), obj) is False  # type: ignore[arg-type]
        assert eval_pred(ir.Not(ir.Compare(op, missing, lit(v))), obj) is True  # type: ignore[arg-type]


@given(v=json_values)
def test_null_is_a_value_but_not_existing(v: Any) -> None:
    obj = {"n": None, "v": v}
    assert eval_pred(ir.Exists(path("n")), obj) is False
    assert eval_pred(ir.Compare("==", path("n"), ir.Literal(None)), obj) is True
    assert eval_pred(ir.Exists(path("v")), obj) is (v is not None)
    assert eval_pred(ir.Exists(path("missing")), obj) is False


def test_paths_through_non_objects_and_lists() -> None:
    obj = {"s": "str", "l": [{"x": 1}, {"x": 2}], "n": 3}
    assert eval_value(path("s", "x"), obj) is MISSING
    assert eval_value(path("n", 0), obj) is MISSING
    assert eval_value(path("l", 1, "x"), obj) == 2
    assert eval_value(path("l", 2, "x"), obj) is MISSING
    assert eval_value(path("l", "x"), obj) is MISSING


# --- equality and ordering --------------------------------------------------------


@given(a=json_values, b=json_values)
def test_not_equal_is_negated_equal_when_both_present(a: Any, b: Any) -> None:
    obj = {"a": a, "b": b}
    eq = eval_pred(ir.Compare("==", path("a"), path("b")), obj)
    ne = eval_pred(ir.Compare("!=", path("a"), path("b")), obj)
    assert eq is (not ne)
    assert eq is json_equal(a, b)


@given(a=json_values, b=json_values, op=st.sampled_from(["<", "<=", ">", ">="]))
def test_ordering_needs_two_numbers_or_two_strings(a: Any, b: Any, op: str) -> None:
    def family(v: Any) -> str:
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, (int, float)):
            return "number"
        return type(v).__name__

    result = eval_pred(ir.Compare(op, path("a"), path("b")), {"a": a, "b": b})  # type: ignore[arg-type]
    if family(a) != family(b) or family(a) not in ("number", "str"):
        assert result is False
    else:
        import operator

        fn = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[op]
        assert result is fn(a, b)


def test_equality_details() -> None:
    assert json_equal(1, 1.0)
    assert not json_equal(True, 1)
    assert not json_equal(False, 0)
    assert not json_equal("1", 1)
    assert json_equal([1, {"a": 2.0}], [1.0, {"a": 2}])
    assert not json_equal({"a": 1}, {"a": 1, "b": None})
    assert eval_pred(ir.Compare("!=", ir.Literal("5"), ir.Literal(5)), {}) is True
    assert eval_pred(ir.Compare("<", ir.Literal("5"), ir.Literal(3)), {}) is False
    assert eval_pred(ir.Compare("<", ir.Literal("a"), ir.Literal("b")), {}) is True


# --- quantifiers --------------------------------------------------------------------

ints = st.lists(st.integers(-5, 5), max_size=6)


@given(xs=ints, k=st.integers(-5, 5))
def test_quantifier_laws(xs: list[int], k: int) -> None:
    body = ir.Compare(">", ir.Path("x"), ir.Literal(k))
    obj = {"xs": xs}
    all_ = eval_pred(ir.Quantifier("all", "x", path("xs"), body), obj)
    any_ = eval_pred(ir.Quantifier("any", "x", path("xs"), body), obj)
    count = eval_value(ir.Count("x", path("xs"), body), obj)
    assert all_ is all(x > k for x in xs)
    assert any_ is any(x > k for x in xs)
    assert count == sum(1 for x in xs if x > k)
    not_any_not = not eval_pred(ir.Quantifier("any", "x", path("xs"), ir.Not(body)), obj)
    assert all_ is not_any_not


@pytest.mark.parametrize("coll", [[], None, "abc", 3, {"a": 1}])
def test_quantifiers_over_empty_missing_or_non_lists(coll: Any) -> None:
    body = ir.Compare("==", ir.Path("x"), ir.Literal(1))
    for obj in ({"xs": coll}, {}):
        assert eval_pred(ir.Quantifier("all", "x", path("xs"), body), obj) is True
        assert eval_pred(ir.Quantifier("any", "x", path("xs"), body), obj) is False
        assert eval_value(ir.Count("x", path("xs"), body), obj) == 0
        assert eval_value(ir.Sum("x", path("xs"), ir.Path("x")), obj) == 0


@given(xs=st.lists(st.one_of(st.integers(-100, 100), st.text(max_size=2), st.none()), max_size=6))
def test_sum_skips_non_numbers(xs: list[Any]) -> None:
    got = eval_value(ir.Sum("x", path("xs"), ir.Path("x")), {"xs": xs})
    assert got == sum(x for x in xs if isinstance(x, int))


def test_nested_quantifiers_see_outer_variables() -> None:
    obj = {"a": [1, 2], "b": [2, 3]}
    inner = ir.Quantifier("any", "y", path("b"), ir.Compare("==", ir.Path("x"), ir.Path("y")))
    assert eval_pred(ir.Quantifier("any", "x", path("a"), inner), obj) is True
    assert eval_pred(ir.Quantifier("all", "x", path("a"), inner), obj) is False


# --- strings, membership, regex -----------------------------------------------------


@given(s=st.one_of(st.text(max_size=6), st.integers(), st.none()), t=st.text(max_size=3))
def test_string_ops_only_on_strings(s: Any, t: str) -> None:
    obj = {"s": s}
    for op, fn in (("startswith", str.startswith), ("endswith", str.endswith)):
        got = eval_pred(ir.StrOp(op, path("s"), ir.Literal(t)), obj)  # type: ignore[arg-type]
        assert got is (isinstance(s, str) and fn(s, t))
    got = eval_pred(ir.StrOp("contains", path("s"), ir.Literal(t)), obj)
    assert got is (isinstance(s, str) and t in s)


@given(x=scalars, xs=st.lists(scalars, max_size=4))
def test_membership_is_equality_with_some_item(x: Any, xs: list[Any]) -> None:
    got = eval_pred(ir.In(path("x"), path("xs")), {"x": x, "xs": xs})
    assert got is any(json_equal(x, y) for y in xs)
    assert eval_pred(ir.In(path("nope"), path("xs")), {"xs": xs}) is False
    assert eval_pred(ir.In(path("x"), path("nope")), {"x": x}) is False


def test_matches_is_an_unanchored_search_and_dollar_is_end_of_text() -> None:
    assert eval_pred(ir.Matches(ir.Literal("xabcx"), ir.Literal("abc")), {}) is True
    assert eval_pred(ir.Matches(ir.Literal("abc\n"), ir.Literal("abc$")), {}) is False
    assert eval_pred(ir.Matches(ir.Literal("abc"), ir.Literal("abc$")), {}) is True
    assert eval_pred(ir.Matches(ir.Literal(5), ir.Literal("5")), {}) is False
    assert eval_pred(ir.Matches(ir.Literal("٣"), ir.Literal(r"\d")), {}) is False  # ASCII \d


# --- derived values ---------------------------------------------------------------


@given(v=json_values)
def test_length(v: Any) -> None:
    got = eval_value(ir.Length(path("v")), {"v": v})
    if isinstance(v, (str, list, dict)):
        assert got == len(v)
    else:
        assert got is MISSING


@given(
    a=st.one_of(st.integers(-50, 50), st.text(max_size=1), st.none()),
    b=st.one_of(st.integers(-50, 50), st.booleans()),
    op=st.sampled_from(["+", "-", "*", "/"]),
)
def test_arithmetic_needs_numbers_and_division_by_zero_is_missing(a: Any, b: Any, op: str) -> None:
    got = eval_value(ir.Arith(op, path("a"), path("b")), {"a": a, "b": b})  # type: ignore[arg-type]
    numeric = isinstance(a, int) and not isinstance(b, bool)
    if not numeric or (op == "/" and b == 0):
        assert got is MISSING
    else:
        expected = {"+": a + b, "-": a - b, "*": a * b}.get(op, a / b if b else None)
        assert got == expected


def test_default_and_keys() -> None:
    obj = {"n": None, "m": {"b": 1, "a": 2}}
    assert eval_value(ir.Default(path("n"), ir.Literal(1)), obj) == 1
    assert eval_value(ir.Default(path("x"), ir.Literal(1)), obj) == 1
    assert eval_value(ir.Default(path("m", "a"), ir.Literal(1)), obj) == 2
    assert eval_value(ir.Keys(path("m")), obj) == ["a", "b"]
    assert eval_value(ir.Keys(path("n")), obj) is MISSING


def test_param_values() -> None:
    assert eval_value(ir.Param("p"), {}, {"p": [1]}) == [1]
    assert eval_value(ir.Param("q"), {}, {}) is MISSING


# --- quantities -------------------------------------------------------------------


@given(
    sign=st.sampled_from(["", "+", "-"]),
    whole=st.integers(0, 99999),
    frac=st.one_of(st.none(), st.integers(0, 999)),
    suffix=st.sampled_from([*sorted(MULTIPLIERS), "e3", "E-2", "e0"]),
)
def test_quantity_grammar(sign: str, whole: int, frac: int | None, suffix: str) -> None:
    number = f"{sign}{whole}" + ("" if frac is None else f".{frac}")
    got = parse_quantity(number + suffix)
    if suffix[:1] in "eE" and suffix not in MULTIPLIERS:
        expected = Decimal(number).scaleb(int(suffix[1:]))
    else:
        expected = Decimal(number) * MULTIPLIERS[suffix]
    assert got == float(expected)


@pytest.mark.parametrize("bad", ["", "1gi", "1 Gi", "0x10", "1K", "e3", "1e", "1.5.2", "Gi", "--1"])
def test_not_quantities(bad: str) -> None:
    assert parse_quantity(bad) is None
    assert eval_value(ir.Quantity(ir.Literal(bad)), {}) is MISSING


def test_quantity_examples() -> None:
    assert parse_quantity("500m") == 0.5
    assert parse_quantity("2Gi") == 2 * 1024**3
    assert eval_value(ir.Quantity(ir.Literal(3)), {}) == 3
    assert eval_value(ir.Quantity(ir.Literal(True)), {}) is MISSING


# --- messages -----------------------------------------------------------------------


@given(v=json_values)
def test_rendering(v: Any) -> None:
    text = render(v)
    if isinstance(v, str):
        assert text == v
    elif v is None:
        assert text == ""
    elif isinstance(v, bool):
        assert text == ("true" if v else "false")
    elif isinstance(v, int):
        assert text == str(v)
    elif isinstance(v, float):
        if v == int(v):  # integral: the digits of its shortest decimal form
            assert text == str(int(Decimal(repr(v))))
        else:
            assert abs(float(text) - v) <= 5e-7 + abs(v) * 1e-15
            assert "e" not in text and len(text.partition(".")[2]) <= 6
    elif isinstance(v, list):
        assert text.startswith("[") and text.endswith("]")
    else:
        assert text == "<object>"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (MISSING, ""),
        (3.0, "3"),
        (-3.0, "-3"),
        (0.5, "0.5"),
        (181.04, "181.04"),
        (1 / 3, "0.333333"),
        (2 / 3, "0.666667"),
        (0.1234565, "0.123457"),
        (-0.0000001, "0"),
        (2.5e-7, "0"),
        (1e21, "1000000000000000000000"),
        (1234567.5, "1234567.5"),
        (["a", 1, True, None, [1], {"k": 1}], "[a, 1, true, , <list>, <object>]"),
        ({"b": 1}, "<object>"),
    ],
)
def test_render_examples(value: Any, text: str) -> None:
    assert render(value) == text


def test_arithmetic_is_exact_decimal_like_opa() -> None:
    s = ir.Arith("+", ir.Literal(0.1), ir.Literal(0.2))
    assert eval_pred(ir.Compare("==", s, ir.Literal(0.3)), {}) is True
    assert eval_value(ir.Arith("*", ir.Literal(0.5), ir.Literal(2)), {}) == 1
    assert eval_value(ir.Sum("x", path("xs"), ir.Path("x")), {"xs": [0.1, 0.2]}) == 0.3


@given(st.data())
def test_and_or_not(data: st.DataObject) -> None:
    bools = data.draw(st.lists(st.booleans(), max_size=4))
    items = tuple(ir.Compare("==", ir.Literal(b), ir.Literal(True)) for b in bools)
    assert eval_pred(ir.And(items), {}) is all(bools)
    assert eval_pred(ir.Or(items), {}) is any(bools)
    assume(bools)
    assert eval_pred(ir.Not(items[0]), {}) is (not bools[0])
