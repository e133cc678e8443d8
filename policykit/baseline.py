"""Baselines: record today's findings, then fail only on new ones.

A baseline file (``schemas/baseline.schema.json``) lists findings by a stable
fingerprint — pack, rule, file, object and item; not the line (lines move when
a file is edited above the object) and not the message (it may quote values
that change). Matching is a multiset: two identical findings need two entries.
The file is written deterministically (sorted, no timestamps) and atomically.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policykit import __version__
from policykit.errors import PolicykitError, SourceLoc
from policykit.model import Finding
from policykit.reports import fingerprint
from policykit.resources import load_schema
from policykit.safeio import load_json, missing, read_text

VERSION = 1


class BaselineError(PolicykitError):
    """A baseline file that is missing, unreadable or not a baseline."""

    code = "PK007"


@dataclass(frozen=True, slots=True)
class Applied:
    findings: list[Finding]  # every finding, the baselined ones marked
    new: int
    baselined: int
    fixed: int  # baseline entries no finding matched any more


def document(findings: Sequence[Finding]) -> dict[str, Any]:
    entries = sorted(
        (
            {
                "fingerprint": fingerprint(f),
                "pack": f.pack,
                "rule": f.rule,
                "file": f.file,
                "object": str(f.object),
                "message": f.message,
            }
            for f in findings
        ),
        key=lambda e: (e["file"], e["object"], e["pack"], e["rule"], e["fingerprint"]),
    )
    return {"version": VERSION, "generator": f"policykit {__version__}", "findings": entries}


def dumps(findings: Sequence[Finding]) -> str:
    return json.dumps(document(findings), indent=2, ensure_ascii=False) + "\n"


def load(path: Path) -> Counter[str]:
    """Fingerprint counts of a baseline file."""
    if missing(path):
        raise BaselineError(
            "baseline file not found",
            loc=SourceLoc(str(path)),
            hint="create it with --update-baseline",
        )
    text = read_text(path, error=BaselineError)
    try:
        doc = load_json(text, str(path), error=BaselineError)
    except BaselineError as e:
        e.hint = e.hint or "regenerate it with --update-baseline"
        raise
    err = next(iter(_validator(load_schema("baseline.schema.json")).iter_errors(doc)), None)
    if err is not None:
        where = "/".join(str(p) for p in err.absolute_path) or "top level"
        raise BaselineError(
            f"not a policykit baseline ({where}: {err.message})",
            loc=SourceLoc(str(path)),
            hint="regenerate it with --update-baseline",
        )
    return Counter(e["fingerprint"] for e in doc["findings"])


def apply(findings: Sequence[Finding], baseline: Counter[str]) -> Applied:
    left = Counter(baseline)
    out: list[Finding] = []
    new = 0
    for f in findings:
        fp = fingerprint(f)
        if left[fp] > 0:
            left[fp] -= 1
            out.append(dataclasses.replace(f, baselined=True))
        else:
            new += 1
            out.append(f)
    return Applied(out, new, len(findings) - new, sum(left.values()))


def _validator(schema: dict[str, Any]) -> Any:
    """A JSON Schema validator; jsonschema is imported only when a file is read
    (``import policykit.cli`` stays light: tests/test_startup.py)."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema)
