"""Names are validated as whole strings (issue 19): ``re.match`` with a ``$``
anchor accepted a trailing newline, so a pack named ``"acme\\n"`` built a
bundle OPA refuses and ``init --name $'acme\\n'`` wrote a broken config."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from policykit.dsl import PackBuilder, select
from policykit.engines.native import NativeEngine
from policykit.engines.rego import OpaEngine
from policykit.errors import PolicykitError
from policykit.ir.check import check_pack
from policykit.ir.quantity import parse_quantity
from policykit.model import Document
from policykit.targets.rego.bundle import check_root
from tests.conftest import run_policykit

PACK = """\
from policykit.dsl import PackBuilder, select

pb = PackBuilder({name!r}, {version!r})


@pb.rule({rule!r}, title="t", select=select(kinds=["Pod"]), message="m")
def r(o):
    return o.spec.x == 1
"""


_run = run_policykit


def _one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("policykit: PK"), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def _pack(name: str = "acme", version: str = "1.0.0", rule: str = "ACME-001") -> Any:
    pb = PackBuilder(name, version)

    @pb.rule(rule, title="t", select=select(kinds=["Pod"]), message="m")
    def r(o: Any) -> object:
        return o.spec.x == 1

    return pb.build()


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"name": "acme\n"}, "pack name 'acme\\n'"),
        ({"version": "1.0.0\n"}, "not semver"),
    ],
)
def test_a_trailing_newline_is_not_a_valid_name(kwargs: dict[str, str], needle: str) -> None:
    with pytest.raises(PolicykitError, match=needle.replace("\\", "\\\\").replace(".", r"\.")):
        check_pack(_pack(**kwargs))


def test_a_rule_id_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(PolicykitError, match="ACME-001"):
        _pack(rule="ACME-001\n")


def test_a_bundle_root_with_a_trailing_newline_is_refused() -> None:
    assert check_root("policykit") == "policykit"
    with pytest.raises(PolicykitError):
        check_root("policykit\n")


def test_build_refuses_a_pack_named_with_a_newline(tmp_path: Path) -> None:
    (tmp_path / "p.py").write_text(PACK.format(name="acme\n", version="1.0.0", rule="ACME-001"))
    proc = _run("build", "--pack", "p.py", "--out", "b.tar.gz", cwd=tmp_path)
    _one_line_error(proc, "PK100", "pack name 'acme\\n'")
    assert not (tmp_path / "b.tar.gz").exists()


def test_build_refuses_a_root_with_a_newline(tmp_path: Path) -> None:
    (tmp_path / "p.py").write_text(PACK.format(name="acme", version="1.0.0", rule="ACME-001"))
    proc = _run("build", "--pack", "p.py", "--root", "acme\n", "--out", "b.tar.gz", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "b.tar.gz").exists()


def test_init_refuses_a_name_with_a_newline(tmp_path: Path) -> None:
    proc = _run("init", "repo", "--name", "acme\n", cwd=tmp_path)
    _one_line_error(proc, "PK011", "pack name 'acme\\n'")
    assert not (tmp_path / "repo").exists() or not any((tmp_path / "repo").iterdir())


def test_a_quantity_with_a_trailing_newline_is_not_one() -> None:
    """The reference engine read "2\\n" as 2 while Rego (RE2) did not."""
    assert parse_quantity("2") == 2
    assert parse_quantity("2\n") is None
    assert parse_quantity("1Gi\n") is None
    pb = PackBuilder("qty", "1.0.0")

    @pb.rule("Q-001", title="t", select=select(kinds=["Thing"]), message="m")
    def big(o: Any) -> object:
        return o.spec.q.quantity() > 1

    @pb.rule("Q-002", title="t", select=select(kinds=["Thing"]), message="m")
    def odd_key(o: Any) -> object:
        return o.spec["a\n"] == 1  # not an identifier: printed as a quoted key

    packs = [pb.build()]
    native, opa = NativeEngine(packs), OpaEngine(packs)
    for q, want in (("2", ["Q-001", "Q-002"]), ("2\n", ["Q-002"]), ("2Gi\n", ["Q-002"])):
        obj = {"apiVersion": "v1", "kind": "Thing", "metadata": {"name": "x"}}
        doc = Document({**obj, "spec": {"q": q, "a\n": 1}}, "f.yaml", 0, 1)
        assert [f.rule for f in native.evaluate(doc)] == want
        assert [f.rule for f in opa.evaluate(doc)] == want
