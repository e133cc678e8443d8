"""check's default output (issue 21): a line per finding when the output is not a
terminal (policykit/reports_text.py), a summary by rule with the first findings
and "… and K more" on a terminal (policykit/cli/render.py ``print_summary``)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from rich.console import Console
from rich.text import Text

from policykit import reports
from policykit.api import CheckReport
from policykit.cli import render
from policykit.cli.main import cli
from policykit.model import Finding, ObjectRef, WaiverRef
from policykit.reports_text import finding_line
from tests.conftest import ROOT
from tests.test_cli_conventions import BAD_POD, PACK, _env, _invoke, in_pty


def _finding(
    name: str,
    message: str = "uses the host network",
    *,
    rule: str = "P-001",
    severity: str = "deny",
    file: str = "pods.yaml",
    line: int = 1,
    namespace: str = "prod",
    **kw: object,
) -> Finding:
    obj = ObjectRef("v1", "Pod", namespace, name)
    return Finding(rule, "p", severity, message, obj, file=file, line=line, **kw)  # type: ignore[arg-type]


def _report(findings: list[Finding], **kw: object) -> CheckReport:
    files = len({f.file for f in findings}) or 1
    objects = len({str(f.object) for f in findings})
    return CheckReport([], findings, [], [], files, objects, **kw)  # type: ignore[arg-type]


# --- the line ---------------------------------------------------------------------------


def test_a_finding_is_one_grep_friendly_line() -> None:
    f = _finding("api", file="deploy/api.yaml", line=12)
    assert finding_line(f) == "deploy/api.yaml:12: deny P-001 Pod/prod/api: uses the host network"
    # no line known: FILE: only; no file (a stream): <stdin>; no namespace: Kind/name
    assert (
        finding_line(_finding("a", line=0))
        == "pods.yaml: deny P-001 Pod/prod/a: uses the host network"
    )
    assert finding_line(_finding("a", file="", line=3, namespace="")) == (
        "<stdin>:3: deny P-001 Pod/a: uses the host network"
    )


def test_user_text_stays_on_one_line_and_is_never_markup() -> None:
    f = _finding("web", "first\nsecond\tthird \x1b[31mred\x1b[0m [bold]x[/bold] \u2028end")
    assert finding_line(f) == (
        "pods.yaml:1: deny P-001 Pod/prod/web: first\\x0asecond\\x09third "
        "\\x1b[31mred\\x1b[0m [bold]x[/bold] \\u2028end"
    )
    # a file name's undecodable byte (kept by surrogateescape) as the loader writes it,
    # and an object name with a line break (a malformed object) alike
    f = _finding("a\nb", file="caf\udce9.yaml")
    assert finding_line(f) == "caf\\xe9.yaml:1: deny P-001 Pod/prod/a\\x0ab: uses the host network"


def test_text_report_lists_what_fails_then_the_summary() -> None:
    waived = WaiverRef("accepted", "team-a", "2030-01-01")
    findings = [
        _finding("a"),
        _finding("b", rule="P-002", severity="warn", message="no [owner, costCenter]"),
        _finding("c", baselined=True),
        _finding("d", waiver=waived),
    ]
    report = _report(findings, fixed=2)
    assert reports.render(report, "text") == (
        "pods.yaml:1: deny P-001 Pod/prod/a: uses the host network\n"
        "pods.yaml:1: warn P-002 Pod/prod/b: no [owner, costCenter]\n"
        "4 objects in 1 file: 1 deny, 1 warn, 0 info; 1 baselined (not shown), "
        "2 baseline entries fixed; 1 waived (not shown)\n"
    )
    assert reports.render(report, "text", quiet=True) == (
        "pods.yaml:1: deny P-001 Pod/prod/a: uses the host network\n"
        "pods.yaml:1: warn P-002 Pod/prod/b: no [owner, costCenter]\n"
    )


# --- the terminal -----------------------------------------------------------------------


def _terminal(report: CheckReport, limit: int = render.DEFAULT_LIMIT, width: int = 120) -> str:
    buffer = io.StringIO()
    con = Console(file=buffer, force_terminal=True, width=width, color_system="standard")
    render.print_summary(con, report, limit)
    return buffer.getvalue()


def _plain(text: str) -> list[str]:
    return [line.rstrip() for line in Text.from_ansi(text).plain.splitlines()]


def test_terminal_summary_groups_by_rule_lists_the_first_and_counts_the_rest() -> None:
    findings = [_finding(f"p{i:02}", file=f"p{i:02}.yaml") for i in range(30)]
    findings += [_finding(f"q{i}", rule="P-002", severity="warn") for i in range(5)]
    findings += [_finding(f"r{i}", rule="P-003", severity="deny") for i in range(2)]
    out = _terminal(_report(findings), limit=4)
    assert "\x1b[1;31mdeny" in out and "\x1b[33mwarn" in out  # coloured: a terminal
    lines = _plain(out)
    # by rule: the most severe first, then the most frequent; three objects, then …
    assert lines[0].split() == ["rule", "severity", "findings", "objects"]
    assert set(lines[1]) == {"─"}
    assert lines[2:6] == [
        "P-001  deny            30  Pod/prod/p00, Pod/prod/p01, Pod/prod/p02, …",
        "P-003  deny             2  Pod/prod/r0, Pod/prod/r1",
        "P-002  warn             5  Pod/prod/q0, Pod/prod/q1, Pod/prod/q2, …",
        "",
    ]
    # the first four under their files, then how many are left, then the summary
    assert lines[6:] == [
        *(
            line
            for i in range(4)
            for line in (f"p0{i}.yaml", f"  1  deny  P-001  Pod/prod/p0{i}  uses the host network")
        ),
        "… and 33 more (--limit 0 lists all; piped or --format text: a line each)",
        "37 objects in 31 files: 32 deny, 5 warn, 0 info",
    ]


def test_terminal_with_few_findings_lists_them_without_grouping() -> None:
    findings = [_finding("a", "[bold]literal[/bold]"), _finding("b", rule="P-002", line=12)]
    assert _plain(_terminal(_report(findings))) == [
        "pods.yaml",
        "   1  deny  P-001  Pod/prod/a  [bold]literal[/bold]",
        "  12  deny  P-002  Pod/prod/b  uses the host network",
        "2 objects in 1 file: 2 deny, 0 warn, 0 info",
    ]
    # --limit 0: every finding, no "… and K more" however many
    many = [_finding(f"p{i}") for i in range(50)]
    lines = _plain(_terminal(_report(many), limit=0))
    assert len([ln for ln in lines if ln.startswith("  1  deny  P-001  Pod/prod/p")]) == 50
    assert lines[-1] == "50 objects in 1 file: 50 deny, 0 warn, 0 info"
    assert not [ln for ln in lines if "more" in ln]


def test_terminal_never_passes_on_an_escape_sequence_from_user_text() -> None:
    """rich prints ESC as is: a manifest could set the terminal's title or worse."""
    evil = "\x1b]0;pwned\x07\x1b[2J"
    findings = [_finding(f"x{evil}", f"two\nlines {evil}", file=f"a{evil}.yaml")] * 3
    buffer = io.StringIO()
    con = Console(file=buffer, force_terminal=True, width=200, color_system=None)
    render.print_summary(con, _report(findings), limit=1)
    out = buffer.getvalue()
    assert "\x1b" not in out and "\x07" not in out
    escaped = "\\x1b]0;pwned\\x07\\x1b[2J"
    assert out.splitlines()[2] == f"P-001  deny             3  Pod/prod/x{escaped}"
    assert out.splitlines()[4:6] == [
        f"a{escaped}.yaml",
        f"  1  deny  P-001  Pod/prod/x{escaped}  two\\x0alines {escaped}",
    ]


