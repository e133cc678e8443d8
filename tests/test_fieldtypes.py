"""The packaged field-type table is what its generator makes from the
Kubernetes OpenAPI that kubernetes-validate ships (dev extra)."""

from __future__ import annotations

from pathlib import Path

from policykit.dsl.k8s import WORKLOAD_KINDS
from policykit.targets.k8s import fieldtypes


def test_the_packaged_table_regenerates_identically() -> None:
    packaged = Path(fieldtypes.__file__).with_name("fieldtypes.json").read_text()
    assert fieldtypes.regenerate() == packaged, "run: python -m policykit.targets.k8s.fieldtypes"


def test_workload_containers_are_typed() -> None:
    t = fieldtypes.of_kinds(WORKLOAD_KINDS)
    assert t is not None and t.jtype == "object"
    spec = t.field("spec")
    assert spec is not None and spec.field("not-a-field") is None  # unknown: untyped form
    template = spec.field("template")
    assert template is not None
    pod = template.field("spec")
    assert pod is not None
    containers = pod.field("containers")
    assert containers is not None and containers.jtype == "array"
    item = containers.items()
    assert item is not None
    res = item.field("resources")
    assert res is not None
    requests = res.field("requests")
    assert requests is not None
    cpu = requests.field("cpu")
    assert cpu is not None and cpu.jtype == "any"  # int-or-string
    assert fieldtypes.of_kinds(["NoSuchKind"]) is None
