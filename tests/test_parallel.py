"""``check --jobs``: a run on several processes reports exactly the serial run
(issue 21, item 2): findings, errors, skipped documents, JSON/JUnit bytes."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from benchmarks.bench_inventory import objects as workloads
from benchmarks.generate import component, deployment
from policykit import api, parallel
from policykit.cli.main import cli
from policykit.loader import Entry, plan

pytestmark = pytest.mark.skipif(not parallel.can_fork(), reason="no fork start method")


def _tree(root: Path, n: int = 60) -> Path:
    """Manifests and entities one per file, a multi-document file, a List, a
    skipped playbook, a malformed file and a missing path's worth of errors."""
    rng = random.Random(3)
    for i in range(n):
        folder = root / f"repo-{i % 7:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"c{i:03d}.yaml").write_text(component(rng, i))
        (folder / f"d{i:03d}.yaml").write_text(deployment(rng, i))
    inv = root / "inventory"
    inv.mkdir()
    for i, obj in enumerate(workloads(40)):
        (inv / f"w{i:03d}.yaml").write_text(yaml.safe_dump(obj))
    (inv / "multi.yaml").write_text(
        "\n---\n".join(yaml.safe_dump(o) for o in workloads(6, seed=11))
    )
    (root / "repo-03" / "list.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": workloads(3, seed=5)})
    )
    (root / "repo-04" / "playbook.yml").write_text("- hosts: all\n  tasks: []\n")
    (root / "repo-05" / "broken.yaml").write_text("apiVersion: v1\nkind: [\n")
    return root


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # a small tree, cut in many chunks: every merge path is taken
    monkeypatch.setattr(parallel, "MIN_FILES", 1)
    monkeypatch.setattr(parallel, "CHUNK_MAX", 5)
    monkeypatch.setattr(parallel, "MIN_OBJECTS_PER_TASK", 16)
    return _tree(tmp_path / "tree")


PACKS = [
    ["--pack", "policykit.packs.starter"],
    # FINOPS-008/009 read the whole inventory: parse in parallel, then evaluate
    ["--pack", "policykit.packs.finops", "--param", "finops.budgets={CC-1001: 1, CC-2002: 1}"],
]


@pytest.mark.parametrize("packs", PACKS, ids=["starter", "inventory"])
@pytest.mark.parametrize("fmt", ["json", "junit", "table"])
def test_jobs_give_the_serial_report(tree: Path, packs: list[str], fmt: str) -> None:
    runner = CliRunner()
    outs = []
    for jobs in ("1", "2", "3"):
        res = runner.invoke(
            cli, ["check", str(tree), "nowhere.yaml", *packs, "--format", fmt, "-j", jobs]
        )
        assert res.exit_code == 2, res.output  # the malformed file and the missing path
        outs.append((res.stdout, res.stderr))
    assert outs[0] == outs[1] == outs[2]
    assert "broken.yaml" in outs[0][1] and "nowhere.yaml" in outs[0][1]
    rule = "FINOPS-009" if "policykit.packs.finops" in packs else "CAT-001"
    assert rule in outs[0][0]


def test_inventory_findings_come_from_the_parallel_run(tree: Path) -> None:
    params = {"finops": {"budgets": {"CC-1001": 1, "CC-2002": 1}}}
    serial = api.check([str(tree)], packs=["policykit.packs.finops"], params=params)
    both = api.check([str(tree)], packs=["policykit.packs.finops"], params=params, jobs=2)
    assert {f.rule for f in serial.findings} >= {"FINOPS-009"}
    assert both.findings == serial.findings
    assert [e.one_line() for e in both.errors] == [e.one_line() for e in serial.errors]
    assert both.skipped == serial.skipped
    assert (both.files, both.objects, both.params) == (serial.files, serial.objects, serial.params)


def test_small_runs_and_stdin_stay_serial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = list(plan([str(_tree(tmp_path / "t", n=7))]))
    assert not parallel.worth_it(entries, 8)  # fewer than MIN_FILES files
    monkeypatch.setattr(parallel, "MIN_FILES", 1)
    assert parallel.worth_it(entries, 2)
    assert not parallel.worth_it(entries, 1)
    assert not parallel.worth_it([*entries, Entry(stdin=True)], 2)


def test_default_jobs_is_the_cores_usable() -> None:
    assert 1 <= parallel.default_jobs() <= (__import__("os").cpu_count() or 1)
