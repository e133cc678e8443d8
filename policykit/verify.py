"""``policykit verify``: every target, run locally, agrees with the reference.

For each object, the reference findings are compared with each target's
(:mod:`policykit.verify_targets`: what each compares and how). Backstage
entities never reach admission: gatekeeper/vap/kyverno skip them.

The reference runs once; then each target runs once over its objects (real
OPA in batch, over every object). **regopy at scale**: real OPA is the Rego
oracle; when it runs (the ``opa`` target) and the run has more than
``sample`` objects (default :data:`REGOPY_SAMPLE`), regopy (the ``rego``
target, and the Gatekeeper templates) runs over a seeded sample of that many
objects, and the Gatekeeper templates also run in real OPA over every object.
The report says so (:attr:`VerifyReport.sampled`). Without real OPA, regopy
runs over every object.

Large runs go to a forked pool of processes: each target's objects in slices
(the costliest targets first), real OPA's too (each worker starts its own OPA
process, :mod:`policykit.engines.opa_host`). The slices are merged in the serial order, so
the report is the serial one (tests/test_verify_parallel.py,
tests/test_verify_sample.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policykit.engines.rego import InventoryLimitation
from policykit.errors import PolicykitError
from policykit.ir.rule import Pack
from policykit.k8s import crds
from policykit.k8s import gatekeeper as gk
from policykit.model import Document
from policykit.verify_cel import JOINED_CEL, JOINT_CEL, joint, joint_runner
from policykit.verify_core import (
    ADMISSION,
    NOT_COMPARED,
    Mismatch,
    Progress,
    Run,
    Sample,
    Silent,
    VerifyReport,
)
from policykit.verify_targets import (
    JOINED,
    JOINT,
    Unit,
    objects,
    runner,
    shared,
    shared_runner,
    units,
)
from policykit.waivers import Waiver

__all__ = [
    "ADMISSION",
    "PARALLEL_FROM",
    "REGOPY_SAMPLE",
    "TARGETS",
    "Mismatch",
    "Progress",
    "Sample",
    "VerifyReport",
    "verify",
]

TARGETS = ("rego", "opa", "gatekeeper", "vap", "kyverno", "jsonschema")

REGOPY_SAMPLE = 500
"""Objects regopy runs over when real OPA runs every object: regopy costs
2-3 ms per object and query (docs/engines.md), real OPA in batch ~0.3 ms."""

PARALLEL_FROM = 500
"""Objects from which ``verify`` runs targets in parallel by default (below it,
forking and building each engine in a worker costs more than it saves)."""

SLICE_MIN = 250
"""Objects per task at least: each process builds a target's engine once, and
a task's report comes back pickled."""

_COST = (
    "opa+gatekeeper", "gatekeeper", "rego", "vap+kyverno", "kyverno", "jsonschema", "vap", "opa",
)  # fmt: skip
"""Targets, costliest first (CPU per object measured on the starter pack):
the pool starts them in this order, so the long ones do not end the run alone."""

_Part = tuple[int, list[Mismatch], list[tuple[str, str, int, str]], list[str]]
"""A runner's report over a slice: objects compared, disagreements, what was
checked, and the objects it could not compare (engine limits, for ``leftOut``)."""
_Task = tuple[Unit, int, int]  # a runner over objects[lo:hi]


def verify(
    packs: Sequence[Pack],
    params: Mapping[str, Mapping[str, Any]],
    docs: Sequence[Document],
    targets: Sequence[str] = TARGETS,
    *,
    gatekeeper_engine: gk.Engine = "rego",
    waivers: Sequence[Waiver] = (),
    custom: crds.CrdRegistry | None = None,
    progress: Progress | None = None,
    jobs: int | None = None,
    sample: int = REGOPY_SAMPLE,
) -> VerifyReport:
    """Compare every target with the reference on ``docs``. ``waivers`` (the
    ones in force) are exported to the admission targets as ``build`` does; a
    target must then skip exactly the findings of the waivers it carries.
    ``custom``: the CRDs of the run (default: those in force), whose kinds the
    admission targets match. ``progress`` is told of each phase and object.
    ``jobs``: processes for the targets (default: the cores, for runs of at
    least ``PARALLEL_FROM`` objects; 1: in this process). ``sample``: the
    objects regopy runs over when ``opa`` is among ``targets`` (0: all)."""
    with crds.using(custom):
        run = Run.prepare(packs, params, docs, targets, gatekeeper_engine, waivers, sample)
        report = VerifyReport(objects=len(docs), left_out=run.left_out)
        progress = progress or Silent()
        progress.phase("reference", len(docs))
        run.reference(progress)
        order = [t for t in TARGETS if t in targets]
        all_units = [u for t in order for u in units(run, t)]
        if shared(run):  # opa and Gatekeeper's real OPA: each object sent once
            all_units = [JOINT] + [u for u in all_units if u not in JOINED]
        if joint(run):  # vap and kyverno: each object's CEL bindings shared
            all_units = [JOINT_CEL] + [u for u in all_units if u not in JOINED_CEL]
        workers = _jobs(jobs, len(docs))
        parts: dict[_Task, _Part] = {}
        if workers > 1 and all_units:
            parts = _in_pool(run, order, all_units, workers, progress)
        else:
            for unit, what in ((JOINT, "opa, gatekeeper"), (JOINT_CEL, "vap, kyverno")):
                if unit in all_units:
                    n = len(objects(run, unit))
                    progress.phase(what, n)
                    parts.update(_run_task(run, (unit, 0, n)))
                    progress.advance(n)
        for name in order:
            merged: list[_Part] = []
            for unit in units(run, name):
                merged.append(_unit_part(run, unit, parts, progress))
            _add(report, name, merged)
            if run.sampled and (name, "regopy") in units(run, name):
                regopy = objects(run, (name, "regopy"))
                total = len(objects(run, (name, "opa"))) if name == "gatekeeper" else len(docs)
                report.sampled[name] = Sample("regopy", len(regopy), total)
        return report


