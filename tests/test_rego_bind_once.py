"""A value a rule body guards and then uses, or uses twice, is computed once
(issue 16 item 2, issue 21): bound to a named local (``cpu_quantity :=
_finops_009_cpu_quantity(obj)``, then ``is_number(cpu_quantity)``), never
written out again. regopy does not cache a helper's result, so every repeated
call was evaluated again (FINOPS-009 spent most of ``policykit verify``)."""

from __future__ import annotations

import re

import pytest

from tests.test_rego_names import _modules

_CALL = re.compile(r"\b(_[a-z0-9_]+)\(([a-z_]*)\)")


@pytest.fixture(scope="module")
def modules() -> dict[str, str]:
    return _modules()


def _bodies(text: str) -> list[str]:
    """Each rule's body lines, split at blank lines between rules."""
    return [b for b in re.split(r"\n\s*\n", text) if b.strip()]


def test_a_guarded_call_is_not_repeated(modules: dict[str, str]) -> None:
    for key, text in modules.items():
        for body in _bodies(text):
            for line in body.split("\n"):
                m = re.fullmatch(r"\s*is_(?:number|string)\((.+)\)", line)
                # a guard names a variable, a ref or a literal: never a helper call
                assert m is None or _CALL.search(m.group(1)) is None, (key, line)


def test_finops_009_calls_each_helper_once(modules: dict[str, str]) -> None:
    text = modules["gatekeeper/pkfinopsfinops009"]
    rule = next(b for b in _bodies(text) if "\n_finops_009(obj) :=" in b)
    for helper in (
        "_finops_009_cpu_quantity",
        "_finops_009_total_over_containers",
        "_finops_009_total_over_matching_others_by_key",
    ):
        assert rule.count(f"{helper}(obj)") == 1, helper
    assert "cpu_quantity := _finops_009_cpu_quantity(obj)" in rule
    assert "is_number(cpu_quantity)" in rule
    assert "is_number(1073741824)" not in rule  # a numeric constant needs no guard
