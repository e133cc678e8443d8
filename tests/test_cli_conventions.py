"""The command line behaves like the tools users know (issue 20): a progress
bar on a terminal only, -q/--quiet, --no-color and NO_COLOR, COLUMNS and the
terminal's width, no trailing blanks, plurals, ``policykit test`` with no
PATHS, ``check .`` skipping what git ignores and build output, top-level YAML
lists skipped, error lines as the README documents them, and ``bundle
inspect``'s entrypoints. What concerns a terminal runs in a pseudo-terminal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from policykit.cli.main import cli
from policykit.cli.render import trim_lines
from policykit.wording import plural
from tests.conftest import ROOT

SGR_COLOUR = re.compile(r"\x1b\[[0-9;]*(?:3[0-9]|9[0-7])[0-9;]*m")  # a foreground colour
TRAILING = re.compile(r"[ \t]+(?:\x1b\[[0-9;]*m)*$")
BAD_POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec: {hostNetwork: true}\n"
PACK = """\
from policykit.dsl import PackBuilder, select

p = PackBuilder("p", "1.0.0")


@p.rule("P-001", title="no host network", severity="deny",
        select=select(kinds=["Pod"]), message="{metadata.name} uses the host network")
def host_network(o):
    return o.spec.hostNetwork.is_true()
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR", "FORCE_COLOR")}
    env.update(TERM="xterm-256color", **extra)
    return env


def in_pty(
    args: list[str],
    cwd: Path,
    *,
    stdout_tty: bool = True,
    stderr_tty: bool = True,
    cols: int = 100,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
) -> tuple[int, str, str]:
    """Run ``policykit ARGS`` with stdout and/or stderr on a pseudo-terminal of
    ``cols`` columns: (exit code, what the terminal showed, what was piped)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "policykit", *args],
        cwd=cwd,
        env=env or _env(),
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=slave if stdout_tty else subprocess.PIPE,
        stderr=slave if stderr_tty else subprocess.PIPE,
    )
    os.close(slave)
    if proc.stdin is not None:  # given bytes: write them and close (end of input)
        proc.stdin.write(stdin or b"")
        proc.stdin.close()
    shown = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            data = os.read(master, 65536)
        except OSError:  # the other end closed (Linux: EIO)
            break
        if not data:
            break
        shown += data
    piped = b""
    if not stdout_tty and proc.stdout is not None:
        piped += proc.stdout.read()
    if not stderr_tty and proc.stderr is not None:
        piped += proc.stderr.read()
    code = proc.wait(timeout=60)
    os.close(master)
    return code, shown.decode("utf-8", "replace"), piped.decode("utf-8", "replace")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository of three bad pods and a one-rule pack in its policykit.yaml."""
    (tmp_path / "p.py").write_text(PACK)
    (tmp_path / "policykit.yaml").write_text("packs: [p.py]\n")
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.yaml").write_text(BAD_POD % name)
    return tmp_path


def _invoke(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Result:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, args, env=env)
    finally:
        os.chdir(old)


# --- progress ----------------------------------------------------------------------------


def test_check_shows_a_progress_bar_when_stderr_is_a_terminal(repo: Path) -> None:
    code, shown, piped = in_pty(["check", "."], repo, stdout_tty=False)
    assert code == 1
    assert "checking (native)" in shown and "3/3" in shown
    assert "\x1b[2K" in shown  # drawn, then erased: the report stands alone
    assert "checking" not in piped and "3 objects in 3 files" in piped


def test_no_progress_bar_when_stderr_is_piped_or_quiet(repo: Path) -> None:
    code, shown, piped = in_pty(["check", "."], repo, stderr_tty=False)
    assert code == 1 and "checking" not in shown + piped and "\x1b[?25l" not in piped
    code, shown, _ = in_pty(["-q", "check", "."], repo)
    assert code == 1 and "checking" not in shown
    assert "P-001" in shown and "objects in" not in shown  # -q: findings, no summary
    # reading standard input (which may be this very terminal): no bar either
    code, shown, _ = in_pty(["check", "-", "a.yaml"], repo, stdin=b"")
    assert code == 1, shown
    assert "checking" not in shown and "1 object in 2 files" in shown


