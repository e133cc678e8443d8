"""The fast exact YAML path (policykit/loader/fastyaml.py, issue 21 item 3) gives
what PyYAML's own constructor gives through the same guarded loader: the same
values (types included: ``True`` is not ``1``), the same lines, the same errors,
and aliases shared as PyYAML shares them. Drawn documents (plain scalars YAML 1.1
reads as booleans, octal, sexagesimal, nulls; anchors, merge keys, tags, broken
syntax) and every YAML file of the repository."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from yaml.resolver import BaseResolver

from policykit.loader import fastyaml, yamlsafe
from tests.conftest import ROOT, examples


@contextmanager
def plain_pyyaml() -> Iterator[None]:
    """The guarded loader without either shortcut: PyYAML's resolver and
    ``construct_document``."""
    loader = yamlsafe.GuardedLoader
    saved = fastyaml.build

    def never(loader: Any, node: Any, aliases: bool) -> Any:
        raise fastyaml.Fallback

    for name in ("resolve", "descend_resolver", "ascend_resolver"):
        setattr(loader, name, getattr(BaseResolver, name))
    fastyaml.build = never
    try:
        yield
    finally:
        for name in ("resolve", "descend_resolver", "ascend_resolver"):
            delattr(loader, name)
        fastyaml.build = saved


def typed(v: Any) -> Any:
    """A value with every scalar's type made visible (1 == True == 1.0 in Python)."""
    if isinstance(v, dict):
        return ("map", [(typed(k), typed(x)) for k, x in v.items()])
    if isinstance(v, list):
        return ("seq", [typed(x) for x in v])
    return (type(v).__name__, v)


def read(text: str) -> tuple[list[Any], list[str]]:
    errors: list[Any] = []
    docs = [
        (typed(v), i, n.start_mark.line)
        for v, i, n in yamlsafe.yaml_documents(text, "f.yaml", errors)
    ]
    return docs, [f"{e.loc}: {e.message}" for e in errors]


def same_as_pyyaml(text: str) -> None:
    fast = read(text)
    with plain_pyyaml():
        slow = read(text)
    assert fast == slow


# Plain scalars whose type YAML 1.1 decides (resolver.py's implicit resolvers).
TOKENS = [
    "yes", "No", "on", "OFF", "y", "n", "true", "False", "TRUE", "~", "null", "Null", "",
    "0", "-0", "010", "0o17", "0x1F", "0b101", "1_000", "190:20:30", "+12", "-7",
    "1.5", "1e3", "1.0e+3", ".5", "6.8523015e+5", "685_230.15", "190:20:30.15",
    ".inf", "-.Inf", ".NaN", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "=", "<<",
    "maybe", "0.1.2", "1_", "0x", "12:", "v1", "apps/v1", "nginx:1.25", "500m", "1Gi",
    "9" * 30, "é", "a b", "'quoted'", '"dq"', "!!str 12", "!!int 12", "!!bool yes",
    "!!float 1", "!!null ''", "!!bool maybe", "!!int x", "!!timestamp 2001-12-14",
    "!!binary aGk=", "!custom x", "[1, yes, ~]", "{a: 1, b: on}", "{}", "[]",
]  # fmt: skip
KEYS = ["a", "kind", "yes", "1", "~", "1.5", "=", "<<", "[1]", "{x: 1}", "? k", "a"]


@st.composite
def block(draw: st.DrawFn, depth: int = 0) -> list[str]:
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(KEYS))
        anchor = draw(st.sampled_from(["", "", "&a ", "&b "]))
        shape = draw(st.sampled_from(["scalar", "scalar", "map", "seq", "alias"]))
        if shape == "scalar" or depth >= 3:
            lines.append(f"{key}: {anchor}{draw(st.sampled_from(TOKENS))}")
        elif shape == "alias":
            lines.append(f"{key}: *{draw(st.sampled_from(['a', 'b']))}")
        elif shape == "map":
            tag = draw(st.sampled_from(["", "", "!!map ", "!!set ", "!!omap "]))
            lines.append(f"{key}: {anchor}{tag}".rstrip())
            lines += ["  " + line for line in draw(block(depth + 1))]
        else:
            tag = draw(st.sampled_from(["", "", "!!seq ", "!!pairs "]))
            lines.append(f"{key}: {anchor}{tag}".rstrip())
            for _ in range(draw(st.integers(0, 3))):
                if draw(st.booleans()):
                    lines.append(f"  - {draw(st.sampled_from(TOKENS))}")
                else:
                    inner = draw(block(depth + 1))
                    lines.append("  - " + inner[0])
                    lines += ["    " + line for line in inner[1:]]
    return lines


@st.composite
def documents(draw: st.DrawFn) -> str:
    docs = ["\n".join(draw(block())) for _ in range(draw(st.integers(1, 3)))]
    text = "\n---\n".join(docs) + "\n"
    if draw(st.integers(0, 9)) == 0:  # broken somewhere
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from([":", "\t", "- ", "{", "]", "\x07"])) + text[at:]
    return text


@settings(max_examples=examples(500))
@given(documents())
@example("? k: !!seq\n---\na: yes\n")  # PyYAML's state after a refused document
def test_drawn_documents_read_as_pyyaml_reads_them(text: str) -> None:
    same_as_pyyaml(text)


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=examples(300))
@given(JSONISH, st.sampled_from([None, True, False]))
def test_dumped_values_read_as_pyyaml_reads_them(value: Any, flow: bool | None) -> None:
    same_as_pyyaml(yaml.safe_dump(value, default_flow_style=flow, allow_unicode=True))


