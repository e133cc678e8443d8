"""One bad input never loses the report (issue 19): every hostile fixture becomes
one error line (file, position, what to do) and exit 2, every other file is
still checked, and the report — JSON included, ``--output`` too — is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.dom.minidom
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from policykit.cli.main import cli
from policykit.errors import InputError
from policykit.loader import load_paths, load_text, yamlsafe
from policykit.model import Finding, ObjectRef
from policykit.values import MAX_MESSAGE_CHARS, cap_message, format_number

GOOD = """apiVersion: apps/v1
kind: Deployment
metadata: {name: good, namespace: prod}
spec:
  template:
    spec:
      containers:
      - name: app
        image: nginx:1.25
        securityContext: {privileged: true}
"""
PACK = "policykit.packs.starter"


def run_check(tree: Path, *extra: str, fmt: str = "json") -> tuple[int, list[str], str, Any]:
    """``policykit check`` in-process: exit code, stderr lines, report text, JSON report."""
    out = tree.parent / f"report.{fmt}"
    if out.exists():
        out.unlink()
    result = CliRunner().invoke(
        cli,
        ["check", str(tree), "--pack", PACK, "--format", fmt, "-o", str(out), *extra],
        catch_exceptions=False,
    )
    text = out.read_bytes().decode("utf-8") if out.exists() else ""
    doc = json.loads(text) if fmt == "json" and text else None
    return result.exit_code, result.stderr.splitlines(), text, doc


def tree_with(tmp_path: Path, name: str | bytes, content: bytes) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir(exist_ok=True)
    (tree / "good.yaml").write_text(GOOD, encoding="utf-8")
    target = os.path.join(os.fsencode(tree), name if isinstance(name, bytes) else name.encode())
    with open(target, "wb") as fh:
        fh.write(content)
    return tree


def assert_one_error_and_good_finding(
    code: int, err: list[str], doc: Any, file_part: str, *, line: bool = True
) -> str:
    assert code == 2, err
    errors = [e for e in err if " PK" in e]
    assert len(errors) == 1, err
    assert len(err) == 1, err  # nothing else: no traceback, no second line
    assert file_part in errors[0]
    if line:
        assert f"{file_part}:" in errors[0]  # a position
    assert doc is not None, "the JSON report was not written"
    assert any(f["rule"] == "K8S-003" and f["file"].endswith("good.yaml") for f in doc["findings"])
    assert len(doc["errors"]) == 1 and file_part in doc["errors"][0]["file"]
    return errors[0]


# --- 4. fixture content that crashed -------------------------------------------------

CASES = {
    "surrogate.json": (
        b'{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x\\ud800"}}',
        "lone surrogate",
    ),
    "bigint.json": (
        b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"n": '
        + b"7" * 5000
        + b"}}",
        "4300 digits",
    ),
    "bigint.yaml": (
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {n: " + b"7" * 5000 + b"}\n",
        "digits",
    ),
    "hexint.yaml": (
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nspec: {replicas: 0x"
        + b"f" * 4000
        + b"}\n",
        "4300 digits",
    ),
    "maybe.yaml": (
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: !!bool maybe}\n",
        "not a boolean",
    ),
    "timestamp.yaml": (
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: !!int abc}\n",
        "not an integer",
    ),
    "emptyint.yaml": (
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: !!int }\n",
        "not an integer",
    ),
    "emptyfloat.yaml": (
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: !!float }\n",
        "not a number",
    ),
    "inf.yaml": (
        b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {replicas: .inf}\n",
        "inf/nan",
    ),
    "nan.yaml": (
        b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {replicas: .nan}\n",
        "inf/nan",
    ),
    "nan.json": (
        b'{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"},'
        b' "spec": {"replicas": NaN}}',
        "NaN",
    ),
    "overflow.json": (
        b'{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"},'
        b' "spec": {"replicas": 1e400}}',
        "out of range",
    ),
    "control.yaml": (
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n\x01data: {x: 1}\n",
        "#x0001",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_content_is_one_error_line_and_the_report_is_written(
    tmp_path: Path, name: str
) -> None:
    content, expect = CASES[name]
    code, err, _, doc = run_check(tree_with(tmp_path, name, content))
    line = assert_one_error_and_good_finding(code, err, doc, name)
    assert expect in line


def test_yaml_reader_error_names_line_and_column_on_one_line() -> None:
    r = load_text("apiVersion: v1\nkind: A\nmetadata: {name: a}\n\x01x: 1\n", "c.yaml")
    assert len(r.errors) == 1
    e = r.errors[0]
    assert e.loc is not None and e.loc.line == 4 and "column 1" in e.message
    assert "\n" not in e.one_line() and "<unicode string>" not in e.one_line()


def test_timestamps_binary_and_sets_stay_json_values() -> None:
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
        "data: {d: 2024-01-02, b: !!binary aGk=, s: !!set {x}, o: !!omap [k: 1]}\n"
    )
    r = load_text(text, "v.yaml")
    assert not r.errors
    data = r.documents[0].obj["data"]
    assert data == {"d": "2024-01-02", "b": "aGk=", "s": {"x": None}, "o": [{"k": 1}]}
    json.dumps(r.documents[0].obj)  # a JSON value, as every engine needs


def test_non_finite_numbers_render_without_crashing() -> None:
    assert format_number(float("inf")) == "Infinity"
    assert format_number(float("nan")) == "NaN"


def test_control_characters_keep_junit_well_formed(tmp_path: Path) -> None:
    bad = GOOD.replace("name: good,", 'name: "bad\\x01\\x1b[31m\\x7f",').replace(
        "name: app", 'name: "a\\x02pp"'
    )
    tree = tree_with(tmp_path, "ctl.yaml", bad.encode())
    code, err, text, _ = run_check(tree, fmt="junit")
    assert code == 1, err
    xml.dom.minidom.parseString(text.encode("utf-8"))  # well-formed
    assert "\\x01" in text and "\\x02" in text


@pytest.mark.parametrize("fmt", ["sarif", "json", "junit", "github", "table"])
def test_a_file_name_that_is_not_utf8_is_reported(tmp_path: Path, fmt: str) -> None:
    tree = tree_with(tmp_path, b"caf\xe9\nx.yaml", GOOD.encode())
    code, err, text, _ = run_check(tree, fmt=fmt)
    assert code == 1, err
    shown = "caf\\xe9\\x0ax.yaml"  # escaped: one line, UTF-8
    if fmt == "json":
        files = {f["file"] for f in json.loads(text)["findings"]}
        assert any(f.endswith("/" + shown) for f in files), files
    elif fmt == "sarif":
        results = json.loads(text)["runs"][0]["results"]
        uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
        assert any(u.endswith("/caf%5Cxe9%5Cx0ax.yaml") for u in uris), uris
    else:
        assert shown in text


def test_not_utf8_name_with_a_bad_file_is_one_line(tmp_path: Path) -> None:
    tree = tree_with(tmp_path, b"b\xff\nd.yaml", b"a: [\n")
    code, err, _, doc = run_check(tree)
    assert_one_error_and_good_finding(code, err, doc, "b\\xff\\x0ad.yaml")


def test_stdin_that_is_not_utf8_is_an_input_error() -> None:
    result = CliRunner().invoke(
        cli, ["check", "-", "--pack", PACK, "--format", "json"], input=b"a: \xff\n"
    )
    assert result.exit_code == 2, result.output
    assert "not UTF-8" in result.stderr
    assert json.loads(result.stdout)["errors"][0]["file"] == "<stdin>"


# --- 1. the guarded YAML reader -------------------------------------------------------


def test_alias_of_a_large_scalar_is_refused_quickly_by_size(tmp_path: Path) -> None:
    # 200 KB scalar aliased 20,000 times: a 580 KB file that expands to 4 GB
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
        "data:\n  big: &big " + "x" * 200_000 + "\n  refs: [" + ", ".join(["*big"] * 20_000) + "]\n"
    )
    assert len(text) < 600_000
    start = time.monotonic()
    r = load_text(text, "bomb.yaml")
    assert time.monotonic() - start < 5
    assert not r.documents and len(r.errors) == 1
    assert "aliases expand beyond" in r.errors[0].message
    assert yamlsafe.ALIAS_ENV in r.errors[0].hint


@pytest.mark.slow
def test_a_large_document_with_an_ampersand_in_a_string_is_not_a_bomb() -> None:
    items = "".join(f"  k{i}: v\n" for i in range(120_000))
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: 'a & b'}\ndata:\n" + items
    r = load_text(text, "big.yaml")
    assert not r.errors
    assert len(r.documents[0].obj["data"]) == 120_000


def test_small_anchors_reused_are_fine_and_the_limit_is_configurable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = "apiVersion: v1\nkind: A\nmetadata: {name: a}\nx: &a [" + "1, " * 100 + "1]\ny: *a\n"
    assert not load_text(text, "a.yaml").errors
    monkeypatch.setenv(yamlsafe.ALIAS_ENV, "100")
    assert "beyond 100 bytes" in load_text(text, "a.yaml").errors[0].message


def test_guarded_reader_api_raises_the_callers_error_class(tmp_path: Path) -> None:
    class MyError(InputError):
        code = "PK777"

    with pytest.raises(MyError, match="not a boolean"):
        yamlsafe.load_yaml("a: !!bool maybe\n", "c.yaml", error=MyError)
    with pytest.raises(MyError, match="more than one YAML document"):
        yamlsafe.load_yaml("a: 1\n---\nb: 2\n", "c.yaml", error=MyError)
    p = tmp_path / "c.yaml"
    p.write_text("a: &x [1]\nb: *x\n")
    assert yamlsafe.read_yaml(p) == {"a": [1], "b": [1]}
    value, node = yamlsafe.load_yaml_node("a: 1\n", "c.yaml")
    assert value == {"a": 1} and isinstance(node, yaml.MappingNode)


# --- 2. regular files only, size limit -----------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_fifo_and_dev_zero_are_refused_not_read(tmp_path: Path) -> None:
    tree = tree_with(tmp_path, "other.yaml", b"")
    (tree / "other.yaml").unlink()
    os.mkfifo(tree / "pipe.yaml")
    os.symlink("/dev/zero", tree / "zero.yaml")
    start = time.monotonic()
    code, err, _, doc = run_check(tree)
    assert time.monotonic() - start < 20
    assert code == 2 and len(err) == 2, err
    assert any("pipe.yaml" in e and "FIFO" in e and "PK001" in e for e in err)
    assert any("zero.yaml" in e and "device" in e for e in err)
    assert any(f["rule"] == "K8S-003" for f in doc["findings"])


def test_file_size_limit_is_configurable_and_reported_as_pk001(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tree_with(tmp_path, "big.yaml", b"# " + b"x" * 5000 + b"\n")
    monkeypatch.setenv(yamlsafe.FILE_ENV, "4096")
    code, err, _, doc = run_check(tree)
    line = assert_one_error_and_good_finding(code, err, doc, "big.yaml", line=False)
    assert "PK001" in line and yamlsafe.FILE_ENV in line
    assert yamlsafe.max_file_bytes() == 4096


# --- 3. unreadable subdirectory ------------------------------------------------------


def test_an_unreadable_subdirectory_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tree_with(tmp_path, "other.yaml", b"")
    (tree / "locked").mkdir()
    (tree / "locked" / "priv.yaml").write_text(GOOD, encoding="utf-8")
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:  # as `chmod 000` does for a non-root user
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    code, err, _, doc = run_check(tree)
    assert code == 2, err
    assert len(err) == 1 and "locked" in err[0] and "cannot read directory" in err[0]
    assert doc["errors"][0]["file"].endswith("locked")
    assert any(f["rule"] == "K8S-003" for f in doc["findings"])


def test_unreadable_directory_for_a_real_non_root_user(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        (locked / "d.yaml").write_text(GOOD)
        locked.chmod(0)
        try:
            r = load_paths([str(tmp_path)])
        finally:
            locked.chmod(0o755)
        assert any("cannot read directory" in e.message for e in r.errors)
    else:
        pytest.skip("root reads chmod 000 directories; covered by the injected error above")


# --- 6. a path that does not exist ---------------------------------------------------


def test_a_path_that_does_not_exist_is_an_input_error(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = CliRunner().invoke(
        cli,
        [
            "check",
            str(tmp_path / "nonexist.yaml"),
            "--pack",
            PACK,
            "--format",
            "json",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 2
    assert "nonexist.yaml" in result.stderr and "no such file" in result.stderr
    doc = json.loads(out.read_text())
    assert doc["summary"]["files"] == 0 and len(doc["errors"]) == 1


def test_an_over_long_path_is_an_input_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["check", "a" * 5000 + ".yaml", "--pack", PACK])
    assert result.exit_code == 2, result.output
    assert "PK001" in result.stderr


# --- 5. message amplification --------------------------------------------------------


def test_a_huge_value_in_many_items_does_not_amplify_the_report(tmp_path: Path) -> None:
    name = "n" * 70_000
    containers = "".join(f"      - {{name: c{i}, image: x}}\n" for i in range(300))
    deploy = (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\n"
        "spec:\n  template:\n    spec:\n      containers:\n" + containers
    )
    tree = tree_with(tmp_path, "amp.yaml", deploy.encode())
    code, err, text, doc = run_check(tree)
    assert code == 1, err
    assert len(text) < 3_000_000  # was ~ 300 x 3 x 70 KB = 63 MB
    msgs = [f["message"] for f in doc["findings"] if f["file"].endswith("amp.yaml")]
    assert msgs and all(len(m) <= MAX_MESSAGE_CHARS for m in msgs)
    assert all("\u2026" in m for m in msgs)
    assert any(m.startswith("container c1 of Deployment nnn") for m in msgs)


def test_capping_is_idempotent_and_keeps_head_and_tail() -> None:
    text = "head " + "x" * 5000 + " tail"
    capped = cap_message(text)
    assert len(capped) == MAX_MESSAGE_CHARS and capped.startswith("head ")
    assert capped.endswith(" tail") and cap_message(capped) == capped
    ref = ObjectRef("v1", "A", "", "a")
    assert Finding("R", "p", "deny", text, ref).message == capped


def test_a_param_value_with_a_bad_tag_is_a_usage_error(tmp_path: Path) -> None:
    tree = tree_with(tmp_path, "other.yaml", GOOD.encode())
    result = CliRunner().invoke(
        cli, ["check", str(tree), "--pack", PACK, "--param", "starter.lifecycles=!!bool maybe"]
    )
    assert result.exit_code == 2, result.output
    assert "not valid YAML" in result.stderr and "Traceback" not in result.output


def test_a_param_that_is_not_utf8_is_a_usage_error(tmp_path: Path) -> None:
    """A byte that is not UTF-8 in ``--param`` (the shell passes it as a
    surrogate) was an internal error when the value was encoded."""
    tree = tree_with(tmp_path, "other.yaml", GOOD.encode())
    proc = subprocess.run(
        [sys.executable, "-m", "policykit", "check", str(tree), "--pack", PACK,
         "--param", os.fsdecode(b"starter.lifecycles=\xff")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "starter.lifecycles=\\xff: not UTF-8 text" in proc.stderr, proc.stderr
    assert "internal error" not in proc.stderr


def test_check_dash_with_standard_input_closed_is_an_input_error(tmp_path: Path) -> None:
    """``check -`` started with standard input closed (a CI job with no stdin) was
    exit 3 (AttributeError on None); it is one input-error line, exit 2."""
    (tmp_path / "a.yaml").write_text(GOOD)
    proc = subprocess.run(
        [sys.executable, "-m", "policykit", "check", "--pack", PACK, "-", "a.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        preexec_fn=lambda: os.close(0),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if "PK" in ln]
    assert len(errors) == 1 and "standard input is closed" in errors[0], proc.stderr


def test_parameters_for_a_pack_the_run_does_not_load_are_refused(tmp_path: Path) -> None:
    """``params`` keyed by a pack's module (``policykit.packs.starter``) or a
    typo were ignored and the defaults used; the keys of ``--param``, and of
    the configuration when its packs are the ones run, must name a loaded pack."""
    tree = tree_with(tmp_path, "other.yaml", GOOD.encode())
    r = CliRunner().invoke(cli, ["check", str(tree), "--pack", PACK, "--param", "nopack.x=1"])
    assert r.exit_code == 2, r.output
    assert "PK102 parameters for 'nopack', which this run does not load" in r.stderr
    assert "keyed by a pack's name: starter" in r.stderr
    (tree / "policykit.yaml").write_text(
        f"packs: [{PACK}]\nparams:\n  {PACK}: {{lifecycles: [x]}}\n"
    )
    r = CliRunner().invoke(cli, ["check", str(tree)])
    assert r.exit_code == 2 and f"parameters for '{PACK}'" in r.stderr, r.output
    # the configuration's parameters are not the run's when --pack chooses other packs
    (tree / "policykit.yaml").write_text("params:\n  finops: {budgets: {}}\n")
    r = CliRunner().invoke(cli, ["check", str(tree), "--pack", PACK])
    assert r.exit_code in (0, 1), r.output


@pytest.mark.parametrize(
    ("head", "said"),
    [
        ("apiVersion: 5\nkind: Deployment\n", "apiVersion is a number, not a string"),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {labels: [a]}\n",
            "metadata.labels is a list, not a map",
        ),
        ("apiVersion: v1\nkind: [Pod]\n", "kind is a list, not a string"),
        ("apiVersion: v1\nkind: Pod\nmetadata: [x]\n", "metadata is a list, not a map"),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: 5}\n",
            "metadata.name is a number, not a string",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: {a: 1}}\n",
            "metadata.namespace is a map, not a string",
        ),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_an_input_error(head: str, said: str) -> None:
    """A manifest whose apiVersion, kind or metadata has the wrong type was
    skipped as "not an object", or checked under an empty name: every consumer
    (the API server, Backstage) refuses it. The next document is still read."""
    from policykit.loader import load_yaml_text

    got = load_yaml_text(head + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: ok}\n", "m.yaml")
    assert [d.obj["metadata"]["name"] for d in got.documents] == ["ok"]
    assert [e.message for e in got.errors] == [f"document 0: {said}"]
    assert got.skipped == []
    for other in ("replicas: 3\nimage: {tag: x}\n", "apiVersion: 1\ndatasources: []\n"):
        got = load_yaml_text(other, "values.yaml")  # Helm values, Grafana provisioning
        assert got.errors == [] and len(got.skipped) == 1  # still skipped
