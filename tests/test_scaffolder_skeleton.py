"""Two ways a template parameter escaped the catalog rules without a word.

* A skeleton's ``catalog-info.yaml`` reading ``${{ values.name | dump }}``
  (Backstage's own samples do) or ``"CC-${{ values.cc }}"``: the parameter was
  neither mapped nor reported — ``scaffold sync`` wrote nothing, CATALOG-016
  said nothing and ``fields.json`` listed it nowhere.
* An ``each`` rule (CATALOG-005, tags): ``fields.json`` had no schema for the
  list, so the form accepted ``["Bad Tag"]`` that ``check`` then denied, and
  sync said the field was constrained by no rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from policykit.engines.native import NativeEngine
from policykit.ir.check import check_pack
from policykit.model import Document
from policykit.packs import load_packs
from policykit.scaffolder.drift import constraints, python_pattern, template_findings
from policykit.scaffolder.fields import Template, parameters_section
from policykit.scaffolder.mapping import map_template
from policykit.scaffolder.sync import sync_text
from policykit.targets.jsonschema import compile_pack, field_rules
from tests.test_scaffolder import _template as template_of

CC = ("metadata", "annotations", "policykit.dev/cost-center")
TAGS = ("metadata", "tags")


def _catalog() -> Any:
    (pack,) = load_packs(["policykit.packs.catalog"])
    return pack


def _template(props: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """A template whose one step fetches ``./skeleton`` with ``values``."""
    fetch = {
        "id": "fetch",
        "action": "fetch:template",
        "input": {"url": "./skeleton", "values": values},
    }
    return template_of(props, [fetch], list(props))


def _repo(tmp_path: Path, catalog_info: str, tpl: dict[str, Any]) -> Path:
    """A template file next to its ``skeleton/catalog-info.yaml``."""
    (tmp_path / "skeleton").mkdir()
    (tmp_path / "skeleton" / "catalog-info.yaml").write_text(catalog_info)
    f = tmp_path / "template.yaml"
    f.write_text(yaml.safe_dump(tpl, sort_keys=False))
    return f


SKELETON = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: NAME
  annotations:
    policykit.dev/cost-center: CC
spec:
  type: service
  owner: group:default/a
"""
PROPS = {"name": {"type": "string"}, "cc": {"type": "string"}, "about": {"type": "string"}}
VALUES = {
    "name": "${{ parameters.name }}",
    "cc": "${{ parameters.cc }}",
    "about": "${{ parameters.about }}",  # used by the README only
}


def _skeleton(name: str, cc: str) -> str:
    return SKELETON.replace("NAME", name).replace("CC", cc)


# --- defect A: a skeleton's dumped or embedded value ---------------------------------


@pytest.mark.parametrize(
    "expr",
    [
        "${{ values.name | dump }}",
        "${{values.name|dump}}",
        "${{  values['name']  |  dump  }}",
        "${{ values.name }}",
    ],
)
def test_a_dumped_value_fills_its_field_like_the_plain_one(tmp_path: Path, expr: str) -> None:
    """``dump`` JSON-encodes the value, which YAML reads back as the same
    value: the field holds the parameter itself."""
    f = _repo(tmp_path, _skeleton(expr, "${{ values.cc | dump }}"), _template(PROPS, VALUES))
    tm = map_template(yaml.safe_load(f.read_text()), f)
    assert {(m.param, m.field) for m in tm.mapped} == {
        ("name", ("metadata", "name")),
        ("cc", CC),
    }
    assert tm.unmapped == []


@pytest.mark.parametrize(
    "cc",
    ['"CC-${{ values.cc }}"', "${{ values.cc | upper }}", "${{ values.cc | dump(2) }}"],
)
def test_a_value_computed_in_the_skeleton_is_reported_not_dropped(tmp_path: Path, cc: str) -> None:
    f = _repo(tmp_path, _skeleton("${{ values.name | dump }}", cc), _template(PROPS, VALUES))
    tm = map_template(yaml.safe_load(f.read_text()), f)
    assert [m.param for m in tm.mapped] == ["name"]
    (u,) = tm.unmapped
    assert u.param == "cc"
    text = yaml.safe_load(cc)
    assert "computed in the skeleton" in u.reason
    assert f"metadata.annotations.policykit.dev/cost-center: {text!r}" in u.reason


def test_a_value_the_skeletons_catalog_info_never_reads_fills_no_field(tmp_path: Path) -> None:
    """``about`` goes to other skeleton files (a README): no entity field,
    nothing to report — as before."""
    f = _repo(tmp_path, _skeleton("${{ values.name }}", "CC-1001"), _template(PROPS, VALUES))
    tm = map_template(yaml.safe_load(f.read_text()), f)
    assert [m.param for m in tm.mapped] == ["name"]
    assert tm.unmapped == []


