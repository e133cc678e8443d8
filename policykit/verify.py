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
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from policykit.engines import admission
from policykit.engines import gatekeeper as gk
from policykit.engines.jsonschema import SchemaChecker
from policykit.engines.native import NativeEngine
from policykit.engines.rego import OpaEngine, RegopyEngine
from policykit.ir.rule import Pack
from policykit.model import Document
from policykit.targets import capabilities as cap
from policykit.targets import gatekeeper as gk_target
from policykit.targets.cel.compiler import MSG_SEPARATOR
from policykit.targets.k8s import crds, manifests
from policykit.targets.k8s import waivers as exports
from policykit.targets.k8s.kinds import for_object
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
) -> VerifyReport:
    """Compare every target with the reference on ``docs``. ``waivers`` (the
    ones in force) are exported to the admission targets as ``build`` does; a
    target must then skip exactly the findings of the waivers it carries.
    ``custom``: the CRDs of the run (default: those in force), whose kinds the
    admission targets match. ``progress`` is told of each phase and object."""
    with crds.using(custom):
        return _verify(
            packs, params, docs, targets, gatekeeper_engine, waivers, progress or _Silent()
        )


def _verify(
    packs: Sequence[Pack],
    params: Mapping[str, Mapping[str, Any]],
    docs: Sequence[Document],
    targets: Sequence[str],
    gatekeeper_engine: gk.Engine,
    waivers: Sequence[Waiver],
    progress: Progress,
) -> VerifyReport:
    report = VerifyReport(objects=len(docs))
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
    report.left_out = sorted({e.one_line() for e in plan.errors} | by_design)

    def own(target: str) -> tuple[list[Pack], set[str]]:
        kept = plan.packs[_PLAN.get(target, target)]
        ids = {r.id for p in kept for r in p.rules}
        if target in ADMISSION:
            ids -= {r.id for p in kept for r in p.rules if manifests.left_out(r, target)}
        return kept, ids

    # per document, not per (file, index): the items of a `kind: List` share both
    progress.phase("reference", len(docs))
    by_doc: dict[int, list[Any]] = {}
    for d in docs:
        by_doc[id(d)] = native.evaluate(d)
        progress.advance()

    def key(f: Any) -> tuple[Any, ...]:
        return (-1 if f.item is None else f.item, f.rule, f.message)

    for name in ("rego", "opa"):
        if name not in targets:
            continue
        kept, ids = own(name)
        # real OPA in batches across files (half the cost per object of one query
        # per object); regopy one object per query, measured faster for it
        # (policykit.api.make_engine)
        engine: RegopyEngine | OpaEngine = (
            RegopyEngine(kept, params, mode="object")
            if name == "rego"
            else OpaEngine(kept, params, mode="batch")
        )
        if inventory is not None:
            engine.set_inventory(inventory)
        progress.phase(name, len(docs))
        # batch: every object in one call (the engine cuts it in chunks, or queries
        # the whole run at once with an inventory: its join indexes are built once)
        step = max(len(docs), 1) if engine.mode == "batch" else 1
        for start in range(0, len(docs), step):
            part = docs[start : start + step]
            progress.advance(len(part))
            for d, each in zip(part, engine.evaluate_each(part), strict=True):
                _compare_rego(report, name, d, each, by_doc[id(d)], ids, key)

    k8s_docs = [d for d in docs if d.source == "kubernetes" and for_object(d.obj) is not None]
    eff = native.effective_params

    def expected(
        doc: Document, joined: bool, ids: set[str], carried: Sequence[Waiver] = ()
    ) -> dict[str, Any]:
        per: dict[str, list[Any]] = defaultdict(list)
        for f in sorted(by_doc[id(doc)], key=lambda f: -1 if f.item is None else f.item):
            if f.rule in ids and not any(w.matches(f) for w in carried):
                per[f.rule].append(f.message)
        if joined:
            return {r: MSG_SEPARATOR.join(ms) for r, ms in per.items()}
        return {r: sorted(set(ms)) for r, ms in per.items()}

    def carried(missed: Sequence[exports.NotCarried]) -> list[Waiver]:
        left_out = {id(m.waiver) for m in missed}
        return [w for w in waivers if id(w) not in left_out]

    if "gatekeeper" in targets:
        gk_packs, gk_ids = own("gatekeeper")
        files, _ = gk_target.build(gk_packs, eff)
        missed: list[exports.NotCarried] = []
        for fname in list(files):
            if fname.startswith("constraints/"):
                files[fname], m = exports.apply_gatekeeper(waivers, files[fname])
                missed += m
        gk_carried = carried(missed)
        pairs = []
        for name, items in files.items():
            if name.startswith("templates/"):
                cons = files["constraints/" + name.split("/", 1)[1]]
                pairs += [
                    (gk.TemplateRunner(t, gatekeeper_engine), c)
                    for t, c in zip(items, cons, strict=True)
                ]
        # Gatekeeper syncs Kubernetes objects only (data.inventory)
        gk_inventory = (
            gk.inventory_of([d.obj for d in docs if d.source == "kubernetes"])
            if inventory is not None
            else None
        )
        progress.phase("gatekeeper", len(k8s_docs))
        for doc in k8s_docs:
            progress.advance()
            got: dict[str, set[str]] = defaultdict(set)
            for runner, c in pairs:
                for v in gk.evaluate(runner, c, doc.obj, inventory=gk_inventory):
                    got[admission.rule_of(c)].add(cap_message(v.message))  # as Finding
            _compare(
                report,
                "gatekeeper",
                doc,
                expected(doc, False, gk_ids, gk_carried),
                {r: sorted(m) for r, m in got.items()},
            )

    for name in ("vap", "kyverno"):
        if name not in targets:
            continue
        cel_packs, cel_ids = own(name)
        files, _ = manifests.build(name, cel_packs, eff)
        all_docs = [d for items in files.values() for d in items]
        exceptions: list[dict[str, Any]] = []
        if name == "vap":
            kinds = {r.id: list(r.selector.kinds) for p in cel_packs for r in p.rules}
            all_docs, missed_cel = exports.apply_vap(waivers, all_docs, kinds)
        else:
            exceptions, missed_cel = exports.kyverno_exceptions(waivers, all_docs)
        cel_carried = carried(missed_cel)
        policies = [
            d for d in all_docs if d["kind"] in ("ValidatingAdmissionPolicy", "ValidatingPolicy")
        ]
        bindings = {d["metadata"]["name"]: d for d in all_docs if d["kind"].endswith("Binding")}
        static = {admission.rule_of(p): p["spec"]["validations"][0]["message"] for p in policies}
        progress.phase(name, len(k8s_docs))
        for doc in k8s_docs:
            progress.advance()
            got2: dict[str, str] = {}
            for p in policies:
                if name == "vap":
                    decisions = admission.evaluate_vap(p, bindings[p["metadata"]["name"]], doc.obj)
                else:
                    decisions = admission.evaluate_kyverno(p, doc.obj, exceptions=exceptions)
                for dec in decisions:
                    got2[dec.rule] = dec.message
            shown = {
                r: manifests.shown_message(m, static[r])
                for r, m in expected(doc, True, cel_ids, cel_carried).items()
            }
            _compare(report, name, doc, shown, got2)

    if "jsonschema" in targets:
        checker = SchemaChecker(packs, eff)
        progress.phase("jsonschema", len(docs))
        for doc in docs:
            progress.advance()
            fired = {f.rule: True for f in by_doc[id(doc)] if (f.pack, f.rule) in checker.covered}
            _compare(report, "jsonschema", doc, fired, {r: True for _, r in checker.fired(doc.obj)})
    return report


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
