"""``policykit test`` compiles a Gatekeeper template once per content and engine
(issue 21, item 5), across suites and across runs in one process, with the
results and locations of uncached runs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from policykit.existing import suites, suites_gator
from policykit.k8s import gatekeeper as gk
from tests.conftest import FIXTURES

LABELS = FIXTURES / "thirdparty" / "gator" / "labels"


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    made: list[Any] = []
    real = gk.TemplateRunner

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(args[2] if len(args) > 2 else kwargs.get("where"))
        return real(*args, **kwargs)

    monkeypatch.setattr(gk, "TemplateRunner", counting)
    monkeypatch.setattr(suites_gator, "_COMPILED", type(suites_gator._COMPILED)())
    return made


def _copies(tmp_path: Path, n: int) -> list[Path]:
    out = []
    for i in range(n):
        shutil.copytree(LABELS, tmp_path / f"copy{i}")
        out.append(tmp_path / f"copy{i}")
    return out


def _plain(results: list[Any]) -> list[tuple[Any, ...]]:
    return sorted((r.suite, r.name, r.status, r.reason) for r in results)


def test_one_compilation_for_the_same_template_in_three_suites(
    tmp_path: Path, built: list[Any]
) -> None:
    dirs = _copies(tmp_path, 3)
    results, errors = suites.collect([str(tmp_path)], "rego")
    assert errors == []
    assert len(built) == 1
    # each suite's results are those of the suite run alone, uncached
    alone, _ = suites.collect([str(dirs[0])], "rego")
    per_suite = _plain(alone)
    assert _plain(results) == sorted(per_suite * 3)
    assert {r.file for r in results} == {str(d / "suite.yaml") for d in dirs}
    # a later run in the same process compiles nothing
    suites.collect([str(dirs[1])], "rego")
    assert len(built) == 1


def test_a_shared_runner_is_located_at_each_file(tmp_path: Path, built: list[Any]) -> None:
    a, b = _copies(tmp_path, 2)
    runners = suites_gator._Templates("rego")
    from policykit.loader import load_file

    ta = load_file(a / "template.yaml", (a / "template.yaml").as_posix()).documents[0]
    tb = load_file(b / "template.yaml", (b / "template.yaml").as_posix()).documents[0]
    ra, rb = runners.get(ta), runners.get(tb)
    assert len(built) == 1
    assert ra.where is not None and ra.where.file == ta.file
    assert rb.where is not None and rb.where.file == tb.file
    assert ra._compiled is rb._compiled  # one compilation behind both


def test_the_engine_is_part_of_the_key(tmp_path: Path, built: list[Any]) -> None:
    pytest.importorskip("opa_bindings")
    _copies(tmp_path, 1)
    suites.collect([str(tmp_path)], "rego")
    suites.collect([str(tmp_path)], "opa")
    assert len(built) == 2
