"""policykit's own files never crash a run (issue 19): policykit.yaml,
waivers, baselines, IR JSON, policykit Test files, gator suites and kyverno
tests — each problem is one line ``file: PKnnn what to do`` and exit 2; and
``policykit test`` writes its whole report (bad files as ``error`` cases).

The fuzz tests mutate valid documents of each kind (hypothesis, bounded):
exit 0, 1 or 2 only, every error line one ``file:line: PKnnn`` line (``policykit: PKnnn``
when no file is at fault), and
for ``test`` the JSON report always written and valid."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from policykit.cli.main import cli
from policykit.resources import load_schema
from tests.conftest import FIXTURES, ROOT

POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec: {}\n"
LONG = "x" * 300  # a file name the system refuses (ENAMETOOLONG)
# README: "file:line: PKnnn what (what to do)", or "policykit: PKnnn ..." with no file
LINE = re.compile(r"^(?:policykit|\S.*?): PK\d{3} ")


def _run(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args)


def _one_error_line(r: Result, file: str | None = None) -> str:
    assert r.exit_code == 2, (r.exit_code, r.output)
    assert "Traceback" not in r.output and "internal error" not in r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert LINE.match(lines[0]), lines[0]
    if file is not None:
        assert file in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pod.yaml").write_text(POD)
    return tmp_path


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (b"packs: [\xff]\n", "PK002 not UTF-8"),
        (b"packs: [\x01]\n", "PK002 malformed YAML"),
        (b"params: " + b"[" * 3000 + b"]" * 3000 + b"\n", "PK002"),
        (b"params: {a: " + b"[" * 150 + b"]" * 150 + b"}\n", "PK002 nested more than"),
        (b"packs: 5\n", "PK002 packs: 5 is not of type"),
    ],
)
def test_bad_policykit_yaml_is_one_line(here: Path, content: bytes, expect: str) -> None:
    (here / "policykit.yaml").write_bytes(content)
    line = _one_error_line(_run(["check", "pod.yaml"]), "policykit.yaml")
    assert expect in line


CONFIG = """\
# ACME
packs: [policykit.packs.starter]
params:
  starter:
    lifecycles: [production]
    required_labels: 5
  nosuch:
    x: 1
