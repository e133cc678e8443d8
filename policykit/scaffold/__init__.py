"""``policykit init``: a new policy repository that passes as created.

It holds a configuration using the four built-in platform packs and a local
pack (``policies/<name>.py``) that reuses their helpers; a Backstage catalog,
Kubernetes manifests and an AI agent that pass every rule; rule tests
(``tests/policies.test.yaml``, a :mod:`policykit.rule_tests` file); a
GitHub Actions workflow that tests, checks, syncs templates (``scaffold sync
--check``), verifies and builds; and a pre-commit configuration running
policykit's own hooks (``.pre-commit-hooks.yaml``: check, scaffold sync,
build) at this version's tag.

The files are templates in ``files/`` with five placeholders: ``__PACK__``
(the pack name), ``__PREFIX__`` (its rule id prefix), ``__VERSION__``
(policykit's version), ``__SOURCE__`` (policykit's repository,
:data:`policykit.distribution.SOURCE_URL`, whose ``v<version>`` tag the
pre-commit hooks are pinned to) and ``__INSTALL__`` (the pip requirement of
this exact copy of policykit, :func:`policykit.distribution.install_spec`,
pinned in the workflow — never the bare name, which on the package index is
another project). The name is validated to a form that is safe verbatim in Python,
YAML and rule ids, so no escaping is needed.

Nothing is overwritten: when any file to be written exists, none is written.
A failure while writing removes what this run wrote.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from policykit import __version__
from policykit.distribution import SOURCE_URL, check_install_spec, install_spec
from policykit.errors import PolicykitError, SourceLoc
from policykit.ir.rule import PACK_NAME_RE, RESERVED_PACK_NAMES
from policykit.packs import BUILTIN_CATALOG, BUILTIN_PACKS
from policykit.safeio import remove, temp_name

# (path in the new repository, template in files/)
FILES: tuple[tuple[str, str], ...] = (
    ("policykit.yaml", "policykit.yaml"),
    ("policies/__PACK__.py", "pack.py"),
    ("catalog/catalog-info.yaml", "catalog-info.yaml"),
    ("deploy/storefront.yaml", "deploy.yaml"),
    ("agents/support-assistant.yaml", "agent.yaml"),
    ("tests/policies.test.yaml", "test.yaml"),
    (".github/workflows/policykit.yml", "workflow.yml"),
    (".pre-commit-config.yaml", "pre-commit-config.yaml"),
)

_TAKEN = frozenset(
    {s.rsplit(".", 1)[-1] for s in (*BUILTIN_CATALOG, *BUILTIN_PACKS)} | RESERVED_PACK_NAMES
)


class ScaffoldError(PolicykitError):
    """``policykit init`` cannot create the repository (files exist, bad name,
    unwritable directory)."""

    code = "PK011"


@dataclass(frozen=True, slots=True)
class Created:
    root: Path
    pack: str
    prefix: str
    files: tuple[Path, ...]


def pack_name_for(directory: Path) -> str:
    """A pack name from a directory name: ``acme-platform`` -> ``acme_platform``."""
    name = re.sub(r"[^a-z0-9_]+", "_", directory.resolve().name.lower()).strip("_")
    name = re.sub(r"^[^a-z]+", "", name)[:63]
    if not name or name in _TAKEN:
        return "platform_rules" if not name else f"{name}_rules"
    return name


def check_name(name: str) -> str:
    if not PACK_NAME_RE.fullmatch(name):
        raise ScaffoldError(
            f"pack name {name!r} is not lower case letters, digits and underscores "
            "starting with a letter",
            hint="pass --name, e.g. --name acme",
        )
    if name in _TAKEN:
        raise ScaffoldError(f"pack name {name!r} is taken by policykit", hint="pass another --name")
    return name


def render(template: str, pack: str, prefix: str, install: str | None = None) -> str:
    text = resources.files("policykit.scaffold").joinpath("files", template).read_text("utf-8")
    return (
        text.replace("__PACK__", pack)
        .replace("__PREFIX__", prefix)
        .replace("__VERSION__", __version__)
        .replace("__SOURCE__", SOURCE_URL)
        .replace("__INSTALL__", install if install is not None else install_spec())
    )


def _write_new(path: Path, text: str) -> None:
    """Write through a temporary file and link it into place: never a partial
    file, and never over a file that appeared meanwhile. The temporary name is
    chosen before the file exists, so an interrupt anywhere leaves none."""
    tmp = temp_name(path)
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(tmp, flags, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        tmp.chmod(0o644)
        try:
            os.link(tmp, path)  # fails if path exists
        except OSError as exc:
            if exc.errno == errno.EEXIST or path.exists():
                raise FileExistsError(errno.EEXIST, "file exists", str(path)) from None
            tmp.replace(path)  # a file system without hard links
    finally:
        remove(tmp)


def init(directory: Path, name: str | None = None, install: str | None = None) -> Created:
    """Create the repository in ``directory`` (made if missing).

    ``install`` is the pip requirement the workflow installs policykit with
    (default: :func:`policykit.distribution.install_spec`)."""
    pack = check_name(name) if name is not None else pack_name_for(directory)
    if install is not None:
        try:
            install = check_install_spec(install)
        except ValueError as exc:
            raise ScaffoldError(str(exc), hint="pass --install with a pinned requirement") from None
    prefix = pack.upper().replace("_", "-")
    targets = [(directory / dest.replace("__PACK__", pack), tpl) for dest, tpl in FILES]
    existing = [p for p, _ in targets if p.exists() or p.is_symlink()]
    if existing:
        listed = ", ".join(p.relative_to(directory).as_posix() for p in existing)
        raise ScaffoldError(
            f"would overwrite {listed}; nothing was written",
            loc=SourceLoc(directory.as_posix()),
            hint="init into an empty or new directory, or move those files away",
        )
    texts = [(p, render(tpl, pack, prefix, install)) for p, tpl in targets]
    # each path is claimed *before* it is made, so whatever an interrupt hits,
    # the cleanup knows everything that may exist; one that was there already
    # (made meanwhile by someone else) is unclaimed and left alone
    made_dirs: list[Path] = []
    written: list[Path] = []
    try:
        for path, text in texts:
            missing = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
            for d in reversed(missing):
                made_dirs.append(d)
                try:
                    d.mkdir()
                except FileExistsError:
                    made_dirs.remove(d)
            written.append(path)
            try:
                _write_new(path, text)
            except FileExistsError:
                written.remove(path)
                raise
    except BaseException as exc:  # an interrupt too: nothing half-made stays
        for path in reversed(written):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        for d in reversed(made_dirs):
            with contextlib.suppress(OSError):
                d.rmdir()
        if not isinstance(exc, OSError):
            raise
        where = exc.filename or directory
        raise ScaffoldError(
            f"cannot write {where}: {exc.strerror or exc}; nothing was left behind",
            loc=SourceLoc(directory.as_posix()),
            hint="choose a writable directory",
        ) from None
    return Created(directory, pack, prefix, tuple(p for p, _ in texts))
