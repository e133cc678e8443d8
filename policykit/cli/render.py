"""Rendering reports for people (rich tables) and machines (JSON)."""

from __future__ import annotations

import json
from itertools import groupby
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from policykit import __version__
from policykit.api import CheckReport
from policykit.ir.rule import Pack

REPORT_VERSION = 1
_STYLE = {"deny": "bold red", "warn": "yellow", "info": "cyan"}


def report_json(report: CheckReport) -> dict[str, Any]:
    """The ``--format json`` document (schema: schemas/report.schema.json)."""
    return {
        "version": REPORT_VERSION,
        "tool": {"name": "policykit", "version": __version__},
        "packs": [{"name": p.name, "version": p.version} for p in report.packs],
        "findings": [f.to_json() for f in report.findings],
        "errors": [
            {
                "file": e.loc.file if e.loc else "",
                "line": e.loc.line if e.loc else 0,
                "code": e.code,
                "message": e.message + (f" ({e.hint})" if e.hint else ""),
            }
            for e in report.errors
        ],
        "skipped": [
            {"file": s.file, "line": s.line, "documentIndex": s.index, "reason": s.reason}
            for s in report.skipped
        ],
        "summary": {
            "files": report.files,
            "objects": report.objects,
            "findings": report.counts(),
            "errors": len(report.errors),
            "skipped": len(report.skipped),
            **(
                {"baselined": sum(f.baselined for f in report.findings), "fixed": report.fixed}
                if report.fixed is not None
                else {}
            ),
            "waived": sum(f.waiver is not None for f in report.findings),
        },
        "waivers": {"expired": report.expired_waivers, "stale": report.stale_waivers},
        "unsupported": report.unsupported,
    }


def print_json(console: Console, doc: dict[str, Any]) -> None:
    console.file.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def print_table(console: Console, report: CheckReport) -> None:
    shown = [f for f in report.findings if not f.accepted]
    for file, group in groupby(shown, key=lambda f: f.file):
        table = Table(
            title=Text(file or "<stdin>", style="bold"),
            title_justify="left",
            show_lines=False,
            expand=False,
        )
        table.add_column("line", justify="right", style="dim")
        table.add_column("rule", no_wrap=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("object", overflow="fold")
        table.add_column("message", overflow="fold")
        for f in group:
            table.add_row(
                str(f.line),
                f.rule,
                Text(f.severity, style=_STYLE[f.severity]),
                Text(str(f.object)),
                Text(f.message),  # user text, never rich markup ("[a, b]" would vanish)
            )
        console.print(table)
    c = report.counts()
    summary = Text()
    summary.append(f"{report.objects} objects in {report.files} files: ")
    summary.append(f"{c['deny']} deny", style=_STYLE["deny"] if c["deny"] else "")
    summary.append(", ")
    summary.append(f"{c['warn']} warn", style=_STYLE["warn"] if c["warn"] else "")
    summary.append(f", {c['info']} info")
    if report.fixed is not None:
        summary.append(
            f"; {sum(f.baselined for f in report.findings)} baselined (not shown), "
            f"{report.fixed} baseline entries fixed"
        )
    waived = sum(f.waiver is not None for f in report.findings)
    if waived:
        summary.append(f"; {waived} waived (not shown)")
    if report.expired_waivers:
        summary.append(f"; {len(report.expired_waivers)} expired waivers", style="bold red")
    if report.stale_waivers:
        summary.append(f"; {len(report.stale_waivers)} stale waivers", style="yellow")
    if report.skipped:
        summary.append(f"; {len(report.skipped)} documents skipped (not objects)")
    if report.unsupported:
        summary.append(
            f"; {len(report.unsupported)} policies skipped (unsupported)", style="yellow"
        )
    if report.errors:
        summary.append(f"; {len(report.errors)} input errors", style="bold red")
    console.print(summary)


def rules_json(packs: list[Pack]) -> dict[str, Any]:
    return {
        "version": REPORT_VERSION,
        "rules": [
            {
                "id": r.id,
                "pack": p.name,
                "packVersion": p.version,
                "severity": r.severity,
                "title": r.title,
                "description": r.description,
                "remediation": r.remediation,
                "tags": list(r.tags),
            }
            for p in packs
            for r in p.rules
        ],
    }


def print_rules_table(console: Console, packs: list[Pack]) -> None:
    table = Table(show_lines=False)
    for col in ("rule", "pack", "severity", "title"):
        table.add_column(col, overflow="fold")
    for p in packs:
        for r in p.rules:
            table.add_row(
                r.id,
                f"{p.name}@{p.version}",
                Text(r.severity, style=_STYLE[r.severity]),
                Text(r.title),
            )
    console.print(table)
