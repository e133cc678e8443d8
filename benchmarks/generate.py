"""Seeded generator of a platform repository: N Backstage Components and N Deployments.

    python benchmarks/generate.py OUT_DIR --n 10000 [--seed 7]

One object per file (as in real repositories: one catalog-info.yaml per repo, one
manifest per workload), spread over 100 folders. About 15% of objects violate
some rule of the starter and acme packs.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

LIFECYCLES = ["production", "experimental", "deprecated", "beta"]
TEAMS = [f"team-{i}" for i in range(40)]


def component(rng: random.Random, i: int) -> str:
    name = f"svc-{i}" if rng.random() > 0.03 else f"Svc {i}"
    owner = f"  owner: group:default/{rng.choice(TEAMS)}\n" if rng.random() > 0.05 else ""
    cc = f"CC-{rng.randrange(1000, 9999)}" if rng.random() > 0.05 else "finance"
    return (
        "apiVersion: backstage.io/v1alpha1\n"
        "kind: Component\n"
        "metadata:\n"
        f"  name: {name}\n"
        f"  description: Service number {i} of the generated platform.\n"
        "  annotations:\n"
        f"    backstage.io/source-location: url:https://github.com/acme/svc-{i}/\n"
        "    backstage.io/techdocs-ref: dir:.\n"
        f"    acme.com/cost-center: {cc}\n"
        f"  tags: [python, tier-{i % 3}]\n"
        "spec:\n"
        "  type: service\n"
        f"  lifecycle: {rng.choice(LIFECYCLES) if rng.random() < 0.1 else 'production'}\n"
        f"{owner}"
        "  system: payments\n"
    )


def deployment(rng: random.Random, i: int) -> str:
    image = (
        f"registry.acme.com/svc-{i}@sha256:{rng.getrandbits(256):064x}"
        if rng.random() > 0.1
        else f"registry.acme.com/svc-{i}:latest"
    )
    cpu = rng.choice(["100m", "250m", "500m", "1", "2"]) if rng.random() > 0.02 else "16"
    resources = (
        f"        resources:\n          requests: {{cpu: {cpu}, memory: 256Mi}}\n"
        "          limits: {memory: 512Mi}\n"
        if rng.random() > 0.05
        else ""
    )
    privileged = "        securityContext: {privileged: true}\n" if rng.random() < 0.02 else ""
    ns = "prod-apps" if i % 2 else "staging-apps"
    replicas = rng.choice([1, 2, 3]) if rng.random() > 0.01 else 40
    label = f"    app.kubernetes.io/name: svc-{i}\n" if rng.random() > 0.05 else ""
    return (
        "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata:\n"
        f"  name: svc-{i}\n"
        f"  namespace: {ns}\n"
        "  labels:\n"
        f"{label}"
        f"    acme.com/cost-center: CC-{1000 + i % 9000}\n"
        "spec:\n"
        f"  replicas: {replicas}\n"
        "  selector:\n"
        f"    matchLabels: {{app: svc-{i}}}\n"
        "  template:\n"
        "    metadata:\n"
        f"      labels: {{app: svc-{i}}}\n"
        "    spec:\n"
        "      containers:\n"
        "      - name: app\n"
        f"        image: {image}\n"
        f"{resources}{privileged}"
    )


def generate(out: Path, n: int, seed: int = 7) -> list[Path]:
    rng = random.Random(seed)
    files = []
    for i in range(n):
        d = out / f"repo-{i % 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        c = d / f"svc-{i}-catalog-info.yaml"
        c.write_text(component(rng, i))
        m = d / f"svc-{i}-deployment.yaml"
        m.write_text(deployment(rng, i))
        files += [c, m]
    return files


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    files = generate(args.out, args.n, args.seed)
    print(f"wrote {len(files)} files under {args.out}")


if __name__ == "__main__":
    main()
