"""``kyverno-test.yaml`` files (``kyverno test``), run without the Go binary:
each result x resource is one :class:`CaseResult`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from policykit.engines.cel import Lookups
from policykit.errors import InputError, PolicykitError, SourceLoc
from policykit.existing import kyverno as ky
from policykit.existing import vap
from policykit.existing.malformed import MALFORMED, malformed
from policykit.existing.suites_common import named_objects, relative_path, shape_error
from policykit.k8s.kinds import for_object
from policykit.loader.lines import YamlLines
from policykit.model import Document
from policykit.rule_tests import CaseResult
from policykit.safeio import is_dir, load_yaml_node, read_text


def _load_all(
    base: Path, refs: Any, what: str, loc: SourceLoc, errors: list[PolicykitError]
) -> list[Document]:
    out: list[Document] = []
    # the CLI drops repeated paths (cmd/cli/kubectl-kyverno/test/load.go, cleanTest)
    for ref in dict.fromkeys(r if isinstance(r, str) else repr(r) for r in refs or []):
        path = relative_path(base, ref, loc, errors)
        if path is None:
            continue
        if is_dir(path):
            for f in sorted(path.rglob("*.y*ml")):
                out += named_objects(f, errors, what, loc)
        else:
            out += named_objects(path, errors, what, loc)
    return out


def _cli_resources(docs: Sequence[Document]) -> list[Document]:
    """Resources as ``kyverno test`` loads them (:func:`ky.cli_resource`), then
    one object per group, kind, namespace and name, the first one read
    (cmd/cli/kubectl-kyverno/resource/duplicate.go ``RemoveDuplicates``, called
    from commands/test/test.go)."""
    out: list[Document] = []
    seen: set[tuple[str, str, str, str]] = set()
    for doc in docs:
        obj = ky.cli_resource(doc.obj)
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else None
        key = (
            str(obj.get("apiVersion", "")).rpartition("/")[0],
            str(obj.get("kind", "")),
            str((meta or {}).get("namespace") or ""),
            str((meta or {}).get("name") or ""),
        )
        if key in seen:
            continue
        seen.add(key)
        out.append(Document(obj, doc.file, doc.index, doc.line))
    return out


def _yaml_file(path: Path, errors: list[PolicykitError], part: str) -> dict[str, Any]:
    """A kyverno values, userinfo or context file (``part``: its shape in the schema)."""
    file = path.as_posix()
    try:
        data, node = load_yaml_node(
            read_text(path, name=file, error=InputError), file, error=InputError
        )
    except PolicykitError as exc:
        errors.append(exc)
        return {}
    lines = YamlLines.of_node(node) if node is not None else YamlLines("")
    bad = shape_error(data, "kyverno-test.schema.json", file, lines, f"kyverno {part} file", part)
    if bad is not None:
        errors.append(bad)
        return {}
    assert isinstance(data, dict)
    return data


def _context(
    test: Mapping[str, Any], base: Path, loc: SourceLoc, errors: list[PolicykitError]
) -> tuple[ky.Context, dict[str, Any]]:
    ctx = ky.Context()
    values: dict[str, Any] = {}
    if test.get("variables"):
        path = relative_path(base, test["variables"], loc, errors)
        if path is not None:
            values = _yaml_file(path, errors, "values")
    ctx.values = values  # read by the classic engine (policykit/existing/kyverno_classic)
    for ns in values.get("namespaceSelector") or []:
        ctx.namespace_labels[str(ns.get("name"))] = dict(ns.get("labels") or {})
    # full Namespace objects win over namespaceSelector labels
    # (cmd/cli/kubectl-kyverno/variables/variables.go, NamespaceSelectors and Namespace)
    namespaces: dict[str, Mapping[str, Any]] = {}
    for ns in values.get("namespaces") or []:
        if isinstance(ns, dict):
            name = str((ns.get("metadata") or {}).get("name", ""))
            namespaces[name] = ns
            ctx.namespace_labels[name] = dict((ns.get("metadata") or {}).get("labels") or {})
    ctx.namespaces = namespaces
    op = (values.get("globalValues") or {}).get("request.operation")
    if op:
        ctx.operation = str(op)
    if test.get("userinfo"):
        path = relative_path(base, test["userinfo"], loc, errors)
        if path is not None:
            info = _yaml_file(path, errors, "userinfo")
            user = info.get("userInfo") or {}
            # what the file leaves out is empty, as in the CLI's RequestInfo
            ctx.username = str(user.get("username") or "")
            ctx.groups = tuple(str(g) for g in user.get("groups") or ())
            ctx.roles = tuple(info.get("roles") or ())
            ctx.cluster_roles = tuple(info.get("clusterRoles") or ())
            ctx.user_given = True
    if test.get("context"):
        # kind Context: spec.resources back resource.Get/List, spec.images
        # image.GetMetadata (cmd/cli/kubectl-kyverno/apis/v1alpha1/context.go,
        # processor/utils.go NewContextProvider)
        path = relative_path(base, test["context"], loc, errors)
        if path is not None:
            spec = _yaml_file(path, errors, "context").get("spec") or {}
            ctx.lookups = Lookups(
                resources=[r for r in spec.get("resources") or [] if isinstance(r, dict)],
                plural=_plural,
                images={
                    str(i.get("image")): i
                    for i in spec.get("images") or []
                    if isinstance(i, dict) and i.get("image")
                },
            )
    ctx.params = [
        d.obj
        for d in _load_all(base, test.get("paramResources"), "parameter resource", loc, errors)
    ]
    ctx.exceptions = [
        d.obj for d in _load_all(base, test.get("exceptions"), "exception", loc, errors)
    ]
    return ctx, values


def _resource_operation(values: Mapping[str, Any], policy: str, resource: str, default: str) -> str:
    for p in values.get("policies") or []:
        if p.get("name") != policy:
            continue
        for r in p.get("resources") or []:
            if r.get("name") == resource and (r.get("values") or {}).get("request.operation"):
                return str(r["values"]["request.operation"])
    return default


def _named(resources: Sequence[Document], ref: str) -> list[Document]:
    """The resources a result's ``resources`` entry names: ``name`` or
    ``namespace/name``, whatever their kind — the CLI's lookup compares only
    those parts of ``apiVersion,kind,namespace,name``
    (cmd/cli/kubectl-kyverno/commands/test/output.go, printTestResult)."""
    parts = ref.split("/")
    if len(parts) > 2:
        return []
    ns, name = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
    return [
        d
        for d in resources
        if str((d.obj.get("metadata") or {}).get("name", "")) == name
        and (ns is None or str((d.obj.get("metadata") or {}).get("namespace") or "") == ns)
    ]


def _rule_names(rule: str) -> set[str]:
    """The rule responses a result naming ``rule`` is compared with: the rule
    and the ones Kyverno generates from it for Pod controllers
    (cmd/cli/kubectl-kyverno/commands/test/command.go, lookupRuleResponses)."""
    return {rule, f"autogen-{rule}", f"autogen-cronjob-{rule}"}


def run_kyverno_test(path: Path, text: str) -> tuple[list[CaseResult], list[PolicykitError]]:
    """One ``kyverno-test.yaml``: every result x resource."""
    errors: list[PolicykitError] = []
    file = path.as_posix()
    try:
        test, node = load_yaml_node(text, file, error=InputError)
    except PolicykitError as exc:
        return [], [exc]
    if not isinstance(test, dict):
        return [], [InputError("a kyverno test must be a mapping", loc=SourceLoc(file))]
    lines = YamlLines.of_node(node) if node is not None else YamlLines("")
    bad = shape_error(test, "kyverno-test.schema.json", file, lines, "kyverno test")
    if bad is not None:
        return [], [bad]
    base = path.parent
    tname = str((test.get("metadata") or {}).get("name") or test.get("name") or file)
    loc0 = SourceLoc(file, 1)
    loaded = _load_all(
        base, test.get("policies"), "policy", SourceLoc(file, lines.line("policies")), errors
    )
    policies = [d.obj for d in loaded if ky.is_policy(d.obj)]
    # the CLI runs these too (cmd/cli/kubectl-kyverno/policy/load.go); policykit
    # test does not yet: a result naming one is an error that says so, not a pass
    vaps = {
        str((d.obj.get("metadata") or {}).get("name", ""))
        for d in loaded
        if vap.kind_of(d.obj) == vap.POLICY_KIND
    }
    resources = _cli_resources(
        _load_all(
            base,
            test.get("resources"),
            "resource",
            SourceLoc(file, lines.line("resources")),
            errors,
        )
    )
    ctx, values = _context(test, base, loc0, errors)
    by_name = {ky.policy_name(p): p for p in policies}
    out: list[CaseResult] = []
    cache: dict[tuple[str, int, str], list[ky.Outcome] | PolicykitError] = {}
    rule_names: dict[str, set[str]] = {}
    for ri, result in enumerate(test.get("results") or []):
        rloc = SourceLoc(file, lines.line("results", ri))
        pname = str(result.get("policy", ""))
        policy = by_name.get(pname) or next(
            (p for n, p in by_name.items() if n.rpartition("/")[2] == pname.rpartition("/")[2]),
            None,
        )
        if policy is None and pname in vaps:
            errors.append(
                InputError(
                    f"policy {pname!r} is a ValidatingAdmissionPolicy: policykit test does "
                    "not run those in kyverno tests",
                    loc=rloc,
                    hint="policykit check --policy runs it on the test's resources",
                )
            )
            continue
        if policy is None:
            errors.append(
                InputError(f"policy {pname!r} is not among the test's policies", loc=rloc)
            )
            continue
        rule = str(result.get("rule") or "")
        expected = str(result.get("result", "")).lower()
        names = [str(n) for n in result.get("resources") or []]
        specs = result.get("resourceSpecs") or []
        wanted: list[tuple[str, Document]] = []
        for n in names:
            hits = _named(resources, n)
            if not hits:
                errors.append(
                    InputError(f"resource {n!r} is not among the test's resources", loc=rloc)
                )
            wanted += [(n, d) for d in hits]
        for spec in specs:
            hits = [
                d
                for d in resources
                if d.obj.get("kind") == spec.get("kind")
                and (d.obj.get("metadata") or {}).get("name") == spec.get("name")
                and (
                    not spec.get("namespace")
                    or (d.obj.get("metadata") or {}).get("namespace") == spec.get("namespace")
                )
            ]
            if not hits:
                errors.append(
                    InputError(f"resource {spec!r} is not among the test's resources", loc=rloc)
                )
            wanted += [(str(spec.get("name")), d) for d in hits]
        legacy = policy.get("kind") in ("ClusterPolicy", "Policy")
        if rule and legacy:
            if pname not in rule_names:
                rule_names[pname] = {str(r.get("name", "")) for r in ky.legacy_rules(policy)}
            if not rule_names[pname] & _rule_names(rule):
                errors.append(InputError(f"policy {pname!r} has no rule {rule!r}", loc=rloc))
                continue
        for label, doc in wanted:
            case = f"{pname}/{rule or '-'}/{doc.obj.get('kind')}/{label}"
            op = str(
                result.get("operation") or _resource_operation(values, pname, label, ctx.operation)
            )
            key = (pname, id(doc), op)
            if key not in cache:
                try:
                    cache[key] = ky.evaluate(
                        policy, doc.obj, dataclasses.replace(ctx, operation=op)
                    )
                except MALFORMED as exc:
                    cache[key] = malformed(f"policy {pname!r} or resource {label!r}", rloc, exc)
            got = cache[key]
            if isinstance(got, PolicykitError):  # each result on it: an error, never a pass
                errors.append(
                    got if got.loc == rloc else type(got)(got.message, loc=rloc, hint=got.hint)
                )
                continue
            outcomes = got
            if rule and legacy:
                outcomes = [o for o in outcomes if o.rule in _rule_names(rule)]
            if legacy:
                outcomes = [o for o in outcomes if o.applied]
            out.append(_kyverno_case(tname, case, expected, outcomes, file, rloc.line))
    return out, errors


def _kyverno_case(
    suite: str, name: str, expected: str, outcomes: Sequence[ky.Outcome], file: str, line: int
) -> CaseResult:
    """One result x resource, as ``kyverno test`` checks it
    (cmd/cli/kubectl-kyverno/commands/test/output.go): every rule response
    must have the expected result; with none (no rule applies to the
    resource) the CLI reports the resource as excluded, a pass."""
    unsupported = [o for o in outcomes if o.status == "unsupported"]
    if unsupported:
        return CaseResult(suite, name, "skipped", unsupported[0].message, file, line)
    if expected == "warn":
        return CaseResult(suite, name, "skipped", "warn results are not modelled", file, line)
    if expected not in ("pass", "fail", "skip", "error"):
        return CaseResult(suite, name, "fail", f"unknown expected result {expected!r}", file, line)
    if not outcomes:
        return CaseResult(
            suite,
            name,
            "pass",
            f"expected {expected}: excluded (no rule applies; kyverno test counts it as a pass)",
            file,
            line,
        )
    wrong = [o for o in outcomes if o.status != expected]
    got = ", ".join(dict.fromkeys(o.status for o in (wrong or outcomes)))
    detail = "; ".join(o.message for o in (wrong or outcomes) if o.message)[:300]
    if wrong and len(outcomes) > 1:
        got += " from " + ", ".join(o.rule or o.policy for o in wrong)
    reason = f"expected {expected}, got {got}" + (f" ({detail})" if detail else "")
    return CaseResult(suite, name, "fail" if wrong else "pass", reason, file, line)


def _plural(obj: Mapping[str, Any]) -> str | None:
    """An object's resource name (the kind table, then the CRDs in force)."""
    info = for_object(dict(obj))
    return info.resource if info else None
