"""Cross-object rules read as joins (policykit/ir/joins.py): the reference
engine indexes the inventory once per run and looks each object up, and a sum
or count over a join is computed once per key. Whatever it indexes, it finds
exactly what the plain reading finds (``remember=False``)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policykit.engines.native import NativeEngine, _hashable
from policykit.engines.rego import OpaEngine, RegopyEngine
from policykit.ir import nodes as ir
from policykit.ir.joins import grouped_of, join_of, joins_in
from policykit.ir.rule import Message, Pack, ParamSpec, Rule
from policykit.model import Document, Finding
from policykit.packs import load_packs
from policykit.values import json_equal
from tests.conftest import examples
from tests.strategies import KINDS, RuleGen, json_value, scalars
from tests.test_rego_differential import regopy_misreads

OBJ = ir.OBJECT_ROOT


def _key(f: Finding) -> tuple[Any, ...]:
    return (f.doc_index, -1 if f.item is None else f.item, f.rule, f.severity, f.message)


# --- the analysis -------------------------------------------------------------------


def test_the_finops_aggregates_are_grouped_joins() -> None:
    (pack,) = load_packs(["policykit.packs.finops"])
    found = {}
    for rule in pack.rules:
        for n in ir.walk(rule.condition):
            if isinstance(n, ir.Sum) and grouped_of(n) is not None:
                found[rule.id] = grouped_of(n)
    assert set(found) == {"FINOPS-008", "FINOPS-009"}
    hpa, aggregate = found["FINOPS-008"], found["FINOPS-009"]
    assert hpa is not None and aggregate is not None
    assert len(hpa.join.item_keys) == 3 and not hpa.join.item_only
    assert len(aggregate.join.item_keys) == 1 and len(aggregate.join.item_only) == 1


def test_what_is_not_a_join() -> None:
    x = ir.Path("x", ("a",))
    o = ir.Path(OBJ, ("a",))
    lit = ir.Literal("v")

    def f(body: ir.Pred, coll: ir.Value | None = None) -> ir.Filter:
        return ir.Filter("x", ir.Objects() if coll is None else coll, body)

    assert join_of(f(ir.Compare("==", x, o))) is not None
    assert join_of(f(ir.Compare("==", o, x))) is not None  # either side
    assert join_of(f(ir.Compare("==", x, o), ir.Path(OBJ, ("l",)))) is None  # not the inventory
    assert join_of(f(ir.Compare("!=", x, o))) is None
    assert join_of(f(ir.Compare("==", x, lit))) is None  # a constant: a filter, not a join
    assert join_of(f(ir.Compare("==", x, ir.Path("x", ("b",))))) is None
    mixed = ir.Arith("+", x, o)
    assert join_of(f(ir.Compare("==", mixed, o))) is None
    assert join_of(f(ir.Or((ir.Compare("==", x, o), ir.TRUE)))) is None
    nested = ir.Compare("==", ir.Length(ir.Objects()), o)
    assert join_of(f(ir.Compare("==", x, ir.Length(ir.Objects())))) is None
    j = join_of(f(ir.And((ir.Compare("==", x, o), ir.Exists(x), nested))))
    assert j is not None and j.item_only == (ir.Exists(x),) and j.rest == (nested,)
    # a sum whose term reads the object under review is not computed per key
    s = ir.Sum("y", f(ir.Compare("==", x, o)), ir.Path(OBJ, ("n",)))
    assert grouped_of(s) is None and joins_in(s)
    assert grouped_of(ir.Sum("y", f(ir.Compare("==", x, o)), ir.Path("y", ("n",)))) is not None


def test_hashable_keys_are_json_equality() -> None:
    values = [1, 1.0, True, False, 0, -0.0, None, "1", "", [1], [1.0], [True], {"k": 1},
              {"k": 1.0}, {"k": "1"}, [], {}, [[1]], 2**53 + 1, float(2**53), 0.1]  # fmt: skip
    for a in values:
        for b in values:
            assert (_hashable(a) == _hashable(b)) is json_equal(a, b), (a, b)
            if json_equal(a, b):
                assert hash(_hashable(a)) == hash(_hashable(b))


# --- the indexed evaluation is the plain reading ---------------------------------------

ODD_KEYS = [1, 1.0, True, False, 0, -0.0, None, "1", "x", "y", [1], [1.0], {"k": 1}, {"k": 1.0}]
AMOUNTS = st.one_of(
    st.integers(-5, 5),
    st.sampled_from([0.1, 0.2, 0.25, -0.3, 1e-7, 2.5e6, 1e300, 1e-300, 2**53 + 1, 2**70, 0.0]),
    st.floats(-1e3, 1e3, allow_nan=False),
)


@st.composite
def inventories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Objects whose keys collide often: few names, kinds and labels, and
    values that are equal across types (1, 1.0) or only look so (true, "1")."""
    out: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 7))):
        meta: dict[str, Any] = {}
        if draw(st.integers(0, 5)):
            meta["name"] = draw(st.sampled_from(["a", "b", "c", 1]))
        if draw(st.booleans()):
            meta["namespace"] = draw(st.sampled_from(["prod", "dev"]))
        if draw(st.booleans()):
            meta["labels"] = {"team": draw(st.sampled_from(["x", "y", 1]))}
        spec: dict[str, Any] = {}
        for k in ("a", "b"):
            if draw(st.integers(0, 3)):
                spec[k] = draw(st.one_of(st.sampled_from(ODD_KEYS), json_value(1)))
        if draw(st.integers(0, 3)):
            spec["n"] = draw(st.one_of(AMOUNTS, scalars))
        kind = draw(st.sampled_from([*KINDS, "Thing"]))
        out.append({"apiVersion": "v1", "kind": kind, "metadata": meta, "spec": spec})
    # the same object twice, or another with its identity: both are left out
    for o in draw(st.lists(st.sampled_from(out), max_size=2)):
        out.append(o if draw(st.booleans()) else {**o, "spec": {"n": draw(AMOUNTS)}})
    return draw(st.permutations(out))


