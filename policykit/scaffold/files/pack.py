"""__PACK__: this organisation's own rules, next to policykit's built-in packs.

Each rule is stated once and enforced everywhere: ``policykit check`` in CI, the
OPA bundle, Gatekeeper, Kyverno and ValidatingAdmissionPolicy at admission, and
JSON Schema for scaffolder forms (``policykit build --target all``).
``policykit verify`` proves every target agrees with the reference engine, and
``tests/policies.test.yaml`` states what each rule must catch
(``policykit test tests``).

Rules may reuse the built-in packs' helpers: ``replicas`` below is the FinOps
pack's count of pods that run at once (Deployments, Jobs, InferenceServices...).
Parameters have defaults here and are set per repository in policykit.yaml.
"""

from policykit.dsl import P, PackBuilder, Val, param, select
from policykit.dsl.k8s import WORKLOAD_KINDS
from policykit.packs.finops import replicas

__PACK__ = PackBuilder(
    "__PACK__",
    "0.1.0",
    description="__PACK__'s own platform rules.",
    params={
        "min_prod_replicas": param(
            2,
            {"type": "integer", "minimum": 1},
            "Fewest pods a workload in a production namespace runs.",
        ),
        "team_label": param(
            "app.kubernetes.io/part-of",
            {"type": "string", "minLength": 1},
            "Label naming the team that runs a workload.",
        ),
        "teams": param(
            ["storefront"],
            {"type": "array", "items": {"type": "string"}},
            "Known teams.",
        ),
        "oncall_annotation": param(
            "pagerduty.com/service-id",
            {"type": "string", "minLength": 1},
            "Annotation naming a production service's on-call rotation.",
        ),
    },
)


@__PACK__.rule(
    "__PREFIX__-001",
    title="Production workloads run several pods",
    select=select(kinds=["Deployment", "StatefulSet"], namespaces=["prod-*"]),
    message="{kind} {metadata.name} in {metadata.namespace} runs {spec.replicas} pod(s), "
    "fewer than {params.min_prod_replicas}",
    remediation="Raise spec.replicas (or an HPA's minReplicas) in production namespaces.",
    tags=["reliability"],
)
def prod_replicas(o: Val) -> object:
    return replicas(o) < P("min_prod_replicas")


@__PACK__.rule(
    "__PREFIX__-002",
    title="Workloads name a known team",
    severity="warn",
    select=select(source="kubernetes", kinds=WORKLOAD_KINDS),
    message="{kind} {metadata.name} does not name a known team in its {params.team_label} label",
    remediation="Set the label to one of the teams in policykit.yaml (params.__PACK__.teams).",
    tags=["ownership"],
)
def known_team(o: Val) -> object:
    return ~o.metadata.labels[P("team_label")].is_in(P("teams"))


@__PACK__.rule(
    "__PREFIX__-003",
    title="Production services name their on-call rotation",
    select=select(source="backstage", kinds=["Component"]),
    message="Component {metadata.name} is in production but has no "
    "{params.oncall_annotation} annotation",
    remediation="Add the annotation with the PagerDuty service id of the team's rotation.",
    tags=["reliability", "catalog"],
)
def oncall(o: Val) -> object:
    return (o.spec.lifecycle == "production") & o.metadata.annotations[
        P("oncall_annotation")
    ].absent()
