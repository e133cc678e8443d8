"""policykit: state each policy once; compile it to every enforcement point.

The library's entry point is [`policykit.Policy`][policykit.library.Policy]
(see ``docs/python.md``). It is imported on first use, so ``import policykit``
stays light.
"""

from __future__ import annotations

import importlib

# Not ``from typing import TYPE_CHECKING``: typing (and re with it) is most of
# the cost of ``import policykit``, and until ``policykit/__main__.py`` runs, a
# Ctrl-C is Python's own traceback. mypy reads a module-level TYPE_CHECKING as
# typing's.
TYPE_CHECKING = False

__version__ = "0.1.0"

if TYPE_CHECKING:
    from typing import Any

    from policykit.decision import Decision
    from policykit.library import ObjectError, Policy
    from policykit.model import Finding, ObjectRef

_LAZY = {
    "Policy": "policykit.library",
    "ObjectError": "policykit.library",
    "Decision": "policykit.decision",
    "Finding": "policykit.model",
    "ObjectRef": "policykit.model",
}

__all__ = ["Decision", "Finding", "ObjectError", "ObjectRef", "Policy", "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'policykit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
