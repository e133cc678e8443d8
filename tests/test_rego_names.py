"""Names in the generated Rego come from the DSL (issue 16 item 2): no compiler
temporaries (``t__6``), no helpers numbered by a counter (``_finops_001_or11``),
the same pack gives byte-identical output, and a lambda variable named like a
name the compiler writes (``f``, ``i``, ``values``, ``count``) changes nothing."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policykit.ir import nodes as ir
from policykit.ir.rule import Each, Message, Pack, Rule
from policykit.packs import BUILTIN_CATALOG, load_packs
from policykit.targets import gatekeeper
from policykit.targets.gatekeeper.compiler import GatekeeperCompiler
from policykit.targets.rego.compiler import RegoCompiler, RegoOptions, compile_pack, compile_packs
from tests.strategies import objects, packs
from tests.test_rego_differential import _run

ALL_PACKS = ["policykit.packs.starter", *BUILTIN_CATALOG]  # examples/platform: the catalog
_DEFINED = re.compile(r"^(_[a-z0-9_]+?)(?:\(| :=| if\b)", re.MULTILINE)
_RULE_FN = re.compile(r"^_[a-z0-9]+(?:_[a-z0-9]+)*?_[0-9]+$")


def _modules() -> dict[str, str]:
    """Every module of the bundle and every template's Rego, by a readable key."""
    packs_ = load_packs(ALL_PACKS)
    # the generated modules (the library in rego/ is written by hand)
    out = {p: t for p, t in compile_packs(packs_, RegoOptions()).items() if "/lib/" not in p}
    files, _ = gatekeeper.build(packs_, {})
    for name, docs in sorted(files.items()):
        if name.startswith("templates/"):
            for doc in docs:
                code = doc["spec"]["targets"][0]["code"][0]["source"]
                out[f"gatekeeper/{doc['metadata']['name']}"] = code["rego"]
    return out


@pytest.fixture(scope="module")
def modules() -> dict[str, str]:
    return _modules()


def _rule_functions(packs_: list[Pack]) -> set[str]:
    return {"_" + r.id.lower().replace("-", "_") for p in packs_ for r in p.rules}


def test_no_temporaries_and_no_numbered_helpers(modules: dict[str, str]) -> None:
    rule_fns = _rule_functions(load_packs(ALL_PACKS))
    assert len(modules) > 20
    for path, text in modules.items():
        assert "t__" not in text, path
        assert "\x01" not in text and "\x02" not in text, f"{path}: a placeholder left"
        for name in set(_DEFINED.findall(text)):
            if name in rule_fns:
                continue  # the rule's own function: _finops_001
            # a helper: the rule's function (or none, for the pack's) + what it computes
            rest = next((name[len(fn) :] for fn in rule_fns if name.startswith(fn + "_")), name)
            assert not rest[-1].isdigit(), f"{path}: helper {name} is numbered"


def test_the_output_is_deterministic(modules: dict[str, str]) -> None:
    assert _modules() == modules


def test_finops_001_reads_like_a_hand_written_rule() -> None:
    (finops,) = load_packs(["policykit.packs.finops"])
    rule = next(r for r in finops.rules if r.id == "FINOPS-001")
    text = compile_pack(dataclasses.replace(finops, rules=(rule,)))
    for line in (
        "\tcontainers := _finops_001_containers(obj)",
        "\tsome i",
        "\tc := containers[i]",
        "\t_finops_001_missing_resources(c)",
        "_finops_001_containers(obj) := containers if {",
        "\tnot _finops_001_has_requests_cpu(c)",
        "_finops_001_has_limits_memory(c) if {",
    ):
        assert line in text.split("\n"), line


def test_a_sub_expression_the_dsl_repeats_is_one_helper() -> None:
    """The DSL inlines a Python function at each call: the Rego defines the
    result once per pack, and a helper several rules call has no rule's name."""
    (finops,) = load_packs(["policykit.packs.finops"])
    text = compile_pack(finops)
    definitions = _DEFINED.findall(text)
    assert definitions.count("_containers") == 1
    assert "_finops_001_containers" not in definitions  # shared with FINOPS-003...
    assert "\tcontainers := _containers(obj)" in text.split("\n")


def test_each_compiler_names_its_target() -> None:
    (starter,) = load_packs(["policykit.packs.starter"])
    assert RegoCompiler(starter, RegoOptions()).target == "rego"
    assert GatekeeperCompiler(starter, RegoOptions()).target == "gatekeeper"


# --- lambda variables named like the compiler's own names ------------------------------

_TRICKY = ["f", "i", "values", "count", "k", "key", "containers", "obj_2"]


def _rename(node: Any, names: dict[str, str]) -> Any:
    """``node`` with its bound variables renamed (paths, binders, each)."""
    if isinstance(node, tuple):
        return tuple(_rename(x, names) for x in node)
    if not isinstance(node, (ir.Node, Each, Message)):
        return node
    fields: Any = dataclasses.fields(node)  # type: ignore[arg-type]
    changes = {f.name: _rename(getattr(node, f.name), names) for f in fields}
    if isinstance(node, ir.Path) and node.root in names:
        changes["root"] = names[node.root]
    if hasattr(node, "var") and node.var in names:
        changes["var"] = names[node.var]
    return dataclasses.replace(node, **changes)


def _tricky(pack: Pack, pick: list[str]) -> Pack:
    rules = []
    for rule in pack.rules:
        bound = sorted(
            {n.root for n in ir.walk(rule.condition) if isinstance(n, ir.Path)} - {ir.OBJECT_ROOT}
            | ({rule.each.var} if rule.each else set())
        )
        names = dict(zip(bound, pick, strict=False))
        rules.append(
            dataclasses.replace(
                rule,
                condition=_rename(rule.condition, names),
                each=_rename(rule.each, names),
                message=_rename(rule.message, names),
            )
        )
    return dataclasses.replace(pack, rules=tuple(rules))


def test_rename_reaches_every_binder() -> None:
    x = ir.Path("v1", ("a",))
    rule = Rule(
        id="T-001",
        title="t",
        severity="deny",
        condition=ir.Quantifier("any", "v1", ir.Path(ir.OBJECT_ROOT, ("l",)), ir.Exists(x)),
        message=Message(("m",)),
    )
    (renamed,) = _tricky(Pack(name="t", version="1.0.0", rules=(rule,)), ["values"]).rules
    q = renamed.condition
    assert isinstance(q, ir.Quantifier) and q.var == "values"
    assert q.body == ir.Exists(ir.Path("values", ("a",)))


@pytest.mark.slow
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(
    pack=packs(),
    objs=st.lists(objects(), min_size=1, max_size=4),
    pick=st.permutations(_TRICKY),
)
def test_variables_named_like_the_compilers_names_change_nothing(
    pack: Pack, objs: list[dict[str, Any]], pick: list[str]
) -> None:
    results = _run(_tricky(pack, list(pick)), objs)
    native = results.pop("native")
    for name, got in results.items():
        assert got == native, f"{name} disagrees with the reference engine"
