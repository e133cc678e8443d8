"""``verify`` at scale (issue 21, item 5): real OPA runs every object, regopy a
seeded sample, and the report says so; a disagreement outside the sample is
still found; Gatekeeper templates in one real-OPA query give the per-object
violations; the same input gives the same JSON, byte for byte."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT

PACKS = ["policykit.packs.starter"]


def _docs(n: int) -> list[Any]:
    from benchmarks.generate import component, deployment
    from policykit.loader import load_text

    rng = random.Random(5)
    docs = []
    for i in range(n // 2):
        for text, kind in ((component(rng, i), "c"), (deployment(rng, i), "d")):
            docs += load_text(text, f"repo/{kind}-{i}.yaml").documents
    return docs


def _opa() -> None:
    from policykit.engines.rego import EngineUnavailable, load_opa

    try:
        load_opa()
    except EngineUnavailable:
        pytest.skip("real OPA is not installed (python -m policykit.engines.opa_install)")


def test_sample_is_seeded_spread_and_in_order() -> None:
    from policykit.verify_core import sample_of

    docs = _docs(1000)
    picked = sample_of(docs, 500)
    assert len(picked) == 500 and picked == sample_of(docs, 500)  # the same every time
    at = [docs.index(d) for d in picked]
    assert at == sorted(at)  # in the run's order
    # both kinds: a stride of 2 over alternating kinds would give one kind only
    assert {d.source for d in picked} == {"kubernetes", "backstage"}
    assert sample_of(docs, 0) == docs and sample_of(docs[:10], 500) == docs[:10]


def test_a_disagreement_outside_the_regopy_sample_is_found_by_opa(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """600 objects (above the sample): the reference is made to miss the
    findings of one Deployment regopy does not run; real OPA (the opa target
    and the Gatekeeper templates) runs every object and reports it."""
    _opa()
    from policykit.api.verifying import VerifyResult
    from policykit.engines.native import NativeEngine
    from policykit.packs import load_packs
    from policykit.verify import verify
    from policykit.verify_core import sample_of

    packs = load_packs(PACKS)
    docs = _docs(600)
    inside = {id(d) for d in sample_of(docs, 500)}
    native = NativeEngine(packs, {})
    planted = next(
        d for d in docs if id(d) not in inside and d.source == "kubernetes" and native.evaluate(d)
    )
    real = NativeEngine.evaluate

    def lossy(self: NativeEngine, doc: Any) -> Any:
        return [] if doc is planted else real(self, doc)

    monkeypatch.setattr(NativeEngine, "evaluate", lossy)
    report = verify(packs, {}, docs, ["rego", "opa", "gatekeeper"], jobs=1)
    where = {(m.target, m.file) for m in report.mismatches}
    assert ("opa", planted.file) in where
    assert ("gatekeeper", planted.file) in where
    assert {m.file for m in report.mismatches} == {planted.file}
    assert not [m for m in report.mismatches if m.target == "rego"]  # not in regopy's sample
    assert report.compared["rego"] == 500 and report.compared["opa"] == 600
    assert report.compared["gatekeeper"] == 300  # real OPA: every Deployment
    gk = report.sampled["gatekeeper"]
    assert (report.sampled["rego"].objects, report.sampled["rego"].of) == (500, 600)
    assert gk.engine == "regopy" and gk.of == 300 and 0 < gk.objects < 300
    result = VerifyResult(report, packs, [], {})
    assert result.to_json()["sampled"]["rego"] == {"engine": "regopy", "objects": 500, "of": 600}
    assert "regopy: a sample of 500 of 600 objects (real OPA ran every object)" in result.table()


def test_without_opa_regopy_runs_every_object() -> None:
    from policykit.packs import load_packs
    from policykit.verify import verify

    docs = _docs(520)
    report = verify(load_packs(PACKS), {}, docs, ["rego"], jobs=1)
    assert report.compared["rego"] == 520 and not report.sampled and report.ok


@pytest.mark.slow
def test_gatekeeper_templates_in_one_query_give_the_per_object_violations() -> None:
    """examples/platform (cross-object rules and data.inventory included):
    every template in one OPA engine, objects in one query, against one
    template and one object per query (``TemplateRunner``, as ``--oracle``)."""
    _opa()
    from policykit.api import resolve
    from policykit.k8s import gatekeeper as gk
    from policykit.k8s import validating as admission
    from policykit.loader import load_paths
    from policykit.packs import load_packs
    from policykit.targets import gatekeeper as gk_target
    from policykit.verify_core import is_admitted
    from policykit.verify_gatekeeper import TemplatesBatch

    platform = ROOT / "examples" / "platform"
    sel = resolve(paths=[str(platform)])
    packs = load_packs(sel.packs, platform)
    docs = [d for d in load_paths(sel.paths).documents if is_admitted(d)]
    from policykit.engines.native import NativeEngine

    files, _ = gk_target.build(packs, NativeEngine(packs, sel.params).effective_params)
    pairs = [
        (t, c)
        for name, items in sorted(files.items())
        if name.startswith("templates/")
        for t, c in zip(items, files["constraints/" + name.split("/", 1)[1]], strict=True)
    ]
    inventory = gk.inventory_of([d.obj for d in docs])
    batch = TemplatesBatch(pairs, inventory)
    assert batch.ok and len(pairs) > 3
    got = batch.messages([d.obj for d in docs])
    assert got is not None
    runners = [gk.TemplateRunner(t, "opa") for t, _ in pairs]
    fired = 0
    for d, per in zip(docs, got, strict=True):
        for r, (_, c), msgs in zip(runners, pairs, per, strict=True):
            want = sorted(v.message for v in gk.evaluate(r, c, d.obj, inventory=inventory))
            assert sorted(map(str, msgs or [])) == want, (d.file, admission.rule_of(c))
            fired += len(want)
    assert fired  # something to compare


def _twice() -> None:
    """In a fresh interpreter: real OPA not started, so the pool runs it too."""
    from policykit.api.verifying import VerifyResult
    from policykit.packs import load_packs
    from policykit.verify import TARGETS, verify

    packs = load_packs(PACKS)
    docs = _docs(560)
    out = []
    for jobs in (2, 1, 2):
        report = verify(packs, {}, docs, TARGETS, jobs=jobs, sample=40)
        out.append(json.dumps(VerifyResult(report, packs, [], {}).to_json(), indent=2))
        out.append(json.dumps(report.checked))
    print(json.dumps(out))


@pytest.mark.slow
def test_the_same_input_gives_the_same_json_pooled_or_not() -> None:
    _opa()
    code = "from tests.test_verify_sample import _twice; _twice()"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    pooled, pooled_checked, serial, serial_checked, again, again_checked = json.loads(out)
    assert pooled == serial == again
    assert pooled_checked == serial_checked == again_checked
    doc = json.loads(serial)
    assert doc["sampled"]["rego"] == {"engine": "regopy", "objects": 40, "of": 560}


def test_a_large_run_reads_its_files_on_every_core_in_their_order(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``policykit verify`` over 300 files reads them in a pool
    (``policykit.parallel``): the same objects, the same order, the same input
    errors as reading them here."""
    from benchmarks.generate import deployment
    from policykit import parallel
    from policykit.api.verifying import VerifyConfig, verify

    rng = random.Random(9)
    for i in range(300):
        (tmp_path / f"d{i:03}.yaml").write_text(deployment(rng, i))
    (tmp_path / "d150b.yaml").write_text("kind: [unclosed\n")
    config = VerifyConfig(
        paths=(str(tmp_path),), packs=("policykit.packs.starter",), targets=("jsonschema",)
    )
    read: list[bool] = []
    real = parallel.check

    def counted(*args: Any, **kwargs: Any) -> Any:
        read.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(parallel, "check", counted)
    monkeypatch.setattr(parallel, "default_jobs", lambda: 2)
    pooled = verify(config)
    monkeypatch.setattr(parallel, "worth_it", lambda entries, jobs: False)
    here = verify(config)
    assert read == [True]  # the first run read in the pool, the second here
    assert pooled.report.checked == here.report.checked
    assert len(pooled.report.checked) == 300
    assert [e.one_line() for e in pooled.errors] == [e.one_line() for e in here.errors]
    assert len(pooled.errors) == 1 and "d150b.yaml" in pooled.errors[0].one_line()
    assert pooled.to_json() == here.to_json()
