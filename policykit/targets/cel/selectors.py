"""Selectors as CEL conditions over ``object`` (docs/semantics.md, "Selectors")."""

from __future__ import annotations

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


def selector_expr(sel: Selector) -> str:
    """The selector as a CEL condition over ``object`` (docs/semantics.md, "Selectors")."""
    out: list[str] = []
    if sel.source == "backstage":
        out.append(IS_BACKSTAGE)
    elif sel.source == "kubernetes":
        out.append(pr.neg(IS_BACKSTAGE))
    if sel.kinds:
        out.append(f"has(object.kind) && object.kind in {pr.literal(list(sel.kinds))}")
    if sel.api_versions:
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
            f"({_HAS_NS} ? ({_glob(sel.namespaces, _NS)}) : "
            f"{IS_BACKSTAGE if default_in else 'false'})"
        )
    if sel.exclude_namespaces:
        default_out = _glob_static(sel.exclude_namespaces, "default")
        excluded = (
            f"({_HAS_NS} ? ({_glob(sel.exclude_namespaces, _NS)}) : "
            f"{IS_BACKSTAGE if default_out else 'false'})"
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
