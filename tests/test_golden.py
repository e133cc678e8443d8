"""Golden files: the exact text each target emits for a table of rules
(issue 16), the way sqlglot pins each dialect's output.

Each rule of :data:`RULES` is compiled alone (a one-rule pack, with the
platform example's parameters) by every target of the registry, and the text a
reviewer reads is compared with ``tests/golden/<target>/<RULE>.<ext>``:

* ``rego``: the rule's module of the bundle;
* ``gatekeeper``: its ConstraintTemplate and Constraint;
* ``kyverno``, ``vap``: its ValidatingPolicy / ValidatingAdmissionPolicy and
  binding;
* ``jsonschema``: its pack schema.

A target that leaves the rule out (a runtime rule at admission, a cross-object
rule in CEL, a Kubernetes rule in a Backstage form) has no file, and the test
checks that too. A change of output is a reviewed change: regenerate with
``POLICYKIT_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`` and read
the diff. That the text is *right* is proven elsewhere (the differential tests
run it in OPA, regopy, cel-cpp and jsonschema against the reference engine);
this pins what a cluster admin reviews, so it cannot drift unnoticed.
"""

from __future__ import annotations

import dataclasses
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from policykit.config import load_config_file
from policykit.ir.rule import Pack
from policykit.packs import load_packs
from policykit.targets import registry

from .conftest import ROOT

GOLDEN = Path(__file__).parent / "golden"
PLATFORM = ROOT / "examples" / "platform"
UPDATE = os.environ.get("POLICYKIT_UPDATE_GOLDEN") == "1"

# One rule per shape the compilers handle differently.
RULES = [
    "CATALOG-001",  # Backstage entity: required fields (rego, jsonschema)
    "CATALOG-005",  # Backstage: a parameter table (allowed cost centers)
    "FINOPS-001",  # each container: requests and limits present
    "FINOPS-004",  # quantities and a parameter allow-list
    "FINOPS-005",  # arithmetic over quantities against a budget table
    "FINOPS-008",  # cross-object (objects()): rego and gatekeeper only
    "PROV-002",  # a custom resource (InferenceService, its CRD) and a regex
    "PROV-002-D",  # the same rule on a labelled Deployment
    "AGENT-003",  # a custom resource of policykit's own (Agent)
    "AGENT-101",  # a runtime ToolCall rule: only the bundle's decision
]
EXT = {"rego": "rego", "gatekeeper": "yaml", "kyverno": "yaml", "vap": "yaml", "jsonschema": "json"}


@cache
def _platform() -> tuple[dict[str, Pack], dict[str, Any], Any]:
    """The platform example's rules (each as a one-rule pack), its parameters
    and its CRDs (the custom kinds its rules select)."""
    from policykit.k8s import crds

    cfg = load_config_file(PLATFORM / "policykit.yaml")
    packs = load_packs(cfg.packs)
    by_rule = {r.id: dataclasses.replace(p, rules=(r,)) for p in packs for r in p.rules}
    return by_rule, dict(cfg.params), crds.load(cfg.crds)


def _text(target: str, output: Any, pack: Pack) -> str | None:
    """What the target wrote for the one-rule ``pack``; None when it left it out."""
    if target == "rego":
        mods = {p: m for p, m in output.modules().items() if f"/{pack.name}/" in f"/{p}"}
        return "".join(mods[p] for p in sorted(mods)) or None
    if target == "jsonschema":
        import json

        schema: str = output[f"{pack.name}.schema.json"]
        # the form covers what it can (an advisory target): a schema with no
        # constraint means the rule is not in it
        covers = set(json.loads(schema)) - {"$id", "$schema", "description", "title"}
        return schema if covers else None
    from policykit.targets.k8s import manifests

    files, _skipped = output
    docs = [d for name in sorted(files) for d in files[name]]
    return manifests.dump(docs) if docs else None


def _compile(target: str, rule_id: str) -> str | None:
    from policykit.k8s import crds
    from policykit.targets.base import UnsupportedError

    by_rule, params, custom = _platform()
    pack = by_rule[rule_id]
    try:
        with crds.using(custom):
            output = registry.get(target).compile([pack], params, registry.Options())
    except UnsupportedError:
        return None
    return _text(target, output, pack)


CASES = [(t, r) for r in RULES for t in registry.names()]


@pytest.mark.parametrize(("target", "rule_id"), CASES, ids=[f"{t}-{r}" for t, r in CASES])
def test_output_matches_the_golden_file(target: str, rule_id: str) -> None:
    got = _compile(target, rule_id)
    path = GOLDEN / target / f"{rule_id}.{EXT[target]}"
    if UPDATE:
        if got is None:
            path.unlink(missing_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(got, encoding="utf-8")
        return
    if got is None:
        assert not path.exists(), f"{target} no longer emits {rule_id}; {path} remains"
        return
    assert path.exists(), f"{target} now emits {rule_id}: regenerate ({__doc__.splitlines()[0]})"
    assert got == path.read_text(encoding="utf-8"), (
        f"{target} output for {rule_id} changed; review and regenerate with "
        "POLICYKIT_UPDATE_GOLDEN=1"
    )


def test_the_table_covers_every_target_and_each_rule_somewhere() -> None:
    """Every rule of the table is emitted by some target, and every target
    emits some rule of the table: a table that pins nothing fails."""
    if UPDATE:
        pytest.skip("regenerating")
    files = {p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*") if p.is_file()}
    assert {f.split("/")[0] for f in files} == set(registry.names())
    assert {f.split("/")[1].rsplit(".", 1)[0] for f in files} == set(RULES)
    expected = {f"{t}/{r}.{EXT[t]}" for t, r in CASES}
    assert files <= expected, files - expected


def test_golden_output_has_no_compiler_temporaries() -> None:
    """What the golden files pin reads as hand-written: no counter names."""
    import re

    for p in sorted(GOLDEN.rglob("*")):
        if p.is_file():
            text = p.read_text(encoding="utf-8")
            assert not re.search(r"\bt__\d+", text), p



def test_output_does_not_depend_on_what_was_traced_before() -> None:
    """A rule's lambda variables are numbered within the rule, so re-tracing a
    pack after other rules were traced in the same process gives the same IR,
    and every target the same text (CI once saw `t_26` where a fresh process
    wrote `t_0`)."""
    import importlib

    from policykit.dsl import PackBuilder, select
    from policykit.ir import serialize
    from policykit.packs import agents

    before = serialize.dumps([agents.agents.build()])
    other = PackBuilder("other", "1.0.0")

    @other.rule("OTHER-1", title="t", message="m", select=select(kinds=["Pod"]))
    def _(o: Any) -> Any:
        return o.spec.containers.any(lambda c: c.ports.any(lambda p: p.port == 80))

    other.build()
    reloaded = importlib.reload(agents)
    assert serialize.dumps([reloaded.agents.build()]) == before
    _platform.cache_clear()
    try:
        for target in ("kyverno", "vap", "rego"):
            got = _compile(target, "AGENT-003")
            want = (GOLDEN / target / f"AGENT-003.{EXT[target]}").read_text(encoding="utf-8")
            assert got == want, target
    finally:
        _platform.cache_clear()
