"""``policykit init``: scaffold a policy repository (policykit/scaffold)."""

from __future__ import annotations

from pathlib import Path

import click

from policykit.cli.options import handle_errors


def register(cli: click.Group) -> None:
    @cli.command()
    @click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
    @click.option(
        "--name",
        default=None,
        help="Name of the local pack (lower case, digits, '_'; default: from DIRECTORY). "
        "Its rules are <NAME>-001... in upper case.",
    )
    @click.option(
        "--install",
        default=None,
        metavar="REQUIREMENT",
        help="The pip requirement the generated workflow installs policykit with "
        "(default: this exact version: platform-policy-kit==VERSION once published, "
        "else a pinned git reference). Never the bare name 'policykit', another project.",
    )
    @handle_errors
    def init(directory: Path, name: str | None, install: str | None) -> None:
        """Create a policy repository in DIRECTORY (default: here).

        Writes policykit.yaml (the four built-in platform packs and a local one),
        policies/<name>.py, an example catalog, manifests and agent that pass,
        rule tests in tests/, a GitHub Actions workflow and a pre-commit
        configuration (policykit's hooks at this version). Existing files are
        never overwritten: if any would be, nothing is written (exit 2).
        """
        from policykit.scaffold import init as scaffold

        created = scaffold(directory, name, install)
        lines = [
            f"created a policy repository in {directory.as_posix()} "
            f"(local pack {created.pack}, rules {created.prefix}-001..003):"
        ]
        lines += [f"  {p.relative_to(directory).as_posix()}" for p in created.files]
        here = directory.resolve() == Path.cwd().resolve()
        lines += [
            "next" + ("" if here else f" (cd {directory.as_posix()})") + ":",
            "  policykit check          # the catalog, manifests and agent: clean",
            "  policykit test tests     # what each rule must catch",
            "  policykit verify         # every target agrees with the reference engine",
            "  policykit build --target all --allow-partial --out dist",
            "  pre-commit install       # check, scaffold sync and build on every commit",
        ]
        click.echo("\n".join(lines))
