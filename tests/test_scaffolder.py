"""Issue 17: scaffolder templates held to the catalog rules — the parameter ->
entity field mapping, CATALOG-016 (drift) and ``policykit scaffold sync``."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from policykit.api import resolve
from policykit.packs import load_packs
from policykit.scaffolder.drift import constraints, decide
from policykit.scaffolder.mapping import Parameter, map_template, parse_field
from policykit.scaffolder.sync import sync_text
from tests.conftest import ROOT, run_policykit

PLATFORM = ROOT / "examples" / "platform"
CC = ("metadata", "annotations", "policykit.dev/cost-center")


_run = run_policykit


def _template(props: dict[str, Any], steps: list[Any], required: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": "t"},
        "spec": {
            "owner": "group:a",
            "type": "service",
            "parameters": [{"required": required, "properties": props}],
            "steps": steps,
        },
    }


# --- mapping -------------------------------------------------------------------------


def test_parse_field_keeps_annotation_keys_whole() -> None:
    assert parse_field("metadata.annotations.policykit.dev/cost-center") == CC
    assert parse_field("metadata.labels.a.b/c") == ("metadata", "labels", "a.b/c")
    assert parse_field("spec.owner") == ("spec", "owner")


def test_mapping_from_explicit_field_catalog_write_and_skeleton(tmp_path: Path) -> None:
    skel = tmp_path / "skeleton"
    skel.mkdir()
    (skel / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
        "metadata:\n  name: ${{ values.name }}\n"
        "  annotations:\n    policykit.dev/cost-center: ${{ values.cc }}\n"
        "spec:\n  type: website\n  owner: ${{ values.owner }}\n"
    )
    tpl = _template(
        {
            "name": {"type": "string"},
            "cc": {"type": "string"},
            "owner": {"type": "string", "x-policykit-field": "spec.owner"},
            "system": {"type": "string"},
            "repoUrl": {"type": "string"},
            "slug": {"type": "string"},
        },
        [
            {
                "action": "fetch:template",
                "input": {
                    "url": "./skeleton",
                    "values": {
                        "name": "${{ parameters.name }}",
                        "cc": "${{ parameters.cc }}",
                        "owner": "${{ parameters.owner }}",
                        "slug": "x-${{ parameters.slug }}",
                    },
                },
            },
            {
                "action": "catalog:write",
                "input": {"entity": {"spec": {"system": "${{ parameters['system'] }}"}}},
            },
            {"action": "publish:github", "input": {"repoUrl": "${{ parameters.repoUrl }}"}},
        ],
        ["name"],
    )
    tm = map_template(tpl, tmp_path / "template.yaml")
    got = {(m.param, m.field, m.source.split()[0]) for m in tm.mapped}
    assert got == {
        ("name", ("metadata", "name"), "skeleton"),
        ("cc", CC, "skeleton"),
        ("owner", ("spec", "owner"), "x-policykit-field"),
        ("system", ("spec", "system"), "catalog:write"),
    }
    assert tm.kind == "Component" and tm.entity_type == "website"
    # computed from a parameter: reported, not guessed; repoUrl fills no field
    assert [u.param for u in tm.unmapped] == ["slug"]
    assert "computed" in tm.unmapped[0].reason


def test_a_missing_skeleton_is_reported() -> None:
    tpl = yaml.safe_load((PLATFORM / "templates/quick-service.yaml").read_text())
    tm = map_template(tpl, PLATFORM / "templates/quick-service.yaml")
    assert tm.mapped == []
    assert {u.param for u in tm.unmapped} == {"name", "owner"}
    assert all("not in the repository" in u.reason for u in tm.unmapped)


# --- deciding "accepts" ------------------------------------------------------------------


def _cc_constraint(cost_centers: list[str]) -> Any:
    packs = load_packs(["policykit.packs.catalog"])
    cons = constraints(packs, {"catalog": {"cost_centers": cost_centers}})
    (c,) = [c for c in cons if c.field == CC]
    return c


@pytest.mark.parametrize(
    ("schema", "required", "kind"),
    [
        ({"type": "string", "pattern": "^CC-[0-9]{4}$"}, True, "ok"),
        ({"type": "string", "enum": ["CC-1001", "CC-2002"]}, True, "ok"),  # all match
        ({"type": "string", "enum": ["CC-1001", "cc-1"]}, True, "drift"),
        ({"type": "string"}, True, "drift"),  # accepts "" (a witness)
        ({"type": "string", "pattern": "^CC-[0-9]{4}$"}, False, "drift"),  # may be left out
        ({"type": "string", "pattern": "^CC-1[0-9]{3}$"}, True, "unknown"),  # stricter? says so
        ({"const": "CC-1234"}, True, "ok"),
        ({"type": "number"}, True, "drift"),
        ({"type": "string", "pattern": "^CC-[0-9]{4}$", "maxLength": 7}, True, "ok"),
    ],
)
def test_decide_follows_json_schema(schema: dict[str, Any], required: bool, kind: str) -> None:
    c = _cc_constraint([])
    v = decide(Parameter("cc", 0, schema, required), c.schema, c.required)
    assert v.kind == kind, v


def test_decide_with_known_cost_centers() -> None:
    c = _cc_constraint(["CC-1001", "CC-2002"])
    ok = Parameter("cc", 0, {"type": "string", "enum": ["CC-1001"]}, True)  # stricter: fine
    loose = Parameter("cc", 0, {"type": "string", "pattern": "^CC-[0-9]{4}$"}, True)
    assert decide(ok, c.schema, True).kind == "ok"
    assert decide(loose, c.schema, True).kind == "unknown"  # pattern vs enum: no witness


def test_name_length_drift_has_a_witness() -> None:
    packs = load_packs(["policykit.packs.catalog"])
    (c,) = [c for c in constraints(packs, {}) if c.field == ("metadata", "name")]
    p = Parameter("name", 0, {"type": "string", "pattern": c.schema["pattern"]}, True)
    v = decide(p, c.schema, True)
    assert v.kind == "drift" and len(v.witness) == 64


def test_a_form_pattern_python_cannot_read_is_unknown_not_ok() -> None:
    """A parameter whose pattern Python's re cannot compile (ECMA's \\p{Ll})
    had every enum value filtered out as refused, so an enum value the rule
    rejects was "ok" (no CATALOG-016); it is "unknown" now, naming the value."""
    rule = {"enum": ["production", "experimental"]}
    form = {"type": "string", "enum": ["production", "sunset"], "pattern": r"^\p{Ll}+$"}
    v = decide(Parameter("lifecycle", 0, form, True), rule, True)
    assert v.kind == "unknown" and "'sunset'" in v.why
    # without the pattern it is a drift with that witness, as before
    plain = {"type": "string", "enum": ["production", "sunset"]}
    assert decide(Parameter("lifecycle", 0, plain, True), rule, True).witness == "sunset"


def test_ecma_word_and_digit_classes_are_ascii() -> None:
    """ECMA's \\w and \\d (no u flag) are ASCII; Python's are Unicode, so "é"
    was shown as a witness the form (ajv) refuses."""
    from policykit.scaffolder.drift import valid

    schema = {"type": "string", "pattern": r"^[\w-]+\d$"}
    assert valid(schema, "a_b-1") and not valid(schema, "é1") and not valid(schema, "a٣")
    v = decide(
        Parameter("name", 0, {"type": "string", "pattern": r"^\w+$"}, True),
        {"pattern": "^[a-z]+$"},
        True,
    )
    assert v.kind == "drift" and v.witness not in ("é",) and valid({"pattern": r"^\w+$"}, v.witness)


# --- sync --------------------------------------------------------------------------------

QUIRKY = """\
# a comment at the top
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: quirky   # trailing comment
spec:
  owner: group:default/platform
  type: service
  parameters:
    - title: "About"   # quoted, indented list
      required: [name]
      properties:
        name:
          title: 'Name'
          type: string
          ui:autofocus: true
          x-policykit-field: metadata.name
        costCenter:
          type: string
          ui:help: Ask FinOps
          # the cost center
          x-policykit-field: metadata.annotations.policykit.dev/cost-center
  steps:
    - id: fetch
      action: fetch:template
      input: {url: 'https://example.com/skeleton', values: {name: '${{ parameters.name }}'}}
