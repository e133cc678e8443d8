"""Machine report formats for CI: SARIF 2.1.0, JUnit XML and GitHub workflow
commands; :func:`render` gives any format of a check report or a verify result
(the JSON documents are the results' own ``to_json()``).

* **SARIF**: one ``reportingDescriptor`` per rule of the selected packs (id,
  name, short/full description, help from the remediation, default level from
  the severity: deny → error, warn → warning, info → note); one result per
  finding with its file and line (a ``physicalLocation``), the object as a
  ``logicalLocation`` and a stable ``partialFingerprints`` entry so code
  scanning tracks a finding across commits; input errors as tool execution
  notifications. Validated against the SARIF 2.1.0 schema in tests.
* **JUnit**: one ``testsuite`` per pack, one ``testcase`` per rule and object the
  rule applies to. A finding at or above ``--fail-on`` (default deny) is a
  ``failure``; one below it, or baselined or waived, passes, with its severity
  and message in ``system-out`` and a ``severity`` property, as test runners
  report a passing test's output. An expired waiver, which fails the run, is a
  failing case of a ``waivers`` suite; input errors are ``error`` cases. So the
  document fails (failures or errors) exactly when ``check`` exits non-zero.
* **GitHub**: one ``::error``/``::warning``/``::notice`` workflow command per
  finding with ``file`` and ``line``; values escaped as the runner requires.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree as ET

from policykit import __version__
from policykit.errors import PolicykitError
from policykit.ir.rule import SEVERITY_RANK, Pack, Rule
from policykit.model import Finding, ObjectRef

REPORT_VERSION = 1
"""The ``check --format json`` document's version (schemas/report.schema.json)."""
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"deny": "error", "warn": "warning", "info": "note"}
GITHUB = {"deny": "error", "warn": "warning", "info": "notice"}
INFO_URI = "https://github.com/policykit/policykit"


@dataclass(frozen=True, slots=True)
class Checked:
    """An object and the rules that applied to it (for JUnit's passing cases)."""

    file: str
    line: int
    doc_index: int
    object: ObjectRef
    rules: tuple[tuple[str, str], ...]  # (pack, rule id)


def _uri(path: str) -> str:
    """A URI reference: relative to the working directory (what code scanning
    resolves against the repository root) when possible, else ``file://``."""
    if not path:
        return "stdin"
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.relative_to(Path.cwd())
        except ValueError:
            return p.as_uri()
    return quote(p.as_posix(), errors="backslashreplace")


def fingerprint(f: Finding) -> str:
    """Stable across runs and line moves: rule, file, object and item."""
    key = "\x1f".join(
        [f.pack, f.rule, f.file, str(f.object), "" if f.item is None else str(f.item)]
    )
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _rule_name(rule: Rule) -> str:
    words = re.findall(r"[A-Za-z0-9]+", rule.title)
    return "".join(w[:1].upper() + w[1:] for w in words) or rule.id


def _descriptor(pack: Pack, rule: Rule) -> dict[str, Any]:
    help_text = rule.remediation or rule.description or rule.title
    return {
        "id": rule.id,
        "name": _rule_name(rule),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.description or rule.title},
        "help": {"text": help_text},
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {
            "pack": pack.name,
            "packVersion": pack.version,
            "severity": rule.severity,
            "tags": list(rule.tags),
        },
    }


def _rule_table(packs: Sequence[Pack]) -> tuple[list[dict[str, Any]], dict[tuple[str, str], int]]:
    """The ``reportingDescriptor`` of every rule, and (pack, rule id) → its index."""
    rules: list[dict[str, Any]] = []
    index: dict[tuple[str, str], int] = {}
    for p in packs:
        for r in p.rules:
            index[(p.name, r.id)] = len(rules)
            rules.append(_descriptor(p, r))
    return rules, index


def _physical(file: str, line: int) -> dict[str, Any]:
    return {"artifactLocation": {"uri": _uri(file)}, "region": {"startLine": max(line, 1)}}


