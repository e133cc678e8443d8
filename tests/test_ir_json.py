"""The IR's versioned JSON form round-trips every pack, and is refused when wrong."""

from __future__ import annotations

import json

import jsonschema
import pytest

from policykit.errors import IRFormatError
from policykit.ir import serialize
from policykit.ir.nodes import NODE_CLASSES, walk
from policykit.packs import load_pack_source
from tests.conftest import ROOT


def _all_packs():  # type: ignore[no-untyped-def]
    return load_pack_source("policykit.packs.starter") + load_pack_source(
        str(ROOT / "examples/packs/acme.py")
    )


def test_round_trip_is_identity_and_deterministic() -> None:
    packs = _all_packs()
    text = serialize.dumps(packs)
    again = serialize.loads(text)
    assert again == packs
    assert serialize.dumps(again) == text


def test_ir_json_validates_against_its_schema() -> None:
    schema = json.loads((ROOT / "schemas/ir.schema.json").read_text())
    doc = json.loads(serialize.dumps(_all_packs()))
    jsonschema.Draft202012Validator(schema).validate(doc)


def test_every_node_class_is_in_the_schema() -> None:
    schema = json.loads((ROOT / "schemas/ir.schema.json").read_text())
    names = set(schema["$defs"]["node"]["properties"]["node"]["enum"])
    assert names == {c.__name__ for c in NODE_CLASSES}


def test_examples_use_many_node_kinds() -> None:
    used = {type(n).__name__ for p in _all_packs() for r in p.rules for n in walk(r.condition)}
    assert {"Quantifier", "Matches", "Sum", "Quantity", "Arith", "Default", "In"} <= used


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("not json", "malformed JSON"),
        ('{"policykit_ir": 99, "packs": []}', "unsupported IR version"),
        (
            '{"policykit_ir": 1, "packs": [{"name": "x"}]}',
            r"at \$\.packs\[0\]: 'version' is a required",
        ),
        (
            '{"policykit_ir": 1, "packs": [{"name": "x", "version": "1.0.0",'
            ' "rules": [{"id": "A-1", "title": "t", "severity": "deny", "message": {"parts": []},'
            ' "condition": {"node": "Bogus"}}]}]}',
            r"at \$\.packs\[0\]\.rules\[0\]\.condition\.node: 'Bogus' is not one of",
        ),
    ],
)
def test_bad_ir_is_refused(text: str, match: str) -> None:
    with pytest.raises(IRFormatError, match=match):
        serialize.loads(text)
