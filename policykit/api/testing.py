"""``test`` as a whole: collect policykit rule tests, gator suites and
``kyverno test`` files, run them, and decide the exit code. ``policykit
test`` is this plus option parsing and rendering."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policykit.api.checks import gatekeeper_engine
from policykit.api.config import UsageError, as_tuples, one_of
from policykit.errors import EXIT_FINDINGS, EXIT_INPUT, EXIT_OK, ErrorList, PolicykitError

_MARK = {"pass": "PASS", "fail": "FAIL", "skipped": "SKIP", "error": "ERROR"}


@dataclass(frozen=True, slots=True)
class TestConfig:
    """A ``test`` run: the files (default: ``tests:`` of the configuration,
    else ``tests/``), where Gatekeeper templates run (``auto``, ``opa``,
    ``rego``) and which cases (a regular expression over ``SUITE/NAME``)."""

    __test__ = False  # not a pytest class

    paths: tuple[str, ...] = ()
    engine: str = "auto"
    run: str | None = None

    def __post_init__(self) -> None:
        import re

        as_tuples(self, "paths")
        one_of("engine", self.engine, ("auto", "opa", "rego"))
        if self.run is not None:
            try:
                re.compile(self.run)
            except re.error as exc:
                raise UsageError(f"run {self.run!r} is not a regular expression: {exc}") from None


@dataclass(slots=True)
class TestResult:
    """Every case (a malformed file is an ``error`` case) and the input errors."""

    __test__ = False

    cases: list[Any]
    errors: list[PolicykitError]

    @property
    def exit_code(self) -> int:
        if self.errors:
            return EXIT_INPUT
        return EXIT_FINDINGS if any(c.status == "fail" for c in self.cases) else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        from policykit import reports

        return reports.cases_json(self.cases)

    def table(self, quiet: bool = False) -> str:
        """A line per case and a summary (``quiet``: the failures only)."""
        cases = self.cases
        lines = [
            f"{_MARK[c.status]}  {c.suite} / {c.name}"
            + ("" if c.status == "pass" else f"  — {c.reason}  ({c.file}:{c.line})")
            for c in cases
            if not quiet or c.status in ("fail", "error")
        ]
        n = {s: sum(1 for c in cases if c.status == s) for s in _MARK}
        if not quiet:
            errors = n["error"]
            lines.append(
                f"{len(cases)} case{'' if len(cases) == 1 else 's'}: {n['pass']} passed, "
                f"{n['fail']} failed, {n['skipped']} skipped (unsupported)"
                + (f", {errors} input error{'' if errors == 1 else 's'}" if errors else "")
            )
        return "".join(line + "\n" for line in lines)


def configured_tests() -> list[str]:
    """What ``test`` runs with no paths: ``tests:`` of the configuration found
    from the working directory, else ``tests/`` beside it (or here)."""
    from policykit.config import find_config
    from policykit.safeio import is_dir

    cfg = find_config()
    if cfg.tests:
        return [_shown(Path(p)) for p in cfg.tests]
    default = (cfg.base if cfg.file else Path.cwd()) / "tests"
    if not is_dir(default):
        where = f"tests: in {cfg.file}" if cfg.file else "tests: in policykit.yaml"
        raise UsageError(f"no PATHS given, none configured ({where}) and no {default}")
    return [_shown(default)]


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is under it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        return str(path)


def run_tests(config: TestConfig) -> TestResult:
    """Run the cases of ``config``; a bad file is an error case of the result
    (every other file's results stay) and one of its errors."""
    from policykit.existing.suites import collect, error_case

    rx = re.compile(config.run) if config.run else None
    paths = list(config.paths) or configured_tests()
    cases, errors = collect(paths, gatekeeper_engine(config.engine))
    if rx is not None:
        cases = [c for c in cases if rx.search(f"{c.suite}/{c.name}")]
    singles = [e for err in errors for e in (err.errors if isinstance(err, ErrorList) else [err])]
    cases += [error_case(e) for e in singles]
    return TestResult(cases, singles)
