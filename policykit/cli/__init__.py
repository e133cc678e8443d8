"""The ``policykit`` command line (a thin shell over :mod:`policykit.api`).

Ctrl-C anywhere — while the command's modules are still being imported too —
ends the run with one line and exit status 130, never a traceback: importing
this package (which happens before :mod:`policykit.cli.main` and its
dependencies load) installs a ``sys.excepthook`` for ``KeyboardInterrupt``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import TracebackType

EXIT_INTERRUPTED = 130


def interrupted() -> None:
    """Say so on one line and exit 130; a second Ctrl-C changes nothing."""
    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write("policykit: interrupted\n")
        sys.stderr.flush()


def leave_interrupted() -> None:
    """Exit 130 at once. CPython remembers a KeyboardInterrupt raised in code
    that C ran during an import (a nested ``PyRun``) even when it is caught,
    and then ends the process by SIGINT (-2) whatever ``sys.exit`` said; an
    interrupted run is over: its files are closed and its output flushed."""
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


_previous_hook = sys.excepthook


def _hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        interrupted()
        os._exit(EXIT_INTERRUPTED)  # the stack has unwound; nothing else to run
    _previous_hook(kind, exc, tb)


if sys.excepthook is sys.__excepthook__:  # leave a host program's own hook alone
    sys.excepthook = _hook