def _log(tool: str, rules: list[dict[str, Any]], run: dict[str, Any]) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run of ``tool``."""
    driver = {"name": tool, "version": __version__, "informationUri": INFO_URI, "rules": rules}
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, **run}],
    }


def sarif(
    packs: Sequence[Pack],
    findings: Iterable[Finding],
    errors: Sequence[PolicykitError] = (),
    extra_rules: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run; ``extra_rules`` are descriptors of rules
    outside the packs (``check --policy``), each with ``properties.pack``."""
    rules, index = _rule_table(packs)
    for d in extra_rules:
        key = (str(d.get("properties", {}).get("pack", "")), str(d["id"]))
        if key not in index:
            index[key] = len(rules)
            rules.append(dict(d))
    results = []
    for f in findings:
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "level": LEVELS[f.severity],
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": _physical(f.file, f.line),
                    "logicalLocations": [{"fullyQualifiedName": str(f.object), "kind": "object"}],
                }
            ],
            "partialFingerprints": {"policykit/v1": fingerprint(f)},
            "baselineState": "unchanged" if f.baselined else "new",
            **(
                {
                    "suppressions": [
                        {
                            "kind": "external",
                            "status": "accepted",
                            "justification": f"{f.waiver.reason} (owner {f.waiver.owner}, "
                            f"expires {f.waiver.expires})",
                        }
                    ]
                }
                if f.waiver is not None
                else {}
            ),
            "properties": {"pack": f.pack, "object": f.object.to_json()},
        }
        if (f.pack, f.rule) in index:
            result["ruleIndex"] = index[(f.pack, f.rule)]
        if f.item is not None:
            result["properties"]["item"] = f.item
        results.append(result)
    notes = []
    for e in errors:
        note: dict[str, Any] = {
            "level": "error",
            "message": {"text": f"{e.code} {e.message}" + (f" ({e.hint})" if e.hint else "")},
        }
        if e.loc:
            note["locations"] = [{"physicalLocation": _physical(e.loc.file, e.loc.line)}]
        notes.append(note)
    return _log(
        "policykit",
        rules,
        {
            "invocations": [
                {"executionSuccessful": not errors, "toolExecutionNotifications": notes}
            ],
            "results": results,
        },
    )


def junit(
    packs: Sequence[Pack],
    checked: Sequence[Checked],
    findings: Sequence[Finding],
    errors: Sequence[PolicykitError] = (),
    *,
    fail_on: str = "deny",
    expired: Sequence[str] = (),
) -> str:
    """JUnit XML: per pack a suite, per (rule, applicable object) a test case,
    failing on a finding at or above ``fail_on``; ``expired``: the expired
    waivers (each a failing case, as each fails the run)."""
    bar = SEVERITY_RANK[fail_on]
    # keyed by the object too: the items of a `kind: List` share file and index
    by_case: dict[tuple[str, str, str, int, str], list[Finding]] = {}
    for f in findings:
        by_case.setdefault((f.pack, f.rule, f.file, f.doc_index, str(f.object)), []).append(f)
    root = ET.Element("testsuites", name="policykit")
    total = fails = 0
    for pack in packs:
        suite = ET.SubElement(root, "testsuite", name=f"{pack.name}@{pack.version}")
        n = nf = 0
        for c in checked:
            for pack_name, rule_id in c.rules:
                if pack_name != pack.name:
                    continue
                n += 1
                case = ET.SubElement(
                    suite,
                    "testcase",
                    classname=f"{pack.name}.{rule_id}",
                    name=f"{c.object} ({c.file or 'stdin'}:{c.line})",
                    file=c.file,
                    line=str(c.line),
                )
                hits = by_case.get((pack.name, rule_id, c.file, c.doc_index, str(c.object)), [])
                failing = [h for h in hits if SEVERITY_RANK[h.severity] >= bar and not h.accepted]
                passing = [h for h in hits if h not in failing]
                if hits:
                    worst = max(hits, key=lambda h: SEVERITY_RANK[h.severity]).severity
                    props = ET.SubElement(case, "properties")
                    ET.SubElement(props, "property", name="severity", value=worst)
                if failing:
                    nf += 1
                    fail = ET.SubElement(
                        case,
                        "failure",
                        message=failing[0].message,
                        type=failing[0].severity,
                    )
                    fail.text = "\n".join(h.message for h in failing)
                if passing:
                    ET.SubElement(case, "system-out").text = "\n".join(
                        f"{h.severity}{_accepted(h)}: {h.message}" for h in passing
                    )
        suite.set("tests", str(n))
        suite.set("failures", str(nf))
        suite.set("errors", "0")
        total, fails = total + n, fails + nf
    if expired:
        suite = ET.SubElement(root, "testsuite", name="waivers", tests=str(len(expired)))
        suite.set("failures", str(len(expired)))
        suite.set("errors", "0")
        for line in expired:
            case = ET.SubElement(suite, "testcase", classname="waivers", name=line)
            ET.SubElement(case, "failure", message=f"expired: {line}", type="expired")
        total, fails = total + len(expired), fails + len(expired)
    if errors:
        suite = ET.SubElement(root, "testsuite", name="input", tests=str(len(errors)))
        suite.set("failures", "0")
        suite.set("errors", str(len(errors)))
        for e in errors:
            case = ET.SubElement(
                suite, "testcase", classname="input", name=e.loc.file if e.loc else "input"
            )
            ET.SubElement(case, "error", message=e.one_line(), type=e.code)
    root.set("tests", str(total + len(errors)))
    root.set("failures", str(fails))
    root.set("errors", str(len(errors)))
    return _xml(root)


