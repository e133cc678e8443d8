"""``build`` as a whole: resolve the request, compile each rule once per target
(:func:`policykit.targets.capabilities.plan`, whose outputs are what is
written), carry the waivers in force into the admission targets, and say what
was written, left out and not carried. ``policykit build`` is this plus option
parsing and printing."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policykit.api.config import BuildConfig, active_waivers
from policykit.errors import ErrorList, PolicykitError, SourceLoc
from policykit.wording import plural

if TYPE_CHECKING:
    from policykit.api.checking import Selection
    from policykit.ir.rule import Pack
    from policykit.targets.k8s.manifests import Skipped
    from policykit.targets.rego.bundle import Bundle, Signing
    from policykit.waivers import Waiver


@dataclass(slots=True)
class BuildResult:
    """A build, compiled and not yet written: ``warnings`` (the rules left out
    under ``allow_partial``) are known now; :meth:`artifacts` gives the files'
    bytes and the notes (what is written, left out by design, waivers not
    carried); :meth:`write` puts them in place, all at once."""

    target: str
    dest: Path  # the bundle file (rego) or the output directory
    directory: bool
    packs: dict[str, list[Pack]]  # per target, the rules built
    outputs: dict[str, Any]  # per target, what its compiler returned
    effective: dict[str, dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    waivers: list[Waiver] = field(default_factory=list)
    waiver_error: PolicykitError | None = None  # the waivers file could not be read
    failure: PolicykitError | None = None  # a compile error no single rule explains
    signing: Signing | None = None
    kyverno_version: str = "v1"
    template_notes: list[str] = field(default_factory=list)  # reading the templates
    written: list[str] = field(default_factory=list)  # what write() put in place (relative)
    exit_code: int = 0

    def artifacts(self) -> tuple[dict[str, bytes], list[str]]:
        """The files (paths relative to :attr:`dest`; ``""``: ``dest`` itself)
        and the notes, in the order they are printed."""
        from policykit.targets import registry

        files: dict[str, bytes] = {}
        notes: list[str] = []
        skipped: list[Skipped] = []
        wanted = list(self.outputs)
        for t in wanted:
            name = registry.get(t).output if self.target == "all" else ""
            shown = self.dest / name if name else self.dest
            prefix = f"{name}/" if name and t != "rego" else name
            if t == "jsonschema" and self.waivers:
                notes.append("  waivers are not carried into jsonschema (a form has no exceptions)")
            if t == "rego":
                got, said = self._rego(shown)
            elif t == "jsonschema":
                got, said = _jsonschema(self.outputs[t], self.template_notes, shown)
            else:
                got, said, left = self._manifests(t, shown)
                skipped += left
            notes += said
            for rel, data in got.items():
                files[prefix + rel if rel else prefix] = data
        admission = [t for t in wanted if registry.get(t).admission]
        return files, notes + not_built(skipped, admission)

    def policies(self) -> list[dict[str, Any]]:
        """Per admission policy built (VAP and ValidatingPolicy): its file, name
        and rule, and :func:`policykit.targets.k8s.limits.summary` — its CEL's
        size, nesting and estimated cost (``build --format json``)."""
        from policykit.targets.k8s import limits

        out: list[dict[str, Any]] = []
        for t in ("kyverno", "vap"):
            if t not in self.outputs:
                continue
            built, _ = self.outputs[t]
            for name in sorted(built):
                for doc in built[name]:
                    if doc.get("kind") not in ("ValidatingPolicy", "ValidatingAdmissionPolicy"):
                        continue
                    meta = doc.get("metadata") or {}
                    out.append(
                        {
                            "target": t,
                            "file": name,
                            "name": meta.get("name"),
                            "rule": (meta.get("annotations") or {}).get("policykit.io/rule"),
                            **limits.summary(doc),
                        }
                    )
        return out

    def report(self, notes: Sequence[str]) -> dict[str, Any]:
        """The JSON document ``build --format json`` prints once the output is
        written: what was written, the notes, the warnings and each admission
        policy's figures."""
        return {
            "target": self.target,
            "out": str(self.dest),
            # relative to "out"; a single-file output (the bundle) is "out" itself
            "files": sorted(k or self.dest.name for k in self.written),
            "warnings": list(self.warnings),
            "notes": [n.strip() for n in notes],
            "policies": self.policies(),
        }

    def write(self) -> list[str]:
        """Write the output (a directory is built beside its destination and
        swapped in whole: an interrupt or error leaves the previous output as it
        was) and return the notes."""
        from policykit.safeio import staged_dir, write_atomic

        if self.waiver_error is not None:
            raise self.waiver_error
        if not self.directory:
            if self.failure is not None:
                raise self.failure
            files, notes = self.artifacts()
            write_atomic(self.dest, files[""])
            self.written = list(files)
            return notes
        with _writing(self.dest):
            allowed = {t.output for t in _registry_targets()} if self.target == "all" else None
            check_replaceable(self.dest, allowed)
            if self.failure is not None:
                raise self.failure
            files, notes = self.artifacts()
            with staged_dir(self.dest) as stage:
                for rel, data in files.items():
                    write_atomic(stage / rel, data)
            self.written = list(files)
        return notes

    def _rego(self, shown: Path) -> tuple[dict[str, bytes], list[str]]:
        bundle: Bundle = self.outputs["rego"]
        if self.signing is not None:
            bundle = _signed(bundle, self.signing)
        blob = bundle.pack()
        rev = bundle.manifest["revision"]
        signed = f", signed {self.signing.alg}" if self.signing else ""
        note = (
            f"wrote {shown} ({plural(len(blob), 'byte')}, "
            f"{plural(len(bundle.modules()), 'module')}, revision {rev}{signed})"
        )
        return {"": blob}, [note]

    def _manifests(
        self, target: str, shown: Path
    ) -> tuple[dict[str, bytes], list[str], list[Skipped]]:
        from policykit.targets.k8s import manifests
        from policykit.targets.k8s import waivers as exports

        built, skipped = self.outputs[target]
        files = {name: list(docs) for name, docs in built.items()}
        missed: list[exports.NotCarried] = []
        if self.waivers:
            packs = self.packs[target]
            for name in sorted(files):
                if target == "gatekeeper" and name.startswith("constraints/"):
                    files[name], m = exports.apply_gatekeeper(self.waivers, files[name])
                elif target == "vap":
                    kinds = {r.id: list(r.selector.kinds) for p in packs for r in p.rules}
                    files[name], m = exports.apply_vap(self.waivers, files[name], kinds)
                else:
                    continue
                missed += [x for x in m if x not in missed]
            if target == "kyverno":
                policies = [d for items in files.values() for d in items]
                exceptions, missed = exports.kyverno_exceptions(
                    self.waivers, policies, version=self.kyverno_version
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
        n = sum(len(d) for d in files.values())
        counts = f"{plural(n, 'manifest')} in {plural(len(files), 'file')}"
        notes = [f"wrote {shown} ({counts}, target {target})"]
        notes += [f"  waiver not carried: {x.waiver.describe()}: {x.reason}" for x in missed]
        return {k: v.encode("utf-8") for k, v in texts.items()}, notes, list(skipped)


def _registry_targets() -> list[Any]:
    from policykit.targets import registry

    return list(registry.TARGETS.values())


def _jsonschema(
    texts: Mapping[str, str], template_notes: Sequence[str], shown: Path
) -> tuple[dict[str, bytes], list[str]]:
    notes = [f"  {line}" for line in template_notes]
    index = json.loads(texts["index.json"])["rules"]
    n = sum(1 for r in index if r["covered"])
    notes.append(
        f"wrote {shown} ({n} of {plural(len(index), 'rule')} as JSON Schema; the rest: index.json)"
    )
    return {name: text.encode("utf-8") for name, text in texts.items()}, notes


def _signed(bundle: Bundle, signing: Signing) -> Bundle:
    """``bundle`` with its signature (what ``build_bundle(signing=...)`` adds)."""
    from policykit.targets.rego.bundle import SIGNATURES, Bundle
    from policykit.targets.rego.signing import sign  # jwt, cryptography: only to sign

    files = dict(bundle.files)
    files[SIGNATURES] = sign(
        files, signing.key, alg=signing.alg, key_id=signing.key_id, scope=signing.scope
    )
    return Bundle(files)


def build(config: BuildConfig, default_templates: Sequence[str] = ()) -> BuildResult:
    """Compile the configured packs for ``config.target`` (or ``all``): every
    rule once per target. Raises the errors of every rule a target cannot
    express (unless ``allow_partial``); the result is written by
    :meth:`BuildResult.write`."""
    from policykit.api.checking import resolve
    from policykit.k8s import crds

    if config.revision is not None and not config.revision.isprintable():
        from policykit.errors import ConfigError

        raise ConfigError(
            f"revision {config.revision!r} holds a line break or another control character",
            hint="give one line of printable text: OPA reports the revision as it is",
        )
    sel = resolve(packs=config.packs, params=config.params, crds=config.crds)
    registry_ = crds.load(sel.crds)
    with crds.using(registry_):
        return _build(config, sel, list(config.templates) or sel.paths)


def _build(config: BuildConfig, sel: Selection, templates: Sequence[str]) -> BuildResult:
    from policykit.ir.check import check_pack
    from policykit.packs import check_run_params, load_packs
    from policykit.targets import capabilities, registry
    from policykit.targets.rego.bundle import Signing

    pack_objs = load_packs(sel.packs)
    check_run_params(pack_objs, sel.named, sel.params, sel.where)
    effective = {p.name: check_pack(p, sel.params.get(p.name, {})) for p in pack_objs}
    wanted = registry.names() if config.target == "all" else [config.target]
    waiver_error = None
    in_force: list[Waiver] = []
    try:  # read before compiling (the bundle carries them), reported after the plan
        in_force = active_waivers(config.waivers, config.today)
    except PolicykitError as exc:
        waiver_error = exc
    parameters: dict[str, dict[str, Any]] | None = None
    template_notes: list[str] = []
    if "jsonschema" in wanted and templates:  # fields.json: what the templates fill
        from policykit.scaffolder.fields import parameters_by_pack

        parameters, template_notes = parameters_by_pack(templates, pack_objs, effective)
    options = registry.Options(
        root=config.root,
        revision=config.revision,
        waivers=tuple(in_force),
        kyverno_version=config.kyverno_version,
        parameters=parameters,
    )
    level = capabilities.ErrorLevel.WARN if config.allow_partial else capabilities.ErrorLevel.RAISE
    plan = capabilities.plan(pack_objs, effective, wanted, options=options, level=level)
    if plan.errors and level is capabilities.ErrorLevel.RAISE:
        raise ErrorList(plan.errors)
    if config.target == "all":
        dest, directory = config.out or Path("dist"), True
    else:
        dest = config.out or Path(registry.get(config.target).default_out)
        directory = config.target != "rego"
    signing = (
        Signing(config.sign_key, config.sign_alg, config.key_id, config.scope)
        if config.sign_key
        else None
    )
    return BuildResult(
        target=config.target,
        dest=dest,
        directory=directory,
        packs=plan.packs,
        outputs=plan.outputs,
        effective=effective,
        warnings=[f"{e.one_line()}; left out (--allow-partial)" for e in plan.errors],
        waivers=in_force,
        waiver_error=waiver_error,
        failure=plan.failure,
        signing=signing,
        kyverno_version=config.kyverno_version,
        template_notes=list(template_notes),
    )


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
