"""Kubernetes shapes rule authors need often.

>>> from policykit.dsl.expr import obj
>>> type(containers(obj()).node).__name__
'Default'
"""

from __future__ import annotations

from policykit.dsl.expr import Val

NAME_RE = r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"
"""An object name as Backstage reads it (KubernetesValidatorFunctions; at most 63
characters, checked apart). Here, not in the catalog pack, so that the starter pack
uses it without building the catalog's rules."""

WORKLOAD_KINDS: tuple[str, ...] = (
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
)

_POD_SPEC_PATHS: tuple[tuple[str, ...], ...] = (
    ("spec", "template", "spec"),
    ("spec", "jobTemplate", "spec", "template", "spec"),
    ("spec",),
)


def pod_field(o: Val, *segments: str) -> Val:
    """A field of the pod spec, wherever the workload kind keeps it.

    Pod controllers keep it at ``spec.template.spec``, CronJobs at
    ``spec.jobTemplate.spec.template.spec``, Pods at ``spec``; the first of
    these that has the field wins.
    """
    candidates = []
    for base in _POD_SPEC_PATHS:
        v = o
        for s in (*base, *segments):
            v = v[s]
        candidates.append(v)
    out = candidates[-1]
    for c in reversed(candidates[:-1]):
        out = c.default(out)
    return out


def containers(o: Val) -> Val:
    """The ``containers`` list of any workload kind."""
    return pod_field(o, "containers")


def init_containers(o: Val) -> Val:
    """The ``initContainers`` list of any workload kind."""
    return pod_field(o, "initContainers")