def test_verify_shows_a_bar_per_phase(repo: Path) -> None:
    args = ["verify", ".", "--target", "rego", "--target", "jsonschema"]
    code, shown, piped = in_pty(args, repo, stdout_tty=False)
    assert code == 0, shown + piped
    for phase in ("reading", "reference", "rego", "jsonschema"):
        assert phase in shown, (phase, shown)
    assert "rego             3 objects  agrees" in piped


# --- colour, width, trailing blanks -------------------------------------------------------


def test_colour_on_a_terminal_unless_no_color_or_NO_COLOR(repo: Path) -> None:
    _, shown, _ = in_pty(["check", "."], repo)
    assert SGR_COLOUR.search(shown)
    _, shown, _ = in_pty(["--no-color", "check", "."], repo)
    assert not SGR_COLOUR.search(shown) and "P-001" in shown
    _, shown, _ = in_pty(["check", "."], repo, env=_env(NO_COLOR="1"))
    assert not SGR_COLOUR.search(shown) and "P-001" in shown
    _, shown, _ = in_pty(["check", "."], repo, env=_env(NO_COLOR=""))  # empty: no effect
    assert SGR_COLOUR.search(shown)


def _widest(text: str) -> int:
    return max(len(line) for line in text.replace("\r\n", "\n").split("\n"))


def test_tables_follow_COLUMNS_and_the_terminal_width_piped_lines_never_wrap(
    repo: Path,
) -> None:
    long = "a-rather-long-name-" * 4
    (repo / "a.yaml").write_text(BAD_POD % long)
    # check on a 72-column terminal: its summary fits the terminal (the message wraps)
    _, shown, _ = in_pty(["--no-color", "check", "."], repo, stderr_tty=False, cols=72)
    assert 60 < _widest(shown) <= 72 and "P-001" in shown
    # COLUMNS wins
    env = _env(COLUMNS="50")
    _, shown, _ = in_pty(["--no-color", "check", "."], repo, stderr_tty=False, cols=72, env=env)
    assert _widest(shown) <= 50 and "P-001" in shown
    # piped (stderr a 72-column terminal, or COLUMNS=64): a finding is one line, however long
    _, _, piped = in_pty(["check", "."], repo, stdout_tty=False, cols=72)
    r = _invoke(["check", "."], repo, env={"COLUMNS": "64"})
    line = f"a.yaml:1: deny P-001 Pod/{long}: {long} uses the host network"
    assert len(line) > 72
    for text in (piped, r.stdout):
        assert line in text.splitlines()
    # a table that is piped (rules) still follows COLUMNS
    r = _invoke(["rules", "--pack", "p.py"], repo, env={"COLUMNS": "40"})
    assert 30 < _widest(r.stdout) <= 40
    for text in (piped, r.stdout):
        assert not [ln for ln in text.splitlines() if TRAILING.search(ln)]


def test_no_line_ends_in_blanks(repo: Path) -> None:
    _, shown, _ = in_pty(["check", "."], repo, stderr_tty=False)
    lines = shown.replace("\r\n", "\n").split("\n")
    assert not [ln for ln in lines if TRAILING.search(ln)], lines
    r = _invoke(["check", ".", "-o", "report.txt"], repo)
    text = (repo / "report.txt").read_text()
    assert r.exit_code == 1 and "P-001" in text
    assert not [ln for ln in text.splitlines() if ln != ln.rstrip()]
    r = _invoke(["rules", "--pack", "p.py"], repo)
    assert not [ln for ln in r.stdout.splitlines() if ln != ln.rstrip()]


def test_trim_keeps_colour_codes() -> None:
    assert trim_lines("a  \x1b[0m  \nb \x1b[1m \x1b[0m") == "a\x1b[0m\nb\x1b[1m\x1b[0m"


