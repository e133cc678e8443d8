"""Reading fixtures: formats, lines, and every kind of bad input."""

from __future__ import annotations

import io
import os
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policykit.loader import _matches, load_paths, load_text
from policykit.loader.yamlsafe import max_alias_bytes
from tests.conftest import examples


def write(p: Path, text: str) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


DEPLOY = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: %s}\n"


def test_multi_document_yaml_keeps_lines_and_tells_sources_apart() -> None:
    text = (
        "# comment\n"
        + DEPLOY % "a"
        + "---\n---\n"
        + "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: c}\n"
        + "---\napiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {name: t}\n"
    )
    r = load_text(text, "f.yaml")
    assert not r.errors
    assert [(d.obj["metadata"]["name"], d.line, d.index, d.source) for d in r.documents] == [
        ("a", 2, 0, "kubernetes"),
        ("c", 7, 2, "backstage"),  # the empty document is index 1
        ("t", 11, 3, "backstage"),
    ]


def test_kind_list_is_expanded_with_item_lines() -> None:
    text = (
        "apiVersion: v1\nkind: List\nitems:\n"
        "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n"
        "- apiVersion: v1\n  kind: Secret\n  metadata: {name: b}\n"
    )
    r = load_text(text, "l.yaml")
    assert [(d.obj["kind"], d.line) for d in r.documents] == [("ConfigMap", 4), ("Secret", 7)]


def test_json_objects_arrays_and_lists() -> None:
    r = load_text(
        '[{"apiVersion": "v1", "kind": "A"}, {"apiVersion": "v1", "kind": "B"}]', "x.json"
    )
    assert [d.obj["kind"] for d in r.documents] == ["A", "B"]
    r = load_text(
        '{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "C"}]}',
        "y.json",
    )
    assert [d.obj["kind"] for d in r.documents] == ["C"]


def test_malformed_yaml_reports_file_line_and_keeps_earlier_documents() -> None:
    text = DEPLOY % "ok" + "---\nkind: [unclosed\n  x: y\n"
    r = load_text(text, "bad.yaml")
    assert [d.obj["metadata"]["name"] for d in r.documents] == ["ok"]
    assert len(r.errors) == 1
    line = r.errors[0].one_line()
    assert line.startswith("bad.yaml:")
    assert "malformed YAML" in line
    assert r.errors[0].loc is not None and r.errors[0].loc.line >= 5


def test_malformed_json() -> None:
    r = load_text('{"apiVersion": "v1",\n "kind": }', "bad.json")
    assert r.errors and r.errors[0].loc is not None
    assert r.errors[0].loc.line == 2
    assert "malformed JSON" in r.errors[0].message


@pytest.mark.parametrize(("text", "what"), [("just text\n", "a str"), ("42\n", "a int")])
def test_non_object_documents_are_errors(text: str, what: str) -> None:
    r = load_text(text, "n.yaml")
    assert not r.documents
    assert len(r.errors) == 1 and what in r.errors[0].message


def test_a_top_level_list_is_skipped_with_its_reason() -> None:
    """An Ansible playbook or tasks file is not an input error: skipped, with why."""
    r = load_text("- hosts: all\n  tasks: []\n---\n" + DEPLOY % "after", "site.yml")
    assert not r.errors
    assert [d.obj["metadata"]["name"] for d in r.documents] == ["after"]
    assert len(r.skipped) == 1
    s = r.skipped[0]
    assert (s.file, s.index, s.line) == ("site.yml", 0, 1)
    assert "a list" in s.reason and "Ansible" in s.reason


def test_mappings_without_apiversion_are_reported_as_skipped() -> None:
    r = load_text("replicas: 3\nimage: x\n", "values.yaml")
    assert not r.documents and not r.errors
    assert len(r.skipped) == 1 and r.skipped[0].file == "values.yaml"


def test_billion_laughs_is_refused_not_expanded() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    text = "apiVersion: v1\nkind: ConfigMap\n" + "\n".join(lines) + "\n---\n" + DEPLOY % "after"
    r = load_text(text, "laughs.yaml")
    assert len(r.errors) == 1
    assert str(max_alias_bytes()) in r.errors[0].message
    assert [d.obj["metadata"]["name"] for d in r.documents] == ["after"]


def test_recursive_alias_is_refused() -> None:
    r = load_text("apiVersion: v1\nkind: ConfigMap\ndata: &x\n  self: *x\n", "rec.yaml")
    assert not r.documents
    assert len(r.errors) == 1 and "recurse" in r.errors[0].message


def test_harmless_anchors_still_work() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, labels: &l {a: b}}\ndata: *l\n"
    r = load_text(text, "ok.yaml")
    assert not r.errors and r.documents[0].obj["data"] == {"a": "b"}


def test_directory_walk_include_exclude_and_unreadable_files(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", DEPLOY % "a")
    write(tmp_path / "sub/b.yml", DEPLOY % "b")
    write(tmp_path / "sub/c.json", '{"apiVersion": "v1", "kind": "C", "metadata": {"name": "c"}}')
    write(tmp_path / "node_modules/x.yaml", DEPLOY % "hidden")
    write(tmp_path / "skip/d.yaml", DEPLOY % "d")
    write(tmp_path / "README.md", "# not yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"apiVersion: v1\nkind: A\nmetadata: {name: caf\xe9}\n")
    os.symlink(tmp_path / "gone.yaml", tmp_path / "broken.yaml")
    r = load_paths([str(tmp_path)], exclude=(".git", "node_modules", "skip"))
    names = sorted(d.obj["metadata"]["name"] for d in r.documents)
    assert names == ["a", "b", "c"]
    msgs = sorted(e.message for e in r.errors)
    assert any("cannot read file" in m for m in msgs)
    assert any("not UTF-8" in m for m in msgs)
    r = load_paths([str(tmp_path)], include=("*.json",))
    assert [d.obj["metadata"]["name"] for d in r.documents] == ["c"]


def test_missing_path_and_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    r = load_paths(["/definitely/not/here.yaml"])
    assert r.errors and "no such file" in r.errors[0].message
    monkeypatch.setattr("sys.stdin", io.StringIO(DEPLOY % "from-stdin"))
    r = load_paths(["-"])
    assert r.documents[0].obj["metadata"]["name"] == "from-stdin"
    assert r.documents[0].file == "<stdin>"


PATTERN_PARTS = ["*", "?", "[!x]", "[a-c]", "a", "b", ".", "yaml", "/", "[", "\\", "**"]


@settings(max_examples=examples(300))
@given(
    st.lists(st.text(alphabet="ab.xy/*?[]\\-", max_size=10), max_size=4),
    st.lists(st.lists(st.sampled_from(PATTERN_PARTS), max_size=5).map("".join), max_size=5),
)
def test_include_and_exclude_match_as_fnmatchcase(parts: list[str], patterns: list[str]) -> None:
    """The one compiled alternation of the walk agrees with ``fnmatchcase`` per pattern."""
    rel = "/".join(parts)
    name = rel.rsplit("/", 1)[-1]
    expected = any(fnmatchcase(rel, p) or fnmatchcase(name, p) for p in patterns)
    assert _matches(rel, patterns) == expected
