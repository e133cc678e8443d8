"""``policykit check --policy``: existing Gatekeeper templates + constraints
and Kyverno policies run next to policykit's own packs, their verdicts merged
into the same report as findings.

* Gatekeeper: every Constraint (``constraints.gatekeeper.sh``) with its
  template, on every Kubernetes object checked; ``data.inventory`` is built
  from all the objects checked, as the cluster would replicate them, and a
  namespace's labels come from a Namespace among them. Severity follows
  ``enforcementAction`` (deny → deny, warn → warn, dryrun → info; ``scoped``:
  the strongest of its actions at gator's enforcement point, and no finding
  when none names it); the
  finding's rule is the constraint's name, its pack ``gatekeeper``.
* Kyverno: every rule's ``fail`` (and ``error``) is a finding, rule
  ``<policy>/<rule>``, pack ``kyverno``; Enforce → deny, Audit → warn.

What needs something policykit does not run is listed as unsupported (one
line per policy and reason) and never counts as a pass. A policy file that
cannot be loaded, or a policy that cannot be evaluated on an object, is an
input error of the report (exit 2) — every other policy still reports.

A large run (``jobs``) evaluates each policy over slices of the objects on a
forked pool, merged in the serial order (:func:`check`).

In SARIF, each third-party rule gets a descriptor from the policy's own
annotations: Kyverno's ``policies.kyverno.io/title``, ``…/description`` and
``…/severity``; a Gatekeeper constraint's template ``metadata.annotations.description``
(and ``metadata.gatekeeper.sh/title``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from policykit.errors import InputError, PolicyError, PolicykitError, SourceLoc
from policykit.existing import kyverno as ky
from policykit.existing import vap
from policykit.existing.malformed import MALFORMED, malformed
from policykit.k8s import gatekeeper as gk
from policykit.k8s.autogen import vpol_specs
from policykit.loader import load_paths
from policykit.model import Document, Finding, object_ref

_GK_SEVERITY = {"deny": "deny", "warn": "warn", "dryrun": "info"}


def _gk_severity(constraint: dict[str, Any]) -> str:
    """A constraint's findings' severity: its ``enforcementAction``, or for
    ``scoped`` the strongest of its actions at gator's enforcement point
    (gator test fails on a ``deny`` among them: cmd/gator/test/test.go)."""
    scoped = gk.scoped_actions(constraint)
    if scoped is not None:
        return next((_GK_SEVERITY[a] for a in _GK_SEVERITY if a in scoped), "info")
    return _GK_SEVERITY.get(
        str((constraint.get("spec") or {}).get("enforcementAction", "deny")), "deny"
    )


@dataclass(slots=True)
class PolicySet:
    templates: dict[str, tuple[gk.TemplateRunner | None, str]] = field(default_factory=dict)
    constraints: list[Document] = field(default_factory=list)
    kyverno: list[Document] = field(default_factory=list)
    vaps: list[Document] = field(default_factory=list)  # ValidatingAdmissionPolicies
    vap_bindings: list[dict[str, Any]] = field(default_factory=list)
    unsupported: set[str] = field(default_factory=set)
    # policies that could not be loaded or evaluated: input errors of the report
    errors: list[PolicykitError] = field(default_factory=list)
    template_docs: dict[str, dict[str, Any]] = field(default_factory=dict)


def _doc_name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    return repr(str(meta.get("name", ""))) if isinstance(meta, dict) else "(no metadata)"


def _template_kind(obj: dict[str, Any]) -> str:
    node: Any = obj
    for key in ("spec", "crd", "spec", "names", "kind"):
        node = node.get(key) if isinstance(node, dict) else None
    return str(node or "")


def _well_shaped(doc: Document, errors: list[PolicykitError]) -> bool:
    """Whether ``doc`` has its kind's shape (:func:`_check_shape`); if not, its
    error is added to ``errors``."""
    try:
        _check_shape(doc.obj)
    except MALFORMED as exc:
        what = f"{doc.obj.get('kind')} {_doc_name(doc.obj)}"
        errors.append(malformed(what, SourceLoc(doc.file, doc.line), exc))
        return False
    return True


def _check_shape(obj: dict[str, Any]) -> None:
    """Raise one of :data:`MALFORMED` when a policy's parts that every step
    reads (its metadata, spec, rules and what is generated from them for Pod
    controllers) do not have their kinds' types."""
    for part in ("metadata", "spec"):
        if obj.get(part) is not None and not isinstance(obj[part], dict):
            raise TypeError(f"{part} is a {type(obj[part]).__name__}, not a map")
    meta = obj.get("metadata") or {}
    for part in ("labels", "annotations"):
        if meta.get(part) is not None and not isinstance(meta[part], dict):
            raise TypeError(f"metadata.{part} is not a map")
    if ky.is_policy(obj):
        if obj.get("kind") in ("ClusterPolicy", "Policy"):
            rules = ky.legacy_rules(obj)
        else:
            rules = [spec for _, spec in vpol_specs(obj)]
        if not all(isinstance(r, dict) for r in rules):
            raise TypeError("a rule is not a map")


