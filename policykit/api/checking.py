"""The check pipeline: packs and loaded files in, a :class:`CheckReport` out
(serial, or on several processes through :mod:`policykit.parallel`), and the
merging of command-line values over configuration (:func:`resolve`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policykit import __version__, cores
from policykit.config import Config, find_config
from policykit.engines.base import Engine, evaluate_guarded
from policykit.engines.native import NativeEngine, uses_inventory
from policykit.errors import (
    EXIT_FINDINGS,
    EXIT_INPUT,
    EXIT_OK,
    PolicykitError,
    SourceLoc,
)
from policykit.ir.rule import SEVERITY_RANK, Pack
from policykit.loader import (
    DEFAULT_EXCLUDE,
    DEFAULT_INCLUDE,
    Entry,
    LoadResult,
    Skipped,
    iter_load,
    load_entries,
    plan,
)
from policykit.model import REPORT_VERSION, Checked, Document, Finding
from policykit.packs import load_packs
from policykit.safeio import is_dir
from policykit.scaffolder import CATALOG_PACK as CATALOG_PACK
from policykit.scaffolder import with_template_check


@dataclass(slots=True)
class CheckReport:
    packs: list[Pack]
    findings: list[Finding]
    errors: list[PolicykitError]
    skipped: list[Skipped]
    files: int
    objects: int
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    checked: list[Checked] = field(default_factory=list)  # only with record_checked
    recorded: bool = False  # ``checked`` was recorded (record_checked): JUnit needs it

    fixed: int | None = None  # baseline entries no longer found (None: no baseline)
    expired_waivers: list[str] = field(default_factory=list)  # each fails the run
    stale_waivers: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)  # third-party policies not run (--policy)
    rule_descriptors: list[dict[str, Any]] = field(default_factory=list)  # SARIF, --policy rules
    fail_on: str = "deny"  # the lowest severity that fails the run
    baseline_updated: bool = False  # today's findings were recorded: the run passes
    notes: list[str] = field(default_factory=list)  # what was written (quiet: left out)
    warnings: list[str] = field(default_factory=list)  # said before the report

    @property
    def exit_code(self) -> int:
        """2 on input errors; else 0 when the baseline was recorded; else 1 when a
        finding neither baselined nor waived reaches ``fail_on`` or a waiver has
        expired; else 0."""
        if self.errors:
            return EXIT_INPUT
        if self.baseline_updated:
            return EXIT_OK
        failed = self.reaches(self.fail_on) or bool(self.expired_waivers)
        return EXIT_FINDINGS if failed else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        """The ``--format json`` document (schema: schemas/report.schema.json)."""
        return {
            "version": REPORT_VERSION,
            "tool": {"name": "policykit", "version": __version__},
            "packs": [{"name": p.name, "version": p.version} for p in self.packs],
            "findings": [f.to_json() for f in self.findings],
            "errors": [
                {
                    "file": e.loc.file if e.loc else "",
                    "line": e.loc.line if e.loc else 0,
                    "code": e.code,
                    "message": e.message + (f" ({e.hint})" if e.hint else ""),
                }
                for e in self.errors
            ],
            "skipped": [
                {"file": s.file, "line": s.line, "documentIndex": s.index, "reason": s.reason}
                for s in self.skipped
            ],
            "summary": {
                "files": self.files,
                "objects": self.objects,
                "findings": self.counts(),
                "errors": len(self.errors),
                "skipped": len(self.skipped),
                **(
                    {"baselined": sum(f.baselined for f in self.findings), "fixed": self.fixed}
                    if self.fixed is not None
                    else {}
                ),
                "waived": sum(f.waiver is not None for f in self.findings),
            },
            "waivers": {"expired": self.expired_waivers, "stale": self.stale_waivers},
            "unsupported": self.unsupported,
        }

    def counts(self) -> dict[str, int]:
        """Findings per severity, not counting baselined or waived ones."""
        out = {"deny": 0, "warn": 0, "info": 0}
        for f in self.findings:
            if not f.accepted:
                out[f.severity] += 1
        return out

    def reaches(self, threshold: str) -> bool:
        """Whether a finding neither baselined nor waived is at or above ``threshold``."""
        bar = SEVERITY_RANK[threshold]
        return any(SEVERITY_RANK[f.severity] >= bar for f in self.findings if not f.accepted)


@dataclass(slots=True)
class Selection:
    """What to check, after merging command-line flags over configuration."""

    packs: list[str]
    paths: list[str]
    include: list[str]
    exclude: list[str]
    params: dict[str, dict[str, Any]]
    fail_on: str
    crds: list[str] = field(default_factory=list)  # CRD files or folders (--crd, else crds:)
    # the params keys that must each name a pack the run loads: the caller's
    # (--param), and the configuration's when its packs are the ones run
    named: frozenset[str] = frozenset()
    # where the configuration file gives params: (pack, None) the pack's key,
    # (pack, name) a parameter; none for what the caller gave (it wins)
    where: dict[tuple[str, str | None], SourceLoc] = field(default_factory=dict)


def resolve(
    *,
    paths: Sequence[str] = (),
    packs: Sequence[str] = (),
    params: Mapping[str, Mapping[str, Any]] | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    fail_on: str | None = None,
    config: Config | None = None,
    crds: Sequence[str] = (),
) -> Selection:
    if config is None:
        start = _config_start(paths)
        # the checked repository's own configuration, else the working directory's
        config = find_config(start) if start is not None else Config()
        if config.file is None:
            config = find_config()
    cfg = config
    merged_params = {k: dict(v) for k, v in cfg.params.items()}
    for pack, values in (params or {}).items():
        merged_params.setdefault(pack, {}).update(values)
    named = set(params or {}) | (set(cfg.params) if not packs else set())
    where: dict[tuple[str, str | None], SourceLoc] = {}
    for pack, values in cfg.params.items():
        for name in (None, *values):
            loc = cfg.loc("params", pack, *(() if name is None else (name,)))
            if loc is not None and (name is None or name not in (params or {}).get(pack, {})):
                where[(pack, name)] = loc
    return Selection(
        packs=list(packs) or cfg.packs,
        paths=list(paths) or cfg.paths,
        include=list(include) or cfg.include or list(DEFAULT_INCLUDE),
        exclude=list(DEFAULT_EXCLUDE) + cfg.exclude + list(exclude),
        params=merged_params,
        fail_on=fail_on or cfg.fail_on or "deny",
        crds=list(crds) or list(cfg.crds),
        named=frozenset(named),
        where=where,
    )


def _config_start(paths: Sequence[str]) -> Path | None:
    """Where configuration is looked up: from the first PATH (its directory),
    so a repository checked from outside uses its own ``policykit.yaml``; the
    working directory when no path is given or it is stdin."""
    if not paths or paths[0] == "-":
        return None
    first = Path(paths[0])
    if is_dir(first):  # never raises (an over-long name is not a directory)
        return first
    return first.parent if is_dir(first.parent) else None


ENGINES: tuple[str, ...] = ("native", "rego", "opa", "cel")


def make_engine(name: str, packs: list[Pack], params: Mapping[str, Mapping[str, Any]]) -> Engine:
    """An engine by name: ``native`` (reference), ``rego`` (regopy), ``opa`` (real OPA),
    ``cel`` (the Kyverno/VAP CEL on cel-cpp); with the catalog pack, plus its
    built-in template check CATALOG-016 (:func:`policykit.scaffolder.with_template_check`)."""
    return with_template_check(_engine(name, packs, params), packs, params)


def _engine(name: str, packs: list[Pack], params: Mapping[str, Mapping[str, Any]]) -> Engine:
    if name == "native":
        return NativeEngine(packs, params)
    if name == "cel":
        from policykit.engines.cel import CelEngine

        return CelEngine(packs, params)  # validates packs and parameters (check_pack)
    from policykit.engines.rego import OpaEngine, RegopyEngine

    if name == "rego":
        # per object: measured faster than batch in regopy (benchmarks/bench_rego.py:
        # ~1.3 ms vs ~1.7 ms per object at 1k-10k; both linear)
        return RegopyEngine(packs, params, mode="object")
    if name == "opa":
        return OpaEngine(packs, params)
    raise ValueError(f"unknown engine {name!r}")


def check_stream(
    packs: list[Pack],
    parts: Iterable[LoadResult],
    params: Mapping[str, Mapping[str, Any]],
    engine_name: str = "native",
    *,
    record_checked: bool = False,
    engine: Engine | None = None,
) -> CheckReport:
    """Evaluate ``packs`` file by file; documents are dropped once evaluated.

    ``record_checked`` also keeps, per object, which rules applied to it (for
    JUnit's passing test cases). ``engine``: the one :func:`make_engine` built
    for ``engine_name``, ``packs`` and ``params`` (default: built here)."""
    if engine is None:
        engine = make_engine(engine_name, packs, params)
    checked: list[Checked] = []
    findings: list[Finding] = []
    errors: list[PolicykitError] = []
    # an object an engine could not evaluate: after the files' own errors, in
    # the order of the objects (the parallel run's order too)
    engine_errors: list[PolicykitError] = []
    refused: set[int] = set()  # objects the engine cannot hold in its inventory
    if uses_inventory(packs):
        # a cross-object rule (objects()) sees every object of the run: load all first
        parts = list(parts)
        docs = [d for part in parts for d in part.documents]
        refused = _screen_inventory(engine, docs, engine_errors)
        engine.set_inventory([d.obj for d in docs if id(d) not in refused])
    skipped: list[Skipped] = []
    files = objects = 0
    # an engine that evaluates in batches (real OPA) is given documents across
    # files, a batch at a time: one-document files cost it twice as much one by one
    batch = getattr(engine, "chunk", 0) if getattr(engine, "mode", "") == "batch" else 0
    pending: list[Document] = []
    for part in parts:
        if refused:  # each already an error entry: not evaluated again
            part = LoadResult(
                [d for d in part.documents if id(d) not in refused],
                part.errors,
                part.skipped,
                part.files,
            )
        if batch:
            pending.extend(part.documents)
            if len(pending) >= batch:
                findings.extend(evaluate_guarded(engine, pending, engine_errors))
                pending = []
        else:
            findings.extend(evaluate_guarded(engine, part.documents, engine_errors))
        if record_checked:
            from policykit.parallel import applicable  # JUnit only: not on check's path

            checked.extend(applicable(packs, part.documents))
        errors.extend(part.errors)
        skipped.extend(part.skipped)
        files += part.files
        objects += len(part.documents)
    if pending:
        findings.extend(evaluate_guarded(engine, pending, engine_errors))
    findings.sort(key=Finding.sort_key)
    return CheckReport(
        packs=packs,
        findings=findings,
        errors=errors + engine_errors,
        skipped=skipped,
        files=files,
        objects=objects,
        params=engine.effective_params,
        checked=checked,
        recorded=record_checked,
    )


def _screen_inventory(
    engine: Engine, docs: Sequence[Document], errors: list[PolicykitError]
) -> set[int]:
    """The objects (by ``id``) an engine cannot hold in its inventory (regopy:
    a quote-wrapped string), each an error entry at its file and line, left
    out of the inventory; the run goes on (it ended with exit 2, no report)."""
    problem_of = getattr(engine, "inventory_problem", None)
    refused: set[int] = set()
    if problem_of is None:
        return refused
    from policykit.engines.base import on_document

    for d in docs:
        problem = problem_of(d.obj)
        if problem is not None:
            refused.add(id(d))
            errors.append(on_document(problem, d))
    return refused


def check_entries(
    packs: list[Pack],
    entries: Sequence[Entry],
    params: Mapping[str, Mapping[str, Any]],
    engine_name: str = "native",
    *,
    jobs: int = 1,
    record_checked: bool = False,
    transform: Callable[[LoadResult], None] | None = None,
    progress: Any = None,
) -> CheckReport:
    """:func:`check_stream` over the files of :func:`policykit.loader.plan`,
    on ``jobs`` processes for a large run (:mod:`policykit.parallel`; the report
    is the serial one). ``transform`` sees each file's result once read (in a
    worker when parallel); ``progress.advance(n)`` is told of files read."""
    if not _pooled(entries, jobs):
        parts = read_entries(entries, 1, transform, progress)
        return check_stream(packs, parts, params, engine_name, record_checked=record_checked)
    # built (and its packs and parameters validated) here, as the serial run does;
    # the workers inherit it
    engine = make_engine(engine_name, packs, params)
    # an engine over the inventory that cannot split its rules (all but the
    # native one): read in parallel, evaluated here
    here = engine.uses_inventory and getattr(engine, "select_rules", None) is None
    from policykit import parallel

    out = parallel.check(
        packs,
        entries,
        None if here else engine,
        jobs=jobs,
        record_checked=record_checked,
        transform=transform,
        progress=progress,
    )
    if here:
        return check_stream(
            packs, out.parts, params, engine_name, record_checked=record_checked, engine=engine
        )
    out.findings.sort(key=Finding.sort_key)
    return CheckReport(
        packs=packs,
        findings=out.findings,
        errors=[*out.errors, *out.engine_errors],
        skipped=out.skipped,
        files=out.files,
        objects=out.objects,
        params=engine.effective_params,
        checked=out.checked,
        recorded=record_checked,
    )


def read_entries(
    entries: Sequence[Entry],
    jobs: int,
    transform: Callable[[LoadResult], None] | None = None,
    progress: Any = None,
    meanwhile: Callable[[], None] | None = None,
) -> Iterable[LoadResult]:
    """What ``entries`` hold, file by file, in order: read on ``jobs`` processes
    for a large run (:mod:`policykit.parallel`), else as they are consumed.
    ``transform`` and ``progress`` as :func:`check_entries`; ``meanwhile`` runs
    here while the workers read (not at all for a serial run)."""
    if _pooled(entries, jobs):
        from policykit import parallel

        return parallel.check(
            [], entries, None, jobs=jobs, transform=transform, progress=progress,
            meanwhile=meanwhile,
        ).parts  # fmt: skip
    parts: Iterable[LoadResult] = load_entries(entries)
    if transform is not None:
        parts = _transformed(parts, transform)
    if progress is not None:
        parts = _advancing(parts, progress)
    return parts


def _transformed(
    parts: Iterable[LoadResult], transform: Callable[[LoadResult], None]
) -> Iterator[LoadResult]:
    for part in parts:
        transform(part)
        yield part


def _advancing(parts: Iterable[LoadResult], progress: Any) -> Iterator[LoadResult]:
    for part in parts:
        yield part
        progress.advance()


def check_paths(
    paths: Sequence[str],
    *,
    packs: Sequence[str] = (),
    params: Mapping[str, Mapping[str, Any]] | None = None,
    include: Sequence[str] = DEFAULT_INCLUDE,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    jobs: int = 1,
) -> CheckReport:
    """Load ``paths`` and evaluate ``packs`` (default: the shipped packs) over them;
    ``jobs`` > 1: a large run on that many processes (the same report)."""
    pack_objs = load_packs(list(packs))
    if jobs > 1:
        entries = list(plan(paths, include=include, exclude=exclude))
        return check_entries(pack_objs, entries, params or {}, jobs=jobs)
    parts = iter_load(paths, include=include, exclude=exclude)
    return check_stream(pack_objs, parts, params or {})


def _pooled(entries: Sequence[Entry], jobs: int) -> bool:
    """Whether ``entries`` are read on a pool (:func:`policykit.parallel.worth_it`);
    a run too small for one does not import it (issue 21: start-up)."""
    if jobs <= 1 or len(entries) < cores.MIN_FILES:
        return False
    from policykit import parallel

    return parallel.worth_it(entries, jobs)
