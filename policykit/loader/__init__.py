"""Reading the objects to check: files, directories, stdin.

* YAML (multi-document, PyYAML's C loader) and JSON;
* ``kind: List`` documents are expanded into their items;
* the 1-based line of each document (and List item) is kept;
* malformed input gives one :class:`~policykit.errors.InputError` per file
  (the documents read before the error are kept) and loading goes on;
* YAML aliases whose expansion exceeds a bound (billion laughs) or that
  recurse are refused, not followed;
* mappings that are neither a Kubernetes object nor a Backstage entity (no
  ``apiVersion``/``kind``) are reported as *skipped*, never silently dropped.
"""

from __future__ import annotations

import fnmatch
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from policykit.errors import InputError, SourceLoc
from policykit.model import Document

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

DEFAULT_INCLUDE: tuple[str, ...] = ("*.yaml", "*.yml", "*.json")
DEFAULT_EXCLUDE: tuple[str, ...] = (
    ".git",
    "node_modules",
    ".venv",
    "venv",
    "__pycache__",
    "policykit.yaml",
    "policykit.waivers.yaml",
    "*.policykit.json",
    "*.policykit.yaml",
)
"""Skipped inside directories: tool folders and policykit's own files
(configuration, waivers, baselines, expected findings: ``*.policykit.json``)."""
TEST_API_VERSION = "policykit.dev/v1alpha1"
"""policykit's own rule tests (``kind: Test``) are skipped, not checked."""
MAX_ALIAS_EXPANSION = 100_000
"""Most nodes a document may expand to through aliases (plain nodes are free)."""


@dataclass(frozen=True, slots=True)
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
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def iter_files(
    root: Path, include: Sequence[str] = DEFAULT_INCLUDE, exclude: Sequence[str] = DEFAULT_EXCLUDE
) -> Iterator[Path]:
    """Files under ``root`` (sorted, recursive) that match include and not exclude."""
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        rel_dir = base.relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(d for d in dirnames if not _matches(rel_dir + d, exclude))
        for name in sorted(filenames):
            rel = rel_dir + name
            if _matches(rel, include) and not _matches(rel, exclude):
                yield base / name


def _expansion_ok(node: yaml.Node) -> bool:
    """False if aliases make ``node`` expand beyond the bound or recurse."""
    memo: dict[int, int] = {}
    on_stack: set[int] = set()

    def size(n: yaml.Node) -> int:
        key = id(n)
        if key in memo:
            return memo[key]
        if key in on_stack:
            raise RecursionError
        on_stack.add(key)
        total = 1
        if isinstance(n, yaml.SequenceNode):
            for c in n.value:
                total += size(c)
                if total > MAX_ALIAS_EXPANSION:
                    break
        elif isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                total += size(k) + size(v)
                if total > MAX_ALIAS_EXPANSION:
                    break
        on_stack.discard(key)
        memo[key] = total
        return total

    try:
        return size(node) <= MAX_ALIAS_EXPANSION
    except RecursionError:
        return False


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
    result: LoadResult, obj: Any, file: str, index: int, line: int, item_lines: list[int]
) -> None:
    if obj is None:
        return  # an empty document (``---`` alone) carries nothing
    if not isinstance(obj, dict):
        what = "a list" if isinstance(obj, list) else f"a {type(obj).__name__}"
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
        result.skipped.append(
            Skipped(file, index, line, "no apiVersion/kind: not a Kubernetes object or entity")
        )
        return
    if obj["apiVersion"] == TEST_API_VERSION and obj["kind"] == "Test":
        result.skipped.append(Skipped(file, index, line, "a policykit rule test (policykit test)"))
        return
    result.documents.append(Document(obj, file, index, line))


def _is_object(obj: dict[str, Any]) -> bool:
    return isinstance(obj.get("apiVersion"), str) and isinstance(obj.get("kind"), str)


def yaml_documents(
    text: str, file: str, errors: list[InputError]
) -> Iterator[tuple[Any, int, yaml.Node]]:
    """(value, index, node) of each YAML document of ``text``, with policykit's
    guards: a document whose aliases expand without bound is refused, malformed
    YAML ends the stream; each problem is appended to ``errors`` as one line."""
    loader = _Loader(text)
    check_aliases = "&" in text
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if check_aliases and not _expansion_ok(node):
                errors.append(
                    InputError(
                        f"document {index}: YAML aliases expand beyond {MAX_ALIAS_EXPANSION} "
                        "nodes or recurse; refused",
                        loc=SourceLoc(file, node.start_mark.line + 1),
                        hint="remove the anchors/aliases",
                    )
                )
            else:
                yield loader.construct_document(node), index, node
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        col = f", column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "malformed YAML"
        errors.append(
            InputError(
                f"malformed YAML{col}: {problem}",
                loc=SourceLoc(file, line),
                hint="fix the syntax; documents before this point were checked",
            )
        )
    except yaml.YAMLError as exc:
        errors.append(InputError(f"malformed YAML: {exc}", loc=SourceLoc(file)))
    except (ValueError, TypeError, RecursionError) as exc:
        # e.g. an unhashable mapping key ("? [a]: b") or absurd nesting
        errors.append(InputError(f"unsupported YAML construct: {exc}", loc=SourceLoc(file)))
    finally:
        loader.dispose()


def load_yaml_text(text: str, file: str) -> LoadResult:
    result = LoadResult(files=1)
    for obj, index, node in yaml_documents(text, file, result.errors):
        _add(result, obj, file, index, node.start_mark.line + 1, _list_item_lines(node))
    return result


def load_json_text(text: str, file: str) -> LoadResult:
    result = LoadResult(files=1)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        result.errors.append(
            InputError(
                f"malformed JSON, column {exc.colno}: {exc.msg}",
                loc=SourceLoc(file, exc.lineno),
            )
        )
        return result
    except RecursionError:
        result.errors.append(InputError("JSON nested too deeply", loc=SourceLoc(file)))
        return result
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
    name = display or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return LoadResult(
            errors=[InputError(f"cannot read file: {exc.strerror or exc}", loc=SourceLoc(name))],
            files=1,
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return LoadResult(
            errors=[
                InputError(
                    f"not UTF-8 text (byte {exc.start})",
                    loc=SourceLoc(name),
                    hint="save the file as UTF-8",
                )
            ],
            files=1,
        )
    return load_text(text, name)


def iter_load(
    paths: Iterable[str],
    *,
    include: Sequence[str] = DEFAULT_INCLUDE,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    stdin_name: str = "<stdin>",
) -> Iterator[LoadResult]:
    """One :class:`LoadResult` per file, in order (directories walked, ``-`` is stdin).

    Streaming lets a caller evaluate and drop each file's documents before the
    next is read, so memory does not grow with the size of the tree.
    """
    for p in paths:
        if p == "-":
            yield load_text(sys.stdin.read(), stdin_name)
            continue
        path = Path(p)
        if path.is_dir():
            for f in iter_files(path, include, exclude):
                yield load_file(f, _display(f))
        elif path.exists():
            yield load_file(path, _display(path))
        else:
            missing = InputError(
                "no such file or directory", loc=SourceLoc(p), hint="check the path"
            )
            yield LoadResult(errors=[missing], files=1)


def load_paths(
    paths: Iterable[str],
    *,
    include: Sequence[str] = DEFAULT_INCLUDE,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    stdin_name: str = "<stdin>",
) -> LoadResult:
    """Load every path (file, directory or ``-`` for stdin) into one result."""
    result = LoadResult()
    for part in iter_load(paths, include=include, exclude=exclude, stdin_name=stdin_name):
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
