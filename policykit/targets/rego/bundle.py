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
import stat
import tarfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from policykit import __version__
from policykit.errors import BundleError as BundleError
from policykit.errors import SourceLoc
from policykit.ir.rule import Pack
from policykit.safeio import write_atomic as write_atomic  # moved; importers: policykit.safeio
from policykit.targets.rego.compiler import ROOT_RE, RegoOptions, compile_packs

SIGNATURES = ".signatures.json"  # as policykit.targets.rego.signing (imported when signing)

_PACKAGE_RE = re.compile(r"^package\s+([A-Za-z0-9_.\[\]\"]+)", re.M)
_RULE_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\(|\s+contains\b|\s*:=|\s+if\b)", re.M)
ENTRYPOINT_RULES = ("deny", "warn", "info", "violations", "batch", "decision")


def check_root(root: str) -> str:
    if not ROOT_RE.fullmatch(root):
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
    def unpack(cls, blob: bytes, name: str = "bundle", limits: Limits | None = None) -> Bundle:
        """The files of a gzip tar bundle, read as a stream within ``limits``: no
        member or total beyond its size, no more members than allowed; then
        checked as OPA would load them (see :func:`check_contents`)."""
        lim = limits or Limits.from_env()
        loc = SourceLoc(name)
        files: dict[str, bytes] = {}
        count = 0
        try:
            raw = gzip.GzipFile(fileobj=io.BytesIO(blob), mode="rb")
            stream = _Capped(raw, lim.total_size, loc)
            with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    count += 1
                    if count > lim.members:
                        raise BundleError(
                            f"more than {lim.members} members",
                            loc=loc,
                            hint="POLICYKIT_BUNDLE_MAX_FILES raises the limit",
                        )
                    if not member.isfile():
                        continue
                    if member.size > lim.member_size:
                        raise BundleError(
                            f"member {member.name!r} is {member.size} bytes, over the limit "
                            f"of {lim.member_size}",
                            loc=loc,
                            hint="POLICYKIT_BUNDLE_MAX_FILE raises the limit",
                        )
                    path = member.name.lstrip("/")
                    if path.startswith("./"):
                        path = path[2:]
                    try:
                        path.encode("utf-8")
                    except UnicodeEncodeError:
                        raise BundleError(
                            f"member name {member.name!r} is not UTF-8", loc=loc
                        ) from None
                    if ".." in path.split("/"):
                        raise BundleError(f"member {member.name!r} escapes the bundle", loc=loc)
                    f = tar.extractfile(member)
                    if f is None:
                        continue
                    if path in files:
                        raise BundleError(f"duplicate member {path!r}", loc=loc)
                    files[path] = f.read()
        except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise BundleError(f"not a gzip tar bundle: {exc}", loc=loc) from None
        check_contents(files, name, lim.json_depth)
        return cls(files)

    @classmethod
    def read(cls, path: Path, limits: Limits | None = None) -> Bundle:
        """The bundle in the regular file ``path`` (no FIFO, device or file over
        the size limit), unpacked within ``limits``."""
        lim = limits or Limits.from_env()
        return cls.unpack(read_limited(path, lim.total_size), str(path), lim)


_HINT_TOTAL = "POLICYKIT_BUNDLE_MAX_TOTAL raises the limit"
_HINT_DEPTH = "POLICYKIT_BUNDLE_MAX_DEPTH raises the limit"
MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """What reading a bundle accepts. Defaults suit any policy bundle; the
    environment (``POLICYKIT_BUNDLE_MAX_FILE``, ``_MAX_TOTAL``, ``_MAX_FILES``,
    ``_MAX_DEPTH``) raises or lowers them."""

    member_size: int = 64 * MiB  # one file, uncompressed
    total_size: int = 256 * MiB  # the whole tar, uncompressed (and the .tar.gz file)
    members: int = 10_000
    json_depth: int = 256  # nesting of .manifest, data.json, .signatures.json

    @classmethod
    def from_env(cls) -> Limits:
        out = cls()
        for field_name, var in (
            ("member_size", "POLICYKIT_BUNDLE_MAX_FILE"),
            ("total_size", "POLICYKIT_BUNDLE_MAX_TOTAL"),
            ("members", "POLICYKIT_BUNDLE_MAX_FILES"),
            ("json_depth", "POLICYKIT_BUNDLE_MAX_DEPTH"),
        ):
            text = os.environ.get(var)
            if text is None or not text.strip():
                continue
            try:
                value = int(text.strip())
                if value <= 0:
                    raise ValueError
            except ValueError:
                raise BundleError(
                    f"{var}={text!r} is not a positive whole number", hint="unset it or fix it"
                ) from None
            out = replace(out, **{field_name: value})
        return out


