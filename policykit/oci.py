"""Push and pull OPA bundles as OCI artifacts, as OPA's OCI downloader expects
them (oras-py does the registry protocol and authentication).

* image manifest ``application/vnd.oci.image.manifest.v1+json``; config blob
  ``{}`` of type ``application/vnd.oci.image.config.v1+json``; one layer of type
  ``application/vnd.oci.image.layer.v1.tar+gzip`` whose blob *is* the bundle;
* ``pull`` takes the first layer of that type (as OPA does), checks its digest
  and writes it atomically: ``publish`` then ``pull`` is byte-identical;
* limits: every connect and every read waits at most ``timeout`` seconds
  (``--timeout``, default 30) and a whole download ten times that; a manifest
  or blob larger than ``max_size`` bytes (``--max-size``, default 64 MiB) is
  refused before it is read in full. Requests are not retried;
* the layer's title annotation is ``bundle.tar.gz``, never the local file name;
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
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policykit.errors import PolicykitError

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_TITLE = "bundle.tar.gz"  # the title annotation: not the publisher's file name
TIMEOUT = 30.0
MAX_SIZE = 64 * 1024 * 1024
_MANIFEST_ACCEPT = ", ".join(
    [MANIFEST_TYPE, "application/vnd.docker.distribution.manifest.v2+json"]
)


@dataclass(frozen=True, slots=True)
class Limits:
    """How long a registry may take and how much it may send."""

    timeout: float = TIMEOUT  # seconds per connect and per read; 10x for a whole download
    max_size: int = MAX_SIZE  # bytes of one manifest or blob


class OciError(PolicykitError):
    """A registry operation that failed (reference, network, auth, content)."""

    code = "PK302"


# The reference grammar of distribution/reference (reference.go, v0.5.0), which
# registries and OPA's OCI downloader (through containerd) hold names to: a
# repository is lowercase components, a tag at most 128 word characters.
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127}"


@dataclass(frozen=True, slots=True)
class Reference:
    host: str
    repository: str
    tag: str

    @classmethod
    def parse(cls, ref: str) -> Reference:
        """``[oci://]HOST/REPO[:TAG]`` (tag ``latest`` by default), each part
        held to the reference grammar: a name a registry would refuse (capitals,
        spaces) is an error here, before any request is sent."""
        import re

        text = ref.removeprefix("oci://")
        if "/" not in text:
            raise OciError(f"{ref!r} is not an OCI reference", hint="use oci://HOST/REPO:TAG")
        host, rest = text.split("/", 1)
        if "@" in rest:
            raise OciError(f"{ref!r}: pin by tag here; digests are checked on pull", hint="")
        repo, _, tag = rest.rpartition(":") if ":" in rest else (rest, "", "latest")
        if not repo or not tag:
            raise OciError(f"{ref!r} is not an OCI reference", hint="use oci://HOST/REPO:TAG")
        if not re.fullmatch(_HOST, host):
            raise OciError(
                f"{ref!r}: {host!r} is not a registry host",
                hint="a host name or IP address, with an optional :PORT",
            )
        if not re.fullmatch(rf"{_PATH_PART}(?:/{_PATH_PART})*", repo):
            raise OciError(
                f"{ref!r}: {repo!r} is not a repository name",
                hint="lowercase letters and digits, parts joined by '.', '_', '__' or '-', "
                "separated by '/'",
            )
        if not re.fullmatch(_TAG, tag):
            raise OciError(
                f"{ref!r}: {tag!r} is not a tag",
                hint="at most 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
            )
        return cls(host, repo, tag)

    @property
    def target(self) -> str:
        return f"{self.host}/{self.repository}:{self.tag}"


def _registry(ref: Reference, plain_http: bool, limits: Limits) -> Any:
    """An oras registry client whose auth backend fits the registry's challenge:
    ``Basic`` (e.g. an htpasswd-protected distribution registry) or ``Bearer``
    tokens (ghcr.io, Docker Hub, most hosted registries). Every request it
    makes (token requests included) has ``limits.timeout``, and none is retried
    (oras would retry a stalled request five times, sleeping up to 83 s)."""
    import oras.provider
    import requests

    backend = "token"
    scheme = "http" if plain_http else "https"
    try:
        probe = requests.get(f"{scheme}://{ref.host}/v2/", timeout=limits.timeout)
        probe.close()
        if probe.headers.get("WWW-Authenticate", "").lower().startswith("basic"):
            backend = "basic"
    except requests.RequestException:
        pass  # the operation itself reports the failure
    reg = oras.provider.Registry(ref.host, insecure=plain_http, auth_backend=backend)
    session = reg.session
    plain_request = session.request

    def request(method: str, url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", (limits.timeout, limits.timeout))
        return plain_request(method, url, **kwargs)

    session.request = request
    once = getattr(type(reg).do_request, "__wrapped__", None)  # under oras' retry decorator
    if once is not None:
        reg.do_request = types.MethodType(once, reg)
    return reg


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
    ref: Reference,
    plain_http: bool,
    username: str | None,
    password: str | None,
    limits: Limits,
) -> Iterator[tuple[Any, str | None, Path]]:
    """A registry client, the explicit credentials (a docker config path, or
    None) and a scratch directory that is removed afterwards."""
    reg = _registry(ref, plain_http, limits)
    with tempfile.TemporaryDirectory(prefix="policykit-oci-") as tmp:
        creds = _credentials(Path(tmp), ref, username, password)
        _need_credentials(reg, ref, creds)
        yield reg, creds, Path(tmp)


def _fail(action: str, ref: Reference, exc: BaseException) -> OciError:
    import requests

    if isinstance(exc, requests.Timeout) or "timed out" in str(exc):  # also mid-body
        return OciError(
            f"{action} {ref.target} failed: the registry did not answer in time",
            hint="--timeout SECONDS waits longer",
        )
    if isinstance(exc, requests.ConnectionError):
        return OciError(
            f"{action} {ref.target} failed: cannot connect to {ref.host}",
            hint="check the host and port, and --plain-http for registries without TLS",
        )
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
    limits: Limits | None = None,
) -> str:
    """Push ``bundle`` as an OPA bundle image; returns the layer digest."""
    from policykit.targets.rego.bundle import Bundle, read_limited
    from policykit.targets.rego.bundle import Limits as BundleLimits

    ref = Reference.parse(reference)
    blob = read_limited(bundle, BundleLimits.from_env().total_size)  # a regular file only
    Bundle.unpack(blob, str(bundle))  # a bundle OPA would load, or PK300: never push another file
    with _session(ref, plain_http, username, password, limits or Limits()) as (reg, creds, tmp):
        layer = tmp / LAYER_TITLE  # oras annotates the layer with this name
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
    limits: Limits | None = None,
) -> str:
    """Fetch the bundle layer of ``reference`` to ``out`` (atomically); its digest."""
    from policykit.safeio import write_atomic

    lim = limits or Limits()
    ref = Reference.parse(reference)
    with _session(ref, plain_http, username, password, lim) as (reg, creds, _):
        blob, digest = _fetch(reg, ref, creds, lim)
    algo, _, want = str(digest).partition(":")
    if algo != "sha256" or hashlib.sha256(blob).hexdigest() != want:
        raise OciError(f"{ref.target}: the layer does not match its digest {digest}")
    from policykit.targets.rego.bundle import Bundle

    Bundle.unpack(blob, reference)  # what OPA would load, or PK300 (nothing written)
    write_atomic(out, blob)
    return str(digest)


def _get(reg: Any, url: str, accept: str, ref: Reference, what: str, lim: Limits) -> bytes:
    """GET ``url`` (authenticating once if asked), at most ``lim.max_size`` bytes
    within ``10 * lim.timeout`` seconds; a non-200 answer is one OciError."""
    import oras.auth

    headers = {"Accept": accept}
    if isinstance(reg.auth, oras.auth.TokenAuth) and reg.auth.token is not None:
        headers.update(reg.auth.get_auth_header())
    r = reg.session.get(url, headers=headers, stream=True, verify=reg._tls_verify)
    if r.status_code in (401, 403):
        r.close()
        headers, changed = reg.auth.authenticate_request(r, headers)
        if not changed:
            raise OciError(
                f"pull from {ref.target} failed: the registry refused the credentials",
                hint="--username/--password, POLICYKIT_REGISTRY_USERNAME/PASSWORD, or docker login",
            )
        r = reg.session.get(url, headers=headers, stream=True, verify=reg._tls_verify)
    with r:
        if r.status_code in (401, 403):
            raise OciError(
                f"pull from {ref.target} failed: the registry refused the credentials",
                hint="--username/--password, POLICYKIT_REGISTRY_USERNAME/PASSWORD, or docker login",
            )
        if r.status_code == 404:
            missing = f"tag {ref.tag!r} does not exist" if what == "manifest" else f"no {what}"
            raise OciError(
                f"pull from {ref.target} failed: {missing} (HTTP 404)",
                hint="check the repository and tag; policykit publish pushes them",
            )
        if r.status_code != 200:
            raise OciError(
                f"pull from {ref.target} failed: the {what} answered HTTP {r.status_code}"
            )
        declared = r.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > lim.max_size:
            raise _too_big(ref, what, int(declared), lim)
        deadline = time.monotonic() + 10 * lim.timeout
        body = bytearray()
        while chunk := r.raw.read1(65536, decode_content=True):  # what arrived, no waiting
            body += chunk
            if len(body) > lim.max_size:
                raise _too_big(ref, what, len(body), lim)
            if time.monotonic() > deadline:
                raise OciError(
                    f"pull from {ref.target} failed: the {what} took over "
                    f"{10 * lim.timeout:g} s to download",
                    hint="--timeout SECONDS waits longer (a download may take 10x)",
                )
    return bytes(body)


def _too_big(ref: Reference, what: str, size: int, lim: Limits) -> OciError:
    return OciError(
        f"pull from {ref.target} failed: the {what} is over the limit of {lim.max_size} bytes"
        + (f" ({size} bytes)" if size else ""),
        hint="--max-size BYTES raises the limit",
    )


def _fetch(reg: Any, ref: Reference, creds: str | None, lim: Limits) -> tuple[bytes, str]:
    try:
        container = reg.get_container(ref.target)
        reg.auth.load_configs(container, configs=[creds] if creds else None)
        base = f"{reg.prefix}://{ref.host}/v2/{ref.repository}"
        raw = _get(reg, f"{base}/manifests/{ref.tag}", _MANIFEST_ACCEPT, ref, "manifest", lim)
        try:
            manifest = json.loads(raw)
        except (ValueError, RecursionError):
            raise OciError(f"{ref.target}: the manifest is not JSON") from None
        found = manifest.get("layers") if isinstance(manifest, dict) else None
        layers = [
            x
            for x in (found if isinstance(found, list) else [])
            if isinstance(x, dict) and x.get("mediaType") == LAYER_TYPE
        ]
        if not layers:
            raise OciError(f"{ref.target} has no {LAYER_TYPE} layer: not an OPA bundle image")
        digest = layers[0].get("digest")
        if not isinstance(digest, str) or not digest.startswith("sha256:"):
            raise OciError(f"{ref.target}: the bundle layer has no sha256 digest")
        size = layers[0].get("size")
        if isinstance(size, int) and size > lim.max_size:
            raise _too_big(ref, "bundle layer", size, lim)
        blob = _get(reg, f"{base}/blobs/{digest}", "*/*", ref, "bundle layer", lim)
        return blob, digest
    except OciError:
        raise
    except Exception as e:  # requests/oras raise many kinds; one line for the user
        raise _fail("pull from", ref, e) from None
