"""The starter pack: what every platform repository wants from day one.

Catalog hygiene for Backstage entities and baseline safety for Kubernetes
workloads. Used when neither ``--pack`` nor configuration names a pack.
"""

from __future__ import annotations

from policykit.dsl import P, PackBuilder, param, select
from policykit.dsl.expr import Val
from policykit.dsl.k8s import NAME_RE, WORKLOAD_KINDS, containers

starter = PackBuilder(
    "starter",
    "0.1.0",
    description="Catalog hygiene and workload baseline rules shipped with policykit.",
    params={
        "lifecycles": param(
            ["experimental", "production", "deprecated"],
            {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "Allowed values of spec.lifecycle on Components and APIs.",
        ),
        "required_labels": param(
            ["app.kubernetes.io/name"],
            {"type": "array", "items": {"type": "string"}},
            "Labels every workload must carry.",
        ),
    },
)

OWNED_KINDS = ["Component", "API", "Resource", "System", "Domain"]


@starter.rule(
    "CAT-001",
    title="Catalog entities have an owner",
    select=select(source="backstage", kinds=OWNED_KINDS),
    message="{kind} {metadata.name} has no spec.owner",
    remediation="Set spec.owner to the group that owns it, e.g. group:default/team-a.",
    tags=["catalog", "ownership"],
)
def has_owner(o: Val) -> object:
    return o.spec.owner.absent() | (o.spec.owner == "")


@starter.rule(
    "CAT-002",
    title="Entity names follow Backstage's format",
    select=select(source="backstage"),
    message="{kind} name '{metadata.name}' is not 1-63 letters, digits, '-', '_' or '.' "
    "starting and ending with a letter or digit",
    remediation="Rename the entity; use metadata.title for a display name.",
    tags=["catalog", "naming"],
    same_as="catalog/CATALOG-001",
)
def name_format(o: Val) -> object:
    name = o.metadata.name
    return ~name.matches(NAME_RE) | (name.length() > 63)


@starter.rule(
    "CAT-003",
    title="Lifecycle is one of the allowed values",
    severity="warn",
    select=select(source="backstage", kinds=["Component", "API"]),
    message="{kind} {metadata.name} has lifecycle {spec.lifecycle}, not one of {params.lifecycles}",
    remediation="Use one of the lifecycles your organisation recognises.",
    tags=["catalog"],
)
def lifecycle(o: Val) -> object:
    return o.spec.lifecycle.not_in(P("lifecycles"))


@starter.rule(
    "K8S-001",
    title="Containers set CPU and memory requests and a memory limit",
    select=select(source="kubernetes", kinds=WORKLOAD_KINDS),
    each=containers,
    message="container {c.name} of {kind} {metadata.name} lacks cpu/memory requests "
    "or a memory limit",
    remediation="Set resources.requests.cpu, resources.requests.memory and "
    "resources.limits.memory.",
    tags=["kubernetes", "finops", "reliability"],
)
def resources(o: Val, c: Val) -> object:
    r = c.resources
    return r.requests.cpu.absent() | r.requests.memory.absent() | r.limits.memory.absent()


@starter.rule(
    "K8S-002",
    title="Images are pinned (no :latest, no missing tag)",
    select=select(source="kubernetes", kinds=WORKLOAD_KINDS),
    each=containers,
    message="container {c.name} of {kind} {metadata.name} uses unpinned image {c.image}",
    remediation="Pin the image by digest (@sha256:...) or at least by an explicit version tag.",
    tags=["kubernetes", "supply-chain"],
)
def pinned_image(o: Val, c: Val) -> object:
    img = c.image
    # a tag follows the last ':' and holds no '/', so a registry port is not a tag
    tagged = img.matches(r":[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    return img.exists() & ~img.contains("@sha256:") & (~tagged | img.endswith(":latest"))


@starter.rule(
    "K8S-003",
    title="Containers do not run privileged",
    select=select(source="kubernetes", kinds=WORKLOAD_KINDS),
    each=containers,
    message="container {c.name} of {kind} {metadata.name} runs privileged",
    remediation="Remove securityContext.privileged or set it to false.",
    tags=["kubernetes", "security"],
)
def not_privileged(o: Val, c: Val) -> object:
    return c.securityContext.privileged == True  # noqa: E712 - builds IR, not a Python test


@starter.rule(
    "K8S-004",
    title="Workloads carry the required labels",
    severity="warn",
    select=select(source="kubernetes", kinds=WORKLOAD_KINDS),
    message="{kind} {metadata.name} lacks one of the required labels {params.required_labels}",
    remediation="Add the labels to metadata.labels.",
    tags=["kubernetes", "hygiene"],
)
def required_labels(o: Val) -> object:
    return ~P("required_labels").all(lambda k: o.metadata.labels.keys().includes(k))