def test_an_unreadable_skeleton_is_reported(tmp_path: Path) -> None:
    """Two entities in catalog-info.yaml: not one mapping policykit reads, so
    every parameter passed to it is reported."""
    two = _skeleton("${{ values.name }}", "${{ values.cc }}") + "---\n" + SKELETON
    f = _repo(tmp_path, two, _template(PROPS, VALUES))
    tm = map_template(yaml.safe_load(f.read_text()), f)
    assert tm.mapped == []
    assert {u.param for u in tm.unmapped} == set(PROPS)
    assert all("not one YAML mapping" in u.reason for u in tm.unmapped)


def test_an_embedded_value_reaches_sync_catalog_016_and_fields_json(tmp_path: Path) -> None:
    """The unmapped parameter is in each of the three reports."""
    f = _repo(
        tmp_path,
        _skeleton("${{ values.name | dump }}", '"CC-${{ values.cc }}"'),
        _template(PROPS, VALUES),
    )
    packs = [_catalog()]
    text = f.read_text()
    synced = sync_text(text, f, packs, {})
    assert any("parameter cc not mapped: values.cc is computed" in n for n in synced.notes)
    tpl = yaml.safe_load(text)
    findings = template_findings(Document(tpl, f.as_posix(), 0, 1), constraints(packs, {}))
    assert any(x.severity == "info" and "parameter cc" in x.message for x in findings)
    tm = map_template(tpl, f)
    section = parameters_section([Template("template.yaml", tm)], packs[0], {})
    assert [u["parameter"] for u in section["unmapped_parameters"]] == ["cc"]
    assert "t#name" in section["parameters"]


# --- defect B: an each rule gives the list field an items schema ---------------------

TAGS_TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: t
spec:
  owner: group:a
  type: service
  parameters:
    - properties:
        tags:
          title: Tags
          type: array
          items:
            type: string
          x-policykit-field: metadata.tags
  steps: []
"""


def _rule(rule_id: str) -> Any:
    return next(r for r in _catalog().rules if r.id == rule_id)


def test_catalog_005_compiles_to_an_items_schema_of_metadata_tags() -> None:
    got = field_rules(_rule("CATALOG-005"), {})
    assert not isinstance(got, str), got
    (f,) = got
    assert f.segments == TAGS and f.required is False  # no tags: no finding
    items = f.schema["items"]
    assert items["maxLength"] == 63 and items["type"] == "string"
    # the message sits on the item, so ajv-errors' ${0} is the offending tag
    assert set(items["errorMessage"].values()) == {f.message}
    assert f.message.startswith("CATALOG-005: ") and "${0}" in f.message
    doc = compile_pack(_catalog(), check_pack(_catalog(), {})).fields()
    assert [e["rule"] for e in doc["fields"]["metadata.tags"]] == ["CATALOG-005"]
    assert "CATALOG-005" not in {e["rule"] for e in doc["not_fields"]}


def _ecma(schema: Any) -> Any:
    """``schema`` with patterns as ajv reads them (a bare ``$`` is the end)."""
    if isinstance(schema, dict):
        return {
            k: python_pattern(v) if k == "pattern" and isinstance(v, str) else _ecma(v)
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_ecma(v) for v in schema]
    return schema


def _synced_tags() -> tuple[dict[str, Any], list[str]]:
    """The tags parameter after ``scaffold sync`` (validation keywords only),
    and sync's notes."""
    r = sync_text(TAGS_TEMPLATE, Path("t.yaml"), [_catalog()], {})
    prop = yaml.safe_load(r.after)["spec"]["parameters"][0]["properties"]["tags"]
    schema = {k: v for k, v in prop.items() if not k.startswith(("ui:", "x-")) and k != "title"}
    return schema, r.notes


def test_sync_writes_the_tag_rule_into_the_tags_parameter() -> None:
    schema, notes = _synced_tags()
    assert not any("no rule constrains" in n for n in notes), notes
    form = Draft7Validator(_ecma(schema))
    assert form.is_valid(["good-tag", "java"])
    assert not form.is_valid(["Bad Tag"])
    assert not form.is_valid(["a" * 64])
    # a second sync changes nothing
    once = sync_text(TAGS_TEMPLATE, Path("t.yaml"), [_catalog()], {}).after
    assert sync_text(once, Path("t.yaml"), [_catalog()], {}).changed is False


def test_catalog_016_flags_a_tags_parameter_without_the_rule_and_not_once_synced() -> None:
    cons = constraints([_catalog()], {})
    before = yaml.safe_load(TAGS_TEMPLATE)
    findings = template_findings(Document(before, "-", 0, 1), cons)
    assert any("parameter tags" in x.message and "CATALOG-005" in x.message for x in findings)
    after = yaml.safe_load(sync_text(TAGS_TEMPLATE, Path("t.yaml"), [_catalog()], {}).after)
    assert template_findings(Document(after, "-", 0, 1), cons) == []


