"""Fuzzing the loader through ``policykit check`` (issue 19): random and mutated
YAML/JSON fixtures next to one good file holding a known violation. Whatever
the bad file holds: exit 0/1/2 only, each error is one line naming a file, and
the JSON report is written with the good file's finding.

Bounded for CI (``max_examples`` fixed, in-process CLI: ~10-20 s); the larger
run (10,000+ inputs) is ``python -m tests.test_fuzz_inputs N``."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policykit.cli.main import cli
from tests.test_input_hardening import GOOD, PACK

SEEDS: list[bytes] = [
    GOOD.encode(),
    b'{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x\\ud800"},'
    b' "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "a:latest"}]}}}}',
    b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {n: " + b"9" * 4400 + b"}\n",
    b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: !!bool maybe}\n",
    b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: .inf}\nspec: {replicas: .nan}\n",
    b"apiVersion: v1\nkind: List\nitems:\n- &a {apiVersion: v1, kind: A, metadata: {name: a}}\n"
    b"- *a\n- [1, 2]\n",
    b"a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
    b"c: [*b, *b, *b, *b, *b, *b, *b, *b]\n",
    b'apiVersion: v1\nkind: A\nmetadata: {name: "\\x01\\x1b\\u2028"}\n\x01\n',
    b"--- !!set {a, b}\n--- !!omap [a: 1]\n--- !!binary aGk=\n--- 2024-01-01\n",
    b"[" * 3000 + b"]" * 3000,
    b'{"a": ' * 2000 + b"1" + b"}" * 2000,
    b"\xef\xbb\xbfapiVersion: v1\nkind: A\n\xff\xfe\n",
    b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: "
    + b"n" * 3000
    + b"}\nspec: {template: {spec: {containers: ["
    + b"{name: c, image: x}, " * 50
    + b"]}}}\n",
    b"? [a]\n: b\n",
    b"&a a: *a\n",
    b"!!python/object:os.system x\n",
    b"a: !!int 0x" + b"f" * 4000 + b"\n",
    b'{"a": NaN, "b": 1e999, "c": -Infinity}',
    b"!!int !!python/obje!!set ct:os.system x\n",  # found by the long run: exit 3
]

TOKENS = [
    b"\n", b": ", b"- ", b"&a ", b"*a", b"!!bool ", b"!!int ", b"!!float ", b"!!str ",
    b"!!timestamp ", b"!!set ", b".inf", b".nan", b"---\n", b"...\n", b"{", b"}", b"[",
    b"]", b'"', b"'", b"\\u", b"\\ud800", b"\x00", b"\x01", b"\t", b"\xff", b"\xc3",
    b"apiVersion: v1\n", b"kind: List\n", b"items:\n", b"metadata: {name: x}\n", b"? ",
    b"<<: *a\n", b"9" * 50, b"%YAML 1.1\n", b"!<tag:x> ",
]  # fmt: skip


@st.composite
def contents(draw: st.DrawFn) -> bytes:
    """A seed mutated by a few insertions, deletions, replacements and tokens,
    or plain random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=400))
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.integers(0, 3))
        pos = draw(st.integers(0, len(data)))
        if op == 0:
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == 1:
            del data[pos : pos + draw(st.integers(1, 20))]
        elif op == 2 and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        else:
            data[pos:pos] = draw(st.binary(max_size=8))
    return bytes(data)


NAMES = st.sampled_from(
    [b"bad.yaml", b"bad.json", b"bad.yml", b"b\xffd.yaml", b"b\nd.json", b"\xe9.yml"]
)


def check_one(root: Path, name: bytes, content: bytes, fmt: str = "json") -> dict[str, Any]:
    """Write the good and the bad file under ``root``, run ``policykit check``
    and assert the promise; returns figures about the run."""
    tree = root / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir()
    (tree / "good.yaml").write_text(GOOD, encoding="utf-8")
    with open(os.path.join(os.fsencode(tree), name), "wb") as fh:
        fh.write(content)
    out = root / f"report.{fmt}"
    if out.exists():
        out.unlink()
    result = CliRunner().invoke(
        cli,
        ["check", str(tree), "--pack", PACK, "--format", fmt, "-o", str(out)],
        catch_exceptions=False,
    )
    code = result.exit_code
    assert code in (0, 1, 2), (code, result.stderr, content[:200])
    lines = result.stderr.splitlines()
    for line in lines:
        assert re.match(r"^(?:policykit|\S.*?): PK\d{3} ", line), (line, content[:200])
    assert out.exists(), "report not written"
    if fmt == "json":
        doc = json.loads(out.read_bytes().decode("utf-8"))
        assert any(
            f["rule"] == "K8S-003" and f["file"].endswith("/good.yaml") for f in doc["findings"]
        ), doc["findings"]
        assert len(doc["errors"]) == len(lines)
        assert (code == 2) == bool(doc["errors"])
    return {"exit": code, "errors": len(lines)}


@pytest.mark.slow
@settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(content=contents(), name=NAMES)
def test_fuzzed_fixture_never_loses_the_report(content: bytes, name: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        check_one(Path(tmp), name, content)


@settings(max_examples=15, deadline=None, database=None, derandomize=True)
@given(content=contents(), fmt=st.sampled_from(["sarif", "junit", "github", "table"]))
def test_fuzzed_fixture_other_formats(content: bytes, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        check_one(Path(tmp), b"bad.yaml", content, fmt)
        if fmt == "junit":
            import xml.dom.minidom

            xml.dom.minidom.parse(str(Path(tmp) / "report.junit"))


def main(n: int) -> None:  # pragma: no cover - the long run, by hand
    """``python -m tests.test_fuzz_inputs N``: N generated inputs, figures printed."""
    import resource
    import time
    from collections import Counter

    exits: Counter[int] = Counter()
    failures: list[str] = []
    slowest = 0.0
    fmts = ["json"] * 6 + ["sarif", "junit", "github", "table"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.monotonic()

        @settings(max_examples=n, deadline=None, database=None, phases=[st_phase()])
        @given(content=contents(), name=NAMES, fmt=st.sampled_from(fmts))
        def run(content: bytes, name: bytes, fmt: str) -> None:
            nonlocal slowest
            t0 = time.monotonic()
            try:
                figures = check_one(root, name, content, fmt)
                exits[figures["exit"]] += 1
            except BaseException as exc:
                failures.append(f"{type(exc).__name__}: {str(exc)[:300]} | {content[:120]!r}")
            slowest = max(slowest, time.monotonic() - t0)

        run()
        took = time.monotonic() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"inputs: {sum(exits.values()) + len(failures)}  exits: {dict(sorted(exits.items()))}")
    print(f"failures: {len(failures)}  slowest run: {slowest:.2f} s  total: {took:.0f} s")
    print(f"peak RSS: {peak:.0f} MB")
    for f in failures[:20]:
        print("  ", f)


def st_phase() -> Any:  # pragma: no cover
    from hypothesis import Phase

    return Phase.generate


if __name__ == "__main__":  # pragma: no cover
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
