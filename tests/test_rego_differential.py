"""The backbone: random rules x random objects give the same findings and the
same messages in the reference engine, in regopy and in real OPA."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policykit.engines.native import NativeEngine
from policykit.engines.rego import (
    EngineLimitation,
    OpaEngine,
    RegopyEngine,
    misread,
    quote_wrapped,
)
from policykit.ir import nodes as ir
from policykit.ir.rule import Message, Pack, ParamSpec, Rule
from policykit.model import Document, Finding
from tests.strategies import objects, packs


def _key(f: Finding) -> tuple[Any, ...]:
    return (f.doc_index, -1 if f.item is None else f.item, f.rule, f.severity, f.message)


def regopy_misreads(pack: Pack, objs: Any, messages: Any = ()) -> bool:
    """Whether a value regopy reads wrongly occurs: a string wrapped in double
    quotes, in the data, the parameters, the rule's literals or a message; in
    the data, a float past six decimals or a NUL (docs/engines.md; the regopy
    engine refuses such data with PK010)."""
    literals = [
        n.value
        for r in pack.rules
        for root in (r.condition, *(p for p in r.message.parts if isinstance(p, ir.Node)))
        for n in ir.walk(root)
        if isinstance(n, ir.Literal)
    ]
    texts = [p for r in pack.rules for p in r.message.parts if isinstance(p, str)]
    return misread(objs) is not None or any(
        quote_wrapped(v) is not None
        for v in (objs, pack.defaults(), literals, texts, list(messages))
    )


def _run(pack: Pack, objs: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    docs = [Document(o, "gen.yaml", i, 1) for i, o in enumerate(objs)]
    native = NativeEngine([pack]).evaluate_all(docs)
    out = {"native": sorted(map(_key, native))}
    engines: list[tuple[str, Any]] = [("opa", OpaEngine([pack]))]
    if regopy_misreads(pack, objs, [f.message for f in native]):
        if misread(objs) is not None or quote_wrapped(pack.defaults()) is not None:
            with pytest.raises(EngineLimitation):  # refused, never a wrong answer
                RegopyEngine([pack], mode="object").evaluate_all(docs)
    else:
        engines += [
            ("regopy-batch", RegopyEngine([pack])),
            ("regopy-object", RegopyEngine([pack], mode="object")),
        ]
    for name, engine in engines:
        out[name] = sorted(map(_key, engine.evaluate_all(docs)))
    return out


@pytest.mark.slow
@settings(max_examples=120)
@given(pack=packs(), objs=st.lists(objects(), min_size=1, max_size=6))
def test_native_regopy_and_opa_agree(pack: Pack, objs: list[dict[str, Any]]) -> None:
    results = _run(pack, objs)
    native = results.pop("native")
    for name, got in results.items():
        assert got == native, f"{name} disagrees with the reference engine"


@pytest.mark.parametrize(
    "text",
    [
        'quote " here',
        "back\\slash",
        "new\nline",
        "brace } { ",
        "# not a comment",
        "tab\there",
        "unicode é 😀 \u2028 \u2029",
        "import data.evil",
        "package x",
        "`raw`",
        "%s %v %d",
    ],
)
def test_adversarial_strings_stay_data(text: str) -> None:
    """User strings in messages, literals, keys and selectors never break or
    inject code: the module compiles in both engines and results match."""
    from policykit.ir import nodes as ir
    from policykit.ir.rule import Message, ParamSpec, Rule, Selector

    key_path = ir.Path(ir.OBJECT_ROOT, ("spec", text))
    rule = Rule(
        id="ADV-001",
        title=text,
        description=text,
        remediation=text,
        tags=(text,),
        severity="deny",
        condition=ir.Or(
            (
                ir.Compare("==", key_path, ir.Literal(text)),
                ir.In(ir.Path(ir.OBJECT_ROOT, ("metadata", "name")), ir.Param("names")),
            )
        ),
        message=Message((text, key_path, text, ir.Param("names"))),
        selector=Selector(kinds=(text, "Thing"), labels=((text, text),)),
    )
    pack = Pack(
        "adv", "1.0.0", (rule,), (ParamSpec("names", {"type": "array"}, [text]),), description=text
    )
    objs = [
        {
            "apiVersion": "v1",
            "kind": "Thing",
            "metadata": {"name": text, "labels": {text: text}},
            "spec": {text: text},
        },
        {
            "apiVersion": "v1",
            "kind": text,
            "metadata": {"name": text, "labels": {text: text}},
            "spec": {text: "other"},
        },
        {"apiVersion": "v1", "kind": "Thing", "metadata": {"name": "y"}, "spec": {text: text}},
    ]
    results = _run(pack, objs)
    assert len(results["native"]) == 2
    assert results["native"][0][4] == f"{text}{text}{text}[{text}]"
    for name, got in results.items():
        if name.startswith("regopy") and "\\" in text:
            # regopy reads parameter strings with a backslash as regexes only
            # (docs/engines.md); real OPA must still agree, and does
            continue
        assert got == results["native"], name


def test_string_parameters_with_backslashes_mean_the_same_everywhere() -> None:
    """A parameter holding a backslash used as a regex, rendered in a message and
    compared with input: regopy's regex.match unescapes string patterns, so the
    regopy engine runs values.pattern doubling backslashes (docs/engines.md)."""
    from policykit.ir import nodes as ir
    from policykit.ir.rule import Message, ParamSpec, Rule

    name = ir.Path(ir.OBJECT_ROOT, ("metadata", "name"))
    rule = Rule(
        "GEN-1",
        "t",
        "deny",
        ir.Or((ir.Matches(name, ir.Param("pattern")), ir.In(name, ir.Param("allowed")))),
        Message(("r1 ", ir.Param("pattern"), " ", ir.Param("allowed"), " ", name)),
    )
    pack = Pack(
        "gen",
        "1.0.0",
        (rule,),
        (
            ParamSpec("pattern", {"type": "string"}, "a\\.b"),
            ParamSpec("allowed", {"type": "array"}, ["x\\y", "\\"]),
        ),
    )
    objs = [
        {"apiVersion": "v1", "kind": "K", "metadata": {"name": n}}
        for n in ("a.b", "a\\.b", "x\\y", "\\", "xy", "ab")
    ]
    results = _run(pack, objs)
    native = results.pop("native")
    assert len(native) == 3
    for name_, got in results.items():
        assert got == native, name_


@pytest.mark.parametrize("lit", [-0.01, -1, 2.5])
def test_statements_never_start_with_a_parenthesis(lit: float) -> None:
    """regopy reads a body line starting with ``(`` or ``-`` as continuing the
    line before (a call on the previous term); the compiler never emits one."""
    from policykit.ir import nodes as ir
    from policykit.ir.rule import Each, Message, Rule

    spec_a = ir.Path(ir.OBJECT_ROOT, ("spec", "a"))
    rules = (
        Rule("GEN-1", "t", "deny", ir.Compare("==", ir.Literal(lit), ir.Path("it", ())),
             Message(("r1 ",)), each=Each("it", spec_a)),
        Rule("GEN-2", "t", "deny", ir.In(ir.Literal(lit), spec_a), Message(("r2 ",))),
        Rule("GEN-3", "t", "deny",
             ir.Compare(">", ir.Arith("*", ir.Arith("+", spec_a, spec_a), ir.Literal(lit)),
                        ir.Arith("-", ir.Literal(lit), spec_a)), Message(("r3 ",))),
        Rule("GEN-4", "t", "deny",
             ir.Compare(">", ir.Arith("/", spec_a, ir.Literal(lit)), ir.Literal(0)),
             Message(("r4 ",))),
        Rule("GEN-5", "t", "deny",
             ir.Exists(ir.Arith("*", ir.Arith("+", spec_a, spec_a), ir.Literal(lit))),
             Message(("r5 ",))),
    )  # fmt: skip
    pack = Pack("gen", "1.0.0", rules)
    objs = [
        {"apiVersion": "v1", "kind": "K", "metadata": {"name": "x"}, "spec": {"a": a}}
        for a in ([lit, 1], [1], 3, -2)
    ]
    results = _run(pack, objs)
    native = results.pop("native")
    assert native
    for name, got in results.items():
        assert got == native, name


def test_regopy_refuses_strings_wrapped_in_double_quotes() -> None:
    """regopy strips the quotes of a string like '"abc"' when it reads it (input,
    base64.decode, parameters): its engine refuses such data (PK010) instead of
    answering wrongly."""
    from policykit.ir.rule import Message, ParamSpec, Rule

    name = ir.Path(ir.OBJECT_ROOT, ("metadata", "name"))
    rule = Rule("GEN-1", "t", "deny", ir.Compare("==", name, ir.Literal("x")), Message(("m",)))
    pack = Pack("gen", "1.0.0", (rule,))
    doc = Document({"apiVersion": "v1", "kind": "K", "metadata": {"name": '"x"'}}, "f.yaml", 0, 7)
    with pytest.raises(EngineLimitation, match=r"f\.yaml:7") as e:
        RegopyEngine([pack]).evaluate_all([doc])
    assert e.value.code == "PK010"
    assert OpaEngine([pack]).evaluate_all([doc]) == NativeEngine([pack]).evaluate_all([doc]) == []
    quoted = Pack("gen", "1.0.0", (rule,), (ParamSpec("p", {"type": "string"}, '"v"'),))
    with pytest.raises(EngineLimitation):
        RegopyEngine([quoted])


def test_regopy_two_known_different_operands_in_one_body() -> None:
    """Regression (CI example): `x != null` where x's type is known compiled to
    `_ = x` and `_ = null`; with two more rules regopy unified the `_`s into one
    variable and failed the whole batch ("Unable to unify due to cycle")."""
    from policykit.engines.native import NativeEngine
    from policykit.engines.rego import OpaEngine, RegopyEngine
    from policykit.ir.rule import Message, Rule, Selector
    from policykit.model import Document

    a = ir.Path(ir.OBJECT_ROOT, ("spec", "a"))
    rules = tuple(
        Rule(f"GEN-{i}", "t", "deny", cond, Message((f"r{i} ",)), selector=Selector())
        for i, cond in (
            (1, ir.Compare("==", a, a)),
            (2, ir.Compare("==", a, a)),
            (3, ir.Compare("!=", ir.Length(a), ir.Literal(None))),
        )
    )
    pack = Pack("gen", "1.0.0", rules)
    objs = [{"spec": {}}, {"spec": {"a": "xyz"}}, {"spec": {"a": [1, 2]}}]
    docs = [
        Document({"apiVersion": "v1", "kind": "Thing", "metadata": {"name": "n"}, **o}, "g", i, 1)
        for i, o in enumerate(objs)
    ]
    want = [(f.doc_index, f.rule) for f in NativeEngine([pack], {}).evaluate_all(docs)]
    assert (1, "GEN-3") in want
    for engine in (RegopyEngine, OpaEngine):
        got = [(f.doc_index, f.rule) for f in engine([pack], {}).evaluate_all(docs)]
        assert got == want, engine.__name__


@pytest.mark.slow
@settings(
    max_examples=60, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow]
)
@given(pack=packs(inventory=True), objs=st.lists(objects(), min_size=1, max_size=5))
def test_rules_over_the_inventory_agree(pack: Pack, objs: list[dict[str, Any]]) -> None:
    """objects(): every other object of the run, left out by identity; the same
    in the reference, in regopy, in real OPA (data.<root>.inventory) and in the
    Gatekeeper templates reading Gatekeeper's data.inventory."""
    from hypothesis import assume

    from policykit.verify import verify

    assume(any(isinstance(n, ir.Objects) for r in pack.rules for n in ir.walk(r.condition)))
    docs = [Document(o, "gen.yaml", i, 1) for i, o in enumerate(objs)]
    engine = NativeEngine([pack])
    engine.set_inventory(objs)
    native = engine.evaluate_all(docs)
    engines: list[Any] = [OpaEngine([pack], mode="object"), OpaEngine([pack])]
    if not regopy_misreads(pack, objs, [f.message for f in native]):
        engines.append(RegopyEngine([pack], mode="object"))
    for e in engines:
        e.set_inventory(objs)
        assert sorted(map(_key, e.evaluate_all(docs))) == sorted(map(_key, native))
    # Gatekeeper syncs Kubernetes objects only: compare on those
    k8s = [o for o in objs if not o["apiVersion"].startswith("backstage.io")]
    kinds = {"Thing": ("ConfigMap", "v1"), "Other": ("Deployment", "apps/v1")}
    k8s = [{**o, "kind": kinds[o["kind"]][0], "apiVersion": kinds[o["kind"]][1]} for o in k8s]
    assume(k8s)
    import dataclasses

    rules = tuple(
        dataclasses.replace(
            r,
            selector=dataclasses.replace(
                r.selector, kinds=tuple(kinds[k][0] for k in r.selector.kinds)
            ),
        )
        for r in pack.rules
    )
    gk_pack = dataclasses.replace(pack, rules=rules)
    k8s_docs = [Document(o, "gen.yaml", i, 1) for i, o in enumerate(k8s)]
    report = verify(
        [gk_pack], {pack.name: pack.defaults()}, k8s_docs, ("gatekeeper",), gatekeeper_engine="opa"
    )
    assert report.ok, report.mismatches


@pytest.mark.slow
@settings(
    max_examples=150, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow]
)
@given(pack=packs(inventory=True), objs=st.lists(objects(), min_size=1, max_size=6))
def test_remembering_over_the_inventory_changes_nothing(
    pack: Pack, objs: list[dict[str, Any]]
) -> None:
    """The reference engine remembers parts of cross-object rules per item and
    per object (engines/native.py); one engine over a whole run, and then over
    half of it, finds exactly what the plain reading finds."""
    from hypothesis import assume

    assume(any(isinstance(n, ir.Objects) for r in pack.rules for n in ir.walk(r.condition)))
    fast = NativeEngine([pack])
    for run in (objs, objs[: len(objs) // 2 + 1]):
        docs = [Document(o, "gen.yaml", i, 1) for i, o in enumerate(run)]
        plain = NativeEngine([pack], remember=False)
        plain.set_inventory(run)
        fast.set_inventory(run)
        want = sorted(map(_key, plain.evaluate_all(docs)))
        assert sorted(map(_key, fast.evaluate_all(docs))) == want
        assert sorted(map(_key, fast.evaluate_all(docs[::-1]))) == want


def test_default_of_two_types_compared_with_a_third() -> None:
    """default(length(p), null) == false: OPA typed the helper any<null, number>
    and refused the bundle (rego_type_error; found by the drift test in CI)."""
    cond = ir.Compare(
        "==", ir.Default(ir.Length(ir.Param("allowed")), ir.Literal(None)), ir.Literal(False)
    )
    rule = Rule(id="GEN-3", title="t", severity="deny", condition=cond, message=Message(("m",)))
    pack = Pack("gen", "1.0.0", (rule,), (ParamSpec("allowed", {"type": "array"}, ["a"]),))
    doc = Document({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}, "x", 0, 1)
    for engine in (NativeEngine([pack]), OpaEngine([pack]), RegopyEngine([pack])):
        assert engine.evaluate_all([doc]) == []


def test_default_of_a_typed_value_that_may_be_missing() -> None:
    """quantity(), length() and arithmetic have a known type but may be missing:
    default() must still fall back (found by `policykit verify examples/platform`)."""
    path = ir.Path(ir.OBJECT_ROOT, ("spec", "gpus"))
    cond = ir.Compare(
        ">",
        ir.Arith("+", ir.Default(ir.Quantity(path), ir.Literal(0)), ir.Literal(1)),
        ir.Literal(0),
    )
    length = ir.Compare("==", ir.Default(ir.Length(path), ir.Literal(-1)), ir.Literal(-1))
    from policykit.ir.rule import Message, Rule

    rules = tuple(
        Rule(id=f"DEF-{i}", title="t", severity="deny", condition=c, message=Message(("m",)))
        for i, c in enumerate((cond, length))
    )
    pack = Pack("d", "1.0.0", rules)
    results = _run(
        pack, [{"apiVersion": "v1", "kind": "Thing", "metadata": {"name": "x"}, "spec": {}}]
    )
    assert len(results["native"]) == 2
    for name, got in results.items():
        assert got == results["native"], name
