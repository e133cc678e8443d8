"""``check --jobs``: a run on several processes reports exactly the serial run
(issue 21, item 2): findings, errors, skipped documents, JSON/JUnit bytes."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from benchmarks.bench_inventory import objects as workloads
from benchmarks.generate import component, deployment
from policykit import api, cores, parallel
from policykit.cli.main import cli
from policykit.loader import Entry, plan
from tests.conftest import ROOT

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
    monkeypatch.setattr(cores, "MIN_FILES", 1)
    monkeypatch.setattr(parallel, "CHUNK_MAX", 5)
    monkeypatch.setattr(parallel, "MIN_OBJECTS_PER_TASK", 16)
    monkeypatch.setattr(parallel, "INVENTORY_POOL_MIN", 1)  # the inventory rules' pool too
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


@pytest.mark.parametrize("pool_min", [1, 10**9], ids=["pool", "here"])
def test_inventory_findings_come_from_the_parallel_run(
    tree: Path, pool_min: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rules that read the inventory evaluated by a second pool, or here."""
    monkeypatch.setattr(parallel, "INVENTORY_POOL_MIN", pool_min)
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
    monkeypatch.setattr(cores, "MIN_FILES", 1)
    assert parallel.worth_it(entries, 2)
    assert not parallel.worth_it(entries, 1)
    assert not parallel.worth_it([*entries, Entry(stdin=True)], 2)


def test_default_jobs_is_the_cores_usable() -> None:
    assert 1 <= parallel.default_jobs() <= (__import__("os").cpu_count() or 1)


PLATFORM = ROOT / "examples" / "platform"


def test_four_platform_packs_give_the_serial_report(tree: Path) -> None:
    """Catalog (with CATALOG-016 on templates), finops (cross-object), provenance and
    agents: the workers evaluate the local rules while reading, the inventory rules
    after; JSON and JUnit are the serial bytes."""
    shutil.copytree(PLATFORM / "templates", tree / "templates")
    shutil.copytree(PLATFORM / "catalog", tree / "catalog")
    config = yaml.safe_load((PLATFORM / "policykit.yaml").read_text())
    config = {"packs": config["packs"], "params": config["params"]}
    config["params"]["finops"]["budgets"] = {"CC-1001": 1, "CC-2002": 1}  # FINOPS-009 fires
    (tree / "policykit.yaml").write_text(yaml.safe_dump(config))
    runner = CliRunner()
    for fmt in ("json", "junit"):
        outs = []
        for jobs in ("1", "2"):
            res = runner.invoke(cli, ["check", str(tree), "--format", fmt, "-j", jobs])
            assert res.exit_code == 2, res.output  # the malformed file
            outs.append(res.stdout)
        assert outs[0] == outs[1]
        if fmt == "json":
            assert "CATALOG-016" in outs[0] and "FINOPS-009" in outs[0]


TWIN_PACKS = """
from policykit.dsl import PackBuilder, objects, select

first = PackBuilder("first", "1.0.0")
second = PackBuilder("second", "1.0.0")


@first.rule("TWIN-001", title="t", select=select(kinds=["Deployment"]), message="same")
def crowded(o):
    return objects().filter(lambda x: x.kind == o.kind).count() > 1


@second.rule("TWIN-001", title="t", select=select(), message="same", severity="warn")
def named(o):
    return o.metadata.name != ""


@second.rule("TWIN-002", title="t", select=select(kinds=["Deployment"]), message="same")
def also(o):
    return objects().filter(lambda x: x.kind == o.kind).count() > 1
"""


def test_findings_tied_on_their_sort_key_keep_the_serial_order(tree: Path, tmp_path: Path) -> None:
    """Two packs with a rule of one id and one message, one reading the inventory
    and one not: a document's two findings tie on Finding.sort_key, and the
    parallel run puts them in the order the serial run meets the rules."""
    src = tmp_path / "twins.py"
    src.write_text(TWIN_PACKS)
    serial = api.check([str(tree)], packs=[str(src)])
    both = api.check([str(tree)], packs=[str(src)], jobs=2)
    tied = [(f.pack, f.severity) for f in serial.findings if f.rule == "TWIN-001"][:2]
    assert tied == [("second", "warn"), ("first", "deny")]  # any-kind rules come first
    assert both.findings == serial.findings


def test_rule_order_is_the_order_the_engine_meets_rules() -> None:
    from policykit.engines.native import NativeEngine
    from policykit.packs import load_packs

    packs = load_packs(["policykit.packs.finops"])
    engine = NativeEngine(packs, {"finops": {"budgets": {}}})
    order = engine.rule_order()
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}}
    met = [order[(cr.pack, cr.rule.id)] for cr in engine.rules_for(deployment)]
    assert met == sorted(met) and len(met) > 2
    local = engine.select_rules("local").rules_for(deployment)
    inventory = engine.select_rules("inventory").rules_for(deployment)
    assert {cr.rule.id for cr in inventory} >= {"FINOPS-009"}
    assert not {cr.rule.id for cr in local} & {cr.rule.id for cr in inventory}
    everything = engine.select_rules("all").rules_for(deployment)
    assert sorted(everything, key=lambda cr: order[(cr.pack, cr.rule.id)]) == everything
    assert len(everything) == len(local) + len(inventory)


