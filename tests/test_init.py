"""`policykit init`: the repository it creates passes `check`, `test`, `verify`
and `build` as created, its tests catch what they claim to, the CI workflow's
commands are the ones that pass, and nothing is ever overwritten or left
half-written."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner, Result

from policykit import scaffold
from policykit.cli.main import cli
from tests.conftest import ROOT

FILES = {
    "policykit.yaml",
    "policies/acme.py",
    "catalog/catalog-info.yaml",
    "deploy/storefront.yaml",
    "agents/support-assistant.yaml",
    "tests/policies.test.yaml",
    ".github/workflows/policykit.yml",
    ".pre-commit-config.yaml",
}


def run(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("init") / "acme-repo"
    r = run(["init", str(root), "--name", "acme"])
    assert r.exit_code == 0, r.output
    assert "ACME-001..003" in r.output
    return root


def test_init_writes_the_repository(repo: Path) -> None:
    assert set(tree(repo)) == FILES
    config = yaml.safe_load((repo / "policykit.yaml").read_text())
    jsonschema.validate(config, json.loads((ROOT / "schemas/config.schema.json").read_text()))
    assert config["packs"][:4] == [
        "policykit.packs.catalog",
        "policykit.packs.finops",
        "policykit.packs.provenance",
        "policykit.packs.agents",
    ]
    assert config["packs"][4] == "policies/acme.py"
    test = yaml.safe_load((repo / "tests/policies.test.yaml").read_text())
    jsonschema.validate(test, json.loads((ROOT / "schemas/test.schema.json").read_text()))
    agent = yaml.safe_load((repo / "agents/support-assistant.yaml").read_text())
    jsonschema.validate(agent, json.loads((ROOT / "schemas/agent.schema.json").read_text()))
    # the local pack builds on the built-in ones and holds its own rules
    pack_src = (repo / "policies/acme.py").read_text()
    assert "from policykit.packs.finops import replicas" in pack_src
    r = run(["rules", "--pack", str(repo / "policies/acme.py"), "--format", "json"])
    assert r.exit_code == 0, r.output
    ids = [x["id"] for x in json.loads(r.output)["rules"]]
    assert ids == ["ACME-001", "ACME-002", "ACME-003"]


def test_check_passes_as_created(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    r = run(["check", "--format", "json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["findings"] == []
    # every configured path was read, and every file holds objects the packs check
    assert report["summary"]["objects"] == 6
    assert report["summary"]["files"] == 3
    # the whole repository: the rule test is skipped (not an object to check), named
    r = run(["check", ".", "--format", "json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["summary"]["objects"] == 6
    skipped = {s["file"]: s["reason"] for s in report["skipped"]}
    assert skipped["tests/policies.test.yaml"] == "a policykit rule test (policykit test)"


def test_rule_tests_pass_as_created(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    r = run(["test", "tests", "--format", "json"])
    assert r.exit_code == 0, r.output
    cases = json.loads(r.output)["cases"]
    assert len(cases) == 13
    assert {c["status"] for c in cases} == {"pass"}
    names = {c["name"] for c in cases}
    assert "two workloads, each within budget, over the cost center's budget together" in names


@pytest.mark.slow
def test_every_target_agrees_and_builds(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = run(["verify", str(repo), "--format", "json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["mismatches"] == []
    assert set(report["compared"]) == {"rego", "opa", "gatekeeper", "kyverno", "vap", "jsonschema"}
    monkeypatch.chdir(repo)  # the configuration's packs and parameters
    out = tmp_path / "dist"
    r = run(["build", "--target", "all", "--out", str(out)])
    assert r.exit_code == 0, r.output
    for target in ("gatekeeper/templates", "gatekeeper/constraints", "kyverno", "vap"):
        assert "ACME-001" in (out / target / "acme.yaml").read_text(), target
    assert (out / "bundle.tar.gz").is_file()


@pytest.mark.slow
def test_the_workflow_runs_what_passes(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workflow = yaml.safe_load((repo / ".github/workflows/policykit.yml").read_text())
    steps = workflow["jobs"]["policykit"]["steps"]
    commands = [s["run"] for s in steps if "run" in s and "polic" in s["run"]]
    install = next(c for c in commands if "pip install" in c)
    from policykit.distribution import install_spec

    # this exact version of this project, never the bare name (another project)
    assert install == f'python -m pip install "{install_spec()}"'
    assert "platform-policy-kit" in install and "policykit==" not in install
    monkeypatch.chdir(repo)
    ran = set()
    for command in commands:
        if "pip install" in command:
            continue
        if command.startswith("python -m policykit."):
            done = subprocess.run(
                [sys.executable, *shlex.split(command)[1:]],
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert done.returncode == 0, (command, done.stderr)
            continue
        line = command.split("||")[0].strip()
        argv = shlex.split(line)
        assert argv[0] == "policykit", line
        r = run(argv[1:])
        assert r.exit_code == 0, (line, r.output)
        ran.add(argv[1])
    assert ran == {"test", "check", "scaffold", "verify", "build"}
    sarif = json.loads((repo / "policykit.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"] == []


@pytest.mark.slow
def test_the_pre_commit_config_runs_this_projects_hooks(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """.pre-commit-config.yaml names hooks policykit's .pre-commit-hooks.yaml
    defines, from policykit's repository at this version's tag; each hook, run
    as pre-commit would on the new repository's files, passes."""
    import re

    from policykit import __version__
    from policykit.distribution import SOURCE_URL

    config = yaml.safe_load((repo / ".pre-commit-config.yaml").read_text())
    (entry,) = config["repos"]
    assert entry["repo"] == SOURCE_URL and entry["rev"] == f"v{__version__}"
    defined = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    ids = [h["id"] for h in entry["hooks"]]
    assert ids == ["policykit-check", "policykit-scaffold-sync", "policykit-build"]
    assert set(ids) <= set(defined)
    files = sorted(tree(repo))
    monkeypatch.chdir(repo)
    for hook_id in ids:
        hook = defined[hook_id]
        matched = [
            f
            for f in files
            if re.search(hook.get("files", ""), f) and not re.search(hook.get("exclude", "^$"), f)
        ]
        argv = shlex.split(hook["entry"])
        if argv[:2] == ["sh", "-c"]:  # policykit-build: the command inside, into a temp dir
            inner = argv[2].split(">")[0].replace('"$(mktemp -d)"', str(tmp_path / "dist"))
            argv = shlex.split(inner)
        assert argv[0] == "policykit", hook["entry"]
        args = argv[1:] + (matched if hook.get("pass_filenames", True) else [])
        r = run(args)
        assert r.exit_code == 0, (hook_id, args, r.output)


