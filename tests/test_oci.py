"""``policykit publish`` / ``pull`` against a real registry (Debian's
docker-registry, the CNCF distribution server) on loopback: the image OPA's OCI
downloader expects, a byte-identical round trip, and authentication from
flags, the environment or the docker config."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import bcrypt
import pytest
from click.testing import CliRunner

from policykit.cli.main import cli
from policykit.oci import CONFIG_TYPE, LAYER_TYPE, MANIFEST_TYPE, OciError, Reference
from policykit.targets.rego.bundle import Bundle


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(tmp: Path, htpasswd: str | None) -> Iterator[str]:
    binary = shutil.which("docker-registry")
    assert binary, "docker-registry is not installed: .ci/run installs it (apt)"
    port = _free_port()
    cfg = {
        "version": 0.1,
        "log": {"level": "error"},
        "storage": {"filesystem": {"rootdirectory": str(tmp / "data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if htpasswd is not None:
        (tmp / "htpasswd").write_text(htpasswd)
        cfg["auth"] = {"htpasswd": {"realm": "policykit-test", "path": str(tmp / "htpasswd")}}
    (tmp / "config.yml").write_text(json.dumps(cfg))  # JSON is YAML
    proc = subprocess.Popen(
        [binary, "serve", str(tmp / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # 401: up, and asking for credentials
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("the registry did not start") from None
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _start(tmp_path_factory.mktemp("registry"), None)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    hashed = bcrypt.hashpw(b"s3cret-token", bcrypt.gensalt(rounds=4)).decode()
    yield from _start(tmp_path_factory.mktemp("secured"), f"ci:{hashed}\n")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "policykit.tar.gz"
    r = CliRunner().invoke(cli, ["build", "--target", "rego", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


def _cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, list(args))
    return r.exit_code, r.output


def _manifest(host: str, repo: str, tag: str, auth: str | None = None) -> dict[str, object]:
    req = urllib.request.Request(
        f"http://{host}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_TYPE}
    )
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    with urllib.request.urlopen(req, timeout=10) as r:
        doc: dict[str, object] = json.loads(r.read())
    return doc


def test_round_trip_is_byte_identical_with_opas_media_types(
    registry: str, bundle: Path, tmp_path: Path
) -> None:
    ref = f"oci://{registry}/policykit/bundles:v1"
    code, out = _cli("publish", str(bundle), ref, "--plain-http")
    assert code == 0, out
    manifest = _manifest(registry, "policykit/bundles", "v1")
    assert manifest["mediaType"] == MANIFEST_TYPE
    assert manifest["config"]["mediaType"] == CONFIG_TYPE  # type: ignore[index]
    layers = manifest["layers"]
    assert [x["mediaType"] for x in layers] == [LAYER_TYPE]  # type: ignore[union-attr, index]
    got = tmp_path / "pulled.tar.gz"
    code, out = _cli("pull", ref, "--out", str(got), "--plain-http")
    assert code == 0, out
    assert got.read_bytes() == bundle.read_bytes()
    assert layers[0]["digest"] in out  # type: ignore[index]


def test_missing_tag_and_bad_references(registry: str, tmp_path: Path) -> None:
    code, out = _cli(
        "pull", f"oci://{registry}/policykit/bundles:nope", "--out", str(tmp_path / "x"),
        "--plain-http",
    )  # fmt: skip
    assert code == 2 and "PK302" in out and not (tmp_path / "x").exists()
    for bad in ("oci://just-a-host", "oci://host/repo@sha256:abc"):
        code, out = _cli("pull", bad, "--out", str(tmp_path / "x"))
        assert code == 2 and "PK302" in out, out


def test_credentials_from_flags_environment_and_docker_config(
    secured: str, bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = f"oci://{secured}/team/policies:2026"
    code, out = _cli("publish", str(bundle), ref, "--plain-http")
    assert code == 2 and "requires credentials" in out, out
    code, out = _cli(
        "publish", str(bundle), ref, "--plain-http", "--username", "ci", "--password", "wrong"
    )
    assert code == 2 and "PK302" in out
    code, out = _cli(
        "publish",
        str(bundle),
        ref,
        "--plain-http",
        "--username",
        "ci",
        "--password",
        "s3cret-token",
    )
    assert code == 0, out
    assert _manifest(secured, "team/policies", "2026", "ci:s3cret-token")["layers"]

    monkeypatch.setenv("POLICYKIT_REGISTRY_USERNAME", "ci")
    monkeypatch.setenv("POLICYKIT_REGISTRY_PASSWORD", "s3cret-token")
    code, out = _cli("pull", ref, "--out", str(tmp_path / "env.tar.gz"), "--plain-http")
    assert code == 0, out
    monkeypatch.delenv("POLICYKIT_REGISTRY_USERNAME")
    monkeypatch.delenv("POLICYKIT_REGISTRY_PASSWORD")

    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    token = base64.b64encode(b"ci:s3cret-token").decode()
    (home / ".docker/config.json").write_text(json.dumps({"auths": {secured: {"auth": token}}}))
    monkeypatch.setenv("HOME", str(home))
    code, out = _cli("pull", ref, "--out", str(tmp_path / "cfg.tar.gz"), "--plain-http")
    assert code == 0, out
    assert (tmp_path / "cfg.tar.gz").read_bytes() == bundle.read_bytes()


def test_reference_parsing() -> None:
    r = Reference.parse("oci://ghcr.io/acme/policies:v1.2")
    assert (r.host, r.repository, r.tag) == ("ghcr.io", "acme/policies", "v1.2")
    r = Reference.parse("localhost:5000/policies")
    assert (r.host, r.repository, r.tag) == ("localhost:5000", "policies", "latest")


@pytest.mark.parametrize(
    "ref",
    [
        "oci://ghcr.io/Acme/policies:v1",  # capitals: registries refuse the name
        "oci://ghcr.io/acme/my policies:v1",
        "oci://ghcr.io/acme/policies:v 1",
        "oci://ghcr.io/acme/policies:-v1",
        "oci://ghcr.io/acme/policies:" + "v" * 129,
        "oci://ghcr.io/acme//policies:v1",
        "oci://ghcr.io/acme/-policies:v1",
        "oci://gh cr.io/acme/policies:v1",
        "oci://ghcr.io/acme/policies:v1\n",
    ],
)
def test_a_name_the_reference_grammar_refuses_is_one_line_before_any_request(
    ref: str, tmp_path: Path
) -> None:
    """Capitals or spaces in a repository or tag reached the network (an HTTP
    error from the registry, or a request to a malformed URL); they are refused
    by distribution/reference's grammar first, with what a name may hold."""
    with pytest.raises(OciError) as err:
        Reference.parse(ref)
    assert "is not a" in err.value.message and err.value.hint
    code, out = _cli("pull", ref, "--out", str(tmp_path / "x"), "--timeout", "0.01")
    assert code == 2 and "PK302" in out and "is not a" in out, out
    assert not (tmp_path / "x").exists()