"""


def _platform() -> tuple[Any, Any]:
    sel = resolve(paths=[str(PLATFORM)])
    return load_packs(sel.packs), sel.params


def test_sync_touches_only_what_it_owns() -> None:
    packs, params = _platform()
    r = sync_text(QUIRKY, Path("quirky.yaml"), packs, params)
    assert r.changed
    after = yaml.safe_load(r.after)
    props = after["spec"]["parameters"][0]["properties"]
    assert props["costCenter"]["enum"] == ["CC-1001", "CC-2002", "CC-3003"]
    assert props["name"]["maxLength"] == 63
    assert "CATALOG-012" in props["costCenter"]["errorMessage"]["enum"]
    assert after["spec"]["parameters"][0]["required"] == ["name", "costCenter"]
    # every original line is still there, in order: sync only added lines
    # (and the flow-style required list gained an item)
    before_lines = QUIRKY.splitlines()
    after_lines = r.after.splitlines()
    removed = [line for line in difflib.ndiff(before_lines, after_lines) if line.startswith("- ")]
    assert removed == ["-       required: [name]"], removed
    assert "# the cost center" in r.after and "# trailing comment" in r.after
    # in sync: a second run changes nothing
    assert not sync_text(r.after, Path("quirky.yaml"), packs, params).changed


def test_sync_keeps_crlf_line_breaks_and_the_byte_order_mark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Windows-edited template (CRLF, a UTF-8 BOM) keeps both: ruamel.yaml
    writes LF and keeps the CR ending a comment, and the reader drops the BOM,
    so sync rewrote every line of the file, leaving it of mixed line breaks."""
    from click.testing import CliRunner

    from policykit.cli.main import cli

    packs, params = _platform()
    crlf = QUIRKY.replace("\n", "\r\n")
    r = sync_text(crlf, Path("quirky.yaml"), packs, params)
    lf = sync_text(QUIRKY, Path("quirky.yaml"), packs, params)
    assert r.changed and r.after == lf.after.replace("\n", "\r\n")
    assert not sync_text(r.after, Path("quirky.yaml"), packs, params).changed
    # LF stays LF, with no CR from anywhere
    assert "\r" not in lf.after

    repo = tmp_path / "platform"
    shutil.copytree(PLATFORM, repo)
    tpl = repo / "templates" / "quirky.yaml"
    tpl.write_bytes(b"\xef\xbb\xbf" + crlf.encode())
    monkeypatch.chdir(repo)
    got = CliRunner().invoke(cli, ["scaffold", "sync", "templates/quirky.yaml"])
    assert got.exit_code == 0, got.output
    data = tpl.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and data.count(b"\n") == data.count(b"\r\n")
    assert data[3:].decode() == r.after
    again = CliRunner().invoke(cli, ["scaffold", "sync", "--check", "templates/quirky.yaml"])
    assert again.exit_code == 0 and "templates in sync" in again.stderr, again.output