def load(paths: Sequence[str], engine: gk.Engine) -> PolicySet:
    """Templates, constraints and Kyverno policies from files or directories.
    Other documents in those files are ignored. What cannot be loaded (a file,
    a template, a constraint without its template) is kept in ``errors``: the
    caller reports it beside everything else."""
    loaded = load_paths(paths)
    errors: list[PolicykitError] = list(loaded.errors)
    out = PolicySet(errors=errors)
    failed: set[str] = set()
    for doc in loaded.documents:
        api, kind = str(doc.obj.get("apiVersion", "")), doc.obj.get("kind")
        where = SourceLoc(doc.file, doc.line)
        if api.startswith("templates.gatekeeper.sh/") and kind == "ConstraintTemplate":
            out.template_docs[_template_kind(doc.obj)] = doc.obj
            try:
                runner = gk.TemplateRunner(doc.obj, engine, where)
                out.templates[runner.kind] = (runner, "")
            except gk.Unsupported as exc:
                out.templates[_template_kind(doc.obj)] = (None, exc.message)
            except PolicykitError as exc:
                errors.append(exc)
                failed.add(_template_kind(doc.obj))
            except MALFORMED as exc:
                errors.append(malformed(f"ConstraintTemplate {_doc_name(doc.obj)}", where, exc))
                failed.add(_template_kind(doc.obj))
        elif api.startswith("constraints.gatekeeper.sh/") or ky.is_policy(doc.obj):
            if _well_shaped(doc, errors):
                (out.kyverno if ky.is_policy(doc.obj) else out.constraints).append(doc)
        elif vap.kind_of(doc.obj) == vap.POLICY_KIND:
            why = vap.problem(doc.obj) if _well_shaped(doc, errors) else ""
            if why is None:
                out.vaps.append(doc)
            elif why:
                out.unsupported.add(why)
        elif vap.kind_of(doc.obj) == vap.BINDING_KIND and _well_shaped(doc, errors):
            out.vap_bindings.append(doc.obj)
    kept = []
    for c in out.constraints:
        if str(c.obj.get("kind")) in failed:
            continue  # its template's error is reported
        kept.append(c)
        if str(c.obj.get("kind")) not in out.templates:
            errors.append(
                PolicyError(
                    f"constraint {(c.obj.get('metadata') or {}).get('name')!r} has no "
                    f"ConstraintTemplate of kind {c.obj.get('kind')!r}",
                    loc=SourceLoc(c.file, c.line),
                    hint="pass the template's file with --policy too",
                )
            )
    out.constraints = [c for c in kept if str(c.obj.get("kind")) in out.templates]
    found = out.templates or out.constraints or out.kyverno or out.vaps or out.unsupported
    if not found and not errors:
        errors.append(
            InputError(
                "no ConstraintTemplate, Constraint, Kyverno policy or "
                "ValidatingAdmissionPolicy found",
                loc=SourceLoc(", ".join(paths)),
            )
        )
    return out


_KY_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
_KY_SCORE = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "2.0", "info": "0.0"}


