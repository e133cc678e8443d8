"""PolicyExceptions: which exceptions name a policy, whether one covers a
request, and what it makes of the result.

``policies.kyverno.io`` exceptions (for ValidatingPolicy), as Kyverno runs
them:

* an exception belongs to a policy when one of its ``policyRefs`` has the
  policy's name *and* kind (``pkg/cel/policies/vpol/engine/provider.go``:
  ``ref.Name == policy.GetName() && ref.Kind == policy.GetKind()``); the
  specs Kyverno generates for Pod controllers get the same exceptions;
* they are checked after ``matchConstraints`` and *before* the policy's
  ``matchConditions`` (``pkg/cel/policies/vpol/compiler/policy.go``,
  ``evaluateWithData``), in order: an exception whose ``matchConditions`` all
  hold matches; one that errors fails the evaluation unless a full exemption
  was already found (under ``failurePolicy: Ignore`` it does not match); an
  exception with ``images`` or ``allowedValues`` only narrows, it does not
  exempt;
* with a full exemption the result is the ``reportResult`` (``pass``, else
  ``skip``) of the matched exception with the highest ``polex.kyverno.io/
  priority`` label, the first one on a tie (``pkg/cel/policies/vpol/engine/
  engine.go``, ``handlePolicy``).

An exception past its ``spec.expiresAt`` does not apply (policykit's waiver
export writes it; the exception is gone from the cluster by then).

``kyverno.io`` exceptions (for ClusterPolicy rules) name ``policyName`` and
``ruleNames`` and match with a ClusterPolicy ``match`` block.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policykit.engines.cel import CelEvalError, View
from policykit.k8s.matching import conditions_hold, matches
from policykit.k8s.request import Context

PRIORITY_LABEL = "polex.kyverno.io/priority"


def _spec(exc: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = exc.get("spec")
    return spec if isinstance(spec, dict) else {}


def for_policy(
    exceptions: Sequence[Mapping[str, Any]], name: str, kind: str, moment: dt.datetime
) -> list[Mapping[str, Any]]:
    """The ``policies.kyverno.io`` PolicyExceptions that name the policy
    (name and kind) and have not expired at ``moment``, in their order."""
    out: list[Mapping[str, Any]] = []
    for exc in exceptions:
        if not str(exc.get("apiVersion", "")).startswith("policies.kyverno.io/"):
            continue
        spec = _spec(exc)
        refs = spec.get("policyRefs") or []
        if not any(r.get("name") == name and r.get("kind") == kind for r in refs):
            continue
        expires = spec.get("expiresAt")
        if expires and dt.datetime.fromisoformat(str(expires).replace("Z", "+00:00")) < moment:
            continue
        out.append(exc)
    return out


@dataclass(frozen=True, slots=True)
class Exempted:
    """A full exemption: the result it reports and the exceptions that matched."""

    result: str  # "pass" | "skip"
    names: tuple[str, ...]


def _priority(exc: Mapping[str, Any]) -> int:
    labels = (exc.get("metadata") or {}).get("labels") or {}
    try:
        return int(str(labels.get(PRIORITY_LABEL, "")))
    except ValueError:
        return 0


def exemption(
    exceptions: Sequence[Mapping[str, Any]],
    data: Mapping[str, Any] | View,
    failure_policy: str = "Fail",
) -> Exempted | None:
    """The full exemption the policy's exceptions grant this request, or None.
    An exception whose condition errors raises :class:`CelEvalError` (the
    policy's evaluation errors) unless a full exemption came before it, or
    the policy's failure policy is ``Ignore``."""
    matched: list[Mapping[str, Any]] = []
    full = False
    for exc in exceptions:
        spec = _spec(exc)
        try:
            hit = conditions_hold(spec.get("matchConditions") or [], data, failure_policy)
        except CelEvalError:
            if full:
                continue
            raise
        if not hit:
            continue
        matched.append(exc)
        if not spec.get("images") and not spec.get("allowedValues"):
            full = True
    if not full:
        return None
    best, chosen = 0, matched[0]
    for exc in matched:
        if _priority(exc) > best:
            best, chosen = _priority(exc), exc
    result = "pass" if _spec(chosen).get("reportResult") == "pass" else "skip"
    names = tuple(
        "/".join(
            str(p)
            for p in ((exc.get("metadata") or {}).get("namespace"), exc["metadata"]["name"])
            if p
        )
        for exc in matched
    )
    return Exempted(result, names)


def legacy_exception(policy: str, rule: str, obj: Mapping[str, Any], ctx: Context) -> bool:
    """A ``kyverno.io`` PolicyException names the ClusterPolicy's rule and
    its ``match`` block matches the resource."""
    for exc in ctx.exceptions:
        if not str(exc.get("apiVersion", "")).startswith("kyverno.io/"):
            continue
        spec = _spec(exc)
        named = any(
            e.get("policyName") == policy and rule in (e.get("ruleNames") or [])
            for e in spec.get("exceptions") or []
        )
        if named and matches(spec.get("match"), obj, ctx, "exception"):
            return True
    return False
