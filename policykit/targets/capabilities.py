"""What each target can express, kept as data (``capabilities.json``), and the
one check every build runs before it writes anything.

For a rule and a target the check answers in two steps: a feature the table
marks ``no`` refuses the rule at once (PK201); otherwise the target's compiler
decides (a ``partial`` feature used in a way the target cannot spell: PK200).
Either way the error names the rule, the author's source line, the target and
the targets that *can* express the rule; every such error of a build is
reported together. ``docs/targets.md`` is generated from the table by
``python -m policykit.targets.capabilities``, and ``tests/test_capabilities.py``
checks the table against what the compilers really do.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policykit.errors import ErrorList, PolicykitError
from policykit.ir.rule import Pack, Rule
from policykit.targets import registry
from policykit.targets.base import UnsupportedError
from policykit.targets.features import Level as Level
from policykit.targets.features import features_of as features_of
from policykit.targets.features import level as level
from policykit.targets.features import table as table
from policykit.targets.features import targets as targets

if TYPE_CHECKING:
    from policykit.k8s.crds import CrdRegistry


class NotExpressible(UnsupportedError):
    """A rule uses a feature the target's capability table marks ``no``."""

    code = "PK201"


def _unknown_kind(rule: Rule) -> UnsupportedError:
    from policykit.k8s.kinds import lookup
    from policykit.targets.k8s.manifests import RUNTIME_KINDS, unknown_kind

    kind = next(k for k in rule.selector.kinds if k not in RUNTIME_KINDS and lookup(k) is None)
    err = unknown_kind(rule, kind)
    return NotExpressible(err.message, loc=err.loc, hint=err.hint)


class _Compilers(Mapping[str, Callable[[Pack, Mapping[str, Any]], None]]):
    """Target name → the registry's one-rule check (raises what it cannot express)."""

    def __getitem__(self, name: str) -> Callable[[Pack, Mapping[str, Any]], None]:
        return registry.get(name).refuse

    def __iter__(self) -> Iterator[str]:
        return iter(registry.names())

    def __len__(self) -> int:
        return len(registry.names())


COMPILERS: Mapping[str, Callable[[Pack, Mapping[str, Any]], None]] = _Compilers()


def _refused_by_table(rule: Rule, target: str) -> UnsupportedError | None:
    """A feature the table marks ``no`` for ``target`` (PK201), checked without compiling."""
    feats = features_of(rule)
    if any(level(f, target) == "skip" for f in feats):
        return None  # out of the target's scope, not an error (reported as skipped)
    for f in sorted(feats):
        if f == "UnknownKind" and level(f, target) == "no":
            return _unknown_kind(rule)
        if level(f, target) == "no":
            desc = table()["features"][f]["description"]
            return NotExpressible(
                f"rule {rule.id}: target {target} cannot express {f} ({desc})", loc=rule.loc
            )
    return None


def _skipped(rule: Rule, target: str) -> bool:
    return any(level(f, target) == "skip" for f in features_of(rule))


def _attempt(
    pack: Pack, rule: Rule, target: str, params: Mapping[str, Any]
) -> UnsupportedError | None:
    """Why ``target`` cannot express ``rule``, by the table then by its compiler."""
    if _skipped(rule, target):
        return None
    refused = _refused_by_table(rule, target)
    if refused is not None:
        return refused
    try:
        try:
            registry.get(target).refuse(dataclasses.replace(pack, rules=(rule,)), params)
        except ErrorList as many:
            raise many.errors[0] from None
    except UnsupportedError as e:
        msg = e.message  # each compiler names its target (the CEL one: kyverno or vap)
        if not msg.startswith(f"rule {rule.id}"):
            msg = f"rule {rule.id}: {msg}"
        return UnsupportedError(msg, loc=e.loc or rule.loc)
    return None


def _with_hint(err: UnsupportedError, able: Sequence[str]) -> UnsupportedError:
    can = f"targets that can: {', '.join(able) or 'none'}; see docs/targets.md"
    err.hint = f"{err.hint}; {can}" if err.code == "PK201" and err.hint else can
    return err


