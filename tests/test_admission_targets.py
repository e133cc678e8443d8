"""Gatekeeper, Kyverno and VAP output: valid against the real CRDs/OpenAPI,
deterministic, and — run through the local harnesses — agreeing with the
reference engine on every example (Gatekeeper also in real OPA)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from policykit.api import resolve
from policykit.cli.main import cli
from policykit.engines.cel import program
from policykit.engines.k8s_quantity import parse
from policykit.ir import nodes as ir
from policykit.ir.rule import Message, Pack, ParamSpec, Rule, Selector
from policykit.k8s import gatekeeper as gk
from policykit.k8s import validating as admission  # what verify.py calls (monkeypatched below)
from policykit.loader import load_paths
from policykit.packs import load_packs
from policykit.targets import gatekeeper as gk_target
from policykit.targets.k8s import manifests
from policykit.verify import verify
from tests.conftest import FIXTURES, ROOT

# The openAPIV3Schema of the CRDs a test validates against, derived from the upstream
# CRDs (descriptions dropped): tests/fixtures/SOURCES.md
CRDS = FIXTURES / "crds"


def _crd_schema(path: Path, version: str) -> dict[str, Any]:
    crd = json.loads(path.read_text())
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return dict(v["schema"]["openAPIV3Schema"])
    raise AssertionError(f"{path.name} has no version {version}")


def _examples() -> tuple[list[Pack], dict[str, dict[str, Any]], list[Any]]:
    sel = resolve(paths=[str(ROOT / "examples")])
    packs = load_packs(sel.packs)
    docs = load_paths(sel.paths, include=sel.include, exclude=sel.exclude).documents
    return packs, sel.params, docs


@pytest.fixture(scope="module")
def examples() -> tuple[list[Pack], dict[str, dict[str, Any]], list[Any]]:
    return _examples()


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha1"])
def test_kyverno_policies_validate_against_the_crd(examples: Any, version: str) -> None:
    packs, params, _ = examples
    schema = _crd_schema(CRDS / "policies.kyverno.io_validatingpolicies.json", version)
    files, _ = manifests.build("kyverno", packs, params, kyverno_version=version)
    docs = [d for items in files.values() for d in items]
    assert docs
    for d in docs:
        assert d["apiVersion"] == f"policies.kyverno.io/{version}"
        jsonschema.validate(json.loads(json.dumps(d)), schema)


def test_vap_and_bindings_validate_against_the_openapi(examples: Any) -> None:
    """VAP and bindings are valid for the API server: kubernetes-validate's strict
    schemas (generated from the Kubernetes OpenAPI) for each version policykit targets."""
    import kubernetes_validate

    packs, params, _ = examples
    files, _ = manifests.build("vap", packs, params)
    docs = [d for items in files.values() for d in items]
    kinds = {d["kind"] for d in docs}
    assert kinds == {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    for d in docs:
        for version in ("1.30", "1.33", "1.36"):
            kubernetes_validate.validate(json.loads(json.dumps(d)), version, strict=True)
        # structure the schema leaves open, stated by the API docs
        if d["kind"] == "ValidatingAdmissionPolicyBinding":
            assert d["spec"]["validationActions"] in (["Deny"], ["Warn"], ["Audit"])
        else:
            for v in d["spec"]["validations"]:
                assert "\n" not in v["message"]


def test_gatekeeper_templates_validate_against_the_crd(examples: Any) -> None:
    packs, params, _ = examples
    schema = _crd_schema(CRDS / "constrainttemplate-customresourcedefinition.json", "v1")
    files, _ = gk_target.build(packs, params)
    templates = [d for n, items in files.items() if n.startswith("templates/") for d in items]
    constraints = [d for n, items in files.items() if n.startswith("constraints/") for d in items]
    assert templates and len(templates) == len(constraints)
    for t, c in zip(templates, constraints, strict=True):
        jsonschema.validate(t, schema)
        kind = t["spec"]["crd"]["spec"]["names"]["kind"]
        assert t["metadata"]["name"] == kind.lower() and c["kind"] == kind
        props = t["spec"]["crd"]["spec"].get("validation", {}).get("openAPIV3Schema")
        if props:  # the Constraint's parameters satisfy the template's schema
            jsonschema.validate(c["spec"].get("parameters", {}), props)
            _assert_structural(props)
        source = t["spec"]["targets"][0]["code"][0]["source"]
        assert source["version"] == "v1"
        for lib in source["libs"]:
            package = next(x for x in lib.splitlines() if x.startswith("package "))
            assert package.startswith("package lib.")
        assert "data.policykit" not in source["rego"]  # only data.lib / data.inventory


def _assert_structural(s: dict[str, Any]) -> None:
    assert "type" in s or s.get("x-kubernetes-preserve-unknown-fields"), s
    assert s.get("additionalProperties") is not False
    for sub in (s.get("properties") or {}).values():
        _assert_structural(sub)
    if isinstance(s.get("items"), dict):
        _assert_structural(s["items"])


@pytest.mark.parametrize("engine", ["rego", "opa"])
def test_every_target_agrees_with_the_reference_on_the_examples(examples: Any, engine: str) -> None:
    packs, params, docs = examples
    report = verify(packs, params, docs, gatekeeper_engine=engine)  # type: ignore[arg-type]
    assert report.mismatches == []
    assert report.compared["gatekeeper"] == report.compared["vap"] == report.compared["kyverno"] > 0
    assert report.compared["opa"] == len(docs)


def test_verify_reports_a_disagreement(examples: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison can fail: a tampered VAP message is caught."""
    packs, params, docs = examples
    real = admission.evaluate_vap

    def tampered(*a: Any, **k: Any) -> list[admission.Decision]:
        return [
            admission.Decision(d.policy, d.rule, d.actions, d.message + "!") for d in real(*a, **k)
        ]

    monkeypatch.setattr(admission, "evaluate_vap", tampered)
    report = verify(packs, params, docs, targets=("vap",))
    assert report.mismatches and {m.target for m in report.mismatches} == {"vap"}


