from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from policykit.engines.native import _Compiler
from policykit.ir import nodes as ir

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

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


def eval_pred(node: ir.Pred, obj: Any, params: dict[str, Any] | None = None) -> bool:
    return _Compiler(params or {}).pred(node)({ir.OBJECT_ROOT: obj})


def eval_value(node: ir.Value, obj: Any, params: dict[str, Any] | None = None) -> Any:
    return _Compiler(params or {}).value(node)({ir.OBJECT_ROOT: obj})


def path(*segs: str | int) -> ir.Path:
    return ir.Path(ir.OBJECT_ROOT, tuple(segs))


@pytest.fixture
def repo_root() -> Path:
    return ROOT


class AjvOracle:
    """ajv (what Backstage's scaffolder forms validate with), in one node process."""

    def __init__(self) -> None:
        import shutil
        import subprocess

        js = ROOT / "tests" / "js"
        node = shutil.which("node")
        if node is None or not (js / "node_modules" / "ajv").is_dir():
            raise RuntimeError("ajv is not installed: run `bash .ci/install-oracles.sh`")
        self.proc = subprocess.Popen(
            [node, str(js / "oracle.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def ask(self, request: dict[str, Any]) -> Any:
        import json

        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        if isinstance(answer, dict) and "error" in answer:
            raise AssertionError(f"ajv: {answer['error']}")
        return answer

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def ajv() -> Any:
    oracle = AjvOracle()
    yield oracle
    oracle.close()
