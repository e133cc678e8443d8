"""ACME's own rules, next to the ones policykit ships.

Run from the repository root: ``policykit check examples`` (the packs are
named in ``[tool.policykit]`` of pyproject.toml).
"""

from policykit.dsl import P, PackBuilder, param, select
from policykit.dsl.k8s import containers

acme = PackBuilder(
    "acme",
    "1.2.0",
    description="ACME platform team: cost attribution and production readiness.",
    params={
        "cost_center_pattern": param(
            r"^CC-[0-9]{4}$",
            {"type": "string"},
            "Format of a cost center id.",
        ),
        "cpu_hour_usd": param(0.031, {"type": "number", "minimum": 0}, "Price of one vCPU-hour."),
        "monthly_cpu_budget_usd": param(
            150,
            {"type": "number", "minimum": 0},
            "Most a single workload may spend on CPU a month.",
        ),
    },
)


@acme.rule(
    "ACME-001",
    title="Components name a valid cost center",
    select=select(source="backstage", kinds=["Component"]),
    message="Component {metadata.name} has cost center "
    "'{metadata.annotations['acme.com/cost-center']}', expected the form CC-1234",
    remediation="Add the annotation acme.com/cost-center: CC-<four digits> (ask FinOps).",
    tags=["finops", "catalog"],
)
def cost_center(o):
    return ~o.metadata.annotations["acme.com/cost-center"].matches(P("cost_center_pattern"))


@acme.rule(
    "ACME-002",
    title="Production deployments run at least two replicas",
    select=select(kinds=["Deployment"], namespaces=["prod-*"]),
    message="Deployment {metadata.name} in {metadata.namespace} runs {spec.replicas} replica(s)",
    remediation="Set spec.replicas to 2 or more (or add an HPA with minReplicas >= 2).",
    tags=["reliability"],
)
def prod_replicas(o):
    return o.spec.replicas.default(1) < 2


@acme.rule(
    "ACME-003",
    title="A workload's CPU requests stay within the monthly budget",
    severity="warn",
    select=select(kinds=["Deployment", "StatefulSet"]),
    message="{kind} {metadata.name} requests CPU worth more than "
    "${params.monthly_cpu_budget_usd} a month",
    remediation="Lower the CPU requests or replicas, or ask FinOps to raise the budget.",
    tags=["finops"],
)
def cpu_budget(o):
    cores = containers(o).sum(lambda c: c.resources.requests.cpu.quantity())
    monthly = cores * o.spec.replicas.default(1) * P("cpu_hour_usd") * 730
    return monthly > P("monthly_cpu_budget_usd")
