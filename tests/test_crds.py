"""Custom resources (issue 16, item 3) and rules that are not for admission
(item 4): a pack selecting a custom kind builds for Gatekeeper, Kyverno and
VAP from its CRD (`crds:` in policykit.yaml or `--crd`), the manifests are
valid, `verify` agrees on custom objects, an object its CRD's schema refuses is
reported, an unknown kind is PK201 naming `crds:`, an unusable CRD file is one
line, and runtime (ToolCall) rules are listed once as not at admission."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner, Result

from policykit.cli.main import cli
from policykit.k8s import crds
from policykit.k8s.kinds import builtin, lookup
from policykit.loader import load_paths
from policykit.packs import load_packs
from policykit.targets import capabilities as cap
from policykit.targets import gatekeeper as gk_target
from policykit.targets.k8s import manifests
from policykit.verify import verify
from tests.conftest import FIXTURES, ROOT

CRD_DIR = FIXTURES / "crds" / "ml"  # tests/fixtures/SOURCES.md
CRD_FILE = CRD_DIR / "modeldeployments.ml.example.com.yaml"
GROUP, PLURAL = "ml.example.com", "modeldeployments"

PACK = """
from policykit.dsl import P, PackBuilder, param, select

ml = PackBuilder(
    "mlops",
    "1.0.0",
    params={"max_gpus": param(2, {"type": "integer", "minimum": 0}, "GPUs a model may use.")},
)
MD = select(source="kubernetes", kinds=["ModelDeployment"])


@ml.rule("ML-001", title="Model images are pinned by digest", select=MD,
         message="ModelDeployment {metadata.name} runs {spec.model.image}, not pinned by digest")
def pinned(o):
    return ~o.spec.model.image.contains("@sha256:")


@ml.rule("ML-002", title="GPUs within the limit", select=MD, severity="warn",
         message="ModelDeployment {metadata.name} asks for {spec.gpus} GPUs, above "
         "{params.max_gpus}")
def gpus(o):
    return o.spec.gpus.default(0) > P("max_gpus")


@ml.rule("ML-101", title="No tool calls to the model registry's admin server",
         select=select(api_versions=["agents.policykit.dev/*"], kinds=["ToolCall"]),
         message="tool {tool.name} of {tool.server} is an admin tool")
def admin_tool(c):
    return c.tool.server == "registry-admin"
