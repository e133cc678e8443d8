"""Parameter schemas are checked once per distinct schema (issue 21: ``check_schema``
was 77% of an engine's construction, paid by every engine, every time)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from policykit.engines.native import NativeEngine
from policykit.errors import DefinitionError
from policykit.ir import check
from policykit.ir import nodes as ir
from policykit.ir.rule import Message, Pack, ParamSpec, Rule
from policykit.packs import load_packs

PLATFORM = [
    "policykit.packs.catalog",
    "policykit.packs.finops",
    "policykit.packs.provenance",
    "policykit.packs.agents",
]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    seen: list[Any] = []
    real = jsonschema.Draft202012Validator.check_schema

    def counting(schema: Any, *args: Any, **kwargs: Any) -> None:
        seen.append(schema)
        real(schema, *args, **kwargs)

    monkeypatch.setattr(jsonschema.Draft202012Validator, "check_schema", counting)
    # every schema through jsonschema, as before the light path for plain schemas
    # (tests/test_schema_lite.py), so the cache in front of it is what is counted
    monkeypatch.setattr(check, "_plain_schema", lambda schema: False)
    check._cached_schema_problem.cache_clear()
    return seen


def test_each_schema_is_checked_once_across_engines(calls: list[Any]) -> None:
    packs = load_packs(PLATFORM)
    distinct = {repr(p.schema) for pack in packs for p in pack.params}
    for _ in range(5):
        NativeEngine(packs)
    assert 0 < len(calls) <= len(distinct)
    assert len(calls) < sum(len(pack.params) for pack in packs)


def _pack(schema: Any, name: str = "p") -> Pack:
    rule = Rule("P-001", "t", "deny", ir.TRUE, Message(("m",)))
    return Pack(name, "1.0.0", (rule,), (ParamSpec("limit", schema, 1),))


def test_an_invalid_schema_is_refused_every_time(calls: list[Any]) -> None:
    bad = {"type": "no-such-type"}
    for _ in range(3):
        with pytest.raises(DefinitionError, match="parameter limit: invalid schema"):
            check.check_pack(_pack(bad))
    assert len(calls) == 1


def test_same_content_is_one_check_and_other_content_another(calls: list[Any]) -> None:
    check.check_pack(_pack({"type": "integer"}))
    check.check_pack(_pack({"type": "integer"}, name="q"))
    check.check_pack(_pack({"type": "number"}))
    assert len(calls) == 2


def test_a_schema_that_is_not_plain_json_is_checked_as_it_is(calls: list[Any]) -> None:
    # a tuple is not a JSON array to jsonschema: no cache key may hide that
    odd = {"type": "string", "enum": ("a", "b")}
    for _ in range(2):
        assert check.schema_problem(odd) == check._schema_problem(dict(odd))
    assert len(calls) == 4
