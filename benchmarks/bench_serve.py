"""How many concurrent long polls ``policykit serve`` holds, on loopback.

    python benchmarks/bench_serve.py [--counts 200,500,1000] [--wait 5] [--max-connections N]

Starts ``policykit serve`` in its own process and, for each count N, opens N
connections at once from one client thread (non-blocking sockets), each
sending the request OPA sends when its bundle is unchanged (``If-None-Match``
with the current ETag, ``Prefer: modes=snapshot,delta;wait=W``). A poll holds
if it is answered ``304`` within W + 1 seconds of being sent. Prints, per N,
how many held, how many got 503 (over ``--max-connections``), how many
failed otherwise, and the slowest answer.
"""

from __future__ import annotations

import argparse
import http.client
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _etag(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/b.tar.gz")
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.getheader("ETag") or ""


def run(port: int, n: int, wait: int, etag: str) -> dict[str, float]:
    request = (
        f"GET /b.tar.gz HTTP/1.1\r\nHost: 127.0.0.1\r\nIf-None-Match: {etag}\r\n"
        f"Prefer: modes=snapshot,delta;wait={wait}\r\nConnection: close\r\n\r\n"
    ).encode()
    sel = selectors.DefaultSelector()
    started: dict[socket.socket, float] = {}
    got: dict[socket.socket, bytes] = {}
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        sel.register(s, selectors.EVENT_WRITE)
        got[s] = b""
    held = busy = failed = 0
    answered: list[float] = []
    slowest = 0.0
    deadline = time.monotonic() + wait + 30
    while got and time.monotonic() < deadline:
        for key, events in sel.select(timeout=1):
            s = key.fileobj
            assert isinstance(s, socket.socket)
            if events & selectors.EVENT_WRITE and s not in started:
                try:
                    s.send(request)
                except OSError:
                    failed += 1
                    sel.unregister(s)
                    s.close()
                    del got[s]
                    continue
                started[s] = time.monotonic()
                sel.modify(s, selectors.EVENT_READ)
                continue
            try:
                chunk = s.recv(65536)
            except OSError:
                chunk = b""
            if chunk:
                got[s] += chunk
                continue
            elapsed = time.monotonic() - started[s]
            head = got.pop(s)
            sel.unregister(s)
            s.close()
            if head.startswith(b"HTTP/1.1 304"):
                answered.append(elapsed)
                held += elapsed < wait + 1
                slowest = max(slowest, elapsed)
            elif head.startswith(b"HTTP/1.1 503"):
                busy += 1
            else:
                failed += 1
    failed += len(got)
    for s in got:
        s.close()
    answered.sort()
    late = len(answered) - held
    median = answered[len(answered) // 2] if answered else 0.0
    return {"held": held, "late": late, "busy": busy, "failed": failed, "slowest": slowest,
            "median": median}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="200,500,1000")
    ap.add_argument("--wait", type=int, default=5)
    ap.add_argument("--max-connections", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "b.tar.gz").write_bytes(b"\x1f\x8b bench")
        proc = subprocess.Popen(
            [sys.executable, "-m", "policykit", "serve", tmp, "--port", "0", "--quiet",
             "--max-connections", str(args.max_connections), "--max-wait", str(args.wait)],
            cwd=ROOT, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert proc.stderr is not None
            port = int(proc.stderr.readline().split("http://127.0.0.1:")[1].split("/")[0])
            etag = _etag(port)
            print(f"wait={args.wait}s  --max-connections {args.max_connections}")
            for n in (int(x) for x in args.counts.split(",")):
                r = run(port, n, args.wait, etag)
                print(
                    f"{n:>6} polls: {r['held']:>6} held (304 within wait+1s), {r['late']:>5} late, "
                    f"{r['busy']:>5} 503, {r['failed']:>5} failed; answered in "
                    f"{r['median']:.2f}s median, {r['slowest']:.2f}s slowest"
                )
                time.sleep(1)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
