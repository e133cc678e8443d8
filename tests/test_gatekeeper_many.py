"""``check --policy``: a constraint over many objects in real OPA is one query
per batch of reviews (k8s/gatekeeper.py: evaluate_many), with exactly the
violations and errors of one query per object (evaluate)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from policykit.engines.rego import EngineUnavailable, load_opa
from policykit.errors import PolicykitError
from policykit.k8s import gatekeeper as gk
from tests.conftest import ROOT

try:
    load_opa()
except EngineUnavailable:  # pragma: no cover - CI installs it
    pytest.skip("real OPA is not installed", allow_module_level=True)

# A template of our own (not from a policy library; Rego v0, as a template's
# `rego` is): required labels, a
# message built with concat (a runtime error when the name is not a string:
# OPA evaluates with strict builtin errors), and a rule that reads the
# namespace object and the parameters.
TEMPLATE: dict[str, Any] = {
    "apiVersion": "templates.gatekeeper.sh/v1",
    "kind": "ConstraintTemplate",
    "metadata": {"name": "testlabels"},
    "spec": {
        "crd": {"spec": {"names": {"kind": "TestLabels"}}},
        "targets": [
            {
                "target": "admission.k8s.gatekeeper.sh",
                "rego": """package testlabels

violation[{"msg": msg, "details": {"missing": k}}] {
  k := input.parameters.labels[_]
  not input.review.object.metadata.labels[k]
  msg := concat("", [input.review.object.metadata.name, " lacks ", k])
}

violation[{"msg": "namespace is frozen"}] {
  input.review.namespaceObject.metadata.labels.frozen == "yes"
}
""",
            }
        ],
    },
}


def _constraint(labels: list[str], kinds: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "TestLabels",
        "metadata": {"name": "need-labels"},
        "spec": {
            "match": {"kinds": [{"apiGroups": ["*"], "kinds": kinds}]},
            "parameters": {"labels": labels},
        },
    }


def _object(i: int, name: Any, labels: dict[str, str], kind: str, ns: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if ns is not None:
        meta["namespace"] = ns
    api = "apps/v1" if kind == "Deployment" else "v1"
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": {"i": i}}


NAMESPACES = {
    "frozen": {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "frozen", "labels": {"frozen": "yes"}},
    },
    "open": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "open", "labels": {}}},
}


def _one_by_one(
    runner: gk.TemplateRunner, constraint: Any, objs: list[Any], nss: list[Any]
) -> list[Any]:
    out: list[Any] = []
    for obj, ns in zip(objs, nss, strict=True):
        try:
            out.append(gk.evaluate(runner, constraint, obj, namespace_object=ns))
        except PolicykitError as exc:
            out.append(("error", type(exc).__name__, exc.message))
    return out


def _plain(results: list[Any]) -> list[Any]:
    return [
        ("error", type(r).__name__, r.message) if isinstance(r, PolicykitError) else r
        for r in results
    ]


objects_st = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(["a", "b", "web-1"]), st.integers(0, 3)),  # an int name errors
        st.dictionaries(st.sampled_from(["team", "app", "tier"]), st.just("x"), max_size=3),
        st.sampled_from(["Deployment", "Pod", "ConfigMap"]),
        st.sampled_from([None, "frozen", "open", "missing"]),
    ),
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(
    objects_st,
    st.lists(st.sampled_from(["team", "app"]), max_size=2, unique=True),
    st.sampled_from([["Deployment"], ["Deployment", "Pod"], ["*"]]),
)
def test_a_batch_gives_what_one_query_per_object_gives(
    rows: list[Any], labels: list[str], kinds: list[str]
) -> None:
    runner = gk.TemplateRunner(TEMPLATE, "opa")
    constraint = _constraint(labels, kinds)
    objs = [_object(i, *row[:3], row[3]) for i, row in enumerate(rows)]
    nss = [NAMESPACES.get(str(row[3])) for row in rows]
    assert _plain(gk.evaluate_many(runner, constraint, objs, nss)) == _one_by_one(
        runner, constraint, objs, nss
    )


def test_one_query_per_batch_and_an_error_stays_with_its_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = gk.TemplateRunner(TEMPLATE, "opa")
    constraint = _constraint(["team"], ["Deployment"])
    n = gk.CHUNK + 50
    objs = [
        _object(i, f"d{i}", {} if i % 3 else {"team": "x"}, "Deployment", None) for i in range(n)
    ]
    objs[7]["metadata"]["name"] = 7  # concat fails on this one only
    engine, _ = runner._prepare(None)
    calls: list[str] = []
    real = engine.eval_document

    def counted(path: str, doc: Any = None) -> Any:
        calls.append(path)
        return real(path, doc)

    monkeypatch.setattr(engine, "eval_document", counted)
    got = gk.evaluate_many(runner, constraint, objs, [None] * n)
    # the first batch fails on object 7: asked again one review at a time
    assert calls.count("policykit_many.batch") == 2
    assert calls.count("testlabels.violation") == gk.CHUNK
    assert isinstance(got[7], PolicykitError) and "concat" in got[7].message
    assert got[1] == [gk.Violation("need-labels", "deny", "d1 lacks team", {"missing": "team"})]
    assert got[3] == []  # it has the label
    calls.clear()
    monkeypatch.setattr(engine, "eval_document", counted)
    objs[7]["metadata"]["name"] = "d7"
    again = gk.evaluate_many(runner, constraint, objs, [None] * n)
    assert calls == ["policykit_many.batch", "policykit_many.batch"]
    assert _plain(again) == _one_by_one(runner, constraint, objs, [None] * n)


def test_regopy_asks_one_review_at_a_time() -> None:
    runner = gk.TemplateRunner(TEMPLATE, "rego")
    constraint = _constraint(["team"], ["Deployment"])
    objs = [_object(i, f"d{i}", {}, "Deployment", None) for i in range(3)]
    assert runner.violations_many([], {}, None) is None
    assert _plain(gk.evaluate_many(runner, constraint, objs, [None] * 3)) == _one_by_one(
        runner, constraint, objs, [None] * 3
    )


@pytest.mark.parametrize(
    ("text", "reads"),
    [
        ("x := data.inventory.namespace", True),
        ("import data.inventory as inv", True),
        ('x := data["inventory"]', True),
        ("import data as d\nx := d[k]", True),
        ("x := walk(data, p)", True),
        ("cm := input.review.object.data[k]", True),  # harmless: a ConfigMap's data
        ("import data.lib.pk.labels\nx := input.review.object.metadata.name", False),
        ("x := data.lib.values.render(input.parameters.keys)", False),
    ],
)
def test_which_templates_may_read_the_inventory(text: str, reads: bool) -> None:
    assert bool(gk._MAY_READ_INVENTORY.search(text)) is reads


def test_a_template_that_cannot_read_the_inventory_is_not_given_it() -> None:
    """Its engine is built once, without a copy of ``data.inventory``; one that
    reads it is built with it."""
    fix = ROOT / "tests/fixtures/thirdparty/gator"
    labels = gk.TemplateRunner(yaml.safe_load((fix / "labels/template.yaml").read_text()), "opa")
    unique = gk.TemplateRunner(yaml.safe_load((fix / "unique/template.yaml").read_text()), "opa")
    assert (labels.reads_inventory, unique.reads_inventory) == (False, True)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}
    inventory = gk.inventory_of([namespace])
    labels.violations_many([], {}, inventory)
    unique.violations_many([], {}, inventory)
    assert list(labels._compiled) == [""]
    assert len(unique._compiled) == 2  # without (built first) and with the inventory