def test_quiet_on_a_terminal_lists_the_findings_and_what_is_left_only() -> None:
    many = [_finding(f"p{i}") for i in range(30)]
    with click.Context(cli, obj=render.Ui(quiet=True)):
        lines = _plain(_terminal(_report(many), limit=2))
    assert lines == [
        "pods.yaml",
        "  1  deny  P-001  Pod/prod/p0  uses the host network",
        "  1  deny  P-001  Pod/prod/p1  uses the host network",
        "… and 28 more (--limit 0 lists all; piped or --format text: a line each)",
    ]


# --- the command ------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "p.py").write_text(PACK)
    (tmp_path / "policykit.yaml").write_text("packs: [p.py]\n")
    for i in range(25):
        (tmp_path / f"pod{i:02}.yaml").write_text(BAD_POD % f"pod{i:02}")
    return tmp_path


def test_check_on_a_terminal_summarises_and_piped_lists_every_finding(repo: Path) -> None:
    code, shown, _ = in_pty(["--no-color", "check", "."], repo, stderr_tty=False)
    assert code == 1
    lines = [ln.rstrip() for ln in shown.replace("\r\n", "\n").splitlines()]
    assert lines[2] == "P-001  deny            25  Pod/pod00, Pod/pod01, Pod/pod02, …"
    assert lines[4:8] == [
        "pod00.yaml",
        "  1  deny  P-001  Pod/pod00  pod00 uses the host network",
        "pod01.yaml",
        "  1  deny  P-001  Pod/pod01  pod01 uses the host network",
    ]
    assert len([ln for ln in lines if ln.startswith("  1  deny")]) == render.DEFAULT_LIMIT
    assert lines[-2:] == [
        "… and 5 more (--limit 0 lists all; piped or --format text: a line each)",
        "25 objects in 25 files: 25 deny, 0 warn, 0 info",
    ]
    code, shown, _ = in_pty(["--no-color", "check", ".", "--limit", "3"], repo, stderr_tty=False)
    assert "… and 22 more" in shown
    # --format text on a terminal, and piped: a line each
    code, shown, _ = in_pty(["check", ".", "--format", "text"], repo, stderr_tty=False)
    piped = _invoke(["check", "."], repo)
    for text in (shown.replace("\r\n", "\n"), piped.stdout):
        assert text.splitlines()[:2] == [
            "pod00.yaml:1: deny P-001 Pod/pod00: pod00 uses the host network",
            "pod01.yaml:1: deny P-001 Pod/pod01: pod01 uses the host network",
        ]
        assert len(text.splitlines()) == 26


