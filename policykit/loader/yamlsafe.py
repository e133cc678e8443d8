"""The one guarded reader for every file policykit reads (fixtures, configuration,
waivers, baselines, test suites).

* :func:`read_text` (from :mod:`policykit.loader.readfile`) reads **regular
  files only** (a FIFO, a device such as ``/dev/zero`` or a symlink to one is
  refused, never read), opened with ``O_NONBLOCK`` and checked with ``fstat``
  after opening, up to a size limit: ``POLICYKIT_MAX_FILE_BYTES`` (default 32 MiB);
* :func:`yaml_documents` / :func:`load_yaml` parse YAML with PyYAML's C loader
  restricted to JSON values: aliases may add at most ``POLICYKIT_MAX_ALIAS_BYTES``
  (default 4 MiB) of expanded content to a document (counted in bytes of the
  expanded result, so a large plain document is never refused), recursive aliases
  are refused, ``.inf``/``.nan``, integers of more than 4,300 digits and bad
  explicit tags (``!!bool maybe``) are errors; timestamps stay strings (as in
  Kubernetes);
* :func:`load_json` parses JSON with the same value guards, and refuses lone
  surrogates (``"\\ud800"``) that no UTF-8 report can carry.

Every problem is one line (file, line and column, what to do) raised or
collected as the caller's :class:`~policykit.errors.PolicykitError` subclass.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from policykit.errors import InputError, PolicykitError, SourceLoc
from policykit.loader import fastyaml
from policykit.loader.readfile import ALIAS_ENV as ALIAS_ENV
from policykit.loader.readfile import DEFAULT_MAX_ALIAS_BYTES as DEFAULT_MAX_ALIAS_BYTES
from policykit.loader.readfile import DEFAULT_MAX_FILE_BYTES as DEFAULT_MAX_FILE_BYTES
from policykit.loader.readfile import FILE_ENV as FILE_ENV
from policykit.loader.readfile import ErrorFactory as ErrorFactory
from policykit.loader.readfile import decode as decode
from policykit.loader.readfile import max_alias_bytes as max_alias_bytes
from policykit.loader.readfile import max_file_bytes as max_file_bytes
from policykit.loader.readfile import read_bytes as read_bytes
from policykit.loader.readfile import read_stdin as read_stdin
from policykit.loader.readfile import read_text as read_text
from policykit.loader.readfile import safe_name as safe_name

INT_MAX_DIGITS = 4300
"""Python's int/str conversion limit (``sys.get_int_max_str_digits``)."""
_INT_MAX_BITS = int(INT_MAX_DIGITS * 3.3219)  # a hex/octal integer rendered in decimal

try:
    _Base: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Base = yaml.SafeLoader


# --- YAML ---------------------------------------------------------------------------


class GuardedLoader(fastyaml.FastResolve, _Base):  # type: ignore[misc]
    """PyYAML's C safe loader restricted to JSON values (tags of plain scalars
    remembered: :class:`policykit.loader.fastyaml.FastResolve`)."""

    def construct_document(self, node: yaml.Node) -> Any:
        """PyYAML's, which clears the constructor's state only when a document
        succeeds: after one it refuses, its pending generators (the rest of a
        mapping or sequence) would run at the start of the next document and
        refuse it with the first's error (``? k: !!seq``, ``---``, ``a: yes``:
        the second reported as "expected a sequence node"). Dropped here."""
        self._pk_checked: set[int] = set()  # the mappings flatten_mapping checked
        try:
            return super().construct_document(node)
        except BaseException:
            self.state_generators: list[Any] = []
            self.constructed_objects: dict[Any, Any] = {}
            self.recursive_objects: dict[Any, Any] = {}
            self.deep_construct = False
            raise

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """PyYAML's, refusing first a key the mapping holds twice (the last one
        won, silently): kubectl (go-yaml: "key already set in map"), Helm and
        Backstage's reader refuse such a file. Checked here, on the node's own
        keys before any merge (``<<``) adds to them (a merge may also rewrite
        a merged node's keys in place, later: each node is checked once, when
        first seen); its own keys override merged ones, as YAML says. Scalar
        keys are compared by value (``1`` and ``0x1`` are one key)."""
        checked = self._pk_checked
        if id(node) not in checked:
            checked.add(id(node))
            seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                # scalar keys (a collection as a key is PyYAML's "unhashable key")
                if key_node.tag == MERGE or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                first = seen.setdefault(key, key_node)
                if first is not key_node:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {_short(key)!r} (first at line "
                        f"{first.start_mark.line + 1}); a mapping holds each key once",
                        key_node.start_mark,
                    )
        super().flatten_mapping(node)


