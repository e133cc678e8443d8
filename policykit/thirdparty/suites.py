"""``policykit test``: gator ``Suite`` files and ``kyverno-test.yaml`` files,
run without the Go binaries.

Every expectation becomes one :class:`CaseResult` — a gator assertion, or a
kyverno result x resource — with status ``pass``, ``fail`` or ``skipped``
(what the case needs and policykit does not run: the reason names it).
Malformed or missing files are :class:`~policykit.errors.InputError` s,
collected and raised together (exit 2), never a pass.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema

from policykit.engines import gatekeeper as gk
from policykit.engines.cel import Lookups
from policykit.errors import InputError, PolicykitError, SourceLoc, raise_all
from policykit.loader import load_file
from policykit.loader.lines import YamlLines
from policykit.model import Document
from policykit.resources import load_schema
from policykit.rule_tests import CaseResult as CaseResult
from policykit.rule_tests import CaseStatus as CaseStatus
from policykit.safeio import is_dir, is_file, load_yaml_node, missing, read_text
from policykit.targets.k8s.kinds import for_object
from policykit.thirdparty import kyverno as ky

SUITE_API = "test.gatekeeper.sh/v1alpha1"
KYVERNO_TEST_API = "cli.kyverno.io/"
# a policykit Test (policykit/rule_tests.py), malformed or not
_PK_TEST_API = re.compile(r"^apiVersion:[ \t]*['\"]?policykit\.dev/v1alpha1['\"]?[ \t]*$", re.M)
_PK_TEST_KIND = re.compile(r"^kind:[ \t]*['\"]?Test['\"]?[ \t]*$", re.M)


def error_case(err: PolicykitError) -> CaseResult:
    """An input error as a case of the report (status ``error``), so a bad file
    is listed beside every other file's results rather than replacing them."""
    file = err.loc.file if err.loc else ""
    reason = f"{err.code} {err.message}" + (f" ({err.hint})" if err.hint else "")
    return CaseResult(
        file or "policykit test", err.code, "error", reason, file, err.loc.line if err.loc else 0
    )


def _objects(
    path: Path, errors: list[PolicykitError], what: str, loc: SourceLoc | None = None
) -> list[Document]:
    if not is_file(path):  # never raises (an over-long name is not a file)
        errors.append(
            InputError(
                f"{what} {path.as_posix()} does not exist",
                loc=loc or SourceLoc(path.as_posix()),
                hint="paths are relative to the file that names them",
            )
        )
        return []
    loaded = load_file(path, path.as_posix())
    errors.extend(loaded.errors)
    return loaded.documents


def _relative(base: Path, ref: Any, loc: SourceLoc, errors: list[PolicykitError]) -> Path | None:
    if not isinstance(ref, str) or not ref:
        errors.append(InputError("expected a file path", loc=loc))
        return None
    if Path(ref).is_absolute():
        errors.append(InputError(f"absolute path {ref!r} is not allowed", loc=loc))
        return None
    return base / ref


@functools.lru_cache(maxsize=32)
def _validator(schema: str, part: str) -> jsonschema.Draft202012Validator:
    """One validator per schema (and ``$defs`` part) for the whole run."""
    full = load_schema(schema)
    sub = {"$defs": full["$defs"], "$ref": f"#/$defs/{part}"} if part else full
    return jsonschema.Draft202012Validator(sub)


def _shape_error(
    value: Any, schema: str, file: str, lines: YamlLines, what: str, part: str = ""
) -> InputError | None:
    """The first way ``value`` does not fit ``schemas/<schema>`` (or its
    ``$defs/<part>``), one line at the field's line; None when it fits."""
    try:
        err = jsonschema.exceptions.best_match(_validator(schema, part).iter_errors(value))
    except RecursionError:
        return InputError(f"{what} nested too deeply", loc=SourceLoc(file))
    if err is None:
        return None
    path = list(err.absolute_path)
    where = ".".join(str(x) for x in path) or "(top level)"
    message = " ".join(err.message.split())
    if len(message) > 160:
        message = message[:160] + "…"
    return InputError(
        f"not a valid {what}: {where}: {message}",
        loc=SourceLoc(file, lines.line(*path)),
        hint=f"see schemas/{schema}",
    )


