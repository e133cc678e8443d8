"""The static CEL cost estimate (policykit.targets.k8s.celcost) and the build
check on it (policykit.targets.k8s.limits).

The hand-worked figures follow google/cel-go ``checker/cost.go`` (constants in
``common/cost.go``: identifier and field selection 1, literal 0, list literal
10, string traversal 0.1 per character, regex 0.25 per character of the
pattern) and Kubernetes' sizes
(``staging/src/k8s.io/apiserver/pkg/cel/common/schemas.go``: an unbounded
list holds (3 MiB - 2) / (minimum item size + 1) items, a string 3 MiB - 2
characters), with ``has()`` free (``PresenceTestHasCost(false)``, which
Kubernetes sets in ``apiserver/pkg/cel/environment/base.go``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policykit.targets.k8s import celcost, limits
from policykit.targets.k8s.cel_cost.parser import CelSyntaxError, parse
from policykit.targets.k8s.celcost import TYPICAL, WORST, Range, estimate, root_type

from .conftest import FIXTURES, ROOT, run_policykit

POD = root_type(["Pod"])
ITEMS = (3 * 1024 * 1024 - 2) // 3  # a list of objects: minimum size 2 ("{}") + 1
CHARS = 3 * 1024 * 1024 - 2


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # literals cost 0; a comparison of two scalars ceil(1 * 0.1) = 1
        ("1 == 2", Range(1, 1)),
        # startsWith: ceil(size of the argument 1 * 0.1) = 1
        ("'abc'.startsWith('a')", Range(1, 1)),
        # object 1 + .kind on a struct 1 + == with the shorter side 'Pod': ceil(0.3) = 1
        ("object.kind == 'Pod'", Range(3, 3)),
        # has() is free; its operand's identifier is not
        ("has(object.spec)", Range(1, 1)),
        # all(): range [1,2,3] 10 + init 0 + result 1 + 3 x (loop @not_strictly_false 2
        # + step `@result && x > 0`: 1 ... 1 + 2)
        ("[1, 2, 3].all(x, x > 0)", Range(20, 26)),
        # cel.bind: empty range 10 + init [1, 2] 10 + result x.size() 2, once
        ("cel.bind(x, [1, 2], x.size())", Range(22, 22)),
        # optional selections and index: 1 each, plus the identifier
        ("object.?metadata.?labels['a'].orValue('')", Range(5, 5)),
        # matches: target 3 + ceil((0..CHARS + 1) * 0.1) x ceil(8 * 0.25)
        ("object.metadata.name.matches('^[a-z]+$')", Range(5, 3 + 314573 * 2)),
        # range 3 + result 1 + ITEMS x (loop 2 + step `@result && has(c.resources)` 1..2)
        ("object.spec.containers.all(c, has(c.resources))", Range(4, 4 + ITEMS * 4)),
        # exists: loop `@not_strictly_false(!@result)` 3; step `@result || c.name in [...]`
        # 1 .. 1 + (in: 2 elements + c.name 2 + list literal 10)
        ("object.spec.containers.exists(c, c.name in ['a', 'b'])", Range(4, 4 + ITEMS * 18)),
    ],
)
def test_estimates_follow_cel_go_rules(expr: str, expected: Range) -> None:
    assert estimate(expr, POD, WORST) == expected


def test_the_typical_object_bounds_lists_and_strings() -> None:
    # the same comprehension over 16 containers: 4 + 16 x 4
    assert estimate("object.spec.containers.all(c, has(c.resources))", POD) == Range(4, 68)
    # a string of 16 x 16 characters: ceil(257 * 0.1) = 26, x 2 for the pattern
    assert estimate("object.metadata.name.matches('^[a-z]+$')", POD) == Range(5, 3 + 26 * 2)


def test_a_value_of_unknown_type_is_unbounded_as_in_cel_go() -> None:
    untyped = root_type([])  # no kind: object.spec is dyn
    assert estimate("object.spec.items.all(i, i == 1)", untyped, WORST).hi == celcost.U64
    assert estimate("object.spec.items.all(i, i == 1)", untyped, TYPICAL).hi < 1_000


def test_optional_chains_keep_the_schema_type() -> None:
    """The typed output's form: ``.?f`` and ``orValue`` cost 1 each; cel-go keeps
    no size through an optional, so Kubernetes' bound is lost (unbounded), while
    the typical object still has 16 containers."""
    dep = root_type(["Deployment"])
    expr = (
        "object.?spec.?template.?spec.?containers.orValue([])"
        ".all(c, has(c.resources) && has(c.resources.limits) && 'cpu' in c.resources.limits)"
    )
    # range: object 1 + four `.?` 4 + orValue 1 + [] 10 = 16; result 1; 16 x (loop 2 +
    # step 1 .. 1 + has 1 + has 2 + (in a map: 1 + c.resources.limits 3))
    assert estimate(expr, dep) == Range(17, 17 + 16 * 10)
    assert estimate(expr, dep, WORST).hi == celcost.U64
    assert estimate("object.?spec.?replicas.orValue(1) > 3", dep, WORST) == Range(5, 5)


_PATHS = ["c.name", "c.image", "c.workingDir"]
_LISTS = ["object.spec.containers", "object.spec.initContainers"]


@st.composite
def _pod_expr(draw: st.DrawFn, depth: int = 0) -> str:
    """A boolean CEL expression over a Pod (variables c, e bound by comprehensions)."""
    leaf = st.sampled_from(
        [
            *(f"{p} == 'x'" for p in _PATHS),
            *(f"{p}.startsWith('ab')" for p in _PATHS),
            *(f"{p}.matches('^[a-z]+$')" for p in _PATHS),
            *(f"{p}.contains('-')" for p in _PATHS),
            "has(c.resources)",
            "size(c.ports) > 1",
            "c.env.exists(e, e.name == 'A')",
        ]
    )
    if depth >= 2:
        return f"{draw(_LISTS_ST)}.all(c, {draw(leaf)})"
    kind = draw(st.sampled_from(["all", "exists", "and", "or", "not", "leaf"]))
    if kind in ("all", "exists"):
        return f"{draw(_LISTS_ST)}.{kind}(c, {draw(leaf)} || {draw(_pod_expr(depth + 1))})"
    if kind in ("and", "or"):
        op = "&&" if kind == "and" else "||"
        return f"({draw(_pod_expr(depth + 1))} {op} {draw(_pod_expr(depth + 1))})"
    if kind == "not":
        return f"!({draw(_pod_expr(depth + 1))})"
    return f"{draw(_LISTS_ST)}.all(c, {draw(leaf)})"


_LISTS_ST = st.sampled_from(_LISTS)


@settings(max_examples=60, deadline=None)
@given(_pod_expr(), st.integers(min_value=1, max_value=64))
def test_the_estimate_grows_with_the_object_and_stays_within_the_worst_case(
    expr: str, n: int
) -> None:
    """Properties of cost.go's arithmetic: min <= max, a larger object costs no
    less, and Kubernetes' bound (3 MiB) is above every smaller model."""
    small, large = estimate(expr, POD, celcost.Sizes(n)), estimate(expr, POD, celcost.Sizes(n + 1))
    worst = estimate(expr, POD, WORST)
    assert small.lo <= small.hi
    assert small.lo == large.lo == worst.lo  # the minimum does not depend on sizes
    assert small.hi <= large.hi <= worst.hi


