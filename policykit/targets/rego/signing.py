"""OPA bundle signatures: ``.signatures.json`` as OPA writes and verifies it.

* One compact JWS (PyJWT) whose payload lists every file of the bundle as
  ``{name, hash, algorithm}`` (``SHA-256``), plus ``keyid`` when a key id is
  given and ``scope`` when one is; the header carries ``kid``. No ``iat``: the
  same bundle and key give the same ``.signatures.json`` (for RS/HS algorithms;
  ES and PS signatures are randomised by their algorithms).
* Hashes follow OPA's ``bundle/hash.go``: files named ``data.json`` or
  ``.manifest`` are parsed and hashed as canonical JSON (keys sorted, no
  whitespace, numbers as written, Go string escaping without HTML escapes);
  every other file is hashed as raw bytes.
* Verification fails on any modified, added or removed file, on a wrong key,
  a wrong algorithm, a scope mismatch, and on zero or several signatures.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from policykit.errors import PolicykitError, SourceLoc

SIGNATURES = ".signatures.json"
STRUCTURED = {"data.json", ".manifest"}  # data.yaml is refused
ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "HS256", "HS384", "HS512",
)  # fmt: skip


class SignatureError(PolicykitError):
    """A bundle signature that cannot be made or does not verify."""

    code = "PK301"


class _Number(str):
    """A JSON number kept as the text it was written with (Go's json.Number)."""


def _go_string(s: str) -> str:
    # Go's encoding/json with SetEscapeHTML(false): like Python's ensure_ascii=False
    # except that U+2028/U+2029 are escaped and invalid UTF-16 becomes U+FFFD
    clean = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in s)
    return (
        json.dumps(clean, ensure_ascii=False)
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _canonical(v: Any, out: list[str]) -> None:
    if isinstance(v, dict):
        out.append("{")
        for i, key in enumerate(sorted(v, key=lambda k: k.encode("utf-8", "surrogatepass"))):
            if i:
                out.append(",")
            out.append(_go_string(key))
            out.append(":")
            _canonical(v[key], out)
        out.append("}")
    elif isinstance(v, list):
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            _canonical(item, out)
        out.append("]")
    elif isinstance(v, _Number):
        out.append(str.__str__(v))
    elif isinstance(v, str):
        out.append(_go_string(v))
    else:  # true, false, null
        out.append(json.dumps(v))


def file_hash(name: str, content: bytes) -> str:
    """The SHA-256 digest OPA computes for a bundle file."""
    base = name.rsplit("/", 1)[-1]
    if base == "data.yaml":
        raise SignatureError(f"{name}: data.yaml is not supported; use data.json")
    if base in STRUCTURED:
        try:
            value = json.loads(content, parse_float=_Number, parse_int=_Number)
        except (ValueError, UnicodeDecodeError) as e:
            raise SignatureError(f"{name} is not JSON: {e}") from None
        parts: list[str] = []
        _canonical(value, parts)
        content = "".join(parts).encode("utf-8")
    return hashlib.sha256(content).hexdigest()


def _read_key(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise SignatureError(
            f"cannot read {what}: {e.strerror}", loc=SourceLoc(str(path))
        ) from None


def _verification_key(data: bytes, alg: str) -> Any:
    if alg.startswith("HS"):
        return data.decode("utf-8").strip()
    if b"BEGIN CERTIFICATE" in data:
        return x509.load_pem_x509_certificate(data).public_key()
    if b"PRIVATE KEY" in data:  # OPA parses private-key PEMs too
        return serialization.load_pem_private_key(data, password=None).public_key()
    return serialization.load_pem_public_key(data)


def sign(
    files: Mapping[str, bytes],
    key_path: Path,
    *,
    alg: str = "RS256",
    key_id: str | None = None,
    scope: str | None = None,
) -> bytes:
    """The ``.signatures.json`` covering ``files`` (its own name excluded)."""
    if alg not in ALGORITHMS:
        raise SignatureError(f"unknown signing algorithm {alg!r}", hint=", ".join(ALGORITHMS))
    raw = _read_key(key_path, "signing key")
    key: Any = raw.decode("utf-8").strip() if alg.startswith("HS") else raw
    payload: dict[str, Any] = {
        "files": [
            {"name": name, "hash": file_hash(name, files[name]), "algorithm": "SHA-256"}
            for name in sorted(files)
            if name != SIGNATURES
        ]
    }
    if key_id:
        payload["keyid"] = key_id
    if scope:
        payload["scope"] = scope
    headers = {"kid": key_id} if key_id else None
    try:
        token = jwt.encode(payload, key, algorithm=alg, headers=headers)
    except (ValueError, TypeError, jwt.PyJWTError) as e:
        raise SignatureError(
            f"cannot sign with {key_path} as {alg}: {e}",
            hint="RS/PS: an RSA private key PEM; ES: an EC private key PEM; HS: a secret",
        ) from None
    return (json.dumps({"signatures": [token]}, sort_keys=True) + "\n").encode()


def verify(
    files: Mapping[str, bytes],
    key_path: Path,
    *,
    alg: str = "RS256",
    scope: str | None = None,
    bundle_name: str = "bundle",
) -> int:
    """Check ``files`` (a bundle's members) against its signature; the number of
    files verified. Raises :class:`SignatureError` naming what is wrong."""
    loc = SourceLoc(bundle_name)
    if SIGNATURES not in files:
        raise SignatureError("the bundle is not signed (no .signatures.json)", loc=loc)
    try:
        sigs = json.loads(files[SIGNATURES])["signatures"]
        assert isinstance(sigs, list)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise SignatureError(".signatures.json is malformed", loc=loc) from None
    if len(sigs) != 1:
        raise SignatureError(f"expected exactly one signature, found {len(sigs)}", loc=loc)
    key = _verification_key(_read_key(key_path, "verification key"), alg)
    try:
        claims = jwt.decode(sigs[0], key, algorithms=[alg], options={"verify_aud": False})
    except jwt.InvalidSignatureError:
        raise SignatureError(
            "signature does not verify with this key", loc=loc, hint=str(key_path)
        ) from None
    except jwt.PyJWTError as e:
        raise SignatureError(f"bad signature: {e}", loc=loc) from None
    if (scope or "") != (claims.get("scope") or ""):
        raise SignatureError(
            f"scope {claims.get('scope')!r} does not match the expected {scope!r}", loc=loc
        )
    listed = {f["name"]: f for f in claims.get("files", [])}
    present = {n for n in files if n != SIGNATURES}
    for name in sorted(present - set(listed)):
        raise SignatureError(f"file {name} is not covered by the signature (added)", loc=loc)
    for name in sorted(set(listed) - present):
        raise SignatureError(f"file {name} is signed but missing (removed)", loc=loc)
    for name in sorted(present):
        entry = listed[name]
        if entry.get("algorithm") != "SHA-256":
            raise SignatureError(
                f"file {name}: unsupported digest {entry.get('algorithm')}", loc=loc
            )
        if file_hash(name, files[name]) != entry.get("hash"):
            raise SignatureError(f"file {name} was modified after signing", loc=loc)
    return len(present)
