"""Rules and packs: the units a user names, selects, parameterises and ships."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import field
from typing import Any
from typing import Literal as TLiteral

from policykit.errors import DefinitionError, SourceLoc
from policykit.frozen import frozen
from policykit.ir.nodes import OBJECT_ROOT, Path, Pred, Value

Severity = TLiteral["deny", "warn", "info"]
SEVERITIES: tuple[str, ...] = ("deny", "warn", "info")
SEVERITY_RANK: dict[str, int] = {"info": 0, "warn": 1, "deny": 2}

Source = TLiteral["kubernetes", "backstage"]
SOURCES: tuple[str, ...] = ("kubernetes", "backstage")

RULE_ID_RE = re.compile(r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+$")
PACK_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# names the OPA bundle uses beside the packs' packages under its root
# (<root>.main, data.<root>.params/inventory/waivers)
RESERVED_PACK_NAMES = frozenset({"main", "params", "inventory", "waivers"})
PARAM_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
VAR_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


@frozen
class Selector:
    """Which objects a rule applies to. Empty fields select everything.

    * ``source``: ``kubernetes`` or ``backstage`` (told apart by apiVersion);
    * ``api_versions``: exact (``apps/v1``) or group wildcard (``backstage.io/*``);
    * ``kinds``: exact kind names (``Deployment``, ``Component``);
    * ``namespaces`` / ``exclude_namespaces``: exact or prefix glob (``team-*``);
      a Backstage entity without a namespace is in ``default``;
    * ``labels``: every (key, value) must be a label of the object;
    * ``entity_types``: Backstage ``spec.type`` values.
    """

    source: Source | None = None
    api_versions: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    exclude_namespaces: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    entity_types: tuple[str, ...] = ()


@frozen
class Message:
    """A message template: literal text and values interpolated into it.

    Rendering (docs/semantics.md): a string as itself; missing or null as the
    empty string; booleans ``true``/``false``; integers in decimal; other
    numbers in their shortest round-trip form; lists/objects as compact JSON.
    """

    parts: tuple[str | Value, ...]

    @property
    def text(self) -> str:
        """The template as a user wrote it (``{path}`` for interpolations)."""
        out: list[str] = []
        for p in self.parts:
            if isinstance(p, str):
                out.append(p.replace("{", "{{").replace("}", "}}"))
            else:
                out.append("{" + describe_value(p) + "}")
        return "".join(out)


def describe_value(v: Value) -> str:
    """A short, human-readable spelling of a value node (for messages/errors)."""
    from policykit.ir.nodes import Literal, Param

    if isinstance(v, Path):
        segs = "".join(f".{s}" if isinstance(s, str) else f"[{s}]" for s in v.segments)
        root = "" if v.root == OBJECT_ROOT else v.root
        return (root + segs).lstrip(".") or root or "object"
    if isinstance(v, Param):
        return f"params.{v.name}"
    if isinstance(v, Literal):
        return repr(v.value)
    return type(v).__name__


@frozen
class Each:
    """Evaluate a rule once per item of ``collection`` (``var`` bound to it).

    One finding is produced per item for which the condition holds; the
    finding records the item's index (``item``).
    """

    var: str
    collection: Value


@frozen
class Rule:
    """One rule: a finding is produced when ``condition`` holds."""

    id: str
    title: str
    severity: Severity
    condition: Pred
    message: Message
    description: str = ""
    remediation: str = ""
    tags: tuple[str, ...] = ()
    selector: Selector = field(default_factory=Selector)
    each: Each | None = None
    loc: SourceLoc | None = field(default=None, compare=False)
    same_as: str = ""
    """``pack/RULE-ID`` of an identical rule in another pack: when both packs are
    loaded, this one is left out, so a problem is reported once (docs/packs.md)."""

    def validate(self) -> None:
        if not RULE_ID_RE.fullmatch(self.id):
            raise DefinitionError(
                f"rule id {self.id!r} must look like CAT-001 (upper case, dash-separated)",
                loc=self.loc,
            )
        pack, _, rule_id = self.same_as.partition("/")
        if self.same_as and not (pack and RULE_ID_RE.fullmatch(rule_id)):
            raise DefinitionError(
                f"same_as={self.same_as!r} must name a rule of another pack: 'pack/RULE-001'",
                rule_id=self.id,
                loc=self.loc,
            )
        if self.severity not in SEVERITIES:
            raise DefinitionError(
                f"unknown severity {self.severity!r}; use one of {', '.join(SEVERITIES)}",
                rule_id=self.id,
                loc=self.loc,
            )
        if not self.title.strip():
            raise DefinitionError("a rule needs a title", rule_id=self.id, loc=self.loc)
        if self.selector.source is not None and self.selector.source not in SOURCES:
            raise DefinitionError(
                f"unknown source {self.selector.source!r}; use kubernetes or backstage",
                rule_id=self.id,
                loc=self.loc,
            )


@frozen
class ParamSpec:
    """A pack parameter: its JSON Schema, default and description."""

    name: str
    schema: Mapping[str, Any] = field(hash=False)
    default: Any = field(default=None, hash=False)
    description: str = ""


@frozen
class Pack:
    """A named, versioned group of rules and the parameters they use."""

    name: str
    version: str
    rules: tuple[Rule, ...]
    params: tuple[ParamSpec, ...] = ()
    description: str = ""

    def param_schema(self) -> dict[str, Any]:
        """JSON Schema of this pack's parameter object."""
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"Parameters of policykit pack {self.name}",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                p.name: {**dict(p.schema), "default": p.default}
                | ({"description": p.description} if p.description else {})
                for p in self.params
            },
        }

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)
