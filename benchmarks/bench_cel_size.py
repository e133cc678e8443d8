"""Size of the CEL policykit ships, per rule, for the platform packs
(examples/platform: the four built-in packs with ACME's parameters), against
the goals of issue 16 and hand-written references (``benchmarks/cel_reference``).

A rule's size is every CEL text of its ValidatingPolicy: the selector
(``matchConditions``), the ``variables``, the validation ``expression`` and its
``messageExpression``. Run: ``python -m benchmarks.bench_cel_size [--json]``.
Exit 1 when a goal is missed.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = ROOT / "examples" / "platform"
REFERENCE = Path(__file__).resolve().parent / "cel_reference"

GOAL_MEDIAN = 1_000
GOAL_MAX = 3_000
GOAL_RATIO = 3.0


def rule_sizes() -> dict[str, dict[str, Any]]:
    """Per rule id: its CEL size and deepest nesting."""
    from policykit.config import load_config_file
    from policykit.k8s import crds
    from policykit.packs import load_packs
    from policykit.targets.k8s import limits, manifests

    cfg = load_config_file(PLATFORM / "policykit.yaml")
    packs = load_packs(cfg.packs)
    files, _ = manifests.build("kyverno", packs, cfg.params, custom=crds.load(cfg.crds))
    out: dict[str, dict[str, Any]] = {}
    for docs in files.values():
        for doc in docs:
            rule = doc["metadata"]["annotations"]["policykit.io/rule"]
            texts = limits.expressions(doc)
            out[rule] = {
                "chars": sum(len(t) for _, t in texts),
                "depth": max(limits.depth(t) for _, t in texts),
            }
    return out


def references() -> dict[str, int]:
    """Hand-written ValidatingPolicies (``cel_reference/<RULE>.yaml``): their CEL size."""
    from policykit.targets.k8s import limits

    out = {}
    for f in sorted(REFERENCE.glob("*.yaml")):
        doc = yaml.safe_load(f.read_text())
        out[f.stem] = sum(len(t) for _, t in limits.expressions(doc))
    return out


def main(argv: list[str]) -> int:
    sizes = rule_sizes()
    refs = references()
    chars = sorted(v["chars"] for v in sizes.values())
    median = statistics.median(chars)
    largest = max(chars)
    ok = median <= GOAL_MEDIAN and largest <= GOAL_MAX
    ratios = {r: sizes[r]["chars"] / n for r, n in refs.items() if r in sizes}
    ok = ok and all(x <= GOAL_RATIO for x in ratios.values())
    if "--json" in argv:
        print(
            json.dumps(
                {"rules": sizes, "median": median, "max": largest, "references": refs, "ok": ok},
                indent=1,
                sort_keys=True,
            )
        )
        return 0 if ok else 1
    for rule, v in sorted(sizes.items()):
        ref = f"  (hand-written {refs[rule]}: {ratios[rule]:.1f}x)" if rule in refs else ""
        print(f"{rule:12} {v['chars']:6} chars  depth {v['depth']:2}{ref}")
    print(
        f"rules: {len(chars)}  median: {median:.0f} (goal <= {GOAL_MEDIAN})  "
        f"largest: {largest} (goal <= {GOAL_MAX})"
    )
    if ratios:
        print(f"worst ratio to hand-written: {max(ratios.values()):.1f}x (goal <= {GOAL_RATIO}x)")
    print("goals met" if ok else "goals NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
