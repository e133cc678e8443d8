"""``policykit test`` results (the test cases) as JSON, JUnit XML, GitHub
annotations and SARIF (:func:`policykit.reports.render` picks the format)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from policykit import __version__
from policykit.report_markup import gh_data, gh_prop, physical, sarif_log, xml_document


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
    from xml.etree import ElementTree as ET  # JUnit only: not on check's path

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
    return xml_document(root)


def cases_github(cases: Sequence[Any]) -> str:
    """Failed cases as ``::error`` annotations, skipped ones as ``::warning``."""
    lines = []
    for c in cases:
        if c.status == "pass":
            continue
        level = "error" if c.status in ("fail", "error") else "warning"
        props = [f"file={gh_prop(c.file)}", f"line={max(c.line, 1)}"]
        props.append(f"title={gh_prop(f'policykit test: {c.suite} {c.status}')}")
        lines.append(f"::{level} {','.join(props)}::{gh_data(f'{c.name}: {c.reason}')}")
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
            "locations": [{"physicalLocation": physical(c.file, c.line)}],
        }
        for c in cases
        if c.status != "pass"
    ]
    return sarif_log("policykit test", rules, {"results": results})
