"""Rendering reports for people (rich tables; check's summary on a terminal)
and machines (JSON), and the terminal conventions every command shares:

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
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from itertools import groupby
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

from policykit.frozen import frozen

if TYPE_CHECKING:  # rich and the library load when a command draws (start-up: issue 21)
    from rich.console import Console, RenderableType
    from rich.progress import Progress, TaskID
    from rich.table import Table
    from rich.text import Text

    from policykit.api import CheckReport
    from policykit.ir.rule import Pack
    from policykit.model import Finding

_STYLE = {"deny": "bold red", "warn": "yellow", "info": "cyan"}
_TONE = {"deny": "bold red", "warn": "yellow"}  # the summary's pieces (reports_text)
_OBJECTS_SHOWN = 3  # objects named per rule in the terminal summary
FALLBACK_WIDTH = 160  # no COLUMNS and no terminal at all (a CI log): wide tables
T = TypeVar("T")


@frozen
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


DEFAULT_LIMIT = 20
"""Findings listed in check's terminal summary (``check --limit N``; 0: all)."""


def stdout_is_terminal() -> bool:
    """Whether standard output is a terminal (check's summary), not a pipe or file."""
    out = sys.stdout
    return hasattr(out, "isatty") and out.isatty()


def print_summary(console: Console, report: CheckReport, limit: int = DEFAULT_LIMIT) -> None:
    """``check``'s report on a terminal. When there are more than ``limit``
    findings (0: no limit), first the findings grouped by rule (the rule, its
    severity, how many, the first objects), then the first ``limit`` findings,
    then ``… and K more``; the summary line last, unless ``--quiet`` (which
    also leaves out the grouping). Baselined and waived findings are counted,
    not listed. Piped output lists every finding (policykit/reports_text.py)."""
    from rich.text import Text

    quiet = ui().quiet
    shown = [f for f in report.findings if not f.accepted]
    listed = shown[:limit] if limit else shown
    if len(listed) < len(shown) and not quiet:
        show(console, _by_rule(shown))
        show(console, "")
    if listed:
        _list(console, listed)
    if len(listed) < len(shown):
        more = len(shown) - len(listed)
        show(
            console,
            Text(f"… and {more} more (--limit 0 lists all; piped or --format text: a line each)"),
        )
    if not quiet:
        show(console, summary_text(report))


def _list(console: Console, findings: list[Finding]) -> None:
    """``findings`` under the name of their file, as eslint's ``stylish`` lists
    them: line, severity, rule, object, message; the columns line up across files."""
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    from policykit.reports_text import STDIN, one_line

    objects = [one_line(str(f.object)) for f in findings]
    line_width = max(len(str(f.line)) for f in findings)
    rule_width = max(len(f.rule) for f in findings)
    # the object column gives way to the message on a narrow terminal
    object_width = min(max(len(o) for o in objects), max(12, console.width // 3))
    start = 0
    for file, group in groupby(findings, key=lambda f: f.file):
        rows = list(group)
        table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
        table.add_column(justify="right", style="dim", width=line_width, no_wrap=True)
        table.add_column(width=4, no_wrap=True)
        table.add_column(width=rule_width, no_wrap=True)
        table.add_column(width=object_width, overflow="fold")
        table.add_column(overflow="fold")
        for f, name in zip(rows, objects[start : start + len(rows)], strict=True):
            table.add_row(
                str(f.line) if f.line else "",
                Text(f.severity, style=_STYLE[f.severity]),
                Text(one_line(f.rule)),
                Text(name),
                # user text: never rich markup ("[a, b]" would vanish), never a terminal
                # escape sequence (rich passes ESC through)
                Text(one_line(f.message)),
            )
        start += len(rows)
        show(console, Text(one_line(file or STDIN), style="bold"))
        show(console, Padding(table, (0, 0, 0, 2)))


def _table() -> Table:
    """A table of the summary: a rule under the header, no frame."""
    from rich import box
    from rich.table import Table

    return Table(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), expand=False
    )


def _by_rule(findings: list[Finding]) -> RenderableType:
    """The findings grouped by rule and severity: the most severe first, then
    the most frequent; the first :data:`_OBJECTS_SHOWN` objects of each."""
    from rich.text import Text

    from policykit.ir.rule import SEVERITY_RANK
    from policykit.reports_text import one_line

    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        groups.setdefault((f.rule, f.severity), []).append(f)
    order = sorted(groups.items(), key=lambda kv: (-SEVERITY_RANK[kv[0][1]], -len(kv[1]), kv[0][0]))
    table = _table()
    table.add_column("rule", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("findings", justify="right", no_wrap=True)
    table.add_column("objects", overflow="fold")
    for (rule, severity), group in order:
        objects: list[str] = []
        for f in group:
            name = str(f.object)
            if name not in objects:
                objects.append(name)
                if len(objects) > _OBJECTS_SHOWN:
                    break
        first = one_line(", ".join(objects[:_OBJECTS_SHOWN]))
        table.add_row(
            Text(one_line(rule)),
            Text(severity, style=_STYLE[severity]),
            str(len(group)),
            Text(first + (", …" if len(objects) > _OBJECTS_SHOWN else "")),
        )
    return table


def summary_text(report: CheckReport) -> Text:
    """The summary line (policykit/reports_text.py), coloured as its tones say."""
    from rich.text import Text

    from policykit.reports_text import summary_parts

    line = Text()
    for piece, tone in summary_parts(report):
        line.append(piece, style=_TONE[tone] if tone else "")
    return line


def rules_json(packs: list[Pack]) -> dict[str, Any]:
    from policykit.model import REPORT_VERSION  # the check report's version

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