def why_not(
    pack: Pack, rule: Rule, target: str, params: Mapping[str, Any]
) -> PolicykitError | None:
    """The error to report when ``target`` cannot express ``rule`` (None if it can):
    its hint names the targets that can."""
    err = _attempt(pack, rule, target, params)
    if err is None:
        return None
    able = [t for t in targets() if t != target and _attempt(pack, rule, t, params) is None]
    return _with_hint(err, able)


class ErrorLevel(enum.Enum):
    """What a build does with a rule a target cannot express (sqlglot's
    ``ErrorLevel``): ``RAISE`` reports every such rule and builds nothing;
    ``WARN`` (``--allow-partial``) leaves them out and warns about each."""

    WARN = "warn"
    RAISE = "raise"


@dataclass(frozen=True, slots=True)
class Plan:
    """Per target, the packs to build (rules it cannot express removed only
    under ``allow_partial``) and the errors found; with build options, also
    ``outputs``: per target, what its compiler returned for those packs (what
    ``build`` writes; absent when there are errors at level ``RAISE``)."""

    packs: dict[str, list[Pack]]
    errors: list[PolicykitError]
    outputs: dict[str, Any] = field(default_factory=dict)
    failure: PolicykitError | None = None  # a build error no single rule explains


def plan(
    packs: Sequence[Pack],
    params: Mapping[str, Mapping[str, Any]],
    wanted: Sequence[str],
    *,
    advisory: Sequence[str] | None = None,
    custom: CrdRegistry | None = None,
    options: registry.Options | None = None,
    level: ErrorLevel = ErrorLevel.RAISE,
) -> Plan:
    """Check every rule against every wanted target, compiling each rule once
    per target: each target's compiler runs over all the packs in one pass;
    only when it refuses something is each rule asked alone, to name every
    rule it cannot express. Advisory targets (JSON Schema covers a subset by
    design) never produce errors here. ``custom``: the CRDs of the run (default:
    those in force). With build ``options``, ``Plan.outputs`` holds each
    target's output for the rules kept (a failure no single rule explains is
    in ``Plan.failure``, for the build to raise)."""
    from policykit.k8s.crds import using

    if advisory is None:
        advisory = [t.name for t in registry.TARGETS.values() if t.advisory]
    with using(custom):
        return _Planner(packs, params, advisory, options, level).run(wanted)


