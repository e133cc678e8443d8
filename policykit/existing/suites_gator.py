"""gator ``Suite`` files (``gator verify``), run without the Go binary: each
assertion of each case is one :class:`CaseResult`
(https://open-policy-agent.github.io/gatekeeper/website/docs/gator/)."""

from __future__ import annotations

import copy
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from policykit.errors import InputError, PolicykitError, SourceLoc
from policykit.existing.malformed import MALFORMED, malformed
from policykit.existing.suites_common import named_objects, relative_path, shape_error
from policykit.k8s import gatekeeper as gk
from policykit.loader.lines import YamlLines
from policykit.model import Document
from policykit.rule_tests import CaseResult, CaseStatus


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
    """Each template compiled once: per file for the run, and by content across
    files and runs (:data:`_COMPILED`), so a template repeated in several suites,
    or run again by a later ``collect`` in the same process, is not compiled
    again. A shared runner is given the location of the file that names it."""

    def __init__(self, engine: gk.Engine) -> None:
        self.engine = engine
        self.cache: dict[str, gk.TemplateRunner | gk.Unsupported | PolicykitError] = {}

    def get(self, doc: Document) -> gk.TemplateRunner:
        key = f"{doc.file}#{doc.index}"
        if key not in self.cache:
            where = SourceLoc(doc.file, doc.line)
            try:
                self.cache[key] = _compiled(doc.obj, self.engine, where)
            except PolicykitError as exc:
                self.cache[key] = exc
            except MALFORMED as exc:
                self.cache[key] = malformed("the ConstraintTemplate", where, exc)
        got = self.cache[key]
        if isinstance(got, PolicykitError):
            raise got
        return got


_COMPILED: OrderedDict[tuple[str, str], gk.TemplateRunner] = OrderedDict()
_COMPILED_MAX = 256


def _compiled(template: Any, engine: gk.Engine, where: SourceLoc) -> gk.TemplateRunner:
    """A runner for ``template`` (by its content and engine), located at ``where``.
    Templates that do not compile are not kept: their error names their file."""
    try:
        content = json.dumps(template, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):  # not JSON (a YAML date ...): compiled each time
        return gk.TemplateRunner(template, engine, where)
    key = (content, engine)
    runner = _COMPILED.get(key)
    if runner is None:
        runner = gk.TemplateRunner(template, engine, where)
        _COMPILED[key] = runner
        if len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
    else:
        _COMPILED.move_to_end(key)
    if runner.where == where:
        return runner
    located = copy.copy(runner)  # shares the compiled bundles, not the location
    located.where = where
    return located


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
    bad = shape_error(suite, "gator-suite.schema.json", doc.file, lines, "gator Suite")
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
            tpath = relative_path(base, test.get("template"), loc("template"), errors)
            cpath = relative_path(base, test.get("constraint"), loc("constraint"), errors)
            if tpath is None or cpath is None:
                continue
            template_doc = _one(
                named_objects(tpath, errors, "template", loc("template")),
                "the template file",
                loc("template"),
                errors,
            )
            constraint_doc = _one(
                named_objects(cpath, errors, "constraint", loc("constraint")),
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
                except MALFORMED as exc:  # the constraint or an object of the case
                    errors.append(
                        malformed(
                            f"the constraint or an object of case {cname!r}", loc("cases", ci), exc
                        )
                    )
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
    opath = relative_path(base, case.get("object"), loc, errors)
    if opath is None:
        return None
    obj_doc = _one(named_objects(opath, errors, "object", loc), "the object file", loc, errors)
    if obj_doc is None:
        return None
    inventory: list[dict[str, Any]] = []
    for ref in case.get("inventory") or []:
        ipath = relative_path(base, ref, loc, errors)
        if ipath is not None:
            inventory += [d.obj for d in named_objects(ipath, errors, "inventory file", loc)]
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
