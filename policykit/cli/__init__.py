"""The ``policykit`` command line (a thin shell over :mod:`policykit.api`).

Ctrl-C anywhere — while the command's modules are still being imported too —
ends the run with one line and exit status 130, never a traceback: importing
this package (which happens before :mod:`policykit.cli.main` and its
dependencies load) installs a ``sys.excepthook`` for ``KeyboardInterrupt``,
and a ``sys.unraisablehook`` for one raised where Python can only print it and
go on: in a finalizer (regopy's ``Interpreter.__del__`` frees its C++ state,
~5 ms for a compiled bundle, and a Ctrl-C then was printed as "Exception
ignored" and lost, the run going on to exit 0).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import TracebackType
from typing import Any

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
    """Exit 130 at once. A Ctrl-C that lands while modules load could end the
    process by SIGINT (-2) at exit even though policykit caught it and said
    so (14 of 40 runs interrupted 0.2-0.35 s in; CPython's own "exit by
    SIGINT after an unhandled KeyboardInterrupt" is the likely path).
    An interrupted run is over: its files are closed and its output flushed."""
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


_previous_unraisable = sys.unraisablehook


def _unraisable(info: Any) -> None:
    if info.exc_type is not None and issubclass(info.exc_type, KeyboardInterrupt):
        interrupted()
        leave_interrupted()  # from inside the finalizer: the run is over
    _previous_unraisable(info)


if sys.unraisablehook is sys.__unraisablehook__:  # a host program's own hook stays
    sys.unraisablehook = _unraisable
