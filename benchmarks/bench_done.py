"""Every figure of issue 21's "Done when", in one run, against the floor.

    python benchmarks/bench_done.py [--mixed 2000,4000,8000] [--n 20000] [--verify 10000]
                                    [--suites DIR] [--jobs 2] [--dir DIR] [--quick]

The floor is the plain script of ``bench_cores.FLOOR``: it walks the same tree
and parses every file with PyYAML's CSafeLoader, on one core. Each row is one
fresh process: wall and CPU seconds (CPU includes worker processes), peak MB
(the largest process), the ratio to the floor's wall time measured just before
on the same tree, and the growth per doubling of n.

1. The four platform packs (catalog, finops, provenance, agents, with
   examples/platform's parameters) over ``--mixed`` objects, one per file: half
   Backstage Components, half Deployments with their HPAs
   (``bench_scale.mixed``): ``check -j N`` ≤ 2x the floor, ≤ 2.3x per doubling.
2. ``check -j N`` of ``--n`` manifests (``benchmarks/generate.py``, the starter
   pack) ≤ 0.75x the one-core floor's wall time.
3. Start-up, best of 7: ``policykit --version`` ≤ 150 ms and ≤ 6x ``python -c
   pass``; ``check`` of one file ≤ 250 ms.
4. ``verify`` of ``--verify`` objects (every target) < 10 s; its ratio to
   the one-core floor over ``--n`` manifests is printed beside it (the goal is
   absolute, the ratio says how much of the figure is the machine's phase).
5. ``policykit test`` over every gator suite under ``--suites`` (e.g. the
   ``library/`` folder of a gatekeeper-library checkout: 49 suites) in one
   call < 5 s. Skipped without ``--suites``.

The summary at the end lists each goal, the figure, and whether it is met. On a
shared machine wall times are inflated: the ratios are measured side by side,
and CPU times are printed beside them. The machine's steal time (the share of
its CPU time the hypervisor gave other guests, ``/proc/stat``) is printed for
the ``verify`` row and for the whole run: the absolute goals (``verify``,
``check`` of one file) move with it, and with ``python -c pass``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_cores import FLOOR, PY, best, policykit, run, tree  # noqa: E402
from benchmarks.bench_scale import PACKS, mixed, params  # noqa: E402

Row = tuple[str, int, float, float, float]
HEAD = f"{'what':<30} {'n':>6} {'wall':>7} {'cpu':>7} {'MB':>6} {'÷floor':>7} {'x/2n':>6}"


def mixed_tree(root: Path, n: int) -> Path:
    """n mixed objects, one per file in 100 folders, and a policykit.yaml that
    selects the four packs with their parameters."""
    if not root.exists():
        for i, obj in enumerate(mixed(n)):
            d = root / f"repo-{i % 100:03d}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"o{i}.yaml").write_text(yaml.safe_dump(obj, sort_keys=False))
        config = {"packs": PACKS, "params": params()}
        (root / "policykit.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def cpu_ticks() -> tuple[int, int] | None:
    """The machine's (steal, total) CPU time in ticks (``/proc/stat``); None
    where there is no such file."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    ticks = [int(x) for x in first[1:9]]  # user nice system idle iowait irq softirq steal
    return ticks[7], sum(ticks)


def steal_since(start: tuple[int, int] | None) -> str:
    """The steal time since ``start``, as a share of the machine's CPU time."""
    now = cpu_ticks()
    if start is None or now is None or now[1] == start[1]:
        return "unknown"
    return f"{100 * (now[0] - start[0]) / (now[1] - start[1]):.1f}%"


def _row(what: str, n: int, wall: float, cpu: float, mb: float, floor: float, prev: float) -> str:
    growth = f"{wall / prev:.2f}" if prev else ""
    ratio = f"{wall / floor:.2f}" if floor else ""
    return f"{what:<30} {n:>6} {wall:>7.2f} {cpu:>7.2f} {mb:>6.0f} {ratio:>7} {growth:>6}"


