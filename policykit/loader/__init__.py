"""Reading the objects to check: files, directories, stdin.

* YAML (multi-document, PyYAML's C loader) and JSON;
* ``kind: List`` documents are expanded into their items;
* the 1-based line of each document (and List item) is kept;
* malformed input gives one :class:`~policykit.errors.InputError` per file
  (the documents read before the error are kept) and loading goes on;
* every read goes through :mod:`policykit.loader.yamlsafe`: regular files
  only, size-limited; YAML aliases bounded by the bytes they add; values
  restricted to JSON (no inf/nan, huge integers or lone surrogates);
* walking a directory that cannot be read is an input error, never a skip;
* mappings that are neither a Kubernetes object nor a Backstage entity (no
  ``apiVersion``/``kind``) and top-level YAML lists (Ansible playbooks and task
  files) are reported as *skipped*, with the reason, never silently dropped;
* inside a directory, tool folders and build output (:data:`IGNORED_DIRS`) are
  skipped, and with ``gitignore=True`` so is whatever git ignores there
  (``git ls-files --others --ignored --exclude-standard``: every ``.gitignore``,
  ``.git/info/exclude`` and the global excludes file); a path named explicitly
  is always read.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from policykit.errors import InputError, PolicykitError, SourceLoc
from policykit.frozen import frozen
from policykit.loader import yamlsafe
from policykit.loader.yamlsafe import read_text, safe_name
from policykit.model import Document, source_of

__all__ = [
    "DEFAULT_EXCLUDE",
    "DEFAULT_INCLUDE",
    "IGNORED_DIRS",
    "Entry",
    "LoadResult",
    "Skipped",
    "iter_files",
    "iter_load",
    "load_entries",
    "load_file",
    "load_paths",
    "load_text",
    "plan",
    "read_text",
    "safe_name",
    "yaml_documents",
]

DEFAULT_INCLUDE: tuple[str, ...] = ("*.yaml", "*.yml", "*.json")
IGNORED_DIRS: tuple[str, ...] = ("node_modules", ".venv", "venv", "__pycache__", "dist")
"""Tool folders and build output (``policykit build`` writes to ``dist/``), skipped
inside directories unless ``--no-ignore``."""
DEFAULT_EXCLUDE: tuple[str, ...] = (
    ".git",
    *IGNORED_DIRS,
    "policykit.yaml",
    "policykit.waivers.yaml",
    "*.policykit.json",
    "*.policykit.yaml",
)
"""Skipped inside directories: git's folder, tool folders and build output
(:data:`IGNORED_DIRS`) and policykit's own files (configuration, waivers,
baselines, expected findings: ``*.policykit.json``)."""
LIST_REASON = "a list, not a Kubernetes object or entity (an Ansible playbook or tasks file?)"
TEST_API_VERSION = "policykit.dev/v1alpha1"
"""policykit's own rule tests (``kind: Test``) are skipped, not checked."""


@frozen
class Skipped:
    file: str
    index: int
    line: int
    reason: str


@dataclass(slots=True)
class LoadResult:
    documents: list[Document] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files: int = 0

    def extend(self, other: LoadResult) -> None:
        self.documents.extend(other.documents)
        self.errors.extend(other.errors)
        self.skipped.extend(other.skipped)
        self.files += other.files


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    """Whether ``rel`` or its last part matches one of ``patterns`` (``fnmatchcase``)."""
    match = _matcher(tuple(patterns))
    return match(rel) is not None or match(rel.rsplit("/", 1)[-1]) is not None


@functools.lru_cache(maxsize=32)
def _matcher(patterns: tuple[str, ...]) -> Callable[[str], re.Match[str] | None]:
    """One regex for all of ``patterns``: ``fnmatchcase(name, p)`` is
    ``re.match(fnmatch.translate(p), name)``, so the alternation matches exactly
    when one of them does (one call per path instead of two per pattern)."""
    if not patterns:
        return lambda _: None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)).match


