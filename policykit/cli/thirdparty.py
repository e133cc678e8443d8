"""``policykit test``: policykit rule tests, gator suites and kyverno tests."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from policykit.cli.options import handle_errors, output_option
from policykit.errors import EXIT_FINDINGS, EXIT_OK

if TYPE_CHECKING:  # the engines load when a command runs them (start-up: issue 21)
    from policykit.engines import gatekeeper as gk


def engine_choice(engine: str) -> gk.Engine:
    """``auto``: real OPA when its bindings are installed (what Gatekeeper
    runs), else regopy (docs/engines.md lists where regopy differs)."""
    if engine != "auto":
        return "opa" if engine == "opa" else "rego"
    from policykit.engines.rego import EngineUnavailable, load_opa

    try:
        load_opa()
    except EngineUnavailable:
        return "rego"
    return "opa"


def configured_tests() -> list[str]:
    """What ``policykit test`` runs with no PATHS: ``tests:`` of the configuration
    found from the working directory, else ``tests/`` beside it (or here)."""
    from policykit.config import find_config
    from policykit.safeio import is_dir

    cfg = find_config()
    if cfg.tests:
        return [_shown(Path(p)) for p in cfg.tests]
    default = (cfg.base if cfg.file else Path.cwd()) / "tests"
    if not is_dir(default):
        where = f"tests: in {cfg.file}" if cfg.file else "tests: in policykit.yaml"
        raise click.UsageError(f"no PATHS given, none configured ({where}) and no {default}")
    return [_shown(default)]


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is under it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        return str(path)


def register(cli: click.Group) -> None:
    @cli.command("test")
    @click.argument("paths", nargs=-1)
    @click.option(
        "--engine",
        type=click.Choice(["auto", "opa", "rego"]),
        default="auto",
        show_default=True,
        help="Rego engine for Gatekeeper templates: real OPA, regopy, or OPA when installed.",
    )
    @click.option(
        "--run", "run_filter", default=None, help="Only cases whose SUITE/NAME matches this regex."
    )
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json", "junit", "sarif", "github"]),
        default="table",
        show_default=True,
    )
    @output_option
    @handle_errors
    def test_cmd(
        paths: tuple[str, ...], engine: str, run_filter: str | None, fmt: str, output: Path | None
    ) -> None:
        """Run policykit Test files, gator Suite files and kyverno-test.yaml
        files found in PATHS (default: tests: in policykit.yaml, else tests/).

        policykit tests (schemas/test.schema.json) run on the reference engine;
        --engine chooses where Gatekeeper templates run.

        Every expectation is a case: pass, fail, or skipped (it needs what
        policykit does not run, named in the reason). Exit 0 when nothing
        failed, 1 on any failure, 2 on a malformed or missing file.
        """
        from policykit import reports
        from policykit.cli import render
        from policykit.cli.options import error_line, stderr, write_output
        from policykit.errors import EXIT_INPUT, ErrorList
        from policykit.thirdparty.suites import collect, error_case

        rx = None
        if run_filter:
            try:
                rx = re.compile(run_filter)
            except re.error as exc:
                raise click.BadParameter(str(exc), param_hint="--run") from None
        if not paths:
            paths = tuple(configured_tests())
        cases, errors = collect(list(paths), engine_choice(engine))
        if rx is not None:
            cases = [c for c in cases if rx.search(f"{c.suite}/{c.name}")]
        # a bad file is an error case of the report: every other file's results stay
        singles = [
            e for err in errors for e in (err.errors if isinstance(err, ErrorList) else [err])
        ]
        cases += [error_case(e) for e in singles]
        if fmt == "json":
            text = json.dumps(reports.cases_json(cases), indent=2, ensure_ascii=False) + "\n"
        elif fmt == "junit":
            text = reports.cases_junit(cases)
        elif fmt == "sarif":
            text = reports.dumps_sarif(reports.cases_sarif(cases))
        elif fmt == "github":
            text = reports.cases_github(cases)
        else:
            mark = {"pass": "PASS", "fail": "FAIL", "skipped": "SKIP", "error": "ERROR"}
            quiet = render.ui().quiet  # -q: the failures only
            lines = [
                f"{mark[c.status]}  {c.suite} / {c.name}"
                + ("" if c.status == "pass" else f"  — {c.reason}  ({c.file}:{c.line})")
                for c in cases
                if not quiet or c.status in ("fail", "error")
            ]
            n = {s: sum(1 for c in cases if c.status == s) for s in mark}
            if not quiet:
                lines.append(
                    f"{render.plural(len(cases), 'case')}: {n['pass']} passed, "
                    f"{n['fail']} failed, {n['skipped']} skipped (unsupported)"
                    + (f", {render.plural(n['error'], 'input error')}" if n["error"] else "")
                )
            text = "".join(line + "\n" for line in lines)
        write_output(output, text)
        for err in singles:
            stderr(error_line(err))
        if singles:
            sys.exit(EXIT_INPUT)
        sys.exit(EXIT_FINDINGS if any(c.status == "fail" for c in cases) else EXIT_OK)
