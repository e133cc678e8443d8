from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import policykit.engines  # noqa: F401  (loads cel-cpp before any test module imports regopy)
from policykit.ir import nodes as ir
from policykit.ir.evaluate import Evaluator

ROOT = Path(__file__).resolve().parent.parent
# Every file a test reads is in this repository (tests/fixtures, with their sources
# in tests/fixtures/SOURCES.md) or comes from a package pinned in the dev extra or
# in tests/js/package-lock.json: nothing beside the clone is a test input.
FIXTURES = ROOT / "tests" / "fixtures"
JS = ROOT / "tests" / "js"

# CI replays a fixed, verified set of examples (derandomize) so that a landing is
# reproducible; local runs ("dev") draw new examples each time to keep finding bugs.
settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--all",
        action="store_true",
        help="also run the tests marked slow (the README's test command and CI do)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # read by examples() when test modules are imported (after this hook)
    full = bool(config.getoption("--all") or config.getoption("markexpr"))
    os.environ["POLICYKIT_TEST_TIER"] = "all" if full else "quick"


def examples(n: int) -> int:
    """A property test's example count: ``n`` under ``--all`` (CI), a fifth of
    it (at least 10) in a plain ``pytest -q``. The same test body runs in both
    tiers; the quick one samples less."""
    if os.environ.get("POLICYKIT_TEST_TIER", "all") == "all":
        return n
    return max(10, n // 5)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the tests marked ``slow`` out of a plain run, so that ``pytest -q``
    stays quick as the suite grows; ``--all`` (CI), a ``-m`` expression, or a
    test named by its node id (``file::test``) runs them."""
    if config.getoption("--all") or config.getoption("markexpr"):
        return
    if any("::" in str(arg) for arg in config.args):
        return
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item.get_closest_marker("slow") is None]


def eval_pred(node: ir.Pred, obj: Any, params: dict[str, Any] | None = None) -> bool:
    return Evaluator(params or {}).pred(node)({ir.OBJECT_ROOT: obj})


def eval_value(node: ir.Value, obj: Any, params: dict[str, Any] | None = None) -> Any:
    return Evaluator(params or {}).value(node)({ir.OBJECT_ROOT: obj})


def path(*segs: str | int) -> ir.Path:
    return ir.Path(ir.OBJECT_ROOT, tuple(segs))


def run_policykit(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python -m policykit ARGS`` in a subprocess, this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "policykit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


@pytest.fixture
def repo_root() -> Path:
    return ROOT


class NodeOracle:
    """A node script in tests/js answering one JSON request per line."""

    script = ""
    package = ""  # a directory under node_modules the script needs

    def __init__(self) -> None:
        import shutil
        import subprocess

        node = shutil.which("node")
        if node is None or not (JS / "node_modules" / self.package).is_dir():
            raise RuntimeError(
                f"{self.package} is not installed: run `bash .ci/install-oracles.sh`"
            )
        self.proc = subprocess.Popen(
            [node, str(JS / self.script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def _ask(self, request: Any) -> Any:
        import json

        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


class AjvOracle(NodeOracle):
    """ajv (what Backstage's scaffolder forms validate with), in one node process."""

    script, package = "oracle.mjs", "ajv"

    def ask(self, request: dict[str, Any]) -> Any:
        answer = self._ask(request)
        if isinstance(answer, dict) and "error" in answer:
            raise AssertionError(f"ajv: {answer['error']}")
        return answer


@pytest.fixture(scope="session")
def ajv() -> Any:
    oracle = AjvOracle()
    yield oracle
    oracle.close()


def sarif_schema() -> dict[str, Any]:
    """The SARIF 2.1.0 schema, from npm ``@microsoft/jest-sarif`` (pinned in tests/js).

    The package ships the 2.1.0 release schema (``sarif-2.1.0-rtm.5``); the OASIS
    errata 01 edition tightened it, and those changes are applied here so that the
    reports are held to the stricter text: a ``region`` names where it starts, enum
    properties are typed, ``language`` patterns are well-formed, ``runs`` may not be
    null (https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/).
    """
    import json

    path = JS / "node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json"
    if not path.is_file():
        raise RuntimeError("the SARIF schema is not installed: run `bash .ci/install-oracles.sh`")
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    defs = schema["definitions"]
    defs["region"]["anyOf"] = [
        {"required": ["startLine"]},
        {"required": ["charOffset"]},
        {"required": ["byteOffset"]},
    ]
    for where, prop in [
        ("result", "kind"),
        ("result", "level"),
        ("result", "baselineState"),
        ("reportingConfiguration", "level"),
        ("run", "columnKind"),
        ("threadFlowLocation", "importance"),
        ("suppression", "kind"),
        ("suppression", "status"),
        ("notification", "level"),
    ]:
        defs[where]["properties"][prop]["type"] = "string"
    for where in ("toolComponent", "run"):
        defs[where]["properties"]["language"]["pattern"] = "^[a-zA-Z]{2}(-[a-zA-Z]{2})?$"
    schema["properties"]["runs"]["type"] = "array"
    schema["properties"]["version"]["type"] = "string"
    return schema


class BackstageOracle(NodeOracle):
    """Backstage's own entity validation (``tests/js/backstage.mjs``): the entity
    policies and kind validators of ``@backstage/catalog-model`` and the Template
    validator of ``@backstage/plugin-scaffolder-common``, in one node process."""

    script, package = "backstage.mjs", "@backstage/catalog-model"

    def validate(self, entity: Any) -> tuple[bool, str]:
        """``(True, "")`` when Backstage accepts the entity, else ``(False, reason)``."""
        answer = self._ask(entity)
        return bool(answer["ok"]), str(answer.get("error", ""))


@pytest.fixture(scope="session")
def backstage() -> Any:
    oracle = BackstageOracle()
    yield oracle
    oracle.close()
