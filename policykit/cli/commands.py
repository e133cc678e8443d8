"""The commands ``check``, ``verify``, ``rules``, ``ir`` and ``serve``: parse
options, call the library, render. :mod:`policykit.cli.main` registers them
when one of them (or ``--help``) is asked for (start-up, issue 21)."""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from policykit.cli import render
from policykit.cli.options import (
    LazyChoice,
    crd_option,
    error_line,
    handle_errors,
    note,
    output_option,
    pack_option,
    param_option,
    parse_params,
    stderr,
    verify_targets,
    waiver_options,
    write_output,
)

if TYPE_CHECKING:
    from rich.console import Console

    from policykit.api import CheckReport, Selection
    from policykit.ir.rule import Pack


def register(cli: click.Group) -> None:
    """Add this module's commands to ``cli``."""
    for command in (check, verify, rules, ir_cmd, serve):
        cli.add_command(command)


def resolve(**kwargs: Any) -> Selection:
    """:func:`policykit.api.resolve`, imported when a command runs."""
    from policykit.api import resolve as api_resolve

    return api_resolve(**kwargs)


def load_packs(names: list[str]) -> list[Pack]:
    """:func:`policykit.packs.load_packs`, imported when a command runs."""
    from policykit.packs import load_packs as packs_load

    return packs_load(names)


def _console() -> Console:
    """A console for reports (render.console: COLUMNS or the terminal's width,
    colour only on a terminal without --no-color/NO_COLOR)."""
    return render.console()


@click.command()
@click.argument("paths", nargs=-1)
@pack_option
@param_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "text", "json", "sarif", "junit", "github"]),
    default="table",
    show_default=True,
    help="Report format: table (people: on a terminal, the findings by rule and the "
    "first --limit of them; piped or --output, as text), text (a line per finding: "
    "FILE:LINE: SEVERITY RULE OBJECT: MESSAGE), json (schemas/report.schema.json), "
    "sarif (SARIF 2.1.0 for code scanning), junit (XML test report), github (workflow "
    "annotations).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=render.DEFAULT_LIMIT,
    show_default=True,
    metavar="N",
    help="Findings listed by --format table on a terminal (0: all); piped output and "
    "--output list every one.",
)
@output_option
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Findings recorded in FILE are reported but do not fail the run; only new ones do.",
)
@click.option(
    "--update-baseline",
    is_flag=True,
    help="Record today's findings in the --baseline FILE (atomically) and exit 0.",
)
@waiver_options
@click.option(
    "--fail-on",
    type=click.Choice(["deny", "warn", "info"]),
    default=None,
    help="Lowest severity that makes the exit code 1 (default: deny).",
)
@click.option(
    "--include",
    multiple=True,
    metavar="GLOB",
    help="Files read inside directories (default *.yaml *.yml *.json).",
)
@click.option(
    "--exclude",
    multiple=True,
    metavar="GLOB",
    help="Files or directories skipped inside directories (repeatable).",
)
@click.option(
    "--no-ignore",
    is_flag=True,
    help="Inside directories, also read what is skipped by default: what git ignores "
    "(.gitignore), dist/, node_modules/, .venv/, venv/, __pycache__/.",
)
@click.option(
    "--engine",
    type=click.Choice(["native", "rego", "opa", "cel"]),
    default="native",
    show_default=True,
    help="native: reference engine; rego: compiled Rego on regopy; opa: real OPA; "
    "cel: the Kyverno/VAP CEL on cel-cpp.",
)
@click.option(
    "--policy",
    "policies",
    multiple=True,
    metavar="FILE_OR_DIR",
    help="Also run existing Gatekeeper templates + constraints and Kyverno policies "
    "from FILE_OR_DIR (repeatable); their verdicts join the same report.",
)
@crd_option
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Processes for a large run (default: the number of cores); the report is the "
    "same. A small run stays in one process.",
)
@handle_errors
def check(
    paths: tuple[str, ...],
    packs: tuple[str, ...],
    params: tuple[str, ...],
    fmt: str,
    limit: int,
    output: Path | None,
    baseline: Path | None,
    update_baseline: bool,
    waivers_file: Path | None,
    today: datetime.datetime | None,
    fail_on: str | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    engine: str,
    policies: tuple[str, ...],
    crd_paths: tuple[str, ...],
    no_ignore: bool,
    jobs: int | None,
) -> None:
    """Check Kubernetes manifests and Backstage entities in PATHS (- for stdin).

    Inside directories, what git ignores and dist/, node_modules/, .venv/ are
    skipped (--no-ignore reads them); a file named in PATHS is always read.

    An object of a custom kind (--crd, crds:) that its CRD's schema refuses is
    an input error (PK013), as the API server would refuse it.

    Exit 0 when no finding reaches --fail-on, 1 when one does, 2 on usage or
    input errors (every file is still checked first).
    """
    from policykit import api

    config = api.CheckConfig(
        paths=paths,
        packs=packs,
        params=parse_params(params),
        include=include,
        exclude=exclude,
        no_ignore=no_ignore,
        fail_on=fail_on,
        engine=engine,
        jobs=jobs,
        crds=crd_paths,
        policies=policies,
        baseline=baseline,
        update_baseline=update_baseline,
        waivers=waivers_file,
        today=today,
        record_checked=fmt == "junit",
    )
    try:
        report = api.check(config, progress=_progress)
    except api.UsageError as exc:
        raise click.UsageError(str(exc)) from None
    for line in report.warnings:
        stderr(line)
    for line in report.notes:
        note(line)
    emit_report(fmt, output, report, limit)
    for line in report.expired_waivers:
        stderr(f"policykit: expired: {line}")
    for line in report.stale_waivers:
        stderr(f"policykit: stale: {line}")
    for line in report.unsupported:
        stderr(f"policykit: skipped (unsupported): {line}")
    for err in report.errors:
        stderr(error_line(err))
    sys.exit(report.exit_code)