def test_templates_in_a_repository_under_a_hidden_folder_are_found(tmp_path: Path) -> None:
    """A checkout under a hidden folder (~/.jenkins/workspace/...) had every
    template skipped: sync --check printed "templates in sync" and exited 0
    while check reported the drift. Hidden folders *inside* the path stay skipped."""
    from policykit.scaffolder.sync import sync_paths, yaml_files

    packs, params = _platform()
    repo = tmp_path / ".jenkins" / "workspace" / "repo"
    (repo / "templates" / ".cache").mkdir(parents=True)
    (repo / "templates" / "quirky.yaml").write_text(QUIRKY)
    (repo / "templates" / ".cache" / "old.yaml").write_text(QUIRKY)
    assert yaml_files([str(repo)]) == [repo / "templates" / "quirky.yaml"]
    (result,) = sync_paths([str(repo / "templates")], packs, params)
    assert result.changed and result.path == repo / "templates" / "quirky.yaml"


def test_a_file_in_sync_is_left_byte_for_byte() -> None:
    packs, params = _platform()
    for f in sorted((PLATFORM / "templates").glob("*.yaml")):
        text = f.read_text()
        r = sync_text(text, f, packs, params)
        assert not r.changed, r.diff()


@pytest.mark.slow
def test_done_when_drift_is_found_and_repaired(tmp_path: Path) -> None:
    """The issue's done-when: drop pattern/enum from costCenter in a copy of
    examples/platform; check names the cost center, sync --check exits 1;
    sync repairs it keeping comments and ui: options; then all is clean."""
    repo = tmp_path / "platform"
    shutil.copytree(PLATFORM, repo)
    tpl = repo / "templates" / "python-service.yaml"
    original = tpl.read_text()
    lines = original.splitlines(keepends=True)
    start = next(i for i, x in enumerate(lines) if x.strip() == "costCenter:")
    broken: list[str] = []
    skip = False
    for i, x in enumerate(lines):
        indent = len(x) - len(x.lstrip())
        if i > start and x.strip().startswith(("pattern:", "enum:")) and indent == 8:
            skip = x.strip().startswith("enum:")
            continue
        if skip and x.lstrip().startswith("- ") and indent == 8:
            continue
        skip = False
        broken.append(x)
    tpl.write_text("".join(broken))
    assert "CC-1001" not in "".join(broken[start : start + 6])

    check = _run("check", "templates", "--format", "json", cwd=repo)
    assert check.returncode == 1, check.stderr
    import json

    findings = [f for f in json.loads(check.stdout)["findings"] if f["rule"] == "CATALOG-016"]
    (f,) = [f for f in findings if "python-service" in f["file"]]
    assert "costCenter" in f["message"] and "cost-center" in f["message"]
    assert "CATALOG-012" in f["message"]
    assert f["line"] == start + 1

    chk = _run("scaffold", "sync", "--check", "templates", cwd=repo)
    assert chk.returncode == 1
    assert "+++ b/templates/python-service.yaml" in chk.stdout and "+        enum:" in chk.stdout

    fix = _run("scaffold", "sync", "templates", cwd=repo)
    assert fix.returncode == 0, fix.stderr
    repaired = tpl.read_text()
    assert repaired.startswith("# The golden-path template")  # the comment stays
    assert "ui:field: OwnerPicker" in repaired and "catalogFilter:" in repaired
    # only costCenter's lines moved: everything else is byte-identical
    changed = [
        x
        for x in difflib.unified_diff(original.splitlines(), repaired.splitlines(), n=0)
        if x.startswith(("+", "-")) and not x.startswith(("+++", "---"))
    ]
    assert all(
        any(k in x for k in ("pattern:", "enum:", "- CC-", "errorMessage:", "CATALOG-012"))
        for x in changed
    ), changed
    assert _run("scaffold", "sync", "--check", "templates", cwd=repo).returncode == 0
    again = _run("check", "templates", "--format", "json", cwd=repo)
    assert not [
        f
        for f in json.loads(again.stdout)["findings"]
        if f["rule"] == "CATALOG-016" and "python-service" in f["file"]
    ]


