"""What the ``policykit`` commands share: options, error lines, the one
place output is written. Every command module imports from here, and
:mod:`policykit.cli.main` registers them, so no command module imports main.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from policykit.cli import render
from policykit.errors import EXIT_INPUT, ErrorList, PolicykitError

if TYPE_CHECKING:  # the rest loads when a command needs it (start-up: issue 21)
    pass

F = TypeVar("F", bound=Callable[..., Any])
EXIT_INTERNAL = 3


def stderr(line: str) -> None:
    click.echo(line, err=True)


def note(line: str) -> None:
    """An informational line on stderr (what was written, recorded, served);
    ``-q`` leaves it out. Findings, errors and warnings are never notes."""
    if not render.ui().quiet:
        stderr(line)


def error_line(err: PolicykitError) -> str:
    """An error as one line: ``file:line: PKnnn what (hint)`` where it has a
    file, like a compiler's, else ``policykit: PKnnn what (hint)``."""
    text = _single(err.one_line())
    return text if err.loc is not None and err.loc.file else f"policykit: {text}"


def error_lines(err: PolicykitError) -> list[str]:
    """One line per error (an ErrorList holds several)."""
    if isinstance(err, ErrorList):
        return [line for e in err.errors for line in error_lines(e)]
    return [error_line(err)]


def _single(line: str) -> str:
    """One line whatever it quotes (a line break or control character escaped)."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in line)


def handle_errors(fn: F) -> F:
    """Turn user-caused errors into one line + exit 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PolicykitError as exc:
            for line in error_lines(exc):
                stderr(line)
            sys.exit(EXIT_INPUT)
        except (click.exceptions.Exit, click.ClickException, SystemExit, BrokenPipeError):
            raise  # a closed pipe (policykit ... | head): main() ends quietly
        except KeyboardInterrupt:
            stderr("policykit: interrupted")
            sys.exit(130)
        except Exception as exc:
            if os.environ.get("POLICYKIT_DEBUG"):
                raise
            stderr(
                f"policykit: internal error: {type(exc).__name__}: {exc} "
                "(set POLICYKIT_DEBUG=1 for a traceback and please report it)"
            )
            sys.exit(EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]


class LazyChoice(click.Choice[str]):
    """A choice whose values are read when first needed (help, parsing,
    completion): declaring an option imports nothing (start-up, issue 21), and
    the values still come from where they are declared (the target registry)."""

    def __init__(self, load: Callable[[], Sequence[str]]) -> None:
        self._load = load
        self._loaded: tuple[str, ...] | None = None
        super().__init__((), case_sensitive=True)

    @property
    def choices(self) -> tuple[str, ...]:
        if self._loaded is None:
            self._loaded = tuple(self._load())
        return self._loaded

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:  # click.Choice.__init__ sets ()
        pass


def build_targets() -> list[str]:
    """``build --target``: the registry's targets, then ``all``."""
    from policykit.targets import registry

    return registry.build_choices()


def verify_targets() -> list[str]:
    """``verify --target``: the registry's targets and the engines that run them."""
    from policykit.targets import registry

    return registry.verify_choices()


def parse_params(values: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``--param pack.name=VALUE`` (VALUE read as YAML: 3, [a, b], "x")."""
    from policykit.loader.yamlsafe import load_yaml

    out: dict[str, dict[str, Any]] = {}
    for item in values:
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:  # a byte that is not UTF-8 (the shell's, as a surrogate)
            shown = os.fsencode(item).decode("utf-8", "backslashreplace")
            raise click.BadParameter(f"{shown}: not UTF-8 text", param_hint="--param") from None
        key, sep, raw = item.partition("=")
        pack, dot, name = key.partition(".")
        if not sep or not dot or not pack or not name:
            raise click.BadParameter(f"{item!r}: expected PACK.NAME=VALUE", param_hint="--param")
        try:
            value = load_yaml(raw, "--param")  # guarded: "!!bool maybe" is an error
        except PolicykitError:
            raise click.BadParameter(
                f"{item!r}: value is not valid YAML", param_hint="--param"
            ) from None
        out.setdefault(pack, {})[name] = value
    return out


pack_option = click.option(
    "--pack",
    "packs",
    multiple=True,
    metavar="MODULE_OR_FILE",
    help="Pack source: a .py file, an IR .json file or a module name (repeatable). "
    "Default: configuration, else the packs shipped with policykit.",
)
param_option = click.option(
    "--param",
    "params",
    multiple=True,
    metavar="PACK.NAME=VALUE",
    help="Override a pack parameter (VALUE is YAML), repeatable.",
)


crd_option = click.option(
    "--crd",
    "crd_paths",
    multiple=True,
    metavar="FILE_OR_DIR",
    help="CustomResourceDefinition YAML (a file or a folder; repeatable): the custom kinds "
    "rules may select. Default: crds: in the configuration.",
)


def load_crds(paths: list[str]) -> Any:
    """The CRD registry of ``paths`` (PK012 lines, exit 2, when a file is unusable)."""
    from policykit.k8s import crds

    return crds.load(paths)


output_option = click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the report to FILE (atomically) instead of standard output.",
)


def waiver_options(fn: F) -> F:
    """``--waivers FILE`` and ``--today``, shared by check, verify and build."""
    fn = click.option(
        "--today",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        default=None,
        help="The date waivers expire against (default: today, UTC); for reproducible runs.",
    )(fn)
    return click.option(
        "--waivers",
        "waivers_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Waivers file (default: policykit.waivers.yaml in the working directory, if any).",
    )(fn)


def write_output(output: Path | None, text: str) -> None:
    # backslashreplace: a character UTF-8 cannot carry never loses the report
    data = text.encode("utf-8", "backslashreplace")
    if output is None:
        sys.stdout.flush()
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is None:
            sys.stdout.write(data.decode("utf-8"))
        else:
            buffer.write(data)
            buffer.flush()
    else:
        from policykit.safeio import write_atomic

        write_atomic(output, data)
