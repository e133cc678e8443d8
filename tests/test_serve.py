"""``policykit serve``: bundles over HTTP to OPA's bundle plugin, tested with a
real HTTP client over loopback: ETag/304, content types, long polling as OPA
requests it, path traversal, many concurrent pollers, a real subprocess."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from policykit.serve import GZIP_TYPE, LONG_POLL_TYPE, BundleServer, make_server
from policykit.targets.rego.bundle import write_atomic
from tests.conftest import ROOT


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    d = tmp_path / "bundles"
    d.mkdir()
    (d / "prod.tar.gz").write_bytes(b"\x1f\x8b first bundle")
    (tmp_path / "secret.tar.gz").write_bytes(b"outside")
    (d / "notes.txt").write_text("not a bundle")
    (d / "sub").mkdir()
    (d / "sub" / "x.tar.gz").write_bytes(b"nested")
    os.symlink(tmp_path / "secret.tar.gz", d / "link.tar.gz")
    server = make_server(d, "127.0.0.1", 0, max_wait=10, quiet=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield d, server.server_address[1]
    server.shutdown()
    server.server_close()


def _get(
    port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def test_etag_and_not_modified(served: tuple[Path, int]) -> None:
    d, port = served
    status, h, body = _get(port, "/prod.tar.gz")
    assert status == 200 and body == b"\x1f\x8b first bundle"
    assert h["content-type"] == GZIP_TYPE and h["etag"].startswith('"')
    assert _get(port, "/prod.tar.gz", {"If-None-Match": h["etag"]})[0] == 304
    assert _get(port, "/prod.tar.gz", {"If-None-Match": f'"x", {h["etag"]}'})[0] == 304
    assert _get(port, "/prod.tar.gz", {"If-None-Match": '"other"'})[0] == 200
    head = _get(port, "/prod.tar.gz", method="HEAD")
    assert head[0] == 200 and head[2] == b"" and head[1]["etag"] == h["etag"]
    write_atomic(d / "prod.tar.gz", b"\x1f\x8b second")
    status, h2, body = _get(port, "/prod.tar.gz", {"If-None-Match": h["etag"]})
    assert status == 200 and body == b"\x1f\x8b second" and h2["etag"] != h["etag"]


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.tar.gz",
        "/%2e%2e/secret.tar.gz",
        "/..%2fsecret.tar.gz",
        "/sub/x.tar.gz",
        "/sub%2fx.tar.gz",
        "/notes.txt",
        "/link.tar.gz",
        "/missing.tar.gz",
        "/",
        "//etc/passwd",
    ],
)
def test_nothing_outside_the_directory(served: tuple[Path, int], path: str) -> None:
    assert _get(served[1], path)[0] == 404


def test_only_get_and_head(served: tuple[Path, int]) -> None:
    status, h, _ = _get(served[1], "/prod.tar.gz", method="POST")
    assert status == 405 and h["allow"] == "GET, HEAD"


def test_long_polling_answers_on_change_or_timeout(served: tuple[Path, int]) -> None:
    d, port = served
    etag = _get(port, "/prod.tar.gz")[1]["etag"]
    prefer = {"If-None-Match": etag, "Prefer": "modes=snapshot,delta;wait=1"}
    t0 = time.monotonic()
    status, h, _ = _get(port, "/prod.tar.gz", prefer)
    assert status == 304 and 0.9 <= time.monotonic() - t0 < 5
    assert h["content-type"] == LONG_POLL_TYPE

    def change() -> None:
        time.sleep(0.5)
        write_atomic(d / "prod.tar.gz", b"\x1f\x8b third")

    threading.Thread(target=change).start()
    t0 = time.monotonic()
    status, h, body = _get(port, "/prod.tar.gz", {**prefer, "Prefer": "modes=snapshot;wait=8"})
    elapsed = time.monotonic() - t0
    assert status == 200 and body == b"\x1f\x8b third" and 0.3 < elapsed < 4
    assert h["content-type"] == LONG_POLL_TYPE and h["etag"] != etag


def test_many_concurrent_pollers_all_see_the_update(served: tuple[Path, int]) -> None:
    d, port = served
    etag = _get(port, "/prod.tar.gz")[1]["etag"]
    headers = {"If-None-Match": etag, "Prefer": "modes=snapshot,delta;wait=8"}
    with ThreadPoolExecutor(max_workers=40) as pool:
        futures = [pool.submit(_get, port, "/prod.tar.gz", headers) for _ in range(40)]
        time.sleep(0.5)
        write_atomic(d / "prod.tar.gz", b"\x1f\x8b for everyone")
        results = [f.result(timeout=30) for f in futures]
    assert all(s == 200 and b == b"\x1f\x8b for everyone" for s, _, b in results)


def test_not_modified_carries_no_body_headers(served: tuple[Path, int]) -> None:
    _, port = served
    etag = _get(port, "/prod.tar.gz")[1]["etag"]
    for prefer in ({}, {"Prefer": "wait=1"}):
        status, h, body = _get(port, "/prod.tar.gz", {"If-None-Match": etag, **prefer})
        assert status == 304 and body == b"" and h["etag"] == etag
        assert "content-length" not in h, h  # RFC 9110 8.6: not 0 (the 200's is not 0)


def test_a_fifo_or_a_sibling_link(served: tuple[Path, int]) -> None:
    d, port = served
    os.mkfifo(d / "fifo.tar.gz")  # opening it for reading would block
    t0 = time.monotonic()
    assert _get(port, "/fifo.tar.gz")[0] == 404 and time.monotonic() - t0 < 5
    os.symlink("prod.tar.gz", d / "latest.tar.gz")  # a link to a bundle beside it is served
    status, _, body = _get(port, "/latest.tar.gz")
    assert status == 200 and body == (d / "prod.tar.gz").read_bytes()
    os.symlink("link.tar.gz", d / "hop.tar.gz")  # one level only: link -> ../secret
    assert _get(port, "/hop.tar.gz")[0] == 404


def test_swapping_a_file_and_a_symlink_never_leaks_the_outside(tmp_path: Path) -> None:
    d = tmp_path / "bundles"
    d.mkdir()
    outside = tmp_path / "outside.tar.gz"
    outside.write_bytes(b"OUTSIDE SECRET")
    inside = b"\x1f\x8b inside"
    (d / "race.tar.gz").write_bytes(inside)
    server = make_server(d, "127.0.0.1", 0, max_wait=1, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    stop = threading.Event()

    def swap() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            tmp = d / f".swap{i}"
            if i % 2:
                tmp.write_bytes(inside)
            else:
                os.symlink("../outside.tar.gz" if i % 4 else str(outside), tmp)
            os.replace(tmp, d / "race.tar.gz")

    def client(deadline: float) -> list[tuple[int, bytes]]:
        got = []
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for _ in range(400):
                if time.monotonic() > deadline:
                    break
                try:
                    conn.request("GET", "/race.tar.gz")
                    r = conn.getresponse()
                    got.append((r.status, r.read()))
                except (http.client.HTTPException, OSError):
                    got.append((0, b""))  # counted below: the server must not drop us
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        finally:
            conn.close()
        return got

    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    try:
        deadline = time.monotonic() + 4
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = [
                x for f in [pool.submit(client, deadline) for _ in range(8)] for x in f.result(30)
            ]
    finally:
        stop.set()
        swapper.join(10)
        server.shutdown()
        server.server_close()
    leaked = [b for _, b in results if b"OUTSIDE" in b]
    assert not leaked, f"{len(leaked)} of {len(results)} responses leaked the outside file"
    assert {s for s, _ in results} <= {200, 404}
    assert sum(1 for s, b in results if s == 200 and b == inside) > 20, len(results)


_SERVERS: dict[int, BundleServer] = {}


def _wait_for_connections(port: int, n: int, limit: float = 20) -> None:
    """Until the server on ``port`` holds ``n`` connections (a loaded machine
    may take a while to start the client threads; a fixed sleep was flaky)."""
    deadline = time.monotonic() + limit
    while _SERVERS[port].connections != n:
        assert time.monotonic() < deadline, f"{_SERVERS[port].connections} connections, not {n}"
        time.sleep(0.02)


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    d = tmp_path / "bundles"
    d.mkdir()
    (d / "prod.tar.gz").write_bytes(b"\x1f\x8b small")
    server = make_server(d, "127.0.0.1", 0, max_wait=10, quiet=True, max_connections=3, timeout=1)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _SERVERS[server.server_address[1]] = server
    yield d, server.server_address[1]
    del _SERVERS[server.server_address[1]]
    server.shutdown()
    server.server_close()


def _closed_after(sock: socket.socket, limit: float, trickle: bytes = b"") -> float:
    """Seconds until the server closes ``sock`` (sending ``trickle`` a byte at a time)."""
    t0 = time.monotonic()
    sock.settimeout(0.2)
    data = iter(trickle)
    while time.monotonic() - t0 < limit:
        try:
            if sock.recv(1024) == b"":
                return time.monotonic() - t0
        except TimeoutError:
            pass
        except OSError:
            return time.monotonic() - t0
        byte = next(data, None)
        if byte is not None:
            try:
                sock.send(bytes([byte]))
            except OSError:
                return time.monotonic() - t0
    return limit


def test_idle_and_trickling_connections_are_closed(small_server: tuple[Path, int]) -> None:
    _, port = small_server
    with socket.create_connection(("127.0.0.1", port)) as idle:
        assert _closed_after(idle, 6) < 3
    slow = b"GET /prod.tar.gz HTTP/1.1\r\n" + b"X-Slow: " + b"a" * 200
    with socket.create_connection(("127.0.0.1", port)) as loris:
        assert _closed_after(loris, 6, slow) < 3  # bytes keep coming, 5 a second
    assert _get(port, "/prod.tar.gz")[0] == 200  # the slots are free again


def test_connections_beyond_the_limit_get_503(small_server: tuple[Path, int]) -> None:
    _, port = small_server
    etag = _get(port, "/prod.tar.gz")[1]["etag"]
    _wait_for_connections(port, 0)  # the etag request has let go of its slot
    hold = {"If-None-Match": etag, "Prefer": "wait=3"}
    with ThreadPoolExecutor(max_workers=3) as pool:
        polls = [pool.submit(_get, port, "/prod.tar.gz", hold) for _ in range(3)]
        _wait_for_connections(port, 3)
        t0 = time.monotonic()
        status, h, _ = _get(port, "/prod.tar.gz")
        assert status == 503 and h["retry-after"] == "1" and time.monotonic() - t0 < 2
        assert [f.result(timeout=20)[0] for f in polls] == [304, 304, 304]
    assert _get(port, "/prod.tar.gz")[0] == 200


def test_200_concurrent_long_polls_are_answered_in_time(served: tuple[Path, int]) -> None:
    _, port = served
    etag = _get(port, "/prod.tar.gz")[1]["etag"]
    headers = {"If-None-Match": etag, "Prefer": "modes=snapshot,delta;wait=2"}
    start = threading.Barrier(200, timeout=30)

    def poll() -> tuple[int, float]:
        start.wait()
        t0 = time.monotonic()
        status = _get(port, "/prod.tar.gz", headers)[0]
        return status, time.monotonic() - t0

    previous = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)  # as `policykit serve` does; here 200 clients share the GIL
    try:
        with ThreadPoolExecutor(max_workers=200) as pool:
            results = [f.result(timeout=60) for f in [pool.submit(poll) for _ in range(200)]]
    finally:
        sys.setswitchinterval(previous)
    assert [s for s, _ in results] == [304] * 200
    slowest = max(t for _, t in results)
    assert slowest < 2 + 1, slowest


def test_cli_serves_a_built_bundle(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "policykit", "build", "--out", str(out / "policykit.tar.gz")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "policykit", "serve", str(out), "--port", "0", "--quiet"],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        status, _, body = _get(port, "/policykit.tar.gz")
        assert status == 200 and body == (out / "policykit.tar.gz").read_bytes()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_clients_that_go_away_print_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "big.tar.gz").write_bytes(os.urandom(8 << 20))
    proc = subprocess.Popen(
        [sys.executable, "-m", "policykit", "serve", str(tmp_path), "--port", "0", "--quiet"],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        port = int(proc.stderr.readline().split("http://127.0.0.1:")[1].split("/")[0])
        for _ in range(5):  # ask for 8 MiB, read a little, then reset the connection
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"GET /big.tar.gz HTTP/1.1\r\nHost: x\r\n\r\n")
                s.recv(1024)
                s.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
        assert _get(port, "/big.tar.gz", method="HEAD")[0] == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err and "Exception" not in err, err


def test_cli_refuses_a_missing_directory(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "policykit", "serve", str(tmp_path / "nope")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2 and "PK008" in r.stderr and r.stderr.count("\n") == 1
