"""``policykit verify``: every target, run locally, agrees with the reference.

For each Kubernetes object, the reference findings are compared with:

* ``rego`` / ``opa``: the OPA bundle's modules in regopy and real OPA (finding
  for finding);
* ``gatekeeper``: each ConstraintTemplate + Constraint through the Gatekeeper
  harness (regopy; real OPA with ``--oracle``): the set of (rule, message);
* ``vap`` / ``kyverno``: each policy through the admission harness on cel-cpp:
  per rule, the messages of its findings joined with ``; `` (one admission
  message per policy);
* ``jsonschema``: every object (entities and manifests) against the shipped
  per-pack schemas (``jsonschema``, draft 2020-12): per covered rule, whether
  it fires (a schema gives a verdict, not a message).

Backstage entities never reach admission: gatekeeper/vap/kyverno skip them.

The reference runs once; then each target runs once over every object (real
OPA in one batch call). Large runs give the targets to a forked pool of
processes, one target per task (the costliest first), and merge their parts in
the serial order: the report is the serial one (tests/test_verify_parallel.py).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from policykit.engines.jsonschema import SchemaChecker
from policykit.engines.native import NativeEngine
from policykit.engines.rego import OpaEngine, RegopyEngine
from policykit.ir.reads import rule_reads_inventory
from policykit.ir.rule import Pack
from policykit.k8s import crds
from policykit.k8s import gatekeeper as gk
from policykit.k8s import validating as admission
from policykit.k8s.kinds import for_object
from policykit.model import Document
from policykit.targets import capabilities as cap
from policykit.targets import gatekeeper as gk_target
from policykit.targets.cel.compiler import MSG_SEPARATOR
from policykit.targets.k8s import manifests
from policykit.targets.k8s import waivers as exports
from policykit.values import cap_message
from policykit.waivers import Waiver

TARGETS = ("rego", "opa", "gatekeeper", "vap", "kyverno", "jsonschema")
ADMISSION = ("gatekeeper", "vap", "kyverno")
_PLAN = {"opa": "rego"}  # the capability table's name for a verify target


class Progress(Protocol):
    """Told of each phase of a run (reference, then each target) and of each
    object done in it (the CLI draws a progress bar)."""

    def phase(self, name: str, total: int | None) -> None: ...

    def advance(self, n: int = 1) -> None: ...


class _Silent:
    def phase(self, name: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass


@dataclass(slots=True)
class Mismatch:
    target: str
    file: str
    doc_index: int
    rule: str
    expected: Any
    got: Any
    object: str = ""  # the object's reference (List items share file and index)


@dataclass(slots=True)
class VerifyReport:
    objects: int = 0
    compared: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    mismatches: list[Mismatch] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # rules a target cannot express (PK2xx)
    checked: list[tuple[str, str, int, str]] = field(default_factory=list)  # target, file, doc, ref

    @property
    def ok(self) -> bool:
        return not self.mismatches


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
) -> VerifyReport:
    """Compare every target with the reference on ``docs``. ``waivers`` (the
    ones in force) are exported to the admission targets as ``build`` does; a
    target must then skip exactly the findings of the waivers it carries.
    ``custom``: the CRDs of the run (default: those in force), whose kinds the
    admission targets match. ``progress`` is told of each phase and object.
    ``jobs``: processes for the targets (default: the cores, for runs of at
    least ``PARALLEL_FROM`` objects; 1: in this process)."""
    with crds.using(custom):
        run = _Run.prepare(packs, params, docs, targets, gatekeeper_engine, waivers)
        report = VerifyReport(objects=len(docs), left_out=run.left_out)
        progress = progress or _Silent()
        progress.phase("reference", len(docs))
        run.reference(progress)
        order = [t for t in TARGETS if t in targets]
        workers = min(_jobs(jobs, len(docs)), len(order))
        parts = _in_pool(run, order, workers, progress) if workers > 1 else {}
        for name in order:
            part = parts.get(name)
            if part is None:  # serial, or the worker failed: here, raising what it raised
                part = _one_target(run, name, progress)
            compared, mismatches, checked = part
            if compared:
                report.compared[name] += compared
            report.mismatches += mismatches
            report.checked += checked
        return report


PARALLEL_FROM = 500
"""Objects from which ``verify`` runs targets in parallel by default (below it,
forking and building each engine in a worker costs more than it saves)."""

_COST = ("gatekeeper", "rego", "kyverno", "opa", "jsonschema", "vap")
"""Targets, costliest first (CPU per object measured on the starter pack):
the pool starts them in this order, so the long ones do not end the run alone."""

_Part = tuple[int, list[Mismatch], list[tuple[str, str, int, str]]]


def _jobs(jobs: int | None, n: int) -> int:
    if jobs is not None:
        return max(jobs, 1)
    if n < PARALLEL_FROM:
        return 1
    from policykit.parallel import default_jobs

    return default_jobs()


_POOL_RUN: _Run | None = None  # what forked workers read (inherited, never pickled)


def _in_pool(run: _Run, order: list[str], workers: int, progress: Progress) -> dict[str, _Part]:
    """Each target in a forked worker; what a worker could not finish is left
    out of the result (the caller runs it here). Real OPA's Go runtime does not
    survive a fork: once it is loaded here, ``opa`` runs in this process while
    the workers (which never call it) run the rest."""
    import multiprocessing

    global _POOL_RUN
    if "fork" not in multiprocessing.get_all_start_methods():
        return {}
    here = [t for t in order if t == "opa" and "opa_bindings" in sys.modules]
    tasks = sorted((t for t in order if t not in here), key=_COST.index)
    progress.phase(", ".join(order), len(order))
    _POOL_RUN = run
    parts: dict[str, _Part] = {}
    try:
        with multiprocessing.get_context("fork").Pool(min(workers, len(tasks) or 1)) as pool:
            results = pool.imap_unordered(_pool_target, tasks)  # started: the workers run
            for name in here:
                parts[name] = _one_target(run, name, _Silent())
                progress.advance()
            for name, part in results:
                if part is not None:
                    parts[name] = part
                progress.advance()
    finally:
        _POOL_RUN = None
    return parts


def _pool_target(name: str) -> tuple[str, _Part | None]:
    assert _POOL_RUN is not None
    try:
        return name, _one_target(_POOL_RUN, name, _Silent())
    except Exception:  # run again in the parent, which reports it
        return name, None


def _one_target(run: _Run, name: str, progress: Progress) -> _Part:
    part = VerifyReport()
    _TARGET_RUNNERS[name](run, name, part, progress)
    return part.compared.get(name, 0), part.mismatches, part.checked


@dataclass(slots=True)
class _Run:
    """What every target reads: the plan, the reference findings, the objects."""

    packs: Sequence[Pack]
    params: Mapping[str, Mapping[str, Any]]
    docs: Sequence[Document]
    targets: Sequence[str]
    gatekeeper_engine: gk.Engine
    waivers: Sequence[Waiver]
    native: NativeEngine
    inventory: list[Any] | None
    plan: Any
    left_out: list[str]
    by_doc: dict[int, list[Any]] = field(default_factory=dict)

    @classmethod
    def prepare(
        cls,
        packs: Sequence[Pack],
        params: Mapping[str, Mapping[str, Any]],
        docs: Sequence[Document],
        targets: Sequence[str],
        gatekeeper_engine: gk.Engine,
        waivers: Sequence[Waiver],
    ) -> _Run:
        native = NativeEngine(packs, params)
        inventory = [d.obj for d in docs] if native.uses_inventory else None
        if inventory is not None:
            native.set_inventory(inventory)
        # each target is held to the rules it can express; the rest are reported as left out
        plan = cap.plan(packs, native.effective_params, [_PLAN.get(t, t) for t in targets])
        # ... and a rule an admission target leaves out by design (a runtime or
        # Backstage rule, a cross-object one in CEL) is listed, not compared
        by_design = {
            f"rule {r.id}: target {t} leaves it out: {why}"
            for t in targets
            if t in ADMISSION
            for p in plan.packs[t]
            for r in p.rules
            if (why := manifests.left_out(r, t)) and not manifests.admission_applicable(r)
        }
        left_out = sorted({e.one_line() for e in plan.errors} | by_design)
        return cls(
            packs, params, docs, targets, gatekeeper_engine, waivers, native, inventory, plan,
            left_out,
        )  # fmt: skip

    def reference(self, progress: Progress) -> None:
        # per document, not per (file, index): the items of a `kind: List` share both
        for d in self.docs:
            self.by_doc[id(d)] = self.native.evaluate(d)
            progress.advance()

    @property
    def eff(self) -> Any:
        return self.native.effective_params

    @property
    def k8s_docs(self) -> list[Document]:
        return [d for d in self.docs if d.source == "kubernetes" and for_object(d.obj) is not None]

    def own(self, target: str) -> tuple[list[Pack], set[str]]:
        kept = self.plan.packs[_PLAN.get(target, target)]
        ids = {r.id for p in kept for r in p.rules}
        if target in ADMISSION:
            ids -= {r.id for p in kept for r in p.rules if manifests.left_out(r, target)}
        return kept, ids

    def expected(
        self, doc: Document, joined: bool, ids: set[str], carried: Sequence[Waiver] = ()
    ) -> dict[str, Any]:
        per: dict[str, list[Any]] = defaultdict(list)
        for f in sorted(self.by_doc[id(doc)], key=lambda f: -1 if f.item is None else f.item):
            if f.rule in ids and not any(w.matches(f) for w in carried):
                per[f.rule].append(f.message)
        if joined:
            return {r: MSG_SEPARATOR.join(ms) for r, ms in per.items()}
        return {r: sorted(set(ms)) for r, ms in per.items()}

    def carried(self, missed: Sequence[exports.NotCarried]) -> list[Waiver]:
        left_out = {id(m.waiver) for m in missed}
        return [w for w in self.waivers if id(w) not in left_out]


def _key(f: Any) -> tuple[Any, ...]:
    return (-1 if f.item is None else f.item, f.rule, f.message)


def _rego(run: _Run, name: str, report: VerifyReport, progress: Progress) -> None:
    kept, ids = run.own(name)
    docs = run.docs
    progress.phase(name, len(docs))
    if name == "opa":
        # real OPA: every object in one call (the engine cuts it in chunks, or
        # queries the whole run at once with an inventory: its join indexes are
        # built once); half the cost per object of one query per object
        engine = OpaEngine(kept, run.params, mode="batch")
        if run.inventory is not None:
            engine.set_inventory(run.inventory)
        progress.advance(len(docs))
        for d, each in zip(docs, engine.evaluate_each(docs), strict=True):
            _compare_rego(report, name, d, each, run.by_doc[id(d)], ids, _key)
        return
    # regopy: one object per query, measured faster (policykit.api.make_engine),
    # except the rules that read the inventory: they run in one batch query with
    # it, since a query evaluates the join indexes again (per object, 58 times on
    # examples/platform: 47 of verify's 56 s CPU), and the others never get it
    readers, others = _inventory_split(kept) if run.inventory is not None else ([], kept)
    batch: list[list[Any]] = [[] for _ in docs]
    if readers:
        joins = RegopyEngine(readers, run.params, mode="batch")
        joins.set_inventory(run.inventory or [])
        batch = joins.evaluate_each(docs)
    single = RegopyEngine(others, run.params, mode="object") if others else None
    for d, found in zip(docs, batch, strict=True):
        progress.advance()
        each = found + (single.evaluate_each([d])[0] if single is not None else [])
        _compare_rego(report, name, d, each, run.by_doc[id(d)], ids, _key)


def _inventory_split(packs: Sequence[Pack]) -> tuple[list[Pack], list[Pack]]:
    """``packs`` cut in two: the rules that read the inventory, and the others."""
    readers: list[Pack] = []
    others: list[Pack] = []
    for p in packs:
        yes = tuple(r for r in p.rules if rule_reads_inventory(r))
        no = tuple(r for r in p.rules if not rule_reads_inventory(r))
        readers += [replace(p, rules=yes)] if yes else []
        others += [replace(p, rules=no)] if no else []
    return readers, others


def _gatekeeper(run: _Run, name: str, report: VerifyReport, progress: Progress) -> None:
    gk_packs, gk_ids = run.own("gatekeeper")
    files, _ = gk_target.build(gk_packs, run.eff)
    missed: list[exports.NotCarried] = []
    for fname in list(files):
        if fname.startswith("constraints/"):
            files[fname], m = exports.apply_gatekeeper(run.waivers, files[fname])
            missed += m
    gk_carried = run.carried(missed)
    pairs = []
    for fname, items in files.items():
        if fname.startswith("templates/"):
            cons = files["constraints/" + fname.split("/", 1)[1]]
            pairs += [
                (gk.TemplateRunner(t, run.gatekeeper_engine), c)
                for t, c in zip(items, cons, strict=True)
            ]
    # Gatekeeper syncs Kubernetes objects only (data.inventory)
    gk_inventory = (
        gk.inventory_of([d.obj for d in run.docs if d.source == "kubernetes"])
        if run.inventory is not None
        else None
    )
    # only the templates of rules that read it get data.inventory: regopy's
    # queries cost more with it, whether or not the template reads it
    readers = {r.id for p in gk_packs for r in p.rules if rule_reads_inventory(r)}
    k8s_docs = run.k8s_docs
    progress.phase("gatekeeper", len(k8s_docs))
    for doc in k8s_docs:
        progress.advance()
        got: dict[str, set[str]] = defaultdict(set)
        for runner, c in pairs:
            inventory = gk_inventory if admission.rule_of(c) in readers else None
            for v in gk.evaluate(runner, c, doc.obj, inventory=inventory):
                got[admission.rule_of(c)].add(cap_message(v.message))  # as Finding
        _compare(
            report,
            "gatekeeper",
            doc,
            run.expected(doc, False, gk_ids, gk_carried),
            {r: sorted(m) for r, m in got.items()},
        )


def _cel(run: _Run, name: str, report: VerifyReport, progress: Progress) -> None:
    cel_packs, cel_ids = run.own(name)
    files, _ = manifests.build(name, cel_packs, run.eff)
    all_docs = [d for items in files.values() for d in items]
    exceptions: list[dict[str, Any]] = []
    if name == "vap":
        kinds = {r.id: list(r.selector.kinds) for p in cel_packs for r in p.rules}
        all_docs, missed_cel = exports.apply_vap(run.waivers, all_docs, kinds)
    else:
        exceptions, missed_cel = exports.kyverno_exceptions(run.waivers, all_docs)
    cel_carried = run.carried(missed_cel)
    policies = [
        d for d in all_docs if d["kind"] in ("ValidatingAdmissionPolicy", "ValidatingPolicy")
    ]
    bindings = {d["metadata"]["name"]: d for d in all_docs if d["kind"].endswith("Binding")}
    static = {admission.rule_of(p): p["spec"]["validations"][0]["message"] for p in policies}
    k8s_docs = run.k8s_docs
    progress.phase(name, len(k8s_docs))
    for doc in k8s_docs:
        progress.advance()
        got: dict[str, str] = {}
        for p in policies:
            if name == "vap":
                decisions = admission.evaluate_vap(p, bindings[p["metadata"]["name"]], doc.obj)
            else:
                decisions = admission.evaluate_kyverno(p, doc.obj, exceptions=exceptions)
            for dec in decisions:
                got[dec.rule] = dec.message
        shown = {
            r: manifests.shown_message(m, static[r])
            for r, m in run.expected(doc, True, cel_ids, cel_carried).items()
        }
        _compare(report, name, doc, shown, got)


def _jsonschema(run: _Run, name: str, report: VerifyReport, progress: Progress) -> None:
    checker = SchemaChecker(run.packs, run.eff)
    progress.phase("jsonschema", len(run.docs))
    for doc in run.docs:
        progress.advance()
        fired = {f.rule: True for f in run.by_doc[id(doc)] if (f.pack, f.rule) in checker.covered}
        _compare(report, "jsonschema", doc, fired, {r: True for _, r in checker.fired(doc.obj)})


_TARGET_RUNNERS: dict[str, Callable[[_Run, str, VerifyReport, Progress], None]] = {
    "rego": _rego,
    "opa": _rego,
    "gatekeeper": _gatekeeper,
    "vap": _cel,
    "kyverno": _cel,
    "jsonschema": _jsonschema,
}


def _compare_rego(
    report: VerifyReport,
    name: str,
    d: Document,
    found_findings: Sequence[Any],
    reference: Sequence[Any],
    ids: set[str],
    key: Any,
) -> None:
    found = sorted(map(key, found_findings))
    exp = sorted(key(f) for f in reference if f.rule in ids)
    report.compared[name] += 1
    report.checked.append((name, d.file, d.index, str(d.ref)))
    for k in sorted(set(found) ^ set(exp)):
        report.mismatches.append(
            Mismatch(
                name,
                d.file,
                d.index,
                k[1],
                k if k in exp else None,
                k if k in found else None,
            )
        )


def _compare(
    report: VerifyReport, target: str, doc: Document, exp: Mapping[str, Any], got: Mapping[str, Any]
) -> None:
    report.compared[target] += 1
    report.checked.append((target, doc.file, doc.index, str(doc.ref)))
    for rule in sorted(set(exp) | set(got)):
        if exp.get(rule) != got.get(rule):
            report.mismatches.append(
                Mismatch(
                    target, doc.file, doc.index, rule, exp.get(rule), got.get(rule), str(doc.ref)
                )
            )