# --- fields.json -------------------------------------------------------------------------


def test_fields_cover_an_owner_and_cost_center_rule() -> None:
    """The issue's report: a rule requiring an owner and a cost-center
    annotation gave ``"fields": {}``; each field now gets its schema."""
    import json

    from policykit.dsl import P, PackBuilder, param, select
    from policykit.targets.jsonschema import build

    b = PackBuilder(
        "acme_meta",
        "1.0.0",
        params={"cc_key": param("acme.io/cost-center", {"type": "string"}, "key")},
    )

    @b.rule(
        "ACME-101",
        title="owner and cost center",
        select=select(source="backstage", kinds=["Component"]),
        message="{kind} {metadata.name} needs an owner and a cost center",
    )
    def owned(o: Any) -> object:
        cc = o.metadata.annotations[P("cc_key")]
        return o.spec.owner.absent() | cc.absent() | ~cc.matches(r"^CC-[0-9]{4}$")

    fields = json.loads(build([b.build()], {})["acme_meta.fields.json"])
    assert set(fields["fields"]) == {"spec.owner", "metadata.annotations.acme.io/cost-center"}
    cc = fields["fields"]["metadata.annotations.acme.io/cost-center"][0]
    assert cc["required"] is True
    assert cc["schema"]["pattern"] == "^CC-[0-9]{4}$" and cc["schema"]["type"] == "string"
    assert cc["schema"]["errorMessage"]["pattern"].startswith("ACME-101: Component needs")


