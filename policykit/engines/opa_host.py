"""Real OPA in a process of its own: the engines policykit evaluates with.

The ``opa_bindings`` wheel embeds OPA v1.20.2 as a Go library behind ctypes.
policykit never loads it into its own process; one child process per
policykit process hosts every engine (:mod:`policykit.engines.opa_child`),
and :class:`OpaEngine` here forwards to it. Two reasons (docs/engines.md,
"Real OPA in its own process"):

* **Go's garbage collector is tunable only at start.** Its runtime reads
  ``GOGC`` once, from the environment the process was started with (setting
  ``os.environ`` later is not seen). With Go's default (100) a batch of
  objects spends about a third of its CPU collecting; the child is started
  with ``GOGC`` = :data:`GOGC` unless the user's environment sets it (or
  ``GOMEMLIMIT``).
* **Go does not survive a fork.** A ``check -j``/``verify`` worker forked from
  a process where Go ran hangs on its first call into it. A forked child here
  starts its own host, and an engine it inherited is built again there from
  what was added to it (:meth:`OpaEngine._bound`).

The interface is the part of ``opa_bindings.OpaEngine`` policykit uses:
``add_policy``, ``add_data``, ``eval_document``, ``eval_query``, ``close``, with its errors
(:class:`OpaError`, :class:`OpaUndefinedError`) and its JSON encoding: values
are encoded here as the bindings encode them, and the child hands the text to
OPA's C interface and OPA's answer back without parsing either. A call costs a
pipe round trip (tens of microseconds): batch objects, as ``verify`` and the
Rego engines do.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import struct
import subprocess
import sys
import threading
from importlib.util import find_spec
from pathlib import Path
from typing import IO, Any

from policykit.errors import EngineUnavailable

GOGC = "400"
"""The child's ``GOGC`` unless the environment has one: 35-45% less CPU per
batch than Go's default 100 for the platform packs, for a heap of a few tens
of MB (measured in docs/engines.md)."""

CHILD = Path(__file__).with_name("opa_child.py")


class OpaError(Exception):
    """An error OPA reported (``code``: ``rego_parse_error``, ``eval_error``,
    ``invalid_argument``...), as ``opa_bindings.OpaError``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:  # raised in a worker, read in the parent
        return (type(self), (self.code, self.message))


class OpaUndefinedError(OpaError):
    """The document asked for is undefined."""

    def __init__(self, message: str) -> None:
        super().__init__("undefined", message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message,))


@functools.cache
def bindings_dir() -> Path | None:
    """The folder holding the ``opa_bindings`` package (where ``python -m
    policykit.engines.opa_install`` puts it, on ``sys.path`` through a
    ``.pth`` file), if any; looked up once."""
    try:
        spec = find_spec("opa_bindings")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        return Path(spec.origin).parent.parent
    from policykit.engines.opa_install import default_dest

    dest = default_dest()  # installed, but the .pth not read (python -S)
    return dest if (dest / "opa_bindings").is_dir() else None


def require() -> None:
    """:class:`EngineUnavailable` (PK005) unless real OPA is installed."""
    if bindings_dir() is None:
        raise _unavailable(
            "real OPA is not installed",
            hint="install it: python -m policykit.engines.opa_install",
        )


def _dumps(value: Any) -> bytes:
    """JSON as ``opa_bindings`` encodes it (a lone surrogate is an error, not
    an escape Go would read as U+FFFD)."""
    try:
        return json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise OpaError("invalid_argument", f"value is not valid UTF-8: {exc}") from None


def _text(text: str) -> bytes:
    """A string argument, length-prefixed, refused as ``opa_bindings`` refuses
    it: a NUL would cut it short in C, a lone surrogate would become U+FFFD."""
    if "\0" in text:
        raise OpaError("invalid_argument", "string contains a NUL character")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise OpaError("invalid_argument", f"string is not valid UTF-8: {exc}") from None
    return struct.pack(">I", len(raw)) + raw


