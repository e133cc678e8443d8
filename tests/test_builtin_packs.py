"""The built-in packs (catalog, finops, provenance, agents) on the example
platform repository, on Backstage's own examples, and the agents' runtime
decision through the reference engine, regopy and real OPA."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from policykit.decision import decide
from policykit.engines.native import NativeEngine
from policykit.engines.rego import OpaEngine, RegopyEngine
from policykit.loader import load_paths
from policykit.model import Document
from policykit.packs import BUILTIN_CATALOG, load_packs
from policykit.verify import TARGETS, verify
from tests.conftest import FIXTURES, ROOT, run_policykit

PLATFORM = ROOT / "examples/platform"
# Backstage's own example entities and templates (tests/fixtures/SOURCES.md)
BACKSTAGE = FIXTURES / "backstage"


_run = run_policykit


def test_check_platform_matches_the_expected_findings_exactly() -> None:
    expected = json.loads((PLATFORM / "expected-findings.policykit.json").read_text())
    proc = _run("check", "examples/platform", "--format", "json")
    assert proc.returncode == expected["exit_code"], proc.stderr
    report = json.loads(proc.stdout)
    got = [
        (
            f["file"],
            f["rule"],
            f["object"]["kind"],
            f["object"]["name"],
            f.get("item"),
            f["message"],
        )
        for f in report["findings"]
    ]
    want = [
        (f["file"], f["rule"], f["kind"], f["name"], f["item"], f["message"])
        for f in expected["findings"]
    ]
    assert got == want
    assert all(f["why"] for f in expected["findings"])
    # a realistic repository: 20+ entities, 20+ manifests, agents, models, templates
    kinds = [d.obj["kind"] for d in load_paths([str(PLATFORM)]).documents]
    entities = [d for d in load_paths([str(PLATFORM)]).documents if d.source == "backstage"]
    assert len(entities) >= 20
    assert len(kinds) - len(entities) >= 20
    for k in ("Deployment", "Job", "InferenceService", "HorizontalPodAutoscaler", "Agent"):
        assert k in kinds
    assert kinds.count("Template") >= 2


@pytest.mark.slow
def test_verify_platform_every_target_agrees() -> None:
    packs = load_packs(list(BUILTIN_CATALOG))
    cfg = yaml.safe_load((PLATFORM / "policykit.yaml").read_text())
    params = {p.name: {**p.defaults(), **cfg["params"].get(p.name, {})} for p in packs}
    docs = load_paths([str(PLATFORM)]).documents
    report = verify(packs, params, docs, TARGETS, gatekeeper_engine="opa")
    assert report.ok, report.mismatches
    assert report.compared["opa"] == len(docs)
    assert report.compared["gatekeeper"] >= 20
    # the cross-object rules are held in Rego and Gatekeeper, left out of the CEL targets
    assert any("FINOPS-009: target kyverno leaves it out" in x for x in report.left_out)
    assert not any("FINOPS-009: target gatekeeper" in x for x in report.left_out)


@pytest.mark.slow
def test_verify_cli_on_the_platform() -> None:
    """What the in-process run above does not cover: the command line (the
    platform's policykit.yaml found from the path, its packs and parameters,
    the JSON report, the exit code) and the Gatekeeper templates in regopy, the
    CLI's default (above: real OPA). The other targets are not verified twice."""
    proc = _run("verify", "examples/platform", "--target", "gatekeeper", "--format", "json")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    report = json.loads(proc.stdout)
    assert report["mismatches"] == [] and report["compared"]["gatekeeper"] >= 20


def test_the_aggregate_budget_needs_the_other_objects() -> None:
    """FINOPS-009 fires on the search workloads only because of the GPU job in
    the same cost center: without batch.yaml they fit the budget."""
    packs = load_packs(["policykit.packs.finops"])
    search = load_paths([str(PLATFORM / "deploy/search.yaml")]).documents
    both = load_paths([str(PLATFORM / "deploy/search.yaml"), str(PLATFORM / "deploy/batch.yaml")])
    for docs, fires in ((search, False), (both.documents, True)):
        for engine in (NativeEngine(packs), OpaEngine(packs)):
            engine.set_inventory([d.obj for d in docs])
            rules = {f.rule for f in engine.evaluate_all(docs) if f.object.name == "search-api"}
            assert ("FINOPS-009" in rules) is fires