ITEM_PATHS = [("spec", "a"), ("spec", "b"), ("metadata", "name"), ("kind",), ("metadata", "labels")]


@st.composite
def join_packs(draw: st.DrawFn) -> Pack:
    params: dict[str, Any] = {}
    specs = []
    if draw(st.booleans()):
        params["limit"] = draw(AMOUNTS)
        specs.append(ParamSpec("limit", {"type": "number"}, params["limit"]))
    gen = RuleGen(draw, params, inventory=True)
    rules = []
    for i in range(1, draw(st.integers(1, 3)) + 1):
        v = gen.var()
        conj: list[ir.Pred] = []
        for _ in range(draw(st.integers(1, 3))):
            segs = draw(st.sampled_from(ITEM_PATHS))
            item: ir.Value = ir.Path(v, segs)
            # mostly the same field on both sides: an object is then in its own group
            same = draw(st.integers(0, 2))
            obj: ir.Value = ir.Path(OBJ, segs if same else draw(st.sampled_from(ITEM_PATHS)))
            if draw(st.integers(0, 3)) == 0:
                item = gen.value(1, [v])  # maybe not on the item alone: then not a key
            if draw(st.integers(0, 3)) == 0:
                obj = gen.value(1, [])
            if draw(st.booleans()):
                item, obj = obj, item
            conj.append(ir.Compare("==", item, obj))
        conj += [gen.pred(1, [v]) for _ in range(draw(st.integers(0, 2)))]
        conj = draw(st.permutations(conj))
        cut = draw(st.integers(0, len(conj)))
        body: ir.Pred = ir.And((*conj[:cut], ir.And(tuple(conj[cut:]))))
        filt = ir.Filter(v, ir.Objects(), body)
        w = gen.var()
        shape = draw(st.sampled_from(["sum", "sum", "count", "filter", "any", "length"]))
        value: ir.Value
        if shape == "sum":
            term = ir.Path(w, ("spec", "n")) if draw(st.integers(0, 2)) else gen.value(1, [w])
            value = ir.Sum(w, filt, term)
        elif shape == "count":
            value = ir.Count(w, filt, gen.pred(1, [w]))
        elif shape == "length":
            value = ir.Length(filt)
        else:
            value = filt
        cond: ir.Pred = ir.TRUE
        if shape == "any":
            cond = ir.Quantifier("any", w, filt, gen.pred(1, [w]))
            value = ir.Length(filt)
        elif draw(st.booleans()):
            cond = ir.Compare(draw(st.sampled_from([">", "<=", "=="])), value, gen.value(1, []))
        parts = (f"r{i} ", value, " ", ir.Path(OBJ, ("metadata", "name")))
        rules.append(Rule(f"GEN-{i}", "t", "deny", cond, Message(parts)))
    return Pack("gen", "1.0.0", tuple(rules), tuple(specs))


