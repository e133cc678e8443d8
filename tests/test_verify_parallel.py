"""``verify`` with its targets in a pool of processes gives the serial report
(issue 21, item 5): the same objects compared, the same order of checks, the
same mismatches."""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT

PACKS = ["policykit.packs.starter", "policykit.packs.catalog"]


class _Phases:
    def __init__(self) -> None:
        self.names: list[str] = []

    def phase(self, name: str, total: int | None) -> None:
        self.names.append(name)

    def advance(self, n: int = 1) -> None:
        pass


def _plain(report: Any) -> dict[str, Any]:
    return {
        "objects": report.objects,
        "compared": dict(report.compared),
        "mismatches": [dataclasses.asdict(m) for m in report.mismatches],
        "left_out": report.left_out,
        "checked": report.checked,
    }


def _both_runs() -> None:
    """Run in a fresh interpreter (below), as a user's run is: the second run
    starts after real OPA has run for this process (its workers start their
    own OPA process)."""
    from benchmarks.generate import component, deployment
    from policykit.k8s import validating as admission
    from policykit.loader import load_text
    from policykit.packs import load_packs
    from policykit.verify import TARGETS, verify

    rng = random.Random(3)
    docs = []
    for i in range(30):
        for text, kind in ((component(rng, i), "c"), (deployment(rng, i), "d")):
            docs += load_text(text, f"repo/{kind}-{i}.yaml").documents
    # a VAP that misses what it should find on some objects: mismatches to compare
    real = admission.evaluate_vap

    def lossy(policy: Any, binding: Any, obj: Any, **kw: Any) -> Any:
        found = real(policy, binding, obj, **kw)
        return [] if obj["metadata"]["name"].endswith(("1", "3", "5", "7", "9")) else found

    admission.evaluate_vap = lossy
    packs = load_packs(PACKS)
    phases, again = _Phases(), _Phases()
    # real OPA not loaded: every target in a worker
    pooled = verify(packs, {}, docs, TARGETS, jobs=2, progress=phases)
    serial = verify(packs, {}, docs, TARGETS, jobs=1)
    # real OPA started by this process (in a process of its own): each worker
    # forked now starts its own, and rebuilds what it inherited
    from policykit.engines import opa_host

    assert opa_host._HOST is not None and "opa_bindings" not in sys.modules
    pooled_again = verify(packs, {}, docs, TARGETS, jobs=2, progress=again)
    print(
        json.dumps(
            {
                "serial": _plain(serial),
                "pooled": _plain(pooled),
                "pooled_again": _plain(pooled_again),
                "phases": [phases.names, again.names],
            },
            default=repr,
        )
    )


@pytest.mark.slow
def test_targets_in_a_pool_give_the_serial_report() -> None:
    code = "from tests.test_verify_parallel import _both_runs; _both_runs()"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    got = json.loads(out)
    serial, pooled = got["serial"], got["pooled"]
    for phases in got["phases"]:  # the pool ran, both times
        assert phases == ["reference", "rego, opa, gatekeeper, vap, kyverno, jsonschema"]
    assert set(serial["compared"]) == {"rego", "opa", "gatekeeper", "vap", "kyverno", "jsonschema"}
    assert [m for m in serial["mismatches"] if m["target"] == "vap"]  # the lossy VAP is seen
    assert {m["target"] for m in serial["mismatches"]} == {"vap"}
    assert pooled == serial
    assert got["pooled_again"] == serial


def test_regopy_queries_the_inventory_once() -> None:
    """The rego target runs the rules that read the inventory in one batch query
    with it and the others one object per query without it (per object, every
    query evaluated the join indexes again: most of verify's CPU on
    examples/platform); the report still agrees, FINOPS-008 included."""
    from policykit.api import resolve
    from policykit.engines.rego import RegopyEngine
    from policykit.loader import load_paths
    from policykit.packs import load_packs
    from policykit.verify import verify

    platform = ROOT / "examples" / "platform"
    sel = resolve(paths=[str(platform)])
    packs = load_packs(sel.packs, platform)
    docs = load_paths(sel.paths, include=sel.include, exclude=sel.exclude).documents
    queries: list[tuple[str, bool]] = []
    joined: list[Any] = []
    real = RegopyEngine._query

    def counted(self: RegopyEngine, entry: str, input_doc: Any) -> Any:
        queries.append((entry, self.inventory is not None))
        out = real(self, entry, input_doc)
        if entry == "batch":
            joined.extend(f["id"] for found in out for f in found)
        return out

    RegopyEngine._query = counted  # type: ignore[method-assign]
    try:
        report = verify(packs, sel.params, docs, ["rego"], jobs=1)
    finally:
        RegopyEngine._query = real  # type: ignore[method-assign]
    assert report.compared["rego"] == len(docs) and not report.mismatches
    assert ("batch", True) in queries and queries.count(("batch", True)) == 1
    assert queries.count(("violations", False)) == len(docs)
    assert not [q for q in queries if q[0] == "violations" and q[1]]
    assert {"FINOPS-008", "FINOPS-009"} <= set(joined)  # the joins found something to compare
