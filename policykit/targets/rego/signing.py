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
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

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
        parts: list[str] = []
        try:
            value = json.loads(content, parse_float=_Number, parse_int=_Number)
            _canonical(value, parts)
        except (ValueError, UnicodeDecodeError) as e:
            raise SignatureError(f"{name} is not JSON: {e}") from None
        except RecursionError:
            raise SignatureError(f"{name} is nested too deeply") from None
        content = "".join(parts).encode("utf-8")
    return hashlib.sha256(content).hexdigest()


def _read_key(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise SignatureError(
            f"cannot read {what}: {e.strerror}", loc=SourceLoc(str(path))
        ) from None


_HMAC_MIN = {"HS256": 32, "HS384": 48, "HS512": 64}  # bytes (RFC 7518 section 3.2)
_CURVES = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def _family(key: Any) -> str:
    """``RSA``, ``EC`` or the key's type name."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RSA"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "EC"
    return type(key).__name__.lstrip("_")


def _fits(key: Any, alg: str, path: Path) -> None:
    """Refuse, naming the algorithm to use, a key that ``alg`` cannot use."""
    family = _family(key)
    if family == "RSA" and alg[:2] in ("RS", "PS"):
        return
    if family == "EC":
        want = _CURVES.get(key.curve.name)
        if want is None:
            raise SignatureError(
                f"the EC key uses curve {key.curve.name}, which JWS does not sign with",
                loc=SourceLoc(str(path)),
                hint="use a P-256, P-384 or P-521 key",
            )
        if alg == want:
            return
        raise SignatureError(
            f"the key is an EC {key.curve.name} key, which {alg} cannot use",
            loc=SourceLoc(str(path)),
            hint=f"pass --alg {want}",
        )
    hint = "pass --alg RS256 or PS256" if family == "RSA" else "use an RSA or EC key"
    raise SignatureError(
        f"the key is an {family} key, which {alg} cannot use", loc=SourceLoc(str(path)), hint=hint
    )


def _hmac_secret(data: bytes, alg: str, path: Path, what: str, *, signing: bool) -> str:
    loc = SourceLoc(str(path))
    if b"-----BEGIN" in data:
        raise SignatureError(
            f"{alg} takes a shared secret, but the {what} is a PEM key",
            loc=loc,
            hint="pass --alg RS256, PS256 or ES256 to match the key, or give the secret file",
        )
    try:
        secret = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SignatureError("the HMAC secret is not UTF-8 text", loc=loc) from None
    if signing and len(secret.encode()) < _HMAC_MIN[alg]:  # verifying: OPA accepts it
        raise SignatureError(
            f"the HMAC secret is {len(secret.encode())} bytes; {alg} needs at least "
            f"{_HMAC_MIN[alg]}",
            loc=loc,
            hint="use a longer random secret, e.g. openssl rand -hex 32",
        )
    return secret


def _signing_key(data: bytes, alg: str, path: Path) -> Any:
    """The private key (or HMAC secret) in ``data``, checked to fit ``alg``."""
    if alg.startswith("HS"):
        return _hmac_secret(data, alg, path, "signing key", signing=True)
    loc = SourceLoc(str(path))
    if b"PUBLIC KEY" in data or b"BEGIN CERTIFICATE" in data:
        raise SignatureError(
            "--sign-key is a public key or certificate; signing needs the private key",
            loc=loc,
            hint="give the private key PEM; its public key is for bundle verify and OPA",
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise SignatureError(
            "the private key is encrypted", loc=loc, hint="give an unencrypted PEM"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise SignatureError(
            f"not a PEM private key, which {alg} needs",
            loc=loc,
            hint="RS/PS: an RSA private key PEM; ES: an EC private key PEM; "
            "for an HMAC secret pass --alg HS256",
        ) from None
    _fits(key, alg, path)
    return key


def _verification_key(data: bytes, alg: str, path: Path) -> Any:
    if alg.startswith("HS"):
        return _hmac_secret(data, alg, path, "--key", signing=False)
    try:
        if b"BEGIN CERTIFICATE" in data:
            key: Any = x509.load_pem_x509_certificate(data).public_key()
        elif b"PRIVATE KEY" in data:  # OPA parses private-key PEMs too
            key = serialization.load_pem_private_key(data, password=None).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SignatureError(
            f"--key is not a PEM public key, certificate or private key, which {alg} needs",
            loc=SourceLoc(str(path)),
            hint="for an HMAC secret pass the bundle's --alg HS256, HS384 or HS512",
        ) from None
    _fits(key, alg, path)
    return key


def _quiet_jwt(fn: Any, *args: Any, strict: bool = True, **kwargs: Any) -> Any:
    """Call PyJWT with its warnings (which print site-packages paths) turned
    into errors reported as one line (``strict``) or silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("error" if strict else "ignore")
        try:
            return fn(*args, **kwargs)
        except Warning as w:
            raise SignatureError(f"refused: {w}") from None


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
    key = _signing_key(_read_key(key_path, "signing key"), alg, key_path)
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
        token = _quiet_jwt(jwt.encode, payload, key, algorithm=alg, headers=headers)
    except (ValueError, TypeError, AttributeError, jwt.PyJWTError) as e:
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
    except (ValueError, KeyError, TypeError, AssertionError, RecursionError):
        raise SignatureError(".signatures.json is malformed", loc=loc) from None
    if len(sigs) != 1:
        raise SignatureError(f"expected exactly one signature, found {len(sigs)}", loc=loc)
    token = sigs[0]
    try:
        signed_alg = jwt.get_unverified_header(token).get("alg") if isinstance(token, str) else None
    except jwt.PyJWTError:
        signed_alg = None
    if not isinstance(signed_alg, str):
        raise SignatureError(".signatures.json holds no readable JWS", loc=loc)
    if signed_alg != alg:
        hint = (
            f"pass --alg {signed_alg} with the key it was signed for"
            if signed_alg in ALGORITHMS
            else "policykit and OPA verify " + ", ".join(ALGORITHMS)
        )
        raise SignatureError(
            f"the bundle is signed with {signed_alg[:20]!r}, not {alg}", loc=loc, hint=hint
        )
    key = _verification_key(_read_key(key_path, "verification key"), alg, key_path)
    try:
        claims = _quiet_jwt(
            jwt.decode, token, key, strict=False, algorithms=[alg], options={"verify_aud": False}
        )
    except jwt.InvalidSignatureError:
        raise SignatureError(
            "signature does not verify with this key", loc=loc, hint=str(key_path)
        ) from None
    except (jwt.PyJWTError, ValueError, TypeError) as e:
        raise SignatureError(f"bad signature: {e}", loc=loc) from None
    if not isinstance(claims, dict):
        raise SignatureError("the signature's payload is not a JSON object", loc=loc)
    if (scope or "") != (claims.get("scope") or ""):
        raise SignatureError(
            f"scope {claims.get('scope')!r} does not match the expected {scope!r}", loc=loc
        )
    entries = claims.get("files", [])
    if not isinstance(entries, list) or not all(
        isinstance(f, dict) and isinstance(f.get("name"), str) for f in entries
    ):
        raise SignatureError("the signature's files claim is malformed", loc=loc)
    listed = {f["name"]: f for f in entries}
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
