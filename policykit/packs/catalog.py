"""The catalog pack: Backstage entities as Backstage validates them, plus the
platform metadata a platform team requires of every entity.

Rules tagged ``structure`` restate Backstage's own format rules (an entity
breaking one is rejected or misread by the catalog); rules tagged ``platform``
are the organisation's metadata (SLO, cost center, data classification,
runtime). Scaffolder templates are held to collect what the platform rules
require, so a template cannot produce a non-compliant entity.

CATALOG-016 (a built-in check, :mod:`policykit.scaffolder.drift`) goes
further: a template parameter that fills a constrained entity field must not
accept a value these rules reject. It compares JSON Schemas, which the DSL
cannot state, so it is evaluated in Python by ``policykit check`` (any
engine) from the same compiled field schemas, and ``policykit scaffold sync``
writes those schemas into the templates.

Reference: https://backstage.io/docs/features/software-catalog/descriptor-format
"""

from __future__ import annotations

from policykit.dsl import P, PackBuilder, Val, param, select
from policykit.dsl.k8s import NAME_RE

# Backstage's KubernetesValidatorFunctions / DefaultNamespaceValidator / tag rules
NAMESPACE_RE = r"^[a-z0-9]+(-[a-z0-9]+)*$"
# DNS labels of at most 63 characters, dot-separated (Backstage's isValidDnsSubdomain)
DNS_SUBDOMAIN_RE = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"
# [prefix/]name: a DNS subdomain, then an object name of at most 63 characters
# (Backstage's isValidLabelKey / isValidAnnotationKey); KEY_LEN_RE bounds the
# prefix to 253 characters
KEY_RE = "^(" + DNS_SUBDOMAIN_RE[1:-1] + "/)?([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$"
KEY_LEN_RE = r"^([^/]{1,253}/)?[^/]+$"
LABEL_VALUE_RE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
TAG_RE = r"^[a-z0-9:+#]+(-[a-z0-9:+#]+)*$"
# [kind:][namespace/]name, every part non-empty (Backstage's parseEntityRef)
ENTITY_REF_RE = r"^([^:/]+:)?([^:/]+/)?[^:/]+$"

OWNED_KINDS = ["Component", "API", "Resource", "System", "Domain", "Template"]