_TAG = st.one_of(
    st.text(alphabet="az09-:+#. A\n", max_size=8),
    st.from_regex(r"[a-z0-9:+#]{1,4}(-[a-z0-9:+#]{1,4}){0,2}", fullmatch=True),
    st.sampled_from(["a" * 63, "a" * 64, "a-", "-a", "a--b", "", "a\n", "java"]),
)


def test_the_form_and_catalog_005_agree_on_tag_lists() -> None:
    """What the synced form (draft-07, as rjsf's ajv) accepts is exactly what
    CATALOG-005 lets through on the created entity."""
    schema, _ = _synced_tags()
    form = Draft7Validator(_ecma(schema))
    engine = NativeEngine([_catalog()], {})

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(_TAG, max_size=4))
    def agree(tags: list[str]) -> None:
        entity = {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": "svc-a", "tags": tags},
            "spec": {"type": "service", "lifecycle": "production", "owner": "group:a"},
        }
        found = engine.evaluate_all([Document(entity, "x.yaml", 0, 1)])
        fired = any(f.rule == "CATALOG-005" for f in found)
        assert form.is_valid(tags) is not fired, (tags, [e.message for e in form.iter_errors(tags)])

    agree()


def test_the_form_names_catalog_005_at_the_bad_tag() -> None:
    """In ajv with ajv-errors (Backstage's form), the message is the rule's,
    at the offending item, with that item in it."""
    from tests.test_scaffolder_oracles import FormOracle

    schema, _ = _synced_tags()
    form = FormOracle()
    try:
        [(ok, errors), (good, _)] = form.validate(
            {"type": "object", "properties": {"tags": schema}},
            [{"tags": ["java", "Bad Tag"]}, {"tags": ["java", "a-b"]}],
        )
    finally:
        form.close()
    assert good and not ok
    assert [e["path"] for e in errors] == ["/tags/1"]
    assert errors[0]["message"].startswith('CATALOG-005: Entity has tag "Bad Tag": ')


def test_an_each_rule_the_form_cannot_carry_is_a_gap_named_with_why() -> None:
    """A rule comparing each tag with another field has no items schema: its
    field is listed as a gap with the reason (for sync's note), not dropped."""
    from policykit.dsl import PackBuilder, select
    from policykit.targets.jsonschema.fields import field_gaps

    b = PackBuilder("acme", "1.0.0")

    @b.rule(
        "ACME-1",
        title="no tag repeats the name",
        select=select(source="backstage"),
        message="{kind} has tag {t}",
        each=lambda o: o.metadata.tags,
    )
    def tag_not_name(o: Any, t: Any) -> object:
        return t == o.metadata.name

    (rule,) = b.build().rules
    assert isinstance(field_rules(rule, {}), str)
    (why,) = field_gaps(rule, {}).values()
    assert list(field_gaps(rule, {})) == [TAGS] and "each" in why
    assert field_gaps(_rule("CATALOG-005"), {}) == {}  # compiled: no gap


def test_check_skips_a_skeleton_and_still_checks_its_template(tmp_path: Path) -> None:
    """`policykit check templates` read skeleton/catalog-info.yaml as a real
    entity and denied its placeholders (CATALOG-001 on '${{ values.name | dump }}');
    a document holding ${{ }} expressions is skipped with why, a Template
    (whose steps hold them) is still checked, and so is an entity without."""
    from policykit.loader import SKELETON_REASON, load_text

    skeleton = (
        "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
        "metadata:\n  name: ${{ values.name | dump }}\n"
        "spec: {type: service, lifecycle: production, owner: '${{ values.owner }}'}\n"
        "---\napiVersion: backstage.io/v1alpha1\nkind: Component\n"
        "metadata: {name: plain}\nspec: {type: service, lifecycle: production, owner: team-a}\n"
        "---\napiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\n"
        "metadata: {name: t}\nspec:\n  steps:\n    - {id: a, input: {n: '${{ parameters.n }}'}}\n"
    )
    got = load_text(skeleton, "skeleton/catalog-info.yaml")
    assert [d.obj["metadata"]["name"] for d in got.documents] == ["plain", "t"]
    assert [(s.index, s.reason) for s in got.skipped] == [(0, SKELETON_REASON)]
    # never a Kubernetes object, nor an entity with a name: a ${{ github.sha }}
    # annotation must not hide a privileged Pod (fail open)
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n"
        "  annotations: {ci/note: 'built by ${{ github.sha }}'}\n"
        "spec: {containers: [{name: c, image: x, securityContext: {privileged: true}}]}\n"
        "---\napiVersion: backstage.io/v1alpha1\nkind: Component\n"
        "metadata: {name: real, description: '${{ not filled }}'}\nspec: {type: service}\n"
    )
    kept = load_text(pod, "ci.yaml")
    assert [d.obj["metadata"]["name"] for d in kept.documents] == ["p", "real"]
    assert not kept.skipped
    # a file without ${{ keeps every document
    plain = load_text(skeleton.replace("${{", "$ {{"), "catalog-info.yaml")
    assert len(plain.documents) == 3 and not plain.skipped
