"""What the test-file runners share (policykit test, issue 19/22): input
errors as cases, files named by a test file, and the structural check of a
test file against its schema in ``schemas/``."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policykit.errors import InputError, PolicykitError, SourceLoc
from policykit.loader import load_file
from policykit.loader.lines import YamlLines
from policykit.model import Document
from policykit.resources import load_schema
from policykit.rule_tests import CaseResult
from policykit.safeio import is_file

if TYPE_CHECKING:
    import jsonschema


def error_case(err: PolicykitError) -> CaseResult:
    """An input error as a case of the report (status ``error``), so a bad file
    is listed beside every other file's results rather than replacing them."""
    file = err.loc.file if err.loc else ""
    reason = f"{err.code} {err.message}" + (f" ({err.hint})" if err.hint else "")
    return CaseResult(
        file or "policykit test", err.code, "error", reason, file, err.loc.line if err.loc else 0
    )


def named_objects(
    path: Path, errors: list[PolicykitError], what: str, loc: SourceLoc | None = None
) -> list[Document]:
    if not is_file(path):  # never raises (an over-long name is not a file)
        errors.append(
            InputError(
                f"{what} {path.as_posix()} does not exist",
                loc=loc or SourceLoc(path.as_posix()),
                hint="paths are relative to the file that names them",
            )
        )
        return []
    loaded = load_file(path, path.as_posix())
    errors.extend(loaded.errors)
    return loaded.documents


def relative_path(
    base: Path, ref: Any, loc: SourceLoc, errors: list[PolicykitError]
) -> Path | None:
    if not isinstance(ref, str) or not ref:
        errors.append(InputError("expected a file path", loc=loc))
        return None
    if Path(ref).is_absolute():
        errors.append(InputError(f"absolute path {ref!r} is not allowed", loc=loc))
        return None
    return base / ref


@functools.lru_cache(maxsize=32)
def _validator(schema: str, part: str) -> jsonschema.Draft202012Validator:
    """One validator per schema (and ``$defs`` part) for the whole run."""
    import jsonschema  # when a test file is read, not at start-up

    full = load_schema(schema)
    sub = {"$defs": full["$defs"], "$ref": f"#/$defs/{part}"} if part else full
    return jsonschema.Draft202012Validator(sub)


def shape_error(
    value: Any, schema: str, file: str, lines: YamlLines, what: str, part: str = ""
) -> InputError | None:
    """The first way ``value`` does not fit ``schemas/<schema>`` (or its
    ``$defs/<part>``), one line at the field's line; None when it fits."""
    from jsonschema.exceptions import best_match

    try:
        err = best_match(_validator(schema, part).iter_errors(value))
    except RecursionError:
        return InputError(f"{what} nested too deeply", loc=SourceLoc(file))
    if err is None:
        return None
    path = list(err.absolute_path)
    where = ".".join(str(x) for x in path) or "(top level)"
    message = " ".join(err.message.split())
    if len(message) > 160:
        message = message[:160] + "…"
    return InputError(
        f"not a valid {what}: {where}: {message}",
        loc=SourceLoc(file, lines.line(*path)),
        hint=f"see schemas/{schema}",
    )
