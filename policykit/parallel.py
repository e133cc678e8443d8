"""Checking a large run on every core (``policykit check --jobs N``).

A run of at least :data:`MIN_FILES` files is cut into chunks of consecutive
files, handed to a pool of ``jobs`` worker processes
(:class:`concurrent.futures.ProcessPoolExecutor`), and the chunks' results are
merged in the order of the files, so the report is byte for byte the serial
one (findings are sorted as :func:`policykit.api.check_stream` sorts them;
errors, skipped documents and JUnit's checked objects keep the order of the
files).

* native engine, no cross-object rule: each worker reads *and* evaluates its
  chunks, and sends back findings only;
* a cross-object rule (``objects()``) needs the whole inventory first: the
  workers read the chunks in parallel and send the documents back; then a
  second pool, forked with the inventory in memory, evaluates ranges of it
  (each worker sets the inventory once);
* another engine (rego, opa, cel): the workers read in parallel, the engine
  runs in this process (a Go or C++ runtime is not forked).

The workers are forked (``fork`` start method, POSIX): packs, parameters and the
hook that checks custom resources are inherited, never pickled. Where ``fork``
is not available the run stays serial.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from policykit.errors import InputError
from policykit.ir.evaluate import selector_matches
from policykit.ir.rule import Pack
from policykit.loader import Entry, LoadResult, Skipped, load_entries
from policykit.model import Document, Finding, object_ref
from policykit.reports import Checked

if TYPE_CHECKING:
    from policykit.engines.base import Engine

MIN_FILES = 256
"""Below this many files a run stays in one process: starting the pool and
sending results back costs more than it saves (benchmarks/bench_cores.py)."""
CHUNK_MAX = 64
"""Files per chunk at most: small enough to balance the workers and to move a
progress bar, large enough to keep the per-task cost (a pickle each way) low."""
MIN_OBJECTS_PER_TASK = 256
"""Objects of the inventory a worker evaluates per task, at least."""


def applicable(packs: Sequence[Pack], docs: Iterable[Document]) -> list[Checked]:
    """Per object, the rules that apply to it (JUnit's passing test cases): the
    one pipeline step both a serial run (:mod:`policykit.api`) and a worker run."""
    out = []
    for d in docs:
        rules = tuple(
            (p.name, r.id)
            for p in packs
            for r in p.rules
            if selector_matches(r.selector, d.obj, d.source)
        )
        out.append(Checked(d.file, d.line, d.index, object_ref(d.obj, d.source), rules))
    return out


class Advance(Protocol):
    def advance(self, n: int = 1) -> None: ...


def default_jobs() -> int:
    """The number of cores this process may use."""
    count = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if count is not None:
        return int(count() or 1)
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def worth_it(entries: Sequence[Entry], jobs: int) -> bool:
    """Whether a run of ``entries`` goes to a pool: more than one job, enough
    files, no standard input (it cannot be shared), and ``fork`` available."""
    if jobs <= 1 or any(e.stdin for e in entries):
        return False
    files = sum(1 for e in entries if e.path is not None)
    return files >= MIN_FILES and can_fork()


@dataclass(slots=True)
class Outcome:
    """What a run (or a chunk of it) found, in the order of its files."""

    findings: list[Finding] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    checked: list[Checked] = field(default_factory=list)
    files: int = 0
    objects: int = 0
    parts: list[LoadResult] = field(default_factory=list)  # read only: the documents too


@dataclass(slots=True)
class _Job:
    packs: list[Pack]
    engine: Engine | None  # the native engine built (and validated) in the parent; None: another
    record_checked: bool
    transform: Callable[[LoadResult], None] | None
    documents: list[Document] = field(default_factory=list)  # the inventory (2nd phase)


# Set in the parent before the pool forks; each worker reads its copy (the engine,
# its inventory index included, is shared copy-on-write, never rebuilt).
_JOB: _Job | None = None


def _init_worker() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


def _read(paths: list[Any]) -> list[LoadResult]:
    assert _JOB is not None
    parts = list(load_entries(Entry(path=p) for p in paths))
    if _JOB.transform is not None:
        for part in parts:
            _JOB.transform(part)
    return parts


def _read_chunk(paths: list[Any]) -> Outcome:
    """Worker: read a chunk; the documents go back."""
    return Outcome(parts=_read(paths))


def _check_chunk(paths: list[Any]) -> Outcome:
    """Worker: read and evaluate a chunk; the findings go back."""
    assert _JOB is not None and _JOB.engine is not None
    engine = _JOB.engine
    out = Outcome()
    for part in _read(paths):
        out.findings.extend(engine.evaluate_all(part.documents))
        if _JOB.record_checked:
            out.checked.extend(applicable(_JOB.packs, part.documents))
        out.errors.extend(part.errors)
        out.skipped.extend(part.skipped)
        out.files += part.files
        out.objects += len(part.documents)
    return out


def _evaluate_range(bounds: tuple[int, int]) -> list[Finding]:
    """Worker, second phase: evaluate documents ``[start, stop)`` of the inventory."""
    assert _JOB is not None and _JOB.engine is not None
    return list(_JOB.engine.evaluate_all(_JOB.documents[bounds[0] : bounds[1]]))


def _chunks(entries: Sequence[Entry], jobs: int) -> Iterator[list[Any] | InputError]:
    """Consecutive files in chunks; an error entry (a missing path, a directory
    that cannot be listed) stands alone, in its place."""
    files = sum(1 for e in entries if e.path is not None)
    size = max(1, min(CHUNK_MAX, files // (jobs * 8) or 1))
    chunk: list[Any] = []
    for e in entries:
        if e.error is not None:
            if chunk:
                yield chunk
                chunk = []
            yield e.error
        elif e.path is not None:
            chunk.append(e.path)
            if len(chunk) >= size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _pool(jobs: int) -> Any:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context("fork"), initializer=_init_worker
    )


def _run_chunks(
    entries: Sequence[Entry],
    jobs: int,
    work: Callable[[list[Any]], Outcome],
    progress: Advance | None,
) -> Iterator[Outcome]:
    """``work`` over the chunks of ``entries`` in the pool, outcomes in order."""
    tasks = list(_chunks(entries, jobs))
    with _pool(jobs) as pool:
        futures = [None if isinstance(t, InputError) else pool.submit(work, t) for t in tasks]
        for task, future in zip(tasks, futures, strict=True):
            if future is None:
                assert isinstance(task, InputError)
                yield Outcome(errors=[task])
                continue
            out = future.result()
            if progress is not None and isinstance(task, list):
                progress.advance(len(task))
            yield out


def check(
    packs: list[Pack],
    entries: Sequence[Entry],
    engine: Engine | None,
    *,
    jobs: int,
    record_checked: bool = False,
    transform: Callable[[LoadResult], None] | None = None,
    progress: Advance | None = None,
) -> Outcome:
    """Read and, with ``engine`` (a :class:`~policykit.engines.native.NativeEngine`),
    evaluate ``entries`` on ``jobs`` worker processes. With ``engine=None``
    (another engine), ``Outcome.parts`` holds what was read, in order, for the
    caller to evaluate. ``transform`` runs in the worker on each file's result
    (custom resources checked against their CRDs)."""
    global _JOB
    _JOB = _Job(list(packs), engine, record_checked, transform)
    try:
        if engine is not None and not engine.uses_inventory:
            total = Outcome()
            for out in _run_chunks(entries, jobs, _check_chunk, progress):
                total.findings.extend(out.findings)
                total.checked.extend(out.checked)
                total.errors.extend(out.errors)
                total.skipped.extend(out.skipped)
                total.files += out.files
                total.objects += out.objects
            return total
        parts: list[LoadResult] = []
        for out in _run_chunks(entries, jobs, _read_chunk, progress):
            parts.extend(out.parts or [LoadResult(errors=out.errors)])
        if engine is None:
            return Outcome(parts=parts)
        return _evaluate_inventory(parts, jobs, record_checked, packs)
    finally:
        _JOB = None


def _evaluate_inventory(
    parts: list[LoadResult], jobs: int, record_checked: bool, packs: list[Pack]
) -> Outcome:
    """Second phase of a run with cross-object rules: every document is read;
    workers forked now share them, set the inventory once and evaluate ranges."""
    assert _JOB is not None
    docs = [d for part in parts for d in part.documents]
    _JOB.documents = docs
    total = Outcome(files=sum(p.files for p in parts), objects=len(docs))
    for part in parts:
        total.errors.extend(part.errors)
        total.skipped.extend(part.skipped)
        if record_checked:
            total.checked.extend(applicable(packs, part.documents))
    step = max(MIN_OBJECTS_PER_TASK, -(-len(docs) // (jobs * 4)))
    bounds = [(i, min(i + step, len(docs))) for i in range(0, len(docs), step)]
    engine = _JOB.engine
    assert engine is not None  # check() runs this phase only with an engine
    engine.set_inventory([d.obj for d in docs])  # indexed once, before the fork
    if len(bounds) <= 1:
        total.findings = list(engine.evaluate_all(docs))
        return total
    with _pool(jobs) as pool:
        for found in pool.map(_evaluate_range, bounds):
            total.findings.extend(found)
    return total