def _unit_part(run: Run, unit: Unit, parts: dict[_Task, _Part], progress: Progress) -> _Part:
    """One runner's report: the pool's slices in order, or (serial, or a slice
    a worker failed on: raising what it raised) run here."""
    docs = objects(run, unit)
    done = sorted((t, p) for t, p in parts.items() if t[0] == unit)
    if not done:
        progress.phase(unit[0], len(docs))
        return _run_slice(run, (unit, 0, len(docs)), progress)
    out: _Part = (0, [], [], [])
    at = 0
    for (_, lo, hi), part in done:
        if lo > at:  # a slice the pool could not do
            part_here = _run_slice(run, (unit, at, lo), Silent())
            out = _join(out, part_here)
        out, at = _join(out, part), hi
    if at < len(docs):
        out = _join(out, _run_slice(run, (unit, at, len(docs)), Silent()))
    return out


def _join(a: _Part, b: _Part) -> _Part:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]


def _add(report: VerifyReport, name: str, merged: list[_Part]) -> None:
    """A target's parts into the report. Two parts (gatekeeper: real OPA over
    every object, regopy over the sample): the counts are real OPA's, and a
    disagreement of regopy's is added unless real OPA reported the same."""
    compared, mismatches, checked, notes = merged[-1] if len(merged) == 2 else merged[0]
    if len(merged) == 2:
        mismatches = mismatches + [m for m in merged[0][1] if m not in mismatches]
        notes = merged[0][3] + notes
    report.left_out += notes
    if compared or notes:  # a target that left out every object shows, with 0
        report.compared[name] += compared
    report.mismatches += mismatches
    report.checked += checked


def _run_task(run: Run, task: _Task) -> dict[_Task, _Part]:
    """A task's parts: its own; for the shared real-OPA runner over
    ``docs[lo:hi]``, the ``opa`` part and the Gatekeeper part (over the
    admitted objects among them); for the joint CEL runner over the admitted
    ``k8s_docs[lo:hi]``, the ``vap`` part and the ``kyverno`` part. None
    when a shared runner could not run them, or raised: the caller runs the
    two runners apart (raising what the one it runs first raises)."""
    unit, lo, hi = task
    if unit == JOINT_CEL:
        return _run_joint_cel(run, lo, hi)
    if unit != JOINT:
        return {task: _run_slice(run, task, Silent())}
    docs = run.docs[lo:hi]
    opa, gk_part = VerifyReport(), VerifyReport()
    if not shared_runner(run)(docs, opa, gk_part):
        return {}
    k_lo, k_hi = run.admitted_before(lo), run.admitted_before(hi)
    return {
        (JOINED[0], lo, hi): (
            opa.compared.get("opa", 0), opa.mismatches, opa.checked, opa.left_out,
        ),
        (JOINED[1], k_lo, k_hi): (
            gk_part.compared.get("gatekeeper", 0), gk_part.mismatches, gk_part.checked,
            gk_part.left_out,
        ),
    }  # fmt: skip


def _run_joint_cel(run: Run, lo: int, hi: int) -> dict[_Task, _Part]:
    vap, kyverno = VerifyReport(), VerifyReport()
    try:
        joint_runner(run)(objects(run, JOINT_CEL)[lo:hi], vap, kyverno)
    except PolicykitError:  # raised apart by the runner that meets it first
        return {}
    return {
        (JOINED_CEL[0], lo, hi): (
            vap.compared.get("vap", 0), vap.mismatches, vap.checked, vap.left_out,
        ),
        (JOINED_CEL[1], lo, hi): (
            kyverno.compared.get("kyverno", 0), kyverno.mismatches, kyverno.checked,
            kyverno.left_out,
        ),
    }  # fmt: skip


