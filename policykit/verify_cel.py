"""The ``vap`` and ``kyverno`` targets of ``verify``: each policy through the
admission harness on cel-cpp (:mod:`policykit.k8s.validating`); per rule, the
messages of its findings joined with ``; `` (:mod:`policykit.verify_targets`
holds the other targets).

When both run, one runner (:func:`joint_runner`) runs the
ValidatingAdmissionPolicies and the Kyverno ValidatingPolicies on each object
in one session (issue 21): they share the object's review and CEL bindings
(the same request variables: the review's AdmissionRequest, and the Namespace
an API server would give both, :meth:`policykit.k8s.request.Review.namespace_object`),
so the object is converted to CEL once, and an expression both targets
compiled to the same text is evaluated once
(:class:`policykit.engines.cel_bindings.Scope`). Each target's report is the
one it gives alone."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from policykit.engines.cel import CelEvalError
from policykit.k8s import validating as admission
from policykit.k8s.errors import Unsupported
from policykit.k8s.kinds import as_admitted
from policykit.k8s.request import Review, session
from policykit.model import Document
from policykit.targets.cel.cv import MSG_SEPARATOR
from policykit.targets.k8s import manifests
from policykit.targets.k8s import waivers as exports
from policykit.values import uncapped_pattern
from policykit.verify_core import Progress, Run, VerifyReport, compare
from policykit.waivers import Waiver

Runner = Callable[[Sequence[Document], VerifyReport, Progress], None]
Unit = tuple[str, str]

JOINT_CEL: Unit = ("vap+kyverno", "cel")
"""The ``vap`` and ``kyverno`` runners in one session per slice (:func:`joint_runner`)."""

JOINED_CEL: tuple[Unit, Unit] = (("vap", "cel"), ("kyverno", "cel"))
"""The two runners :data:`JOINT_CEL` stands for, in the order of its parts."""

Joint = Callable[[Sequence[Document], VerifyReport, VerifyReport], None]
"""Compares a slice of the admitted objects for ``vap`` (into the first
report) and for ``kyverno`` (the second)."""


@dataclass(slots=True)
class _Cel:
    """One CEL target built: its policies (a VAP with its binding), the
    Kyverno PolicyExceptions of the waivers, and how its findings become the
    report."""

    run: Run
    name: str
    ids: set[str]
    carried: list[Waiver]
    pairs: list[tuple[Any, Any]]  # (policy, its binding: a VAP's; None for Kyverno)
    static: dict[str, str]  # a rule's static message
    exceptions: list[dict[str, Any]]

    def compare(
        self,
        doc: Document,
        obj: dict[str, Any],
        review: Review,
        report: VerifyReport,
        ref: str | None = None,
    ) -> None:
        """Every policy on ``doc`` (``obj``: as admission sees it,
        :func:`~policykit.k8s.kinds.as_admitted`; in a session: ``review`` is
        its review), compared with the reference (``ref``: ``str(doc.ref)``,
        when made). An expression that errs is the policy's answer, as in the
        API server under ``failurePolicy: Fail`` (``error: expression '…'
        resulted in error: …``): a disagreement on that object, never the
        end of the run."""
        ns = review.namespace_object()
        got: dict[str, str] = {}
        for p, binding in self.pairs:
            if binding is not None:  # a VAP and its binding
                decisions = admission.evaluate_vap(p, binding, obj, namespace_object=ns, each=True)
            else:
                try:
                    decisions = admission.evaluate_kyverno(
                        p, obj, exceptions=self.exceptions, namespace_object=ns
                    )
                except (CelEvalError, Unsupported) as exc:
                    # policykit's own policy: every function it calls is
                    # provided, so an overload error is the data's type
                    texts = p["spec"].get("validations") or []
                    text = admission.error_text(CelEvalError(exc.message), texts)
                    got[admission.rule_of(p)] = f"error: {text}"
                    continue
            for dec in decisions:
                got[dec.rule] = dec.message
        static = self.static
        items = self.run.expected_items(doc, self.ids, self.carried)
        shown = {
            r: manifests.shown_message(MSG_SEPARATOR.join(ms), static[r]) for r, ms in items.items()
        }
        for r, ms in items.items():  # the reference caps each message; admission does not
            if r in got and got[r] != shown[r] and capped_alike(ms, got[r]):
                got[r] = shown[r]
        compare(report, self.name, doc, shown, got, ref)


def capped_alike(messages: Sequence[str], got: str) -> bool:
    """Whether the admission message ``got`` is the reference's ``messages``
    (one per item, joined with ``; ``) before the reference capped them
    (:func:`policykit.values.uncapped_pattern`): what the CEL targets say in
    full."""
    shown = [manifests.shown_message(m, m) for m in messages]
    pattern = re.escape(MSG_SEPARATOR).join(uncapped_pattern(m) for m in shown)
    return re.fullmatch(pattern, got, re.DOTALL) is not None


def _build(run: Run, name: str) -> _Cel:
    """Target ``name``'s build, once per process."""
    built = run.states.get((name, "build"))
    if isinstance(built, _Cel):
        return built
    cel_packs, cel_ids = run.own(name)
    files, _ = manifests.build(name, cel_packs, run.eff)
    all_docs = [d for items in files.values() for d in items]
    exceptions: list[dict[str, Any]] = []
    if name == "vap":
        kinds = {r.id: list(r.selector.kinds) for p in cel_packs for r in p.rules}
        all_docs, missed_cel = exports.apply_vap(run.waivers, all_docs, kinds)
    else:
        exceptions, missed_cel = exports.kyverno_exceptions(run.waivers, all_docs)
    policies = [
        d for d in all_docs if d["kind"] in ("ValidatingAdmissionPolicy", "ValidatingPolicy")
    ]
    bindings = {d["metadata"]["name"]: d for d in all_docs if d["kind"].endswith("Binding")}
    static = {admission.rule_of(p): p["spec"]["validations"][0]["message"] for p in policies}
    # each policy with its binding (a VAP's), looked up once
    pairs = [(p, bindings[p["metadata"]["name"]] if name == "vap" else None) for p in policies]
    built = _Cel(run, name, cel_ids, run.carried(missed_cel), pairs, static, exceptions)
    run.states[(name, "build")] = built
    return built


def cel_runner(run: Run, unit: Unit) -> Runner:
    target = _build(run, unit[0])

    def cel(docs: Sequence[Document], report: VerifyReport, progress: Progress) -> None:
        # in a session each policy is read once, and the policies evaluated on
        # one object share its review: its kind, its request, its conversion to
        # CEL and the variables they declare alike (issue 21)
        with session() as s:
            for doc in docs:
                progress.advance()
                obj = as_admitted(doc.obj)
                target.compare(doc, obj, s.review(obj), report)

    return cel


def joint(run: Run) -> bool:
    """Whether the ``vap`` and ``kyverno`` runners run as one."""
    return "vap" in run.targets and "kyverno" in run.targets


def joint_runner(run: Run) -> Joint:
    """The runner of both targets, built once per process."""
    built = run.states.get(JOINT_CEL)
    if built is None:
        vap, kyverno = _build(run, "vap"), _build(run, "kyverno")

        def both(docs: Sequence[Document], vap_report: VerifyReport, ky: VerifyReport) -> None:
            with session() as s:
                for doc in docs:
                    obj = as_admitted(doc.obj)
                    review, ref = s.review(obj), str(doc.ref)
                    vap.compare(doc, obj, review, vap_report, ref)
                    kyverno.compare(doc, obj, review, ky, ref)

        built = run.states[JOINT_CEL] = both
    assert callable(built)
    return built