MERGE = "tag:yaml.org,2002:merge"


def _problem(node: yaml.Node, text: str) -> yaml.constructor.ConstructorError:
    return yaml.constructor.ConstructorError(None, None, text, node.start_mark)


def _bool(loader: Any, node: yaml.ScalarNode) -> bool:
    value = loader.construct_scalar(node)
    key = value.lower() if isinstance(value, str) else value
    if key not in loader.bool_values:
        raise _problem(node, f"{_short(value)!r} is not a boolean (true/false)")
    return bool(loader.bool_values[key])


def _int(loader: Any, node: yaml.ScalarNode) -> int:
    value = loader.construct_scalar(node)
    digits = sum(ch.isdigit() for ch in value) if isinstance(value, str) else 0
    if digits > INT_MAX_DIGITS:
        raise _problem(
            node, f"an integer of {digits} digits (more than {INT_MAX_DIGITS}); quote it"
        )
    try:
        result = int(yaml.constructor.SafeConstructor.construct_yaml_int(loader, node))
    except (ValueError, TypeError, IndexError):
        raise _problem(node, f"{_short(value)!r} is not an integer") from None
    if result.bit_length() > _INT_MAX_BITS:
        raise _problem(node, f"an integer of more than {INT_MAX_DIGITS} digits; quote it")
    return result


def _float(loader: Any, node: yaml.ScalarNode) -> float:
    value = loader.construct_scalar(node)
    try:
        result = float(yaml.constructor.SafeConstructor.construct_yaml_float(loader, node))
    except (ValueError, TypeError, IndexError):
        raise _problem(node, f"{_short(value)!r} is not a number") from None
    if not math.isfinite(result):
        raise _problem(node, f"{_short(value)!r} is not a JSON number (inf/nan); quote it")
    return result


