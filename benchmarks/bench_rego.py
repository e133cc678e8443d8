"""Cost of evaluating compiled Rego, next to the native engine, as N grows.

    python benchmarks/bench_rego.py [--sizes 1000 5000 10000] [--chunk 500]

Prints, per engine and shape, the one-time compile/load cost and µs/object and
objects/second at each size (half Components, half Deployments; the starter and
acme packs). Shapes: regopy per object (`violations` with one object as input),
regopy batch (`batch` over chunks of objects), OPA batch. The growth column
(µs/object at the largest size / at the smallest) shows whether a shape stays
linear. Parsing is excluded: objects are generated in memory.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_docs(n: int) -> list[Any]:
    import random

    import yaml

    from benchmarks.generate import component, deployment
    from policykit.model import Document

    rng = random.Random(7)
    docs = []
    for i in range(n // 2):
        for text in (component(rng, i), deployment(rng, i)):
            docs.append(Document(yaml.load(text, Loader=yaml.CSafeLoader), "gen.yaml", i, 1))
    return docs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    ap.add_argument("--chunk", type=int, default=500)
    ap.add_argument(
        "--skip-object-above",
        type=int,
        default=5000,
        help="per-object regopy is slow: skip it above this size",
    )
    args = ap.parse_args()

    from policykit.engines.native import NativeEngine
    from policykit.engines.rego import OpaEngine, RegopyEngine
    from policykit.packs import load_packs

    packs = load_packs(["policykit.packs.starter", str(ROOT / "examples/packs/acme.py")])
    shapes = {
        "native": lambda: NativeEngine(packs),
        "regopy/object": lambda: RegopyEngine(packs, mode="object"),
        "regopy/batch": lambda: RegopyEngine(packs, mode="batch", chunk=args.chunk),
        "opa/batch": lambda: OpaEngine(packs, mode="batch", chunk=args.chunk),
    }
    all_docs = make_docs(max(args.sizes))
    print(
        f"{'engine/shape':16} {'load ms':>8} "
        + " ".join(f"{'us/obj@' + str(n):>14}" for n in args.sizes)
        + "   growth"
    )
    for name, factory in shapes.items():
        t0 = time.perf_counter()
        engine = factory()
        load_ms = (time.perf_counter() - t0) * 1000
        per_obj: list[float | None] = []
        counts = []
        for n in args.sizes:
            if name == "regopy/object" and n > args.skip_object_above:
                per_obj.append(None)
                continue
            docs = all_docs[:n]
            t = time.perf_counter()
            findings = engine.evaluate_all(docs)
            per_obj.append((time.perf_counter() - t) / n * 1e6)
            counts.append(len(findings))
        cells = " ".join(f"{'-':>14}" if v is None else f"{v:14.1f}" for v in per_obj)
        measured = [v for v in per_obj if v is not None]
        growth = measured[-1] / measured[0] if len(measured) > 1 else 1.0
        print(f"{name:16} {load_ms:8.0f} {cells}   {growth:5.2f}x")
    last = [v for v in per_obj if v is not None][-1]
    print(f"(objects/second at the largest measured size for opa/batch: {1e6 / last:.0f})")


if __name__ == "__main__":
    main()
