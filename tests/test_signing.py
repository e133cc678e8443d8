"""Signed bundles: ``.signatures.json`` as OPA writes it (one JWS, a hash per
file, canonical JSON for .manifest and data.json), ``bundle verify`` catching
every modified, added or removed file and a wrong key; determinism."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from policykit.cli.main import cli
from policykit.targets.rego.bundle import Bundle
from policykit.targets.rego.signing import SignatureError, file_hash, verify

ROOT_FILES = (".manifest", "policykit/params/data.json")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    d = tmp_path_factory.mktemp("keys")
    out = {}
    for name, priv in (
        ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ES256", ec.generate_private_key(ec.SECP256R1())),
        ("other", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    ):
        p, q = d / f"{name}.pem", d / f"{name}.pub"
        p.write_bytes(
            priv.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        q.write_bytes(
            priv.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        out[name] = (p, q)
    secret = d / "hs.secret"
    secret.write_text("an-hmac-secret-of-at-least-32-bytes!!!\n")
    out["HS256"] = (secret, secret)
    return out


def _build(tmp: Path, *args: str) -> Path:
    out = tmp / "bundle.tar.gz"
    r = CliRunner().invoke(cli, ["build", "--target", "rego", "--out", str(out), *args])
    assert r.exit_code == 0, r.output
    return out


def _verify(bundle: Path, key: Path, *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["bundle", "verify", str(bundle), "--key", str(key), *args])
    return r.exit_code, r.output


@pytest.mark.parametrize("alg", ["RS256", "ES256", "HS256"])
def test_sign_and_verify(tmp_path: Path, keys: dict[str, tuple[Path, Path]], alg: str) -> None:
    priv, pub = keys[alg]
    bundle = _build(tmp_path, "--sign-key", str(priv), "--alg", alg, "--key-id", "ci")
    code, out = _verify(bundle, pub, "--alg", alg)
    assert code == 0 and "signature verified" in out, out
    files = Bundle.unpack(bundle.read_bytes()).files
    sig = json.loads(files[".signatures.json"])
    assert list(sig) == ["signatures"] and len(sig["signatures"]) == 1
    header_b64, payload_b64, _ = sig["signatures"][0].split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    header = json.loads(base64.urlsafe_b64decode(pad(header_b64)))
    payload = json.loads(base64.urlsafe_b64decode(pad(payload_b64)))
    assert header["alg"] == alg and header["kid"] == "ci" and payload["keyid"] == "ci"
    names = [f["name"] for f in payload["files"]]
    assert names == sorted(n for n in files if n != ".signatures.json")
    assert all(
        f["algorithm"] == "SHA-256" and not f["name"].startswith("/") for f in payload["files"]
    )
    assert "iat" not in payload


def test_rs256_signed_bundles_are_byte_identical(
    tmp_path: Path, keys: dict[str, tuple[Path, Path]]
) -> None:
    priv, _ = keys["RS256"]
    a = _build(tmp_path / "a", "--sign-key", str(priv)).read_bytes()
    b = _build(tmp_path / "b", "--sign-key", str(priv)).read_bytes()
    assert a == b


def test_every_tampering_is_detected(tmp_path: Path, keys: dict[str, tuple[Path, Path]]) -> None:
    priv, pub = keys["RS256"]
    signed = Bundle.unpack(_build(tmp_path, "--sign-key", str(priv)).read_bytes()).files
    assert verify(signed, pub) == len(signed) - 1
    members = [n for n in signed if n != ".signatures.json"]
    assert set(ROOT_FILES) <= set(members) and len(members) >= 4
    for name in members:  # modify each file in turn
        files = dict(signed)
        if name.endswith(".rego"):
            files[name] = files[name] + b"\n# tampered\n"
        else:
            doc = json.loads(files[name])
            doc["tampered"] = True
            files[name] = json.dumps(doc).encode()
        with pytest.raises(SignatureError, match=f"file {name} was modified"):
            verify(files, pub)
    with pytest.raises(SignatureError, match="added"):
        verify({**signed, "policykit/evil.rego": b"package policykit.evil\n"}, pub)
    for name in members:
        files = {k: v for k, v in signed.items() if k != name}
        with pytest.raises(SignatureError, match=f"file {name} is signed but missing"):
            verify(files, pub)
    with pytest.raises(SignatureError, match="does not verify"):
        verify(signed, keys["other"][1])
    with pytest.raises(SignatureError, match="not signed"):
        verify({k: v for k, v in signed.items() if k != ".signatures.json"}, pub)
    two = json.dumps({"signatures": [json.loads(signed[".signatures.json"])["signatures"][0]] * 2})
    with pytest.raises(SignatureError, match="exactly one"):
        verify({**signed, ".signatures.json": two.encode()}, pub)
    with pytest.raises(SignatureError, match="scope"):
        verify(signed, pub, scope="prod")


def test_cli_tampered_bundle_is_one_line_exit_2(
    tmp_path: Path, keys: dict[str, tuple[Path, Path]]
) -> None:
    priv, pub = keys["RS256"]
    bundle = _build(tmp_path, "--sign-key", str(priv))
    files = Bundle.unpack(bundle.read_bytes()).files
    mod = next(n for n in files if n.endswith(".rego"))
    files[mod] += b"\n"
    bundle.write_bytes(Bundle(files).pack())
    code, out = _verify(bundle, pub)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "PK301" in lines[0] and mod in lines[0], out
    code, out = _verify(bundle, keys["ES256"][1], "--alg", "ES256")
    assert code == 2


def test_structured_hash_is_canonical_like_opa() -> None:
    # formatting and key order do not matter; numbers keep their text; no HTML escaping
    a = b'{"b": 1.50, "a": ["<x>", "\\u2028", 10]}'
    b = b'{"a":["<x>","\\u2028",10],"b":1.50}'
    assert file_hash("x/data.json", a) == file_hash("y/data.json", b)
    import hashlib

    canonical = b'{"a":["<x>","\\u2028",10],"b":1.50}'
    assert file_hash("data.json", a) == hashlib.sha256(canonical).hexdigest()
    assert file_hash("data.json", a) != file_hash(
        "data.json", b'{"a":["<x>","\\u2028",10],"b":1.5}'
    )
    # anything else is hashed as raw bytes
    assert file_hash("p.rego", a) == hashlib.sha256(a).hexdigest()
    with pytest.raises(SignatureError):
        file_hash("data.yaml", b"a: 1")


def test_bad_signing_key_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    r = CliRunner().invoke(
        cli, ["build", "--target", "rego", "--out", str(tmp_path / "b.tgz"), "--sign-key", str(bad)]
    )
    assert r.exit_code == 2 and "PK301" in r.output
    assert not (tmp_path / "b.tgz").exists()


def _build_result(tmp: Path, *args: str) -> tuple[int, list[str]]:
    out = tmp / "signed.tar.gz"
    r = CliRunner().invoke(cli, ["build", "--target", "rego", "--out", str(out), *args])
    assert r.exit_code != 0 or out.exists()
    return r.exit_code, [ln for ln in r.output.splitlines() if ln.strip()]


def test_wrong_signing_keys_say_what_to_do(
    tmp_path: Path, keys: dict[str, tuple[Path, Path]], recwarn: pytest.WarningsRecorder
) -> None:
    short = tmp_path / "short.secret"
    short.write_text("short\n")
    cases = [
        (["--sign-key", str(keys["RS256"][1])], "is a public key or certificate"),
        (["--sign-key", str(keys["ES256"][0])], "RS256 cannot use (pass --alg ES256)"),
        (["--sign-key", str(keys["ES256"][0]), "--alg", "ES384"], "(pass --alg ES256)"),
        (["--sign-key", str(keys["RS256"][0]), "--alg", "ES256"], "pass --alg RS256"),
        (["--sign-key", str(keys["RS256"][0]), "--alg", "HS256"], "takes a shared secret"),
        (["--sign-key", str(keys["HS256"][0])], "for an HMAC secret pass --alg HS256"),
        (["--sign-key", str(short), "--alg", "HS256"], "5 bytes; HS256 needs at least 32"),
    ]
    for args, message in cases:
        code, lines = _build_result(tmp_path, *args)
        assert code == 2 and len(lines) == 1 and "PK301" in lines[0], (args, lines)
        assert message in lines[0] and "generator object" not in lines[0], (args, lines)
        assert not (tmp_path / "signed.tar.gz").exists()
    assert not [w for w in recwarn if "jwt" in str(w.filename)]


def test_wrong_algorithm_or_key_at_verify_says_what_to_do(
    tmp_path: Path, keys: dict[str, tuple[Path, Path]]
) -> None:
    hs = _build(tmp_path / "hs", "--sign-key", str(keys["HS256"][0]), "--alg", "HS256")
    code, out = _verify(hs, keys["HS256"][1])  # no --alg: RS256 expected
    assert code == 2 and out.count("\n") == 1, out
    assert "signed with 'HS256', not RS256 (pass --alg HS256" in out
    rs = _build(tmp_path / "rs", "--sign-key", str(keys["RS256"][0]))
    for args, message in [
        (["--alg", "RS512"], "signed with 'RS256', not RS512 (pass --alg RS256"),
        (["--alg", "HS256"], "signed with 'RS256', not HS256 (pass --alg RS256"),
    ]:
        code, out = _verify(rs, keys["RS256"][1], *args)
        assert code == 2 and out.count("\n") == 1 and message in out, out
    code, out = _verify(rs, keys["ES256"][1])
    assert code == 2 and out.count("\n") == 1 and "EC secp256r1 key, which RS256" in out, out
    code, out = _verify(rs, keys["HS256"][1])
    assert code == 2 and out.count("\n") == 1 and "not a PEM public key" in out, out


def test_a_short_hmac_secret_verifies_without_a_pyjwt_warning(
    tmp_path: Path, keys: dict[str, tuple[Path, Path]]
) -> None:
    short = tmp_path / "short.secret"
    short.write_text("short\n")
    files = Bundle.unpack(_build(tmp_path, "--sign-key", str(keys["RS256"][0])).read_bytes()).files
    payload = {"files": [{"name": n, "hash": file_hash(n, b), "algorithm": "SHA-256"}
                         for n, b in files.items() if n != ".signatures.json"]}  # fmt: skip
    import warnings

    import jwt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        token = jwt.encode(payload, "short", algorithm="HS256")
    files[".signatures.json"] = json.dumps({"signatures": [token]}).encode()
    bundle = tmp_path / "short.tar.gz"
    bundle.write_bytes(Bundle(files).pack())
    r = subprocess.run(
        [sys.executable, "-m", "policykit", "bundle", "verify", str(bundle), "--key", str(short),
         "--alg", "HS256"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0 and r.stderr == "", r.stderr
