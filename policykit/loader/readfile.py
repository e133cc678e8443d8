"""Reading a file or stdin for :mod:`policykit.loader.yamlsafe` (which
re-exports every name here): regular files only (a FIFO, a device such as
``/dev/zero`` or a symlink to one is refused, never read), opened with
``O_NONBLOCK`` and checked with ``fstat`` after opening, up to
``POLICYKIT_MAX_FILE_BYTES`` (default 32 MiB); the size limits from the
environment; and names made safe to print."""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Callable
from pathlib import Path

from policykit.errors import InputError, PolicykitError, SourceLoc

ErrorFactory = Callable[..., PolicykitError]

DEFAULT_MAX_FILE_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_ALIAS_BYTES = 4 * 1024 * 1024
FILE_ENV = "POLICYKIT_MAX_FILE_BYTES"
ALIAS_ENV = "POLICYKIT_MAX_ALIAS_BYTES"


def _env_limit(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip().replace("_", "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value > 0 else default


def max_file_bytes() -> int:
    """The largest file read (``POLICYKIT_MAX_FILE_BYTES``, default 32 MiB)."""
    return _env_limit(FILE_ENV, DEFAULT_MAX_FILE_BYTES)


def max_alias_bytes() -> int:
    """The most bytes aliases may add to a document (``POLICYKIT_MAX_ALIAS_BYTES``)."""
    return _env_limit(ALIAS_ENV, DEFAULT_MAX_ALIAS_BYTES)


# --- names -------------------------------------------------------------------------

_UNPRINTABLE = r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]"
"""Compiled when a name needs it (``re`` keeps it): a class of surrogates takes
milliseconds to compile, and most runs meet none (issue 21: start-up)."""


def _escape_char(m: re.Match[str]) -> str:
    c = ord(m.group())
    if 0xDC80 <= c <= 0xDCFF:  # an undecodable byte kept by surrogateescape
        return f"\\x{c - 0xDC00:02x}"
    return f"\\x{c:02x}" if c <= 0xFF else f"\\u{c:04x}"


def safe_name(name: str) -> str:
    """A file name as shown in reports: one line, valid UTF-8 (bytes that are
    not UTF-8 and control characters are written ``\\xNN``)."""
    if name.isascii() and name.isprintable():  # no control character: most names
        return name
    return re.sub(_UNPRINTABLE, _escape_char, name)


# --- files -------------------------------------------------------------------------

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _limit_hint(limit: int) -> str:
    return f"the limit is {limit} bytes; set {FILE_ENV} to raise it"


def read_bytes(
    path: str | Path,
    *,
    name: str | None = None,
    limit: int | None = None,
    error: ErrorFactory = InputError,
) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (default
    :func:`max_file_bytes`); anything else raises ``error`` (one line)."""
    shown = safe_name(name if name is not None else os.fspath(path))
    limit = max_file_bytes() if limit is None else limit
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        what = exc.strerror or type(exc).__name__
        raise error(
            f"cannot read file: {what}", loc=SourceLoc(shown), hint="check the path"
        ) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((k for test, k in _KINDS if test(st.st_mode)), "not a regular file")
            raise error(
                f"not a regular file ({kind}); refused",
                loc=SourceLoc(shown),
                hint="only regular files are read",
            )
        if st.st_size > limit:
            raise error(
                f"file is {st.st_size} bytes; refused",
                loc=SourceLoc(shown),
                hint=_limit_hint(limit),
            )
        chunks = []
        total = 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise error(
                    f"file is more than {limit} bytes; refused",
                    loc=SourceLoc(shown),
                    hint=_limit_hint(limit),
                )
        return b"".join(chunks)
    except OSError as exc:
        raise error(
            f"cannot read file: {exc.strerror or type(exc).__name__}", loc=SourceLoc(shown)
        ) from None
    finally:
        os.close(fd)


def decode(raw: bytes, name: str, *, error: ErrorFactory = InputError) -> str:
    """UTF-8 text (a leading BOM dropped) or ``error`` naming the byte's line."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise error(
            f"not UTF-8 text (byte {exc.start})",
            loc=SourceLoc(safe_name(name), line),
            hint="save the file as UTF-8",
        ) from None


def read_text(
    path: str | Path,
    *,
    name: str | None = None,
    limit: int | None = None,
    error: ErrorFactory = InputError,
) -> str:
    """:func:`read_bytes` decoded as UTF-8."""
    shown = name if name is not None else os.fspath(path)
    return decode(read_bytes(path, name=shown, limit=limit, error=error), shown, error=error)


def read_stdin(name: str = "<stdin>", *, error: ErrorFactory = InputError) -> str:
    """Standard input, with the same size limit and UTF-8 check as files."""
    limit = max_file_bytes()
    if sys.stdin is None:  # started with standard input closed
        hint = "pipe the objects in, or name files"
        raise error("standard input is closed", loc=SourceLoc(name), hint=hint)
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text stream (tests): encode back
        raw = sys.stdin.read(limit + 1).encode("utf-8", "surrogateescape")
    else:
        raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise error("input is too large; refused", loc=SourceLoc(name), hint=_limit_hint(limit))
    return decode(raw, name, error=error)