def test_names_the_grammar_allows_are_parsed() -> None:
    for ref, want in [
        ("oci://127.0.0.1:5000/a/b__c.d-e--f:V1_x.y-z", ("127.0.0.1:5000", "a/b__c.d-e--f")),
        ("[::1]:5000/policies:_", ("[::1]:5000", "policies")),
        ("Registry.Example.COM/p0/q1", ("Registry.Example.COM", "p0/q1")),
    ]:
        r = Reference.parse(ref)
        assert (r.host, r.repository) == want


def test_missing_tag_is_one_line(registry: str, tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "policykit", "pull", f"oci://{registry}/policykit/bundles:nope",
         "--out", str(tmp_path / "x"), "--plain-http"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2 and r.stdout == "", r.stdout
    assert r.stderr.count("\n") == 1 and "manifest unknown" not in r.stderr, r.stderr
    assert "PK302" in r.stderr and "tag 'nope' does not exist" in r.stderr, r.stderr


def test_publish_does_not_leak_the_local_file_name(
    registry: str, bundle: Path, tmp_path: Path
) -> None:
    local = tmp_path / "build-7-private-workstation.tar.gz"
    local.write_bytes(bundle.read_bytes())
    code, out = _cli("publish", str(local), f"oci://{registry}/policykit/named:v1", "--plain-http")
    assert code == 0, out
    manifest = _manifest(registry, "policykit/named", "v1")
    assert "private-workstation" not in json.dumps(manifest)
    title = manifest["layers"][0]["annotations"]["org.opencontainers.image.title"]  # type: ignore[index]
    assert title == "bundle.tar.gz"


# -- a hostile registry on loopback: stalls, trickles, oversized answers ---------------

_BLOB = Bundle(
    {".manifest": b'{"revision": "t", "roots": ["x"]}', "x/p.rego": b"package x\n\nallow := true\n"}
).pack()  # a real bundle: pull refuses what OPA would not load
_DIGEST = "sha256:" + hashlib.sha256(_BLOB).hexdigest()


class _Hostile(BaseHTTPRequestHandler):
    """``/v2/<mode>/manifests/t`` and its blob misbehave as ``mode`` says."""

    protocol_version = "HTTP/1.1"
    release: threading.Event

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, body: bytes, length: int | None = None, ctype: str = MANIFEST_TYPE) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def _manifest(self, size: int) -> bytes:
        layer = {"mediaType": LAYER_TYPE, "digest": _DIGEST, "size": size}
        return json.dumps(
            {"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "layers": [layer]}
        ).encode()

    def do_GET(self) -> None:
        parts = self.path.split("/")
        if self.path == "/v2/":
            self._send(b"{}", ctype="application/json")
            return
        mode, kind = parts[2], parts[4]  # /v2/MODE/r/KIND/...
        if mode == "stall" and kind == "manifests":
            self.release.wait(20)  # says nothing until the test ends
        elif mode == "stallbody" and kind == "manifests":
            body = self._manifest(len(_BLOB))
            self._send(body[:10], length=len(body))
            self.wfile.flush()
            self.release.wait(20)
        elif mode == "trickle" and kind == "manifests":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for _ in range(200):  # a byte every 0.1 s: no read ever waits --timeout
                if self.release.wait(0.1):
                    break
                self.wfile.write(b" ")
                self.wfile.flush()
        elif mode == "bigmanifest" and kind == "manifests":
            self._send(b" " * 10, length=1 << 30)  # declares 1 GiB
        elif mode == "endless" and kind == "manifests":
            self.send_response(200)
            self.send_header("Connection", "close")  # no length: read to the end
            self.end_headers()
            for _ in range(2000):  # 2000 x 1 KiB, far over --max-size 100000
                self.wfile.write(b" " * 1024)
            self.close_connection = True
        elif mode == "biglayer" and kind == "manifests":
            self._send(self._manifest(1 << 30))
        elif mode == "lyinglayer" and kind == "manifests":
            self._send(self._manifest(len(_BLOB)))
        elif mode == "lyinglayer" and kind == "blobs":
            self._send(b"\0" * 300_000, ctype="application/octet-stream")
        elif kind == "blobs":
            self._send(_BLOB, ctype="application/octet-stream")
        else:
            self._send(self._manifest(len(_BLOB)))


@pytest.fixture
def hostile() -> Iterator[str]:
    release = threading.Event()
    handler = type("Handler", (_Hostile,), {"release": release})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.handle_error = lambda request, address: None  # type: ignore[method-assign]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        release.set()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("stall", "did not answer in time"),
        ("stallbody", "did not answer in time"),
        pytest.param("trickle", "took over 6 s to download", marks=pytest.mark.slow),
        ("bigmanifest", "manifest is over the limit of 100000 bytes (1073741824 bytes)"),
        ("endless", "manifest is over the limit of 100000 bytes"),
        ("biglayer", "bundle layer is over the limit of 100000 bytes (1073741824 bytes)"),
        ("lyinglayer", "bundle layer is over the limit of 100000 bytes"),
    ],
)
def test_a_hostile_registry_is_one_line_in_bounded_time(
    hostile: str, tmp_path: Path, mode: str, message: str
) -> None:
    out = tmp_path / "b.tar.gz"
    t0 = time.monotonic()
    code, text = _cli(
        "pull", f"oci://{hostile}/{mode}/r:t", "--out", str(out), "--plain-http",
        "--timeout", "0.6" if mode == "trickle" else "1", "--max-size", "100000",
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "PK302" in lines[0], lines
    assert message in lines[0], lines
    assert elapsed < 15 and not out.exists()


def test_the_hostile_registry_serves_a_good_image_too(hostile: str, tmp_path: Path) -> None:
    out = tmp_path / "b.tar.gz"
    code, text = _cli("pull", f"oci://{hostile}/good/r:t", "--out", str(out), "--plain-http")
    assert code == 0, text
    assert out.read_bytes() == _BLOB


def test_publish_reads_only_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.tar.gz"
    os.mkfifo(fifo)  # opening it for reading would block
    r = subprocess.run(
        [sys.executable, "-m", "policykit", "publish", str(fifo), "oci://127.0.0.1:9/x:y",
         "--plain-http"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "PK300" in r.stderr and "not a regular file" in r.stderr, r.stderr


def test_publish_refuses_what_is_not_a_bundle_before_the_network(tmp_path: Path) -> None:
    """Any file was pushed as an OPA bundle (a truncated one, /etc/passwd)."""
    text = tmp_path / "notes.tar.gz"
    text.write_text("not a bundle\n")
    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes(_BLOB[: len(_BLOB) // 2])
    for path in (text, truncated):
        code, out = _cli("publish", str(path), "oci://127.0.0.1:9/x:y", "--plain-http")
        assert code == 2 and "PK300" in out and "127.0.0.1:9" not in out, out
