"""The IR pass layer (issue 18, item 2): the one definition of a constant
(``policykit/ir/reads.py``), the folding every target does with it
(``ir.passes.Folder``), and what a rule reads (parameters, the inventory),
held to the reference evaluator on drawn rules and objects."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policykit.engines.native import NativeEngine
from policykit.ir import nodes as ir
from policykit.ir.evaluate import INVENTORY, Evaluator
from policykit.ir.passes import (
    Folder,
    fold_constant_keys,
    is_constant,
    node_features,
    params_used,
    uses_inventory,
)
from policykit.ir.rule import Message, Pack, Rule, Selector
from policykit.model import Document
from policykit.targets.base import UnsupportedError
from policykit.targets.features import features_of
from policykit.targets.jsonschema import SchemaCompiler
from policykit.values import MISSING, json_equal
from tests.conftest import examples
from tests.strategies import RuleGen, objects, packs

SETTINGS = settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _same(a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING:
        return a is b
    return json_equal(a, b)


@st.composite
def _node_and_params(draw: st.DrawFn) -> tuple[ir.Node, dict[str, Any]]:
    params: dict[str, Any] = {}
    if draw(st.booleans()):
        params["limit"] = draw(st.integers(-5, 5))
    if draw(st.booleans()):
        params["allowed"] = draw(st.lists(st.sampled_from(["a", "b", 1]), max_size=3))
    gen = RuleGen(draw, params, inventory=True)
    node: ir.Node = gen.pred(3, []) if draw(st.booleans()) else gen.value(3, [])
    return node, params


@SETTINGS
@given(_node_and_params(), st.lists(objects(), min_size=1, max_size=3), st.data())
def test_a_constant_is_the_same_on_every_object_and_inventory(
    drawn: tuple[ir.Node, dict[str, Any]], docs: list[dict[str, Any]], data: st.DataObject
) -> None:
    """Every part the one definition calls constant evaluates, by the reference
    evaluator on any object and inventory, to what the Folder computes at
    build time; with parameters not inlined, a parameter is not a constant."""
    node, params = drawn
    folder, evaluator = Folder(params), Evaluator(params)
    runtime = Folder(None)
    for n in ir.walk(node):
        if runtime.is_constant(n):
            assert folder.is_constant(n)
            assert not any(isinstance(x, ir.Param) for x in ir.walk(n))
        if not folder.is_constant(n):
            continue
        for obj in docs:
            env = {ir.OBJECT_ROOT: obj, INVENTORY: data.draw(st.sampled_from([[], docs]))}
            if isinstance(n, ir.Pred):
                assert evaluator.pred(n)(env) is folder.pred(n)
            else:
                assert _same(evaluator.value(n)(env), folder.value(n))  # type: ignore[arg-type]


def test_what_is_constant() -> None:
    obj = ir.Path(ir.OBJECT_ROOT, ("spec", "a"))
    item = ir.Path("it", ("a",))
    assert is_constant(ir.Length(ir.Literal("abc")))
    assert not is_constant(obj)
    assert not is_constant(ir.Length(ir.Objects()))  # the inventory varies with the run
    assert is_constant(ir.Param("p")) and not is_constant(ir.Param("p"), params=False)
    assert is_constant(ir.Compare("==", item, ir.Literal(1)), bound={"it"})
    assert not is_constant(ir.Compare("==", item, obj), bound={"it"})
    # a quantifier's own variable is not bound by the quantifier: its body reads items
    assert not is_constant(ir.Quantifier("any", "v", ir.Param("l"), ir.Exists(ir.Path("v", ()))))


def test_the_folder_refuses_what_is_not_constant() -> None:
    with pytest.raises(ValueError, match="not a constant"):
        Folder({}).value(ir.Path(ir.OBJECT_ROOT, ("a",)))
    with pytest.raises(ValueError, match="not a constant"):
        Folder(None).value(ir.Param("limit"))
    assert Folder({"limit": 3}).value(ir.Arith("+", ir.Param("limit"), ir.Literal(1))) == 4
    assert Folder({}).value(ir.Param("absent")) is MISSING
    item = ir.Path("it", ("n",))
    assert Folder({}).pred(ir.Compare(">", item, ir.Literal(1)), {"it": {"n": 2}}) is True


def test_a_json_schema_leaf_over_the_inventory_is_refused_not_evaluated() -> None:
    """``length(objects()) > 2`` reads no field path, but it is not a constant:
    the JSON Schema compiler refuses it (it used to evaluate it without an
    object under review and fail with a KeyError)."""
    pred = ir.Compare(">", ir.Length(ir.Objects()), ir.Literal(2))
    with pytest.raises(UnsupportedError, match="cannot express"):
        SchemaCompiler({}).pos(pred)


def _findings(pack: Pack, params: dict[str, Any], objs: list[dict[str, Any]], inv: bool) -> Any:
    engine = NativeEngine([pack], {pack.name: params})
    if inv:
        engine.set_inventory(objs)
    docs = [Document(obj=o, file=f"o{i}.yaml", index=0, line=1) for i, o in enumerate(objs)]
    return sorted((f.rule, f.message, f.file, f.item or 0) for f in engine.evaluate_all(docs))


@SETTINGS
@given(packs(inventory=True), st.lists(objects(), min_size=1, max_size=3))
def test_a_pack_that_reads_no_inventory_finds_the_same_without_one(
    pack: Pack, objs: list[dict[str, Any]]
) -> None:
    if uses_inventory([pack]):
        return
    defaults = {p.name: p.default for p in pack.params}
    assert _findings(pack, defaults, objs, True) == _findings(pack, defaults, objs, False)


@SETTINGS
@given(packs(), st.lists(objects(), min_size=1, max_size=3), st.data())
def test_a_parameter_no_rule_reads_changes_no_finding(
    pack: Pack, objs: list[dict[str, Any]], data: st.DataObject
) -> None:
    used = set().union(*(params_used(r) for r in pack.rules))
    unused = [p for p in pack.params if p.name not in used]
    if not unused:
        return
    defaults = {p.name: p.default for p in pack.params}
    other = dict(defaults)
    for p in unused:  # another value of the same JSON type
        other[p.name] = data.draw(
            {
                "number": st.integers(-9, 9),
                "array": st.lists(st.integers(0, 3), max_size=2),
                "string": st.sampled_from(["^x", "y$"]),
                "object": st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2),
            }[p.schema["type"]]
        )
    assert _findings(pack, defaults, objs, False) == _findings(pack, other, objs, False)


def _rule(condition: ir.Pred, *parts: str | ir.Value) -> Rule:
    return Rule(
        id="T-1",
        title="t",
        severity="deny",
        condition=condition,
        message=Message(parts or ("m",)),
        selector=Selector(kinds=("Deployment",)),
    )


def test_params_used_and_features() -> None:
    cond = ir.And(
        (
            ir.Compare(">", ir.Length(ir.Path(ir.OBJECT_ROOT, ("spec",))), ir.Param("limit")),
            ir.In(ir.Path(ir.OBJECT_ROOT, ("kind",)), ir.Param("kinds")),
        )
    )
    rule = _rule(cond, "over ", ir.Param("limit"), " by ", ir.Param("shown"))
    assert params_used(rule) == {"limit", "kinds", "shown"}
    assert params_used(cond) == {"limit", "kinds"}
    assert node_features(rule) == {
        "And", "Compare", "Length", "Path", "Param", "In", "Message",
    }  # fmt: skip
    assert node_features(rule) <= features_of(rule)
    assert not uses_inventory([Pack("p", "1.0.0", (rule,), ())])
    crowd = _rule(ir.Compare(">", ir.Count("o", ir.Objects(), ir.And(())), ir.Literal(3)))
    assert uses_inventory([Pack("p", "1.0.0", (rule, crowd), ())])


def test_fold_constant_keys_names_the_field() -> None:
    base = ir.Path(ir.OBJECT_ROOT, ("metadata", "annotations"))
    cond = ir.Exists(ir.Index(base, ir.Param("key")))
    folded = fold_constant_keys(_rule(cond), {"key": "team"})
    assert folded.condition == ir.Exists(
        ir.Path(ir.OBJECT_ROOT, ("metadata", "annotations", "team"))
    )
    # a key that is not a string, or not a constant, stays a look-up
    assert fold_constant_keys(_rule(cond), {"key": 3}).condition == cond
    by_field = ir.Exists(ir.Index(base, ir.Path(ir.OBJECT_ROOT, ("kind",))))
    assert fold_constant_keys(_rule(by_field), {}).condition == by_field
