"""``policykit build`` and ``policykit bundle ...``."""

from __future__ import annotations

import contextlib
import datetime
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from policykit.cli import render
from policykit.cli.options import (
    active_waivers,
    crd_option,
    handle_errors,
    load_crds,
    pack_option,
    param_option,
    parse_params,
    waiver_options,
)
from policykit.cli.render import plural
from policykit.errors import ErrorList, SourceLoc

if TYPE_CHECKING:  # the compilers, rich, jwt and cryptography load when a command runs
    from policykit.ir.rule import Pack
    from policykit.targets.k8s import waivers as exports
    from policykit.targets.k8s.manifests import Skipped
    from policykit.targets.rego.bundle import Signing
    from policykit.waivers import Waiver

ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "HS256", "HS384", "HS512",
)  # fmt: skip
"""``policykit.targets.rego.signing.ALGORITHMS``, spelled out so that declaring
``--alg`` imports no jwt or cryptography (tests/test_startup.py holds them equal)."""
TARGETS = ("rego", "gatekeeper", "kyverno", "vap", "jsonschema", "all")
ADMISSION = ("gatekeeper", "kyverno", "vap")
ALL = ("rego", "gatekeeper", "kyverno", "vap", "jsonschema")
ALL_OUTPUTS = ("bundle.tar.gz", "gatekeeper", "kyverno", "vap", "jsonschema")
DEFAULT_BUNDLE = Path("dist") / "bundle.tar.gz"


