"""policykit installs as a user installs it: ``python -m build`` makes an sdist and a
wheel, and the wheel, installed into a fresh virtual environment with nothing of
this checkout on the path, runs ``check``, ``build --target all``, ``verify`` and
``init`` (which needs the rego library, the schemas, ``kinds.json``, the
capability table and the scaffold files inside the wheel); ``pipx run`` works too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from policykit import __version__
from policykit.distribution import DIST_NAME
from tests.conftest import ROOT

# builds an sdist and a wheel and installs them: minutes, whatever the machine
pytestmark = pytest.mark.slow

WHEEL_NAME = DIST_NAME.replace("-", "_")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def _run(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=_clean_env()
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # build from a copy holding only what git tracks (as a clone would)
    src = tmp_path_factory.mktemp("src") / "policykit"
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, files):
        p = ROOT / rel
        if p.is_symlink():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).symlink_to(os.readlink(p))
        elif p.is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, src / rel)
    done = _run([sys.executable, "-m", "build", "--outdir", str(out), str(src)], cwd=src)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    wheel = next(dist.glob(f"{WHEEL_NAME}-{__version__}-py3-none-any.whl"))
    done = _run(
        [str(env / "bin/python"), "-m", "pip", "install", "--quiet", str(wheel)], cwd=dist
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return env


def test_sdist_and_wheel_carry_the_data_files(dist: Path) -> None:
    wheel = next(dist.glob(f"{WHEEL_NAME}-{__version__}-py3-none-any.whl"))
    sdist = next(dist.glob(f"{WHEEL_NAME}-{__version__}.tar.gz"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "policykit/rego/policykit/lib/quantity.rego",
        "policykit/schemas/config.schema.json",
        "policykit/schemas/packs/catalog.params.schema.json",
        "policykit/targets/k8s/kinds.json",
        "policykit/targets/capabilities.json",
        "policykit/scaffold/files/workflow.yml",
        "policykit/py.typed",
    ):
        assert needed in names, needed
    meta = zipfile.ZipFile(wheel).read(
        f"{WHEEL_NAME}-{__version__}.dist-info/METADATA"
    ).decode()
    assert f"Name: {DIST_NAME}" in meta and "Requires-Python: >=3.11" in meta
    # the license pyproject declares travels with both, its text included
    assert "License-Expression: Apache-2.0" in meta and "License-File: LICENSE" in meta
    text = zipfile.ZipFile(wheel).read(f"{WHEEL_NAME}-{__version__}.dist-info/licenses/LICENSE")
    assert b"Apache License" in text and b"Version 2.0, January 2004" in text
    with tarfile.open(sdist) as tar:
        members = tar.getnames()
    assert any(m.endswith("rego/policykit/lib/values.rego") for m in members)
    assert f"{WHEEL_NAME}-{__version__}/LICENSE" in members


def test_the_wheel_runs_check_build_verify_and_init(venv: Path, tmp_path: Path) -> None:
    bin_ = venv / "bin"
    code = "import policykit; print(policykit.__file__)"
    where = _run([str(bin_ / "python"), "-c", code], tmp_path)
    assert str(venv) in where.stdout, where.stdout  # the installed copy, not this checkout
    version = _run([str(bin_ / "policykit"), "--version"], tmp_path)
    assert version.returncode == 0 and __version__ in version.stdout, version

    platform = tmp_path / "platform"
    shutil.copytree(ROOT / "examples/platform", platform)
    check = _run([str(bin_ / "policykit"), "check", "--format", "json"], platform)
    assert check.returncode == 1, check.stderr  # the example platform has real findings
    assert '"findings"' in check.stdout
    build = _run(
        [str(bin_ / "policykit"), "build", "--target", "all", "--allow-partial", "--out", "dist"],
        platform,
    )
    assert build.returncode == 0, build.stderr
    for target in ("bundle.tar.gz", "gatekeeper", "kyverno", "vap", "jsonschema"):
        assert (platform / "dist" / target).exists(), target
    # the platform's Rego targets are verified in-process (test_builtin_packs), and
    # every target through this wheel on the new repository below: here, the
    # installed CEL and JSON Schema outputs on the platform (the Rego ones in
    # regopy would take minutes more and prove nothing new)
    targets = ("--target", "vap", "--target", "kyverno", "--target", "jsonschema")
    verify = _run([str(bin_ / "policykit"), "verify", *targets], platform)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    repo = tmp_path / "fresh"
    init = _run([str(bin_ / "policykit"), "init", str(repo), "--name", "acme"], tmp_path)
    assert init.returncode == 0, init.stderr
    workflow = (repo / ".github/workflows/policykit.yml").read_text()
    assert f'pip install "{DIST_NAME}' in workflow and '"policykit==' not in workflow
    for argv in (["check"], ["test", "tests"], ["verify"]):
        done = _run([str(bin_ / "policykit"), *argv], repo)
        assert done.returncode == 0, (argv, done.stdout, done.stderr)


def test_pipx_runs_the_wheel(dist: Path, tmp_path: Path) -> None:
    wheel = next(dist.glob(f"{WHEEL_NAME}-{__version__}-py3-none-any.whl"))
    env = _clean_env(PIPX_HOME=str(tmp_path / "pipx"), PIPX_BIN_DIR=str(tmp_path / "bin"))
    done = subprocess.run(
        [sys.executable, "-m", "pipx", "run", "--spec", str(wheel), "policykit", "--version"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert __version__ in done.stdout
