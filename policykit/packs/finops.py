"""The FinOps pack: what a Kubernetes workload costs, and who pays for it.

A workload's monthly cost is estimated from what it *requests*:

    replicas x hours x (vCPU x cpu_hour_usd + GiB x gib_hour_usd + GPUs x gpu_hour_usd[type])

``replicas`` is ``spec.replicas`` (Deployment, StatefulSet, ReplicaSet),
``parallelism`` (Job, CronJob), ``predictor.minReplicas`` (InferenceService),
else 1; ``hours`` is ``hours_per_month[kind]`` (730 for long-running kinds, less
for batch work); the GPU type is the pod's node selector ``gpu_type_label``.
A budget is per cost center (the ``cost_center_label`` of the object).

Two budget rules: FINOPS-005 holds each object to its cost center's budget
(every target), FINOPS-009 holds the cost center's *total* to it — in CI over
every object checked together, at admission only in Gatekeeper (its synced
``data.inventory``; sync the workload kinds). Kyverno and ValidatingAdmissionPolicy
see one object at a time and cannot express the total: ``build`` lists FINOPS-009
as left out for them. HPA limits (FINOPS-008) need the scaled workload, found in
the inventory the same way.
"""

from __future__ import annotations

from policykit.dsl import P, PackBuilder, Val, objects, param, select
from policykit.dsl.k8s import WORKLOAD_KINDS, containers, init_containers, pod_field

GPU = "nvidia.com/gpu"
COSTED_KINDS = [*WORKLOAD_KINDS, "InferenceService"]
GIB = 1024 * 1024 * 1024

