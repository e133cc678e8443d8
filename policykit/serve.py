"""``policykit serve DIR``: an HTTP bundle server for OPA's bundle plugin.

* ``GET /NAME.tar.gz`` (and ``HEAD``) serves ``DIR/NAME.tar.gz``; any other
  path — subdirectories, ``..``, encoded slashes, other file types — is 404,
  so nothing outside DIR can be read.
* Every response carries a strong ``ETag`` (the content's SHA-256); a request
  whose ``If-None-Match`` names the current one gets ``304 Not Modified``.
* Long polling as OPA asks for it: ``Prefer: modes=snapshot,delta;wait=N``
  with an unchanged ETag holds the request up to N seconds (capped by
  ``--max-wait``) and answers 200 as soon as the bundle changes, else 304. Such
  responses have ``Content-Type: application/vnd.openpolicyagent.bundles`` —
  the signal that keeps OPA long polling; plain requests get
  ``application/gzip``.
* One thread per request (many concurrent pollers); bundles are read afresh
  when their size or mtime change, so an atomic replace is picked up at once.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from policykit.errors import PolicykitError

LONG_POLL_TYPE = "application/vnd.openpolicyagent.bundles"
GZIP_TYPE = "application/gzip"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.tar\.gz$")
WAIT_RE = re.compile(r"(?:^|[;,\s])wait=(\d+)")
POLL_INTERVAL = 0.1


class ServeError(PolicykitError):
    """The bundle server cannot start."""

    code = "PK008"


@dataclass(frozen=True, slots=True)
class _Entry:
    stamp: tuple[int, int]  # (mtime_ns, size)
    etag: str
    body: bytes


class BundleStore:
    """The bundles of one directory, read when they change."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> _Entry | None:
        if not NAME_RE.match(name):
            return None
        path = self.root / name
        try:
            st = path.stat()
        except OSError:
            return None
        if path.resolve().parent != self.root or not path.is_file():
            return None  # a symlink out of DIR, or not a regular file
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            cached = self._cache.get(name)
            if cached is not None and cached.stamp == stamp:
                return cached
        try:
            body = path.read_bytes()
        except OSError:
            return None
        entry = _Entry(stamp, '"' + hashlib.sha256(body).hexdigest() + '"', body)
        with self._lock:
            self._cache[name] = entry
        return entry


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


def make_handler(store: BundleStore, max_wait: float, quiet: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "policykit-bundle-server"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            if not quiet:
                super().log_message(format, *args)

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

        def _reject(self, status: HTTPStatus) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            if status == HTTPStatus.METHOD_NOT_ALLOWED:
                self.send_header("Allow", "GET, HEAD")
            self.end_headers()

        def do_POST(self) -> None:
            self._reject(HTTPStatus.METHOD_NOT_ALLOWED)

        do_PUT = do_DELETE = do_PATCH = do_POST  # noqa: N815

        def _serve(self, head: bool) -> None:
            raw = urlsplit(self.path).path
            name = unquote(raw[1:]) if raw.startswith("/") else ""
            if "/" in name or "\\" in name:
                self._reject(HTTPStatus.NOT_FOUND)
                return
            entry = store.get(name)
            if entry is None:
                self._reject(HTTPStatus.NOT_FOUND)
                return
            m = WAIT_RE.search(self.headers.get("Prefer", ""))
            wait = min(float(m.group(1)), max_wait) if m else None
            if _matches(self.headers.get("If-None-Match"), entry.etag) and wait:
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline:
                    time.sleep(POLL_INTERVAL)
                    fresh = store.get(name)
                    if fresh is None:
                        self._reject(HTTPStatus.NOT_FOUND)
                        return
                    if fresh.etag != entry.etag:
                        entry = fresh
                        break
            ctype = LONG_POLL_TYPE if wait is not None else GZIP_TYPE
            if _matches(self.headers.get("If-None-Match"), entry.etag):
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self.send_header("ETag", entry.etag)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(HTTPStatus.OK)
            self.send_header("ETag", entry.etag)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(entry.body)))
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            if not head:
                self.wfile.write(entry.body)

    return Handler


def make_server(
    root: Path,
    host: str = "127.0.0.1",
    port: int = 8282,
    *,
    max_wait: float = 60,
    quiet: bool = False,
) -> ThreadingHTTPServer:
    """A ready server (``serve_forever`` to run); ``port=0`` picks a free port."""
    if not root.is_dir():
        raise ServeError(f"{root} is not a directory", hint="give the folder holding NAME.tar.gz")
    try:
        server = ThreadingHTTPServer((host, port), make_handler(BundleStore(root), max_wait, quiet))
    except OSError as e:
        raise ServeError(
            f"cannot listen on {host}:{port}: {e.strerror}", hint="pick another --port or --host"
        ) from None
    server.daemon_threads = True
    return server
