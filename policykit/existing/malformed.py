"""A policy document with a field of the wrong type (a ConstraintTemplate whose
``targets`` is a map, a constraint without ``metadata.name``, a ClusterPolicy
whose ``rules`` is a number, an object whose ``metadata`` is a list ...).

Users' policy files are read as their controllers' CRDs define them, and the
runners index into them on that trust: such a document raised ``KeyError``,
``TypeError`` and the like from deep inside them, an internal error (exit 3)
that lost the whole report. :data:`MALFORMED` is what such a document raises;
:func:`malformed` makes it an input error of that policy (PK400, its file and
line), so every other policy still runs and the report is written.
"""

from __future__ import annotations

import os

from policykit.errors import PolicyError, SourceLoc

MALFORMED = (TypeError, AttributeError, KeyError, ValueError, IndexError)


def malformed(what: str, loc: SourceLoc, exc: BaseException) -> PolicyError:
    """``what`` (e.g. ``ClusterPolicy require-team``) cannot be read: ``exc``.
    With ``POLICYKIT_DEBUG`` set, ``exc`` itself is raised again (a traceback:
    if the document is valid, the fault is policykit's)."""
    if os.environ.get("POLICYKIT_DEBUG"):
        raise exc
    detail = f"{type(exc).__name__}: {exc}"[:200]
    return PolicyError(
        f"{what} is malformed ({detail})",
        loc=loc,
        hint="a field has the wrong type or is missing; check it against its kind's schema "
        "(if it is valid, please report it: POLICYKIT_DEBUG=1 shows where it failed)",
    )
