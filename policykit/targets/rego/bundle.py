"""OPA bundles: build (deterministic gzip tar), check roots as OPA does, inspect.

A policykit bundle holds::

    .manifest                       revision, roots [<root>], rego_version 1, metadata
    <root>/params/data.json         parameters of every pack (data.<root>.params.<pack>)
    <root>/lib/*.rego               the helper library
    <root>/<pack>/policy.rego       one module per pack
    <root>/main/main.rego           entry points over every pack

Two builds of the same input are byte-identical: members sorted, mtime 0,
uid/gid 0, mode 0644, gzip header without name or time.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policykit import __version__
from policykit.errors import PolicykitError, SourceLoc
from policykit.ir.rule import Pack
from policykit.targets.rego.compiler import ROOT_RE, RegoOptions, compile_packs
from policykit.targets.rego.signing import SIGNATURES, sign

_PACKAGE_RE = re.compile(r"^package\s+([A-Za-z0-9_.\[\]\"]+)", re.M)
_RULE_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\(|\s+contains\b|\s*:=|\s+if\b)", re.M)
ENTRYPOINT_RULES = ("deny", "warn", "info", "violations", "batch")


class BundleError(PolicykitError):
    """A bundle that cannot be built, written or read (codes PK3xx)."""

    code = "PK300"


def check_root(root: str) -> str:
    if not ROOT_RE.match(root):
        raise BundleError(
            f"unknown root {root!r}: a root is a dotted Rego path such as policykit or acme.policy",
            hint="lower-case letters, digits and _ in each segment",
        )
    return root


def _segments(path: str) -> list[str]:
    return [s for s in path.strip("/").split("/") if s]


def _under(path: list[str], root: list[str]) -> bool:
    return path[: len(root)] == root


def validate_roots(
    roots: Sequence[str], modules: Mapping[str, str], data: Mapping[str, Any]
) -> None:
    """Refuse what OPA's bundle loader refuses: overlapping roots, and packages
    or data outside every root."""
    segs = [_segments(r) for r in roots]
    if not roots or any(not s for s in segs):
        raise BundleError(
            "a policykit bundle needs non-empty roots (an empty root owns all of data)"
        )
    for i, a in enumerate(segs):
        for b in segs[i + 1 :]:
            if _under(a, b) or _under(b, a):
                raise BundleError(f"manifest has overlapped roots: {'/'.join(a)} and {'/'.join(b)}")
    for path, text in modules.items():
        m = _PACKAGE_RE.search(text)
        if m is None:
            raise BundleError(f"module {path} has no package")
        pkg = m.group(1).split(".")
        if not any(_under(pkg, r) for r in segs):
            raise BundleError(
                f"module {path}: package {m.group(1)} is outside the bundle roots {list(roots)}"
            )

    def walk(node: Any, path: list[str]) -> None:
        if any(_under(path, r) for r in segs):
            return
        if not isinstance(node, dict) or not any(_under(r, path) for r in segs):
            raise BundleError(
                f"manifest roots {list(roots)} do not permit data at path {'/'.join(path) or '/'}"
            )
        for k, v in node.items():
            walk(v, [*path, k])

    walk(dict(data), [])


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass
class Bundle:
    """The files of a bundle, before or after packing."""

    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.files.get(".manifest", b"{}"))
        return data

    def modules(self) -> dict[str, str]:
        return {p: b.decode() for p, b in self.files.items() if p.endswith(".rego")}

    def data_files(self) -> dict[str, Any]:
        return {
            p: json.loads(b) for p, b in self.files.items() if p.rsplit("/", 1)[-1] == "data.json"
        }

    def pack(self) -> bytes:
        """The gzip tar, byte-for-byte reproducible."""
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(self.files):
                content = self.files[name]
                info = tarfile.TarInfo(name)
                info.size = len(content)
                info.mtime = 0
                info.mode = 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(content))
        out = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
            gz.write(raw.getvalue())
        return out.getvalue()

    @classmethod
    def unpack(cls, blob: bytes, name: str = "bundle") -> Bundle:
        files: dict[str, bytes] = {}
        try:
            with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    path = member.name.lstrip("/")
                    if path.startswith("./"):
                        path = path[2:]
                    if ".." in path.split("/"):
                        raise BundleError(
                            f"member {member.name!r} escapes the bundle", loc=SourceLoc(name)
                        )
                    f = tar.extractfile(member)
                    if f is None:
                        continue
                    if path in files:
                        raise BundleError(f"duplicate member {path!r}", loc=SourceLoc(name))
                    files[path] = f.read()
        except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as exc:
            raise BundleError(f"not a gzip tar bundle: {exc}", loc=SourceLoc(name)) from None
        return cls(files)


def build_bundle(
    packs: Sequence[Pack],
    params: Mapping[str, Mapping[str, Any]],
    *,
    root: str = "policykit",
    revision: str | None = None,
    signing: Signing | None = None,
    waivers: Sequence[Any] = (),
) -> Bundle:
    """Compile ``packs`` into a bundle (``params`` are the effective values),
    signed when ``signing`` is given."""
    opts = RegoOptions(root=check_root(root))
    base = root.replace(".", "/")
    modules = compile_packs(packs, opts)
    data = {p.name: dict(params.get(p.name, p.defaults())) for p in packs}
    files: dict[str, bytes] = {path: text.encode() for path, text in modules.items()}
    files[f"{base}/params/data.json"] = _canonical(data) + b"\n"
    data_tree: dict[str, Any] = {"params": data}
    items = waiver_data(waivers)
    if items:
        files[f"{base}/waivers/data.json"] = _canonical({"items": items}) + b"\n"
        data_tree["waivers"] = {"items": items}
    for seg in reversed(root.split(".")):
        data_tree = {seg: data_tree}
    validate_roots([base], modules, data_tree)
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + files[path] + b"\0")
    manifest = {
        "revision": revision if revision is not None else digest.hexdigest()[:32],
        "roots": [base],
        "rego_version": 1,
        "metadata": {
            "policykit": {
                "version": __version__,
                "packs": {p.name: p.version for p in packs},
            }
        },
    }
    files[".manifest"] = _canonical(manifest) + b"\n"
    if signing is not None:
        files[SIGNATURES] = sign(
            files, signing.key, alg=signing.alg, key_id=signing.key_id, scope=signing.scope
        )
    return Bundle(files)


@dataclass(frozen=True, slots=True)
class Signing:
    """How to sign a bundle: a private key (or HMAC secret) file and its JWS
    algorithm, optional key id and scope."""

    key: Path
    alg: str = "RS256"
    key_id: str | None = None
    scope: str | None = None


def write_atomic(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` through a temporary file: never a partial file."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as exc:
        raise BundleError(
            f"cannot write {path}: {exc.strerror or exc}",
            loc=SourceLoc(str(path)),
            hint="choose a writable --out path",
        ) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        Path(tmp).chmod(0o644)
        Path(tmp).replace(path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise BundleError(
            f"cannot write {path}: {exc.strerror or exc}",
            loc=SourceLoc(str(path)),
            hint="choose a writable --out path",
        ) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def inspect_bundle(bundle: Bundle) -> dict[str, Any]:
    """What ``policykit bundle inspect`` shows: manifest, roots, modules, entrypoints, data."""
    modules = []
    entrypoints = []
    for path, text in sorted(bundle.modules().items()):
        m = _PACKAGE_RE.search(text)
        pkg = m.group(1) if m else ""
        rules = sorted(set(_RULE_RE.findall(text)))
        modules.append({"path": path, "package": pkg, "rules": len(rules)})
        entrypoints += [f"{pkg.replace('.', '/')}/{r}" for r in rules if r in ENTRYPOINT_RULES]

    def leaves(node: Any, prefix: list[str]) -> list[str]:
        if isinstance(node, dict) and node and len(prefix) < 3:
            return [x for k in sorted(node) for x in leaves(node[k], [*prefix, k])]
        return ["/".join(prefix)]

    data_paths: list[str] = []
    for path, content in sorted(bundle.data_files().items()):
        base = _segments(path.rsplit("/", 1)[0]) if "/" in path else []
        data_paths += leaves(content, base)
    manifest = bundle.manifest
    return {
        "manifest": manifest,
        "roots": manifest.get("roots", [""]),
        "revision": manifest.get("revision", ""),
        "modules": modules,
        "entrypoints": sorted(entrypoints),
        "data": data_paths,
        "files": sorted(bundle.files),
    }


def waiver_data(waivers: Sequence[Any]) -> list[dict[str, Any]]:
    """Waivers as the bundle carries them (``data.<root>.waivers.items``): the
    entry points drop the findings they accept until ``expires_ns`` (the end of
    the last day, UTC). Waivers matching files cannot travel (no file at
    admission) and are left out."""
    out = []
    for w in waivers:
        if "file" in w.match:
            continue
        end = dt.datetime.combine(w.expires, dt.time(23, 59, 59), tzinfo=dt.UTC)
        out.append(
            {
                "rule": w.rule,
                "match": dict(sorted(w.match.items())),
                "expires_ns": int(end.timestamp()) * 1_000_000_000,
                "owner": w.owner,
                "reason": w.reason,
            }
        )
    return out
