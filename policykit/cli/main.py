"""``policykit`` command line: parse options, call the library, render.

Exit codes: 0 clean, 1 findings at/above ``--fail-on`` (or disagreement /
failed test), 2 usage or input error, 3 internal error (a bug: please report).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
from importlib import import_module

import click

from policykit import __version__

# Start-up (issue 21): this module imports click and light modules only. A
# command's module is imported when the command is asked for (_Commands); the
# library, engines, targets, rich and jsonschema load inside the command that
# needs them (tests/test_startup.py).

COMMANDS: dict[str, str] = {
    "build": "policykit.cli.build",
    "bundle": "policykit.cli.build",
    "check": "policykit.cli.commands",
    "init": "policykit.cli.init",
    "ir": "policykit.cli.commands",
    "publish": "policykit.cli.build",
    "pull": "policykit.cli.build",
    "rules": "policykit.cli.commands",
    "scaffold": "policykit.cli.scaffold",
    "serve": "policykit.cli.commands",
    "test": "policykit.cli.thirdparty",
    "verify": "policykit.cli.commands",
}
"""Each command and the module whose ``register(cli)`` adds it (with the other
commands of that module): ``policykit --version`` or ``check`` imports no other
command's module and builds no other command's options
(tests/test_startup.py holds this table to the modules' commands)."""

__all__ = ["COMMANDS", "cli", "main"]


class _Commands(click.Group):
    """A group whose commands are registered by their modules when first asked
    for (click's lazily loaded subcommands)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            import_module(COMMANDS[cmd_name]).register(self)
        return self.commands.get(cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """click's, with every command (not only those registered so far) as
        the suggestions of an unknown one ("Did you mean 'check'?", click 8.4+)."""
        unknown = getattr(click.exceptions, "NoSuchCommand", ())  # (): before click 8.4
        try:
            return super().resolve_command(ctx, args)
        except unknown as exc:
            raise type(exc)(
                exc.command_name, possibilities=self.list_commands(ctx), ctx=ctx
            ) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="policykit")
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="Only findings, failures and errors: no progress bar, summary line or notes.",
)
@click.option(
    "--no-color",
    is_flag=True,
    help="No colour (also when NO_COLOR is set; output that is not a terminal has none).",
)
@click.pass_context
def cli(ctx: click.Context, quiet: bool, no_color: bool) -> None:
    """policykit: state each policy once, enforce it everywhere.

    Options before the command (policykit -q check .) apply to every command.
    A progress bar shows on standard error while a long run works, only when
    standard error is a terminal.
    """
    from policykit.cli import render

    ctx.obj = render.Ui(quiet=quiet, color=not (no_color or render.no_color_env()))


def main() -> None:
    """The console entry point: click's own handling, except that Ctrl-C
    (anywhere, argument parsing included) is one line and exit 130, through
    :func:`os._exit` (:func:`policykit.cli.leave_interrupted`): an interrupted
    run leaves at once, without the interpreter's shutdown. A program that
    runs the command line in its own process (a test) calls :func:`_main`."""
    from policykit.cli import EXIT_INTERRUPTED, leave_interrupted

    try:
        _main()
    except SystemExit as exc:
        if exc.code == EXIT_INTERRUPTED:  # said so already; the stack has unwound
            leave_interrupted()
        raise
    finally:
        # The work is done and its exit code known: a Ctrl-C now, while the
        # interpreter shuts down (it puts SIGINT back to the default action
        # first), would kill the process by the signal instead (exit -2, no
        # message). Ignored, it changes nothing.
        with contextlib.suppress(ValueError):  # not the main thread
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _main() -> None:
    from policykit.cli import EXIT_INTERRUPTED, interrupted

    try:
        code = cli.main(prog_name="policykit", standalone_mode=False)
    except KeyboardInterrupt:
        interrupted()
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            interrupted()
            sys.exit(EXIT_INTERRUPTED)
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except OSError as exc:  # a closed pipe (policykit ... | head): quiet, like click
        if exc.errno != errno.EPIPE:
            raise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no 2nd error at exit
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