def test_import_is_light() -> None:
    """``policykit check`` of one file imports this module: the loader, the
    evaluator and the reports load only when a run needs them."""
    code = (
        "import sys, policykit.parallel; print(sorted(m for m in sys.modules if m in HEAVY))"
    ).replace(
        "HEAVY",
        repr({"policykit.loader", "policykit.ir.evaluate", "policykit.reports", "yaml", "hashlib"}),
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_meanwhile_runs_here_once_the_workers_read(tree: Path) -> None:
    """``verify`` imports its runners while the workers read (``meanwhile``):
    after they are forked, so no import is ever in progress in a fork, and
    before the reading is done."""
    import multiprocessing

    entries = list(plan([str(tree)]))
    seen: list[tuple[int, int]] = []

    class Steps:
        def advance(self, n: int = 1) -> None:
            seen.append((-1, n))

    def meanwhile() -> None:
        seen.append((len(multiprocessing.active_children()), len(seen)))

    out = parallel.check([], entries, None, jobs=2, progress=Steps(), meanwhile=meanwhile)
    assert out.parts
    assert seen[0] == (2, 0)  # both workers alive, no chunk collected yet
    assert [s for s in seen if s[0] != -1] == [(2, 0)]  # once


def _evaluated_in(monkeypatch: pytest.MonkeyPatch, cls: type, log: Path) -> None:
    """``cls.evaluate_all`` notes the process it runs in (a fork inherits the patch)."""
    import os

    plain = cls.evaluate_all

    def noted(self: object, docs: object) -> object:
        with log.open("a") as f:
            f.write(f"{os.getpid()}\n")
        return plain(self, docs)

    monkeypatch.setattr(cls, "evaluate_all", noted)


@pytest.mark.parametrize(
    ("engine", "pack"),
    [
        ("rego", "policykit.packs.starter"),
        ("opa", "policykit.packs.starter"),
        ("cel", "policykit.packs.starter"),
        ("opa", "policykit.packs.finops"),  # FINOPS-008/009 read the inventory
    ],
)
def test_other_engines_evaluate_in_the_workers(
    tree: Path, tmp_path: Path, engine: str, pack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """regopy, real OPA and cel-cpp run in the workers when no rule reads the
    inventory (the engine built here, inherited by the fork; real OPA in a
    process of each worker's own), in this process over the inventory when one
    does; the report is the serial one either way."""
    import os

    from policykit.api.checking import check_entries
    from policykit.engines.cel import CelEngine
    from policykit.engines.rego import OpaEngine, RegopyEngine
    from policykit.packs import load_packs

    cls = {"rego": RegopyEngine, "opa": OpaEngine, "cel": CelEngine}[engine]
    log = tmp_path / "pids"
    _evaluated_in(monkeypatch, cls, log)
    packs = load_packs([pack])
    params = {"finops": {"budgets": {"CC-1001": 1, "CC-2002": 1}}} if "finops" in pack else {}
    entries = list(plan([str(tree)]))
    serial = check_entries(packs, entries, params, engine, jobs=1, record_checked=True)
    log.unlink()
    both = check_entries(packs, entries, params, engine, jobs=2, record_checked=True)
    pids = set(log.read_text().split())
    assert both.findings == serial.findings and serial.findings
    assert both.checked == serial.checked and serial.checked  # JUnit's passing cases
    assert [e.one_line() for e in both.errors] == [e.one_line() for e in serial.errors]
    assert both.skipped == serial.skipped
    assert (both.files, both.objects) == (serial.files, serial.objects)
    if pack.endswith("finops"):
        assert pids == {str(os.getpid())}
    else:
        assert str(os.getpid()) not in pids and len(pids) >= 1


def test_existing_policies_give_the_serial_report(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``check --policy`` on a pool: each Gatekeeper constraint (one that
    reads ``data.inventory`` too) and Kyverno policy over slices of the
    objects, merged in the serial order: the same findings, errors and
    skipped policies as one process."""
    from policykit.api import CheckConfig, check
    from policykit.existing import policies

    monkeypatch.setattr(policies, "POOL_FROM", 1)
    fix = ROOT / "tests/fixtures/thirdparty"
    paths = [
        fix / "gator/labels/template.yaml",
        fix / "gator/labels/constraint.yaml",
        fix / "gator/unique/template.yaml",
        fix / "gator/unique/constraint.yaml",
        fix / "kyverno/cpol/policy.yaml",
        fix / "kyverno-cli/cel-errors/policy.yaml",
        fix / "kyverno/vpol/policy.yaml",
    ]
    paths += [fix / "gator/external/template.yaml", fix / "gator/external/constraint.yaml"]
    for name in ("pkconflicta", "pkconflictb"):  # an evaluation error on some objects
        (tmp_path / f"{name}.yaml").write_text(_CONFLICT.replace("NAME", name))
        paths.append(tmp_path / f"{name}.yaml")
    reports = []
    for jobs in (1, 2, 3):
        config = CheckConfig(
            paths=(str(tree),), packs=("policykit.packs.starter",),
            policies=tuple(str(p) for p in paths), jobs=jobs,
        )  # fmt: skip
        reports.append(check(config))
    one = reports[0]
    assert {f.pack for f in one.findings} >= {"gatekeeper", "kyverno", "starter"}
    assert sum("pkconflict" in e.one_line() for e in one.errors) == 2, one.errors
    assert one.unsupported  # external_data
    for other in reports[1:]:
        assert other.findings == one.findings
        assert [e.one_line() for e in other.errors] == [e.one_line() for e in one.errors]
        assert other.unsupported == one.unsupported
        assert (other.files, other.objects) == (one.files, one.objects)


_CONFLICT = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: NAME}
spec:
  crd: {spec: {names: {kind: NAME}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package NAME
      f(x) = 1 { contains(x, "1") }
      f(x) = 2 { contains(x, "1") }
      violation[{"msg": "conflict"}] { f(input.review.object.metadata.name) == 1 }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: NAME
metadata: {name: NAME}
"""
