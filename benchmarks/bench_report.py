"""What check's report costs to format, beside the JSON report of the same findings.

    python benchmarks/bench_report.py [--findings 20000 82116] [--repeat 3] [--cli 5000]

Part 1 formats synthetic findings (one object per file, about four findings an
object, messages of 60-100 characters as the platform packs write them) with
each renderer: ``text`` (what ``check`` prints when piped or to ``--output``:
policykit/reports_text.py), ``json`` (``--format json``) and the terminal
summary (policykit/cli/render.py ``print_summary``: by rule, the first 20, "…
and K more"), which is drawn into a buffer as on a 160-column colour terminal.
Figures are the best of ``--repeat`` runs, CPU seconds (process time) beside wall
time: a loaded machine stretches the wall time, not the CPU time.

Part 2 (``--cli N``, 0 to skip) runs ``policykit check`` over a generated repository
of N Components and N Deployments (benchmarks/generate.py), piped with the
default format and with ``--format json``, in one run side by side: the ratio is
what the default output adds to a run (issue 21: the old rich table per file was
1.69x the JSON run at 10k objects).
"""

from __future__ import annotations

import argparse
import io
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from policykit import reports  # noqa: E402
from policykit.api import CheckReport  # noqa: E402
from policykit.model import Finding, ObjectRef  # noqa: E402

RULES = [
    ("FINOPS-001", "deny", "Deployment {n} in {ns} requests CPU worth more than $150 a month"),
    ("CATALOG-012", "deny", "Component {n} has no cost center of the form ^CC-[0-9]{{4}}$"),
    ("K8S-004", "warn", "Deployment {n} lacks one of the required labels [app.kubernetes.io/name]"),
    ("PROV-003", "info", "container app of Deployment {n} uses an image from an unknown registry"),
]


def synthetic(n: int) -> CheckReport:
    """A report of ``n`` findings, about four per object, one object per file."""
    findings = []
    for i in range(n):
        obj, k = divmod(i, len(RULES))
        rule, severity, message = RULES[k]
        name, ns = f"svc-{obj}", f"team-{obj % 40}"
        findings.append(
            Finding(
                rule,
                "platform",
                severity,
                message.format(n=name, ns=ns),
                ObjectRef("apps/v1", "Deployment", ns, name),
                file=f"services/{obj % 100:02}/svc-{obj}/deploy.yaml",
                line=1 + 20 * (k % 2),
            )
        )
    objects = (n + len(RULES) - 1) // len(RULES)
    return CheckReport([], findings, [], [], objects, objects)


def _terminal(report: CheckReport) -> str:
    from rich.console import Console

    from policykit.cli import render

    buffer = io.StringIO()
    con = Console(file=buffer, force_terminal=True, width=160, color_system="256")
    render.print_summary(con, report)
    return buffer.getvalue()


def best(fn: Callable[[], str], repeat: int) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, characters) of the fastest of ``repeat`` runs."""
    runs = []
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        runs.append((time.process_time() - c0, time.perf_counter() - w0, len(out)))
    return min(runs)


def formatting(counts: list[int], repeat: int) -> None:
    print(f"formatting (best of {repeat}; CPU s / wall s)")
    print(f"{'findings':>9}  {'text':>15}  {'json':>15}  {'terminal':>15}  text/json")
    for n in counts:
        report = synthetic(n)
        text = best(lambda: reports.render(report, "text"), repeat)  # noqa: B023
        doc = best(lambda: reports.render(report, "json"), repeat)  # noqa: B023
        term = best(lambda: _terminal(report), repeat)  # noqa: B023
        cells = [f"{c:6.3f} / {w:6.3f}" for c, w, _ in (text, doc, term)]
        print(f"{n:>9}  {cells[0]:>15}  {cells[1]:>15}  {cells[2]:>15}  {text[0] / doc[0]:.2f}x")


def _run(args: list[str], cwd: Path) -> tuple[float, float, int, int]:
    """(CPU s of the child, wall s, exit code, bytes printed) of ``policykit ARGS``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "policykit", *args], cwd=cwd, capture_output=True, check=False
    )
    wall = time.perf_counter() - w0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, proc.returncode, len(proc.stdout)


def end_to_end(n: int, repeat: int) -> None:
    from benchmarks.generate import generate

    modes = {"default (text lines)": [], "--format json": ["--format", "json"]}
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        generate(repo / "repo", n)
        print(
            f"\npolicykit check over {2 * n} generated objects, piped, -j 1 "
            f"(best of {repeat}, the modes alternating)"
        )
        runs: dict[str, list[tuple[float, float, int, int]]] = {label: [] for label in modes}
        for _ in range(repeat):
            for label, fmt in modes.items():
                runs[label].append(_run(["check", "repo", "-j", "1", *fmt], repo))
        for label, results in runs.items():
            cpu, wall, code, size = min(results)
            print(f"  {label:<22} {cpu:6.2f} s CPU  {wall:6.2f} s wall  exit {code}  {size} bytes")
        ratio = min(runs["default (text lines)"])[0] / min(runs["--format json"])[0]
        print(f"  default / json: {ratio:.2f}x CPU")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--findings", type=int, nargs="+", default=[20_000, 82_116])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cli", type=int, default=5_000, metavar="N")
    args = ap.parse_args()
    formatting(args.findings, args.repeat)
    if args.cli:
        end_to_end(args.cli, args.repeat)


if __name__ == "__main__":
    main()
