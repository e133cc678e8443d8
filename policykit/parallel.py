"""Checking a large run on every core (``policykit check --jobs N``).

A run of at least :data:`policykit.cores.MIN_FILES` files is cut into chunks
of consecutive files, handed to a pool of ``jobs`` worker processes
(:class:`concurrent.futures.ProcessPoolExecutor`), and the chunks' results are
merged in the order of the files, so the report is byte for byte the serial
one (findings are sorted as :func:`policykit.api.check_stream` sorts them;
errors, skipped documents and JUnit's checked objects keep the order of the
files).

* native engine, no cross-object rule: each worker reads *and* evaluates its
  chunks, and sends back findings only;
* a cross-object rule (``objects()``) needs the whole inventory first: the
  workers read the chunks in parallel, evaluate the rules that do not read the
  inventory (:meth:`~policykit.engines.native.NativeEngine.select_rules`) and
  send the documents back with those findings; then the rules that read it are
  evaluated over ranges of the inventory by a second pool, forked with the
  inventory in memory (from :data:`INVENTORY_POOL_MIN` objects; below, this
  process evaluates them). The findings of both phases
  are put in the serial run's order: :meth:`Finding.sort_key
  <policykit.model.Finding.sort_key>`, then the rule's place in
  :meth:`~policykit.engines.native.NativeEngine.rule_order`;
* another engine (rego, opa, cel), no cross-object rule: as the native
  engine, each worker reads and evaluates its chunks with the engine built
  (and validated) here, inherited by the fork (regopy's and cel-cpp's objects
  are plain memory, no thread; real OPA runs in a process of its own, which
  each worker starts for itself, :mod:`policykit.engines.opa_host`);
* another engine with a cross-object rule: the workers read in parallel, and
  the engine runs over the whole inventory in this process
  (:func:`policykit.api.check_stream`).

The workers are forked (``fork`` start method, POSIX): packs, parameters and the
hook that checks custom resources are inherited, never pickled. Where ``fork``
is not available the run stays serial. A run too small for a pool does not
import this module (``api/checking.py: _pooled``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from policykit import cores
from policykit.cores import default_jobs as default_jobs
from policykit.errors import InputError, PolicykitError

if TYPE_CHECKING:
    from policykit.engines.base import Engine
    from policykit.ir.rule import Pack
    from policykit.loader import Entry, LoadResult, Skipped
    from policykit.model import Checked, Document, Finding

CHUNK_MAX = 64
"""Files per chunk at most: small enough to balance the workers and to move a
progress bar, large enough to keep the per-task cost (a pickle each way) low."""
MIN_OBJECTS_PER_TASK = 256
"""Objects of the inventory a worker evaluates per task, at least."""
INVENTORY_POOL_MIN = 50_000
"""From this many objects, the rules that read the inventory are evaluated by a
second pool; below, in this process. Measured on the project's 2-core machine
under load (benchmarks/bench_done.py trees, four packs): at 8,000 and 16,000
objects the second pool saved no wall time (forking with the inventory, its
pages copied as the workers touch them, each worker's own totals) once the
other rules had moved to the first phase."""


def applicable(packs: Sequence[Pack], docs: Iterable[Document]) -> list[Checked]:
    """Per object, the rules that apply to it (JUnit's passing test cases): the
    one pipeline step both a serial run (:mod:`policykit.api`) and a worker run."""
    from policykit.ir.evaluate import selector_matches
    from policykit.model import Checked, object_ref

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


def can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def worth_it(entries: Sequence[Entry], jobs: int) -> bool:
    """Whether a run of ``entries`` goes to a pool: more than one job, enough
    files, no standard input (it cannot be shared), and ``fork`` available."""
    if jobs <= 1 or any(e.stdin for e in entries):
        return False
    files = sum(1 for e in entries if e.path is not None)
    return files >= cores.MIN_FILES and can_fork()


@dataclass(slots=True)
class Outcome:
    """What a run (or a chunk of it) found, in the order of its files."""

    findings: list[Finding] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    # objects the engine could not evaluate (evaluate_guarded), in their order
    engine_errors: list[PolicykitError] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    checked: list[Checked] = field(default_factory=list)
    files: int = 0
    objects: int = 0
    parts: list[LoadResult] = field(default_factory=list)  # read only: the documents too
    # with the findings of a cross-object run: the position of each one's document
    # (in its chunk, then in the run), by which :func:`_serial_order` restores the
    # serial run's order
    positions: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Job:
    packs: list[Pack]
    engine: Engine | None  # built (and validated) in the parent; None: read only
    record_checked: bool
    transform: Callable[[LoadResult], None] | None
    local: bool = False  # 1st phase of a cross-object run: evaluate the local rules while reading
    documents: list[Document] = field(default_factory=list)  # the inventory (2nd phase)
    inventory_engine: Engine | None = None  # the rules that read it (2nd phase)


# Set in the parent before the pool forks; each worker reads its copy (the engine,
# its inventory index included, is shared copy-on-write, never rebuilt).
_JOB: _Job | None = None


def _init_worker() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


# What travels back from a worker is plain tuples, lists and dicts (pickled by C
# code); a slotted dataclass pickles through Python-level __getstate__, several
# times slower for the thousands of findings and documents of a large run.
_FindingRow = tuple[Any, ...]


def finding_rows(findings: Iterable[Finding]) -> list[_FindingRow]:
    """Findings as plain tuples, to send back from a worker (:func:`findings_of`)."""
    return [
        (
            f.rule,
            f.pack,
            f.severity,
            f.message,
            (f.object.api_version, f.object.kind, f.object.namespace, f.object.name),
            f.file,
            f.doc_index,
            f.line,
            f.item,
            f.baselined,
            f.waiver,
        )
        for f in findings
    ]


def findings_of(rows: list[_FindingRow]) -> list[Finding]:
    """The findings :func:`finding_rows` sent."""
    from policykit.model import Finding, ObjectRef

    refs: dict[tuple[str, str, str, str], ObjectRef] = {}
    out = []
    for rule, pack, severity, message, ref, file, index, line, item, baselined, waiver in rows:
        obj = refs.get(ref)
        if obj is None:
            obj = refs[ref] = ObjectRef(*ref)
        out.append(
            Finding(rule, pack, severity, message, obj, file, index, line, item, baselined, waiver)
        )
    return out


def _wire(out: Outcome) -> tuple[Any, ...]:
    """An :class:`Outcome` as it leaves a worker (:func:`_unwire` in the parent)."""
    parts = [
        (p.errors, p.skipped, p.files, [(d.obj, d.file, d.index, d.line) for d in p.documents])
        for p in out.parts
    ]
    rows = finding_rows(out.findings)
    return (
        rows, out.errors, out.skipped, out.checked, out.files, out.objects, parts, out.positions,
        out.engine_errors,
    )  # fmt: skip


def _unwire(wire: tuple[Any, ...]) -> Outcome:
    from policykit.loader import LoadResult
    from policykit.model import Document

    rows, errors, skipped, checked, files, objects, parts, positions, engine_errors = wire
    return Outcome(
        findings=findings_of(rows),
        errors=errors,
        engine_errors=engine_errors,
        skipped=skipped,
        checked=checked,
        files=files,
        objects=objects,
        parts=[
            LoadResult([Document(*d) for d in docs], errs, skips, n)
            for errs, skips, n, docs in parts
        ],
        positions=positions,
    )


def _read(paths: list[Any]) -> list[LoadResult]:
    from policykit.loader import Entry, load_entries

    assert _JOB is not None
    parts = list(load_entries(Entry(path=p) for p in paths))
    if _JOB.transform is not None:
        for part in parts:
            _JOB.transform(part)
    return parts


def _read_chunk(paths: list[Any]) -> tuple[Any, ...]:
    """Worker: read a chunk; the documents go back (with the findings of the
    rules that do not read the inventory, and the rules that apply, when the
    run evaluates them here)."""
    assert _JOB is not None
    parts = _read(paths)
    out = Outcome(parts=parts)
    if _JOB.local and _JOB.engine is not None:
        docs = [d for part in parts for d in part.documents]
        _evaluate_each(_JOB.engine, docs, out.findings, out.positions)
        if _JOB.record_checked:
            out.checked.extend(applicable(_JOB.packs, docs))
    return _wire(out)


def _evaluate_each(
    engine: Engine, docs: Sequence[Document], findings: list[Finding], positions: list[int]
) -> None:
    """Findings of ``docs`` one document at a time, each with its position."""
    for i, doc in enumerate(docs):
        found = engine.evaluate_all([doc])
        findings.extend(found)
        positions.extend([i] * len(found))


def _check_chunk(paths: list[Any]) -> tuple[Any, ...]:
    """Worker: read and evaluate a chunk; the findings go back. The engine is
    given the chunk's documents at once, whatever file each comes from (real
    OPA evaluates them in batches: one-document files cost it twice as much
    one by one); the findings are sorted in the end, as the serial run's."""
    assert _JOB is not None and _JOB.engine is not None
    engine = _JOB.engine
    out = Outcome()
    parts = _read(paths)
    from policykit.engines.base import evaluate_guarded

    docs = [d for p in parts for d in p.documents]
    out.findings.extend(evaluate_guarded(engine, docs, out.engine_errors))
    for part in parts:
        if _JOB.record_checked:
            out.checked.extend(applicable(_JOB.packs, part.documents))
        out.errors.extend(part.errors)
        out.skipped.extend(part.skipped)
        out.files += part.files
        out.objects += len(part.documents)
    return _wire(out)


def _evaluate_range(bounds: tuple[int, int]) -> tuple[list[_FindingRow], list[int]]:
    """Worker, second phase: evaluate documents ``[start, stop)`` of the inventory
    (the findings, and the position of each one's document in the range)."""
    assert _JOB is not None and _JOB.inventory_engine is not None
    findings: list[Finding] = []
    positions: list[int] = []
    docs = _JOB.documents[bounds[0] : bounds[1]]
    _evaluate_each(_JOB.inventory_engine, docs, findings, positions)
    return finding_rows(findings), positions


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


def even_slices(n: int, k: int) -> list[tuple[int, int]]:
    """``range(n)`` in ``k`` (at most ``n``, at least one) consecutive slices
    whose sizes differ by one at most, the larger first."""
    k = max(1, min(k, n))
    size, more = divmod(n, k)  # the first `more` slices take one more object
    bounds = [i * size + min(i, more) for i in range(k + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(k)]


def completed(futures: Iterable[Any]) -> Iterator[Any]:
    """Each of ``futures`` once it is done, in the order they finish, waited
    for in steps. The OS gives a Ctrl-C to any thread of the process, often
    one of the pool's helper threads; Python then raises KeyboardInterrupt in
    this one only when it runs again, and an endless wait for a chunk never
    returns to it before the chunk is done."""
    from concurrent.futures import FIRST_COMPLETED, wait

    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
        yield from done


def result(future: Any) -> Any:
    """``future.result()``, waited for in steps (:func:`completed`)."""
    return next(completed([future])).result()


@contextlib.contextmanager
def pool(jobs: int) -> Iterator[Any]:
    """A pool of ``jobs`` forked workers, which leave Ctrl-C to this process.
    Leaving it normally waits for the work; leaving it by an exception (Ctrl-C,
    an error a chunk raised) cancels the work not started and ends the workers
    at once: the run is over (waiting would run every chunk queued, and a
    worker left behind would hold this process's standard output open)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context("fork"), initializer=_init_worker
    )
    try:
        yield workers
    except BaseException:
        # no public way to end them before Python 3.14 (terminate_workers);
        # shutdown() forgets them
        processes = list((getattr(workers, "_processes", None) or {}).values())
        workers.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        raise
    workers.shutdown(wait=True)


def _run_chunks(
    entries: Sequence[Entry],
    jobs: int,
    work: Callable[[list[Any]], tuple[Any, ...]],
    progress: Advance | None,
    meanwhile: Callable[[], None] | None = None,
) -> Iterator[Outcome]:
    """``work`` over the chunks of ``entries`` in the pool, outcomes in order
    (``meanwhile`` runs here once the workers have started)."""
    tasks = list(_chunks(entries, jobs))
    with pool(jobs) as workers:
        futures = [None if isinstance(t, InputError) else workers.submit(work, t) for t in tasks]
        if meanwhile is not None:
            meanwhile()
        for task, future in zip(tasks, futures, strict=True):
            if future is None:
                assert isinstance(task, InputError)
                yield Outcome(errors=[task])
                continue
            out = _unwire(result(future))
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
    meanwhile: Callable[[], None] | None = None,
) -> Outcome:
    """Read and, with ``engine``, evaluate ``entries`` on ``jobs`` worker
    processes: a :class:`~policykit.engines.native.NativeEngine` (possibly
    wrapped), or another engine that reads no inventory. With ``engine=None``
    (another engine over an inventory), ``Outcome.parts`` holds what was read,
    in order, for the caller to evaluate. ``transform`` runs in the worker on each
    file's result (custom resources checked against their CRDs). ``meanwhile``:
    work for this process while the workers read (only where they read and
    send back what they read: ``engine`` None or with inventory rules)."""
    global _JOB
    _JOB = _Job(list(packs), engine, record_checked, transform)
    # a native engine (or one delegating to it) can evaluate its rules in two parts
    select = getattr(engine, "select_rules", None) if engine is not None else None
    try:
        if engine is not None and not engine.uses_inventory:
            total = Outcome()
            for out in _run_chunks(entries, jobs, _check_chunk, progress):
                total.findings.extend(out.findings)
                total.checked.extend(out.checked)
                total.errors.extend(out.errors)
                total.engine_errors.extend(out.engine_errors)
                total.skipped.extend(out.skipped)
                total.files += out.files
                total.objects += out.objects
            return total
        if select is not None:
            select("local")  # before the fork: the workers evaluate these while reading
            _JOB.local = True
        parts: list[LoadResult] = []
        local = Outcome()
        seen = 0  # documents read so far: where the chunk's positions start
        for out in _run_chunks(entries, jobs, _read_chunk, progress, meanwhile):
            if out.parts:
                parts.extend(out.parts)
            else:
                from policykit.loader import LoadResult

                parts.append(LoadResult(errors=out.errors))
            local.findings.extend(out.findings)
            local.positions.extend(seen + i for i in out.positions)
            local.checked.extend(out.checked)
            seen += sum(len(p.documents) for p in out.parts)
        if engine is None:
            return Outcome(parts=parts)
        inventory_engine = select("inventory") if select is not None else engine
        return _evaluate_inventory(
            parts, jobs, local if select is not None else None, engine, inventory_engine
        )
    finally:
        if select is not None:
            select("all")
        _JOB = None


def _evaluate_inventory(
    parts: list[LoadResult],
    jobs: int,
    local: Outcome | None,
    engine: Engine,
    inventory_engine: Engine,
) -> Outcome:
    """Second phase of a run with cross-object rules: every document is read
    (and, with ``local``, the other rules evaluated); the rules that read the
    inventory run here, or for a large run partly in workers forked now, which
    share the documents and the inventory and evaluate ranges of it."""
    assert _JOB is not None
    docs = [d for part in parts for d in part.documents]
    _JOB.documents = docs
    _JOB.inventory_engine = inventory_engine
    total = Outcome(files=sum(p.files for p in parts), objects=len(docs))
    for part in parts:
        total.errors.extend(part.errors)
        total.skipped.extend(part.skipped)
        if _JOB.record_checked and local is None:
            total.checked.extend(applicable(_JOB.packs, part.documents))
    if local is not None:
        total.findings, total.checked = local.findings, local.checked
        total.positions = local.positions
    step = max(MIN_OBJECTS_PER_TASK, -(-len(docs) // (jobs * 4)))
    bounds = [(i, min(i + step, len(docs))) for i in range(0, len(docs), step)]
    engine.set_inventory([d.obj for d in docs])
    # here: every object when only the inventory rules are left and the run is
    # not that large (INVENTORY_POOL_MIN), else the first range, which builds
    # the joins' indexes and the totals the objects look up (for most keys):
    # the workers forked next share them instead of each building them again
    if local is not None and len(docs) < INVENTORY_POOL_MIN:
        first = (0, len(docs))
    else:
        first = bounds[0] if bounds else (0, 0)
    found: list[Finding] = []
    positions: list[int] = []
    _evaluate_each(inventory_engine, docs[first[0] : first[1]], found, positions)
    if first[1] < len(docs):
        import gc

        gc.freeze()  # the documents stay shared with the workers: no GC pass copies them
        try:
            with pool(jobs) as workers:
                futures = [workers.submit(_evaluate_range, b) for b in bounds[1:]]
                for (start, _), (rows, where) in zip(
                    bounds[1:], (result(f) for f in futures), strict=True
                ):
                    found.extend(findings_of(rows))
                    positions.extend(start + i for i in where)
        finally:
            gc.unfreeze()
    total.findings.extend(found)
    if local is None:
        return total
    total.positions.extend(positions)
    total.findings = _serial_order(total.findings, total.positions, engine)
    total.positions = []
    return total


def _serial_order(findings: list[Finding], positions: list[int], engine: Engine) -> list[Finding]:
    """Findings of both phases in the order a serial run sorts them:
    :meth:`~policykit.model.Finding.sort_key`, then, among findings tied on it
    (rules of one id in two packs; the objects of one ``kind: List`` document),
    the order the serial run found them in: per file, the rules' findings by
    document and by the engine's rule order, then the findings of no pack rule
    (the CATALOG-016 template check, added after the rules' findings of a file)
    by document."""
    order: dict[tuple[str, str], tuple[int, int]] = getattr(engine, "rule_order")()  # noqa: B009
    extra = (2, 0)

    def key(i: int) -> tuple[Any, ...]:
        f = findings[i]
        rank = order.get((f.pack, f.rule), extra)
        return f.sort_key(), rank is extra, positions[i], rank

    return [findings[i] for i in sorted(range(len(findings)), key=key)]