def test_output_file_gets_the_lines_and_quiet_leaves_out_the_summary(repo: Path) -> None:
    r = CliRunner().invoke(cli, ["-q", "check", str(repo), "-o", str(repo / "r.txt")])
    assert r.exit_code == 1 and r.stdout == ""
    lines = (repo / "r.txt").read_text().splitlines()
    assert len(lines) == 25 and lines[0].endswith(
        "pod00.yaml:1: deny P-001 Pod/pod00: pod00 uses the host network"
    )


def test_piped_output_imports_no_rich(repo: Path) -> None:
    code = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: sys.__stderr__.write('\\nRICH ' + json.dumps("
        "sorted(m for m in sys.modules if m == 'rich' or m.startswith('rich.')))))\n"
        "from policykit.cli.main import main\n"
        "sys.argv = ['policykit', 'check', '.']\n"
        "main()\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, env=_env()
    )
    assert r.returncode == 1, r.stderr
    assert len(r.stdout.splitlines()) == 26
    assert json.loads(r.stderr.rpartition("RICH ")[2]) == []


def test_a_closed_pipe_ends_quietly(repo: Path) -> None:
    for i in range(25, 2000):
        (repo / f"pod{i:02}.yaml").write_text(BAD_POD % f"pod{i}")
    head = subprocess.run(
        f"{sys.executable} -m policykit check . | head -1",
        shell=True,
        capture_output=True,
        text=True,
        cwd=repo,
        env=_env(),
    )
    assert head.stdout == "pod00.yaml:1: deny P-001 Pod/pod00: pod00 uses the host network\n"
    assert head.stderr == ""


def _console_block(command: str) -> list[str]:
    """The output under ``$ COMMAND`` in a README ``console`` block."""
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(f"$ {command}\n") + len(command) + 3 :]
    return block[: block.index("```")].rstrip("\n").split("\n")


def test_the_readme_shows_what_check_prints() -> None:
    piped = subprocess.run(
        [sys.executable, "-m", "policykit", "check", "examples/kubernetes"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert piped.stdout.splitlines() == _console_block("policykit check examples/kubernetes | cat")
    code, shown, _ = in_pty(
        ["--no-color", "check", "examples", "--limit", "4"], ROOT, stderr_tty=False, cols=100
    )
    assert code == 1
    shown_lines = [ln.rstrip() for ln in shown.replace("\r\n", "\n").rstrip("\n").split("\n")]
    assert shown_lines == _console_block("policykit check examples --limit 4")


def test_render_text_is_what_the_command_prints(repo: Path) -> None:
    from policykit import api

    report = api.check(api.CheckConfig(paths=(str(repo),), packs=(str(repo / "p.py"),)))
    for args in (["--format", "text"], []):
        r = CliRunner().invoke(cli, ["check", str(repo), "--pack", str(repo / "p.py"), *args])
        assert r.exit_code == 1 and r.stdout == reports.render(report, "text")
    quiet = CliRunner().invoke(cli, ["-q", "check", str(repo), "--pack", str(repo / "p.py")])
    assert quiet.stdout == reports.render(report, "text", quiet=True)
    assert quiet.stdout.count("\n") == 25


def test_every_command_leaves_a_closed_pipe_to_main(capfd: pytest.CaptureFixture[str]) -> None:
    """handle_errors wraps every command: a BrokenPipeError (``policykit ... |
    head``) is not an "internal error" (exit 3) there; it reaches click, which
    ends quietly with exit 1, as main() does."""
    from policykit.cli.options import handle_errors

    @click.command()
    @handle_errors
    def writer() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    saved = sys.stdout, sys.stderr  # click swaps in flush-pacifying wrappers
    try:
        with pytest.raises(SystemExit) as exit_:
            writer.main([], standalone_mode=False)
    finally:
        sys.stdout, sys.stderr = saved
    assert exit_.value.code == 1
    assert "internal error" not in capfd.readouterr().err
