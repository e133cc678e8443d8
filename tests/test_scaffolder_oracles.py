"""Issue 17, proof with Backstage's own code: the synced templates pass
Backstage's Template validator, and for every mapped field the form (ajv with
ajv-errors, as Backstage's Stepper sets it up: tests/js/form.mjs) accepts a
value exactly when the catalog rules (the reference engine) accept the entity
the template creates from it; Backstage's catalog-model accepts those entities."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policykit.api import resolve
from policykit.engines.native import NativeEngine
from policykit.model import Document
from policykit.packs import load_packs
from policykit.scaffolder.drift import constraints
from policykit.scaffolder.mapping import map_template
from tests.conftest import NodeOracle

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = ROOT / "examples" / "platform"
TEMPLATE = PLATFORM / "templates" / "python-service.yaml"


class FormOracle(NodeOracle):
    script, package = "form.mjs", "ajv-errors"

    def validate(self, schema: Any, instances: list[Any]) -> list[tuple[bool, list[Any]]]:
        answer = self._ask({"schema": schema, "instances": instances})
        if isinstance(answer, dict):
            raise AssertionError(answer["error"])
        return [(bool(ok), errs) for ok, errs in answer]


@pytest.fixture(scope="module")
def form() -> Iterator[FormOracle]:
    oracle = FormOracle()
    yield oracle
    oracle.close()


def _step_schema(step: dict[str, Any]) -> dict[str, Any]:
    """A parameters step as the form validates it: ui:* keys go to the
    uiSchema (Backstage's extractSchemaFromStep), the rest is the schema."""

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if not str(k).startswith("ui:")}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    out = strip(step)
    out.pop("title", None)
    return {"type": "object", **out}


def _setup() -> tuple[dict[str, Any], Any, dict[str, Any], Any]:
    sel = resolve(paths=[str(PLATFORM)])
    packs = load_packs(sel.packs)
    tpl = yaml.safe_load(TEMPLATE.read_text())
    tm = map_template(tpl, TEMPLATE)
    return tpl, tm, sel.params, packs


GOOD = {"name": "svc-a", "owner": "group:default/platform", "costCenter": "CC-1001"}


def _entity(values: dict[str, Any], tm: Any) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": tm.kind,
        "metadata": {"name": "svc-a", "annotations": {}},
        "spec": {"type": tm.entity_type, "lifecycle": "production", "owner": "group:a"},
    }
    for m in tm.mapped:
        node = entity
        for seg in m.field[:-1]:
            node = node.setdefault(seg, {})
        node[m.field[-1]] = values[m.param]
    return entity


def test_synced_templates_pass_backstages_template_validator(backstage: Any) -> None:
    for f in sorted((PLATFORM / "templates").glob("*.yaml")):
        ok, why = backstage.validate(yaml.safe_load(f.read_text()))
        assert ok, (f.name, why)


def test_the_form_shows_the_rules_message(form: FormOracle) -> None:
    tpl, _, _, _ = _setup()
    schema = _step_schema(tpl["spec"]["parameters"][0])
    [(ok, errors)] = form.validate(schema, [{**GOOD, "costCenter": "CC-9"}])
    assert not ok
    assert {e["path"] for e in errors} == {"/costCenter"}
    assert all(e["message"].startswith("CATALOG-012: ") for e in errors), errors


_TEXT = st.text(alphabet="abcAZ09-_.:/ é\nCC", max_size=70)


def _values(field: str, schema: dict[str, Any]) -> st.SearchStrategy[str]:
    prop = schema["properties"][field]
    options: list[st.SearchStrategy[str]] = [_TEXT]
    if "pattern" in prop:
        options.append(st.from_regex(prop["pattern"].replace("$", r"\Z"), fullmatch=True))
    if "enum" in prop:
        options.append(st.sampled_from(prop["enum"]))
    options.append(st.sampled_from(["a" * 63, "a" * 64, "group:x", "user:default/x", "x:y", ""]))
    return st.one_of(options)


@pytest.mark.parametrize("field", ["name", "owner", "costCenter"])
def test_form_verdicts_equal_rule_verdicts(form: FormOracle, backstage: Any, field: str) -> None:
    tpl, tm, params, packs = _setup()
    schema = _step_schema(tpl["spec"]["parameters"][0])
    (m,) = [m for m in tm.mapped if m.param == field]
    rules = {c.rule.id for c in constraints(packs, params) if c.field == m.field}
    assert rules, field
    engine = NativeEngine([p for p in packs if p.name == "catalog"], params)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_values(field, schema))
    def check(value: str) -> None:
        values = {**GOOD, field: value}
        [(ok, errors)] = form.validate(schema, [values])
        form_ok = not any(e["path"] == f"/{field}" for e in errors)
        entity = _entity(values, tm)
        fired = {
            f.rule
            for f in engine.evaluate_all([Document(entity, "x.yaml", 0, 1)])
            if f.rule in rules
        }
        assert form_ok == (not fired), (value, errors, fired)
        if ok:  # everything the form accepts: a valid entity for Backstage too
            accepted, why = backstage.validate(entity)
            assert accepted, (value, why)

    check()
