"""Each ``verify`` target as a runner: built once per process (its engine, the
compiled output), then run over any consecutive slice of the target's objects,
so a large run can hand slices to several processes (:mod:`policykit.verify`).

* ``rego`` / ``opa``: the OPA bundle's modules in regopy and real OPA (finding
  for finding);
* ``gatekeeper``: each ConstraintTemplate + Constraint through the Gatekeeper
  harness (regopy, templates that can share an input in one bundle; real OPA in
  batch, :mod:`policykit.verify_gatekeeper`): the set of (rule, message);
* ``opa`` and Gatekeeper in real OPA together (:data:`JOINT`, when both run
  over every object): one engine and one query per chunk, each object sent
  once;
* ``vap`` / ``kyverno`` (:mod:`policykit.verify_cel`): each policy through the
  admission harness on cel-cpp: per rule, the messages of its findings joined
  with ``; ``; both together (:data:`JOINT_CEL`, when both run) in one session
  per slice, sharing each object's CEL bindings and the results of the
  expressions they both compiled;
* ``jsonschema``: every object against the shipped per-pack schemas: per
  covered rule, whether it fires.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from policykit.engines.jsonschema import SchemaChecker
from policykit.engines.rego import OpaEngine, RegopyEngine
from policykit.errors import PolicykitError
from policykit.ir.reads import rule_reads_inventory
from policykit.ir.rule import Pack
from policykit.k8s import gatekeeper as gk
from policykit.k8s import validating as admission
from policykit.model import Document
from policykit.targets import gatekeeper as gk_target
from policykit.targets.k8s import waivers as exports
from policykit.values import cap_message
from policykit.verify_cel import JOINT_CEL, cel_runner
from policykit.verify_core import Progress, Run, VerifyReport, compare, compare_rego, is_admitted

Runner = Callable[[Sequence[Document], VerifyReport, Progress], None]
"""A target built: compares the given objects (a slice of :func:`objects`)."""

Unit = tuple[str, str]
"""(target, engine): one runner. The gatekeeper target may have two."""


def units(run: Run, name: str) -> list[Unit]:
    """The runners of target ``name``: regopy's and real OPA's for a sampled
    gatekeeper run (real OPA over every object, regopy over the sample)."""
    if name == "rego":
        return [("rego", "regopy")]
    if name == "opa":
        return [("opa", "opa")]
    if name == "gatekeeper":
        if run.gatekeeper_engine == "opa":
            return [("gatekeeper", "opa")]
        return [("gatekeeper", "regopy")] + ([("gatekeeper", "opa")] if run.sampled else [])
    return [(name, "cel" if name in ("vap", "kyverno") else name)]


def objects(run: Run, unit: Unit) -> Sequence[Document]:
    """The objects a runner compares, in the run's order."""
    name, engine = unit
    if name == "rego":
        return run.sample
    if name == "gatekeeper":
        return [d for d in run.sample if is_admitted(d)] if engine == "regopy" else run.k8s_docs
    if name in ("vap", "kyverno") or unit == JOINT_CEL:
        return run.k8s_docs
    return run.docs


def runner(run: Run, unit: Unit) -> Runner:
    """The runner of ``unit``, built once per process."""
    built = run.states.get(unit)
    if built is None:
        built = run.states[unit] = _BUILD[unit[0]](run, unit)
    assert callable(built)
    return built


def _rego(run: Run, unit: Unit) -> Runner:
    name = unit[0]
    kept, ids = run.own(name)
    if name == "opa":
        # real OPA in batch (chunks of objects across files, or the whole run
        # at once with an inventory: its join indexes are built once)
        engine = OpaEngine(kept, run.params, mode="batch", inventory=run.inventory)

        def opa(docs: Sequence[Document], report: VerifyReport, progress: Progress) -> None:
            for d, each in zip(docs, engine.evaluate_each(docs), strict=True):
                compare_rego(report, name, d, each, run.by_doc[id(d)], ids)
            progress.advance(len(docs))

        return opa
    # regopy: one object per query, measured faster (policykit.api.make_engine),
    # except the rules that read the inventory: they run in one batch query with
    # it, since a query evaluates the join indexes again (per object, 58 times on
    # examples/platform: 47 of verify's 56 s CPU), and the others never get it
    readers, others = _inventory_split(kept) if run.inventory is not None else ([], kept)
    joins: RegopyEngine | None = None
    if readers:
        joins = RegopyEngine(readers, run.params, mode="batch", inventory=run.inventory or [])
    single = RegopyEngine(others, run.params, mode="object") if others else None

    def regopy(docs: Sequence[Document], report: VerifyReport, progress: Progress) -> None:
        batch = joins.evaluate_each(docs) if joins is not None else [[] for _ in docs]
        for d, found in zip(docs, batch, strict=True):
            progress.advance()
            each = found + (single.evaluate_each([d])[0] if single is not None else [])
            compare_rego(report, name, d, each, run.by_doc[id(d)], ids)

    return regopy


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