catalog = PackBuilder(
    "catalog",
    "1.0.0",
    description="Backstage entity format rules and platform metadata for the software catalog.",
    params={
        "lifecycles": param(
            ["experimental", "production", "deprecated"],
            {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "Allowed spec.lifecycle of Components and APIs.",
        ),
        "owner_kinds": param(
            r"^([Gg]roup|[Uu]ser):",
            {"type": "string"},
            "Regex an owner reference with an explicit kind must match (a bare name is a group).",
        ),
        "required_annotations": param(
            ["backstage.io/source-location", "backstage.io/techdocs-ref"],
            {"type": "array", "items": {"type": "string"}},
            "Annotations every Component carries (source location, TechDocs).",
        ),
        "slo_annotation": param(
            "policykit.dev/slo",
            {"type": "string", "minLength": 1},
            "Annotation that declares a service's SLO (a link or an objective).",
        ),
        "cost_center_annotation": param(
            "policykit.dev/cost-center",
            {"type": "string", "minLength": 1},
            "Annotation that names the cost center.",
        ),
        "cost_center_pattern": param(
            r"^CC-[0-9]{4}$", {"type": "string"}, "Format of a cost center id."
        ),
        "cost_centers": param(
            [],
            {"type": "array", "items": {"type": "string"}},
            "Known cost centers; empty: any id of the right format.",
        ),
        "classification_annotation": param(
            "policykit.dev/data-classification",
            {"type": "string", "minLength": 1},
            "Annotation that states the data classification.",
        ),
        "classifications": param(
            ["public", "internal", "confidential", "restricted"],
            {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "Allowed data classifications.",
        ),
        "runtime_annotation": param(
            "policykit.dev/runtime",
            {"type": "string", "minLength": 1},
            "Annotation that names where a service runs.",
        ),
        "runtimes": param(
            ["kubernetes", "serverless", "vm", "managed"],
            {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "Allowed runtimes / deployment targets.",
        ),
        "template_fields": param(
            ["owner", "costCenter"],
            {"type": "array", "items": {"type": "string"}},
            "Parameters every scaffolder template must collect, as required fields.",
        ),
    },
)


def annotation(o: Val, name: str) -> Val:
    """The annotation whose key is the parameter ``name``."""
    return o.metadata.annotations[P(name)]


@catalog.rule(
    "CATALOG-001",
    title="Entity names follow Backstage's format",
    select=select(source="backstage"),
    message="{kind} name '{metadata.name}' is not 1-63 letters, digits, '-', '_' or '.' "
    "starting and ending with a letter or digit",
    remediation="Rename the entity; use metadata.title for a display name.",
    tags=["catalog", "structure"],
)
def name_format(o: Val) -> object:
    name = o.metadata.name
    return ~name.matches(NAME_RE) | (name.length() > 63)


@catalog.rule(
    "CATALOG-002",
    title="Entity namespaces are DNS labels",
    select=select(source="backstage"),
    message="{kind} {metadata.name} has namespace '{metadata.namespace}', not a lower-case "
    "DNS label of at most 63 characters",
    remediation="Use lower-case letters, digits and '-' (e.g. 'payments').",
    tags=["catalog", "structure"],
)
def namespace_format(o: Val) -> object:
    ns = o.metadata.namespace
    return ns.exists() & (~ns.matches(NAMESPACE_RE) | (ns.length() > 63))


@catalog.rule(
    "CATALOG-003",
    title="Label keys and values follow Backstage's format",
    select=select(source="backstage"),
    message="{kind} {metadata.name} has a label whose key is not [prefix/]name or whose value "
    "is not 0-63 letters, digits, '-', '_' or '.'",
    remediation="Fix the label; labels are for selection, put free text in annotations.",
    tags=["catalog", "structure"],
)
def label_format(o: Val) -> object:
    labels = o.metadata.labels
    return labels.keys().any(
        lambda k: (
            ~k.matches(KEY_RE)
            | ~k.matches(KEY_LEN_RE)
            | ~labels[k].is_type("string")
            | ~labels[k].matches(LABEL_VALUE_RE)
            | (labels[k].length() > 63)
        )
    )


@catalog.rule(
    "CATALOG-004",
    title="Annotation keys follow Backstage's format and values are strings",
    select=select(source="backstage"),
    message="{kind} {metadata.name} has an annotation whose key is not [prefix/]name or whose "
    "value is not a string",
    remediation="Quote the value (annotations are strings) and use a prefixed key.",
    tags=["catalog", "structure"],
)
def annotation_format(o: Val) -> object:
    ann = o.metadata.annotations
    return ann.keys().any(
        lambda k: ~k.matches(KEY_RE) | ~k.matches(KEY_LEN_RE) | ~ann[k].is_type("string")
    )


@catalog.rule(
    "CATALOG-005",
    title="Tags follow Backstage's format",
    select=select(source="backstage"),
    each=lambda o: o.metadata.tags,
    message="{kind} {metadata.name} has tag '{t}': tags are 1-63 of a-z 0-9 : + #, "
    "separated by single '-'",
    remediation="Lower-case the tag and replace other characters with '-'.",
    tags=["catalog", "structure"],
)
def tag_format(o: Val, t: Val) -> object:
    return ~t.matches(TAG_RE) | (t.length() > 63)


@catalog.rule(
    "CATALOG-006",
    title="Owned entities name an owner by a valid entity reference",
    select=select(source="backstage", kinds=OWNED_KINDS),
    message="{kind} {metadata.name} has owner '{spec.owner}', not an entity reference "
    "[kind:][namespace/]name",
    remediation="Set spec.owner to the owning group, e.g. group:default/team-a or team-a.",
    tags=["catalog", "structure", "ownership"],
)
def owner_ref(o: Val) -> object:
    owner = o.spec.owner
    return ~owner.is_type("string") | ~owner.matches(ENTITY_REF_RE)


@catalog.rule(
    "CATALOG-007",
    title="Owners are groups or users",
    severity="warn",
    select=select(source="backstage", kinds=OWNED_KINDS),
    message="{kind} {metadata.name} is owned by '{spec.owner}', whose kind does not match "
    "{params.owner_kinds}",
    remediation="Point spec.owner at a Group (or a User).",
    tags=["catalog", "structure", "ownership"],
)
def owner_kind(o: Val) -> object:
    owner = o.spec.owner
    return owner.matches(r"^[^:/]+:") & ~owner.matches(P("owner_kinds"))


@catalog.rule(
    "CATALOG-008",
    title="Lifecycle is one of the allowed values",
    select=select(source="backstage", kinds=["Component", "API"]),
    message="{kind} {metadata.name} has lifecycle '{spec.lifecycle}', not one of "
    "{params.lifecycles}",
    remediation="Use one of the lifecycles your organisation recognises.",
    tags=["catalog", "structure"],
)
def lifecycle(o: Val) -> object:
    return o.spec.lifecycle.absent() | o.spec.lifecycle.not_in(P("lifecycles"))


@catalog.rule(
    "CATALOG-009",
    title="Components belong to a system",
    severity="warn",
    select=select(source="backstage", kinds=["Component"]),
    message="Component {metadata.name} names no spec.system",
    remediation="Set spec.system to the system the component is part of.",
    tags=["catalog", "platform"],
)
def has_system(o: Val) -> object:
    return o.spec.system.absent() | (o.spec.system == "")


@catalog.rule(
    "CATALOG-010",
    title="Components carry the required annotations (source location, TechDocs)",
    severity="warn",
    select=select(source="backstage", kinds=["Component"]),
    message="Component {metadata.name} lacks one of the annotations {params.required_annotations}",
    remediation="Add backstage.io/source-location (url:...) and backstage.io/techdocs-ref.",
    tags=["catalog", "platform"],
)
def required_annotations(o: Val) -> object:
    return ~P("required_annotations").all(lambda k: o.metadata.annotations[k].exists())


@catalog.rule(
    "CATALOG-011",
    title="Services declare an SLO",
    severity="warn",
    select=select(source="backstage", kinds=["Component"], entity_types=["service", "website"]),
    message="Component {metadata.name} declares no SLO (annotation {params.slo_annotation})",
    remediation="Add the annotation with a link to the SLO document or the objective.",
    tags=["catalog", "platform", "reliability"],
)
def slo(o: Val) -> object:
    v = annotation(o, "slo_annotation")
    return v.absent() | (v == "")


@catalog.rule(
    "CATALOG-012",
    title="Components and Resources name a known cost center",
    select=select(source="backstage", kinds=["Component", "Resource"]),
    message="{kind} {metadata.name} has no cost center of the form "
    "{params.cost_center_pattern} (annotation {params.cost_center_annotation})",
    remediation="Add the cost-center annotation with your FinOps id (e.g. CC-1234).",
    tags=["catalog", "platform", "finops"],
)
def cost_center(o: Val) -> object:
    cc = annotation(o, "cost_center_annotation")
    known = (P("cost_centers").length() == 0) | cc.is_in(P("cost_centers"))
    return ~cc.matches(P("cost_center_pattern")) | ~known


@catalog.rule(
    "CATALOG-013",
    title="Components and Resources state their data classification",
    select=select(source="backstage", kinds=["Component", "Resource"]),
    message="{kind} {metadata.name} has data classification "
    "'{metadata.annotations['policykit.dev/data-classification']}', not one of "
    "{params.classifications}",
    remediation="Add the data-classification annotation (public, internal, confidential, "
    "restricted).",
    tags=["catalog", "platform", "compliance"],
)
def classification(o: Val) -> object:
    return ~annotation(o, "classification_annotation").is_in(P("classifications"))


@catalog.rule(
    "CATALOG-014",
    title="Services name their runtime",
    severity="warn",
    select=select(source="backstage", kinds=["Component"], entity_types=["service", "website"]),
    message="Component {metadata.name} names no runtime from {params.runtimes} "
    "(annotation {params.runtime_annotation})",
    remediation="Add the runtime annotation (where the service is deployed).",
    tags=["catalog", "platform"],
)
def runtime(o: Val) -> object:
    return ~annotation(o, "runtime_annotation").is_in(P("runtimes"))


@catalog.rule(
    "CATALOG-015",
    title="Scaffolder templates collect what the catalog rules require",
    select=select(api_versions=["scaffolder.backstage.io/*"], kinds=["Template"]),
    message="Template {metadata.name} does not collect every one of {params.template_fields} "
    "as a required parameter",
    remediation="Add the fields to a parameters step's properties and to its required list "
    "(e.g. owner with ui:field OwnerPicker).",
    tags=["catalog", "platform", "scaffolder"],
)
def template_fields(o: Val) -> object:
    steps = o.spec.parameters

    def collects(step: Val, f: Val) -> object:
        return step.properties[f].exists() & step.required.includes(f)

    return ~P("template_fields").all(
        lambda f: (
            steps.any(lambda s: collects(s, f)) | (steps.is_type("object") & collects(steps, f))
        )
    )
