"""What a run is asked to do: the configuration objects :func:`policykit.api.check`
and :func:`policykit.api.build` take (frozen: a run never changes its request),
and the waiver file and day every command resolves the same way."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policykit.frozen import frozen

if TYPE_CHECKING:
    from policykit.waivers import Waiver


class UsageError(Exception):
    """A request that cannot run as given (no paths, an option without the one
    it needs): the command line shows it as a usage error (exit 2)."""


def as_tuples(config: Any, *names: str) -> None:
    """Each field ``names`` of a frozen ``config`` that was given one string: a
    tuple of it (``paths="repo"`` meant one path; iterated, it was one path per
    character, and ``/`` walked the whole filesystem)."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, str):
            object.__setattr__(config, name, (value,))


def one_of(what: str, value: Any, allowed: Sequence[str | None]) -> None:
    """:class:`UsageError` unless ``value`` is one of ``allowed`` (as the
    command line's choices refuse it, before anything runs)."""
    if value not in allowed:
        shown = ", ".join(a for a in allowed if a is not None)
        raise UsageError(f"{what} {value!r} is not one of: {shown}")


def as_day(config: Any, name: str = "today") -> None:
    """The field ``name`` given as ``YYYY-MM-DD`` text: that date."""
    value = getattr(config, name)
    if value is None or isinstance(value, datetime.date):
        return
    if isinstance(value, str):
        try:
            object.__setattr__(config, name, datetime.date.fromisoformat(value))
            return
        except ValueError:
            pass
    raise UsageError(f"{name} {value!r} is not a date (a datetime.date or 'YYYY-MM-DD')")


@frozen
class CheckConfig:
    """A ``check`` run: what ``policykit check`` takes as options. Empty
    sequences and ``None`` mean the configuration's value (``policykit.yaml``),
    else the default."""

    paths: tuple[str, ...] = ()
    packs: tuple[str, ...] = ()
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    no_ignore: bool = False  # also read what git ignores, dist/, node_modules/, ...
    fail_on: str | None = None  # deny | warn | info
    engine: str = "native"
    jobs: int | None = None  # None: every core (a small run stays in one process)
    crds: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()  # existing Gatekeeper/Kyverno policies to run too
    baseline: Path | None = None
    update_baseline: bool = False  # record today's findings in ``baseline``
    waivers: Path | None = None  # default: policykit.waivers.yaml here, if any
    today: datetime.date | None = None  # the day waivers expire against (default: UTC today)
    record_checked: bool = False  # per object, the rules that applied (JUnit)

    def __post_init__(self) -> None:
        from policykit.api.checking import ENGINES

        as_tuples(self, "paths", "packs", "include", "exclude", "crds", "policies")
        one_of("fail_on", self.fail_on, (None, "deny", "warn", "info"))
        one_of("engine", self.engine, ENGINES)
        as_day(self)


@frozen
class BuildConfig:
    """A ``build`` run: the target (a name of :mod:`policykit.targets.registry`
    or ``all``), where it goes and how."""

    target: str = "rego"
    out: Path | None = None  # default: the target's place under dist/
    allow_partial: bool = False  # leave out (and warn about) what a target cannot express
    kyverno_version: str = "v1"
    revision: str | None = None
    sign_key: Path | None = None
    sign_alg: str = "RS256"
    key_id: str | None = None
    scope: str | None = None
    root: str = "policykit"
    templates: tuple[str, ...] = ()  # Backstage templates (default: the configured paths)
    packs: tuple[str, ...] = ()
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    waivers: Path | None = None
    today: datetime.date | None = None
    crds: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        as_tuples(self, "templates", "packs", "crds")
        as_day(self)


def waivers_path(waivers_file: Path | None) -> Path | None:
    """The waivers file of a run: the one given, else ``policykit.waivers.yaml``
    in the working directory when there is one."""
    from policykit.config import WAIVERS_FILE  # not policykit.waivers: loaded when there is one

    if waivers_file is None and Path(WAIVERS_FILE).is_file():
        return Path(WAIVERS_FILE)
    return waivers_file


def the_day(today: datetime.date | None) -> datetime.date:
    """The day waivers expire against: ``today`` as given, else today in UTC."""
    if isinstance(today, datetime.datetime):
        return today.date()
    return today if today else datetime.datetime.now(datetime.UTC).date()


def active_waivers(waivers_file: Path | None, today: datetime.date | None) -> list[Waiver]:
    """The waivers in force on ``today`` (none when there is no waivers file)."""
    from policykit import waivers

    path = waivers_path(waivers_file)
    if path is None:
        return []
    day = the_day(today)
    return [w for w in waivers.load(path) if w.expires >= day]
