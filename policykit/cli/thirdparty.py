"""``policykit test``: policykit rule tests, gator suites and kyverno tests."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from policykit.cli.options import handle_errors, output_option

if TYPE_CHECKING:  # the engines load when a command runs them (start-up: issue 21)
    from policykit.k8s import gatekeeper as gk


def engine_choice(engine: str) -> gk.Engine:
    """:func:`policykit.api.checks.gatekeeper_engine` (kept for importers)."""
    from policykit.api.checks import gatekeeper_engine

    return gatekeeper_engine(engine)


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
        from policykit import api, reports
        from policykit.cli import render
        from policykit.cli.options import error_line, stderr, write_output

        if run_filter:
            try:
                re.compile(run_filter)
            except re.error as exc:
                raise click.BadParameter(str(exc), param_hint="--run") from None
        config = api.TestConfig(paths=paths, engine=engine, run=run_filter)
        try:
            result = api.test(config)
        except api.UsageError as exc:
            raise click.UsageError(str(exc)) from None
        write_output(output, reports.render(result, fmt, quiet=render.ui().quiet))
        for err in result.errors:
            stderr(error_line(err))
        sys.exit(result.exit_code)
