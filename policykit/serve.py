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
* One thread per connection, at most ``max_connections`` at once (more are
  answered ``503`` with ``Retry-After``); a connection that sends no complete
  request head within ``timeout`` seconds (idle keep-alive, or trickling
  bytes) is closed. The listen backlog holds 1024 connections.
* Bundles are opened once, relative to DIR's descriptor, without following a
  symlink (``O_NOFOLLOW``); only a regular file is served, from the very
  handle that was checked, so swapping a file for a symlink cannot leak
  anything outside DIR. A symlink whose target is a bare ``NAME.tar.gz`` in
  DIR is followed, one level, the same way. Bundles are read afresh when
  their inode, size or mtime change, so an atomic replace is picked up at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import stat
import sys
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from policykit.errors import PolicykitError

LONG_POLL_TYPE = "application/vnd.openpolicyagent.bundles"
GZIP_TYPE = "application/gzip"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.tar\.gz")
WAIT_RE = re.compile(r"(?:^|[;,\s])wait=(\d+)")
POLL_INTERVAL = 0.1
MAX_CONNECTIONS = 1000  # threads answering at once; the README states what this holds
TIMEOUT = 20.0  # seconds for a request head to arrive (idle or trickling), and per socket op
BACKLOG = 1024
MAX_BUNDLE = 1 << 30  # a file larger than this in DIR is not served
_OPEN_FLAGS = (
    os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | os.O_NOCTTY
)
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
    b"Connection: close\r\n\r\n"
)


class ServeError(PolicykitError):
    """The bundle server cannot start."""

    code = "PK008"


@dataclass(frozen=True, slots=True)
class _Entry:
    stamp: tuple[int, int, int, int]  # (st_dev, st_ino, mtime_ns, size)
    etag: str
    body: bytes


