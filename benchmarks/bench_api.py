"""Per-call latency of the library API (policykit.Policy) on each engine.

    python benchmarks/bench_api.py [--engines native opa regopy] [--repeat 7]

Prints µs per decision (``Policy.decide``; a call the agents pack allows, the
issue's $10,000 ``merge_pr`` it denies with five reasons, and an input it
refuses before any rule runs) with the agents pack, per decision in a batch
(``decide_many`` of 100), and µs per check (``Policy.check`` of a Backstage
Component and of a Deployment with the starter pack; ``check_many`` of 100),
after the time ``Policy.load`` took. Each figure
is the best of ``--repeat`` rounds (the least disturbed by other processes on
the machine), as wall-clock / CPU time. ``native decide()`` is the former entry
point, ``policykit.decision.decide(engine, call)``, for comparison. The
reference loop's time says how busy the machine was. Nothing is parsed: the
inputs are in memory.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GATEWAY = "policykit.packs.agents"  # what an MCP gateway loads
CHECKS = "policykit.packs.starter"  # catalog hygiene and workload baseline
ENTITY = {
    "apiVersion": "backstage.io/v1alpha1",
    "kind": "Component",
    "metadata": {"name": "payments-api", "annotations": {"policykit.dev/cost-center": "CC-1001"}},
    "spec": {"type": "service", "lifecycle": "production", "owner": "group:default/payments"},
}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"app.kubernetes.io/name": "web"}},
    "spec": {
        "replicas": 2,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "registry.example.com/web:1.4.2",
                        "resources": {
                            "requests": {"cpu": "250m", "memory": "256Mi"},
                            "limits": {"memory": "512Mi"},
                        },
                    }
                ]
            }
        },
    },
}


def calls() -> dict[str, Any]:
    import yaml

    docs = yaml.safe_load_all((ROOT / "examples/platform/agents/agents.yaml").read_text())
    agent = next(d for d in docs if d["metadata"]["name"] == "triage-bot")
    return {
        "allowed": {
            "agent": agent,
            "tool": {"server": "github", "name": "list_issues"},
            "action": "read",
            "args": {"cost_usd": 0.1},
            "spend_so_far": 5,
        },
        "denied": {
            "agent": agent,
            "tool": {"server": "github", "name": "merge_pr"},
            "action": "write",
            "args": {"cost_usd": 10_000},
        },
        "refused": {"tool": "merge_pr"},
    }


def per_call(fn: Callable[[], object], per: int, repeat: int, budget: float = 0.2) -> str:
    """µs per item, best of ``repeat`` rounds of about ``budget`` s: wall-clock
    time, and the process's CPU time after a slash (on a busy machine, CPU time
    is close to what the call costs on an idle one; wall time is not)."""
    fn()  # warm up
    t = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t, 1e-7)
    n = max(1, int(budget / once))
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        for _ in range(n):
            fn()
        cpu.append((time.process_time() - c) / n / per * 1e6)
        wall.append((time.perf_counter() - t) / n / per * 1e6)
    return f"{min(wall):.0f} / {min(cpu):.0f}"


def reference_loop() -> float:
    """µs of CPU for ``sum(range(100))``: how fast this machine is right now."""
    best = 1e9
    for _ in range(5):
        c = time.process_time()
        for _ in range(20_000):
            sum(range(100))
        best = min(best, (time.process_time() - c) / 20_000 * 1e6)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engines", nargs="+", default=["native", "opa", "regopy"])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    from policykit import Policy
    from policykit.decision import decide
    from policykit.engines.native import NativeEngine
    from policykit.packs import load_packs

    the_calls = calls()
    batch_calls = [the_calls["allowed"], the_calls["denied"]] * 50
    batch_objs = [ENTITY, DEPLOYMENT] * 50

    head = ("engine", "load", "allowed", "denied", "refused", "decide_many/100",
            "load", "check entity", "check deploy", "check_many/100")  # fmt: skip
    rows: list[tuple[str, ...]] = []
    if "native" in args.engines:  # the former entry point, as a baseline
        engine = NativeEngine(load_packs([GATEWAY]))
        old = [per_call(partial(decide, engine, c), 1, args.repeat) for c in the_calls.values()]
        rows.append(("native decide()", "", *old, "", "", "", "", ""))
    for name in args.engines:
        t = time.perf_counter()
        gateway = Policy.load(packs=[GATEWAY], engine=name)
        gateway_ms = f"{(time.perf_counter() - t) * 1e3:.0f} ms"
        t = time.perf_counter()
        ci = Policy.load(packs=[CHECKS], engine=name)
        ci_ms = f"{(time.perf_counter() - t) * 1e3:.0f} ms"
        new = [per_call(partial(gateway.decide, c), 1, args.repeat) for c in the_calls.values()]
        rows.append(
            (
                name,
                gateway_ms,
                *new,
                per_call(partial(gateway.decide_many, batch_calls), 100, args.repeat),
                ci_ms,
                per_call(partial(ci.check, ENTITY), 1, args.repeat),
                per_call(partial(ci.check, DEPLOYMENT), 1, args.repeat),
                per_call(partial(ci.check_many, batch_objs), 100, args.repeat),
            )
        )
    print(
        f"µs per decision / per check, wall / CPU, best of {args.repeat} rounds; "
        f"reference loop sum(range(100)): {reference_loop():.2f} µs CPU"
    )
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
