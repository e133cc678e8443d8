"""``policykit check --policy``: existing Gatekeeper templates + constraints
and Kyverno policies run next to policykit's own packs, their verdicts merged
into the same report as findings.

* Gatekeeper: every Constraint (``constraints.gatekeeper.sh``) with its
  template, on every Kubernetes object checked; ``data.inventory`` is built
  from all the objects checked, as the cluster would replicate them, and a
  namespace's labels come from a Namespace among them. Severity follows
  ``enforcementAction`` (deny/scoped → deny, warn → warn, dryrun → info); the
  finding's rule is the constraint's name, its pack ``gatekeeper``.
* Kyverno: every rule's ``fail`` (and ``error``) is a finding, rule
  ``<policy>/<rule>``, pack ``kyverno``; Enforce → deny, Audit → warn.

What needs something policykit does not run is listed as unsupported (one
line per policy and reason) and never counts as a pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from policykit.engines import gatekeeper as gk
from policykit.errors import InputError, PolicyError, PolicykitError, SourceLoc, raise_all
from policykit.loader import load_paths
from policykit.model import Document, Finding, object_ref
from policykit.thirdparty import kyverno as ky

_GK_SEVERITY = {"deny": "deny", "scoped": "deny", "warn": "warn", "dryrun": "info"}


@dataclass(slots=True)
class PolicySet:
    templates: dict[str, tuple[gk.TemplateRunner | None, str]] = field(default_factory=dict)
    constraints: list[Document] = field(default_factory=list)
    kyverno: list[Document] = field(default_factory=list)
    unsupported: set[str] = field(default_factory=set)


def load(paths: Sequence[str], engine: gk.Engine) -> PolicySet:
    """Templates, constraints and Kyverno policies from files or directories.
    Other documents in those files are ignored; a constraint without its
    template is an error."""
    loaded = load_paths(paths)
    errors: list[PolicykitError] = list(loaded.errors)
    out = PolicySet()
    for doc in loaded.documents:
        api, kind = str(doc.obj.get("apiVersion", "")), doc.obj.get("kind")
        where = SourceLoc(doc.file, doc.line)
        if api.startswith("templates.gatekeeper.sh/") and kind == "ConstraintTemplate":
            try:
                runner = gk.TemplateRunner(doc.obj, engine, where)
                out.templates[runner.kind] = (runner, "")
            except gk.Unsupported as exc:
                k = (
                    (((doc.obj.get("spec") or {}).get("crd") or {}).get("spec") or {}).get("names")
                    or {}
                ).get("kind", "")
                out.templates[str(k)] = (None, exc.message)
            except PolicykitError as exc:
                errors.append(exc)
        elif api.startswith("constraints.gatekeeper.sh/"):
            out.constraints.append(doc)
        elif ky.is_policy(doc.obj):
            out.kyverno.append(doc)
    for c in out.constraints:
        if str(c.obj.get("kind")) not in out.templates:
            errors.append(
                PolicyError(
                    f"constraint {(c.obj.get('metadata') or {}).get('name')!r} has no "
                    f"ConstraintTemplate of kind {c.obj.get('kind')!r}",
                    loc=SourceLoc(c.file, c.line),
                    hint="pass the template's file with --policy too",
                )
            )
    if not (out.templates or out.constraints or out.kyverno) and not errors:
        errors.append(
            InputError(
                "no ConstraintTemplate, Constraint or Kyverno policy found",
                loc=SourceLoc(", ".join(paths)),
            )
        )
    raise_all(errors)
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


def check(policies: PolicySet, docs: Sequence[Document]) -> tuple[list[Finding], list[str]]:
    """Findings of the third-party policies on ``docs``, and what was skipped."""
    k8s = [d for d in docs if d.source == "kubernetes"]
    inventory = gk.inventory_of([d.obj for d in k8s]) if policies.constraints else None
    namespaces = {
        str((d.obj.get("metadata") or {}).get("name")): d.obj
        for d in k8s
        if d.obj.get("kind") == "Namespace"
    }
    findings: list[Finding] = []
    skipped = set(policies.unsupported)
    for c in policies.constraints:
        runner, why = policies.templates[str(c.obj.get("kind"))]
        name = str((c.obj.get("metadata") or {}).get("name", ""))
        if runner is None:
            skipped.add(f"constraint {name}: {why}")
            continue
        spec = c.obj.get("spec") or {}
        severity = _GK_SEVERITY.get(str(spec.get("enforcementAction", "deny")), "deny")
        for d in k8s:
            ns = (d.obj.get("metadata") or {}).get("namespace")
            try:
                found = gk.evaluate(
                    runner,
                    c.obj,
                    d.obj,
                    namespace_object=namespaces.get(str(ns)),
                    inventory=inventory,
                )
            except gk.Unsupported as exc:
                skipped.add(f"constraint {name}: {exc.message}")
                continue
            findings += [_finding(d, name, "gatekeeper", severity, v.message) for v in found]
    ctx = ky.Context(
        namespace_labels={
            n: dict((o.get("metadata") or {}).get("labels") or {}) for n, o in namespaces.items()
        }
    )
    for p in policies.kyverno:
        for d in k8s:
            for o in ky.evaluate(p.obj, d.obj, ctx):
                rule = f"{o.policy}/{o.rule}" if o.rule else o.policy
                if o.status == "unsupported":
                    skipped.add(f"{rule}: {o.message}")
                elif o.status in ("fail", "error"):
                    severity = "deny" if o.action == "Enforce" else "warn"
                    text = o.message if o.status == "fail" else f"error: {o.message}"
                    findings.append(_finding(d, rule, "kyverno", severity, text))
    return findings, sorted(skipped)


def documents_of(parts: Any, into: list[Document]) -> Any:
    """Pass load results through, keeping their documents for :func:`check`."""
    for part in parts:
        into.extend(part.documents)
        yield part