def _accepted(f: Finding) -> str:
    if f.baselined:
        return " (baselined)"
    return " (waived)" if f.waiver is not None else ""


# characters XML 1.0 cannot carry, even escaped (C0 controls but tab/LF/CR,
# surrogates, U+FFFE/U+FFFF)
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c <= 0xFF else f"\\u{c:04x}"


def _xml(root: ET.Element) -> str:
    """An XML document of ``root``, well-formed whatever the text in it: a
    character XML 1.0 forbids is written ``\\xNN`` (markup itself is ASCII)."""
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + _XML_ILLEGAL.sub(_xml_escape, text) + "\n"


def _gh_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(s: str) -> str:
    return _gh_data(s).replace(":", "%3A").replace(",", "%2C")


def github(findings: Iterable[Finding], errors: Sequence[PolicykitError] = ()) -> str:
    """GitHub Actions workflow commands (annotations), one per line."""
    lines = []
    for f in findings:
        if f.accepted:
            continue
        props = [f"file={_gh_prop(f.file)}"] if f.file else []
        if f.file and f.line:
            props.append(f"line={f.line}")
        props.append(f"title={_gh_prop(f'{f.rule} ({f.severity})')}")
        lines.append(
            f"::{GITHUB[f.severity]} {','.join(props)}::{_gh_data(f'{f.object}: {f.message}')}"
        )
    for e in errors:
        props = []
        if e.loc:
            props.append(f"file={_gh_prop(e.loc.file)}")
            if e.loc.line:
                props.append(f"line={e.loc.line}")
        props.append(f"title={_gh_prop(e.code)}")
        lines.append(f"::error {','.join(props)}::{_gh_data(e.message)}")
    return "".join(line + "\n" for line in lines)


def dumps_sarif(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def verify_junit(report: Any) -> str:
    """``verify`` as JUnit XML: per target a suite, per object compared a case,
    failing with the disagreements found on it."""
    by_obj: dict[tuple[str, str, int, str], list[Any]] = {}
    for m in report.mismatches:
        by_obj.setdefault((m.target, m.file, m.doc_index, m.object), []).append(m)
    root = ET.Element("testsuites", name="policykit verify")
    total = fails = 0
    for target in sorted({c[0] for c in report.checked}):
        suite = ET.SubElement(root, "testsuite", name=target)
        n = nf = 0
        for t, file, doc, ref in report.checked:
            if t != target:
                continue
            n += 1
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"verify.{target}",
                name=f"{ref} ({file or 'stdin'}#{doc})",
            )
            bad = by_obj.get((t, file, doc, ref), [])
            if bad:
                nf += 1
                many = "disagreement" if len(bad) == 1 else "disagreements"
                fail = ET.SubElement(case, "failure", message=f"{len(bad)} {many}")
                fail.text = "\n".join(
                    f"{m.rule}: expected {m.expected!r}, got {m.got!r}" for m in bad
                )
        suite.set("tests", str(n))
        suite.set("failures", str(nf))
        total, fails = total + n, fails + nf
    root.set("tests", str(total))
    root.set("failures", str(fails))
    return _xml(root)


