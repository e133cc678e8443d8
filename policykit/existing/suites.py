"""``policykit test``: gator ``Suite`` files and ``kyverno-test.yaml`` files,
run without the Go binaries.

Every expectation becomes one :class:`CaseResult` — a gator assertion, or a
kyverno result x resource — with status ``pass``, ``fail`` or ``skipped``
(what the case needs and policykit does not run: the reason names it).
Malformed or missing files are :class:`~policykit.errors.InputError` s,
collected and raised together (exit 2), never a pass.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from policykit.errors import InputError, PolicykitError, SourceLoc, raise_all
from policykit.existing.malformed import MALFORMED, malformed
from policykit.existing.suites_common import error_case as error_case
from policykit.existing.suites_gator import _expect as _expect
from policykit.existing.suites_gator import _Templates
from policykit.existing.suites_gator import run_gator as run_gator
from policykit.existing.suites_kyverno import run_kyverno_test as run_kyverno_test
from policykit.k8s import gatekeeper as gk
from policykit.loader import load_file
from policykit.rule_tests import CaseResult as CaseResult
from policykit.rule_tests import CaseStatus as CaseStatus
from policykit.safeio import is_dir, missing, read_text

SUITE_API = "test.gatekeeper.sh/v1alpha1"
KYVERNO_TEST_API = "cli.kyverno.io/"
# a policykit Test (policykit/rule_tests.py), malformed or not
_PK_TEST_API = re.compile(r"^apiVersion:[ \t]*['\"]?policykit\.dev/v1alpha1['\"]?[ \t]*$", re.M)
_PK_TEST_KIND = re.compile(r"^kind:[ \t]*['\"]?Test['\"]?[ \t]*$", re.M)

# --- discovery ---------------------------------------------------------------------------


_KYVERNO_TESTS = ("kyverno-test.yaml", "kyverno-test.yml")


def _walk(paths: Iterable[str]) -> Iterator[Path]:
    """YAML files under ``paths``. Hidden directories are walked for kyverno
    tests only: ``kyverno test <dir>`` descends into every directory, hidden
    ones included (``.kyverno-test/``), looking for ``kyverno-test.yaml``
    (cmd/cli/kubectl-kyverno/test/load.go, loadLocalTest); ``.git`` is not
    walked."""
    for p in paths:
        path = Path(p)
        if not is_dir(path):
            yield path
            continue
        found: list[Path] = []
        for root, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if d != ".git"]
            hidden = any(part.startswith(".") for part in Path(root).relative_to(path).parts)
            for name in files:
                if not name.endswith((".yaml", ".yml")):
                    continue
                if (hidden or name.startswith(".")) and name not in _KYVERNO_TESTS:
                    continue
                f = Path(root) / name
                if f.is_file():
                    found.append(f)
        yield from sorted(found)


def run(paths: Sequence[str], engine: gk.Engine = "rego") -> list[CaseResult]:
    """Every case under ``paths`` (see :func:`collect`); any input error is
    raised (all of them together) instead of returned."""
    results, errors = collect(paths, engine)
    raise_all(errors)
    return results


def loc0(path: Path) -> SourceLoc:
    return SourceLoc(path.as_posix(), 1)


def collect(
    paths: Sequence[str], engine: gk.Engine = "rego"
) -> tuple[list[CaseResult], list[PolicykitError]]:
    """Every policykit test, gator suite and kyverno test under ``paths``
    (files or directories), and the input errors met on the way (a bad file
    never hides the results of the others). In directories, policykit tests
    (``policykit.dev/v1alpha1`` ``Test``) and gator suites are recognised by
    their apiVersion/kind and kyverno tests by the name ``kyverno-test.yaml``;
    a file named explicitly is read as any of them."""
    results: list[CaseResult] = []
    errors: list[PolicykitError] = []
    templates = _Templates(engine)
    explicit = {Path(p) for p in paths if not is_dir(p)}
    found = 0
    for path in _walk(paths):
        if missing(path):
            errors.append(InputError("no such file or directory", loc=SourceLoc(path.as_posix())))
            continue
        try:
            text = read_text(path, name=path.as_posix(), error=InputError)
        except PolicykitError as exc:
            errors.append(exc)
            continue
        if path.name in ("kyverno-test.yaml", "kyverno-test.yml") or (
            path in explicit and KYVERNO_TEST_API in text and "kind: Test" in text
        ):
            found += 1
            try:
                got, errs = run_kyverno_test(path, text)
            except MALFORMED as exc:  # what the finer checks did not catch: this file alone
                got, errs = [], [malformed("a policy or resource of the test", loc0(path), exc)]
            results += got
            errors += errs
            continue
        if _PK_TEST_API.search(text) and _PK_TEST_KIND.search(text):
            from policykit import rule_tests

            found += 1
            got, errs = rule_tests.run_test_file(path, text)
            results += got
            errors += errs
            continue
        if "test.gatekeeper.sh" not in text and path not in explicit:
            continue
        loaded = load_file(path, path.as_posix())
        if path in explicit:
            errors += loaded.errors
        for doc in loaded.documents:
            if doc.obj.get("apiVersion") == SUITE_API and doc.obj.get("kind") == "Suite":
                found += 1
                try:
                    got, errs = run_gator(doc, text, templates)
                except MALFORMED as exc:  # what the finer checks did not catch: this suite
                    where = SourceLoc(doc.file, doc.line)
                    got, errs = [], [malformed("a template, constraint or object", where, exc)]
                results += got
                errors += errs
    if not found and not errors:
        errors.append(
            InputError(
                "no policykit Test, gator Suite or kyverno-test.yaml found",
                loc=SourceLoc(", ".join(paths)),
                hint="name test files or their folders",
            )
        )
    return results, errors