def _sarif_name(text: str, fallback: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", text)
    return "".join(w[:1].upper() + w[1:] for w in words) or fallback


def _descriptor(
    rule_id: str, pack: str, title: str, description: str, severity: str, level: str
) -> dict[str, Any]:
    props: dict[str, Any] = {"pack": pack}
    if severity:
        props["severity"] = severity
        if severity.lower() in _KY_SCORE:
            props["security-severity"] = _KY_SCORE[severity.lower()]
    return {
        "id": rule_id,
        "name": _sarif_name(title, rule_id),
        "shortDescription": {"text": title or rule_id},
        "fullDescription": {"text": description or title or rule_id},
        "help": {"text": description or title or rule_id},
        "defaultConfiguration": {"level": level},
        "properties": props,
    }


def descriptors(policies: PolicySet) -> list[dict[str, Any]]:
    """SARIF ``reportingDescriptor`` s for the rules the third-party policies
    report under, described by the policies' own annotations."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for c in policies.constraints:
        name = str((c.obj.get("metadata") or {}).get("name", ""))
        if name in seen:
            continue
        seen.add(name)
        template = policies.template_docs.get(str(c.obj.get("kind")), {})
        ann = (template.get("metadata") or {}).get("annotations") or {}
        severity = _gk_severity(c.obj)
        level = {"deny": "error", "warn": "warning"}.get(severity, "note")
        title = str(ann.get("metadata.gatekeeper.sh/title") or f"{c.obj.get('kind')} {name}")
        out.append(
            _descriptor(name, "gatekeeper", title, str(ann.get("description") or ""), "", level)
        )
    for p in policies.kyverno:
        meta = p.obj.get("metadata") or {}
        ann = meta.get("annotations") or {}
        title = str(ann.get("policies.kyverno.io/title") or "")
        description = " ".join(str(ann.get("policies.kyverno.io/description") or "").split())
        severity = str(ann.get("policies.kyverno.io/severity") or "")
        pname = ky.policy_name(p.obj)
        spec = p.obj.get("spec") or {}
        if p.obj.get("kind") in ("ClusterPolicy", "Policy"):
            default = str(spec.get("validationFailureAction") or "Audit").capitalize()
            rules = [
                (
                    f"{pname}/{r.get('name', '')}",
                    str(((r.get("validate") or {}).get("failureAction")) or default).capitalize(),
                    str((r.get("validate") or {}).get("message") or ""),
                )
                for r in ky.legacy_rules(p.obj)
            ]
        else:
            actions = spec.get("validationActions") or ["Deny"]
            rules = [(pname, "Enforce" if "Deny" in actions else "Audit", "")]
        for rule_id, action, message in rules:
            if rule_id in seen:
                continue
            seen.add(rule_id)
            level = _KY_LEVEL.get(severity.lower(), "") or (
                "error" if action == "Enforce" else "warning"
            )
            out.append(
                _descriptor(
                    rule_id,
                    "kyverno",
                    title or rule_id,
                    description or message,
                    severity,
                    level,
                )
            )
    for d in policies.vaps:
        name = str((d.obj.get("metadata") or {}).get("name", ""))
        if name in seen:
            continue
        seen.add(name)
        worst = min(
            (vap.severity(b) for b in vap.bindings_for(d.obj, policies.vap_bindings)),
            key=("deny", "warn", "info").index,
        )
        level = {"deny": "error", "warn": "warning"}.get(worst, "note")
        out.append(_descriptor(name, "vap", f"{vap.POLICY_KIND} {name}", "", "", level))
    return out


def _finding(doc: Document, rule: str, pack: str, severity: str, message: str) -> Finding:
    return Finding(
        rule=rule,
        pack=pack,
        severity=severity,
        message=message,
        object=object_ref(doc.obj, doc.source),
        file=doc.file,
        doc_index=doc.index,
        line=doc.line,
    )


@dataclass(slots=True)
class _Run:
    """What every policy sees: the Kubernetes objects, the namespace of each,
    ``data.inventory`` and Kyverno's context (built once, in this process; a
    pool's workers inherit it)."""

    policies: PolicySet
    k8s: list[Document]
    namespace_of: list[dict[str, Any] | None]
    inventory: Any
    ctx: ky.Context
    # each object as the Kyverno CLI loads it (a namespace for a namespaced
    # kind without one, ...): what the Kyverno policies see
    kyverno_objects: list[dict[str, Any]]


_Task = tuple[str, int, int, int]  # ("gk" | "ky" | "vap", policy index, objects [lo, hi))
_Part = tuple[list[Finding], set[str], list[PolicykitError]]

POOL_FROM = 256
"""Kubernetes objects from which ``jobs`` > 1 runs the policies on a pool."""

_RUN: _Run | None = None  # set before a pool forks


def check(
    policies: PolicySet, docs: Sequence[Document], *, jobs: int = 1
) -> tuple[list[Finding], list[str]]:
    """Findings of the third-party policies on ``docs``, and what was skipped.
    ``jobs`` > 1 (and at least :data:`POOL_FROM` Kubernetes objects): each
    policy over slices of the objects on that many forked processes, merged
    in the serial order (findings, the errors and what was skipped)."""
    k8s = [d for d in docs if d.source == "kubernetes"]
    inventory = gk.inventory_of([d.obj for d in k8s]) if policies.constraints else None
    namespaces = {
        str((d.obj.get("metadata") or {}).get("name")): d.obj
        for d in k8s
        if d.obj.get("kind") == "Namespace"
    }
    ctx = ky.Context(
        namespace_labels={
            n: dict((o.get("metadata") or {}).get("labels") or {}) for n, o in namespaces.items()
        },
        namespaces=namespaces,
    )
    namespace_of = [
        namespaces.get(str((d.obj.get("metadata") or {}).get("namespace"))) for d in k8s
    ]
    kyverno_objects = (
        [ky.cli_resource(d.obj) for d in k8s] if policies.kyverno or policies.vaps else []
    )
    run = _Run(policies, k8s, namespace_of, inventory, ctx, kyverno_objects)
    from policykit import parallel

    pooled = jobs > 1 and len(k8s) >= POOL_FROM and parallel.can_fork()
    bounds = parallel.even_slices(len(k8s), jobs * 2 if pooled else 1)
    tasks: list[_Task] = [("gk", i, lo, hi) for i in range(len(policies.constraints))
                          for lo, hi in bounds]  # fmt: skip
    tasks += [("ky", j, lo, hi) for j in range(len(policies.kyverno)) for lo, hi in bounds]
    tasks += [("vap", k, lo, hi) for k in range(len(policies.vaps)) for lo, hi in bounds]
    if pooled and len(tasks) > 1:
        parts = _in_pool(run, tasks, jobs)
    else:
        parts = [_task(run, t) for t in tasks]
    findings: list[Finding] = []
    skipped = set(policies.unsupported)
    reported: set[tuple[str, str]] = set()
    for found, skip, errors in parts:
        findings += found
        skipped |= skip
        for err in errors:  # one error per policy and message, in the serial order
            if _error_key(err) not in reported:
                reported.add(_error_key(err))
                policies.errors.append(err)
    return findings, sorted(skipped)


def _error_key(err: PolicykitError) -> tuple[str, str]:
    return str(err.loc), err.message


def _in_pool(run: _Run, tasks: list[_Task], jobs: int) -> list[_Part]:
    """``tasks`` on ``jobs`` forked workers, their parts in order."""
    global _RUN
    from policykit import parallel

    for runner, _ in run.policies.templates.values():
        if runner is not None and run.inventory is not None:
            with contextlib.suppress(PolicykitError):  # each task reports it
                runner.prepare(run.inventory)  # once here, not in every worker
    _RUN = run
    try:
        with parallel.pool(jobs) as pool:
            futures = [pool.submit(_pooled_task, t) for t in tasks]
            wired = [parallel.result(f) for f in futures]
    finally:
        _RUN = None
    return [(parallel.findings_of(rows), skip, errs) for rows, skip, errs in wired]


def _pooled_task(task: _Task) -> tuple[list[Any], set[str], list[PolicykitError]]:
    from policykit import parallel

    assert _RUN is not None
    found, skipped, errors = _task(_RUN, task)
    return parallel.finding_rows(found), skipped, errors


def _task(run: _Run, task: _Task) -> _Part:
    """One policy over ``run.k8s[lo:hi]``: findings, what was skipped, and
    the errors, the first of each message (the caller keeps the first over
    the tasks)."""
    kind, index, lo, hi = task
    docs = run.k8s[lo:hi]
    findings: list[Finding] = []
    skipped: set[str] = set()
    errors: dict[tuple[str, str], PolicykitError] = {}  # the first of each
    if kind == "gk":
        c = run.policies.constraints[index]
        try:
            return _gk_task(run, c, docs, lo, hi)
        except MALFORMED as exc:
            where = SourceLoc(c.file, c.line)
            return [], set(), [malformed(f"{c.obj.get('kind')} {_doc_name(c.obj)}", where, exc)]
    if kind == "vap":
        v = run.policies.vaps[index]
        try:
            return _vap_task(run, index, lo, hi), skipped, []
        except MALFORMED as exc:
            where = SourceLoc(v.file, v.line)
            what = f"ValidatingAdmissionPolicy {_doc_name(v.obj)}"
            return [], set(), [malformed(what, where, exc)]
    p = run.policies.kyverno[index]
    for d, obj in zip(docs, run.kyverno_objects[lo:hi], strict=True):
        try:
            outcomes = ky.evaluate(p.obj, obj, run.ctx)
        except PolicykitError as exc:
            errors.setdefault(_error_key(exc), exc)
            continue
        except MALFORMED as exc:
            err = malformed(
                f"{p.obj.get('kind')} {_doc_name(p.obj)}", SourceLoc(p.file, p.line), exc
            )
            errors.setdefault(_error_key(err), err)
            continue
        for o in outcomes:
            rule = f"{o.policy}/{o.rule}" if o.rule else o.policy
            if o.status == "unsupported":
                skipped.add(f"{rule}: {o.message}")
            elif o.status in ("fail", "error"):
                severity = "deny" if o.action == "Enforce" else "warn"
                text = o.message if o.status == "fail" else f"error: {o.message}"
                findings.append(_finding(d, rule, "kyverno", severity, text))
    return findings, skipped, list(errors.values())


def _gk_task(run: _Run, c: Document, docs: Sequence[Document], lo: int, hi: int) -> _Part:
    """A constraint over ``docs`` (``run.k8s[lo:hi]``)."""
    findings: list[Finding] = []
    skipped: set[str] = set()
    errors: dict[tuple[str, str], PolicykitError] = {}
    runner, why = run.policies.templates[str(c.obj.get("kind"))]
    name = str((c.obj.get("metadata") or {}).get("name", ""))
    if runner is None:
        skipped.add(f"constraint {name}: {why}")
        return findings, skipped, []
    severity = _gk_severity(c.obj)
    results = gk.evaluate_many(
        runner,
        c.obj,
        [d.obj for d in docs],
        run.namespace_of[lo:hi],
        inventory=run.inventory,
    )
    for d, found in zip(docs, results, strict=True):
        if isinstance(found, gk.Unsupported):
            skipped.add(f"constraint {name}: {found.message}")
        elif isinstance(found, PolicykitError):  # this constraint on this object
            errors.setdefault(_error_key(found), found)
        else:
            findings += [_finding(d, name, "gatekeeper", severity, v.message) for v in found]
    return findings, skipped, list(errors.values())


def _vap_task(run: _Run, index: int, lo: int, hi: int) -> list[Finding]:
    """A ValidatingAdmissionPolicy over ``run.k8s[lo:hi]`` (:mod:`policykit.existing.vap`),
    each object as the Kyverno CLI loads it, in the Namespace the input holds."""
    from policykit.k8s.request import session

    policy = run.policies.vaps[index].obj
    name = str((policy.get("metadata") or {}).get("name", ""))
    bindings = vap.bindings_for(policy, run.policies.vap_bindings)
    findings: list[Finding] = []
    objs = run.kyverno_objects[lo:hi]
    namespaces = run.ctx.namespaces  # the Namespace objects among the input, by name
    with session() as s:  # the policy read once, each object converted to CEL once
        for d, obj in zip(run.k8s[lo:hi], objs, strict=True):
            # the object's Namespace: the input's, else its name and the label the
            # API server gives every namespace (None when it is in none)
            ns = namespaces.get(str((obj.get("metadata") or {}).get("namespace") or ""))
            if ns is None:
                ns = s.review(obj).namespace_object()
            for severity, message in vap.failures(policy, bindings, obj, ns):
                findings.append(_finding(d, name, "vap", severity, message))
    return findings


def documents_of(parts: Any, into: list[Document]) -> Any:
    """Pass load results through, keeping their documents for :func:`check`."""
    for part in parts:
        into.extend(part.documents)
        yield part