@contextlib.contextmanager
def _progress(paths: Sequence[str]) -> Iterator[render.Steps | None]:
    """The progress bar of a run over ``paths`` (none when one is standard input)."""
    with render.steps(enabled="-" not in paths) as bar:
        yield bar if bar.shown else None


@click.command()
@click.argument("paths", nargs=-1)
@pack_option
@param_option
@click.option(
    "--target",
    "targets",
    multiple=True,
    type=LazyChoice(verify_targets),
    help="Targets to verify (repeatable; default all).",
)
@click.option(
    "--oracle",
    is_flag=True,
    help="Run the Gatekeeper templates in real OPA instead of regopy.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "sarif", "junit", "github"]),
    default="table",
    show_default=True,
    help="table, json, sarif (a result per disagreement), junit (a case per target and "
    "object) or github (annotations).",
)
@output_option
@waiver_options
@crd_option
@click.option(
    "--no-ignore",
    is_flag=True,
    help="Inside directories, also read what git ignores and dist/, node_modules/, .venv/.",
)
@handle_errors
def verify(
    paths: tuple[str, ...],
    packs: tuple[str, ...],
    params: tuple[str, ...],
    targets: tuple[str, ...],
    oracle: bool,
    fmt: str,
    output: Path | None,
    waivers_file: Path | None,
    today: datetime.datetime | None,
    crd_paths: tuple[str, ...],
    no_ignore: bool,
) -> None:
    """Prove every target agrees with the reference engine on PATHS.

    Builds the OPA bundle, Gatekeeper, Kyverno and VAP output, runs each
    locally over every object and compares findings and messages. An object
    that its CRD's schema refuses (--crd, crds:) is an input error (PK013) and
    is not compared: no admission target would ever see it. Exit 0 when all
    agree, 1 on any disagreement, 2 on input errors.
    """
    from policykit import api, reports

    config = api.VerifyConfig(
        paths=paths,
        packs=packs,
        params=parse_params(params),
        targets=targets,
        oracle=oracle,
        waivers=waivers_file,
        today=today,
        crds=crd_paths,
        no_ignore=no_ignore,
    )
    try:
        result = api.verify(config, progress=_progress, warn=stderr)
    except api.UsageError as exc:
        raise click.UsageError(str(exc)) from None
    for err in result.errors:
        stderr(error_line(err))
    write_output(output, reports.render(result, fmt, quiet=render.ui().quiet))
    sys.exit(result.exit_code)


