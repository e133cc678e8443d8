"""Speed and memory of `load + evaluate` with the native engine, next to its floor.

    python benchmarks/bench_check.py [--n 10000] [--repeat 3]

The floor is what a hand-written checker costs: PyYAML's C loader on the same
files plus plain Python predicates for the same rules (the starter and acme packs),
producing the same number of findings. Each mode runs in its own process so that
peak memory (ru_maxrss) is its own. Goal (issue 2): native within 1.5x of the floor.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from policykit.dsl.k8s import WORKLOAD_KINDS  # noqa: E402

NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z", re.ASCII)
CC_RE = re.compile(r"^CC-[0-9]{4}\Z", re.ASCII)
TAG_RE = re.compile(r":[A-Za-z0-9_][A-Za-z0-9_.-]*\Z", re.ASCII)
WORKLOADS = set(WORKLOAD_KINDS)
OWNED = {"Component", "API", "Resource", "System", "Domain"}
MULT = {
    "m": 0.001,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "Ki": 1024.0,
    "Mi": 1024.0**2,
    "Gi": 1024.0**3,
}
QTY = re.compile(r"^([0-9.]+)(m|k|M|G|Ki|Mi|Gi)?$")


def _qty(v: Any) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    m = QTY.match(v) if isinstance(v, str) else None
    return float(m.group(1)) * MULT[m.group(2) or ""] if m else 0.0


def handwritten(o: dict[str, Any]) -> int:
    """Count findings of the same rules, written as plain Python."""
    n = 0
    kind = o.get("kind")
    meta = o.get("metadata") or {}
    spec = o.get("spec") or {}
    api = o.get("apiVersion", "")
    if api.startswith("backstage.io/"):
        if kind in OWNED and not spec.get("owner"):
            n += 1
        name = meta.get("name")
        if not (isinstance(name, str) and NAME_RE.search(name)) or (
            isinstance(name, str) and len(name) > 63
        ):
            n += 1
        if (
            kind in ("Component", "API")
            and spec.get("lifecycle") is not None
            and spec.get("lifecycle") not in ("experimental", "production", "deprecated")
        ):
            n += 1
        if kind == "Component":
            cc = (meta.get("annotations") or {}).get("acme.com/cost-center")
            if not (isinstance(cc, str) and CC_RE.search(cc)):
                n += 1
        return n
    if kind in WORKLOADS:
        pod = ((spec.get("template") or {}).get("spec")) or spec
        containers = pod.get("containers") or []
        for c in containers:
            r = c.get("resources") or {}
            req, lim = r.get("requests") or {}, r.get("limits") or {}
            if req.get("cpu") is None or req.get("memory") is None or lim.get("memory") is None:
                n += 1
            img = c.get("image")
            if (
                isinstance(img, str)
                and "@sha256:" not in img
                and (not TAG_RE.search(img) or img.endswith(":latest"))
            ):
                n += 1
            if (c.get("securityContext") or {}).get("privileged") is True:
                n += 1
        if "app.kubernetes.io/name" not in (meta.get("labels") or {}):
            n += 1
        if kind == "Deployment":
            ns = meta.get("namespace") or ""
            replicas = spec.get("replicas")
            replicas = 1 if replicas is None else replicas
            if ns.startswith("prod-") and replicas < 2:
                n += 1
        if kind in ("Deployment", "StatefulSet"):
            cores = sum(
                _qty(((c.get("resources") or {}).get("requests") or {}).get("cpu"))
                for c in containers
            )
            if cores * (spec.get("replicas") or 1) * 0.031 * 730 > 150:
                n += 1
    return n


def run_floor(files: list[Path]) -> tuple[int, int]:
    import yaml

    objects = findings = 0
    for f in files:
        for o in yaml.load_all(f.read_text(), Loader=yaml.CSafeLoader):
            if isinstance(o, dict):
                objects += 1
                findings += handwritten(o)
    return objects, findings


def run_native(root: Path) -> tuple[int, int]:
    from policykit.api import check

    report = check(
        [str(root)], packs=["policykit.packs.starter", str(ROOT / "examples/packs/acme.py")]
    )
    return report.objects, len(report.findings)


def child(mode: str, root: Path) -> None:
    files = sorted(root.rglob("*.yaml"))
    t0 = time.perf_counter()
    objects, findings = run_floor(files) if mode == "floor" else run_native(root)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "mode": mode,
                "objects": objects,
                "findings": findings,
                "seconds": seconds,
                "peak_mb": peak_mb,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000, help="Components and Deployments each")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", choices=["floor", "native"])
    ap.add_argument("--root", type=Path)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.root)
        return
    from benchmarks.generate import generate

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, args.n)
        results: dict[str, list[dict[str, Any]]] = {"floor": [], "native": []}
        for _ in range(args.repeat):
            for mode in ("floor", "native"):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", mode, "--root", str(root)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results[mode].append(json.loads(out.stdout))
    best = {m: min(r, key=lambda x: x["seconds"]) for m, r in results.items()}
    print(f"load + evaluate, {args.n} Components + {args.n} Deployments, best of {args.repeat}")
    print(
        f"{'mode':8} {'objects':>8} {'findings':>9} {'seconds':>8} {'obj/s':>9} {'us/obj':>8} "
        f"{'peak MB':>8}"
    )
    for m, r in best.items():
        print(
            f"{m:8} {r['objects']:8d} {r['findings']:9d} {r['seconds']:8.2f} "
            f"{r['objects'] / r['seconds']:9.0f} {r['seconds'] / r['objects'] * 1e6:8.1f} "
            f"{r['peak_mb']:8.1f}"
        )
    ratio = best["native"]["seconds"] / best["floor"]["seconds"]
    same = best["native"]["findings"] == best["floor"]["findings"]
    print(f"native / floor = {ratio:.2f}x (goal <= 1.5x); same number of findings: {same}")


if __name__ == "__main__":
    main()
