"""Machine report formats for CI: SARIF 2.1.0, JUnit XML and GitHub workflow
commands, and check's plain text lines (policykit/reports_text.py);
:func:`render` gives any format of a check report or a verify result (the JSON
documents are the results' own ``to_json()``).

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

import json
from collections.abc import Iterable, Sequence
from typing import Any

from policykit.errors import PolicykitError
from policykit.ir.rule import SEVERITY_RANK, Pack
from policykit.model import REPORT_VERSION as REPORT_VERSION
from policykit.model import Checked as Checked
from policykit.model import Finding
from policykit.report_markup import INFO_URI as INFO_URI
from policykit.report_markup import LEVELS as LEVELS
from policykit.report_markup import SARIF_SCHEMA as SARIF_SCHEMA
from policykit.report_markup import (
    gh_data,
    gh_prop,
    physical,
    rule_table,
    sarif_log,
    xml_document,
)
from policykit.reports_cases import cases_github, cases_junit, cases_sarif
from policykit.reports_cases import cases_json as cases_json
from policykit.reports_text import text as check_text
from policykit.reports_verify import verify_github as verify_github
from policykit.reports_verify import verify_junit as verify_junit
from policykit.reports_verify import verify_sarif as verify_sarif

GITHUB = {"deny": "error", "warn": "warning", "info": "notice"}


def fingerprint(f: Finding) -> str:
    """Stable across runs and line moves: rule, file, object and item."""
    key = "\x1f".join(
        [f.pack, f.rule, f.file, str(f.object), "" if f.item is None else str(f.item)]
    )
    import hashlib

    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def sarif(
    packs: Sequence[Pack],
    findings: Iterable[Finding],
    errors: Sequence[PolicykitError] = (),
    extra_rules: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run; ``extra_rules`` are descriptors of rules
    outside the packs (``check --policy``), each with ``properties.pack``."""
    rules, index = rule_table(packs)
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
                    "physicalLocation": physical(f.file, f.line),
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
            note["locations"] = [{"physicalLocation": physical(e.loc.file, e.loc.line)}]
        notes.append(note)
    return sarif_log(
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
    from xml.etree import ElementTree as ET  # JUnit only: not on check's path

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
    return xml_document(root)


def _accepted(f: Finding) -> str:
    if f.baselined:
        return " (baselined)"
    return " (waived)" if f.waiver is not None else ""


def github(findings: Iterable[Finding], errors: Sequence[PolicykitError] = ()) -> str:
    """GitHub Actions workflow commands (annotations), one per line."""
    lines = []
    for f in findings:
        if f.accepted:
            continue
        props = [f"file={gh_prop(f.file)}"] if f.file else []
        if f.file and f.line:
            props.append(f"line={f.line}")
        props.append(f"title={gh_prop(f'{f.rule} ({f.severity})')}")
        lines.append(
            f"::{GITHUB[f.severity]} {','.join(props)}::{gh_data(f'{f.object}: {f.message}')}"
        )
    for e in errors:
        props = []
        if e.loc:
            props.append(f"file={gh_prop(e.loc.file)}")
            if e.loc.line:
                props.append(f"line={e.loc.line}")
        props.append(f"title={gh_prop(e.code)}")
        lines.append(f"::error {','.join(props)}::{gh_data(e.message)}")
    return "".join(line + "\n" for line in lines)


def dumps_sarif(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _check_junit(r: Any) -> str:
    """A check report as JUnit: a case per rule and checked object, which the
    run must have recorded (``record_checked``); without them the report had no
    case at all and passed, whatever was found."""
    if not r.recorded and r.objects:
        raise ValueError(
            "a JUnit report needs the objects each rule checked: run the check with "
            "record_checked=True (CheckConfig), as `policykit check --format junit` does"
        )
    return junit(
        r.packs, r.checked, r.findings, r.errors, fail_on=r.fail_on, expired=r.expired_waivers
    )


_CHECK: dict[str, Any] = {
    "json": lambda r, quiet: _json(r.to_json()),
    "sarif": lambda r, quiet: dumps_sarif(sarif(r.packs, r.findings, r.errors, r.rule_descriptors)),
    "junit": lambda r, quiet: _check_junit(r),
    "github": lambda r, quiet: github(r.findings, r.errors),
    "text": lambda r, quiet: check_text(r, quiet=quiet),
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
    json, sarif, junit, github, text: a line per finding, policykit/reports_text.py;
    its terminal summary is drawn by the command line) or a verify result
    (:class:`policykit.api.VerifyResult`: also table) or a test result
    (:class:`policykit.api.TestResult`: also table). ``quiet``: only the
    findings, disagreements or failures (text and the tables: no summary)."""
    if hasattr(result, "cases"):
        formats = _CASES
    else:
        formats = _VERIFY if hasattr(result, "not_run") else _CHECK
    if fmt not in formats:
        raise ValueError(f"no {fmt!r} format for {type(result).__name__}")
    text: str = formats[fmt](result, quiet)
    return text