def test_the_tests_catch_a_broken_rule_and_a_broken_manifest(tmp_path: Path) -> None:
    root = tmp_path / "mutant"
    assert run(["init", str(root), "--name", "mutant"]).exit_code == 0
    # a manifest that breaks MUTANT-001: check fails, and so does the "clean" case
    deploy = root / "deploy/storefront.yaml"
    deploy.write_text(deploy.read_text().replace("replicas: 2", "replicas: 1", 1))
    r = run(["check", str(root / "deploy"), "--format", "json"])
    assert r.exit_code == 1, r.output
    assert [f["rule"] for f in json.loads(r.output)["findings"]] == ["MUTANT-001"]
    r = run(["test", str(root / "tests"), "--format", "json"])
    assert r.exit_code == 1
    failed = [c for c in json.loads(r.output)["cases"] if c["status"] == "fail"]
    assert [c["name"] for c in failed] == ["the storefront's workloads are clean"]
    assert "got deny [MUTANT-001]" in failed[0]["reason"]
    # a rule that no longer catches what it should: its case fails
    pack = root / "policies/mutant.py"
    pack.write_text(pack.read_text().replace('P("min_prod_replicas")', "1"))
    deploy.write_text(deploy.read_text().replace("replicas: 1", "replicas: 2", 1))
    (root / "policies/mutant.py").rename(root / "policies/mutant2.py")
    config = root / "policykit.yaml"
    config.write_text(config.read_text().replace("policies/mutant.py", "policies/mutant2.py"))
    r = run(["test", str(root / "tests"), "--format", "json"])
    assert r.exit_code == 1
    failed = [c for c in json.loads(r.output)["cases"] if c["status"] == "fail"]
    assert [c["name"] for c in failed] == ["one pod in a production namespace is too few"]
    assert "expected deny [MUTANT-001], got clean" in failed[0]["reason"]


def test_init_never_overwrites(tmp_path: Path) -> None:
    root = tmp_path / "existing"
    (root / "tests").mkdir(parents=True)
    (root / "policykit.yaml").write_text("packs: [mine]\n")
    (root / "tests/policies.test.yaml").write_text("keep me\n")
    before = tree(root)
    r = CliRunner().invoke(cli, ["init", str(root), "--name", "acme"])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1, r.output
    assert "PK011" in lines[0]
    assert "policykit.yaml" in lines[0] and "tests/policies.test.yaml" in lines[0]
    assert "Traceback" not in r.output
    assert tree(root) == before
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "policykit.yaml",
        "tests",
        "tests/policies.test.yaml",
    ]


