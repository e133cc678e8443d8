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
