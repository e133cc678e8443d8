"""``policykit scaffold sync``: Backstage template parameters from the rules
(policykit/scaffolder; not ``policykit init``'s policykit/scaffold)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from policykit.cli.options import (
    error_lines,
    handle_errors,
    pack_option,
    param_option,
    parse_params,
)


def register(cli: click.Group) -> None:
    @cli.group()
    def scaffold() -> None:
        """Backstage scaffolder templates and the catalog rules."""

    @scaffold.command()
    @click.argument("paths", nargs=-1)
    @pack_option
    @param_option
    @click.option(
        "--check",
        "check_only",
        is_flag=True,
        help="Write nothing; print a unified diff of what would change and exit 1 "
        "when a template is out of sync (for pre-commit and CI).",
    )
    @handle_errors
    def sync(
        paths: tuple[str, ...], packs: tuple[str, ...], params: tuple[str, ...], check_only: bool
    ) -> None:
        """Rewrite the parameter schemas of the Backstage templates in PATHS
        (default: the configured paths) from the compiled field schemas.

        A parameter mapped to an entity field (x-policykit-field, a
        catalog:write entity, or the skeleton's catalog-info.yaml) gets the
        rules' pattern, enum, bounds and messages (errorMessage); comments,
        key order, ui:* options and everything else stay as they are.
        Exit 0 when in sync (or rewritten), 1 with --check when not, 2 on errors.
        """
        from policykit.api import resolve
        from policykit.packs import check_run_params, load_packs
        from policykit.safeio import write_atomic
        from policykit.scaffolder.sync import sync_paths

        sel = resolve(paths=paths, packs=packs, params=parse_params(params))
        if not sel.paths:
            raise click.UsageError("no PATHS given and none configured")
        pack_objs = load_packs(sel.packs)
        check_run_params(pack_objs, sel.named, sel.params, sel.where)
        results = sync_paths(sel.paths, pack_objs, sel.params)
        errors = [e for r in results for e in r.errors]
        for r in results:
            for line in r.notes:
                click.echo(f"policykit: {line}", err=True)
        for e in errors:
            for line in error_lines(e):
                click.echo(line, err=True)
        changed = [r for r in results if r.changed]
        for r in changed:
            if check_only:
                click.echo(r.diff(), nl=False)
            else:
                write_atomic(Path(r.path), r.encoded())
        verb = "would rewrite" if check_only else "rewrote"
        for r in changed:
            click.echo(f"{verb} {r.path.as_posix()}", err=True)
        if errors:
            sys.exit(2)  # what could not be read is never "in sync"
        if not changed:
            click.echo("policykit: templates in sync", err=True)
        sys.exit(1 if check_only and changed else 0)
