"""The ``vap`` and ``kyverno`` targets of ``verify``: each policy through the
admission harness on cel-cpp (:mod:`policykit.k8s.validating`); per rule, the
messages of its findings joined with ``; `` (:mod:`policykit.verify_targets`
holds the other targets)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from policykit.k8s import validating as admission
from policykit.k8s.request import session
from policykit.model import Document
from policykit.targets.k8s import manifests
from policykit.targets.k8s import waivers as exports
from policykit.verify_core import Progress, Run, VerifyReport, compare

Runner = Callable[[Sequence[Document], VerifyReport, Progress], None]
Unit = tuple[str, str]


def cel_runner(run: Run, unit: Unit) -> Runner:
    name = unit[0]
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
    # each policy with its binding (a VAP's), looked up once
    pairs = [(p, bindings[p["metadata"]["name"]] if name == "vap" else None) for p in policies]

    def cel(docs: Sequence[Document], report: VerifyReport, progress: Progress) -> None:
        # in a session each policy is read once, and the policies evaluated on
        # one object share its review: its kind, its request, its conversion to
        # CEL and the variables they declare alike (issue 21)
        with session():
            for doc in docs:
                progress.advance()
                got: dict[str, str] = {}
                for p, binding in pairs:
                    if binding is not None:  # a VAP and its binding
                        decisions = admission.evaluate_vap(p, binding, doc.obj)
                    else:
                        decisions = admission.evaluate_kyverno(p, doc.obj, exceptions=exceptions)
                    for dec in decisions:
                        got[dec.rule] = dec.message
                shown = {
                    r: manifests.shown_message(m, static[r])
                    for r, m in run.expected(doc, True, cel_ids, cel_carried).items()
                }
                compare(report, name, doc, shown, got)

    return cel
