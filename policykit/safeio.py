"""policykit's own files, read and written safely.

Reading (configuration, waivers, baselines, IR JSON, test files): every
problem — unreadable or over-long name, not UTF-8, malformed, nested deeper
than :data:`MAX_DEPTH`, an integer too long to convert — is the caller's
:class:`~policykit.errors.PolicykitError` subclass, one line, never a crash.
Files, YAML and JSON go through :func:`read_text`, :func:`load_yaml_node` and
:func:`load_json`: the one place that calls the guarded reader
(:mod:`policykit.loader.yamlsafe`), adding a bound on nesting.

Writing: :func:`staged_dir` builds a directory tree beside its destination and
swaps it in with renames; :func:`write_atomic` writes one file the same way;
:func:`temp_name` names a temporary file *before* it
is created, so a ``finally`` can always remove it, whatever was interrupted.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from policykit.errors import BundleError, PolicykitError, SourceLoc
from policykit.loader import yamlsafe

ErrorFactory = Callable[..., PolicykitError]

MAX_DEPTH = 100
"""Deepest nesting of lists and mappings accepted in policykit's own files."""


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def depth_excess(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests lists/mappings more than ``limit`` deep (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            children: Any = v.values()
        elif isinstance(v, (list, tuple)):
            children = v
        else:
            continue
        if d >= limit:
            return True
        stack.extend((c, d + 1) for c in children)
    return False


def _too_deep(file: str, error: ErrorFactory, limit: int = MAX_DEPTH) -> PolicykitError:
    return error(
        f"nested more than {limit} levels deep; refused",
        loc=SourceLoc(file),
        hint="flatten it",
    )


def is_dir(path: str | Path) -> bool:
    """``Path.is_dir`` that is False, not an error, for a name the system refuses
    (too long, say): reading it later reports why."""
    try:
        return Path(path).is_dir()
    except OSError:
        return False


def is_file(path: str | Path) -> bool:
    """``Path.is_file``, False for a name the system refuses."""
    try:
        return Path(path).is_file()
    except OSError:
        return False


def missing(path: Path) -> bool:
    """Whether nothing is at ``path`` (other problems, such as an over-long
    name, are left for the reading to report)."""
    try:
        Path(path).lstat()
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def file_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable regular file, or None if it is one."""
    try:
        st = Path(path).stat()
    except (FileNotFoundError, NotADirectoryError):
        return "no such file"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    return None if stat.S_ISREG(st.st_mode) else "not a regular file"


def read_text(path: Path, *, name: str | None = None, error: ErrorFactory) -> str:
    """The UTF-8 text of the regular file ``path`` (size-limited); any problem,
    an over-long name too, is ``error``."""
    return yamlsafe.read_text(path, name=name, error=error)


def load_yaml_node(text: str, file: str, *, error: ErrorFactory) -> tuple[Any, yaml.Node | None]:
    """The single YAML document of ``text`` and its node (``(None, None)`` when
    empty) through the guarded reader; nesting bounded; one line per problem."""
    value, node = yamlsafe.load_yaml_node(text, file, error=error)
    if depth_excess(value):
        raise _too_deep(file, error)
    return value, node


def load_json(text: str, file: str, *, error: ErrorFactory, max_depth: int = MAX_DEPTH) -> Any:
    """JSON through the guarded reader (syntax, huge integers, NaN, lone
    surrogates: one line each), nesting bounded by ``max_depth``."""
    value = yamlsafe.load_json(text, file, error=error)
    if depth_excess(value, max_depth):
        raise _too_deep(file, error, max_depth)
    return value


# --- writing ---------------------------------------------------------------------------


def temp_name(dest: Path, tag: str = "") -> Path:
    """A fresh hidden name beside ``dest`` (not created): ``.NAME.<tag>XXXXXXXX``."""
    import secrets  # hashlib, hmac: only when something is written

    return dest.parent / f".{dest.name[:180]}.{tag}{secrets.token_hex(4)}"


def finish_cleanup(step: Callable[[], None], tries: int = 3) -> None:
    """Run a cleanup ``step`` (idempotent) to the end even when Ctrl-C lands in
    it, then re-raise the interrupt: a second Ctrl-C never leaves debris."""
    hit: KeyboardInterrupt | None = None
    for _ in range(tries):
        try:
            step()
            break
        except KeyboardInterrupt as exc:
            hit = exc
    if hit is not None:
        raise hit


def remove(path: Path | None) -> None:
    """Remove a file, symlink or tree if it exists; never raises an OSError,
    and finishes even when interrupted (then re-raises the interrupt)."""
    if path is None:
        return

    def step() -> None:
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                import shutil

                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    finish_cleanup(step)


@contextlib.contextmanager
def staged_dir(dest: Path) -> Iterator[Path]:
    """A new empty directory beside ``dest`` to build into; on success it
    replaces ``dest`` (the old tree renamed aside, the new renamed in, the old
    removed). On any exception or interrupt nothing is left but ``dest`` as it
    was (or absent, if it was)."""
    dest = Path(dest)
    parent = dest.parent
    parent.mkdir(parents=True, exist_ok=True)
    staged = temp_name(dest, "new.")
    old = temp_name(dest, "old.")
    moved_aside = False
    done = False
    try:
        staged.mkdir()
        yield staged
        if dest.exists() or dest.is_symlink():
            moved_aside = True  # set first: the finally checks what is really there
            dest.rename(old)
        staged.rename(dest)
        done = True
    finally:

        def restore() -> None:
            if not done and moved_aside and not (dest.exists() or dest.is_symlink()):
                with contextlib.suppress(OSError):
                    old.rename(dest)  # put the previous output back

        finish_cleanup(restore)
        remove(staged)
        if done or not moved_aside or dest.exists():
            remove(old)


def _write_all(fd: int, content: bytes) -> None:
    view = memoryview(content)
    while view:
        view = view[os.write(fd, view) :]


def _own_stream(st: os.stat_result | None) -> int | None:
    """1 or 2 when ``st`` is this process's standard output or error (``-o
    /dev/stdout``, ``/proc/self/fd/2``, whatever they point to), else None."""
    if st is None:
        return None
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            if os.path.samestat(st, os.fstat(fd)):
                return fd
    return None


def write_atomic(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` through a temporary file: never a partial
    file, and no temporary file left whatever is interrupted (its name is
    chosen before it exists, so the ``finally`` can always remove it).

    What is not a regular file is written as it is, never replaced: a device
    (``-o /dev/null``, ``/dev/stdout``), a FIFO, a socket, whether named
    directly or through symbolic links. A symbolic link to a regular file (or
    to a name not yet made) stays a link: its target is what is replaced."""
    path = Path(path)
    try:
        st: os.stat_result | None = path.stat()  # through symbolic links
    except OSError:
        st = None
    own = _own_stream(st)
    if own is not None:  # -o /dev/stdout: the stream itself (appending, if the shell does)
        stream = sys.stdout if own == 1 else sys.stderr
        with contextlib.suppress(Exception):
            stream.flush()
        try:
            _write_all(own, content)
        except OSError as exc:
            raise _cannot_write(path, exc) from None
        return
    if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        try:
            fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
            try:
                _write_all(fd, content)
            finally:
                os.close(fd)
        except OSError as exc:
            raise _cannot_write(path, exc) from None
        return
    with contextlib.suppress(OSError):  # a name too long ...: the write reports it
        if path.is_symlink():
            path = Path(os.path.realpath(path))
    directory = path.parent if str(path.parent) else Path()
    tmp = temp_name(directory / path.name)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(tmp, flags, 0o644)
        try:
            os.fchmod(fd, 0o644)  # whatever the umask, as before
            _write_all(fd, content)
        finally:
            os.close(fd)
        tmp.replace(path)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    finally:
        remove(tmp)  # gone already when the replace happened


def _cannot_write(path: Path, exc: OSError) -> BundleError:
    return BundleError(
        f"cannot write {path}: {exc.strerror or exc}",
        loc=SourceLoc(str(path)),
        hint="choose a writable --out path",
    )
