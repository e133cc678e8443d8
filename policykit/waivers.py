"""Waivers: accepted exceptions to a rule, with a reason, an owner and an expiry.

A waivers file (``policykit.waivers.yaml``, schema ``schemas/waivers.schema.json``)::

    waivers:
      - rule: K8S-002
        match: {kind: Deployment, namespace: prod-*, name: search-indexer}
        reason: vendor image, pinned upstream in Q1
        owner: team-search@acme.example
        expires: 2027-03-31

* a finding matching a waiver that has not expired is reported as *waived*
  and does not fail the run;
* an expired waiver waives nothing and fails the run with a message naming
  its owner (so exceptions cannot silently become permanent);
* a waiver that matches no finding is reported as *stale* (remove it).

``match`` narrows by ``pack``, ``apiVersion``, ``kind``, ``namespace``,
``name`` (exact, or a prefix ending in ``*``) and ``file`` (a glob); every
given key must match. Expiry is inclusive: a waiver expiring today still holds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policykit.config import WAIVERS_FILE
from policykit.errors import PolicykitError, SourceLoc
from policykit.loader.lines import YamlLines
from policykit.model import Finding, WaiverRef
from policykit.resources import load_schema
from policykit.safeio import load_yaml_node, missing, read_text

DEFAULT_FILE = WAIVERS_FILE


class WaiverError(PolicykitError):
    """A waivers file that cannot be read or is not valid."""

    code = "PK009"


@dataclass(frozen=True, slots=True)
class Waiver:
    rule: str
    reason: str
    owner: str
    expires: dt.date
    match: dict[str, str] = field(default_factory=dict)
    line: int = 0

    def ref(self) -> WaiverRef:
        return WaiverRef(self.reason, self.owner, self.expires.isoformat())

    def matches(self, f: Finding) -> bool:
        if f.rule != self.rule:
            return False
        values = {
            "pack": f.pack,
            "apiVersion": f.object.api_version,
            "kind": f.object.kind,
            "namespace": f.object.namespace,
            "name": f.object.name,
        }
        for key, want in self.match.items():
            if key == "file":
                if not fnmatch.fnmatchcase(Path(f.file).as_posix(), want):
                    return False
            elif not _glob(want, values[key]):
                return False
        return True

    def describe(self) -> str:
        narrowed = ", ".join(f"{k}={v}" for k, v in sorted(self.match.items()))
        return f"waiver for {self.rule}" + (f" ({narrowed})" if narrowed else "")


def _glob(pattern: str, value: str) -> bool:
    return value.startswith(pattern[:-1]) if pattern.endswith("*") else value == pattern


def load(path: Path) -> list[Waiver]:
    file = str(path)
    if missing(path):
        raise WaiverError("waivers file not found", loc=SourceLoc(file))
    text = read_text(path, error=WaiverError)
    raw, node = load_yaml_node(text, file, error=WaiverError)
    lines = YamlLines.of_node(node) if node is not None else YamlLines("")
    doc = _plain(raw)
    err = next(iter(_validator(load_schema("waivers.schema.json")).iter_errors(doc)), None)
    if err is not None:
        where = "/".join(str(p) for p in err.absolute_path) or "top level"
        line = lines.line(*tuple(err.absolute_path)[:2])
        raise WaiverError(
            f"invalid waiver ({where}: {err.message})",
            loc=SourceLoc(file, line),
            hint="see schemas/waivers.schema.json",
        )
    out = []
    for i, w in enumerate(doc["waivers"]):
        line = lines.line("waivers", i)
        out.append(
            Waiver(
                rule=w["rule"],
                reason=w["reason"],
                owner=w["owner"],
                expires=_date(w["expires"], path, line),
                match={k: str(v) for k, v in (w.get("match") or {}).items()},
                line=line,
            )
        )
    return out


def _plain(doc: Any) -> Any:
    """YAML dates as ISO strings (the schema speaks JSON)."""
    if isinstance(doc, dict):
        return {k: _plain(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_plain(v) for v in doc]
    if isinstance(doc, dt.date):
        return doc.isoformat()[:10]
    return doc


def _date(value: Any, path: Path, line: int) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise WaiverError(
            f"expires must be a date like 2027-03-31, not {value!r}", loc=SourceLoc(str(path), line)
        ) from None


@dataclass(frozen=True, slots=True)
class Outcome:
    findings: list[Finding]  # every finding, waived ones marked
    expired: list[Waiver]
    stale: list[Waiver]


def apply(findings: Sequence[Finding], waivers: Sequence[Waiver], today: dt.date) -> Outcome:
    active = [w for w in waivers if w.expires >= today]
    expired = [w for w in waivers if w.expires < today]
    used: set[int] = set()
    out: list[Finding] = []
    for f in findings:
        hit = next((i for i, w in enumerate(active) if w.matches(f)), None)
        if hit is None:
            out.append(f)
        else:
            used.add(hit)
            out.append(dataclasses.replace(f, waiver=active[hit].ref()))
    stale = [w for i, w in enumerate(active) if i not in used]
    return Outcome(out, expired, stale)


def expired_message(w: Waiver, path: str) -> str:
    where = f"{path}:{w.line}" if w.line else path
    return (
        f"{where}: {w.describe()} expired on {w.expires.isoformat()}; "
        f"owner {w.owner} must renew or remove it (reason was: {w.reason})"
    )


def stale_message(w: Waiver, path: str) -> str:
    where = f"{path}:{w.line}" if w.line else path
    return f"{where}: {w.describe()} (owner {w.owner}) matches no finding; remove it"


def _validator(schema: dict[str, Any]) -> Any:
    """A JSON Schema validator; jsonschema is imported only when a file is read
    (``import policykit.cli`` stays light: tests/test_startup.py)."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema)