"""

DIGEST = "sha256:" + "a" * 64


def model(name: str, image: str, gpus: int | None = None, version: str = "v1") -> dict[str, Any]:
    spec: dict[str, Any] = {"model": {"name": name, "image": image}, "replicas": 1}
    if gpus is not None:
        spec["gpus"] = gpus
    return {
        "apiVersion": f"{GROUP}/{version}",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "ml"},
        "spec": spec,
    }


OBJECTS = [
    model("pinned", f"registry.example.com/llm@{DIGEST}", gpus=1),
    model("floating", "registry.example.com/llm:latest"),
    model("greedy", f"registry.example.com/llm@{DIGEST}", gpus=8),
    model("both", "registry.example.com/llm:2", gpus=4, version="v1alpha1"),
]


def run(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args, catch_exceptions=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose policykit.yaml names the pack and the CRD folder."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies/mlops.py").write_text(PACK)
    (tmp_path / "models").mkdir()
    (tmp_path / "models/models.yaml").write_text(yaml.safe_dump_all(OBJECTS))
    (tmp_path / "policykit.yaml").write_text(
        yaml.safe_dump(
            {"packs": ["policies/mlops.py"], "paths": ["models"], "crds": [str(CRD_DIR)]}
        )
    )
    return tmp_path


def _registry() -> crds.CrdRegistry:
    return crds.load([CRD_DIR])


def _pack(tmp_path: Path) -> Any:
    src = tmp_path / "mlops.py"
    src.write_text(PACK)
    return load_packs([str(src)])


# --- the registry ---------------------------------------------------------------------


def test_registry_reads_group_versions_plural_scope_and_schema() -> None:
    reg = _registry()
    crd = reg.get("ModelDeployment")
    assert crd is not None
    assert (crd.group, crd.plural, crd.namespaced) == (GROUP, PLURAL, True)
    assert crd.served == ("v1", "v1alpha1") and crd.storage == "v1"
    schema = reg.schema("ModelDeployment", "v1")
    assert schema is not None and schema["properties"]["spec"]["required"] == ["model", "replicas"]
    # the same from a file as from its folder
    assert crds.load([CRD_FILE]) == reg
    # kinds.json stays the built-in kinds; the registry in force adds the custom one
    assert builtin("ModelDeployment") is None and lookup("ModelDeployment") is None
    with crds.using(reg):
        info = lookup("ModelDeployment")
        assert info is not None and (info.group, info.resource) == (GROUP, PLURAL)
        assert info.versions == ("v1", "v1alpha1")
    assert lookup("ModelDeployment") is None


def test_openapi_subset_translation() -> None:
    s = crds.to_json_schema(
        {
            "type": "object",
            "properties": {
                "a": {"type": "string", "nullable": True},
                "b": {"x-kubernetes-int-or-string": True},
                "c": {"type": "number", "minimum": 1, "exclusiveMinimum": True},
                "d": {"type": "integer", "default": 3},
                "e": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
            "required": ["c", "d"],
        },
        root=True,
    )
    v = jsonschema.Draft202012Validator(s)
    ok = {"apiVersion": "x/v1", "kind": "K", "metadata": {}, "a": None, "b": 3, "c": 2}
    assert list(v.iter_errors(ok)) == []  # d has a default: filled in before validation
    assert v.is_valid({**ok, "b": "3Gi", "e": {"anything": [1]}})
    assert not v.is_valid({**ok, "c": 1})  # exclusiveMinimum: true bounds strictly
    assert not v.is_valid({**ok, "b": 1.5})
    assert not v.is_valid({**ok, "unknown": 1})


# --- admission targets match the custom kind by resource ------------------------------


def _validate_manifests(out: Path) -> dict[str, list[dict[str, Any]]]:
    import kubernetes_validate

    docs = {
        t: [d for f in sorted((out / t).rglob("*.yaml")) for d in yaml.safe_load_all(f.read_text())]
        for t in ("gatekeeper", "kyverno", "vap")
    }
    crd = json.loads((FIXTURES / "crds/policies.kyverno.io_validatingpolicies.json").read_text())
    kyverno_schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]
    gk = json.loads(
        (FIXTURES / "crds/constrainttemplate-customresourcedefinition.json").read_text()
    )
    gk_schema = next(v for v in gk["spec"]["versions"] if v["name"] == "v1")["schema"]
    for d in docs["vap"]:
        if d["kind"] != "Kustomization":
            kubernetes_validate.validate(d, "1.33", strict=True)
    for d in docs["kyverno"]:
        if d["kind"] == "ValidatingPolicy":
            jsonschema.validate(d, kyverno_schema["openAPIV3Schema"])
    for d in docs["gatekeeper"]:
        if d["kind"] == "ConstraintTemplate":
            jsonschema.validate(d, gk_schema["openAPIV3Schema"])
    return docs


@pytest.mark.parametrize("how", ["config", "flag"])
def test_a_custom_kind_builds_for_every_admission_target(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    out = tmp_path / "dist"
    args = ["build", "--target", "all", "--out", str(out)]
    if how == "flag":  # --crd replaces crds: of the configuration
        cfg = yaml.safe_load((repo / "policykit.yaml").read_text())
        cfg["crds"] = ["nowhere"]
        (repo / "policykit.yaml").write_text(yaml.safe_dump(cfg))
        args += ["--crd", str(CRD_FILE)]
    monkeypatch.chdir(repo)
    r = run(args)
    assert r.exit_code == 0, r.output + r.stderr
    assert r.stderr == ""  # no --allow-partial, nothing left out as an error
    # the runtime rule is listed once, as not at admission, with the reason
    listed = [line for line in r.stdout.splitlines() if "ML-101" in line]
    assert len(listed) == 1 and "not at admission: mlops/ML-101: a runtime decision" in listed[0]
    docs = _validate_manifests(out)
    for target in ("kyverno", "vap"):
        policies = [d for d in docs[target] if d["kind"].startswith("Validating")]
        policies = [d for d in policies if "resourceRules" in str(d)]
        assert len(policies) == 2, target  # ML-001 and ML-002; ML-101 is not at admission
        for p in policies:
            assert p["spec"]["matchConstraints"]["resourceRules"] == [
                {
                    "apiGroups": [GROUP],
                    "apiVersions": ["v1", "v1alpha1"],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": [PLURAL],
                    "scope": "*",
                }
            ]
    constraints = [d for d in docs["gatekeeper"] if d["apiVersion"].startswith("constraints.")]
    assert len(constraints) == 2
    for c in constraints:
        assert c["spec"]["match"]["kinds"] == [{"apiGroups": [GROUP], "kinds": ["ModelDeployment"]}]
    assert (out / "bundle.tar.gz").is_file()


def test_verify_agrees_across_targets_on_custom_objects(tmp_path: Path) -> None:
    packs = _pack(tmp_path)
    params = {"mlops": packs[0].defaults()}
    docs_file = tmp_path / "models.yaml"
    docs_file.write_text(yaml.safe_dump_all(OBJECTS))
    docs = load_paths([str(docs_file)]).documents
    report = verify(
        packs, params, docs, ("rego", "gatekeeper", "vap", "kyverno"), custom=_registry()
    )
    assert report.ok, report.mismatches
    for target in ("gatekeeper", "vap", "kyverno"):
        assert report.compared[target] == len(OBJECTS), target  # every custom object compared
    # without the CRD the admission targets never see the objects
    bare = verify(packs, params, docs, ("gatekeeper",))
    assert bare.compared["gatekeeper"] == 0


def test_verify_cli_on_custom_objects(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    r = run(["verify", "--format", "json"])
    assert r.exit_code == 0, r.output + r.stderr
    report = json.loads(r.stdout)
    assert report["mismatches"] == []
    for target in ("gatekeeper", "vap", "kyverno"):
        assert report["compared"][target] == len(OBJECTS)
    r = run(["check", "--format", "json"])
    assert r.exit_code == 1, r.stderr  # ML-001 denies the unpinned models
    rules = sorted((f["rule"], f["object"]["name"]) for f in json.loads(r.stdout)["findings"])
    assert rules == [
        ("ML-001", "both"),
        ("ML-001", "floating"),
        ("ML-002", "both"),
        ("ML-002", "greedy"),
    ]


# --- objects the API server would reject ----------------------------------------------


BAD = {
    "apiVersion": f"{GROUP}/v1",
    "kind": "ModelDeployment",
    "metadata": {"name": "broken", "namespace": "ml"},
    "spec": {
        "model": {"name": "llm"},
        "replicas": "three",
        "replica": 2,
        "memory": "4 GiB",
        "runtime": None,
    },
}


def test_an_object_its_crd_refuses_is_reported(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (repo / "models/broken.yaml").write_text(yaml.safe_dump(BAD))
    (repo / "models/retired.yaml").write_text(yaml.safe_dump(model("old", "x:1", version="v9")))
    monkeypatch.chdir(repo)
    for command in ("check", "verify"):
        r = run([command, "--format", "json"])
        assert r.exit_code == 2, (command, r.stderr)
        lines = [x for x in r.stderr.splitlines() if "PK013" in x]
        assert len(lines) == 5, (command, r.stderr)
        text = "\n".join(lines)
        assert "models/broken.yaml:1: PK013 ModelDeployment broken: spec.replicas: " in text
        assert "'three' is not of type 'integer'" in text
        assert "spec: unknown field 'replica'" in text
        assert "spec.model: 'image' is a required property" in text
        assert "spec.memory: '4 GiB' does not match" in text
        assert "version v9 is not served by CRD modeldeployments.ml.example.com" in text
        assert "spec.runtime" not in text  # nullable
    # verify compares only what the API server would admit
    r = run(["verify", "--format", "json"])
    assert json.loads(r.stdout)["compared"]["rego"] == len(OBJECTS)


# --- kinds nobody defines -------------------------------------------------------------


@pytest.mark.parametrize("target", ["gatekeeper", "kyverno", "vap"])
def test_an_unknown_kind_is_pk201_naming_crds(tmp_path: Path, target: str) -> None:
    src = tmp_path / "mlops.py"
    src.write_text(PACK)
    r = run(["build", "--target", target, "--pack", str(src), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 2  # ML-001 and ML-002; ML-101 is a runtime rule, not an error
    for line in lines:
        assert "PK201" in line and "kind 'ModelDeployment'" in line
        assert "`crds:` in policykit.yaml" in line and "--crd PATH" in line
    assert not (tmp_path / "o").exists()


def test_capability_check_uses_the_registry(tmp_path: Path) -> None:
    pack = _pack(tmp_path)[0]
    rule = pack.rule("ML-001")
    assert "UnknownKind" in cap.features_of(rule)
    assert cap.why_not(pack, rule, "vap", {"max_gpus": 2}) is not None
    with crds.using(_registry()):
        assert "UnknownKind" not in cap.features_of(rule)
        assert cap.why_not(pack, rule, "vap", {"max_gpus": 2}) is None
    assert "RuntimeOnly" in cap.features_of(pack.rule("ML-101"))
    plan = cap.plan([pack], {"mlops": {"max_gpus": 2}}, ["vap"], custom=_registry())
    assert plan.errors == []
    files, skipped = gk_target.build([pack], {"mlops": {"max_gpus": 2}}, custom=_registry())
    assert [s.rule for s in skipped] == ["ML-101"]
    one = dataclasses.replace(pack, rules=(rule,))
    files, _ = manifests.build("vap", [one], {"mlops": {"max_gpus": 2}}, custom=_registry())
    assert PLURAL in json.dumps(files)


# --- CRD files policykit cannot use ---------------------------------------------------

GOOD = yaml.safe_load(CRD_FILE.read_text())


def _variant(**changes: Any) -> str:
    doc = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        *head, last = path.split("__")
        node = doc
        for k in head:
            node = node[int(k)] if isinstance(node, list) else node[k]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return yaml.safe_dump(doc)


CLASH = _variant(spec__names__kind="Deployment")
CASES = {
    "not-yaml.yaml": ("kind: [unclosed", "PK012"),
    "deployment.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
        "not a CustomResourceDefinition of apiextensions.k8s.io/v1",
    ),
    "old.yaml": (_variant(apiVersion="apiextensions.k8s.io/v1beta1"), "v1beta1 was removed"),
    "no-schema.yaml": (
        _variant(spec__versions__0__schema=None),
        "version v1 has no schema.openAPIV3Schema",
    ),
    "not-structural.yaml": (
        _variant(spec__versions__0__schema__openAPIV3Schema__properties__spec__properties__gpus={}),
        "not structural: openAPIV3Schema.properties.spec.properties.gpus has no type",
    ),
    "clash.yaml": (CLASH, "defines kind Deployment, a built-in Kubernetes kind of group apps"),
    # a schema that cannot validate anything: validating an object was an internal error
    "minimum-text.yaml": (
        _variant(
            spec__versions__0__schema__openAPIV3Schema__properties__spec__properties__gpus={
                "type": "integer",
                "minimum": "0",
            }
        ),
        "the schema is invalid: openAPIV3Schema.properties.spec.properties.gpus.minimum: "
        "'0' is not of type 'number'",
    ),
    "unknown-type.yaml": (
        _variant(
            spec__versions__0__schema__openAPIV3Schema__properties__spec__properties__gpus={
                "type": "int"
            }
        ),
        "the schema is invalid: openAPIV3Schema.properties.spec.properties.gpus.type:",
    ),
    "required-list.yaml": (
        _variant(spec__versions__0__schema__openAPIV3Schema__properties__spec__required=[["x"]]),
        "the schema is invalid: openAPIV3Schema: TypeError",
    ),
}


def test_each_unusable_crd_file_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "crds"
    folder.mkdir()
    for name, (text, _) in CASES.items():
        (folder / name).write_text(text)
    src = tmp_path / "mlops.py"
    src.write_text(PACK)
    for command in (["build", "--target", "vap", "--out", str(tmp_path / "o")], ["check", "x"]):
        r = run([*command, "--pack", str(src), "--crd", str(folder)])
        assert r.exit_code == 2, r.output
        lines = r.stderr.splitlines()
        assert len(lines) == len(CASES), r.stderr
        for line, (name, (_, expected)) in zip(sorted(lines), sorted(CASES.items()), strict=True):
            assert line.removeprefix("policykit: ").startswith(f"{folder / name}:"), line
            assert "PK012" in line and expected in line, line
    r = run(["build", "--target", "vap", "--pack", str(src), "--crd", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "PK012" in r.stderr and len(r.stderr.splitlines()) == 1


def test_config_crds_key_is_relative_to_the_config(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "crds").mkdir()
    (repo / "crds/md.yaml").write_text(CRD_FILE.read_text())
    cfg = yaml.safe_load((repo / "policykit.yaml").read_text())
    cfg["crds"] = ["crds"]
    (repo / "policykit.yaml").write_text(yaml.safe_dump(cfg))
    (repo / "sub").mkdir()
    monkeypatch.chdir(repo / "sub")
    r = run(["build", "--target", "vap", "--out", str(tmp_path / "vap")])
    assert r.exit_code == 0, r.stderr
    assert re.search(
        r"resources:\n\s+- modeldeployments", (tmp_path / "vap/mlops.yaml").read_text()
    )


# --- rules that are not for admission are not errors (item 4) -------------------------


@pytest.fixture(params=["examples/platform", "fresh init"])
def platform_repo(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "fresh init":
        root = tmp_path / "acme-repo"
        r = run(["init", str(root), "--name", "acme"])
        assert r.exit_code == 0, r.output
        return root
    return ROOT / "examples/platform"


@pytest.mark.slow
def test_build_all_lists_runtime_rules_once_and_needs_no_allow_partial(
    platform_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(platform_repo)
    out = tmp_path / "dist"
    r = run(["build", "--target", "all", "--out", str(out), "--allow-partial"])
    assert r.exit_code == 0, r.stderr
    # the runtime ToolCall rules: once each, not at admission, with the reason
    runtime = [x for x in r.stdout.splitlines() if "agents/AGENT-1" in x]
    assert len(runtime) == 9, r.stdout  # AGENT-101..106, 110..112
    assert all("not at admission" in x and "a runtime decision" in x for x in runtime)
    # the cross-object rules: once each, for the two CEL targets
    for rule in ("FINOPS-008", "FINOPS-009"):
        listed = [x for x in r.stdout.splitlines() if f"finops/{rule}:" in x]
        assert listed == [f"  not in kyverno, vap: finops/{rule}: {manifests.INVENTORY_REASON}"]
    assert "UnknownKind" not in r.stderr and "AGENT-" not in r.stderr
    r = run(["build", "--target", "all", "--out", str(out)])
    assert r.exit_code == 0 and r.stderr == ""