def verify_github(report: Any) -> str:
    """``verify`` disagreements as GitHub workflow annotations."""
    lines = []
    for m in report.mismatches:
        props = [f"file={_gh_prop(m.file)}"] if m.file else []
        props.append(f"title={_gh_prop(f'policykit verify: {m.target} disagrees')}")
        text = f"{m.rule} (document {m.doc_index}): expected {m.expected!r}, got {m.got!r}"
        lines.append(f"::error {','.join(props)}::{_gh_data(text)}")
    return "".join(line + "\n" for line in lines)


def verify_sarif(report: Any, packs: Sequence[Pack]) -> dict[str, Any]:
    """``verify`` disagreements as SARIF 2.1.0: one result per (target, object,
    rule) that disagrees, at error level, located at the object's file."""
    rules, table = _rule_table(packs)
    index: dict[str, int] = {}
    for (_, rule_id), i in table.items():
        index.setdefault(rule_id, i)
    results = []
    for m in report.mismatches:
        result: dict[str, Any] = {
            "ruleId": m.rule,
            "level": "error",
            "message": {
                "text": f"target {m.target} disagrees with the reference on "
                f"{m.object or 'the object'}: expected {m.expected!r}, got {m.got!r}"
            },
            "locations": [
                {
                    "physicalLocation": _physical(m.file, 1),
                    "logicalLocations": [
                        {"fullyQualifiedName": m.object or m.file, "kind": "object"}
                    ],
                }
            ],
            "properties": {"target": m.target, "document": m.doc_index},
        }
        if m.rule in index:
            result["ruleIndex"] = index[m.rule]
        results.append(result)
    return _log("policykit verify", rules, {"results": results})


# --- policykit test ---------------------------------------------------------------


def cases_json(cases: Sequence[Any]) -> dict[str, Any]:
    """``policykit test --format json`` (schemas/test-report.schema.json)."""
    counts = {
        s: sum(1 for c in cases if c.status == s) for s in ("pass", "fail", "skipped", "error")
    }
    summary = {
        "total": len(cases),
        "passed": counts["pass"],
        "failed": counts["fail"],
        "skipped": counts["skipped"],
    }
    if counts["error"]:  # input errors: the files that could not be run
        summary["errors"] = counts["error"]
    return {
        "tool": "policykit",
        "version": __version__,
        "cases": [c.to_json() for c in cases],
        "summary": summary,
    }


def cases_junit(cases: Sequence[Any]) -> str:
    """``policykit test`` as JUnit XML: a suite per test file, a case per expectation."""
    root = ET.Element("testsuites", name="policykit test")
    suites: dict[str, list[Any]] = {}
    for c in cases:
        suites.setdefault(c.suite, []).append(c)
    totals = [0, 0, 0, 0]
    for name, items in suites.items():
        suite = ET.SubElement(root, "testsuite", name=name, file=items[0].file)
        nf = ns = ne = 0
        for c in items:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"test.{name}",
                name=c.name,
                file=c.file,
                line=str(c.line),
            )
            if c.status == "fail":
                nf += 1
                ET.SubElement(case, "failure", message=c.reason).text = c.reason
            elif c.status == "skipped":
                ns += 1
                ET.SubElement(case, "skipped", message=c.reason)
            elif c.status == "error":
                ne += 1
                ET.SubElement(case, "error", message=c.reason).text = c.reason
        suite.set("tests", str(len(items)))
        suite.set("failures", str(nf))
        suite.set("skipped", str(ns))
        suite.set("errors", str(ne))
        totals = [totals[0] + len(items), totals[1] + nf, totals[2] + ns, totals[3] + ne]
    root.set("tests", str(totals[0]))
    root.set("failures", str(totals[1]))
    root.set("skipped", str(totals[2]))
    root.set("errors", str(totals[3]))
    return _xml(root)


