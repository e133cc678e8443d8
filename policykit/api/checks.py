"""``check`` as a whole: resolve the request against configuration, check the
files (custom resources against their CRDs), run existing third-party policies
beside the packs, apply the baseline and the waivers, and decide the exit code.
``policykit check`` is this plus option parsing and rendering."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

from policykit.api.checking import (
    CheckReport,
    check_entries,
    check_stream,
    read_entries,
    resolve,
)
from policykit.api.config import CheckConfig, UsageError, the_day, waivers_path
from policykit.loader import Entry, LoadResult


class Progress(Protocol):
    """A progress display (the command line's bar): told of the phase and the
    files read."""

    def phase(self, name: str, total: int | None) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def over(self, items: Iterable[Any]) -> Iterator[Any]: ...


ShowProgress = Callable[[Sequence[str]], AbstractContextManager[Progress | None]]


def gatekeeper_engine(engine: str) -> Literal["opa", "rego"]:
    """Where existing Gatekeeper templates run. ``auto``: real OPA when its
    bindings are installed (what Gatekeeper runs), else regopy (docs/engines.md
    lists where regopy differs)."""
    if engine != "auto":
        return "opa" if engine == "opa" else "rego"
    from policykit.engines.rego import EngineUnavailable, load_opa

    try:
        load_opa()
    except EngineUnavailable:
        return "rego"
    return "opa"


def plan_files(
    paths: Sequence[str], include: Sequence[str], exclude: Sequence[str], no_ignore: bool
) -> Iterator[Entry]:
    """The files a run reads: inside directories, what git ignores and the
    tool and build folders are skipped unless ``no_ignore``."""
    from policykit.loader import IGNORED_DIRS, plan

    exclude = list(exclude)
    if no_ignore:  # the defaults come first in the selection (resolve)
        for name in IGNORED_DIRS:
            if name in exclude:
                exclude.remove(name)
    return plan(list(paths), include=list(include), exclude=exclude, gitignore=not no_ignore)


def run(
    config: CheckConfig,
    progress: ShowProgress | None = None,
) -> CheckReport:
    """Check ``config.paths`` as ``policykit check`` does; the report holds the
    findings (baseline and waivers applied), the errors, the waivers expired or
    stale, the policies not run, and :attr:`CheckReport.exit_code`.
    ``progress(paths)``: a context that shows the run's progress (or yields None)."""
    from policykit.cores import default_jobs

    sel = resolve(
        paths=config.paths,
        packs=config.packs,
        params=config.params,
        include=config.include,
        exclude=config.exclude,
        fail_on=config.fail_on,
        crds=config.crds,
    )
    if not sel.paths:
        raise UsageError("no PATHS given and none configured")
    from policykit.packs import check_run_params, load_packs

    registry = None
    if sel.crds:  # jsonschema and the CRD tables load only when there are CRDs
        from policykit.k8s import crds

        registry = crds.load(sel.crds)
    pack_objs = load_packs(sel.packs)
    check_run_params(pack_objs, sel.named, sel.params, sel.where)
    if config.update_baseline and config.baseline is None:
        raise UsageError("--update-baseline needs --baseline FILE")
    if config.baseline is not None:
        from policykit import baseline as baselines
    recorded = (
        None
        if config.baseline is None or config.update_baseline
        else baselines.load(config.baseline)
    )
    third_party = None
    seen: list[Any] = []
    if config.policies:
        from policykit.existing import policies as foreign

        third_party = foreign.load(list(config.policies), gatekeeper_engine("auto"))
    engine = config.engine
    jobs = config.jobs or default_jobs()
    transform = _crd_checker(registry) if registry else None
    shown = progress(sel.paths) if progress is not None else contextlib.nullcontext(None)
    in_force = crds.using(registry) if registry is not None else contextlib.nullcontext()
    with shown as bar, in_force:
        progress_ = bar
        entries: Any = plan_files(sel.paths, sel.include, sel.exclude, config.no_ignore)
        if progress_ is not None:  # a bar needs its total: list the files first (a walk)
            entries = list(entries)
            progress_.phase(f"checking ({engine})", len(entries))
        if third_party is None:  # large runs on every core (policykit.parallel)
            report = check_entries(
                pack_objs,
                list(entries),
                sel.params,
                engine,
                jobs=jobs,
                record_checked=config.record_checked,
                transform=transform,
                progress=progress_,
            )
        else:  # every object first: the policies see the inventory and namespaces
            parts = read_entries(list(entries), jobs, transform, progress_)
            parts = foreign.documents_of(parts, seen)
            report = check_stream(
                pack_objs, parts, sel.params, engine, record_checked=config.record_checked
            )
    report.fail_on = sel.fail_on
    if third_party is not None:
        extra, report.unsupported = foreign.check(third_party, seen, jobs=jobs)
        report.findings = sorted(report.findings + extra, key=lambda f: f.sort_key())
        report.errors += third_party.errors  # policies that could not run: the report stays
        report.rule_descriptors = foreign.descriptors(third_party)
    _baseline(config, report, recorded)
    _waivers(config, report)
    return report


def _baseline(config: CheckConfig, report: CheckReport, recorded: Any) -> None:
    """Record today's findings (``update_baseline``), or mark those recorded."""
    path = config.baseline
    report.baseline_updated = config.update_baseline
    if path is None:
        return
    from policykit import baseline as baselines

    if config.update_baseline and path is not None and report.errors:
        report.warnings.append(f"policykit: {path} not updated: fix the input errors first")
    elif config.update_baseline and path is not None:
        from policykit.safeio import write_atomic

        write_atomic(path, baselines.dumps(report.findings).encode("utf-8"))
        n = len(report.findings)
        report.notes.append(f"policykit: recorded {n} finding{'' if n == 1 else 's'} in {path}")
    elif recorded is not None:
        applied = baselines.apply(report.findings, recorded)
        report.findings, report.fixed = applied.findings, applied.fixed


def _waivers(config: CheckConfig, report: CheckReport) -> None:
    path = waivers_path(config.waivers)
    if path is None:
        return
    from policykit import waivers

    outcome = waivers.apply(report.findings, waivers.load(path), the_day(config.today))
    report.findings = outcome.findings
    report.expired_waivers = [waivers.expired_message(w, str(path)) for w in outcome.expired]
    report.stale_waivers = [waivers.stale_message(w, str(path)) for w in outcome.stale]


def _crd_checker(registry: Any) -> Any:
    """Each file's objects checked against their CRDs' schemas (PK013 errors), in place."""

    def check(part: LoadResult) -> None:
        part.errors.extend(registry.validate_all(part.documents))

    return check
