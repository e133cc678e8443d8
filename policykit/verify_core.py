"""What every ``verify`` target reads and writes: the run (plan, reference
findings, the objects each engine sees) and the report it adds to
(:mod:`policykit.verify` runs the targets, :mod:`policykit.verify_targets`
holds them)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from policykit.engines.native import NativeEngine
from policykit.ir.rule import Pack
from policykit.k8s import gatekeeper as gk
from policykit.k8s.kinds import for_object
from policykit.model import Document
from policykit.targets import capabilities as cap
from policykit.targets.cel.compiler import MSG_SEPARATOR
from policykit.targets.k8s import manifests
from policykit.targets.k8s import waivers as exports
from policykit.waivers import Waiver

ADMISSION = ("gatekeeper", "vap", "kyverno")
PLAN = {"opa": "rego"}  # the capability table's name for a verify target


class Progress(Protocol):
    """Told of each phase of a run (reference, then each target) and of each
    object done in it (the CLI draws a progress bar)."""

    def phase(self, name: str, total: int | None) -> None: ...

    def advance(self, n: int = 1) -> None: ...


class Silent:
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


@dataclass(frozen=True, slots=True)
class Sample:
    """A target whose regopy run covered ``objects`` of its ``of`` objects
    (real OPA ran every one of them)."""

    engine: str
    objects: int
    of: int


NOT_COMPARED = "; not compared"
"""How a ``leftOut`` line about one object ends (the others are about rules)."""


@dataclass(slots=True)
class VerifyReport:
    objects: int = 0
    compared: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    mismatches: list[Mismatch] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # rules a target cannot express (PK2xx)
    checked: list[tuple[str, str, int, str]] = field(default_factory=list)  # target, file, doc, ref
    sampled: dict[str, Sample] = field(default_factory=dict)  # target -> its regopy sample

    @property
    def ok(self) -> bool:
        return not self.mismatches


def sample_of(docs: Sequence[Document], k: int) -> list[Document]:
    """``k`` of ``docs`` drawn by a generator seeded with the run's size, in
    their order: the same sample for the same input, whatever the machine. Not
    a stride: a run that alternates kinds (an entity, then its Deployment)
    would give a stride of 2 one kind only."""
    n = len(docs)
    if k <= 0 or n <= k:
        return list(docs)
    return [docs[i] for i in sorted(random.Random(n).sample(range(n), k))]


@dataclass(slots=True)
class Run:
    """What every target reads: the plan, the reference findings, the objects.
    ``sample`` is what regopy runs over (every object unless real OPA runs
    every object and the run is larger than the sample)."""

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
    sample: list[Document]
    by_doc: dict[int, list[Any]] = field(default_factory=dict)
    states: dict[tuple[str, str], Any] = field(default_factory=dict)  # per process
    _k8s: list[Document] | None = None
    _admitted: list[int] | None = None  # admitted objects among docs[:i], for each i

    @classmethod
    def prepare(
        cls,
        packs: Sequence[Pack],
        params: Mapping[str, Mapping[str, Any]],
        docs: Sequence[Document],
        targets: Sequence[str],
        gatekeeper_engine: gk.Engine,
        waivers: Sequence[Waiver],
        sample: int,
    ) -> Run:
        native = NativeEngine(packs, params)
        inventory = [d.obj for d in docs] if native.uses_inventory else None
        if inventory is not None:
            native.set_inventory(inventory)
        # each target is held to the rules it can express; the rest are reported as left out
        plan = cap.plan(packs, native.effective_params, [PLAN.get(t, t) for t in targets])
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
        # regopy on a sample only where real OPA runs every object
        chosen = sample_of(docs, sample) if "opa" in targets else list(docs)
        return cls(
            packs, params, docs, targets, gatekeeper_engine, waivers, native, inventory, plan,
            left_out, chosen,
        )  # fmt: skip

    @property
    def sampled(self) -> bool:
        return len(self.sample) < len(self.docs)

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
        """The objects admission sees (Backstage entities never reach it)."""
        if self._k8s is None:
            self._k8s = [d for d in self.docs if is_admitted(d)]
        return self._k8s

    def admitted_before(self, i: int) -> int:
        """How many of ``docs[:i]`` admission sees: where the admitted objects of
        a slice of ``docs`` start in :attr:`k8s_docs`."""
        if self._admitted is None:
            counts, n = [0], 0
            for d in self.docs:
                n += is_admitted(d)
                counts.append(n)
            self._admitted = counts
        return self._admitted[i]

    def own(self, target: str) -> tuple[list[Pack], set[str]]:
        kept = self.plan.packs[PLAN.get(target, target)]
        ids = {r.id for p in kept for r in p.rules}
        if target in ADMISSION:
            ids -= {r.id for p in kept for r in p.rules if manifests.left_out(r, target)}
        return kept, ids

    def expected(
        self, doc: Document, joined: bool, ids: set[str], carried: Sequence[Waiver] = ()
    ) -> dict[str, Any]:
        per = self.expected_items(doc, ids, carried)
        if joined:
            return {r: MSG_SEPARATOR.join(ms) for r, ms in per.items()}
        return {r: sorted(set(ms)) for r, ms in per.items()}

    def expected_items(
        self, doc: Document, ids: set[str], carried: Sequence[Waiver] = ()
    ) -> dict[str, list[str]]:
        """Per rule, the reference's messages on ``doc`` in item order."""
        found = self.by_doc[id(doc)]
        if not found:  # most objects (a verify of 10k objects asks twice each, issue 21)
            return {}
        per: dict[str, list[str]] = defaultdict(list)
        for f in sorted(found, key=_item_order) if len(found) > 1 else found:
            if f.rule in ids and not (carried and any(w.matches(f) for w in carried)):
                per[f.rule].append(f.message)
        return dict(per)

    def carried(self, missed: Sequence[exports.NotCarried]) -> list[Waiver]:
        left_out = {id(m.waiver) for m in missed}
        return [w for w in self.waivers if id(w) not in left_out]


def _item_order(f: Any) -> Any:
    return -1 if f.item is None else f.item


def is_admitted(d: Document) -> bool:
    return d.source == "kubernetes" and for_object(d.obj) is not None


def compare_rego(
    report: VerifyReport,
    name: str,
    d: Document,
    found_findings: Sequence[Any],
    reference: Sequence[Any],
    ids: set[str],
) -> None:
    """Finding for finding: (item, rule, message) of the target and the reference."""
    found = sorted(map(_key, found_findings))
    exp = sorted(_key(f) for f in reference if f.rule in ids)
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


def _key(f: Any) -> tuple[Any, ...]:
    return (-1 if f.item is None else f.item, f.rule, f.message)


def compare(
    report: VerifyReport,
    target: str,
    doc: Document,
    exp: Mapping[str, Any],
    got: Mapping[str, Any],
    ref: str | None = None,
) -> None:
    """Per rule: the reference's value and the target's (``ref``: ``str(doc.ref)``
    when the caller has it)."""
    if ref is None:
        ref = str(doc.ref)
    report.compared[target] += 1
    report.checked.append((target, doc.file, doc.index, ref))
    if not exp and not got:
        return
    for rule in sorted(set(exp) | set(got)):
        if exp.get(rule) != got.get(rule):
            report.mismatches.append(
                Mismatch(target, doc.file, doc.index, rule, exp.get(rule), got.get(rule), ref)
            )
