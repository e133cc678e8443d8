"""Selectors as CEL conditions over ``object`` (docs/semantics.md, "Selectors")."""

from __future__ import annotations

import re
from collections.abc import Sequence

from policykit.ir.rule import Selector
from policykit.targets.cel import printer as pr

_API_VERSION = "object.apiVersion"
_HAS_API = f"has({_API_VERSION}) && type({_API_VERSION}) == string"
_BACKSTAGE_GROUP = pr.string(r"^([^/]*\.)?backstage\.io/")
IS_BACKSTAGE = f"({_HAS_API} && {_API_VERSION}.matches({_BACKSTAGE_GROUP}))"
"""A Backstage entity: the group of its apiVersion (before the first ``/``) is
``backstage.io`` or ends with ``.backstage.io``."""
_NS = "object.metadata.namespace"
_HAS_NS = (
    f"has(object.metadata) && type(object.metadata) == map && has({_NS}) && type({_NS}) == string"
)


def _glob(patterns: Sequence[str], e: str) -> str:
    out = []
    for p in patterns:
        if p.endswith("*"):
            out.append(f"{e}.startsWith({pr.string(p[:-1])})")
        else:
            out.append(f"{e} == {pr.string(p)}")
    return pr.disj(out)


def _glob_static(patterns: Sequence[str], value: str) -> bool:
    return any(value.startswith(p[:-1]) if p.endswith("*") else p == value for p in patterns)


Admitted = Sequence[tuple[str, Sequence[str]]]
"""What a policy's ``matchConstraints.resourceRules`` admit: per rule, its API
group and versions (``*``: any; group ``*``: any resource)."""

_BACKSTAGE_GROUP_RE = re.compile(r"([^/]*\.)?backstage\.io")


def _may_be_backstage(admitted: Admitted) -> bool:
    return any(g == "*" or _BACKSTAGE_GROUP_RE.fullmatch(g) for g, _ in admitted)


def _versions_implied(patterns: Sequence[str], admitted: Admitted) -> bool:
    """Whether every apiVersion the resource rules admit matches one of the
    selector's ``apiVersions`` patterns (exact, or ``group/*``)."""

    def hit(api: str) -> bool:
        return any(api.startswith(p[:-1]) if p.endswith("/*") else api == p for p in patterns)

    for group, versions in admitted:
        if group == "*":
            return False
        if "*" in versions:
            if not group or f"{group}/*" not in patterns:
                return False
        elif not all(hit(f"{group}/{v}" if group else v) for v in versions):
            return False
    return True


def selector_expr(sel: Selector, admitted: Admitted | None = None) -> str:
    """The selector as a CEL condition over ``object`` (docs/semantics.md, "Selectors").

    ``admitted``: the policy's resource rules (:data:`Admitted`), for a
    ``matchConditions`` selector. The API server evaluates ``matchConditions``
    only for a request that ``matchConstraints`` matched (Kubernetes
    ``staging/src/k8s.io/apiserver/pkg/admission/plugin/policy/validating/dispatcher.go``:
    the resource rules first, then ``matchConditions``), and an admitted
    object's ``apiVersion`` and ``kind`` are those of the matched resource. So
    the parts the resource rules already guarantee are left out: the kind list
    (the rules name exactly those kinds' resources), the Backstage exclusion
    (no admitted group is ``backstage.io``), and an ``apiVersions`` test every
    admitted group/version passes. Without ``admitted``: the full condition
    (``policykit check --engine cel`` has no resource rules).
    """
    out: list[str] = []
    backstage = IS_BACKSTAGE if admitted is None or _may_be_backstage(admitted) else "false"
    if sel.source == "backstage":
        out.append(IS_BACKSTAGE)
    elif sel.source == "kubernetes" and backstage != "false":
        out.append(pr.neg(IS_BACKSTAGE))
    if sel.kinds and admitted is None:
        out.append(f"has(object.kind) && object.kind in {pr.literal(list(sel.kinds))}")
    if sel.api_versions and not (
        admitted is not None and _versions_implied(sel.api_versions, admitted)
    ):
        alts = []
        for p in sel.api_versions:
            if p.endswith("/*"):
                alts.append(f"{_API_VERSION}.startsWith({pr.string(p[:-1])})")
            else:
                alts.append(f"{_API_VERSION} == {pr.string(p)}")
        out.append(pr.conj([_HAS_API, f"({pr.disj(alts)})"]))
    if sel.namespaces:
        default_in = _glob_static(sel.namespaces, "default")
        out.append(
            f"({_HAS_NS} ? ({_glob(sel.namespaces, _NS)}) : {backstage if default_in else 'false'})"
        )
    if sel.exclude_namespaces:
        default_out = _glob_static(sel.exclude_namespaces, "default")
        excluded = (
            f"({_HAS_NS} ? ({_glob(sel.exclude_namespaces, _NS)}) : "
            f"{backstage if default_out else 'false'})"
        )
        out.append(pr.neg(excluded))
    for k, v in sel.labels:
        labels = "object.metadata.labels"
        out.append(
            "has(object.metadata) && type(object.metadata) == map && has(object.metadata.labels) "
            f"&& type({labels}) == map && {pr.has(labels, k)} && "
            f"{pr.select(labels, k)} == {pr.string(v)}"
        )
    if sel.entity_types:
        out.append(
            "has(object.spec) && type(object.spec) == map && has(object.spec.type) && "
            f"object.spec.type in {pr.literal(list(sel.entity_types))}"
        )
    return pr.conj([f"({x})" if "||" in x else x for x in out])


def kubernetes_only(sel: Selector) -> bool:
    """Whether a rule sees Kubernetes objects only (never a Backstage entity)."""
    from policykit.k8s.kinds import lookup

    if sel.source == "kubernetes":
        return True
    return bool(sel.kinds) and sel.source is None and all(lookup(k) for k in sel.kinds)
