"""``policykit build`` and ``policykit bundle ...``."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import click

from policykit.cli import render
from policykit.cli.options import (
    LazyChoice,
    build_targets,
    crd_option,
    handle_errors,
    pack_option,
    param_option,
    parse_params,
    waiver_options,
)
from policykit.wording import plural

ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "HS256", "HS384", "HS512",
)  # fmt: skip
"""``policykit.targets.rego.signing.ALGORITHMS``, spelled out so that declaring
``--alg`` imports no jwt or cryptography (tests/test_startup.py holds them equal)."""


def register(cli: click.Group) -> None:
    @cli.command()
    @click.option("--target", type=LazyChoice(build_targets), default="rego", show_default=True)
    @click.option(
        "--out",
        type=click.Path(path_type=Path),
        default=None,
        help="rego: the bundle file (default dist/bundle.tar.gz); gatekeeper, kyverno, vap, "
        "jsonschema: a directory (default dist/<target>); all: a directory (default dist).",
    )
    @click.option(
        "--allow-partial",
        is_flag=True,
        help="Build the rules a target can express and warn about the others "
        "(default: report them all and write nothing, exit 2).",
    )
    @click.option(
        "--kyverno-version",
        type=click.Choice(["v1", "v1beta1", "v1alpha1"]),
        default="v1",
        show_default=True,
        help="ValidatingPolicy API version (v1 for Kyverno >= 1.17).",
    )
    @click.option("--revision", default=None, help="Bundle revision (default: content digest).")
    @click.option(
        "--sign-key",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Sign the bundle with a private key PEM (RS/PS/ES) or an HMAC secret file (HS).",
    )
    @click.option(
        "--alg",
        "--signing-alg",
        "sign_alg",
        type=click.Choice(ALGORITHMS),
        default="RS256",
        show_default=True,
        help="JWS algorithm of the signature.",
    )
    @click.option("--key-id", default=None, help="Key id (JWS kid and the keyid claim).")
    @click.option("--scope", default=None, help="Scope claim that OPA's signing config must match.")
    @click.option(
        "--root",
        default="policykit",
        show_default=True,
        help="Dotted Rego path the bundle owns: packages <root>.<pack>.",
    )
    @click.option(
        "--templates",
        "template_paths",
        multiple=True,
        metavar="PATH",
        help="Backstage templates (files or directories; default: the configured paths): "
        "fields.json gives each parameter that fills a constrained field its schema, "
        "the one `scaffold sync` writes.",
    )
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="json: one document on standard output once the output is written: the files, "
        "notes, warnings, and each admission policy's CEL size, nesting and estimated cost.",
    )
    @pack_option
    @param_option
    @waiver_options
    @crd_option
    @handle_errors
    def build(
        target: str,
        fmt: str,
        out: Path | None,
        allow_partial: bool,
        kyverno_version: str,
        revision: str | None,
        sign_key: Path | None,
        sign_alg: str,
        key_id: str | None,
        scope: str | None,
        root: str,
        template_paths: tuple[str, ...],
        packs: tuple[str, ...],
        params: tuple[str, ...],
        waivers_file: Path | None,
        today: datetime.datetime | None,
        crd_paths: tuple[str, ...],
    ) -> None:
        """Compile the selected packs for an enforcement target (or all of them).

        Waivers in force (policykit.waivers.yaml or --waivers) travel to the
        admission targets where they can be expressed exactly (docs/ci.md).
        Custom kinds come from CRDs (--crd, crds: in policykit.yaml).

        Every rule a target cannot express is reported before anything is written;
        a rule that is not for admission (runtime, Backstage) or that a target
        leaves out by design (cross-object in CEL) is listed once, not an error."""
        from policykit import api

        config = api.BuildConfig(
            target=target,
            out=out,
            allow_partial=allow_partial,
            kyverno_version=kyverno_version,
            revision=revision,
            sign_key=sign_key,
            sign_alg=sign_alg,
            key_id=key_id,
            scope=scope,
            root=root,
            templates=template_paths,
            packs=packs,
            params=parse_params(params),
            waivers=waivers_file,
            today=today,
            crds=crd_paths,
        )
        result = api.build(config)
        for line in result.warnings:
            click.echo(f"policykit: warning: {line}", err=True)
        notes = result.write()  # only once the output is in place
        if fmt == "json":
            import json

            click.echo(json.dumps(result.report(notes), indent=2, sort_keys=True))
            return
        for line in notes:
            _echo_note(line)

    @cli.group()
    def bundle() -> None:
        """Work with built OPA bundles."""

    registry_options = [
        click.option("--plain-http", is_flag=True, help="The registry speaks HTTP, not HTTPS."),
        click.option("--username", default=None, help="Registry user (default: docker config)."),
        click.option(
            "--password",
            default=None,
            help="Registry password or token (or POLICYKIT_REGISTRY_PASSWORD).",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=30.0,
            show_default=True,
            help="Seconds to wait for each connect and read (a whole download: 10x).",
        ),
    ]

    def with_registry_options(fn: Any) -> Any:
        for option in reversed(registry_options):
            fn = option(fn)
        return fn

    @cli.command()
    @click.argument("bundle_path", type=click.Path(dir_okay=False, path_type=Path))
    @click.argument("reference")
    @with_registry_options
    @handle_errors
    def publish(
        bundle_path: Path,
        reference: str,
        plain_http: bool,
        username: str | None,
        password: str | None,
        timeout: float,
    ) -> None:
        """Push BUNDLE to an OCI registry as OPA pulls it: oci://HOST/REPO:TAG."""
        from policykit import oci

        digest = oci.publish(
            bundle_path,
            reference,
            plain_http=plain_http,
            username=username,
            password=password,
            limits=oci.Limits(timeout=timeout),
        )
        click.echo(f"pushed {bundle_path} to {reference} (layer {digest})")

    @cli.command()
    @click.argument("reference")
    @click.option(
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        required=True,
        help="Where to write the bundle (atomically).",
    )
    @click.option(
        "--max-size",
        type=click.IntRange(min=1),
        default=64 * 1024 * 1024,
        show_default=True,
        help="Largest manifest or bundle layer accepted, in bytes.",
    )
    @with_registry_options
    @handle_errors
    def pull(
        reference: str,
        out: Path,
        max_size: int,
        plain_http: bool,
        username: str | None,
        password: str | None,
        timeout: float,
    ) -> None:
        """Fetch the OPA bundle at oci://HOST/REPO:TAG to --out (digest checked)."""
        from policykit import oci

        digest = oci.pull(
            reference,
            out,
            plain_http=plain_http,
            username=username,
            password=password,
            limits=oci.Limits(timeout=timeout, max_size=max_size),
        )
        click.echo(f"pulled {reference} to {out} ({digest})")

    @bundle.command("verify")
    @click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
    @click.option(
        "--key",
        type=click.Path(dir_okay=False, path_type=Path),
        required=True,
        help="Public key or certificate PEM (RS/PS/ES), or the HMAC secret file (HS).",
    )
    @click.option("--alg", type=click.Choice(ALGORITHMS), default="RS256", show_default=True)
    @click.option("--scope", default=None, help="Scope the signature must carry.")
    @handle_errors
    def verify_cmd(path: Path, key: Path, alg: str, scope: str | None) -> None:
        """Check a signed bundle: every file as signed, none added or removed, this key.

        Exit 0 when it verifies, 2 (PK301) naming what is wrong otherwise."""
        from policykit.targets.rego.bundle import Bundle
        from policykit.targets.rego.signing import verify as verify_signature

        files = Bundle.read(path).files  # a regular file, streamed within limits
        n = verify_signature(files, key, alg=alg, scope=scope, bundle_name=str(path))
        click.echo(f"{path}: signature verified ({alg}), {plural(n, 'file')} intact")

    @bundle.command("inspect")
    @click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
    @handle_errors
    def inspect_cmd(path: Path, fmt: str) -> None:
        """Show a bundle's manifest, roots, modules, entrypoints and data paths."""
        from rich.markup import escape
        from rich.table import Table

        from policykit.targets.rego.bundle import Bundle, inspect_bundle

        info = inspect_bundle(Bundle.read(path))  # a regular file, streamed within limits
        if fmt == "json":
            click.echo(json.dumps(info, indent=2, sort_keys=True))
            return
        console = render.console()
        head = f"[bold]{escape(str(path))}[/bold]  revision {escape(info['revision'])}"
        render.show(console, head)
        render.show(console, f"roots: {', '.join(info['roots'])}", markup=False)
        meta = info["policykit"]
        if meta:
            packs = ", ".join(f"{k}@{v}" for k, v in meta.get("packs", {}).items())
            line = f"policykit {meta.get('version', '?')}; packs: {packs}"
            render.show(console, line, markup=False)
        table = Table("module", "package", "rules")
        for m in info["modules"]:
            table.add_row(escape(m["path"]), escape(m["package"]), str(m["rules"]))
        render.show(console, table)
        # one per line: a list wrapped at the terminal's width ended lines in ", "
        for title in ("entrypoints", "data"):
            render.show(console, f"{title}:", markup=False)
            for item in info[title]:
                render.show(console, f"  {item}", markup=False, soft_wrap=True)


def _echo_note(line: str) -> None:
    """What a build wrote and left out; ``-q`` keeps only the waivers not carried."""
    if not render.ui().quiet or "waiver not carried" in line:
        click.echo(line)