# --- gator -----------------------------------------------------------------------------


def _expect(value: Any) -> tuple[str, Callable[[int], bool]] | None:
    """A gator ``violations`` value: yes (≥1), no (0) or a count. YAML 1.1
    reads unquoted yes/no as booleans."""
    if value is None or value is True or value == "yes":
        return "at least one violation", lambda n: n >= 1
    if value is False or value == "no":
        return "no violations", lambda n: n == 0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return f"exactly {value} violation(s)", lambda n: n == value
    if isinstance(value, str) and value.isdigit():
        count = int(value)
        return f"exactly {count} violation(s)", lambda n: n == count
    return None


class _Templates:
    """Each template file compiled once per run."""

    def __init__(self, engine: gk.Engine) -> None:
        self.engine = engine
        self.cache: dict[str, gk.TemplateRunner | gk.Unsupported | PolicykitError] = {}

    def get(self, doc: Document) -> gk.TemplateRunner:
        key = f"{doc.file}#{doc.index}"
        if key not in self.cache:
            try:
                self.cache[key] = gk.TemplateRunner(
                    doc.obj, self.engine, SourceLoc(doc.file, doc.line)
                )
            except PolicykitError as exc:
                self.cache[key] = exc
        got = self.cache[key]
        if isinstance(got, PolicykitError):
            raise got
        return got


def _one(
    docs: list[Document], what: str, loc: SourceLoc, errors: list[PolicykitError]
) -> Document | None:
    if len(docs) != 1:
        errors.append(
            InputError(f"{what} must hold exactly one object (found {len(docs)})", loc=loc)
        )
        return None
    return docs[0]


def run_gator(
    doc: Document, text: str, templates: _Templates
) -> tuple[list[CaseResult], list[PolicykitError]]:
    """One gator Suite: every assertion of every case of every test."""
    suite = doc.obj
    base = Path(doc.file).parent
    lines = YamlLines(text) if doc.index == 0 else YamlLines("")
    offset = 0 if doc.index == 0 else doc.line - 1
    bad = _shape_error(suite, "gator-suite.schema.json", doc.file, lines, "gator Suite")
    if bad is not None:
        return [], [bad]
    sname = str((suite.get("metadata") or {}).get("name") or doc.file)
    out: list[CaseResult] = []
    errors: list[PolicykitError] = []
    for ti, test in enumerate(suite.get("tests") or []):
        tname = str(test.get("name") or f"test {ti + 1}")
        tline = lines.line("tests", ti) + offset

        def loc(*path: str | int, _ti: int = ti) -> SourceLoc:
            return SourceLoc(doc.file, lines.line("tests", _ti, *path) + offset)

        cases = test.get("cases") or []
        runner: gk.TemplateRunner | None = None
        skip_all = "skip: true in the suite" if test.get("skip") else ""
        if not skip_all and test.get("expansion"):
            skip_all = "expansion templates are not supported"
        template_doc = constraint_doc = None
        if not skip_all:
            tpath = _relative(base, test.get("template"), loc("template"), errors)
            cpath = _relative(base, test.get("constraint"), loc("constraint"), errors)
            if tpath is None or cpath is None:
                continue
            template_doc = _one(
                _objects(tpath, errors, "template", loc("template")),
                "the template file",
                loc("template"),
                errors,
            )
            constraint_doc = _one(
                _objects(cpath, errors, "constraint", loc("constraint")),
                "the constraint file",
                loc("constraint"),
                errors,
            )
            if template_doc is None or constraint_doc is None:
                continue
            try:
                runner = templates.get(template_doc)
            except gk.Unsupported as exc:
                skip_all = exc.message
            except PolicykitError as exc:
                errors.append(exc)
                continue
            if runner is not None and constraint_doc.obj.get("kind") != runner.kind:
                errors.append(
                    InputError(
                        f"constraint kind {constraint_doc.obj.get('kind')!r} does not match "
                        f"the template's kind {runner.kind!r}",
                        loc=SourceLoc(constraint_doc.file, constraint_doc.line),
                    )
                )
                continue
        if not cases:
            errors.append(
                InputError(f"test {tname!r} has no cases", loc=SourceLoc(doc.file, tline))
            )
        for ci, case in enumerate(cases):
            cname = str(case.get("name") or f"case {ci + 1}")
            assertions = case.get("assertions") or []
            if not assertions:
                errors.append(InputError(f"case {cname!r} has no assertions", loc=loc("cases", ci)))
                continue
            reason = skip_all or ("skip: true in the suite" if case.get("skip") else "")
            found: list[gk.Violation] | None = None
            if not reason:
                assert runner is not None and constraint_doc is not None
                try:
                    found = _run_case(
                        case, base, runner, constraint_doc.obj, loc("cases", ci), errors
                    )
                except gk.Unsupported as exc:
                    reason = exc.message
                except PolicykitError as exc:
                    errors.append(exc)
                    continue
                if found is None:
                    continue
            for ai, assertion in enumerate(assertions):
                name = f"{tname}/{cname}" + (f" #{ai + 1}" if len(assertions) > 1 else "")
                aline = loc("cases", ci, "assertions", ai).line
                if reason:
                    out.append(CaseResult(sname, name, "skipped", reason, doc.file, aline))
                    continue
                assert found is not None
                out.append(_assert(sname, name, assertion, found, doc.file, aline, errors))
    return out, errors