finops = PackBuilder(
    "finops",
    "1.0.0",
    description="Requests and limits, cost estimates against per-cost-center budgets, GPUs, "
    "HPAs and TTLs for Kubernetes workloads.",
    params={
        "cost_center_label": param(
            "policykit.dev/cost-center",
            {"type": "string", "minLength": 1},
            "Label that names the cost center paying for an object.",
        ),
        "budgets": param(
            {"CC-1001": 2000, "CC-2002": 800, "CC-3003": 10000},
            {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
            "Monthly budget in USD per cost center; a cost center not listed is unknown.",
        ),
        "cpu_hour_usd": param(0.031, {"type": "number", "minimum": 0}, "Price of a vCPU-hour."),
        "gib_hour_usd": param(
            0.004, {"type": "number", "minimum": 0}, "Price of a GiB of memory for an hour."
        ),
        "gpu_hour_usd": param(
            {"nvidia-a100": 2.9, "nvidia-h100": 4.8, "nvidia-l4": 0.7, "nvidia-t4": 0.35},
            {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
            "Price of a GPU-hour by GPU type (the node selector value).",
        ),
        "hours_per_month": param(
            {"Job": 100, "CronJob": 100, "Pod": 730},
            {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
            "Hours a month an object of this kind runs; kinds not listed run 730 hours.",
        ),
        "gpu_type_label": param(
            "nvidia.com/gpu.product",
            {"type": "string", "minLength": 1},
            "Node selector key that names the GPU type.",
        ),
        "gpu_cost_centers": param(
            ["CC-3003"],
            {"type": "array", "items": {"type": "string"}},
            "Cost centers allowed to request GPUs.",
        ),
        "ttl_label": param(
            "policykit.dev/expires",
            {"type": "string", "minLength": 1},
            "Label holding the date (YYYY-MM-DD) after which ephemeral work may be deleted.",
        ),
    },
)


def replicas(x: Val) -> Val:
    """How many pods run at once (see the module docstring)."""
    return (
        x.spec.replicas.default(x.spec.parallelism)
        .default(x.spec.jobTemplate.spec.parallelism)
        .default(x.spec.predictor.minReplicas)
        .default(1)
    )


def _resource_cost(r: Val, gpu_type: Val) -> Val:
    """Hourly price of one container's requests (``r``: its resources)."""
    cpu = r.requests.cpu.default(r.limits.cpu).quantity().default(0)
    mem = r.requests.memory.default(r.limits.memory).quantity().default(0)
    gpus = r.requests[GPU].default(r.limits[GPU]).quantity().default(0)
    gpu_price = P("gpu_hour_usd")[gpu_type].default(0)
    return cpu * P("cpu_hour_usd") + mem / GIB * P("gib_hour_usd") + gpus * gpu_price


def gpu_type(x: Val) -> Val:
    return pod_field(x, "nodeSelector")[P("gpu_type_label")]


def hourly_cost(x: Val) -> Val:
    """Hourly price of one replica of ``x``: its pod's containers, or a KServe
    predictor's model and containers (absent parts cost 0)."""
    t = gpu_type(x)
    pods = containers(x).sum(lambda c: _resource_cost(c.resources, t))
    pred = x.spec.predictor
    pt = pred.nodeSelector[P("gpu_type_label")]
    served = pred.containers.sum(lambda c: _resource_cost(c.resources, pt))
    return pods + served + _resource_cost(pred.model.resources, pt)


def monthly_cost(x: Val) -> Val:
    return hourly_cost(x) * replicas(x) * P("hours_per_month")[x.kind].default(730)


def cost_center(x: Val) -> Val:
    return x.metadata.labels[P("cost_center_label")]


def gpus(x: Val) -> Val:
    def per(c: Val) -> Val:
        return c.resources.requests[GPU].default(c.resources.limits[GPU]).quantity().default(0)

    pred = x.spec.predictor
    return containers(x).sum(per) + pred.containers.sum(per) + per(pred.model)


@finops.rule(
    "FINOPS-001",
    title="Containers request and limit CPU and memory",
    select=select(source="kubernetes", kinds=WORKLOAD_KINDS),
    each=containers,
    message="container {c.name} of {kind} {metadata.name} does not set cpu and memory "
    "requests and limits",
    remediation="Set resources.requests and resources.limits for cpu and memory.",
    tags=["finops", "kubernetes"],
)
def container_resources(o: Val, c: Val) -> object:
    r = c.resources
    return (
        r.requests.cpu.absent()
        | r.requests.memory.absent()
        | r.limits.cpu.absent()
        | r.limits.memory.absent()
    )


@finops.rule(
    "FINOPS-002",
    title="Init containers request and limit CPU and memory",
    select=select(source="kubernetes", kinds=WORKLOAD_KINDS),
    each=init_containers,
    message="init container {c.name} of {kind} {metadata.name} does not set cpu and memory "
    "requests and limits",
    remediation="Set resources.requests and resources.limits for cpu and memory "
    "(init containers count towards the pod's requests).",
    tags=["finops", "kubernetes"],
)
def init_container_resources(o: Val, c: Val) -> object:
    return container_resources(o, c)


@finops.rule(
    "FINOPS-003",
    title="Workloads name a known cost center",
    select=select(source="kubernetes", kinds=[*COSTED_KINDS, "HorizontalPodAutoscaler"]),
    message="{kind} {metadata.name} has cost center "
    "'{metadata.labels['policykit.dev/cost-center']}', not one of the budgets' cost centers",
    remediation="Label the object with its cost center (policykit.dev/cost-center: CC-....).",
    tags=["finops", "kubernetes"],
)
def known_cost_center(o: Val) -> object:
    return P("budgets")[cost_center(o)].absent()


@finops.rule(
    "FINOPS-004",
    title="GPUs are requested only by approved cost centers",
    select=select(source="kubernetes", kinds=COSTED_KINDS),
    message="{kind} {metadata.name} requests GPUs but its cost center "
    "'{metadata.labels['policykit.dev/cost-center']}' is not one of {params.gpu_cost_centers}",
    remediation="Run GPU work under an approved cost center, or ask FinOps to approve yours.",
    tags=["finops", "gpu"],
)
def gpu_cost_center(o: Val) -> object:
    return (gpus(o) > 0) & ~cost_center(o).is_in(P("gpu_cost_centers"))


@finops.rule(
    "FINOPS-005",
    title="A workload's monthly cost estimate stays within its cost center's budget",
    select=select(source="kubernetes", kinds=COSTED_KINDS),
    message="{kind} {metadata.name} is estimated above the monthly budget of cost center "
    "{metadata.labels['policykit.dev/cost-center']} on its own",
    remediation="Lower requests or replicas, or raise the cost center's budget with FinOps.",
    tags=["finops"],
)
def object_budget(o: Val) -> object:
    return monthly_cost(o) > P("budgets")[cost_center(o)]


@finops.rule(
    "FINOPS-006",
    title="GPUs are of an approved type, priced in the table",
    select=select(source="kubernetes", kinds=COSTED_KINDS),
    message="{kind} {metadata.name} requests GPUs without a node selector naming an approved "
    "GPU type (a key of gpu_hour_usd)",
    remediation="Add nodeSelector {params.gpu_type_label}: <type> with an approved type.",
    tags=["finops", "gpu"],
)
def gpu_type_known(o: Val) -> object:
    t = gpu_type(o).default(o.spec.predictor.nodeSelector[P("gpu_type_label")])
    return (gpus(o) > 0) & P("gpu_hour_usd")[t].absent()


@finops.rule(
    "FINOPS-007",
    title="GPU limits equal GPU requests",
    select=select(source="kubernetes", kinds=WORKLOAD_KINDS),
    each=containers,
    message="container {c.name} of {kind} {metadata.name} requests "
    "{c.resources.requests['nvidia.com/gpu']} GPU(s) but limits "
    "{c.resources.limits['nvidia.com/gpu']}",
    remediation="Set resources.limits['nvidia.com/gpu'] equal to the request (GPUs cannot be "
    "overcommitted).",
    tags=["finops", "gpu"],
)
def gpu_limits(o: Val, c: Val) -> object:
    req, lim = c.resources.requests[GPU], c.resources.limits[GPU]
    return (req.exists() | lim.exists()) & ~(req.quantity() == lim.quantity())


@finops.rule(
    "FINOPS-008",
    title="An HPA's maximum scale stays within the cost center's budget",
    select=select(source="kubernetes", kinds=["HorizontalPodAutoscaler"]),
    message="HorizontalPodAutoscaler {metadata.name} may scale {spec.scaleTargetRef.name} to "
    "{spec.maxReplicas} replicas, above the monthly budget of its cost center",
    remediation="Lower maxReplicas, or make the target's requests cheaper.",
    tags=["finops", "autoscaling"],
)
def hpa_budget(o: Val) -> object:
    ref = o.spec.scaleTargetRef
    target = objects().filter(
        lambda x: (
            (x.kind == ref.kind)
            & (x.metadata.name == ref.name)
            & (x.metadata.namespace == o.metadata.namespace)
        )
    )
    unit = target.sum(lambda x: hourly_cost(x) * P("hours_per_month")[x.kind].default(730))
    return unit * o.spec.maxReplicas > P("budgets")[cost_center(o)]


@finops.rule(
    "FINOPS-009",
    title="A cost center's workloads together stay within its budget",
    select=select(source="kubernetes", kinds=COSTED_KINDS),
    message="cost center {metadata.labels['policykit.dev/cost-center']} is estimated above its "
    "monthly budget with {kind} {metadata.name} and its other workloads",
    remediation="Cut the cost center's requests, or raise its budget with FinOps.",
    tags=["finops", "aggregate"],
)
def aggregate_budget(o: Val) -> object:
    cc = cost_center(o)
    same = objects().filter(
        lambda x: x.kind.is_in(COSTED_KINDS) & (x.metadata.labels[P("cost_center_label")] == cc)
    )
    return same.sum(monthly_cost) + monthly_cost(o) > P("budgets")[cc]


@finops.rule(
    "FINOPS-010",
    title="Ephemeral work carries a TTL",
    severity="warn",
    select=select(source="kubernetes", kinds=["Job", "Notebook"]),
    message="{kind} {metadata.name} has neither ttlSecondsAfterFinished nor an expiry label "
    "{params.ttl_label}: YYYY-MM-DD",
    remediation="Set spec.ttlSecondsAfterFinished (Jobs) or the expiry label.",
    tags=["finops", "hygiene"],
)
def ttl(o: Val) -> object:
    expiry = o.metadata.labels[P("ttl_label")]
    return o.spec.ttlSecondsAfterFinished.absent() & ~expiry.matches(r"^\d{4}-\d{2}-\d{2}$")