def _envelope(raw: bytes) -> dict[str, Any]:
    """An answer of OPA's process; one Python cannot read (a value nested
    deeper than its parser goes) is an error, and the process goes on."""
    try:
        got = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        got = {"error": {"code": "internal", "message": f"unreadable answer: {exc}"}}
    if not isinstance(got, dict):
        return {"error": {"code": "internal", "message": "unreadable answer: not an object"}}
    return got


def _result(envelope: dict[str, Any]) -> Any:
    """An evaluation's result set, its prints written as ``opa_bindings``
    writes them (to standard error)."""
    for p in envelope.get("prints") or ():
        sys.stderr.write(f"{p.get('location', '')}: {p.get('message', '')}\n")
    return envelope.get("result")


def _unavailable(
    message: str, hint: str = "reinstall it: python -m policykit.engines.opa_install"
) -> Exception:
    return EngineUnavailable(message, hint=hint)


class _Host:
    """The child process of this process, and the lock its pipe is used under."""

    def __init__(self, where: Path) -> None:
        env = dict(os.environ)
        if "GOGC" not in env and "GOMEMLIMIT" not in env:
            env["GOGC"] = GOGC
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(CHILD), str(where)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            raise _unavailable(f"cannot start real OPA's process: {exc}") from None
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.released: list[int] = []  # engines to close before the next request
        self.ended = False
        self.answered = False
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in: IO[bytes] = self.proc.stdin
        self._out: IO[bytes] = self.proc.stdout

    def call(self, op: str, ident: int, args: bytes = b"") -> dict[str, Any]:
        """One request and its answer, OPA's envelope
        (:mod:`policykit.engines.opa_child`); :class:`OpaError` for an error."""
        with self.lock:
            while self.released:
                self._exchange("close", self.released.pop())
            envelope = self._exchange(op, ident, args)
        error = envelope.get("error")
        if error is not None:
            raise OpaError(str(error.get("code", "unknown")), str(error.get("message", "")))
        return envelope

    def _exchange(self, op: str, ident: int, args: bytes = b"") -> dict[str, Any]:
        body = f"{op} {ident}\n".encode() + args
        try:
            self._in.write(struct.pack(">I", len(body)))
            self._in.write(body)
            self._in.flush()
            head = self._out.read(4)
            if len(head) == 4:
                size = struct.unpack(">I", head)[0]
                raw = self._out.read(size)
                if len(raw) == size:
                    self.answered = True
                    return _envelope(raw)
        except (OSError, ValueError):
            pass
        except BaseException:
            # interrupted between a request and its answer (Ctrl-C, a signal
            # handler's exception): the pipe is out of step, so this host is
            # ended, not used again
            self.discard()
            raise
        # its output closed: it has ended, or is ending (reap it, for the code)
        self.ended = True
        try:
            code: int | None = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.discard()
            code = None
        if not self.answered:  # it never started: starting it again would not help
            raise _unavailable(
                "cannot start real OPA's process"
                + (f" (exit code {code})" if code is not None else "")
                + "; its error is on standard error above"
            )
        raise _unavailable(
            "real OPA's process ended" + (f" (exit code {code})" if code is not None else ""),
            hint="its error, if any, is on standard error above; the next request starts it again",
        )

    def discard(self) -> None:
        """End it now, and reap it."""
        self.ended = True
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        """Close its input (it ends) and reap it."""
        if self.proc.returncode is not None:
            return
        try:
            self._in.close()
            self.proc.wait(timeout=5)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.discard()


_HOST: _Host | None = None
_INHERITED: list[_Host] = []  # a forked child's copy of its parent's: never used, never closed
_LOCK = threading.Lock()
_FINALIZED: set[int] = set()  # the processes whose multiprocessing finalizer is registered


def host() -> _Host:
    """This process's host, started on first use, and again if it ended (an
    engine of the one that ended is built again in the new one)."""
    global _HOST
    with _LOCK:
        if (
            _HOST is None
            or _HOST.pid != os.getpid()
            or _HOST.ended
            or _HOST.proc.poll() is not None
        ):
            if _HOST is not None and _HOST.pid == os.getpid() and not _HOST.answered:
                raise _unavailable("real OPA's process could not start (see above)")
            require()
            where = bindings_dir()
            assert where is not None
            _HOST = _Host(where)
            # a multiprocessing worker ends without atexit: stop it there too
            # (reaped, its CPU time is counted where the worker's is)
            workers = sys.modules.get("multiprocessing.util")
            if workers is not None and os.getpid() not in _FINALIZED:
                _FINALIZED.add(os.getpid())
                workers.Finalize(None, _at_exit, exitpriority=0)
        return _HOST