def test_init_into_an_unrelated_repository_and_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an existing repository with other files: they stay, the new ones appear
    root = tmp_path / "Acme-Platform.git"
    (root / "src").mkdir(parents=True)
    (root / "README.md").write_text("# ours\n")
    monkeypatch.chdir(root)
    r = run(["init"])
    assert r.exit_code == 0, r.output
    assert "local pack acme_platform_git" in r.output
    assert (root / "README.md").read_text() == "# ours\n"
    assert (root / "policies/acme_platform_git.py").is_file()
    assert "next:" in r.output  # no "cd" when the repository is the working directory
    r = run(["check"])
    assert r.exit_code == 0, r.output
    r = run(["test", "tests"])
    assert r.exit_code == 0, r.output
    assert "ACME-PLATFORM-GIT-001" in (root / "tests/policies.test.yaml").read_text()


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Acme", "lower case"),
        ("1acme", "lower case"),
        ("acme-x", "lower case"),
        ("finops", "taken by policykit"),
        ("main", "taken by policykit"),
    ],
)
def test_bad_names_are_refused(tmp_path: Path, name: str, why: str) -> None:
    r = CliRunner().invoke(cli, ["init", str(tmp_path / "x"), "--name", name])
    assert r.exit_code == 2
    assert why in r.output and "PK011" in r.output
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("directory", "pack"),
    [
        ("acme", "acme"),
        ("my-platform", "my_platform"),
        ("42", "platform_rules"),
        ("catalog", "catalog_rules"),
        ("-x-", "x"),
    ],
)
def test_pack_name_from_the_directory(tmp_path: Path, directory: str, pack: str) -> None:
    assert scaffold.pack_name_for(tmp_path / directory) == pack


def test_a_failed_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "half"
    (root / "deploy").mkdir(parents=True)  # exists before: stays
    real = scaffold._write_new
    calls = []

    def failing(path: Path, text: str) -> None:
        calls.append(path)
        if len(calls) == 5:
            raise OSError(28, "No space left on device", str(path))
        real(path, text)

    monkeypatch.setattr(scaffold, "_write_new", failing)
    r = CliRunner().invoke(cli, ["init", str(root), "--name", "acme"])
    assert r.exit_code == 2
    assert "No space left on device" in r.output and "nothing was left behind" in r.output
    assert [p.relative_to(root).as_posix() for p in root.rglob("*")] == ["deploy"]

    def interrupted(path: Path, text: str) -> None:
        if path.name == "policies.test.yaml":
            raise KeyboardInterrupt
        real(path, text)

    monkeypatch.setattr(scaffold, "_write_new", interrupted)
    with pytest.raises(KeyboardInterrupt):
        scaffold.init(root, "acme")
    assert [p.relative_to(root).as_posix() for p in root.rglob("*")] == ["deploy"]


def test_a_file_where_the_directory_should_be(tmp_path: Path) -> None:
    target = tmp_path / "afile"
    target.write_text("x")
    r = CliRunner().invoke(cli, ["init", str(target), "--name", "acme"])
    assert r.exit_code == 2
    assert "PK011" in r.output or "Error" in r.output
    assert "Traceback" not in r.output
    assert target.read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_output_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(["init", str(a), "--name", "acme"]).exit_code == 0
    assert run(["init", str(b), "--name", "acme"]).exit_code == 0
    assert tree(a) == tree(b)
    for p in a.rglob("*"):
        if p.is_file():
            assert "__PACK__" not in p.read_text() and "__PREFIX__" not in p.read_text()


def test_the_readme_rule_test_passes_in_a_new_repository(repo: Path) -> None:
    import re

    readme = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "kind: Test" in b)
    path = repo / "tests" / "readme.test.yaml"
    path.write_text(block)
    try:
        r = run(["test", str(path), "--format", "json"])
    finally:
        path.unlink()
    assert r.exit_code == 0, r.output
    assert [c["status"] for c in json.loads(r.output)["cases"]] == ["pass"]


def test_the_workflow_installs_this_project_pinned(tmp_path: Path) -> None:
    """The workflow never installs the bare name: on the package index 'policykit'
    is an unrelated project (a dependency-confusion hole); it pins this version."""
    from policykit import __version__
    from policykit.distribution import DIST_NAME, install_spec

    commit = "0123456789abcdef0123456789abcdef01234567"
    url = "https://example.test/acme/policykit"
    from_git = {"url": url, "vcs_info": {"vcs": "git", "commit_id": commit}}
    assert install_spec(from_git) == f"{DIST_NAME} @ git+{url}@{commit}"
    assert install_spec(published=True) == f"{DIST_NAME}=={__version__}"
    wheel = {"url": "https://artifacts.test/w.whl", "archive_info": {"hash": "sha256=ab12"}}
    assert install_spec(wheel) == f"{DIST_NAME} @ https://artifacts.test/w.whl#sha256=ab12"
    # an editable or local install: the project's repository at this version's tag
    assert install_spec({"url": "file:///src", "dir_info": {"editable": True}}).endswith(
        f"@v{__version__}"
    )
    root = tmp_path / "pinned"
    spec = "platform-policy-kit @ https://artifacts.test/platform_policy_kit-0.1.0-py3-none-any.whl"
    assert run(["init", str(root), "--install", spec]).exit_code == 0
    text = (root / ".github/workflows/policykit.yml").read_text()
    assert f'pip install "{spec}"' in text
    for bad in ("policykit", "policykit==0.4.0", "platform-policy-kit", 'x"; rm -rf /'):
        r = run(["init", str(tmp_path / "refused"), "--install", bad])
        assert r.exit_code == 2 and "PK011" in r.output, (bad, r.output)
        assert not (tmp_path / "refused").exists() or not any((tmp_path / "refused").iterdir())
