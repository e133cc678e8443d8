"""``verify`` as a whole: read the objects (custom resources checked against
their CRDs, refused ones left out of the comparison), choose the targets (the
real-OPA comparison only when OPA is installed, unless asked for), and hold
every target to the reference engine (:func:`policykit.verify.verify`).
``policykit verify`` is this plus option parsing and rendering."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policykit.api.checking import read_entries, resolve
from policykit.api.checks import ShowProgress, plan_files
from policykit.api.config import UsageError, active_waivers, as_day, as_tuples, one_of
from policykit.errors import EXIT_FINDINGS, EXIT_INPUT, EXIT_OK, PolicykitError

if TYPE_CHECKING:
    from policykit.ir.rule import Pack


@dataclass(frozen=True, slots=True)
class VerifyConfig:
    """A ``verify`` run: what ``policykit verify`` takes as options."""

    paths: tuple[str, ...] = ()
    packs: tuple[str, ...] = ()
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    targets: tuple[str, ...] = ()  # default: every target (opa when it is installed)
    oracle: bool = False  # Gatekeeper templates in real OPA instead of regopy
    waivers: Path | None = None
    today: datetime.date | None = None
    crds: tuple[str, ...] = ()
    no_ignore: bool = False

    def __post_init__(self) -> None:
        as_tuples(self, "paths", "packs", "targets", "crds")
        if self.targets:
            from policykit.verify import TARGETS

            for target in self.targets:
                one_of("target", target, TARGETS)
        as_day(self)


@dataclass(slots=True)
class VerifyResult:
    """The comparison (:class:`policykit.verify.VerifyReport`), the input
    errors, the targets not run and why, and the exit code."""

    report: Any
    packs: list[Pack]
    errors: list[PolicykitError]
    not_run: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        """The ``verify --format json`` document."""
        report = self.report
        return {
            "objects": report.objects,
            "compared": dict(sorted(report.compared.items())),
            "mismatches": [
                {
                    "target": m.target,
                    "file": m.file,
                    "document": m.doc_index,
                    "rule": m.rule,
                    "expected": m.expected,
                    "got": m.got,
                }
                for m in report.mismatches
            ],
            "leftOut": report.left_out,
            "notRun": self.not_run,
            "sampled": {
                t: {"engine": s.engine, "objects": s.objects, "of": s.of}
                for t, s in sorted(report.sampled.items())
            },
        }

    def table(self, quiet: bool = False) -> str:
        """The ``verify`` text: per target its verdict, what was not run or
        left out, and each disagreement (``quiet``: the disagreements only)."""
        report = self.report
        lines = []
        for t, n in sorted(report.compared.items()) if not quiet else ():
            bad = sum(1 for m in report.mismatches if m.target == t)
            verdict = "agrees" if not bad else (f"{bad} MISMATCH" + ("" if bad == 1 else "ES"))
            if not n and not bad:
                verdict = "nothing compared (left out, below)"
            lines.append(f"{t:<11} {n:>6} {'object' if n == 1 else 'objects':<7}  {verdict}")
            if t in report.sampled:
                s = report.sampled[t]
                lines.append(
                    f"{'':<11} {s.engine}: a sample of {s.objects} of {s.of} objects "
                    "(real OPA ran every object)"
                )
        for target, why in self.not_run.items() if not quiet else ():
            lines.append(f"{target:<11} not run: {why}")
        for why in report.left_out if not quiet else ():
            lines.append(f"left out  {why}")
        for m in report.mismatches:
            lines.append(
                f"MISMATCH {m.target} {m.file}#{m.doc_index} {m.rule}: "
                f"expected {m.expected!r}, got {m.got!r}"
            )
        return "".join(line + "\n" for line in lines)

    @property
    def exit_code(self) -> int:
        if self.errors:
            return EXIT_INPUT
        return EXIT_OK if self.report.ok else EXIT_FINDINGS


class _Quiet:
    def phase(self, name: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def over(self, items: Iterable[Any]) -> Iterator[Any]:
        yield from items


def verify(
    config: VerifyConfig,
    progress: ShowProgress | None = None,
    warn: Callable[[str], None] | None = None,
) -> VerifyResult:
    """Verify ``config.paths``; ``warn`` is told at once of a target left out
    (OPA not installed)."""
    from policykit.k8s import crds
    from policykit.loader import LoadResult
    from policykit.packs import check_run_params, load_packs

    sel = resolve(paths=config.paths, packs=config.packs, params=config.params, crds=config.crds)
    if not sel.paths:
        raise UsageError("no PATHS given and none configured")
    registry = crds.load(sel.crds)
    not_run: dict[str, str] = {}
    if not config.targets:
        # by default the real-OPA comparison runs when OPA is installed; asked
        # for by --target opa, its absence is an error (PK005)
        from policykit.engines import opa_host
        from policykit.errors import EngineUnavailable

        try:
            opa_host.require()
        except EngineUnavailable as exc:
            not_run["opa"] = f"{exc.message} ({exc.hint})"
            if warn is not None:
                warn(
                    f"policykit: opa not verified: {not_run['opa']}; "
                    "the bundle is verified in regopy"
                )
    pack_objs = load_packs(sel.packs)
    check_run_params(pack_objs, sel.named, sel.params, sel.where)
    shown = progress(sel.paths) if progress is not None else contextlib.nullcontext(None)
    with shown as bar:
        steps = bar if bar is not None else _Quiet()
        entries = list(plan_files(sel.paths, sel.include, sel.exclude, config.no_ignore))
        steps.phase("reading", len(entries))
        loaded = LoadResult()
        for part in _read(entries, steps):
            loaded.extend(part)
        from policykit.verify import TARGETS
        from policykit.verify import verify as run_verify

        chosen = config.targets or tuple(t for t in TARGETS if t not in not_run)
        documents = loaded.documents
        if registry:
            refused = {id(d): registry.validate(d) for d in documents}
            loaded.errors += [e for d in documents for e in refused[id(d)]]
            documents = [d for d in documents if not refused[id(d)]]
        report = run_verify(
            pack_objs,
            sel.params,
            documents,
            chosen,
            gatekeeper_engine="opa" if config.oracle else "rego",
            waivers=active_waivers(config.waivers, config.today),
            custom=registry,
            progress=bar,
        )
    return VerifyResult(report, pack_objs, list(loaded.errors), not_run)


def _read(entries: list[Any], steps: Any) -> Iterable[Any]:
    """What the files hold, in their order: on every core for a large run
    (the parse costs about as much as every target together), else here."""
    from policykit.cores import default_jobs

    return read_entries(entries, default_jobs(), progress=steps, meanwhile=_import_runners)


def _import_runners() -> None:
    """What verifying imports (about 0.4 s: the targets' compilers, the
    admission harnesses, jsonschema), imported while the workers read, not
    before (they are forked first: an import in progress is never forked)."""
    import policykit.verify
    import policykit.verify_cel
    import policykit.verify_gatekeeper
    import policykit.verify_targets  # noqa: F401
