"""The JSON Schema target: validating with the shipped schema (``jsonschema``,
draft 2020-12) gives the reference engine's verdict on every rule it covers;
patterns mean the same in Python's ``re`` and in ECMA-262 (ajv) as in the
dialect; the fields file fits Backstage templates; the build is deterministic."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from policykit.cli.main import cli
from policykit.engines.jsonschema import SchemaChecker
from policykit.engines.native import NativeEngine
from policykit.errors import RegexDialectError
from policykit.ir import nodes as ir
from policykit.ir.check import check_pack
from policykit.ir.regex import compile_portable
from policykit.ir.rule import Message, Pack, Rule, Selector
from policykit.model import Document
from policykit.packs import load_packs
from policykit.targets.base import UnsupportedError
from policykit.targets.jsonschema import build, compile_pack, single_field
from policykit.targets.jsonschema.pattern import schema_pattern
from tests.conftest import FIXTURES, ROOT, examples
from tests.strategies import TEXT, RuleGen, objects, packs

# --- random single-field rules ------------------------------------------------


class FieldRuleGen(RuleGen):
    """Rules JSON Schema can mostly express: paths from the innermost root,
    constants, length, and default with a constant fallback; leaves are
    mostly a field against a constant."""

    def path(self, scope: list[str]) -> ir.Path:
        root = scope[-1] if scope else ir.OBJECT_ROOT
        p = super().path([])
        return ir.Path(
            root, p.segments[1:] if root != ir.OBJECT_ROOT and p.segments else p.segments
        )

    def field(self, scope: list[str]) -> ir.Value:
        kind = self.draw(st.sampled_from(["path", "path", "path", "len", "dflt"]))
        if kind == "len":
            return ir.Length(self.path(scope))
        if kind == "dflt":
            return ir.Default(self.path(scope), self.literal())
        return self.path(scope)

    def const(self) -> ir.Value:
        if self.params and self.draw(st.booleans()):
            return ir.Param(self.draw(st.sampled_from(sorted(self.params))))
        return self.literal()

    def value(self, depth: int, scope: list[str]) -> ir.Value:
        return self.field(scope) if self.draw(st.booleans()) else self.const()

    def pred(self, depth: int, scope: list[str]) -> ir.Pred:
        kind = self.draw(st.sampled_from(["cmp", "cmp", "strop", "in", "general", "general"]))
        f, c = self.field(scope), self.const()
        if kind == "cmp":
            op = self.draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
            return ir.Compare(op, *((f, c) if self.draw(st.booleans()) else (c, f)))  # type: ignore[arg-type]
        if kind == "strop":
            op = self.draw(st.sampled_from(["startswith", "endswith", "contains"]))
            return ir.StrOp(op, f, ir.Literal(self.draw(TEXT)))  # type: ignore[arg-type]
        if kind == "in":
            return ir.In(f, c) if self.draw(st.booleans()) else ir.In(c, f)
        return super().pred(depth, scope)


@st.composite
def field_packs(draw: st.DrawFn) -> Pack:
    base = draw(packs())
    gen = FieldRuleGen(draw, base.defaults())
    rules = tuple(gen.rule(i) for i in range(1, draw(st.integers(1, 3)) + 1))
    return Pack("gen", "1.0.0", rules, base.params)


def _verdicts(pack: Pack, objs: list[dict[str, Any]]) -> tuple[set[Any], set[Any], int]:
    checker = SchemaChecker([pack], {})
    docs = [Document(o, "gen.yaml", i, 1) for i, o in enumerate(objs)]
    want = {
        (f.doc_index, f.rule)
        for f in NativeEngine([pack]).evaluate_all(docs)
        if (f.pack, f.rule) in checker.covered
    }
    got = {(i, rule) for i, o in enumerate(objs) for _, rule in checker.fired(o)}
    return want, got, len(checker.covered)


@settings(max_examples=examples(300))
@given(pack=field_packs(), objs=st.lists(objects(), min_size=1, max_size=6))
def test_schema_verdicts_equal_reference(pack: Pack, objs: list[dict[str, Any]]) -> None:
    want, got, covered = _verdicts(pack, objs)
    assume(covered)
    assert got == want


@settings(max_examples=examples(100))
@given(pack=packs(), objs=st.lists(objects(), min_size=1, max_size=4))
def test_schema_verdicts_equal_reference_on_any_rules(
    pack: Pack, objs: list[dict[str, Any]]
) -> None:
    """The general rule generator too: whatever the target claims to cover, it
    covers exactly (the rest is reported as not covered, never approximated)."""
    want, got, _ = _verdicts(pack, objs)
    assert got == want


@settings(max_examples=examples(200))
@given(pack=packs(), objs=st.lists(objects(), min_size=1, max_size=4))
def test_jsonschema_rs_and_python_jsonschema_fire_the_same_rules(
    pack: Pack, objs: list[dict[str, Any]]
) -> None:
    """verify validates with jsonschema-rs for speed (policykit/engines/jsonschema.py);
    python-jsonschema, the validator the documents are checked with, must give
    every object the same failing allOf entries."""
    checker = SchemaChecker([pack], {})
    for (name, ids, _), pack_ in zip(checker.validators, [pack], strict=True):
        doc = compile_pack(pack_, check_pack(pack_, {})).document()
        slow = Draft202012Validator(doc)
        for obj in objs:
            want = {
                ids[e.relative_schema_path[1]]
                for e in slow.iter_errors(obj)
                if len(e.relative_schema_path) >= 2 and e.relative_schema_path[0] == "allOf"
            }
            assert {r for p, r in checker.fired(obj) if p == name} == want


def test_the_field_generator_is_mostly_covered() -> None:
    """Guard against the differential test silently testing nothing."""
    covered = total = 0

    @settings(max_examples=examples(200), derandomize=True, database=None)
    @given(pack=field_packs())
    def count(pack: Pack) -> None:
        nonlocal covered, total
        ps = compile_pack(pack, pack.defaults())
        covered += len(ps.covered)
        total += len(pack.rules)

    count()
    assert covered / total > 0.6, (covered, total)


# --- hand-written semantics -----------------------------------------------------

ROOT_ = ir.OBJECT_ROOT


def _rule(cond: ir.Pred, **sel: Any) -> Pack:
    r = Rule("T-001", "t", "deny", cond, Message(("m",)), selector=Selector(**sel))
    return Pack("t", "1.0.0", (r,))


def _fires(pack: Pack, obj: Any) -> bool:
    return bool(SchemaChecker([pack], {}).fired(obj))


def _native(pack: Pack, obj: Any) -> bool:
    return bool(NativeEngine([pack]).evaluate_all([Document(obj, "x", 0, 1)]))


CASES: list[tuple[ir.Pred, list[Any]]] = [
    (ir.Compare("==", ir.Path(ROOT_, ("spec", "n")), ir.Literal(1)), [1, 1.0, True, "1", None]),
    (ir.Compare("!=", ir.Path(ROOT_, ("spec", "n")), ir.Literal(1)), [1, True, "1", None]),
    (ir.Compare(">", ir.Path(ROOT_, ("spec", "n")), ir.Literal(2.5)), [2, 3, 2.5, True, "9"]),
    (ir.Compare("<", ir.Literal(2), ir.Path(ROOT_, ("spec", "n"))), [2, 3, False]),
    (
        ir.Compare("<=", ir.Length(ir.Path(ROOT_, ("spec", "n"))), ir.Literal(1.5)),
        ["é", "😀😀", [1], {}, 5],
    ),
    (ir.Compare("!=", ir.Length(ir.Path(ROOT_, ("spec", "n"))), ir.Literal("x")), ["", 3, None]),
    (ir.Exists(ir.Path(ROOT_, ("spec", "n"))), [None, 0, "", False]),
    (ir.IsType(ir.Path(ROOT_, ("spec", "n")), "number"), [1, True, "1"]),
    (ir.Matches(ir.Path(ROOT_, ("spec", "n")), ir.Literal(r"^a.b$")), ["a\nb", "axb", "axb\n", 1]),
    (ir.StrOp("endswith", ir.Path(ROOT_, ("spec", "n")), ir.Literal("b")), ["ab", "ab\n", "b.", 3]),
    (ir.In(ir.Path(ROOT_, ("spec", "n")), ir.Literal((1, "a", None))), [1.0, True, None, "b"]),
    (ir.In(ir.Literal("x"), ir.Path(ROOT_, ("spec", "n"))), [["x"], ["y"], "x", {"x": 1}]),
    (
        ir.In(ir.Literal("x"), ir.Keys(ir.Path(ROOT_, ("spec", "n")))),
        [{"x": None}, {"y": 1}, ["x"]],
    ),
    (
        ir.Compare(
            "==", ir.Default(ir.Path(ROOT_, ("spec", "n")), ir.Literal("d")), ir.Literal("d")
        ),
        [None, "d", "e", 0],
    ),
    (
        ir.Quantifier("all", "v", ir.Path(ROOT_, ("spec", "n")), ir.Exists(ir.Path("v", ("k",)))),
        [[], [{"k": 1}], [{"k": None}], "x", [1]],
    ),
    (
        ir.Quantifier(
            "any",
            "v",
            ir.Path(ROOT_, ("spec", "n", 1)),
            ir.Compare("==", ir.Path("v", ()), ir.Literal(2)),
        ),
        [[[1], [2]], [[2]], [1, [2]], [[1]]],
    ),
]


@pytest.mark.parametrize("cond,values", CASES, ids=[type(c).__name__ for c, _ in CASES])
def test_leaf_semantics(cond: ir.Pred, values: list[Any]) -> None:
    for negated in (False, True):
        pack = _rule(ir.Not(cond) if negated else cond)
        assert compile_pack(pack, {}).covered, "expected the rule to be covered"
        for v in values:
            for obj in ({"kind": "K", "spec": {"n": v}}, {"kind": "K", "spec": {}}, {"kind": "K"}):
                assert _fires(pack, obj) == _native(pack, obj), (negated, obj)


def test_selector_schema_matches_reference_selection() -> None:
    cond = ir.Exists(ir.Path(ROOT_, ("spec", "owner")))
    pack = _rule(
        ir.Not(cond),
        source="backstage",
        kinds=("Component",),
        namespaces=("def*",),
        exclude_namespaces=("default-x",),
        labels=(("tier", "1"),),
        entity_types=("service",),
    )
    base = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "a", "labels": {"tier": "1"}},
        "spec": {"type": "service"},
    }
    variants = [
        base,
        {**base, "apiVersion": "x.backstage.io/v1"},
        {**base, "apiVersion": "notbackstage.io/v1"},
        {**base, "kind": "API"},
        {**base, "metadata": {**base["metadata"], "namespace": "default-x"}},
        {**base, "metadata": {**base["metadata"], "namespace": "other"}},
        {**base, "metadata": {"name": "a", "labels": {"tier": 1}}},
        {**base, "spec": {"type": "website"}},
        {**base, "metadata": "nope"},
    ]
    assert any(_native(pack, v) for v in variants) and not all(_native(pack, v) for v in variants)
    for v in variants:
        assert _fires(pack, v) == _native(pack, v), v


def test_unsupported_rules_are_reported_not_approximated() -> None:
    arith = ir.Compare(">", ir.Arith("+", ir.Path(ROOT_, ("a",)), ir.Literal(1)), ir.Literal(2))
    two_fields = ir.Compare("==", ir.Path(ROOT_, ("a",)), ir.Path(ROOT_, ("b",)))
    string_order = ir.Compare("<", ir.Path(ROOT_, ("a",)), ir.Literal("m"))
    boundary = ir.Matches(ir.Path(ROOT_, ("a",)), ir.Literal(r"\bx"))
    for cond in (arith, two_fields, string_order, boundary):
        ps = compile_pack(_rule(cond), {})
        assert not ps.covered and len(ps.uncovered) == 1
        assert "target jsonschema cannot express" in ps.uncovered[0][1]
    with pytest.raises(UnsupportedError):
        schema_pattern(r"[\W]")


# --- the pattern dialect in both schema engines -----------------------------------

ATOMS = [
    "a",
    "b",
    "é",
    "😀",
    "-",
    ".",
    r"\d",
    r"\w",
    r"\D",
    r"\W",
    r"\.",
    r"\-",
    r"\#",
    r"\t",
    r"\x41",
    "[a-c]",
    "[^a]",
    r"[\d_]",
    "[]a]",
    "[^]a]",
    "[-a]",
    r"[\w.]",
    "{",
    "}",
    "]",
    "#",
    " ",
]
TEXTS = st.text(alphabet="ab-_.#{}]\n\r\tA0é😀٣ \u2028", max_size=6)


@st.composite
def dialect_patterns(draw: st.DrawFn) -> str:
    def piece(depth: int) -> str:
        kind = draw(
            st.sampled_from(["atom", "atom", "quant", "group", "alt"] if depth else ["atom"])
        )
        if kind == "atom":
            return draw(st.sampled_from(ATOMS))
        if kind == "quant":
            q = draw(st.sampled_from(["*", "+", "?", "{1,2}", "{2}", "*?", "+?"]))
            return "(?:" + piece(depth - 1) + ")" + q
        if kind == "group":
            opener = draw(st.sampled_from(["(", "(?:", "(?P<g>"]))
            return opener + piece(depth - 1) + piece(depth - 1) + ")"
        return piece(depth - 1) + "|" + piece(depth - 1)

    body = "".join(piece(2) for _ in range(draw(st.integers(1, 3))))
    return draw(st.sampled_from(["", "^", r"\A"])) + body + draw(st.sampled_from(["", "$"]))


def _portable(p: str) -> bool:
    try:
        compile_portable(p)
        return True
    except RegexDialectError:
        return False


@settings(max_examples=examples(400))
@given(pattern=dialect_patterns(), texts=st.lists(TEXTS, min_size=1, max_size=8))
def test_schema_pattern_means_the_dialect_in_python(pattern: str, texts: list[str]) -> None:
    assume(_portable(pattern))
    try:
        spelled = schema_pattern(pattern)
    except UnsupportedError:
        assume(False)
        raise
    ref = compile_portable(pattern)
    for t in texts:
        # jsonschema runs re.search in Unicode mode, exactly like this
        assert (re.search(spelled, t) is not None) == (ref.search(t) is not None), (spelled, t)


# --- build, fields, Backstage ------------------------------------------------------


def _starter() -> list[Pack]:
    return load_packs(["policykit.packs.starter", str(ROOT / "examples/packs/acme.py")])


def test_documents_are_valid_2020_12_and_agree_on_the_examples() -> None:
    from policykit.loader import load_paths

    packs_ = _starter()
    checker = SchemaChecker(packs_, {})
    assert {r for _, r in checker.covered} >= {"CAT-001", "CAT-002", "CAT-003", "ACME-001"}
    docs = load_paths([str(ROOT / "examples")]).documents
    want: dict[Any, set[Any]] = defaultdict(set)
    for f in NativeEngine(packs_, {}).evaluate_all(docs):
        if (f.pack, f.rule) in checker.covered:
            want[(f.file, f.doc_index)].add((f.pack, f.rule))
    assert sum(map(len, want.values())) >= 5
    for d in docs:
        assert checker.fired(d.obj) == want[(d.file, d.index)], d.file


def test_backstage_corpus_entities_agree() -> None:
    from policykit.loader import load_paths

    packs_ = _starter()
    checker = SchemaChecker(packs_, {})
    docs = load_paths([str(FIXTURES / "backstage")]).documents
    assert len(docs) > 20
    for f_doc in docs:
        want = {
            (f.pack, f.rule)
            for f in NativeEngine(packs_, {}).evaluate_all([f_doc])
            if (f.pack, f.rule) in checker.covered
        }
        assert checker.fired(f_doc.obj) == want, f_doc.file


def test_fields_fit_backstage_template_parameters() -> None:
    """The per-field schemas drop into a real template's ``parameters`` and
    the form then accepts/refuses values as the rule does on the entity."""
    packs_ = _starter()
    fields = json.loads(build(packs_, {})["starter.fields.json"])["fields"]
    name = fields["metadata.name"][0]
    assert name["rule"] == "CAT-002" and name["required"] is True
    tpl = yaml.safe_load(
        (FIXTURES / "backstage/create-app-default-app/template/template.yaml").read_text()
    )
    step = tpl["spec"]["parameters"][0]
    step["properties"]["name"] = {**step["properties"]["name"], "allOf": [name["schema"]]}
    form = Draft202012Validator({"type": "object", **step})
    pack = next(p for p in packs_ if p.name == "starter")
    for value in ["svc-a", "-bad", "a" * 64, "ok.name_1", "é"]:
        entity = {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": value},
            "spec": {"owner": "team-a", "lifecycle": "production", "type": "service"},
        }
        fires = any(
            f.rule == "CAT-002"
            for f in NativeEngine([pack], {}).evaluate_all([Document(entity, "x", 0, 1)])
        )
        assert form.is_valid({"name": value}) is not fires, value
    owner = fields["spec.owner"][0]
    assert owner["required"] is True and owner["kinds"][0] == "Component"


def test_single_field_requiredness() -> None:
    opt = Rule(
        "T-001",
        "t",
        "deny",
        ir.Compare("==", ir.Path(ROOT_, ("spec", "x")), ir.Literal("bad")),
        Message(("m",)),
    )
    req = Rule(
        "T-002", "t", "deny", ir.Not(ir.Exists(ir.Path(ROOT_, ("spec", "x")))), Message(("m",))
    )
    two = Rule(
        "T-003",
        "t",
        "deny",
        ir.Compare("==", ir.Path(ROOT_, ("spec", "x")), ir.Path(ROOT_, ("spec", "y"))),
        Message(("m",)),
    )
    a, b = single_field(opt, {}), single_field(req, {})
    assert a is not None and a.required is False and a.path == "spec.x"
    assert b is not None and b.required is True
    assert single_field(two, {}) is None


def test_build_cli_deterministic(tmp_path: Path) -> None:
    runner = CliRunner()
    outs = []
    for n in ("a", "b"):
        r = runner.invoke(cli, ["build", "--target", "jsonschema", "--out", str(tmp_path / n)])
        assert r.exit_code == 0, r.output
        outs.append({p.name: p.read_bytes() for p in sorted((tmp_path / n).iterdir())})
    assert outs[0] == outs[1]
    assert set(outs[0]) == {
        "index.json",
        "starter.schema.json",
        "starter.fields.json",
        "acme.schema.json",
        "acme.fields.json",
    }
    index = json.loads(outs[0]["index.json"])["rules"]
    assert [r["rule"] for r in index if r["pack"] == "starter"][:3] == [
        "CAT-001",
        "CAT-002",
        "CAT-003",
    ]
    assert all(r["covered"] or r["reason"] for r in index)


def test_adversarial_strings_stay_data() -> None:
    evil = '"}]{\\n#\u2028$(?x)'
    cond = ir.Or(
        (
            ir.Compare("==", ir.Path(ROOT_, ("spec", evil)), ir.Literal(evil)),
            ir.StrOp("contains", ir.Path(ROOT_, ("spec", "s")), ir.Literal(evil)),
        )
    )
    pack = _rule(cond, kinds=(evil,))
    text = build([pack], {})["t.schema.json"]
    doc = json.loads(text)
    Draft202012Validator.check_schema(doc)
    for obj in (
        {"kind": evil, "spec": {evil: evil}},
        {"kind": evil, "spec": {"s": "x" + evil}},
        {"kind": evil, "spec": {"s": evil[:-1]}},
    ):
        assert _fires(pack, obj) == _native(pack, obj)


# --- ajv (ECMA-262), what Backstage's forms run -------------------------------------


@settings(max_examples=examples(300))
@given(pattern=dialect_patterns(), texts=st.lists(TEXTS, min_size=1, max_size=8))
def test_schema_pattern_means_the_dialect_in_ajv(ajv: Any, pattern: str, texts: list[str]) -> None:
    assume(_portable(pattern))
    try:
        spelled = schema_pattern(pattern)
    except UnsupportedError:
        assume(False)
        raise
    ref = compile_portable(pattern)
    got = ajv.ask({"regex": spelled, "texts": texts})
    assert got == [ref.search(t) is not None for t in texts], spelled


@settings(max_examples=examples(200))
@given(pack=field_packs(), objs=st.lists(objects(), min_size=1, max_size=5))
def test_ajv_gives_the_reference_verdicts(ajv: Any, pack: Pack, objs: list[dict[str, Any]]) -> None:
    ps = compile_pack(pack, pack.defaults())
    assume(ps.covered)
    docs = [Document(o, "gen.yaml", i, 1) for i, o in enumerate(objs)]
    fired: dict[int, set[str]] = defaultdict(set)
    for f in NativeEngine([pack]).evaluate_all(docs):
        fired[f.doc_index].add(f.rule)
    ids = [c.rule.id for c in ps.covered]
    answers = ajv.ask({"schema": ps.document(), "instances": objs})
    for i, (ok, failing) in enumerate(answers):
        want = sorted(ids.index(r) for r in fired[i] if r in ids)
        assert failing == want, (i, objs[i])
        assert ok is (not want)
