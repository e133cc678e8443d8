"""The targets policykit compiles to, declared once (issue 18, item 3).

Each :class:`Target` says its name, where its output goes (file layout), its
row of the capability table (``capabilities.json``) and its compile function.
Everything that lists targets reads them from here: ``build --target`` and
``verify --target`` (``policykit.cli``), the build plan
(:mod:`policykit.targets.capabilities`) and the generated target table of
``docs/targets.md``.

The compile function turns packs into the target's output in one pass, and it
is the only place a build compiles: :func:`policykit.targets.capabilities.plan`
calls it once per target for every pack, and ``build`` writes what it returned
(sqlglot's design: one tree, one generator per dialect, errors collected in one
pass). Importing this module imports no compiler; each loads on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from policykit.targets.features import Level, level, table

if TYPE_CHECKING:
    from policykit.ir.rule import Pack

Params = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Options:
    """What a target's output depends on besides packs and parameters."""

    root: str = "policykit"  # rego: the dotted path the bundle owns
    revision: str | None = None  # rego: the bundle revision (default: content digest)
    waivers: tuple[Any, ...] = ()  # rego: waivers in force, carried as bundle data
    kyverno_version: str = "v1"  # kyverno: the ValidatingPolicy API version
    # jsonschema: per pack, the parameters section of fields.json (from the Backstage
    # templates: policykit.scaffolder.fields.parameters_by_pack)
    parameters: Mapping[str, Mapping[str, Any]] | None = None


Compile = Callable[[Sequence["Pack"], Params, Options], Any]
Refuse = Callable[["Pack", Mapping[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Target:
    """A target: its name, its output's place, its capability row, its compiler.

    ``compile(packs, params, options)`` returns the target's output object
    (a rego ``Bundle``; ``(files, skipped)`` for the admission targets;
    file name → text for jsonschema) and raises an :class:`UnsupportedError`
    (or an ``ErrorList`` of them) for what it cannot express. ``refuse(pack,
    params)`` raises for a one-rule ``pack`` the target cannot express: the
    question the capability check asks of one rule."""

    name: str
    output: str  # its entry in a `build --target all` directory
    default_out: str  # where `build --target <name>` writes by default
    admission: bool  # a Kubernetes admission target (it leaves some rules out by design)
    advisory: bool  # covers what it can by design: never a build error
    compile: Compile = field(repr=False)
    refuse: Refuse = field(repr=False)
    engines: tuple[str, ...] = ()  # other names `verify --target` knows it by

    @property
    def description(self) -> str:
        """What the target's output is (the table's ``targets`` entry)."""
        text: str = table()["targets"][self.name]
        return text

    def level(self, feature: str) -> Level:
        """This target's cell of the capability table for ``feature``."""
        return level(feature, self.name)


def _compile_rego(packs: Sequence[Pack], params: Params, opts: Options) -> Any:
    from policykit.targets.rego.bundle import build_bundle

    return build_bundle(packs, params, root=opts.root, revision=opts.revision, waivers=opts.waivers)


def _refuse_rego(pack: Pack, params: Mapping[str, Any]) -> None:
    from policykit.targets.rego.compiler import RegoOptions, compile_pack

    compile_pack(pack, RegoOptions())


def _compile_gatekeeper(packs: Sequence[Pack], params: Params, opts: Options) -> Any:
    from policykit.targets import gatekeeper

    return gatekeeper.build(packs, params)


def _refuse_gatekeeper(pack: Pack, params: Mapping[str, Any]) -> None:
    _compile_gatekeeper([pack], {pack.name: params}, Options())


def _compile_cel(target: str) -> Compile:
    def run(packs: Sequence[Pack], params: Params, opts: Options) -> Any:
        from policykit.targets.k8s import manifests

        return manifests.build(target, packs, params, kyverno_version=opts.kyverno_version)

    return run


def _refuse_cel(target: str) -> Refuse:
    def run(pack: Pack, params: Mapping[str, Any]) -> None:
        _compile_cel(target)([pack], {pack.name: params}, Options())

    return run


def _compile_jsonschema(packs: Sequence[Pack], params: Params, opts: Options) -> Any:
    from policykit.targets import jsonschema

    return jsonschema.build(packs, params, opts.parameters)


def _refuse_jsonschema(pack: Pack, params: Mapping[str, Any]) -> None:
    from policykit.targets.base import UnsupportedError
    from policykit.targets.jsonschema import compile_pack

    ps = compile_pack(pack, params)
    if ps.uncovered:
        raise UnsupportedError(ps.uncovered[0][1])


_DECLARED = (
    Target(
        "rego", "bundle.tar.gz", "dist/bundle.tar.gz", False, False,
        _compile_rego, _refuse_rego, engines=("opa",),
    ),
    Target(
        "gatekeeper", "gatekeeper", "dist/gatekeeper", True, False,
        _compile_gatekeeper, _refuse_gatekeeper,
    ),
    Target("kyverno", "kyverno", "dist/kyverno", True, False, _compile_cel("kyverno"),
           _refuse_cel("kyverno")),
    Target("vap", "vap", "dist/vap", True, False, _compile_cel("vap"), _refuse_cel("vap")),
    Target(
        "jsonschema", "jsonschema", "dist/jsonschema", False, True,
        _compile_jsonschema, _refuse_jsonschema,
    ),
)  # fmt: skip

TARGETS: dict[str, Target] = {t.name: t for t in _DECLARED}
"""Every target, in the order of the capability table (docs, hints, ``all``)."""


def names() -> list[str]:
    """The targets' names, in the capability table's order."""
    return list(TARGETS)


def get(name: str) -> Target:
    return TARGETS[name]


def build_choices() -> list[str]:
    """``build --target``: every target, then ``all``."""
    return [*TARGETS, "all"]


def verify_choices() -> list[str]:
    """``verify --target``: every target, each followed by the engines that
    also run its output (``opa``: the bundle in real OPA)."""
    return [n for t in TARGETS.values() for n in (t.name, *t.engines)]


def admission() -> list[str]:
    return [t.name for t in TARGETS.values() if t.admission]


def render_table() -> list[str]:
    """The ``target | output`` table of ``docs/targets.md``."""
    return [
        "| target | output |",
        "|---|---|",
        *(f"| `{t.name}` | {t.description} |" for t in TARGETS.values()),
    ]