def _run_case(
    case: Mapping[str, Any],
    base: Path,
    runner: gk.TemplateRunner,
    constraint: Mapping[str, Any],
    loc: SourceLoc,
    errors: list[PolicykitError],
) -> list[gk.Violation] | None:
    opath = _relative(base, case.get("object"), loc, errors)
    if opath is None:
        return None
    obj_doc = _one(_objects(opath, errors, "object", loc), "the object file", loc, errors)
    if obj_doc is None:
        return None
    inventory: list[dict[str, Any]] = []
    for ref in case.get("inventory") or []:
        ipath = _relative(base, ref, loc, errors)
        if ipath is not None:
            inventory += [d.obj for d in _objects(ipath, errors, "inventory file", loc)]
    obj = obj_doc.obj
    request = obj.get("request") if obj.get("kind") == "AdmissionReview" else None
    target = gk.review_of(request)[1] if isinstance(request, dict) else obj
    namespace_object = None
    if target is not None:
        ns = (target.get("metadata") or {}).get("namespace")
        namespace_object = (
            next(
                (
                    o
                    for o in inventory
                    if o.get("kind") == "Namespace" and (o.get("metadata") or {}).get("name") == ns
                ),
                None,
            )
            if ns
            else None
        )
    return gk.evaluate(
        runner,
        constraint,
        None if request is not None else obj,
        request=request if isinstance(request, dict) else None,
        namespace_object=namespace_object,
        inventory=gk.inventory_of(inventory) if inventory else None,
    )


def _assert(
    suite: str,
    name: str,
    assertion: Mapping[str, Any],
    found: Sequence[gk.Violation],
    file: str,
    line: int,
    errors: list[PolicykitError],
) -> CaseResult:
    expect = _expect(assertion.get("violations"))
    if expect is None:
        errors.append(
            InputError(
                f"violations must be yes, no or a count (got {assertion.get('violations')!r})",
                loc=SourceLoc(file, line),
            )
        )
        return CaseResult(suite, name, "fail", "bad assertion", file, line)
    what, ok = expect
    pattern = assertion.get("message")
    hits = list(found)
    if pattern:
        try:
            rx = re.compile(str(pattern))
        except re.error as exc:
            errors.append(
                InputError(f"message is not a valid regex: {exc}", loc=SourceLoc(file, line))
            )
            return CaseResult(suite, name, "fail", "bad assertion", file, line)
        hits = [v for v in found if rx.search(v.message)]
        what += f" matching {str(pattern)!r}"
    got = f"got {len(hits)}"
    if hits or found:
        got += ": " + "; ".join(v.message for v in (hits or found)[:3])
    status: CaseStatus = "pass" if ok(len(hits)) else "fail"
    return CaseResult(suite, name, status, f"expected {what}, {got}", file, line)