def test_one_engine_sees_each_new_inventory() -> None:
    """The reference engine remembers, per inventory item, the parts of a
    cross-object rule that read only the item (an object's monthly cost), and
    per object those that read only it (its cost center): a new inventory, or
    an object changed in place before it is set, is seen in full."""
    packs = load_packs(["policykit.packs.finops"])
    search = load_paths([str(PLATFORM / "deploy/search.yaml")]).documents
    batch = load_paths([str(PLATFORM / "deploy/batch.yaml")]).documents
    engine = NativeEngine(packs)

    def fires(docs: list[Any]) -> bool:
        engine.set_inventory([d.obj for d in docs])
        found = engine.evaluate_all(docs)
        return any(f.rule == "FINOPS-009" and f.object.name == "search-api" for f in found)

    assert fires(search) is False
    assert fires(search + batch) is True
    assert fires(search) is False  # the same dicts, the GPU job gone again
    # the same dicts, made cheap in place: every GPU job requests nothing
    for d in batch:
        for c in d.obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            c["resources"] = {}
    assert fires(search + batch) is False


def test_pack_parameter_schemas_are_in_schemas_and_in_step() -> None:
    for pack in load_packs([*BUILTIN_CATALOG, "policykit.packs.starter"]):
        path = ROOT / f"schemas/packs/{pack.name}.params.schema.json"
        assert json.loads(path.read_text()) == pack.param_schema(), f"regenerate {path}"
        for rule in pack.rules:
            assert (rule.title and rule.remediation) or rule.id.startswith("AGENT-1"), rule.id


def test_agent_manifests_follow_the_agent_schema() -> None:
    schema = json.loads((ROOT / "schemas/agent.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    agents = [d.obj for d in load_paths([str(PLATFORM / "agents")]).documents]
    assert len(agents) >= 3
    for a in agents:
        assert not list(validator.iter_errors(a)), a["metadata"]["name"]
    bad = {**agents[0], "spec": {**agents[0]["spec"], "identity": {"type": "user"}}}
    assert list(validator.iter_errors(bad))


# --- Backstage's own examples ------------------------------------------------------

STRUCTURE = {"CATALOG-001", "CATALOG-002", "CATALOG-003", "CATALOG-004", "CATALOG-005"}
STRUCTURE |= {"CATALOG-006", "CATALOG-007", "CATALOG-008"}


def test_backstage_examples_raise_no_structural_findings(backstage: Any) -> None:
    packs = load_packs(["policykit.packs.catalog"])
    assert {r.id for r in packs[0].rules if "structure" in r.tags} == STRUCTURE, (
        "STRUCTURE lists the rules tagged structure"
    )
    loaded = load_paths([str(BACKSTAGE)])
    assert not loaded.errors
    assert len(loaded.documents) >= 30
    findings = NativeEngine(packs).evaluate_all(loaded.documents)
    # Backstage's own validators decide which examples are valid entities
    refused = {
        (d.file, d.index) for d in loaded.documents if not backstage.validate(d.obj)[0]
    }
    assert {Path(f).name for f, _ in refused} == {"invalid-component.yaml"}
    invalid = [f for f in findings if (f.file, f.doc_index) in refused]
    valid = [f for f in findings if f not in invalid]
    # the one example Backstage refuses breaks the name and tag rules
    assert {f.rule for f in invalid} >= {"CATALOG-001", "CATALOG-005"}
    assert not [f for f in valid if f.rule in STRUCTURE]
    # the platform rules they truly miss: no cost center, no classification, and
    # templates that do not collect a cost center
    rules = {f.rule for f in valid}
    assert {"CATALOG-012", "CATALOG-013", "CATALOG-015"} <= rules


def test_real_templates_are_valid_templates_and_the_json_schema_target_agrees(
    backstage: Any,
) -> None:
    templates = [
        d
        for d in load_paths([str(BACKSTAGE), str(PLATFORM / "templates")]).documents
        if d.obj.get("kind") == "Template"
    ]
    assert len(templates) >= 10
    for d in templates:  # @backstage/plugin-scaffolder-common's Template validator
        ok, why = backstage.validate(d.obj)
        assert ok, (d.file, why)
    packs = load_packs(["policykit.packs.catalog"])
    everything = load_paths([str(BACKSTAGE), str(PLATFORM / "catalog")]).documents
    report = verify(packs, {"catalog": packs[0].defaults()}, everything, ("jsonschema",))
    assert report.ok, report.mismatches
    assert report.compared["jsonschema"] == len(everything)


# Backstage's field formats (catalog-model's KubernetesValidatorFunctions and
# CommonValidatorFunctions), drawn near their edges.
_ALNUM = "abcXYZ019"
_name_like = st.text(alphabet=_ALNUM + "-_.:/ é#+", min_size=0, max_size=70)
_edgy = st.one_of(
    _name_like,
    st.builds(lambda n: "a" * n, st.integers(60, 66)),
    st.builds(lambda p, n: f"{p}/{n}", st.text(alphabet="abc.-", max_size=12), _name_like),
)


_CATALOG = NativeEngine(load_packs(["policykit.packs.catalog"]))


@settings(max_examples=200)
@given(
    where=st.sampled_from(
        ["name", "namespace", "label-key", "label-value", "annotation-key", "tag"]
    ),
    value=_edgy,
)
def test_structure_rules_refuse_exactly_what_backstage_refuses(
    backstage: Any, where: str, value: str
) -> None:
    """For the fields whose format Backstage itself checks, the catalog pack's
    structure rules fire exactly when Backstage's entity policies refuse the entity."""
    entity: dict[str, Any] = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "svc", "namespace": "default"},
        "spec": {"type": "service", "owner": "group:default/team-a", "lifecycle": "production"},
    }
    meta = entity["metadata"]
    if where == "name":
        meta["name"] = value
    elif where == "namespace":
        meta["namespace"] = value
    elif where == "label-key":
        meta["labels"] = {value: "v"}
    elif where == "label-value":
        meta["labels"] = {"app": value}
    elif where == "annotation-key":
        meta["annotations"] = {value: "v"}
    else:
        meta["tags"] = [value]
    refused = not backstage.validate(entity)[0]
    fired = {
        f.rule
        for f in _CATALOG.evaluate_all([Document(entity, "x.yaml", 0, 1)])
        if f.rule in STRUCTURE
    }
    assert bool(fired) == refused, (where, value, fired, backstage.validate(entity)[1])