class BundleStore:
    """The bundles of one directory, read when they change."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        # long polls sleep on a condition; one watcher thread looks for changes
        self._changed = threading.Condition()
        self._generation = 0
        self._watched: dict[str, int] = {}
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def wait_change(self, name: str, etag: str, seconds: float) -> _Entry | None:
        """The bundle ``name`` once its ETag is no longer ``etag`` (None if it
        is gone), or as it is after ``seconds``. Costs nothing while waiting:
        however many polls wait, one thread looks at the files."""
        deadline = time.monotonic() + seconds
        with self._changed:
            self._watched[name] = self._watched.get(name, 0) + 1
            if self._watcher is None:
                self._watcher = threading.Thread(
                    target=self._watch, name="policykit-serve-watcher", daemon=True
                )
                self._watcher.start()
        try:
            while True:
                with self._changed:
                    generation = self._generation
                fresh = self.get(name)
                if fresh is None or fresh.etag != etag:
                    return fresh
                with self._changed:
                    while self._generation == generation:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            return fresh  # unchanged, as the watcher saw it a moment ago
                        self._changed.wait(remaining)
        finally:
            with self._changed:
                self._watched[name] -= 1
                if not self._watched[name]:
                    del self._watched[name]

    def _watch(self) -> None:
        seen: dict[str, str | None] = {}
        while not self._stop.wait(POLL_INTERVAL):
            with self._changed:
                names = list(self._watched)
            changed = False
            for name in names:
                entry = self.get(name)
                etag = entry.etag if entry is not None else None
                if name not in seen or seen[name] != etag:
                    changed = True  # a first look wakes the waiters too: they look again
                seen[name] = etag
            for name in set(seen) - set(names):
                del seen[name]
            if changed:
                with self._changed:
                    self._generation += 1
                    self._changed.notify_all()

    def close(self) -> None:
        self._stop.set()

    def _open(self, dir_fd: int, name: str) -> int | None:
        """A descriptor of the regular file ``name`` directly in DIR, or None.
        Never follows a symlink by path: a link to a bare name in DIR is
        read with ``readlink`` and opened the same way, one level only."""
        for hop in range(2):
            try:
                return os.open(name, _OPEN_FLAGS, dir_fd=dir_fd)
            except OSError:
                if hop:
                    return None
            try:  # ELOOP (a symlink) or gone; a link to a sibling bundle is allowed
                target = os.readlink(name, dir_fd=dir_fd)
            except OSError:
                return None
            if not NAME_RE.fullmatch(target):
                return None  # ../outside, /etc/passwd, sub/x.tar.gz
            name = target
        return None

    def get(self, name: str) -> _Entry | None:
        if not NAME_RE.fullmatch(name):
            return None
        try:
            dir_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        try:
            fd = self._open(dir_fd, name)
        finally:
            os.close(dir_fd)
        if fd is None:
            return None
        with os.fdopen(fd, "rb") as f:  # serve from this very handle
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_BUNDLE:
                return None  # a FIFO, device, directory... or absurdly large
            stamp = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
            with self._lock:
                cached = self._cache.get(name)
                if cached is not None and cached.stamp == stamp:
                    return cached
            try:
                body = f.read(MAX_BUNDLE + 1)
            except OSError:
                return None
        entry = _Entry(stamp, '"' + hashlib.sha256(body).hexdigest() + '"', body)
        with self._lock:
            self._cache[name] = entry
        return entry


class _Watchdog:
    """Closes connections whose request head has not arrived by its deadline:
    idle keep-alive connections and clients trickling bytes (slowloris)."""

    def __init__(self, period: float) -> None:
        self._deadlines: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="policykit-serve-watchdog", daemon=True
        )
        self._thread.start()

    def arm(self, conn: socket.socket, seconds: float) -> None:
        with self._lock:
            self._deadlines[conn] = time.monotonic() + seconds

    def disarm(self, conn: socket.socket) -> None:
        with self._lock:
            self._deadlines.pop(conn, None)

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            now = time.monotonic()
            with self._lock:  # under the lock: a connection disarmed is never shut
                for c in [c for c, t in self._deadlines.items() if t <= now]:
                    del self._deadlines[c]
                    with contextlib.suppress(OSError):
                        c.shutdown(socket.SHUT_RDWR)  # the handler's read ends at once


class BundleServer(ThreadingHTTPServer):
    """A threading HTTP server with a deep backlog, a bound on the threads
    answering at once, and a deadline for every request head."""

    request_queue_size = BACKLOG
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        max_connections: int = MAX_CONNECTIONS,
        timeout: float = TIMEOUT,
        store: BundleStore | None = None,
    ) -> None:
        self.store = store
        self.max_connections = max_connections
        self.head_timeout = timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        self._count_lock = threading.Lock()
        self._in_use = 0
        self._overflow = threading.BoundedSemaphore(64)  # 503 answerers
        self.watchdog = _Watchdog(min(0.25, timeout / 4))
        super().__init__(address, handler)

    @property
    def connections(self) -> int:
        """How many connections hold a slot now (at most ``max_connections``)."""
        return self._in_use

    def _count(self, delta: int) -> None:
        with self._count_lock:
            self._in_use += delta

    def _release_slot(self) -> None:
        self._count(-1)
        self._slots.release()

    def process_request(self, request: Any, client_address: Any) -> None:
        if self._slots.acquire(blocking=False):
            self._count(1)
            target, release = self.process_request_thread, self._release_slot
        elif self._overflow.acquire(blocking=False):
            target, release = self._busy, self._overflow.release
        else:
            self.shutdown_request(request)
            return

        def run(req: Any, addr: Any) -> None:
            try:
                target(req, addr)
            finally:
                release()

        threading.Thread(target=run, args=(request, client_address), daemon=True).start()

    def _busy(self, request: Any, client_address: Any) -> None:
        """Answer 503 (after reading the request head, briefly) and close."""
        try:
            head = b""
            deadline = time.monotonic() + 2.0
            while b"\r\n\r\n" not in head and len(head) < 65536:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                request.settimeout(left)
                chunk = request.recv(4096)
                if not chunk:
                    break
                head += chunk
            request.sendall(_BUSY)
        except OSError:
            pass
        finally:
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away or stalled (an OSError) is no news; anything
        else is one line on standard error, never a traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        host = client_address[0] if isinstance(client_address, tuple) else client_address
        sys.stderr.write(
            f"policykit: serve: internal error answering {host}: {type(exc).__name__}: {exc}\n"
        )

    def server_close(self) -> None:
        self.watchdog.stop()
        if self.store is not None:
            self.store.close()
        super().server_close()


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


def make_handler(store: BundleStore, max_wait: float, quiet: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "policykit-bundle-server"
        protocol_version = "HTTP/1.1"
        server: BundleServer

        def setup(self) -> None:
            super().setup()
            self.connection.settimeout(self.server.head_timeout)  # every socket operation

        def handle_one_request(self) -> None:
            # the head of the next request must arrive in time (idle or trickling)
            self.server.watchdog.arm(self.connection, self.server.head_timeout)
            try:
                super().handle_one_request()
            finally:
                self.server.watchdog.disarm(self.connection)

        def parse_request(self) -> bool:
            ok = super().parse_request()
            self.server.watchdog.disarm(self.connection)  # the head is in; long polls may wait
            return ok

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
                fresh = store.wait_change(name, entry.etag, wait)
                if fresh is None:
                    self._reject(HTTPStatus.NOT_FOUND)
                    return
                entry = fresh
            ctype = LONG_POLL_TYPE if wait is not None else GZIP_TYPE
            if _matches(self.headers.get("If-None-Match"), entry.etag):
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self.send_header("ETag", entry.etag)
                self.send_header("Content-Type", ctype)
                self.end_headers()  # no Content-Length: a 304 has no body (RFC 9110 8.6)
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
    max_connections: int = MAX_CONNECTIONS,
    timeout: float = TIMEOUT,
) -> BundleServer:
    """A ready server (``serve_forever`` to run); ``port=0`` picks a free port."""
    if not root.is_dir():
        raise ServeError(f"{root} is not a directory", hint="give the folder holding NAME.tar.gz")
    if max_connections < 1 or not timeout > 0 or not max_wait >= 0:
        raise ServeError(
            "--max-connections must be at least 1, --timeout above 0, --max-wait 0 or more"
        )
    store = BundleStore(root)
    try:
        return BundleServer(
            (host, port),
            make_handler(store, max_wait, quiet),
            max_connections=max_connections,
            timeout=timeout,
            store=store,
        )
    except OSError as e:
        raise ServeError(
            f"cannot listen on {host}:{port}: {e.strerror}", hint="pick another --port or --host"
        ) from None
