"""Finding packs: Python modules or files that define them, or IR JSON files.

A pack source is one of:

* a path to a ``.py`` file — every module-level :class:`PackBuilder` or
  :class:`Pack` in it (or the list ``PACKS`` if the module defines one);
* a path to a ``.json`` file in the IR JSON form;
* a dotted module name (``policykit.packs.starter``, ``mycompany.policies``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

from policykit.dsl.pack import PackBuilder
from policykit.errors import PackLoadError, PolicykitError, SourceLoc
from policykit.ir import serialize
from policykit.ir.rule import Pack
from policykit.safeio import file_problem, is_file, read_text

BUILTIN_PACKS: tuple[str, ...] = ("policykit.packs.starter",)
"""Packs used when neither ``--pack`` nor configuration names any."""

BUILTIN_CATALOG: tuple[str, ...] = (
    "policykit.packs.catalog",
    "policykit.packs.finops",
    "policykit.packs.provenance",
    "policykit.packs.agents",
)
"""The platform packs: Backstage catalog, FinOps, model provenance, agent
permissions (docs/packs.md). ``policykit init`` configures all four."""


def _packs_of(module: ModuleType) -> list[Pack]:
    explicit = getattr(module, "PACKS", None)
    candidates: list[Any] = list(explicit) if explicit is not None else list(vars(module).values())
    out: list[Pack] = []
    seen: set[int] = set()
    for value in candidates:
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, PackBuilder):
            out.append(value.build())
        elif isinstance(value, Pack):
            out.append(value)
    return out


def _import_file(path: Path) -> ModuleType:
    import hashlib  # a pack file's module name only

    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"policykit_user_pack_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PackLoadError("cannot import pack file", loc=SourceLoc(str(path)))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _pack_file(why: str) -> str:
    return "no such pack file" if why == "no such file" else f"pack file: {why}"


def load_pack_source(source: str, base: Path | None = None) -> list[Pack]:
    """The packs defined by one pack source (see module docstring)."""
    path = Path(source)
    if base is not None and not path.is_absolute():
        path = base / path
    try:
        if source.endswith(".json"):
            if (why := file_problem(path)) is not None:
                raise PackLoadError(_pack_file(why), loc=SourceLoc(source))
            return serialize.loads(read_text(path, name=source, error=PackLoadError), source)
        if source.endswith(".py") or is_file(path):
            if (why := file_problem(path)) is not None:
                raise PackLoadError(_pack_file(why), loc=SourceLoc(source))
            module = _import_file(path)
        else:
            try:
                module = importlib.import_module(source)
            except ModuleNotFoundError as exc:
                if exc.name and source.startswith(exc.name):
                    raise PackLoadError(
                        f"no pack module or file named {source!r}",
                        hint="give a path to a .py/.json file or an importable module",
                    ) from None
                raise
    except PolicykitError:
        raise
    except SyntaxError as exc:
        raise PackLoadError(
            f"syntax error in pack: {exc.msg}",
            loc=SourceLoc(exc.filename or source, exc.lineno or 0),
        ) from None
    except SystemExit as exc:  # a pack that exits on import must not end the run as it likes
        raise PackLoadError(
            f"pack {source} called sys.exit({exc.code!r}) while being imported",
            loc=SourceLoc(source),
            hint="a pack module defines packs; it must not exit",
        ) from None
    except Exception as exc:
        import traceback  # the error path only (start-up, issue 21)

        frames = traceback.extract_tb(exc.__traceback__)
        last = frames[-1] if frames else None
        loc = SourceLoc(last.filename, last.lineno or 0) if last else SourceLoc(source)
        raise PackLoadError(
            f"error while importing pack {source}: {type(exc).__name__}: {exc}", loc=loc
        ) from None
    packs = _packs_of(module)
    if not packs:
        raise PackLoadError(
            f"{source} defines no pack",
            hint="define a PackBuilder at module level or a PACKS list",
        )
    return packs


def load_packs(sources: list[str], base: Path | None = None) -> list[Pack]:
    """Packs from every source, in order; a pack name may appear only once."""
    packs: list[Pack] = []
    names: dict[str, tuple[str, Pack]] = {}
    for src in dict.fromkeys(sources or list(BUILTIN_PACKS)):  # --pack X --pack X: once
        for pack in load_pack_source(src, base):
            if pack.name in names:
                first_src, first = names[pack.name]
                if first_src == src and (first is pack or first == pack):
                    continue  # the same pack, reached twice in its module
                where = f"twice in {src}" if first_src == src else f"by both {first_src} and {src}"
                raise PackLoadError(f"pack {pack.name!r} is defined {where}")
            names[pack.name] = (src, pack)
            packs.append(pack)
    return _without_duplicates(packs)


def _without_duplicates(packs: list[Pack]) -> list[Pack]:
    """Leave out each rule whose ``same_as`` names a rule of a loaded pack, so
    a problem two packs both check is reported once (docs/packs.md)."""
    loaded = {f"{p.name}/{r.id}": r for p in packs for r in p.rules}
    out: list[Pack] = []
    for pack in packs:
        keep = []
        for rule in pack.rules:
            twin = loaded.get(rule.same_as) if rule.same_as else None
            if twin is None or twin.same_as:
                keep.append(rule)
                continue
            if (twin.condition, twin.selector, twin.each, twin.message) != (
                rule.condition,
                rule.selector,
                rule.each,
                rule.message,
            ):
                raise PackLoadError(
                    f"rule {rule.id} of pack {pack.name} declares same_as={rule.same_as!r}, "
                    "but the two rules differ (condition, selector, each or message)",
                    loc=rule.loc,
                )
        out.append(pack if len(keep) == len(pack.rules) else replace(pack, rules=tuple(keep)))
    return out


def refuse_unknown_packs(
    packs: Sequence[Pack],
    keys: Iterable[str],
    where: Mapping[tuple[str, str | None], SourceLoc] | None = None,
) -> None:
    """:class:`ParameterError` (PK102) for parameters given to a pack the run
    does not load: they were silently ignored and the defaults used (a
    budget keyed by the pack's module, ``policykit.packs.finops``, instead
    of its name, ``finops``). ``where``: where the configuration file gives
    each pack's params (``(pack, None)``), for the error's location."""
    names = {p.name for p in packs}
    unknown = sorted(k for k in keys if k not in names)
    if unknown:
        from policykit.errors import ParameterError

        raise ParameterError(
            f"parameters for {', '.join(repr(k) for k in unknown)}, which this run does not load",
            hint="params are keyed by a pack's name: " + ", ".join(sorted(names)),
            loc=(where or {}).get((unknown[0], None)),
        )


def check_run_params(
    packs: Sequence[Pack],
    keys: Iterable[str],
    params: Mapping[str, Mapping[str, Any]],
    where: Mapping[tuple[str, str | None], SourceLoc],
) -> None:
    """The run's parameters before anything runs: :func:`refuse_unknown_packs`,
    then each pack's values against its schema (PK102), located at the line of
    the configuration file that gives the value (``where``: ``(pack, name)``;
    a value the caller gave, ``--param``, has no file)."""
    from policykit.errors import ParameterError
    from policykit.ir.check import check_params

    refuse_unknown_packs(packs, keys, where)
    for pack in packs:
        try:
            check_params(pack, params.get(pack.name, {}))
        except ParameterError as exc:
            if exc.loc is None and exc.pack is not None:
                exc.loc = where.get((exc.pack, exc.param))
            raise