def _findings(engine: NativeEngine, objs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    engine.set_inventory(objs)
    docs = [Document(o, "gen.yaml", i, 1) for i, o in enumerate(objs)]
    return sorted(map(_key, engine.evaluate_all(docs)))


@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(pack=join_packs(), objs=inventories())
def test_indexed_evaluation_is_the_plain_reading(pack: Pack, objs: list[dict[str, Any]]) -> None:
    fast = NativeEngine([pack])
    for run in (objs, objs[: len(objs) // 2 + 1], objs):
        want = _findings(NativeEngine([pack], remember=False), run)
        assert _findings(fast, run) == want
        assert _findings(fast, run[::-1]) == sorted(
            _findings(NativeEngine([pack], remember=False), run[::-1])
        )


def test_sums_less_the_object_under_review_are_exact() -> None:
    """A group total less the object's own term is what adding up the others
    gives: in integers, in exact decimals, and when the decimals would round."""
    x, w = "x", "w"
    filt = ir.Filter(
        x, ir.Objects(), ir.Compare("==", ir.Path(x, ("spec", "g")), ir.Path(OBJ, ("spec", "g")))
    )
    total = ir.Sum(w, filt, ir.Path(w, ("spec", "n")))
    pack = Pack("gen", "1.0.0", (Rule("GEN-1", "t", "deny", ir.TRUE, Message(("", total))),))
    assert grouped_of(total) is not None
    for amounts in (
        [1, 2, 3, 2**70],
        [0.1, 0.2, 0.3, 7],
        [1e300, 1e-300, 0.5, -1e300],
        [1e40, 1e-30, -1e40, 3],
        [2**53 + 1, 0.5, 2**53],
        ["x", 1, None, 2.5],
    ):
        objs = [
            {"kind": "K", "metadata": {"name": str(i)}, "spec": {"g": "same", "n": n}}
            for i, n in enumerate(amounts)
        ]
        objs.append(objs[0])  # a duplicate identity: left out with it
        want = _findings(NativeEngine([pack], remember=False), objs)
        assert _findings(NativeEngine([pack]), objs) == want, amounts


# --- the compiled Rego indexes the same joins -------------------------------------------

INT_AMOUNTS = st.integers(-5, 5)


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(pack=join_packs(), objs=inventories(), data=st.data())
def test_rego_joins_agree_with_the_reference(
    pack: Pack, objs: list[dict[str, Any]], data: st.DataObject
) -> None:
    """regopy and real OPA, one object per query and in batch, find what the
    reference finds. Amounts are integers here: OPA adds decimals in binary."""
    for o in objs:
        if "n" in o["spec"]:
            o["spec"]["n"] = data.draw(INT_AMOUNTS)
    want = _findings(NativeEngine([pack]), objs)
    engines: list[Any] = [OpaEngine([pack]), OpaEngine([pack], mode="object")]
    if not regopy_misreads(pack, objs, [m[-1] for m in want]):
        engines.append(RegopyEngine([pack], mode="object"))
    for engine in engines:
        engine.set_inventory(objs)
        docs = [Document(o, "gen.yaml", i, 1) for i, o in enumerate(objs)]
        assert sorted(map(_key, engine.evaluate_all(docs))) == want, type(engine).__name__


def _eq(a: ir.Value, b: ir.Value) -> ir.Compare:
    return ir.Compare("==", a, b)


def test_rego_join_regression_repeated_keys_and_a_whole_item() -> None:
    """Found by the draws above: one filter with the same item key twice (equal
    to ``object.spec.a`` and to ``object.spec.a.a``), and another whose item
    conjunct reads the whole item (``v4 == null``). The compiled Rego was
    rejected by OPA's type checker."""
    a, aa = ir.Path(OBJ, ("spec", "a")), ir.Path(OBJ, ("spec", "a", "a"))
    v1a, v4a = ir.Path("v1", ("spec", "a")), ir.Path("v4", ("spec", "a"))
    name = ir.Path(OBJ, ("metadata", "name"))
    null = ir.Literal(None)
    first = ir.Filter("v1", ir.Objects(), ir.And((ir.And((
        _eq(v1a, a), _eq(v1a, aa), _eq(v1a, a),
        ir.Quantifier("all", "v2", null, _eq(a, a)),
        _eq(null, a),
    )),)))  # fmt: skip
    second = ir.Filter("v4", ir.Objects(), ir.And((ir.And((
        _eq(a, a), _eq(v4a, a), _eq(ir.Path("v4", ()), null),
    )),)))  # fmt: skip
    rules = (
        Rule("GEN-1", "t", "deny", ir.TRUE,
             Message(("r1 ", ir.Sum("v3", first, ir.Path("v3", ("spec", "n"))), " ", name))),
        Rule("GEN-2", "t", "deny", ir.TRUE,
             Message(("r2 ", ir.Sum("v5", second, ir.Path("v5", ("spec", "n"))), " ", name))),
    )  # fmt: skip
    pack = Pack("gen", "1.0.0", rules, (ParamSpec("limit", {"type": "number"}, 0),))
    inventories_: list[list[dict[str, Any]]] = [
        [{"apiVersion": "v1", "kind": "Thing", "metadata": {}, "spec": {}}],
        [
            {"apiVersion": "v1", "kind": "Thing", "metadata": {"name": n}, "spec": s}
            for n, s in [("a", {"a": "x", "n": 1}), ("b", {"a": "x", "n": 2}),
                         ("c", {"a": {"a": "x"}, "n": 3}), ("d", {"n": 4})]
        ],
    ]  # fmt: skip
    for objs in inventories_:
        want = _findings(NativeEngine([pack]), objs)
        engines: list[Any] = [OpaEngine([pack]), OpaEngine([pack], mode="object")]
        engines.append(RegopyEngine([pack], mode="object"))
        for engine in engines:
            engine.set_inventory(objs)
            docs = [Document(o, "gen.yaml", i, 1) for i, o in enumerate(objs)]
            assert sorted(map(_key, engine.evaluate_all(docs))) == want, type(engine).__name__


def test_a_bare_item_compared_with_a_constant_in_a_helper() -> None:
    """The same defect without a join: ``x == null`` before ``x.spec.a`` in a
    helper function (here the body of a ``not``) made OPA type ``x`` as null."""
    x = ir.Path("x", ())
    body = ir.Not(
        ir.And((_eq(x, ir.Literal(None)), _eq(ir.Path("x", ("spec", "a")), ir.Literal(1))))
    )
    cond = ir.Quantifier("any", "x", ir.Path(OBJ, ("spec", "l")), body)
    pack = Pack("gen", "1.0.0", (Rule("GEN-1", "t", "deny", cond, Message(("m",))),))
    objs = [{"kind": "K", "metadata": {"name": "a"}, "spec": {"l": [None, {"a": 1}, 2]}},
            {"kind": "K", "metadata": {"name": "b"}, "spec": {"l": []}}]  # fmt: skip
    want = _findings(NativeEngine([pack]), objs)
    assert [w[0] for w in want] == [0]
    for engine in (OpaEngine([pack]), RegopyEngine([pack], mode="object")):
        docs = [Document(o, "gen.yaml", i, 1) for i, o in enumerate(objs)]
        assert sorted(map(_key, engine.evaluate_all(docs))) == want, type(engine).__name__