def iter_files(
    root: Path,
    include: Sequence[str] = DEFAULT_INCLUDE,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    onerror: Callable[[OSError], None] | None = None,
    ignored: frozenset[str] = frozenset(),
) -> Iterator[Path]:
    """Files under ``root`` (sorted, recursive) that match include and not exclude;
    a directory that cannot be listed is passed to ``onerror``. ``ignored``: paths
    relative to ``root`` to skip as well (directories with a trailing ``/``)."""
    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror):
        base = Path(dirpath)
        rel_dir = base.relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not _matches(rel_dir + d, exclude) and f"{rel_dir}{d}/" not in ignored
        )
        for name in sorted(filenames):
            rel = rel_dir + name
            if _matches(rel, include) and not _matches(rel, exclude) and rel not in ignored:
                yield base / name


def git_ignored(root: Path) -> frozenset[str]:
    """What git ignores under the directory ``root``, relative to it (directories
    end in ``/``): nothing outside a git work tree, without git, or when ``root``
    itself is ignored (a directory named explicitly is read)."""
    import subprocess  # only when a directory is walked, not at start-up

    args = ["ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"]
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
    except OSError:  # no git
        return frozenset()
    if proc.returncode != 0:  # not a work tree (or git refuses it): nothing to honour
        return frozenset()
    paths = frozenset(os.fsdecode(p) for p in proc.stdout.split(b"\0") if p)
    return frozenset() if "./" in paths else paths


def _list_item_lines(node: yaml.Node) -> list[int]:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if (
                isinstance(k, yaml.ScalarNode)
                and k.value == "items"
                and isinstance(v, yaml.SequenceNode)
            ):
                return [c.start_mark.line + 1 for c in v.value]
    return []


def _add(
    result: LoadResult,
    obj: Any,
    file: str,
    index: int,
    line: int,
    item_lines: list[int],
    templated: bool = False,
) -> None:
    """Document ``index`` of ``file`` into ``result``: an object, a skip with
    why, or an error. ``templated``: the file's text holds ``${{``, so a
    document may be a scaffolder skeleton (skipped: its values are not yet
    values)."""
    if obj is None:
        return  # an empty document (``---`` alone) carries nothing
    if isinstance(obj, list):
        result.skipped.append(Skipped(file, index, line, LIST_REASON))
        return
    if not isinstance(obj, dict):
        what = f"a {type(obj).__name__}"
        result.errors.append(
            InputError(
                f"document {index} is {what}, not an object",
                loc=SourceLoc(file, line),
                hint="each YAML document must be a Kubernetes object or Backstage entity",
            )
        )
        return
    if obj.get("kind") == "List" and isinstance(obj.get("items"), list):
        for i, item in enumerate(obj["items"]):
            item_line = item_lines[i] if i < len(item_lines) else line
            if isinstance(item, dict) and _is_object(item):
                result.documents.append(Document(item, file, index, item_line))
            else:
                result.errors.append(
                    InputError(
                        f"item {i} of List document {index} is not an object with apiVersion/kind",
                        loc=SourceLoc(file, item_line),
                    )
                )
        return
    if not _is_object(obj):
        # a manifest written wrong (both fields there, one not text), not another
        # kind of file: Grafana's provisioning files say "apiVersion: 1" and no kind
        both = obj.get("apiVersion") is not None and obj.get("kind") is not None
        wrong = _wrong_type(obj, ("apiVersion", "kind")) if both else None
        if wrong is not None:
            result.errors.append(
                InputError(f"document {index}: {wrong}", loc=SourceLoc(file, line))
            )
            return
        result.skipped.append(
            Skipped(file, index, line, "no apiVersion/kind: not a Kubernetes object or entity")
        )
        return
    wrong = metadata_problem(obj)
    if wrong is not None:
        result.errors.append(InputError(f"document {index}: {wrong}", loc=SourceLoc(file, line)))
        return
    if obj["apiVersion"] == TEST_API_VERSION and obj["kind"] == "Test":
        result.skipped.append(Skipped(file, index, line, "a policykit rule test (policykit test)"))
        return
    if templated and _is_skeleton(obj):
        result.skipped.append(Skipped(file, index, line, SKELETON_REASON))
        return
    result.documents.append(Document(obj, file, index, line))