@click.command()
@pack_option
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@handle_errors
def rules(packs: tuple[str, ...], fmt: str) -> None:
    """List the rules of the selected packs."""
    sel = resolve(packs=packs)
    pack_objs = load_packs(sel.packs)
    console = _console()
    if fmt == "json":
        render.print_json(console, render.rules_json(pack_objs))
    else:
        render.print_rules_table(console, pack_objs)


@click.command("ir")
@pack_option
@handle_errors
def ir_cmd(packs: tuple[str, ...]) -> None:
    """Print the IR (versioned JSON form) of the selected packs."""
    from policykit.ir import serialize

    sel = resolve(packs=packs)
    click.echo(serialize.dumps(load_packs(sel.packs)), nl=False)


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8282, show_default=True, type=int, help="Port (0: any free one).")
@click.option(
    "--max-wait",
    default=60.0,
    show_default=True,
    type=float,
    help="Longest a long-polling request is held, in seconds.",
)
@click.option(
    "--max-connections",
    default=1000,
    show_default=True,
    type=int,
    help="Connections answered at once (long polls included); more get 503 Retry-After.",
)
@click.option(
    "--timeout",
    default=20.0,
    show_default=True,
    type=float,
    help="Seconds a connection may take to send a request head (idle or trickling).",
)
@click.option("--quiet", is_flag=True, help="No access log.")
@handle_errors
def serve(
    directory: Path,
    host: str,
    port: int,
    max_wait: float,
    max_connections: int,
    timeout: float,
    quiet: bool,
) -> None:
    """Serve the bundles in DIRECTORY to OPA: GET /NAME.tar.gz, ETag and 304,
    long polling (Prefer: ...;wait=N). Runs until interrupted."""
    from policykit.serve import make_server

    server = make_server(
        directory,
        host,
        port,
        max_wait=max_wait,
        quiet=quiet or render.ui().quiet,
        max_connections=max_connections,
        timeout=timeout,
    )
    bound = server.server_address[1]
    # one thread per connection, mostly waiting: hand the GIL over sooner than every
    # 5 ms, or a burst of connections waits on it (bench_serve.py: 1000 polls, 2x faster)
    sys.setswitchinterval(0.0005)
    note(f"policykit: serving {directory} at http://{host}:{bound}/NAME.tar.gz (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        note("policykit: stopped")
    finally:
        server.server_close()


def emit_report(
    fmt: str, output: Path | None, report: CheckReport, limit: int = render.DEFAULT_LIMIT
) -> None:
    """Write ``report`` in ``fmt`` to ``output`` (atomically) or standard output.
    ``table``: the summary of :func:`render.print_summary` (``limit`` findings)
    when standard output is a terminal, else the text lines; every other format
    by :func:`reports.render`."""
    if fmt == "table" and output is None and render.stdout_is_terminal():
        render.print_summary(_console(), report, limit)
        return
    if fmt in ("table", "text"):  # the lines alone: no other format is imported
        from policykit.reports_text import text as lines

        text = lines(report, quiet=render.ui().quiet)
    else:
        from policykit import reports

        text = reports.render(report, fmt)
    try:
        write_output(output, text)
    except BrokenPipeError:  # policykit check | head: quiet, as main() does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