# --- plurals ------------------------------------------------------------------------------


def test_plural() -> None:
    assert [plural(n, "file") for n in (0, 1, 2)] == ["0 files", "1 file", "2 files"]
    assert plural(1, "policy", "policies") == "1 policy"
    assert plural(3, "policy", "policies") == "3 policies"


def test_one_object_in_one_file(repo: Path) -> None:
    r = _invoke(["check", "a.yaml"], repo)
    assert "1 object in 1 file: 1 deny, 0 warn, 0 info" in r.stdout
    (repo / "x.yaml").write_text("values: {a: 1}\n")
    r = _invoke(["check", "x.yaml", "nowhere.yaml"], repo)
    assert "0 objects in 1 file: " in r.stdout
    assert "1 document skipped (not objects); 1 input error" in r.stdout


def test_no_count_is_spelt_with_a_fixed_plural() -> None:
    """No f-string of the command line puts a count before a fixed plural noun."""
    fixed = re.compile(
        r"\{[^{}]*\} (files|objects|cases|manifests|rules|modules|findings|documents"
        r"|policies|errors|input errors|bytes|entries|waivers|disagreements)\b"
    )
    for path in [*(ROOT / "policykit/cli").glob("*.py"), ROOT / "policykit/reports.py"]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            assert not fixed.search(line), f"{path.name}:{n}: {line.strip()}"


# --- policykit test with no PATHS ---------------------------------------------------------

TEST_FILE = """\
apiVersion: policykit.dev/v1alpha1
kind: Test
metadata: {name: host}
cases:
  - name: host network
    object: {apiVersion: v1, kind: Pod, metadata: {name: x}, spec: {hostNetwork: true}}
    expect: {deny: [P-001]}
"""


def test_test_runs_tests_by_default_and_the_configured_ones(repo: Path) -> None:
    r = _invoke(["test"], repo)
    assert r.exit_code == 2 and "no PATHS given" in r.output and "tests" in r.output
    (repo / "tests").mkdir()
    (repo / "tests/host.test.yaml").write_text(TEST_FILE)
    r = _invoke(["test"], repo)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-1] == "1 case: 1 passed, 0 failed, 0 skipped (unsupported)"
    # tests: in policykit.yaml, relative to it, from a subdirectory too
    (repo / "tests").rename(repo / "checks")
    (repo / "policykit.yaml").write_text("packs: [p.py]\ntests: [checks]\n")
    (repo / "sub").mkdir()
    r = _invoke(["test"], repo / "sub")
    assert r.exit_code == 0, r.output
    assert "PASS  host / host network" in r.stdout
    r = _invoke(["-q", "test"], repo)
    assert r.exit_code == 0 and r.stdout == ""  # -q: failures only


def test_config_schema_knows_tests() -> None:
    schema = json.loads((ROOT / "schemas/config.schema.json").read_text())
    assert schema["properties"]["tests"]["items"]["type"] == "string"


# --- what check . reads ---------------------------------------------------------------------


def _names(r: Result) -> set[str]:
    return {f["object"]["name"] for f in json.loads(r.stdout)["findings"]}


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_check_skips_what_git_ignores_and_build_output(repo: Path) -> None:
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text("generated/\n*.local.yaml\n")
    for folder in ("generated", "dist", "node_modules/x", ".venv/lib", "deploy"):
        (repo / folder).mkdir(parents=True)
    (repo / "generated/g.yaml").write_text(BAD_POD % "generated")
    (repo / "dist/d.yaml").write_text(BAD_POD % "dist")
    (repo / "node_modules/x/n.yaml").write_text(BAD_POD % "node-modules")
    (repo / ".venv/lib/v.yaml").write_text(BAD_POD % "venv")
    (repo / "deploy/mine.local.yaml").write_text(BAD_POD % "local")
    (repo / "deploy/kept.yaml").write_text(BAD_POD % "kept")
    r = _invoke(["check", ".", "--format", "json"], repo)
    assert _names(r) == {"a", "b", "c", "kept"}
    r = _invoke(["check", ".", "--format", "json", "--no-ignore"], repo)
    assert _names(r) == {
        "a",
        "b",
        "c",
        "kept",
        "generated",
        "dist",
        "node-modules",
        "venv",
        "local",
    }
    # named explicitly: always read, a file or a directory
    r = _invoke(["check", "deploy/mine.local.yaml", "generated", "--format", "json"], repo)
    assert _names(r) == {"local", "generated"}
    r = _invoke(["verify", ".", "--target", "jsonschema", "--format", "json"], repo)
    assert json.loads(r.stdout)["objects"] == 4