# --- kyverno test ------------------------------------------------------------------------


def _load_all(
    base: Path, refs: Any, what: str, loc: SourceLoc, errors: list[PolicykitError]
) -> list[Document]:
    out: list[Document] = []
    # the CLI drops repeated paths (cmd/cli/kubectl-kyverno/test/load.go, cleanTest)
    for ref in dict.fromkeys(r if isinstance(r, str) else repr(r) for r in refs or []):
        path = _relative(base, ref, loc, errors)
        if path is None:
            continue
        if is_dir(path):
            for f in sorted(path.rglob("*.y*ml")):
                out += _objects(f, errors, what, loc)
        else:
            out += _objects(path, errors, what, loc)
    return out


_NIL_MAPS = frozenset(
    {"annotations", "labels", "matchLabels", "nodeSelector", "data", "stringData"}
)


def _nil_maps(node: Any) -> Any:
    """Empty maps for the known map fields left empty in YAML (``labels:``), as
    the CLI's ``normalizeNilMaps`` does (cmd/cli/kubectl-kyverno/resource/resource.go)."""
    if isinstance(node, dict):
        return {k: {} if v is None and k in _NIL_MAPS else _nil_maps(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_nil_maps(v) if isinstance(v, dict) else v for v in node]
    return node


def _cli_resources(docs: Sequence[Document]) -> list[Document]:
    """Resources as ``kyverno test`` loads them (cmd/cli/kubectl-kyverno/resource/
    resource.go ``YamlToUnstructured``): a namespaced kind without a namespace gets
    ``default`` (a kind the CLI does not know counts as namespaced), empty map
    fields become maps; then one object per group, kind, namespace and name, the
    first one read (cmd/cli/kubectl-kyverno/resource/duplicate.go
    ``RemoveDuplicates``, called from commands/test/test.go)."""
    out: list[Document] = []
    seen: set[tuple[str, str, str, str]] = set()
    for doc in docs:
        obj = _nil_maps(doc.obj)
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else None
        info = for_object(obj)
        if (info is None or info.namespaced) and not (meta or {}).get("namespace"):
            obj["metadata"] = {**(meta or {}), "namespace": "default"}
            meta = obj["metadata"]
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
    bad = _shape_error(data, "kyverno-test.schema.json", file, lines, f"kyverno {part} file", part)
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
        path = _relative(base, test["variables"], loc, errors)
        if path is not None:
            values = _yaml_file(path, errors, "values")
    ctx.values = values  # read by the classic engine (policykit/thirdparty/kyverno_classic)
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
        path = _relative(base, test["userinfo"], loc, errors)
        if path is not None:
            info = _yaml_file(path, errors, "userinfo")
            user = info.get("userInfo") or {}
            ctx.username = str(user.get("username", ctx.username))
            ctx.groups = tuple(user.get("groups") or ctx.groups)
            ctx.roles = tuple(info.get("roles") or ())
            ctx.cluster_roles = tuple(info.get("clusterRoles") or ())
    if test.get("context"):
        # kind Context: spec.resources back resource.Get/List, spec.images
        # image.GetMetadata (cmd/cli/kubectl-kyverno/apis/v1alpha1/context.go,
        # processor/utils.go NewContextProvider)
        path = _relative(base, test["context"], loc, errors)
        if path is not None:
            spec = _yaml_file(path, errors, "context").get("spec") or {}
            ctx.lookups = Lookups(
                resources=[r for r in spec.get("resources") or [] if isinstance(r, dict)],
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
    bad = _shape_error(test, "kyverno-test.schema.json", file, lines, "kyverno test")
    if bad is not None:
        return [], [bad]
    base = path.parent
    tname = str((test.get("metadata") or {}).get("name") or test.get("name") or file)
    loc0 = SourceLoc(file, 1)
    policies = [
        d.obj
        for d in _load_all(
            base, test.get("policies"), "policy", SourceLoc(file, lines.line("policies")), errors
        )
        if ky.is_policy(d.obj)
    ]
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
    cache: dict[tuple[str, int, str], list[ky.Outcome]] = {}
    rule_names: dict[str, set[str]] = {}
    for ri, result in enumerate(test.get("results") or []):
        rloc = SourceLoc(file, lines.line("results", ri))
        pname = str(result.get("policy", ""))
        policy = by_name.get(pname) or next(
            (p for n, p in by_name.items() if n.rpartition("/")[2] == pname.rpartition("/")[2]),
            None,
        )
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
                cache[key] = ky.evaluate(policy, doc.obj, dataclasses.replace(ctx, operation=op))
            outcomes = cache[key]
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


# --- discovery ---------------------------------------------------------------------------


_KYVERNO_TESTS = ("kyverno-test.yaml", "kyverno-test.yml")


def _walk(paths: Iterable[str]) -> Iterator[Path]:
    """YAML files under ``paths``. Hidden directories are walked for kyverno
    tests only: ``kyverno test <dir>`` descends into every directory, hidden
    ones included (``.kyverno-test/``), looking for ``kyverno-test.yaml``
    (cmd/cli/kubectl-kyverno/test/load.go, loadLocalTest); ``.git`` is not
    walked."""
    for p in paths:
        path = Path(p)
        if not is_dir(path):
            yield path
            continue
        found: list[Path] = []
        for root, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if d != ".git"]
            hidden = any(part.startswith(".") for part in Path(root).relative_to(path).parts)
            for name in files:
                if not name.endswith((".yaml", ".yml")):
                    continue
                if (hidden or name.startswith(".")) and name not in _KYVERNO_TESTS:
                    continue
                f = Path(root) / name
                if f.is_file():
                    found.append(f)
        yield from sorted(found)


def run(paths: Sequence[str], engine: gk.Engine = "rego") -> list[CaseResult]:
    """Every case under ``paths`` (see :func:`collect`); any input error is
    raised (all of them together) instead of returned."""
    results, errors = collect(paths, engine)
    raise_all(errors)
    return results


def collect(
    paths: Sequence[str], engine: gk.Engine = "rego"
) -> tuple[list[CaseResult], list[PolicykitError]]:
    """Every policykit test, gator suite and kyverno test under ``paths``
    (files or directories), and the input errors met on the way (a bad file
    never hides the results of the others). In directories, policykit tests
    (``policykit.dev/v1alpha1`` ``Test``) and gator suites are recognised by
    their apiVersion/kind and kyverno tests by the name ``kyverno-test.yaml``;
    a file named explicitly is read as any of them."""
    results: list[CaseResult] = []
    errors: list[PolicykitError] = []
    templates = _Templates(engine)
    explicit = {Path(p) for p in paths if not is_dir(p)}
    found = 0
    for path in _walk(paths):
        if missing(path):
            errors.append(InputError("no such file or directory", loc=SourceLoc(path.as_posix())))
            continue
        try:
            text = read_text(path, name=path.as_posix(), error=InputError)
        except PolicykitError as exc:
            errors.append(exc)
            continue
        if path.name in ("kyverno-test.yaml", "kyverno-test.yml") or (
            path in explicit and KYVERNO_TEST_API in text and "kind: Test" in text
        ):
            found += 1
            got, errs = run_kyverno_test(path, text)
            results += got
            errors += errs
            continue
        if _PK_TEST_API.search(text) and _PK_TEST_KIND.search(text):
            from policykit import rule_tests

            found += 1
            got, errs = rule_tests.run_test_file(path, text)
            results += got
            errors += errs
            continue
        if "test.gatekeeper.sh" not in text and path not in explicit:
            continue
        loaded = load_file(path, path.as_posix())
        if path in explicit:
            errors += loaded.errors
        for doc in loaded.documents:
            if doc.obj.get("apiVersion") == SUITE_API and doc.obj.get("kind") == "Suite":
                found += 1
                got, errs = run_gator(doc, text, templates)
                results += got
                errors += errs
    if not found and not errors:
        errors.append(
            InputError(
                "no policykit Test, gator Suite or kyverno-test.yaml found",
                loc=SourceLoc(", ".join(paths)),
                hint="name test files or their folders",
            )
        )
    return results, errors
