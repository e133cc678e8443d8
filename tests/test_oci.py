"""``policykit publish`` / ``pull`` against a real registry (Debian's
docker-registry, the CNCF distribution server) on loopback: the image OPA's OCI
downloader expects, a byte-identical round trip, and authentication from
flags, the environment or the docker config."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from click.testing import CliRunner

from policykit.cli.main import cli
from policykit.oci import CONFIG_TYPE, LAYER_TYPE, MANIFEST_TYPE, Reference


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
