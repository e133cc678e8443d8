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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from policykit.errors import ErrorList, PolicykitError
from policykit.ir.rule import Pack, Rule
from policykit.targets.base import UnsupportedError
from policykit.targets.features import Level as Level
from policykit.targets.features import features_of as features_of
from policykit.targets.features import level as level
from policykit.targets.features import table as table
from policykit.targets.features import targets as targets

if TYPE_CHECKING:
    from policykit.targets.k8s.crds import CrdRegistry


class NotExpressible(UnsupportedError):
    """A rule uses a feature the target's capability table marks ``no``."""

    code = "PK201"


def _unknown_kind(rule: Rule) -> UnsupportedError:
    from policykit.targets.k8s.kinds import lookup
    from policykit.targets.k8s.manifests import RUNTIME_KINDS, unknown_kind

    kind = next(k for k in rule.selector.kinds if k not in RUNTIME_KINDS and lookup(k) is None)
    err = unknown_kind(rule, kind)
    return NotExpressible(err.message, loc=err.loc, hint=err.hint)


def _compile_rego(pack: Pack, params: Mapping[str, Any]) -> None:
    from policykit.targets.rego.compiler import RegoOptions, compile_pack

    compile_pack(pack, RegoOptions())


def _compile_gatekeeper(pack: Pack, params: Mapping[str, Any]) -> None:
    from policykit.targets import gatekeeper

    gatekeeper.build([pack], {pack.name: params})


def _compile_cel(target: str) -> Callable[[Pack, Mapping[str, Any]], None]:
    def run(pack: Pack, params: Mapping[str, Any]) -> None:
        from policykit.targets.k8s import manifests

        manifests.build(target, [pack], {pack.name: params})

    return run


def _compile_jsonschema(pack: Pack, params: Mapping[str, Any]) -> None:
    from policykit.targets.jsonschema import compile_pack

    ps = compile_pack(pack, params)
    if ps.uncovered:
        raise UnsupportedError(ps.uncovered[0][1])


COMPILERS: dict[str, Callable[[Pack, Mapping[str, Any]], None]] = {
    "rego": _compile_rego,
    "gatekeeper": _compile_gatekeeper,
    "kyverno": _compile_cel("kyverno"),
    "vap": _compile_cel("vap"),
    "jsonschema": _compile_jsonschema,
}


def _attempt(
    pack: Pack, rule: Rule, target: str, params: Mapping[str, Any]
) -> UnsupportedError | None:
    """Why ``target`` cannot express ``rule``, by the table then by its compiler."""
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
    try:
        try:
            COMPILERS[target](dataclasses.replace(pack, rules=(rule,)), params)
        except ErrorList as many:
            raise many.errors[0] from None
    except UnsupportedError as e:
        msg = e.message.replace("target cel ", f"target {target} ", 1)
        if not msg.startswith(f"rule {rule.id}"):
            msg = f"rule {rule.id}: {msg}"
        return UnsupportedError(msg, loc=e.loc or rule.loc)
    return None


def why_not(
    pack: Pack, rule: Rule, target: str, params: Mapping[str, Any]
) -> PolicykitError | None:
    """The error to report when ``target`` cannot express ``rule`` (None if it can):
    its hint names the targets that can."""
    err = _attempt(pack, rule, target, params)
    if err is None:
        return None
    able = [t for t in targets() if t != target and _attempt(pack, rule, t, params) is None]
    can = f"targets that can: {', '.join(able) or 'none'}; see docs/targets.md"
    err.hint = f"{err.hint}; {can}" if err.code == "PK201" and err.hint else can
    return err


@dataclass(frozen=True, slots=True)
class Plan:
    """Per target, the packs to build (rules it cannot express removed only
    under ``allow_partial``) and the errors found."""

    packs: dict[str, list[Pack]]
    errors: list[PolicykitError]


def plan(
    packs: Sequence[Pack],
    params: Mapping[str, Mapping[str, Any]],
    wanted: Sequence[str],
    *,
    advisory: Sequence[str] = ("jsonschema",),
    custom: CrdRegistry | None = None,
) -> Plan:
    """Check every rule against every wanted target. Advisory targets (JSON
    Schema covers a subset by design) never produce errors here. ``custom``:
    the CRDs of the run (default: those in force)."""
    from policykit.targets.k8s.crds import using

    with using(custom):
        return _plan(packs, params, wanted, advisory)


def _plan(
    packs: Sequence[Pack],
    params: Mapping[str, Mapping[str, Any]],
    wanted: Sequence[str],
    advisory: Sequence[str],
) -> Plan:
    out: dict[str, list[Pack]] = {}
    errors: list[PolicykitError] = []
    for target in wanted:
        kept_packs = []
        for pack in packs:
            kept = []
            for rule in pack.rules:
                err = (
                    None
                    if target in advisory
                    else why_not(pack, rule, target, params.get(pack.name, {}))
                )
                if err is None:
                    kept.append(rule)
                else:
                    errors.append(err)
            kept_packs.append(dataclasses.replace(pack, rules=tuple(kept)))
        out[target] = kept_packs
    return Plan(out, errors)


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
    "(`policykit/targets/k8s/crds.py`):",
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


def render_markdown() -> str:
    """docs/targets.md: the support matrix, generated from the table."""
    t = table()
    names = list(t["targets"])
    mark = {"yes": "yes", "partial": "partial¹", "no": "**no**", "skip": "skipped²"}
    lines = [
        "# Targets and what they can express",
        "",
        "<!-- generated by `python -m policykit.targets.capabilities > docs/targets.md`;",
        "     do not edit: the table lives in policykit/targets/capabilities.json -->",
        "",
        "| target | output |",
        "|---|---|",
        *(f"| `{n}` | {d} |" for n, d in t["targets"].items()),
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
        *GUIDE,
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(render_markdown(), end="")