def _policy(variables: list[str], validations: list[str], kinds: str = "'Pod'") -> dict[str, Any]:
    return {
        "kind": "ValidatingAdmissionPolicy",
        "spec": {
            "matchConditions": [{"name": "k", "expression": f"object.kind in [{kinds}]"}],
            "variables": [{"name": f"v{i}", "expression": e} for i, e in enumerate(variables)],
            "validations": [{"expression": e} for e in validations],
        },
    }


def test_a_variable_keeps_the_size_of_its_value_and_counts_once() -> None:
    pc = celcost.policy_cost(
        _policy(["object.spec.containers"], ["variables.v0.all(c, has(c.image))"] * 2), WORST
    )
    costs = dict(pc.expressions)
    # the variable: object 1 + spec 1 + containers 1
    assert costs["spec.variables[0].expression"] == Range(3, 3)
    # variables 1 + .v0 1 + result 1 + ITEMS x (2 + 1..2): the list's size went through
    assert costs["spec.validations[0].expression"] == Range(3, 3 + ITEMS * 4)
    # the budget counts the variable once and each validation
    assert pc.total == Range(3 + 3 + 3, 3 + 2 * (3 + ITEMS * 4))
    assert pc.match_total == costs["spec.matchConditions[0].expression"]


def test_parser_reads_the_whole_emitted_subset() -> None:
    tree = parse(
        "[1, 2.5, -3, 0x10, 4u, true, null, b'x', r'\\d', '''a''', {'k': [1]}]"
        ".exists_one(x, x != null) ? object.a[?'b'].or(optional.of(1)).value() : "
        "object.items.filter(i, i > 1).map(i, i > 2, i * 2).size() % 3 == 0"
    )
    assert tree is not None
    with pytest.raises(CelSyntaxError):
        parse("object.a +")
    with pytest.raises(CelSyntaxError):
        parse("T{f: 1}")


def test_an_unreadable_expression_is_one_clear_problem() -> None:
    found = limits.problems(_policy([], ["object.a +"]))
    assert len(found) == 1 and "cannot read" in found[0]


def test_the_per_call_limit_is_reported_with_the_figure_and_the_runtime_abort() -> None:
    regex = "^(" + "|".join(f"value{i}" for i in range(40)) + ")$"
    nested = (
        "object.spec.containers.all(c, c.env.all(e, c.volumeMounts.all(m, "
        f"e.value.matches('{regex}'))))"
    )
    found = limits.problems(_policy([], [nested]))
    assert len(found) == 1
    assert "spec.validations[0].expression has an estimated cost of" in found[0]
    assert "PerCallLimit 1,000,000" in found[0] and "at run time" in found[0]
    # Kyverno sets no cost limit on a ValidatingPolicy: a figure, not a problem
    kyverno = {**_policy([], [nested]), "kind": "ValidatingPolicy"}
    assert limits.problems(kyverno) == []
    assert limits.summary(kyverno)["cost"] == limits.summary(_policy([], [nested]))["cost"]
    # the same text in a message expression only loses the message: not a problem
    msg = _policy([], ["true"])
    msg["spec"]["validations"][0]["messageExpression"] = f"{nested} ? 'a' : 'b'"
    assert limits.problems(msg) == []