SKELETON_REASON = (
    "a scaffolder skeleton: its name is a ${{ }} expression Backstage fills in when a "
    "template runs (scaffold sync and CATALOG-016 read it through its template)"
)


def _is_skeleton(obj: dict[str, Any]) -> bool:
    """A Backstage entity whose ``metadata.name`` holds a ``${{`` expression:
    no entity can be registered under such a name, so it is a skeleton's
    ``catalog-info.yaml``, not an entity. Kubernetes objects and entities with
    a name are always checked (a ``${{ github.sha }}`` annotation skipped a
    privileged Pod: fail open)."""
    if source_of(obj) != "backstage" or obj.get("kind") == "Template":
        return False
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return isinstance(name, str) and "${{" in name


def _wrong_type(obj: dict[str, Any], keys: tuple[str, ...], at: str = "") -> str | None:
    """The first of ``keys`` that ``obj`` holds as something other than text."""
    for key in keys:
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            return f"{at}{key} is {_what(value)}, not a string"
    return None


def _what(value: Any) -> str:
    """``value``'s YAML type, as a user reads it ("a number", "a list")."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "a map"
    return "a list" if isinstance(value, list) else f"a {type(value).__name__}"


def metadata_problem(obj: dict[str, Any]) -> str | None:
    """Why an object's ``metadata`` cannot be what every Kubernetes object and
    Backstage entity has (a map whose name and namespace are text), or None."""
    meta = obj.get("metadata")
    if meta is None:
        return None
    if not isinstance(meta, dict):
        return f"metadata is {_what(meta)}, not a map"
    for part in ("labels", "annotations"):
        if meta.get(part) is not None and not isinstance(meta[part], dict):
            return f"metadata.{part} is {_what(meta[part])}, not a map"
    return _wrong_type(meta, ("name", "namespace", "generateName"), "metadata.")


def _is_object(obj: dict[str, Any]) -> bool:
    return isinstance(obj.get("apiVersion"), str) and isinstance(obj.get("kind"), str)


def yaml_documents(
    text: str, file: str, errors: list[InputError]
) -> Iterator[tuple[Any, int, yaml.Node]]:
    """(value, index, node) of each YAML document of ``text``, guarded
    (:func:`policykit.loader.yamlsafe.yaml_documents`)."""
    found: list[PolicykitError] = []
    try:
        yield from yamlsafe.yaml_documents(text, file, found)
    finally:
        errors.extend(e for e in found if isinstance(e, InputError))


def load_yaml_text(text: str, file: str) -> LoadResult:
    result = LoadResult(files=1)
    file = safe_name(file)
    templated = "${{" in text
    for obj, index, node in yaml_documents(text, file, result.errors):
        line = node.start_mark.line + 1
        _add(result, obj, file, index, line, _list_item_lines(node), templated)
    return result


def load_json_text(text: str, file: str) -> LoadResult:
    result = LoadResult(files=1)
    try:
        obj = yamlsafe.load_json(text, file)
    except InputError as exc:
        result.errors.append(exc)
        return result
    file = safe_name(file)
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            _add(result, item, file, i, 1, [])
    else:
        _add(result, obj, file, 0, 1, [])
    return result


def load_text(text: str, file: str) -> LoadResult:
    if file.endswith(".json"):
        return load_json_text(text, file)
    return load_yaml_text(text, file)


def load_file(path: Path, display: str | None = None) -> LoadResult:
    """One file: a regular file within the size limit, UTF-8, parsed."""
    name = display or str(path)
    try:
        text = read_text(path, name=name)
    except InputError as exc:
        return LoadResult(errors=[exc], files=1)
    return load_text(text, name)


def _walk_error(exc: OSError, root: Path) -> InputError:
    where = exc.filename if isinstance(exc.filename, str) else str(root)
    return InputError(
        f"cannot read directory: {exc.strerror or type(exc).__name__}",
        loc=SourceLoc(safe_name(_display(Path(where)))),
        hint="fix its permissions or --exclude it",
    )


@dataclass(frozen=True, slots=True)
class Entry:
    """One thing to read: a file, standard input, or an error found while
    looking (a missing path, a directory that cannot be listed)."""

    path: Path | None = None  # a file to read
    stdin: bool = False
    error: InputError | None = None


def _walk(
    root: Path, include: Sequence[str], exclude: Sequence[str], gitignore: bool
) -> Iterator[Entry]:
    failed: list[OSError] = []
    ignored = git_ignored(root) if gitignore else frozenset()
    for f in iter_files(root, include, exclude, onerror=failed.append, ignored=ignored):
        while failed:
            yield Entry(error=_walk_error(failed.pop(0), root))
        yield Entry(path=f)
    for exc in failed:
        yield Entry(error=_walk_error(exc, root))


def _kind(path: str) -> str:
    """ "dir", "file" (anything else that exists) or "missing"; never raises."""
    try:
        st = Path(path).stat()
    except OSError as exc:
        return "missing" if exc.errno == 2 else f"error:{exc.strerror or exc}"
    return "dir" if stat.S_ISDIR(st.st_mode) else "file"


def plan(
    paths: Iterable[str],
    *,
    include: Sequence[str] = DEFAULT_INCLUDE,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    gitignore: bool = False,
) -> Iterator[Entry]:
    """What :func:`iter_load` reads, in order, without reading it (directories
    walked lazily; ``list()`` it to know how many files a run has)."""
    for p in paths:
        if p == "-":
            yield Entry(stdin=True)
            continue
        path = Path(p)
        kind = _kind(p)
        if kind == "dir":
            yield from _walk(path, include, exclude, gitignore)
        elif kind == "file":  # named explicitly: read whatever exclude or git says
            yield Entry(path=path)
        else:
            # not counted as a file read: "0 objects in 0 files", one error, exit 2
            why = "no such file or directory" if kind == "missing" else kind[len("error:") :]
            missing = InputError(why, loc=SourceLoc(safe_name(p)), hint="check the path")
            yield Entry(error=missing)


def load_entries(entries: Iterable[Entry], stdin_name: str = "<stdin>") -> Iterator[LoadResult]:
    """One :class:`LoadResult` per entry of :func:`plan`."""
    for e in entries:
        if e.error is not None:
            yield LoadResult(errors=[e.error])
        elif e.stdin:
            try:
                yield load_text(yamlsafe.read_stdin(stdin_name), stdin_name)
            except InputError as exc:
                yield LoadResult(errors=[exc], files=1)
        elif e.path is not None:
            yield load_file(e.path, _display(e.path))


def iter_load(
    paths: Iterable[str],
    *,
    include: Sequence[str] = DEFAULT_INCLUDE,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    stdin_name: str = "<stdin>",
    gitignore: bool = False,
) -> Iterator[LoadResult]:
    """One :class:`LoadResult` per file, in order (directories walked, ``-`` is stdin).

    Streaming lets a caller evaluate and drop each file's documents before the
    next is read, so memory does not grow with the size of the tree.
    ``gitignore``: also skip what git ignores inside directories.
    """
    entries = plan(paths, include=include, exclude=exclude, gitignore=gitignore)
    yield from load_entries(entries, stdin_name)


def load_paths(
    paths: Iterable[str],
    *,
    include: Sequence[str] = DEFAULT_INCLUDE,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    stdin_name: str = "<stdin>",
    gitignore: bool = False,
) -> LoadResult:
    """Load every path (file, directory or ``-`` for stdin) into one result."""
    result = LoadResult()
    for part in iter_load(
        paths, include=include, exclude=exclude, stdin_name=stdin_name, gitignore=gitignore
    ):
        result.extend(part)
    return result


def _display(path: Path) -> str:
    """A path as users see it: relative to the working directory when possible."""
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_posix()