def register(cli: click.Group) -> None:
    @cli.command()
    @click.option("--target", type=click.Choice(TARGETS), default="rego", show_default=True)
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
    @pack_option
    @param_option
    @waiver_options
    @crd_option
    @handle_errors
    def build(
        target: str,
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
        from policykit.api import resolve
        from policykit.targets.k8s import crds

        sel = resolve(packs=packs, params=parse_params(params), crds=crd_paths)
        registry = load_crds(sel.crds)
        with crds.using(registry):
            _build(
                target,
                out,
                allow_partial,
                kyverno_version,
                revision,
                sel.packs,
                sel.params,
                sign_key,
                sign_alg,
                key_id,
                scope,
                root,
                waivers_file,
                today,
                templates=list(template_paths) or sel.paths,
            )

    def _build(
        target: str,
        out: Path | None,
        allow_partial: bool,
        kyverno_version: str,
        revision: str | None,
        pack_names: list[str],
        pack_params: dict[str, dict[str, Any]],
        sign_key: Path | None,
        sign_alg: str,
        key_id: str | None,
        scope: str | None,
        root: str,
        waivers_file: Path | None,
        today: datetime.datetime | None,
        templates: Sequence[str] = (),
    ) -> None:
        from policykit.engines.native import NativeEngine
        from policykit.packs import load_packs
        from policykit.safeio import staged_dir
        from policykit.targets import capabilities
        from policykit.targets.rego.bundle import Signing

        pack_objs = load_packs(pack_names)
        effective = NativeEngine(pack_objs, pack_params).effective_params
        wanted = list(ALL) if target == "all" else [target]
        plan = capabilities.plan(pack_objs, effective, wanted)
        if plan.errors and not allow_partial:
            raise ErrorList(plan.errors)
        for err in plan.errors:
            click.echo(
                f"policykit: warning: {err.one_line()}; left out (--allow-partial)", err=True
            )
        in_force = active_waivers(waivers_file, today)  # read once, before anything is written
        signing = Signing(sign_key, sign_alg, key_id, scope) if sign_key else None
        # a directory output is built beside its destination and swapped in
        # whole (all targets at once for --target all): an interrupt or error
        # leaves the previous output as it was, never a partial set
        final = (out or Path("dist")) if target == "all" else (out or Path("dist") / target)
        notes: list[str] = []
        skipped: list[Skipped] = []
        if target == "rego":
            _build_rego(
                plan.packs["rego"],
                effective,
                out or DEFAULT_BUNDLE,
                root,
                revision,
                signing,
                in_force,
            )
            return
        with _writing(final):
            check_replaceable(final, set(ALL_OUTPUTS) if target == "all" else None)
            with staged_dir(final) as stage:
                for t in wanted:
                    name = ("bundle.tar.gz" if t == "rego" else t) if target == "all" else ""
                    dest, shown = (stage / name, final / name) if name else (stage, final)
                    chosen = plan.packs[t]
                    if t == "jsonschema" and in_force:
                        notes.append(
                            "  waivers are not carried into jsonschema (a form has no exceptions)"
                        )
                    if t == "rego":
                        _build_rego(
                            chosen, effective, dest, root, revision, signing, in_force, shown, notes
                        )
                    elif t == "jsonschema":
                        build_jsonschema(chosen, effective, dest, shown, notes, templates)
                    else:
                        build_manifests(
                            t,
                            chosen,
                            effective,
                            dest,
                            kyverno_version,
                            in_force,
                            shown,
                            notes,
                            skipped,
                        )
        notes += not_built(skipped, [t for t in wanted if t in ADMISSION])
        for line in notes:  # only once the output is in place
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


def _build_rego(
    packs: list[Pack],
    effective: dict[str, dict[str, Any]],
    out: Path,
    root: str,
    revision: str | None,
    signing: Signing | None = None,
    waivers: Sequence[Waiver] = (),
    shown: Path | None = None,
    notes: list[str] | None = None,
) -> None:
    from policykit.safeio import write_atomic
    from policykit.targets.rego.bundle import build_bundle

    bundle = build_bundle(
        packs, effective, root=root, revision=revision, signing=signing, waivers=waivers
    )
    blob = bundle.pack()
    write_atomic(out, blob)
    rev = bundle.manifest["revision"]
    signed = f", signed {signing.alg}" if signing else ""
    _say(
        notes,
        f"wrote {shown or out} ({plural(len(blob), 'byte')}, "
        f"{plural(len(bundle.modules()), 'module')}, "
        f"revision {rev}{signed})",
    )


def build_jsonschema(
    packs: list[Pack],
    effective: dict[str, dict[str, Any]],
    out: Path,
    shown: Path | None = None,
    notes: list[str] | None = None,
    templates: Sequence[str] = (),
) -> None:
    """Write the JSON Schema target's files under ``out``, atomically per file
    (``shown``: the path named in the message; ``notes``: where messages go;
    ``templates``: the Backstage templates' paths, for fields.json's ``parameters``)."""
    from policykit.safeio import write_atomic
    from policykit.targets import jsonschema

    parameters = None
    if templates:
        from policykit.scaffolder.fields import parameters_by_pack

        parameters, template_notes = parameters_by_pack(templates, packs, effective)
        for line in template_notes:
            _say(notes, f"  {line}")
    files = jsonschema.build(packs, effective, parameters)
    for name, text in files.items():
        write_atomic(out / name, text.encode("utf-8"))
    index = json.loads(files["index.json"])["rules"]
    n = sum(1 for r in index if r["covered"])
    _say(
        notes,
        f"wrote {shown or out} ({n} of {plural(len(index), 'rule')} as JSON Schema; "
        "the rest: index.json)",
    )


def build_manifests(
    target: str,
    packs: list[Pack],
    effective: dict[str, dict[str, Any]],
    out: Path,
    kyverno_version: str = "v1",
    waivers: Sequence[Waiver] = (),
    shown: Path | None = None,
    notes: list[str] | None = None,
    skipped_out: list[Skipped] | None = None,
) -> None:
    """Write a target's manifests under ``out`` (plus a kustomization.yaml), atomically
    per file; every rule that cannot be expressed is reported before anything is written.
    The rules left out by design go to ``skipped_out`` (else they are listed here)."""
    from policykit.safeio import write_atomic
    from policykit.targets import gatekeeper
    from policykit.targets.k8s import manifests
    from policykit.targets.k8s import waivers as exports

    if target == "gatekeeper":
        files, skipped = gatekeeper.build(packs, effective)
    else:
        files, skipped = manifests.build(target, packs, effective, kyverno_version=kyverno_version)
    missed: list[exports.NotCarried] = []
    if waivers:
        for name in sorted(files):
            if target == "gatekeeper" and name.startswith("constraints/"):
                files[name], m = exports.apply_gatekeeper(waivers, files[name])
            elif target == "vap":
                kinds = {r.id: list(r.selector.kinds) for p in packs for r in p.rules}
                files[name], m = exports.apply_vap(waivers, files[name], kinds)
            else:
                continue
            missed += [x for x in m if x not in missed]
        if target == "kyverno":
            policies = [d for items in files.values() for d in items]
            exceptions, missed = exports.kyverno_exceptions(
                waivers, policies, version=kyverno_version
            )
            if exceptions:
                files["exceptions.yaml"] = exceptions
    texts = {name: manifests.dump(docs) for name, docs in sorted(files.items())}
    # templates before constraints: a Constraint's kind exists only once its template does
    order = sorted(texts, key=lambda n: (not n.startswith("templates/"), n))
    texts["kustomization.yaml"] = manifests.dump(
        [
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": order,
            }
        ]
    ).removeprefix("---\n")
    for name, text in texts.items():
        write_atomic(out / name, text.encode("utf-8"))
    n = sum(len(d) for d in files.values())
    counts = f"{plural(n, 'manifest')} in {plural(len(files), 'file')}"
    _say(notes, f"wrote {shown or out} ({counts}, target {target})")
    if skipped_out is not None:
        skipped_out += skipped
    else:
        for line in not_built(skipped, [target]):
            _say(notes, line)
    for x in missed:
        _say(notes, f"  waiver not carried: {x.waiver.describe()}: {x.reason}")