# --- the agents' runtime decision ------------------------------------------------------


def _agent() -> dict[str, Any]:
    docs = yaml.safe_load_all((PLATFORM / "agents/agents.yaml").read_text())
    return next(d for d in docs if d["metadata"]["name"] == "triage-bot")


@pytest.fixture(scope="module")
def deciders() -> tuple[NativeEngine, OpaEngine, RegopyEngine]:
    packs = load_packs(["policykit.packs.agents"])
    return NativeEngine(packs), OpaEngine(packs), RegopyEngine(packs, mode="object")


def test_decision_examples(deciders: tuple[NativeEngine, OpaEngine, RegopyEngine]) -> None:
    native, opa, regopy = deciders
    agent = _agent()
    read = {"server": "github", "name": "list_issues"}
    cases = [
        (
            {"tool": read, "action": "read", "args": {"cost_usd": 0.1}, "spend_so_far": 5},
            (True, False, False),
        ),
        (
            {"tool": {"server": "github", "name": "comment"}, "action": "write", "spend_so_far": 5},
            (False, False, True),
        ),
        (
            {"tool": read, "action": "read", "args": {"cost_usd": 1}, "spend_so_far": 160},
            (False, False, True),
        ),
        (
            {"tool": read, "action": "read", "args": {"cost_usd": 1}, "spend_so_far": 199.5},
            (False, True, True),
        ),
        (
            {"tool": {"server": "github", "name": "merge_pr"}, "action": "write"},
            (False, True, True),
        ),
        (
            {"tool": read, "action": "read", "args": {"domain": "evil.example.org"}},
            (False, True, False),
        ),
    ]
    for call, (allow, deny, approval) in cases:
        full = {"agent": agent, **call}
        want = decide(native, full)
        assert (want["allow"], want["deny"], want["needs_approval"]) == (allow, deny, approval), (
            want
        )
        assert all(":" in r for r in want["reasons"])
        assert opa.decide(full) == want
        assert regopy.decide(full) == want