def _as_text(loader: Any, node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise _problem(node, f"expected a scalar for {node.tag}")
    return str(node.value)


def _set(loader: Any, node: yaml.Node) -> dict[Any, None]:
    if not isinstance(node, yaml.MappingNode):
        raise _problem(node, "expected a mapping for !!set")
    return dict.fromkeys(loader.construct_mapping(node))


def _pairs(loader: Any, node: yaml.Node) -> Iterator[list[dict[Any, Any]]]:
    out: list[dict[Any, Any]] = []
    yield out
    if not isinstance(node, yaml.SequenceNode):
        raise _problem(node, f"expected a sequence for {node.tag}")
    for item in node.value:
        if not isinstance(item, yaml.MappingNode) or len(item.value) != 1:
            raise _problem(item, f"expected a one-key mapping in {node.tag}")
        out.append(loader.construct_mapping(item))


assert not GuardedLoader.yaml_path_resolvers  # what FastResolve requires
GuardedLoader.add_constructor("tag:yaml.org,2002:bool", _bool)
GuardedLoader.add_constructor("tag:yaml.org,2002:int", _int)
GuardedLoader.add_constructor("tag:yaml.org,2002:float", _float)
GuardedLoader.add_constructor("tag:yaml.org,2002:timestamp", _as_text)
GuardedLoader.add_constructor("tag:yaml.org,2002:binary", _as_text)
GuardedLoader.add_constructor("tag:yaml.org,2002:set", _set)
GuardedLoader.add_constructor("tag:yaml.org,2002:omap", _pairs)
GuardedLoader.add_constructor("tag:yaml.org,2002:pairs", _pairs)


def _short(value: Any, n: int = 40) -> str:
    text = str(value)
    return text if len(text) <= n else text[:n] + "…"


def alias_excess(root: yaml.Node, limit: int | None = None) -> str | None:
    """Why ``root`` is refused, or None: aliases that add more than ``limit``
    bytes of expanded content (every occurrence of a node after its first is an
    alias and costs the node's expanded size), or an alias inside itself.
    Linear in the number of nodes; plain content costs nothing."""
    limit = max_alias_bytes() if limit is None else limit
    scalar = yaml.ScalarNode
    size: dict[int, int] = {}
    open_: set[int] = set()
    added = 0
    if isinstance(root, scalar):
        return None
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        kids: list[yaml.Node] = (
            node.value
            if isinstance(node, yaml.SequenceNode)
            else [n for pair in node.value for n in pair]
        )
        if done:
            open_.discard(key)
            size[key] = 2 + sum(size[id(k)] + 1 for k in kids)
            continue
        if key in size:
            added += size[key]
            if added > limit:
                return f"YAML aliases expand beyond {limit} bytes; refused"
            continue
        if key in open_:
            return "a YAML alias recurses (it refers to a node containing it); refused"
        open_.add(key)
        stack.append((node, True))
        pending: list[tuple[yaml.Node, bool]] = []
        for kid in kids:
            k = id(kid)
            if k in size:  # seen before: an alias (or a scalar anchor reused)
                added += size[k]
                if added > limit:
                    return f"YAML aliases expand beyond {limit} bytes; refused"
            elif type(kid) is scalar:
                size[k] = len(kid.value) + 2
            else:
                pending.append((kid, False))
        stack.extend(reversed(pending))
    return None


def _line_col(text: str, position: int) -> tuple[int, int]:
    line = text.count("\n", 0, position) + 1
    return line, position - (text.rfind("\n", 0, position) + 1) + 1


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def yaml_documents(
    text: str, file: str, errors: list[PolicykitError], *, error: ErrorFactory = InputError
) -> Iterator[tuple[Any, int, yaml.Node]]:
    """(value, index, node) of each YAML document of ``text``, guarded: a document
    refused (aliases, bad values) is skipped with an error; malformed YAML ends
    the stream. Each problem is appended to ``errors`` as one line."""
    shown = safe_name(file)
    loader = GuardedLoader(text)
    check_aliases = "&" in text
    index = 0
    line = 1
    try:
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1
            why = alias_excess(node) if check_aliases else None
            if why is not None:
                errors.append(
                    error(
                        f"document {index}: {why}",
                        loc=SourceLoc(shown, line),
                        hint=f"remove the anchors/aliases or set {ALIAS_ENV}",
                    )
                )
            else:
                try:
                    try:
                        value = fastyaml.build(loader, node, check_aliases)
                    except fastyaml.Fallback:  # beyond JSON's tags: PyYAML's constructor
                        value = loader.construct_document(node)
                except yaml.MarkedYAMLError as exc:
                    errors.append(_marked(exc, shown, error, f"document {index}: "))
                except Exception as exc:  # a constructor's failure is the input's: one line
                    errors.append(
                        error(
                            f"document {index}: unsupported YAML construct: "
                            f"{_short(_one_line(str(exc)), 120)}",
                            loc=SourceLoc(shown, line),
                            hint="use plain JSON-compatible values",
                        )
                    )
                else:
                    yield value, index, node
            index += 1
    except yaml.MarkedYAMLError as exc:
        errors.append(_marked(exc, shown, error, ""))
    except yaml.reader.ReaderError as exc:
        at, col = _line_col(text, exc.position)
        what = (
            f"character #x{exc.character:04x} is not allowed in YAML"
            if isinstance(exc.character, int)
            else _one_line(exc.reason)
        )
        errors.append(
            error(
                f"malformed YAML, column {col}: {what}",
                loc=SourceLoc(shown, at),
                hint="remove it or write it as an escape in a double-quoted string",
            )
        )
    except yaml.YAMLError as exc:
        errors.append(
            error(f"malformed YAML: {_short(_one_line(str(exc)), 160)}", loc=SourceLoc(shown))
        )
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError) as exc:
        # e.g. absurd nesting while composing
        errors.append(
            error(
                f"unsupported YAML construct: {_short(_one_line(str(exc)), 120)}",
                loc=SourceLoc(shown, line),
            )
        )
    finally:
        loader.dispose()


def _marked(
    exc: yaml.MarkedYAMLError, shown: str, error: ErrorFactory, prefix: str
) -> PolicykitError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 0
    col = f", column {mark.column + 1}" if mark else ""
    problem = _one_line(exc.problem or exc.context or "malformed YAML")
    kind = (
        "invalid value" if isinstance(exc, yaml.constructor.ConstructorError) else "malformed YAML"
    )
    return error(
        f"{prefix}{kind}{col}: {problem}",
        loc=SourceLoc(shown, line),
        hint="the other documents were read"
        if prefix
        else "fix the syntax; the documents before it were read",
    )


