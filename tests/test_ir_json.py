"""The IR's versioned JSON form round-trips every pack, and is refused when wrong."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from policykit.cli.main import cli
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


def _starter_doc() -> dict[str, Any]:
    from policykit.packs import load_packs

    doc: dict[str, Any] = json.loads(serialize.dumps(load_packs(["policykit.packs.starter"])))
    return doc


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("id", 5, r"\$\.packs\[0\]\.rules\[0\]\.id: 5 is not of type 'string'"),
        ("title", ["x"], r"\$\.packs\[0\]\.rules\[0\]\.title: \['x'\] is not of type 'string'"),
        ("selector.kinds", "Component", r"rules\[0\]\.selector\.kinds: 'Component' is not of type"),
    ],
)
def test_ir_of_the_wrong_shape_is_one_line_with_the_json_path(
    tmp_path: Path, field: str, value: Any, where: str
) -> None:
    """`"id": 5` and `"title": ["x"]` crashed; `"kinds": "Component"` matched nothing."""
    doc = _starter_doc()
    rule = doc["packs"][0]["rules"][0]
    *parents, last = field.split(".")
    for p in parents:
        rule = rule[p]
    rule[last] = value
    with pytest.raises(IRFormatError, match=where):
        serialize.loads(json.dumps(doc))
    f = tmp_path / "pack.json"
    f.write_text(json.dumps(doc))
    r = CliRunner().invoke(cli, ["rules", "--pack", str(f)])
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "PK004" in lines[0] and str(f) in lines[0]


def test_a_long_message_path_is_refused_quickly_for_cel(tmp_path: Path) -> None:
    """1,600 segments took 44 s: the CEL presence checks grow with the square of
    the path; now refused before they are built, naming the limit."""
    doc = _starter_doc()
    rule = next(r for r in doc["packs"][0]["rules"] if r["selector"]["source"] == "kubernetes")
    doc["packs"][0]["rules"] = [rule]
    rule["message"]["parts"] = ["x ", {"node": "Path", "root": "object", "segments": ["a"] * 1600}]
    f = tmp_path / "pack.json"
    f.write_text(json.dumps(doc))
    start = time.monotonic()
    r = CliRunner().invoke(
        cli, ["build", "--target", "vap", "--pack", str(f), "--out", str(tmp_path / "vap")]
    )
    assert time.monotonic() - start < 10
    assert r.exit_code == 2, r.output
    assert "field path of 1600 segments" in r.stderr and "PK200" in r.stderr, r.stderr
    assert not (tmp_path / "vap").exists()
    ok = CliRunner().invoke(
        cli, ["build", "--target", "rego", "--pack", str(f), "--out", str(tmp_path / "b.tar.gz")]
    )
    assert ok.exit_code == 0, ok.output


def test_a_long_condition_path_is_not_a_crash_in_json_schema(tmp_path: Path) -> None:
    """A 1,600-segment path in a Backstage rule's condition overflowed the JSON
    Schema compiler's recursion (exit 3); it is a rule that target cannot express,
    and the Rego targets still build it."""
    doc = _starter_doc()
    rule = next(r for r in doc["packs"][0]["rules"] if r["selector"]["source"] == "backstage")
    doc["packs"][0]["rules"] = [rule]

    def deepen(node: Any) -> bool:
        if isinstance(node, dict):
            if node.get("node") == "Path" and node.get("root") == "object":
                node["segments"] = ["a"] * 1600
                return True
            return any(deepen(v) for v in node.values())
        return isinstance(node, list) and any(deepen(v) for v in node)

    assert deepen(rule["condition"])
    f = tmp_path / "pack.json"
    f.write_text(json.dumps(doc))
    r = CliRunner().invoke(
        cli, ["build", "--target", "jsonschema", "--pack", str(f), "--out", str(tmp_path / "js")]
    )
    assert r.exit_code == 0, r.output
    index = json.loads((tmp_path / "js/index.json").read_text())
    assert "1600 segments" in json.dumps(index)
    ok = CliRunner().invoke(
        cli, ["build", "--target", "rego", "--pack", str(f), "--out", str(tmp_path / "b.tar.gz")]
    )
    assert ok.exit_code == 0, ok.output