@settings(max_examples=60, deadline=None)
@given(
    tool=st.sampled_from(["list_issues", "comment", "merge_pr", "search", "read_page"]),
    server=st.sampled_from(["github", "docs", "jira"]),
    action=st.sampled_from(["read", "write", "delete", "list"]),
    spend=st.one_of(
        st.none(),
        st.integers(0, 250),
        st.floats(0, 250, allow_nan=False).map(lambda x: round(x, 2)),
    ),
    cost=st.one_of(st.none(), st.integers(0, 60)),
    domain=st.one_of(
        st.none(),
        st.sampled_from(["api.github.com", "docs.acme.example.com", "x.example.com", "evil.org"]),
    ),
    audit=st.booleans(),
)
def test_decision_is_the_same_in_every_engine(
    deciders: tuple[NativeEngine, OpaEngine, RegopyEngine],
    tool: str,
    server: str,
    action: str,
    spend: float | None,
    cost: int | None,
    domain: str | None,
    audit: bool,
) -> None:
    native, opa, regopy = deciders
    agent = _agent()
    agent["spec"]["audit"]["enabled"] = audit
    call: dict[str, Any] = {
        "agent": agent,
        "tool": {"server": server, "name": tool},
        "action": action,
        "args": {},
    }
    if spend is not None:
        call["spend_so_far"] = spend
    if cost is not None:
        call["args"]["cost_usd"] = cost
    if domain is not None:
        call["args"]["domain"] = domain
    want = decide(native, call)
    assert want["allow"] == (not want["deny"] and not want["needs_approval"])
    assert opa.decide(call) == want
    assert regopy.decide(call) == want


def test_the_platform_config_is_found_from_the_checked_path(tmp_path: Path) -> None:
    """Run from elsewhere, `check <repo>` still uses the repository's own policykit.yaml."""
    expected = json.loads((PLATFORM / "expected-findings.policykit.json").read_text())
    proc = _run("check", str(PLATFORM), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    rules = [f["rule"] for f in json.loads(proc.stdout)["findings"]]
    assert rules == [f["rule"] for f in expected["findings"]]


def test_cel_refuses_what_cel_cpp_cannot_parse() -> None:
    """An expression nested deeper than cel-cpp parses is refused by the CEL
    compiler, naming the rule (PK200), instead of shipping an expression the local
    engine could not check; FINOPS-005, which once nested 27 levels, now compiles
    to CEL that cel-cpp parses."""
    import dataclasses

    from policykit.engines.cel import program
    from policykit.errors import PolicykitError
    from policykit.ir import nodes as ir
    from policykit.ir.rule import Message, Pack, Rule, Selector
    from policykit.targets.base import UnsupportedError
    from policykit.targets.cel.compiler import CelCompiler

    def field(i: int) -> ir.Pred:
        return ir.Compare("==", ir.Path(ir.OBJECT_ROOT, ("spec", f"f{i}")), ir.Literal(i))

    cond = field(0)
    for i in range(1, 40):  # f1 == 1 && !(f2 == 2 || !(...)): 40 levels of brackets
        cond = (ir.And if i % 2 else ir.Or)((field(i), ir.Not(cond)))
    deep = Rule(
        id="DEEP-001",
        title="deep",
        severity="deny",
        condition=cond,
        message=Message(("too deep",)),
        selector=Selector(kinds=("Deployment",)),
    )
    pack = Pack(name="deep", version="1.0.0", rules=(deep,))
    compiler = CelCompiler(pack, {})
    with pytest.raises(UnsupportedError, match=r"DEEP-001.*nested"):
        compiler.compile_rule(deep)
    with pytest.raises(PolicykitError, match="recursion"):
        program(compiler._compile_rule(deep).violation)

    finops = load_packs(["policykit.packs.finops"])[0]
    rule = finops.rule("FINOPS-005")
    one = dataclasses.replace(finops, rules=(rule,))
    compiled = CelCompiler(one, finops.defaults()).compile_rule(rule)
    program(compiled.violation)  # parses and checks in cel-cpp