def test_outside_git_build_output_and_tool_folders_are_skipped(repo: Path) -> None:
    (repo / "dist").mkdir()
    (repo / "dist/d.yaml").write_text(BAD_POD % "dist")
    r = _invoke(["check", ".", "--format", "json"], repo)
    assert _names(r) == {"a", "b", "c"}
    r = _invoke(["check", ".", "--format", "json", "--no-ignore"], repo)
    assert _names(r) == {"a", "b", "c", "dist"}


# --- an Ansible file ------------------------------------------------------------------------


def test_a_top_level_yaml_list_is_skipped_not_an_error(repo: Path) -> None:
    (repo / "site.yml").write_text("- hosts: all\n  tasks:\n    - ping: {}\n")
    r = _invoke(["check", ".", "--format", "json"], repo)
    assert r.exit_code == 1 and r.stderr == ""  # the pods' findings; no input error
    doc = json.loads(r.stdout)
    assert doc["errors"] == []
    assert [(s["file"], s["line"]) for s in doc["skipped"]] == [("site.yml", 1)]
    assert "Ansible" in doc["skipped"][0]["reason"]
    r = _invoke(["check", "site.yml"], repo)
    assert r.exit_code == 0 and "1 document skipped (not objects)" in r.stdout


# --- error lines ----------------------------------------------------------------------------


def test_error_lines_have_the_form_the_readme_documents(repo: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    assert "`file:line: PKnnn what is wrong (what to do)`" in readme
    (repo / "broken.yaml").write_text("apiVersion: v1\nkind: [oops\n")
    r = _invoke(["check", "broken.yaml", "nowhere.yaml"], repo)
    assert r.exit_code == 2
    lines = r.stderr.splitlines()
    assert lines[0].startswith("broken.yaml:3: PK001 malformed YAML"), lines
    assert lines[1] == "nowhere.yaml: PK001 no such file or directory (check the path)"
    # no file at fault: "policykit: PKnnn ..."
    r = _invoke(["check", "a.yaml", "--pack", "no_such_module_here"], repo)
    assert r.exit_code == 2 and re.match(r"policykit: PK003 ", r.stderr), r.stderr


# --- bundle inspect -------------------------------------------------------------------------


def test_bundle_inspect_lists_every_entrypoint_one_per_line(tmp_path: Path) -> None:
    bundle = tmp_path / "b.tar.gz"
    r = _invoke(["build", "--pack", "policykit.packs.agents", "--out", str(bundle)], tmp_path)
    assert r.exit_code == 0, r.output
    for env in ({"COLUMNS": "40"}, {"COLUMNS": "200"}):
        r = _invoke(["bundle", "inspect", str(bundle)], tmp_path, env=env)
        assert r.exit_code == 0
        lines = r.stdout.splitlines()
        assert "  policykit/main/decision" in lines
        assert "  policykit/main/violations" in lines
        assert not [ln for ln in lines if ln != ln.rstrip() or ln.endswith(",")], lines
    info = json.loads(
        _invoke(["bundle", "inspect", str(bundle), "--format", "json"], tmp_path).stdout
    )
    assert "policykit/main/decision" in info["entrypoints"]
