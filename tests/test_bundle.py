"""OPA bundles: reproducible bytes, manifest, roots as OPA enforces them, safe writes,
inspect, and real OPA evaluating the bundle as its loader would."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from policykit.cli.main import cli
from policykit.engines.native import NativeEngine
from policykit.engines.rego import load_opa
from policykit.loader import load_paths
from policykit.packs import load_packs
from policykit.targets.rego.bundle import (
    Bundle,
    BundleError,
    Limits,
    build_bundle,
    inspect_bundle,
    validate_roots,
    write_atomic,
)
from tests.conftest import ROOT

PACKS = ["policykit.packs.starter", str(ROOT / "examples/packs/acme.py")]


def _bundle(root: str = "policykit", revision: str | None = None) -> Bundle:
    packs = load_packs(PACKS)
    return build_bundle(packs, NativeEngine(packs).effective_params, root=root, revision=revision)


def test_two_builds_are_byte_identical_and_members_are_normalised() -> None:
    a, b = _bundle().pack(), _bundle().pack()
    assert a == b
    assert a[4:8] == b"\0\0\0\0"  # gzip header mtime 0
    with tarfile.open(fileobj=io.BytesIO(a), mode="r:gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.mode == 0o644 for m in members)


def test_manifest_and_layout() -> None:
    bundle = _bundle()
    m = bundle.manifest
    assert m["roots"] == ["policykit"]
    assert m["rego_version"] == 1
    assert m["metadata"]["policykit"]["packs"] == {"starter": "0.1.0", "acme": "1.2.0"}
    assert len(m["revision"]) == 32  # content digest by default
    assert _bundle(revision="git-abc").manifest["revision"] == "git-abc"
    assert "policykit/params/data.json" in bundle.files
    params = json.loads(bundle.files["policykit/params/data.json"])
    assert params["acme"]["cpu_hour_usd"] == 0.031
    assert {
        "policykit/starter/policy.rego",
        "policykit/main/main.rego",
        "policykit/lib/values.rego",
    } <= set(bundle.files)
    assert not any(p.endswith("_test.rego") for p in bundle.files)


def test_revision_digest_changes_with_content() -> None:
    packs = load_packs(PACKS)
    params = NativeEngine(packs).effective_params
    params["acme"] = {**params["acme"], "monthly_cpu_budget_usd": 99}
    other = build_bundle(packs, params)
    assert other.manifest["revision"] != _bundle().manifest["revision"]


@pytest.mark.parametrize("revision", ["v1\nmain", "v1\r", "v1\x1b[31m", "v1\x00"])
def test_a_revision_with_a_control_character_is_refused(tmp_path: Path, revision: str) -> None:
    """A line break in --revision was written into .manifest and printed into
    build's one-line summary, splitting it; it is one error line, exit 2, and
    nothing is written."""
    out = tmp_path / "b.tar.gz"
    args = ["build", "--pack", "policykit.packs.starter", "--out", str(out)]
    r = CliRunner().invoke(cli, [*args, "--revision", revision])
    assert r.exit_code == 2 and not out.exists(), r.output
    assert r.stderr.count("\n") == 1 and "PK002 revision" in r.stderr, r.stderr
    ok = CliRunner().invoke(cli, [*args, "--revision", "v1 déjà-vu"])
    assert ok.exit_code == 0 and out.exists(), ok.output


def test_custom_root_moves_every_package_and_data() -> None:
    bundle = _bundle(root="acme.policy")
    assert bundle.manifest["roots"] == ["acme/policy"]
    for path, text in bundle.modules().items():
        assert path.startswith("acme/policy/")
        assert "package acme.policy." in text
        assert "data.policykit." not in text
    assert "acme/policy/params/data.json" in bundle.files


@pytest.mark.parametrize("root", ["", "Bad", "a..b", "a/b", "1x", "x.", "in valid"])
def test_unknown_root_is_refused(root: str) -> None:
    with pytest.raises(BundleError, match="unknown root"):
        _bundle(root=root)


def test_roots_are_enforced_as_opa_does() -> None:
    mod = {"a.rego": "package policykit.x\n"}
    validate_roots(["policykit"], mod, {"policykit": {"params": {}}})
    with pytest.raises(BundleError, match="outside the bundle roots"):
        validate_roots(["policykit"], {"b.rego": "package other.x\n"}, {})
    with pytest.raises(BundleError, match="do not permit data"):
        validate_roots(["policykit"], mod, {"policykit": {}, "other": {"x": 1}})
    with pytest.raises(BundleError, match="overlapped roots"):
        validate_roots(["a/b", "a/b/c"], {}, {})
    validate_roots(["a/b", "a/bc"], {}, {})  # segment-wise: a/b does not contain a/bc
    with pytest.raises(BundleError, match="non-empty roots"):
        validate_roots([""], {}, {})


def test_real_opa_evaluates_the_bundle_like_its_loader(tmp_path: Path) -> None:
    blob = _bundle().pack()
    bundle = Bundle.unpack(blob)
    opa = load_opa().OpaEngine()
    for path, text in bundle.modules().items():
        opa.add_policy(path, text)
    for path, data in bundle.data_files().items():  # data.json lands at its directory's path
        opa.add_data(data, ".".join(path.rsplit("/", 1)[0].split("/")))
    docs = load_paths([str(ROOT / "examples")]).documents
    got = opa.eval_document("policykit.main.batch", {"objects": [d.obj for d in docs]})
    packs = load_packs(PACKS)
    native = NativeEngine(packs)
    for doc, findings in zip(docs, got, strict=True):
        want = sorted((f.rule, f.message) for f in native.evaluate(doc))
        assert sorted((f["id"], f["msg"]) for f in findings) == want
    # one object as input, as at admission: deny/warn sets of the pack
    search = next(
        d
        for d in docs
        if d.obj["metadata"]["name"] == "search-indexer" and d.obj["kind"] == "Deployment"
    )
    deny = opa.eval_document("policykit.starter.deny", search.obj)
    assert {f["id"] for f in deny} == {"K8S-001", "K8S-002"}


def test_atomic_write_leaves_nothing_partial(tmp_path: Path) -> None:
    target = tmp_path / "out" / "b.tar.gz"
    write_atomic(target, b"data")
    assert target.read_bytes() == b"data"
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro, os.W_OK):  # running as root: use a path under a file instead
        ro = tmp_path / "afile"
        ro.write_text("x")
    with pytest.raises(BundleError, match="cannot write"):
        write_atomic(ro / "b.tar.gz", b"data")
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith(".b.tar.gz")]
    assert not leftovers


def test_output_that_is_not_a_regular_file_is_written_not_replaced(tmp_path: Path) -> None:
    """``-o /dev/null``, ``--out /dev/stdout`` or a FIFO: written as it is (it
    was replaced by a regular file, a device node of a CI container
    included); a symbolic link stays a link and its target is replaced."""
    import stat
    import threading

    to_null = tmp_path / "to-null"
    to_null.symlink_to("/dev/null")
    write_atomic(to_null, b"data")
    assert to_null.is_symlink() and stat.S_ISCHR(Path("/dev/null").stat().st_mode)

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_atomic(fifo, b"through the pipe")
    reader.join(10)
    assert got == [b"through the pipe"] and stat.S_ISFIFO(fifo.stat().st_mode)

    real = tmp_path / "reports" / "real.json"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "latest.json"
    link.symlink_to(real)
    write_atomic(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "reports" / "made.json")
    write_atomic(dangling, b"made")
    assert dangling.is_symlink() and (tmp_path / "reports" / "made.json").read_bytes() == b"made"
    assert not list(tmp_path.rglob(".*"))  # no temporary file left


def test_output_to_the_processs_own_stdout_appends_to_it(tmp_path: Path) -> None:
    """``-o /dev/stdout >> log``: the report goes to the stream itself (it
    replaced the log file through the link, losing what it held)."""
    import subprocess
    import sys

    log = tmp_path / "log"
    log.write_text("before\n")
    code = (
        "import sys; from pathlib import Path; from policykit.safeio import write_atomic; "
        "print('printed', flush=True); write_atomic(Path('/dev/stdout'), b'report\\n'); "
        "print('after')"
    )
    with log.open("a") as out:
        subprocess.run([sys.executable, "-c", code], stdout=out, check=True, timeout=60)
    assert log.read_text() == "before\nprinted\nreport\nafter\n"
    assert not [p for p in tmp_path.iterdir() if p.name != "log"]


def test_tampered_or_garbage_bundles_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a gzip tar"):
        Bundle.unpack(b"not a bundle", "x.tar.gz")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo("../evil.rego")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(BundleError, match="escapes the bundle"):
        Bundle.unpack(raw.getvalue(), "evil.tar.gz")


def test_inspect_shows_manifest_roots_modules_entrypoints_data() -> None:
    info = inspect_bundle(Bundle.unpack(_bundle().pack()))
    assert info["roots"] == ["policykit"]
    assert "policykit/main/batch" in info["entrypoints"]
    assert "policykit/starter/deny" in info["entrypoints"]
    assert "policykit/acme/warn" in info["entrypoints"]
    assert "policykit/params/acme" in info["data"]
    assert {m["package"] for m in info["modules"]} >= {"policykit.starter", "policykit.lib.values"}


def test_cli_build_inspect_and_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    old = os.getcwd()
    os.chdir(ROOT)
    try:
        out = tmp_path / "dist" / "bundle.tar.gz"
        r = runner.invoke(cli, ["build", "--target", "rego", "--out", str(out)])
        assert r.exit_code == 0, r.output
        first = out.read_bytes()
        r = runner.invoke(cli, ["build", "--out", str(out)])
        assert out.read_bytes() == first
        r = runner.invoke(cli, ["bundle", "inspect", str(out), "--format", "json"])
        assert r.exit_code == 0
        assert json.loads(r.output)["roots"] == ["policykit"]
        r = runner.invoke(cli, ["bundle", "inspect", str(out)])
        assert r.exit_code == 0 and "policykit/main/batch" in r.output
        r = runner.invoke(cli, ["build", "--out", str(out), "--root", "Not Valid"])
        assert r.exit_code == 2 and "unknown root" in r.output
        blocker = tmp_path / "file"
        blocker.write_text("x")
        r = runner.invoke(cli, ["build", "--out", str(blocker / "b.tar.gz")])
        assert r.exit_code == 2 and "cannot write" in r.output
        garbage = tmp_path / "g.tar.gz"
        garbage.write_bytes(b"junk")
        r = runner.invoke(cli, ["bundle", "inspect", str(garbage)])
        assert r.exit_code == 2 and "not a gzip tar" in r.output
        r = runner.invoke(cli, ["build", "--out", str(out), "--pack", str(tmp_path / "nope.py")])
        assert r.exit_code == 2
        for engine in ("rego", "opa"):
            r = runner.invoke(cli, ["check", "examples", "--engine", engine, "--format", "json"])
            assert r.exit_code == 1
            assert len(json.loads(r.output)["findings"]) == 11
    finally:
        os.chdir(old)


# -- hostile bundles: streamed within limits, one PK300 line, exit 2 -----------------

MANIFEST = b'{"roots": ["x"], "revision": "r"}'


def _tgz(members: list[tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue())


class _Zeros(io.RawIOBase):
    def __init__(self, n: int) -> None:
        self.left = n

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return b"\0" * n


def _bomb(path: Path, size: int) -> None:
    """A gzip of about size/1000 bytes holding one ``size``-byte member, written as a stream."""
    with (
        path.open("wb") as f,
        gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w|") as tar,
    ):
        info = tarfile.TarInfo("x/data.json")
        info.size = size
        tar.addfile(info, _Zeros(size))


def _cli_lines(*args: str) -> tuple[int, list[str]]:
    r = CliRunner().invoke(cli, list(args))
    return r.exit_code, [ln for ln in r.output.splitlines() if ln.strip()]


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([(".manifest", b"not json")], ".manifest is not valid JSON"),
        ([(".manifest", b"[1, 2]")], ".manifest is not a JSON object"),
        ([(".manifest", b'{"roots": 5}')], "roots is not a list of strings"),
        ([(".manifest", b'{"metadata": []}')], "metadata is not an object"),
        ([(".manifest", MANIFEST), ("x/data.json", b"{bad")], "data.json is not valid JSON"),
        ([(".manifest", MANIFEST), ("x/data.json", b"\xff")], "data.json is not valid JSON"),
        ([(".manifest", MANIFEST), ("x/p.rego", b"package x\n\xff\xfe")], "is not UTF-8"),
        ([(".manifest", MANIFEST), ("x/data.json", b"[" * 300 + b"]" * 300)], "deeper than 256"),
        ([(".manifest", b"[" * 100_000 + b"]" * 100_000)], "deeper than 256"),
        ([(".manifest", MANIFEST), (".signatures.json", b"[" * 50_000)], "deeper than 256"),
    ],
)
def test_malformed_bundle_contents_are_one_line(
    tmp_path: Path, members: list[tuple[str, bytes]], message: str
) -> None:
    path = tmp_path / "b.tar.gz"
    path.write_bytes(_tgz(members))
    key = tmp_path / "k"
    key.write_text("k")
    for args in (
        ["bundle", "inspect", str(path)],
        ["bundle", "verify", str(path), "--key", str(key)],
    ):
        code, lines = _cli_lines(*args)
        assert code == 2 and len(lines) == 1 and "PK300" in lines[0], lines
        assert message in lines[0], lines


@pytest.mark.slow
def test_a_gzip_bomb_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.tar.gz"
    _bomb(bomb, 1 << 30)  # 1 GiB in about 1 MB
    assert bomb.stat().st_size < 2_000_000
    for args in (["bundle", "inspect", str(bomb)], ["bundle", "verify", str(bomb), "--key", "k"]):
        code, lines = _cli_lines(*args)
        assert code == 2 and len(lines) == 1, lines
        assert "member 'x/data.json' is 1073741824 bytes, over the limit" in lines[0]
        assert "POLICYKIT_BUNDLE_MAX_FILE" in lines[0]


def test_limits_on_total_size_member_count_and_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    many = [(".manifest", MANIFEST)] + [(f"x/{i}/data.json", b"{}") for i in range(40)]
    blob = _tgz(many)
    assert len(Bundle.unpack(blob).files) == 41
    with pytest.raises(BundleError, match="more than 20 members"):
        Bundle.unpack(blob, limits=Limits(members=20))
    big = _tgz([(".manifest", MANIFEST), ("x/data.json", b'"' + b"a" * 200_000 + b'"')])
    with pytest.raises(BundleError, match="uncompressed over the limit of 100000 bytes"):
        Bundle.unpack(big, limits=Limits(total_size=100_000))
    path = tmp_path / "big.tar.gz"
    path.write_bytes(big)
    monkeypatch.setenv("POLICYKIT_BUNDLE_MAX_FILE", "1000")
    code, lines = _cli_lines("bundle", "inspect", str(path))
    assert code == 2 and len(lines) == 1 and "over the limit of 1000" in lines[0], lines
    monkeypatch.setenv("POLICYKIT_BUNDLE_MAX_FILE", "lots")
    code, lines = _cli_lines("bundle", "inspect", str(path))
    assert code == 2 and len(lines) == 1 and "POLICYKIT_BUNDLE_MAX_FILE" in lines[0], lines


def test_only_a_regular_file_is_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.tar.gz"
    os.mkfifo(fifo)  # reading it would block forever
    code, lines = _cli_lines("bundle", "inspect", str(fifo))
    assert code == 2 and len(lines) == 1 and "not a regular file" in lines[0], lines
    code, lines = _cli_lines("bundle", "inspect", "/dev/zero")
    assert code == 2 and len(lines) == 1 and "not a regular file" in lines[0], lines
    code, lines = _cli_lines("bundle", "inspect", str(tmp_path / "missing.tar.gz"))
    assert code == 2 and len(lines) == 1 and "cannot read bundle" in lines[0], lines


def test_inspect_prints_hostile_manifest_text_literally(tmp_path: Path) -> None:
    manifest = {"roots": ["x"], "revision": "[bold]r[/x]", "metadata": {"policykit": []}}
    path = tmp_path / "b.tar.gz"
    path.write_bytes(_tgz([(".manifest", json.dumps(manifest).encode())]))
    r = CliRunner().invoke(cli, ["bundle", "inspect", str(path)])
    assert r.exit_code == 0 and "[bold]r[/x]" in r.output, r.output


@pytest.mark.parametrize(
    ("roots", "said"),
    [
        (["policykit", "policykit/params"], "overlapped roots"),
        (["other"], "outside the bundle roots"),
    ],
)
def test_a_manifest_whose_roots_opa_refuses_is_refused(roots: list[str], said: str) -> None:
    """OPA's loader refuses overlapping roots and modules or data outside them;
    ``bundle inspect`` and ``verify`` read such a bundle as good."""
    import json

    files = {
        ".manifest": json.dumps({"revision": "r", "roots": roots}).encode(),
        "policykit/main.rego": b"package policykit.main\n\nallow := true\n",
        "policykit/params/data.json": b"{}",
    }
    with pytest.raises(BundleError, match=said):
        Bundle.unpack(Bundle(files).pack(), "b.tar.gz")
    files[".manifest"] = json.dumps({"revision": "r", "roots": ["policykit"]}).encode()
    Bundle.unpack(Bundle(files).pack(), "b.tar.gz")  # the same bundle under one root
