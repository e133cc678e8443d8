"""regopy's input, built by policykit.engines.rego.regopy_input (issue 21, item 5):
what the interpreter reads back is what ``regopy.Input`` gives it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import policykit.engines  # noqa: F401  (load order: cel before regopy)
from policykit.engines.rego import regopy_input, six_decimals_lose

regopy = pytest.importorskip("regopy")

# JSON values as the loaders give them (no control characters, quotes or
# backslashes: regopy's own output printer does not escape them, whichever way
# the input was built)
text = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters='"\\'), max_size=12
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)


def _read_back(inp: Any) -> Any:
    it = regopy.Interpreter()
    it.set_input(inp)
    return it.query("x := input").results[0].bindings["x"]


@settings(max_examples=150, deadline=None)
@given(values)
def test_the_interpreter_reads_the_same_input(value: Any) -> None:
    """The same input as regopy's own converter, or PK010 where regopy would
    read a float otherwise (it keeps six decimals)."""
    from policykit.engines.rego import EngineLimitation

    if _lossy(value):
        with pytest.raises(EngineLimitation, match="regopy would read the number"):
            regopy_input(value)
        return
    assert _read_back(regopy_input(value)) == _read_back(regopy.Input(value))


def _lossy(v: Any) -> bool:
    if isinstance(v, float):
        return six_decimals_lose(v)
    if isinstance(v, dict):
        return any(_lossy(x) for x in v.values())
    return isinstance(v, list) and any(_lossy(x) for x in v)


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ({"n": 1e-07}, "the number 1e-07 as 0.000000"),
        ({"n": [1.0000001]}, "the number 1.0000001 as 1.000000"),
        ({"s": "a\x00b"}, "the string 'a\\x00b' up to its NUL character"),
    ],
)
def test_what_regopy_would_read_otherwise_is_refused(value: Any, said: str) -> None:
    """regoInputFloat kept six decimals: 1e-07 was 0 (and equal to 0 in a
    rule), and regoInputString cut a string at a NUL: a finding could vanish."""
    from policykit.engines.rego import EngineLimitation

    assert _read_back(regopy.Input(value)) != value  # the defect
    with pytest.raises(EngineLimitation, match="regopy would read") as err:
        regopy_input(value)
    assert said in err.value.message
    assert _read_back(regopy_input({"n": 0.125, "m": 1e20, "s": "ok"})) == {
        "n": 0.125,
        "m": 1e20,
        "s": "ok",
    }


@pytest.mark.parametrize("value", [{1: 2}, (1, 2), {"a": frozenset()}])
def test_other_values_go_to_regopys_converter(value: Any) -> None:
    try:
        expected: Any = _read_back(regopy.Input(value))
    except Exception as exc:  # the same error, whatever it is
        with pytest.raises(type(exc)):
            _read_back(regopy_input(value))
        return
    assert _read_back(regopy_input(value)) == expected


def test_integers_beyond_int64_are_read_as_the_nearest_float() -> None:
    """regopy's integers are int64: its own converter wraps 2**70 (to 0), so a
    tool call costing 2**64 USD cost nothing and was allowed. Beyond int64 an
    integer is sent as the nearest float; beyond a float it is PK010."""
    from policykit.engines.rego import EngineLimitation

    assert _read_back(regopy.Input({"big": 2**70})) != {"big": 2**70}  # the defect
    got = _read_back(regopy_input({"big": 2**70, "neg": -(2**64)}))
    assert got == {"big": pytest.approx(2.0**70), "neg": pytest.approx(-(2.0**64))}
    assert _read_back(regopy_input({"edge": 2**63 - 1})) == {"edge": 2**63 - 1}
    with pytest.raises(EngineLimitation, match="cannot read the integer"):
        regopy_input({"huge": 10**400})
