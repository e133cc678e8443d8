"""The four platform packs over a growing mixed run (issue 21, item 1).

    python benchmarks/bench_scale.py [--sizes 1000,2000,4000,8000] [--engines native,opa,rego]

Half of the objects are Backstage Components (benchmarks/generate.py), half are
Deployments with, for one in five, the HPA that scales each
(benchmarks/bench_inventory.py): every costed object is held to the aggregate
budget of its cost center (FINOPS-009) and every HPA to its target (FINOPS-008),
both cross-object rules. Packs: catalog, finops, provenance, agents, with the
parameters of examples/platform.

Each (engine, size) runs in a fresh process, so its peak memory (ru_maxrss) is
its own. Printed: objects per second, µs per object, the growth of the run's
time per doubling of n (≈2 linear, ≈4 quadratic; the goal is ≤ 2.3), the same
in CPU time of the process (steadier on a shared machine), peak MB, and the
number of findings. The time covers ``set_inventory`` (for the Rego
engines: loading the inventory as data) and evaluating every object; not
parsing and not compiling the packs.

Engines: ``native`` (the reference: joins indexed, see policykit/ir/joins.py),
``plain`` (the reference without any index or remembering: quadratic, small
sizes only), ``opa`` (real OPA, batch), ``rego`` (regopy, batch).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_inventory import COST_CENTERS  # noqa: E402
from benchmarks.bench_inventory import objects as workloads  # noqa: E402
from benchmarks.generate import component  # noqa: E402

PACKS = [
    "policykit.packs.catalog",
    "policykit.packs.finops",
    "policykit.packs.provenance",
    "policykit.packs.agents",
]


def mixed(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    entities = [yaml.safe_load(component(rng, i)) for i in range(n // 2)]
    return entities + workloads(n - n // 2, seed)


def params() -> dict[str, Any]:
    cfg = yaml.safe_load((ROOT / "examples/platform/policykit.yaml").read_text())
    out: dict[str, Any] = {k: dict(v) for k, v in cfg["params"].items()}
    out["finops"]["budgets"] = {**out["finops"]["budgets"], **dict.fromkeys(COST_CENTERS, 5000)}
    return out


def one(engine_name: str, n: int) -> dict[str, Any]:
    """Runs one engine over n objects in this process; the figures as a dict."""
    from policykit.engines.native import NativeEngine  # before regopy: load order
    from policykit.model import Document
    from policykit.packs import load_packs

    packs = load_packs(PACKS)
    objs = mixed(n)
    docs = [Document(o, f"o{i}.yaml", 0, 1) for i, o in enumerate(objs)]
    engine: Any
    if engine_name in ("native", "plain"):
        engine = NativeEngine(packs, params(), remember=engine_name == "native")
    else:
        from policykit.engines.rego import OpaEngine, RegopyEngine

        cls = OpaEngine if engine_name == "opa" else RegopyEngine
        engine = cls(packs, params())
    start, cpu = time.perf_counter(), time.process_time()
    engine.set_inventory(objs)
    findings = engine.evaluate_all(docs)
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": took, "cpu": cpu, "peak_mb": peak, "findings": len(findings)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,2000,4000,8000")
    ap.add_argument("--engines", default="native,opa,rego")
    ap.add_argument("--one", nargs=2, metavar=("ENGINE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]))))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    head = ["engine", "objects", "obj/s", "µs/object", "x per 2n", "cpu µs/o", "cpu x 2n"]
    head += ["peak MB", "findings"]
    print(f"{head[0]:<8} " + " ".join(f"{h:>9}" for h in head[1:]), flush=True)
    for name in args.engines.split(","):
        previous: tuple[int, float, float] | None = None
        for n in sizes:
            cmd = [sys.executable, __file__, "--one", name, str(n)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            took, cpu = r["seconds"], r["cpu"]
            growth = cpu_growth = ""
            if previous is not None and previous[0] * 2 == n:
                growth, cpu_growth = f"{took / previous[1]:.2f}", f"{cpu / previous[2]:.2f}"
            previous = (n, took, cpu)
            print(
                f"{name:<8} {n:>9} {n / took:>9.0f} {took / n * 1e6:>9.0f} {growth:>9} "
                f"{cpu / n * 1e6:>9.0f} {cpu_growth:>9} {r['peak_mb']:>9.0f} {r['findings']:>9}",
                flush=True,
            )


if __name__ == "__main__":
    main()
