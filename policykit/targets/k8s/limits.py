"""The limits an expression must meet before the API server (or Kyverno)
accepts a ValidatingAdmissionPolicy or a ValidatingPolicy, checked at build.

* length: cel-go's parser refuses an expression of more than
  :data:`MAX_CODEPOINTS` code points (``parser.ExpressionSizeCodePointLimit``,
  google/cel-go ``parser/options.go``, the default Kubernetes keeps);
* nesting: cel-cpp (the local engine, ``policykit.engines.cel``) parses at most
  :data:`MAX_DEPTH` levels of brackets — stricter than cel-go's recursion limit,
  so a policy that passes here parses in both;
* cost (:mod:`celcost`): nothing refuses a policy for its *estimated* cost at
  creation — the API server compiles a VAP's expressions with ``object`` as
  ``dyn`` and never calls the estimator (kubernetes
  ``staging/src/k8s.io/apiserver/pkg/admission/plugin/cel/compile.go``
  ``CompileCELExpression``; ``pkg/apis/admissionregistration/validation/
  validation.go`` ``validateValidationExpression``), nor does Kyverno
  (``pkg/cel/policies/vpol/compiler/compiler.go``), which sets no run-time
  limit either (``pkg/cel/compiler/env.go``). The API server aborts at *run time*:
  an expression past :data:`PER_CALL_LIMIT`, the validations with their
  variables and message expressions past :data:`RUNTIME_BUDGET`, the match
  conditions past :data:`MATCH_BUDGET` (``apiserver/pkg/apis/cel/config.go``;
  ``plugin/cel/condition.go`` ``ForInput``; ``policy/validating/validator.go``).
  An abort is an error that ``failurePolicy: Fail`` turns into a denial. So
  the check estimates each expression on an object whose lists hold
  :data:`celcost.TYPICAL_ITEMS` items (:data:`celcost.TYPICAL`) and reports
  the run-time limit it would pass. A message expression past the per-call
  limit only loses its text (validator.go falls back to ``message``), so it
  is not a problem, but it still counts, up to the limit, in the budget.

A policy over any limit is a PK200 at build naming the limit and the figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policykit.targets.cel import printer as pr
from policykit.targets.cel.compiler import CEL_MAX_CODEPOINTS, CEL_MAX_DEPTH
from policykit.targets.k8s import celcost
from policykit.targets.k8s.cel_cost import model
from policykit.targets.k8s.cel_cost.parser import CelSyntaxError

MAX_CODEPOINTS = CEL_MAX_CODEPOINTS
MAX_DEPTH = CEL_MAX_DEPTH
PER_CALL_LIMIT = 1_000_000  # celconfig.PerCallLimit
RUNTIME_BUDGET = 10_000_000  # celconfig.RuntimeCELCostBudget
MATCH_BUDGET = 2_500_000  # celconfig.RuntimeCELCostBudgetMatchConditions

_RUNTIME = (
    "the API server accepts the policy and aborts the evaluation at run time "
    "(an error that failurePolicy Fail turns into a denial)"
)


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


def _n(x: int) -> str:
    return "unbounded" if x >= model.U64 else f"{x:,}"


def _from_items(policy: Mapping[str, Any], where: str, limit: int) -> int | None:
    """The smallest list size (1..TYPICAL_ITEMS) at which ``where`` passes ``limit``."""
    lo, hi = 1, celcost.TYPICAL_ITEMS
    while lo < hi:
        mid = (lo + hi) // 2
        costs = dict(celcost.policy_cost(dict(policy), model.Sizes(mid)).expressions)
        if costs[where].hi > limit:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _model() -> str:
    n = celcost.TYPICAL_ITEMS
    chars = n * celcost.CHARS_PER_ITEM
    return f"on an object whose lists hold {n} items and strings {chars} characters"


def cost_problems(policy: Mapping[str, Any]) -> list[str]:
    """The run-time cost limits ``policy`` would pass (:mod:`celcost`). None for
    a Kyverno ValidatingPolicy: Kyverno builds its programs with no cost limit
    (kyverno ``pkg/cel/compiler/env.go`` ``NewBaseEnv``, ``CompileValidation``)."""
    if policy.get("kind") != "ValidatingAdmissionPolicy":
        return []
    try:
        pc = celcost.policy_cost(dict(policy))
    except CelSyntaxError as e:
        return [f"the cost estimate cannot read an expression: {e}"]
    out = []
    budget = 0
    for where, c in pc.expressions:
        message = where.endswith("messageExpression")
        if not where.startswith("spec.matchConditions"):
            budget += min(c.hi, PER_CALL_LIMIT) if message else c.hi
        if c.hi > PER_CALL_LIMIT and not message:
            n = _from_items(policy, where, PER_CALL_LIMIT)
            out.append(
                f"{where} has an estimated cost of {_n(c.hi)} {_model()}, over the per-expression "
                f"limit PerCallLimit {PER_CALL_LIMIT:,} (from {n} items on): {_RUNTIME}"
            )
    if budget > RUNTIME_BUDGET:
        out.append(
            f"the policy's validations, variables and messages have an estimated cost of "
            f"{_n(budget)} {_model()}, over the per-evaluation budget RuntimeCELCostBudget "
            f"{RUNTIME_BUDGET:,}: {_RUNTIME}"
        )
    if pc.match_total.hi > MATCH_BUDGET:
        out.append(
            f"the match conditions have an estimated cost of {_n(pc.match_total.hi)} {_model()}, "
            f"over RuntimeCELCostBudgetMatchConditions {MATCH_BUDGET:,}: {_RUNTIME}"
        )
    return out


def problems(policy: Mapping[str, Any]) -> list[str]:
    """What would make the API server or the local engine refuse ``policy``
    (length, nesting), or the API server abort its evaluation (cost)."""
    out = []
    for where, expr in expressions(policy):
        if len(expr) > MAX_CODEPOINTS:
            out.append(f"{where} is {len(expr)} code points long; the limit is {MAX_CODEPOINTS}")
        d = depth(expr)
        if d > MAX_DEPTH:
            out.append(f"{where} nests {d} levels deep; the limit is {MAX_DEPTH}")
    if out:  # the estimate needs an expression the engines read
        return out
    return cost_problems(policy)


def summary(policy: Mapping[str, Any]) -> dict[str, int | None]:
    """Figures for ``build --format json``: total characters, deepest nesting,
    longest expression, and the estimated cost per evaluation — ``cost`` on
    the typical object the build check uses, ``cost_worst`` with Kubernetes'
    size bounds (the largest object a 3 MiB request holds; null: beyond any
    bound, an unknown size)."""
    texts = [e for _, e in expressions(policy)]
    out: dict[str, int | None] = {
        "chars": sum(map(len, texts)),
        "depth": max((depth(t) for t in texts), default=0),
        "longest": max((len(t) for t in texts), default=0),
    }
    try:
        typical = celcost.policy_cost(dict(policy))
        worst = celcost.policy_cost(dict(policy), celcost.WORST)
    except CelSyntaxError:
        out["cost"] = out["cost_worst"] = None
        return out
    out["cost"] = typical.total.hi
    out["cost_worst"] = None if worst.total.hi >= model.U64 else worst.total.hi
    return out


GUIDE = [
    "## Limits and cost",
    "",
    "`build --target vap|kyverno` checks every CEL expression of each policy",
    "(`policykit/targets/k8s/limits.py`); a policy over a limit is PK200 naming the",
    "limit and the figure:",
    "",
    "* **length**: at most 100,000 code points (cel-go `parser/options.go`",
    "  `ExpressionSizeCodePointLimit`): the API server refuses a longer one at creation;",
    "* **nesting**: at most the depth cel-cpp, the local engine, parses (stricter than",
    "  cel-go's recursion limit);",
    "* **cost** (`policykit/targets/k8s/celcost.py`): the static estimate of cel-go",
    "  `checker/cost.go`, with Kubernetes' function costs",
    "  (`apiserver/pkg/cel/library/cost.go`) and size rules (`apiserver/pkg/cel/common/",
    "  schemas.go`).",
    "",
    "Which cost limit applies, and when: the API server does **not** refuse a",
    "ValidatingAdmissionPolicy for its estimated cost. At creation it compiles each",
    "expression with `object` typed `dyn` and never calls the estimator",
    "(`apiserver/pkg/admission/plugin/cel/compile.go` `CompileCELExpression`,",
    "`pkg/apis/admissionregistration/validation/validation.go`); Kyverno compiles a",
    "ValidatingPolicy the same way, with no cost check (`pkg/cel/policies/vpol/compiler/",
    "compiler.go`), and builds its programs with no run-time cost limit either",
    "(`pkg/cel/compiler/env.go`): for `kyverno` the cost is a figure, never a PK200.",
    "The estimated-cost limits that refuse at creation exist for CRD validation",
    "rules only. A VAP's limits bite at **run time** (`apiserver/pkg/apis/cel/",
    "config.go`): one expression is aborted past `PerCallLimit` (1,000,000); the",
    "validations of one policy, the variables they read (each evaluated at most once,",
    "lazily: `plugin/cel/composition.go`) and the message expressions share",
    "`RuntimeCELCostBudget` (10,000,000); match conditions have",
    "`RuntimeCELCostBudgetMatchConditions` (2,500,000). An abort is an evaluation",
    "error, which `failurePolicy: Fail` turns into a denial. A message expression",
    "aborted alone only loses its text (`policy/validating/validator.go` falls back",
    "to `message`), so it is reported in the figures but is not a PK200.",
    "",
    "Run-time cost depends on the object, so the check estimates it on a *typical",
    "large* object: every list and map of 16 entries, every string of 256",
    "characters (`celcost.TYPICAL`). The message says from how many items on the",
    "limit is passed. Kubernetes' own bounds — what fits in a 3 MiB request,",
    "about a million containers — make almost any loop over a list pass",
    "`PerCallLimit`; that figure is printed too, as `cost_worst` (null when a",
    "value of unknown type makes it unbounded, as cel-go says).",
    "",
    "Approximations: types come from the kind's schema (built-in OpenAPI, CRDs),",
    "not a cel-go type check; `maxItems`/`maxLength` are not read (the packaged",
    "tables drop them); in the typical model a type value (`type(x)`, `map`) has",
    "size 1, as at run time, and a `dyn` value iterated counts as a list of 16;",
    "every variable counts once in the budget even if no validation reads it.",
    "cel-go keeps no size through an optional (`.?f`, `[?k]`, `orValue`), so",
    "Kubernetes' figure for a loop over an optional chain is unbounded; the typical",
    "object takes the size from the field's schema type.",
    "",
]
