"""``policykit build`` and ``policykit bundle ...``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from policykit.api import resolve
from policykit.engines.native import NativeEngine
from policykit.packs import load_packs
from policykit.targets.rego.bundle import (
    Bundle,
    BundleError,
    build_bundle,
    inspect_bundle,
    write_atomic,
)

TARGETS = ("rego",)


def register(cli: click.Group) -> None:
    from policykit.cli.main import handle_errors, pack_option, param_option, parse_params

    @cli.command()
    @click.option("--target", type=click.Choice(TARGETS), default="rego", show_default=True)
    @click.option(
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        default=Path("dist/bundle.tar.gz"),
        show_default=True,
        help="Bundle file to write (atomically).",
    )
    @click.option("--revision", default=None, help="Bundle revision (default: content digest).")
    @click.option(
        "--root",
        default="policykit",
        show_default=True,
        help="Dotted Rego path the bundle owns: packages <root>.<pack>.",
    )
    @pack_option
    @param_option
    @handle_errors
    def build(
        target: str,
        out: Path,
        revision: str | None,
        root: str,
        packs: tuple[str, ...],
        params: tuple[str, ...],
    ) -> None:
        """Compile the selected packs for an enforcement target."""
        sel = resolve(packs=packs, params=parse_params(params))
        pack_objs = load_packs(sel.packs)
        effective = NativeEngine(pack_objs, sel.params).effective_params
        bundle = build_bundle(pack_objs, effective, root=root, revision=revision)
        blob = bundle.pack()
        write_atomic(out, blob)
        rev = bundle.manifest["revision"]
        click.echo(
            f"wrote {out} ({len(blob)} bytes, {len(bundle.modules())} modules, revision {rev})"
        )

    @cli.group()
    def bundle() -> None:
        """Work with built OPA bundles."""

    @bundle.command("inspect")
    @click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
    @handle_errors
    def inspect_cmd(path: Path, fmt: str) -> None:
        """Show a bundle's manifest, roots, modules, entrypoints and data paths."""
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise BundleError(f"cannot read bundle: {exc.strerror}", hint=str(path)) from None
        info = inspect_bundle(Bundle.unpack(blob, str(path)))
        if fmt == "json":
            click.echo(json.dumps(info, indent=2, sort_keys=True))
            return
        console = Console()
        console.print(f"[bold]{path}[/bold]  revision {info['revision']}")
        console.print(f"roots: {', '.join(info['roots'])}")
        meta = info["manifest"].get("metadata", {}).get("policykit", {})
        if meta:
            packs = ", ".join(f"{k}@{v}" for k, v in meta.get("packs", {}).items())
            console.print(f"policykit {meta.get('version', '?')}; packs: {packs}")
        table = Table("module", "package", "rules")
        for m in info["modules"]:
            table.add_row(m["path"], m["package"], str(m["rules"]))
        console.print(table)
        console.print("entrypoints: " + ", ".join(info["entrypoints"]))
        console.print("data: " + ", ".join(info["data"]))