def test_the_budget_of_one_evaluation_is_reported() -> None:
    regex = "^(" + "|".join(f"v{i:03}" for i in range(70)) + ")$"
    each = f"object.spec.containers.all(c, c.env.all(e, e.value.matches('{regex}')))"
    cost = estimate(each, POD).hi
    assert 500_000 < cost < limits.PER_CALL_LIMIT
    n = limits.RUNTIME_BUDGET // cost + 1
    found = limits.problems(_policy([each] * n, ["true"]))
    assert len(found) == 1
    assert "RuntimeCELCostBudget 10,000,000" in found[0]
    assert limits.problems(_policy([each] * (n - 1), ["true"])) == []


def test_summary_prints_the_cost_per_policy() -> None:
    s = limits.summary(_policy(["object.spec.containers"], ["variables.v0.all(c, has(c.image))"]))
    assert (
        s["cost"]
        == celcost.policy_cost(
            _policy(["object.spec.containers"], ["variables.v0.all(c, has(c.image))"])
        ).total.hi
    )
    assert s["cost_worst"] == 3 + 3 + ITEMS * 4
    unbounded = limits.summary(_policy(["object.spec.x"], ["variables.v0.all(c, true)"], "'Nope'"))
    assert unbounded["cost_worst"] is None


def _built(target: str, packs: list[Any]) -> list[dict[str, Any]]:
    from policykit.targets.k8s import manifests

    files, _ = manifests.build(target, packs, {p.name: p.defaults() for p in packs})
    return [
        d
        for docs in files.values()
        for d in docs
        if d.get("kind") in ("ValidatingAdmissionPolicy", "ValidatingPolicy")
    ]


def test_every_builtin_pack_passes() -> None:
    from policykit.packs import load_packs

    names = sorted(
        p.stem for p in (ROOT / "policykit" / "packs").glob("*.py") if not p.stem.startswith("_")
    )
    packs = load_packs([f"policykit.packs.{n}" for n in names])
    policies = _built("vap", packs) + _built("kyverno", packs)
    assert policies
    for policy in policies:
        assert limits.cost_problems(policy) == [], policy["metadata"]["name"]
        assert isinstance(limits.summary(policy)["cost"], int)


@pytest.mark.slow
def test_the_platform_example_builds_and_a_costly_rule_is_refused(tmp_path: Path) -> None:
    ok = run_policykit(
        "build",
        "--target",
        "all",
        "--out",
        str(tmp_path / "ok"),
        "--format",
        "json",
        cwd=ROOT / "examples" / "platform",
    )
    assert ok.returncode == 0, ok.stderr
    # build --format json: one document, every admission policy written with
    # its figures; each within the per-call limit and the evaluation budget
    report = json.loads(ok.stdout)
    written = {
        f"{t}/{f.relative_to(tmp_path / 'ok' / t)}"
        for t in ("kyverno", "vap")
        for f in (tmp_path / "ok" / t).rglob("*.yaml")
        if f.name != "kustomization.yaml"
    }
    assert {f"{p['target']}/{p['file']}" for p in report["policies"]} == written
    rules = {p["rule"] for p in report["policies"] if p["target"] == "vap"}
    assert {"FINOPS-001", "PROV-001", "AGENT-001"} <= rules
    for p in report["policies"]:
        assert isinstance(p["cost"], int) and p["cost"] > 0, p
        assert p["cost"] <= limits.RUNTIME_BUDGET, p
        assert p["chars"] > 0 and p["depth"] <= limits.MAX_DEPTH, p
    assert "bundle.tar.gz" in report["files"] and report["target"] == "all"
    bad = run_policykit(
        "build",
        "--target",
        "vap",
        "--pack",
        str(FIXTURES / "celcost" / "costly.py"),
        "--out",
        str(tmp_path / "bad"),
    )
    assert bad.returncode == 2, bad.stderr
    lines = [ln for ln in bad.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, bad.stderr
    assert "PK200" in lines[0] and "COST-001" in lines[0]
    assert "PerCallLimit 1,000,000" in lines[0] and "estimated cost of" in lines[0]
    assert "Traceback" not in bad.stderr
    kyverno = run_policykit(
        "build",
        "--target",
        "kyverno",
        "--pack",
        str(FIXTURES / "celcost" / "costly.py"),
        "--out",
        str(tmp_path / "k"),
    )
    assert kyverno.returncode == 0, kyverno.stderr


def test_docs_targets_carries_the_limits_guide() -> None:
    """docs/targets.md's "Limits and cost" section is limits.GUIDE, word for word."""
    doc = (ROOT / "docs" / "targets.md").read_text(encoding="utf-8")
    assert "\n".join(limits.GUIDE).rstrip("\n") in doc