@dataclass(slots=True)
class _Planner:
    packs: Sequence[Pack]
    params: Mapping[str, Mapping[str, Any]]
    advisory: Sequence[str]
    options: registry.Options | None
    level: ErrorLevel
    # (target, pack, rule id) -> why the target cannot express the rule (None: it can)
    results: dict[tuple[str, str, str], UnsupportedError | None] = field(default_factory=dict)
    failure: PolicykitError | None = None

    def run(self, wanted: Sequence[str]) -> Plan:
        out: dict[str, list[Pack]] = {}
        outputs: dict[str, Any] = {}
        pending: list[tuple[str, Pack, Rule, UnsupportedError]] = []
        for target in wanted:
            kept_packs, output = self._target(target)
            out[target] = kept_packs
            for pack in self.packs:
                for rule in pack.rules:
                    err = self.results.get((target, pack.name, rule.id))
                    if err is not None:
                        pending.append((target, pack, rule, err))
            if output is not _NOTHING:
                outputs[target] = output
        errors: list[PolicykitError] = []
        for target, pack, rule, err in pending:  # hints from the same results
            able = [t for t in targets() if t != target and self._can(t, pack, rule)]
            errors.append(_with_hint(err, able))
        if errors and self.level is ErrorLevel.RAISE:
            return Plan(out, errors)
        return Plan(out, errors, outputs, self.failure)

    def _can(self, target: str, pack: Pack, rule: Rule) -> bool:
        key = (target, pack.name, rule.id)
        if key not in self.results:
            self.results[key] = _attempt(pack, rule, target, self.params.get(pack.name, {}))
        return self.results[key] is None

    def _target(self, target: str) -> tuple[list[Pack], Any]:
        """The packs ``target`` keeps, and its output for them (when building)."""
        spec = registry.get(target)
        if target in self.advisory:
            kept = list(self.packs)
            return kept, self._compile(spec, kept) if self.options is not None else _NOTHING
        refused: dict[tuple[str, str], UnsupportedError] = {}
        for pack in self.packs:
            for rule in pack.rules:
                err = None if _skipped(rule, target) else _refused_by_table(rule, target)
                if err is not None:
                    refused[(pack.name, rule.id)] = err
        kept = self._keep(lambda p, r: (p.name, r.id) not in refused)
        output: Any = _NOTHING
        try:
            output = self._compile(spec, kept)
            return self._record(target, refused, kept, output)
        except PolicykitError as whole:
            explained = False
            for pack in kept:
                for rule in pack.rules:
                    found = _attempt(pack, rule, target, self.params.get(pack.name, {}))
                    if found is not None:
                        refused[(pack.name, rule.id)] = found
                        explained = True
            if not explained and self.options is not None:
                self.failure = self.failure or whole  # no single rule explains it
        kept = self._keep(lambda p, r: (p.name, r.id) not in refused)
        if self.options is not None and self.level is ErrorLevel.WARN and self.failure is None:
            try:  # only after a refusal: the rules left are compiled once more
                output = self._compile(spec, kept)
            except PolicykitError as whole:
                self.failure = whole
        return self._record(target, refused, kept, output)

    def _record(
        self,
        target: str,
        refused: Mapping[tuple[str, str], UnsupportedError],
        kept: list[Pack],
        output: Any,
    ) -> tuple[list[Pack], Any]:
        for pack in self.packs:
            for rule in pack.rules:
                self.results[(target, pack.name, rule.id)] = refused.get((pack.name, rule.id))
        return kept, output

    def _keep(self, keep: Callable[[Pack, Rule], bool]) -> list[Pack]:
        return [
            dataclasses.replace(p, rules=tuple(r for r in p.rules if keep(p, r)))
            for p in self.packs
        ]

    def _compile(self, spec: registry.Target, packs: list[Pack]) -> Any:
        return spec.compile(packs, self.params, self.options or registry.Options())


_NOTHING: Any = object()


