"""Documents under review and the findings rules produce about them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from policykit.values import MAX_MESSAGE_CHARS, cap_message

if TYPE_CHECKING:
    from policykit.ir.rule import Rule

DocSource = Literal["kubernetes", "backstage"]

BACKSTAGE_GROUP_SUFFIX = "backstage.io"


def source_of(obj: dict[str, Any]) -> DocSource:
    """Backstage entities have an apiVersion in a ``*backstage.io`` group."""
    api = obj.get("apiVersion")
    if isinstance(api, str) and "/" in api:
        group = api.split("/", 1)[0]
        if group == BACKSTAGE_GROUP_SUFFIX or group.endswith("." + BACKSTAGE_GROUP_SUFFIX):
            return "backstage"
    return "kubernetes"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """What a finding is about: apiVersion, kind, namespace, name."""

    api_version: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{ns}{self.name}"

    def to_json(self) -> dict[str, str]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
        }


@dataclass(slots=True)
class Document:
    """One object read from a file: its content and where it was read."""

    obj: dict[str, Any]
    file: str
    index: int
    line: int
    source: DocSource = field(init=False)

    def __post_init__(self) -> None:
        self.source = source_of(self.obj)

    @property
    def ref(self) -> ObjectRef:
        return object_ref(self.obj, self.source)


def object_ref(obj: dict[str, Any], source: DocSource) -> ObjectRef:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    ns = meta.get("namespace")
    if not isinstance(ns, str):
        ns = "default" if source == "backstage" else ""
    name = meta.get("name")
    api = obj.get("apiVersion")
    kind = obj.get("kind")
    # capped as messages are: a huge name is not repeated in full in every finding
    return ObjectRef(
        cap_message(api) if isinstance(api, str) else "",
        cap_message(kind) if isinstance(kind, str) else "",
        cap_message(ns),
        cap_message(name) if isinstance(name, str) else "",
    )


@dataclass(frozen=True, slots=True)
class WaiverRef:
    """The waiver that accepted a finding (policykit.waivers)."""

    reason: str
    owner: str
    expires: str  # ISO date

    def to_json(self) -> dict[str, str]:
        return {"reason": self.reason, "owner": self.owner, "expires": self.expires}


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule's verdict about one object (or one item of it, for ``each`` rules)."""

    rule: str
    pack: str
    severity: str
    message: str
    object: ObjectRef
    file: str = ""
    doc_index: int = 0
    line: int = 0
    item: int | None = None
    baselined: bool = False  # recorded in the --baseline file: reported, does not fail
    waiver: WaiverRef | None = None  # accepted by a waiver: reported, does not fail

    def __post_init__(self) -> None:
        # every engine's messages capped alike: a huge value never floods a report
        if len(self.message) > MAX_MESSAGE_CHARS:
            object.__setattr__(self, "message", cap_message(self.message))

    @property
    def accepted(self) -> bool:
        """Reported but not failing: baselined or waived."""
        return self.baselined or self.waiver is not None

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (
            self.file,
            self.doc_index,
            -1 if self.item is None else self.item,
            self.rule,
            self.message,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "pack": self.pack,
            "severity": self.severity,
            "message": self.message,
            "object": self.object.to_json(),
            "file": self.file,
            "line": self.line,
            "documentIndex": self.doc_index,
        }
        if self.item is not None:
            out["item"] = self.item
        if self.baselined:
            out["baselined"] = True
        if self.waiver is not None:
            out["waived"] = self.waiver.to_json()
        return out


def findings_of(doc: Document, hits: Iterable[tuple[Rule, str, str, int | None]]) -> list[Finding]:
    """Findings about ``doc`` from (rule, pack, message, item) hits — the one
    place an engine's verdicts become :class:`Finding` objects."""
    out: list[Finding] = []
    ref: ObjectRef | None = None
    for rule, pack, message, item in hits:
        if ref is None:
            ref = object_ref(doc.obj, doc.source)
        out.append(
            Finding(
                rule=rule.id,
                pack=pack,
                severity=rule.severity,
                message=message,
                object=ref,
                file=doc.file,
                doc_index=doc.index,
                line=doc.line,
                item=item,
            )
        )
    return out


REPORT_VERSION = 1
"""The ``check --format json`` document's version (schemas/report.schema.json)."""


@dataclass(frozen=True, slots=True)
class Checked:
    """An object and the rules that applied to it (for JUnit's passing cases)."""

    file: str
    line: int
    doc_index: int
    object: ObjectRef
    rules: tuple[tuple[str, str], ...]  # (pack, rule id)