def _run_slice(run: Run, task: _Task, progress: Progress) -> _Part:
    """A runner over ``objects[lo:hi]``. An object the engine cannot read
    (an error marked ``per_document``: regopy's PK010) is left out of that
    target's comparison and named in ``leftOut``; the others are compared
    (it ended the run with exit 2 and no report)."""
    unit, lo, hi = task
    docs = objects(run, unit)[lo:hi]
    part = VerifyReport()
    counted = _Counted(progress)
    try:
        runner(run, unit)(docs, part, counted)
    except InventoryLimitation as exc:  # the whole slice: one note, not one per object
        part = VerifyReport()
        part.left_out.append(_inventory_note(unit, exc))
    except PolicykitError as exc:
        if not exc.per_document:
            raise
        part = _one_by_one(run, unit, docs, progress, counted.n)
    return part.compared.get(unit[0], 0), part.mismatches, part.checked, part.left_out


def _inventory_note(unit: Unit, exc: PolicykitError) -> str:
    return f"{_who(unit)}: {exc.one_line()}; the objects it reads the inventory for not compared"


def _who(unit: Unit) -> str:
    """A runner as a note names it: Gatekeeper's templates in regopy apart
    (real OPA may compare the same objects)."""
    return "gatekeeper (regopy)" if unit == ("gatekeeper", "regopy") else unit[0]


class _Counted:
    """``progress``, counting the objects it was told of (a slice run again
    object by object advances the bar for the rest only)."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.n = progress, 0

    def phase(self, name: str, total: int | None) -> None:
        self.progress.phase(name, total)

    def advance(self, n: int = 1) -> None:
        self.n += n
        self.progress.advance(n)


def _one_by_one(
    run: Run, unit: Unit, docs: Sequence[Document], progress: Progress, shown: int
) -> VerifyReport:
    from policykit.engines.base import on_document

    part = VerifyReport()
    run_one = runner(run, unit)
    who = _who(unit)
    for i, doc in enumerate(docs):
        if i >= shown:
            progress.advance()
        one = VerifyReport()
        try:
            run_one([doc], one, Silent())
        except InventoryLimitation as exc:  # no object after it can be compared
            part.left_out.append(_inventory_note(unit, exc))
            break
        except PolicykitError as exc:
            if not exc.per_document:
                raise
            part.left_out.append(f"{who}: {on_document(exc, doc).one_line()}{NOT_COMPARED}")
            continue
        part.compared[unit[0]] += one.compared.get(unit[0], 0)
        part.mismatches += one.mismatches
        part.checked += one.checked
    return part


def _jobs(jobs: int | None, n: int) -> int:
    if jobs is not None:
        return max(jobs, 1)
    if n < PARALLEL_FROM:
        return 1
    from policykit.parallel import default_jobs

    return default_jobs()


def _tasks(run: Run, all_units: list[Unit], workers: int) -> list[_Task]:
    """Each runner's objects in slices, the costliest targets and the largest
    slices first. Slices are even, and at
    least ``SLICE_MIN`` objects each (a runner of 252 objects in one: not
    250 and 2, which builds its engine in a second process for 2 objects)."""
    tasks: list[_Task] = []
    for unit in all_units:
        n = len(objects(run, unit))
        tasks += [(unit, lo, hi) for lo, hi in slices(n, workers)]
    return sorted(tasks, key=lambda t: (_COST.index(t[0][0]), t[1] - t[2], t[0][1]))


def slices(n: int, workers: int) -> list[tuple[int, int]]:
    """``range(n)`` in even slices, two per worker, none (unless ``n`` is) of
    fewer than ``SLICE_MIN`` objects."""
    if n <= 0:
        return []
    from policykit.parallel import even_slices

    return even_slices(n, min(workers * 2, n // SLICE_MIN))


_POOL_RUN: Run | None = None  # what forked workers read (inherited, never pickled)


def _in_pool(
    run: Run, order: list[str], all_units: list[Unit], workers: int, progress: Progress
) -> dict[_Task, _Part]:
    """The slices on forked workers (:func:`policykit.parallel.pool`, as
    ``check -j``: Ctrl-C ends the run at once); what a worker could not finish
    is left out of the result (the caller runs it here). Real OPA runs in a
    process of its own (:mod:`policykit.engines.opa_host`): each worker starts
    its own. A run that ends normally lets the workers finish (not terminated),
    so that each stops its OPA process: reaped, its CPU time is counted with
    the worker's."""
    from concurrent.futures.process import BrokenProcessPool

    from policykit import parallel

    global _POOL_RUN
    if not parallel.can_fork():
        return {}
    tasks = _tasks(run, all_units, workers)
    progress.phase(", ".join(order), len(tasks))
    _POOL_RUN = run
    parts: dict[_Task, _Part] = {}
    try:
        with parallel.pool(min(workers, len(tasks) or 1)) as pool:
            for future in parallel.completed([pool.submit(_pool_task, t) for t in tasks]):
                try:
                    got = future.result()
                except BrokenProcessPool:  # a worker died: the caller runs its task
                    got = None
                if got is not None:
                    parts.update(got)
                progress.advance()
    finally:
        _POOL_RUN = None
    return parts


def _pool_task(task: _Task) -> dict[_Task, _Part] | None:
    assert _POOL_RUN is not None
    try:
        return _run_task(_POOL_RUN, task)
    except Exception:  # run again in the parent, which reports it
        return None
