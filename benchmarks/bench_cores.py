"""Large runs against the floor, in one run (issue 21, items 2-6).

    python benchmarks/bench_cores.py [--n 20000] [--verify 10000] [--jobs 2] [--skip-verify]

The floor is a plain script that walks the same tree and parses every file
with PyYAML's CSafeLoader (``FLOOR`` below), run on one core in the same run.
Printed, each as wall and CPU seconds (CPU includes the worker processes) and
peak memory (the largest process's ru_maxrss):

* ``check`` of n manifests (one per file, benchmarks/generate.py, the starter
  pack, ``--format json``) with ``-j 1`` and ``-j N``, at n/4, n/2 and n: the
  ratio to the one-core floor's wall time and the growth per doubling
  (goal: ≤ 0.75 x the floor's wall on 2 cores);
* ``verify`` of ``--verify`` objects (every target that runs here);
* start-up: ``python -c pass``, ``policykit --version`` and ``check`` of one
  file (best of 5; goals 150 ms, 6 x ``python -c pass``, 250 ms);
* per-object costs: CSafeLoader, policykit's guarded reader (its fast exact
  path, ``policykit/loader/fastyaml.py``), rapidyaml's tree when ``ryml`` is
  importable (docs/engines.md explains why it is not used), regopy's input
  conversion.

On a shared machine wall times are inflated; compare CPU times, and the
ratios, which are measured side by side.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLOOR = """
import os, sys, yaml
n = 0
for root, dirs, files in os.walk(sys.argv[1]):
    dirs.sort()
    for f in sorted(files):
        if f.endswith((".yaml", ".yml", ".json")):
            with open(os.path.join(root, f), encoding="utf-8") as fh:
                n += sum(1 for _ in yaml.load_all(fh.read(), Loader=yaml.CSafeLoader))
print(n)
"""
PY = sys.executable


def run(args: list[str], cwd: Path | None = None) -> tuple[float, float, float, int]:
    """(wall s, CPU s incl. children, peak MB, exit code) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode


def tree(root: Path, n: int) -> Path:
    """n objects, one per file: n/2 Backstage Components, n/2 Deployments."""
    if not root.exists():
        subprocess.run(
            [PY, str(ROOT / "benchmarks" / "generate.py"), str(root), "--n", str(n // 2)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return root


def policykit(*args: str) -> list[str]:
    return [PY, "-m", "policykit", *args]


def best(args: list[str], times: int = 5) -> tuple[float, float]:
    runs = [run(args) for _ in range(times)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def per_object() -> None:
    import yaml

    from benchmarks.generate import component, deployment

    rng = random.Random(1)
    docs = [deployment(rng, i) for i in range(200)] + [component(rng, i) for i in range(200)]

    def cost(fn: object) -> float:
        assert callable(fn)
        start = time.process_time()
        for d in docs:
            fn(d)
        return (time.process_time() - start) / len(docs) * 1e6

    from policykit.loader import yamlsafe

    print(f"\nper object ({sum(map(len, docs)) // len(docs)} B YAML), CPU µs:")
    print(f"  CSafeLoader                 {cost(lambda d: yaml.load(d, yaml.CSafeLoader)):8.1f}")
    guarded = cost(lambda d: list(yamlsafe.yaml_documents(d, "f.yaml", [])))
    print(f"  policykit's guarded reader  {guarded:8.1f}  (loader/fastyaml.py)")
    try:
        import ryml  # type: ignore[import-not-found]

        tree_only = cost(lambda d: ryml.parse_in_arena(d.encode()))
        print(f"  rapidyaml tree only         {tree_only:8.1f}")
    except ImportError:
        print("  rapidyaml                   not installed (docs/engines.md)")
    try:
        import policykit.engines  # noqa: F401, I001  (load order: before regopy)
        import regopy
        from policykit.engines.rego import regopy_input

        objs = [yaml.load(d, yaml.CSafeLoader) for d in docs]
        docs[:] = objs
        print(f"  regopy.Input (regopy's)     {cost(regopy.Input):8.1f}")
        print(f"  regopy_input (policykit)    {cost(regopy_input):8.1f}")
    except ImportError:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--verify", type=int, default=10000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--skip-verify", action="store_true")
    ap.add_argument("--dir", default=None, help="where the trees are kept (default: a temp dir)")
    args = ap.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="pk-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    floor_py = base / "floor.py"
    floor_py.write_text(FLOOR)
    print(f"cores {os.cpu_count()}, jobs {args.jobs}; wall / CPU seconds, peak MB")
    head = f"{'what':<26} {'n':>6} {'wall':>7} {'cpu':>7} {'MB':>6} {'÷floor':>7} {'x/2n':>6}"
    print(head)
    previous: dict[str, float] = {}
    for n in (args.n // 4, args.n // 2, args.n):
        root = tree(base / f"tree-{n}", n)
        fw, fc, fm, _ = run([PY, str(floor_py), str(root)])
        rows = [("floor (CSafeLoader, 1 core)", fw, fc, fm)]
        for jobs in (1, args.jobs):
            w, c, m, code = run(
                policykit(
                    "check", str(root), "--pack", "policykit.packs.starter",
                    "--format", "json", "-o", os.devnull, "-j", str(jobs),
                )
            )  # fmt: skip
            assert code in (0, 1), code
            rows.append((f"check -j {jobs}", w, c, m))
        for what, w, c, m in rows:
            growth = f"{w / previous[what]:.2f}" if what in previous else ""
            previous[what] = w
            print(f"{what:<26} {n:>6} {w:>7.2f} {c:>7.2f} {m:>6.0f} {w / fw:>7.2f} {growth:>6}")
    if not args.skip_verify:
        root = tree(base / f"tree-{args.verify}", args.verify)
        w, c, m, code = run(policykit("verify", str(root), "--format", "json", "-o", os.devnull))
        print(f"{'verify (every target)':<26} {args.verify:>6} {w:>7.2f} {c:>7.2f} {m:>6.0f}")
    one = base / "one.yaml"
    first = sorted((base / f"tree-{args.n // 4}" / "repo-000").glob("*.yaml"))[0]
    one.write_text(first.read_text())
    pw, pc = best([PY, "-c", "pass"])
    vw, vc = best(policykit("--version"))
    cw, cc = best(policykit("check", str(one), "--pack", "policykit.packs.starter"))
    print("\nstart-up (best of 5)        wall ms  cpu ms  ÷ python -c pass")
    for what, w, c in (
        ("python -c pass", pw, pc),
        ("policykit --version", vw, vc),
        ("policykit check one file", cw, cc),
    ):
        print(f"  {what:<26} {w * 1e3:7.0f} {c * 1e3:7.0f} {w / pw:8.1f}")
    per_object()


if __name__ == "__main__":
    main()
