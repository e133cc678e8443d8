"""``check``'s plain text report: one line per finding, then a summary line.

What ``policykit check`` prints when its output is not a terminal (piped, a CI
log, ``--output FILE``) and what ``--format text`` prints anywhere; api users
get it from ``reports.render(report, "text")``. The line follows the
``FILE:LINE: ...`` convention of compilers and linters (gcc, mypy, ruff's
``concise`` format, eslint's ``unix`` format), so editors, ``grep`` and CI log
matchers read it::

    deploy/api.yaml:12: deny FINOPS-001 Deployment/prod/api: message

* ``FILE`` is the path as given (``<stdin>`` for standard input); ``:LINE`` is
  left out when the line is unknown (0);
* then the severity (``deny``, ``warn``, ``info``), the rule id and the object
  (``Kind/namespace/name``, ``Kind/name`` without a namespace), a colon, and the
  message;
* every line is one line: a control character (a line break, a tab, an escape
  sequence), U+2028/U+2029 or a byte that is not UTF-8, in the message, the
  object or the path, is written ``\\xNN``/``\\uNNNN``, as file names already are
  (:func:`policykit.loader.safe_name`); user text is never interpreted as markup;
* baselined and waived findings are left out (the summary counts them);
* the summary line, ``N objects in M files: X deny, Y warn, Z info; ...``, ends
  the report unless ``quiet``.

Formatting is a few string operations per finding (82k findings in well under a
second: ``benchmarks/bench_report.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from policykit.loader import safe_name
from policykit.wording import plural

if TYPE_CHECKING:
    from policykit.api import CheckReport
    from policykit.model import Finding

STDIN = "<stdin>"


def one_line(text: str) -> str:
    """``text`` with what would break a line or drive a terminal (control
    characters, escape sequences, U+2028/U+2029, undecodable bytes) written
    ``\\xNN``/``\\uNNNN``, as :func:`policykit.loader.safe_name` writes file names."""
    # isprintable() is False for everything safe_name escapes (and more): one C pass
    return text if text.isprintable() else safe_name(text)


def finding_line(f: Finding) -> str:
    """The one line of ``f`` (without its line break)."""
    where = f"{f.file or STDIN}:{f.line}" if f.line else f.file or STDIN
    return one_line(f"{where}: {f.severity} {f.rule} {f.object}: {f.message}")


def summary_parts(report: CheckReport) -> list[tuple[str, str]]:
    """The summary line as ``(text, tone)`` pieces; a tone (``deny``, ``warn``
    or empty) is how a terminal colours the piece (policykit/cli/render.py)."""
    c = report.counts()
    parts = [
        (f"{plural(report.objects, 'object')} in {plural(report.files, 'file')}: ", ""),
        (f"{c['deny']} deny", "deny" if c["deny"] else ""),
        (", ", ""),
        (f"{c['warn']} warn", "warn" if c["warn"] else ""),
        (f", {c['info']} info", ""),
    ]
    if report.fixed is not None:
        baselined = sum(f.baselined for f in report.findings)
        fixed = plural(report.fixed, "baseline entry", "baseline entries")
        parts.append((f"; {baselined} baselined (not shown), {fixed} fixed", ""))
    waived = sum(f.waiver is not None for f in report.findings)
    if waived:
        parts.append((f"; {waived} waived (not shown)", ""))
    if report.expired_waivers:
        parts.append((f"; {plural(len(report.expired_waivers), 'expired waiver')}", "deny"))
    if report.stale_waivers:
        parts.append((f"; {plural(len(report.stale_waivers), 'stale waiver')}", "warn"))
    if report.skipped:
        parts.append((f"; {plural(len(report.skipped), 'document')} skipped (not objects)", ""))
    if report.unsupported:
        n = plural(len(report.unsupported), "policy", "policies")
        parts.append((f"; {n} skipped (unsupported)", "warn"))
    if report.errors:
        parts.append((f"; {plural(len(report.errors), 'input error')}", "deny"))
    return parts


def summary_line(report: CheckReport) -> str:
    return "".join(text for text, _ in summary_parts(report))


def text(report: CheckReport, *, quiet: bool = False) -> str:
    """The text report: a line per finding that is neither baselined nor
    waived, then the summary line unless ``quiet``."""
    lines = [finding_line(f) for f in report.findings if not f.accepted]
    if not quiet:
        lines.append(summary_line(report))
    return "\n".join(lines) + "\n" if lines else ""
