"""Push and pull OPA bundles as OCI artifacts, as OPA's OCI downloader expects
them (oras-py does the registry protocol and authentication).

* image manifest ``application/vnd.oci.image.manifest.v1+json``; config blob
  ``{}`` of type ``application/vnd.oci.image.config.v1+json``; one layer of type
  ``application/vnd.oci.image.layer.v1.tar+gzip`` whose blob *is* the bundle;
* ``pull`` takes the first layer of that type (as OPA does), checks its digest
  and writes it atomically: ``publish`` then ``pull`` is byte-identical;
* credentials: ``--username``/``--password`` (or ``POLICYKIT_REGISTRY_USERNAME``
  / ``POLICYKIT_REGISTRY_PASSWORD``), else the docker config
  (``~/.docker/config.json`` or ``DOCKER_CONFIG``), else anonymous;
  ``--plain-http`` for a registry without TLS (e.g. one on loopback).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policykit.errors import PolicykitError, SourceLoc

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


class OciError(PolicykitError):
    """A registry operation that failed (reference, network, auth, content)."""

    code = "PK302"


@dataclass(frozen=True, slots=True)
class Reference:
    host: str
    repository: str
    tag: str

    @classmethod
    def parse(cls, ref: str) -> Reference:
        text = ref.removeprefix("oci://")
        if "/" not in text:
            raise OciError(f"{ref!r} is not an OCI reference", hint="use oci://HOST/REPO:TAG")
        host, rest = text.split("/", 1)
        if "@" in rest:
            raise OciError(f"{ref!r}: pin by tag here; digests are checked on pull", hint="")
        repo, _, tag = rest.rpartition(":") if ":" in rest else (rest, "", "latest")
        if not repo or not tag:
            raise OciError(f"{ref!r} is not an OCI reference", hint="use oci://HOST/REPO:TAG")
        return cls(host, repo, tag)

    @property
    def target(self) -> str:
        return f"{self.host}/{self.repository}:{self.tag}"


def _registry(ref: Reference, plain_http: bool) -> Any:
    """An oras registry client whose auth backend fits the registry's challenge:
    ``Basic`` (e.g. an htpasswd-protected distribution registry) or ``Bearer``
    tokens (ghcr.io, Docker Hub, most hosted registries)."""
    import oras.provider
    import requests

    backend = "token"
    scheme = "http" if plain_http else "https"
    try:
        probe = requests.get(f"{scheme}://{ref.host}/v2/", timeout=10)
        if probe.headers.get("WWW-Authenticate", "").lower().startswith("basic"):
            backend = "basic"
    except requests.RequestException:
        pass  # the operation itself reports the failure
    return oras.provider.Registry(ref.host, insecure=plain_http, auth_backend=backend)


def _need_credentials(reg: Any, ref: Reference, creds: str | None) -> None:
    """A Basic-auth registry never answers anonymously: fail at once, not after
    the client's retries, when no credentials are at hand."""
    if creds is not None or type(reg.auth).__name__ != "BasicAuth":
        return
    config = Path("~/.docker/config.json").expanduser()
    try:
        auths = json.loads(config.read_text()).get("auths", {})
    except (OSError, ValueError):
        auths = {}
    if not any(
        k.removeprefix("https://").removeprefix("http://").rstrip("/") == ref.host for k in auths
    ):
        raise OciError(
            f"{ref.host} requires credentials and none were found",
            hint="--username/--password, POLICYKIT_REGISTRY_USERNAME/PASSWORD, or docker login",
        )


def _credentials(
    tmp: Path, ref: Reference, username: str | None, password: str | None
) -> str | None:
    """A docker config holding explicit credentials (flags or environment), or
    None to use the user's docker config."""
    user = username or os.environ.get("POLICYKIT_REGISTRY_USERNAME")
    pw = password or os.environ.get("POLICYKIT_REGISTRY_PASSWORD")
    if not (user and pw):
        return None
    token = base64.b64encode(f"{user}:{pw}".encode()).decode()
    path = tmp / "docker-config.json"
    path.write_text(json.dumps({"auths": {ref.host: {"auth": token}}}))
    return str(path)


@contextmanager
def _session(
    ref: Reference, plain_http: bool, username: str | None, password: str | None
) -> Iterator[tuple[Any, str | None, Path]]:
    """A registry client, the explicit credentials (a docker config path, or
    None) and a scratch directory that is removed afterwards."""
    reg = _registry(ref, plain_http)
    with tempfile.TemporaryDirectory(prefix="policykit-oci-") as tmp:
        creds = _credentials(Path(tmp), ref, username, password)
        _need_credentials(reg, ref, creds)
        yield reg, creds, Path(tmp)


def _fail(action: str, ref: Reference, exc: BaseException) -> OciError:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if (isinstance(exc, AttributeError) and "_basic_auth" in text) or "UNAUTHORIZED" in text:
        text = "the registry refused the credentials"
    return OciError(
        f"{action} {ref.target} failed: {text}",
        hint="check the reference, credentials (--username/--password or docker login) "
        "and --plain-http for registries without TLS",
    )


def publish(
    bundle: Path,
    reference: str,
    *,
    plain_http: bool = False,
    username: str | None = None,
    password: str | None = None,
) -> str:
    """Push ``bundle`` as an OPA bundle image; returns the layer digest."""
    ref = Reference.parse(reference)
    try:
        blob = bundle.read_bytes()
    except OSError as e:
        raise OciError(f"cannot read bundle: {e.strerror}", loc=SourceLoc(str(bundle))) from None
    with _session(ref, plain_http, username, password) as (reg, creds, tmp):
        layer = tmp / bundle.name
        layer.write_bytes(blob)
        config = tmp / "config.json"
        config.write_text("{}")
        try:
            reg.push(
                target=ref.target,
                config_path=creds,
                files=[f"{layer}:{LAYER_TYPE}"],
                manifest_config=f"{config}:{CONFIG_TYPE}",
                disable_path_validation=True,
                quiet=True,
            )
        except Exception as e:  # requests/oras raise many kinds; one line for the user
            raise _fail("push to", ref, e) from None
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def pull(
    reference: str,
    out: Path,
    *,
    plain_http: bool = False,
    username: str | None = None,
    password: str | None = None,
) -> str:
    """Fetch the bundle layer of ``reference`` to ``out`` (atomically); its digest."""
    from policykit.targets.rego.bundle import write_atomic

    ref = Reference.parse(reference)
    with _session(ref, plain_http, username, password) as (reg, creds, _):
        blob, digest = _fetch(reg, ref, creds)
    algo, _, want = str(digest).partition(":")
    if algo != "sha256" or hashlib.sha256(blob).hexdigest() != want:
        raise OciError(f"{ref.target}: the layer does not match its digest {digest}")
    write_atomic(out, blob)
    return str(digest)


def _fetch(reg: Any, ref: Reference, creds: str | None) -> tuple[bytes, str]:
    try:
        container = reg.get_container(ref.target)
        reg.auth.load_configs(container, configs=[creds] if creds else None)
        manifest = reg.get_manifest(container)
        layers = [x for x in manifest.get("layers", []) if x.get("mediaType") == LAYER_TYPE]
        if not layers:
            raise OciError(f"{ref.target} has no {LAYER_TYPE} layer: not an OPA bundle image")
        digest = layers[0]["digest"]
        response = reg.get_blob(container, digest)
        response.raise_for_status()
        return bytes(response.content), str(digest)
    except OciError:
        raise
    except Exception as e:  # requests/oras raise many kinds; one line for the user
        raise _fail("pull from", ref, e) from None
