"""Errors a user can cause, each with a stable code and one clear line.

Exit codes (documented in README and docs/cli.md):

* 0 — no finding reached the ``--fail-on`` threshold
* 1 — at least one finding reached it (or targets disagree, or a test failed)
* 2 — usage error or bad input (malformed file, bad pack, bad parameter)
"""

from __future__ import annotations

from collections.abc import Sequence

from policykit.frozen import frozen

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_INPUT = 2


@frozen
class SourceLoc:
    """Where a user wrote something: a file and a 1-based line (0 = unknown)."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


class PolicykitError(Exception):
    """Base of every error policykit reports to a user as one line."""

    code = "PK000"
    per_document = False
    """An error one document causes in an engine (a CEL expression that errs on
    it, data an engine would read wrongly): that document's error entry, the
    others still evaluated (:func:`policykit.engines.base.evaluate_guarded`)."""

    def __init__(self, message: str, *, loc: SourceLoc | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.hint = hint

    def one_line(self) -> str:
        where = f"{self.loc}: " if self.loc else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{self.code} {self.message}{hint}"

    def __str__(self) -> str:
        return self.one_line()


class DefinitionError(PolicykitError):
    """A rule or pack is wrong as written (bad severity, regex, operand...)."""

    code = "PK100"

    def __init__(
        self,
        message: str,
        *,
        rule_id: str | None = None,
        loc: SourceLoc | None = None,
        hint: str = "",
        code: str | None = None,
    ) -> None:
        full = f"rule {rule_id}: {message}" if rule_id else message
        super().__init__(full, loc=loc, hint=hint)
        self.rule_id = rule_id
        if code is not None:
            self.code = code


class RegexDialectError(DefinitionError):
    """A pattern outside the regex subset every target agrees on."""

    code = "PK101"


class ParameterError(PolicykitError):
    """A pack parameter value does not fit the pack's parameter schema.
    ``pack``/``param``: which, when known (to say where it was given)."""

    code = "PK102"

    def __init__(
        self,
        message: str,
        *,
        loc: SourceLoc | None = None,
        hint: str = "",
        pack: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, loc=loc, hint=hint)
        self.pack = pack
        self.param = param


class InputError(PolicykitError):
    """A fixture file cannot be read or parsed."""

    code = "PK001"


class ConfigError(PolicykitError):
    """The policykit configuration (pyproject/policykit.yaml/flags) is wrong."""

    code = "PK002"


class PackLoadError(PolicykitError):
    """A pack module or file cannot be found or imported."""

    code = "PK003"


class IRFormatError(PolicykitError):
    """An IR JSON document is malformed or of an unknown version."""

    code = "PK004"


class BundleError(PolicykitError):
    """A bundle that cannot be built, written or read (codes PK3xx); also any
    output file policykit cannot write (:func:`policykit.safeio.write_atomic`)."""

    code = "PK300"


class EngineUnavailable(PolicykitError):
    """An engine that cannot run here (not installed, or its process ended);
    the hint says what to do."""

    code = "PK005"


class PolicyError(PolicykitError):
    """A third-party policy (ConstraintTemplate, Constraint, Kyverno policy)
    its own controller would reject, or that cannot be compiled."""

    code = "PK400"


class ErrorList(PolicykitError):
    """Several errors reported at once (e.g. every rule a target cannot express)."""

    def __init__(self, errors: list[PolicykitError]) -> None:
        super().__init__("; ".join(e.one_line() for e in errors))
        self.errors = errors
        self.code = errors[0].code if errors else "PK000"

    def one_line(self) -> str:
        return self.message

    def lines(self) -> list[str]:
        return [e.one_line() for e in self.errors]


def raise_all(errors: Sequence[PolicykitError]) -> None:
    """Raise the one error, or all of them together; nothing when there is none."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ErrorList(list(errors))