def test_build_is_deterministic_and_kustomize_ready(tmp_path: Path) -> None:
    runner = CliRunner()
    outs = []
    for n in (1, 2):
        out = tmp_path / f"d{n}"
        res = runner.invoke(cli, ["build", "--target", "all", "--out", str(out)])
        assert res.exit_code == 0, res.output
        outs.append(out)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    assert {str(f) for f in files} >= {
        "bundle.tar.gz",
        "gatekeeper/kustomization.yaml",
        "gatekeeper/templates/starter.yaml",
        "kyverno/starter.yaml",
        "vap/starter.yaml",
        "jsonschema/index.json",
        "jsonschema/starter.schema.json",
        "jsonschema/starter.fields.json",
    }
    for f in files:
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f
    kust = yaml.safe_load((outs[0] / "gatekeeper/kustomization.yaml").read_text())
    assert kust["resources"][0].startswith("templates/")
    for r in kust["resources"]:
        assert (outs[0] / "gatekeeper" / r).is_file()


def test_cli_verify_and_cel_engine() -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["verify", str(ROOT / "examples"), "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["mismatches"] == [] and set(doc["compared"]) == {
        "rego",
        "opa",
        "gatekeeper",
        "vap",
        "kyverno",
        "jsonschema",
    }
    native = runner.invoke(cli, ["check", str(ROOT / "examples"), "--format", "json"])
    cel = runner.invoke(
        cli, ["check", str(ROOT / "examples"), "--format", "json", "--engine", "cel"]
    )
    assert native.exit_code == cel.exit_code == 1
    assert json.loads(native.output)["findings"] == json.loads(cel.output)["findings"]


