"""Real OPA's own process (:mod:`policykit.engines.opa_host` starts it).

Run by path, never imported: ``python -I -S opa_child.py BINDINGS_DIR``. It
imports nothing of policykit, only the standard library and the C library of
``opa_bindings`` (``opa_bindings._native``: OPA behind a C interface whose
arguments and answers are JSON text) from ``BINDINGS_DIR``, so it starts in
tens of milliseconds and its Go runtime reads ``GOGC`` from the environment
it was started with.

It passes JSON through as text: an input, a data value and OPA's answer are
never parsed or encoded here (issue 21: parsing an object and encoding it
again cost ~40 µs per Deployment, 5-8% of real OPA's time per object). The
parent encodes values as ``opa_bindings`` does (:func:`opa_host._dumps`).

The protocol, on standard input and output: each message is a 4-byte
big-endian length and that many bytes. A request is ``"OP ID\\n"`` then its
arguments: ``new`` and ``close`` none; ``policy`` (path, source), ``data``
(path, then the JSON of the value), ``eval`` (path, then the JSON of the
input, or nothing for none) and ``query`` (query, then as ``eval``), where
a string is a 4-byte length and its UTF-8. The answer is the JSON envelope
of OPA's C interface: ``{"result": ...}`` (``eval`` and ``query``: OPA's
result set, and ``"prints"``), or ``{"error": {"code": ..., "message":
...}}``. ``new`` answers ``{"result": ID}``, a fresh engine id (OPA's
handle). A request this process cannot read gets an error envelope of its
own (``invalid_argument``, ``internal``), and the next
request is read as usual. End of input ends the process.
"""

import ctypes
import json
import os
import signal
import struct
import sys


def _error(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def _string(raw: bytes, at: int) -> tuple[bytes, int]:
    """A length-prefixed string of ``raw`` at ``at``: its bytes (NUL-free: C
    reads a string up to its first NUL), and where the rest starts."""
    (size,) = struct.unpack_from(">I", raw, at)
    text = raw[at + 4 : at + 4 + size]
    if len(text) < size:
        raise ValueError("truncated request")
    if b"\0" in text:
        raise ValueError("string contains a NUL character")
    return text, at + 4 + size


def main() -> None:
    # The protocol has the real standard output to itself: anything else that
    # writes to fd 1 (Go, a C library, an import) goes to standard error.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.path.insert(0, sys.argv[1])
    from opa_bindings import _native

    lib = _native.load()
    calls = {
        "policy": lib.OpaAddPolicy,
        "data": lib.OpaAddData,
        "eval": lib.OpaEvalDocument,
        "query": lib.OpaEvalQuery,
    }
    evals = ("eval", "query")

    inp = sys.stdin.buffer
    # Ctrl-C reaches the whole process group: the parent handles it and this
    # process ends when its input closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        head = inp.read(4)
        if len(head) < 4:
            return
        (size,) = struct.unpack(">I", head)
        body = inp.read(size)
        if len(body) < size:  # its input ended in the middle of a request
            return
        end = body.index(b"\n") if b"\n" in body else len(body)
        try:
            op, _, ident_text = body[:end].decode().partition(" ")
            ident = int(ident_text or 0)
            # OPA's C interface keeps the engines: an unknown id is its
            # invalid_handle error, and destroying one is a no-op
            if op == "new":
                answer = json.dumps({"result": int(lib.OpaNew())}).encode()
            elif op == "close":
                lib.OpaDestroy(ident)
                answer = b'{"result": null}'
            elif op in calls:
                first, at = _string(body, end + 1)
                rest = _string(body, at)[0] if op == "policy" else body[at:]
                args = (ident, first, rest, 0, 0) if op in evals else (ident, first, rest)
                ptr = calls[op](*args)
                if not ptr:
                    answer = _error("internal", "native call returned NULL")
                else:
                    try:
                        answer = ctypes.string_at(ptr)
                    finally:
                        lib.OpaFreeString(ptr)
            else:
                answer = _error("internal", f"unknown request {op!r}")
        except (ValueError, struct.error) as exc:
            answer = _error("invalid_argument", str(exc))
        except Exception as exc:  # never end the loop on one request
            answer = _error("internal", f"{type(exc).__name__}: {exc}")
        try:
            out.write(struct.pack(">I", len(answer)))
            out.write(answer)
            out.flush()
        except BrokenPipeError:  # the process that asked is gone (Ctrl-C ended it)
            os._exit(0)  # quietly: no traceback, no flush of the closed pipe at exit


if __name__ == "__main__":
    main()