class _Capped:
    """A readable stream that refuses to yield more than ``limit`` bytes: a
    small gzip expanding into gigabytes stops at the limit, memory bounded."""

    def __init__(self, raw: Any, limit: int, loc: SourceLoc) -> None:
        self.raw = raw
        self.limit = limit
        self.loc = loc
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        room = self.limit - self.count + 1
        data: bytes = self.raw.read(room if size is None or size < 0 else min(size, room))
        self.count += len(data)
        if self.count > self.limit:
            raise BundleError(
                f"uncompressed over the limit of {self.limit} bytes", loc=self.loc, hint=_HINT_TOTAL
            )
        return data


def read_limited(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, refused beyond ``limit`` bytes
    (a FIFO, a device or ``/dev/zero`` is refused without reading)."""
    loc = SourceLoc(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise BundleError(f"cannot read bundle: {exc.strerror}", loc=loc) from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BundleError("not a regular file", loc=loc)
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise BundleError(f"cannot read bundle: {exc.strerror}", loc=loc) from None
    if len(data) > limit:
        raise BundleError(f"larger than the limit of {limit} bytes", loc=loc, hint=_HINT_TOTAL)
    return data


def load_json(content: bytes, what: str, loc: SourceLoc, max_depth: int) -> Any:
    """``content`` parsed as JSON, nested at most ``max_depth`` deep; anything
    else one :class:`BundleError`."""
    try:
        value = json.loads(content)
    except RecursionError:
        raise BundleError(
            f"{what} is nested deeper than {max_depth}", loc=loc, hint=_HINT_DEPTH
        ) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, over-long ints
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BundleError(f"{what} is not valid JSON: {text}", loc=loc) from None
    if json_depth(value) > max_depth:
        raise BundleError(f"{what} is nested deeper than {max_depth}", loc=loc, hint=_HINT_DEPTH)
    return value


def json_depth(value: Any) -> int:
    """How deep containers nest in ``value`` (a scalar is 0), without recursion."""
    deepest = 0
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, depth + 1)
            todo.extend((x, depth + 1) for x in node if isinstance(x, (dict, list)))
    return deepest


def check_contents(files: Mapping[str, bytes], name: str, max_depth: int) -> None:
    """Refuse, one line each, what OPA's loader refuses: a ``.manifest`` that is
    not a JSON object, a ``data.json`` that is not JSON, Rego that is not UTF-8,
    JSON nested deeper than ``max_depth``; roots that overlap, or modules and
    data outside the roots (:func:`validate_roots`, when the manifest names
    roots)."""
    roots: list[str] = []
    for path in sorted(files):
        loc = SourceLoc(f"{name}:{path}")
        content = files[path]
        base = path.rsplit("/", 1)[-1]
        if path == ".manifest":
            manifest = load_json(content, ".manifest", loc, max_depth)
            if not isinstance(manifest, dict):
                raise BundleError(".manifest is not a JSON object", loc=loc)
            roots = manifest.get("roots", [])
            if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
                raise BundleError(".manifest roots is not a list of strings", loc=loc)
            if not isinstance(manifest.get("revision", ""), str):
                raise BundleError(".manifest revision is not a string", loc=loc)
            if not isinstance(manifest.get("metadata", {}), dict):
                raise BundleError(".manifest metadata is not an object", loc=loc)
        elif base in ("data.json", SIGNATURES):
            load_json(content, base, loc, max_depth)
        elif path.endswith(".rego"):
            try:
                content.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BundleError(f"Rego module is not UTF-8 (byte {exc.start})", loc=loc) from None
    if roots and all(roots):  # an empty root owns all of data: nothing to hold to
        modules = {p: c.decode("utf-8") for p, c in files.items() if p.endswith(".rego")}
        tree: dict[str, Any] = {}
        for p, c in files.items():
            if p.rsplit("/", 1)[-1] != "data.json":
                continue
            node = tree
            for seg in p.split("/")[:-1]:
                node = node.setdefault(seg, {})
            value = load_json(c, "data.json", SourceLoc(f"{name}:{p}"), max_depth)
            if isinstance(value, dict):
                node.update(value)
        try:
            validate_roots(roots, modules, tree)
        except BundleError as exc:
            raise BundleError(exc.message, loc=SourceLoc(f"{name}:.manifest")) from None


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
        from policykit.targets.rego.signing import sign  # jwt, cryptography: only to sign

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
    meta = manifest.get("metadata", {}).get("policykit")
    ours: dict[str, Any] = {}
    if isinstance(meta, dict):
        packs = meta.get("packs")
        ours = {
            "version": str(meta.get("version", "?")),
            "packs": {str(k): str(v) for k, v in packs.items()} if isinstance(packs, dict) else {},
        }
    return {
        "manifest": manifest,
        "policykit": ours,
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