def test_verify_without_real_opa(monkeypatch: pytest.MonkeyPatch) -> None:
    # a user's machine without the OPA bindings: by default the other targets are
    # verified and the missing one is named; asked for, it is an error (PK005)
    import subprocess
    import sys

    from policykit.engines import opa_host

    # as where it was never installed: no opa_bindings to find
    monkeypatch.setattr(opa_host, "bindings_dir", lambda: None)
    runner = CliRunner()
    res = runner.invoke(cli, ["verify", str(ROOT / "examples"), "--format", "json"])
    assert res.exit_code == 0, res.output
    assert "opa not verified: real OPA is not installed" in res.stderr
    doc = json.loads(res.stdout)
    assert "opa" not in doc["compared"] and "rego" in doc["compared"]
    assert "python -m policykit.engines.opa_install" in doc["notRun"]["opa"]
    res = runner.invoke(cli, ["verify", str(ROOT / "examples"), "--target", "opa"])
    assert res.exit_code == 2 and "PK005" in res.output
    # the hint works (idempotent where OPA is installed, as in CI)
    done = subprocess.run(
        [sys.executable, "-m", "policykit.engines.opa_install"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0 and "real OPA ready" in done.stdout, done.stderr


def _rule(cond: ir.Pred, msg: tuple[Any, ...], **sel: Any) -> Pack:
    rule = Rule(
        id="ADM-001",
        title="t",
        severity="warn",
        condition=cond,
        message=Message(msg),
        selector=Selector(kinds=("Pod",), **sel),
    )
    return Pack(name="adm", version="1.0.0", rules=(rule,))


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "team-a", "labels": {"tier": "web"}},
    "spec": {},
}


@pytest.mark.parametrize(
    "text",
    ["quote ' and \" ", "back\\slash", "new\nline", "}{ #", "unicode é 😀", "' + object.kind + '"],
)
def test_adversarial_strings_stay_data_in_cel_and_yaml(text: str) -> None:
    p = ir.Path(ir.OBJECT_ROOT, ("metadata", "labels", text))
    pack = _rule(ir.Not(ir.Compare("==", p, ir.Literal(text))), (text, p, text), labels=())
    files, _ = manifests.build("vap", [pack], {})
    (policy, binding) = yaml.safe_load_all(manifests.dump(files["adm.yaml"]))
    obj = {**POD, "metadata": {**POD["metadata"], "labels": {text: "x"}}}
    (d,) = admission.evaluate_vap(policy, binding, obj)
    assert d.actions == ("Warn",)
    want = f"{text}x{text}"
    # the API server shows one line: line breaks become spaces (manifests.shown_message)
    assert d.message == want.replace("\n", " ")
    ok = {**POD, "metadata": {**POD["metadata"], "labels": {text: text}}}
    assert admission.evaluate_vap(policy, binding, ok) == []


def test_admission_match_semantics() -> None:
    pack = _rule(ir.TRUE, ("hit",), namespaces=("team-*",), exclude_namespaces=("team-b",))
    files, _ = manifests.build("kyverno", [pack], {})
    (policy,) = files["adm.yaml"]
    assert admission.evaluate_kyverno(policy, POD)
    other_ns = {**POD, "metadata": {**POD["metadata"], "namespace": "team-b"}}
    assert admission.evaluate_kyverno(policy, other_ns) == []
    deploy = {**POD, "apiVersion": "apps/v1", "kind": "Deployment"}
    assert admission.evaluate_kyverno(policy, deploy) == []
    assert admission.evaluate_kyverno(policy, POD, operation="DELETE") == []


def test_gatekeeper_match_semantics() -> None:
    m = {
        "kinds": [{"apiGroups": [""], "kinds": ["Pod"]}],
        "namespaces": ["team-*"],
        "excludedNamespaces": ["team-b"],
        "labelSelector": {
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]
        },
    }
    assert gk.match(m, POD)
    assert not gk.match(m, {**POD, "metadata": {**POD["metadata"], "labels": {}}})
    assert not gk.match(m, {**POD, "metadata": {**POD["metadata"], "namespace": "team-b"}})
    assert not gk.match(m, {**POD, "kind": "Service"})
    assert not gk.match({**m, "scope": "Cluster"}, POD)
    assert gk.match({"name": "p*"}, POD) and not gk.match({"name": "q"}, POD)
    ns = {"metadata": {"labels": {"env": "prod"}}}
    assert gk.match({"namespaceSelector": {"matchLabels": {"env": "prod"}}}, POD, ns)
    assert not gk.match({"namespaceSelector": {"matchLabels": {"env": "dev"}}}, POD, ns)


