"""The parameter checks' light path (policykit/ir/check.py, issue 21 start-up)
never disagrees with jsonschema: a schema it calls well-formed passes
``check_schema``, a value it calls valid has no validation error, and the plain
schemas of the built-in packs take the light path (so ``check`` needs no
jsonschema)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policykit.errors import DefinitionError, ParameterError
from policykit.ir import check
from policykit.ir.rule import Pack, ParamSpec
from tests.conftest import examples

_KEYS = [
    "type", "items", "additionalProperties", "properties", "required", "enum",
    "minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "title", "description", "$comment", "default", "$schema", "pattern", "uniqueItems",
]  # fmt: skip
_TYPES = ["array", "boolean", "integer", "null", "number", "object", "string", "any", 3]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 5),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from(["", "a", "ab", "x y", "1"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
    ),
    max_leaves=10,
)


def _keyword(key: str, sub: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    if key == "type":
        return st.one_of(st.sampled_from(_TYPES), st.lists(st.sampled_from(_TYPES), max_size=3))
    if key in ("items", "additionalProperties"):
        return sub
    if key == "properties":
        return st.one_of(
            st.dictionaries(st.sampled_from(["a", "b", "c"]), sub, max_size=3), scalars
        )
    if key == "required":
        return st.one_of(st.lists(st.sampled_from(["a", "b", "c", 1]), max_size=3), scalars)
    if key == "enum":
        return st.one_of(st.lists(values, max_size=3), scalars)
    if key == "$schema":
        return st.sampled_from([check._SCHEMA_URI, "http://example.com/", 1])
    if key == "pattern":
        return st.sampled_from(["^a", "("])
    return values  # counts, bounds, annotations: sometimes well-formed, often not


schemas: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.booleans(), st.just({})),
    lambda sub: st.sampled_from(_KEYS).flatmap(
        lambda k1: st.sampled_from(_KEYS).flatmap(
            lambda k2: st.fixed_dictionaries(
                {}, optional={k1: _keyword(k1, sub), k2: _keyword(k2, sub)}
            )
        )
    ),
    max_leaves=6,
)


def _well_formed(schema: Any) -> bool:
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError:
        return False
    return True


@settings(max_examples=examples(300), deadline=None)
@given(schemas)
def test_a_schema_called_well_formed_is_well_formed(schema: Any) -> None:
    if check._plain_schema(schema):
        assert _well_formed(schema), schema


@settings(max_examples=examples(700), deadline=None)
@given(schemas, values)
def test_a_value_called_valid_is_valid(schema: Any, value: Any) -> None:
    plain = check._plain_json(value) and check._plain_schema(schema) and _well_formed(schema)
    if plain and check._surely_valid(schema, value):
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(value))
        assert errors == [], (schema, value)


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "array", "items": {"type": "string"}, "minItems": 1}, ["a"]),
        ({"type": "object", "additionalProperties": {"type": "number", "minimum": 0}}, {"x": 1.5}),
        ({"type": "string", "minLength": 1}, "a"),
        ({"type": ["string", "null"], "enum": ["a", None]}, "a"),
    ],
)
def test_the_shapes_packs_use_take_the_light_path(schema: dict[str, Any], value: Any) -> None:
    assert check._plain_schema(schema)
    assert check._surely_valid(schema, value)


def _pack(schema: dict[str, Any], default: Any) -> Pack:
    return Pack(name="p", version="1.0.0", params=(ParamSpec("x", schema, default),), rules=())


def test_errors_are_still_jsonschemas_words() -> None:
    pack = _pack({"type": "array", "items": {"type": "string"}, "minItems": 1}, ["a"])
    assert check.check_pack(pack) == {"x": ["a"]}
    with pytest.raises(ParameterError, match=r"parameter x: \[\] should be non-empty"):
        check.check_pack(pack, {"x": []})
    with pytest.raises(ParameterError, match=r"parameter x\.0: 1 is not of type 'string'"):
        check.check_pack(pack, {"x": [1]})
    bad = _pack({"type": "array", "minItems": -1}, [])
    with pytest.raises(DefinitionError, match="invalid schema: -1 is less than the minimum of 0"):
        check.check_pack(bad)


def test_the_built_in_packs_need_no_jsonschema(monkeypatch: pytest.MonkeyPatch) -> None:
    from policykit.packs import load_packs

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("jsonschema was asked")

    monkeypatch.setattr(jsonschema.Draft202012Validator, "check_schema", refuse)
    monkeypatch.setattr(jsonschema.Draft202012Validator, "iter_errors", refuse)
    check._cached_schema_problem.cache_clear()
    names = ["starter", "catalog", "finops", "provenance", "agents"]
    for pack in load_packs([f"policykit.packs.{n}" for n in names]):
        assert check.check_pack(pack) == pack.defaults()


@pytest.mark.parametrize(
    "uri", ["", "#", "https://x.dev/s.json", "https://x.dev/s.json#", "a#b", "#frag", "a##"]
)
def test_an_id_is_plain_exactly_when_jsonschema_accepts_it(uri: str) -> None:
    try:
        jsonschema.Draft202012Validator.check_schema({"$id": uri})
        accepted = True
    except jsonschema.SchemaError:
        accepted = False
    assert check._plain_schema({"$id": uri}) == accepted


@settings(max_examples=examples(200))
@given(
    data=st.dictionaries(
        st.sampled_from(["packs", "paths", "exclude", "params", "fail_on", "crds", "other"]),
        st.one_of(
            st.lists(st.text(max_size=3), max_size=3),
            st.dictionaries(
                st.text(max_size=3), st.dictionaries(st.text(max_size=2), st.integers())
            ),
            st.sampled_from(["deny", "warn", "info", "none"]),
            st.integers(),
        ),
    )
)
def test_the_configuration_is_read_without_jsonschema_only_when_it_is_valid(
    data: dict[str, Any],
) -> None:
    """policykit.yaml is validated on the light path (no jsonschema import at
    start-up) when it certainly is valid; never a config jsonschema refuses."""
    from policykit.resources import load_schema

    schema = load_schema("config.schema.json")
    assert check._plain_schema(schema)  # the light path applies to the real schema
    if check.surely_valid(schema, data):
        assert not list(jsonschema.Draft202012Validator(schema).iter_errors(data))
