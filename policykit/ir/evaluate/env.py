"""The evaluation environment of the reference semantics: variables → values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

Env = dict[str, Any]
INVENTORY = "$inventory"
"""Env key of the inventory (every object of the run) that ``Objects`` reads."""


def identity(obj: Any) -> tuple[Any, Any, Any]:
    """(kind, namespace, name) as written, null when absent: what tells the
    object under review apart from the rest of the inventory."""

    def get(o: Any, k: str) -> Any:
        return o.get(k) if type(o) is dict else None

    meta = get(obj, "metadata")
    return get(obj, "kind"), get(meta, "namespace"), get(meta, "name")


ValueFn = Callable[[Env], Any]
PredFn = Callable[[Env], bool]
F = TypeVar("F", ValueFn, PredFn)
T = TypeVar("T")