def repository_yaml() -> list[Path]:
    skip = {".git", ".venv", "node_modules", "dist"}
    return sorted(
        p
        for p in ROOT.rglob("*.y*ml")
        if p.suffix in (".yaml", ".yml") and not skip & set(p.relative_to(ROOT).parts)
    )


def test_every_yaml_file_of_the_repository_reads_as_pyyaml_reads_it() -> None:
    files = repository_yaml()
    assert len(files) > 100  # fixtures, examples, goldens
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            same_as_pyyaml(text)
        except AssertionError:
            raise AssertionError(f"{path} reads differently") from None


def test_aliases_are_the_same_object_as_in_pyyaml() -> None:
    text = "a: &x {k: [1, 2]}\nb: *x\nc: &y [on]\nd: *y\n"
    value = next(yamlsafe.yaml_documents(text, "f.yaml", []))[0]
    assert value["a"] is value["b"] and value["c"] is value["d"]
    assert value == {"a": {"k": [1, 2]}, "b": {"k": [1, 2]}, "c": [True], "d": [True]}


def test_what_the_fast_path_leaves_to_pyyaml() -> None:
    loader = yamlsafe.GuardedLoader("a: 1\n")
    try:
        for text in ("<<: {a: 1}\n", "s: !!set {a}\n", "t: !!timestamp 2001-12-14\n", "x: !c 1\n"):
            node = yaml.compose(text, Loader=yamlsafe.GuardedLoader)
            assert node is not None
            try:
                fastyaml.build(loader, node, False)
            except fastyaml.Fallback:
                continue
            raise AssertionError(f"{text!r} built by the fast path")
        deep = yaml.compose("[" * 70 + "]" * 70, Loader=yamlsafe.GuardedLoader)
        assert deep is not None
        try:
            fastyaml.build(loader, deep, False)
            raise AssertionError("70 levels built by the fast path")
        except fastyaml.Fallback:
            pass
    finally:
        loader.dispose()
    # and the reader still gives PyYAML's values and errors for them
    same_as_pyyaml(
        "<<: {a: 1}\nb: 2\n---\ns: !!set {a}\n---\nx: !c 1\n---\n" + "[" * 300 + "]" * 300
    )


def test_the_guarded_loader_has_no_path_resolver() -> None:
    """FastResolve's shortcuts are exact only without path resolvers."""
    assert not yamlsafe.GuardedLoader.yaml_path_resolvers


def test_the_tag_memo_is_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(fastyaml, "MEMO_ENTRIES", 8)
    monkeypatch.setattr(fastyaml.FastResolve, "_tag_memo", {})
    text = "\n".join(f"k{i}: v{i}" for i in range(40)) + "\n"
    same_as_pyyaml(text)
    assert len(fastyaml.FastResolve._tag_memo) <= 8


def test_a_refused_document_leaves_nothing_to_the_next() -> None:
    """PyYAML's constructor keeps its pending work when a document fails; the
    next document must not inherit it (it did: refused with the first's
    "expected a sequence node"), on either path."""
    text = "? k: !!seq\n---\na: yes\n---\n- &x [1]\n- {? *x : 1}\n---\nb: [on, 010]\n"
    for path in (nullcontext(), plain_pyyaml()):
        with path:
            docs, errors = read(text)
        assert [d[1] for d in docs] == [1, 3]
        assert docs[0][0] == ("map", [(("str", "a"), ("bool", True))])
        assert docs[1][0] == ("map", [(("str", "b"), ("seq", [("bool", True), ("int", 8)]))])
        assert len(errors) == 2 and all("unhashable" in e for e in errors), errors


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("metadata: {name: d1}\nmetadata: {name: d2}\n", 2),
        ("a:\n  b: 1\n  c: 2\n  b: 3\n", 4),
        ("a: {1: x, 0x1: y}\n", 1),  # one int key written twice
        ("- name: a\n  image: x\n  name: b\n", 3),
    ],
)
def test_a_key_a_mapping_holds_twice_is_refused_on_both_paths(text: str, line: int) -> None:
    """kubectl, Helm and Backstage refuse a mapping with a repeated key; the
    last one silently won. One error at the repeated key, the next document
    still read."""
    doc = text + "---\nok: 1\n"
    for path in (nullcontext(), plain_pyyaml()):
        with path:
            docs, errors = read(doc)
        assert [d[0] for d in docs] == [("map", [(("str", "ok"), ("int", 1))])]
        assert len(errors) == 1 and "found duplicate key" in errors[0], errors
        assert errors[0].startswith(f"f.yaml:{line}:"), errors


def test_a_merge_key_brings_keys_the_mapping_may_override() -> None:
    same_as_pyyaml("a: &x {p: 1, q: 2}\nb:\n  <<: *x\n  p: 3\nc:\n  <<: [*x, {r: 1}]\n  r: 2\n")
    # a merged mapping that itself merges: PyYAML rewrites its keys when first merged
    nested = "base: &base {a: 1}\nx: {y: &mid {<<: *base, a: 2}}\nz: {<<: *mid}\n"
    docs, errors = read(nested)
    assert errors == [], errors
    assert yamlsafe.load_yaml(nested, "f.yaml") == yaml.safe_load(nested)  # PyYAML's values
    docs, errors = read("a: &x {p: 1}\nb:\n  <<: *x\n  p: 3\n")
    assert errors == [] and docs[0][0][1][1][1] == ("map", [(("str", "p"), ("int", 3))])
