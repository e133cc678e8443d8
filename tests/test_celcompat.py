"""The cel-go compatibility rewrite (policykit.k8s.celcompat) keeps the meaning
of every expression cel-cpp already evaluates: for policykit's own generated
CEL (every expression of every built-in pack's kyverno build, and the
examples/platform selection's), the rewrite's value equals the original's on
the examples/platform objects and on objects drawn from them with fields
removed, nulled or retyped. Only an original that errors may get a value
(cel-go's ``orValue`` and ``null.?f``)."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policykit.api import resolve
from policykit.engines.cel import CelEvalError, program
from policykit.k8s.celcompat import rewrite
from policykit.k8s.celtexts import cel_texts, compat_expression
from policykit.k8s.request import Context, admission_data
from policykit.loader import load_paths
from policykit.packs import load_packs
from policykit.targets.k8s import manifests
from tests.conftest import ROOT

PLATFORM = ROOT / "examples" / "platform"

_MISSING = object()


def _eval(expr: str, data: dict[str, Any]) -> Any:
    try:
        return program(expr).eval(data)
    except CelEvalError:
        return _MISSING


@cache
def _policies() -> tuple[tuple[tuple[str, str], ...], ...]:
    """Per built kyverno policy: its (variable name, expression) pairs, then
    ("", expression) for each other CEL expression in it."""
    sel = resolve(paths=[str(PLATFORM)])
    builds = [
        manifests.build("kyverno", load_packs([]), {})[0],
        manifests.build("kyverno", load_packs(sel.packs, PLATFORM), sel.params)[0],
    ]
    out: list[tuple[tuple[str, str], ...]] = []
    for files in builds:
        for docs in files.values():
            for doc in docs:
                spec = doc.get("spec") or {}
                variables = [
                    (str(v["name"]), str(v["expression"])) for v in spec.get("variables") or []
                ]
                rest = {k: v for k, v in spec.items() if k != "variables"}
                out.append(tuple(variables) + tuple(("", e) for e in cel_texts(rest)))
    return tuple(out)


@cache
def _objects() -> tuple[dict[str, Any], ...]:
    sel = resolve(paths=[str(PLATFORM)])
    docs = load_paths(sel.paths, include=sel.include, exclude=sel.exclude).documents
    return tuple(dict(d.obj) for d in docs)


def _compare(obj: dict[str, Any]) -> int:
    """How many expressions were compared on ``obj`` (each rewrite agreeing)."""
    compared = 0
    for policy in _policies():
        data = admission_data(obj, Context())
        bound: dict[str, Any] = {}
        data["variables"] = bound
        for name, expr in policy:
            want = _eval(expr, data)
            got = _eval(compat_expression(expr), data)
            if want is not _MISSING:
                assert got == want, (expr, obj.get("metadata"))
                compared += 1
            if name and want is not _MISSING:
                bound[name] = want
    return compared


def test_the_generated_cel_is_rewritten() -> None:
    """The test has something to compare: policykit's own CEL uses ``.?`` and ``orValue``."""
    texts = [e for p in _policies() for _, e in p]
    assert len(texts) > 50
    assert sum(rewrite(e) != e for e in texts) > 20


@pytest.mark.parametrize("index", range(len(_objects())))
def test_rewrite_keeps_the_value_on_the_platform_objects(index: int) -> None:
    assert _compare(_objects()[index]) > 0


def test_agent_004_message_keeps_the_agent_name() -> None:
    """The rewrite of AGENT-004's message once lost the name: a ``cel.bind`` after
    a ``filter`` whose ``exists`` stopped early read a stale comprehension slot."""
    expr = (
        "object.spec.mcpServers.filter(s, s.tools.exists(t, t.scopes.exists(c, c.contains('*'))))"
        ".map(s, object.?metadata.?name.orValue('') + '/' + s.?name.orValue('')).join(';')"
    )
    obj = {
        "metadata": {"name": "release-bot"},
        "spec": {
            "mcpServers": [
                {
                    "name": "github",
                    "tools": [{"scopes": ["a"]}, {"scopes": ["b:*"]}, {"scopes": []}],
                }
            ]
        },
    }
    data = admission_data(obj, Context())
    assert program(expr).eval(data) == "release-bot/github"
    assert program(rewrite(expr)).eval(data) == "release-bot/github"


def test_a_policys_cel_bind_reads_its_own_value() -> None:
    """cel-cpp's lazy ``cel.bind`` in a ``map`` after an early-stopping ``exists``
    read the ``exists`` variable's slot; cel-go binds the value eagerly."""
    expr = (
        "object.s.filter(s, s.t.exists(t, t.exists(c, c == 2)))"
        ".map(s, cel.bind(a, 1, cel.bind(b, 2, cel.bind(x, object.n, [a, b, x]))))"
    )
    data = admission_data({"n": "name", "s": [{"t": [[1], [2], [3]]}]}, Context())
    assert program(rewrite(expr)).eval(data) == [[1, 2, "name"]]
    shadow = "cel.bind(x, 1, cel.bind(x, x + 1, x) + x) + object.?n.orValue(0)"
    assert program(rewrite(shadow)).eval(admission_data({}, Context())) == 3


@pytest.mark.parametrize(
    ("expr", "obj", "want"),
    [
        # cel-go with Kyverno's orValue compatibility: a missing field is the default
        ("object.metadata.?name.orValue('d')", {"kind": "X"}, "d"),
        ("object.metadata.?name.orValue('d')", {"metadata": {}}, "d"),
        ("object.metadata.?name.orValue('d')", {"metadata": {"name": "n"}}, "n"),
        ("object.metadata.?name.orValue('d')", {"metadata": None}, "d"),
        ("object.?metadata.?name.orValue('d')", {"metadata": None}, "d"),
        ("object.metadata.name.orValue('d')", {"metadata": {"name": "n"}}, "n"),
        ("object.metadata.name.orValue('d')", {"metadata": {}}, "d"),
        ("[1, 2].filter(x, x > 1).map(x, object.?a.orValue(0) + x)", {"a": 5}, [7]),
        # an operator the rewrite prints keeps its operands: not `a + [0.0][0]`
        ("(object.l + [0.0])[0] + object.?a.orValue(0.0)", {"l": [], "a": 1.5}, 1.5),
        ("(true ? [1] : [2])[0] + object.?a.orValue(0)", {"a": 1}, 2),
    ],
)
def test_rewrite_values(expr: str, obj: dict[str, Any], want: Any) -> None:
    data = admission_data(obj, Context())
    assert program(rewrite(expr)).eval(data) == want


def test_rewrite_keeps_errors_outside_or_value() -> None:
    """A plain selection of a missing field outside ``orValue`` still errors."""
    data = admission_data({"kind": "X"}, Context())
    with pytest.raises(CelEvalError):
        program(rewrite("object.metadata.name == 'x' && object.?a.orValue(1) == 1")).eval(data)


_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from(["", "x", "*", "a:*", "release-bot"]),
    st.just({}),
    st.just([]),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def _drawn(draw: st.DrawFn) -> dict[str, Any]:
    obj: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(_objects())))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(obj)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = obj
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(_LEAF)
    return obj


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_drawn())
def test_rewrite_keeps_the_value_on_drawn_objects(obj: dict[str, Any]) -> None:
    _compare(obj)