def load_yaml_node(
    text: str, file: str, *, error: ErrorFactory = InputError
) -> tuple[Any, yaml.Node | None]:
    """The single YAML document of ``text`` and its node (for line numbers:
    :meth:`policykit.loader.lines.YamlLines.of_node`); ``(None, None)`` when
    empty. Raises ``error`` (one line) on any problem or a second document."""
    errors: list[PolicykitError] = []
    docs = yaml_documents(text, file, errors, error=error)
    first = next(docs, None)
    extra = next(docs, None) if first is not None else None
    if errors:
        raise errors[0]
    if extra is not None:
        raise error(
            "more than one YAML document",
            loc=SourceLoc(safe_name(file), extra[2].start_mark.line + 1),
            hint="keep a single document",
        )
    if first is None:
        return None, None
    return first[0], first[2]


def load_yaml(text: str, file: str, *, error: ErrorFactory = InputError) -> Any:
    """The single YAML document of ``text`` (None when empty), guarded."""
    return load_yaml_node(text, file, error=error)[0]


def read_yaml(
    path: str | Path, *, name: str | None = None, error: ErrorFactory = InputError
) -> Any:
    """A regular, size-limited UTF-8 file holding one YAML document, guarded."""
    shown = name if name is not None else os.fspath(path)
    return load_yaml(read_text(path, name=shown, error=error), shown, error=error)


# --- JSON ---------------------------------------------------------------------------

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONG_INT = re.compile(r"\d{" + str(INT_MAX_DIGITS + 1) + ",}")


def _lone_surrogate(text: str) -> tuple[int, str]:
    """Where the first surrogate escape that is not half of a pair is."""
    found = list(_SURROGATE_ESCAPE.finditer(text))
    i = 0
    while i < len(found):
        m = found[i]
        high = m.group()[3].lower() in "89ab"
        nxt = found[i + 1] if i + 1 < len(found) else None
        if high and nxt is not None and nxt.start() == m.end() and nxt.group()[3].lower() in "cdef":
            i += 2
            continue
        return m.start(), m.group()
    return (found[0].start(), found[0].group()) if found else (0, "")


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{_short(text)} is out of range for a number")
    return value


def _has_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if type(v) is str:
            if not v.isascii() and any("\ud800" <= c <= "\udfff" for c in v):
                return True
        elif type(v) is dict:
            stack.extend(v.keys())
            stack.extend(v.values())
        elif type(v) is list:
            stack.extend(v)
    return False


def load_json(text: str, file: str, *, error: ErrorFactory = InputError) -> Any:
    """``json.loads`` restricted to what a UTF-8 report can carry: no NaN or
    Infinity, no integer of more than 4,300 digits, no lone surrogate escape;
    raises ``error`` (one line, with the position)."""
    shown = safe_name(file)
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_json_float)
    except json.JSONDecodeError as exc:
        raise error(
            f"malformed JSON, column {exc.colno}: {exc.msg}",
            loc=SourceLoc(shown, exc.lineno),
            hint="fix the syntax",
        ) from None
    except RecursionError:
        raise error("JSON nested too deeply", loc=SourceLoc(shown), hint="flatten it") from None
    except ValueError as exc:
        m = _LONG_INT.search(text)
        if m is not None and "digits" in str(exc):
            line, col = _line_col(text, m.start())
            raise error(
                f"invalid value, column {col}: an integer of more than {INT_MAX_DIGITS} digits",
                loc=SourceLoc(shown, line),
                hint="quote it",
            ) from None
        raise error(
            f"invalid value: {_short(_one_line(str(exc)), 120)}",
            loc=SourceLoc(shown),
            hint="use JSON numbers only (no NaN/Infinity)",
        ) from None
    if _SURROGATE_ESCAPE.search(text) and _has_surrogate(value):
        pos, escape = _lone_surrogate(text)
        line, col = _line_col(text, pos)
        raise error(
            f"invalid string, column {col}: a lone surrogate escape ({escape}) is not Unicode text",
            loc=SourceLoc(shown, line),
            hint="escape a full surrogate pair or remove it",
        )
    return value
