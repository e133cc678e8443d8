"""``policykit verify`` results as JUnit XML, GitHub annotations and SARIF
(:func:`policykit.reports.render` picks the format)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from policykit.ir.rule import Pack
from policykit.report_markup import gh_data, gh_prop, physical, rule_table, sarif_log, xml_document
from policykit.verify_core import NOT_COMPARED


def verify_junit(report: Any) -> str:
    """``verify`` as JUnit XML: per target a suite, per object compared a case,
    failing with the disagreements found on it."""
    from xml.etree import ElementTree as ET  # JUnit only: not on check's path

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
    if report.left_out:  # what no target compared: skipped cases, never silence
        suite = ET.SubElement(root, "testsuite", name="left out", tests=str(len(report.left_out)))
        suite.set("failures", "0")
        suite.set("skipped", str(len(report.left_out)))
        for line in report.left_out:
            case = ET.SubElement(suite, "testcase", classname="verify.left-out", name=line)
            ET.SubElement(case, "skipped", message=line)
        total += len(report.left_out)
    root.set("tests", str(total))
    root.set("failures", str(fails))
    return xml_document(root)


def verify_github(report: Any) -> str:
    """``verify`` disagreements as GitHub workflow annotations."""
    lines = []
    for m in report.mismatches:
        props = [f"file={gh_prop(m.file)}"] if m.file else []
        props.append(f"title={gh_prop(f'policykit verify: {m.target} disagrees')}")
        text = f"{m.rule} (document {m.doc_index}): expected {m.expected!r}, got {m.got!r}"
        lines.append(f"::error {','.join(props)}::{gh_data(text)}")
    for line in report.left_out:
        if line.endswith(NOT_COMPARED):
            title = f"title={gh_prop('policykit verify: an object left out')}"
            lines.append(f"::warning {title}::{gh_data(line)}")
    return "".join(line + "\n" for line in lines)


def verify_sarif(report: Any, packs: Sequence[Pack]) -> dict[str, Any]:
    """``verify`` disagreements as SARIF 2.1.0: one result per (target, object,
    rule) that disagrees, at error level, located at the object's file."""
    rules, table = rule_table(packs)
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
                    "physicalLocation": physical(m.file, 1),
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
    # an object an engine could not read: a notification of the run, not a result
    notes = [
        {"level": "warning", "message": {"text": line}}
        for line in report.left_out
        if line.endswith(NOT_COMPARED)
    ]
    run: dict[str, Any] = {"results": results}
    if notes:
        run["invocations"] = [{"executionSuccessful": True, "toolExecutionNotifications": notes}]
    return sarif_log("policykit verify", rules, run)