def scaled(
    label: str, trees: list[tuple[int, Path]], args: list[str], floor_py: Path
) -> list[tuple[int, float, float, float]]:
    """Floor and policykit on each tree: (n, policykit wall ÷ floor wall,
    growth, floor wall)."""
    out: list[tuple[int, float, float, float]] = []
    prev_floor = prev = 0.0
    for n, root in trees:
        fw, fc, fm, _ = run([PY, str(floor_py), str(root)])
        w, c, m, code = run(policykit(*args, "--format", "json", "-o", os.devnull), cwd=root)
        assert code in (0, 1), (label, code)
        print(_row("floor (CSafeLoader, 1 core)", n, fw, fc, fm, fw, prev_floor), flush=True)
        print(_row(label, n, w, c, m, fw, prev), flush=True)
        out.append((n, w / fw, w / prev if prev else 0.0, fw))
        prev_floor, prev = fw, w
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mixed", default="2000,4000,8000")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--verify", type=int, default=10000)
    ap.add_argument("--suites", type=Path, default=None)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--dir", default=None, help="where the trees are kept (default: a temp dir)")
    ap.add_argument("--quick", action="store_true", help="a tenth of every size")
    args = ap.parse_args()
    if args.quick:
        args.mixed = ",".join(str(int(s) // 10) for s in args.mixed.split(","))
        args.n, args.verify = args.n // 10, args.verify // 10
    base = Path(args.dir or tempfile.mkdtemp(prefix="pk-done-"))
    base.mkdir(parents=True, exist_ok=True)
    floor_py = base / "floor.py"
    floor_py.write_text(FLOOR)
    load = os.getloadavg()
    whole = cpu_ticks()
    print(f"cores {os.cpu_count()}, jobs {args.jobs}, load average {load[0]:.1f} at start")
    print("wall / CPU seconds, peak MB of the largest process\n" + HEAD)
    goals: list[tuple[str, str, bool]] = []
    jobs = ["-j", str(args.jobs)]

    sizes = [int(s) for s in args.mixed.split(",")]
    mixed_trees = [(n, mixed_tree(base / f"mixed-{n}", n)) for n in sizes]
    four = scaled(f"check 4 packs -j {args.jobs}", mixed_trees, ["check", ".", *jobs], floor_py)
    n, ratio, _, _ = four[-1]
    goals.append((f"4 packs over {n} mixed objects ≤ 2x the floor", f"{ratio:.2f}x", ratio <= 2))
    worst = max((g for _, _, g, _ in four[1:]), default=0.0)
    goals.append(("… growth per doubling ≤ 2.3", f"{worst:.2f}", 0 < worst <= 2.3))

    manifest_trees = [(m, tree(base / f"tree-{m}", m)) for m in (args.n // 4, args.n // 2, args.n)]
    starter = ["check", ".", "--pack", "policykit.packs.starter", *jobs]
    cores = scaled(f"check starter -j {args.jobs}", manifest_trees, starter, floor_py)
    n, ratio, _, floor_n = cores[-1]
    goals.append(
        (f"{n} manifests on {args.jobs} cores ≤ 0.75x the floor", f"{ratio:.2f}x", ratio <= 0.75)
    )

    root = tree(base / f"tree-{args.verify}", args.verify)
    during = cpu_ticks()
    w, c, m, _ = run(policykit("verify", ".", "--format", "json", "-o", os.devnull), cwd=root)
    print(_row("verify (every target)", args.verify, w, c, m, floor_n, 0), flush=True)
    print(f"  (÷ the floor over {n} manifests; steal time meanwhile: {steal_since(during)})")
    goals.append(
        (
            f"verify of {args.verify} objects < 10 s",
            f"{w:.1f} s (CPU {c:.1f}; {w / floor_n:.2f}x the {n} floor)",
            w < 10,
        )
    )

    if args.suites is not None:
        count = sum(1 for _ in args.suites.rglob("suite.yaml"))
        w, c, m, code = run(
            policykit("test", str(args.suites), "--format", "json", "-o", os.devnull)
        )
        print(_row(f"test: {count} gator suites", count, w, c, m, 0, 0), flush=True)
        goals.append(
            (
                f"{count} suites in one test call < 5 s",
                f"{w:.2f} s (CPU {c:.2f}, exit {code})",
                w < 5,
            )
        )

    one = base / "one.yaml"
    one.write_text(
        sorted((manifest_trees[0][1] / "repo-000").glob("*deployment.yaml"))[0].read_text()
    )
    pw, pc = best([PY, "-c", "pass"], 7)
    vw, vc = best(policykit("--version"), 7)
    cw, cc = best(policykit("check", str(one), "--pack", "policykit.packs.starter"), 7)
    print("\nstart-up (best of 7)            wall ms  cpu ms  ÷ python -c pass")
    for what, w, c in (
        ("python -c pass", pw, pc),
        ("policykit --version", vw, vc),
        ("check one file", cw, cc),
    ):
        print(f"  {what:<30} {w * 1e3:7.0f} {c * 1e3:7.0f} {w / pw:8.1f}")
    goals.append(("--version ≤ 150 ms", f"{vw * 1e3:.0f} ms", vw <= 0.150))
    goals.append(("--version ≤ 6x python -c pass", f"{vw / pw:.1f}x", vw / pw <= 6))
    goals.append(("check of one file ≤ 250 ms", f"{cw * 1e3:.0f} ms", cw <= 0.250))

    load = os.getloadavg()
    print(f"\nDone when (load average {load[0]:.1f} at the end, steal time {steal_since(whole)})")
    for goal, figure, met in goals:
        print(f"  {'met    ' if met else 'NOT met'}  {goal:<48} {figure}")


if __name__ == "__main__":
    main()
