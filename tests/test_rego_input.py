"""regopy's input, built by policykit.engines.rego.regopy_input (issue 21, item 5):
what the interpreter reads back is what ``regopy.Input`` gives it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import policykit.engines  # noqa: F401  (load order: cel before regopy)
from policykit.engines.rego import regopy_input

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
    assert _read_back(regopy_input(value)) == _read_back(regopy.Input(value))


@pytest.mark.parametrize("value", [{1: 2}, (1, 2), {"a": frozenset()}, {"big": 2**70}])
def test_other_values_go_to_regopys_converter(value: Any) -> None:
    try:
        expected: Any = _read_back(regopy.Input(value))
    except Exception as exc:  # the same error, whatever it is
        with pytest.raises(type(exc)):
            _read_back(regopy_input(value))
        return
    assert _read_back(regopy_input(value)) == expected