@dataclass(slots=True)
class _Gk:
    """The Gatekeeper target's build: (template, constraint) pairs with the
    waivers they carry, ``data.inventory`` for the templates that read it,
    and how messages become the report."""

    run: Run
    ids: set[str]
    carried: list[Any]
    pairs: list[tuple[Any, Any]]
    gk_inventory: Any
    readers: set[str]

    def inventory(self, c: Any) -> Any:
        return self.gk_inventory if admission.rule_of(c) in self.readers else None

    @property
    def data(self) -> Any:
        """``data.inventory`` of the templates that read it (None: none does)."""
        return next((inv for _, c in self.pairs if (inv := self.inventory(c)) is not None), None)

    def record(
        self, docs: Sequence[Document], per: Sequence[Sequence[Any]], report: VerifyReport
    ) -> None:
        """Per object, per pair, the messages (None or [] when none), compared
        with the reference as the set of (rule, message)."""
        for doc, each in zip(docs, per, strict=True):
            found: dict[str, set[str]] = defaultdict(set)
            for (_, c), msgs in zip(self.pairs, each, strict=True):
                if msgs:
                    found[admission.rule_of(c)].update(cap_message(str(m)) for m in msgs)
            compare(
                report,
                "gatekeeper",
                doc,
                self.run.expected(doc, False, self.ids, self.carried),
                {r: sorted(m) for r, m in found.items()},
            )


def _gk_build(run: Run) -> _Gk:
    built = run.states.get(("gatekeeper", "build"))
    if isinstance(built, _Gk):
        return built
    gk_packs, gk_ids = run.own("gatekeeper")
    files, _ = gk_target.build(gk_packs, run.eff)
    missed: list[exports.NotCarried] = []
    for fname in list(files):
        if fname.startswith("constraints/"):
            files[fname], m = exports.apply_gatekeeper(run.waivers, files[fname])
            missed += m
    pairs: list[tuple[Any, Any]] = []
    for fname, items in files.items():
        if fname.startswith("templates/"):
            pairs += zip(items, files["constraints/" + fname.split("/", 1)[1]], strict=True)
    # Gatekeeper syncs Kubernetes objects only (data.inventory)
    gk_inventory = (
        gk.inventory_of([d.obj for d in run.docs if d.source == "kubernetes"])
        if run.inventory is not None
        else None
    )
    # only the templates of rules that read it get data.inventory: regopy's
    # queries cost more with it, whether or not the template reads it
    readers = {r.id for p in gk_packs for r in p.rules if rule_reads_inventory(r)}
    built = _Gk(run, gk_ids, run.carried(missed), pairs, gk_inventory, readers)
    run.states[("gatekeeper", "build")] = built
    return built


def _gatekeeper(run: Run, unit: Unit) -> Runner:
    g = _gk_build(run)
    if unit[1] == "opa":
        return _gatekeeper_opa(g)
    from policykit.verify_gatekeeper import RegopyGroups

    groups = RegopyGroups(g.pairs, g.inventory)  # one query per object and group

    def regopy(docs: Sequence[Document], report: VerifyReport, progress: Progress) -> None:
        per = []
        for doc in docs:
            progress.advance()
            per.append(groups.messages(doc.obj))
        g.record(docs, per, report)

    return regopy