def test_gatekeeper_template_uses_constraint_parameters() -> None:
    names = ir.Param("names")
    pack = Pack(
        name="adm",
        version="1.0.0",
        rules=(
            Rule(
                id="ADM-002",
                title="t",
                severity="info",
                condition=ir.In(ir.Path(ir.OBJECT_ROOT, ("metadata", "name")), names),
                message=Message(("banned ", ir.Path(ir.OBJECT_ROOT, ("metadata", "name")))),
                selector=Selector(kinds=("Pod",)),
            ),
        ),
        params=(ParamSpec("names", {"type": "array", "items": {"type": "string"}}, ["p"]),),
    )
    t = gk_target.template(pack, pack.rules[0])
    c = gk_target.constraint(pack, pack.rules[0], {"names": ["p"]})
    assert c["spec"]["enforcementAction"] == "dryrun"
    for engine in ("rego", "opa"):
        runner = gk.TemplateRunner(t, engine)  # type: ignore[arg-type]
        assert [v.message for v in gk.evaluate(runner, c, POD)] == ["banned p"]
        c2 = {**c, "spec": {**c["spec"], "parameters": {"names": ["other"]}}}
        assert gk.evaluate(runner, c2, POD) == []


def test_kubernetes_quantity_library() -> None:
    assert program("quantity('500m').asApproximateFloat()").eval({}) == 0.5
    assert program("quantity('2Gi').asInteger()").eval({}) == 2 * 1024**3
    # apimachinery multiplies once in floats: 3 * 0.1
    assert program("quantity('0.3').asApproximateFloat()").eval({}) == 3 * 0.1 != 0.3
    assert program("quantity('1.1').compareTo(quantity('1100m'))").eval({}) == 0
    assert program("quantity('1').compareTo(quantity('999m'))").eval({}) == 1
    assert program("isQuantity('1Gi') && !isQuantity('1gi') && isQuantity('5n')").eval({}) is True
    assert program("quantity('1.5').isInteger()").eval({}) is False
    assert program("[1.5, 2.0].sum()").eval({}) == 3.5 and program("[1, 2].sum()").eval({}) == 3
    q = parse("1e-10")
    assert q is not None and q.exact == parse("1n").exact  # rounded up to nano, as Kubernetes does


@pytest.mark.slow
def test_kind_table_is_the_kubernetes_openapi() -> None:
    """kinds.json is exactly what from_openapi derives from the Kubernetes OpenAPI
    (release-1.36's collection POST operations: tests/fixtures/SOURCES.md), and each
    entry names a schema that kubernetes-validate ships for that group and version."""
    from importlib import resources

    from policykit.k8s.kinds import from_openapi, lookup

    doc = json.loads((FIXTURES / "k8s/openapi-v2-1.36-posts.json").read_text())
    shipped = json.loads(
        resources.files("policykit.targets.k8s").joinpath("kinds.json").read_text()
    )
    assert shipped == from_openapi(doc)
    import kubernetes_validate

    unknown = []
    for kind, e in shipped.items():
        for v in e["versions"]:
            obj = {"apiVersion": f"{e['group']}/{v}" if e["group"] else v, "kind": kind}
            try:
                kubernetes_validate.validate({**obj, "metadata": {"name": "x"}}, "1.36")
            except kubernetes_validate.ValidationError:
                pass  # a schema was found: the minimal object lacks required fields
            except kubernetes_validate.SchemaNotFoundError:
                unknown.append((kind, v))
    # kubernetes-validate leaves out some alpha APIs (StorageVersion); nothing else
    assert all("alpha" in v for _, v in unknown), unknown
    assert len(unknown) < 5
    deploy, pod, ns = lookup("Deployment"), lookup("Pod"), lookup("Namespace")
    assert deploy is not None and (deploy.group, deploy.resource) == ("apps", "deployments")
    assert pod is not None and pod.group == "" and pod.namespaced
    assert ns is not None and not ns.namespaced