def _forked() -> None:
    # The parent's pipes are the parent's: this process must not write to
    # them, nor flush or close them when its copies are collected.
    global _HOST, _LOCK
    _LOCK = threading.Lock()  # another thread may have held it at the fork
    if _HOST is not None:
        # nor keep them open: the parent's host ends when its input closes
        null = os.open(os.devnull, os.O_RDWR)
        for pipe in (_HOST.proc.stdin, _HOST.proc.stdout):
            if pipe is not None:
                os.dup2(null, pipe.fileno())
        os.close(null)
        _INHERITED.append(_HOST)
        _HOST = None


def _at_exit() -> None:
    if _HOST is not None and _HOST.pid == os.getpid():
        _HOST.stop()


os.register_at_fork(after_in_child=_forked)
atexit.register(_at_exit)


class OpaEngine:
    """An OPA engine in this process's host. What is added to it is kept, as
    the request sent (its strings length-prefixed, its value as JSON), so that
    a forked child (or a host started again) can build it again: the policies
    and data live twice, once here and once in OPA."""

    def __init__(self) -> None:
        self._added: list[tuple[str, bytes]] = []
        self._host: _Host | None = None
        self._id = 0
        self._closed = False
        self._lock = threading.RLock()
        self._bound()

    def _bound(self) -> tuple[_Host, int]:
        """The host and id of this engine in this process (built there again,
        from what was added, in a forked child or a host started again)."""
        with self._lock:  # one rebuild when several threads find it stale
            self._open()
            current = host()
            if self._host is not current:
                ident = int(current.call("new", 0)["result"])
                for op, args in self._added:
                    current.call(op, ident, args)
                self._host, self._id = current, ident
            return current, self._id

    def _open(self) -> None:
        """``closed`` first, as the bindings check it before their arguments."""
        if self._closed:
            raise OpaError("closed", "engine has been closed")

    def _change(self, op: str, args: bytes) -> None:
        with self._lock:  # kept in the order the host saw them
            where, ident = self._bound()
            where.call(op, ident, args)
            self._added.append((op, args))

    def add_policy(self, path: str, source: str) -> None:
        """Add a Rego module under ``path``."""
        self._open()
        self._change("policy", _text(path) + _text(source))

    def add_data(self, value: Any, path: str = "") -> None:
        """Deep-merge ``value`` into the data document at dotted ``path``."""
        self._open()
        self._change("data", _text(path) + _dumps(value))

    def eval_document(self, path: str, input: Any = None) -> Any:
        """The value of ``data.<path>`` with ``input`` (:class:`OpaUndefinedError`
        when undefined)."""
        self._open()
        args = _text(path) + (b"" if input is None else _dumps(input))
        where, ident = self._bound()
        rs = _result(where.call("eval", ident, args))
        if not rs or not rs[0].get("expressions"):
            raise OpaUndefinedError(f"{'data.' + path if path else 'data'} is undefined")
        return rs[0]["expressions"][0]["value"]

    def eval_query(self, query: str, input: Any = None) -> list[dict[str, Any]]:
        """The bindings of each result of ``query`` with ``input``."""
        self._open()
        args = _text(query) + (b"" if input is None else _dumps(input))
        where, ident = self._bound()
        rs = _result(where.call("query", ident, args))
        return [r.get("bindings", {}) for r in rs] if rs else []

    def close(self) -> None:
        """Release the engine in the host (sent before the host's next request:
        ``close`` may run in ``__del__``, in the middle of another request)."""
        if self._closed:
            return
        self._closed = True
        current, self._host = self._host, None
        if current is not None and current is _HOST:
            current.released.append(self._id)

    def __enter__(self) -> OpaEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if hasattr(self, "_closed"):  # not when __init__ failed early
            self.close()