def test_field_schemas_read_as_written_and_agree_with_the_rules() -> None:
    """Simplified schemas (maxLength, $) accept exactly what the rules accept."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from policykit.engines.native import NativeEngine
    from policykit.model import Document
    from policykit.scaffolder.drift import valid

    packs = load_packs(["policykit.packs.catalog"])
    cons = constraints(packs, {"catalog": {"cost_centers": ["CC-1001"]}})
    name = next(c for c in cons if c.field == ("metadata", "name"))
    assert name.schema["maxLength"] == 63 and name.schema["pattern"].endswith("$")
    assert "not" not in name.schema and "anyOf" not in name.schema
    engine = NativeEngine(packs, {"catalog": {"cost_centers": ["CC-1001"]}})

    @settings(max_examples=200, deadline=None)
    @given(
        st.sampled_from(
            [
                c
                for c in cons
                if c.rule.id in ("CATALOG-001", "CATALOG-002", "CATALOG-012", "CATALOG-013")
            ]
        ),
        st.one_of(
            st.text(alphabet="aZ09-._ \nCé", max_size=66),
            st.sampled_from(["a" * 63, "a" * 64, "CC-1001", "internal", "", "a\n"]),
        ),
    )
    def agree(c: Any, value: str) -> None:
        entity: dict[str, Any] = {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": "ok", "namespace": "ok", "annotations": {}},
            "spec": {"type": "service", "owner": "group:a", "lifecycle": "production"},
        }
        node = entity
        for seg in c.field[:-1]:
            node = node[seg]
        node[c.field[-1]] = value
        fired = any(f.rule == c.rule.id for f in engine.evaluate_all([Document(entity, "x", 0, 1)]))
        assert valid(c.schema, value) is not fired, (c.rule.id, value)

    agree()


# --- fields.json: the schema under each template parameter --------------------------------


def _strip_owned(path: Path) -> None:
    """The template at ``path`` with every sync-owned key but ``type`` removed
    from its parameters, and ``required`` emptied: what sync must restore."""
    from policykit.scaffolder.sync import OWNED

    doc = yaml.safe_load(path.read_text())
    for step in doc["spec"]["parameters"]:
        step["required"] = []
        for prop in step["properties"].values():
            for k in OWNED:
                if k != "type":
                    prop.pop(k, None)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_fields_json_gives_each_parameter_the_schema_sync_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17, item 1: where a template parameter maps to a constrained field,
    ``<pack>.fields.json`` gives the schema under ``<template>#<parameter>``
    too, and it is exactly what ``scaffold sync`` writes into the parameter."""
    import json

    from click.testing import CliRunner

    from policykit.cli.main import cli
    from policykit.scaffolder.sync import OWNED

    repo = tmp_path / "platform"
    shutil.copytree(PLATFORM, repo)
    monkeypatch.chdir(repo)
    # the templates come from the configured paths
    r = CliRunner().invoke(cli, ["build", "--target", "jsonschema", "--out", "dist"])
    assert r.exit_code == 0, r.output
    fields = json.loads((repo / "dist/catalog.fields.json").read_text())
    params = fields["parameters"]
    assert set(params) == {
        "python-service#name",
        "python-service#owner",
        "python-service#costCenter",
    }
    cc = params["python-service#costCenter"]
    assert cc["fields"] == ["metadata.annotations.policykit.dev/cost-center"]
    assert cc["rules"] == ["CATALOG-012"] and cc["required"] is True
    assert cc["file"] == "templates/python-service.yaml"
    assert cc["schema"]["enum"] == ["CC-1001", "CC-2002", "CC-3003"]
    # a parameter that cannot be mapped is listed with the reason, never dropped
    unmapped = {(u["template"], u["parameter"]) for u in fields["unmapped_parameters"]}
    assert unmapped == {("quick-service", "name"), ("quick-service", "owner")}
    # a pack that constrains none of the parameters' fields gives none
    assert json.loads((repo / "dist/finops.fields.json").read_text())["parameters"] == {}

    # sync a template stripped of its schemas: it writes exactly these schemas
    tpl = repo / "templates/python-service.yaml"
    _strip_owned(tpl)
    assert CliRunner().invoke(cli, ["scaffold", "sync", "templates"]).exit_code == 0
    synced = yaml.safe_load(tpl.read_text())
    props = {k: v for s in synced["spec"]["parameters"] for k, v in s["properties"].items()}
    required = {n for s in synced["spec"]["parameters"] for n in s.get("required", [])}
    for key, entry in params.items():
        name = key.split("#", 1)[1]
        written = {k: v for k, v in props[name].items() if k in OWNED}
        assert written == entry["schema"], key
        assert (name in required) is entry["required"], key

    # --templates names them explicitly, from anywhere
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(
        cli,
        [
            "build", "--target", "jsonschema", "--out", str(tmp_path / "out"),
            "--templates", str(repo / "templates"),
            "--pack", "policykit.packs.catalog",
            "--param", "catalog.cost_centers=[CC-1001, CC-2002, CC-3003]",
        ],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    again = json.loads((tmp_path / "out/catalog.fields.json").read_text())["parameters"]
    assert {k: v["schema"] for k, v in again.items()} == {k: v["schema"] for k, v in params.items()}
    # no templates anywhere: fields.json is as before, without the section
    r = CliRunner().invoke(
        cli, ["build", "--target", "jsonschema", "--out", str(tmp_path / "bare"),
              "--pack", "policykit.packs.catalog"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "parameters" not in json.loads((tmp_path / "bare/catalog.fields.json").read_text())


def test_a_parameter_filling_two_fields_gets_one_schema_once() -> None:
    """A parameter with several x-policykit-field entries gets the rules of
    all of them, merged once: a second sync changes nothing."""
    from policykit.scaffolder.fields import Template, parameters_section
    from policykit.scaffolder.sync import OWNED

    text = QUIRKY.replace(
        "x-policykit-field: metadata.name",
        "x-policykit-field: [metadata.name, metadata.labels.app]",
    )
    packs, params = _platform()
    r = sync_text(text, Path("quirky.yaml"), packs, params)
    assert r.changed
    assert not sync_text(r.after, Path("quirky.yaml"), packs, params).changed, "not idempotent"
    tm = map_template(yaml.safe_load(text), "quirky.yaml")
    (catalog,) = [p for p in packs if p.name == "catalog"]
    section = parameters_section([Template("quirky.yaml", tm)], catalog, params)
    entry = section["parameters"]["quirky#name"]
    assert entry["fields"] == ["metadata.name", "metadata.labels.app"]
    prop = yaml.safe_load(r.after)["spec"]["parameters"][0]["properties"]["name"]
    assert {k: v for k, v in prop.items() if k in OWNED} == entry["schema"]


# --- x-policykit-kind ----------------------------------------------------------------------


def _kind_template(kind_key: Any, entity_kind: str | None) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "metadata": {"annotations": {"policykit.dev/cost-center": "${{ parameters.cc }}"}}
    }
    if entity_kind is not None:
        entity["kind"] = entity_kind
    tpl = _template(
        {"cc": {"type": "string"}},
        [{"action": "catalog:write", "input": {"entity": entity}}],
        ["cc"],
    )
    if kind_key is not None:
        tpl["spec"]["x-policykit-kind"] = kind_key
    return tpl


def test_x_policykit_kind_names_the_entity_kind() -> None:
    """The entity's kind: literal in the created entity, else ``x-policykit-kind``
    on the template's spec, else Component; the rules that apply follow it."""
    from policykit.model import Document
    from policykit.scaffolder.drift import template_findings

    assert map_template(_kind_template(None, None)).kind == "Component"
    assert map_template(_kind_template("API", None)).kind == "API"
    assert map_template(_kind_template("API", "${{ parameters.kind }}")).kind == "API"
    assert map_template(_kind_template("API", "Resource")).kind == "Resource"  # literal wins
    assert map_template(_kind_template(["API"], None)).kind == "Component"  # not a string

    packs = load_packs(["policykit.packs.catalog"])
    cons = constraints(packs, {})

    def drift(tpl: dict[str, Any]) -> list[str]:
        return [f.message for f in template_findings(Document(tpl, "t.yaml", 0, 1), cons)]

    # CATALOG-012 (cost center) is for Components and Resources, not APIs:
    # a free-text cost center drifts for a Component, not for an API
    assert any("CATALOG-012" in m for m in drift(_kind_template(None, None)))
    assert not any("CATALOG-012" in m for m in drift(_kind_template("API", None)))
    assert any("CATALOG-012" in m for m in drift(_kind_template("Resource", None)))


def test_a_required_list_of_odd_items_is_read_not_crashed_on() -> None:
    """``required: [[]]`` in a Template's step made ``check`` an internal
    error (``set()`` of a list); a non-string item names no parameter."""
    from policykit.scaffolder.mapping import parameters

    tpl = {
        "spec": {
            "parameters": [
                {"required": [[], 5, {"a": 1}, "name"], "properties": {"name": {}, "owner": {}}}
            ]
        }
    }
    got = parameters(tpl)
    assert {n: p.required for n, p in got.items()} == {"name": True, "owner": False}


def test_scaffold_sync_reads_odd_templates_and_fails_on_unreadable_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template with no parameters, or ``spec: null``, has nothing to sync
    (it was an internal error, exit 3); a file that cannot be read (a repeated
    key, not UTF-8) or a path that does not exist is an error line and exit 2
    (it was a note and exit 0: "templates in sync", a CI gate passed)."""
    from click.testing import CliRunner

    from policykit.cli.main import cli

    monkeypatch.chdir(tmp_path)
    head = "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\n"
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok/none.yaml").write_text(head + "metadata: {name: a}\nspec: {steps: []}\n")
    (tmp_path / "ok/null.yaml").write_text(head + "metadata: {name: b}\nspec: null\n")
    r = CliRunner().invoke(cli, ["scaffold", "sync", "--check", "ok"])
    assert r.exit_code == 0 and "templates in sync" in r.stderr, r.output
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/dup.yaml").write_text(head + "metadata: {name: c}\nmetadata: {name: d}\n")
    (tmp_path / "bad/latin1.yaml").write_bytes(
        (head + "metadata: {name: caf\xe9}\n").encode("latin-1")
    )
    r = CliRunner().invoke(cli, ["scaffold", "sync", "--check", "bad", "missing.yaml"])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.stderr.splitlines() if " PK001 " in ln]
    assert [ln.split(":")[0] for ln in lines] == ["missing.yaml", "bad/dup.yaml", "bad/latin1.yaml"]
    assert "templates in sync" not in r.stderr
