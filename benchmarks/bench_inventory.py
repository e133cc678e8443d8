"""Cost of cross-object rules (``objects()``, the inventory) as the run grows.

    python benchmarks/bench_inventory.py [--sizes 250,500,1000,2000] [--engines native,plain,opa]

Each object is held to the FinOps pack's aggregate budget (FINOPS-009: the sum
over every other object of the same cost center) and every HPA to the workload
it scales (FINOPS-008), so each object reads the whole inventory: the work per
object grows with n and a run with n². Prints, per engine and size, objects per
second, µs per object, the growth of a run's time per doubling of n (≈4 for
n², ≈2 for n), and the peak memory of the process (ru_maxrss).

Engines: ``native`` (the reference engine, which remembers per inventory item
the parts of a loop body that read only the item, and per object those that
read only it), ``plain`` (the same without remembering), ``opa`` (real OPA,
``data.<root>.inventory``), ``rego`` (regopy; very slow here, use small sizes).
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from policykit.engines.native import NativeEngine  # noqa: E402  (before regopy: load order)
from policykit.model import Document  # noqa: E402
from policykit.packs import load_packs  # noqa: E402

COST_CENTERS = ["CC-1001", "CC-2002", "CC-3003", "CC-4004", "CC-5005"]


def objects(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """n objects: Deployments and, for one in five, the HPA that scales it."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    i = 0
    while len(out) < n:
        cc = rng.choice(COST_CENTERS)
        name = f"app-{i}"
        labels = {"policykit.dev/cost-center": cc}
        out.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": "prod", "labels": labels},
                "spec": {
                    "replicas": rng.randint(1, 4),
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "app",
                                    "resources": {
                                        "requests": {"cpu": "250m", "memory": "256Mi"},
                                        "limits": {"cpu": "500m", "memory": "256Mi"},
                                    },
                                }
                            ]
                        }
                    },
                },
            }
        )
        if i % 5 == 0 and len(out) < n:
            out.append(
                {
                    "apiVersion": "autoscaling/v2",
                    "kind": "HorizontalPodAutoscaler",
                    "metadata": {"name": name, "namespace": "prod", "labels": labels},
                    "spec": {
                        "scaleTargetRef": {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": name,
                        },
                        "maxReplicas": 10,
                    },
                }
            )
        i += 1
    return out


def engine_for(name: str, packs: Any, params: Any) -> Any:
    if name in ("native", "plain"):
        return NativeEngine(packs, params, remember=name == "native")
    from policykit.engines.rego import OpaEngine, RegopyEngine

    if name == "opa":
        return OpaEngine(packs, params)
    return RegopyEngine(packs, params, mode="object")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="250,500,1000,2000")
    ap.add_argument("--engines", default="native,plain,opa")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    packs = load_packs(["policykit.packs.finops"])
    budgets = dict.fromkeys(COST_CENTERS, 5000)
    params = {"finops": {"budgets": budgets}}
    head = ("engine", "objects", "obj/s", "µs/object", "x per 2n", "findings")
    print(f"{head[0]:<8} " + " ".join(f"{h:>9}" for h in head[1:]))
    for name in args.engines.split(","):
        previous: tuple[int, float] | None = None
        for n in sizes:
            objs = objects(n)
            docs = [Document(o, f"o{i}.yaml", 0, 1) for i, o in enumerate(objs)]
            engine = engine_for(name, packs, params)
            start = time.perf_counter()
            engine.set_inventory(objs)
            findings = engine.evaluate_all(docs)
            took = time.perf_counter() - start
            growth = ""
            if previous is not None and previous[0] * 2 == n:
                growth = f"{took / previous[1]:.1f}"
            previous = (n, took)
            print(
                f"{name:<8} {n:>9} {n / took:>9.0f} {took / n * 1e6:>9.0f} {growth:>9} "
                f"{len(findings):>9}"
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: {peak:.0f} MB")


if __name__ == "__main__":
    main()