def cases_github(cases: Sequence[Any]) -> str:
    """Failed cases as ``::error`` annotations, skipped ones as ``::warning``."""
    lines = []
    for c in cases:
        if c.status == "pass":
            continue
        level = "error" if c.status in ("fail", "error") else "warning"
        props = [f"file={_gh_prop(c.file)}", f"line={max(c.line, 1)}"]
        props.append(f"title={_gh_prop(f'policykit test: {c.suite} {c.status}')}")
        lines.append(f"::{level} {','.join(props)}::{_gh_data(f'{c.name}: {c.reason}')}")
    return "".join(line + "\n" for line in lines)


def cases_sarif(cases: Sequence[Any]) -> dict[str, Any]:
    """Failed and skipped cases as SARIF 2.1.0 results (error / note), one
    reporting descriptor per suite, located at the expectation's line."""
    suites = sorted({c.suite for c in cases})
    rules = [
        {
            "id": s,
            "name": "PolicyTestSuite",
            "shortDescription": {"text": f"policy test suite {s}"},
            "defaultConfiguration": {"level": "error"},
        }
        for s in suites
    ]
    results = [
        {
            "ruleId": c.suite,
            "ruleIndex": suites.index(c.suite),
            "level": "error" if c.status in ("fail", "error") else "note",
            "kind": "fail" if c.status in ("fail", "error") else "notApplicable",
            "message": {"text": f"{c.name}: {c.reason}"},
            "locations": [{"physicalLocation": _physical(c.file, c.line)}],
        }
        for c in cases
        if c.status != "pass"
    ]
    return _log("policykit test", rules, {"results": results})


def _json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


_CHECK: dict[str, Any] = {
    "json": lambda r, quiet: _json(r.to_json()),
    "sarif": lambda r, quiet: dumps_sarif(sarif(r.packs, r.findings, r.errors, r.rule_descriptors)),
    "junit": lambda r, quiet: junit(
        r.packs, r.checked, r.findings, r.errors, fail_on=r.fail_on, expired=r.expired_waivers
    ),
    "github": lambda r, quiet: github(r.findings, r.errors),
}
_VERIFY: dict[str, Any] = {
    "json": lambda v, quiet: _json(v.to_json()),
    "sarif": lambda v, quiet: dumps_sarif(verify_sarif(v.report, v.packs)),
    "junit": lambda v, quiet: verify_junit(v.report),
    "github": lambda v, quiet: verify_github(v.report),
    "table": lambda v, quiet: v.table(quiet),
}


_CASES: dict[str, Any] = {
    "json": lambda t, quiet: _json(t.to_json()),
    "sarif": lambda t, quiet: dumps_sarif(cases_sarif(t.cases)),
    "junit": lambda t, quiet: cases_junit(t.cases),
    "github": lambda t, quiet: cases_github(t.cases),
    "table": lambda t, quiet: t.table(quiet),
}


def render(result: Any, fmt: str, *, quiet: bool = False) -> str:
    """``result`` in ``fmt``: a check report (:class:`policykit.api.CheckReport`:
    json, sarif, junit, github; its table is the terminal's, drawn by the
    command line) or a verify result (:class:`policykit.api.VerifyResult`: also
    table) or a test result (:class:`policykit.api.TestResult`: also table).
    ``quiet``: only the disagreements or failures (the tables)."""
    if hasattr(result, "cases"):
        formats = _CASES
    else:
        formats = _VERIFY if hasattr(result, "not_run") else _CHECK
    if fmt not in formats:
        raise ValueError(f"no {fmt!r} format for {type(result).__name__}")
    text: str = formats[fmt](result, quiet)
    return text
