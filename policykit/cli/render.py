"""Rendering reports for people (rich tables) and machines (JSON), and the
terminal conventions every command shares:

* ``-q/--quiet`` (group option): findings, failures and errors only, no progress,
  summaries or notes;
* colour off with ``--no-color`` or ``NO_COLOR`` set to anything but empty
  (https://no-color.org), and whenever the output is not a terminal;
* width: ``COLUMNS``, else the terminal's (of whichever standard stream is one:
  ``policykit check | less`` in a terminal wraps to it), else 160 (a CI log);
* no line ends in spaces;
* a progress bar on standard error while a long run works, only when standard
  error is a terminal and not ``--quiet``: piped or redirected, nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:  # rich and the library load when a command draws (start-up: issue 21)
    from rich.console import Console, RenderableType
    from rich.progress import Progress, TaskID

    from policykit.api import CheckReport
    from policykit.ir.rule import Pack

REPORT_VERSION = 1  # policykit.reports.REPORT_VERSION (the rules document too)
_STYLE = {"deny": "bold red", "warn": "yellow", "info": "cyan"}
FALLBACK_WIDTH = 160  # no COLUMNS and no terminal at all (a CI log): wide tables
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Ui:
    """The group options of ``policykit``: ``-q/--quiet``, ``--no-color``."""

    quiet: bool = False
    color: bool = True


def no_color_env() -> bool:
    """``NO_COLOR`` present and not empty (https://no-color.org)."""
    return bool(os.environ.get("NO_COLOR"))


def ui() -> Ui:
    """The options of the running command (defaults outside one)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return obj if isinstance(obj, Ui) else Ui(color=not no_color_env())


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``2 files``, ``0 files`` (``many``: an irregular plural)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def width() -> int:
    """``COLUMNS``, else the width of a standard stream that is a terminal
    (stdout, stderr, stdin), else :data:`FALLBACK_WIDTH`."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    for fd in (1, 2, 0):
        with contextlib.suppress(OSError, ValueError):
            return os.get_terminal_size(fd).columns
    return FALLBACK_WIDTH


def console(file: IO[str] | None = None, *, stderr: bool = False) -> Console:
    """A console that follows the conventions above: colour only on a terminal
    and not turned off, the width of :func:`width`."""
    from rich.console import Console

    color = ui().color
    return Console(
        file=file,
        stderr=stderr,
        width=width(),
        no_color=not color,
        color_system="auto" if color else None,
        highlight=False,
        emoji=False,
    )


_TAIL = re.compile(r"(?:[ \t]|\x1b\[[0-9;]*m)+$")


def _trim(line: str) -> str:
    """``line`` without trailing blanks (colour codes at its end are kept)."""
    m = _TAIL.search(line)
    if m is None:
        return line
    return line[: m.start()] + re.sub(r"[ \t]+", "", m.group())


def trim_lines(text: str) -> str:
    return "\n".join(_trim(line) for line in text.split("\n"))


def show(con: Console, *renderables: RenderableType, **kwargs: Any) -> None:
    """``con.print`` with no trailing blanks on any line."""
    with con.capture() as captured:
        con.print(*renderables, **kwargs)
    con.file.write(trim_lines(captured.get()))
    con.file.flush()


def render_text(fn: Any, *args: Any) -> str:
    """What ``fn(console, *args)`` prints, as plain text at :func:`width` (for
    ``--output FILE``: no colour, no trailing blanks)."""
    from rich.console import Console

    buffer = io.StringIO()
    con = Console(file=buffer, width=width(), no_color=True, color_system=None, highlight=False)
    fn(con, *args)
    return trim_lines(buffer.getvalue())


class Steps:
    """Progress of a long run on standard error: a bar per phase when standard
    error is a terminal and the run is not ``--quiet``; otherwise nothing."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    @property
    def shown(self) -> bool:
        return self._progress is not None

    def phase(self, name: str, total: int | None) -> None:
        """Start a phase of ``total`` steps (the previous one is complete)."""
        if self._progress is None:
            return
        if self._task is not None:
            task = self._progress.tasks[-1]
            self._progress.update(self._task, completed=task.total or task.completed)
        self._task = self._progress.add_task(name, total=total)

    def advance(self, n: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)

    def over(self, items: Iterable[T]) -> Iterator[T]:
        """``items``, advancing once each has been handled (when the next is asked for)."""
        for item in items:
            yield item
            self.advance()


def progress_shown() -> bool:
    """Whether :func:`steps` draws anything: stderr a terminal, not quiet."""
    err = sys.stderr
    return not ui().quiet and hasattr(err, "isatty") and err.isatty()


@contextlib.contextmanager
def steps(enabled: bool = True) -> Iterator[Steps]:
    """A :class:`Steps` for the duration of the block; the bar is removed at
    its end, so the report that follows stands alone. ``enabled=False``: none
    (a run reading standard input, which may be the terminal being typed in)."""
    if not enabled or not progress_shown():
        yield Steps(None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    con = console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=con,
        transient=True,
    )
    with bar:
        yield Steps(bar)


def report_json(report: CheckReport) -> dict[str, Any]:
    """The ``--format json`` document (:meth:`policykit.api.CheckReport.to_json`)."""
    return report.to_json()


def print_json(console: Console, doc: dict[str, Any]) -> None:
    console.file.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def print_table(console: Console, report: CheckReport) -> None:
    from rich.table import Table
    from rich.text import Text

    shown = [f for f in report.findings if not f.accepted]
    for file, group in groupby(shown, key=lambda f: f.file):
        table = Table(
            title=Text(file or "<stdin>", style="bold"),
            title_justify="left",
            show_lines=False,
            expand=False,
        )
        table.add_column("line", justify="right", style="dim")
        table.add_column("rule", no_wrap=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("object", overflow="fold")
        table.add_column("message", overflow="fold")
        for f in group:
            table.add_row(
                str(f.line),
                f.rule,
                Text(f.severity, style=_STYLE[f.severity]),
                Text(str(f.object)),
                Text(f.message),  # user text, never rich markup ("[a, b]" would vanish)
            )
        show(console, table)
    if ui().quiet:
        return
    c = report.counts()
    summary = Text()
    summary.append(f"{plural(report.objects, 'object')} in {plural(report.files, 'file')}: ")
    summary.append(f"{c['deny']} deny", style=_STYLE["deny"] if c["deny"] else "")
    summary.append(", ")
    summary.append(f"{c['warn']} warn", style=_STYLE["warn"] if c["warn"] else "")
    summary.append(f", {c['info']} info")
    if report.fixed is not None:
        summary.append(
            f"; {sum(f.baselined for f in report.findings)} baselined (not shown), "
            f"{plural(report.fixed, 'baseline entry', 'baseline entries')} fixed"
        )
    waived = sum(f.waiver is not None for f in report.findings)
    if waived:
        summary.append(f"; {waived} waived (not shown)")
    if report.expired_waivers:
        summary.append(
            f"; {plural(len(report.expired_waivers), 'expired waiver')}", style="bold red"
        )
    if report.stale_waivers:
        summary.append(f"; {plural(len(report.stale_waivers), 'stale waiver')}", style="yellow")
    if report.skipped:
        summary.append(f"; {plural(len(report.skipped), 'document')} skipped (not objects)")
    if report.unsupported:
        summary.append(
            f"; {plural(len(report.unsupported), 'policy', 'policies')} skipped (unsupported)",
            style="yellow",
        )
    if report.errors:
        summary.append(f"; {plural(len(report.errors), 'input error')}", style="bold red")
    show(console, summary)


def rules_json(packs: list[Pack]) -> dict[str, Any]:
    return {
        "version": REPORT_VERSION,
        "rules": [
            {
                "id": r.id,
                "pack": p.name,
                "packVersion": p.version,
                "severity": r.severity,
                "title": r.title,
                "description": r.description,
                "remediation": r.remediation,
                "tags": list(r.tags),
            }
            for p in packs
            for r in p.rules
        ],
    }


def print_rules_table(console: Console, packs: list[Pack]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(show_lines=False)
    for col in ("rule", "pack", "severity", "title"):
        table.add_column(col, overflow="fold")
    for p in packs:
        for r in p.rules:
            table.add_row(
                r.id,
                f"{p.name}@{p.version}",
                Text(r.severity, style=_STYLE[r.severity]),
                Text(r.title),
            )
    show(console, table)
