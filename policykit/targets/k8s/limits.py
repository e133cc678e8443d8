"""The limits an expression must meet before the API server (or Kyverno)
accepts a ValidatingAdmissionPolicy or a ValidatingPolicy, checked at build.

* length: cel-go's parser refuses an expression of more than
  :data:`MAX_CODEPOINTS` code points (``parser.ExpressionSizeCodePointLimit``,
  google/cel-go ``parser/options.go``, the default Kubernetes keeps);
* nesting: cel-cpp (the local engine, ``policykit.engines.cel``) parses at most
  :data:`MAX_DEPTH` levels of brackets — stricter than cel-go's recursion limit,
  so a policy that passes here parses in both.

A policy over either limit is a PK200 at build naming the limit and the figure.
The API server's *cost* estimate (cel-go ``checker/cost.go``, Kubernetes'
``PerCallLimit`` of 1,000,000 and ``RuntimeCELCostBudget`` of 10,000,000 per
policy) is not reproduced here yet (docs/targets.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policykit.targets.cel import printer as pr
from policykit.targets.cel.compiler import CEL_MAX_CODEPOINTS, CEL_MAX_DEPTH

MAX_CODEPOINTS = CEL_MAX_CODEPOINTS
MAX_DEPTH = CEL_MAX_DEPTH


def expressions(policy: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every CEL text of a VAP or ValidatingPolicy: (field path, expression)."""
    spec = policy.get("spec") or {}
    out: list[tuple[str, str]] = []
    for i, m in enumerate(spec.get("matchConditions") or []):
        out.append((f"spec.matchConditions[{i}].expression", str(m["expression"])))
    for i, v in enumerate(spec.get("variables") or []):
        out.append((f"spec.variables[{i}].expression", str(v["expression"])))
    for i, v in enumerate(spec.get("validations") or []):
        out.append((f"spec.validations[{i}].expression", str(v["expression"])))
        if v.get("messageExpression"):
            out.append((f"spec.validations[{i}].messageExpression", str(v["messageExpression"])))
    return out


def depth(expr: str) -> int:
    return pr.max_depth(expr)


def problems(policy: Mapping[str, Any]) -> list[str]:
    """What would make the API server or the local engine refuse ``policy``."""
    out = []
    for where, expr in expressions(policy):
        if len(expr) > MAX_CODEPOINTS:
            out.append(f"{where} is {len(expr)} code points long; the limit is {MAX_CODEPOINTS}")
        d = depth(expr)
        if d > MAX_DEPTH:
            out.append(f"{where} nests {d} levels deep; the limit is {MAX_DEPTH}")
    return out


def summary(policy: Mapping[str, Any]) -> dict[str, int]:
    """Figures for ``build --format json``: total characters, deepest nesting,
    longest expression."""
    texts = [e for _, e in expressions(policy)]
    return {
        "chars": sum(map(len, texts)),
        "depth": max((depth(t) for t in texts), default=0),
        "longest": max((len(t) for t in texts), default=0),
    }
