"""Real OPA's own process (:mod:`policykit.engines.opa_host` starts it).

Run by path, never imported: ``python -I -S opa_child.py BINDINGS_DIR``. It
imports nothing of policykit, only the standard library and
``opa_bindings`` from ``BINDINGS_DIR``, so it starts in tens of milliseconds
and its Go runtime reads ``GOGC`` from the environment it was started with.

The protocol, on standard input and output: each message is a 4-byte
big-endian length and that many bytes. A request is ``"OP ID\\n"`` then the
JSON of its arguments; the answer is the JSON ``["ok", value]``,
``["undefined", what]`` or ``["error", code, message]``. ``new`` answers a
fresh engine id; ``policy`` (path, source), ``data`` (path, value), ``eval``
(path, input or null), ``query`` (query, input or null) and ``close`` act on
engine ``ID``. End of input ends
the process.
"""

import json
import os
import signal
import struct
import sys


def main() -> None:
    # The protocol has the real standard output to itself: anything else that
    # writes to fd 1 (Go, a C library, an import) goes to standard error.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.path.insert(0, sys.argv[1])
    from opa_bindings.engine import OpaEngine, OpaError, OpaUndefinedError

    inp = sys.stdin.buffer
    # Ctrl-C reaches the whole process group: the parent handles it and this
    # process ends when its input closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    engines: dict[int, OpaEngine] = {}
    made = 0
    while True:
        head = inp.read(4)
        if len(head) < 4:
            return
        (size,) = struct.unpack(">I", head)
        body = inp.read(size)
        if len(body) < size:  # its input ended in the middle of a request
            return
        line, _, raw = body.partition(b"\n")
        op, _, ident = line.decode().partition(" ")
        try:
            args = json.loads(raw) if raw else []
            if op == "new":
                made += 1
                engines[made] = OpaEngine()
                answer: list[object] = ["ok", made]
            elif op == "close":
                engine = engines.pop(int(ident), None)
                if engine is not None:
                    engine.close()
                answer = ["ok", None]
            else:
                engine = engines[int(ident)]
                if op == "policy":
                    engine.add_policy(args[0], args[1])
                    answer = ["ok", None]
                elif op == "data":
                    engine.add_data(args[1], args[0])
                    answer = ["ok", None]
                elif op == "eval":
                    answer = ["ok", engine.eval_document(args[0], args[1])]
                elif op == "query":
                    answer = ["ok", engine.eval_query(args[0], args[1])]
                else:
                    answer = ["error", "internal", f"unknown request {op!r}"]
        except OpaUndefinedError as exc:
            answer = ["undefined", exc.message]
        except OpaError as exc:
            answer = ["error", exc.code, exc.message]
        except Exception as exc:  # never end the loop on one request
            answer = ["error", "internal", f"{type(exc).__name__}: {exc}"]
        try:
            data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError, UnicodeEncodeError) as exc:
            data = json.dumps(["error", "internal", f"unserializable result: {exc}"]).encode()
        try:
            out.write(struct.pack(">I", len(data)))
            out.write(data)
            out.flush()
        except BrokenPipeError:  # the process that asked is gone (Ctrl-C ended it)
            os._exit(0)  # quietly: no traceback, no flush of the closed pipe at exit


if __name__ == "__main__":
    main()
