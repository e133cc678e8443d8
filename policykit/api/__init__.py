"""The library policykit's command line is a shell over.

To check objects and decide tool calls from a program, use
:class:`policykit.Policy` (``policykit.library``, re-exported here; see
``docs/python.md``). :func:`check` loads files and directories as
``policykit check`` does:

>>> from policykit.api import check
>>> report = check(["examples/catalog"], packs=["policykit.packs.starter"])
>>> report.objects > 0 and all(f.file.startswith("examples/catalog") for f in report.findings)
True

Given a :class:`CheckConfig` it does all ``policykit check`` does (configuration,
CRDs, existing policies, baseline, waivers) and the report says the exit code;
:func:`build` takes a :class:`BuildConfig` and returns what ``policykit build``
writes:

>>> from policykit.api import CheckConfig
>>> report = check(CheckConfig(paths=("examples/catalog",), packs=("policykit.packs.starter",)))
>>> report.exit_code == (1 if report.reaches("deny") else 0)
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

from policykit.api.checking import CATALOG_PACK as CATALOG_PACK
from policykit.api.checking import ENGINES as ENGINES
from policykit.api.checking import CheckReport as CheckReport
from policykit.api.checking import Selection as Selection
from policykit.api.checking import check_entries as check_entries
from policykit.api.checking import check_paths as check_paths
from policykit.api.checking import check_stream as check_stream
from policykit.api.checking import make_engine as make_engine
from policykit.api.checking import resolve as resolve
from policykit.api.checks import ShowProgress
from policykit.api.checks import run as _run
from policykit.api.config import BuildConfig as BuildConfig
from policykit.api.config import CheckConfig as CheckConfig
from policykit.api.config import UsageError as UsageError
from policykit.loader import DEFAULT_EXCLUDE, DEFAULT_INCLUDE

if TYPE_CHECKING:
    from policykit.api.building import BuildResult as BuildResult
    from policykit.api.building import build as build
    from policykit.api.testing import TestConfig as TestConfig
    from policykit.api.testing import TestResult as TestResult
    from policykit.api.testing import run_tests as test
    from policykit.api.verifying import VerifyConfig as VerifyConfig
    from policykit.api.verifying import VerifyResult as VerifyResult
    from policykit.api.verifying import verify as verify
    from policykit.library import Decision as Decision
    from policykit.library import ObjectError as ObjectError
    from policykit.library import Policy as Policy

# build, test, verify and the library load on first use: ``policykit check`` of
# one file imports none of them (start-up, issue 21; tests/test_startup.py)
_LAZY = {
    "BuildResult": ("policykit.api.building", "BuildResult"),
    "build": ("policykit.api.building", "build"),
    "TestConfig": ("policykit.api.testing", "TestConfig"),
    "TestResult": ("policykit.api.testing", "TestResult"),
    "test": ("policykit.api.testing", "run_tests"),
    "VerifyConfig": ("policykit.api.verifying", "VerifyConfig"),
    "VerifyResult": ("policykit.api.verifying", "VerifyResult"),
    "verify": ("policykit.api.verifying", "verify"),
    "Decision": ("policykit.library", "Decision"),
    "ObjectError": ("policykit.library", "ObjectError"),
    "Policy": ("policykit.library", "Policy"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'policykit.api' has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


@overload
def check(
    config: CheckConfig,
    /,
    *,
    progress: ShowProgress | None = None,
) -> CheckReport: ...


@overload
def check(
    paths: Sequence[str],
    *,
    packs: Sequence[str] = (),
    params: Mapping[str, Mapping[str, Any]] | None = None,
    include: Sequence[str] = DEFAULT_INCLUDE,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    jobs: int = 1,
) -> CheckReport: ...


def check(
    paths: CheckConfig | Sequence[str],
    *,
    packs: Sequence[str] = (),
    params: Mapping[str, Mapping[str, Any]] | None = None,
    include: Sequence[str] = DEFAULT_INCLUDE,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    jobs: int = 1,
    progress: ShowProgress | None = None,
) -> CheckReport:
    """Given a :class:`CheckConfig`: ``policykit check`` without its rendering.
    Given paths: load them and evaluate ``packs`` (default: the shipped packs),
    nothing else (no configuration, baseline or waivers); ``jobs`` > 1: a large
    run on that many processes (the same report)."""
    if isinstance(paths, CheckConfig):
        return _run(paths, progress)
    return check_paths(
        paths, packs=packs, params=params, include=include, exclude=exclude, jobs=jobs
    )


__all__ = [
    "CATALOG_PACK",
    "ENGINES",
    "BuildConfig",
    "BuildResult",
    "CheckConfig",
    "CheckReport",
    "Decision",
    "ObjectError",
    "Policy",
    "Selection",
    "TestConfig",
    "TestResult",
    "UsageError",
    "VerifyConfig",
    "VerifyResult",
    "build",
    "check",
    "check_entries",
    "check_paths",
    "check_stream",
    "make_engine",
    "resolve",
    "test",
    "verify",
]
