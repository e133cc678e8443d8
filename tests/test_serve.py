"""``policykit serve``: bundles over HTTP to OPA's bundle plugin, tested with a
real HTTP client over loopback: ETag/304, content types, long polling as OPA
requests it, path traversal, many concurrent pollers, a real subprocess."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from policykit.serve import GZIP_TYPE, LONG_POLL_TYPE, make_server
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


def test_cli_refuses_a_missing_directory(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "policykit", "serve", str(tmp_path / "nope")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2 and "PK008" in r.stderr and r.stderr.count("\n") == 1
