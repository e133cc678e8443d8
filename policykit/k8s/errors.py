"""The admission runtime's own error."""

from __future__ import annotations

from policykit.errors import PolicykitError


class Unsupported(PolicykitError):
    """A policy needs what local evaluation does not provide (external data,
    ``http.send``, expansion, …): the caller reports it as skipped, never as
    a pass."""

    code = "PK402"