"""


@pytest.mark.parametrize("command", [["check", "pod.yaml"], ["verify", "pod.yaml"], ["build"]])
def test_a_bad_parameter_in_policykit_yaml_names_its_line(here: Path, command: list[str]) -> None:
    """A parameter of policykit.yaml that does not fit its schema, or params for
    a pack the run does not load, were "policykit: PK102 ...": no file, no line."""
    (here / "policykit.yaml").write_text(CONFIG)
    line = _one_error_line(_run(command))
    assert line.startswith(f"{here / 'policykit.yaml'}:7: PK102 parameters for 'nosuch'"), line
    (here / "policykit.yaml").write_text(CONFIG.replace("  nosuch:\n    x: 1\n", ""))
    line = _one_error_line(_run(command))
    assert line.startswith(f"{here / 'policykit.yaml'}:6: PK102 pack starter: parameter "), line
    fixed = _run([*command, "--param", "starter.required_labels=[app]"])
    assert fixed.exit_code in (0, 1) and "PK102" not in fixed.stderr, fixed.output
    assert "required_labels: 5 is not of type 'array'" in line
    # the command line's value wins: the error is the command line's, no file
    line = _one_error_line(_run([*command, "--param", "starter.required_labels=7"]))
    assert line.startswith("policykit: PK102 pack starter: parameter required_labels: 7"), line
    mistyped = CONFIG.replace("  nosuch:\n    x: 1\n", "").replace("required_labels: 5", "nope: 1")
    (here / "policykit.yaml").write_text(mistyped)
    line = _one_error_line(_run(command))
    assert line.startswith(f"{here / 'policykit.yaml'}:6: PK102 pack starter: unknown"), line


def test_a_config_file_refused_by_its_schema_names_the_line(here: Path) -> None:
    (here / "policykit.yaml").write_text("# top\npacks: [policykit.packs.starter]\nfail_on: 5\n")
    line = _one_error_line(_run(["check", "pod.yaml"]))
    assert line.startswith(f"{here / 'policykit.yaml'}:3: PK002 fail_on: 5 is not"), line


def test_pyproject_that_is_not_utf8_is_not_a_crash(here: Path) -> None:
    # a pyproject.toml that cannot be read may not be ours: looked past, not a crash
    (here / "pyproject.toml").write_bytes(b"[tool.policykit]\npacks = ['\xff']\n")
    r = _run(["check", "pod.yaml"])
    assert r.exit_code in (0, 1) and "Traceback" not in r.output


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        ("waivers: " + "[" * 3000 + "]" * 3000, "PK009"),
        ("waivers:\n- " + "[" * 120 + "]" * 120, "PK009 nested more than 100"),
        ("waivers: [\x01]", "PK009 malformed YAML"),
        ("waivers: 5", "PK009 invalid waiver"),
    ],
)
def test_bad_waivers_file_is_one_line(here: Path, content: str, expect: str) -> None:
    (here / "w.yaml").write_text(content)
    line = _one_error_line(_run(["check", "pod.yaml", "--waivers", "w.yaml"]), "w.yaml")
    assert expect in line


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        ("[" * 5000 + "]" * 5000, "PK007"),
        ('{"version": 1, "findings": [], "x": ' + "9" * 5000 + "}", "PK007"),
        ('{"version": 1, "findings": ' + "[" * 150 + "]" * 150 + "}", "PK007 nested"),
        ('{"version": 1, "findings": 5}', "PK007 not a policykit baseline"),
    ],
)
def test_bad_baseline_is_one_line(here: Path, content: str, expect: str) -> None:
    (here / "b.json").write_text(content)
    line = _one_error_line(_run(["check", "pod.yaml", "--baseline", "b.json"]), "b.json")
    assert expect in line


@pytest.mark.parametrize(
    "args",
    [
        ["check", f"{LONG}.yaml"],
        ["check", "pod.yaml", "--waivers", f"{LONG}.yaml"],
        ["check", "pod.yaml", "--baseline", f"{LONG}.json"],
        ["check", "pod.yaml", "--pack", f"{LONG}.json"],
        ["check", "pod.yaml", "--pack", f"{LONG}.py"],
        ["check", "pod.yaml", "-o", f"{LONG}.json"],
        ["test", f"{LONG}.yaml"],
        ["build", "--target", "vap", "--out", LONG],
    ],
    ids=["path", "waivers", "baseline", "ir-pack", "py-pack", "output", "test", "build-out"],
)
def test_over_long_file_names_are_one_line(here: Path, args: list[str]) -> None:
    r = _run(args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "internal error" not in r.output
    errors = [ln for ln in r.stderr.splitlines() if re.search(r"\bPK\d{3}\b", ln)]
    assert errors and all(LINE.match(ln) for ln in errors), errors
    assert sorted(p.name for p in here.iterdir()) == ["pod.yaml"]  # nothing left behind


def _thirdparty(tmp_path: Path) -> Path:
    root = tmp_path / "fx"
    shutil.copytree(FIXTURES / "thirdparty", root)
    return root


@pytest.mark.parametrize(
    ("rel", "old", "new", "expect"),
    [
        ("kyverno/vpol/kyverno-test.yaml", "results:", "results: 5\nx:", "results: 5 is not of"),
        ("kyverno/vpol/kyverno-test.yaml", "policies: [policy.yaml]", "policies: x", "policies"),
        ("kyverno/vpol/values.yaml", "", "namespaceSelector: 3\n", "values file"),
        ("kyverno/vpol/values.yaml", "", "- [\n", "malformed YAML"),
        ("gator/labels/suite.yaml", "tests:", "tests: 1\nx:", "tests: 1 is not of type"),
    ],
)
def test_bad_test_file_keeps_the_report(
    tmp_path: Path, rel: str, old: str, new: str, expect: str
) -> None:
    """`results: 5` / `tests: 1` crashed (exit 3) and lost every other file's
    results; now the file is an error case of the full JSON report, exit 2."""
    root = _thirdparty(tmp_path)
    f = root / rel
    text = f.read_text()
    f.write_text(text.replace(old, new, 1) if old else new)
    r = _run(["test", str(root), "--format", "json", "--engine", "rego"])
    line = _one_error_line(r, rel.rsplit("/", 1)[-1] if "values" not in rel else "values.yaml")
    assert expect in line
    doc = json.loads(r.stdout)
    Draft202012Validator(load_schema("test-report.schema.json")).validate(doc)
    errors = [c for c in doc["cases"] if c["status"] == "error"]
    assert len(errors) == 1 and expect in errors[0]["reason"]
    assert doc["summary"]["errors"] == 1
    assert sum(1 for c in doc["cases"] if c["status"] == "pass") > 5  # the others still ran


def test_junit_and_table_carry_the_error_case(tmp_path: Path) -> None:
    root = _thirdparty(tmp_path)
    suite = root / "gator/labels/suite.yaml"
    suite.write_text(suite.read_text().replace("tests:", "tests: 1\nx:", 1))
    junit = _run(["test", str(root), "--format", "junit", "--engine", "rego"])
    assert junit.exit_code == 2 and "<error " in junit.stdout and 'errors="1"' in junit.stdout
    table = _run(["test", str(root), "--engine", "rego"])
    assert table.exit_code == 2 and "ERROR" in table.stdout and "1 input error\n" in table.stdout


# --- fuzz ---------------------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.just(int("9" * 60)),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["", "\x01", "K8S-001", "2027-01-01", "*", "../x.yaml", "yes", "no", "-1"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def _mutated(draw: st.DrawFn, seed: Any) -> Any:
    """``seed`` with one node replaced by a random value (or a key dropped, or
    nested deep), sometimes twice."""
    doc = json.loads(json.dumps(seed))
    for _ in range(draw(st.integers(1, 2))):
        paths = _paths(doc)
        where = draw(st.sampled_from(paths))
        how = draw(st.sampled_from(["replace", "replace", "drop", "deep"]))
        if not where:
            doc = draw(_values) if how != "deep" else [doc]
            continue
        parent = doc
        for step in where[:-1]:
            parent = parent[step]
        last = where[-1]
        if how == "drop" and isinstance(parent, dict):
            del parent[last]
        elif how == "deep":
            parent[last] = json.loads("[" * 150 + "1" + "]" * 150)
        else:
            parent[last] = draw(_values)
    return doc


def _text(doc: Any, fmt: str, raw: bytes) -> bytes:
    text = json.dumps(doc) if fmt == "json" else yaml.safe_dump(doc, allow_unicode=True)
    return text.encode("utf-8", "surrogatepass") + raw


_raw_tail = st.sampled_from([b"", b"", b"", b"\xff", b"\x01", b"\n- [", b'\n"\\ud800"'])
# POLICYKIT_FUZZ_EXAMPLES=3000 (and HYPOTHESIS_PROFILE=dev for fresh draws) makes
# this a long campaign; CI replays the same 40 examples of each.
_LONG = int(os.environ.get("POLICYKIT_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_LONG or 40,
    deadline=None,
    derandomize=not _LONG,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _assert_clean(r: Result) -> None:
    assert r.exit_code in (0, 1, 2), (r.exit_code, r.output[-2000:])
    assert "Traceback" not in r.output and "internal error" not in r.output, r.output[-2000:]
    for ln in r.stderr.splitlines():
        if re.search(r"\bPK\d{3}\b", ln) and "warning" not in ln:
            assert LINE.match(ln), ln


_CONFIG = {"packs": ["policykit.packs.starter"], "params": {}, "fail_on": "deny"}
_WAIVERS = {
    "waivers": [
        {
            "rule": "K8S-001",
            "match": {"kind": "Pod", "name": "p*"},
            "reason": "r",
            "owner": "o",
            "expires": "2099-01-01",
        }
    ]
}
_BASELINE = {
    "version": 1,
    "generator": "policykit",
    "findings": [
        {
            "fingerprint": "0" * 16,
            "pack": "starter",
            "rule": "K8S-001",
            "file": "pod.yaml",
            "object": "v1/Pod default/p",
            "message": "m",
        }
    ],
}


@FUZZ
@given(data=st.data(), raw=_raw_tail)
def test_fuzz_config_waivers_baseline(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, raw: bytes
) -> None:
    d = tmp_path_factory.mktemp("fz")
    (d / "pod.yaml").write_text(POD)
    (d / "policykit.yaml").write_bytes(_text(data.draw(_mutated(_CONFIG)), "yaml", raw))
    (d / "w.yaml").write_bytes(_text(data.draw(_mutated(_WAIVERS)), "yaml", b""))
    (d / "b.json").write_bytes(_text(data.draw(_mutated(_BASELINE)), "json", b""))
    for extra in ([], ["--waivers", str(d / "w.yaml")], ["--baseline", str(d / "b.json")]):
        r = _run(["check", str(d / "pod.yaml"), "--format", "json", *extra])
        _assert_clean(r)
        if r.exit_code in (0, 1):
            json.loads(r.stdout)


_IR: dict[str, Any] = {}


@FUZZ
@given(data=st.data(), raw=_raw_tail)
def test_fuzz_ir_json(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, raw: bytes
) -> None:
    if not _IR:
        from policykit.ir import serialize
        from policykit.packs import load_packs

        _IR.update(json.loads(serialize.dumps(load_packs(["policykit.packs.starter"]))))
        _IR["packs"][0]["rules"] = _IR["packs"][0]["rules"][:3]
    d = tmp_path_factory.mktemp("fz")
    (d / "pod.yaml").write_text(POD)
    (d / "pack.json").write_bytes(_text(data.draw(_mutated(_IR)), "json", raw))
    r = _run(["check", str(d / "pod.yaml"), "--pack", str(d / "pack.json"), "--format", "json"])
    _assert_clean(r)


_PK_TEST = {
    "apiVersion": "policykit.dev/v1alpha1",
    "kind": "Test",
    "metadata": {"name": "t"},
    "packs": ["policykit.packs.starter"],
    "cases": [
        {"name": "c", "object": yaml.safe_load(POD), "expect": "clean", "rules": ["K8S-001"]}
    ],
}


def _seed(rel: str) -> Any:
    return yaml.safe_load((FIXTURES / "thirdparty" / rel).read_text())


@pytest.mark.slow
@FUZZ
@given(data=st.data(), raw=_raw_tail, which=st.sampled_from(["pk", "gator", "kyverno"]))
def test_fuzz_test_files_keep_the_json_report(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, raw: bytes, which: str
) -> None:
    d = tmp_path_factory.mktemp("fz")
    shutil.copytree(FIXTURES / "thirdparty" / "kyverno" / "vpol", d / "vpol")
    shutil.copytree(FIXTURES / "thirdparty" / "gator" / "labels", d / "labels")
    (d / "pk").mkdir()
    (d / "pk" / "t.test.yaml").write_text(yaml.safe_dump(_PK_TEST))
    target, seed = {
        "pk": (d / "pk" / "t.test.yaml", _PK_TEST),
        "gator": (d / "labels" / "suite.yaml", _seed("gator/labels/suite.yaml")),
        "kyverno": (d / "vpol" / "kyverno-test.yaml", _seed("kyverno/vpol/kyverno-test.yaml")),
    }[which]
    target.write_bytes(_text(data.draw(_mutated(seed)), "yaml", raw))
    out = d / "report.json"
    r = _run(["test", str(d), "--format", "json", "--engine", "rego", "-o", str(out)])
    _assert_clean(r)
    doc = json.loads(out.read_text())  # always written, whatever the input
    Draft202012Validator(load_schema("test-report.schema.json")).validate(doc)
    errors = [c for c in doc["cases"] if c["status"] == "error"]
    assert (r.exit_code == 2) == bool(errors)
    # the two files left alone still ran
    others = {c["file"] for c in doc["cases"] if c["status"] != "error"}
    assert len({Path(f).parent.name for f in others} - {target.parent.name}) == 2 or which == "pk"


def test_root_is_the_repository() -> None:
    assert (ROOT / "schemas" / "gator-suite.schema.json").is_file()
