"""The base of every target compiler: dispatch on node class, unsupported = error."""

from __future__ import annotations

from typing import Any

from policykit.errors import PolicykitError
from policykit.ir import nodes as ir


class UnsupportedError(PolicykitError):
    """A rule uses something a target cannot express (stable codes PK2xx)."""

    code = "PK200"


class Compiler:
    """Subclasses define ``<prefix>_<NodeClass>`` methods; any node without one
    raises :class:`UnsupportedError` instead of falling through silently."""

    target = "?"

    def dispatch(self, prefix: str, node: ir.Node) -> Any:
        method = getattr(self, f"{prefix}_{type(node).__name__}", None)
        if method is None:
            raise UnsupportedError(
                f"target {self.target} cannot express {type(node).__name__} "
                f"({'value' if prefix == 'v' else 'condition'})"
            )
        return method(node)

    @classmethod
    def handles(cls, prefix: str) -> set[str]:
        """Node class names with a ``<prefix>_`` method (for the capability tests)."""
        return {n.split("_", 1)[1] for n in dir(cls) if n.startswith(prefix + "_")}
