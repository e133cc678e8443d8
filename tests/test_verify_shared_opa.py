"""``verify``'s two real-OPA runners share one engine (issue 21, item 5): the
``opa`` target's bundle and the Gatekeeper templates are evaluated in one
query per chunk, each object sent to OPA once; the report is the one the two
runners give apart, and when the shared engine cannot run, the two run apart
(reporting errors as before). The templates' harness evaluates the
constraints that can share an input (equal parameters, or a template that
reads none) under one ``with input as`` and leaves out what ``spec.match``
does not select; regopy's template bundles are built once per
content; the pool's slices are even."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from tests.verify_corpus import generated_docs, plain

PACKS = ["policykit.packs.starter"]


def _opa() -> None:
    from policykit.engines.rego import EngineUnavailable, load_opa

    try:
        load_opa()
    except EngineUnavailable:
        pytest.skip("real OPA is not installed (python -m policykit.engines.opa_install)")


def _lossy(docs: list[Any]) -> Any:
    """A reference that misses the findings of two Deployments and reports
    one of its own on a third: mismatches both real-OPA runners must find."""
    from policykit.engines.native import NativeEngine
    from policykit.packs import load_packs

    real = NativeEngine.evaluate
    native = NativeEngine(load_packs(PACKS), {})
    hit = [d for d in docs if d.source == "kubernetes" and native.evaluate(d)]
    missed, extra = {id(hit[0]), id(hit[5])}, hit[9]

    def evaluate(self: NativeEngine, doc: Any) -> Any:
        found = real(self, doc)
        if id(doc) in missed:
            return []
        if doc is extra:
            return [*found, dataclasses.replace(found[0], message="planted")]
        return found

    return evaluate


@pytest.fixture
def lossy(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    docs = generated_docs(560, 11)
    monkeypatch.setattr("policykit.engines.native.NativeEngine.evaluate", _lossy(docs))
    return docs


def _verify(docs: list[Any], **kw: Any) -> Any:
    from policykit.packs import load_packs
    from policykit.verify import verify

    return verify(load_packs(PACKS), {}, docs, ["opa", "gatekeeper"], jobs=1, sample=40, **kw)


def _apart(monkeypatch: pytest.MonkeyPatch) -> None:
    import policykit.verify as verify_module

    monkeypatch.setattr(verify_module, "shared", lambda run: False)


def test_each_object_goes_to_opa_once_and_the_report_is_the_one_apart(
    lossy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _opa()
    from policykit.engines.rego import load_opa

    engine = load_opa().OpaEngine
    sent: list[tuple[str, int]] = []
    real = engine.eval_document

    def counted(self: Any, path: str, input: Any = None, **kw: Any) -> Any:
        if isinstance(input, dict) and input.get("objects"):
            sent.append((path, len(input["objects"])))
        return real(self, path, input, **kw)

    monkeypatch.setattr(engine, "eval_document", counted)
    shared = _verify(lossy)
    assert {p for p, _ in sent} == {"policykit_verify_joint.out"}
    assert sum(n for _, n in sent) == len(lossy) == 560  # once each, 500 per query
    assert [n for _, n in sent] == [500, 60]
    sent.clear()
    _apart(monkeypatch)
    apart = _verify(lossy)
    assert sum(n for _, n in sent) == 560 + 280  # the bundle's, then the Deployments again
    assert plain(shared) == plain(apart)
    where = {(m.target, m.rule) for m in shared.mismatches}
    assert {t for t, _ in where} == {"opa", "gatekeeper"}  # both saw the planted ones
    assert shared.compared["opa"] == 560 and shared.compared["gatekeeper"] == 280


@pytest.mark.parametrize("failure", ["query", "build"])
def test_when_the_shared_engine_cannot_run_the_runners_run_apart(
    lossy: Any, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """OPA failing on a chunk, or the bundle and the templates unable to share
    an engine: the ``opa`` and Gatekeeper runners run as they do alone
    (Gatekeeper's batch, then one object per query if that fails too)."""
    _opa()
    import policykit.verify as verify_module
    from policykit import verify_gatekeeper
    from policykit.errors import PolicykitError
    from policykit.verify_targets import shared as together

    _apart(monkeypatch)
    want = plain(_verify(lossy))
    monkeypatch.setattr(verify_module, "shared", together)
    batches: list[int] = []
    real_batch = verify_gatekeeper.TemplatesBatch.messages

    def counted(self: Any, objs: Any) -> Any:
        batches.append(len(objs))
        return real_batch(self, objs)

    monkeypatch.setattr(verify_gatekeeper.TemplatesBatch, "messages", counted)
    if failure == "query":
        monkeypatch.setattr(verify_gatekeeper.Joint, "run", lambda self, docs, admitted: None)
    else:

        def refuse(self: Any, *args: Any) -> None:
            raise PolicykitError("OPA rejects the generated Rego: conflicting rules")

        monkeypatch.setattr(verify_gatekeeper.Joint, "__init__", refuse)
    assert plain(_verify(lossy)) == want
    assert batches == [280]  # Gatekeeper's own batch ran every Deployment


def _starter_pairs() -> list[tuple[Any, Any]]:
    from policykit.engines.native import NativeEngine
    from policykit.packs import load_packs
    from policykit.targets import gatekeeper as gk_target

    packs = load_packs(PACKS)
    files, _ = gk_target.build(packs, NativeEngine(packs, {}).effective_params)
    return [
        (t, c)
        for name, items in sorted(files.items())
        if name.startswith("templates/")
        for t, c in zip(items, files["constraints/" + name.split("/", 1)[1]], strict=True)
    ]


def _renamed(pair: tuple[Any, Any], name: str, parameters: Any) -> tuple[Any, Any]:
    """The same template under another package and kind, with its own constraint."""
    template, constraint = copy.deepcopy(pair)
    code = template["spec"]["targets"][0]["code"][0]["source"]
    code["rego"] = code["rego"].replace(
        f"package {template['metadata']['name']}\n", f"package {name}\n"
    )
    template["metadata"]["name"] = name
    template["spec"]["crd"]["spec"]["names"]["kind"] = constraint["kind"] = name.title()
    constraint["metadata"]["name"] = name
    constraint["spec"]["parameters"] = parameters
    return template, constraint


def test_constraints_with_equal_parameters_share_a_review_and_match_is_kept() -> None:
    """Templates grouped by their constraints' parameters give, object by
    object, what one template and one object per query give (``--oracle``):
    each constraint's parameters reach its template only (the three that read
    none share K8S-004's input), and a constraint whose ``spec.match`` leaves
    an object out gives None."""
    _opa()
    from policykit.k8s import gatekeeper as gk
    from policykit.verify_gatekeeper import _DATA, TemplatesBatch

    pairs, labels, plain = _grouped_pairs()
    batch = TemplatesBatch(pairs, None)
    assert batch.ok
    assert batch.templates.groups == [sorted(plain + labels), [4], [5]]
    assert batch.templates.data[_DATA] == [
        pairs[labels[0]][1]["spec"]["parameters"], pairs[4][1]["spec"]["parameters"], {},
    ]  # fmt: skip
    objs = [d.obj for d in generated_docs(120, 11) if d.source == "kubernetes"]
    got = batch.messages(objs)
    assert got is not None
    runners = [gk.TemplateRunner(t, "opa") for t, _ in pairs]
    left_out = 0
    fired = [0] * len(pairs)
    for obj, per in zip(objs, got, strict=True):
        for i, (r, (_, c), msgs) in enumerate(zip(runners, pairs, per, strict=True)):
            want = [v.message for v in gk.evaluate(r, c, obj)]
            if msgs is None:
                left_out += 1
                assert not gk.match(c["spec"].get("match"), obj, None)
            assert sorted(map(str, msgs or [])) == sorted(want)
            fired[i] += len(want)
    assert left_out == len(objs) // 2
    assert fired[4] == len(objs) and fired[labels[0]] < len(objs)  # its own labels
    assert fired[5] == 0  # no required labels: nothing lacks one


def test_slices_are_even_and_never_tiny() -> None:
    from policykit.verify import SLICE_MIN, slices

    for n in (0, 1, 249, 250, 252, 499, 500, 501, 999, 1000, 1001, 10_000):
        for workers in (1, 2, 3, 8):
            got = slices(n, workers)
            if not n:
                assert got == []
                continue
            assert [lo for lo, _ in got] == [0] + [hi for _, hi in got[:-1]]
            assert got[-1][1] == n and len(got) <= workers * 2
            sizes = [hi - lo for lo, hi in got]
            assert max(sizes) - min(sizes) <= 1
            assert len(got) == 1 or min(sizes) >= SLICE_MIN
    assert slices(252, 2) == [(0, 252)]  # not 250 + 2: one process builds its runner


def test_regopy_template_bundles_are_built_once_per_content(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import regopy

    from policykit.k8s import gatekeeper as gk

    (template, constraint), (other, _) = _starter_pairs()[:2]
    built: list[bool] = []
    real = regopy.Interpreter.build

    def counted(self: Any, *args: Any) -> Any:
        built.append(True)
        return real(self, *args)

    monkeypatch.setattr(regopy.Interpreter, "build", counted)
    monkeypatch.setattr(gk, "_BUNDLES", {})
    first = gk.TemplateRunner(template, "rego")
    again = gk.TemplateRunner(copy.deepcopy(template), "rego")
    assert len(built) == 1
    gk.TemplateRunner(other, "rego")
    assert len(built) == 2  # another template: its own bundle
    obj = next(d.obj for d in generated_docs(40, 11) if d.source == "kubernetes")
    bad = copy.deepcopy(obj)
    bad["spec"]["template"]["spec"]["containers"][0].pop("resources", None)
    for o in (obj, bad):
        assert gk.evaluate(first, constraint, o) == gk.evaluate(again, constraint, o)
    assert gk.evaluate(again, constraint, bad)  # something to compare


@pytest.mark.slow
def test_the_shared_engine_on_the_platform_with_its_inventory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """examples/platform: cross-object rules (the bundle's inventory, one
    query for the run) and Gatekeeper's ``data.inventory`` in one engine give
    the report of the two runners apart."""
    _opa()
    from policykit.api import resolve
    from policykit.loader import load_paths
    from policykit.packs import load_packs
    from policykit.verify import verify
    from tests.conftest import ROOT

    platform = ROOT / "examples" / "platform"
    sel = resolve(paths=[str(platform)])
    packs = load_packs(sel.packs, platform)
    docs = load_paths(sel.paths, include=sel.include, exclude=sel.exclude).documents
    from policykit.verify_gatekeeper import Joint

    sent: list[bool] = []

    real = Joint.run

    def counted(self: Joint, docs: Any, admitted: Any) -> Any:
        sent.append(self.engine.inventory is not None)
        return real(self, docs, admitted)

    monkeypatch.setattr(Joint, "run", counted)
    shared = verify(packs, sel.params, docs, ["opa", "gatekeeper"], jobs=1, sample=10)
    assert sent == [True]  # the whole run in one query, with the inventory
    _apart(monkeypatch)
    apart = verify(packs, sel.params, docs, ["opa", "gatekeeper"], jobs=1, sample=10)
    assert plain(shared) == plain(apart)
    assert shared.ok and shared.compared["opa"] == len(docs)
    assert 0 < shared.compared["gatekeeper"] < len(docs)


def _grouped_pairs() -> tuple[list[tuple[Any, Any]], list[int], list[int]]:
    """The starter templates, the first selecting prod-apps only, and K8S-004's
    template twice more: with other parameters, and with none (the parameters
    of the three others)."""
    pairs = copy.deepcopy(_starter_pairs())
    labels = [i for i, (_, c) in enumerate(pairs) if c["spec"].get("parameters")]
    assert len(pairs) == 4 and len(labels) == 1  # K8S-004: required_labels
    pairs[0][1]["spec"]["match"]["namespaces"] = ["prod-apps"]  # half the Deployments
    pairs.append(_renamed(pairs[labels[0]], "pktwin", {"required_labels": ["team", "tier"]}))
    pairs.append(_renamed(pairs[labels[0]], "pkbare", {}))  # reads no required_labels
    return pairs, labels, [i for i in range(4) if i not in labels]


def test_regopy_runs_a_group_of_templates_in_one_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """The templates whose constraints can share an input share one regopy
    query per object; what each constraint gives is what one template and one
    object per query give, and none for one whose ``spec.match`` leaves the
    object out (its runner is never built); a group query that fails runs
    template by template."""
    import regopy

    from policykit.k8s import gatekeeper as gk
    from policykit.verify_gatekeeper import RegopyGroups

    pairs, labels, plain = _grouped_pairs()
    groups = RegopyGroups(pairs, lambda c: None)
    assert [m for m, _, _ in groups.groups] == [sorted(plain + labels)]
    assert set(groups._runners) == {4, 5}  # a group's own runners: when needed
    queries: list[bool] = []
    real = regopy.Interpreter.query_bundle_entrypoint

    def counted(self: Any, *args: Any) -> Any:
        queries.append(True)
        return real(self, *args)

    monkeypatch.setattr(regopy.Interpreter, "query_bundle_entrypoint", counted)
    runners = [gk.TemplateRunner(t, "rego") for t, _ in pairs]
    objs = [d.obj for d in generated_docs(60, 11) if d.source == "kubernetes"]
    fired = [0] * len(pairs)
    for obj in objs:
        queries.clear()
        got = groups.messages(obj)
        assert len(queries) == 3  # the group (with K8S-004), the twin, the bare
        queries.clear()
        for i, (r, (_, c)) in enumerate(zip(runners, pairs, strict=True)):
            want = [v.message for v in gk.evaluate(r, c, obj)]
            assert sorted(got[i]) == sorted(want)
            fired[i] += len(want)
    assert fired[4] == len(objs) and fired[5] == 0 and 0 < fired[labels[0]] < len(objs)
    assert sum(fired[i] for i in plain)  # something to compare in the group
    assert set(groups._runners) == {4, 5}  # no object needed a group's own
    monkeypatch.setattr(groups, "_query", lambda bundle, doc: None)  # regopy fails on it
    for obj in objs[:6]:
        each = [gk.evaluate(r, c, obj) for r, (_, c) in zip(runners, pairs, strict=True)]
        assert [sorted(m) for m in groups.messages(obj)] == [
            sorted(v.message for v in e) for e in each
        ]


def test_a_template_that_reads_no_parameters_joins_the_first_group() -> None:
    """Constraints share an input when their parameters are equal; one whose
    template never reads them (a policykit template without ``parameters`` in
    its Rego) joins the first group, whatever its own parameters; a template
    policykit did not generate is taken to read them."""
    from policykit.k8s import gatekeeper as gk
    from policykit.verify_gatekeeper import _sees_parameters, parameter_groups

    def c(params: Any) -> dict[str, Any]:
        return {"spec": {"parameters": params}} if params is not None else {"spec": {}}

    cs = [c({"a": 1}), c(None), c({"a": 2}), c({"a": 1}), c({"b": 1})]
    sees = [True, False, True, True, False]
    assert parameter_groups(cs, sees) == [([0, 1, 3, 4], {"a": 1}), ([2], {"a": 2})]
    assert parameter_groups(cs, [True] * 5) == [
        ([0, 3], {"a": 1}), ([1], {}), ([2], {"a": 2}), ([4], {"b": 1}),
    ]  # fmt: skip
    assert parameter_groups(cs[1:2] + cs[4:], [False, False]) == [([0, 1], {})]
    assert parameter_groups([], []) == []
    pairs, _, plain = _grouped_pairs()
    sees = [_sees_parameters(t, gk.template_source(t)) for t, _ in pairs]
    assert sees == [i not in plain for i in range(6)]
    foreign = copy.deepcopy(pairs[plain[0]][0])
    foreign["metadata"]["labels"].pop("app.kubernetes.io/managed-by")
    assert _sees_parameters(foreign, gk.template_source(foreign))


def test_a_shipped_template_reads_of_its_input_the_review_and_its_parameters_only() -> None:
    """What ``_sees_parameters`` relies on: every Gatekeeper template of the
    shipped packs (and the example's) reads ``input.review`` and
    ``input.parameters`` only, so one that never names ``input.parameters``
    gives the same result whatever parameters its input carries."""
    import re

    from policykit.config import load_config_file
    from policykit.engines.native import NativeEngine
    from policykit.k8s import gatekeeper as gk
    from policykit.packs import load_packs
    from policykit.targets import gatekeeper as gk_target
    from policykit.verify_gatekeeper import _sees_parameters
    from tests.conftest import ROOT

    cfg = load_config_file(ROOT / "examples" / "platform" / "policykit.yaml")
    runs = [
        (["policykit.packs.starter", "examples/packs/acme.py"], {}),
        (list(cfg.packs), cfg.params),
    ]
    seen = {True: 0, False: 0}
    for names, params in runs:
        packs = load_packs([str(ROOT / n) if n.endswith(".py") else n for n in names])
        files, _ = gk_target.build(packs, NativeEngine(packs, params).effective_params)
        for name, items in files.items():
            for t in items if name.startswith("templates/") else ():
                texts = gk.template_source(t).modules.values()
                reads = {m for text in texts for m in re.findall(r"\binput\b(?:\.\w+)?", text)}
                assert reads <= {"input.review", "input.parameters"}, (t["metadata"], reads)
                sees = _sees_parameters(t, gk.template_source(t))
                assert sees == ("input.parameters" in reads), t["metadata"]["name"]
                seen[sees] += 1
    assert seen[True] and seen[False]  # both kinds are there