GUIDE = [
    "## Rules a target leaves out by design",
    "",
    "Some rules are not an admission target's business; `build` lists each of them",
    "once (not an error, no `--allow-partial` needed) with the reason, and `verify`",
    "does not compare them there:",
    "",
    '* **not at admission**: a Backstage rule (`source="backstage"` or only',
    "  Backstage apiVersions) is checked in CI and by the scaffolder's JSON Schema; a",
    "  runtime rule (`kind: ToolCall`, `agents.policykit.dev`: an agent's tool call)",
    "  is decided by the OPA bundle's `main.decision` at the gateway. No Kubernetes",
    "  object is either, so Gatekeeper, Kyverno and VAP leave them out",
    "  (`RuntimeOnly`, `BackstageSource` above).",
    "* **not in kyverno, vap**: a cross-object rule (`objects()`) needs every other",
    "  object; a CEL policy sees one. It is enforced at admission by Gatekeeper (sync",
    "  the kinds it reads) and in CI.",
    "",
    "## Custom resources",
    "",
    "Admission matches *resources*, named by API group and plural, so every kind a",
    "rule selects must be known. Built-in kinds come from `policykit/targets/k8s/kinds.json`",
    "(generated from the Kubernetes OpenAPI by `kinds.from_openapi`; nothing else is",
    "added to it). Custom kinds come from CustomResourceDefinitions:",
    "",
    "```yaml",
    "# policykit.yaml",
    "crds: [crds/]            # files or folders of CRD YAML, apiextensions.k8s.io/v1",
    "```",
    "",
    "or `--crd PATH` (repeatable; it replaces `crds:`) on `check`, `build` and",
    "`verify`. From each CRD policykit reads the group, the versions (served, storage),",
    "the plural, the scope and the structural `openAPIV3Schema` of each version",
    "(`policykit/k8s/crds.py`):",
    "",
    "| target | how a custom kind is matched |",
    "|---|---|",
    "| `gatekeeper` | `match.kinds: [{apiGroups: [<group>], kinds: [<Kind>]}]` |",
    "| `kyverno`, `vap` | `matchConstraints.resourceRules: [{apiGroups: [<group>], "
    "apiVersions: <served versions>, resources: [<plural>]}]` |",
    "| `rego` | by `kind` and `apiVersion`, as any object |",
    "",
    "`check` and `verify` validate each object of a custom kind against the schema of",
    "its version, as the API server does before admission: an object it would refuse",
    "(a wrong type, a missing required field, an unknown field as `kubectl apply`'s",
    "strict field validation refuses it, a version the CRD does not serve) is an input",
    "error, PK013, one line per violation naming the field, exit 2 — not a finding,",
    "because no policy ever sees such an object; `verify` leaves it out of the",
    "comparison. The OpenAPI v3 subset is read as Kubernetes reads it: `nullable`,",
    "`x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields`, a `default`",
    "filling a required field, OpenAPI 3.0's boolean `exclusiveMinimum`/`exclusiveMaximum`.",
    "`x-kubernetes-validations` (CEL rules of the CRD) are not checked.",
    "",
    "A rule that selects a kind neither built in nor defined by a CRD gets PK201 for",
    "the admission targets, naming `crds:` and `--crd`. A CRD file that is not YAML, not",
    "an `apiextensions.k8s.io/v1` CRD, has a version without a structural schema, or",
    "defines a kind that a built-in kind of another group (or another CRD) has, is",
    "PK012, one line each, exit 2. The custom resources the built-in packs govern",
    "(KServe `InferenceService`, Kubeflow `Notebook`, policykit's `Agent`) are known",
    "without a CRD; a CRD given for one of them takes precedence.",
    "",
]


DOC = Path(__file__).resolve().parents[2] / "docs" / "targets.md"


def _hand_written() -> list[str]:
    """The sections of docs/targets.md after the generated matrix and its notes,
    as they are in the file (other pages' authors add sections there); the
    built-in :data:`GUIDE` where there is no such file (an installed package)."""
    try:
        text = DOC.read_text(encoding="utf-8")
    except OSError:
        return GUIDE
    start = text.find("\n" + GUIDE[0] + "\n")
    if start == -1:
        return GUIDE
    return text[start + 1 :].split("\n")


def render_markdown() -> str:
    """docs/targets.md: the support matrix, generated from the registry and the
    table; the hand-written sections after it are kept as they are."""
    t = table()
    names = list(t["targets"])
    mark = {"yes": "yes", "partial": "partial¹", "no": "**no**", "skip": "skipped²"}
    lines = [
        "# Targets and what they can express",
        "",
        "<!-- generated by `python -m policykit.targets.capabilities > docs/targets.md`;",
        "     do not edit: the table lives in policykit/targets/capabilities.json -->",
        "",
        *registry.render_table(),
        "",
        "| feature | meaning | " + " | ".join(f"`{n}`" for n in names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    notes: list[str] = []
    for feat, row in t["features"].items():
        cells = []
        for n in names:
            cells.append(mark[row[n]])
            note = row.get("note", {}).get(n)
            if note:
                notes.append(f"* `{feat}` in `{n}`: {note}")
        lines.append(f"| `{feat}` | {row['description']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "¹ partial: some uses; the compiler says which when it refuses one (PK200).",
        "² skipped: outside the target's scope; the build lists the rule as not built.",
        "",
        "A rule using a feature marked **no** is refused with PK201 before compiling.",
        "`policykit build` reports every rule a target cannot express at once (exit 2),",
        "each with its source line and the targets that can; `--allow-partial` builds",
        "the rest and prints each left-out rule as a warning. `jsonschema` is advisory:",
        "it covers what it can and lists the rest in `index.json`.",
        "",
        "## Notes",
        "",
        *notes,
        "",
        *_hand_written(),
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(render_markdown(), end="")