def _gatekeeper_opa(g: _Gk) -> Runner:
    """The templates in real OPA over every object, one query per chunk
    (:mod:`policykit.verify_gatekeeper`); templates that cannot share an
    engine, or a batch OPA fails on, run one object per query as ``--oracle``
    did (raising the error of the object it fails on)."""
    from policykit.verify_gatekeeper import TemplatesBatch

    pairs = g.pairs
    batch = TemplatesBatch(pairs, g.data)
    singles: list[gk.TemplateRunner] = []

    def one_by_one(docs: Sequence[Document]) -> list[list[list[Any] | None]]:
        if not singles:
            singles.extend(gk.TemplateRunner(t, "opa") for t, _ in pairs)
        return [
            [
                [v.message for v in gk.evaluate(r, c, d.obj, inventory=g.inventory(c))]
                for r, (_, c) in zip(singles, pairs, strict=True)
            ]
            for d in docs
        ]

    def opa(docs: Sequence[Document], report: VerifyReport, progress: Progress) -> None:
        per = batch.messages([d.obj for d in docs]) if batch.ok else None
        if per is None:
            per = one_by_one(docs)
        progress.advance(len(docs))
        g.record(docs, per, report)

    return opa


JOINT: Unit = ("opa+gatekeeper", "opa")
"""The ``opa`` target and Gatekeeper's templates in real OPA, in one engine and
one query per chunk (:class:`policykit.verify_gatekeeper.Joint`)."""

JOINED: tuple[Unit, Unit] = (("opa", "opa"), ("gatekeeper", "opa"))
"""The two runners :data:`JOINT` stands for, in the order of its parts."""

Shared = Callable[[Sequence[Document], VerifyReport, VerifyReport], bool]
"""Compares a consecutive slice of the run's objects for ``opa`` (into the
first report) and its admitted objects for ``gatekeeper`` (the second);
False when the shared engine cannot run them (nothing is added then)."""


def shared(run: Run) -> bool:
    """Whether ``opa`` and Gatekeeper's real-OPA runner can share an engine:
    both run over every object, and the templates can share one (all Rego,
    no two in one package). Otherwise the two run apart, each in slices."""
    if not (
        "opa" in run.targets
        and "gatekeeper" in run.targets
        and ("gatekeeper", "opa") in units(run, "gatekeeper")
    ):
        return False
    from policykit.verify_gatekeeper import Templates

    g = _gk_build(run)
    return Templates.of(g.pairs, g.data) is not None


def shared_runner(run: Run) -> Shared:
    """The shared runner, built once per process (never raising: a build
    that fails gives a runner that always answers False)."""
    built = run.states.get(JOINT)
    if built is None:
        built = run.states[JOINT] = _joint(run)
    assert callable(built)
    return built


def _joint(run: Run) -> Shared:
    from policykit.verify_gatekeeper import Joint

    kept, ids = run.own("opa")
    g = _gk_build(run)
    try:
        joint = Joint(kept, run.params, run.inventory, g.pairs, g.data)
    except PolicykitError:
        return lambda docs, opa_report, gk_report: False

    def both(docs: Sequence[Document], opa_report: VerifyReport, gk_report: VerifyReport) -> bool:
        admitted = [is_admitted(d) for d in docs]
        got = joint.run(docs, admitted)
        if got is None:
            return False
        findings, per = got
        for d, each in zip(docs, findings, strict=True):
            compare_rego(opa_report, "opa", d, each, run.by_doc[id(d)], ids)
        g.record([d for d, a in zip(docs, admitted, strict=True) if a], per, gk_report)
        return True

    return both


def _jsonschema(run: Run, unit: Unit) -> Runner:
    checker = SchemaChecker(run.packs, run.eff)

    def jsonschema(docs: Sequence[Document], report: VerifyReport, progress: Progress) -> None:
        for doc in docs:
            progress.advance()
            fired = {
                f.rule: True for f in run.by_doc[id(doc)] if (f.pack, f.rule) in checker.covered
            }
            got = {r: True for _, r in checker.fired(doc.obj)}
            compare(report, "jsonschema", doc, fired, got)

    return jsonschema


_BUILD: dict[str, Callable[[Run, Unit], Runner]] = {
    "rego": _rego,
    "opa": _rego,
    "gatekeeper": _gatekeeper,
    "vap": cel_runner,
    "kyverno": cel_runner,
    "jsonschema": _jsonschema,
}