def not_built(skipped: Sequence[Skipped], admission: Sequence[str]) -> list[str]:
    """One line per rule left out by design: "not at admission" when every
    admission target of the build leaves it out for a reason that holds for
    all of them (runtime, Backstage), else the targets that leave it out."""
    by_rule: dict[tuple[str, str, str], list[str]] = {}
    for s in skipped:
        by_rule.setdefault((s.pack, s.rule, s.reason), []).append(s.target)
    lines = []
    for (pack, rule, reason), targets in by_rule.items():
        everywhere = sorted(targets) == sorted(admission) or not all(targets)
        head = "not at admission" if everywhere else f"not in {', '.join(targets)}"
        lines.append(f"  {head}: {pack}/{rule}: {reason}")
    return lines


@contextlib.contextmanager
def _writing(dest: Path) -> Iterator[None]:
    """An OSError while building ``dest`` (an over-long name, no space, no
    permission) is one PK300 line."""
    from policykit.targets.rego.bundle import BundleError

    try:
        yield
    except OSError as exc:
        raise BundleError(
            f"cannot write {dest}: {exc.strerror or exc}",
            loc=SourceLoc(str(dest)),
            hint="choose a writable --out path",
        ) from None


def _say(notes: list[str] | None, line: str) -> None:
    if notes is None:
        _echo_note(line)
    else:
        notes.append(line)


def _echo_note(line: str) -> None:
    """What a build wrote and left out; ``-q`` keeps only the waivers not carried."""
    if not render.ui().quiet or "waiver not carried" in line:
        click.echo(line)


def check_replaceable(dest: Path, allowed: set[str] | None) -> None:
    """Refuse to replace a ``dest`` that is not a previous build: a file, a
    symlink, or a directory holding other things (for ``--target all``:
    entries other than ``allowed``; for one target: neither a
    kustomization.yaml nor an index.json) — a build never deletes those."""
    from policykit.safeio import is_dir, missing
    from policykit.targets.rego.bundle import BundleError

    if missing(dest):
        return
    if dest.is_symlink() or not is_dir(dest):
        raise BundleError(
            f"{dest} exists and is not a directory a build wrote; nothing was written",
            loc=SourceLoc(str(dest)),
            hint="choose another --out",
        )
    names = sorted(p.name for p in dest.iterdir())
    if allowed is not None:
        other = [n for n in names if n not in allowed]
    else:
        ours = not names or "kustomization.yaml" in names or "index.json" in names
        other = [] if ours else names
    if other:
        listed = ", ".join(other[:5]) + (", ..." if len(other) > 5 else "")
        raise BundleError(
            f"--out {dest} holds files a build did not write ({listed}); the output "
            "directory is replaced as a whole, so nothing was written",
            loc=SourceLoc(str(dest)),
            hint="choose an empty or new --out",
        )
