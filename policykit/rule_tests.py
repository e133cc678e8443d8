"""policykit's own rule tests: ``policykit.dev/v1alpha1`` ``Test`` files.

A test file (``schemas/test.schema.json``) lists cases; each names objects
(inline, or a file) and the rules that must fire on them, by severity — the
set of rule ids of each severity must be exactly the expected one (``clean``:
no finding at all). A case may restrict the rules evaluated with ``rules``.

Cases run on the reference engine; ``policykit verify`` proves that every
target (OPA bundle, Gatekeeper, Kyverno, VAP, JSON Schema) agrees with it, so
a rule is tested once, not once per target. The objects of a case are its
inventory: a cross-object rule (``objects()``) sees the other objects of the
same case.

Packs and parameters come from the file (``packs``, ``params``) or else from
the configuration found from the file's directory (``policykit.yaml``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import jsonschema

from policykit.config import find_config
from policykit.engines.native import NativeEngine, uses_inventory
from policykit.errors import InputError, PolicykitError, SourceLoc
from policykit.ir.rule import Pack
from policykit.loader import load_file, yaml_documents
from policykit.loader.lines import YamlLines
from policykit.model import Document
from policykit.packs import load_packs
from policykit.resources import load_schema
from policykit.safeio import MAX_DEPTH, depth_excess, is_file

SEVERITIES = ("deny", "warn", "info")

CaseStatus = Literal["pass", "fail", "skipped", "error"]


@dataclasses.dataclass(frozen=True, slots=True)
class CaseResult:
    """One case of ``policykit test``, whatever ran it: a policykit Test case, a gator
    Suite assertion or a kyverno test result (:mod:`policykit.existing.suites`)."""

    suite: str
    name: str
    status: CaseStatus
    reason: str
    file: str
    line: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "file": self.file,
            "line": self.line,
        }


_SOURCES = ("object", "objects", "file")

Expected = dict[str, frozenset[str]]


def _schema_error(test: Any, file: str, lines: YamlLines) -> InputError | None:
    validator = jsonschema.Draft202012Validator(load_schema("test.schema.json"))
    errors = sorted(validator.iter_errors(test), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    e = jsonschema.exceptions.best_match(errors)
    path = list(e.absolute_path)
    where = ".".join(str(x) for x in path) or "(top level)"
    message = e.message
    if e.validator == "oneOf" and len(path) == 2 and path[0] == "cases":
        message = "a case names exactly one of object, objects or file"
    elif e.validator == "oneOf" and path[-1:] == ["expect"]:
        message = "expect is 'clean' or a mapping of deny/warn/info to lists of rule ids"
    return InputError(
        f"{where}: {message}",
        loc=SourceLoc(file, lines.line(*path)),
        hint="see schemas/test.schema.json",
    )


def _expected(value: Any) -> Expected:
    if value == "clean":
        return {s: frozenset() for s in SEVERITIES}
    return {s: frozenset(value.get(s) or ()) for s in SEVERITIES}


def _show(by_severity: Mapping[str, frozenset[str]]) -> str:
    parts = [f"{s} [{', '.join(sorted(ids))}]" for s, ids in by_severity.items() if ids]
    return "; ".join(parts) or "clean"


class _Packs:
    """The packs and parameters of one test file."""

    def __init__(self, test: dict[str, Any], path: Path, lines: YamlLines) -> None:
        config = find_config(path.parent)
        loc = SourceLoc(path.as_posix(), lines.line("packs"))
        if "packs" in test:
            self.packs = load_packs(list(test["packs"]), base=path.parent)
        elif config.packs:
            self.packs = load_packs(config.packs)
        else:
            raise InputError(
                "no packs: the file names none and no policykit.yaml was found from its directory",
                loc=loc,
                hint="add packs: [...] to the test, or a policykit.yaml",
            )
        self.params = {k: dict(v) for k, v in config.params.items()}
        for pack, values in (test.get("params") or {}).items():
            self.params.setdefault(pack, {}).update(values)
        self.ids = {r.id for p in self.packs for r in p.rules}
        self.engine = NativeEngine(self.packs, self.params)  # checks the parameters once

    def only(self, rules: list[str] | None) -> tuple[list[Pack], NativeEngine]:
        if not rules:
            return self.packs, self.engine
        keep = set(rules)
        packs = [
            dataclasses.replace(p, rules=tuple(r for r in p.rules if r.id in keep))
            for p in self.packs
        ]
        packs = [p for p in packs if p.rules]
        return packs, NativeEngine(packs, self.params)


def _case_objects(
    case: dict[str, Any], path: Path, line: int, errors: list[PolicykitError]
) -> list[Document]:
    file = path.as_posix()
    if "object" in case:
        return [Document(case["object"], file, 0, line)]
    if "objects" in case:
        return [Document(o, file, i, line) for i, o in enumerate(case["objects"])]
    ref = str(case["file"])
    if Path(ref).is_absolute():
        errors.append(
            InputError(f"absolute path {ref!r} is not allowed", loc=SourceLoc(file, line))
        )
        return []
    target = path.parent / ref
    if not is_file(target):  # never raises (an over-long name is not a file)
        errors.append(
            InputError(
                f"file {ref} does not exist",
                loc=SourceLoc(file, line),
                hint="paths are relative to the test file",
            )
        )
        return []
    loaded = load_file(target, target.as_posix())
    errors.extend(loaded.errors)
    return loaded.documents


def run_test_file(path: Path, text: str) -> tuple[list[CaseResult], list[PolicykitError]]:
    """Every case of one test file (a single Test document)."""
    file = path.as_posix()
    errors: list[PolicykitError] = []
    found: list[InputError] = []
    parsed = list(yaml_documents(text, file, found))
    if found:
        return [], list(found)
    if len(parsed) != 1:
        return [], [
            InputError(
                f"a test file holds one Test document (found {len(parsed)})",
                loc=SourceLoc(file),
                hint="put each Test in a file of its own",
            )
        ]
    test, _, node = parsed[0]
    if depth_excess(test):
        return [], [
            InputError(
                f"nested more than {MAX_DEPTH} levels deep; refused",
                loc=SourceLoc(file),
                hint="flatten it",
            )
        ]
    lines = YamlLines.of_node(node)
    bad = _schema_error(test, file, lines)
    if bad is not None:
        return [], [bad]
    try:
        packs = _Packs(test, path, lines)
    except PolicykitError as exc:
        if exc.loc is None:
            exc.loc = SourceLoc(file, lines.line("packs"))
        return [], [exc]
    suite = str((test.get("metadata") or {}).get("name") or file)
    out: list[CaseResult] = []
    for i, case in enumerate(test["cases"]):
        line = lines.line("cases", i)
        want = _expected(case["expect"])
        expected_ids = {r for ids in want.values() for r in ids}
        unknown = sorted(
            {r for r in case.get("rules") or [] if r not in packs.ids}
            | {r for r in expected_ids if r not in packs.ids}
        )
        if unknown:
            errors.append(
                InputError(
                    f"case {case['name']!r} names rules no pack defines: {', '.join(unknown)}",
                    loc=SourceLoc(file, line),
                    hint="`policykit rules` lists them",
                )
            )
            continue
        outside = sorted(expected_ids - set(case["rules"])) if case.get("rules") else []
        if outside:
            errors.append(
                InputError(
                    f"case {case['name']!r} expects {', '.join(outside)}, which its rules "
                    "leave out: it can never pass",
                    loc=SourceLoc(file, lines.line("cases", i, "rules")),
                    hint="add them to rules, or drop rules to evaluate every rule",
                )
            )
            continue
        docs = _case_objects(case, path, lines.line("cases", i, "file"), errors)
        if not docs:
            continue
        selected, engine = packs.only(case.get("rules"))
        if uses_inventory(selected):
            engine.set_inventory([d.obj for d in docs])
        findings = engine.evaluate_all(docs)
        got = {s: frozenset(f.rule for f in findings if f.severity == s) for s in SEVERITIES}
        if got == want:
            out.append(CaseResult(suite, case["name"], "pass", _show(got), file, line))
            continue
        unexpected = [f for f in findings if f.rule not in want[f.severity]]
        detail = f" ({unexpected[0].rule}: {unexpected[0].message})" if unexpected else ""
        out.append(
            CaseResult(
                suite,
                case["name"],
                "fail",
                f"expected {_show(want)}, got {_show(got)}{detail}",
                file,
                line,
            )
        )
    return out, errors
