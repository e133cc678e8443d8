"""The building blocks the report formats share (:mod:`policykit.reports`,
:mod:`policykit.reports_verify`, :mod:`policykit.reports_cases`): SARIF 2.1.0
locations, rule descriptors and logs, well-formed XML, and GitHub
workflow-command escaping."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from policykit import __version__
from policykit.ir.rule import Pack, Rule

if TYPE_CHECKING:
    from xml.etree import ElementTree as ET

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"deny": "error", "warn": "warning", "info": "note"}
INFO_URI = "https://github.com/policykit/policykit"


def uri(path: str) -> str:
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


def rule_name(rule: Rule) -> str:
    words = re.findall(r"[A-Za-z0-9]+", rule.title)
    return "".join(w[:1].upper() + w[1:] for w in words) or rule.id


def descriptor(pack: Pack, rule: Rule) -> dict[str, Any]:
    help_text = rule.remediation or rule.description or rule.title
    return {
        "id": rule.id,
        "name": rule_name(rule),
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


def rule_table(packs: Sequence[Pack]) -> tuple[list[dict[str, Any]], dict[tuple[str, str], int]]:
    """The ``reportingDescriptor`` of every rule, and (pack, rule id) → its index."""
    rules: list[dict[str, Any]] = []
    index: dict[tuple[str, str], int] = {}
    for p in packs:
        for r in p.rules:
            index[(p.name, r.id)] = len(rules)
            rules.append(descriptor(p, r))
    return rules, index


def physical(file: str, line: int) -> dict[str, Any]:
    return {"artifactLocation": {"uri": uri(file)}, "region": {"startLine": max(line, 1)}}


def sarif_log(tool: str, rules: list[dict[str, Any]], run: dict[str, Any]) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run of ``tool``."""
    driver = {"name": tool, "version": __version__, "informationUri": INFO_URI, "rules": rules}
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, **run}],
    }


# characters XML 1.0 cannot carry, even escaped (C0 controls but tab/LF/CR,
# surrogates, U+FFFE/U+FFFF)
# (compiled by the first XML document, and kept by ``re``: not on check's path)
_XML_ILLEGAL = "[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]"


def _xml_escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c <= 0xFF else f"\\u{c:04x}"


def xml_document(root: ET.Element) -> str:
    """An XML document of ``root``, well-formed whatever the text in it: a
    character XML 1.0 forbids is written ``\\xNN`` (markup itself is ASCII)."""
    from xml.etree import ElementTree as ET  # JUnit only: not on check's path

    ET.indent(root)
    text = ET.tostring(root, encoding="unicode")
    text = re.sub(_XML_ILLEGAL, _xml_escape, text)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n"


def gh_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def gh_prop(s: str) -> str:
    return gh_data(s).replace(":", "%3A").replace(",", "%2C")
